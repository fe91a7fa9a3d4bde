"""Web actions (/api/v1/web/...) through raw HTTP: export, extensions,
projections, .http results (status, headers, base64 bodies), parameters
from the query, JSON and form bodies and __ow_*, raw-http, final and
reserved parameters, require-whisk-auth, OPTIONS, and the errors."""
import base64
import http.client
import json
import unittest

from harness import WispTestCase

ECHO = "def main(args):\n    return args\n"


class WebActions(WispTestCase):
    wispd_args = ("--prewarm", "")

    def put(self, name, code, annotations=None, params=None, kind="python:3"):
        body = {"exec": {"kind": kind, "code": code},
                "annotations": [{"key": k, "value": v} for k, v in (annotations or {}).items()]}
        if params:
            body["parameters"] = [{"key": k, "value": v} for k, v in params.items()]
        r = self.w.api("PUT", "actions/%s?overwrite=true" % name, body)
        self.assertEqual(r.status, 200, r)

    def web(self, method, path, body=None, headers=None):
        conn = http.client.HTTPConnection(self.w.host, self.w.port, timeout=30)
        try:
            conn.request(method, "/api/v1/web/guest/" + path, body=body, headers=headers or {})
            r = conn.getresponse()
            return r.status, dict((k.lower(), v) for k, v in r.getheaders()), r.read()
        finally:
            conn.close()

    def test_json_params_and_projection(self):
        self.put("echo", ECHO, {"web-export": True}, params={"fixed": "p"})
        st, h, b = self.web("POST", "default/echo.json?q=1&fixed=over", json.dumps({"b": 2}),
                            {"Content-Type": "application/json", "X-Thing": "yes"})
        self.assertEqual(st, 200, b)
        self.assertEqual(h["content-type"], "application/json")
        args = json.loads(b)
        self.assertEqual(args["q"], "1")
        self.assertEqual(args["b"], 2)
        self.assertEqual(args["fixed"], "over")  # not final: the request wins
        self.assertEqual(args["__ow_method"], "post")
        self.assertEqual(args["__ow_headers"]["x-thing"], "yes")
        self.assertEqual(args["__ow_path"], "")
        self.assertNotIn("__ow_user", args)
        # a projection into the result, and into nothing
        st, _, b = self.web("GET", "default/echo.json/__ow_headers", headers={"X-Thing": "v"})
        self.assertEqual((st, json.loads(b)["x-thing"]), (200, "v"))
        # .json wants an object or array; a string member is .text's
        st, _, b = self.web("GET", "default/echo.json/__ow_headers/x-thing", headers={"X-Thing": "v"})
        self.assertEqual(st, 400, b)
        st, _, b = self.web("GET", "default/echo.text/__ow_headers/x-thing", headers={"X-Thing": "v"})
        self.assertEqual((st, b), (200, b"v"))
        st, _, b = self.web("GET", "default/echo.json/no/such")
        self.assertEqual(st, 404, b)
        # a form body
        st, _, b = self.web("POST", "default/echo.json", "a=1&c=x+y",
                            {"Content-Type": "application/x-www-form-urlencoded"})
        self.assertEqual((json.loads(b)["a"], json.loads(b)["c"]), ("1", "x y"))

    def test_http_results(self):
        self.put("page", "def main(args):\n    return {'body': '<h1>hi %s</h1>' % args.get('n', '')}\n",
                 {"web-export": True})
        st, h, b = self.web("GET", "default/page?n=5")  # no extension: .http
        self.assertEqual((st, b), (200, b"<h1>hi 5</h1>"))
        self.assertTrue(h["content-type"].startswith("text/html"))
        png = base64.b64encode(bytes(range(256))).decode()
        self.put("img", "def main(args):\n    return {'statusCode': 201, 'headers': "
                 "{'Content-Type': 'image/png', 'X-Made': 'here'}, 'body': '%s'}\n" % png,
                 {"web-export": True})
        st, h, b = self.web("GET", "default/img.http")
        self.assertEqual((st, h["content-type"], h["x-made"]), (201, "image/png", "here"))
        self.assertEqual(b, bytes(range(256)))  # base64 decoded for a binary type
        self.put("redir", "def main(args):\n    return {'statusCode': 302, 'headers': "
                 "{'Location': 'http://example.invalid/'}}\n", {"web-export": True})
        st, h, _ = self.web("GET", "default/redir")
        self.assertEqual((st, h["location"]), (302, "http://example.invalid/"))
        self.put("bad", "def main(args):\n    return {'statusCode': 'x'}\n", {"web-export": True})
        st, _, b = self.web("GET", "default/bad")  # OpenWhisk: 400, not valid message/http
        self.assertEqual(st, 400, b)
        self.assertIn("error", json.loads(b))
        # .text and .html take body (or text/html)
        self.put("txt", "def main(args):\n    return {'text': 'plain'}\n", {"web-export": True})
        st, h, b = self.web("GET", "default/txt.text")
        self.assertEqual((st, b), (200, b"plain"))
        self.assertTrue(h["content-type"].startswith("text/plain"))
        st, _, b = self.web("GET", "default/txt.html")
        self.assertEqual(st, 400, b)

    def test_application_errors(self):
        self.put("fail", "def main(args):\n    raise Exception('boom')\n", {"web-export": True})
        # the error string goes through the extension: no JSON object for
        # .json (400), the text itself for .text (as OpenWhisk)
        st, _, b = self.web("GET", "default/fail.json")
        self.assertEqual(st, 400, b)
        self.assertEqual(json.loads(b)["error"], "Response is not valid 'application/json'.")
        st, _, b = self.web("GET", "default/fail.text")
        self.assertEqual(st, 200, b)
        self.assertIn(b"boom", b)
        self.put("tea", "def main(args):\n    return {'error': {'statusCode': 418, 'body': 'teapot'}}\n",
                 {"web-export": True})
        st, _, b = self.web("GET", "default/tea")
        self.assertEqual((st, b), (418, b"teapot"))

    def test_packages_and_sequences(self):
        r = self.w.api("PUT", "packages/site", {"parameters": [{"key": "from_pkg", "value": 1},
                                                               {"key": "who", "value": "pkg"}]})
        self.assertEqual(r.status, 200, r)
        self.put("site/echo", ECHO, {"web-export": True}, params={"who": "action"})
        st, _, b = self.web("GET", "site/echo.json?q=2")
        args = json.loads(b)
        self.assertEqual((st, args["from_pkg"], args["who"], args["q"]), (200, 1, "action", "2"))
        # a web sequence: the first action's result feeds the second
        self.put("one", "def main(args):\n    return {'n': int(args.get('n', '0')) + 1}\n")
        self.put("two", "def main(args):\n    return {'body': 'n=%d' % (args['n'] * 10)}\n")
        r = self.w.api("PUT", "actions/seq", {"exec": {"kind": "sequence",
                                                        "components": ["/guest/one", "/guest/two"]},
                                               "annotations": [{"key": "web-export", "value": True}]})
        self.assertEqual(r.status, 200, r)
        st, _, b = self.web("GET", "default/seq.text?n=4")
        self.assertEqual((st, b), (200, b"n=50"))

    def test_refusals(self):
        self.put("hidden", ECHO)  # not exported
        st, _, b = self.web("GET", "default/hidden.json")
        self.assertEqual(st, 404, b)
        self.assertEqual(json.loads(b)["error"], "The requested resource does not exist.")
        self.put("echo", ECHO, {"web-export": True})
        st, _, b = self.web("GET", "default/echo.xml")  # no extension: the name echo.xml
        self.assertEqual(st, 404, b)
        st, _, b = self.web("GET", "default/echo.json?__ow_method=get")
        self.assertEqual(st, 400, b)
        st, _, b = self.web("GET", "default/nope.json")
        self.assertEqual(st, 404, b)
        st, _, b = self.web("POST", "default/echo.json", "[1", {"Content-Type": "application/json"})
        self.assertEqual(st, 400, b)
        # a JSON value that is no object is __ow_body, as it is
        st, _, b = self.web("POST", "default/echo.json", "[1]", {"Content-Type": "application/json"})
        self.assertEqual((st, json.loads(b)["__ow_body"]), (200, [1]))
        # final: a fixed parameter cannot be overridden
        self.put("fin", ECHO, {"web-export": True, "final": True}, params={"fixed": "p"})
        st, _, b = self.web("GET", "default/fin.json?fixed=over")
        self.assertEqual(st, 400, b)
        st, _, b = self.web("GET", "default/fin.json?other=1")
        self.assertEqual((st, json.loads(b)["fixed"]), (200, "p"))

    def test_require_whisk_auth(self):
        self.put("sec", ECHO, {"web-export": True, "require-whisk-auth": "s3cret"})
        self.assertEqual(self.web("GET", "default/sec.json")[0], 401)
        self.assertEqual(self.web("GET", "default/sec.json", headers={"X-Require-Whisk-Auth": "no"})[0], 401)
        st, _, b = self.web("GET", "default/sec.json", headers={"X-Require-Whisk-Auth": "s3cret"})
        self.assertEqual(st, 200, b)
        self.put("key", ECHO, {"web-export": True, "require-whisk-auth": True})
        self.assertEqual(self.web("GET", "default/key.json")[0], 401)
        st, _, b = self.web("GET", "default/key.json", headers=self.w.auth_header())
        self.assertEqual((st, json.loads(b)["__ow_user"]), (200, "guest"))

    def test_raw_and_binary_bodies(self):
        self.put("raw", ECHO, {"web-export": True, "raw-http": True})
        st, _, b = self.web("POST", "default/raw.json?a=1", json.dumps({"x": 1}),
                            {"Content-Type": "application/json"})
        args = json.loads(b)
        # JSON is base64 in __ow_body (OpenWhisk treats it as binary there)
        self.assertEqual((args["__ow_query"], base64.b64decode(args["__ow_body"])), ("a=1", b'{"x": 1}'))
        self.assertNotIn("x", args)
        blob = bytes(range(256))
        st, _, b = self.web("POST", "default/raw.json", blob, {"Content-Type": "application/octet-stream"})
        self.assertEqual(base64.b64decode(json.loads(b)["__ow_body"]), blob)

    def test_options_and_activation(self):
        self.put("echo", ECHO, {"web-export": True})
        st, h, _ = self.web("OPTIONS", "default/echo")
        self.assertEqual(st, 200)
        self.assertIn("access-control-allow-methods", h)
        self.put("opts", "def main(args):\n    return {'statusCode': 204, 'headers': {'X-Own': args['__ow_method']}}\n",
                 {"web-export": True, "web-custom-options": True})
        st, h, _ = self.web("OPTIONS", "default/opts")
        self.assertEqual((st, h.get("x-own")), (204, "options"))
        # every web invocation is an activation of the owner's namespace
        self.web("GET", "default/echo.json?mark=web1")
        acts = self.w.api("GET", "activations?name=echo&docs=true").json()
        self.assertTrue(any(a["name"] == "echo" for a in acts), acts)


if __name__ == "__main__":
    unittest.main()
