"""`wisp deploy` and `wisp undeploy` (tools/cli_deploy.c, tools/manifest.c)
against a real wispd with a private mosquitto broker.

The project deployed is the example kept in the repo, tools/examples/sensor
(copied to a fresh folder per test, so tests may edit it): a package with
python actions (one from a folder, zipped on the fly), a sequence, a web
action, a trigger on /whisk.system/mqtt/subscribe and one on an alarm
interval, and a rule for each. What is checked is what the server holds
afterwards (read back through the REST API), what the CLI prints and how
it exits. No test depends on timing.
"""
import io
import json
import os
import shutil
import subprocess
import tempfile
import unittest
import zipfile

from harness import GUEST_KEY, SANITIZER_MARKS, WISP_CLI, Broker, Wispd, WispTestCase

EXAMPLE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tools", "examples", "sensor")
ACTIONS = ["sensor/alert", "sensor/check", "sensor/dashboard", "sensor/parse", "sensor/report"]
TRIGGERS = ["hourly", "reading"]
RULES = ["every-hour", "on-reading"]
ENV_DROP = ("WSK_CONFIG_FILE", "WHISK_AUTH", "WHISK_APIHOST", "WHISK_NAMESPACE", "WHISK_APIVERSION")


class DeployCase(WispTestCase):
    def setUp(self):
        self.broker = Broker().start()
        self.w = Wispd(args=["--mqtt", self.broker.url, "--prewarm", ""]).start()
        self.home = tempfile.mkdtemp(prefix="wisp-deploy-")
        self.proj = os.path.join(self.home, "sensor")
        shutil.copytree(EXAMPLE, self.proj)
        self.env = {k: v for k, v in os.environ.items() if k not in ENV_DROP}
        self.env.update(HOME=self.home, NO_COLOR="1", SENSOR_SITE="lab")
        with open(os.path.join(self.home, ".wskprops"), "w") as f:
            f.write("APIHOST=%s://%s:%d\nAUTH=%s\n" % (self.w.scheme, self.w.host, self.w.port, GUEST_KEY))

    def tearDown(self):
        try:
            super().tearDown()
        finally:
            self.broker.cleanup()
            shutil.rmtree(self.home, ignore_errors=True)

    def wisp(self, *args, code=0, env=None):
        e = dict(self.env)
        e.update(env or {})
        p = subprocess.run([WISP_CLI, *args], capture_output=True, text=True, env=e, cwd=self.proj,
                           timeout=120, stdin=subprocess.DEVNULL)
        for mark in SANITIZER_MARKS:
            self.assertNotIn(mark, p.stderr, p.stderr)
        if code is not None:
            self.assertEqual(p.returncode, code, "wisp %s\nstdout: %s\nstderr: %s"
                             % (" ".join(args), p.stdout, p.stderr))
        return p

    def edit(self, name, old, new):
        path = os.path.join(self.proj, name)
        with open(path) as f:
            text = f.read()
        self.assertIn(old, text)
        with open(path, "w") as f:
            f.write(text.replace(old, new))

    def write(self, name, text):
        with open(os.path.join(self.proj, name), "w") as f:
            f.write(text)

    def get(self, path):
        r = self.w.api("GET", path)
        return r.json() if r.status == 200 else None

    def names(self, coll):
        """Qualified names of everything in a collection (actions: pkg/name)."""
        out = []
        for e in self.w.api("GET", "%s?limit=200" % coll).json():
            ns = e["namespace"].split("/", 1)
            out.append("/".join(ns[1:] + [e["name"]]))
        return sorted(out)

    def everything(self):
        return {c: self.names(c) for c in ("packages", "actions", "triggers", "rules")}

    def managed(self, doc):
        for a in doc["annotations"]:
            if a["key"] == "whisk-managed":
                return a["value"]
        return None

    def assertDeployed(self):
        self.assertEqual(self.names("packages"), ["sensor"])
        self.assertEqual(self.names("actions"), ACTIONS)
        self.assertEqual(self.names("triggers"), TRIGGERS)
        self.assertEqual(self.names("rules"), RULES)


class TestDeploy(DeployCase):
    def test_deploy_creates_everything_with_annotations(self):
        out = self.wisp("deploy", "-m", "manifest.yaml", "-d", "deployment.yaml").stdout.splitlines()
        self.assertEqual(out[:6], ["ok: created package sensor", "ok: created action sensor/parse",
                                   "ok: created action sensor/alert", "ok: created action sensor/report",
                                   "ok: created action sensor/dashboard", "ok: created sequence sensor/check"])
        self.assertEqual(out[6:], ["ok: created trigger reading", "ok: created trigger hourly",
                                   "ok: created rule on-reading", "ok: created rule every-hour",
                                   "ok: deployed project sensor: 10 changes"])
        self.assertDeployed()
        for path in ["packages/sensor", "actions/sensor/parse", "actions/sensor/check", "triggers/reading",
                     "rules/on-reading"]:
            wm = self.managed(self.get(path))
            self.assertEqual(set(wm), {"projectName", "projectHash", "projectDeps", "file"}, path)
            self.assertEqual((wm["projectName"], wm["projectDeps"], wm["file"]),
                             ("sensor", [], "manifest.yaml"))
            self.assertRegex(wm["projectHash"], "^[0-9a-f]{40}$")
        # $VAR and ${VAR}, and deployment.yaml over the manifest's inputs
        pkg = self.get("packages/sensor")
        self.assertIn({"key": "site", "value": "lab"}, pkg["parameters"])
        alert = self.get("actions/sensor/alert")
        self.assertEqual(sorted((p["key"], p["value"]) for p in alert["parameters"]), [("high", 35), ("low", 5)])
        dash = self.get("actions/sensor/dashboard")
        self.assertIn({"key": "title", "value": "Sensor lab"}, dash["parameters"])
        self.assertIn({"key": "web-export", "value": True}, dash["annotations"])
        self.assertEqual(self.get("actions/sensor/report")["limits"]["timeout"], 10000)
        self.assertEqual(self.get("triggers/reading")["feed"]["topic"], "sensors/lab/temperature")
        self.assertEqual(self.get("triggers/hourly")["feed"]["minutes"], 60)
        check = self.get("actions/sensor/check")["exec"]
        self.assertEqual(check["kind"], "sequence")
        self.assertEqual(check["components"], ["/guest/sensor/parse", "/guest/sensor/alert"])
        rule = self.get("rules/on-reading")
        self.assertEqual((rule["trigger"]["name"], rule["action"]["name"]), ("reading", "check"))

    def test_folder_is_zipped(self):
        self.wisp("deploy")
        code = self.get("actions/sensor/dashboard")["exec"]
        self.assertTrue(code["binary"])
        import base64
        z = zipfile.ZipFile(io.BytesIO(base64.b64decode(code["code"])))
        self.assertEqual(sorted(z.namelist()), ["__main__.py", "page.py"])
        self.assertIsNone(z.testzip())
        r = self.w.request("GET", "/api/v1/web/guest/sensor/dashboard", auth=False)
        self.assertEqual(r.status, 200, r)
        self.assertIn("<h1>Sensor lab</h1>", r.body if isinstance(r.body, str) else r.body.decode())

    def test_sequence_runs(self):
        self.wisp("deploy", "-d", "deployment.yaml")
        r = self.w.api("POST", "actions/sensor/check?blocking=true&result=true", {"payload": '{"celsius": 33}'})
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json(), {"site": "lab", "celsius": 33.0, "state": "ok"})  # high is 35 here

    def test_second_deploy_changes_nothing(self):
        self.wisp("deploy", "-d", "deployment.yaml")
        before = {p: self.get(p) for p in ["actions/sensor/parse", "triggers/reading", "rules/every-hour"]}
        out = self.wisp("deploy", "-d", "deployment.yaml").stdout.splitlines()
        self.assertEqual(out[-1], "ok: nothing to change in project sensor", out)
        self.assertEqual(len(out), 1, out)
        for p, doc in before.items():
            self.assertEqual(self.get(p)["updated"], doc["updated"], p)

    def test_changed_input_updates_only_that(self):
        self.wisp("deploy")
        out = self.wisp("deploy", "-p", "site", "roof").stdout.splitlines()
        self.assertIn("ok: updated package sensor", out)
        self.assertIn({"key": "site", "value": "roof"}, self.get("packages/sensor")["parameters"])

    def test_redeploy_removes_what_the_manifest_dropped(self):
        self.wisp("deploy")
        self.edit("manifest.yaml", "        report:\n          function: src/report.py\n"
                  "          runtime: python:3\n          limits:\n            timeout: 10000\n", "")
        self.edit("manifest.yaml", "        every-hour:\n          trigger: hourly\n          action: report\n", "")
        out = self.wisp("deploy").stdout.splitlines()
        self.assertEqual(out[0], "ok: deleted rule every-hour")  # before anything else
        self.assertIn("ok: deleted action sensor/report", out)
        self.assertNotIn("sensor/report", self.names("actions"))
        self.assertEqual(self.names("rules"), ["on-reading"])
        self.assertEqual(self.names("triggers"), TRIGGERS)

    def test_undeploy_removes_exactly_the_project(self):
        self.wisp("action", "create", "mine", os.path.join(self.proj, "src", "report.py"))
        self.wisp("trigger", "create", "mytrigger")
        self.wisp("deploy")
        out = self.wisp("undeploy", "-m", "manifest.yaml").stdout.splitlines()
        self.assertEqual(out[0], "ok: deleted rule every-hour")
        self.assertEqual(out[-1], "ok: undeployed project sensor")
        self.assertEqual(self.everything(), {"packages": [], "actions": ["mine"], "triggers": ["mytrigger"],
                                             "rules": []})
        m = self.w.request("GET", "/metrics", auth=False).body
        self.assertIn("wisp_feed_bindings 0", m if isinstance(m, str) else m.decode())
        self.assertEqual(self.wisp("undeploy").stdout, "ok: nothing to undeploy in project sensor\n")

    def test_dry_run_writes_nothing(self):
        out = self.wisp("deploy", "--dry-run").stdout.splitlines()
        self.assertEqual(out[0], "would create package sensor")
        self.assertEqual(out[-1], "ok: dry run of project sensor: 10 changes, nothing written")
        self.assertEqual(self.everything(), {"packages": [], "actions": [], "triggers": [], "rules": []})

    def test_refuses_an_entity_of_someone_else(self):
        self.wisp("trigger", "create", "hourly")
        p = self.wisp("deploy", code=1)
        self.assertEqual(p.stderr, "error: trigger hourly exists and is not part of project 'sensor'; "
                                   "nothing deployed\n")
        self.assertEqual(self.names("actions"), [])

    def test_feed_failure_midway_leaves_no_rule(self):
        self.edit("manifest.yaml", "minutes: 60", "minutes: -1")
        p = self.wisp("deploy", code=246)
        self.assertEqual(p.stdout.splitlines()[-1], "ok: created trigger reading")
        self.assertTrue(p.stderr.startswith(
            "deploy of project 'sensor' stopped; not done:\n  create trigger hourly\n"
            "  create rule on-reading\n  create rule every-hour\n"
            "error: Unable to configure feed '/whisk.system/alarms/interval': "
            "The following application error was received:"), p.stderr)
        self.assertEqual(self.names("triggers"), ["reading"])  # hourly went with its feed's refusal
        self.assertEqual(self.names("rules"), [])
        # fixed, the next deploy does the rest
        self.edit("manifest.yaml", "minutes: -1", "minutes: 60")
        out = self.wisp("deploy").stdout.splitlines()
        self.assertIn("ok: created trigger hourly", out)
        self.assertDeployed()

    def test_zip_function(self):
        with zipfile.ZipFile(os.path.join(self.proj, "src", "report.zip"), "w") as z:
            z.writestr("__main__.py", "def main(a):\n    return {'zipped': True}\n")
        self.edit("manifest.yaml", "function: src/report.py", "function: src/report.zip")
        self.wisp("deploy")
        r = self.w.api("POST", "actions/sensor/report?blocking=true&result=true", {})
        self.assertEqual((r.status, r.json()), (200, {"zipped": True}))

    def test_typed_inputs_and_top_level_packages(self):
        self.write("m.yaml", "project:\n  name: small\n  packages:\n    p:\n      inputs:\n"
                   "        a: {type: string, default: dflt}\n        b: {type: integer, value: 7}\n"
                   "        c: '12'\n      actions:\n        x:\n          function: src/report.py\n")
        self.assertEqual(self.wisp("deploy", "-m", "m.yaml").stdout,
                         "ok: created package p\nok: created action p/x\nok: deployed project small: 2 changes\n")
        self.assertEqual(self.get("packages/p")["parameters"],
                         [{"key": "a", "value": "dflt"}, {"key": "b", "value": 7}, {"key": "c", "value": "12"}])
        self.assertEqual(self.wisp("undeploy", "-m", "m.yaml").stdout,
                         "ok: deleted action p/x\nok: deleted package p\nok: undeployed project small\n")

    def test_every_action_key(self):
        """main, docker (an image alone, and with code for its init), web:
        raw, each limit by its manifest name, and annotations of packages,
        actions and triggers, read back from the server."""
        self.write("src/two.py", "def main(a):\n    return {'from': 'main'}\n\n"
                   "def handle(a):\n    return {'from': 'handle', 'got': a.get('x')}\n")
        self.write("k.yaml", """project:
  name: keys
  packages:
    k:
      version: 2.1.0
      license: MIT
      annotations:
        owner: lab
      actions:
        named:
          function: src/two.py
          runtime: python:3
          main: handle
          web: raw
          annotations:
            team: ops
          limits:
            timeout: 5000
            memorySize: 128
            logSize: 5
            concurrentActivations: 1
        boxed:
          docker: sensorbox:1
        boxed-code:
          function: src/two.py
          docker: sensorbox:1
          main: handle
      triggers:
        tick:
          annotations:
            origin: manual
      rules:
        on-tick:
          trigger: tick
          action: named
""")
        self.wisp("deploy", "-m", "k.yaml")
        named = self.get("actions/k/named")
        self.assertEqual((named["exec"]["kind"], named["exec"].get("main")), ("python:3", "handle"))
        annots = {a["key"]: a["value"] for a in named["annotations"]}
        self.assertEqual((annots["web-export"], annots["raw-http"], annots["final"], annots["team"]),
                         (True, True, True, "ops"))
        self.assertEqual(named["limits"], {"timeout": 5000, "memory": 128, "logs": 5, "concurrency": 1})
        r = self.w.api("POST", "actions/k/named?blocking=true&result=true", {"x": 3})
        self.assertEqual((r.status, r.json()), (200, {"from": "handle", "got": 3}))
        # raw: the query string arrives as __ow_query, not as parameters
        r = self.w.request("GET", "/api/v1/web/guest/k/named.json?x=4", auth=False)
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json(), {"from": "handle", "got": None})

        boxed = self.get("actions/k/boxed")["exec"]
        self.assertEqual((boxed["kind"], boxed["image"]), ("blackbox", "sensorbox:1"))
        self.assertNotIn("code", boxed)
        coded = self.get("actions/k/boxed-code")["exec"]
        self.assertEqual((coded["kind"], coded["image"], coded.get("main")), ("blackbox", "sensorbox:1", "handle"))
        self.assertIn("def handle(a):", coded["code"])

        pkg = {a["key"]: a["value"] for a in self.get("packages/k")["annotations"]}
        self.assertEqual(pkg["owner"], "lab")
        tick = {a["key"]: a["value"] for a in self.get("triggers/tick")["annotations"]}
        self.assertEqual(tick["origin"], "manual")
        self.assertEqual(self.wisp("deploy", "-m", "k.yaml").stdout,
                         "ok: nothing to change in project keys\n")

    def test_empty_variable(self):
        self.wisp("deploy", env={"SENSOR_SITE": ""})
        self.assertEqual(self.get("triggers/reading")["feed"]["topic"], "sensors//temperature")


class TestBadManifests(DeployCase):
    def bad(self, text, error, name="manifest.yaml"):
        self.write(name, text)
        p = self.wisp("deploy", "-m", name, code=1)
        self.assertEqual(p.stderr, "error: %s\n" % error)
        self.assertEqual(p.stdout, "")
        self.assertEqual(self.everything(), {"packages": [], "actions": [], "triggers": [], "rules": []})

    def test_yaml_syntax(self):
        self.bad("project:\n  name: x\n  packages: [a\n",
                 "manifest.yaml:4: YAML syntax error: did not find expected ',' or ']' "
                 "while parsing a flow sequence")

    def test_unknown_key(self):
        self.bad("project:\n  name: x\n  packages:\n    p:\n      actions:\n        a:\n"
                 "          function: src/parse.py\n          runtme: python:3\n",
                 "manifest.yaml:8: unknown key 'runtme' in an action")

    def test_missing_file(self):
        self.bad("project:\n  name: x\n  packages:\n    p:\n      actions:\n        a:\n"
                 "          function: src/nope.py\n",
                 "manifest.yaml:7: function file 'src/nope.py' does not exist")

    def test_rule_to_undefined_action(self):
        self.bad("project:\n  name: x\n  packages:\n    p:\n      actions:\n        a:\n"
                 "          function: src/parse.py\n      triggers:\n        t: {}\n"
                 "      rules:\n        r:\n          trigger: t\n          action: b\n",
                 "manifest.yaml:11: rule 'r' names action 'p/b', which the manifest does not define")

    def test_rule_to_undefined_trigger(self):
        self.bad("project:\n  name: x\n  packages:\n    p:\n      actions:\n        a:\n"
                 "          function: src/parse.py\n      rules:\n        r: {trigger: t, action: a}\n",
                 "manifest.yaml:9: rule 'r' names trigger 't', which the manifest does not define")

    def test_bad_runtime(self):
        self.bad("project:\n  name: x\n  packages:\n    p:\n      actions:\n        a:\n"
                 "          function: src/parse.py\n          runtime: python\n",
                 "manifest.yaml:8: 'python' is not a runtime (FAMILY:VERSION)")
        self.bad("project:\n  name: x\n  packages:\n    p:\n      actions:\n        a:\n"
                 "          function: src/parse.py\n          runtime: cobol:74\n",
                 "manifest.yaml:6: action 'a': runtime 'cobol:74' is not one the server has")

    def test_bad_deployment(self):
        self.write("d.yaml", "project:\n  name: sensor\n  packages:\n    sensor:\n      actions:\n"
                   "        nope:\n          inputs: {a: 1}\n")
        p = self.wisp("deploy", "-d", "d.yaml", code=1)
        self.assertEqual(p.stderr, "error: d.yaml:6: action 'sensor/nope' is not in the manifest\n")
        self.assertEqual(self.names("packages"), [])

    def test_one_bad_entity_stops_everything(self):
        # the error is late in the file: nothing before it is written either
        self.edit("manifest.yaml", "          action: report\n", "          action: reprot\n")
        p = self.wisp("deploy", code=1)
        self.assertRegex(p.stderr, r"^error: manifest.yaml:\d+: rule 'every-hour' names action 'sensor/reprot'")
        self.assertEqual(self.names("packages"), [])


if __name__ == "__main__":
    unittest.main()
