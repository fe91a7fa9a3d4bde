/* floor: the benchmark floor -- a bare libevent 2.1 HTTP responder.
 *
 * It answers any request with 200 and the request body echoed back as
 * application/json (an empty body answers "{}"), without running anything.
 * The echo is byte-identical to what Wisp returns for an echo action invoked
 * with blocking=true&result=true, so wrk sees the same reply size. HTTP/1.1
 * keep-alive is evhttp's default; TCP_NODELAY is set on the listener (Linux
 * copies it to accepted sockets) and checked on the first request, falling
 * back to setting it on every request if it was not inherited.
 *
 *   cc -O2 floor.c $(pkg-config --cflags --libs libevent) -o floor
 *   floor [PORT]          # default 0: pick a free port
 *
 * Prints "floor: ready on http://127.0.0.1:PORT" on stderr once listening.
 * SIGTERM/SIGINT stop it.
 */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>

static int nodelay_mode; /* 0: unchecked, 1: inherited, 2: set per request */

static void set_nodelay(evutil_socket_t fd)
{
    int one = 1;
    (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

static void ensure_nodelay(struct evhttp_request *req)
{
    if (nodelay_mode == 1)
        return;
    struct evhttp_connection *evcon = evhttp_request_get_connection(req);
    struct bufferevent *bev = evcon ? evhttp_connection_get_bufferevent(evcon) : NULL;
    evutil_socket_t fd = bev ? bufferevent_getfd(bev) : -1;
    if (fd < 0)
        return;
    if (nodelay_mode == 0) {
        int v = 0;
        socklen_t len = sizeof v;
        if (getsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &v, &len) == 0 && v) {
            nodelay_mode = 1;
            return;
        }
        fprintf(stderr, "floor: TCP_NODELAY not inherited; setting it per request\n");
        nodelay_mode = 2;
    }
    set_nodelay(fd);
}

static void on_request(struct evhttp_request *req, void *arg)
{
    (void)arg;
    ensure_nodelay(req);
    struct evbuffer *in = evhttp_request_get_input_buffer(req);
    struct evbuffer *out = evhttp_request_get_output_buffer(req);
    struct evkeyvalq *h = evhttp_request_get_output_headers(req);
    evhttp_add_header(h, "Content-Type", "application/json");
    if (evbuffer_get_length(in) > 0)
        evbuffer_add_buffer(out, in);
    else
        evbuffer_add(out, "{}", 2);
    evhttp_send_reply(req, HTTP_OK, "OK", NULL);
}

static void on_signal(evutil_socket_t sig, short what, void *arg)
{
    (void)sig;
    (void)what;
    event_base_loopbreak(arg);
}

int main(int argc, char **argv)
{
    unsigned long port = 0;
    if (argc > 2 || (argc == 2 && (argv[1][0] < '0' || argv[1][0] > '9'))) {
        fprintf(stderr, "usage: floor [PORT]\n");
        return 2;
    }
    if (argc == 2) {
        char *end;
        errno = 0;
        port = strtoul(argv[1], &end, 10);
        if (errno || *end || port > 65535) {
            fprintf(stderr, "floor: bad port %s\n", argv[1]);
            return 2;
        }
    }
    signal(SIGPIPE, SIG_IGN);

    struct event_base *base = event_base_new();
    struct evhttp *http = base ? evhttp_new(base) : NULL;
    if (!http) {
        fprintf(stderr, "floor: cannot create the event base\n");
        return 1;
    }
    evhttp_set_allowed_methods(http, EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_PUT |
                                         EVHTTP_REQ_DELETE | EVHTTP_REQ_HEAD);
    evhttp_set_gencb(http, on_request, NULL);
    evhttp_set_timeout(http, 60);

    struct evhttp_bound_socket *bound =
        evhttp_bind_socket_with_handle(http, "127.0.0.1", (ev_uint16_t)port);
    if (!bound) {
        fprintf(stderr, "floor: cannot listen on 127.0.0.1:%lu\n", port);
        return 1;
    }
    evutil_socket_t lfd = evhttp_bound_socket_get_fd(bound);
    set_nodelay(lfd);
    struct sockaddr_in sin;
    socklen_t slen = sizeof sin;
    if (getsockname(lfd, (struct sockaddr *)&sin, &slen) < 0) {
        perror("floor: getsockname");
        return 1;
    }

    struct event *sigs[2];
    int signums[2] = {SIGTERM, SIGINT};
    for (int i = 0; i < 2; i++) {
        sigs[i] = evsignal_new(base, signums[i], on_signal, base);
        if (!sigs[i] || event_add(sigs[i], NULL) < 0) {
            fprintf(stderr, "floor: cannot watch signals\n");
            return 1;
        }
    }

    fprintf(stderr, "floor: ready on http://127.0.0.1:%u\n", (unsigned)ntohs(sin.sin_port));
    fflush(stderr);
    event_base_dispatch(base);

    for (int i = 0; i < 2; i++)
        event_free(sigs[i]);
    evhttp_free(http);
    event_base_free(base);
    return 0;
}
