"""The API over TLS (mbedtls): --tls-cert/--tls-key serve https, the ready
line says so, a verifying client completes requests, and bad key material
stops wispd at start with a message."""
import os
import ssl
import subprocess
import tempfile
import unittest

from harness import WISPD, Wispd

NODE = {"kind": "nodejs:default", "code": "function main(a) { return a }"}


def make_cert(d):
    cert, key = os.path.join(d, "cert.pem"), os.path.join(d, "key.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                    "-nodes", "-keyout", key, "-out", cert, "-days", "2", "-subj", "/CN=wisp-test",
                    "-addext", "subjectAltName=IP:127.0.0.1"],
                   check=True, capture_output=True, timeout=60)
    return cert, key


class Tls(unittest.TestCase):
    def test_https_api(self):
        with tempfile.TemporaryDirectory() as d:
            cert, key = make_cert(d)
            w = Wispd(args=["--tls-cert", cert, "--tls-key", key])
            try:
                w.start()
                self.assertEqual(w.scheme, "https")
                w.ssl_context = ssl.create_default_context(cafile=cert)
                self.assertEqual(w.request("GET", "/ping", auth=False).body, "pong")
                r = w.api("PUT", "actions/x", {"exec": NODE, "parameters": [{"key": "p", "value": "v" * 40000}]})
                self.assertEqual(r.status, 200, r)
                g = w.api("GET", "actions/x")
                self.assertEqual(g.json()["parameters"][0]["value"], "v" * 40000)
                # a plain-HTTP client on the TLS port gets no answer, and wispd lives on
                import http.client
                c = http.client.HTTPConnection("127.0.0.1", w.port, timeout=5)
                try:
                    c.request("GET", "/ping")
                    c.getresponse()
                    self.fail("plain HTTP was answered on the TLS port")
                except (http.client.HTTPException, OSError):
                    pass
                finally:
                    c.close()
                self.assertEqual(w.request("GET", "/ping", auth=False).status, 200)
                w.stop()
            finally:
                w.cleanup()

    def test_bad_key_material_fails_at_start(self):
        with tempfile.TemporaryDirectory() as d:
            cert, key = make_cert(d)
            bogus = os.path.join(d, "bogus.pem")
            with open(bogus, "w") as f:
                f.write("not a pem\n")
            for args, msg in [(["--tls-cert", bogus, "--tls-key", key], "tls-cert"),
                              (["--tls-cert", cert, "--tls-key", bogus], "tls-key"),
                              (["--tls-cert", cert], "go together")]:
                with self.subTest(args=args):
                    r = subprocess.run([WISPD, "--data", os.path.join(d, "data"), "--listen", "127.0.0.1:0"] + args,
                                       capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
                    self.assertNotEqual(r.returncode, 0)
                    self.assertIn(msg, r.stderr)


if __name__ == "__main__":
    unittest.main()
