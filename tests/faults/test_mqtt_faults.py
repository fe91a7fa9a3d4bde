"""Fault tests of the MQTT event path: a QoS 1 stream with result bindings
(mqttstream) through a real mosquitto with persistence, while the broker or
wispd is restarted. Every input the broker acknowledged must come back as a
result; duplicates are allowed (QoS 1) and reported."""
import os
import re
import signal
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "integration"))
from harness import Broker, Wispd, wait_for  # noqa: E402
from test_events import feed, native_echo  # noqa: E402

MQTTSTREAM = os.environ.get("WISP_MQTTSTREAM", "mqttstream")
COUNT = int(os.environ.get("WISP_FAULT_EVENTS", "4000"))
RATE = int(os.environ.get("WISP_FAULT_RATE", "2000"))
WISPD_ARGS = os.environ.get("WISP_FAULT_WISPD_ARGS", "").split()  # tools/bench/faults
AUTOSAVE = 100  # the killed broker's autosave_interval, in changes


class Stream:
    """mqttstream in the background; progress() reads its counters."""

    def __init__(self, broker, name, count=COUNT, rate=RATE):
        self.proc = subprocess.Popen(
            [MQTTSTREAM, "-p", str(broker.port), "-i", name, "-n", str(count), "-r", str(rate),
             "-t", "stream/in", "-o", "stream/out", "-D", "60"],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.lines = []
        self.acked = 0

    def wait_acked(self, n, timeout=120):
        """Reads progress lines until n inputs are acknowledged."""
        def enough():
            line = self.proc.stdout.readline()
            if not line:
                raise AssertionError("mqttstream ended early: %s" % self.proc.stderr.read())
            self.lines.append(line)
            m = re.match(r"progress acked=(\d+)", line)
            if m:
                self.acked = int(m.group(1))
            return self.acked >= n
        wait_for(enough, timeout, "%d acknowledged inputs" % n)

    def result(self, timeout=600):
        out, err = self.proc.communicate(timeout=timeout)
        self.lines += out.splitlines(True)
        for line in self.lines:
            if line.startswith("STREAM "):
                return {k: int(v) for k, v in re.findall(r"(\w+)=(\d+)", line)}
        raise AssertionError("mqttstream printed no result: %s" % err)

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


class MqttRestarts(unittest.TestCase):
    def setUp(self):
        self.broker = Broker(persistence=True).start()
        self.w = Wispd(args=["--mqtt", self.broker.url, "--prewarm", ""] + WISPD_ARGS).start()
        self.streams = []
        w = self.w
        w.api("PUT", "actions/echo", {"exec": native_echo()})
        self.assertEqual(w.api("PUT", "triggers/in", {}).status, 200)
        r = w.api("PUT", "rules/rin", {"trigger": "in", "action": "echo", "annotations": [
            {"key": "mqtt-publish", "value": {"topic": "stream/out/{3}", "qos": 1}}]})
        self.assertEqual(r.status, 200, r)
        r = feed(w, "mqtt", "subscribe", "CREATE", "in", topic="stream/in/+", qos=1)
        self.assertEqual(r.status, 200, r)
        self.wait_connected()

    def tearDown(self):
        try:
            for s in self.streams:
                s.kill()
            if self.w.proc:
                self.w.stop()
        finally:
            self.w.cleanup()
            self.broker.cleanup()

    def wait_connected(self):
        wait_for(lambda: feed(self.w, "mqtt", "subscribe", "READ", "in").json()
                 ["response"]["result"].get("connected"), 60, "MQTT connected")

    def stream(self, name):
        s = Stream(self.broker, name)
        self.streams.append(s)
        return s

    def check(self, got):
        print("\n%s: %s" % (self.id().rsplit(".", 1)[1], got), file=sys.stderr)
        self.assertEqual(got["sent"], COUNT, got)
        self.assertGreater(got["acked"], COUNT // 2, got)  # the stream really ran
        mqtt_log = [l for l in self.w.log().splitlines() if "mqtt" in l or "outbox" in l]
        self.assertEqual(got["lost"], 0, (got, mqtt_log[-40:]))

    def test_broker_restart_loses_nothing(self):
        s = self.stream("brk")
        s.wait_acked(COUNT // 4)
        self.broker.stop(signal.SIGTERM)  # saves its sessions and queues
        self.broker.start()
        s.wait_acked(COUNT // 2)
        self.check(s.result())
        self.assertIn("session_present=1", self.w.log())

    def test_broker_killed_loses_only_what_it_had_not_saved(self):
        # SIGKILL: the broker saves nothing on the way down. It saves its
        # database after every AUTOSAVE changes, so what it can lose is
        # bounded by that count: each input or result it drops is at least
        # one change it made after its last save. What it acknowledges
        # after it is back must all come back as results.
        self.broker.stop(signal.SIGTERM)
        self.broker.conf = "autosave_on_changes true\nautosave_interval %d\n" % AUTOSAVE
        self.broker.start()
        self.wait_connected()
        s = self.stream("kil")
        s.wait_acked(COUNT // 4)
        self.broker.stop(signal.SIGKILL)
        self.broker.start()
        s.wait_acked(COUNT // 2)
        got = s.result()
        print("\n%s: %s" % (self.id().rsplit(".", 1)[1], got), file=sys.stderr)
        self.assertEqual(got["sent"], COUNT, got)
        self.assertGreater(got["acked"], COUNT // 2, got)
        self.assertGreater(got["reconnects"], 0, got)  # the broker really went away
        self.assertEqual(got["lost_after"], 0, got)
        self.assertLessEqual(got["lost"], AUTOSAVE, got)
        self.assertIn("session_present=1", self.w.log())

    def test_wispd_restart_loses_nothing(self):
        s = self.stream("wsp")
        s.wait_acked(COUNT // 4)
        self.w.stop()  # SIGTERM: drains, keeps unpublished results
        s.wait_acked(COUNT // 2)  # the broker queues the inputs meanwhile
        self.w.start()
        self.check(s.result())
        self.assertIn("session_present=1", self.w.log())

    def test_two_wispd_with_one_client_id(self):
        """The default client ids of two data dirs differ; two wispd given
        the same one are told so (MQTT v5 reason 0x8E, session taken over,
        or, from mosquitto 2.0, which closes the connection without it, the
        pattern of short connections)."""
        def client_id(w):
            m = wait_for(lambda: re.search(r"client_id=(\S+)", w.log()), 20, "client id line")
            return m.group(1)
        first = client_id(self.w)
        other = Wispd(args=["--mqtt", self.broker.url, "--prewarm", ""]).start()
        try:
            self.assertNotEqual(client_id(other), first)
            other.stop()
            twin = Wispd(data_dir=other.data,
                         args=["--mqtt", self.broker.url, "--prewarm", "", "--mqtt-client-id", first])
            twin.start()
            try:
                said = "'%s'" % first
                fix = "give each its own --mqtt-client-id"
                wait_for(lambda: any(said in l and fix in l for w in (self.w, twin)
                                     for l in w.log().splitlines()), 120, "the takeover said")
            finally:
                twin.stop()
        finally:
            other.cleanup()


if __name__ == "__main__":
    unittest.main()
