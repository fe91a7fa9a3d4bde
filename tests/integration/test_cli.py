"""The wisp CLI's wsk commands (tools/cli_*.c) against a real wispd.

Every test runs the real binary (WISP_CLI) with a HOME of its own, so
~/.wskprops is a fresh file (written the way wsk writes one) and nothing
of the machine's leaks in; WSK_CONFIG_FILE and WHISK_* are taken out of
the environment and put back only where a test is about them. Checked:
what each verb sends (read back through the REST API), what it prints
(wsk's words and layouts, and --json), and how it exits: 0; 2 with the
usage line for usage errors; HTTP status - 256 for the server's errors
(404 -> 148, 409 -> 153, 400 -> 144, 502 -> 246), with the server's
"error" and "code"; 3 when the host cannot be reached. No test depends on
timing: waits poll a condition against a deadline.
"""
import base64
import io
import json
import os
import re
import shutil
import signal
import ssl
import stat
import subprocess
import tempfile
import threading
import unittest
import zipfile

from harness import GUEST_KEY, NODE_KIND, SANITIZER_MARKS, WISP_CLI, Wispd, WispTestCase, free_port, wait_for

HELLO_PY = "def main(a):\n    print('hello log')\n    return {'greeting': 'hi ' + a.get('name', 'x')}\n"
HELLO_JS = "function main(a) { return {js: a.name || 'x'} }\n"
FAIL_PY = "def main(a):\n    return {'error': 'it broke'}\n"
# a feed action of our own: it answers what wsk's feed protocol sent it
FEED_PY = ("def main(a):\n    return {'event': a.get('lifecycleEvent'), 'trigger': a.get('triggerName'),\n"
           "            'key': a.get('authKey'), 'x': a.get('x')}\n")
# an actionloop script (kind native): one JSON line in, one out on fd 3
NATIVE_SH = ("#!/bin/sh\nwhile IFS= read -r line; do\n  echo native-log\n"
             "  printf '{\"native\":true}\\n' >&3\ndone\n")
ACT_ID = re.compile(r"^[0-9a-f]{32}$")
ENV_DROP = ("WSK_CONFIG_FILE", "WHISK_AUTH", "WHISK_APIHOST", "WHISK_NAMESPACE", "WHISK_APIVERSION")


def ok_json(out):
    """'ok: got ...' and the JSON after it."""
    head, _, rest = out.partition("\n")
    return head, json.loads(rest)


class CliCase(WispTestCase):
    """A wispd, a HOME with a wsk properties file pointing at it, and a
    working directory for code files."""

    wispd_args = ("--prewarm", "")

    def setUp(self):
        super().setUp()
        self.home = tempfile.mkdtemp(prefix="wisp-cli-")
        self.env = {k: v for k, v in os.environ.items() if k not in ENV_DROP}
        self.env["HOME"] = self.home
        self.env.pop("NO_COLOR", None)
        self.apihost = "%s://%s:%d" % (self.w.scheme, self.w.host, self.w.port)
        self.props = os.path.join(self.home, ".wskprops")
        self.write_props("APIHOST=%s\nAUTH=%s\n" % (self.apihost, GUEST_KEY))

    def tearDown(self):
        shutil.rmtree(self.home, ignore_errors=True)
        super().tearDown()

    def write_props(self, text, path=None):
        with open(path or self.props, "w") as f:
            f.write(text)

    def read_props(self, path=None):
        with open(path or self.props) as f:
            return f.read()

    def file(self, name, text, mode=0o644):
        path = os.path.join(self.home, name)
        with open(path, "wb" if isinstance(text, bytes) else "w") as f:
            f.write(text)
        os.chmod(path, mode)
        return path

    def wisp(self, *args, code=0, env=None, timeout=120):
        e = dict(self.env)
        e.update(env or {})
        p = subprocess.run([WISP_CLI, *args], capture_output=True, text=True, env=e, cwd=self.home,
                           timeout=timeout, stdin=subprocess.DEVNULL)
        for mark in SANITIZER_MARKS:
            self.assertNotIn(mark, p.stderr, p.stderr)
        if code is not None:
            self.assertEqual(p.returncode, code, "wisp %s\nstdout: %s\nstderr: %s"
                             % (" ".join(args), p.stdout, p.stderr))
        return p

    def wisp_json(self, *args, **kw):
        return json.loads(self.wisp("--json", *args, **kw).stdout)

    def assertUsage(self, p, usage):
        """A usage error: exit 2 (checked by wisp()), the message, the usage line."""
        self.assertIn("usage: wisp " + usage, p.stderr)
        self.assertTrue(p.stderr.startswith("error: "), p.stderr)

    def assertServerError(self, p, message):
        """The server's "error" and "code" on stderr."""
        self.assertRegex(p.stderr, r"^error: .*%s.* \(code [0-9a-f]+\)\n" % re.escape(message))

    def action(self, name, kind=None, code=HELLO_PY, ext=".py", *flags):
        os.makedirs(os.path.join(self.home, "src"), exist_ok=True)
        f = self.file(os.path.join("src", name.replace("/", "_") + ext), code)
        self.wisp("action", "create", name, f, *(("--kind", kind) if kind else ()), *flags)

    def api_get(self, path):
        r = self.w.api("GET", path)
        self.assertEqual(r.status, 200, r)
        return r.json()


# ==== properties ==============================================================

class Properties(CliCase):
    def test_set_writes_the_wsk_format_private(self):
        os.remove(self.props)
        p = self.wisp("property", "set", "--apihost", self.apihost, "--auth", GUEST_KEY,
                      "--namespace", "guest")
        self.assertEqual(p.stdout.splitlines(), [
            "ok: whisk auth set. Run 'wisp property get --auth' to see the new value.",
            "ok: whisk API host set to " + self.apihost,
            "ok: whisk namespace set to guest"])
        self.assertEqual(sorted(self.read_props().splitlines()),
                         sorted(["APIHOST=" + self.apihost, "AUTH=" + GUEST_KEY, "NAMESPACE=guest"]))
        self.assertEqual(stat.S_IMODE(os.stat(self.props).st_mode), 0o600)
        self.wisp("action", "list")  # the namespace set works

    def test_a_file_wsk_wrote_reads_and_keeps_what_wisp_does_not_use(self):
        wsk_file = ("# made by wsk\nAPIGW_ACCESS_TOKEN=abc=def\n  AUTH = %s   # the key\n"
                    "APIHOST=%s\nNAMESPACE=\nAPIVERSION=v1\n" % (GUEST_KEY, self.apihost))
        self.write_props(wsk_file)
        self.assertEqual(self.wisp("action", "list").stdout, "actions\n")
        p = self.wisp("property", "get", "--auth", "--namespace")
        self.assertEqual(p.stdout, "whisk auth\t\t%s\nwhisk namespace\t\t_\n" % GUEST_KEY)
        self.wisp("property", "set", "--namespace", "guest")
        before = wsk_file.splitlines()
        after = self.read_props().splitlines()
        # one line changed in place; comments, order and unknown keys kept
        self.assertEqual(after, before[:4] + ["NAMESPACE=guest"] + before[5:])

    def test_get_shows_every_property_as_wsk(self):
        self.write_props("APIHOST=%s\nAUTH=%s\nCACERT=/etc/ca.pem\n" % (self.apihost, GUEST_KEY))
        build = self.w.request("GET", "/api/v1", auth=False).json()["build"]  # the project's version
        lines = self.wisp("property", "get").stdout.splitlines()
        self.assertEqual(lines, [
            "client cert\t\t", "Client key\t\t", "CA certificate\t\t/etc/ca.pem",
            "whisk auth\t\t" + GUEST_KEY, "whisk API host\t\t" + self.apihost,
            "whisk API version\tv1", "whisk namespace\t\t_", "whisk CLI version\t" + build,
            "whisk API build\t\t" + build, "whisk API build number\tUnknown"])
        self.assertEqual(self.wisp("property", "get", "--apihost").stdout,
                         "whisk API host\t\t%s\n" % self.apihost)
        j = self.wisp_json("property", "get", "--auth", "--cliversion")
        self.assertEqual(j, {"auth": GUEST_KEY, "cliversion": build})

    def test_unset(self):
        self.write_props("APIHOST=%s\nAUTH=%s\nNAMESPACE=guest\n" % (self.apihost, GUEST_KEY))
        p = self.wisp("property", "unset", "--namespace", "--auth")
        self.assertEqual(p.stdout.splitlines(), [
            "ok: whisk auth unset.",
            "ok: whisk namespace unset; the default value of _ will be used."])
        self.assertEqual(self.read_props(), "APIHOST=%s\n" % self.apihost)
        p = self.wisp("action", "list", code=2)
        self.assertIn("error: Authorization key is not configured (--auth is required)", p.stderr)
        self.assertUsage(self.wisp("property", "unset", code=2), "property unset")

    def test_wsk_config_file_names_the_file(self):
        other = os.path.join(self.home, "other.props")
        env = {"WSK_CONFIG_FILE": other}
        self.wisp("property", "set", "--apihost", self.apihost, "--auth", GUEST_KEY, env=env)
        self.assertIn("AUTH=" + GUEST_KEY, self.read_props(other))
        self.assertEqual(self.read_props(), "APIHOST=%s\nAUTH=%s\n" % (self.apihost, GUEST_KEY))
        self.wisp("action", "list", env=env)
        # a file that does not exist means no properties (wsk's rule), not ~/.wskprops
        p = self.wisp("action", "list", env={"WSK_CONFIG_FILE": other + ".missing"}, code=2)
        self.assertIn("error: The API host is not configured", p.stderr)

    def test_flags_over_environment_over_file(self):
        dead = "http://127.0.0.1:%d" % free_port()
        self.write_props("APIHOST=%s\nAUTH=nobody:nothing\n" % dead)
        p = self.wisp("action", "list", "--apihost", self.apihost, code=145)
        self.assertServerError(p, "The supplied authentication is invalid.")
        self.wisp("action", "list", "--apihost", self.apihost, "--auth", GUEST_KEY)
        self.wisp("action", "list", "-u", GUEST_KEY, env={"WHISK_APIHOST": self.apihost})
        self.wisp("action", "list", env={"WHISK_APIHOST": self.apihost, "WHISK_AUTH": GUEST_KEY})
        p = self.wisp("action", "list", "--auth", "x:y", env={"WHISK_APIHOST": self.apihost,
                                                               "WHISK_AUTH": GUEST_KEY}, code=145)

    def test_refused_values_change_nothing(self):
        before = self.read_props()
        p = self.wisp("property", "set", "--namespace", "nope", code=1)
        self.assertEqual(p.stderr, "error: Namespace 'nope' is not in the list of entitled namespaces\n")
        p = self.wisp("property", "set", "--apihost", "ftp://x", "--auth", "a:b", code=2)
        self.assertIn("Unable to set API host value; the API host value 'ftp://x' is invalid", p.stderr)
        self.assertEqual(self.read_props(), before)
        self.assertUsage(self.wisp("property", "set", code=2), "property set")

    def test_unreachable_host(self):
        dead = "http://127.0.0.1:%d" % free_port()
        p = self.wisp("action", "list", "--apihost", dead, code=3)
        self.assertRegex(p.stderr, r"^error: Unable to obtain the list of actions for namespace "
                                   r"'default': cannot reach %s: .*(refused|connect)" % re.escape(dead))
        # (property get's --apihost is a switch, as in wsk: the host comes from elsewhere)
        p = self.wisp("property", "get", "--apibuild", env={"WHISK_APIHOST": dead}, code=3)
        self.assertEqual(p.stdout, "whisk API build\t\tUnknown\n")
        self.assertIn("Unable to obtain API build information", p.stderr)


class Tls(unittest.TestCase):
    """--cacert (and CACERT), -i/--insecure against an https wispd."""

    def setUp(self):
        self.d = tempfile.mkdtemp(prefix="wisp-cli-tls-")
        self.cert, key = os.path.join(self.d, "cert.pem"), os.path.join(self.d, "key.pem")
        subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                        "-nodes", "-keyout", key, "-out", self.cert, "-days", "2", "-subj", "/CN=wisp-test",
                        "-addext", "subjectAltName=IP:127.0.0.1"], check=True, capture_output=True, timeout=60)
        self.w = Wispd(args=["--tls-cert", self.cert, "--tls-key", key, "--prewarm", ""]).start()
        self.env = {k: v for k, v in os.environ.items() if k not in ENV_DROP}
        self.env["HOME"] = self.d
        self.host = "https://127.0.0.1:%d" % self.w.port

    def tearDown(self):
        try:
            self.w.stop()
        finally:
            self.w.cleanup()
            shutil.rmtree(self.d, ignore_errors=True)

    def wisp(self, *args):
        return subprocess.run([WISP_CLI, *args, "--apihost", self.host, "--auth", GUEST_KEY],
                              capture_output=True, text=True, env=self.env, timeout=60,
                              stdin=subprocess.DEVNULL)

    def test_cacert_insecure_and_refusal(self):
        p = self.wisp("namespace", "list")
        self.assertEqual(p.returncode, 3, p)
        self.assertIn("cannot reach %s: SSL certificate problem" % self.host, p.stderr)
        p = self.wisp("namespace", "list", "--cacert", self.cert)
        self.assertEqual((p.returncode, p.stdout), (0, "namespaces\nguest\n"), p)
        p = self.wisp("-i", "namespace", "list")
        self.assertEqual((p.returncode, p.stdout), (0, "namespaces\nguest\n"), p)
        with open(os.path.join(self.d, ".wskprops"), "w") as f:
            f.write("CACERT=%s\n" % self.cert)
        p = self.wisp("namespace", "list")
        self.assertEqual(p.returncode, 0, p)


# ==== actions =================================================================

class ActionCode(CliCase):
    def test_kind_from_the_file_and_kind_over_it(self):
        self.action("py")
        ex = self.api_get("actions/py")["exec"]
        self.assertEqual((ex["kind"], ex["code"], ex["binary"]), ("python:3", HELLO_PY, False))
        if NODE_KIND:
            self.action("js", None, HELLO_JS, ".js")
            self.assertEqual(self.api_get("actions/js")["exec"]["kind"], NODE_KIND)
        self.action("txt", "python:3", HELLO_PY, ".txt")
        self.assertEqual(self.api_get("actions/txt")["exec"]["kind"], "python:3")
        p = self.wisp("action", "create", "bad", self.file("bad.txt", HELLO_PY), code=2)
        self.assertIn("error: '.txt' is not a supported action runtime", p.stderr)
        self.assertUsage(p, "action create ACTION_NAME ACTION")
        p = self.wisp("action", "create", "nofile", "missing.py", code=2)
        self.assertIn("error: File 'missing.py' is not a valid file or it does not exist", p.stderr)

    def test_zip_needs_a_kind_and_goes_as_base64(self):
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w") as z:
            z.writestr("__main__.py", "def main(a):\n    return {'zipped': True}\n")
        f = self.file("z.zip", buf.getvalue())
        p = self.wisp("action", "create", "z", f, code=2)
        self.assertIn("creating an action from a .zip artifact requires specifying the action kind "
                      "explicitly", p.stderr)
        self.wisp("action", "create", "z", f, "--kind", "python:3")
        ex = self.w.api("GET", "actions/z?code=true").json()["exec"]
        self.assertTrue(ex["binary"])
        self.assertEqual(base64.b64decode(ex["code"]), buf.getvalue())
        self.assertEqual(json.loads(self.wisp("action", "invoke", "z", "-r").stdout), {"zipped": True})

    def test_native_script_and_executable(self):
        self.wisp("action", "create", "nat", self.file("nat", NATIVE_SH, 0o755))
        self.assertEqual(self.api_get("actions/nat")["exec"]["kind"], "native")
        self.assertEqual(json.loads(self.wisp("action", "invoke", "nat", "-r").stdout), {"native": True})
        with open("/bin/true", "rb") as f:
            elf = f.read()
        self.wisp("action", "create", "elf", self.file("truebin", elf, 0o755))
        ex = self.w.api("GET", "actions/elf?code=true").json()["exec"]
        self.assertEqual((ex["kind"], ex["binary"]), ("native", True))
        self.assertEqual(base64.b64decode(ex["code"]), elf)
        p = self.wisp("action", "create", "plain", self.file("plain", NATIVE_SH, 0o644), code=2)
        self.assertIn("'plain' is not a supported action runtime", p.stderr)

    def test_main_docker_sequence(self):
        self.action("m", None, "def other(a):\n    return {'via': 'other'}\n", ".py", "--main", "other")
        self.assertEqual(self.api_get("actions/m")["exec"]["main"], "other")
        self.assertEqual(json.loads(self.wisp("action", "invoke", "m", "-r").stdout), {"via": "other"})
        self.wisp("action", "create", "bb", "--docker", "example/img:1")
        ex = self.api_get("actions/bb")["exec"]
        self.assertEqual((ex["kind"], ex["image"]), ("blackbox", "example/img:1"))
        p = self.wisp("action", "create", "bb2", "--docker", "x", "--kind", "python:3", code=2)
        self.assertIn("Cannot specify both --kind and --docker at the same time.", p.stderr)
        self.action("hello")
        self.action("m2", None, "def main(a):\n    return {'name': a['greeting'].upper()}\n")
        self.wisp("action", "create", "chain", "--sequence", "hello,/_/m2")
        ex = self.api_get("actions/chain")["exec"]
        self.assertEqual(ex["kind"], "sequence")
        self.assertEqual(len(ex["components"]), 2)
        out = self.wisp("action", "invoke", "chain", "-r", "-p", "name", "seq").stdout
        self.assertEqual(json.loads(out), {"name": "HI SEQ"})
        self.assertUsage(self.wisp("action", "create", "s2", "--sequence", code=2), "action create")


class ActionAttributes(CliCase):
    def test_params_annotations_in_command_line_order(self):
        pf = self.file("p.json", json.dumps({"a": "from file", "obj": {"k": [1, 2]}}))
        af = self.file("a.json", json.dumps({"description": "from file"}))
        self.action("x", None, HELLO_PY, ".py", "-p", "a", "first", "-P", pf, "-p", "n", "42",
                    "--param", "flag", "true", "-p", "s", "two words", "-a", "k", "{\"j\": 1}", "-A", af)
        doc = self.api_get("actions/x")
        params = {kv["key"]: kv["value"] for kv in doc["parameters"]}
        self.assertEqual(params, {"a": "from file", "obj": {"k": [1, 2]}, "n": 42, "flag": True,
                                  "s": "two words"})
        annots = {kv["key"]: kv["value"] for kv in doc["annotations"]}
        self.assertEqual((annots["k"], annots["description"]), ({"j": 1}, "from file"))
        p = self.wisp("action", "create", "y", self.file("y.py", HELLO_PY), "-P", self.file("bad.json", "[1]"),
                      code=2)
        self.assertIn("must hold a JSON object", p.stderr)
        p = self.wisp("action", "create", "y", "y.py", "-p", "only-key", code=2)
        self.assertIn("flag needs two arguments (KEY VALUE): --param", p.stderr)

    def test_limits_and_the_servers_refusal(self):
        self.action("l", None, HELLO_PY, ".py", "--timeout", "5000", "-m", "128", "--logsize", "2",
                    "--concurrency", "3")
        self.assertEqual(self.api_get("actions/l")["limits"],
                         {"timeout": 5000, "memory": 128, "logs": 2, "concurrency": 3})
        p = self.wisp("action", "create", "l2", self.file("l2.py", HELLO_PY), "-t", "5", code=144)
        self.assertServerError(p, "timeout 5 milliseconds is outside the allowed range")
        self.assertTrue(p.stderr.startswith("error: Unable to create action 'l2': "), p.stderr)
        self.assertUsage(self.wisp("action", "create", "l3", "l2.py", "-t", "soon", code=2),
                         "action create")

    def test_update_changes_what_it_names(self):
        self.action("u", None, HELLO_PY, ".py", "-p", "name", "kept")
        self.assertEqual(self.wisp("action", "update", "u", "--memory", "512").stdout, "ok: updated action u\n")
        doc = self.w.api("GET", "actions/u?code=true").json()
        self.assertEqual((doc["limits"]["memory"], doc["exec"]["code"], doc["version"]), (512, HELLO_PY, "0.0.2"))
        self.assertEqual(doc["parameters"], [{"key": "name", "value": "kept"}])
        self.wisp("action", "update", "fresh", self.file("f.py", HELLO_PY))  # creates
        self.api_get("actions/fresh")
        p = self.wisp("action", "create", "u", "f.py", code=153)
        self.assertTrue(p.stderr.startswith("error: Unable to create action 'u': "), p.stderr)
        self.assertRegex(p.stderr, r"\(code [0-9a-f]+\)\n$")

    def test_web_flags(self):
        def annots(name):
            return {kv["key"]: kv["value"] for kv in self.api_get("actions/" + name)["annotations"]}
        self.action("w", None, HELLO_PY, ".py", "--web", "true")
        a = annots("w")
        self.assertEqual((a["web-export"], a["raw-http"], a["final"]), (True, False, True))
        self.wisp("action", "update", "w", "--web", "raw", "--web-secure", "s3cret")
        a = annots("w")
        self.assertEqual((a["raw-http"], a["require-whisk-auth"]), (True, "s3cret"))
        self.wisp("action", "update", "w", "--web-secure", "true")
        secret = annots("w")["require-whisk-auth"]
        self.assertIsInstance(secret, int)
        self.assertTrue(0 < secret < 2 ** 53)
        self.wisp("action", "update", "w", "--web-secure", "false")
        self.assertNotIn("require-whisk-auth", annots("w"))
        self.assertEqual(annots("w")["web-export"], True)  # kept, as the exec annotation
        self.wisp("action", "update", "w", "--web", "no")
        self.assertEqual(annots("w")["web-export"], False)
        p = self.wisp("action", "update", "w", "--web-secure", "x", code=2)
        self.assertIn("The --web-secure option is only valid when the --web option is enabled.", p.stderr)
        p = self.wisp("action", "update", "w", "--web", "maybe", code=2)
        self.assertIn("Invalid argument 'maybe' for --web flag.", p.stderr)


class ActionVerbs(CliCase):
    def test_get(self):
        self.action("hello", None, HELLO_PY, ".py", "-p", "name", "w", "-a", "description", "greets")
        head, doc = ok_json(self.wisp("action", "get", "hello").stdout)
        self.assertEqual(head, "ok: got action hello")
        self.assertEqual((doc["name"], doc["namespace"]), ("hello", "guest"))
        self.assertNotIn("code", doc["exec"])  # wsk asks code=false
        head, ex = ok_json(self.wisp("action", "get", "hello", "exec").stdout)
        self.assertEqual((head, ex["kind"]), ("ok: got action hello, displaying field exec", "python:3"))
        self.assertUsage(self.wisp("action", "get", "hello", "nofield", code=2), "action get")
        self.assertEqual(self.wisp("action", "get", "hello", "--url").stdout,
                         "ok: got action hello\n%s/api/v1/namespaces/guest/actions/hello\n" % self.apihost)
        self.assertEqual(self.wisp("action", "get", "hello", "-s").stdout,
                         "action /guest/hello: greets\n   (parameters: *name)\n")
        self.assertEqual(self.wisp_json("action", "get", "hello")["name"], "hello")
        p = self.wisp("action", "get", "nope", code=148)
        self.assertServerError(p, "Unable to get action 'nope': The requested resource does not exist.")

    def test_save_code(self):
        self.action("hello")
        p = self.wisp("action", "get", "hello", "--save")
        saved = os.path.join(self.home, "hello.py")
        self.assertEqual(p.stdout, "ok: saved action code to %s\n" % os.path.realpath(saved))
        with open(saved) as f:
            self.assertEqual(f.read(), HELLO_PY)
        p = self.wisp("action", "get", "hello", "--save", code=2)
        self.assertIn("The file 'hello.py' already exists", p.stderr)
        self.wisp("action", "get", "hello", "--save-as", "copy.txt")
        with open(os.path.join(self.home, "copy.txt")) as f:
            self.assertEqual(f.read(), HELLO_PY)

    def test_list_and_delete(self):
        self.assertEqual(self.wisp("action", "list").stdout, "actions\n")
        for n in ("b", "a", "c"):
            self.action(n)
        self.wisp("package", "create", "pkg")
        self.action("pkg/inner")
        out = self.wisp("action", "list").stdout.splitlines()
        self.assertEqual(out[0], "actions")
        self.assertEqual(out[1], "%-70s private python:3" % "/guest/a")
        self.assertEqual(len(out), 5)
        self.assertEqual(self.wisp("action", "list", "--limit", "1", "--skip", "1").stdout.splitlines(),
                         ["actions", "%-70s private python:3" % "/guest/b"])
        self.assertEqual(self.wisp("action", "list", "pkg").stdout.splitlines()[1:],
                         ["%-70s private python:3" % "/guest/pkg/inner"])
        self.assertEqual(self.wisp_json("action", "list", "/guest"), self.api_get("actions"))
        self.assertEqual(self.wisp("action", "delete", "b").stdout, "ok: deleted action b\n")
        self.assertEqual(self.w.api("GET", "actions/b").status, 404)
        p = self.wisp("action", "delete", "b", code=148)
        self.assertServerError(p, "The requested resource does not exist.")

    def test_invoke(self):
        self.action("hello")
        p = self.wisp("action", "invoke", "hello", "-p", "name", "nb")
        m = re.fullmatch(r"ok: invoked /_/hello with id ([0-9a-f]{32})\n", p.stdout)
        self.assertTrue(m, p.stdout)
        rec = wait_for(lambda: self.w.api("GET", "activations/" + m.group(1)).status == 200 and
                       self.w.api("GET", "activations/" + m.group(1)).json(), 30, "the activation")
        self.assertEqual(rec["response"]["result"], {"greeting": "hi nb"})
        head, rec = ok_json(self.wisp("action", "invoke", "hello", "-b", "-p", "name", "b").stdout)
        self.assertRegex(head, r"^ok: invoked /_/hello with id [0-9a-f]{32}$")
        self.assertEqual((rec["response"]["result"], rec["logs"][0].endswith("stdout: hello log")),
                         ({"greeting": "hi b"}, True))
        self.assertEqual(json.loads(self.wisp("action", "invoke", "hello", "--result").stdout),
                         {"greeting": "hi x"})
        self.assertEqual(self.wisp_json("action", "invoke", "hello", "-r", "-p", "name", "j"),
                         {"greeting": "hi j"})
        self.assertTrue(ACT_ID.match(self.wisp_json("action", "invoke", "hello")["activationId"]))

    def test_invoke_failures(self):
        self.action("failing", None, FAIL_PY)
        p = self.wisp("action", "invoke", "failing", "-b", code=246)
        head, rec = ok_json(p.stderr)
        self.assertRegex(head, r"^ok: invoked /_/failing with id [0-9a-f]{32}$")
        self.assertEqual(rec["response"]["status"], "application error")
        self.assertEqual(p.stdout, "")
        p = self.wisp("action", "invoke", "failing", "-r", code=246)
        self.assertEqual(json.loads(p.stderr), {"error": "it broke"})
        p = self.wisp("action", "invoke", "nope", code=148)
        self.assertServerError(p, "Unable to invoke action 'nope': The requested resource does not exist.")
        p = self.wisp("action", "invoke", code=2)
        self.assertIn("error: Invalid argument(s). An action name is required.", p.stderr)
        self.assertUsage(p, "action invoke ACTION_NAME")
        p = self.wisp("action", "invoke", "a", "b", code=2)
        self.assertIn("error: Invalid argument(s): b. An action name is required.", p.stderr)


# ==== triggers, rules, feeds ==================================================

class TriggersAndRules(CliCase):
    def test_trigger_rule_fire(self):
        self.action("hello")
        self.assertEqual(self.wisp("trigger", "create", "t", "-p", "name", "trig").stdout,
                         "ok: created trigger t\n")
        self.assertEqual(self.api_get("triggers/t")["parameters"], [{"key": "name", "value": "trig"}])
        self.assertEqual(self.wisp("trigger", "fire", "t").stdout,
                         "trigger /_/t did not fire as it is not associated with an active rule\n")
        self.assertEqual(self.wisp("rule", "create", "r", "t", "hello").stdout, "ok: created rule r\n")
        rule = self.api_get("rules/r")
        self.assertEqual((rule["trigger"]["name"], rule["action"]["name"], rule["status"]),
                         ("t", "hello", "active"))
        p = self.wisp("trigger", "fire", "t", "-p", "extra", "1")
        self.assertRegex(p.stdout, r"^ok: triggered /_/t with id [0-9a-f]{32}\n$")
        self.assertEqual(self.wisp("rule", "disable", "r").stdout, "ok: disabled rule r\n")
        self.assertEqual(self.wisp("rule", "status", "r").stdout, "ok: rule r is inactive\n")
        self.assertEqual(self.wisp("rule", "enable", "r").stdout, "ok: enabled rule r\n")
        self.assertEqual(self.wisp("rule", "list").stdout,
                         "rules\n%-70s %-20s %s\n" % ("/guest/r", "private", "active"))
        self.assertEqual(self.wisp("trigger", "list").stdout, "triggers\n%-70s private\n" % "/guest/t")
        head, doc = ok_json(self.wisp("rule", "get", "r").stdout)
        self.assertEqual((head, doc["status"]), ("ok: got rule r", "active"))
        self.assertEqual(self.wisp("rule", "get", "r", "-s").stdout, "rule /guest/r\n   (status: active)\n")
        head, doc = ok_json(self.wisp("trigger", "get", "t").stdout)
        self.assertEqual((head, list(doc["rules"])), ("ok: got trigger t", ["guest/r"]))
        self.assertEqual(self.wisp("rule", "update", "r", "t", "hello").stdout, "ok: updated rule r\n")
        p = self.wisp("rule", "create", "r2", "t", "missing", code=None)
        self.assertGreater(p.returncode, 128, p)  # the server's 4xx, as status - 256
        self.assertTrue(p.stderr.startswith("error: Unable to create rule 'r2': "), p.stderr)
        self.assertEqual(self.wisp("rule", "delete", "r", "--disable").stdout, "ok: deleted rule r\n")
        self.assertEqual(self.wisp("trigger", "delete", "t").stdout, "ok: deleted trigger t\n")
        self.assertServerError(self.wisp("trigger", "delete", "t", code=148),
                               "Unable to get trigger 't': The requested resource does not exist.")
        self.assertUsage(self.wisp("rule", "create", "r", "t", code=2), "rule create RULE_NAME TRIGGER_NAME")

    def test_trigger_update(self):
        self.assertEqual(self.wisp("trigger", "update", "u", "-p", "a", "1").stdout, "ok: created trigger u\n")
        self.assertEqual(self.wisp("trigger", "update", "u", "-p", "a", "2", "-a", "k", "v").stdout,
                         "ok: updated trigger u\n")
        doc = self.api_get("triggers/u")
        self.assertEqual((doc["parameters"], doc["annotations"]),
                         ([{"key": "a", "value": 2}], [{"key": "k", "value": "v"}]))

    def test_builtin_feed(self):
        out = self.wisp("trigger", "create", "every", "--feed", "/whisk.system/alarms/interval",
                        "-p", "minutes", "60").stdout
        first, _, rest = out.partition("\n")
        self.assertRegex(first, r"^ok: invoked /whisk.system/alarms/interval with id [0-9a-f]{32}$")
        body, _, last = rest.rstrip("\n").rpartition("\n")
        self.assertEqual(last, "ok: created trigger every")
        self.assertEqual(json.loads(body)["response"]["success"], True)
        doc = self.api_get("triggers/every")
        self.assertEqual(doc["annotations"], [{"key": "feed", "value": "/whisk.system/alarms/interval"}])
        self.assertEqual(doc["parameters"], [])  # they went to the feed
        self.assertEqual(doc["feed"]["minutes"], 60)
        self.assertEqual(self.wisp("trigger", "delete", "every").stdout, "ok: deleted trigger every\n")
        self.assertEqual(self.w.api("GET", "triggers/every").status, 404)
        m = self.w.request("GET", "/metrics", auth=False).body
        self.assertIn("wisp_feed_bindings 0", m)  # wispd dropped the feed's binding

    def test_feed_refusal_leaves_no_trigger(self):
        p = self.wisp("trigger", "create", "bad", "--feed", "/whisk.system/alarms/interval", code=246)
        self.assertIn("error: Unable to create trigger 'bad': Unable to configure feed "
                      "'/whisk.system/alarms/interval': The following application error was received:",
                      p.stderr)
        self.assertEqual(self.w.api("GET", "triggers/bad").status, 404)

    def test_own_feed_action_gets_wsk_lifecycle(self):
        self.action("myfeed", None, FEED_PY)
        out = self.wisp("trigger", "create", "t", "--feed", "myfeed", "-p", "x", "1").stdout
        rec = json.loads(out.split("\n", 1)[1].rsplit("ok: created trigger t", 1)[0])
        self.assertEqual(rec["response"]["result"],
                         {"event": "CREATE", "trigger": "/_/t", "key": GUEST_KEY, "x": 1})
        self.assertEqual(self.api_get("triggers/t")["annotations"],
                         [{"key": "feed", "value": "/_/myfeed"}])
        out = self.wisp("trigger", "update", "t", "-p", "x", "2").stdout
        self.assertEqual(json.loads(out.rsplit("ok: updated trigger t", 1)[0])["response"]["result"]["event"],
                         "UPDATE")
        self.assertEqual(self.wisp("trigger", "delete", "t").stdout, "ok: deleted trigger t\n")
        # wispd told the feed, once

        def deletes():
            acts = self.w.api("GET", "activations?docs=true&name=myfeed").json()
            got = [a for a in acts if a["response"]["result"].get("event") == "DELETE"]
            return got or None
        got = wait_for(deletes, 30, "the feed's DELETE")
        self.assertEqual(len(got), 1, got)
        j = self.wisp_json("trigger", "create", "t2", "--feed", "myfeed")
        self.assertEqual((j["trigger"]["name"], j["feed"]["response"]["result"]["event"]), ("t2", "CREATE"))


# ==== packages, namespaces, list ==============================================

class PackagesAndNamespaces(CliCase):
    def test_packages(self):
        self.assertEqual(self.wisp("package", "create", "iot", "-p", "site", "1", "--shared", "yes").stdout,
                         "ok: created package iot\n")
        self.assertTrue(self.api_get("packages/iot")["publish"])
        self.action("iot/read", None, "def main(a):\n    return {'site': a['site']}\n")
        self.assertEqual(self.wisp("package", "bind", "iot", "site2", "-p", "site", "2").stdout,
                         "ok: created binding site2\n")
        self.assertEqual(self.api_get("packages/site2")["binding"], {"namespace": "guest", "name": "iot"})
        self.assertEqual(json.loads(self.wisp("action", "invoke", "site2/read", "-r").stdout), {"site": 2})
        self.wisp("package", "bind", "/whisk.system/utils", "u")
        self.assertEqual(self.wisp("package", "update", "iot", "--shared", "no").stdout,
                         "ok: updated package iot\n")
        self.assertFalse(self.api_get("packages/iot")["publish"])
        self.assertEqual(self.wisp("package", "list").stdout.splitlines(),
                         ["packages"] + ["%-70s private" % ("/guest/" + n) for n in ("iot", "site2", "u")])
        self.assertEqual(self.wisp("package", "get", "iot", "-s").stdout,
                         "package /guest/iot: Returns a result based on parameter site\n"
                         "   (parameters: *site)\n"
                         " action /guest/iot/read\n   (parameters: none defined)\n")
        head, doc = ok_json(self.wisp("package", "get", "iot").stdout)
        self.assertEqual((head, doc["actions"][0]["name"]), ("ok: got package iot", "read"))
        p = self.wisp("package", "delete", "iot", code=153)
        self.assertServerError(p, "Package not empty")
        self.assertUsage(self.wisp("package", "create", "p", "--shared", "maybe", code=2), "package create")
        self.wisp("action", "delete", "iot/read")
        self.assertEqual(self.wisp("package", "delete", "iot").stdout, "ok: deleted package iot\n")

    def test_namespaces_and_list(self):
        self.assertEqual(self.wisp("namespace", "list").stdout, "namespaces\nguest\n")
        self.assertEqual(self.wisp_json("namespace", "list"), ["guest"])
        self.action("hello")
        self.wisp("trigger", "create", "t")
        expect = ("Entities in namespace: default\npackages\nactions\n%-70s private python:3\n"
                  "triggers\n%-70s private\nrules\n" % ("/guest/hello", "/guest/t"))
        self.assertEqual(self.wisp("namespace", "get").stdout, expect)
        self.assertEqual(self.wisp("list").stdout, expect)
        j = self.wisp_json("list")
        self.assertEqual(sorted(j), ["actions", "packages", "rules", "triggers"])
        self.assertEqual([a["name"] for a in j["actions"]], ["hello"])
        self.assertTrue(self.wisp("list", "/guest").stdout.startswith("Entities in namespace: guest\n"))


# ==== activations =============================================================

class Activations(CliCase):
    def invoke(self, name="hello", *params):
        return self.wisp_json("action", "invoke", name, "-b", *params)

    def test_list_get_logs_result(self):
        self.action("hello")
        first, last = self.invoke(), self.invoke("hello", "-p", "name", "two")
        lines = self.wisp("activation", "list").stdout.splitlines()
        self.assertEqual(lines[0].split(), ["Datetime", "Activation", "ID", "Kind", "Start", "Duration",
                                            "Status", "Entity"])
        self.assertEqual([l.split()[2] for l in lines[1:]], [last["activationId"], first["activationId"]])
        self.assertEqual(lines[1].split()[3:], ["python:3", "cold" if any(
            a["key"] == "initTime" for a in last["annotations"]) else "warm",
            lines[1].split()[5], "success", "guest/hello:0.0.1"])
        self.assertEqual(len(self.wisp("activation", "list", "--limit", "1").stdout.splitlines()), 2)
        self.assertEqual(self.wisp("activation", "list", "--skip", "1").stdout.splitlines()[1].split()[2],
                         first["activationId"])
        self.assertEqual(len(self.wisp("activation", "list", "--upto", "1").stdout.splitlines()), 1)
        self.assertEqual(len(self.wisp("activation", "list", "--since", "1").stdout.splitlines()), 3)
        self.action("other")
        self.invoke("other")
        self.assertEqual([a["name"] for a in self.wisp_json("activation", "list", "hello")], ["hello"] * 2)
        self.assertEqual(self.wisp_json("activation", "list", "--limit", "1")[0]["name"], "other")
        full = self.wisp("activation", "list", "--full", "--limit", "1").stdout
        self.assertTrue(full.startswith("activations\n{"))
        head, rec = ok_json(self.wisp("activation", "get", first["activationId"]).stdout)
        self.assertEqual((head, rec["response"]["result"]), ("ok: got activation " + first["activationId"],
                                                             {"greeting": "hi x"}))
        last = self.invoke("hello", "-p", "name", "two")
        head, rec = ok_json(self.wisp("activation", "get", "--last").stdout)
        self.assertEqual(rec["activationId"], last["activationId"])
        s = self.wisp("activation", "get", "--last", "-s").stdout
        self.assertTrue(s.startswith("activation result for '/guest/hello' (success at "), s)
        self.assertEqual(json.loads(s.split("\n", 1)[1]), {"greeting": "hi two"})
        self.assertEqual(self.wisp("activation", "get", "--last", "--logs").stdout, "hello log\n")
        head, res = ok_json(self.wisp("activation", "get", "--last", "response").stdout)
        self.assertEqual((head, res["status"]), ("ok: got activation %s, displaying field response"
                                                 % last["activationId"], "success"))
        logs = self.wisp("activation", "logs", first["activationId"]).stdout
        self.assertRegex(logs, r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+Z stdout: hello log\n$")
        self.assertEqual(self.wisp("activation", "logs", "--last", "--strip").stdout, "hello log\n")
        self.assertEqual(json.loads(self.wisp("activation", "result", "--last").stdout), {"greeting": "hi two"})
        self.assertEqual(self.wisp_json("activation", "result", "--last")["status"], "success")
        p = self.wisp("activation", "get", code=2)
        self.assertIn("error: Invalid argument(s). An activation ID is required.", p.stderr)
        p = self.wisp("activation", "get", "0" * 32, code=148)
        self.assertServerError(p, "Unable to get activation '%s': " % ("0" * 32))

    def test_no_activations_for_last(self):
        p = self.wisp("activation", "logs", "--last", code=1)
        self.assertEqual(p.stderr, "error: Activation list does not contain any activations.\n")

    def test_poll_streams_until_interrupted(self):
        self.action("hello")
        e = dict(self.env)
        proc = subprocess.Popen([WISP_CLI, "activation", "poll"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True, env=e, cwd=self.home, stdin=subprocess.DEVNULL)
        lines = []
        reader = threading.Thread(target=lambda: lines.extend(iter(proc.stdout.readline, "")), daemon=True)
        reader.start()
        try:
            wait_for(lambda: "Polling for activation logs\n" in lines, 30, "the poll banner")
            rec = self.invoke("hello", "-p", "name", "polled")
            header = "Activation: 'hello' (%s)\n" % rec["activationId"]
            wait_for(lambda: header in lines, 60, "the activation in the poll")
            proc.send_signal(signal.SIGINT)
            self.assertEqual(proc.wait(30), 1)  # wsk's exit after "Poll terminated"
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        reader.join(10)
        self.assertEqual(lines[:2], ["Enter Ctrl-c to exit.\n", "Polling for activation logs\n"])
        self.assertEqual(lines.count(header), 1)
        self.assertEqual(lines[-1], "Poll terminated\n")
        at = lines.index(header)
        logs = json.loads("".join(lines[at + 1:-1]))
        self.assertTrue(logs[0].endswith("stdout: hello log"), logs)
        for mark in SANITIZER_MARKS:
            self.assertNotIn(mark, proc.stderr.read())
        proc.stderr.close()
        proc.stdout.close()

    def test_poll_since_and_exit(self):
        self.action("hello")
        rec = self.invoke()
        out = self.wisp("activation", "poll", "hello", "--since-minutes", "5", "--exit", "1").stdout
        self.assertIn("Activation: 'hello' (%s)\n" % rec["activationId"], out)
        recs = [json.loads(l) for l in self.wisp("--json", "activation", "poll", "--since-days", "1",
                                                 "-e", "1").stdout.splitlines()]
        self.assertEqual([r["activationId"] for r in recs], [rec["activationId"]])


# ==== the command line itself =================================================

class CommandLine(CliCase):
    def test_usage_errors_exit_2_with_the_usage_line(self):
        p = self.wisp("action", "list", "--bogus", code=2)
        self.assertEqual(p.stderr.splitlines()[:2], ["error: unknown flag: --bogus",
                                                     "usage: wisp action list [NAMESPACE | PACKAGE_NAME] [flags]"])
        self.assertUsage(self.wisp("action", "list", "-Z", code=2), "action list")
        self.assertUsage(self.wisp("action", "create", "x", "--kind", code=2), "action create")
        self.assertIn("error: unknown command 'frob' for 'wisp'", self.wisp("frob", code=2).stderr)
        self.assertIn("error: unknown command 'frob' for 'wisp action'",
                      self.wisp("action", "frob", code=2).stderr)
        self.assertIn("usage: wisp action VERB", self.wisp("action", code=2).stderr)
        self.assertIn("usage: wisp COMMAND", self.wisp(code=2).stderr)
        self.assertIn("usage: wisp admin", self.wisp(code=2).stderr)

    def test_help(self):
        p = self.wisp("action", "create", "--help")
        self.assertTrue(p.stdout.startswith("usage: wisp action create ACTION_NAME ACTION [flags]\n"))
        self.assertIn("  -p, --param KEY VALUE", p.stdout)
        self.assertIn("      --web true|false|raw", p.stdout)
        self.assertIn("  -u, --auth KEY", p.stdout)
        self.assertIn("usage: wisp COMMAND", self.wisp("--help").stdout)
        self.assertIn("  create     create a new action", self.wisp("action", "--help").stdout)
        # property get's --auth is a switch: the global --auth is not offered there
        self.assertNotIn("--auth KEY", self.wisp("property", "get", "-h").stdout)

    def test_global_flags_anywhere(self):
        os.remove(self.props)
        self.wisp("--apihost", self.apihost, "-u", GUEST_KEY, "action", "list")
        self.wisp("action", "--apihost", self.apihost, "list", "--auth=" + GUEST_KEY)
        self.wisp("action", "list", "--apihost=" + self.apihost, "--auth", GUEST_KEY)
        self.assertEqual(self.wisp("--json", "action", "list", "--apihost", self.apihost, "-u", GUEST_KEY).stdout,
                         "[]\n")

    def test_proxy_is_not_used_for_the_loopback(self):
        dead = "http://127.0.0.1:%d" % free_port()
        self.wisp("action", "list", env={"http_proxy": dead, "HTTPS_PROXY": dead, "no_proxy": "example.org"})

    def test_json_errors(self):
        p = self.wisp("--json", "action", "get", "nope", code=148)
        err = json.loads(p.stderr)
        self.assertEqual((err["status"], err["exitCode"]), (404, 148))
        self.assertRegex(err["code"], r"^[0-9a-f]+$")
        self.assertIn("The requested resource does not exist.", err["error"])

    def test_verbose_shows_requests_not_the_key(self):
        p = self.wisp("-v", "namespace", "list")
        self.assertIn("REQUEST:\n[GET]\t%s/api/v1/namespaces" % self.apihost, p.stderr)
        self.assertIn("Got response with code 200", p.stderr)
        self.assertNotIn(GUEST_KEY.split(":")[1], p.stderr)

    def test_completion_bash(self):
        script = self.file("wisp.bash", self.wisp("completion", "bash").stdout)
        self.assertEqual(subprocess.run(["bash", "-n", script], capture_output=True).returncode, 0)

        def complete(*words):
            cmd = ("source %s; COMP_WORDS=(%s); COMP_CWORD=%d; _wisp; echo \"${COMPREPLY[*]}\""
                   % (script, " ".join("'%s'" % w for w in words), len(words) - 1))
            return subprocess.run(["bash", "-c", cmd], capture_output=True, text=True,
                                  cwd=self.home).stdout.split()
        self.assertEqual(complete("wisp", "act"), ["action", "activation"])
        self.assertEqual(complete("wisp", "action", "inv"), ["invoke"])
        self.assertEqual(complete("wisp", "action", "invoke", "x", "--bl"), ["--blocking"])
        self.assertEqual(complete("wisp", "--apihost", "h", "trigger", "fi"), ["fire"])
        self.assertIn("--feed", complete("wisp", "trigger", "create", "t", "--fe"))

    def test_offline_tools_need_no_server(self):
        os.remove(self.props)
        data = os.path.join(self.home, "data")
        out = self.wisp("admin", "--data", data, "user", "create", "team1").stdout
        self.assertRegex(out, r"^[0-9a-f-]{36}:\S+\n$")
        self.assertEqual(self.wisp("admin", "--data", data, "namespace", "list").stdout, "team1\n")


if __name__ == "__main__":
    unittest.main()
