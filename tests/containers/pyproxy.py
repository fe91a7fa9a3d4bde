"""tests/containers/pyproxy.py - an OpenWhisk python:3 action proxy in
small, as the runtime image openwhisk/python3action serves one: POST /init
takes the action's code (a main(args) function), POST /run calls it with
the value and answers its result; the logs of each activation end with
the sentinel on stdout and stderr. Runs inside the test image that carries
this machine's Debian python3."""
import json
import sys
from http.server import BaseHTTPRequestHandler, HTTPServer

SENTINEL = "XXX_THE_END_OF_A_WHISK_ACTIVATION_XXX"
action = {}


class Proxy(BaseHTTPRequestHandler):
    def log_message(self, *args):  # no access log in the activation's logs
        pass

    def answer(self, status, body):
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])) or b"{}")
        if self.path == "/init":
            if "main" in action:
                return self.answer(403, {"error": "Cannot initialize the action more than once."})
            scope = {}
            try:
                exec(compile(body["value"].get("code", ""), "__main__", "exec"), scope)
                action["main"] = scope[body["value"].get("main") or "main"]
            except Exception as e:
                return self.answer(502, {"error": "init failed: %s" % e})
            return self.answer(200, {"ok": True})
        try:
            result = action["main"](body.get("value", {}))
            self.answer(200, result)
        except Exception as e:
            self.answer(502, {"error": str(e)})
        print(SENTINEL, flush=True)
        print(SENTINEL, file=sys.stderr, flush=True)


HTTPServer(("127.0.0.1", 8080), Proxy).serve_forever()
