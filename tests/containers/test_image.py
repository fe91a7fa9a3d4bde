"""`wisp image import|list|rm` against a data dir: OCI layouts and docker save
tarballs built here (mkimage.py), whiteouts across layers, and the hostile
archives an import must refuse without writing anything outside its own
folder, or leaving anything behind."""
import gzip
import json
import os
import shutil
import stat
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(__file__))
import mkimage  # noqa: E402

WISP_CLI = os.environ.get("WISP_CLI", "wisp")


class ImageStore(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="wisp-img-")
        self.data = os.path.join(self.tmp, "var")
        os.mkdir(self.data)

    def tearDown(self):
        shutil.rmtree(self.tmp, ignore_errors=True)

    def wisp(self, *args, ok=True):
        p = subprocess.run([WISP_CLI, "image", "--data", self.data] + list(args),
                           capture_output=True, text=True, timeout=120)
        if ok:
            self.assertEqual(p.returncode, 0, p.stderr)
        return p

    def archive(self, name):
        return os.path.join(self.tmp, name)

    def rootfs(self, ref):
        refs = os.path.join(self.data, "images", "refs")
        with open(os.path.join(refs, ref.replace("/", "%2F"))) as f:
            return os.path.join(self.data, "images", f.read().strip(), "rootfs")

    def images_dir_entries(self):
        return sorted(e for e in os.listdir(os.path.join(self.data, "images")))

    def test_oci_layers_whiteouts_and_list(self):
        base = [("etc", "dir", None, 0o755), ("etc/a", "file", b"a1", 0o644),
                ("etc/gone", "file", b"x", 0o644), ("opq", "dir", None, 0o755),
                ("opq/old", "file", b"o", 0o644), ("bin", "dir", None, 0o755),
                ("bin/tool", "file", b"#!/bin/sh\n", 0o4755),
                ("lib", "symlink", "/usr/lib", 0o777), ("etc/hard", "hardlink", "etc/a", 0o644)]
        top = [("etc/.wh.gone", "file", b"", 0o644), ("opq/.wh..wh..opq", "file", b"", 0o644),
               ("opq/new", "file", b"n", 0o644), ("etc/a", "file", b"a2", 0o600)]
        cid = mkimage.oci_archive(self.archive("img.tar"), [base, top],
                                  entrypoint=["/bin/tool"], labels={"io.wisp.protocol": "actionloop"})
        p = self.wisp("import", self.archive("img.tar"), "demo/app:1.0")
        self.assertIn("imported demo/app:1.0 (%s)" % cid[:12], p.stdout)
        root = self.rootfs("demo/app:1.0")
        with open(os.path.join(root, "etc/a"), "rb") as f:
            self.assertEqual(f.read(), b"a2")
        self.assertFalse(os.path.exists(os.path.join(root, "etc/gone")))
        self.assertEqual(sorted(os.listdir(os.path.join(root, "opq"))), ["new"])
        self.assertEqual(os.readlink(os.path.join(root, "lib")), "/usr/lib")
        mode = os.stat(os.path.join(root, "bin/tool")).st_mode
        self.assertEqual(mode & (stat.S_ISUID | stat.S_ISGID), 0)  # setuid dropped
        self.assertTrue(mode & stat.S_IXUSR)
        with open(os.path.join(root, "etc/hard"), "rb") as f:  # the lower layer's etc/a
            self.assertEqual(f.read(), b"a1")
        for d in ("proc", "dev", "sys", "tmp"):
            self.assertTrue(os.path.isdir(os.path.join(root, d)), d)
        with open(os.path.join(os.path.dirname(root), "config.json")) as f:
            self.assertEqual(json.load(f)["config"]["Labels"]["io.wisp.protocol"], "actionloop")
        lst = self.wisp("list").stdout
        self.assertIn("demo/app:1.0", lst)
        self.assertIn(cid[:12], lst)
        # the same image under a second name shares the unpacked tree
        self.wisp("import", self.archive("img.tar"), "other")
        self.assertEqual(self.rootfs("other:latest"), root)
        self.wisp("rm", "demo/app:1.0")
        self.assertTrue(os.path.isdir(root))  # still named by other:latest
        self.wisp("rm", "other")
        self.assertFalse(os.path.exists(root))
        self.assertEqual(self.wisp("list").stdout, "")
        p = self.wisp("rm", "other", ok=False)
        self.assertEqual(p.returncode, 1)
        self.assertIn("no image other:latest", p.stderr)

    def test_docker_save_and_gzip_outer(self):
        layer = [("hello", "file", b"hi", 0o644)]
        mkimage.docker_save(self.archive("d.tar"), [layer, [("more", "file", b"m", 0o644)]])
        self.wisp("import", self.archive("d.tar"), "saved:v1")
        root = self.rootfs("saved:v1")
        self.assertTrue(os.path.isfile(os.path.join(root, "hello")))
        self.assertTrue(os.path.isfile(os.path.join(root, "more")))
        mkimage.oci_archive(self.archive("o.tar.gz"), [layer], compress=False, outer_gzip=True)
        self.wisp("import", self.archive("o.tar.gz"), "gz")
        self.assertTrue(os.path.isfile(os.path.join(self.rootfs("gz:latest"), "hello")))

    def refused(self, path, message, ref="bad"):
        before = self.images_dir_entries() if os.path.isdir(os.path.join(self.data, "images")) else None
        p = self.wisp("import", path, ref, ok=False)
        self.assertEqual(p.returncode, 1, p.stdout)
        self.assertIn(message, p.stderr)
        after = self.images_dir_entries()
        self.assertEqual([e for e in after if e.startswith(".tmp-")], [])  # nothing left behind
        if before is not None:
            self.assertEqual(before, after)
        self.assertNotIn(ref, self.wisp("list").stdout)

    def test_hostile_archives(self):
        victim = os.path.join(self.tmp, "victim")
        cases = [
            ([("../../escape", "file", b"x", 0o644)], "leaves the image (..)"),
            ([("a/../../escape", "file", b"x", 0o644)], "leaves the image (..)"),
            ([("link", "symlink", self.tmp, 0o777), ("link/victim", "file", b"x", 0o644)],
             "goes through a symlink"),
            ([("up", "symlink", "../../..", 0o777), ("up/victim", "file", b"x", 0o644)],
             "goes through a symlink"),
            ([("h", "hardlink", victim, 0o644)], "names no file of the image"),
            ([("h", "hardlink", "../victim", 0o644)], "hard link 'h' leaves the image"),
            ([("null", "chardev", None, 0o666)], "is a device node"),
        ]
        for i, (layer, msg) in enumerate(cases):
            with self.subTest(msg=msg, i=i):
                path = self.archive("h%d.tar" % i)
                mkimage.oci_archive(path, [layer])
                self.refused(path, msg)
                self.assertFalse(os.path.exists(victim))
                self.assertFalse(os.path.exists(os.path.join(self.tmp, "escape")))

    def test_corrupt_archives(self):
        layer = [("f", "file", b"data" * 1000, 0o644)]
        good = self.archive("good.tar")
        mkimage.oci_archive(good, [layer])
        with open(good, "rb") as f:
            data = f.read()
        # a layer whose bytes changed after its digest was taken
        mkimage.oci_archive(self.archive("t.tar"), [layer], compress=False,
                            tamper=lambda n, d: d.replace(b"datadata", b"DATAdata", 1))
        self.refused(self.archive("t.tar"), "layer 1 does not match its digest")
        # a gzip layer whose bytes changed: gzip's own check finds it first
        mkimage.oci_archive(self.archive("tg.tar"), [layer],
                            tamper=lambda n, d: d[:-12] + bytes(4) + d[-8:] if d[:2] == b"\x1f\x8b" else d)
        self.refused(self.archive("tg.tar"), "gzip data")
        # a config that is not the one the manifest names
        mkimage.oci_archive(self.archive("c.tar"), [layer],
                            tamper=lambda n, d: d.replace(b'"os": "linux"', b'"os":  "linux"') if b'"rootfs"' in d else d)
        self.refused(self.archive("c.tar"), "does not match its digest")
        # truncated outer tar
        with open(self.archive("trunc.tar"), "wb") as f:
            f.write(data[:len(data) // 2 + 100])
        self.refused(self.archive("trunc.tar"), "truncated")
        # truncated gzip
        with open(self.archive("trunc.tar.gz"), "wb") as f:
            f.write(gzip.compress(data)[:300])
        self.refused(self.archive("trunc.tar.gz"), "truncated")
        # not a tar at all
        with open(self.archive("junk"), "wb") as f:
            f.write(b"this is not an archive" * 40)
        self.refused(self.archive("junk"), "not a tar archive")
        # a tar without a manifest
        mkimage.layer_tar([])
        with open(self.archive("plain.tar"), "wb") as f:
            f.write(mkimage.layer_tar([("x", "file", b"1", 0o644)]))
        self.refused(self.archive("plain.tar"), "neither an OCI image layout")
        # over the size bound
        big = self.archive("big.tar")
        mkimage.oci_archive(big, [[("f", "file", b"\0" * (3 << 20), 0o644)]])
        p = self.wisp("import", "--image-max-mb", "2", big, "big", ok=False)
        self.assertEqual(p.returncode, 1)
        self.assertIn("more than 2 MB", p.stderr)
        # bad names
        for ref, msg in (("UPPER", "lower-case"), ("x:-bad", "tag"), ("a:b:c", "lower-case"), ("x@sha256:00", "digests")):
            p = self.wisp("import", good, ref, ok=False)
            self.assertEqual(p.returncode, 1, ref)
            self.assertIn(msg, p.stderr)
        p = self.wisp("import", good, ok=False)
        self.assertEqual(p.returncode, 2)
        self.assertIn("usage:", p.stderr)

    def test_rm_refused_while_an_action_uses_it(self):
        """Covered in test_containers with a real action; here: no store, no users."""
        mkimage.oci_archive(self.archive("a.tar"), [[("f", "file", b"1", 0o644)]])
        self.wisp("import", self.archive("a.tar"), "unused")
        self.wisp("rm", "unused")


if __name__ == "__main__":
    unittest.main()
