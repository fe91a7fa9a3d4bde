"""The language launchers (runtimes/python/launcher.py, runtimes/nodejs/
launcher.js) driven directly, the way Wisp's worker pool drives them: stdin
carries the request lines, stdout/stderr the action's logs, fd 3 the reply
lines, cwd a private directory. No wispd involved.

Every read is bounded by a deadline (select), and a failure shows the
worker's stderr. Both languages run the same cases with their own action
code; a few cases exist for one language only (node's promises).
"""
import base64
import io
import json
import os
import select
import shutil
import statistics
import subprocess
import tempfile
import time
import unittest
import zipfile

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))


def interpreter(name):
    # Debian's interpreters are what the gateway runs; PATH may hold others (pyenv).
    debian = "/usr/bin/" + name
    return debian if os.access(debian, os.X_OK) else shutil.which(name)


PYTHON = interpreter("python3")
NODE = interpreter("node")
ARGV = {
    "python": [PYTHON, "-I", "-u", os.path.join(ROOT, "runtimes/python/launcher.py")],
    "nodejs": [NODE, os.path.join(ROOT, "runtimes/nodejs/launcher.js")],
}
TIMEOUT = 10.0  # per reply; a start takes tens of milliseconds

RUN_META = {"namespace": "guest", "action_name": "/guest/hello",
            "activation_id": "0123456789abcdef0123456789abcdef", "transaction_id": "tx-1",
            "deadline": 1700000000000, "api_host": "http://127.0.0.1:3233"}


def _child_setup(reply_w):
    # What plat_spawn does: the reply pipe becomes fd 3, and nothing else
    # beyond 0..3 reaches the launcher.
    if reply_w != 3:
        os.dup2(reply_w, 3)
    os.set_inheritable(3, True)
    os.closerange(4, 1024)


class Worker:
    """One launcher process with its three output pipes read into buffers."""

    @staticmethod
    def ENV(cwd):
        # The environment runtimes/pool.c gives its workers.
        return {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": cwd, "LANG": "C.UTF-8",
                "PYTHONDONTWRITEBYTECODE": "1", "__OW_WAIT_FOR_ACK": "1"}

    def __init__(self, lang):
        self.cwd = tempfile.mkdtemp(prefix="wisp-launcher-")
        r, w = os.pipe()
        self.proc = subprocess.Popen(
            ARGV[lang], cwd=self.cwd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, close_fds=False, preexec_fn=lambda: _child_setup(w),
            env=self.ENV(self.cwd))
        os.close(w)
        self.fds = {"out": self.proc.stdout.fileno(), "err": self.proc.stderr.fileno(), "reply": r}
        self.reply_r = r
        self.buf = {k: bytearray() for k in self.fds}
        self.eof = {k: False for k in self.fds}

    def _read_ready(self, timeout):
        """One select over the open pipes; appends what is readable. False on timeout."""
        live = [fd for k, fd in self.fds.items() if not self.eof[k]]
        if not live:
            return False
        ready, _, _ = select.select(live, [], [], max(timeout, 0))
        for k, fd in self.fds.items():
            if fd in ready:
                data = os.read(fd, 1 << 16)
                self.buf[k] += data
                self.eof[k] = not data
        return bool(ready)

    def fail(self, what):
        raise AssertionError("%s\n--- stderr ---\n%s" % (what, self.buf["err"].decode(errors="replace")))

    def send(self, msg):
        line = msg if isinstance(msg, (str, bytes)) else json.dumps(msg)
        line = line.encode() if isinstance(line, str) else line
        self.proc.stdin.write(line + b"\n")
        self.proc.stdin.flush()

    def reply_line(self, timeout=TIMEOUT):
        """The next raw reply line (without its newline), reading logs meanwhile
        so that a chatty action cannot block on a full pipe."""
        deadline = time.monotonic() + timeout
        while b"\n" not in self.buf["reply"]:
            if self.eof["reply"]:
                self.fail("fd 3 closed without a reply (exit %s)" % self.proc.poll())
            if not self._read_ready(deadline - time.monotonic()) and time.monotonic() >= deadline:
                self.fail("no reply within %.0f s" % timeout)
        line, _, rest = bytes(self.buf["reply"]).partition(b"\n")
        self.buf["reply"][:] = rest
        return line

    def reply(self, timeout=TIMEOUT):
        return json.loads(self.reply_line(timeout))

    def logs_now(self):
        """stdout and stderr taken so far plus whatever is readable right now,
        without waiting for more. Clears them."""
        while self._read_ready(0):
            pass
        out, err = bytes(self.buf["out"]).decode(), bytes(self.buf["err"]).decode()
        self.buf["out"].clear()
        self.buf["err"].clear()
        return out, err

    def init(self, code, main=None, binary=False, env=None):
        value = {"name": "/guest/hello", "code": code, "binary": binary, "env": env or {}}
        if main:
            value["main"] = main
        self.send({"value": value})
        return self.reply()

    def run(self, value=None, **meta):
        self.send(dict(RUN_META, value=value if value is not None else {}, **meta))
        return self.reply()

    def wait(self, timeout=TIMEOUT):
        """Closes stdin and returns the exit status."""
        try:
            self.proc.stdin.close()
        except BrokenPipeError:
            pass
        deadline = time.monotonic() + timeout
        while self.proc.poll() is None and time.monotonic() < deadline:
            self._read_ready(0.05)
        if self.proc.poll() is None:
            self.fail("did not exit after EOF on stdin")
        return self.proc.returncode

    def close(self):
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        for f in (self.proc.stdin, self.proc.stdout, self.proc.stderr):
            try:
                f.close()
            except OSError:
                pass
        os.close(self.reply_r)
        shutil.rmtree(self.cwd, ignore_errors=True)


def zip_b64(files):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for name, body in files.items():
            z.writestr(name, body)
    return base64.b64encode(buf.getvalue()).decode()


class LauncherCases:
    """The cases both launchers must pass; subclasses supply LANG and CODE."""
    LANG = None
    CODE = {}

    def start(self, ack=True):
        w = Worker(self.LANG)
        self.addCleanup(w.close)
        if ack:
            self.assertEqual(w.reply(), {"ok": True})
        return w

    def started(self, snippet, **kw):
        w = self.start()
        self.assertEqual(w.init(self.CODE[snippet], **kw), {"ok": True})
        return w

    def test_ack_comes_before_any_input(self):
        w = self.start(ack=False)
        self.assertEqual(w.reply_line(), b'{"ok":true}')
        self.assertEqual(w.logs_now(), ("", ""))  # the launcher prints nothing of its own

    def test_run_echoes_params_as_one_compact_line(self):
        w = self.started("echo")
        params = {"name": "Zoë 🎉", "multi": "line1\nline2", "n": [1, 2.5, None, True]}
        w.send(dict(RUN_META, value=params))
        # Compact, UTF-8, the newline escaped: byte for byte what both emit.
        expect = json.dumps({"params": params}, separators=(",", ":"), ensure_ascii=False)
        self.assertEqual(w.reply_line(), expect.encode())
        self.assertEqual(w.logs_now(), ("", ""))

    def test_env_from_init_and_ow_variables(self):
        w = self.started("env", env={"GREETING": "hello", "LEVEL": "3"})
        got = w.run({"x": 1}, api_key="uuid:secret")
        self.assertEqual(got, {"greeting": "hello", "level": "3", "namespace": "guest",
                               "action": "/guest/hello", "activation": RUN_META["activation_id"],
                               "deadline": "1700000000000", "api_host": "http://127.0.0.1:3233",
                               "api_key": "uuid:secret", "tx": "tx-1"})
        got = w.run({"x": 2}, activation_id="f" * 32)  # no api_key this time
        self.assertIsNone(got["api_key"])
        self.assertEqual(got["activation"], "f" * 32)
        self.assertEqual(got["greeting"], "hello")

    def test_logs_are_in_the_pipes_before_the_result(self):
        w = self.started("logs")
        for i in range(3):
            self.assertEqual(w.run({"n": i}), {"n": i})
            out, err = w.logs_now()
            self.assertEqual(out, "out %d\n" % i)
            self.assertEqual(err, "err %d\n" % i)

    def test_large_logs_are_in_the_pipes_before_the_result(self):
        # More than a pipe holds: node queues the excess inside the process
        # unless the launcher waits for it to drain.
        w = self.started("biglog")
        self.assertEqual(w.run({"kb": 1024}), {"done": True})
        out, _ = w.logs_now()
        self.assertEqual(len(out), 1024 * 1024 + 1)

    def test_exception_is_an_error_and_the_worker_goes_on(self):
        w = self.started("raises")
        self.assertEqual(w.run({"fail": True}), {"error": "boom"})
        _, err = w.logs_now()
        self.assertIn(self.TRACE_MARK, err)
        self.assertIn("boom", err)
        self.assertEqual(w.run({"fail": False}), {"fine": True})
        self.assertEqual(w.logs_now(), ("", ""))

    def test_list_result(self):
        w = self.started("list")
        self.assertEqual(w.run({}), [1, "two", {"three": 3}])

    def test_none_and_scalars_are_written_as_is(self):
        w = self.started("scalar")
        self.assertIsNone(w.run({"kind": "none"}))
        self.assertEqual(w.run({"kind": "number"}), 42)
        self.assertEqual(w.run({"kind": "string"}), "text")

    def test_non_serialisable_result(self):
        w = self.started("unserialisable")
        got = w.run({})
        self.assertIsInstance(got.get("error"), str)
        self.assertTrue(got["error"].startswith("The action did not return a JSON-serialisable result"), got)
        self.assertEqual(w.run({"ok": True}), {"ok": True})

    def test_missing_main_is_an_init_error(self):
        w = self.start()
        got = w.init(self.CODE["no_main"])
        self.assertIn("main", got["error"])
        self.assertIn("main", w.logs_now()[1])
        self.assertEqual(w.wait(), 1)

    def test_syntax_error_is_an_init_error(self):
        w = self.start()
        got = w.init(self.CODE["syntax_error"])
        self.assertIn("SyntaxError", got["error"])
        self.assertIn("SyntaxError", w.logs_now()[1])
        self.assertEqual(w.wait(), 1)

    def test_zip_action(self):
        w = self.start()
        self.assertEqual(w.init(zip_b64(self.ZIP), binary=True), {"ok": True})
        self.assertEqual(w.run({"name": "zip"}), {"greeting": "hello zip"})
        self.assertEqual(w.wait(), 0)
        self.assertEqual(sorted(os.listdir(w.cwd)), sorted({n.split("/")[0] for n in self.ZIP}))

    def test_zip_code_must_be_base64_but_may_wrap(self):
        # wispd refuses non-base64 code at create; the launchers do not guess either
        w = self.start()
        got = w.init("UEsFBgAA!!not base64!!", binary=True)
        self.assertTrue(got["error"].startswith("The action's code is not valid base64"), got)
        self.assertEqual(w.wait(), 1)
        # `base64 action.zip` wraps its lines at 76 columns: that is still base64
        w = self.start()
        code = zip_b64(self.ZIP)
        wrapped = "\n".join(code[i:i + 76] for i in range(0, len(code), 76))
        self.assertEqual(w.init(wrapped, binary=True), {"ok": True})
        self.assertEqual(w.run({"name": "zip"}), {"greeting": "hello zip"})

    def test_zip_with_a_bad_crc_is_refused(self):
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as z:
            for name, body in self.ZIP.items():
                z.writestr(name, body)
            z.writestr("data.txt", "the original text")
        data = bytearray(buf.getvalue())
        at = data.find(b"the original text")
        data[at:at + 3] = b"THE"  # the stored bytes change, their CRC does not
        w = self.start()
        got = w.init(base64.b64encode(bytes(data)).decode(), binary=True)
        self.assertTrue(got["error"].startswith("There was an error uncompressing the action archive: "), got)
        self.assertIn("data.txt", got["error"])
        self.assertEqual(w.wait(), 1)

    def test_text_action_leaves_no_files(self):
        # The pool removes a worker's directory with rmdir.
        w = self.started("raises")
        self.assertEqual(w.run({"fail": True}), {"error": "boom"})
        self.assertIn(self.SOURCE_LINE, w.logs_now()[1])  # source lines without a file
        self.assertEqual(w.wait(), 0)
        self.assertEqual(os.listdir(w.cwd), [])

    def test_custom_main_name(self):
        w = self.started("custom", main="handler")
        self.assertEqual(w.run({"a": 1}), {"handled": {"a": 1}})

    def test_invalid_json_lines(self):
        w = self.start()
        w.send("this is not json")
        self.assertEqual(w.reply(), {"error": "invalid input line"})
        self.assertEqual(w.init(self.CODE["echo"]), {"ok": True})  # still waiting for init
        for bad in ("{", "[1, 2]", b"{\"value\": \"\xff\"}"):
            w.send(bad)
            self.assertEqual(w.reply(), {"error": "invalid input line"})
        self.assertEqual(w.run({"a": 1}), {"params": {"a": 1}})
        self.assertEqual(w.logs_now(), ("", ""))

    def test_fifty_runs_without_log_leaks(self):
        w = self.started("logs")
        for i in range(50):
            self.assertEqual(w.run({"n": i}), {"n": i})
            self.assertEqual(w.logs_now(), ("out %d\n" % i, "err %d\n" % i), "run %d" % i)

    def test_eof_exits_zero(self):
        w = self.start()
        self.assertEqual(w.wait(), 0)  # right after the ack
        w = self.started("echo")
        self.assertEqual(w.run({}), {"params": {}})
        self.assertEqual(w.wait(), 0)

    def test_eof_exits_even_with_work_left_behind(self):
        w = self.started("linger")
        self.assertEqual(w.run({}), {"left": "running"})
        self.assertEqual(w.wait(), 0)

    def test_zz_spawn_to_ack_time(self):
        times = []
        for _ in range(20):
            t0 = time.perf_counter()
            w = Worker(self.LANG)
            try:
                self.assertEqual(w.reply(), {"ok": True})
                times.append(time.perf_counter() - t0)
            finally:
                w.close()
        print("\n%s launcher: spawn to ack median %.1f ms (min %.1f, max %.1f, 20 spawns)" % (
            self.LANG, statistics.median(times) * 1e3, min(times) * 1e3, max(times) * 1e3))


@unittest.skipUnless(PYTHON, "python3 not found")
class PythonLauncher(LauncherCases, unittest.TestCase):
    LANG = "python"
    TRACE_MARK = "Traceback (most recent call last)"
    SOURCE_LINE = "raise RuntimeError('boom')"
    CODE = {
        "echo": "def main(args):\n    return {'params': args}\n",
        "env": (
            "import os\n"
            "def main(args):\n"
            "    e = os.environ.get\n"
            "    return {'greeting': e('GREETING'), 'level': e('LEVEL'), 'namespace': e('__OW_NAMESPACE'),\n"
            "            'action': e('__OW_ACTION_NAME'), 'activation': e('__OW_ACTIVATION_ID'),\n"
            "            'deadline': e('__OW_DEADLINE'), 'api_host': e('__OW_API_HOST'),\n"
            "            'api_key': e('__OW_API_KEY'), 'tx': e('__OW_TRANSACTION_ID')}\n"),
        "logs": (
            "import sys\n"
            "def main(args):\n"
            "    print('out %d' % args['n'])\n"
            "    print('err %d' % args['n'], file=sys.stderr)\n"
            "    return args\n"),
        "biglog": (
            "import sys\n"
            "def main(args):\n"
            "    sys.stdout.write('x' * (args['kb'] * 1024) + '\\n')\n"
            "    return {'done': True}\n"),
        "raises": (
            "def main(args):\n"
            "    if args['fail']:\n"
            "        raise RuntimeError('boom')\n"
            "    return {'fine': True}\n"),
        "list": "def main(args):\n    return [1, 'two', {'three': 3}]\n",
        "scalar": "def main(args):\n    return {'none': None, 'number': 42, 'string': 'text'}[args['kind']]\n",
        "unserialisable": "def main(args):\n    return args if args else {'s': {1, 2}}\n",
        "no_main": "def handler(args):\n    return {}\n",
        "syntax_error": "def main(args):\n    return {'a': }\n",
        "custom": "def main(args):\n    return {}\ndef handler(args):\n    return {'handled': args}\n",
        "linger": (
            "import threading, time\n"
            "def main(args):\n"
            "    threading.Thread(target=time.sleep, args=(3600,)).start()\n"
            "    return {'left': 'running'}\n"),
    }
    ZIP = {
        "__main__.py": "from helper import greet\ndef main(args):\n    return {'greeting': greet(args['name'])}\n",
        "helper.py": "def greet(name):\n    return 'hello ' + name\n",
    }

    def test_name_guard_does_not_run_at_init(self):
        w = self.start()
        code = "def main(args):\n    return {}\nif __name__ == '__main__':\n    print('local test')\n"
        self.assertEqual(w.init(code), {"ok": True})
        self.assertEqual(w.logs_now(), ("", ""))


@unittest.skipUnless(NODE, "node not found")
class NodeLauncher(LauncherCases, unittest.TestCase):
    LANG = "nodejs"
    TRACE_MARK = "Error: boom\n    at "
    SOURCE_LINE = "index.js:2:"  # node prints no source line for a runtime error
    # The cases use every way OpenWhisk's node runtime finds main.
    CODE = {
        "echo": "function main(args) { return { params: args }; }\n",
        "env": (
            "exports.main = (args) => {\n"
            "  const e = (k) => process.env[k] === undefined ? null : process.env[k];\n"
            "  return { greeting: e('GREETING'), level: e('LEVEL'), namespace: e('__OW_NAMESPACE'),\n"
            "    action: e('__OW_ACTION_NAME'), activation: e('__OW_ACTIVATION_ID'),\n"
            "    deadline: e('__OW_DEADLINE'), api_host: e('__OW_API_HOST'),\n"
            "    api_key: e('__OW_API_KEY'), tx: e('__OW_TRANSACTION_ID') };\n"
            "};\n"),
        "logs": (
            "module.exports = function (args) {\n"
            "  console.log('out ' + args.n);\n"
            "  console.error('err ' + args.n);\n"
            "  return args;\n"
            "};\n"),
        "biglog": (
            "module.exports.main = (args) => {\n"
            "  process.stdout.write('x'.repeat(args.kb * 1024) + '\\n');\n"
            "  return { done: true };\n"
            "};\n"),
        "raises": (
            "function main(args) {\n"
            "  if (args.fail) throw new Error('boom');\n"
            "  return { fine: true };\n"
            "}\n"),
        "list": "const main = () => [1, 'two', { three: 3 }];\n",
        "scalar": "function main(args) { return { none: undefined, number: 42, string: 'text' }[args.kind]; }\n",
        "unserialisable": (
            "function main(args) {\n"
            "  if (args.ok) return args;\n"
            "  if (args.cycle) { const o = {}; o.self = o; return o; }\n"
            "  return { big: 1n };\n"
            "}\n"),
        "no_main": "function handler(args) { return {}; }\n",
        "syntax_error": "function main(args) { return { a: }; }\n",
        "custom": "function main() { return {}; }\nexports.handler = (args) => ({ handled: args });\n",
        "linger": "function main() { setInterval(() => {}, 1000); return { left: 'running' }; }\n",
        "async": (
            "exports.main = async function (args) {\n"
            "  if (args.reject === 'error') throw new Error('nope');\n"
            "  if (args.reject === 'object') return Promise.reject({ error: { code: 7 }, extra: 1 });\n"
            "  if (args.reject === 'string') return Promise.reject('plain');\n"
            "  await new Promise((r) => setTimeout(r, args.wait));\n"
            "  return { waited: args.wait };\n"
            "};\n"),
    }
    ZIP = {
        "package.json": json.dumps({"name": "zipped", "main": "lib/entry.js"}),
        "lib/entry.js": ("const { greet } = require('./helper');\n"
                         "exports.main = (args) => ({ greeting: greet(args.name) });\n"),
        "lib/helper.js": "exports.greet = (name) => 'hello ' + name;\n",
    }

    def test_cycle_is_not_serialisable(self):
        w = self.started("unserialisable")
        got = w.run({"cycle": True})
        self.assertTrue(got["error"].startswith("The action did not return a JSON-serialisable result"), got)

    def test_promise_result(self):
        w = self.started("async")
        self.assertEqual(w.run({"wait": 50}), {"waited": 50})
        self.assertEqual(w.logs_now(), ("", ""))

    def test_rejected_promise(self):
        w = self.started("async")
        self.assertEqual(w.run({"reject": "error"}), {"error": "nope"})
        self.assertIn("Error: nope\n    at ", w.logs_now()[1])
        self.assertEqual(w.run({"reject": "object"}), {"error": {"code": 7}, "extra": 1})
        self.assertEqual(w.run({"reject": "string"}), {"error": "plain"})
        self.assertEqual(w.run({"wait": 1}), {"waited": 1})

    def test_zip_with_index_js(self):
        w = self.start()
        code = zip_b64({"index.js": "module.exports = (args) => ({ index: args });\n"})
        self.assertEqual(w.init(code, binary=True), {"ok": True})
        self.assertEqual(w.run({"a": 1}), {"index": {"a": 1}})


if __name__ == "__main__":
    unittest.main()
