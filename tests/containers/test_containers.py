"""Container actions run by the real runc: a `blackbox` action on an image
built here (a static actionloop probe, mkimage.py), imported with `wisp
image import` into the data dir of a running wispd. Checks the developer
error for an image not yet imported, the answer once it is, the isolation
(no host files, no host processes, a read-only rootfs, no network, an
unprivileged user, the memory limit), the clear error without an OCI
runtime, and that neither a SIGTERM nor a SIGKILL of wispd leaves a
container behind."""
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "integration"))
import mkimage  # noqa: E402
from harness import WISP_CLI, Wispd, wait_for  # noqa: E402
from test_events import native_echo  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))


def build_probe_image(tmp):
    exe = os.path.join(tmp, "probe")
    subprocess.run(["cc", "-static", "-O2", "-o", exe, os.path.join(HERE, "probe.c")], check=True)
    path = os.path.join(tmp, "probe.tar")
    mkimage.oci_archive(path, [[mkimage.file_entry(exe, "probe")]], entrypoint=["/probe"],
                        labels={"io.wisp.protocol": "actionloop"})
    return path


def build_http_image(tmp):
    """OpenWhisk's blackbox contract: no label, a server on port 8080."""
    exe = os.path.join(tmp, "httpaction")
    subprocess.run(["cc", "-static", "-O2", "-o", exe, os.path.join(HERE, "httpaction.c")],
                   check=True)
    path = os.path.join(tmp, "http.tar")
    mkimage.docker_save(path, [[("action", "dir", None, 0o755),
                                mkimage.file_entry(exe, "action/exec")]],
                        entrypoint=["/action/exec"])
    return path


def freezer_state(pid):
    """FROZEN/THAWED (cgroup v1) or 1/0 (v2) of the container's cgroup."""
    with open("/proc/%d/cgroup" % pid) as f:
        for line in f:
            _, ctrls, rel = line.rstrip("\n").split(":", 2)
            if "freezer" in ctrls.split(","):
                with open("/sys/fs/cgroup/freezer%s/freezer.state" % rel) as s:
                    return s.read().strip()
            if ctrls == "" and os.path.exists("/sys/fs/cgroup%s/cgroup.freeze" % rel):
                with open("/sys/fs/cgroup%s/cgroup.freeze" % rel) as s:
                    return s.read().strip()
    return None


def stems(w):
    m = w.request("GET", "/metrics").body
    for line in m.splitlines():
        if line.startswith('wisp_pool_workers{state="stem"}'):
            return int(line.split()[-1])
    return 0


def container_pids(tag):
    """Processes whose command line names the probe run for this test."""
    out = subprocess.run(["ps", "-eo", "pid,args"], capture_output=True, text=True).stdout
    return [int(l.split()[0]) for l in out.splitlines()[1:] if l.split()[1:2] == ["/probe"]
            and tag in l] + []


class Containers(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="wisp-ct-")
        cls.image = build_probe_image(cls.tmp)
        cls.http_image = build_http_image(cls.tmp)

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def setUp(self):
        self.w = None

    def tearDown(self):
        if self.w:
            try:
                if self.w.proc:
                    self.w.stop()
            finally:
                self.w.cleanup()

    def start(self, *args, prefix=()):
        self.w = Wispd(args=["--prewarm", ""] + list(args), prefix=prefix).start()
        return self.w

    def import_image(self, ref="probe:1", image=None):
        p = subprocess.run([WISP_CLI, "image", "--data", self.w.data, "import", image or self.image, ref],
                           capture_output=True, text=True, timeout=60)
        self.assertEqual(p.returncode, 0, p.stderr)

    def invoke(self, name, value):
        r = self.w.api("POST", "actions/%s?blocking=true" % name, value)
        return r.json()

    def create(self, name="probe", image="probe:1", memory=128):
        r = self.w.api("PUT", "actions/" + name, {"exec": {"kind": "blackbox", "image": image},
                                                  "limits": {"memory": memory}})
        self.assertEqual(r.status, 200, r)

    def state_dir(self):
        return os.path.join(self.w.data, "containers")

    def test_blackbox_runs_isolated(self):
        w = self.start()
        self.create()
        rec = self.invoke("probe", {"op": "echo"})
        self.assertEqual(rec["response"]["status"], "action developer error", rec)
        self.assertIn("wisp image import", rec["response"]["result"]["error"])
        self.import_image()  # beside the running wispd
        rec = self.invoke("probe", {"op": "echo", "x": "1"})
        self.assertTrue(rec["response"]["success"], rec)
        self.assertEqual(rec["response"]["result"], {"op": "echo", "x": "1"})
        self.assertTrue(any("probe echo" in l for l in rec["logs"]), rec["logs"])
        res = lambda v: self.invoke("probe", v)["response"]["result"]  # noqa: E731
        # host files are not there; the host's processes are not seen
        self.assertEqual(res({"op": "read", "arg": os.path.join(w.data, "guest.key")})["ok"], False)
        self.assertEqual(res({"op": "read", "arg": "/etc/shadow"})["ok"], False)
        self.assertEqual(res({"op": "procs"})["count"], 1)
        # the rootfs is read-only, /tmp is not
        self.assertEqual(res({"op": "write", "arg": "/probe2"}), {"ok": False, "errno": 30})
        self.assertEqual(res({"op": "write", "arg": "/tmp/x"}), {"ok": True, "errno": 0})
        # an unprivileged user, no network (wispd listens on the host's loopback)
        self.assertNotEqual(res({"op": "whoami"})["uid"], 0)
        self.assertEqual(res({"op": "connect", "arg": "127.0.0.1", "arg2": str(w.port)})["ok"], False)
        # one warm container served all of these
        self.assertEqual(len([e for e in os.listdir(self.state_dir()) if e.startswith("wisp-")]), 1)
        # past its memory limit the activation fails; the next one runs
        rec = self.invoke("probe", {"op": "alloc", "arg": "400"})
        self.assertFalse(rec["response"]["success"], rec)
        self.assertEqual(rec["response"]["result"]["error"],
                         "The action exhausted its memory and was aborted.")
        self.assertEqual(self.invoke("probe", {"op": "echo"})["response"]["success"], True)
        # the image cannot go while the action names it
        p = subprocess.run([WISP_CLI, "image", "--data", w.data, "rm", "probe:1"],
                           capture_output=True, text=True)
        self.assertEqual(p.returncode, 1)
        self.assertIn("used by 1 action (/guest/probe)", p.stderr)
        w.stop()
        # SIGTERM leaves no container behind
        self.assertEqual([e for e in os.listdir(self.state_dir()) if e.startswith("wisp-")], [])
        self.assertEqual(container_pids(""), [])
        p = subprocess.run([WISP_CLI, "image", "--data", w.data, "rm", "--force", "probe:1"],
                           capture_output=True, text=True)
        self.assertEqual(p.returncode, 0, p.stderr)

    def test_openwhisk_http_contract(self):
        """An image serving /init and /run on 8080, as OpenWhisk's runtime images do."""
        w = self.start()
        self.import_image("web/act:2", self.http_image)
        r = w.api("PUT", "actions/hb", {"exec": {"kind": "blackbox", "image": "web/act:2",
                                                  "code": "print('hi')"}})
        self.assertEqual(r.status, 200, r)
        rec = self.invoke("hb", {"n": 1})
        self.assertTrue(rec["response"]["success"], rec)
        res = rec["response"]["result"]
        self.assertEqual(res["value"], {"n": 1})
        self.assertEqual(res["code"], "print('hi')")  # /init had the action's code
        self.assertEqual(res["activation_id"], rec["activationId"])
        logs = rec["logs"]
        self.assertTrue(any("run \"%s\"" % rec["activationId"] in l and "stdout:" in l for l in logs), logs)
        self.assertTrue(any("to stderr" in l and "stderr:" in l for l in logs), logs)
        self.assertFalse(any("XXX_THE_END_OF_A_WHISK_ACTIVATION_XXX" in l for l in logs), logs)
        # warm: the same container, no second /init (the server refuses one)
        rec2 = self.invoke("hb", {"n": 2})
        self.assertEqual(rec2["response"]["result"]["value"], {"n": 2})
        self.assertEqual(len(rec2["logs"]), 2, rec2["logs"])  # this run's lines only
        # a /run answered 502 {"error"}: an application error
        rec = self.invoke("hb", {"fail": True})
        self.assertEqual(rec["response"]["status"], "application error", rec)
        self.assertEqual(rec["response"]["result"], {"error": "failed as asked"})
        # an /init refused: a developer error with the server's message
        r = w.api("PUT", "actions/bad", {"exec": {"kind": "blackbox", "image": "web/act:2",
                                                   "code": "refuse"}})
        self.assertEqual(r.status, 200, r)
        rec = self.invoke("bad", {})
        self.assertEqual(rec["response"]["status"], "action developer error", rec)
        self.assertIn("init refused as asked", rec["response"]["result"]["error"])
        # without code: /init without it, as OpenWhisk sends for a plain --docker action
        r = w.api("PUT", "actions/nocode", {"exec": {"kind": "blackbox", "image": "web/act:2"}})
        self.assertEqual(r.status, 200, r)
        self.assertEqual(self.invoke("nocode", {"k": "v"})["response"]["result"]["code"], None)

    def test_idle_container_is_paused_and_resumed(self):
        w = self.start("--container-pause-ms", "100")
        self.import_image()
        self.create()
        self.assertTrue(self.invoke("probe", {"op": "echo"})["response"]["success"])
        pid = container_pids("")[0]
        wait_for(lambda: freezer_state(pid) in ("FROZEN", "1"), 10, "the idle container frozen")
        m = w.request("GET", "/metrics").body
        self.assertIn("wisp_pool_pauses_total 1", m)
        # the paused container still holds its memory, counted from its cgroup
        self.assertIn('wisp_pool_backend_workers{backend="container"} 1', m)
        held = re.search(r'^wisp_pool_worker_memory_bytes\{backend="container"\} (\d+)$', m, re.M)
        self.assertIsNotNone(held, m)
        self.assertGreater(int(held.group(1)), 0)
        rec = self.invoke("probe", {"op": "echo", "again": "1"})
        self.assertEqual(rec["response"]["result"], {"op": "echo", "again": "1"})
        self.assertEqual(container_pids(""), [pid])  # the same container, resumed
        self.assertIn("wisp_pool_resumes_total 1", w.request("GET", "/metrics").body)
        # frozen again, then killed at shutdown (a frozen task needs a thaw first)
        wait_for(lambda: freezer_state(pid) in ("FROZEN", "1"), 10, "frozen again")
        w.stop()
        self.assertEqual(container_pids(""), [])

    def test_network_only_when_annotated(self):
        """No network by default; the annotation network=true shares the host's
        (checked against wispd's own listener on this machine's loopback)."""
        w = self.start()
        self.import_image()
        self.create()
        target = {"op": "connect", "arg": "127.0.0.1", "arg2": str(w.port)}
        self.assertEqual(self.invoke("probe", target)["response"]["result"]["ok"], False)
        r = w.api("PUT", "actions/netprobe", {"exec": {"kind": "blackbox", "image": "probe:1"},
                                               "annotations": [{"key": "network", "value": True}]})
        self.assertEqual(r.status, 200, r)
        self.assertEqual(self.invoke("netprobe", target)["response"]["result"], {"ok": True, "errno": 0})
        # the rest of the isolation stays
        self.assertEqual(self.invoke("netprobe", {"op": "procs"})["response"]["result"]["count"], 1)
        self.assertEqual(self.invoke("netprobe", {"op": "write", "arg": "/x"})["response"]["result"]["errno"], 30)

    def test_python_image(self):
        """A python:3-style image: this machine's Debian python3 and a small
        OpenWhisk action proxy (pyproxy.py); the action's code goes to /init."""
        path = os.path.join(self.tmp, "python.tar")
        if not os.path.exists(path):
            mkimage.oci_archive(path, [mkimage.host_python_entries(os.path.join(HERE, "pyproxy.py"))],
                                compress=False, entrypoint=["/usr/bin/python3", "/action/proxy.py"])
        w = self.start()
        self.import_image("python:3", path)
        code = "def main(args):\n    print('doubling', args['x'])\n    return {'py': args['x'] * 2}\n"
        r = w.api("PUT", "actions/py", {"exec": {"kind": "blackbox", "image": "python:3", "code": code}})
        self.assertEqual(r.status, 200, r)
        rec = self.invoke("py", {"x": 21})
        self.assertEqual(rec["response"]["result"], {"py": 42}, rec)
        self.assertTrue(any("stdout: doubling 21" in l for l in rec["logs"]), rec["logs"])
        rec = self.invoke("py", {"y": 1})  # a KeyError in main: an application error
        self.assertEqual(rec["response"]["status"], "application error", rec)

    def test_stem_containers(self):
        """prewarm blackbox:IMAGE=N: containers started before any action names
        the image, taken by the first activation of any action on it."""
        data = tempfile.mkdtemp(prefix="wisp-ct-data-")
        try:
            for img, ref in ((self.image, "probe:1"), (self.http_image, "web/act:2")):
                p = subprocess.run([WISP_CLI, "image", "--data", data, "import", img, ref],
                                   capture_output=True, text=True, timeout=60)
                self.assertEqual(p.returncode, 0, p.stderr)
            self.w = Wispd(data_dir=data, args=["--prewarm", "blackbox:probe:1=1,blackbox:web/act:2=1"])
            w = self.w.start()
            wait_for(lambda: len(container_pids("")) == 1 and stems(w) == 2, 20, "two stem containers")
            stem_pid = container_pids("")[0]
            self.create()
            rec = self.invoke("probe", {"op": "echo", "s": "1"})
            self.assertEqual(rec["response"]["result"], {"op": "echo", "s": "1"})
            self.assertIn(stem_pid, container_pids(""))  # the stem took it
            r = w.api("PUT", "actions/hb", {"exec": {"kind": "blackbox", "image": "web/act:2",
                                                      "code": "stem code"}})
            self.assertEqual(r.status, 200, r)
            rec = self.invoke("hb", {"n": 3})
            self.assertEqual(rec["response"]["result"]["code"], "stem code")  # /init on the stem
            m = w.request("GET", "/metrics").body
            self.assertIn('wisp_pool_starts_total{how="stem"} 2', m)
            self.assertIn('wisp_pool_starts_total{how="cold"} 0', m)
            wait_for(lambda: stems(w) == 2, 20, "the stems replaced")
            w.stop()
            self.assertEqual(container_pids(""), [])
        finally:
            shutil.rmtree(data, ignore_errors=True)

    def test_kill9_leaves_nothing_after_restart(self):
        w = self.start()
        self.import_image()
        self.create()
        self.assertTrue(self.invoke("probe", {"op": "echo"})["response"]["success"])
        self.assertEqual(len(container_pids("")), 1)
        w.kill9()
        # the container outlives a killed wispd until the next start sweeps it
        w.start()
        wait_for(lambda: container_pids("") == [], 10, "the old container swept")
        self.assertIn("removed 1 container left running", w.log())
        self.assertTrue(self.invoke("probe", {"op": "echo"})["response"]["success"])

    def test_without_an_oci_runtime(self):
        w = self.start("--oci-runtime", "/nonexistent/runc")
        self.import_image()
        self.create()
        rec = self.invoke("probe", {"op": "echo"})
        self.assertFalse(rec["response"]["success"], rec)
        self.assertIn("no OCI runtime", rec["response"]["result"]["error"])
        r = w.api("PUT", "actions/echo", {"exec": native_echo()})
        self.assertEqual(r.status, 200, r)
        self.assertEqual(self.invoke("echo", {"a": 1})["response"]["result"], {"a": 1})

    def test_without_cgroups(self):
        # wispd in a mount namespace whose /sys/fs/cgroup is an empty tmpfs:
        # containers cannot get their limits, so they are refused with the
        # reason; processes run (with rlimits and the budget only)
        hide = ("mount --make-rprivate / && mount -t tmpfs none /sys/fs/cgroup && "
                'exec "$@"')
        w = self.start(prefix=["unshare", "--mount", "sh", "-c", hide, "sh"])
        self.import_image()
        self.create()
        rec = self.invoke("probe", {"op": "echo"})
        self.assertFalse(rec["response"]["success"], rec)
        self.assertIn("Container actions cannot run here: no cgroup hierarchy",
                      rec["response"]["result"]["error"])
        r = w.api("PUT", "actions/echo", {"exec": native_echo()})
        self.assertEqual(r.status, 200, r)
        self.assertEqual(self.invoke("echo", {"a": 1})["response"]["result"], {"a": 1})

    def test_oci_runtime_is_selectable(self):
        # --oci-runtime PATH: every call goes to that program (here one that
        # notes its arguments and hands over to runc)
        tmp = tempfile.mkdtemp(prefix="wisp-rt-")
        self.addCleanup(shutil.rmtree, tmp, True)
        calls = os.path.join(tmp, "calls")
        rt = os.path.join(tmp, "my-runtime")
        with open(rt, "w") as f:
            f.write('#!/bin/sh\necho "$*" >> %s\nexec %s "$@"\n' % (calls, shutil.which("runc")))
        os.chmod(rt, 0o755)
        w = self.start("--oci-runtime", rt)
        self.import_image()
        self.create()
        self.assertEqual(self.invoke("probe", {"op": "echo"})["response"]["result"], {"op": "echo"})
        self.assertIn("OCI runtime %s" % rt, w.log())
        w.stop()
        with open(calls) as f:
            lines = f.read().splitlines()
        self.assertTrue(any(" run --detach " in l for l in lines), lines)
        self.assertTrue(any(" delete --force " in l for l in lines), lines)
        self.assertEqual(container_pids(""), [])


if __name__ == "__main__":
    unittest.main()
