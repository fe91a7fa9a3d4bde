"""Durability: entities survive restarts, and a kill -9 in the middle of a
burst of writes loses none that were acknowledged."""
import threading
import unittest

from harness import Wispd, wait_for

NODE = {"kind": "nodejs:default", "code": "function main(a) { return a }"}


class Persistence(unittest.TestCase):
    def setUp(self):
        self.w = Wispd().start()

    def tearDown(self):
        if self.w.proc:
            self.w.stop()
        self.w.cleanup()

    def restart(self):
        self.w.stop()
        self.w.start()

    def test_restart_reads_everything_back(self):
        self.assertEqual(self.w.api("PUT", "packages/p", {"parameters": [{"key": "a", "value": [1, {"b": None}]}]}).status, 200)
        self.assertEqual(self.w.api("PUT", "actions/p/x", {"exec": NODE}).status, 200)
        self.assertEqual(self.w.api("PUT", "actions/y?overwrite=true", {"exec": NODE}).status, 200)
        self.assertEqual(self.w.api("PUT", "actions/y?overwrite=true", {"exec": NODE}).status, 200)
        self.assertEqual(self.w.api("PUT", "triggers/t", {}).status, 200)
        self.assertEqual(self.w.api("PUT", "rules/r", {"trigger": "t", "action": "y"}).status, 200)
        self.assertEqual(self.w.api("POST", "rules/r", {"status": "inactive"}).status, 200)
        before = {c: self.w.api("GET", c).json() for c in ("actions", "packages", "triggers", "rules")}
        docs = {p: self.w.api("GET", p).json() for p in ("packages/p", "actions/p/x", "actions/y", "triggers/t", "rules/r")}
        self.restart()
        for c, v in before.items():
            self.assertEqual(self.w.api("GET", c).json(), v, c)
        for p, v in docs.items():
            self.assertEqual(self.w.api("GET", p).json(), v, p)
        self.assertEqual(docs["actions/y"]["version"], "0.0.2")
        self.assertEqual(docs["rules/r"]["status"], "inactive")
        # the guest key of a data dir stays the same across restarts
        self.assertEqual(self.w.request("GET", "/api/v1/namespaces").json(), ["guest"])

    def test_kill9_during_write_burst_keeps_acknowledged_entities(self):
        acked = []
        lock = threading.Lock()
        stop = threading.Event()

        def writer(n):
            i = 0
            while not stop.is_set() and i < 2000:
                name = "w%d-%d" % (n, i)
                try:
                    r = self.w.api("PUT", "actions/" + name,
                                   {"exec": NODE, "parameters": [{"key": "i", "value": i}]})
                except OSError:
                    return  # the daemon died under us: expected
                if r.status == 200:
                    with lock:
                        acked.append((name, i))
                i += 1

        threads = [threading.Thread(target=writer, args=(n,)) for n in range(8)]
        for t in threads:
            t.start()
        wait_for(lambda: len(acked) >= 300, 60, "300 acknowledged writes")
        self.w.kill9()
        stop.set()
        for t in threads:
            t.join(30)
        with lock:
            got = list(acked)
        self.assertGreaterEqual(len(got), 300)
        self.w.start()
        count = self.w.api("GET", "actions?count=true").json()["actions"]
        self.assertGreaterEqual(count, len(got))
        for name, i in got:
            r = self.w.api("GET", "actions/" + name)
            self.assertEqual(r.status, 200, name)
            self.assertEqual(r.json()["parameters"], [{"key": "i", "value": i}])


if __name__ == "__main__":
    unittest.main()
