"""Fault tests of the HTTP server (issue 16, 1.7), against the real wispd:
10,000 idle connections (http-max-conns bounds what it accepts, the rest
get 503), connections past the file descriptor limit, slowloris heads
(a byte at a time: the head as a whole has http-idle-timeout-s), oversized
heads (431), pipelined garbage (400, then a close), bodies past the bound
(413), HTTP/2 request lines (505), and clients that send requests and never
read the replies (one reply per connection, at most HTTP_HELD_DEFAULT of
them across connections, closed when they do not move).

Through all of it a well-behaved client keeps asking for /ping and a
blocking invoke on its own keep-alive connection, and every answer must
come. Every refusal is counted in /metrics (wisp_http_refusals_total by
reason, wisp_http_connections_refused_total, wisp_http_accept_errors_total)
and each test checks the counts against what its clients saw. wispd's
resident memory (VmRSS) is sampled after a warm-up round and after the
last; its growth must stay under a generous ceiling (a leak check, not a
timing assertion: nothing here measures time)."""
import base64
import http.client
import json
import os
import re
import resource
import select
import shutil
import socket
import struct
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "integration"))
from harness import GUEST_KEY, Wispd, wait_for  # noqa: E402

IDLE = int(os.environ.get("WISP_FAULT_IDLE_CONNS", "10000"))
ROUNDS = int(os.environ.get("WISP_FAULT_HTTP_ROUNDS", "3"))  # after one warm-up round
RSS_SLACK_KB = 8 * 1024
HELD_MAX = 32 << 20  # HTTP_HELD_DEFAULT (core/http.h)
# ASan keeps freed blocks in a quarantine (256 MB by default) on purpose,
# so VmRSS would measure the quarantine; it is off for these daemons, and
# LeakSanitizer still reports, at wispd's exit, every block never freed.
MEM_ENV = {"ASAN_OPTIONS": ":".join(filter(None, [os.environ.get("ASAN_OPTIONS", ""),
                                                   "quarantine_size_mb=0"])),
           # glibc raises its mmap threshold after a big block is freed (up to
           # 32 MB); big blocks then come from the heap, and what they leave
           # stays in VmRSS. Fixed, VmRSS measures what wispd holds.
           "GLIBC_TUNABLES": "glibc.malloc.mmap_threshold=262144"}
# Built with AddressSanitizer: its allocator keeps each size class's freed
# memory and gives none back, so after the churn of thousands of
# connections VmRSS shows the classes' high-water marks, which move by 20 MB
# from round to round with nothing leaked (seen: 36 to 71 MB with the
# connections closed). Where that churn is the test, the VmRSS bound is the
# plain build's to check; LeakSanitizer still checks every block at exit.
ASAN = b"__asan_init" in open(os.environ.get("WISPD", "wispd"), "rb").read() \
    if os.path.isfile(os.environ.get("WISPD", "")) else False
AUTH = "Basic " + base64.b64encode(GUEST_KEY.encode()).decode()
PY_ECHO = "def main(a):\n    return {'echo': a.get('n')}\n"


def status_kb(pid, key="VmRSS"):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    raise AssertionError("no %s in /proc/%d/status" % (key, pid))


def metrics(conn):
    """/metrics over a keep-alive connection: {"name{labels}": value}."""
    conn.request("GET", "/metrics")
    r = conn.getresponse()
    body = r.read().decode()
    if r.status != 200:
        raise AssertionError("/metrics: %d %s" % (r.status, body[:200]))
    return {m.group(1): int(m.group(2)) for m in re.finditer(r"^(\S+) (\d+)$", body, re.M)}


def refusals(m, reason):
    return m['wisp_http_refusals_total{reason="%s"}' % reason]


def changed(m0, m1):
    """The refusal and request counters that moved from m0 to m1."""
    return {k: m1[k] - m0.get(k, 0) for k in m1
            if k.startswith(("wisp_http_refusals", "wisp_http_requests", "wisp_http_conn"))
            and m1[k] != m0.get(k, 0)}


def hard_close(s):
    """Closes with a reset: no TIME_WAIT left for tens of thousands of ports."""
    try:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    except OSError:
        pass
    s.close()


def read_reply(s, timeout=60, data=b""):
    """Reads one reply head and its Content-Length body from a raw socket
    (data: bytes of it read before): (status, body, the bytes after it),
    or (None, b"", what came) at EOF or reset."""
    s.settimeout(timeout)
    try:
        while b"\r\n\r\n" not in data:
            got = s.recv(65536)
            if not got:
                return None, b"", data
            data += got
        head, rest = data.split(b"\r\n\r\n", 1)
        n = int(re.search(rb"(?i)\r\ncontent-length: *(\d+)", head).group(1))
        while len(rest) < n:
            got = s.recv(65536)
            if not got:
                break
            rest += got
        return int(head.split()[1]), rest[:n], rest[n:]
    except (ConnectionResetError, BrokenPipeError):
        return None, b"", data


def closed_by_peer(s, timeout=60):
    """True once the server closed s (EOF or reset), whatever it sent first."""
    s.settimeout(timeout)
    try:
        while s.recv(65536):
            pass
    except (ConnectionResetError, BrokenPipeError):
        pass
    return True


class GoodClient(threading.Thread):
    """Asks for /ping and a blocking invoke on one keep-alive connection,
    over and over; counts answers and failures. A keep-alive connection the
    server closed while it was idle is opened again (what any client does)."""

    def __init__(self, port):
        super().__init__(daemon=True)
        self.port = port
        self.ok = 0
        self.failures = []
        self.reconnects = 0
        self.stopping = threading.Event()
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        self.conn.connect()  # before the flood: its slot is taken

    def ask(self, method, path, body=None):
        headers = {"Authorization": AUTH, "Content-Type": "application/json"}
        for attempt in (0, 1):
            try:
                self.conn.request(method, path, body=body, headers=headers)
                r = self.conn.getresponse()
                return r.status, r.read()
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                if attempt:
                    raise
                self.reconnects += 1
                self.conn.close()
                self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=120)

    def run(self):
        n = 0
        while not self.stopping.is_set():
            n += 1
            try:
                st, body = self.ask("GET", "/ping")
                if (st, body) != (200, b"pong"):
                    self.failures.append(("ping", st, body[:200]))
                st, body = self.ask("POST", "/api/v1/namespaces/_/actions/echo?blocking=true"
                                    "&result=true", json.dumps({"n": n}))
                if st != 200 or json.loads(body) != {"echo": n}:
                    self.failures.append(("invoke", st, body[:200]))
                else:
                    self.ok += 1
            except Exception as e:  # noqa: BLE001 - every failure is reported
                self.failures.append(("exception", repr(e)))
                return
            self.stopping.wait(0.02)

    def stop(self):
        self.stopping.set()
        self.join(180)
        self.conn.close()


class HttpFaults(unittest.TestCase):
    def start(self, *args, prefix=()):
        self.w = Wispd(args=["--prewarm", "python:3=1"] + list(args), env=MEM_ENV,
                       prefix=prefix).start()
        r = self.w.api("PUT", "actions/echo", {"exec": {"kind": "python:3", "code": PY_ECHO}})
        self.assertEqual(r.status, 200, r)
        self.good = GoodClient(self.w.port)
        self.probe = http.client.HTTPConnection("127.0.0.1", self.w.port, timeout=120)
        self.probe.connect()
        self.good.start()
        self.wait_good()
        return self.w

    def tearDown(self):
        w = getattr(self, "w", None)
        try:
            if getattr(self, "good", None):
                self.good.stop()
            if getattr(self, "probe", None):
                self.probe.close()
            if w and w.proc:
                w.stop()
        finally:
            if w:
                w.cleanup()

    def metrics(self):
        """Over the probe's keep-alive connection; opened again if wispd
        closed it while it was idle (the short idle timeouts here)."""
        try:
            return metrics(self.probe)
        except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
            self.probe.close()
            self.probe = http.client.HTTPConnection("127.0.0.1", self.w.port, timeout=120)
            return metrics(self.probe)

    def rss(self):
        return status_kb(self.w.proc.pid)

    def wait_good(self):
        """The good client got at least one more answer from here on."""
        mark = self.good.ok
        wait_for(lambda: self.good.ok > mark or self.good.failures, 120, "an answer to the good client")
        self.assertEqual(self.good.failures, [])

    def finish(self, name, before, extra="", after=None, rounds=ROUNDS, rss_bound=True):
        after = after or self.rss()
        self.wait_good()
        self.good.stop()
        self.assertEqual(self.good.failures, [])
        self.assertGreater(self.good.ok, 0)
        print("\n%s: VmRSS %d kB after the warm-up round, %d kB after %d more; the good client "
              "got %d answers (reconnected %d times)%s" % (name, before, after, rounds,
                                                            self.good.ok, self.good.reconnects,
                                                            extra), file=sys.stderr)
        if rss_bound:
            self.assertLessEqual(after, before + RSS_SLACK_KB,
                                 "wispd grew from %d to %d kB over %d rounds" % (before, after, rounds))
        self.good = None

    # -- 10,000 idle connections ------------------------------------------------
    def raise_nofile(self, need):
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        if soft >= need:
            return
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (max(need, hard), max(need, hard)))
        except (ValueError, OSError):
            try:
                resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
            except (ValueError, OSError):
                pass
        if resource.getrlimit(resource.RLIMIT_NOFILE)[0] < need:
            self.skipTest("RLIMIT_NOFILE cannot reach %d here (hard limit %d)" % (need, hard))

    def taken(self, m, m0):
        """Connections wispd accepted or refused since m0."""
        return (m["wisp_http_connections_accepted_total"] - m0["wisp_http_connections_accepted_total"]
                + m["wisp_http_connections_refused_total"] - m0["wisp_http_connections_refused_total"])

    def open_many(self, n, batch=256):
        """n connections, connected, each accepted or refused by wispd. In
        batches below the listen backlog (511): a connection that finds the
        kernel's accept queue full can be dropped there while the client
        counts it as connected, and wispd would never see it."""
        socks = []
        m0 = self.metrics()
        while len(socks) < n:
            p = select.poll()
            new = []
            for _ in range(min(batch, n - len(socks))):
                s = socket.socket()
                s.setblocking(False)
                try:
                    s.connect(("127.0.0.1", self.w.port))
                except BlockingIOError:
                    pass
                new.append(s)
                p.register(s, select.POLLOUT)
            pending = {s.fileno() for s in new}

            def connected():
                for fd, ev in p.poll(100):
                    pending.discard(fd)
                    p.unregister(fd)
                return not pending
            wait_for(connected, 120, "%d connects" % len(new))
            for s in new:
                err = s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                self.assertEqual(err, 0, os.strerror(err))
            socks += new
            wait_for(lambda: self.taken(self.metrics(), m0) >= len(socks), 120,
                     "wispd to take or refuse %d connections" % len(socks))
        return socks

    def split_refused(self, socks, expect_refused, text):
        """Waits until expect_refused of socks got wispd's 503 with text and
        a close; returns (refused, still open)."""
        p = select.poll()
        for s in socks:
            p.register(s, select.POLLIN)
        by_fd = {s.fileno(): s for s in socks}
        refused = {}

        def enough():
            for fd, ev in p.poll(100):
                p.unregister(fd)
                s = by_fd[fd]
                st, body, _ = read_reply(s, 10)
                self.assertEqual(st, 503, body)
                self.assertEqual(json.loads(body)["error"], text)
                refused[fd] = s
            return len(refused) >= expect_refused
        wait_for(enough, 120, "%d connections refused with 503" % expect_refused)
        return list(refused.values()), [s for fd, s in by_fd.items() if fd not in refused]

    def test_ten_thousand_idle_connections(self):
        max_conns = 8192  # most of them held open, the rest refused
        self.raise_nofile(IDLE + 1000)
        self.start("--http-max-conns", str(max_conns), "--http-idle-timeout-s", "600")
        figures = []
        before = None
        for rnd in range(ROUNDS + 1):
            m0 = self.metrics()
            open0 = m0["wisp_http_connections_open"]  # the good client and the probe
            socks = self.open_many(IDLE)
            m1 = self.metrics()
            self.assertEqual(self.taken(m1, m0), IDLE)
            accepted = m1["wisp_http_connections_accepted_total"] - m0["wisp_http_connections_accepted_total"]
            refused = m1["wisp_http_connections_refused_total"] - m0["wisp_http_connections_refused_total"]
            # http-max-conns, exactly: none of the idle ones closes (600 s)
            self.assertEqual(accepted, max_conns - open0)
            self.assertEqual(refused, IDLE - accepted)
            self.assertEqual(m1["wisp_http_connections_open"], max_conns)
            got503, idle = self.split_refused(socks, refused, "Too many connections.")
            self.assertEqual(len(got503), refused)
            self.assertEqual(len(idle), accepted)
            self.wait_good()  # served all the while, on its own connection
            rss_full = self.rss()
            for s in socks:
                hard_close(s)
            wait_for(lambda: self.metrics()["wisp_http_connections_open"] == open0, 120,
                     "the idle connections to be closed")
            rss_closed = self.rss()
            figures.append((accepted, refused, rss_full, rss_closed))
            if rnd < ROUNDS:
                before = max(before or 0, rss_full, rss_closed)
        # The last round's highest figure against the highest of every round
        # before it, open or closed: closing 8,000 at once leaves freed read
        # buffers that the allocator keeps and reuses as it likes. Under ASan
        # on a loaded 2-core machine one run measured, open / closed, 39.9 /
        # 44.0, 44.3 / 60.0, 43.3 / 59.9, 59.9 / 60.0 MB: a plateau reached
        # in round two, which says nothing about a leak. A leak of a kilobyte
        # per connection would top every round before by 8 MB.
        self.finish(self._testMethodName, before, "; per round (accepted, refused, VmRSS kB with "
                    "all open, once closed): %s%s" % (figures, "; VmRSS not bounded under ASan"
                                                       if ASAN else ""),
                    after=max(rss_full, rss_closed), rounds=ROUNDS, rss_bound=not ASAN)

    def test_connections_past_the_fd_limit_are_refused(self):
        """More connections allowed than file descriptors: accept() fails
        with EMFILE. Each such connection is answered 503 through the spare
        descriptor instead of the loop spinning on it."""
        n = 600
        if not shutil.which("prlimit"):
            self.skipTest("no prlimit (util-linux) to start wispd with few file descriptors")
        # soft and hard: wispd raises its soft limit to the hard one at start
        # (a warning says the limit is below http-max-conns); root's workers
        # still get their own 1024
        if os.geteuid() != 0:
            self.skipTest("workers above wispd's hard limit of open files need root")
        self.start("--http-max-conns", "4096", "--http-idle-timeout-s", "600",
                   prefix=["prlimit", "--nofile=256:256", "--"])
        self.assertIn("open files limited to 256", self.w.log())
        before = None
        figures = []
        for rnd in range(ROUNDS + 1):
            m0 = self.metrics()
            open0 = m0["wisp_http_connections_open"]
            socks = self.open_many(n)
            m1 = self.metrics()
            self.assertEqual(self.taken(m1, m0), n)
            refused = m1["wisp_http_connections_refused_total"] - m0["wisp_http_connections_refused_total"]
            errors = m1["wisp_http_accept_errors_total"] - m0["wisp_http_accept_errors_total"]
            figures.append((n - refused, refused, errors))
            self.assertGreater(refused, n - 256)
            self.assertGreaterEqual(errors, refused)
            got503, idle = self.split_refused(socks, refused, "Too many open files.")
            self.assertEqual(len(idle), n - refused)
            self.probe.request("GET", "/ping")
            r = self.probe.getresponse()
            self.assertEqual((r.status, r.read()), (200, b"pong"))
            for s in socks:
                hard_close(s)
            wait_for(lambda: self.metrics()["wisp_http_connections_open"] == open0, 120,
                     "the connections to be closed")
            self.wait_good()  # invokes too, once descriptors are free again
            if rnd == 0:
                before = self.rss()
        # one warning per 1000 errors, not a line per loop turn
        lines = [l for l in self.w.log().splitlines() if "accept" in l]
        self.assertLessEqual(len(lines), 1 + self.metrics()["wisp_http_accept_errors_total"] // 1000,
                             lines[:5])
        self.finish(self._testMethodName, before, "; per round (accepted, refused, accept "
                    "errors): %s" % figures)

    # -- slow and bad requests --------------------------------------------------
    def test_slowloris_heads_time_out(self):
        n = 100
        self.start("--http-idle-timeout-s", "2")
        before = None
        for rnd in range(ROUNDS + 1):
            m0 = self.metrics()
            socks = []
            for i in range(n):
                s = socket.create_connection(("127.0.0.1", self.w.port))
                # some begin with the empty lines a server must tolerate
                s.sendall(b"\r\n" if i % 4 == 0 else b"GET /ping HTTP/1.1\r\nHost: x\r\nX-Slow: ")
                socks.append(s)
            live = list(socks)
            answers = []

            def trickled():
                """One more byte to each, every 0.3 s, until wispd closes them."""
                for s in list(live):
                    try:
                        s.sendall(b"\r\n" if socks.index(s) % 4 == 0 else b"a")
                    except OSError:
                        live.remove(s)
                        continue
                    r, _, _ = select.select([s], [], [], 0)
                    if r:
                        st, body, _ = read_reply(s, 10)
                        answers.append(st)
                        closed_by_peer(s)
                        live.remove(s)
                time.sleep(0.3)  # the trickle's pace, not a wait for a result
                return not live
            wait_for(trickled, 120, "wispd to close %d slow heads" % n)
            m1 = self.metrics()
            self.assertEqual(refusals(m1, "head_timeout") - refusals(m0, "head_timeout"), n)
            # 408 where the reply came before the trickle hit the closed socket
            self.assertTrue(all(a in (408, None) for a in answers), answers)
            self.assertIn(408, answers)
            for s in socks:
                hard_close(s)
            self.wait_good()
            if rnd == 0:
                before = self.rss()
        self.finish(self._testMethodName, before)

    def bad(self, payload, status, reason, after=None):
        """Sends payload on a new connection; expects the replies in after
        (statuses) and then status with wispd's JSON error, then a close."""
        s = socket.create_connection(("127.0.0.1", self.w.port))
        try:
            s.sendall(payload)
            rest = b""
            for st_ok in after or ():
                st, body, rest = read_reply(s, data=rest)
                self.assertEqual(st, st_ok, body)
            st, body, _ = read_reply(s, data=rest)
            self.assertEqual(st, status, (reason, body))
            self.assertIsInstance(json.loads(body)["error"], str)
            self.assertTrue(closed_by_peer(s))
        finally:
            hard_close(s)

    def test_oversized_heads_garbage_and_big_bodies(self):
        self.start("--http-idle-timeout-s", "10")
        n = 30
        cases = [
            ("head_too_large", 431, b"GET /ping HTTP/1.1\r\nX-Big: " + b"b" * (20 << 10) + b"\r\n\r\n", None),
            ("head_too_large", 431, b"GET /ping HTTP/1.1\r\n" +
             b"".join(b"X-%d: v\r\n" % i for i in range(100)) + b"\r\n", None),
            # no end of head at all, past the bound
            ("head_too_large", 431, b"GET /ping HTTP/1.1\r\nX-Endless: " + b"e" * (40 << 10), None),
            ("bad_request", 400, b"GET /ping HTTP/1.1\r\nHost: x\r\n\r\n"
             b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03garbage\r\n\r\n", [200]),
            ("bad_request", 400, b"GET /ping HTTP/1.1\r\n\r\nGET /ping HTTP/1.1\r\n\r\n"
             b"NOT A REQUEST\r\n\r\n", [200, 200]),
            ("body_too_large", 413, b"PUT /api/v1/namespaces/_/actions/x HTTP/1.1\r\n"
             b"Authorization: " + AUTH.encode() + b"\r\nContent-Length: 2000000000\r\n\r\n", None),
            ("unsupported", 505, b"GET /ping HTTP/2.0\r\n\r\n", None),
        ]
        before = None
        for rnd in range(ROUNDS + 1):
            m0 = self.metrics()
            want = {}
            for reason, status, payload, after in cases:
                for _ in range(n):
                    self.bad(payload, status, reason, after)
                want[reason] = want.get(reason, 0) + n
            m1 = self.metrics()
            for reason, count in want.items():
                self.assertEqual(refusals(m1, reason) - refusals(m0, reason), count, reason)
            self.wait_good()
            if rnd == 0:
                before = self.rss()
        self.finish(self._testMethodName, before)

    # -- clients that never read ------------------------------------------------
    def test_clients_that_never_read_their_replies(self):
        """Each of them asks for a big reply again and again and reads
        nothing. One reply per connection waits in wispd (what the kernel's
        socket buffer did not take), at most HELD_MAX of them in all (the
        oldest unread ones go first, counted output_full); the rest are
        closed once they did not move for the idle timeout (write_timeout)."""
        self.start("--http-idle-timeout-s", "3")
        # twice what the kernel may buffer for one socket (tcp_wmem's
        # largest), so that each holds at least half of its reply
        with open("/proc/sys/net/ipv4/tcp_wmem") as f:
            wmem_max = int(f.read().split()[2])
        reply_mb = max(8, 2 * wmem_max >> 20)
        n = 2 * HELD_MAX // (reply_mb << 19) + 2  # twice the bound unread
        code = "def main(a):\n    return a\n#" + "c" * (reply_mb << 20)
        r = self.w.api("PUT", "actions/big", {"exec": {"kind": "python:3", "code": code}})
        self.assertEqual(r.status, 200, r)
        req = ("GET /api/v1/namespaces/_/actions/big HTTP/1.1\r\nHost: x\r\nAuthorization: %s"
               "\r\n\r\n" % AUTH).encode()
        before = None
        peak_held = 0
        for rnd in range(ROUNDS + 1):
            m0 = self.metrics()
            open0 = m0["wisp_http_connections_open"]
            socks = []
            for _ in range(n):
                s = socket.socket()
                s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
                s.connect(("127.0.0.1", self.w.port))
                s.setblocking(False)
                try:
                    for _ in range(64):  # pipelined until our send buffer is full
                        s.send(req)
                except BlockingIOError:
                    pass
                socks.append(s)
                peak_held = max(peak_held, self.metrics()["wisp_http_output_held_bytes"])

            def all_closed():
                nonlocal peak_held
                m = self.metrics()
                peak_held = max(peak_held, m["wisp_http_output_held_bytes"])
                return m if m["wisp_http_connections_open"] == open0 else None
            m1 = wait_for(all_closed, 120, "wispd to close the connections that do not read")
            # one count per connection: a shed one was once counted again
            # when its write timeout fired in the loop turn that freed it
            full = refusals(m1, "output_full") - refusals(m0, "output_full")
            slow = refusals(m1, "write_timeout") - refusals(m0, "write_timeout")
            self.assertEqual(full + slow, n, (full, slow, changed(m0, m1)))
            self.assertGreater(full, 0)  # more unread replies than the bound
            self.assertEqual(m1["wisp_http_output_held_bytes"], 0)
            # the bound, plus the reply that was just queued
            self.assertLessEqual(peak_held, HELD_MAX + ((reply_mb + 1) << 20))
            for s in socks:
                hard_close(s)
            self.wait_good()
            if rnd == 0:
                before = self.rss()
        self.finish(self._testMethodName, before, "; held at most %d bytes" % peak_held)


if __name__ == "__main__":
    unittest.main()
