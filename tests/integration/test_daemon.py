"""wispd's command-line and process contract: the ready line, flags and
config file, --print-config, clean SIGTERM exit, and `wisp admin`."""
import os
import re
import shutil
import subprocess
import tempfile
import unittest

from harness import GUEST_KEY, WISP_CLI, WISPD, Wispd


def run(args, **kw):
    return subprocess.run(args, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60, **kw)


class Daemon(unittest.TestCase):
    def test_flags_config_file_and_print_config(self):
        with tempfile.TemporaryDirectory() as d:
            conf = os.path.join(d, "wisp.conf")
            with open(conf, "w") as f:
                f.write("# test\nentity-cache = 7\nlisten=127.0.0.1:9\nsequence-max 9\n")
            r = run([WISPD, "--config", conf, "--listen", "127.0.0.1:0", "--print-config"])
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertIn("entity-cache = 7\n", r.stdout)
            self.assertIn("sequence-max = 9\n", r.stdout)
            self.assertIn("listen = 127.0.0.1:0\n", r.stdout)  # the flag wins over the file
            self.assertIn("board = generic\n", r.stdout)
            with open(conf, "a") as f:
                f.write("bogus-key = 1\n")
            r = run([WISPD, "--config", conf, "--print-config"])
            self.assertNotEqual(r.returncode, 0)
            self.assertIn(conf + ":5: unknown setting 'bogus-key'", r.stderr)

    def test_bad_flags_exit_non_zero_with_a_message(self):
        for args, msg in [(["--listen", "nohost"], "listen"),
                          (["--listen", "127.0.0.1:70000"], "listen"),
                          (["--store-map-mb", "0"], "store-map-mb"),
                          (["--board", "nope"], "no profile 'nope'"),
                          (["--nope", "1"], "unknown setting"),
                          (["--data"], "needs a value"),
                          (["stray"], "unexpected argument")]:
            with self.subTest(args=args):
                r = run([WISPD] + args)
                self.assertNotEqual(r.returncode, 0)
                self.assertIn(msg, r.stderr)
        r = run([WISPD, "--help"])
        self.assertEqual(r.returncode, 0)
        self.assertIn("--data", r.stdout)

    def test_board_auto_names_its_pick_and_reads_a_cgroup_limit(self):
        r = run([WISPD, "--board", "auto", "--print-config"])
        self.assertEqual(r.returncode, 0, r.stderr)
        first = r.stdout.splitlines()[0]
        self.assertRegex(first, r"^# board auto: (generic|x86-small|pi3|pi4|arm-512) \(")
        picked = first.split()[3]
        self.assertIn("board = %s\n" % picked, r.stdout)
        w = Wispd(args=["--board", "auto"]).start()
        try:
            self.assertIn("board auto: %s (" % picked, w.log())
        finally:
            w.stop()
            w.cleanup()
        # the memory of a 512 MB board, as a cgroup gives it (root only)
        if os.geteuid() != 0:
            return
        v2 = os.path.exists("/sys/fs/cgroup/cgroup.controllers")
        base = "/sys/fs/cgroup" if v2 else "/sys/fs/cgroup/memory"
        if not os.path.isdir(base):
            return
        group = os.path.join(base, "wisp-board-test-%d" % os.getpid())
        try:
            os.mkdir(group)
        except OSError:  # v2 without write access to the root group
            return
        try:
            with open(os.path.join(group, "memory.max" if v2 else "memory.limit_in_bytes"), "w") as f:
                f.write(str(512 << 20))
            r = run(["sh", "-c", 'echo $$ > "$1/cgroup.procs" && exec "$2" --board auto --print-config',
                     "sh", group, WISPD])
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertEqual(r.stdout.splitlines()[0],
                             "# board auto: arm-512 (%s, 512 MB, its cgroup's limit)" %
                             (("model '%s'" % open("/proc/device-tree/model").read().rstrip("\0"))
                              if os.path.exists("/proc/device-tree/model") else "no device tree"))
            self.assertIn("pool-memory-mb = 320\n", r.stdout)
        finally:
            os.rmdir(group)

    def test_random_guest_key_is_written_and_works(self):
        w = Wispd(key=None)
        try:
            w.start()
            path = os.path.join(w.data, "guest.key")
            self.assertEqual(os.stat(path).st_mode & 0o777, 0o600)
            with open(path) as f:
                key = f.read().strip()
            uuid, secret = key.split(":")
            self.assertEqual(len(uuid), 36)
            self.assertEqual(len(secret), 64)
            w.key = key
            self.assertEqual(w.request("GET", "/api/v1/namespaces").json(), ["guest"])
            self.assertEqual(w.stop(), 0)
            # the stored secret is hashed: the key does not appear in the store
            with open(os.path.join(w.data, "data.mdb"), "rb") as f:
                self.assertNotIn(secret.encode(), f.read())
        finally:
            w.cleanup()

    def test_sigterm_exits_zero(self):
        w = Wispd()
        try:
            w.start()
            self.assertEqual(w.request("GET", "/ping", auth=False).status, 200)
            self.assertEqual(w.stop(), 0)
        finally:
            w.cleanup()

    def test_corrupt_data_dir_is_an_error_not_a_crash(self):
        with tempfile.TemporaryDirectory() as d:
            with open(os.path.join(d, "data.mdb"), "wb") as f:
                f.write(b"\xde\xad" * 8192)
            r = run([WISPD, "--data", d, "--listen", "127.0.0.1:0"], env=dict(os.environ, WISP_GUEST_KEY=GUEST_KEY))
            self.assertEqual(r.returncode, 1)
            self.assertIn("cannot open store", r.stderr)


class Admin(unittest.TestCase):
    def test_one_wispd_per_data_dir(self):
        w = Wispd()
        try:
            w.start()
            r = run([WISPD, "--data", w.data, "--listen", "127.0.0.1:0"], env=dict(os.environ, WISP_GUEST_KEY=GUEST_KEY))
            self.assertEqual(r.returncode, 1)
            self.assertIn("wispd: data dir %s is in use by another wispd (pid %d)" % (w.data, w.proc.pid), r.stderr)
            self.assertEqual(w.request("GET", "/ping", auth=False).status, 200)
        finally:
            w.stop()
            w.cleanup()

    def test_backup_beside_a_running_wispd_and_restore(self):
        w = Wispd(args=["--prewarm", ""])
        tmp = tempfile.mkdtemp(prefix="wisp-backup-")
        backup = os.path.join(tmp, "wisp.backup")
        code = {"exec": {"kind": "python:3", "code": "def main(a):\n    return {'v': 1}\n"}}
        try:
            w.start()
            self.assertEqual(w.api("PUT", "actions/kept", code).status, 200)
            r = w.api("POST", "actions/kept?blocking=true&result=true", {})
            self.assertEqual((r.status, r.json()), (200, {"v": 1}))
            r = run([WISP_CLI, "admin", "--data", w.data, "backup", backup])
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertRegex(r.stdout, r"^backed up .* to .*wisp.backup \(\d+ bytes\)\n$")
            self.assertEqual(w.api("PUT", "actions/after", code).status, 200)
            # restore needs wispd stopped, and says who runs
            r = run([WISP_CLI, "admin", "--data", w.data, "restore", backup])
            self.assertEqual(r.returncode, 1)
            self.assertIn("wispd (pid %d) runs on %s: stop it first" % (w.proc.pid, w.data), r.stderr)
            self.assertEqual(w.api("GET", "actions/after").status, 200)
            self.assertEqual(w.stop(), 0)

            # what is not a backup changes nothing
            bad = os.path.join(tmp, "bad")
            with open(bad, "wb") as f:
                f.write(b"not lmdb" * 1000)
            for path, msg in [(bad, "is not a Wisp backup"), (os.path.join(tmp, "none"), "No such file")]:
                r = run([WISP_CLI, "admin", "--data", w.data, "restore", path])
                self.assertEqual(r.returncode, 1, r.stdout)
                self.assertIn(msg, r.stderr)
            r = run([WISP_CLI, "admin", "--data", w.data, "backup", os.path.join(tmp, "no", "dir", "b")])
            self.assertEqual(r.returncode, 1)
            self.assertIn("cannot create", r.stderr)

            r = run([WISP_CLI, "admin", "--data", w.data, "restore", backup])
            self.assertEqual(r.returncode, 0, r.stderr)
            m = re.match(r"^restored .*: schema 2, 1 keys, \d+ entities, (\d+) activations\n"
                         r"the store it replaced is .*/data.mdb.pre-restore\n$", r.stdout)
            self.assertTrue(m, r.stdout)
            backed_up = int(m.group(1))  # 1, or 0 if its record was still in the commit group
            w.start()
            self.assertEqual(w.api("GET", "actions/after").status, 404)
            r = w.api("POST", "actions/kept?blocking=true&result=true", {})
            self.assertEqual((r.status, r.json()), (200, {"v": 1}))
            self.assertEqual(len(w.api("GET", "activations").json()), backed_up + 1)
            self.assertEqual(w.stop(), 0)

            # onto a fresh data dir, as on a replacement board
            fresh = os.path.join(tmp, "fresh")
            r = run([WISP_CLI, "admin", "--data", fresh, "restore", backup])
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertNotIn("replaced", r.stdout)
            other = Wispd(args=["--prewarm", ""])
            other.data = fresh
            try:
                other.start()
                self.assertEqual(other.api("GET", "actions/kept").status, 200)
            finally:
                other.stop()
                other.cleanup()
        finally:
            w.stop()
            w.cleanup()
            shutil.rmtree(tmp, ignore_errors=True)


    def test_create_list_revoke_against_a_running_daemon(self):
        w = Wispd()
        try:
            w.start()
            r = run([WISP_CLI, "admin", "--data", w.data, "user", "create", "team1"])
            self.assertEqual(r.returncode, 0, r.stderr)
            key = r.stdout.strip()
            self.assertRegex(key, r"^[0-9a-f-]{36}:[A-Za-z0-9]{64}$")
            # the new key works at once, in its own namespace only
            self.assertEqual(w.request("GET", "/api/v1/namespaces", key=key).json(), ["team1"])
            self.assertEqual(w.request("GET", "/api/v1/namespaces/team1/actions", key=key).status, 200)
            self.assertEqual(w.request("GET", "/api/v1/namespaces/guest/actions", key=key).status, 403)

            r = run([WISP_CLI, "admin", "--data", w.data, "user", "list", "team1"])
            self.assertEqual(r.returncode, 0)
            self.assertIn(key.split(":")[0], r.stdout)
            self.assertNotIn(key.split(":")[1], r.stdout)
            r = run([WISP_CLI, "admin", "--data", w.data, "namespace", "list"])
            self.assertEqual(sorted(r.stdout.split()), ["guest", "team1"])

            r = run([WISP_CLI, "admin", "--data", w.data, "user", "revoke", key.split(":")[0]])
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertEqual(w.request("GET", "/api/v1/namespaces", key=key).status, 401)

            imported = "11111111-2222-4333-8444-555555555555:abcdefgh12345678"
            r = run([WISP_CLI, "admin", "--data", w.data, "user", "create", "team2", "--key", imported])
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertEqual(w.request("GET", "/api/v1/namespaces", key=imported).json(), ["team2"])
            r = run([WISP_CLI, "admin", "--data", w.data, "user", "create", "team3", "--key", imported])
            self.assertEqual(r.returncode, 1)
            self.assertIn("exists already", r.stderr)
            r = run([WISP_CLI, "admin", "--data", w.data, "namespace", "revoke", "team2"])
            self.assertEqual(r.returncode, 0)
            self.assertIn("revoked 1 key of team2", r.stdout)
            self.assertEqual(w.request("GET", "/api/v1/namespaces", key=imported).status, 401)
        finally:
            if w.proc:
                w.stop()
            w.cleanup()

    def test_bad_input_gets_a_message_and_non_zero_exit(self):
        with tempfile.TemporaryDirectory() as d:
            for args, msg in [(["user", "create", "_"], "reserved"),
                              (["user", "create", "whisk.system"], "reserved"),
                              (["user", "create", "bad/ns"], "invalid character"),
                              (["user", "create", "ok", "--key", "nouuid:secret123"], "uuid"),
                              (["user", "revoke", "not-a-uuid"], "not a key uuid"),
                              (["user", "revoke", "11111111-2222-4333-8444-555555555555"], "no key"),
                              (["namespace", "revoke", "ghost"], "no keys"),
                              (["frobnicate", "x"], "usage")]:
                with self.subTest(args=args):
                    r = run([WISP_CLI, "admin", "--data", d] + args)
                    self.assertNotEqual(r.returncode, 0)
                    self.assertIn(msg, r.stderr)


if __name__ == "__main__":
    unittest.main()
