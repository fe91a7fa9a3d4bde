"""Namespace isolation on every route of the API (issue 16, 3.1).

The routes are read from core/api.c's routes[] at test time, through the C
preprocessor (its rows are partly macros), so a row added later is tried
too, and a row this file does not classify fails the test. Namespace B
(teamb) holds one of each entity: an action, a private package with an
action, a published package with an action, a trigger, a rule, a web
action, a trigger bound to the built-in alarm feed, one bound to a
webhook, and activations. Then A's key (guest) tries every method on
every path of every route with B's names (and with the names of a
namespace that does not exist) and must get OpenWhisk's 403 everywhere,
but for B's published package as OpenWhisk opens it: the package, the
list of B's packages (the published ones only), the actions in it (code
hidden) and their invocation (an activation of A's), and bindings to it.
The same routes with `_` and `guest` prove the key works. B's entities and
activations must be the same afterwards, and neither key may appear in
wispd's log or in any activation record.
"""
import base64
import hashlib
import hmac
import json
import os
import re
import subprocess
import unittest

from harness import GUEST_KEY, WISP_CLI, WispTestCase, wait_for

API_C = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "core", "api.c")
FORBIDDEN = "The supplied authentication is not authorized to access this resource."
UNAUTHORIZED = "The supplied authentication is invalid."
METHODS = ("GET", "HEAD", "PUT", "POST", "DELETE", "PATCH")
NS = "api/v1/namespaces/:/"
B = "teamb"
NONE_NS = "nosuchns"

# What each row of routes[] is to this test. "closed": another namespace's
# key gets 403; "public": 403 too, but for a published package (and the
# list of a namespace's packages, which shows only those); "none": a
# placeholder row (no handler); the rest are not a namespace's.
CLASSES = {
    ("GET", ""): "info",
    ("GET", "ping"): "info",
    ("GET", "metrics"): "info",
    ("GET", "api/v1"): "info",
    ("POST", "hooks/:"): "hook",
    ("*", "api/v1/web/*"): "web",
    ("GET", "api/v1/namespaces"): "namespaces",
    ("POST", "api/v1/namespaces/whisk.system/actions/:/:"): "feed",
    ("GET", NS + "limits"): "closed",
    ("GET", NS + "activations"): "closed",
    ("GET", NS + "activations/:"): "closed",
    ("GET", NS + "activations/:/logs"): "closed",
    ("GET", NS + "activations/:/result"): "closed",
    ("GET", NS + "actions/:/"): "public",
    ("GET", NS + "actions/:/:"): "public",
    ("PUT", NS + "actions/:/:"): "closed",
    ("DELETE", NS + "actions/:/:"): "closed",
    ("POST", NS + "actions/:/:"): "public",
    ("GET", NS + "actions"): "closed",
    ("GET", NS + "actions/:"): "closed",
    ("PUT", NS + "actions/:"): "closed",
    ("DELETE", NS + "actions/:"): "closed",
    ("POST", NS + "actions/:"): "closed",
    ("GET", NS + "packages"): "public",
    ("GET", NS + "packages/:"): "public",
    ("PUT", NS + "packages/:"): "closed",
    ("DELETE", NS + "packages/:"): "closed",
    ("POST", NS + "packages/:"): "none",
    ("GET", NS + "triggers"): "closed",
    ("GET", NS + "triggers/:"): "closed",
    ("PUT", NS + "triggers/:"): "closed",
    ("DELETE", NS + "triggers/:"): "closed",
    ("POST", NS + "triggers/:"): "closed",
    ("GET", NS + "rules"): "closed",
    ("GET", NS + "rules/:"): "closed",
    ("PUT", NS + "rules/:"): "closed",
    ("DELETE", NS + "rules/:"): "closed",
    ("POST", NS + "rules/:"): "closed",
}

# B's names to try in each kind of pattern, after the namespace: existing
# ones, and ones that do not exist (which must answer as closed, not 404:
# nothing tells another namespace what exists). "ids" are B's activations.
B_NAMES = {
    "actions/:": ["secret", "web", "pub", "priv", "nope"],
    "actions/:/": ["priv", "pub", "nope"],
    "actions/:/:": [("priv", "act"), ("pub", "act"), ("pub", "nope"), ("nope", "act")],
    "packages/:": ["priv", "pub", "nope"],
    "triggers/:": ["trig", "alarm", "hook", "nope"],
    "rules/:": ["rule", "nope"],
    "activations/:": "ids",
}
FEEDS = [("alarms", "alarm"), ("alarms", "interval"), ("alarms", "once"), ("webhook", "hook"),
         ("poll", "http"), ("mqtt", "subscribe")]
EVENTS = ("CREATE", "READ", "UPDATE", "DELETE", "PAUSE", "UNPAUSE")

# B's code and data: none of these may reach A (the published action's
# code is hidden too).
B_MARKS = ("B-CODE-MARK", "B-PRIV-MARK", "B-LOG-MARK", "B-RESULT-MARK", "B-HOOK-SECRET")


def py(code):
    return {"kind": "python:3", "code": code}


B_SECRET = py("# B-CODE-MARK\ndef main(a):\n    print('B-LOG-MARK')\n    return {'owner': 'B-RESULT-MARK'}\n")
B_PUB = py("# B-CODE-MARK\ndef main(a):\n    return {'ran': 'pub'}\n")
B_WEB = py("# B-CODE-MARK\ndef main(a):\n    return {'body': 'web of B'}\n")
A_CODE = py("# A-CODE-MARK\ndef main(a):\n    return {'owner': 'A'}\n")
A_WRITES = py("# A-WROTE-THIS\ndef main(a):\n    return {'owner': 'A, in B'}\n")
# knows whether it was given a key, and never says which (an action that
# returned its params could echo a key it is given: none here does)
A_KEYED = py("import os\ndef main(a):\n    return {'has_key': len(os.environ.get('__OW_API_KEY', '')) > 20}\n")
WEB = [{"key": "web-export", "value": True}]


# ==== the route table ====================================================

def split_fields(row):
    """The comma-separated fields of one initialiser, commas in strings and
    parentheses kept."""
    fields, depth, cur, quoted, i = [], 0, "", False, 0
    while i < len(row):
        c = row[i]
        if quoted:
            cur += c
            if c == "\\":
                cur += row[i + 1]
                i += 1
            elif c == '"':
                quoted = False
        elif c == '"':
            quoted, cur = True, cur + c
        elif c == "(":
            depth, cur = depth + 1, cur + c
        elif c == ")":
            depth, cur = depth - 1, cur + c
        elif c == "," and depth == 0:
            fields.append(cur.strip())
            cur = ""
        else:
            cur += c
        i += 1
    if cur.strip():
        fields.append(cur.strip())
    return fields


def strings(field):
    """The value of adjacent C string literals ("a" "b": "ab")."""
    parts = re.findall(r'"((?:[^"\\]|\\.)*)"', field)
    leftover = re.sub(r'"((?:[^"\\]|\\.)*)"', "", field).strip()
    assert parts and not leftover, "not a string literal: %r" % field
    return "".join(parts)


def route_table():
    """routes[] as the compiler sees it: dicts of method, path, flags, fn,
    arg, when. The #defines above the table are what its macros use."""
    with open(API_C) as f:
        src = f.read()
    start = src.index("static const struct route routes[]")
    end = src.index("};", start) + 2
    defines = re.findall(r"^[ \t]*#[ \t]*define\b(?:[^\n]*\\\n)*[^\n]*", src[:start], re.M)
    text = "\n".join(defines) + "\n" + src[start:end] + "\n"
    out = subprocess.run(["cc", "-E", "-P", "-x", "c", "-"], input=text, capture_output=True,
                         text=True, check=True).stdout
    table = out[out.index("routes[]"):]
    body = table[table.index("{") + 1:table.rindex("}")]
    rows = []
    for init in re.findall(r"\{([^{}]*)\}", body):
        f = split_fields(init)
        assert len(f) == 6, "a route row with %d fields (struct route changed?): %r" % (len(f), init)
        flags = set(re.findall(r"[A-Za-z_]\w*", f[2]))
        assert re.fullmatch(r"[\sR_NSPUBLIC|()0]*", f[2]), "flags: %r" % f[2]
        rows.append({"method": strings(f[0]), "path": strings(f[1]), "flags": flags,
                     "fn": None if f[3] == "NULL" else f[3], "arg": f[4],
                     "when": None if f[5] == "NULL" else f[5]})
    assert len(rows) >= len(CLASSES) // 2, "routes[] not found or not parsed: %r" % body[:200]
    return rows


def match(pattern, segs):
    """The captures when segs match the pattern (core/api.c path_match), else None."""
    pat = pattern.split("/")
    caps = []
    for i, p in enumerate(pat):
        if p == "*":
            return caps
        if i >= len(segs):
            return None
        if p == ":":
            if not segs[i]:
                return None
            caps.append(segs[i])
        elif p != segs[i]:
            return None
    return caps if len(pat) == len(segs) else None


def rows_for(rows, path):
    """The rows a path matches, as route() finds them: the whole path first,
    then without a trailing empty segment."""
    segs = path.lstrip("/").split("?")[0].split("/")
    hit = [r for r in rows if match(r["path"], segs) is not None]
    if not hit and len(segs) > 1 and segs[-1] == "":
        hit = [r for r in rows if match(r["path"], segs[:-1]) is not None]
    return hit


def serves(row, method):
    return row["fn"] and (row["method"] in ("*", method) or (row["method"] == "GET" and method == "HEAD"))


def tail(pattern):
    """What follows the namespace in a namespace pattern."""
    return pattern[len(NS):]


def fill(pattern, ns, names):
    """The pattern with ns and names (a name, or a tuple of them) for its captures."""
    names = list(names) if isinstance(names, tuple) else [names]
    out = []
    for seg in pattern.split("/"):
        if seg == ":":
            out.append(ns if ns is not None else names.pop(0))
            ns = None
        else:
            out.append(seg)
    assert not names, (pattern, names)
    return "/" + "/".join(out)


def names_key(pattern):
    """B_NAMES's key for a pattern: its first collection and captures."""
    t = tail(pattern)
    for suffix in ("/logs", "/result"):
        if t.endswith(suffix):
            t = t[:-len(suffix)]
    return t


def b64(s):
    return base64.b64encode(s.encode()).decode()


class RouteTable(unittest.TestCase):
    def test_every_row_is_classified(self):
        rows = route_table()
        keys = [(r["method"], r["path"]) for r in rows]
        self.assertEqual(len(keys), len(set(keys)), "a method x path pattern twice in routes[]")
        unknown = [k for k in keys if k not in CLASSES]
        self.assertEqual(unknown, [], "rows of routes[] this test does not classify: add them to CLASSES")
        stale = [k for k in CLASSES if k not in keys]
        self.assertEqual(stale, [], "CLASSES names rows routes[] no longer has")
        for r in rows:
            cls = CLASSES[(r["method"], r["path"])]
            with self.subTest(row=(r["method"], r["path"])):
                # what the table says must be what OpenWhisk does: a row open
                # to other namespaces is exactly one of the public ones
                self.assertEqual("R_PUBLIC" in r["flags"], cls == "public", r)
                self.assertEqual("R_NS" in r["flags"], cls in ("closed", "public", "none"), r)
                self.assertEqual(r["fn"] is None, cls == "none", r)
                if cls in ("closed", "public", "none"):
                    # a namespace row, and this test has B's names for its captures
                    self.assertTrue(r["path"].startswith(NS), r)
                    key = names_key(r["path"])
                    if ":" in key:
                        self.assertIn(key, B_NAMES, "no names of B to try in %s" % r["path"])


class NamespaceIsolation(WispTestCase):
    wispd_args = ("--log-level", "debug", "--auth-failures-per-minute", "100000000")

    # ==== the two namespaces ==============================================

    def setUp(self):
        super().setUp()
        r = subprocess.run([WISP_CLI, "admin", "--data", self.w.data, "user", "create", B],
                           capture_output=True, text=True)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.kb = r.stdout.strip()
        self.ka = GUEST_KEY
        self.assertRegex(self.kb, r"^[0-9a-f-]{36}:\S{20,}$")
        self.secrets = [self.ka.split(":", 1)[1], self.kb.split(":", 1)[1]]
        self.rows = route_table()
        self.seen = []  # every body A got back

    def tearDown(self):
        try:
            if self.w.proc:
                self.w.stop()
                log = self.w.log()
                for s in self.secrets:  # neither key's secret is ever logged
                    self.assertNotIn(s, log)
        finally:
            self.w.cleanup()

    def b(self, method, path, body=None, **kw):
        return self.w.request(method, "/api/v1/namespaces/%s/%s" % (B, path), body, key=self.kb, **kw)

    def a(self, method, path, body=None, **kw):
        r = self.w.request(method, path, body, key=self.ka, **kw)
        self.seen.append(r.body)
        return r

    def ok(self, r, status=200):
        self.assertEqual(r.status, status, r)
        return r.json() if r.body else None

    def feed(self, key, pkg, name, event, trigger, **params):
        body = dict(lifecycleEvent=event, triggerName=trigger, **params)
        return self.w.request("POST", "/api/v1/namespaces/whisk.system/actions/%s/%s?blocking=true"
                              % (pkg, name), body, key=key)

    def build_b(self):
        b = self.b
        self.ok(b("PUT", "actions/secret", {"exec": B_SECRET}))
        self.ok(b("PUT", "packages/priv", {"parameters": [{"key": "p", "value": "B-PRIV-MARK"}]}))
        self.ok(b("PUT", "actions/priv/act", {"exec": B_SECRET}))
        self.ok(b("PUT", "packages/pub", {"publish": True, "parameters": [{"key": "q", "value": "open"}]}))
        self.ok(b("PUT", "actions/pub/act", {"exec": B_PUB}))
        self.ok(b("PUT", "actions/web", {"exec": B_WEB, "annotations": WEB}))
        self.ok(b("PUT", "triggers/trig", {}))
        self.ok(b("PUT", "rules/rule", {"trigger": "trig", "action": "secret"}))
        self.ok(b("PUT", "triggers/alarm", {"annotations": [{"key": "feed", "value": "/whisk.system/alarms/once"}]}))
        # as the npm client sends it, authKey included (it must not be kept)
        self.ok(self.feed(self.kb, "alarms", "once", "CREATE", "/%s/alarm" % B, date="2099-01-01T00:00:00.000Z",
                          authKey=self.kb))
        self.ok(b("PUT", "triggers/hook", {"annotations": [{"key": "feed", "value": "/whisk.system/webhook/hook"}]}))
        hook = self.ok(self.feed(self.kb, "webhook", "hook", "CREATE", "/%s/hook" % B, secret="B-HOOK-SECRET-0123456789",
                                 authKey=self.kb))
        self.hook_url = hook["response"]["result"]["url"]
        ran = self.ok(b("POST", "actions/secret?blocking=true", {}))
        self.assertEqual(ran["response"]["result"], {"owner": "B-RESULT-MARK"})
        fired = self.ok(b("POST", "triggers/trig", {}), 202)["activationId"]
        # two feed CREATEs, the invoke, the fire and the rule's run of secret
        wait_for(lambda: self.ok(b("GET", "activations?count=true"))["activations"] == 5, 30,
                 "B's five activations")
        self.b_ids = [x["activationId"] for x in self.ok(b("GET", "activations?limit=200"))]
        self.assertIn(fired, self.b_ids)
        self.assertIn(ran["activationId"], self.b_ids)

    def build_a(self):
        a = lambda m, p, body=None: self.a(m, "/api/v1/namespaces/_/" + p, body)
        self.ok(a("PUT", "actions/secret", {"exec": A_CODE}))
        self.ok(a("PUT", "packages/priv", {}))
        self.ok(a("PUT", "actions/priv/act", {"exec": A_CODE}))
        self.ok(a("PUT", "packages/pub", {"publish": True}))
        self.ok(a("PUT", "actions/pub/act", {"exec": A_CODE}))
        self.ok(a("PUT", "actions/web", {"exec": A_CODE, "annotations": WEB}))
        self.ok(a("PUT", "triggers/trig", {}))
        self.ok(a("PUT", "rules/rule", {"trigger": "trig", "action": "secret"}))
        self.ok(a("PUT", "triggers/alarm", {"annotations": [{"key": "feed", "value": "/whisk.system/alarms/once"}]}))
        self.a_id = self.ok(a("POST", "actions/secret?blocking=true", {}))["activationId"]

    def snapshot_b(self):
        """Everything of B, as B's key reads it."""
        snap = {}
        for coll in ("actions", "packages", "triggers", "rules"):
            listed = self.ok(self.b("GET", coll + "?limit=200"))
            snap[coll] = listed
            for e in listed:
                inner = e["namespace"].split("/", 1)
                path = "%s/%s%s" % (coll, inner[1] + "/" if len(inner) > 1 else "", e["name"])
                snap[path] = self.ok(self.b("GET", path))
                # a webhook's URL is open to anyone: B sees the refused
                # attempts counted (its fires must not change)
                for k in ("requests", "rejected"):
                    snap[path].get("feed", {}).pop(k, None)
        snap["activations"] = self.ok(self.b("GET", "activations?limit=200&docs=true"))
        snap["count"] = self.ok(self.b("GET", "activations?count=true"))
        for i in self.b_ids:
            snap["activations/" + i] = self.ok(self.b("GET", "activations/" + i))
        return snap

    def assert_no_marks(self, body, where):
        for m in B_MARKS + tuple(self.secrets):
            self.assertNotIn(m, body, where)

    def assert_keys_not_recorded(self):
        """No activation record of either namespace holds a key's secret."""
        for key, ns in ((self.ka, "guest"), (self.kb, B)):
            recs, skip = [], 0
            while True:
                page = self.ok(self.w.request("GET", "/api/v1/namespaces/%s/activations?limit=200&docs=true&skip=%d"
                                              % (ns, skip), key=key))
                recs += page
                skip += len(page)
                if not page:
                    break
            self.assertEqual(len(recs), self.ok(self.w.request(
                "GET", "/api/v1/namespaces/%s/activations?count=true" % ns, key=key))["activations"])
            self.assertTrue(recs)
            for rec in recs:
                full = self.w.request("GET", "/api/v1/namespaces/%s/activations/%s" % (ns, rec["activationId"]),
                                      key=key)
                for text in (json.dumps(rec), full.body):
                    for s in self.secrets:
                        self.assertNotIn(s, text, "a key in activation %s of %s" % (rec["activationId"], ns))

    # ==== what A may try on B ==============================================

    def attack_body(self, method, pattern):
        coll = tail(pattern).split("/")[0] if pattern.startswith(NS) else ""
        if method == "PUT":
            return {"actions": {"exec": A_WRITES}, "packages": {"publish": True},
                    "triggers": {"parameters": [{"key": "x", "value": "A was here"}]},
                    "rules": {"trigger": "/%s/trig" % B, "action": "/%s/secret" % B}}.get(coll, {})
        if method == "POST":
            return {"rules": {"status": "inactive"}}.get(coll, {})
        if method == "PATCH":
            return {}
        return None

    def attack_query(self, method, pattern):
        if method == "PUT":
            return "?overwrite=true"
        if method == "DELETE":
            return "?force=true"
        if method == "POST" and "actions/" in pattern:
            return "?blocking=true&result=true"
        return ""

    def expect_public(self, row, ns, caps, method, r):
        """A's request to a public row of ns: True when it was answered as
        the open one it must be (else it must have been 403)."""
        path = tail(row["path"])
        if ns != B and path != "packages":
            return False
        if path == "packages":
            if method == "GET":
                self.assertEqual([p["name"] for p in r.json()], ["pub"] if ns == B else [])
            self.assertEqual(r.status, 200, r)
            return True
        pkg = caps[1]
        if pkg != "pub":
            return False
        name = caps[2] if len(caps) > 2 else None
        if name == "nope":
            self.assertEqual(r.status, 404, r)
        elif path == "packages/:":
            self.assertEqual(r.status, 200, r)
            if method == "GET":
                self.assertEqual([x["name"] for x in r.json()["actions"]], ["act"])
        elif path == "actions/:/":
            self.assertEqual(r.status, 200, r)
            if method == "GET":
                self.assertEqual([x["name"] for x in r.json()], ["act"])
        elif path == "actions/:/:" and method in ("GET", "HEAD"):
            self.assertEqual(r.status, 200, r)
            if method == "GET":
                self.assertNotIn("code", r.json()["exec"])  # another namespace's code stays hidden
        elif path == "actions/:/:" and method == "POST":
            self.assertEqual(r.status, 200, r)  # it ran, as an activation of A's
            self.assertEqual(r.json(), {"ran": "pub"})
            self.assertIn(r.headers["x-openwhisk-activation-id"],
                          [x["activationId"] for x in self.ok(self.w.api("GET", "activations?limit=200"))])
        else:
            self.fail("no expectation for %s %s on %s" % (method, row["path"], caps))
        return True

    def try_b_paths(self, ns):
        """Every method on every namespace route with ns's names; returns how
        many requests were made."""
        n = 0
        for row in self.rows:
            cls = CLASSES[(row["method"], row["path"])]
            if cls not in ("closed", "public", "none"):
                continue
            key = names_key(row["path"])
            cands = B_NAMES[key] if ":" in key else [None]
            if cands == "ids":
                cands = self.b_ids + ["0" * 32]
            for names in cands:
                path = fill(row["path"], ns, names if names is not None else ())
                hit = rows_for(self.rows, path)
                self.assertIn(row, hit)
                for method in METHODS:
                    served = [x for x in hit if serves(x, method)]
                    r = self.a(method, path + self.attack_query(method, row["path"]),
                               self.attack_body(method, row["path"]))
                    n += 1
                    with self.subTest(method=method, path=path):
                        self.assert_no_marks(r.body, (method, path, r))
                        if not served:  # the path's shape says so, whatever the namespace
                            self.assertEqual(r.status, 405, r)
                            continue
                        srow = served[0]
                        scls = CLASSES[(srow["method"], srow["path"])]
                        caps = match(srow["path"], path.lstrip("/").split("/")) or \
                            match(srow["path"], path.lstrip("/").split("/")[:-1])
                        if scls == "public" and self.expect_public(srow, ns, caps, method, r):
                            continue
                        self.assertEqual(r.status, 403, r)
                        if method != "HEAD":
                            self.assertEqual(r.json()["error"], FORBIDDEN, r)
        return n

    def try_own_paths(self):
        """The same routes on A's own names, through `_` and `guest`: the key
        works, and `_` is A's namespace, not B's."""
        made = {"actions/:": "made-a", "actions/:/:": ("priv", "made-pa"), "packages/:": "made-p",
                "triggers/:": "made-t", "rules/:": "made-r"}
        existing = {"actions/:": "secret", "actions/:/": "priv", "actions/:/:": ("priv", "act"),
                    "packages/:": "priv", "triggers/:": "trig", "rules/:": "rule", "activations/:": self.a_id}
        bodies = {"actions": {"exec": A_CODE}, "packages": {}, "triggers": {},
                  "rules": {"trigger": "trig", "action": "secret"}}
        for alias in ("_", "guest"):
            for method in ("GET", "HEAD", "PUT", "POST", "DELETE"):
                for row in self.rows:
                    if CLASSES[(row["method"], row["path"])] not in ("closed", "public") or \
                            not serves(row, method):
                        continue
                    key = names_key(row["path"])
                    coll = key.split("/")[0]
                    names = (made if method in ("PUT", "DELETE") else existing).get(key, ()) if ":" in key else ()
                    if isinstance(names, str) and method in ("PUT", "DELETE"):
                        names += "-" + ("u" if alias == "_" else "g")
                    elif isinstance(names, tuple) and names and method in ("PUT", "DELETE"):
                        names = (names[0], names[1] + "-" + ("u" if alias == "_" else "g"))
                    path = fill(row["path"], alias, names)
                    body = bodies.get(coll) if method == "PUT" else \
                        ({"status": "active"} if coll == "rules" else {}) if method == "POST" else None
                    query = "?overwrite=true" if method == "PUT" else \
                        "?blocking=true&result=true" if method == "POST" and coll == "actions" else ""
                    r = self.a(method, path + query, body)
                    with self.subTest(own=method, path=path):
                        self.assertIn(r.status, (200, 202), r)
                        if method == "GET" and coll in ("actions", "packages", "triggers", "rules") and \
                                ":" in key and key != "actions/:/":
                            doc = r.json()
                            self.assertEqual(doc["namespace"].split("/")[0], "guest", r)
                            if coll == "actions":
                                self.assertIn("A-CODE-MARK", doc["exec"]["code"])
                        if method == "POST" and coll == "actions":
                            self.assertEqual(r.json(), {"owner": "A"})
        # B's activations are not A's, whatever their id
        for i in self.b_ids:
            for part in ("", "/logs", "/result"):
                r = self.a("GET", "/api/v1/namespaces/_/activations/" + i + part)
                self.assertEqual(r.status, 404, r)
        listed = [x["activationId"] for x in self.ok(self.a("GET", "/api/v1/namespaces/_/activations?limit=200"))]
        self.assertFalse(set(listed) & set(self.b_ids))

    def try_feeds(self):
        """The built-in feed actions answer every namespace, but only for its
        own triggers."""
        for pkg, name in FEEDS:
            for event in EVENTS:
                for trig in ("/%s/alarm" % B, "/%s/hook" % B, "/%s/nope" % B, "/%s/trig" % NONE_NS):
                    r = self.a("POST", "/api/v1/namespaces/whisk.system/actions/%s/%s?blocking=true" % (pkg, name),
                               {"lifecycleEvent": event, "triggerName": trig, "cron": "* * * * *", "minutes": 1,
                                "date": "2099-01-01T00:00:00.000Z", "secret": "x" * 16, "topic": "t",
                                "url": "http://127.0.0.1:1/", "interval": 60, "authKey": self.ka})
                    with self.subTest(feed=(pkg, name, event, trig)):
                        self.assertEqual(r.status, 502, r)
                        rec = r.json()
                        self.assertEqual(rec["namespace"], "guest")  # the refusal is A's record
                        self.assertEqual(rec["response"]["result"]["error"], FORBIDDEN, r)
                        self.assert_no_marks(r.body, r)
        # its own trigger: the key works there
        own = "/guest/alarm"
        self.ok(self.feed(self.ka, "alarms", "once", "CREATE", own, date="2099-01-01T00:00:00.000Z", authKey=self.ka))
        self.assertEqual(self.ok(self.feed(self.ka, "alarms", "once", "READ", own))["response"]["result"]["date"],
                         "2099-01-01T00:00:00.000Z")
        self.ok(self.feed(self.ka, "alarms", "once", "DELETE", own, authKey=self.ka))

    def try_hooks(self):
        """A webhook is signed by its secret; no key opens it."""
        url = self.hook_url
        body = b'{"from": "A"}'
        bad = "sha256=" + hmac.new(b"not-the-secret", body, hashlib.sha256).hexdigest()
        for headers, auth in (({}, False), ({}, True), ({"X-Hub-Signature-256": bad}, True),
                              ({"X-Hub-Signature-256": bad}, False)):
            h = dict(headers, **{"Content-Type": "application/json"})
            r = self.w.request("POST", url, raw=body, headers=h, key=self.ka, auth=auth)
            self.assertEqual(r.status, 401, r)
            self.assert_no_marks(r.body, r)
        for method in ("GET", "PUT", "DELETE"):
            self.assertEqual(self.w.request(method, url, key=self.ka).status, 405)

    def try_outside_namespaces(self):
        for row in self.rows:
            cls = CLASSES[(row["method"], row["path"])]
            if cls == "info":
                path = "/" + row["path"]
                for auth in (False, True):
                    r = self.a("GET", path, auth=auth)
                    self.assertEqual(r.status, 200, r)
                    self.assertNotIn(B, r.body)
                    self.assert_no_marks(r.body, r)
            elif cls == "namespaces":
                self.assertEqual(self.ok(self.a("GET", "/" + row["path"])), ["guest"])
                self.assertEqual(self.ok(self.w.request("GET", "/" + row["path"], key=self.kb)), [B])

    def test_another_namespace_is_closed_on_every_route(self):
        self.build_b()
        self.build_a()
        before = self.snapshot_b()
        self.assertEqual(before["count"], {"activations": 5})
        n = self.try_b_paths(B) + self.try_b_paths(NONE_NS)
        self.assertGreater(n, 500)
        self.try_own_paths()
        self.try_feeds()
        self.try_hooks()
        self.try_outside_namespaces()
        after = self.snapshot_b()
        self.assertEqual(after, before)
        for body in self.seen:
            self.assert_no_marks(body, body[:300])
        self.assert_keys_not_recorded()

    # ==== references to B from A's own entities ============================

    def test_references_to_another_namespace(self):
        self.build_b()
        before = self.snapshot_b()
        api = lambda m, p, body=None: self.a(m, "/api/v1/namespaces/_/" + p, body)
        # a binding: to B's private package never, to its published one yes
        r = api("PUT", "packages/bpriv", {"binding": {"namespace": B, "name": "priv"}})
        self.assertEqual(r.status, 403, r)
        self.assertEqual(r.json()["error"], FORBIDDEN)
        self.assertEqual(api("GET", "packages/bpriv").status, 404)
        self.ok(api("PUT", "packages/bpub", {"binding": {"namespace": B, "name": "pub"}}))
        self.assertEqual(self.ok(api("POST", "actions/bpub/act?blocking=true&result=true", {})), {"ran": "pub"})
        got = self.ok(api("GET", "packages/bpub"))
        self.assertEqual([x["name"] for x in got["actions"]], ["act"])
        # rules: never to B's action or trigger
        self.ok(api("PUT", "triggers/t", {}))
        r = api("PUT", "rules/rb", {"trigger": "t", "action": "/%s/secret" % B})
        self.assertEqual(r.status, 403, r)
        r = api("PUT", "rules/rb", {"trigger": "/%s/trig" % B, "action": "/%s/pub/act" % B})
        self.assertIn(r.status, (400, 403), r)
        self.assertEqual(api("GET", "rules/rb").status, 404)
        # a sequence runs B's published action, never its private ones
        self.ok(api("PUT", "actions/seqpub", {"exec": {"kind": "sequence", "components": ["/%s/pub/act" % B]}}))
        self.assertEqual(self.ok(api("POST", "actions/seqpub?blocking=true&result=true", {})), {"ran": "pub"})
        for comp in ("/%s/secret" % B, "/%s/priv/act" % B):
            # refused when it is made (see
            # test_a_sequence_of_another_namespace_s_private_action_is_refused);
            # made anyway (by a build that let it through), it must not run B's code
            made = api("PUT", "actions/seqpriv?overwrite=true", {"exec": {"kind": "sequence", "components": [comp]}})
            if made.status == 200:
                r = api("POST", "actions/seqpriv?blocking=true", {})
                self.assertEqual(r.status, 502, r)
                self.assertEqual(r.json()["response"]["result"], {"error": FORBIDDEN}, r)
            else:
                self.assertEqual(made.status, 403, made)
        # a trigger whose feed names B's action: deleting it does not run it
        self.ok(api("PUT", "triggers/tf", {"annotations": [{"key": "feed", "value": "/%s/secret" % B}]}))
        self.ok(api("DELETE", "triggers/tf"))
        # an action given A's key keeps it out of its record
        self.ok(api("PUT", "actions/keyed", {"exec": A_KEYED,
                                             "annotations": [{"key": "provide-api-key", "value": True}]}))
        self.assertEqual(self.ok(api("POST", "actions/keyed?blocking=true&result=true", {})), {"has_key": True})
        # B unpublishes: A's binding, and its sequence, are closed again
        after = self.snapshot_b()
        self.assertEqual(after, before)
        self.ok(self.b("PUT", "packages/pub?overwrite=true", {"publish": False}))
        r = api("POST", "actions/bpub/act?blocking=true", {})
        self.assertEqual(r.status, 403, r)
        r = api("POST", "actions/seqpub?blocking=true", {})
        self.assertEqual(r.status, 502, r)
        self.assertEqual(r.json()["response"]["result"], {"error": FORBIDDEN}, r)
        self.assertEqual(self.ok(self.b("GET", "activations?count=true")), before["count"])
        for body in self.seen:
            self.assert_no_marks(body, body[:300])
        self.assert_keys_not_recorded()

    def test_a_binding_to_a_missing_package_of_another_namespace_is_403(self):
        # OpenWhisk answers a package another namespace does not publish as
        # forbidden whether or not it exists, so a binding cannot probe names
        r = self.a("PUT", "/api/v1/namespaces/_/packages/bn", {"binding": {"namespace": B, "name": "nope"}})
        self.assertEqual(r.status, 403, r)

    def test_a_sequence_of_another_namespace_s_private_action_is_refused(self):
        # OpenWhisk checks a sequence's components with the creator's rights
        # (403), and a missing one of another namespace answers the same
        self.ok(self.b("PUT", "actions/secret", {"exec": B_SECRET}))
        for comp in ("/%s/secret" % B, "/%s/nope" % B):
            r = self.a("PUT", "/api/v1/namespaces/_/actions/s", {"exec": {"kind": "sequence", "components": [comp]}})
            self.assertEqual(r.status, 403, r)

    # ==== no key, a wrong key ==============================================

    def test_no_key_or_a_wrong_key_is_401_on_every_namespace_route(self):
        self.build_b()
        ua, sa = self.ka.split(":", 1)
        ub, sb = self.kb.split(":", 1)
        wrong = [None, "Basic " + b64(ua + ":" + sb), "Basic " + b64(ub + ":" + sa),
                 "Basic " + b64(ua + ":" + sa[:-1] + ("x" if sa[-1] != "x" else "y")),
                 "Basic " + b64("nouser:nokey"), "Basic " + b64(ua), "Basic !!!", "Basic ",
                 "Bearer " + self.ka, b64(self.ka)]
        paths = set()
        for row in self.rows:
            if not row["path"].startswith("api/v1/namespaces"):
                continue
            key = names_key(row["path"]) if row["path"].startswith(NS) else ""
            cands = B_NAMES[key] if ":" in key else [None]
            if cands == "ids":
                cands = self.b_ids
            for ns in (B, "_", "guest", NONE_NS):
                for names in cands:
                    if row["path"].startswith(NS):
                        paths.add(fill(row["path"], ns, names if names is not None else ()))
                    else:
                        paths.add("/" + row["path"].replace(":", "alarms", 1).replace(":", "once", 1))
        paths |= {"/api/v1/namespaces/_/nope", "/api/v1/namespaces/_/actions/a/b/c/d", "/api/v1/namespaces/",
                  "/api/v1/namespaces/whisk.system/actions/alarms/nope"}
        before = self.snapshot_b()
        for path in sorted(paths):
            for i, auth in enumerate(wrong):
                # every method without a key; each wrong key on the route's own method too
                for method in METHODS if i == 0 else ("GET", "POST"):
                    headers = {"Authorization": auth} if auth else {}
                    r = self.w.request(method, path, {} if method in ("PUT", "POST", "PATCH") else None,
                                       auth=False, headers=headers)
                    with self.subTest(method=method, path=path, auth=i):
                        self.assertEqual(r.status, 401, r)
                        self.assertIn("www-authenticate", r.headers)
                        if method != "HEAD":
                            self.assertEqual(r.json()["error"], UNAUTHORIZED)
            # a CORS preflight is answered without a key, and says nothing
            r = self.w.request("OPTIONS", path, auth=False)
            self.assertEqual((r.status, r.body), (200, ""))
        self.assertEqual(self.snapshot_b(), before)

    # ==== web actions ======================================================

    def test_web_serves_only_exported_actions(self):
        self.build_b()
        self.build_a()
        for key in (None, self.ka):
            for path, status in (("/api/v1/web/%s/default/web" % B, 200), ("/api/v1/web/%s/default/web.json" % B, 200),
                                 ("/api/v1/web/%s/default/secret" % B, 404), ("/api/v1/web/%s/priv/act" % B, 404),
                                 ("/api/v1/web/%s/pub/act" % B, 404), ("/api/v1/web/%s/default/nope" % B, 404),
                                 ("/api/v1/web/%s/priv/act.json" % B, 404), ("/api/v1/web/%s/default/rule" % B, 404),
                                 ("/api/v1/web/%s/default/trig" % B, 404), ("/api/v1/web/%s/default/priv" % B, 404),
                                 ("/api/v1/web/guest/default/web.json", 200)):
                for method in ("GET", "POST", "PUT", "DELETE"):
                    r = self.w.request(method, path, {} if method in ("POST", "PUT") else None,
                                       key=key, auth=key is not None)
                    with self.subTest(path=path, method=method, key=key is not None):
                        self.assertEqual(r.status, status, r)
                        if status == 200 and path.endswith("/web"):
                            self.assertEqual(r.body, "web of B")
                        for m in ("B-CODE-MARK", "B-PRIV-MARK", "B-LOG-MARK", "B-RESULT-MARK") + tuple(self.secrets):
                            self.assertNotIn(m, r.body)
        self.assert_keys_not_recorded()


if __name__ == "__main__":
    unittest.main()
