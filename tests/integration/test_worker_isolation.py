"""Process workers against each other and against wispd (issue 16, 3.2).

wispd runs as root (the appliance's normal case) with workers dropped to
worker-user. A probe action (python:3) tries, from inside its worker, to
write outside its own directory, to read another action's code and
wispd's store and key, to signal and ptrace wispd and a sibling worker (a
native action, its code on disk in its own directory), and reports the
errno of every attempt. Other actions fork, ignore SIGTERM and leave
daemons behind, then run past their timeout; the test then checks from
the outside, by PID and start time in /proc, that nothing of the worker
is left running.

Every path, PID and start time comes from the daemon and the workers
themselves (the log's work dir, /proc/PID/cwd), never from a guess.
"""
import base64
import os
import shutil
import subprocess
import tempfile
import unittest

from harness import Wispd, wait_for

# Runs inside the worker: every attempt's outcome, "ok" or the errno's name.
PROBE = r'''
import ctypes, errno, os, signal

def attempt(fn):
    try:
        fn()
        return "ok"
    except OSError as e:
        return errno.errorcode.get(e.errno, str(e.errno))

def write(path):
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    os.write(fd, b"probe")
    os.close(fd)

def read(path):
    with open(path, "rb") as f:
        f.read(1)

def main(a):
    out = {"pid": os.getpid(), "uid": os.getuid(), "gid": os.getgid(), "cwd": os.getcwd(),
           "write": {}, "mkdir": {}, "read": {}, "list": {}, "kill": {}, "ptrace": {}}
    for p in a.get("write", []):
        out["write"][p] = attempt(lambda: write(p))
        out["mkdir"][p] = attempt(lambda: os.mkdir(p + ".d"))
    for p in a.get("read", []):
        out["read"][p] = attempt(lambda: read(p))
    for p in a.get("list", []):
        out["list"][p] = attempt(lambda: os.listdir(p))
    for pid in a.get("kill", []):
        for sig in (0, signal.SIGTERM):
            out["kill"]["%d/%d" % (pid, sig)] = attempt(lambda: os.kill(pid, sig))
    libc = ctypes.CDLL(None, use_errno=True)
    libc.ptrace.argtypes = [ctypes.c_long, ctypes.c_long, ctypes.c_void_p, ctypes.c_void_p]
    for pid in a.get("ptrace", []):
        ok = libc.ptrace(16, pid, None, None) == 0  # PTRACE_ATTACH
        out["ptrace"][str(pid)] = "ok" if ok else errno.errorcode.get(ctypes.get_errno(), "?")
        if ok:
            libc.ptrace(17, pid, None, None)  # PTRACE_DETACH
    return out
'''

# A native action that stays warm: its code is ./exec in its own directory.
HOLDER = """#!/bin/sh
echo '{"ok":true}' >&3
while read -r line; do
  echo "{\\"pid\\": $$}" >&3
done
"""

# Runs past its timeout after leaving processes behind; prints
# "proc PID STARTTIME" for every process it made (and itself) first.
LINGER = r'''
import os, signal, sys, time

def start_of(pid):
    with open("/proc/%d/stat" % pid) as f:
        return f.read().rsplit(")", 1)[1].split()[19]

def report(pid):
    print("proc %d %s" % (pid, start_of(pid)), flush=True)

def forever():
    while True:
        time.sleep(3600)

def main(a):
    mode = a["mode"]
    report(os.getpid())
    r, w = os.pipe()
    if mode == "ignore_term":
        signal.signal(signal.SIGTERM, signal.SIG_IGN)  # inherited by the child
    child = os.fork()
    if child == 0:
        os.close(r)
        if mode == "daemon":  # leaves the worker's process group and session
            os.setsid()
            if os.fork() != 0:
                os._exit(0)
        os.write(w, b"%d\n" % os.getpid())
        os.close(w)
        forever()
    os.close(w)
    pid = int(os.read(r, 64).split()[0])
    if mode == "daemon":
        os.waitpid(child, 0)
    report(pid)
    forever()
'''

# The same escape from a compiled native action: a daemon in a session of
# its own, then no answer.
LINGER_C = r'''
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static void report(pid_t pid)
{
    char path[64], buf[1024];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "r");
    size_t n = f ? fread(buf, 1, sizeof buf - 1, f) : 0;
    if (f)
        fclose(f);
    buf[n] = '\0';
    char *p = strrchr(buf, ')');
    for (int field = 2; p && field < 22; field++)
        p = strchr(p + 1, ' ');
    printf("proc %d %.*s\n", (int)pid, p ? (int)strcspn(p + 1, " ") : 0, p ? p + 1 : "");
    fflush(stdout);
}

int main(void)
{
    char line[1 << 16];
    if (write(3, "{\"ok\":true}\n", 12) != 12)
        return 1;
    if (!fgets(line, sizeof line, stdin))
        return 0;
    report(getpid());
    int fds[2];
    if (pipe(fds) < 0)
        return 1;
    pid_t child = fork();
    if (child == 0) {
        setsid();
        if (fork() != 0)
            _exit(0);
        pid_t me = getpid();
        if (write(fds[1], &me, sizeof me) != sizeof me)
            _exit(1);
        for (;;)
            pause();
    }
    pid_t daemon = 0;
    if (read(fds[0], &daemon, sizeof daemon) != sizeof daemon)
        return 1;
    waitpid(child, NULL, 0);
    report(daemon);
    for (;;)
        pause();
}
'''


def proc_start_time(pid):
    """The start time (clock ticks since boot) of a live, non-zombie pid, or None."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError):
        return None
    return None if fields[0] in ("Z", "X") else fields[19]


def worker_pids(work_root):
    """pid -> cwd of every process whose cwd is a worker directory."""
    out = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            cwd = os.readlink("/proc/%s/cwd" % d)
        except OSError:
            continue
        if os.path.dirname(cwd) == work_root:
            out[int(d)] = cwd
    return out


@unittest.skipUnless(os.geteuid() == 0, "workers drop to worker-user only when wispd runs as root")
class WorkerIsolation(unittest.TestCase):
    def setUp(self):
        # wispd's own cwd: root's, 0755, as a service's is
        self.cwd = tempfile.mkdtemp(prefix="wisp-cwd-")
        self.addCleanup(shutil.rmtree, self.cwd, True)
        os.chmod(self.cwd, 0o755)
        # no WISP_GUEST_KEY: wispd writes a random one to DATA/guest.key
        self.w = Wispd(key=None, args=["--idle-evict-s", "600"], prefix=["env", "-C", self.cwd])
        self.addCleanup(self.w.cleanup)
        # the data dir reachable by the worker user, so the work dir is
        # DATA/work beside the store and the key, the case to defend
        os.chmod(self.w.tmp, 0o711)
        self.w.start()
        self.addCleanup(self.stop)
        self.data = os.path.realpath(self.w.data)
        with open(os.path.join(self.data, "guest.key")) as f:
            self.w.key = f.read().strip()
        self.work_root = os.path.realpath(os.path.join(self.data, "work"))
        for line in self.w.log().splitlines():  # main.c moves it where the data dir is not reachable
            if "is not reachable for user" in line and ": workers run in " in line:
                self.work_root = os.path.realpath(line.rsplit(": workers run in ", 1)[1].strip())
        self.assertEqual(self.work_root, os.path.join(self.data, "work"), self.w.log())

    def stop(self):
        if self.w.proc:
            self.w.stop()

    def put(self, name, exec_, **extra):
        body = {"exec": exec_}
        body.update(extra)
        r = self.w.api("PUT", "actions/%s?overwrite=true" % name, body)
        self.assertEqual(r.status, 200, r)

    def invoke(self, name, params=None, status=200):
        r = self.w.api("POST", "actions/%s?blocking=true" % name, params or {})
        self.assertEqual(r.status, status, r)
        return r.json()

    def test_worker_cannot_reach_outside_its_directory(self):
        self.put("holder", {"kind": "native", "code": HOLDER})
        holder = self.invoke("holder")["response"]["result"]["pid"]
        holder_dir = os.readlink("/proc/%d/cwd" % holder)
        self.assertEqual(os.path.dirname(holder_dir), self.work_root)
        self.assertTrue(os.path.exists(os.path.join(holder_dir, "exec")))  # its code
        wispd = self.w.proc.pid
        self.put("probe", {"kind": "python:3", "code": PROBE})
        # first a run that only says where it is
        me = self.invoke("probe")["response"]["result"]
        own = me["cwd"]
        self.assertEqual(os.path.dirname(own), self.work_root)
        self.assertNotEqual(own, holder_dir)
        targets = {
            "write": [os.path.join(own, "mine"),  # its own directory: allowed
                      os.path.join(self.data, "planted"), os.path.join(self.work_root, "planted"),
                      os.path.join(holder_dir, "planted"), os.path.join(holder_dir, "exec"),
                      "/etc/planted", os.path.join(self.cwd, "planted")],
            "read": [os.path.join(own, "mine"),
                     os.path.join(holder_dir, "exec"), os.path.join(self.data, "data.mdb"),
                     os.path.join(self.data, "lock.mdb"), os.path.join(self.data, "guest.key"),
                     "/proc/%d/environ" % holder, "/proc/%d/environ" % wispd,
                     "/proc/%d/mem" % holder, "/proc/%d/cwd/exec" % holder],
            "list": [own, holder_dir, self.work_root, self.data, "/proc/%d/cwd" % holder,
                     "/proc/%d/fd" % holder, "/proc/%d/fd" % wispd],
            "kill": [wispd, holder],
            "ptrace": [wispd, holder],
        }
        got = self.invoke("probe", targets)["response"]["result"]
        self.assertEqual(got["cwd"], own)  # the same warm worker
        self.assertNotEqual(got["uid"], 0)
        self.assertNotEqual(got["pid"], holder)
        # the control attempts succeed, so the refusals below are the kernel's
        self.assertEqual(got["write"][os.path.join(own, "mine")], "ok")
        self.assertEqual(got["read"][os.path.join(own, "mine")], "ok")
        self.assertEqual(got["list"][own], "ok")
        for what in ("write", "mkdir", "read", "list"):
            for path, outcome in got[what].items():
                if path.startswith(own):
                    continue
                with self.subTest(what=what, path=path):
                    self.assertIn(outcome, ("EACCES", "EPERM"), got)
        for target, outcome in got["kill"].items():
            with self.subTest(kill=target):
                self.assertEqual(outcome, "EPERM", got)
        for target, outcome in got["ptrace"].items():
            with self.subTest(ptrace=target):
                self.assertEqual(outcome, "EPERM", got)
        # nothing was planted; the sibling and wispd live on, untouched
        for d in (self.data, self.work_root, holder_dir, "/etc", self.cwd):
            self.assertFalse(os.path.exists(os.path.join(d, "planted")), d)
            self.assertFalse(os.path.exists(os.path.join(d, "planted.d")), d)
        with open(os.path.join(holder_dir, "exec")) as f:
            self.assertEqual(f.read(), HOLDER)
        self.assertEqual(self.invoke("holder")["response"]["result"]["pid"], holder)
        self.assertIsNone(self.w.proc.poll())

    def test_workers_run_as_distinct_users_in_private_directories(self):
        # two live workers of two actions, and the stem cells beside them
        self.put("holder", {"kind": "native", "code": HOLDER})
        self.put("probe", {"kind": "python:3", "code": PROBE})
        holder = self.invoke("holder")["response"]["result"]["pid"]
        probe = self.invoke("probe")["response"]["result"]
        live = worker_pids(self.work_root)
        self.assertIn(holder, live)
        self.assertIn(probe["pid"], live)
        uids = {}
        for pid, cwd in live.items():
            st = os.stat(cwd)
            with open("/proc/%d/status" % pid) as f:
                ids = dict(l.split(":", 1) for l in f.read().splitlines() if ":" in l)
            uid = int(ids["Uid"].split()[0])
            with self.subTest(pid=pid, cwd=cwd):
                self.assertNotEqual(uid, 0)
                self.assertEqual(st.st_uid, uid)  # its directory is its own ...
                self.assertEqual(st.st_mode & 0o077, 0)  # ... and no one else's
            uids.setdefault(uid, set()).add(cwd)
        for uid, dirs in uids.items():
            self.assertEqual(len(dirs), 1, "workers sharing uid %d: %s" % (uid, sorted(dirs)))
        self.assertGreaterEqual(len(uids), 2)

    def lingers(self, name, exec_, params):
        """Runs the action into its timeout; the processes it reported."""
        self.put(name, exec_, limits={"timeout": 1500})
        rec = self.invoke(name, params, status=502)
        self.assertEqual(rec["response"]["status"], "action developer error", rec)
        self.assertIn("exceeded its time limits of 1500 milliseconds", rec["response"]["result"]["error"])
        procs = []
        for line in rec["logs"]:
            text = line.split(": ", 1)[1] if ": " in line else line
            if text.startswith("proc "):
                _, pid, start = text.split()
                procs.append((int(pid), start))
        self.assertEqual(len(procs), 2, rec["logs"])  # the worker and what it left
        return procs

    def assert_gone(self, procs):
        for pid, start in procs:
            wait_for(lambda: proc_start_time(pid) != start, 15,
                     "pid %d (started at %s) to be gone after the timeout" % (pid, start))

    def test_timeout_leaves_no_process_of_the_worker(self):
        for mode in ("fork", "ignore_term", "daemon"):
            with self.subTest(mode=mode):
                procs = self.lingers("linger-" + mode.replace("_", "-"),
                                     {"kind": "python:3", "code": LINGER}, {"mode": mode})
                self.assert_gone(procs)
        cc = shutil.which("cc")
        if cc:
            tmp = tempfile.mkdtemp(prefix="wisp-cc-")
            try:
                src = os.path.join(tmp, "linger.c")
                with open(src, "w") as f:
                    f.write(LINGER_C)
                subprocess.run([cc, "-O1", "-o", os.path.join(tmp, "linger"), src], check=True,
                               stdin=subprocess.DEVNULL)
                with open(os.path.join(tmp, "linger"), "rb") as f:
                    code = base64.b64encode(f.read()).decode()
            finally:
                shutil.rmtree(tmp, ignore_errors=True)
            with self.subTest(mode="native daemon"):
                procs = self.lingers("linger-native", {"kind": "native", "code": code, "binary": True}, {})
                self.assert_gone(procs)
        # the action runs again, on a new worker
        rec = self.invoke("linger-fork", {"mode": "fork"}, status=502)
        self.assertIn("exceeded its time limits", rec["response"]["result"]["error"])

    def test_uid_a_killed_wispd_left_is_cleaned_before_reuse(self):
        """wispd killed with SIGKILL leaves a worker's daemon running as the
        worker's uid, and that uid's lock file marked. The next wispd that
        comes to the uid kills the daemon before it gives the uid out."""
        self.put("linger-daemon", {"kind": "python:3", "code": LINGER}, limits={"timeout": 60000})
        r = self.w.api("POST", "actions/linger-daemon", {"mode": "daemon"})
        self.assertEqual(r.status, 202, r)

        def status(pid):
            with open("/proc/%d/status" % pid) as f:
                return dict(l.split(":", 1) for l in f.read().splitlines() if ":" in l)

        def daemon_of_worker():
            """(daemon pid, uid): beside a worker (the leader of its process
            group) in its directory, a process of another session, which
            leads neither (its parent made the session and left)."""
            by_dir = {}
            for pid, cwd in worker_pids(self.work_root).items():
                by_dir.setdefault(cwd, []).append(pid)
            for pids in by_dir.values():
                try:
                    leaders = [p for p in pids if os.getpgid(p) == p]
                    others = [p for p in pids if os.getpgid(p) != p and os.getsid(p) != p]
                    if len(pids) == 2 and len(leaders) == 1 and len(others) == 1 and \
                            os.getsid(others[0]) != os.getsid(leaders[0]):
                        return others[0], int(status(others[0])["Uid"].split()[0])
                except (OSError, KeyError):
                    pass
            return None
        daemon, uid = wait_for(daemon_of_worker, 30, "the action's worker and its daemon")
        start = proc_start_time(daemon)
        lock = "/run/wisp-worker-uids/%d" % uid
        self.w.kill9()  # its worker dies with it (PR_SET_PDEATHSIG), not the daemon
        with open(lock) as f:
            self.assertNotEqual(f.read(), "", "the lock of a uid in use names its wispd")
        self.assertEqual(proc_start_time(daemon), start, "the daemon outlives its wispd")

        # The uids below are held here while the next wispd starts, so the
        # first free one it finds is this one (or another wispd of the host
        # takes it first: that one must clean it as well).
        import fcntl
        held = []
        for u in range(70000, uid):
            fd = os.open("/run/wisp-worker-uids/%d" % u, os.O_RDWR | os.O_CREAT, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                held.append(fd)
            except OSError:
                os.close(fd)
        try:
            self.w.start()
            self.put("echo", {"kind": "python:3", "code": "def main(a):\n    return a\n"})
            self.assertEqual(self.invoke("echo", {"x": 1})["response"]["result"], {"x": 1})
            wait_for(lambda: proc_start_time(daemon) != start, 30,
                     "the daemon of the killed wispd's worker (uid %d) to be killed" % uid)
        finally:
            for fd in held:
                os.close(fd)
        log = self.w.log()
        self.assertNotIn("cannot kill", log, log)
        self.assertNotIn("stays taken", log, log)


if __name__ == "__main__":
    unittest.main()
