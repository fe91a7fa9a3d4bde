"""Fault tests of the worker pool (issue 16, 1.5), against the real wispd
with real workers: actions that crash mid-activation (os._exit in python,
SIGSEGV in a native C program), hang past their time limit, flood their
logs (python and native, big lines and empty ones), fork without end (the
cgroup pids limit, worker-pids-max) or eat memory past limits.memory (the
cgroup OOM killer).

Each fault runs WARMUP + ROUNDS times. Every round checks that the
activation gets OpenWhisk's error text, that the pool recovers (the next
activation of the same action and one of another action succeed), and that
no process of the failed worker stays behind (its process group and its
cgroup leaf). wispd's resident memory (VmRSS, /proc/PID/status) is sampled
after the warm-up rounds (the allocator's caches full) and after the last;
the growth must stay under a generous ceiling. That is a bound on memory
growth, a leak check, not a timing assertion; nothing here measures time.

Where workers run without cgroup leaves the fork and OOM cases skip, with
the reason."""
import base64
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "integration"))
from harness import Wispd, wait_for  # noqa: E402

ROUNDS = int(os.environ.get("WISP_FAULT_ROUNDS", "20"))
WARMUP = 3               # rounds before the first sample: the allocator's caches fill
RSS_SLACK_KB = 8 * 1024  # allowed growth of VmRSS over ROUNDS rounds
PIDS_MAX = 64            # --worker-pids-max: a fork bomb stops there
# ASan keeps freed blocks in a quarantine (256 MB by default) on purpose,
# so VmRSS would measure the quarantine; it is off for these daemons, and
# LeakSanitizer still reports, at wispd's exit, every block never freed.
MEM_ENV = {"ASAN_OPTIONS": ":".join(filter(None, [os.environ.get("ASAN_OPTIONS", ""),
                                                   "quarantine_size_mb=0"])),
           # glibc raises its mmap threshold after a big block is freed (up to
           # 32 MB); big blocks then come from the heap, and what they leave
           # stays in VmRSS. Fixed, VmRSS measures what wispd holds.
           "GLIBC_TUNABLES": "glibc.malloc.mmap_threshold=262144"}

CRASHED = "The action did not produce a valid response and exited unexpectedly."
OOM = "The action exhausted its memory and was aborted."
TRUNCATED = "Logs were truncated because the total bytes size exceeds the limit of %d bytes."
FLOODED = re.compile(r"^The action flooded its output \(more than \d+ bytes\) and was stopped\.$")
LOG_RE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+Z +(stdout|stderr): (.*)$", re.S)

# Every fault action logs "pid=N cg=PATH" first: its worker's process (the
# head of its process group) and cgroup leaf, for the leftover checks.
PY_FAULTS = r'''
import os, sys, time

def where():
    cg = ""
    try:
        for line in open("/proc/self/cgroup"):
            n, ctrls, path = line.rstrip("\n").split(":", 2)
            if "pids" in ctrls.split(",") or (n == "0" and not ctrls and not cg):
                cg = ("/sys/fs/cgroup/pids" if ctrls else "/sys/fs/cgroup") + path
    except OSError:
        pass
    print("pid=%d cg=%s" % (os.getpid(), cg), flush=True)

def bomb(escape):
    """Forks until the pids limit answers EAGAIN; every child forks too."""
    first, n = True, 0
    while True:
        try:
            child = os.fork()
        except OSError:
            if first and n:
                print("forked=%d" % n, flush=True)
                first = False
            time.sleep(0.01)
            continue
        if child == 0:
            if escape:
                os.setsid()  # out of the worker's process group (not its cgroup)
            first = False
            n = 0
        else:
            n += 1

def main(a):
    mode = a.get("mode")
    where()
    if mode == "exit":
        os._exit(3)
    if mode == "hang":
        time.sleep(3600)
    if mode == "flood":  # 1 MB lines as fast as the pipe takes them
        line = "f" * ((1 << 20) - 1) + "\n"
        while True:
            sys.stdout.write(line)
    if mode == "blank":  # empty lines: many log lines for few bytes
        chunk = "\n" * (1 << 20)
        while True:
            sys.stdout.write(chunk)
    if mode == "late":  # answers, and a thread it leaves behind floods
        import threading
        def flood():
            line = "l" * ((1 << 20) - 1) + "\n"
            while True:
                sys.stdout.write(line)
        threading.Thread(target=flood, daemon=True).start()
    if mode == "chatty":  # 12 MB, under the flood guard: truncated, then an answer
        line = "c" * ((1 << 20) - 1) + "\n"
        for _ in range(12):
            sys.stdout.write(line)
        sys.stdout.flush()
    if mode in ("fork", "escape"):
        bomb(mode == "escape")
    if mode == "eat":
        held = []
        while True:
            held.append(b"e" * (16 << 20))  # written, so charged
    return {"ok": mode}
'''

PY_OTHER = "def main(a):\n    return {'other': True}\n"

# A native actionloop program: the ack, then one answer per line on fd 3.
C_FAULTS = r'''
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char line[1 << 20], big[1 << 20];

static void out(int fd, const char *p, size_t n)
{
    while (n) {
        ssize_t w = write(fd, p, n);
        if (w <= 0)
            _exit(1);
        p += w;
        n -= (size_t)w;
    }
}

int main(void)
{
    FILE *ctl = fdopen(3, "w");
    if (getenv("__OW_WAIT_FOR_ACK")) {
        fputs("{\"ok\":true}\n", ctl);
        fflush(ctl);
    }
    memset(big, 'n', sizeof big - 1);
    big[sizeof big - 1] = '\n';
    while (fgets(line, sizeof line, stdin)) {
        printf("pid=%d cg=\n", (int)getpid());
        fflush(stdout);
        if (strstr(line, "\"mode\":\"segv\"")) {
            volatile int *p = NULL;
            *p = 1;
        }
        if (strstr(line, "\"mode\":\"flood\"")) /* both streams, 1 MB lines */
            for (;;) {
                out(1, big, sizeof big);
                out(2, big, sizeof big);
            }
        if (strstr(line, "\"mode\":\"blank\"")) {
            memset(big, '\n', sizeof big);
            for (;;)
                out(2, big, sizeof big);
        }
        fputs("{\"ok\":\"native\"}\n", ctl);
        fflush(ctl);
    }
    return 0;
}
'''


def b64(data):
    return base64.b64encode(data).decode()


def status_kb(pid, key):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    raise AssertionError("no %s in /proc/%d/status" % (key, pid))


def group_members(pgid):
    """PIDs whose process group is pgid (zombies included: not yet reaped)."""
    found = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % d) as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid:
            found.append(int(d))
    return found


def cgroup_procs(path):
    """The processes in a cgroup leaf; [] once it is gone."""
    try:
        with open(os.path.join(path, "cgroup.procs")) as f:
            return [int(x) for x in f.read().split()]
    except OSError:
        return []


class WorkerFaults(unittest.TestCase):
    """One wispd per test; its RSS figures go to stderr."""

    @classmethod
    def setUpClass(cls):
        cls.ccdir = tempfile.mkdtemp(prefix="wisp-cc-")
        src = os.path.join(cls.ccdir, "faults.c")
        with open(src, "w") as f:
            f.write(C_FAULTS)
        exe = os.path.join(cls.ccdir, "faults")
        subprocess.run(["cc", "-O1", "-o", exe, src], check=True)
        with open(exe, "rb") as f:
            cls.native = f.read()

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.ccdir, ignore_errors=True)

    def setUp(self):
        self.t0 = time.monotonic()
        self.w = Wispd(args=["--prewarm", "python:3=1", "--worker-pids-max", str(PIDS_MAX),
                             "--concurrent-invocations", "1000"], env=MEM_ENV).start()
        # workers run unprivileged and exec native programs from DATA/work
        os.chmod(self.w.tmp, 0o711)
        self.cgroups = "workers run in cgroup" in self.w.log()
        self.put("faults", {"kind": "python:3", "code": PY_FAULTS})
        self.put("other", {"kind": "python:3", "code": PY_OTHER})
        self.put("cfaults", {"kind": "native", "code": b64(self.native), "binary": True})

    def tearDown(self):
        try:
            if self.w.proc:
                self.w.stop()
        finally:
            self.w.cleanup()

    # -- helpers ------------------------------------------------------------
    def put(self, name, exec_, limits=None):
        body = {"exec": exec_}
        if limits:
            body["limits"] = limits
        r = self.w.api("PUT", "actions/%s?overwrite=true" % name, body)
        self.assertEqual(r.status, 200, r)

    def limit(self, name, exec_name, **limits):
        """Another action on the same code with its own limits."""
        src = {"faults": {"kind": "python:3", "code": PY_FAULTS},
               "cfaults": {"kind": "native", "code": b64(self.native), "binary": True}}[exec_name]
        self.put(name, src, limits)

    def invoke(self, name, params):
        return self.w.api("POST", "actions/%s?blocking=true" % name, params)

    def invoke_ok(self, name, params, result):
        r = self.invoke(name, params)
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json()["response"]["result"], result, r)

    def failed(self, name, mode):
        """The fault's record: a developer error, as OpenWhisk reports it."""
        r = self.invoke(name, {"mode": mode})
        self.assertEqual(r.status, 502, r)
        rec = r.json()
        self.assertEqual(rec["response"]["status"], "action developer error", rec["response"])
        self.assertIs(rec["response"]["success"], False)
        return rec

    def error(self, rec):
        return rec["response"]["result"].get("error")

    def worker_of(self, rec):
        """(pid, cgroup leaf) from the fault's first log line."""
        for line in rec["logs"]:
            m = LOG_RE.match(line)
            self.assertIsNotNone(m, "log line not in OpenWhisk's form: %r" % line[:200])
            w = re.match(r"pid=(\d+) cg=(\S*)$", m.group(2))
            if w:
                return int(w.group(1)), w.group(2)
        raise AssertionError("no pid line in the logs: %r" % [l[:100] for l in rec["logs"][:5]])

    def assert_gone(self, pid, cg):
        """Nothing of the worker stays: its group, its cgroup leaf."""
        def gone():
            if os.path.exists("/proc/%d" % pid):  # cheap first: reaped yet?
                return False
            return not group_members(pid) and not (cg and (cgroup_procs(cg) or os.path.isdir(cg)))
        try:
            wait_for(gone, 60, "worker %d and its processes to go" % pid)
        except AssertionError:
            raise AssertionError("left behind by worker %d: group %s, cgroup %s %s" % (
                pid, group_members(pid), cg, cgroup_procs(cg) if cg else "-"))

    def workers_metric(self):
        body = self.w.request("GET", "/metrics", auth=False).body
        m = re.search(r'^wisp_pool_workers\{state="all"\} (\d+)$', body, re.M)
        self.assertIsNotNone(m, body)
        return int(m.group(1))

    def leaves(self):
        """This wispd's cgroup leaves (v1 pids or v2), [] without cgroups."""
        pid = self.w.proc.pid
        base = None
        with open("/proc/%d/cgroup" % pid) as f:
            for line in f:
                n, ctrls, path = line.rstrip("\n").split(":", 2)
                if "pids" in ctrls.split(","):
                    root = "/sys/fs/cgroup/pids"
                    base = root + path if os.path.isdir(root + path) else root
                elif n == "0" and not ctrls and base is None and \
                        os.path.exists("/sys/fs/cgroup/cgroup.controllers"):
                    base = "/sys/fs/cgroup" + path
        parent = os.path.join(base or "/nonexistent", "wisp-%d" % pid)
        if not os.path.isdir(parent):
            return []
        return [os.path.join(parent, d) for d in os.listdir(parent)
                if os.path.isdir(os.path.join(parent, d))]

    def assert_no_stray_leaves(self):
        """Every leaf left belongs to a live worker and holds its process."""
        if not self.cgroups:
            return

        def settled():
            leaves = self.leaves()
            return len(leaves) == self.workers_metric() and all(cgroup_procs(l) for l in leaves)
        try:
            wait_for(settled, 60, "the cgroup leaves to match the live workers")
        except AssertionError:
            raise AssertionError("leaves %s, %d workers" % (
                {l: cgroup_procs(l) for l in self.leaves()}, self.workers_metric()))

    def rss(self):
        return status_kb(self.w.proc.pid, "VmRSS")

    def rounds(self, fault, check, recover):
        """Runs fault() WARMUP + ROUNDS times, check(record) and recover()
        after each; VmRSS is sampled after the warm-up and at the end."""
        start = self.rss()
        before = None
        for i in range(WARMUP + ROUNDS):
            rec = fault()
            check(rec)
            self.assert_gone(*self.worker_of(rec))
            recover()
            if i + 1 == WARMUP:
                before = self.rss()
        self.assert_no_stray_leaves()
        self.check_rss(start, before)

    def check_rss(self, start, before):
        after = self.rss()
        print("\n%s: VmRSS %d kB at start, %d kB after %d warm-up rounds, %d kB after %d more "
              "(RssAnon %d kB) [%.0f s]" % (self._testMethodName, start, before, WARMUP, after,
                                            ROUNDS, status_kb(self.w.proc.pid, "RssAnon"),
                                            time.monotonic() - self.t0),
              file=sys.stderr)
        self.assertLessEqual(after, before + RSS_SLACK_KB,
                             "wispd grew from %d to %d kB over %d rounds" % (before, after, ROUNDS))

    def recover_py(self):
        self.invoke_ok("faults", {"mode": "fine"}, {"ok": "fine"})
        self.invoke_ok("other", {}, {"other": True})

    def recover_native(self):
        self.invoke_ok("cfaults", {"mode": "fine"}, {"ok": "native"})
        self.invoke_ok("other", {}, {"other": True})

    def need_cgroups(self):
        if not self.cgroups:
            self.skipTest("workers run without cgroup leaves here (no writable hierarchy with "
                          "memory and pids): no pids limit, no OOM killer per worker")

    # -- the faults -----------------------------------------------------------
    def test_python_exit_mid_activation(self):
        def check(rec):
            self.assertEqual(self.error(rec), CRASHED)
        self.rounds(lambda: self.failed("faults", "exit"), check, self.recover_py)

    def test_native_sigsegv_mid_activation(self):
        def check(rec):
            self.assertEqual(self.error(rec), CRASHED)
        self.rounds(lambda: self.failed("cfaults", "segv"), check, self.recover_native)

    def test_hang_past_the_time_limit(self):
        self.limit("hang", "faults", timeout=1000)
        # the clock covers the start and init too (OpenWhisk bounds /init)
        texts = ("The action exceeded its time limits of 1000 milliseconds.",
                 "The action exceeded its time limits of 1000 milliseconds during initialization.")

        def check(rec):
            self.assertIn(self.error(rec), texts)
            self.assertTrue(any(a == {"key": "timeout", "value": True} for a in rec["annotations"]),
                            rec["annotations"])

        def recover():
            self.invoke_ok("hang", {"mode": "fine"}, {"ok": "fine"})
            self.invoke_ok("other", {}, {"other": True})
        self.rounds(lambda: self.failed("hang", "hang"), check, recover)

    def check_flooded(self, rec, limit):
        """Stopped by the flood guard; the logs kept are bounded by the
        limit and end with OpenWhisk's truncation notice."""
        self.assertRegex(self.error(rec), FLOODED)
        logs = rec["logs"]
        self.assertIn(TRUNCATED % limit, logs[-1])
        self.assertLessEqual(sum(len(l) for l in logs), limit + 200)

    def test_python_log_flood(self):
        self.limit("flood", "faults", logs=1, timeout=60000)
        self.rounds(lambda: self.failed("flood", "flood"),
                    lambda rec: self.check_flooded(rec, 1 << 20), self.recover_py)

    def test_python_log_flood_of_empty_lines(self):
        self.limit("blank", "faults", logs=1, timeout=60000)
        self.rounds(lambda: self.failed("blank", "blank"),
                    lambda rec: self.check_flooded(rec, 1 << 20), self.recover_py)

    def test_python_flood_after_the_answer(self):
        """A thread left behind floods while no activation runs: nobody
        keeps its lines, and past the flood bound the worker is stopped."""
        self.limit("late", "faults", logs=1, timeout=60000)

        def fault():
            r = self.invoke("late", {"mode": "late"})
            self.assertIn(r.status, (200, 502), r)
            return r.json()

        def check(rec):
            # the answer usually comes first; a thread quicker than its
            # launcher floods the activation itself
            if not rec["response"]["success"]:
                self.check_flooded(rec, 1 << 20)
            else:
                self.assertEqual(rec["response"]["result"], {"ok": "late"})

        def recover():
            self.invoke_ok("late", {"mode": "fine"}, {"ok": "fine"})
            self.invoke_ok("other", {}, {"other": True})
        self.rounds(fault, check, recover)

    def test_python_logs_past_the_limit_are_truncated(self):
        self.limit("chatty", "faults", logs=1, timeout=60000)

        def fault():
            r = self.invoke("chatty", {"mode": "chatty"})
            self.assertEqual(r.status, 200, r)
            return r.json()

        def check(rec):
            self.assertEqual(rec["response"]["result"], {"ok": "chatty"})
            self.assertIn(TRUNCATED % (1 << 20), rec["logs"][-1])
            self.assertLessEqual(sum(len(l) for l in rec["logs"]), (1 << 20) + 200)

        def recover():  # the worker stays: only another action's run
            self.invoke_ok("other", {}, {"other": True})
        start = self.rss()
        for i in range(WARMUP + ROUNDS):
            check(fault())
            recover()
            if i + 1 == WARMUP:
                before = self.rss()
        self.check_rss(start, before)

    def test_native_log_flood(self):
        self.limit("cflood", "cfaults", logs=1, timeout=60000)
        for mode in ("flood", "blank"):
            self.rounds(lambda: self.failed("cflood", mode),
                        lambda rec: self.check_flooded(rec, 1 << 20), self.recover_native)

    def test_fork_bomb_meets_the_pids_limit(self):
        self.need_cgroups()
        self.limit("bomb", "faults", timeout=2000)
        modes = iter(["fork", "escape"] * (WARMUP + ROUNDS))

        def check(rec):
            self.assertIn(self.error(rec), (
                "The action exceeded its time limits of 2000 milliseconds.",
                "The action exceeded its time limits of 2000 milliseconds during initialization."))
            forked = [int(m.group(1)) for l in rec["logs"]
                      for m in [re.search(r"stdout: forked=(\d+)$", l)] if m]
            if forked:  # the first process saw EAGAIN before the time limit
                self.assertLess(forked[0], PIDS_MAX)

        def recover():
            self.invoke_ok("bomb", {"mode": "fine"}, {"ok": "fine"})
            self.invoke_ok("other", {}, {"other": True})
        self.rounds(lambda: self.failed("bomb", next(modes)), check, recover)

    def test_memory_past_the_limit_is_an_oom(self):
        self.need_cgroups()
        self.limit("eat", "faults", memory=128, timeout=60000)

        def check(rec):
            self.assertEqual(self.error(rec), OOM)

        def recover():
            self.invoke_ok("eat", {"mode": "fine"}, {"ok": "fine"})
            self.invoke_ok("other", {}, {"other": True})
        self.rounds(lambda: self.failed("eat", "eat"), check, recover)


if __name__ == "__main__":
    unittest.main()
