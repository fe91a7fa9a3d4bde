"""Zipped python:3 and nodejs actions through the real wispd, as a user makes
and sends them: archives built by the `zip` command-line tool (directory
entries, nested folders, a node_modules tree, symlinks stored as links) and
by python's zipfile, PUT with `binary: true`, invoked blocking, and checked
against OpenWhisk's activation record.

What OpenWhisk's runtimes do, and so what is checked here:
- python:3 runs `__main__.py` at the archive's root; its sibling modules and
  packages import; a `virtualenv/` folder's site-packages are importable
  (a real `python3 -m venv` when Debian's python3-venv is there);
- nodejs requires the archive's root as a package: package.json's `main`
  (in a subfolder too), else index.js; `node_modules` inside resolves;
- `main` names the function to run in both;
- an archive whose files all sit in one top-level folder is refused, as
  OpenWhisk refuses it ("Zip file does not include __main__.py", "Zipped
  actions must contain either package.json or index.js at the root."),
  with a hint at what happened;
- a bad archive (not a zip, truncated, without its entry point, with `..`
  or absolute names, an entry past the size limit, a header that lies) is
  an `action developer error` "Initialization has failed: ...", also in the
  activation's logs, nothing lands outside the worker's directory, the next
  activation of another action runs, and wispd stays up (tearDown stops it
  and checks its exit status and its log for sanitizer reports).
Code that is not base64 at all never gets that far: the PUT answers 400.
The native kind's zips have their own tests in test_invoke.py; here only
what they lack, an archive made by the `zip` tool.
"""
import base64
import io
import json
import os
import shutil
import stat
import struct
import subprocess
import tempfile
import unittest
import uuid
import zipfile

import test_invoke
from harness import NODE_KIND, needs_target_programs

ZIP = shutil.which("zip")
PYTHON = "/usr/bin/python3"  # the interpreter the python:3 kind runs
PY_VER = subprocess.run([PYTHON, "-c", "import sys; print('python%d.%d' % sys.version_info[:2])"],
                        capture_output=True, text=True, check=True).stdout.strip()
INIT_FAILED = "Initialization has failed: "
ZIP_BAD = "There was an error uncompressing the action archive: "
needs_node = unittest.skipUnless(NODE_KIND, "no /usr/bin/node: no nodejs kind here")
needs_zip = unittest.skipUnless(ZIP, "the zip command is not installed")


def zip_bytes(entries):
    """A zip made by python's zipfile. entries: {name: text or bytes}; a name
    ending in / is a directory entry."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in entries.items():
            z.writestr(name, data)
    return buf.getvalue()


def b64(data):
    return base64.b64encode(data).decode()


def write_tree(root, files):
    """files: {relative path: text}; folders are made as needed."""
    for rel, text in files.items():
        path = os.path.join(root, rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as f:
            f.write(text)


def zip_cli(cwd, *args):
    """The real zip tool run in cwd (zip -r, as the OpenWhisk docs say);
    returns the archive's bytes."""
    out = os.path.join(tempfile.mkdtemp(prefix="wisp-zipcli-"), "action.zip")
    try:
        subprocess.run([ZIP, "-q", "-r", out] + list(args), cwd=cwd, check=True,
                       stdin=subprocess.DEVNULL, timeout=120)
        with open(out, "rb") as f:
            return f.read()
    finally:
        shutil.rmtree(os.path.dirname(out), ignore_errors=True)


def names_in(data):
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        return z.namelist()


PY_MAIN = """import json, os, sys
import helper
from pkg.sub import deep
def main(args):
    with open(os.path.join("data", "config.json")) as f:
        cfg = json.load(f)
    print("zipped python", args.get("n"))
    return {"helper": helper.NAME, "deep": deep.where(), "cfg": cfg, "n": args.get("n")}
def other(args):
    return {"other": True, "args": args}
"""
PY_FILES = {
    "__main__.py": PY_MAIN,
    "helper.py": "NAME = 'sibling module'\n",
    "pkg/__init__.py": "",
    "pkg/sub/__init__.py": "",
    "pkg/sub/deep.py": "def where():\n    return __name__\n",
    "data/config.json": json.dumps({"site": "edge-1"}),
}
PY_RESULT = {"helper": "sibling module", "deep": "pkg.sub.deep", "cfg": {"site": "edge-1"}}

NODE_ENTRY = """const { greet } = require('./helper');
const pad = require('leftpad');
const cfg = require('../data/config.json');
exports.main = (args) => {
  console.log('zipped node', args.n);
  return { greeting: greet(args.name || 'edge'), padded: pad(String(args.n), 4), site: cfg.site, n: args.n };
};
exports.handler = (args) => ({ handler: true, args });
"""
NODE_FILES = {
    "package.json": json.dumps({"name": "zipped", "version": "1.0.0", "main": "lib/entry.js"}),
    "lib/entry.js": NODE_ENTRY,
    "lib/helper.js": "exports.greet = (name) => 'hello ' + name;\n",
    "data/config.json": json.dumps({"site": "edge-1"}),
    "node_modules/leftpad/package.json": json.dumps({"name": "leftpad", "main": "src/pad.js"}),
    "node_modules/leftpad/src/pad.js": "module.exports = (s, n) => s.padStart(n, '0');\n",
}


class ZipCase(test_invoke.InvokeCase):
    """Helpers over InvokeCase's (its record checks are OpenWhisk's)."""

    def put_zip(self, name, kind, data, main=None, status=200):
        ex = {"kind": kind, "code": b64(data) if isinstance(data, bytes) else data, "binary": True}
        if main:
            ex["main"] = main
        r = self.w.api("PUT", "actions/%s?overwrite=true" % name, {"exec": ex})
        self.assertEqual(r.status, status, r)
        return r.json()

    def assert_init_failed(self, name, kind, error_part):
        """The activation is a developer error that says why, in its result
        and its logs, each time (a new worker every time)."""
        for _ in range(2):
            rec = self.assert_failed(self.invoke(name, {}), "action developer error", error_part,
                                     name, "guest/" + name, kind)
            err = rec["response"]["result"]["error"]
            self.assertTrue(err.startswith(INIT_FAILED), err)
            self.assertIn(("stderr", err[len(INIT_FAILED):]), self.log_parts(rec))
        return err

    def good_actions(self):
        """One good action per interpreted kind, made once: (name, kind, result)."""
        if getattr(self, "_good", None) is None:
            self._good = [("goodpy", "python:3", {"ok": "py"})]
            self.put_zip("goodpy", "python:3", zip_bytes({"__main__.py": "def main(a):\n    return {'ok': 'py'}\n"}))
            if NODE_KIND:
                self._good.append(("goodnode", NODE_KIND, {"ok": "node"}))
                self.put_zip("goodnode", NODE_KIND, zip_bytes({"index.js": "exports.main = () => ({ ok: 'node' })\n"}))
        return self._good

    def assert_others_run(self):
        for name, kind, result in self.good_actions():
            rec = self.invoke_ok(name, {})
            self.check_record(rec, name, "guest/" + name, kind)
            self.assertEqual(rec["response"]["result"], result)


# ==== python:3 ================================================================
class PythonZips(ZipCase):
    def run_py_files(self, name, data):
        self.put_zip(name, "python:3", data)
        for i in range(2):  # a cold start, then the warm worker
            rec = self.invoke_ok(name, {"n": i})
            self.check_record(rec, name, "guest/" + name, "python:3", init=(i == 0))
            self.assertEqual(rec["response"]["result"], dict(PY_RESULT, n=i))
            self.assertEqual(self.log_parts(rec), [("stdout", "zipped python %d" % i)])

    def test_zipfile_archive_main_imports_siblings_and_packages(self):
        self.run_py_files("pyzip", zip_bytes(PY_FILES))

    @needs_zip
    def test_zip_tool_archive_with_directory_entries(self):
        d = tempfile.mkdtemp(prefix="wisp-pysrc-")
        self.addCleanup(shutil.rmtree, d, True)
        write_tree(d, PY_FILES)
        data = zip_cli(d, ".")
        self.assertIn("pkg/sub/", names_in(data))  # zip -r stores the folders too
        self.run_py_files("pycli", data)

    def test_main_names_another_function(self):
        self.put_zip("pyother", "python:3", zip_bytes(PY_FILES), main="other")
        rec = self.invoke_ok("pyother", {"x": 1})
        self.assertEqual(rec["response"]["result"], {"other": True, "args": {"x": 1}})
        self.put_zip("pynone", "python:3", zip_bytes(PY_FILES), main="nope")
        self.assert_init_failed("pynone", "python:3", "the action has no function 'nope'")
        self.assert_others_run()

    def run_venv(self, name, data, module_dir):
        self.put_zip(name, "python:3", data)
        rec = self.invoke_ok(name, {})
        self.check_record(rec, name, "guest/" + name, "python:3", init=True)
        res = rec["response"]["result"]
        self.assertEqual(res["greeting"], "hello from the venv")
        self.assertEqual(res["extra"], "from a .pth folder")
        # imported from the worker's copy of the archive, ahead of the system
        self.assertTrue(res["file"].endswith("/virtualenv/lib/%s/site-packages/%s/__init__.py"
                                             % (module_dir, "greetlib")), res)
        self.assertEqual(res["first"], "virtualenv/lib/%s/site-packages" % module_dir, res)

    VENV_MAIN = """import os, sys
import greetlib, extra_mod
def main(args):
    here = os.getcwd()
    venv = [p for p in sys.path if "virtualenv" in p]
    return {"greeting": greetlib.greet(), "file": greetlib.__file__, "extra": extra_mod.WHAT,
            "first": os.path.relpath(venv[0], here) if venv else None}
"""

    def venv_payload(self, site):
        """A package, and a .pth naming a folder, in a site-packages folder."""
        write_tree(site, {
            "greetlib/__init__.py": "def greet():\n    return 'hello from the venv'\n",
            "extra/extra_mod.py": "WHAT = 'from a .pth folder'\n",
            "wisp-extra.pth": "extra\n",
        })

    @needs_zip
    def test_real_virtualenv_is_importable(self):
        d = tempfile.mkdtemp(prefix="wisp-venv-")
        self.addCleanup(shutil.rmtree, d, True)
        r = subprocess.run([PYTHON, "-m", "venv", "--without-pip", os.path.join(d, "virtualenv")],
                           capture_output=True, text=True, timeout=120)
        if r.returncode != 0:
            self.skipTest("python3 -m venv does not work here (python3-venv?): " + r.stderr)
        site = os.path.join(d, "virtualenv", "lib", PY_VER, "site-packages")
        self.assertTrue(os.path.isdir(site), os.listdir(os.path.join(d, "virtualenv", "lib")))
        self.venv_payload(site)
        write_tree(d, {"__main__.py": self.VENV_MAIN})
        # -y: the venv's bin/python links stay links (small entries), as
        # OpenWhisk's docs' `zip -r` would otherwise copy the interpreter
        data = zip_cli(d, "-y", "__main__.py", "virtualenv")
        self.assertTrue(any(n.startswith("virtualenv/bin/python") for n in names_in(data)))
        self.run_venv("pyvenv", data, PY_VER)

    def test_hand_made_virtualenv_layout(self):
        d = tempfile.mkdtemp(prefix="wisp-venvh-")
        self.addCleanup(shutil.rmtree, d, True)
        # another python's folder too: this interpreter's comes first
        for ver in ("python3.1", PY_VER):
            self.venv_payload(os.path.join(d, "virtualenv", "lib", ver, "site-packages"))
        write_tree(d, {"__main__.py": self.VENV_MAIN})
        entries = {}
        for root, _, files in os.walk(d):
            for fname in files:
                path = os.path.join(root, fname)
                with open(path, "rb") as f:
                    entries[os.path.relpath(path, d)] = f.read()
        self.run_venv("pyvenvh", zip_bytes(entries), PY_VER)

    @needs_zip
    def test_archive_of_the_folder_is_refused_with_a_hint(self):
        # `zip -r action.zip myaction` from the parent: every file sits in
        # myaction/, and OpenWhisk's python runtime finds no __main__.py
        d = tempfile.mkdtemp(prefix="wisp-pyfold-")
        self.addCleanup(shutil.rmtree, d, True)
        write_tree(os.path.join(d, "myaction"), PY_FILES)
        data = zip_cli(d, "myaction")
        self.assertTrue(all(n.startswith("myaction/") for n in names_in(data)))
        self.put_zip("pyfolder", "python:3", data)
        err = self.assert_init_failed("pyfolder", "python:3", "Zip file does not include __main__.py")
        self.assertIn("it is in 'myaction/'", err)
        self.assert_others_run()


# ==== nodejs ================================================================
@needs_node
class NodeZips(ZipCase):
    def run_node_files(self, name, data, main=None):
        self.put_zip(name, NODE_KIND, data, main=main)
        for i in range(2):
            rec = self.invoke_ok(name, {"n": i, "name": "zip"})
            self.check_record(rec, name, "guest/" + name, NODE_KIND, init=(i == 0))
            self.assertEqual(rec["response"]["result"],
                             {"greeting": "hello zip", "padded": "000%d" % i, "site": "edge-1", "n": i})
            self.assertEqual(self.log_parts(rec), [("stdout", "zipped node %d" % i)])

    def test_zipfile_archive_package_main_in_a_subfolder_with_node_modules(self):
        self.run_node_files("nzip", zip_bytes(NODE_FILES))

    @needs_zip
    def test_zip_tool_archive_with_directory_entries(self):
        d = tempfile.mkdtemp(prefix="wisp-nsrc-")
        self.addCleanup(shutil.rmtree, d, True)
        write_tree(d, NODE_FILES)
        data = zip_cli(d, ".")
        self.assertIn("node_modules/leftpad/src/", names_in(data))
        self.run_node_files("ncli", data)

    def test_index_js_without_package_json(self):
        files = {k: v for k, v in NODE_FILES.items() if k != "package.json"}
        files["index.js"] = "module.exports = require('./lib/entry.js');\n"
        self.run_node_files("nindex", zip_bytes(files))

    def test_main_names_another_function(self):
        self.put_zip("nother", NODE_KIND, zip_bytes(NODE_FILES), main="handler")
        rec = self.invoke_ok("nother", {"x": 1})
        self.assertEqual(rec["response"]["result"], {"handler": True, "args": {"x": 1}})

    def test_missing_entry_points_are_named(self):
        self.put_zip("nnomain", NODE_KIND,
                     zip_bytes({"package.json": json.dumps({"main": "lib/gone.js"}), "lib/x.js": ""}))
        self.assert_init_failed("nnomain", NODE_KIND,
                                "the action's package.json names main 'lib/gone.js', which is not in the zip file")
        self.put_zip("nnofn", NODE_KIND, zip_bytes({"index.js": "exports.other = () => ({})\n"}))
        self.assert_init_failed("nnofn", NODE_KIND, "the action has no function 'main'")
        self.assert_others_run()

    @needs_zip
    def test_archive_of_the_folder_is_refused_with_a_hint(self):
        d = tempfile.mkdtemp(prefix="wisp-nfold-")
        self.addCleanup(shutil.rmtree, d, True)
        write_tree(os.path.join(d, "myaction"), NODE_FILES)
        data = zip_cli(d, "myaction")
        self.put_zip("nfolder", NODE_KIND, data)
        err = self.assert_init_failed(
            "nfolder", NODE_KIND, "Zipped actions must contain either package.json or index.js at the root")
        self.assertIn("it is in 'myaction/'", err)
        self.assert_others_run()


# ==== native: an archive made by the zip tool =================================
SH_EXEC = """#!/bin/sh
. ./lib/util.sh
while IFS= read -r line; do
  printf '{"util":"%s","tool":"%s"}\\n' "$(util_name)" "$(./bin/tool.sh)" >&3
done
"""


class NativeZipTool(ZipCase):
    @needs_zip
    @needs_target_programs
    def test_zip_tool_archive_keeps_modes_and_folders(self):
        d = tempfile.mkdtemp(prefix="wisp-nat-")
        self.addCleanup(shutil.rmtree, d, True)
        write_tree(d, {"exec": SH_EXEC, "lib/util.sh": "util_name() { echo util; }\n",
                       "bin/tool.sh": "#!/bin/sh\necho tool ran\n"})
        os.chmod(os.path.join(d, "exec"), 0o755)
        os.chmod(os.path.join(d, "bin/tool.sh"), 0o755)
        data = zip_cli(d, ".")
        self.assertIn("bin/", names_in(data))
        self.put_zip("natcli", "native", data)
        for i in range(2):
            rec = self.invoke_ok("natcli", {})
            self.check_record(rec, "natcli", "guest/natcli", "native", init=(i == 0))
            self.assertEqual(rec["response"]["result"], {"util": "util", "tool": "tool ran"})


# ==== bad archives ==========================================================
def lying_zip(name, real_size, stated_size):
    """One deflated entry of real_size zeros whose headers say stated_size:
    a bomb that hides its size."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr(name, b"\0" * real_size)
    data = bytearray(buf.getvalue())
    local = data.find(b"PK\x03\x04")
    central = data.find(b"PK\x01\x02")
    struct.pack_into("<I", data, local + 22, stated_size)
    struct.pack_into("<I", data, central + 24, stated_size)
    return bytes(data)


def big_zip(extra, size_mb):
    """entries plus one entry of size_mb MB of zeros, streamed (~1 MB per
    1000 MB compressed)."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for n, v in extra.items():
            z.writestr(n, v)
        mb = b"\0" * (1 << 20)
        with z.open("data/huge.bin", "w", force_zip64=False) as f:
            for _ in range(size_mb):
                f.write(mb)
    return buf.getvalue()


class BadZips(ZipCase):
    def kinds(self):
        out = [("python:3", {"__main__.py": "def main(a):\n    return {}\n"})]
        if NODE_KIND:
            out.append((NODE_KIND, {"index.js": "exports.main = () => ({})\n"}))
        return out

    def each_kind(self, label, make, error_part):
        """Every interpreted kind refuses the archive make(entry files) with
        error_part, and the good actions run after it."""
        for kind, entry in self.kinds():
            name = "%s-%s" % (label, kind.split(":")[0])
            with self.subTest(kind=kind, case=label):
                self.put_zip(name, kind, make(entry))
                self.assert_init_failed(name, kind, error_part)
        self.assert_others_run()

    def test_code_that_is_not_base64_is_refused_at_create(self):
        for kind, _ in self.kinds():
            r = self.w.api("PUT", "actions/nob64", {"exec": {"kind": kind, "code": "this is not base64!",
                                                            "binary": True}})
            self.assertError(r, 400, "exec.code is marked binary but is not base64.")
            self.assertEqual(self.w.api("GET", "actions/nob64").status, 404)
        self.assert_others_run()

    def test_not_a_zip(self):
        self.each_kind("notzip", lambda e: b"just some text, not an archive\n" * 3, ZIP_BAD)

    def test_truncated_zip(self):
        def cut(e):
            data = zip_bytes(dict(e, **{"helper.txt": os.urandom(4096).hex()}))
            return data[:len(data) // 2]
        self.each_kind("trunc", cut, ZIP_BAD)

    def test_empty_zip(self):
        self.each_kind("empty", lambda e: zip_bytes({}), None)

    def test_no_entry_point(self):
        py = {"main.py": "def main(a):\n    return {}\n", "lib/": ""}
        self.put_zip("nomainpy", "python:3", zip_bytes(py))
        err = self.assert_init_failed("nomainpy", "python:3", "Zip file does not include __main__.py at its root")
        self.assertNotIn("it is in", err)  # no folder to blame
        if NODE_KIND:
            self.put_zip("noindex", NODE_KIND, zip_bytes({"main.js": "exports.main = () => ({})\n"}))
            self.assert_init_failed("noindex", NODE_KIND,
                                    "Zipped actions must contain either package.json or index.js at the root.")
        self.assert_others_run()

    def assert_nothing_outside(self, marker):
        for root, _, files in os.walk(self.w.tmp):
            self.assertFalse([f for f in files if marker in f], "%s written under %s" % (marker, root))
        for d in ("/tmp", "/", tempfile.gettempdir(), os.path.dirname(self.w.tmp)):
            self.assertFalse(os.path.exists(os.path.join(d, marker)), os.path.join(d, marker))

    def test_entries_that_leave_the_directory_are_refused(self):
        marker = "zipslip-" + uuid.uuid4().hex
        cases = [
            ("dotdot", "../" + marker, "'..' leaves the action's directory"),
            ("deep", "a/../../../../" + marker, "'..' leaves the action's directory"),
            ("far", "../" * 12 + "tmp/" + marker, "'..' leaves the action's directory"),
            ("abs", "/tmp/" + marker, "absolute path"),
        ]
        for label, evil, why in cases:
            self.each_kind(label, lambda e: zip_bytes(dict(e, **{evil: "escaped"})), why)
            self.assert_nothing_outside(marker)

        # a symlink to /tmp, then a file through it: the link is only a
        # small file holding "/tmp", so the second entry cannot be written
        def through_link(e):
            buf = io.BytesIO()
            with zipfile.ZipFile(buf, "w") as z:
                for n, v in e.items():
                    z.writestr(n, v)
                link = zipfile.ZipInfo("lnk")
                link.create_system = 3
                link.external_attr = (stat.S_IFLNK | 0o777) << 16
                z.writestr(link, "/tmp")
                z.writestr("lnk/" + marker, "escaped")
            return buf.getvalue()
        self.each_kind("link", through_link, ZIP_BAD + "cannot write 'lnk")
        self.assert_nothing_outside(marker)

    def test_entry_past_the_size_limit_is_refused(self):
        # 300 MB of zeros, about 300 KB deflated: past the 256 MB an entry
        # (and a whole archive) may expand to
        self.each_kind("bomb", lambda e: big_zip(e, 300), "is too large: 314572800 > 268435456 bytes")

    def test_entry_that_inflates_past_its_stated_size_is_refused(self):
        # a 16 MB entry whose headers say 100 bytes
        def lie(e):
            data = lying_zip("data/liar.bin", 16 << 20, 100)
            buf = io.BytesIO(data)
            with zipfile.ZipFile(buf, "a") as z:
                for n, v in e.items():
                    z.writestr(n, v)
            return buf.getvalue()
        self.each_kind("liar", lie, "data/liar.bin")


if __name__ == "__main__":
    unittest.main()
