"""Entity half of the REST API against the real wispd: CRUD for actions,
packages, triggers and rules, OpenWhisk's error shapes, and bad input that
must change nothing stored."""
import json
import os
import subprocess
import unittest

from harness import wait_for, GUEST_KEY, NODE_KIND, WISP_CLI, WispTestCase

NODE = {"kind": "nodejs:default", "code": "function main(a) { return a }"}


class Actions(WispTestCase):
    def test_create_get_update_delete(self):
        r = self.w.api("PUT", "actions/hello", {"exec": NODE, "parameters": [{"key": "x", "value": 1}],
                                                "annotations": [{"key": "web-export", "value": True}],
                                                "limits": {"timeout": 1000, "memory": 128}})
        self.assertEqual(r.status, 200, r)
        a = r.json()
        self.assertEqual(a["namespace"], "guest")
        self.assertEqual(a["name"], "hello")
        self.assertEqual(a["version"], "0.0.1")
        self.assertEqual(a["exec"]["kind"], NODE_KIND)
        self.assertEqual(a["exec"]["code"], NODE["code"])
        self.assertEqual(a["limits"], {"timeout": 1000, "memory": 128, "logs": 10, "concurrency": 1})
        self.assertIn({"key": "exec", "value": NODE_KIND}, a["annotations"])
        self.assertIn({"key": "web-export", "value": True}, a["annotations"])

        g = self.w.api("GET", "actions/hello").json()
        self.assertEqual(g, a)
        nocode = self.w.api("GET", "actions/hello?code=false").json()
        self.assertNotIn("code", nocode["exec"])

        # update merges: limits given replace per field, absent fields stay
        u = self.w.api("PUT", "actions/hello?overwrite=true", {"limits": {"timeout": 2000}})
        self.assertEqual(u.status, 200, u)
        u = u.json()
        self.assertEqual(u["version"], "0.0.2")
        self.assertEqual(u["limits"]["timeout"], 2000)
        self.assertEqual(u["limits"]["memory"], 128)
        self.assertEqual(u["exec"]["code"], NODE["code"])
        self.assertEqual(u["parameters"], [{"key": "x", "value": 1}])

        d = self.w.api("DELETE", "actions/hello")
        self.assertEqual(d.status, 200, d)
        self.assertEqual(d.json()["name"], "hello")
        self.assertError(self.w.api("GET", "actions/hello"), 404, "The requested resource does not exist.")
        self.assertError(self.w.api("DELETE", "actions/hello"), 404)

    def test_create_twice_conflicts_without_overwrite(self):
        self.assertEqual(self.w.api("PUT", "actions/a", {"exec": NODE}).status, 200)
        self.assertError(self.w.api("PUT", "actions/a", {"exec": NODE}), 409,
                         "Concurrent modification to resource detected.")
        self.assertEqual(self.w.api("GET", "actions/a").json()["version"], "0.0.1")

    def test_names_are_shared_across_collections(self):
        self.assertEqual(self.w.api("PUT", "triggers/t", {}).status, 200)
        self.assertError(self.w.api("PUT", "actions/t", {"exec": NODE}), 409,
                         "Resource by this name exists but is not in this collection.")
        self.assertError(self.w.api("GET", "actions/t"), 409)

    def test_list_limit_skip_count(self):
        for i in range(5):
            self.assertEqual(self.w.api("PUT", "actions/a%d" % i, {"exec": NODE}).status, 200)
        names = [a["name"] for a in self.w.api("GET", "actions").json()]
        self.assertEqual(sorted(names), ["a0", "a1", "a2", "a3", "a4"])
        self.assertNotIn("code", json.dumps(self.w.api("GET", "actions").json()))
        self.assertEqual(len(self.w.api("GET", "actions?limit=2").json()), 2)
        self.assertEqual(len(self.w.api("GET", "actions?skip=4").json()), 1)
        self.assertEqual(self.w.api("GET", "actions?count=true").json(), {"actions": 5})
        self.assertError(self.w.api("GET", "actions?limit=201"), 400,
                         "The value '201' is not in the range of 0 to 200 for actions.")
        self.assertError(self.w.api("GET", "actions?skip=-1"), 400)
        self.assertError(self.w.api("GET", "actions?limit=abc"), 400)

    def test_kinds_and_exec_validation(self):
        cases = [
            ({"exec": {"kind": "cobol:85", "code": "x"}}, 400, "kind 'cobol:85' is not supported"),
            ({"exec": {"kind": "python:3"}}, 400, "needs exec.code"),
            ({"exec": {"kind": "python:3", "code": 5}}, 400, "exec.code must be a string"),
            ({"exec": {"kind": "blackbox"}}, 400, "needs exec.image"),
            ({"exec": {"kind": "python:3", "code": "%%%", "binary": True}}, 400, "not base64"),
            ({"exec": {"kind": "sequence", "components": ["a"]}}, 400, "fully qualified"),
            ({"exec": {"kind": "sequence", "components": []}}, 400, "non-empty"),
            ({}, 400, "exec undefined"),
            ({"exec": NODE, "limits": {"timeout": 99}}, 400, "timeout"),
            ({"exec": NODE, "limits": {"memory": 513}}, 400, "memory"),
            ({"exec": NODE, "limits": {"logs": 11}}, 400, "logs"),
            ({"exec": NODE, "limits": {"timeout": "1s"}}, 400, "integer"),
            ({"exec": NODE, "parameters": {"x": 1}}, 400, "parameters"),
            ({"exec": NODE, "parameters": [{"value": 1}]}, 400, "parameters[0]"),
            ({"exec": NODE, "annotations": [{"key": "", "value": 1}]}, 400, "annotations[0]"),
            ({"exec": NODE, "publish": "yes"}, 400, "publish"),
        ]
        for body, status, msg in cases:
            with self.subTest(body=body):
                self.assertError(self.w.api("PUT", "actions/v", body), status, msg)
        self.assertError(self.w.api("GET", "actions/v"), 404)
        ok = [
            {"kind": "python:3", "code": "def main(a): return a"},
            {"kind": "python:default", "code": "def main(a): return a", "main": "main"},
            {"kind": "native", "code": "UEsDBA==", "binary": True},
            {"kind": "blackbox", "image": "openwhisk/dockerskeleton"},
            {"kind": "sequence", "components": ["/_/x", "/guest/pkg/y"]},
        ]
        # the sequence's components must exist
        self.assertEqual(self.w.api("PUT", "actions/x", {"exec": ok[0]}).status, 200)
        self.assertEqual(self.w.api("PUT", "packages/pkg", {}).status, 200)
        self.assertEqual(self.w.api("PUT", "actions/pkg/y", {"exec": ok[0]}).status, 200)
        for i, ex in enumerate(ok):
            with self.subTest(exec=ex):
                r = self.w.api("PUT", "actions/ok%d" % i, {"exec": ex})
                self.assertEqual(r.status, 200, r)
        seq = self.w.api("GET", "actions/ok4").json()
        self.assertEqual(seq["exec"]["components"], ["/guest/x", "/guest/pkg/y"])

    def test_sequence_components_must_exist(self):
        ex = {"kind": "python:3", "code": "def main(a): return a"}
        self.assertEqual(self.w.api("PUT", "actions/here", {"exec": ex}).status, 200)
        for comps in (["/_/here", "/_/missing"], ["/guest/nopkg/a"]):
            with self.subTest(components=comps):
                self.assertError(self.w.api("PUT", "actions/s", {"exec": {"kind": "sequence",
                                                                          "components": comps}}),
                                 400, "Sequence component does not exist.")
        # another namespace's action outside a published package: not the
        # caller's to run, and whether it exists is not told (403, as OpenWhisk)
        for comps in (["/other/x"], ["/other/pkg/x"]):
            with self.subTest(components=comps):
                self.assertError(self.w.api("PUT", "actions/s", {"exec": {"kind": "sequence",
                                                                          "components": comps}}),
                                 403, "not authorized")
        self.assertError(self.w.api("GET", "actions/s"), 404)  # nothing stored
        # a component may be a package (not an action): refused too
        self.assertEqual(self.w.api("PUT", "packages/p", {}).status, 200)
        self.assertError(self.w.api("PUT", "actions/s", {"exec": {"kind": "sequence", "components": ["/_/p"]}}),
                         400, "Sequence component does not exist.")
        # through a package binding: the bound package's action
        self.assertEqual(self.w.api("PUT", "actions/p/inner", {"exec": ex}).status, 200)
        self.assertEqual(self.w.api("PUT", "packages/b", {"binding": {"namespace": "guest", "name": "p"}}).status, 200)
        r = self.w.api("PUT", "actions/s", {"exec": {"kind": "sequence", "components": ["/_/here", "/_/b/inner"]}})
        self.assertEqual(r.status, 200, r)

    def test_sequence_length_limit(self):
        comps = ["/_/a%d" % i for i in range(51)]
        self.assertError(self.w.api("PUT", "actions/s", {"exec": {"kind": "sequence", "components": comps}}),
                         400, "Too many actions in the sequence.")

    def test_parameters_size_limit_is_413(self):
        big = [{"key": "k", "value": "x" * (1024 * 1024)}]
        self.assertError(self.w.api("PUT", "actions/big", {"exec": NODE, "parameters": big}), 413,
                         "parameters larger than allowed")
        self.assertError(self.w.api("GET", "actions/big"), 404)

    def test_delete_annotations(self):
        self.w.api("PUT", "actions/a", {"exec": NODE, "annotations": [{"key": "x", "value": 1},
                                                                      {"key": "y", "value": 2}]})
        u = self.w.api("PUT", "actions/a?overwrite=true", {"delAnnotations": ["x"]}).json()
        keys = [a["key"] for a in u["annotations"]]
        self.assertNotIn("x", keys)
        self.assertIn("y", keys)


class Packages(WispTestCase):
    def test_package_with_actions_binding_and_force_delete(self):
        p = self.w.api("PUT", "packages/iot", {"parameters": [{"key": "site", "value": "a"}], "publish": True})
        self.assertEqual(p.status, 200, p)
        self.assertEqual(p.json()["binding"], {})
        r = self.w.api("PUT", "actions/iot/read", {"exec": NODE})
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json()["namespace"], "guest/iot")
        self.assertEqual([a["name"] for a in self.w.api("GET", "actions/iot/").json()], ["read"])
        # the namespace's action list includes packaged ones, as OpenWhisk's does
        listed = self.w.api("GET", "actions").json()
        self.assertEqual([(a["namespace"], a["name"]) for a in listed], [("guest/iot", "read")])
        g = self.w.api("GET", "packages/iot").json()
        self.assertEqual([a["name"] for a in g["actions"]], ["read"])
        self.assertEqual(self.w.api("GET", "actions/iot/read").json()["name"], "read")

        b = self.w.api("PUT", "packages/iotb", {"binding": {"namespace": "_", "name": "iot"},
                                                "parameters": [{"key": "extra", "value": 2}]})
        self.assertEqual(b.status, 200, b)
        self.assertEqual(b.json()["binding"], {"namespace": "guest", "name": "iot"})
        self.assertIn({"key": "binding", "value": {"namespace": "guest", "name": "iot"}}, b.json()["annotations"])
        gb = self.w.api("GET", "packages/iotb").json()
        self.assertEqual([a["name"] for a in gb["actions"]], ["read"])
        self.assertEqual(gb["parameters"], [{"key": "site", "value": "a"}, {"key": "extra", "value": 2}])
        listed = {p["name"]: p["binding"] for p in self.w.api("GET", "packages").json()}
        self.assertEqual(listed, {"iot": False, "iotb": {"namespace": "guest", "name": "iot"}})
        self.assertError(self.w.api("PUT", "actions/iotb/x", {"exec": NODE}), 400, "binding")
        self.assertError(self.w.api("PUT", "packages/b2", {"binding": {"namespace": "_", "name": "iotb"}}), 400)
        self.assertError(self.w.api("PUT", "packages/b3", {"binding": {"namespace": "_", "name": "nope"}}), 400)
        self.assertError(self.w.api("PUT", "actions/nopkg/x", {"exec": NODE}), 404)

        self.assertError(self.w.api("DELETE", "packages/iot"), 409, "Package not empty (contains 1 entity)")
        self.assertEqual(self.w.api("GET", "actions/iot/read").status, 200)
        self.assertEqual(self.w.api("DELETE", "packages/iot?force=true").status, 200)
        self.assertError(self.w.api("GET", "actions/iot/read"), 404)
        self.assertEqual([p["name"] for p in self.w.api("GET", "packages").json()], ["iotb"])
        self.assertEqual(self.w.api("GET", "actions").json(), [])


    def test_published_package_is_readable_and_invokable_from_another_namespace(self):
        r = subprocess.run([WISP_CLI, "admin", "--data", self.w.data, "user", "create", "team1"],
                           capture_output=True, text=True)
        self.assertEqual(r.returncode, 0, r.stderr)
        other = r.stdout.strip()
        self.assertEqual(self.w.api("PUT", "packages/pub", {"publish": True}).status, 200)
        self.assertEqual(self.w.api("PUT", "packages/priv", {}).status, 200)
        for p in ("pub", "priv"):
            self.assertEqual(self.w.api("PUT", "actions/%s/echo" % p, {"exec": NODE}).status, 200)
        base = "/api/v1/namespaces/guest/"
        self.assertEqual(self.w.request("GET", base + "packages/pub", key=other).json()["name"], "pub")
        a = self.w.request("GET", base + "actions/pub/echo", key=other)
        self.assertEqual(a.status, 200, a)
        self.assertEqual(a.json()["namespace"], "guest/pub")
        self.assertNotIn("code", a.json()["exec"])  # another namespace's code stays hidden
        self.assertIn("code", self.w.api("GET", "actions/pub/echo").json()["exec"])
        # its package list shows only what it publishes; its actions list stays closed
        listed = self.w.request("GET", base + "packages", key=other)
        self.assertEqual(listed.status, 200, listed)
        self.assertEqual([p["name"] for p in listed.json()], ["pub"])
        self.assertEqual(self.w.request("GET", base + "packages?count=true", key=other).json(),
                         {"packages": 1})
        inner = self.w.request("GET", base + "actions/pub/", key=other)
        self.assertEqual([x["name"] for x in inner.json()], ["echo"])
        inv = self.w.request("POST", base + "actions/pub/echo?blocking=true&result=true", {"x": 1}, key=other)
        self.assertEqual(inv.status, 200, inv)
        self.assertEqual(inv.json(), {"x": 1})
        # the activation is the invoker's
        acts = self.w.request("GET", "/api/v1/namespaces/team1/activations", key=other).json()
        self.assertEqual([x["name"] for x in acts], ["echo"])
        # nothing else of guest's: private packages, writes, lists, other collections
        for method, path, body in [("GET", "packages/priv", None), ("GET", "actions/priv/echo", None),
                                   ("POST", "actions/priv/echo", {}),
                                   ("PUT", "actions/pub/echo?overwrite=true", {"exec": NODE}),
                                   ("DELETE", "actions/pub/echo", None), ("DELETE", "packages/pub", None),
                                   ("PUT", "packages/pub?overwrite=true", {"publish": False}),
                                   ("GET", "actions", None), ("GET", "actions/priv/", None),
                                   ("GET", "packages/nope", None), ("GET", "actions/nope/x", None)]:
            with self.subTest(method=method, path=path):
                self.assertError(self.w.request(method, base + path, body, key=other), 403)
        self.assertEqual(self.w.api("GET", "actions/pub/echo").json()["version"], "0.0.1")
        # a published binding opens only what it binds when that is open too
        self.assertEqual(self.w.api("PUT", "packages/pubpriv", {"publish": True, "parameters": [
            {"key": "secret", "value": "s3"}], "binding": {"namespace": "_", "name": "priv"}}).status, 200)
        self.assertEqual(self.w.api("PUT", "packages/pubpub", {"publish": True, "binding": {
            "namespace": "_", "name": "pub"}}).status, 200)
        self.assertError(self.w.request("GET", base + "packages/pubpriv", key=other), 403)
        self.assertError(self.w.request("GET", base + "actions/pubpriv/echo", key=other), 403)
        self.assertEqual(self.w.request("GET", base + "packages/pubpub", key=other).status, 200)
        # unpublished, it is private again
        self.assertEqual(self.w.api("PUT", "packages/pub?overwrite=true", {"publish": False}).status, 200)
        self.assertError(self.w.request("GET", base + "actions/pub/echo", key=other), 403)


class TriggersAndRules(WispTestCase):
    def test_rule_lifecycle_keeps_trigger_in_step(self):
        self.assertEqual(self.w.api("PUT", "triggers/t", {"parameters": [{"key": "a", "value": 1}]}).status, 200)
        self.assertEqual(self.w.api("PUT", "actions/a", {"exec": NODE}).status, 200)
        r = self.w.api("PUT", "rules/r", {"trigger": "/_/t", "action": "/_/a"})
        self.assertEqual(r.status, 200, r)
        rule = r.json()
        self.assertEqual(rule["status"], "active")
        self.assertEqual(rule["trigger"], {"path": "guest", "name": "t"})
        self.assertEqual(rule["action"], {"path": "guest", "name": "a"})
        t = self.w.api("GET", "triggers/t").json()
        self.assertEqual(t["rules"], {"guest/r": {"action": {"path": "guest", "name": "a"}, "status": "active"}})

        s = self.w.api("POST", "rules/r", {"status": "inactive"})
        self.assertEqual(s.status, 200, s)
        self.assertEqual(self.w.api("GET", "rules/r").json()["status"], "inactive")
        self.assertEqual(self.w.api("GET", "triggers/t").json()["rules"]["guest/r"]["status"], "inactive")
        self.assertError(self.w.api("POST", "rules/r", {"status": "paused"}), 400)

        self.assertError(self.w.api("PUT", "rules/r2", {"trigger": "/_/nope", "action": "/_/a"}), 400)
        self.assertError(self.w.api("PUT", "rules/r2", {"trigger": "/_/t", "action": "/_/nope"}), 400)
        self.assertError(self.w.api("PUT", "rules/r2", {"trigger": "/_/t"}), 400)
        self.assertEqual([x["name"] for x in self.w.api("GET", "rules").json()], ["r"])

        d = self.w.api("DELETE", "rules/r")
        self.assertEqual(d.status, 200)
        self.assertEqual(d.json()["status"], "inactive")
        self.assertEqual(self.w.api("GET", "triggers/t").json()["rules"], {})
        self.assertEqual(self.w.api("DELETE", "triggers/t").status, 200)
        self.assertError(self.w.api("GET", "triggers/t"), 404)

    def test_rule_to_action_through_binding(self):
        self.w.api("PUT", "packages/p", {})
        self.w.api("PUT", "actions/p/a", {"exec": NODE})
        self.w.api("PUT", "packages/pb", {"binding": {"namespace": "guest", "name": "p"}})
        self.w.api("PUT", "triggers/t", {})
        r = self.w.api("PUT", "rules/r", {"trigger": "t", "action": "pb/a"})
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json()["action"], {"path": "guest/pb", "name": "a"})


    def test_rule_update_moves_it_between_triggers(self):
        for t in ("t1", "t2"):
            self.assertEqual(self.w.api("PUT", "triggers/" + t, {}).status, 200)
        for a in ("a1", "a2"):
            self.assertEqual(self.w.api("PUT", "actions/" + a, {"exec": NODE}).status, 200)
        r = self.w.api("PUT", "rules/r", {"trigger": "/_/t1", "action": "/_/a1"})
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json()["version"], "0.0.1")
        self.assertError(self.w.api("PUT", "rules/r", {"trigger": "/_/t2", "action": "/_/a2"}), 409)

        u = self.w.api("PUT", "rules/r?overwrite=true", {"trigger": "/_/t2", "action": "/_/a2"})
        self.assertEqual(u.status, 200, u)
        rule = u.json()
        self.assertEqual(rule["version"], "0.0.2")
        self.assertEqual(rule["trigger"], {"path": "guest", "name": "t2"})
        self.assertEqual(rule["action"], {"path": "guest", "name": "a2"})
        self.assertEqual(self.w.api("GET", "rules/r").json()["action"], {"path": "guest", "name": "a2"})
        self.assertEqual(self.w.api("GET", "triggers/t1").json()["rules"], {})
        self.assertEqual(self.w.api("GET", "triggers/t2").json()["rules"],
                         {"guest/r": {"action": {"path": "guest", "name": "a2"}, "status": "active"}})

        # an update naming a missing action is refused and changes nothing
        self.assertError(self.w.api("PUT", "rules/r?overwrite=true", {"trigger": "/_/t1", "action": "/_/gone"}), 400)
        self.assertEqual(self.w.api("GET", "rules/r").json()["version"], "0.0.2")
        self.assertEqual(list(self.w.api("GET", "triggers/t2").json()["rules"]), ["guest/r"])

        # a fire of t2 runs a2 now; t1 has no rule left
        self.assertEqual(self.w.api("POST", "triggers/t1", {}).status, 204)
        f = self.w.api("POST", "triggers/t2", {"x": 1})
        self.assertEqual(f.status, 202, f)


    def test_delete_runs_the_feed_named_by_the_feed_annotation(self):
        # as aio runtime deploy and wskdeploy create a trigger on a feed of
        # the user's own: the delete tells the feed (lifecycleEvent DELETE)
        self.assertEqual(self.w.api("PUT", "packages/feeds", {}).status, 200)
        self.assertEqual(self.w.api("PUT", "actions/feeds/changes", {"exec": NODE}).status, 200)
        self.assertEqual(self.w.api("PUT", "triggers/t1", {"annotations": [
            {"key": "feed", "value": "/_/feeds/changes"}]}).status, 200)
        self.assertEqual(self.w.api("PUT", "triggers/plain", {}).status, 200)
        self.assertEqual(self.w.api("DELETE", "triggers/plain").status, 200)
        self.assertEqual(self.w.api("DELETE", "triggers/t1").status, 200)
        self.assertError(self.w.api("GET", "triggers/t1"), 404)

        def feed_runs():
            acts = self.w.api("GET", "activations?docs=true").json()
            return [a for a in acts if a["name"] == "changes"] or None
        runs = wait_for(feed_runs, 30, "the feed's DELETE activation")
        self.assertEqual(len(runs), 1, runs)
        res = runs[0]["response"]["result"]
        self.assertEqual(res["lifecycleEvent"], "DELETE")
        self.assertEqual(res["triggerName"], "/guest/t1")
        self.assertEqual(res["authKey"], self.w.key)
        # a feed annotation naming nothing invokable: the trigger still goes
        self.assertEqual(self.w.api("PUT", "triggers/t2", {"annotations": [
            {"key": "feed", "value": "/other/pkg/feed"}]}).status, 200)
        self.assertEqual(self.w.api("DELETE", "triggers/t2").status, 200)
        self.assertError(self.w.api("GET", "triggers/t2"), 404)


class ErrorsAndBadInput(WispTestCase):
    def snapshot(self):
        out = {}
        for coll in ("actions", "packages", "triggers", "rules"):
            out[coll] = self.w.api("GET", coll + "?limit=200").json()
        return out

    def test_bad_input_changes_nothing(self):
        self.w.api("PUT", "actions/keep", {"exec": NODE})
        self.w.api("PUT", "triggers/keept", {})
        before = self.snapshot()
        bad = [
            ("PUT", "actions/keep?overwrite=true", b'{"exec": ', {"Content-Type": "application/json"}, 400),
            ("PUT", "actions/keep?overwrite=true", b'[1,2]', {"Content-Type": "application/json"}, 400),
            ("PUT", "actions/keep?overwrite=true", b'"str"', {"Content-Type": "application/json"}, 400),
            ("PUT", "actions/keep?overwrite=true", b'{"exec": 7}', {"Content-Type": "application/json"}, 400),
            ("PUT", "actions/keep?overwrite=maybe", b'{}', {"Content-Type": "application/json"}, 400),
            ("PUT", "actions/keep?overwrite=true", b'{"a":1}', {"Content-Type": "text/plain"}, 415),
            ("PUT", "actions/bad%2Fname", b'{}', {"Content-Type": "application/json"}, 400),
            ("PUT", "actions/%20lead", b'{}', {"Content-Type": "application/json"}, 400),
            ("PUT", "actions/" + "x" * 300, b'{}', {"Content-Type": "application/json"}, 400),
            ("PUT", "actions/a%00b", b'{}', {"Content-Type": "application/json"}, 400),
            ("PUT", "actions/a%zz", b'{}', {"Content-Type": "application/json"}, 400),
            ("PUT", "triggers/keept?overwrite=true", b'{"parameters": 5}', {"Content-Type": "application/json"}, 400),
            ("PUT", "rules/keepr", b'{"trigger": 1, "action": 2}', {"Content-Type": "application/json"}, 400),
            ("PATCH", "actions/keep", b'{}', {"Content-Type": "application/json"}, 405),
            ("POST", "packages/keep", b'{}', {"Content-Type": "application/json"}, 405),
        ]
        for method, path, raw, headers, status in bad:
            with self.subTest(method=method, path=path, raw=raw):
                r = self.w.request(method, "/api/v1/namespaces/_/" + path, raw=raw, headers=headers)
                self.assertError(r, status)
        self.assertEqual(self.snapshot(), before)

    def test_auth(self):
        self.assertError(self.w.request("GET", "/api/v1/namespaces/_/actions", auth=False), 401,
                         "The supplied authentication is invalid.")
        wrong = GUEST_KEY[:-1] + ("x" if GUEST_KEY[-1] != "x" else "y")
        self.assertError(self.w.request("GET", "/api/v1/namespaces/_/actions", key=wrong), 401)
        self.assertError(self.w.request("GET", "/api/v1/namespaces/_/actions",
                                        headers={"Authorization": "Basic !!!notbase64"}, auth=False), 401)
        self.assertError(self.w.request("GET", "/api/v1/namespaces/_/actions",
                                        headers={"Authorization": "Bearer abc"}, auth=False), 401)
        self.assertError(self.w.request("GET", "/api/v1/namespaces/other/actions"), 403,
                         "The supplied authentication is not authorized to access this resource.")
        self.assertError(self.w.request("PUT", "/api/v1/namespaces/other/actions/x", {"exec": NODE}), 403)
        self.assertEqual(self.w.request("GET", "/api/v1/namespaces/guest/actions").status, 200)
        self.assertEqual(self.w.request("GET", "/api/v1/namespaces").json(), ["guest"])

    def test_writes_without_the_right_key_change_nothing(self):
        self.w.api("PUT", "actions/keep", {"exec": NODE})
        self.w.api("PUT", "triggers/keept", {})
        before = self.snapshot()
        wrong = GUEST_KEY[:-1] + ("x" if GUEST_KEY[-1] != "x" else "y")
        writes = [("PUT", "actions/keep?overwrite=true", {"exec": NODE, "limits": {"memory": 128}}),
                  ("PUT", "actions/new", {"exec": NODE}),
                  ("DELETE", "actions/keep", None),
                  ("PUT", "triggers/keept?overwrite=true", {"parameters": [{"key": "a", "value": 1}]}),
                  ("DELETE", "triggers/keept", None),
                  ("POST", "triggers/keept", {}),
                  ("POST", "actions/keep?blocking=true", {})]
        for method, path, body in writes:
            with self.subTest(method=method, path=path):
                self.assertError(self.w.api(method, path, body, auth=False), 401)
                self.assertError(self.w.api(method, path, body, key=wrong), 401)
                self.assertError(self.w.request(method, "/api/v1/namespaces/other/" + path, body), 403)
        self.assertEqual(self.snapshot(), before)
        self.assertEqual(self.w.api("GET", "activations").json(), [])

    def test_action_code_over_the_limit_is_413(self):
        self.w.api("PUT", "actions/keep", {"exec": NODE})
        before = self.snapshot()
        big = {"exec": {"kind": "nodejs:default", "code": "//" + "x" * (49152 * 1024)}}
        self.assertError(self.w.api("PUT", "actions/keep?overwrite=true", big), 413)
        self.assertError(self.w.api("PUT", "actions/other", big), 413)
        self.assertEqual(self.snapshot(), before)

    def test_routes_and_methods(self):
        self.assertEqual(self.w.request("GET", "/ping", auth=False).status, 200)
        info = self.w.request("GET", "/api/v1", auth=False)
        self.assertEqual(info.status, 200)
        self.assertIn("nodejs", info.json()["runtimes"])
        self.assertError(self.w.request("GET", "/nope"), 404)
        self.assertError(self.w.request("GET", "/api/v2/namespaces"), 404)
        self.assertError(self.w.request("GET", "/api/v1/namespaces/_/bogus"), 404)
        self.assertError(self.w.request("GET", "/api/v1/namespaces/_/actions/a/b/c"), 404)
        r = self.w.request("DELETE", "/api/v1/namespaces/_/actions")
        self.assertError(r, 405)
        self.assertEqual(r.headers.get("allow"), "GET")
        o = self.w.request("OPTIONS", "/api/v1/namespaces/_/actions", auth=False)
        self.assertEqual(o.status, 200)
        self.assertEqual(o.headers.get("access-control-allow-origin"), "*")
        lim = self.w.api("GET", "limits").json()
        self.assertEqual(lim["concurrentInvocations"], 200)  # concurrent-invocations' default
        self.assertEqual(lim["memory"], {"min": 128, "max": 512})
        # GET / is the info document, as at /api/v1 (deploy tools read runtimes there)
        root = self.w.request("GET", "/", auth=False)
        self.assertEqual(root.status, 200, root)
        self.assertEqual(root.json(), self.w.request("GET", "/api/v1", auth=False).json())
        self.assertIn("python", root.json()["runtimes"])
        # a method no row of the path has: 405 naming the ones it has
        r = self.w.request("PATCH", "/api/v1/namespaces/_/actions/x")
        self.assertError(r, 405)
        self.assertEqual(r.headers.get("allow"), "GET, PUT, DELETE, POST")
        r = self.w.request("POST", "/api/v1/namespaces/_/packages/x", {})
        self.assertEqual(r.headers.get("allow"), "GET, PUT, DELETE")
        # no key: 401 before anything else is said of a path under namespaces
        self.assertError(self.w.request("GET", "/api/v1/namespaces/_/bogus", auth=False), 401)

    def test_metrics(self):
        self.w.api("PUT", "triggers/m", {})
        self.w.api("GET", "triggers/nope")
        m = self.w.request("GET", "/metrics", auth=False)
        self.assertEqual(m.status, 200)
        self.assertTrue(m.headers["content-type"].startswith("text/plain"))
        vals = dict(l.rsplit(" ", 1) for l in m.body.splitlines() if l and not l.startswith("#"))
        self.assertGreaterEqual(int(vals['wisp_http_requests_total{class="2xx"}']), 1)
        self.assertGreaterEqual(int(vals['wisp_http_requests_total{class="4xx"}']), 1)
        self.assertGreaterEqual(int(vals["wisp_store_syncs_total"]), 1)
        self.assertGreater(int(vals["process_resident_memory_bytes"]), 0)
        self.assertGreater(int(vals["wisp_store_map_bytes"]), 0)

    def test_oversized_body_is_413_before_it_is_read(self):
        import socket
        s = socket.create_connection(("127.0.0.1", self.w.port), timeout=10)
        hdr = ("PUT /api/v1/namespaces/_/triggers/huge HTTP/1.1\r\nHost: x\r\n"
               "Content-Type: application/json\r\nContent-Length: %d\r\n" % (500 * 1024 * 1024))
        hdr += "".join("%s: %s\r\n" % kv for kv in self.w.auth_header().items()) + "\r\n"
        s.sendall(hdr.encode())
        s.sendall(b"{" + b" " * 65536)  # only the first bytes of the promised body
        data = b""
        while b"\r\n\r\n" not in data or not data.rstrip().endswith(b"}"):
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
        s.close()
        head, _, body = data.partition(b"\r\n\r\n")
        self.assertTrue(head.startswith(b"HTTP/1.1 413 "), head)
        err = json.loads(body)
        self.assertIn("Request larger than allowed", err["error"])
        self.assertIsInstance(err["code"], str)
        self.assertError(self.w.api("GET", "triggers/huge"), 404)

    def test_chunked_and_expect_continue_bodies(self):
        import http.client
        c = http.client.HTTPConnection("127.0.0.1", self.w.port, timeout=10)
        body = json.dumps({"parameters": [{"key": "k", "value": "v" * 3000}]}).encode()
        h = dict(self.w.auth_header(), **{"Content-Type": "application/json", "Transfer-Encoding": "chunked"})
        c.putrequest("PUT", "/api/v1/namespaces/_/triggers/chunky")
        for k, v in h.items():
            c.putheader(k, v)
        c.endheaders()
        for i in range(0, len(body), 1000):
            part = body[i:i + 1000]
            c.send(b"%x\r\n%s\r\n" % (len(part), part))
        c.send(b"0\r\n\r\n")
        r = c.getresponse()
        self.assertEqual(r.status, 200, r.read())
        r.read()
        c.close()
        got = self.w.api("GET", "triggers/chunky").json()
        self.assertEqual(got["parameters"][0]["value"], "v" * 3000)

    def test_keep_alive_serves_many_requests_on_one_connection(self):
        import http.client
        c = http.client.HTTPConnection("127.0.0.1", self.w.port, timeout=10)
        for i in range(50):
            c.request("GET", "/api/v1/namespaces/_/actions", headers=self.w.auth_header())
            r = c.getresponse()
            self.assertEqual(r.status, 200)
            r.read()
        c.close()


if __name__ == "__main__":
    unittest.main()


POKE = os.environ.get("WISP_LMDB_POKE")


class ConfiguredLimits(WispTestCase):
    # a small board's profile narrows what an action may ask for
    wispd_args = ("--action-memory-max-mb", "192", "--action-memory-default-mb", "128",
                  "--action-timeout-max-ms", "20000", "--action-timeout-default-ms", "5000",
                  "--concurrent-invocations", "7")

    def test_limits_come_from_the_configuration(self):
        lim = self.w.api("GET", "limits").json()
        self.assertEqual(lim["memory"], {"min": 128, "max": 192})
        self.assertEqual(lim["timeout"], {"min": 100, "max": 20000})
        self.assertEqual(lim["concurrentInvocations"], 7)
        info = self.w.request("GET", "/api/v1", auth=False).json()
        self.assertEqual(info["limits"]["concurrent_actions"], 7)
        self.assertEqual(self.w.api("PUT", "actions/a", {"exec": NODE}).status, 200)
        got = self.w.api("GET", "actions/a").json()["limits"]
        self.assertEqual((got["memory"], got["timeout"]), (128, 5000))
        self.assertError(self.w.api("PUT", "actions/b", {"exec": NODE, "limits": {"memory": 256}}),
                         400, "memory 256 MB is outside the allowed range 128 to 192.")
        self.assertError(self.w.api("PUT", "actions/b", {"exec": NODE, "limits": {"timeout": 30000}}),
                         400, "outside the allowed range 100 to 20000")
        self.assertError(self.w.api("GET", "actions/b"), 404)


class AuthFailureLimit(WispTestCase):
    # a key guessed at from one address: 429 past auth-failures-per-minute,
    # for every key from there (a right guess must not show), counted
    wispd_args = ("--auth-failures-per-minute", "5")

    def test_failed_authentications_are_limited_per_address(self):
        bad = "23bc46b1-71f6-4ed5-8c54-816aa4f8c502:" + "x" * 64
        for _ in range(5):
            self.assertError(self.w.request("GET", "/api/v1/namespaces/_/actions", key=bad), 401)
        self.assertError(self.w.request("GET", "/api/v1/namespaces/_/actions", key=bad), 429,
                         "Too many failed authentication attempts")
        self.assertError(self.w.api("GET", "actions"), 429)  # the right key too, from here
        self.assertEqual(self.w.request("GET", "/ping", auth=False).status, 200)  # no key needed
        m = self.w.request("GET", "/metrics", auth=False).body
        vals = dict(l.rsplit(" ", 1) for l in m.splitlines() if l and not l.startswith("#"))
        self.assertEqual(int(vals["wisp_auth_failures_total"]), 5)
        self.assertEqual(int(vals["wisp_auth_throttled_total"]), 2)
        self.assertNotIn("x" * 64, self.w.log())  # the guessed secret is not logged


class DamagedStore(WispTestCase):
    """A record that cannot be decoded fails only the requests that read it,
    and can be deleted."""

    @unittest.skipUnless(POKE, "needs lmdb_poke (WISP_LMDB_POKE), built with the tests")
    def test_undecodable_record_is_500_for_its_requests_only(self):
        for name in ("good", "bad", "newer"):
            self.assertEqual(self.w.api("PUT", "actions/" + name, {"exec": NODE}).status, 200)
        self.assertEqual(self.w.api("PUT", "triggers/t", {}).status, 200)
        self.assertEqual(self.w.api("PUT", "rules/r", {"trigger": "t", "action": "good"}).status, 200)
        self.w.stop()
        # garbage, and a well-formed record of a schema this build does not know
        subprocess.run([POKE, self.w.data, "entities", "guest", "bad", "c1c2c3ff00"], check=True)
        subprocess.run([POKE, self.w.data, "entities", "guest", "newer", "94630100c0"], check=True)
        subprocess.run([POKE, self.w.data, "entities", "guest", "r", "9401"], check=True)
        self.w.start()
        # a damaged rule: unreadable, deletable, and gone from its trigger
        self.assertError(self.w.api("GET", "rules/r"), 500)
        self.assertEqual(self.w.api("DELETE", "rules/r").status, 200)
        self.assertEqual(self.w.api("GET", "triggers/t").json()["rules"], {})
        self.assertEqual(self.w.api("POST", "triggers/t", {}).status, 204)
        # a head that names another collection keeps its own collection's rules
        self.assertError(self.w.api("DELETE", "triggers/newer"), 409)
        for name in ("bad", "newer"):
            with self.subTest(name=name):
                self.assertError(self.w.api("GET", "actions/" + name), 500)
                self.assertError(self.w.api("POST", "actions/%s?blocking=true" % name, {}), 500)
        self.assertEqual(self.w.api("GET", "actions/good").status, 200)
        names = [a["name"] for a in self.w.api("GET", "actions").json()]
        self.assertIn("good", names)
        r = self.w.api("POST", "actions/good?blocking=true&result=true", {"v": 1})
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json(), {"v": 1})
        # the damaged record can be deleted, and the name used again
        self.assertEqual(self.w.api("DELETE", "actions/bad").status, 200)
        self.assertEqual(self.w.api("PUT", "actions/bad", {"exec": NODE}).status, 200)
        self.assertEqual(self.w.api("GET", "actions/bad").status, 200)
        self.assertEqual(self.w.api("DELETE", "actions/newer").status, 200)
        self.assertError(self.w.api("GET", "actions/newer"), 404)


class FullStore(WispTestCase):
    """A full store answers 503 and loses nothing it acknowledged."""

    wispd_args = ("--store-map-mb", "1", "--store-map-max-mb", "1")

    def test_full_store_is_503_and_keeps_what_it_acknowledged(self):
        def code(i):
            return "// %d %s\nfunction main(a) { return a }" % (i, "x" * 60000)

        stored = []
        for i in range(64):
            r = self.w.api("PUT", "actions/a%d" % i, {"exec": {"kind": "nodejs:default", "code": code(i)}})
            if r.status == 503:
                self.assertError(r, 503, "full")
                break
            self.assertEqual(r.status, 200, r)
            stored.append(i)
        else:
            self.fail("a 1 MB store took 64 actions of 60 kB")
        self.assertGreater(len(stored), 2)
        self.assertError(self.w.api("GET", "actions/a%d" % (stored[-1] + 1)), 404)
        for i in stored:
            self.assertEqual(self.w.api("GET", "actions/a%d" % i).json()["exec"]["code"], code(i))
        # deleting makes room again
        self.assertEqual(self.w.api("DELETE", "actions/a%d" % stored[0]).status, 200)
        self.assertEqual(self.w.api("PUT", "actions/small", {"exec": NODE}).status, 200)
        self.w.stop()
        self.w.start()
        for i in stored[1:]:
            self.assertEqual(self.w.api("GET", "actions/a%d" % i).json()["exec"]["code"], code(i))
        self.assertEqual(self.w.api("GET", "actions/small").status, 200)
