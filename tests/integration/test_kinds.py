"""The nodejs kinds as the real wispd offers them (issue 15): named after the
node that is installed (nodejs:18 on Debian 12, nodejs:20 where node 20
runs), never after what the manifest once assumed.

- GET /api/v1 lists exactly the installed major under runtimes.nodejs;
- nodejs:default and nodejs resolve to it, and its activations say so;
- another version, or any nodejs kind where node does not run, is
  OpenWhisk's 400 for an unsupported kind, as an unknown kind is;
- an action stored with another version (node upgraded or downgraded
  under it) keeps running on the installed node.

Other node versions are stood in for by small wrappers (`--interpreters`)
that answer --version with the version they play and exec the real node
for everything else, so each case runs on any machine with a node.
"""
import os
import shutil
import tempfile
import unittest

from harness import NODE_KIND, Wispd, WispTestCase

needs_node = unittest.skipUnless(NODE_KIND, "no /usr/bin/node: no nodejs kind here")
NODE_CODE = "function main(a) { return { node: process.versions.node, got: a } }"


def unsupported(kind):
    return "kind '%s' is not supported." % kind


class FakeNodes:
    """Wrappers playing other node versions, in a folder the workers' user
    (nobody, when wispd runs as root) can reach."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="wisp-nodes-")
        os.chmod(self.dir, 0o755)

    def node(self, version):
        path = os.path.join(self.dir, "node-" + version)
        with open(path, "w") as f:
            f.write('#!/bin/sh\n[ "$1" = --version ] && { echo v%s; exit 0; }\n'
                    'exec /usr/bin/node "$@"\n' % version)
        os.chmod(path, 0o755)
        return path

    def cleanup(self):
        shutil.rmtree(self.dir, ignore_errors=True)


class KindsCase(WispTestCase):
    def runtimes(self, w=None):
        r = (w or self.w).request("GET", "/api/v1", auth=False)
        self.assertEqual(r.status, 200, r)
        return r.json()["runtimes"]

    def put(self, name, kind, w=None, code=NODE_CODE):
        return (w or self.w).api("PUT", "actions/%s?overwrite=true" % name,
                                 {"exec": {"kind": kind, "code": code}})

    def invoke(self, name, w=None):
        r = (w or self.w).api("POST", "actions/%s?blocking=true" % name, {"x": 1})
        self.assertEqual(r.status, 200, r)
        rec = r.json()
        return rec, {a["key"]: a["value"] for a in rec["annotations"]}


@needs_node
class InstalledNode(KindsCase):
    def test_api_lists_the_installed_major_only(self):
        rt = self.runtimes()
        self.assertEqual(rt["nodejs"], [{"kind": NODE_KIND, "default": True}])
        self.assertEqual(rt["python"], [{"kind": "python:3", "default": True}])

    def test_default_and_family_name_resolve_to_it_and_activations_say_so(self):
        for name, kind in (("d", "nodejs:default"), ("f", "nodejs"), ("e", NODE_KIND)):
            r = self.put(name, kind)
            self.assertEqual(r.status, 200, r)
            self.assertEqual(r.json()["exec"]["kind"], NODE_KIND)
            rec, ann = self.invoke(name)
            self.assertEqual(ann["kind"], NODE_KIND)
            self.assertEqual(rec["response"]["result"]["node"].split(".")[0],
                             NODE_KIND.split(":")[1])
            self.assertEqual(rec["response"]["result"]["got"], {"x": 1})

    def test_other_versions_are_unsupported_kinds(self):
        major = int(NODE_KIND.split(":")[1])
        for kind in ("nodejs:%d" % (major - 2), "nodejs:%d" % (major + 2), "nodejs:14"):
            self.assertError(self.put("other", kind), 400, unsupported(kind))
        # the same shape as a kind nobody knows
        body = self.assertError(self.put("other", "cobol:1"), 400, unsupported("cobol:1"))
        wrong = self.assertError(self.put("other", "nodejs:14"), 400)
        self.assertEqual(wrong["error"].replace("nodejs:14", "cobol:1"), body["error"])
        self.assertEqual(self.w.api("GET", "actions/other").status, 404)


@needs_node
class OtherNodes(KindsCase):
    def setUp(self):
        self.fakes = FakeNodes()
        self.addCleanup(self.fakes.cleanup)
        self.wispd_args = ("--interpreters", "nodejs=" + self.fakes.node("18.20.4"),
                           "--prewarm", "python:3=1,nodejs:default=1")
        super().setUp()

    def test_debian12_node_is_nodejs_18(self):
        self.assertEqual(self.runtimes()["nodejs"], [{"kind": "nodejs:18", "default": True}])
        self.assertEqual(self.put("n", "nodejs:default").json()["exec"]["kind"], "nodejs:18")
        _, ann = self.invoke("n")
        self.assertEqual(ann["kind"], "nodejs:18")
        self.assertError(self.put("n20", "nodejs:20"), 400, unsupported("nodejs:20"))

    def test_stored_actions_keep_running_across_a_node_change(self):
        # made while "node 20" ran here ...
        data = self.w.data
        self.w.stop()
        w20 = Wispd(data_dir=data, args=("--interpreters", "nodejs=" + self.fakes.node("20.11.1"))).start()
        try:
            self.assertEqual(self.runtimes(w20)["nodejs"], [{"kind": "nodejs:20", "default": True}])
            self.assertEqual(self.put("old", "nodejs:20", w=w20).status, 200)
            self.assertEqual(self.put("fam", "nodejs", w=w20).json()["exec"]["kind"], "nodejs:20")
            _, ann = self.invoke("old", w=w20)
            self.assertEqual(ann["kind"], "nodejs:20")
        finally:
            w20.stop()
            w20.cleanup()
        # ... and run after node 18 replaced it, with an old prewarm setting
        w18 = Wispd(data_dir=data, args=("--interpreters", "nodejs=" + self.fakes.node("18.20.4"),
                                          "--prewarm", "nodejs:20=1")).start()
        try:
            self.assertEqual(self.runtimes(w18)["nodejs"], [{"kind": "nodejs:18", "default": True}])
            for name in ("old", "fam"):
                rec, ann = self.invoke(name, w=w18)
                self.assertEqual(rec["response"]["status"], "success", rec)
                self.assertEqual(rec["response"]["result"]["got"], {"x": 1})
                # the record names the action's kind as stored
                self.assertEqual(ann["kind"], "nodejs:20")
            got = w18.api("GET", "actions/old").json()
            self.assertEqual(got["exec"]["kind"], "nodejs:20")  # stored data unchanged
            # updating what is stored needs no kind; naming the old one is refused
            r = w18.api("PUT", "actions/old?overwrite=true", {"limits": {"memory": 128}})
            self.assertEqual(r.status, 200, r)
            self.assertError(self.put("old", "nodejs:20", w=w18), 400, unsupported("nodejs:20"))
            self.assertIn("prewarm: nodejs:20 is not installed here; nodejs:18 stem cells instead",
                          w18.log())
        finally:
            w18.stop()
            w18.cleanup()


class NoNode(KindsCase):
    wispd_args = ("--interpreters", "nodejs=/nonexistent/bin/node")

    def test_no_nodejs_kind_where_node_does_not_run(self):
        rt = self.runtimes()
        self.assertNotIn("nodejs", rt)
        self.assertEqual(rt["python"], [{"kind": "python:3", "default": True}])
        for kind in ("nodejs:default", "nodejs", "nodejs:18", "nodejs:20"):
            self.assertError(self.put("n", kind), 400, unsupported(kind))
        # wispd started with the default prewarm (nodejs:default=1) all the same,
        # said why, and python runs
        self.assertIn("/nonexistent/bin/node cannot run here", self.w.log())
        r = self.put("p", "python:default", code="def main(a):\n    return {'py': True}\n")
        self.assertEqual(r.status, 200, r)
        rec, ann = self.invoke("p")
        self.assertEqual((rec["response"]["result"], ann["kind"]), ({"py": True}, "python:3"))


if __name__ == "__main__":
    unittest.main()
