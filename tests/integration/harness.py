"""Integration harness: starts the real wispd on a free loopback port with a
temporary data dir, talks to it over HTTP, and stops it by its own PID.

Conventions (tests/README in the style guide):
- wispd binds 127.0.0.1:0 and the port is read from its ready line;
- every wait polls a condition against a deadline, never a fixed sleep;
- after each daemon stops, its stderr must hold no sanitizer report;
- WISP_TEST_ATTACH=host:port aims the HTTP helpers at a daemon started by
  hand (under gdb, say) instead of spawning one.
"""
import base64
import http.client
import json
import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time
import unittest

WISPD = os.environ.get("WISPD", os.path.join(os.path.dirname(__file__), "../../build/core/wispd"))
# A cross build's tests run the target's wispd and wisp under qemu-user
# (WISP_EMULATED names the emulator, tests/CMakeLists.txt): every deadline
# of the harness is WISP_TEST_TIME_SCALE times longer there.
EMULATED = os.environ.get("WISP_EMULATED", "")
TIME_SCALE = float(os.environ.get("WISP_TEST_TIME_SCALE", "1"))


def _target_programs_run():
    """Whether wispd can exec the target's own helper programs (the zip
    extractor of native actions): natively yes; under qemu-user only where
    binfmt_misc hands that architecture to qemu."""
    if not EMULATED:
        return True
    try:
        with open("/proc/sys/fs/binfmt_misc/" + os.path.basename(EMULATED)) as f:
            return f.readline().strip() == "enabled"
    except OSError:
        return False


TARGET_PROGRAMS_RUN = _target_programs_run()
needs_target_programs = unittest.skipUnless(
    TARGET_PROGRAMS_RUN, "wispd runs under %s, and the target's helper programs run only where "
    "binfmt_misc hands them to it" % (EMULATED or "its emulator"))
WISP_CLI = os.environ.get("WISP_CLI", os.path.join(os.path.dirname(__file__), "../../build/tools/wisp"))
GUEST_KEY = "23bc46b1-71f6-4ed5-8c54-816aa4f8c502:123zO3xZCLrMN6v2BKK1dXYFpXlPkccOFqm12CdAsMgRU4VrNZ9lyGVCGuMDGIwP"
SANITIZER_MARKS = ("AddressSanitizer", "LeakSanitizer", "runtime error:", "UndefinedBehaviorSanitizer")


def _node_kind(node="/usr/bin/node"):
    """nodejs:MAJOR of the node the kinds manifest names (nodejs:18 on
    Debian 12, nodejs:20 where node 20 is installed): the kind wispd offers
    for nodejs:default. Asked of node itself, not of wispd, so tests check
    wispd's answer. None when that node does not run."""
    try:
        out = subprocess.run([node, "--version"], capture_output=True, text=True, timeout=30,
                             stdin=subprocess.DEVNULL)
    except (OSError, subprocess.TimeoutExpired):
        return None
    digits = out.stdout.strip().lstrip("v").split(".")[0]
    return "nodejs:" + digits if out.returncode == 0 and digits.isdigit() else None


NODE_KIND = _node_kind()


def wait_for(cond, timeout=10.0, what="condition"):
    deadline = time.monotonic() + timeout * TIME_SCALE
    while time.monotonic() < deadline:
        v = cond()
        if v:
            return v
        time.sleep(0.01)
    raise AssertionError("timed out waiting for " + what)


class Response:
    def __init__(self, status, headers, body):
        self.status = status
        self.headers = headers
        self.body = body

    def json(self):
        return json.loads(self.body)

    def __repr__(self):
        return "<%d %r>" % (self.status, self.body[:300])


class Wispd:
    """One wispd process with its own data dir."""

    def __init__(self, data_dir=None, key=GUEST_KEY, args=(), env=None, prefix=()):
        # prefix: a command that execs wispd (the argv follows it), so
        # self.proc is wispd itself; e.g. unshare into a changed mount view
        self.prefix = list(prefix)
        self.tmp = tempfile.mkdtemp(prefix="wisp-it-")
        self.data = data_dir or os.path.join(self.tmp, "data")
        self.key = key
        self.args = list(args)
        self.env = dict(os.environ)
        if key:
            self.env["WISP_GUEST_KEY"] = key
        self.env.update(env or {})
        self.proc = None
        self.port = None
        self.stderr_path = None
        self.host = "127.0.0.1"
        self.scheme = "http"
        self.ssl_context = None  # set for https daemons

    # -- process ----------------------------------------------------------
    def start(self):
        attach = os.environ.get("WISP_TEST_ATTACH")
        if attach:
            self.host, port = attach.rsplit(":", 1)
            self.port = int(port)
            return self
        self.stderr_path = os.path.join(self.tmp, "wispd-%d.log" % time.monotonic_ns())
        self.stderr_file = open(self.stderr_path, "wb")
        self.proc = subprocess.Popen(
            self.prefix + [WISPD, "--data", self.data, "--listen", "127.0.0.1:0"] + self.args,
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=self.stderr_file, env=self.env)

        def ready():
            if self.proc.poll() is not None:
                raise AssertionError("wispd exited with %s:\n%s" % (self.proc.returncode, self.log()))
            for line in self.log().splitlines():
                for scheme in ("http", "https"):
                    if line.startswith("wispd: ready on %s://" % scheme):
                        self.scheme = scheme
                        return int(line.rsplit(":", 1)[1])
            return None

        self.port = wait_for(ready, 20, "wispd ready line")
        return self

    def log(self):
        with open(self.stderr_path, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def assert_clean_log(self):
        text = self.log()
        for mark in SANITIZER_MARKS:
            if mark in text:
                raise AssertionError("sanitizer report in wispd log:\n" + text)

    def stop(self, expect_code=0, timeout=30):
        """SIGTERM, wait with a deadline, then SIGKILL; checks the exit code."""
        if not self.proc:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout * TIME_SCALE)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                raise AssertionError("wispd did not stop within %ds after SIGTERM" % timeout)
        code = self.proc.returncode
        self.proc = None
        self.stderr_file.close()
        self.assert_clean_log()
        if expect_code is not None and code != expect_code:
            raise AssertionError("wispd exited %s, expected %s:\n%s" % (code, expect_code, self.log()))
        return code

    def kill9(self):
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()
        self.proc = None
        self.stderr_file.close()

    def cleanup(self):
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        shutil.rmtree(self.tmp, ignore_errors=True)

    # -- HTTP --------------------------------------------------------------
    def auth_header(self, key=None):
        key = self.key if key is None else key
        return {"Authorization": "Basic " + base64.b64encode(key.encode()).decode()}

    def request(self, method, path, body=None, key=None, headers=None, auth=True, raw=None):
        h = {}
        if auth:
            h.update(self.auth_header(key))
        if body is not None:
            raw = json.dumps(body).encode()
            h["Content-Type"] = "application/json"
        h.update(headers or {})
        if self.scheme == "https":
            conn = http.client.HTTPSConnection(self.host, self.port, timeout=30 * TIME_SCALE,
                                               context=self.ssl_context)
        else:
            conn = http.client.HTTPConnection(self.host, self.port, timeout=30 * TIME_SCALE)
        try:
            conn.request(method, path, body=raw, headers=h)
            r = conn.getresponse()
            return Response(r.status, dict((k.lower(), v) for k, v in r.getheaders()), r.read().decode())
        finally:
            conn.close()

    def api(self, method, path, body=None, **kw):
        return self.request(method, "/api/v1/namespaces/_/" + path.lstrip("/"), body, **kw)


class WispTestCase(unittest.TestCase):
    """Starts one wispd per test; stops it cleanly afterwards."""

    wispd_args = ()

    def setUp(self):
        self.w = Wispd(args=self.wispd_args).start()

    def tearDown(self):
        try:
            if self.w.proc:
                self.w.stop()
        finally:
            self.w.cleanup()

    def assertError(self, resp, status, message=None):
        """An OpenWhisk error reply: status, {"error": str, "code": str}."""
        self.assertEqual(resp.status, status, resp)
        body = resp.json()
        self.assertIsInstance(body.get("error"), str, resp)
        self.assertIsInstance(body.get("code"), str, resp)
        if message is not None:
            self.assertIn(message, body["error"])
        return body


def free_port():
    """A free loopback port (bind check); callers retry if a start fails."""
    import socket
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class Broker:
    """A private mosquitto broker on loopback, stopped by its own PID."""

    def __init__(self, port=None, persistence=False, conf=""):
        """With persistence, sessions and queued messages are saved in the
        broker's folder when it stops (SIGTERM) and loaded when it starts.
        conf: more lines for mosquitto.conf."""
        self.tmp = tempfile.mkdtemp(prefix="wisp-mqtt-")
        self.port = port or free_port()
        self.persistence = persistence
        self.conf = conf
        self.proc = None

    def start(self):
        import socket
        conf = os.path.join(self.tmp, "mosquitto.conf")
        with open(conf, "w") as f:
            f.write("listener %d 127.0.0.1\nallow_anonymous true\nmax_queued_messages 100000\n"
                    % self.port)
            if self.persistence:
                # started as root, mosquitto runs as its own user and must
                # be able to write its database here
                os.chmod(self.tmp, 0o777)
                f.write("persistence true\npersistence_location %s/\n" % self.tmp)
            else:
                f.write("persistence false\n")
            f.write(self.conf)
        self.log = open(os.path.join(self.tmp, "broker.log"), "ab")
        self.proc = subprocess.Popen(["/usr/sbin/mosquitto", "-c", conf], stdin=subprocess.DEVNULL,
                                     stdout=self.log, stderr=self.log)

        def up():
            if self.proc.poll() is not None:
                raise AssertionError("mosquitto exited %s" % self.proc.returncode)
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return True
            except OSError:
                return False

        wait_for(up, 10, "mosquitto on port %d" % self.port)
        return self

    @property
    def url(self):
        return "mqtt://127.0.0.1:%d" % self.port

    def stop(self, sig=signal.SIGKILL):
        """SIGKILL by default; SIGTERM lets a persistent broker save."""
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(sig)
            self.proc.wait(30)
        self.proc = None
        if getattr(self, "log", None):
            self.log.close()
            self.log = None

    def cleanup(self):
        self.stop()
        shutil.rmtree(self.tmp, ignore_errors=True)

    def publish(self, topic, message, qos=1, retain=False):
        args = ["mosquitto_pub", "-h", "127.0.0.1", "-p", str(self.port), "-t", topic, "-m", message,
                "-q", str(qos)]
        if retain:
            args.append("-r")
        subprocess.run(args, check=True, timeout=20, stdin=subprocess.DEVNULL)

    def subscribe(self, topic, count, qos=1, timeout=30, debug=False):
        """Starts mosquitto_sub for count messages; returns the process (read .stdout).
        With debug, its protocol trace goes to a file that subscribed() reads."""
        args = ["mosquitto_sub", "-h", "127.0.0.1", "-p", str(self.port), "-t", topic,
                "-C", str(count), "-q", str(qos), "-W", str(timeout), "-v"]
        if debug:  # line-buffered, so the SUBACK trace arrives when it happens
            args = ["stdbuf", "-oL"] + args + ["-d"]
        p = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
        if debug:
            # read the trace in the background so subscribed() can look at it
            p.trace = []

            def pump():
                for line in p.stdout:
                    p.trace.append(line)
            p.pump = threading.Thread(target=pump, daemon=True)
            p.pump.start()

            def communicate(timeout=None):
                p.wait(timeout)
                p.pump.join(5)
                return "".join(p.trace), p.stderr.read()
            p.communicate = communicate
        return p

    @staticmethod
    def subscribed(p):
        return any("SUBACK" in l for l in p.trace)
