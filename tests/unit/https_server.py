"""HTTPS servers for test_feed_poll.c.

usage: https_server.py BODY_FILE CERT:KEY...

One server per CERT:KEY pair, each on 127.0.0.1 on a free port; the ports
go to stdout on one line. Every path answers the bytes of BODY_FILE (read
at each request) as text/plain with an ETag of their hash; a request whose
If-None-Match carries that ETag gets 304. Serves until stdin closes."""
import hashlib
import http.server
import os
import ssl
import sys
import threading


def handler(body_file):
    class H(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self):
            with open(body_file, "rb") as f:
                body = f.read()
            etag = '"%s"' % hashlib.sha256(body).hexdigest()[:16]
            if self.headers.get("If-None-Match") == etag:
                self.send_response(304)
                self.send_header("ETag", etag)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            self.send_header("ETag", etag)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *a):
            pass

    return H


def main():
    body_file = sys.argv[1]
    ports = []
    for pair in sys.argv[2:]:
        cert, key = pair.split(":", 1)
        srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler(body_file))
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(cert, key)
        # the handshake runs in accept(); a client that rejects the
        # certificate makes accept() fail, which the server shrugs off
        srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
        threading.Thread(target=srv.serve_forever, daemon=True).start()
        ports.append(str(srv.server_address[1]))
    print(" ".join(ports), flush=True)
    sys.stdin.read()
    os._exit(0)


if __name__ == "__main__":
    main()
