"""Invocation against the real wispd: python:3, nodejs (the installed node's
kind, NODE_KIND) and native actions
(a C program compiled here, an ack-less #! script) on the process pools,
failures and their OpenWhisk statuses, logs, sequences, namespace limits,
the activations API, and activations across a restart and a drain.

Every record is checked against OpenWhisk's shape (fields, response,
annotations, log line format). Waits poll against deadlines; slow actions
wait on a gate file the test creates, never on a fixed sleep.
"""
import base64
import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
import threading
import time
import unittest

import harness
from harness import NODE_KIND, Wispd, WispTestCase, needs_target_programs, wait_for

WISP_CLI = os.environ.get("WISP_CLI") or os.path.join(
    os.path.dirname(os.path.dirname(os.path.abspath(harness.WISPD))), "tools", "wisp")

ID_RE = re.compile(r"^[0-9a-f]{32}$")
# OpenWhisk's LogLine.toFormattedString: f"$time%-30s $stream: $log"
LOG_RE = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?Z) +(stdout|stderr): (.*)$", re.S)
RECORD_KEYS = {"namespace", "name", "subject", "activationId", "version", "publish", "start", "end",
               "duration", "response", "logs", "annotations"}
STATUS_CODES = {"success": 0, "application error": 1, "action developer error": 2,
                "whisk internal error": 3}
TRUNCATED = "Logs were truncated because the total bytes size exceeds the limit of"

PY_ECHO = "def main(args):\n    return args\n"

# Waits until the file named by args["gate"] exists (bounded by args["max"]
# seconds), after touching args["started"]: lets a test hold an activation
# in flight for exactly as long as it needs.
PY_GATED = """
import os, time
def main(a):
    if a.get("started"):
        open(a["started"], "w").close()
    gate = a.get("gate")
    if gate:
        end = time.time() + a.get("max", 50)
        while not os.path.exists(gate) and time.time() < end:
            time.sleep(0.005)
    if a.get("hold"):
        time.sleep(a["hold"])  # a slow finish, once the gate is open
    print("gated", a.get("id"))
    return {"done": True, "id": a.get("id")}
"""

# An unmodified actionloop program: the ack when asked for, then one answer
# per input line on fd 3, echoing the run line's "value" object found by a
# naive (string-aware) brace scan.
C_SOURCE = r"""
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *scan_value(const char *s, size_t *len)
{
    const char *p = strstr(s, "\"value\":");
    if (!p)
        return NULL;
    p += 8;
    while (*p == ' ')
        p++;
    if (*p != '{')
        return NULL;
    int depth = 0, in_str = 0;
    for (const char *q = p; *q; q++) {
        if (in_str) {
            if (*q == '\\' && q[1])
                q++;
            else if (*q == '"')
                in_str = 0;
        } else if (*q == '"') {
            in_str = 1;
        } else if (*q == '{') {
            depth++;
        } else if (*q == '}' && --depth == 0) {
            *len = (size_t)(q - p + 1);
            return p;
        }
    }
    return NULL;
}

int main(void)
{
    FILE *out = fdopen(3, "w");
    if (!out)
        return 1;
    const char *ack = getenv("__OW_WAIT_FOR_ACK");
    if (ack && *ack) {
        fputs("{\"ok\":true}\n", out);
        fflush(out);
    }
    char *line = NULL;
    size_t cap = 0;
    long count = 0;
    while (getline(&line, &cap, stdin) > 0) {
        count++;
        size_t len = 0;
        const char *v = scan_value(line, &len);
        printf("c run %ld\n", count);
        fflush(stdout);
        fprintf(stderr, "c stderr %ld\n", count);
        fflush(stderr);
        if (v)
            fprintf(out, "{\"lang\":\"c\",\"count\":%ld,\"echo\":%.*s}\n", count, (int)len, v);
        else
            fprintf(out, "{\"lang\":\"c\",\"count\":%ld,\"echo\":null}\n", count);
        fflush(out);
    }
    return 0;
}
"""

# An actionloop script that knows nothing of __OW_WAIT_FOR_ACK: it never
# writes the ack and answers each line with the whole line embedded.
SH_NO_ACK = """#!/bin/sh
while IFS= read -r line; do
  echo "sh got a request"
  echo "sh on stderr" >&2
  printf '{"shell":true,"msg":%s}\\n' "$line" >&3
done
"""

# A native script whose answer is garbage when asked to.
SH_GARBAGE = """#!/bin/sh
while IFS= read -r line; do
  case "$line" in
    *'"junk":true'*) echo "writing garbage"; echo 'not json' >&3 ;;
    *) printf '{"fine":true}\\n' >&3 ;;
  esac
done
"""


# Zipped native actions. A C actionloop program that loads a library from
# lib/ (found through its $ORIGIN run path) and reads a data file, both
# shipped in the same zip.
C_ZIP_LIB = r"""
const char *greeting_prefix(void) { return "from libgreet"; }
"""
C_ZIP_MAIN = r"""
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *greeting_prefix(void);

int main(void)
{
    char data[128] = "";
    FILE *f = fopen("data/greeting.txt", "r");
    if (!f || !fgets(data, sizeof data, f))
        return 2;
    fclose(f);
    data[strcspn(data, "\n")] = '\0';
    FILE *out = fdopen(3, "w");
    if (!out)
        return 1;
    const char *ack = getenv("__OW_WAIT_FOR_ACK");
    if (ack && *ack) {
        fputs("{\"ok\":true}\n", out);
        fflush(out);
    }
    char *line = NULL;
    size_t cap = 0;
    long count = 0;
    while (getline(&line, &cap, stdin) > 0) {
        count++;
        printf("zip c run %ld\n", count);
        fflush(stdout);
        fprintf(out, "{\"lib\":\"%s\",\"data\":\"%s\",\"count\":%ld}\n", greeting_prefix(), data,
                count);
        fflush(out);
    }
    return 0;
}
"""

# A zipped shell action: exec sources lib/util.sh and runs bin/tool.sh, which
# only works if the archive's executable bit survived; it lists its
# directory, so the test sees what was unpacked (and that action.zip is gone).
SH_ZIP_EXEC = """#!/bin/sh
. ./lib/util.sh
[ -n "$__OW_WAIT_FOR_ACK" ] && echo '{"ok":true}' >&3
while IFS= read -r line; do
  echo "zip sh run"
  files=$(find . -type f | sort | tr '\\n' ' ')
  printf '{"util":"%s","tool":"%s","files":"%s"}\\n' "$(util_name)" "$(./bin/tool.sh)" "$files" >&3
done
"""
SH_ZIP_UTIL = "util_name() { echo 'util sourced'; }\n"
SH_ZIP_TOOL = "#!/bin/sh\necho tool ran\n"


def zip_of(entries):
    """A zip in memory; entries: (name, bytes or str, unix mode or None)."""
    import io
    import zipfile
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data, mode in entries:
            info = zipfile.ZipInfo(name)
            info.compress_type = zipfile.ZIP_DEFLATED
            if mode is not None:
                info.create_system = 3
                info.external_attr = mode << 16
            else:
                info.create_system = 0  # as made on Windows: no modes
            z.writestr(info, data)
    return buf.getvalue()


def b64(data):
    return base64.b64encode(data if isinstance(data, bytes) else data.encode()).decode()


def ann(record):
    """The annotations as a dict (keys must be unique)."""
    keys = [a["key"] for a in record["annotations"]]
    assert len(keys) == len(set(keys)), record["annotations"]
    return {a["key"]: a["value"] for a in record["annotations"]}


class Gate:
    """A directory the workers (user nobody) can read and write."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="wisp-gate-")
        os.chmod(self.dir, 0o777)

    def path(self, name):
        return os.path.join(self.dir, name)

    def open(self, name="go"):
        open(self.path(name), "w").close()

    def exists(self, name):
        return os.path.exists(self.path(name))

    def cleanup(self):
        shutil.rmtree(self.dir, ignore_errors=True)


class InvokeCase(WispTestCase):
    wispd_args = ("--concurrent-invocations", "1000", "--prewarm", "python:3=1,nodejs:default=1")

    def setUp(self):
        super().setUp()
        self.gate = Gate()
        self.addCleanup(self.gate.cleanup)

    # -- helpers ------------------------------------------------------------
    def put_action(self, name, exec_, **extra):
        body = {"exec": exec_}
        body.update(extra)
        r = self.w.api("PUT", "actions/" + name + "?overwrite=true", body)
        self.assertEqual(r.status, 200, r)
        return r.json()

    def py(self, name, code, **extra):
        return self.put_action(name, {"kind": "python:3", "code": code}, **extra)

    def invoke(self, name, params=None, blocking=True, result=False, timeout=None, key=None, w=None):
        q = "blocking=%s&result=%s" % (str(blocking).lower(), str(result).lower())
        if timeout is not None:
            q += "&timeout=%d" % timeout
        return (w or self.w).api("POST", "actions/%s?%s" % (name, q), params if params is not None else {},
                                 key=key)

    def invoke_ok(self, name, params=None, **kw):
        r = self.invoke(name, params, **kw)
        self.assertEqual(r.status, 200, r)
        rec = r.json()
        self.assertEqual(r.headers.get("x-openwhisk-activation-id"), rec["activationId"])
        return rec

    def get_record(self, aid, w=None):
        r = (w or self.w).api("GET", "activations/" + aid)
        self.assertEqual(r.status, 200, r)
        return r.json()

    def wait_record(self, aid, timeout=30, w=None):
        def got():
            r = (w or self.w).api("GET", "activations/" + aid)
            return r.json() if r.status == 200 else None
        return wait_for(got, timeout, "activation %s to be stored" % aid)

    def list_acts(self, query=""):
        r = self.w.api("GET", "activations" + ("?" + query if query else ""))
        self.assertEqual(r.status, 200, r)
        return r.json()

    def log_parts(self, record):
        """[(stream, message)] after checking each line's OpenWhisk form."""
        out = []
        for line in record["logs"]:
            m = LOG_RE.match(line)
            self.assertIsNotNone(m, "log line not in OpenWhisk's form: %r" % line)
            out.append((m.group(2), m.group(3)))
        return out

    def check_record(self, rec, name, path, kind, status="success", init=None, cause=None,
                     limits=None, timeout=False, version="0.0.1"):
        """OpenWhisk's activation record. init: True (initTime present), False
        (absent), None (either)."""
        keys = set(RECORD_KEYS) | ({"cause"} if cause else set())
        self.assertEqual(set(rec), keys, rec)
        self.assertRegex(rec["activationId"], ID_RE)
        self.assertEqual(rec["namespace"], "guest")
        self.assertEqual(rec["subject"], "guest")
        self.assertEqual(rec["name"], name)
        self.assertEqual(rec["version"], version)
        self.assertIs(rec["publish"], False)
        self.assertIsInstance(rec["start"], int)
        self.assertIsInstance(rec["end"], int)
        self.assertLessEqual(rec["start"], rec["end"])
        self.assertEqual(rec["duration"], rec["end"] - rec["start"])
        self.assertGreater(rec["start"], 1500000000000)
        if cause:
            self.assertEqual(rec["cause"], cause)
        resp = rec["response"]
        self.assertEqual(set(resp), {"status", "statusCode", "success", "result"}, resp)
        self.assertEqual(resp["status"], status, rec)
        self.assertEqual(resp["statusCode"], STATUS_CODES[status], rec)
        self.assertIs(resp["success"], status == "success")
        self.assertIsInstance(resp["result"], (dict, list))
        self.assertIsInstance(rec["logs"], list)
        a = ann(rec)
        self.assertEqual(a["path"], path)
        self.assertEqual(a["kind"], kind)
        self.assertIsInstance(a["limits"], dict)
        self.assertEqual(set(a["limits"]), {"timeout", "memory", "logs", "concurrency"}, a["limits"])
        if limits:
            for k, v in limits.items():
                self.assertEqual(a["limits"][k], v, a["limits"])
        expected = {"path", "kind", "limits", "waitTime", "timeout"}
        if kind == "sequence":
            self.assertIs(a.get("topmost"), True)
            expected.add("topmost")
        if cause:
            self.assertEqual(a.get("causedBy"), "sequence")
            expected.add("causedBy")
        self.assertIsInstance(a["waitTime"], int)
        self.assertGreaterEqual(a["waitTime"], 0)
        self.assertIs(a["timeout"], timeout)
        if init is True:
            self.assertIn("initTime", a, rec)
        elif init is False:
            self.assertNotIn("initTime", a, rec)
        if "initTime" in a:
            self.assertIsInstance(a["initTime"], int)
            self.assertGreaterEqual(a["initTime"], 0)
            expected.add("initTime")
        self.assertEqual(set(a), expected, rec["annotations"])
        return rec

    def assert_failed(self, r, status, error_part, name, path, kind, **kw):
        """A blocking invoke that failed: 502 and the record."""
        want_http = 500 if status == "whisk internal error" else 502
        self.assertEqual(r.status, want_http, r)
        rec = r.json()
        self.assertEqual(r.headers.get("x-openwhisk-activation-id"), rec["activationId"])
        self.check_record(rec, name, path, kind, status=status, **kw)
        err = rec["response"]["result"].get("error")
        self.assertIsNotNone(err, rec)
        if error_part is not None:
            self.assertIn(error_part, err if isinstance(err, str) else json.dumps(err))
        self.assertEqual(self.get_record(rec["activationId"]), rec)
        return rec


# ==== 1. python, node, result, non-blocking ===================================
class Basics(InvokeCase):
    def test_python_params_merge_package_action_request(self):
        self.assertEqual(self.w.api("PUT", "packages/pkg", {"parameters": [
            {"key": "a", "value": "pkg"}, {"key": "b", "value": "pkg"}, {"key": "c", "value": "pkg"}]}).status, 200)
        code = ("import os, sys\n"
                "def main(args):\n"
                "    print('hello from python', args['c'])\n"
                "    print('to stderr', file=sys.stderr)\n"
                "    env = {k: os.environ.get('__OW_' + k) for k in ('ACTION_NAME', 'ACTIVATION_ID', 'NAMESPACE')}\n"
                "    return {'params': args, 'env': env}\n")
        self.py("pkg/merge", code, parameters=[{"key": "b", "value": "act"}, {"key": "c", "value": "act"}],
                limits={"timeout": 5000, "memory": 128})
        r = self.invoke("pkg/merge", {"c": "req", "d": [1, {"x": None}]})
        self.assertEqual(r.status, 200, r)
        rec = r.json()
        self.assertEqual(r.headers["x-openwhisk-activation-id"], rec["activationId"])
        self.check_record(rec, "merge", "guest/pkg/merge", "python:3", init=True,
                          limits={"timeout": 5000, "memory": 128, "logs": 10, "concurrency": 1})
        res = rec["response"]["result"]
        self.assertEqual(res["params"], {"a": "pkg", "b": "act", "c": "req", "d": [1, {"x": None}]})
        self.assertEqual(res["env"]["ACTIVATION_ID"], rec["activationId"])
        self.assertEqual(res["env"]["NAMESPACE"], "guest")
        self.assertEqual(sorted(self.log_parts(rec)),
                         [("stderr", "to stderr"), ("stdout", "hello from python req")])
        self.assertEqual(self.get_record(rec["activationId"]), rec)

        # warm: same worker, no initTime
        rec2 = self.invoke_ok("pkg/merge", {"c": "again"})
        self.check_record(rec2, "merge", "guest/pkg/merge", "python:3", init=False)
        self.assertEqual(rec2["response"]["result"]["params"]["c"], "again")
        self.assertNotEqual(rec2["activationId"], rec["activationId"])
        # what OpenWhisk's invoker gives the action (qualifiedNameWithLeadingSlash)
        self.assertEqual(res["env"]["ACTION_NAME"], "/guest/pkg/merge")

    def test_node_async_main(self):
        self.put_action("nasync", {"kind": NODE_KIND, "code":
                        "async function main(a) {\n"
                        "  await new Promise(r => setTimeout(r, 5))\n"
                        "  console.log('node says', a.who)\n"
                        "  console.error('node err')\n"
                        "  return { greeting: 'hello ' + a.who }\n"
                        "}\n"}, parameters=[{"key": "who", "value": "default"}])
        rec = self.invoke_ok("nasync", {"who": "edge"})
        self.check_record(rec, "nasync", "guest/nasync", NODE_KIND, init=True)
        self.assertEqual(rec["response"]["result"], {"greeting": "hello edge"})
        self.assertEqual(sorted(self.log_parts(rec)), [("stderr", "node err"), ("stdout", "node says edge")])
        # an explicit Promise, and the action's default parameter
        self.put_action("npromise", {"kind": "nodejs:default", "code":
                        "function main(a) { return new Promise(res => setTimeout(() => res({ v: a.who }), 5)) }"},
                        parameters=[{"key": "who", "value": "default"}])
        r = self.invoke("npromise", {}, result=True)
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json(), {"v": "default"})
        self.assertRegex(r.headers["x-openwhisk-activation-id"], ID_RE)

    def test_result_true_returns_only_the_result(self):
        self.py("echo", PY_ECHO)
        r = self.invoke("echo", {"k": "v", "n": 1}, result=True)
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json(), {"k": "v", "n": 1})
        aid = r.headers["x-openwhisk-activation-id"]
        self.assertRegex(aid, ID_RE)
        rec = self.get_record(aid)  # stored before the reply left
        self.assertEqual(rec["response"]["result"], {"k": "v", "n": 1})
        # result=true without blocking is still non-blocking (OpenWhisk)
        r = self.invoke("echo", {"x": 1}, blocking=False, result=True)
        self.assertEqual(r.status, 202, r)
        self.assertEqual(set(r.json()), {"activationId"})

    def test_non_blocking_202_then_record_appears(self):
        self.py("gated", PY_GATED, limits={"timeout": 60000})
        started, go = self.gate.path("started"), self.gate.path("go")
        r = self.invoke("gated", {"gate": go, "started": started, "id": "nb"}, blocking=False)
        self.assertEqual(r.status, 202, r)
        body = r.json()
        self.assertEqual(set(body), {"activationId"})
        aid = body["activationId"]
        self.assertRegex(aid, ID_RE)
        self.assertEqual(r.headers.get("x-openwhisk-activation-id"), aid)
        wait_for(lambda: os.path.exists(started), 30, "the action to start")
        self.assertEqual(self.w.api("GET", "activations/" + aid).status, 404)  # still running
        self.gate.open("go")
        rec = self.wait_record(aid)
        self.check_record(rec, "gated", "guest/gated", "python:3")
        self.assertEqual(rec["response"]["result"], {"done": True, "id": "nb"})
        self.assertEqual(self.log_parts(rec), [("stdout", "gated nb")])

    def test_blocking_wait_runs_out_answers_202_and_activation_goes_on(self):
        self.py("gated", PY_GATED, limits={"timeout": 60000})
        started = self.gate.path("started")
        r = self.invoke("gated", {"gate": self.gate.path("go"), "started": started, "id": "w"}, timeout=200)
        self.assertEqual(r.status, 202, r)
        aid = r.json()["activationId"]
        self.assertEqual(r.json(), {"activationId": aid})
        self.assertEqual(r.headers.get("x-openwhisk-activation-id"), aid)
        self.gate.open("go")
        rec = self.wait_record(aid)
        self.assertEqual(rec["response"]["result"], {"done": True, "id": "w"})

    def test_invoke_errors(self):
        self.assertError(self.invoke("nope"), 404, "The requested resource does not exist.")
        self.py("echo", PY_ECHO)
        r = self.w.request("POST", "/api/v1/namespaces/_/actions/echo?blocking=true", raw=b"[1]",
                           headers={"Content-Type": "application/json"})
        self.assertError(r, 400)
        self.assertError(self.w.api("POST", "actions/echo?blocking=maybe", {}), 400)
        self.assertError(self.w.api("POST", "actions/echo?blocking=true&timeout=60001", {}), 400)
        self.assertError(self.w.request("POST", "/api/v1/namespaces/other/actions/echo", {}), 403)
        self.assertEqual(self.list_acts("name=echo"), [])


# ==== 2, 3. native actions ===================================================
class Native(InvokeCase):
    def setUp(self):
        super().setUp()
        # The harness's temp dir (mkdtemp: 0700, root) holds the data dir;
        # workers run as nobody and exec their program from DATA/work, so
        # open the way in. NativePrivateParent below covers the 0700 case.
        os.chmod(self.w.tmp, 0o711)

    def compile_c(self):
        d = tempfile.mkdtemp(prefix="wisp-cc-")
        self.addCleanup(shutil.rmtree, d, True)
        src = os.path.join(d, "echo.c")
        with open(src, "w") as f:
            f.write(C_SOURCE)
        exe = os.path.join(d, "echo")
        subprocess.run(["cc", "-O1", "-o", exe, src], check=True)
        with open(exe, "rb") as f:
            return f.read()

    def test_c_program_warm_reuse(self):
        binary = self.compile_c()
        a = self.put_action("cecho", {"kind": "native", "code": b64(binary), "binary": True})
        self.assertEqual(a["exec"]["kind"], "native")
        params = [{"msg": "hi {there} \"quoted\"", "n": 1, "nested": {"a": [1, 2, {"b": "}"}]}},
                  {"n": 2}, {"n": 3, "s": "x"}]
        recs = []
        for i, p in enumerate(params):
            rec = self.invoke_ok("cecho", p)
            self.check_record(rec, "cecho", "guest/cecho", "native", init=(i == 0))
            self.assertEqual(rec["response"]["result"], {"lang": "c", "count": i + 1, "echo": p})
            self.assertEqual(sorted(self.log_parts(rec)),
                             [("stderr", "c stderr %d" % (i + 1)), ("stdout", "c run %d" % (i + 1))])
            recs.append(rec)
        self.assertEqual(len({r["activationId"] for r in recs}), 3)
        r = self.invoke("cecho", {"n": 4}, result=True)
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json(), {"lang": "c", "count": 4, "echo": {"n": 4}})

    def test_script_without_ack(self):
        self.put_action("shecho", {"kind": "native", "code": SH_NO_ACK})
        names = []
        for i in range(3):
            rec = self.invoke_ok("shecho", {"i": i, "s": "x y"})
            self.check_record(rec, "shecho", "guest/shecho", "native", init=(i == 0))
            msg = rec["response"]["result"]["msg"]
            self.assertIs(rec["response"]["result"]["shell"], True)
            self.assertEqual(msg["value"], {"i": i, "s": "x y"})
            self.assertEqual(msg["activation_id"], rec["activationId"])
            self.assertEqual(msg["namespace"], "guest")
            self.assertIn("deadline", msg)
            self.assertNotIn("api_key", msg)  # not annotated provide-api-key
            self.assertEqual(sorted(self.log_parts(rec)),
                             [("stderr", "sh on stderr"), ("stdout", "sh got a request")])
            names.append(msg["action_name"])
        # OpenWhisk's invoker sends qualifiedNameWithLeadingSlash
        self.assertEqual(names, ["/guest/shecho"] * 3)

    def test_script_as_base64(self):
        self.put_action("shb64", {"kind": "native", "code": b64(SH_NO_ACK), "binary": True})
        rec = self.invoke_ok("shb64", {"z": 1})
        self.assertEqual(rec["response"]["result"]["msg"]["value"], {"z": 1})

    def test_garbage_on_fd3_then_next_works(self):
        self.put_action("garbage", {"kind": "native", "code": SH_GARBAGE})
        rec = self.invoke_ok("garbage", {"x": 1})
        self.assertEqual(rec["response"]["result"], {"fine": True})
        r = self.invoke("garbage", {"junk": True})
        rec = self.assert_failed(r, "action developer error", None, "garbage", "guest/garbage", "native")
        self.assertIn(("stdout", "writing garbage"), self.log_parts(rec))
        rec = self.invoke_ok("garbage", {"x": 2})
        self.check_record(rec, "garbage", "guest/garbage", "native", init=True)
        self.assertEqual(rec["response"]["result"], {"fine": True})

    # -- zipped native actions ----------------------------------------------
    def zip_action(self, name, entries):
        self.put_action(name, {"kind": "native", "code": b64(zip_of(entries)), "binary": True})

    def assert_no_sanitizer_report(self, rec):
        for line in rec["logs"]:
            for mark in harness.SANITIZER_MARKS:
                self.assertNotIn(mark, line, rec["logs"])

    @needs_target_programs
    def test_zip_with_c_program_library_and_data(self):
        d = tempfile.mkdtemp(prefix="wisp-cc-")
        self.addCleanup(shutil.rmtree, d, True)
        for fname, src in (("greet.c", C_ZIP_LIB), ("main.c", C_ZIP_MAIN)):
            with open(os.path.join(d, fname), "w") as f:
                f.write(src)
        lib = os.path.join(d, "libgreet.so")
        exe = os.path.join(d, "exec")
        subprocess.run(["cc", "-shared", "-fPIC", "-o", lib, os.path.join(d, "greet.c")], check=True)
        subprocess.run(["cc", "-O1", "-o", exe, os.path.join(d, "main.c"), "-L" + d, "-lgreet",
                        "-Wl,-rpath,$ORIGIN/lib"], check=True)
        entries = []
        for arc, path in (("exec", exe), ("lib/libgreet.so", lib)):
            with open(path, "rb") as f:
                entries.append((arc, f.read(), 0o100755))
        entries.append(("data/greeting.txt", "hello from the zip\n", 0o100644))
        self.zip_action("czip", entries)
        for i in range(3):
            rec = self.invoke_ok("czip", {"i": i})
            self.check_record(rec, "czip", "guest/czip", "native", init=(i == 0))
            self.assertEqual(rec["response"]["result"],
                             {"lib": "from libgreet", "data": "hello from the zip", "count": i + 1})
            self.assertEqual(self.log_parts(rec), [("stdout", "zip c run %d" % (i + 1))])
            self.assert_no_sanitizer_report(rec)

    @needs_target_programs
    def test_zip_with_shell_script_and_modes(self):
        self.zip_action("shzip", [
            ("exec", SH_ZIP_EXEC, None),  # no mode: made executable all the same
            ("lib/", "", 0o40755),
            ("lib/util.sh", SH_ZIP_UTIL, 0o100644),
            ("bin/tool.sh", SH_ZIP_TOOL, 0o100755),
        ])
        rec = self.invoke_ok("shzip", {"a": 1})
        self.check_record(rec, "shzip", "guest/shzip", "native", init=True)
        self.assertEqual(rec["response"]["result"],
                         {"util": "util sourced", "tool": "tool ran",
                          "files": "./bin/tool.sh ./exec ./lib/util.sh "})
        self.assertEqual(self.log_parts(rec), [("stdout", "zip sh run")])
        rec = self.invoke_ok("shzip", {"a": 2})
        self.check_record(rec, "shzip", "guest/shzip", "native", init=False)

    def assert_zip_refused(self, name, entries_or_bytes, error_part):
        code = entries_or_bytes if isinstance(entries_or_bytes, bytes) else zip_of(entries_or_bytes)
        self.put_action(name, {"kind": "native", "code": b64(code), "binary": True})
        for _ in range(2):  # a new worker each time, the same answer
            rec = self.assert_failed(self.invoke(name, {}), "action developer error", error_part,
                                     name, "guest/" + name, "native")
            err = rec["response"]["result"]["error"]
            self.assertRegex(err.lower(), "initiali[sz]")
            self.assertIn(("stderr", "wisp-unzip-exec: " + err.split(": ", 1)[1]),
                          self.log_parts(rec))
            self.assert_no_sanitizer_report(rec)
        # the good zipped action still runs
        rec = self.invoke_ok("shzip", {})
        self.assertEqual(rec["response"]["result"]["util"], "util sourced")

    @needs_target_programs
    def test_bad_zips_are_developer_errors_and_the_next_works(self):
        self.zip_action("shzip", [("exec", SH_ZIP_EXEC, 0o100755), ("lib/util.sh", SH_ZIP_UTIL, None),
                                  ("bin/tool.sh", SH_ZIP_TOOL, 0o100755)])
        self.assert_zip_refused("noexec", [("main.sh", SH_ZIP_EXEC, 0o100755)],
                                "has no executable named 'exec' at its root")
        self.assert_zip_refused("dotdot", [("exec", SH_ZIP_EXEC, 0o100755), ("../x", "out", None)],
                                "entry '../x': '..' leaves the action's directory")
        self.assert_zip_refused("notzip", b"PK\x03\x04" + b"this is not a zip archive" * 4,
                                "not a zip file")
        self.assert_zip_refused("zlink", [("exec", "/bin/sh", 0o120777)], "entry 'exec' is a symlink")
        # exec as a directory is no program
        self.assert_zip_refused("execdir", [("exec/", "", 0o40755), ("exec/x", "x", None)],
                                "'exec' in the action's zip file is not a regular file")


class NativePrivateParent(InvokeCase):
    @needs_target_programs
    def test_native_action_when_the_data_dirs_parent_is_private(self):
        # /root/wisp/var, or the harness's mkdtemp dir: 0700 and root's. Python
        # and node workers run there; a native program must too.
        self.assertEqual(os.stat(self.w.tmp).st_mode & 0o777, 0o700)
        self.put_action("shecho", {"kind": "native", "code": SH_NO_ACK})
        r = self.invoke("shecho", {"i": 1})
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json()["response"]["result"]["msg"]["value"], {"i": 1})
        # and a zipped one: its unpacking helper must be reachable too
        zipped = zip_of([("exec", SH_ZIP_EXEC, 0o100755), ("lib/util.sh", SH_ZIP_UTIL, None),
                         ("bin/tool.sh", SH_ZIP_TOOL, 0o100755)])
        self.put_action("shzip", {"kind": "native", "code": b64(zipped), "binary": True})
        r = self.invoke("shzip", {})
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json()["response"]["result"]["tool"], "tool ran")


# ==== 4. failures ============================================================
class Failures(InvokeCase):
    PY_FAIL = """
import os, sys, time
def main(a):
    mode = a.get("mode")
    print("mode", mode)
    if mode == "raise":
        raise ValueError("boom")
    if mode == "error":
        return {"error": {"why": "bad input", "code": 7}}
    if mode == "sleep":
        time.sleep(30)
    if mode == "crash":
        sys.stdout.flush()
        os._exit(3)
    if mode == "number":
        return 42
    if mode == "array":
        return [1, 2]
    if mode == "big":
        return {"big": "x" * (1024 * 1024 + 100)}
    if mode == "deep":
        r = {}
        for _ in range(40):
            r = {"d": r}
        return r
    return {"ok": mode}
"""

    def setUp(self):
        super().setUp()
        # 5 s: far less than the 30 s sleep, far more than a cold python
        # init on a loaded 2-core machine or under qemu (a 200 ms limit
        # ended in "... during initialization" there)
        self.py("f", self.PY_FAIL, limits={"timeout": 5000 if "timeout" in self._testMethodName else 60000})

    def run_mode(self, mode):
        return self.invoke("f", {"mode": mode})

    def assert_next_works(self, init=True):
        rec = self.invoke_ok("f", {"mode": "fine"})
        self.check_record(rec, "f", "guest/f", "python:3", init=init)
        self.assertEqual(rec["response"]["result"], {"ok": "fine"})
        self.assertEqual(self.log_parts(rec), [("stdout", "mode fine")])

    def test_application_error_raise(self):
        rec = self.assert_failed(self.run_mode("raise"), "application error", "boom", "f", "guest/f", "python:3")
        self.assertEqual(rec["response"]["result"], {"error": "boom"})
        parts = self.log_parts(rec)
        self.assertIn(("stdout", "mode raise"), parts)
        self.assertTrue(any(s == "stderr" and "ValueError: boom" in m for s, m in parts), parts)
        self.assert_next_works(init=False)  # an application error keeps the worker

    def test_application_error_returned(self):
        rec = self.assert_failed(self.run_mode("error"), "application error", None, "f", "guest/f", "python:3")
        self.assertEqual(rec["response"]["result"], {"error": {"why": "bad input", "code": 7}})
        r = self.invoke("f", {"mode": "error"}, result=True)
        self.assertEqual(r.status, 502, r)
        self.assertEqual(r.json(), {"error": {"why": "bad input", "code": 7}})

    def test_timeout_then_next_works(self):
        rec = self.assert_failed(self.run_mode("sleep"), "action developer error",
                                 "The action exceeded its time limits of 5000 milliseconds.",
                                 "f", "guest/f", "python:3", timeout=True)
        self.assertEqual(rec["response"]["result"],
                         {"error": "The action exceeded its time limits of 5000 milliseconds."})
        self.assertIn(("stdout", "mode sleep"), self.log_parts(rec))
        self.assert_next_works(init=True)  # a new worker

    def test_init_that_hangs_times_out(self):
        # python (from a stem cell) and node (a cold start): code that never
        # finishes loading ends with the action's time limit
        self.py("hang", "while True:\n    pass\ndef main(a):\n    return a\n", limits={"timeout": 300})
        self.put_action("nhang", {"kind": NODE_KIND, "code": "for (;;) {}\nfunction main(a) { return a }"},
                        limits={"timeout": 300})
        for name, kind in (("hang", "python:3"), ("nhang", NODE_KIND)):
            msg = "The action exceeded its time limits of 300 milliseconds during initialization."
            rec = self.assert_failed(self.invoke(name, {}), "action developer error", msg, name,
                                     "guest/" + name, kind, timeout=True)
            self.assertEqual(rec["response"]["result"], {"error": msg})
        self.assert_next_works(init=True)

    def test_crash_then_next_works(self):
        rec = self.assert_failed(self.run_mode("crash"), "action developer error", None, "f", "guest/f", "python:3")
        self.assertIn(("stdout", "mode crash"), self.log_parts(rec))
        self.assert_next_works(init=True)

    def test_non_dict_result_is_developer_error(self):
        self.assert_failed(self.run_mode("number"), "action developer error", None, "f", "guest/f", "python:3")
        self.assert_next_works(init=None)
        # arrays are results (OpenWhisk accepts them since 1.0's array results)
        rec = self.invoke_ok("f", {"mode": "array"})
        self.assertEqual(rec["response"]["result"], [1, 2])

    def test_result_nested_too_deep_to_store_is_developer_error(self):
        # stored and answered alike, and the records committed with it are kept
        others = [self.invoke("f", {"mode": "n%d" % i}, blocking=False).json()["activationId"]
                  for i in range(3)]
        rec = self.assert_failed(self.run_mode("deep"), "action developer error",
                                 "The action produced a response nested too deeply to be stored.",
                                 "f", "guest/f", "python:3")
        self.assertEqual(self.get_record(rec["activationId"])["response"], rec["response"])
        for aid in others:
            self.assertEqual(self.wait_record(aid)["response"]["status"], "success")
        self.assert_next_works(init=None)

    def test_oversized_result(self):
        rec = self.assert_failed(self.run_mode("big"), "action developer error", "exceeded the allowed length",
                                 "f", "guest/f", "python:3")
        self.assertLess(len(json.dumps(rec)), 64 * 1024)
        self.assert_next_works(init=None)

    def test_init_failure(self):
        self.py("broken", "def main(a):\n    return {\n")
        r = self.invoke("broken", {})
        rec = self.assert_failed(r, "action developer error", None, "broken", "guest/broken", "python:3")
        self.assertRegex(rec["response"]["result"]["error"].lower(), "initiali[sz]")
        # a node action whose code throws while loading
        self.put_action("nbroken", {"kind": NODE_KIND, "code": "throw new Error('load fails')"})
        rec = self.assert_failed(self.invoke("nbroken", {}), "action developer error", None, "nbroken",
                                 "guest/nbroken", NODE_KIND)
        self.assertRegex(rec["response"]["result"]["error"].lower(), "initiali[sz]")
        # and one with no main
        self.py("nomain", "def other(a):\n    return a\n")
        rec = self.assert_failed(self.invoke("nomain", {}), "action developer error", None, "nomain",
                                 "guest/nomain", "python:3")
        self.assertRegex(rec["response"]["result"]["error"].lower(), "initiali[sz]")
        self.assert_next_works(init=True)

    def test_log_flood_is_stopped(self):
        self.py("flood", "def main(a):\n    while True:\n        print('y' * 1000)\n",
                limits={"logs": 1, "timeout": 60000})
        r = self.invoke("flood", {})
        self.assertEqual(r.status, 502, r)
        rec = r.json()
        self.check_record(rec, "flood", "guest/flood", "python:3", status="action developer error")
        logs = rec["logs"]
        self.assertLessEqual(sum(len(l) for l in logs), (1 << 20) + 200 * len(logs))
        self.assertIn(TRUNCATED + " 1048576 bytes.", logs[-1])
        # every line, the notice included, in OpenWhisk's form (it logs the
        # notice as a stderr line)
        parts = self.log_parts(rec)
        self.assertEqual(parts[-1], ("stderr", TRUNCATED + " 1048576 bytes."))
        self.assertTrue(all(p == ("stdout", "y" * 1000) for p in parts[:-1]))
        self.assert_next_works(init=None)

    def test_logs_over_limit_are_truncated(self):
        self.py("chatty", "def main(a):\n    for i in range(1500):\n        print('%04d' % i + 'z' * 996)\n"
                          "    return {'done': True}\n", limits={"logs": 1})
        rec = self.invoke_ok("chatty", {})
        self.check_record(rec, "chatty", "guest/chatty", "python:3")
        self.assertEqual(rec["response"]["result"], {"done": True})
        logs = rec["logs"]
        self.assertIn(TRUNCATED + " 1048576 bytes.", logs[-1])
        # the first 1 MB of lines is kept, in order
        kept = logs[:-1]
        self.assertGreaterEqual(len(kept), 1000)
        self.assertLessEqual(len(kept), 1048)  # 1048 lines of 1000 bytes fit in 1048576
        for i, line in enumerate(kept):
            self.assertTrue(line.endswith(" stdout: %04d" % i + "z" * 996), line[:80])
        self.assertEqual(self.log_parts(rec)[-1], ("stderr", TRUNCATED + " 1048576 bytes."))

    def test_logs_limit_zero(self):
        self.py("silent", "def main(a):\n    print('hello')\n    return {'ok': 1}\n", limits={"logs": 0})
        rec = self.invoke_ok("silent", {})
        self.check_record(rec, "silent", "guest/silent", "python:3", limits={"logs": 0})
        self.assertEqual(rec["response"]["result"], {"ok": 1})
        self.assertEqual(len(rec["logs"]), 1, rec["logs"])
        self.assertIn(TRUNCATED + " 0 bytes.", rec["logs"][0])
        self.assertEqual(self.log_parts(rec), [("stderr", TRUNCATED + " 0 bytes.")])
        # an action that logs nothing has no logs and no notice
        self.py("quiet", "def main(a):\n    return {'ok': 2}\n", limits={"logs": 0})
        rec = self.invoke_ok("quiet", {})
        self.assertEqual(rec["logs"], [])


# ==== 5. logs never leak =====================================================
class LogIsolation(InvokeCase):
    def check_isolation(self, name, kind):
        seen = set()
        for i in range(30):
            marker = "marker-%s-%02d-%s" % (name, i, os.urandom(4).hex())
            rec = self.invoke_ok(name, {"m": marker})
            self.assertNotIn(rec["activationId"], seen)
            seen.add(rec["activationId"])
            want = sorted([("stdout", marker + " one"), ("stdout", marker + " two"), ("stderr", marker + " err")])
            self.assertEqual(sorted(self.log_parts(rec)), want, "activation %d" % i)
            self.assertEqual(self.get_record(rec["activationId"])["logs"], rec["logs"])

    def test_python_logs_stay_with_their_activation(self):
        self.py("pm", "import sys\ndef main(a):\n    print(a['m'], 'one')\n    print(a['m'], 'err', file=sys.stderr)\n"
                      "    print(a['m'], 'two')\n    return {}\n")
        self.check_isolation("pm", "python:3")

    def test_native_logs_stay_with_their_activation(self):
        # the answer follows the logs at once: they are in their pipes only
        # microseconds before it
        self.put_action("shm", {"kind": "native", "code": """#!/bin/sh
while IFS= read -r line; do
  m=${line#*'"m":"'}; m=${m%%'"'*}
  echo "$m one"; echo "$m err" >&2; echo "$m two"; echo '{}' >&3
done
"""})
        self.check_isolation("shm", "native")

    def test_node_logs_stay_with_their_activation(self):
        self.put_action("nm", {"kind": NODE_KIND, "code":
                        "function main(a) { console.log(a.m, 'one'); console.error(a.m, 'err');"
                        " console.log(a.m, 'two'); return {} }"})
        self.check_isolation("nm", NODE_KIND)


# ==== 6. 200 concurrent invocations ==========================================
class Concurrent(InvokeCase):
    wispd_args = ("--concurrent-invocations", "1000", "--pool-memory-mb", "2048",
                  "--prewarm", "python:3=2,nodejs:default=1")

    def test_200_concurrent_blocking_invocations(self):
        self.py("conc", "def main(a):\n    print('id', a['id'])\n    return {'id': a['id']}\n",
                limits={"memory": 128})
        n = 200
        results = [None] * n
        barrier = threading.Barrier(n)

        def one(i):
            try:
                barrier.wait(30)
                results[i] = self.invoke("conc", {"id": i}, result=True)
            except Exception as e:  # reported below
                results[i] = e

        threads = [threading.Thread(target=one, args=(i,)) for i in range(n)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
        ids = set()
        for i, r in enumerate(results):
            self.assertNotIsInstance(r, Exception, "request %d: %r" % (i, r))
            self.assertIsNotNone(r, "request %d did not finish" % i)
            self.assertEqual(r.status, 200, "request %d: %r" % (i, r))
            self.assertEqual(r.json(), {"id": i})
            ids.add(r.headers["x-openwhisk-activation-id"])
        self.assertEqual(len(ids), n)

        listed = self.list_acts("name=conc&limit=200")
        self.assertEqual(len(listed), n)
        self.assertEqual({a["activationId"] for a in listed}, ids)
        page1 = self.list_acts("name=conc&limit=100")
        page2 = self.list_acts("name=conc&limit=100&skip=100")
        self.assertEqual(len(page1) + len(page2), n)
        self.assertEqual({a["activationId"] for a in page1 + page2}, ids)
        self.assertEqual(self.list_acts("name=conc&skip=200"), [])
        self.assertEqual(self.list_acts("name=conc&count=true"), {"activations": n})
        docs = self.list_acts("name=conc&limit=200&docs=true")
        self.assertEqual(sorted(d["response"]["result"]["id"] for d in docs), list(range(n)))
        for d in docs:
            i = d["response"]["result"]["id"]
            self.assertEqual(self.log_parts(d), [("stdout", "id %d" % i)])


# Prints the worker's nice value, as a child process sees it: the value
# reaches everything a worker starts.
SH_NICE = """#!/bin/sh
while IFS= read -r line; do
  printf '{"nice":%s}\\n' "$(nice)" >&3
done
"""
PY_NICE = "import os\ndef main(args):\n    return {'nice': os.getpriority(os.PRIO_PROCESS, 0)}\n"


class NiceOf:
    def base_nice(self):
        return os.getpriority(os.PRIO_PROCESS, self.w.proc.pid)

    def nice_of(self, name):
        return self.invoke_ok(name)["response"]["result"]["nice"]


class CpuShare(NiceOf, InvokeCase):
    # A worker weighs limits.memory / pool-memory-mb of wispd, as OpenWhisk's
    # cpu-shares: of a 1024 MB budget, 256 MB is nice +6, 512 is +3, 128 is +9.
    def test_worker_weight_follows_its_memory(self):
        os.chmod(self.w.tmp, 0o711)  # native code runs as nobody from DATA/work
        base = self.base_nice()
        # a new worker spawned for its action (native kinds have no stem cells)
        self.put_action("n256", {"kind": "native", "code": SH_NICE})
        self.put_action("n128", {"kind": "native", "code": SH_NICE}, limits={"memory": 128})
        self.assertEqual(self.nice_of("n256"), min(base + 6, 19))
        # a stem cell taking its action
        self.py("p512", PY_NICE, limits={"memory": 512})
        rec = self.invoke_ok("p512")
        self.assertEqual(rec["response"]["result"]["nice"], min(base + 3, 19))
        self.assertEqual(self.nice_of("n128"), min(base + 9, 19))
        self.assertEqual(self.base_nice(), base)  # wispd itself is left alone


class CpuShareEqual(NiceOf, InvokeCase):
    wispd_args = InvokeCase.wispd_args + ("--worker-cpu-share", "equal")

    def test_every_worker_weighs_as_much_as_wispd(self):
        os.chmod(self.w.tmp, 0o711)
        base = self.base_nice()
        self.put_action("n256", {"kind": "native", "code": SH_NICE})
        self.py("p128", PY_NICE, limits={"memory": 128})
        self.assertEqual(self.nice_of("n256"), base)
        self.assertEqual(self.nice_of("p128"), base)


class WorkerMemory(InvokeCase):
    # A worker runs in its cgroup leaf: /metrics shows what the workers hold,
    # and one past its limits.memory gets OpenWhisk's out-of-memory error.
    PY_HOLD = """
held = []
def main(a):
    held.append(b"x" * (a["mb"] << 20))  # written, so charged
    return {"held": len(held)}
"""

    def worker_bytes(self):
        body = self.w.request("GET", "/metrics", auth=False).body
        m = re.search(r'^wisp_pool_worker_memory_bytes\{backend="process"\} (\d+)$', body, re.M)
        self.assertIsNotNone(m, body)
        return int(m.group(1))

    def setUp(self):
        super().setUp()
        if "workers run in cgroup" not in self.w.log():
            self.skipTest("workers run without cgroup leaves here")

    def test_metrics_count_what_workers_hold(self):
        self.py("hold", self.PY_HOLD, limits={"memory": 256})
        self.invoke_ok("hold", {"mb": 1})
        before = self.worker_bytes()
        self.invoke_ok("hold", {"mb": 64})
        self.assertGreaterEqual(self.worker_bytes() - before, 60 << 20)

    def test_past_its_memory_limit_the_action_gets_the_oom_error(self):
        self.py("eat", self.PY_HOLD, limits={"memory": 128})
        rec = self.invoke("eat", {"mb": 400}).json()
        self.assertEqual(rec["response"]["status"], "action developer error", rec)
        self.assertEqual(rec["response"]["result"],
                         {"error": "The action exhausted its memory and was aborted."})
        self.assertEqual(self.invoke_ok("eat", {"mb": 1})["response"]["result"], {"held": 1})


class StemReclaim(InvokeCase):
    # room for two 128 MB workers, one python stem cell wanted: once two warm
    # actions fill the budget, the stem comes back only by replacing the one
    # idle for stem-reclaim-s
    wispd_args = ("--pool-memory-mb", "256", "--stem-memory-mb", "128", "--prewarm", "python:3=1",
                  "--stem-reclaim-s", "1")

    def pool_gauge(self, state):
        body = self.w.request("GET", "/metrics", auth=False).body
        m = re.search(r'^wisp_pool_workers\{state="%s"\} (\d+)$' % state, body, re.M)
        self.assertIsNotNone(m, body)
        return int(m.group(1))

    def init_time(self, rec):
        return next((a["value"] for a in rec["annotations"] if a["key"] == "initTime"), None)

    def test_a_missing_stem_replaces_the_longest_idle_warm_worker(self):
        wait_for(lambda: self.pool_gauge("stem") == 1, 30, "the stem cell")
        self.py("a", PY_ECHO, limits={"memory": 128})
        self.py("b", PY_ECHO, limits={"memory": 128})
        self.assertIsNotNone(self.init_time(self.invoke_ok("a", {"i": 1})))  # a takes the stem
        wait_for(lambda: self.pool_gauge("stem") == 1, 30, "a new stem cell beside a")
        self.assertIsNotNone(self.init_time(self.invoke_ok("b", {"i": 2})))  # b takes that one
        self.assertEqual(self.invoke_ok("b", {"i": 3})["response"]["result"], {"i": 3})
        # a and b fill the budget; a, idle longest, makes way for a stem cell
        wait_for(lambda: self.pool_gauge("stem") == 1, 30, "a stem cell replacing idle a")
        self.assertEqual(self.pool_gauge("all"), 2)
        self.assertIsNone(self.init_time(self.invoke_ok("b", {"i": 4})))  # b stayed warm
        rec = self.invoke_ok("a", {"i": 5})  # a starts again, from the stem cell
        self.assertIsNotNone(self.init_time(rec))
        self.assertEqual(rec["response"]["result"], {"i": 5})


class RetentionByCount(InvokeCase):
    wispd_args = InvokeCase.wispd_args + ("--activation-max-count", "5")

    def test_only_the_newest_records_stay(self):
        self.py("echo", PY_ECHO)
        ids = [self.invoke_ok("echo", {"i": i})["activationId"] for i in range(12)]
        self.assertEqual(self.list_acts("count=true"), {"activations": 5})
        listed = [a["activationId"] for a in self.list_acts("limit=100")]
        self.assertEqual(listed, ids[::-1][:5])  # newest first
        for aid in ids[:7]:
            self.assertEqual(self.w.api("GET", "activations/" + aid).status, 404, aid)
        for aid in ids[7:]:
            self.assertEqual(self.w.api("GET", "activations/" + aid).status, 200, aid)
        # the count survives a restart, and goes on being kept
        self.assertEqual(self.w.stop(), 0)
        w2 = Wispd(data_dir=self.w.data, args=self.wispd_args).start()
        self.addCleanup(w2.cleanup)
        self.addCleanup(lambda: w2.proc and w2.stop())
        more = [self.invoke_ok("echo", {"i": i}, w=w2)["activationId"] for i in range(2)]
        listed = w2.api("GET", "activations?limit=100").json()
        self.assertEqual([a["activationId"] for a in listed], (ids + more)[::-1][:5])
        self.assertEqual(w2.stop(), 0)


class RetentionByAge(InvokeCase):
    wispd_args = InvokeCase.wispd_args + ("--activation-max-age-s", "1")

    def test_old_records_go(self):
        self.py("echo", PY_ECHO)
        old = [self.invoke_ok("echo", {"i": i})["activationId"] for i in range(3)]
        wait_for(lambda: self.list_acts("count=true") == {"activations": 0}, 30,
                 "records older than 1 s to go")
        for aid in old:
            self.assertEqual(self.w.api("GET", "activations/" + aid).status, 404, aid)
        new = self.invoke_ok("echo", {"i": 9})["activationId"]
        self.assertEqual([a["activationId"] for a in self.list_acts()], [new])


class PoolQueue(InvokeCase):
    # room for three 128 MB workers and no stem cells: more runs must queue
    wispd_args = ("--pool-memory-mb", "384", "--prewarm", "")

    def test_queued_runs_all_complete(self):
        self.py("gated", PY_GATED, limits={"timeout": 60000, "memory": 128})
        go = self.gate.path("go")
        ids = []
        for i in range(7):
            r = self.invoke("gated", {"gate": go, "started": self.gate.path("s%d" % i), "id": i}, blocking=False)
            self.assertEqual(r.status, 202, r)
            ids.append(r.json()["activationId"])
        wait_for(lambda: sum(self.gate.exists("s%d" % i) for i in range(7)) == 3, 30, "three runs to start")
        self.gate.open("go")
        for i, aid in enumerate(ids):
            rec = self.wait_record(aid, timeout=60)
            self.assertEqual(rec["response"]["result"], {"done": True, "id": i})
        self.assertEqual(self.list_acts("name=gated&count=true"), {"activations": 7})


# ==== 7. namespace limits ====================================================
class ConcurrencyLimit(InvokeCase):
    wispd_args = ("--concurrent-invocations", "1")

    def test_second_concurrent_invoke_is_429(self):
        self.py("gated", PY_GATED, limits={"timeout": 60000})
        self.py("echo", PY_ECHO)
        started = self.gate.path("started")
        r = self.invoke("gated", {"gate": self.gate.path("go"), "started": started, "id": 1}, blocking=False)
        self.assertEqual(r.status, 202, r)
        aid = r.json()["activationId"]
        r2 = self.invoke("echo", {})
        body = self.assertError(r2, 429, None)
        self.assertEqual(body["error"], "Too many concurrent requests in flight (count: 1, allowed: 1).")
        self.assertNotIn("x-openwhisk-activation-id", r2.headers)
        self.assertError(self.invoke("gated", {}, blocking=False), 429)
        self.gate.open("go")
        rec = self.wait_record(aid)
        self.assertEqual(rec["response"]["result"], {"done": True, "id": 1})
        # the slot is free again
        r3 = wait_for(lambda: (lambda x: x if x.status == 200 else None)(self.invoke("echo", {"a": 1}, result=True)),
                      10, "the in-flight slot to be released")
        self.assertEqual(r3.json(), {"a": 1})
        self.assertEqual(len(self.list_acts("name=echo")), 1)  # refused invokes leave no records


class RateLimit(InvokeCase):
    wispd_args = ("--invocations-per-minute", "3")

    def test_fourth_invoke_in_a_minute_is_429(self):
        self.py("echo", PY_ECHO)
        for i in range(3):
            r = self.invoke("echo", {"i": i}, blocking=False)
            self.assertEqual(r.status, 202, r)
        r = self.invoke("echo", {"i": 3}, blocking=False)
        body = self.assertError(r, 429)
        self.assertEqual(body["error"], "Too many requests in the last minute (count: 3, allowed: 3).")
        wait_for(lambda: len(self.list_acts("name=echo")) == 3, 30, "three activations")


# ==== 8. sequences ===========================================================
class Sequences(InvokeCase):
    def setUp(self):
        super().setUp()
        self.py("s1", "def main(a):\n    print('s1 got', a['n'])\n    return {'n': a['n'] + 1, 'trail': ['py']}\n")
        self.put_action("s2", {"kind": NODE_KIND, "code":
                        "function main(a) { console.log('s2 got', a.n); return { n: a.n * 10, trail: a.trail.concat(['node']) } }"})

    def test_sequence_result_flows_through(self):
        self.put_action("chain", {"kind": "sequence", "components": ["/_/s1", "/guest/s2"]})
        r = self.invoke("chain", {"n": 1})
        self.assertEqual(r.status, 200, r)
        seq = r.json()
        self.assertEqual(r.headers["x-openwhisk-activation-id"], seq["activationId"])
        self.check_record(seq, "chain", "guest/chain", "sequence", init=False)
        self.assertEqual(seq["response"]["result"], {"n": 20, "trail": ["py", "node"]})
        self.assertEqual(len(seq["logs"]), 2)
        for l in seq["logs"]:
            self.assertRegex(l, ID_RE)
        c1, c2 = (self.get_record(i) for i in seq["logs"])
        self.check_record(c1, "s1", "guest/s1", "python:3", cause=seq["activationId"])
        self.check_record(c2, "s2", "guest/s2", NODE_KIND, cause=seq["activationId"])
        self.assertEqual(c1["response"]["result"], {"n": 2, "trail": ["py"]})
        self.assertEqual(c2["response"]["result"], {"n": 20, "trail": ["py", "node"]})
        self.assertEqual(self.log_parts(c1), [("stdout", "s1 got 1")])
        self.assertEqual(self.log_parts(c2), [("stdout", "s2 got 2")])
        self.assertLessEqual(seq["start"], c1["start"])
        self.assertLessEqual(c1["end"], c2["start"])
        self.assertLessEqual(c2["end"], seq["end"])
        self.assertEqual(self.get_record(seq["activationId"]), seq)
        # result=true, and the components are listed under their names
        r = self.invoke("chain", {"n": 5}, result=True)
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json(), {"n": 60, "trail": ["py", "node"]})
        self.assertEqual(len(self.list_acts("name=s1")), 2)
        self.assertEqual(len(self.list_acts("name=chain")), 2)

    def test_error_in_first_component_stops_the_chain(self):
        self.py("bad1", "def main(a):\n    raise RuntimeError('first fails')\n")
        self.put_action("s2only", {"kind": NODE_KIND, "code": "function main(a) { return { ran: true } }"})
        self.put_action("chainbad", {"kind": "sequence", "components": ["/_/bad1", "/_/s2only"]})
        r = self.invoke("chainbad", {"n": 1})
        self.assertEqual(r.status, 502, r)
        seq = r.json()
        self.check_record(seq, "chainbad", "guest/chainbad", "sequence", status="application error")
        self.assertEqual(seq["response"]["result"], {"error": "first fails"})
        self.assertEqual(len(seq["logs"]), 1)
        c1 = self.get_record(seq["logs"][0])
        self.check_record(c1, "bad1", "guest/bad1", "python:3", status="application error",
                          cause=seq["activationId"])
        self.assertEqual(self.list_acts("name=s2only"), [])
        self.assertEqual(self.list_acts("name=s2only&count=true"), {"activations": 0})
        # a developer error (timeout) stops it too, with that status
        self.py("slow1", "import time\ndef main(a):\n    time.sleep(30)\n", limits={"timeout": 5000})
        self.put_action("chainslow", {"kind": "sequence", "components": ["/_/slow1", "/_/s2only"]})
        r = self.invoke("chainslow", {})
        self.assertEqual(r.status, 502, r)
        seq = r.json()
        self.check_record(seq, "chainslow", "guest/chainslow", "sequence", status="action developer error")
        self.assertEqual(seq["response"]["result"],
                         {"error": "The action exceeded its time limits of 5000 milliseconds."})
        self.assertEqual(len(seq["logs"]), 1)
        self.assertEqual(self.list_acts("name=s2only"), [])

    def test_sequence_whose_first_component_is_gone_ends_at_once(self):
        # it ends inside the invoke call itself: blocking, non-blocking and
        # from a rule, the caller gets its answer and the record is there
        self.py("tmp1", "def main(a):\n    return a\n")
        self.put_action("chaingone", {"kind": "sequence", "components": ["/_/tmp1", "/_/s2"]})
        self.assertEqual(self.w.api("DELETE", "actions/tmp1").status, 200)
        for result in (False, True):
            r = self.invoke("chaingone", {"n": 1}, result=result)
            self.assertEqual(r.status, 502, r)
            body = r.json() if result else r.json()["response"]["result"]
            self.assertEqual(body, {"error": "Sequence component does not exist."})
        r = self.invoke("chaingone", {"n": 1}, blocking=False)
        self.assertEqual(r.status, 202, r)
        seq = self.wait_record(r.json()["activationId"])
        self.assertEqual(seq["response"]["status"], "application error")
        self.assertEqual(self.w.api("PUT", "triggers/tg", {}).status, 200)
        self.assertEqual(self.w.api("PUT", "rules/rg", {"trigger": "tg", "action": "chaingone"}).status, 200)
        f = self.w.api("POST", "triggers/tg", {"n": 1})
        self.assertEqual(f.status, 202, f)
        trig = self.wait_record(f.json()["activationId"])
        line = json.loads(trig["logs"][0])
        self.assertTrue(line["success"], line)
        self.assertEqual(self.wait_record(line["activationId"])["response"]["result"],
                         {"error": "Sequence component does not exist."})
        self.assertEqual(len(self.list_acts("name=chaingone")), 4)

    def test_sequence_non_blocking(self):
        self.put_action("chain", {"kind": "sequence", "components": ["/_/s1", "/_/s2"]})
        r = self.invoke("chain", {"n": 2}, blocking=False)
        self.assertEqual(r.status, 202, r)
        seq = self.wait_record(r.json()["activationId"])
        self.assertEqual(seq["response"]["result"], {"n": 30, "trail": ["py", "node"]})


# ==== 9. the activations API =================================================
class ActivationsApi(InvokeCase):
    def make(self):
        self.py("a1", "def main(a):\n    print('a1', a.get('i'))\n    return {'a': 1, 'i': a.get('i')}\n")
        self.py("a2", "def main(a):\n    return {'a': 2, 'i': a.get('i')}\n")
        recs = []
        for i, name in enumerate(["a1", "a2", "a1", "a2", "a1"]):
            rec = self.invoke_ok(name, {"i": i})
            recs.append(rec)
            # distinct start times, so the order is defined
            wait_for(lambda: time.time() * 1000 > rec["start"] + 2, 5, "the clock to move")
        return recs

    def test_list_filter_paging_and_reads(self):
        recs = self.make()
        newest_first = [r["activationId"] for r in reversed(recs)]
        all_ = self.list_acts()
        self.assertEqual([a["activationId"] for a in all_], newest_first)
        for s, full in zip(all_, reversed(recs)):
            # summaries: no logs, no result; statusCode instead of response
            self.assertNotIn("logs", s)
            self.assertNotIn("response", s)
            self.assertEqual(s["statusCode"], 0)
            for k in ("namespace", "name", "subject", "activationId", "version", "start", "end",
                      "duration", "annotations", "publish"):
                self.assertEqual(s[k], full[k], k)
        self.assertEqual([a["activationId"] for a in self.list_acts("name=a1")],
                         [r["activationId"] for r in reversed(recs) if r["name"] == "a1"])
        self.assertEqual(self.list_acts("name=zzz"), [])
        self.assertEqual([a["activationId"] for a in self.list_acts("limit=2")], newest_first[:2])
        self.assertEqual([a["activationId"] for a in self.list_acts("limit=2&skip=1")], newest_first[1:3])
        self.assertEqual([a["activationId"] for a in self.list_acts("skip=4")], newest_first[4:])
        self.assertEqual([a["activationId"] for a in self.list_acts("name=a2&limit=1&skip=1")],
                         [recs[1]["activationId"]])
        # since / upto: inclusive bounds on start
        mid = recs[2]
        self.assertEqual([a["activationId"] for a in self.list_acts("since=%d" % mid["start"])], newest_first[:3])
        self.assertEqual([a["activationId"] for a in self.list_acts("upto=%d" % mid["start"])], newest_first[2:])
        self.assertEqual([a["activationId"] for a in self.list_acts("since=%d&upto=%d" % (mid["start"], mid["start"]))],
                         [mid["activationId"]])
        self.assertEqual([a["activationId"] for a in self.list_acts(
            "since=%d&upto=%d" % (recs[1]["start"], recs[3]["start"]))], newest_first[1:4])
        self.assertEqual(self.list_acts("since=%d" % (recs[-1]["start"] + 1)), [])
        # docs and count
        docs = self.list_acts("docs=true")
        self.assertEqual(docs, list(reversed(recs)))
        self.assertEqual(self.list_acts("docs=true&name=a2&limit=1"), [recs[3]])
        self.assertEqual(self.list_acts("count=true"), {"activations": 5})
        self.assertEqual(self.list_acts("count=true&name=a1"), {"activations": 3})
        self.assertEqual(self.list_acts("count=true&since=%d" % mid["start"]), {"activations": 3})
        self.assertError(self.w.api("GET", "activations?docs=true&count=true"), 400)
        self.assertError(self.w.api("GET", "activations?limit=201"), 400)
        self.assertError(self.w.api("GET", "activations?skip=-1"), 400)
        self.assertError(self.w.api("GET", "activations?docs=maybe"), 400)
        # one record, its logs, its result
        r0 = recs[0]
        self.assertEqual(self.get_record(r0["activationId"]), r0)
        lg = self.w.api("GET", "activations/%s/logs" % r0["activationId"])
        self.assertEqual(lg.status, 200, lg)
        self.assertEqual(lg.json(), {"logs": r0["logs"]})
        self.assertEqual(self.log_parts(r0), [("stdout", "a1 0")])
        res = self.w.api("GET", "activations/%s/result" % r0["activationId"])
        self.assertEqual(res.status, 200, res)
        self.assertEqual(res.json(), r0["response"])
        self.assertEqual(res.json(), {"status": "success", "statusCode": 0, "success": True,
                                      "result": {"a": 1, "i": 0}})

    def test_unknown_and_foreign_ids_are_404(self):
        rec = self.make()[0]
        aid = rec["activationId"]
        for path in ("0" * 32, "f" * 32, "nothex", aid[:-1], aid + "0", aid.upper()):
            for sub in ("", "/logs", "/result"):
                self.assertError(self.w.api("GET", "activations/" + path + sub), 404,
                                 "The requested resource does not exist.")
        self.assertError(self.w.api("GET", "activations/%s/bogus" % aid), 404)
        self.assertError(self.w.api("POST", "activations/" + aid, {}), 405)
        # a key of another namespace, made with the CLI while wispd runs
        out = subprocess.run([WISP_CLI, "admin", "--data", self.w.data, "user", "create", "other"],
                             check=True, capture_output=True, text=True).stdout
        m = re.search(r"([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}:\S+)", out)
        self.assertIsNotNone(m, out)
        other = m.group(1)
        self.assertEqual(self.w.request("GET", "/api/v1/namespaces", key=other).json(), ["other"])
        for sub in ("", "/logs", "/result"):
            self.assertError(self.w.api("GET", "activations/" + aid + sub, key=other), 404)
        self.assertError(self.w.request("GET", "/api/v1/namespaces/guest/activations/" + aid, key=other), 403)
        self.assertEqual(self.w.api("GET", "activations", key=other).json(), [])
        self.assertEqual(self.w.api("GET", "activations?count=true", key=other).json(), {"activations": 0})
        # its own invocation is its own, and invisible to guest
        self.assertError(self.w.api("POST", "actions/a1?blocking=true", {}, key=other), 404)
        r = self.w.api("PUT", "actions/mine", {"exec": {"kind": "python:3", "code": PY_ECHO}}, key=other)
        self.assertEqual(r.status, 200, r)
        r = self.w.api("POST", "actions/mine?blocking=true", {"o": 1}, key=other)
        self.assertEqual(r.status, 200, r)
        orec = r.json()
        self.assertEqual(orec["namespace"], "other")
        self.assertEqual(orec["subject"], "other")
        self.assertEqual(ann(orec)["path"], "other/mine")
        self.assertError(self.w.api("GET", "activations/" + orec["activationId"]), 404)
        self.assertEqual(self.list_acts("count=true"), {"activations": 5})
        self.assertEqual(self.w.api("GET", "activations/" + orec["activationId"], key=other).json(), orec)


# ==== 10, 11. restart and drain ==============================================
class Persistence(InvokeCase):
    def restart(self):
        self.assertEqual(self.w.stop(), 0)
        w2 = Wispd(data_dir=self.w.data, args=self.wispd_args).start()
        self.addCleanup(w2.cleanup)
        self.addCleanup(lambda: w2.proc and w2.stop())
        return w2

    def test_activations_survive_a_restart(self):
        self.py("echo", PY_ECHO)
        self.put_action("nechok", {"kind": NODE_KIND, "code": "function main(a) { console.log('n'); return a }"})
        recs = [self.invoke_ok("echo", {"i": i}) for i in range(3)]
        recs.append(self.invoke_ok("nechok", {"i": 3}))
        r = self.invoke("echo", {"i": 4}, blocking=False)
        self.assertEqual(r.status, 202)
        recs.append(self.wait_record(r.json()["activationId"]))
        before = self.list_acts("docs=true")
        self.assertEqual({a["activationId"] for a in before}, {r["activationId"] for r in recs})
        w2 = self.restart()
        after = w2.api("GET", "activations?docs=true").json()
        self.assertEqual(after, before)
        for rec in recs:
            got = w2.api("GET", "activations/" + rec["activationId"])
            self.assertEqual(got.status, 200, got)
            self.assertEqual(got.json(), rec)
            self.assertEqual(w2.api("GET", "activations/%s/logs" % rec["activationId"]).json(), {"logs": rec["logs"]})
            self.assertEqual(w2.api("GET", "activations/%s/result" % rec["activationId"]).json(), rec["response"])
        self.assertEqual(w2.api("GET", "activations?count=true").json(), {"activations": 5})
        # and invocation goes on after the restart
        r = w2.api("POST", "actions/echo?blocking=true&result=true", {"after": True})
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json(), {"after": True})
        self.assertEqual(w2.api("GET", "activations?count=true").json(), {"activations": 6})
        self.assertEqual(w2.stop(), 0)

    def test_workers_die_with_a_killed_wispd(self):
        # a worker busy in its action (not reading its stdin, so the closed
        # pipe does not stop it) still goes when wispd is killed
        self.py("busy", "import os, time\ndef main(a):\n"
                        "    open(a['pidfile'], 'w').write(str(os.getpid()))\n"
                        "    time.sleep(120)\n    return {}\n", limits={"timeout": 300000})
        pidfile = self.gate.path("pid")
        self.assertEqual(self.invoke("busy", {"pidfile": pidfile}, blocking=False).status, 202)
        def read_pid():
            try:
                with open(pidfile) as f:
                    return int(f.read() or 0)
            except FileNotFoundError:
                return 0
        pid = wait_for(read_pid, 30, "the action to run")

        def alive():
            try:
                with open("/proc/%d/status" % pid) as f:
                    return "\nState:\tZ" not in f.read()
            except FileNotFoundError:
                return False
        self.assertTrue(alive())
        groups = self.own_cgroups()
        self.w.kill9()
        wait_for(lambda: not alive(), 30, "worker %d to die with wispd" % pid)
        # the cgroups the killed wispd left are removed when one starts
        # again (or by any other wispd starting meanwhile)
        self.w.start()
        for g in groups:
            self.assertFalse(os.path.isdir(g), g)

    def own_cgroups(self):
        """wispd's parent groups for its workers (none without cgroups)."""
        if "workers run in cgroup" not in self.w.log():
            return []
        pid = self.w.proc.pid
        with open("/proc/%d/cgroup" % pid) as f:
            lines = [l.rstrip("\n").split(":", 2) for l in f]
        if "cgroup v2" in self.w.log():
            rel = [l[2] for l in lines if l[0] == "0"]
            roots = ["/sys/fs/cgroup" + (rel[0] if rel[0] != "/" else "")]
        else:
            roots = []
            for ctrl in ("memory", "pids"):
                rel = [l[2] for l in lines if ctrl in l[1].split(",")]
                root = "/sys/fs/cgroup/" + ctrl + (rel[0] if rel[0] != "/" else "")
                roots.append(root if os.path.isdir(root) else "/sys/fs/cgroup/" + ctrl)
        groups = [r + "/wisp-%d" % pid for r in roots]
        self.assertTrue(all(os.path.isdir(g) for g in groups), groups)
        return groups

    def test_sigterm_drains_activations_in_flight(self):
        self.py("gated", PY_GATED, limits={"timeout": 60000, "memory": 128})
        go = self.gate.path("go")
        ids = []
        for i in range(2):
            started = self.gate.path("started%d" % i)
            r = self.invoke("gated", {"gate": go, "started": started, "id": i, "hold": 0.5}, blocking=False)
            self.assertEqual(r.status, 202, r)
            ids.append(r.json()["activationId"])
        wait_for(lambda: self.gate.exists("started0"), 30, "the first activation to run")
        # a blocking caller waiting at the time of the signal gets its answer too
        blocking = {}

        def wait_blocking():
            try:
                blocking["r"] = self.invoke("gated", {"gate": go, "started": self.gate.path("startedb"),
                                                      "id": "b", "hold": 0.5})
            except Exception as e:  # reported below
                blocking["r"] = e
        t = threading.Thread(target=wait_blocking)
        t.start()
        wait_for(lambda: self.gate.exists("startedb") or "r" in blocking, 30, "the blocking request to be taken")
        self.w.proc.send_signal(signal.SIGTERM)
        wait_for(lambda: "draining" in self.w.log(), 10, "wispd to start draining")
        self.assertIsNone(self.w.proc.poll(), "wispd exited with activations in flight:\n" + self.w.log())
        self.gate.open("go")
        t.join(60)
        self.assertIn("r", blocking)
        self.assertNotIsInstance(blocking["r"], Exception, "the blocking caller got no answer")
        self.assertEqual(blocking["r"].status, 200, blocking["r"])
        self.assertEqual(blocking["r"].json()["response"]["result"], {"done": True, "id": "b"})
        # no second signal: wispd exits by itself once the drain is done
        wait_for(lambda: self.w.proc.poll() is not None, 60, "wispd to exit after its drain")
        self.assertEqual(self.w.stop(), 0)
        self.assertNotIn("drain timeout", self.w.log())
        w2 = Wispd(data_dir=self.w.data, args=self.wispd_args).start()
        self.addCleanup(w2.cleanup)
        try:
            for i, aid in enumerate(ids):
                got = w2.api("GET", "activations/" + aid)
                self.assertEqual(got.status, 200, "activation %d lost in the drain: %r" % (i, got))
                rec = got.json()
                self.assertEqual(rec["response"]["status"], "success", rec)
                self.assertEqual(rec["response"]["result"], {"done": True, "id": i})
        finally:
            w2.stop()


if __name__ == "__main__":
    unittest.main()
