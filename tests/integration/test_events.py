"""Events: trigger fires and rules, feeds through /whisk.system (alarm,
webhook, poll, MQTT), MQTT result bindings with a real mosquitto broker on
loopback, and their survival across broker and wispd restarts."""
import hashlib
import hmac
import http.server
import json
import os
import ssl
import subprocess
import tempfile
import threading
import time
import unittest

from harness import Broker, Wispd, WispTestCase, wait_for

PY_ECHO = {"kind": "python:3", "code": "def main(a):\n    return a\n"}


def native_echo():
    """An unmodified actionloop program (python with #!) as a native action."""
    code = ("#!/usr/bin/python3\nimport json, os, sys\nout = os.fdopen(3, 'w')\n"
            "if os.environ.get('__OW_WAIT_FOR_ACK'):\n    out.write('{\"ok\":true}\\n'); out.flush()\n"
            "for line in sys.stdin:\n    out.write(json.dumps(json.loads(line)['value']) + '\\n'); out.flush()\n")
    return {"kind": "native", "code": code}


def feed(w, pkg, name, event, trigger, **params):
    body = dict(params, lifecycleEvent=event, triggerName="/_/" + trigger)
    return w.request("POST", "/api/v1/namespaces/whisk.system/actions/%s/%s?blocking=true" % (pkg, name),
                     body)


def assert_feed_refused(tc, r, message=None):
    """A feed action that refuses the event: 502 with its activation record,
    an application error carrying the message (OpenWhisk's failed action)."""
    tc.assertEqual(r.status, 502, r)
    rec = r.json()
    tc.assertEqual(rec["response"]["status"], "application error", rec)
    tc.assertEqual(rec["response"]["statusCode"], 1)
    tc.assertFalse(rec["response"]["success"])
    err = rec["response"]["result"]["error"]
    tc.assertIsInstance(err, str)
    if message is not None:
        tc.assertIn(message, err)
    tc.assertEqual(r.headers.get("x-openwhisk-activation-id"), rec["activationId"])
    return rec


def activations(w, name):
    return w.api("GET", "activations?docs=true&limit=200&name=" + name).json()


class Fire(WispTestCase):
    wispd_args = ("--prewarm", "python:3=1")

    def test_fire_runs_active_rules_and_records_the_fire(self):
        w = self.w
        self.assertEqual(w.api("PUT", "actions/a", {"exec": PY_ECHO}).status, 200)
        self.assertEqual(w.api("PUT", "actions/b", {"exec": PY_ECHO}).status, 200)
        self.assertEqual(w.api("PUT", "triggers/t", {"parameters": [{"key": "site", "value": 7}]}).status, 200)
        # no rule yet: 204, nothing recorded
        r = w.api("POST", "triggers/t", {"x": 1})
        self.assertEqual(r.status, 204, r)
        self.assertEqual(w.api("PUT", "rules/ra", {"trigger": "t", "action": "a"}).status, 200)
        self.assertEqual(w.api("PUT", "rules/rb", {"trigger": "t", "action": "b"}).status, 200)
        self.assertEqual(w.api("POST", "rules/rb", {"status": "inactive"}).status, 200)
        r = w.api("POST", "triggers/t", {"x": 1})
        self.assertEqual(r.status, 202, r)
        tid = r.json()["activationId"]
        self.assertEqual(r.headers.get("x-openwhisk-activation-id"), tid)
        rec = wait_for(lambda: (lambda g: g.status == 200 and g.json())(w.api("GET", "activations/" + tid)),
                       20, "trigger activation")
        self.assertEqual(rec["name"], "t")
        self.assertEqual(rec["response"]["result"], {"site": 7, "x": 1})
        self.assertEqual(len(rec["logs"]), 1)
        line = json.loads(rec["logs"][0])
        self.assertEqual(line["rule"], "guest/ra")
        self.assertEqual(line["action"], "guest/a")
        self.assertTrue(line["success"])
        # the action ran with the merged parameters, caused by the fire
        arec = wait_for(lambda: (lambda g: g.status == 200 and g.json())(w.api("GET", "activations/" + line["activationId"])),
                        30, "rule's action activation")
        self.assertEqual(arec["response"]["result"], {"site": 7, "x": 1})
        self.assertEqual(arec["cause"], tid)
        time.sleep(0.5)  # give an (unwanted) run of the inactive rule's action a chance to show
        self.assertEqual(activations(w, "b"), [])
        self.assertError(w.api("POST", "triggers/nope", {}), 404)


class FireLimit(WispTestCase):
    wispd_args = ("--fires-per-minute", "2", "--prewarm", "")

    def test_fires_per_minute(self):
        w = self.w
        w.api("PUT", "actions/a", {"exec": native_echo()})
        w.api("PUT", "triggers/t", {})
        w.api("PUT", "rules/r", {"trigger": "t", "action": "a"})
        self.assertEqual(w.api("POST", "triggers/t", {}).status, 202)
        self.assertEqual(w.api("POST", "triggers/t", {}).status, 202)
        self.assertError(w.api("POST", "triggers/t", {}), 429, "Too many requests in the last minute")
        # a feed's events past the limit: refused, counted once each as an
        # event and a drop, and said in the log (once per 1000)
        secret = "s3cret-s3cret-s3cret"
        r = feed(w, "webhook", "hook", "CREATE", "t", secret=secret)
        self.assertEqual(r.status, 200, r)
        url = r.json()["response"]["result"]["url"]
        body = b'{"n":1}'
        hdr = {"Content-Type": "application/json",
               "X-Hub-Signature-256": "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()}
        for _ in range(3):
            self.assertError(w.request("POST", url, raw=body, headers=hdr, auth=False), 429,
                             "fire limit was reached")
        m = w.request("GET", "/metrics", auth=False).body
        for name, v in (("events", 3), ("drops", 3), ("fires", 0)):
            self.assertIn("wisp_feed_%s_total %d\n" % (name, v), m)
        st = feed(w, "webhook", "hook", "READ", "t").json()["response"]["result"]
        self.assertEqual((st["fires"], st["drops"]), (0, 3))
        self.assertEqual(w.log().count("fire of guest/t refused: "
                                       "Too many requests in the last minute"), 1, w.log())


class Alarms(WispTestCase):
    wispd_args = ("--prewarm", "")

    def test_interval_and_cron_fire_and_survive_restart(self):
        w = self.w
        w.api("PUT", "actions/a", {"exec": native_echo()})
        for t in ("every", "cron"):
            self.assertEqual(w.api("PUT", "triggers/" + t, {}).status, 200)
            self.assertEqual(w.api("PUT", "rules/r" + t, {"trigger": t, "action": "a"}).status, 200)
        r = feed(w, "alarms", "interval", "CREATE", "every", seconds=1, trigger_payload={"src": "interval"})
        self.assertEqual(r.status, 200, r)
        r = feed(w, "alarms", "alarm", "CREATE", "cron", cron="*/1 * * * * *", trigger_payload={"src": "cron"})
        self.assertEqual(r.status, 200, r)
        wait_for(lambda: len([a for a in activations(w, "a") if a["response"]["result"].get("src") == "interval"]) >= 2,
                 20, "two interval fires")
        wait_for(lambda: len([a for a in activations(w, "a") if a["response"]["result"].get("src") == "cron"]) >= 2,
                 20, "two cron fires")
        st = feed(w, "alarms", "alarm", "READ", "cron").json()["response"]["result"]
        self.assertEqual(st["cron"], "*/1 * * * * *")
        self.assertGreaterEqual(st["fires"], 2)
        self.assertIn("feed", w.api("GET", "triggers/cron").json())
        # pause: no fires while paused
        self.assertEqual(feed(w, "alarms", "alarm", "PAUSE", "cron").status, 200)
        self.assertEqual(feed(w, "alarms", "interval", "DELETE", "every").status, 200)
        # restart: the cron binding comes back (paused) from the store
        w.stop()
        w.start()
        st = feed(w, "alarms", "alarm", "READ", "cron").json()["response"]["result"]
        self.assertTrue(st["paused"])
        assert_feed_refused(self, feed(w, "alarms", "interval", "READ", "every"), "has no")
        self.assertEqual(feed(w, "alarms", "alarm", "UNPAUSE", "cron").status, 200)
        n = len(activations(w, "a"))
        wait_for(lambda: len(activations(w, "a")) >= n + 2, 20, "cron fires after restart")

    def test_bad_feed_parameters(self):
        w = self.w
        w.api("PUT", "triggers/t", {})
        rec = assert_feed_refused(self, feed(w, "alarms", "alarm", "CREATE", "t", cron="61 * * * *"), "cron")
        # the refusal is an activation like any other: stored, listed under the feed's name
        stored = w.api("GET", "activations/" + rec["activationId"])
        self.assertEqual(stored.status, 200, stored)
        self.assertEqual(stored.json()["response"], rec["response"])
        assert_feed_refused(self, feed(w, "alarms", "alarm", "CREATE", "nope", cron="* * * * *"), "nope")
        assert_feed_refused(self, w.request("POST", "/api/v1/namespaces/whisk.system/actions/alarms/alarm",
                                            {"triggerName": "/_/t"}), "lifecycleEvent")
        r = w.request("POST", "/api/v1/namespaces/whisk.system/actions/alarms/alarm?blocking=true&result=true",
                      {"lifecycleEvent": "CREATE", "triggerName": "/_/t", "cron": "61 * * * *"})
        self.assertEqual(r.status, 502, r)
        self.assertIn("cron", r.json()["error"])
        # what the API itself refuses keeps its status: no such feed action, a body that is not JSON
        self.assertError(w.request("POST", "/api/v1/namespaces/whisk.system/actions/alarms/nope",
                                   {"lifecycleEvent": "READ", "triggerName": "/_/t"}), 404)
        self.assertError(w.request("POST", "/api/v1/namespaces/whisk.system/actions/alarms/alarm",
                                   raw=b"{", headers={"Content-Type": "application/json"}), 400)
        # nothing was bound
        assert_feed_refused(self, feed(w, "alarms", "alarm", "READ", "t"), "has no")


class DeleteAfterFire(WispTestCase):
    """alarms/once with deleteAfterFire: true deletes the trigger after its
    fire, "rules" its rules as well, false keeps both; nothing else goes."""
    wispd_args = ("--prewarm", "")

    def test_once_deletes_trigger_and_rules_after_the_fire(self):
        w = self.w
        self.assertEqual(w.api("PUT", "actions/a", {"exec": native_echo()}).status, 200)
        for t in ("keep", "trig", "rules", "other"):
            self.assertEqual(w.api("PUT", "triggers/" + t, {}).status, 200)
            for i in (1, 2):
                r = w.api("PUT", "rules/%s%d" % (t, i), {"trigger": t, "action": "a"})
                self.assertEqual(r.status, 200, r)
        # a rule on a deleted trigger's neighbour and an unrelated binding stay
        r = feed(w, "alarms", "alarm", "CREATE", "other", cron="0 0 1 1 *")
        self.assertEqual(r.status, 200, r)
        date = int(time.time() * 1000) + 1000
        for t, daf in (("keep", False), ("trig", True), ("rules", "rules")):
            r = feed(w, "alarms", "once", "CREATE", t, date=date, deleteAfterFire=daf,
                     trigger_payload={"src": t})
            self.assertEqual(r.status, 200, r)
            st = feed(w, "alarms", "once", "READ", t).json()["response"]["result"]
            self.assertEqual(st["deleteAfterFire"], daf)

        def gone(path):
            return w.api("GET", path).status == 404

        wait_for(lambda: gone("triggers/trig") and gone("triggers/rules"), 30,
                 "the triggers deleted after their fire")
        # each fire reached the action (two rules each: two activations)
        for t in ("keep", "trig", "rules"):
            wait_for(lambda: len([a for a in activations(w, "a")
                                  if a["response"]["result"].get("src") == t]) == 2,
                     30, "the fire of %s reaching a" % t)
            self.assertEqual(len(activations(w, t)), 1, t)
        # true: the trigger and its binding went, its rules stay (as in OpenWhisk)
        assert_feed_refused(self, feed(w, "alarms", "once", "READ", "trig"))
        for i in (1, 2):
            r = w.api("GET", "rules/trig%d" % i)
            self.assertEqual(r.status, 200, r)
            self.assertEqual(r.json()["trigger"]["name"], "trig")
        # "rules": the trigger and both rules went
        assert_feed_refused(self, feed(w, "alarms", "once", "READ", "rules"))
        for i in (1, 2):
            self.assertError(w.api("GET", "rules/rules%d" % i), 404)
        # false: all kept, the once is done
        r = w.api("GET", "triggers/keep")
        self.assertEqual(r.status, 200, r)
        self.assertEqual(sorted(r.json()["rules"]), ["guest/keep1", "guest/keep2"])
        st = feed(w, "alarms", "once", "READ", "keep").json()["response"]["result"]
        self.assertEqual((st["state"], st["fires"]), ("done", 1))
        # the neighbour is untouched
        self.assertEqual(sorted(w.api("GET", "triggers/other").json()["rules"]),
                         ["guest/other1", "guest/other2"])
        self.assertEqual(feed(w, "alarms", "alarm", "READ", "other").status, 200)
        self.assertEqual(w.api("GET", "actions/a").status, 200)
        m = w.request("GET", "/metrics", auth=False).body
        self.assertIn("wisp_feed_triggers_deleted_total 2\n", m)
        self.assertIn("wisp_feed_bindings 2\n", m)
        # logged once the deletion is on disk (the fsync may take a moment)
        wait_for(lambda: "deleted trigger guest/rules and its 2 rules after its fire" in w.log(), 20,
                 "the deletion logged once durable")
        # a restart brings nothing back and fires nothing again
        w.stop()
        w.start()
        self.assertTrue(gone("triggers/trig") and gone("triggers/rules"))
        self.assertTrue(gone("rules/rules1") and gone("rules/rules2"))
        self.assertEqual(w.api("GET", "rules/trig1").status, 200)
        st = feed(w, "alarms", "once", "READ", "keep").json()["response"]["result"]
        self.assertEqual((st["state"], st["fires"]), ("done", 1))
        self.assertEqual(feed(w, "alarms", "alarm", "READ", "other").status, 200)
        # a new trigger of the same name is a new trigger: nothing deletes it
        self.assertEqual(w.api("PUT", "triggers/trig", {}).status, 200)
        self.assertEqual(w.api("GET", "triggers/trig").status, 200)


class Webhooks(WispTestCase):
    wispd_args = ("--prewarm", "")

    def test_signed_requests_fire_and_bad_ones_do_not(self):
        w = self.w
        w.api("PUT", "actions/a", {"exec": native_echo()})
        w.api("PUT", "triggers/gh", {})
        w.api("PUT", "rules/r", {"trigger": "gh", "action": "a"})
        secret = "s3cret-s3cret-s3cret"
        r = feed(w, "webhook", "hook", "CREATE", "gh", secret=secret)
        self.assertEqual(r.status, 200, r)
        url = r.json()["response"]["result"]["url"]
        self.assertTrue(url.startswith("/hooks/"))
        body = json.dumps({"ref": "main", "n": 1}).encode()
        sig = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
        hdr = {"Content-Type": "application/json", "X-Hub-Signature-256": sig}
        r = w.request("POST", url, raw=body, headers=hdr, auth=False)
        self.assertEqual(r.status, 202, r)
        wait_for(lambda: [a for a in activations(w, "a") if a["response"]["result"].get("ref") == "main"],
                 20, "webhook fire")
        n = len(activations(w, "a"))
        bad = dict(hdr, **{"X-Hub-Signature-256": "sha256=" + "0" * 64})
        self.assertError(w.request("POST", url, raw=body, headers=bad, auth=False), 401)
        self.assertError(w.request("POST", url, raw=body, headers={"Content-Type": "application/json"},
                                   auth=False), 401)
        self.assertError(w.request("POST", "/hooks/" + "0" * 32, raw=body, headers=hdr, auth=False), 404)
        # form bodies become parameters
        form = b"a=1&b=two"
        fsig = "sha256=" + hmac.new(secret.encode(), form, hashlib.sha256).hexdigest()
        r = w.request("POST", url, raw=form, auth=False,
                      headers={"Content-Type": "application/x-www-form-urlencoded", "X-Hub-Signature-256": fsig})
        self.assertEqual(r.status, 202, r)
        wait_for(lambda: [a for a in activations(w, "a") if a["response"]["result"].get("b") == "two"],
                 20, "form fire")
        # oversized bodies: 413 before they are read
        big = b"x" * (2 * 1024 * 1024)
        self.assertEqual(w.request("POST", url, raw=big, auth=False,
                                   headers={"Content-Type": "application/json"}).status, 413)
        time.sleep(0.3)
        self.assertEqual(len([a for a in activations(w, "a") if a["response"]["result"].get("b") != "two"]), n)
        # the hook survives a restart with the same URL
        w.stop()
        w.start()
        r = w.request("POST", url, raw=body, headers=hdr, auth=False)
        self.assertEqual(r.status, 202, r)
        # a trigger with no active rule fires too (no activation): every
        # event is a fire or a drop in the metrics, as in the feed's status
        w.api("PUT", "triggers/lone", {})
        r = feed(w, "webhook", "hook", "CREATE", "lone", secret=secret)
        self.assertEqual(r.status, 200, r)
        lone = r.json()["response"]["result"]["url"]
        r = w.request("POST", lone, raw=body, headers=hdr, auth=False)
        self.assertLess(r.status, 300, r)
        m = w.request("GET", "/metrics", auth=False).body
        for name, v in (("events", 2), ("fires", 2), ("drops", 0)):
            self.assertIn("wisp_feed_%s_total %d\n" % (name, v), m)
        st = feed(w, "webhook", "hook", "READ", "lone").json()["response"]["result"]
        self.assertEqual((st["fires"], st["drops"]), (1, 0))


def json_handler(state):
    """An HTTP handler answering every GET with state["body"] as JSON (the
    test changes it between polls)."""
    class H(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(state["body"])))
            self.end_headers()
            self.wfile.write(state["body"])

        def log_message(self, *a):
            pass
    return H


class Poller(WispTestCase):
    wispd_args = ("--prewarm", "")

    def test_poll_fires_on_change_only(self):
        state = {"body": b'{"v": 1}'}

        H = json_handler(state)

        srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
        th = threading.Thread(target=srv.serve_forever, daemon=True)
        th.start()
        try:
            w = self.w
            w.api("PUT", "actions/a", {"exec": native_echo()})
            w.api("PUT", "triggers/p", {})
            w.api("PUT", "rules/r", {"trigger": "p", "action": "a"})
            r = feed(w, "poll", "http", "CREATE", "p", url="http://127.0.0.1:%d/x" % srv.server_address[1],
                     interval=1)
            self.assertEqual(r.status, 200, r)
            wait_for(lambda: [a for a in activations(w, "a") if a["response"]["result"].get("body") == {"v": 1}],
                     20, "first poll fire")
            time.sleep(2.5)  # two more polls of unchanged content
            self.assertEqual(len(activations(w, "a")), 1)
            state["body"] = b'{"v": 2}'
            wait_for(lambda: [a for a in activations(w, "a") if a["response"]["result"].get("body") == {"v": 2}],
                     20, "fire on change")
        finally:
            srv.shutdown()
            srv.server_close()



def make_ca_and_cert(d, name):
    """A CA (ca.pem) and a certificate for name signed by it (srv.pem, srv.key)."""
    k = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"]
    run = lambda *a: subprocess.run(list(a), check=True, capture_output=True, timeout=60, cwd=d)
    run("openssl", "req", "-x509", *k, "-keyout", "ca.key", "-out", "ca.pem", "-days", "2",
        "-subj", "/CN=wisp-test-ca", "-addext", "basicConstraints=critical,CA:TRUE",
        "-addext", "keyUsage=critical,keyCertSign,cRLSign")
    run("openssl", "req", *k, "-keyout", "srv.key", "-out", "srv.csr", "-subj", "/CN=" + name)
    with open(os.path.join(d, "srv.ext"), "w") as f:
        f.write("subjectAltName=DNS:%s\n" % name)
    run("openssl", "x509", "-req", "-in", "srv.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
        "-CAcreateserial", "-out", "srv.pem", "-days", "2", "-extfile", "srv.ext")
    return [os.path.join(d, n) for n in ("ca.pem", "srv.pem", "srv.key")]


class PollerHttps(unittest.TestCase):
    """https:// polling with the CA given by --tls-ca-file, a host name
    resolved from /etc/hosts, and a certificate that does not fit."""

    def test_https_poll_verifies_and_fires_on_change(self):
        state = {"body": b'{"v": 1}'}

        H = json_handler(state)

        with tempfile.TemporaryDirectory() as d:
            ca, cert, key = make_ca_and_cert(d, "localhost")
            srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(cert, key)
            srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
            threading.Thread(target=srv.serve_forever, daemon=True).start()
            w = Wispd(args=["--prewarm", "", "--tls-ca-file", ca])
            try:
                w.start()
                port = srv.server_address[1]
                w.api("PUT", "actions/a", {"exec": native_echo()})
                w.api("PUT", "triggers/p", {})
                w.api("PUT", "rules/r", {"trigger": "p", "action": "a"})
                r = feed(w, "poll", "http", "CREATE", "p", url="https://localhost:%d/x" % port,
                         interval=1)
                self.assertEqual(r.status, 200, r)
                wait_for(lambda: [a for a in activations(w, "a")
                                  if a["response"]["result"].get("body") == {"v": 1}],
                         30, "first https poll fire")
                state["body"] = b'{"v": 2}'
                wait_for(lambda: [a for a in activations(w, "a")
                                  if a["response"]["result"].get("body") == {"v": 2}],
                         30, "fire on change")
                # the same server under a name its certificate does not carry
                w.api("PUT", "triggers/q", {})
                r = feed(w, "poll", "http", "CREATE", "q", url="https://127.0.0.1:%d/x" % port,
                         interval=1)
                self.assertEqual(r.status, 200, r)

                def q_error():
                    st = w.api("GET", "triggers/q").json().get("feed") or {}
                    return st.get("lastError") or ""
                wait_for(lambda: "certificate verify failed" in q_error(), 30, "a verify error")
                self.assertEqual(w.api("GET", "triggers/q").json()["feed"]["fires"], 0)
            finally:
                w.stop()
                srv.shutdown()
                srv.server_close()

class Mqtt(unittest.TestCase):
    def setUp(self):
        self.broker = Broker().start()
        self.w = Wispd(args=["--mqtt", self.broker.url, "--prewarm", ""]).start()

    def tearDown(self):
        try:
            if self.w.proc:
                self.w.stop()
        finally:
            self.w.cleanup()
            self.broker.cleanup()

    def bind(self, trigger, topic, out_topic, qos=1):
        w = self.w
        w.api("PUT", "actions/echo", {"exec": native_echo()})
        self.assertEqual(w.api("PUT", "triggers/" + trigger, {}).status, 200)
        r = w.api("PUT", "rules/r" + trigger, {"trigger": trigger, "action": "echo", "annotations": [
            {"key": "mqtt-publish", "value": {"topic": out_topic, "qos": qos}}]})
        self.assertEqual(r.status, 200, r)
        r = feed(w, "mqtt", "subscribe", "CREATE", trigger, topic=topic, qos=qos)
        self.assertEqual(r.status, 200, r)
        wait_for(lambda: feed(w, "mqtt", "subscribe", "READ", trigger).json()["response"]["result"].get("connected"),
                 20, "MQTT connected")

    def test_publish_runs_the_rule_and_publishes_the_result(self):
        self.bind("sensors", "sensors/+/temp", "results/{2}")
        sub = self.broker.subscribe("results/#", 2)
        time.sleep(0.5)  # let mosquitto_sub subscribe
        self.broker.publish("sensors/kitchen/temp", json.dumps({"c": 21.5}))
        self.broker.publish("sensors/hall/temp", "not json")
        out, err = sub.communicate(timeout=40)
        lines = sorted(out.strip().splitlines())
        self.assertEqual(len(lines), 2, (out, err))
        topic, payload = lines[1].split(" ", 1)
        self.assertEqual(topic, "results/kitchen")
        self.assertEqual(json.loads(payload), {"c": 21.5, "topic": "sensors/kitchen/temp"})
        topic, payload = lines[0].split(" ", 1)
        self.assertEqual(topic, "results/hall")
        got = json.loads(payload)
        self.assertEqual(got["payload"], "not json")
        self.assertEqual(got["topic"], "sensors/hall/temp")

    def test_shared_subscription_and_wildcards(self):
        self.bind("all", "$share/gw/plant/#", "out/all")
        sub = self.broker.subscribe("out/all", 1)
        time.sleep(0.5)
        self.broker.publish("plant/line1/speed", json.dumps({"rpm": 900}))
        out, err = sub.communicate(timeout=40)
        self.assertIn('"rpm": 900', out.replace('"rpm":900', '"rpm": 900'), (out, err))

    def test_results_kept_while_broker_is_down_and_across_wispd_restart(self):
        self.bind("in", "in/+", "out/{2}")
        w = self.w
        # the broker goes away; fires keep coming through HTTP; results wait in the outbox
        self.broker.stop()
        for i in range(5):
            self.assertEqual(w.api("POST", "triggers/in", {"topic": "in/%d" % i, "i": i}).status, 202)
        wait_for(lambda: len(activations(w, "echo")) >= 5, 30, "five activations")
        stats = w.request("GET", "/metrics", auth=False).body
        self.assertIn("wisp_mqtt_outbox 5", stats)
        # wispd stops with the backlog; the broker comes back with a subscriber
        # on it; wispd starts again and sends what it kept
        w.stop()
        self.broker.start()
        sub = self.broker.subscribe("out/#", 5, debug=True)
        wait_for(lambda: self.broker.subscribed(sub), 20, "subscriber ready")
        w.start()
        out, err = sub.communicate(timeout=60)
        out = "\n".join(l for l in out.splitlines() if l.startswith("out/"))
        got = sorted(json.loads(l.split(" ", 1)[1])["i"] for l in out.strip().splitlines())
        self.assertEqual(got, [0, 1, 2, 3, 4], (out, err))

    def test_qos0_results_behind_a_stalled_broker_survive_a_restart(self):
        """QoS 0 results still queued in the MQTT client (the broker stopped
        reading; the connection is up) are kept when wispd stops, and sent
        after it starts again. Those written to the socket before are gone
        with the broker, as QoS 0 allows."""
        import re
        import signal
        w = self.w
        w.api("PUT", "actions/echo", {"exec": native_echo()})
        self.assertEqual(w.api("PUT", "triggers/in", {}).status, 200)
        r = w.api("PUT", "rules/rin", {"trigger": "in", "action": "echo", "annotations": [
            {"key": "mqtt-publish", "value": {"topic": "out/{2}", "qos": 0}}]})
        self.assertEqual(r.status, 200, r)
        r = feed(w, "mqtt", "subscribe", "CREATE", "in", topic="in/+", qos=0)
        self.assertEqual(r.status, 200, r)
        wait_for(lambda: feed(w, "mqtt", "subscribe", "READ", "in").json()["response"]["result"].get("connected"),
                 20, "MQTT connected")

        def metric(name):
            m = re.search(r"^%s (\d+)" % name, w.request("GET", "/metrics", auth=False).body, re.M)
            return int(m.group(1)) if m else 0
        n = 40
        os.kill(self.broker.proc.pid, signal.SIGSTOP)  # up, but reads nothing
        for i in range(n):  # big results fill the socket buffers
            self.assertEqual(w.api("POST", "triggers/in", {"topic": "in/%d" % i, "i": i,
                                                           "pad": "x" * 500000}).status, 202)
        wait_for(lambda: metric("wisp_mqtt_published_total") + metric("wisp_mqtt_outbox") >= n,
                 60, "every result published or in the outbox")
        queued = metric("wisp_mqtt_outbox")
        self.assertGreater(queued, 0)  # the case under test happened
        w.stop()
        self.broker.stop()  # the stalled broker goes, with what it never read
        self.broker.start()
        sub = self.broker.subscribe("out/#", n, qos=0, timeout=20, debug=True)
        wait_for(lambda: self.broker.subscribed(sub), 20, "subscriber ready")
        w.start()
        out, err = sub.communicate(timeout=60)
        got = {json.loads(l.split(" ", 1)[1])["i"] for l in out.splitlines() if l.startswith("out/")}
        self.assertGreaterEqual(len(got), queued, (sorted(got), err))


if __name__ == "__main__":
    unittest.main()
