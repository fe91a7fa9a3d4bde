"""/whisk.system/utils, the catalog wispd seeds at start (core/catalog.c),
against the real wispd and real workers.

Each action's answers are checked against what OpenWhisk's catalog
(apache/openwhisk-catalog, packages/utils) returns for the same input: its
actions are JavaScript, so the expected values follow JavaScript (sort
compares items as strings, `num` and `separator` fall back when falsy, a
split without payload is an error). Then the ways users use them: invoked
from two namespaces (the activation is the invoker's), read with GET,
listed, as components of a sequence, through a binding in the user's own
namespace. A restart writes nothing; nobody can write into whisk.system;
and a gateway without node gets python versions with the same answers.
"""
import json
import os
import re
import subprocess
import tempfile
import unittest

from harness import WISP_CLI, Wispd, WispTestCase

SYS = "/api/v1/namespaces/whisk.system/"
UTILS = ["cat", "date", "echo", "head", "hosturl", "namespace", "smash", "sort", "split"]
ISO_MS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
KINDS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "../../runtimes/kinds.json")

# (action, parameters, expected result) for successful activations
ANSWERS = [
    ("echo", {"payload": "Five fuzzy felines"}, {"payload": "Five fuzzy felines"}),
    ("echo", {}, {}),
    ("echo", {"a": [1, {"b": None}], "c": True}, {"a": [1, {"b": None}], "c": True}),
    ("cat", {"lines": [4, 2, 3]}, {"lines": [4, 2, 3], "payload": "4\n2\n3"}),
    # other parameters are stripped; null joins as an empty string
    ("cat", {"lines": ["a", 1, None, True, [1, 2]], "other": 1},
     {"lines": ["a", 1, None, True, [1, 2]], "payload": "a\n1\n\ntrue\n1,2"}),
    ("cat", {}, {"lines": [], "payload": ""}),
    ("sort", {"lines": [4, 2, 3]}, {"lines": [2, 3, 4], "length": 3}),
    # JavaScript's default order: as strings, by UTF-16 code units
    ("sort", {"lines": [10, 9, 1, "b", "B", "a", "\u00e9", "z"]},
     {"lines": [1, 10, 9, "B", "a", "b", "z", "\u00e9"], "length": 8}),
    ("sort", {}, {"lines": [], "length": 0}),
    ("head", {"lines": [4, 2, 3], "num": 2}, {"lines": [4, 2], "num": 2}),
    ("head", {"lines": [4, 2, 3]}, {"lines": [4], "num": 1}),
    ("head", {"lines": [4, 2, 3], "num": 0}, {"lines": [4], "num": 1}),
    ("head", {"lines": [4, 2, 3], "num": -1}, {"lines": [4, 2], "num": -1}),
    ("head", {"lines": [4, 2, 3], "num": 9}, {"lines": [4, 2, 3], "num": 9}),
    ("split", {"payload": "one,two,three", "separator": ","},
     {"lines": ["one", "two", "three"], "payload": "one,two,three"}),
    # no separator: at line ends, \n or \r\n
    ("split", {"payload": "a\nb\r\nc"}, {"lines": ["a", "b", "c"], "payload": "a\nb\r\nc"}),
    ("split", {"payload": "a,,b,", "separator": ","},
     {"lines": ["a", "", "b", ""], "payload": "a,,b,"}),
    ("split", {"payload": "a b", "separator": ""}, {"lines": ["a b"], "payload": "a b"}),
    ("split", {"payload": 12345, "separator": "3"}, {"lines": ["12", "45"], "payload": 12345}),
    ("smash", {"a": 1, "b": {"c": 2, "d": 3}, "$fieldName": "p"},
     {"p": {"a": 1, "b": {"c": 2, "d": 3}}}),
]

# (action, parameters, the result's error or None for any) for application errors
REFUSALS = [
    ("split", {}, None),  # payload.toString() of undefined throws
    ("smash", {"a": 1}, "Expected an argument '$fieldName' of type 'string'."),
    ("hosturl", {"web": True, "trigger": True}, "triggers are not allowed for web actions."),
    ("hosturl", {"web": True, "path": "x", "ext": ".xml"},
     'extension for web action must be one of [".html", ".http", ".json", ".svg", ".text"].'),
    ("hosturl", {"trigger": True, "path": "p/t"}, "triggers are not allowed in packages."),
    ("hosturl", {"trigger": True}, None),  # path.indexOf of undefined throws
]


def hosturl_answers(api, ns):
    """hosturl's (parameters, expected url) for the API at `api`, caller ns."""
    return [
        ({}, "%s/api/v1/namespaces/%s/actions" % (api, ns)),
        ({"path": "hello"}, "%s/api/v1/namespaces/%s/actions/hello" % (api, ns)),
        ({"path": "p/x"}, "%s/api/v1/namespaces/%s/actions/p/x" % (api, ns)),
        ({"path": "t", "trigger": True}, "%s/api/v1/namespaces/%s/triggers/t" % (api, ns)),
        ({"path": "x", "web": True}, "%s/api/v1/web/%s/default/x" % (api, ns)),
        ({"path": "p/x", "web": True, "ext": ".json"}, "%s/api/v1/web/%s/p/x.json" % (api, ns)),
        ({"web": True}, "%s/api/v1/web/%s" % (api, ns)),
        ({"path": "x", "ext": ".json"}, "%s/api/v1/namespaces/%s/actions/x" % (api, ns)),
    ]


def kinds_without_node(folder):
    """A kinds manifest like wispd's but without nodejs: a gateway where no
    nodejs kind can run. Returns its path."""
    with open(KINDS) as f:
        kinds = json.load(f)
    kinds["kinds"] = [k for k in kinds["kinds"] if k.get("family") != "nodejs"]
    path = os.path.join(folder, "kinds-without-node.json")
    with open(path, "w") as f:
        json.dump(kinds, f)
    return path


def ann(doc):
    return {a["key"]: a["value"] for a in doc.get("annotations", [])}


class CatalogCase(WispTestCase):
    wispd_args = ("--prewarm", "python:3=1,nodejs:default=1")
    kind_family = "nodejs"

    def new_user(self, ns):
        r = subprocess.run([WISP_CLI, "admin", "--data", self.w.data, "user", "create", ns],
                           capture_output=True, text=True)
        self.assertEqual(r.returncode, 0, r.stderr)
        return r.stdout.strip()

    def invoke(self, path, params, key=None, status=200):
        """A blocking invoke of /whisk.system/PATH (or a path of the caller's
        namespace when it starts with _/): the activation record."""
        url = ("/api/v1/namespaces/" + path[2:] if path.startswith("_/") else SYS + "actions/" + path)
        r = self.w.request("POST", url + "?blocking=true", params, key=key)
        self.assertEqual(r.status, status, r)
        return r.json()

    def check_answers(self):
        for name, params, want in ANSWERS:
            with self.subTest(action=name, params=params):
                rec = self.invoke("utils/" + name, params)
                self.assertEqual(rec["response"]["result"], want)
                self.assertEqual(rec["response"]["status"], "success")
                self.assertTrue(ann(rec)["kind"].startswith(self.kind_family), rec)
        for name, params, error in REFUSALS:
            with self.subTest(action=name, params=params):
                rec = self.invoke("utils/" + name, params, status=502)
                self.assertEqual(rec["response"]["status"], "application error")
                self.assertIsInstance(rec["response"]["result"].get("error"), str, rec)
                if error is not None:
                    self.assertEqual(rec["response"]["result"], {"error": error})
        api = "http://127.0.0.1:%d" % self.w.port
        for params, url in hosturl_answers(api, "guest"):
            with self.subTest(action="hosturl", params=params):
                self.assertEqual(self.invoke("utils/hosturl", params)["response"]["result"],
                                 {"url": url})
        rec = self.invoke("utils/date", {})
        date = rec["response"]["result"]["date"]
        self.assertRegex(date, ISO_MS)
        self.assertEqual(list(rec["response"]["result"]), ["date"])
        # the current time: within the activation's own start and end
        import datetime
        t = datetime.datetime.strptime(date, "%Y-%m-%dT%H:%M:%S.%fZ").replace(
            tzinfo=datetime.timezone.utc).timestamp() * 1000
        self.assertLessEqual(rec["start"], round(t))
        self.assertLessEqual(round(t), rec["end"])
        self.assertEqual(self.invoke("utils/namespace", {})["response"]["result"],
                         {"namespace": "guest"})


class Answers(CatalogCase):
    def test_each_action_answers_as_openwhisks_catalog(self):
        self.check_answers()

    def test_hosturl_names_urls_that_work(self):
        self.assertEqual(self.w.api("PUT", "actions/hello", {"exec": {
            "kind": "nodejs:default", "code": "function main(a) { return {hi: a.name} }"}}).status, 200)
        url = self.invoke("utils/hosturl", {"path": "hello"})["response"]["result"]["url"]
        prefix = "http://127.0.0.1:%d" % self.w.port
        self.assertTrue(url.startswith(prefix), url)
        r = self.w.request("POST", url[len(prefix):] + "?blocking=true&result=true", {"name": "pi"})
        self.assertEqual((r.status, r.json()), (200, {"hi": "pi"}))


class Access(CatalogCase):
    def test_package_and_actions_are_visible_to_every_namespace(self):
        other = self.new_user("team1")
        for key in (None, other):
            with self.subTest(key="guest" if key is None else "team1"):
                pkg = self.w.request("GET", SYS + "packages/utils", key=key)
                self.assertEqual(pkg.status, 200, pkg)
                p = pkg.json()
                self.assertEqual((p["namespace"], p["name"], p["publish"]), ("whisk.system", "utils", True))
                self.assertEqual(ann(p)["description"], "Building blocks that format and assemble data")
                self.assertEqual(sorted(a["name"] for a in p["actions"]), UTILS)
                self.assertEqual(p["feeds"], [])
                lst = self.w.request("GET", SYS + "packages", key=key)
                self.assertEqual(lst.status, 200, lst)
                self.assertIn("utils", [x["name"] for x in lst.json()])
                acts = self.w.request("GET", SYS + "actions/utils/", key=key)
                self.assertEqual(acts.status, 200, acts)
                self.assertEqual(sorted(a["name"] for a in acts.json()), UTILS)
                for name in UTILS:
                    a = self.w.request("GET", SYS + "actions/utils/" + name, key=key)
                    self.assertEqual(a.status, 200, a)
                    doc = a.json()
                    self.assertEqual((doc["namespace"], doc["name"], doc["publish"]),
                                     ("whisk.system/utils", name, True))
                    self.assertTrue(doc["exec"]["kind"].startswith(self.kind_family), doc)
                    self.assertIsInstance(ann(doc)["description"], str)
                    self.assertEqual(ann(doc)["wisp-managed"], "catalog")
                sample = self.w.request("GET", SYS + "actions/utils/sort", key=key).json()
                self.assertEqual(ann(sample)["sampleInput"], {"lines": [4, 2, 3]})
                self.assertEqual(ann(sample)["sampleOutput"], {"lines": [2, 3, 4], "length": 3})
                self.assertError(self.w.request("GET", SYS + "actions/utils/nope", key=key), 404)

    def test_invocations_belong_to_the_invoker(self):
        other = self.new_user("team1")
        for ns, key in (("guest", None), ("team1", other)):
            with self.subTest(ns=ns):
                rec = self.invoke("utils/namespace", {}, key=key)
                self.assertEqual(rec["response"]["result"], {"namespace": ns})
                self.assertEqual((rec["namespace"], rec["subject"]), (ns, ns))
                self.assertEqual(ann(rec)["path"], "whisk.system/utils/namespace")
                api = "http://127.0.0.1:%d" % self.w.port
                url = self.invoke("utils/hosturl", {"path": "a"}, key=key)["response"]["result"]["url"]
                self.assertEqual(url, "%s/api/v1/namespaces/%s/actions/a" % (api, ns))
                mine = self.w.request("GET", "/api/v1/namespaces/_/activations/" + rec["activationId"], key=key)
                self.assertEqual(mine.status, 200, mine)
        # each sees its own two, and not the other's
        for key in (None, other):
            names = [a["name"] for a in self.w.request("GET", "/api/v1/namespaces/_/activations", key=key).json()]
            self.assertEqual(sorted(names), ["hosturl", "namespace"])

    def test_sequence_of_utils_components(self):
        other = self.new_user("team1")
        comps = ["/whisk.system/utils/split", "/whisk.system/utils/sort", "/whisk.system/utils/cat"]
        for ns, key in (("guest", None), ("team1", other)):
            with self.subTest(ns=ns):
                r = self.w.api("PUT", "actions/lines", {"exec": {"kind": "sequence", "components": comps}}, key=key)
                self.assertEqual(r.status, 200, r)
                rec = self.invoke("_/_/actions/lines", {"payload": "pear\napple\r\nfig"}, key=key)
                self.assertEqual(rec["response"]["result"],
                                 {"lines": ["apple", "fig", "pear"], "payload": "apple\nfig\npear"})
                self.assertEqual(len(rec["logs"]), 3)
                for i, aid in enumerate(rec["logs"]):
                    c = self.w.request("GET", "/api/v1/namespaces/_/activations/" + aid, key=key).json()
                    self.assertEqual(c["namespace"], ns)
                    self.assertEqual(c["cause"], rec["activationId"])
                    self.assertEqual("/" + ann(c)["path"], comps[i])
                # split then sort alone, with a separator
                r = self.w.api("PUT", "actions/ss", {"exec": {"kind": "sequence", "components": comps[:2]}}, key=key)
                self.assertEqual(r.status, 200, r)
                res = self.invoke("_/_/actions/ss", {"payload": "b,c,a", "separator": ","}, key=key)
                self.assertEqual(res["response"]["result"], {"lines": ["a", "b", "c"], "length": 3})
        self.assertError(self.w.api("PUT", "actions/bad", {"exec": {"kind": "sequence", "components": [
            "/whisk.system/utils/nope"]}}), 400, "Sequence component does not exist.")

    def test_components_of_another_namespace_need_a_published_package(self):
        # what makes /whisk.system/utils/* usable as components is that utils
        # is published: another namespace's private actions are not
        other = self.new_user("team1")
        code = {"exec": {"kind": "nodejs:default", "code": "function main(a) { return {secret: a.s} }"},
                "parameters": [{"key": "s", "value": 42}]}
        self.assertEqual(self.w.api("PUT", "actions/secret", code, key=other).status, 200)
        self.assertEqual(self.w.api("PUT", "packages/priv", {}, key=other).status, 200)
        self.assertEqual(self.w.api("PUT", "actions/priv/secret", code, key=other).status, 200)
        for comp in ("/team1/secret", "/team1/priv/secret"):
            with self.subTest(component=comp):
                r = self.w.api("PUT", "actions/steal?overwrite=true", {"exec": {
                    "kind": "sequence", "components": ["/whisk.system/utils/echo", comp]}})
                if r.status == 200:  # accepted at PUT: it must not run when invoked
                    rec = self.invoke("_/_/actions/steal", {}, status=502)
                    self.assertEqual(rec["response"]["result"], {
                        "error": "The supplied authentication is not authorized to access this resource."})
                else:
                    self.assertError(r, 403)
        acts = self.w.request("GET", "/api/v1/namespaces/_/activations", key=other).json()
        self.assertEqual(acts, [])
        mine = [a["name"] for a in self.w.api("GET", "activations").json()]
        self.assertNotIn("secret", mine)

    def test_binding_in_own_namespace(self):
        r = self.w.api("PUT", "packages/myutils", {"binding": {"namespace": "whisk.system", "name": "utils"},
                                                   "parameters": [{"key": "separator", "value": ";"}]})
        self.assertEqual(r.status, 200, r)
        p = self.w.api("GET", "packages/myutils").json()
        self.assertEqual(p["binding"], {"namespace": "whisk.system", "name": "utils"})
        self.assertEqual(sorted(a["name"] for a in p["actions"]), UTILS)
        # the binding's parameters under the caller's
        rec = self.invoke("_/_/actions/myutils/split", {"payload": "x;y"})
        self.assertEqual(rec["response"]["result"], {"lines": ["x", "y"], "payload": "x;y"})
        self.assertEqual(rec["namespace"], "guest")
        self.assertEqual(ann(rec)["path"], "whisk.system/utils/split")
        rec = self.invoke("_/_/actions/myutils/split", {"payload": "x,y", "separator": ","})
        self.assertEqual(rec["response"]["result"]["lines"], ["x", "y"])
        self.assertEqual(self.invoke("_/_/actions/myutils/namespace", {})["response"]["result"],
                         {"namespace": "guest"})
        # and as a sequence component through the binding
        r = self.w.api("PUT", "actions/viab", {"exec": {"kind": "sequence", "components": [
            "/_/myutils/split", "/_/myutils/head"]}})
        self.assertEqual(r.status, 200, r)
        res = self.invoke("_/_/actions/viab", {"payload": "3;1;2"})["response"]["result"]
        self.assertEqual(res, {"lines": ["3"], "num": 1})

    def test_nobody_writes_into_whisk_system(self):
        other = self.new_user("team1")
        code = {"exec": {"kind": "nodejs:default", "code": "function main() { return {} }"}}
        for key in (None, other):
            for method, path, body in [("PUT", "actions/utils/echo?overwrite=true", code),
                                       ("PUT", "actions/utils/mine", code),
                                       ("DELETE", "actions/utils/echo", None),
                                       ("PUT", "packages/utils?overwrite=true", {"publish": False}),
                                       ("DELETE", "packages/utils?force=true", None),
                                       ("PUT", "packages/mine", {}),
                                       ("PUT", "actions/mine", code),
                                       ("PUT", "triggers/t", {}),
                                       ("POST", "rules/r", {"status": "inactive"})]:
                with self.subTest(method=method, path=path, key="guest" if key is None else "team1"):
                    self.assertError(self.w.request(method, SYS + path, body, key=key), 403)
        echo = self.w.request("GET", SYS + "actions/utils/echo").json()
        self.assertEqual(echo["version"], "0.0.1")
        self.assertEqual(self.invoke("utils/echo", {"x": 1})["response"]["result"], {"x": 1})


class Restart(unittest.TestCase):
    """Seeding across restarts: the same catalog writes nothing; another
    language rewrites the actions (a version up, as an update), not the
    package; user entities stay as they were."""

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="wisp-cat-")
        self.data = os.path.join(self.tmp, "data")
        self.daemons = []

    def tearDown(self):
        for w in self.daemons:
            if w.proc:
                w.stop()
            w.cleanup()
        import shutil
        shutil.rmtree(self.tmp, ignore_errors=True)

    def start(self, *args):
        w = Wispd(data_dir=self.data, args=("--prewarm", "") + args).start()
        self.daemons.append(w)
        return w

    def snapshot(self, w):
        docs = {"packages/utils": w.request("GET", SYS + "packages/utils").json()}
        for name in UTILS:
            docs["actions/utils/" + name] = w.request("GET", SYS + "actions/utils/" + name).json()
        return docs

    def test_restart_rewrites_nothing(self):
        w = self.start()
        before = self.snapshot(w)
        self.assertEqual({d["version"] for d in before.values()}, {"0.0.1"})
        self.assertEqual(w.api("PUT", "actions/mine", {"exec": {"kind": "nodejs:default",
                                                              "code": "function main(a) { return a }"}}).status, 200)
        mine = w.api("GET", "actions/mine").json()
        w.stop()
        w = self.start()
        self.assertEqual(self.snapshot(w), before)  # `updated` and `version` included
        self.assertEqual(w.api("GET", "actions/mine").json(), mine)
        w.stop()

        # a gateway without node: the python versions replace the actions
        path = kinds_without_node(self.tmp)
        w = self.start("--kinds", path)
        py = self.snapshot(w)
        # the package itself is the same (its GET lists its actions' versions)
        strip = lambda d: {k: v for k, v in d.items() if k != "actions"}
        self.assertEqual(strip(py["packages/utils"]), strip(before["packages/utils"]))
        for name in UTILS:
            doc = py["actions/utils/" + name]
            self.assertEqual(doc["version"], "0.0.2", name)
            self.assertEqual(doc["exec"]["kind"], "python:3", name)
            self.assertGreater(doc["updated"], before["actions/utils/" + name]["updated"])
        self.assertEqual(w.request("POST", SYS + "actions/utils/sort?blocking=true&result=true",
                                   {"lines": [10, 9, 1]}).json(), {"lines": [1, 10, 9], "length": 3})
        w.stop()
        w = self.start("--kinds", path)
        self.assertEqual(self.snapshot(w), py)
        w.stop()
        w = self.start()
        back = self.snapshot(w)
        self.assertEqual({back["actions/utils/" + n]["version"] for n in UTILS}, {"0.0.3"})
        self.assertTrue(back["actions/utils/cat"]["exec"]["kind"].startswith("nodejs"))
        self.assertEqual(w.api("GET", "actions/mine").json(), mine)


class PythonCatalog(CatalogCase):
    """Where no nodejs kind can run, the same answers from python:3."""
    kind_family = "python"

    def setUp(self):
        self.kdir = tempfile.mkdtemp(prefix="wisp-kinds-")
        path = kinds_without_node(self.kdir)
        self.w = Wispd(args=("--kinds", path, "--prewarm", "python:3=1")).start()

    def tearDown(self):
        super().tearDown()
        import shutil
        shutil.rmtree(self.kdir, ignore_errors=True)

    def test_each_action_answers_as_openwhisks_catalog(self):
        self.check_answers()

    def test_sequence_and_namespace(self):
        other = self.new_user("team1")
        r = self.w.api("PUT", "actions/lines", {"exec": {"kind": "sequence", "components": [
            "/whisk.system/utils/split", "/whisk.system/utils/sort", "/whisk.system/utils/head"]}}, key=other)
        self.assertEqual(r.status, 200, r)
        # a sequence's parameters go to its first component only: head's num is its default
        rec = self.invoke("_/_/actions/lines", {"payload": "b\na\nc", "num": 2}, key=other)
        self.assertEqual(rec["response"]["result"], {"lines": ["a"], "num": 1})
        self.assertEqual(self.invoke("utils/namespace", {}, key=other)["response"]["result"],
                         {"namespace": "team1"})


if __name__ == "__main__":
    unittest.main()
