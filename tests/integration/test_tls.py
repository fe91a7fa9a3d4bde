"""TLS end to end, with certificates made by the openssl CLI at test time
(a test CA and server certificates for each case, see Pki).

- The API listener (--tls-cert/--tls-key, mbedtls): Python's verifying
  client, the real `openssl s_client` (handshake, the chain it is shown, an
  HTTP request over it), TLS 1.2 spoken and 1.0/1.1/1.3 refused (mbedtls
  2.28 has no TLS 1.3), bad key material refused at start.
- The poll feed's https:// client (mbedtls, platform/tls.c): for an IP
  literal the certificate must carry the address as a subjectAltName
  iPAddress entry (IPv4 and IPv6); a CN or DNS entry spelling the address,
  another address, or an expired certificate is refused with the reason as
  the binding's lastError; a host name keeps mbedtls's DNS check; a server
  that offers only TLS 1.1 is refused.
- mqtts:// (libmosquitto does TLS with OpenSSL; the context is ours,
  feeds/mqtt_tls.c) against a real mosquitto with a TLS listener: the same
  certificates, the same verdicts, and messages flow over the accepted one.

Every server listens on loopback on a free port and is stopped by its own
PID (or, in this process, by shutdown())."""
import http.client
import http.server
import os
import socket
import ssl
import subprocess
import tempfile
import threading
import unittest
import warnings

from harness import WISPD, Wispd, free_port, wait_for

NODE = {"kind": "nodejs:default", "code": "function main(a) { return a }"}


def make_cert(d):
    cert, key = os.path.join(d, "cert.pem"), os.path.join(d, "key.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                    "-nodes", "-keyout", key, "-out", cert, "-days", "2", "-subj", "/CN=wisp-test",
                    "-addext", "subjectAltName=IP:127.0.0.1"],
                   check=True, capture_output=True, timeout=60)
    return cert, key


class Pki:
    """A test CA in a directory and server certificates it signs (EC P-256:
    quick to make, and mbedtls speaks them). Keys are made readable by all:
    mosquitto, started as root, reads them as its own user."""

    KEY = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]

    def __init__(self, d):
        self.d = d
        os.chmod(d, 0o755)
        self.ca = self.path("ca.pem")
        self.run("req", "-x509", *self.KEY, "-keyout", "ca.key", "-out", "ca.pem", "-days", "2",
                 "-subj", "/CN=wisp-test-ca", "-addext", "basicConstraints=critical,CA:TRUE",
                 "-addext", "keyUsage=critical,keyCertSign,cRLSign")
        # for `openssl ca`, which alone sets a validity in the past
        with open(self.path("ca.cnf"), "w") as f:
            f.write("[ca]\ndefault_ca = c\n[c]\ndatabase = index.txt\nnew_certs_dir = .\n"
                    "serial = serial\ndefault_md = sha256\npolicy = p\nunique_subject = no\n"
                    "[p]\ncommonName = supplied\n")
        open(self.path("index.txt"), "w").close()
        with open(self.path("serial"), "w") as f:
            f.write("1000\n")

    def path(self, name):
        return os.path.join(self.d, name)

    def run(self, *args):
        subprocess.run(["openssl", *args], cwd=self.d, check=True, capture_output=True, timeout=60)

    def leaf(self, name, cn, san=None, expired=False):
        """name.pem (the certificate, then the CA: the chain a server
        sends) and name.key; returns (chain, key)."""
        self.run("req", *self.KEY, "-keyout", name + ".key", "-out", name + ".csr", "-subj", "/CN=" + cn)
        with open(self.path(name + ".ext"), "w") as f:
            f.write("basicConstraints=CA:FALSE\n")
            if san:
                f.write("subjectAltName=%s\n" % san)
        if expired:
            self.run("ca", "-batch", "-config", "ca.cnf", "-cert", "ca.pem", "-keyfile", "ca.key",
                     "-in", name + ".csr", "-out", name + ".crt", "-notext", "-extfile", name + ".ext",
                     "-startdate", "20200101000000Z", "-enddate", "20200102000000Z")
        else:
            self.run("x509", "-req", "-in", name + ".csr", "-CA", "ca.pem", "-CAkey", "ca.key",
                     "-CAcreateserial", "-out", name + ".crt", "-days", "2", "-extfile", name + ".ext")
        with open(self.path(name + ".pem"), "w") as out:
            for part in (name + ".crt", "ca.pem"):
                with open(self.path(part)) as f:
                    out.write(f.read())
        os.chmod(self.path(name + ".key"), 0o644)
        return self.path(name + ".pem"), self.path(name + ".key")


# The server certificates the clients are tried against (name: CN, SAN).
# The refused ones spell 127.0.0.1 wherever a lax check would look.
CERTS = {
    "ip": ("wisp-ip", "IP:127.0.0.1"),               # the right one
    "dns": ("127.0.0.1", "DNS:localhost"),           # a DNS name only
    "cn": ("127.0.0.1", None),                       # CN=127.0.0.1, no subjectAltName
    "wrongip": ("127.0.0.1", "IP:127.0.0.2"),        # another address
    "dnsip": ("wisp-dnsip", "DNS:127.0.0.1"),        # the address as a DNS name
    "expired": ("wisp-expired", "IP:127.0.0.1"),     # right address, expired in 2020
    "v6": ("wisp-v6", "IP:::1"),                     # IPv6 loopback
}
NO_IP_ENTRY = "certificate verify failed: no subjectAltName IP entry for 127.0.0.1"


def make_pki(d):
    pki = Pki(d)
    pki.certs = {n: pki.leaf(n, cn, san, expired=(n == "expired")) for n, (cn, san) in CERTS.items()}
    return pki


def have_ipv6():
    try:
        with socket.socket(socket.AF_INET6) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


class HttpsServer:
    """An HTTPS server in this process on a free loopback port; every GET
    answers "ok". Handshake failures are recorded (a client that refuses
    the certificate or the protocol makes the server's accept fail)."""

    def __init__(self, cert, key, family=socket.AF_INET, max_version=None):
        failures = self.failures = []

        class H(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self):
                self.send_response(200)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *a):
                pass

        class S(http.server.ThreadingHTTPServer):
            address_family = family

            def handle_error(self, request, client_address):
                pass

        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        if max_version:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DeprecationWarning)
                ctx.minimum_version = ssl.TLSVersion.TLSv1
                ctx.maximum_version = max_version
            ctx.set_ciphers("DEFAULT:@SECLEVEL=0")  # OpenSSL 3 allows TLS 1.1 only at level 0
        ctx.load_cert_chain(cert, key)
        self.srv = S(("::1" if family == socket.AF_INET6 else "127.0.0.1", 0), H)
        # handshake in the handler thread, so a failure is seen and kept
        self.srv.socket = ctx.wrap_socket(self.srv.socket, server_side=True,
                                          do_handshake_on_connect=False)
        orig = self.srv.finish_request

        def finish_request(request, client_address):
            try:
                request.settimeout(30)
                request.do_handshake()
            except (ssl.SSLError, OSError) as e:
                failures.append(str(e))
                return
            orig(request, client_address)
        self.srv.finish_request = finish_request
        self.port = self.srv.server_address[1]
        self.thread = threading.Thread(target=self.srv.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.srv.shutdown()
        self.srv.server_close()


def feed(w, pkg, name, event, trigger, **params):
    body = dict(params, lifecycleEvent=event, triggerName="/_/" + trigger)
    return w.request("POST", "/api/v1/namespaces/whisk.system/actions/%s/%s?blocking=true" % (pkg, name),
                     body)


def feed_status(w, trigger):
    return w.api("GET", "triggers/" + trigger).json().get("feed") or {}


def mqtt_connected(w):
    """Whether wispd's MQTT connection is up (/metrics)."""
    text = w.request("GET", "/metrics", auth=False).body
    return any(l.startswith("wisp_mqtt_connected ") and l.split()[1] != "0" for l in text.splitlines())


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


class ApiWithOpensslClient(unittest.TestCase):
    """The API listener against the real `openssl s_client`."""

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory()
        cls.pki = Pki(cls.tmp.name)
        cls.chain, cls.key = cls.pki.leaf("api", "wisp-api", "IP:127.0.0.1")
        # debug: the reason of a refused handshake is logged
        cls.w = Wispd(args=["--tls-cert", cls.chain, "--tls-key", cls.key, "--prewarm", "",
                            "--log-level", "debug"])
        try:
            cls.w.start()
        except BaseException:
            cls.w.cleanup()
            cls.tmp.cleanup()
            raise

    @classmethod
    def tearDownClass(cls):
        try:
            cls.w.stop()
        finally:
            cls.w.cleanup()
            cls.tmp.cleanup()

    def s_client(self, *args, request=b""):
        return subprocess.run(["openssl", "s_client", "-connect", "127.0.0.1:%d" % self.w.port,
                               "-CAfile", self.pki.ca, *args], input=request, capture_output=True,
                              timeout=60)

    def test_handshake_chain_and_request(self):
        req = b"GET /ping HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
        # -verify_ip: s_client checks the IP entry as well; -ign_eof: wait for the reply
        r = self.s_client("-verify_return_error", "-verify_ip", "127.0.0.1", "-showcerts",
                          "-ign_eof", request=req)
        out = r.stdout.decode("utf-8", "replace")
        self.assertIn("Verify return code: 0 (ok)", out, out + r.stderr.decode())
        self.assertIn("Protocol  : TLSv1.2", out)
        # the chain wispd sends: its certificate, then the CA's
        self.assertIn(" 0 s:CN = wisp-api\n   i:CN = wisp-test-ca", out)
        self.assertIn(" 1 s:CN = wisp-test-ca\n   i:CN = wisp-test-ca", out)
        self.assertEqual(out.count("-----BEGIN CERTIFICATE-----"), 2)
        self.assertIn("HTTP/1.1 200 OK", out)
        self.assertTrue(out.rstrip().endswith("pong"), out[-300:])

    def test_tls12_accepted(self):
        r = self.s_client("-tls1_2", "-verify_return_error")
        out = r.stdout.decode("utf-8", "replace")
        self.assertEqual(r.returncode, 0, out + r.stderr.decode())
        self.assertIn("Protocol  : TLSv1.2", out)
        self.assertIn("Verify return code: 0 (ok)", out)

    def refused(self, flag, reason):
        before = self.w.log().count(reason)
        # SECLEVEL=0: OpenSSL 3 would not even offer TLS 1.0/1.1 otherwise
        r = self.s_client(flag, "-cipher", "DEFAULT:@SECLEVEL=0")
        out = r.stdout.decode("utf-8", "replace")
        self.assertNotEqual(r.returncode, 0, out)
        self.assertIn("Cipher is (NONE)", out)  # no session
        self.assertIn("no peer certificate available", out)  # refused at the hello
        wait_for(lambda: self.w.log().count(reason) > before, 10, "wispd's reason for %s" % flag)

    def test_tls10_and_tls11_refused(self):
        for flag in ("-tls1", "-tls1_1"):
            with self.subTest(flag=flag):
                self.refused(flag, "handshake failed: SSL - Handshake protocol not within min/max boundaries")

    def test_tls13_refused_mbedtls_228_has_none(self):
        # a TLS 1.3-only hello offers only 1.3 cipher suites, none of which
        # mbedtls 2.28 knows
        self.refused("-tls1_3", "handshake failed: SSL - The server has no ciphersuites in common")


class PollHttpsVerification(unittest.TestCase):
    """https:// polls (mbedtls client) against servers with each certificate."""

    def test_ip_literal_needs_an_ip_entry(self):
        with tempfile.TemporaryDirectory() as d:
            pki = make_pki(d)
            servers = {n: HttpsServer(*pki.certs[n]) for n in CERTS if n != "v6"}
            servers["ipbyname"] = HttpsServer(*pki.certs["ip"])
            v6 = have_ipv6()
            if v6:
                servers["v6"] = HttpsServer(*pki.certs["v6"], family=socket.AF_INET6)
                servers["ip6"] = HttpsServer(*pki.certs["ip"], family=socket.AF_INET6)
                # "localhost" may resolve to ::1 first: no IPv6 server on the
                # port a by-name case polls on 127.0.0.1
                v6ports = {servers["v6"].port, servers["ip6"].port}
                for n in ("dns", "ipbyname"):
                    while servers[n].port in v6ports:
                        servers[n].close()
                        servers[n] = HttpsServer(*pki.certs["ip" if n == "ipbyname" else n])
            # what each trigger polls, and "" (fires) or its lastError
            cases = {
                "ip": ("https://127.0.0.1:%d/" % servers["ip"].port, ""),
                "dns": ("https://127.0.0.1:%d/" % servers["dns"].port, NO_IP_ENTRY),
                "cn": ("https://127.0.0.1:%d/" % servers["cn"].port, NO_IP_ENTRY),
                "wrongip": ("https://127.0.0.1:%d/" % servers["wrongip"].port, NO_IP_ENTRY),
                "dnsip": ("https://127.0.0.1:%d/" % servers["dnsip"].port, NO_IP_ENTRY),
                "expired": ("https://127.0.0.1:%d/" % servers["expired"].port,
                            "certificate verify failed: The certificate validity has expired"),
                # a host name: mbedtls's own check of the DNS entry
                "byname": ("https://localhost:%d/" % servers["dns"].port, ""),
                "ipbyname": ("https://localhost:%d/" % servers["ipbyname"].port,
                             "certificate verify failed: The certificate Common Name (CN) does not match"),
            }
            if v6:
                cases["v6"] = ("https://[::1]:%d/" % servers["v6"].port, "")
                cases["ip6"] = ("https://[::1]:%d/" % servers["ip6"].port,
                                "certificate verify failed: no subjectAltName IP entry for ::1 ")
            w = Wispd(args=["--prewarm", "", "--tls-ca-file", pki.ca])
            try:
                w.start()
                for name, (url, _) in cases.items():
                    self.assertEqual(w.api("PUT", "triggers/" + name, {}).status, 200)
                    r = feed(w, "poll", "http", "CREATE", name, url=url, interval=1)
                    self.assertEqual(r.status, 200, r)
                for name, (url, want) in cases.items():
                    with self.subTest(case=name, url=url):
                        if not want:
                            st = wait_for(lambda: (lambda s: s if s.get("fires") else None)(
                                feed_status(w, name)), 30, "a fire from " + url)
                            self.assertFalse(st.get("lastError"), st)
                        else:
                            st = wait_for(lambda: (lambda s: s if s.get("lastError") else None)(
                                feed_status(w, name)), 30, "an error from " + url)
                            self.assertIn("TLS: " + want, st["lastError"])
                            self.assertEqual(st.get("fires"), 0, st)
                # the servers saw the refusals as failed handshakes (in
                # their own threads, maybe after wispd noted them)
                wait_for(lambda: servers["cn"].failures, 30, "a failed handshake at the server")
                self.assertFalse(servers["ip"].failures, servers["ip"].failures)
                w.stop()
            finally:
                w.cleanup()
                for s in servers.values():
                    s.close()

    def test_server_offering_only_tls11_is_refused(self):
        with tempfile.TemporaryDirectory() as d:
            pki = make_pki(d)
            srv = HttpsServer(*pki.certs["ip"], max_version=ssl.TLSVersion.TLSv1_1)
            w = Wispd(args=["--prewarm", "", "--tls-ca-file", pki.ca])
            try:
                w.start()
                w.api("PUT", "triggers/old", {})
                r = feed(w, "poll", "http", "CREATE", "old", url="https://127.0.0.1:%d/" % srv.port,
                         interval=1)
                self.assertEqual(r.status, 200, r)
                st = wait_for(lambda: (lambda s: s if s.get("lastError") else None)(
                    feed_status(w, "old")), 30, "an error")
                self.assertIn("TLS: handshake failed: SSL - Handshake protocol not within min/max boundaries",
                              st["lastError"])
                self.assertEqual(st.get("fires"), 0)
                w.stop()
            finally:
                w.cleanup()
                srv.close()


class TlsBroker:
    """mosquitto with one TLS listener on 127.0.0.1, stopped by its own PID."""

    def __init__(self, d, name, cert, key):
        self.d, self.name, self.cert, self.key = d, name, cert, key
        self.proc = None

    def start(self):
        for _ in range(3):  # a free port may be taken before mosquitto binds it
            self.port = free_port()
            conf = os.path.join(self.d, "mosquitto-%s.conf" % self.name)
            with open(conf, "w") as f:
                f.write("listener %d 127.0.0.1\nallow_anonymous true\npersistence false\n"
                        "certfile %s\nkeyfile %s\n" % (self.port, self.cert, self.key))
            self.log = open(os.path.join(self.d, "mosquitto-%s.log" % self.name), "ab")
            self.proc = subprocess.Popen(["/usr/sbin/mosquitto", "-c", conf], stdin=subprocess.DEVNULL,
                                         stdout=self.log, stderr=self.log)

            def up():
                if self.proc.poll() is not None:
                    return "exited"
                try:
                    socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                    return "up"
                except OSError:
                    return None
            if wait_for(up, 10, "mosquitto on port %d" % self.port) == "up":
                return self
            self.stop()
        raise AssertionError("mosquitto did not start: " + open(self.log.name).read())

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(30)
        self.proc = None
        self.log.close()


class MqttsVerification(unittest.TestCase):
    """mqtts:// against a real mosquitto with each server certificate."""

    def connect(self, d, pki, name, query=""):
        """Starts a broker with certificate name and a wispd subscribed
        through it; returns (broker, wispd, the binding's first verdict)."""
        b = TlsBroker(d, name, *pki.certs[name]).start()
        url = "mqtts://127.0.0.1:%d?ca=%s%s" % (b.port, pki.ca, query)
        w = Wispd(args=["--mqtt", url, "--prewarm", ""])
        try:
            w.start()
            self.assertEqual(w.api("PUT", "triggers/t", {}).status, 200)
            r = feed(w, "mqtt", "subscribe", "CREATE", "t", topic="in/#", qos=1)
            self.assertEqual(r.status, 200, r)

            def verdict():
                st = feed(w, "mqtt", "subscribe", "READ", "t").json()["response"]["result"]
                return st if st.get("connected") or st.get("lastError") else None
            return b, w, wait_for(verdict, 30, "the mqtts connection's outcome")
        except BaseException:
            w.cleanup()
            b.stop()
            raise

    def test_broker_certificates(self):
        cases = {
            "ip": None,
            "dns": NO_IP_ENTRY,
            "cn": NO_IP_ENTRY,
            "wrongip": NO_IP_ENTRY,
            "dnsip": NO_IP_ENTRY,
            "expired": "certificate verify failed: certificate has expired",
        }
        with tempfile.TemporaryDirectory() as d:
            pki = make_pki(d)
            for name, want in cases.items():
                with self.subTest(cert=name):
                    b, w, st = self.connect(d, pki, name)
                    try:
                        if want is None:
                            self.assertTrue(st["connected"], st)
                            # a message through the TLS listener fires the trigger
                            wait_for(lambda: feed(w, "mqtt", "subscribe", "READ", "t").json()
                                     ["response"]["result"].get("subscribed"), 20, "subscribed")
                            subprocess.run(["mosquitto_pub", "-h", "127.0.0.1", "-p", str(b.port),
                                            "--cafile", pki.ca, "-t", "in/x", "-m", '{"n": 1}', "-q", "1"],
                                           check=True, timeout=30, stdin=subprocess.DEVNULL)
                            wait_for(lambda: feed_status(w, "t").get("fires"), 30, "a fire over mqtts")
                        else:
                            self.assertFalse(st.get("connected"), st)
                            self.assertIn("TLS: " + want, st["lastError"])
                        w.stop()
                    finally:
                        w.cleanup()
                        b.stop()

    def test_insecure_skips_the_name_check_only(self):
        with tempfile.TemporaryDirectory() as d:
            pki = make_pki(d)
            for name, want in (("wrongip", None),
                               ("expired", "certificate verify failed: certificate has expired")):
                with self.subTest(cert=name):
                    b, w, st = self.connect(d, pki, name, "&insecure=1")
                    try:
                        if want is None:
                            self.assertTrue(st["connected"], st)
                        else:
                            self.assertFalse(st.get("connected"), st)
                            self.assertIn("TLS: " + want, st["lastError"])
                        w.stop()
                    finally:
                        w.cleanup()
                        b.stop()

    def test_server_offering_only_tls11_is_refused(self):
        # not a broker: the handshake fails before any MQTT
        with tempfile.TemporaryDirectory() as d:
            pki = make_pki(d)
            srv = HttpsServer(*pki.certs["ip"], max_version=ssl.TLSVersion.TLSv1_1)
            w = Wispd(args=["--mqtt", "mqtts://127.0.0.1:%d?ca=%s" % (srv.port, pki.ca), "--prewarm", ""])
            try:
                w.start()
                wait_for(lambda: srv.failures, 30, "a handshake with the TLS 1.1 server")
                # OpenSSL's client offers 1.2 and 1.3 only: the server finds no version to speak
                self.assertIn("UNSUPPORTED_PROTOCOL", srv.failures[0])
                # the attempt may end at the CONNACK deadline (10 s) rather than at once
                wait_for(lambda: "mqtt: cannot connect to mqtts://127.0.0.1:%d" % srv.port in w.log(),
                         30, "the failed connection in the log")
                self.assertFalse(mqtt_connected(w), w.log())
                w.stop()
            finally:
                w.cleanup()
                srv.close()


if __name__ == "__main__":
    unittest.main()
