/* runtimes/native/wisp-blackbox-shim.c - OpenWhisk's blackbox contract
 * inside a container, spoken to as an actionloop worker.
 *
 * The container backend makes this program the container's entrypoint
 * (bind-mounted read-only at /.wisp) for images without the label
 * io.wisp.protocol=actionloop. It starts the image's own entrypoint (argv
 * from 1 on), an HTTP server on port 8080 as every OpenWhisk runtime image
 * and dockerskeleton is, and then speaks the pool's actionloop protocol:
 *
 *   - once 127.0.0.1:8080 accepts a connection: {"ok":true} on fd 3 (the
 *     ack a launcher sends);
 *   - the first line on stdin (the init line, already OpenWhisk's /init
 *     body) is POSTed to /init: 200 answers {"ok":true} on fd 3, anything
 *     else {"error": ...} (the server's own error object when it sent one);
 *   - every later line (a run line: OpenWhisk's /run body, field for
 *     field) is POSTed to /run; the response body is the answer, a non-200
 *     one with an "error" member included (an application error), made one
 *     line (raw newlines are whitespace in JSON).
 *
 * The server's stdout and stderr come through pipes of the shim and are
 * copied line by line to the shim's own (the pool's log pipes); after each
 * answer OpenWhisk's proxies print XXX_THE_END_OF_A_WHISK_ACTIVATION_XXX on
 * both, which the shim waits for (up to SENTINEL_WAIT_MS) and drops before
 * it writes the answer, so every log line of an activation is in the pipes
 * before its answer, as the pool needs. The loopback is the container's
 * own: the container has no other network.
 *
 * Static, no libraries: it runs inside any image. Single-threaded, poll(2). */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define PORT 8080
#define LINE_MAX_BYTES (64u << 20)
#define SENTINEL "XXX_THE_END_OF_A_WHISK_ACTIVATION_XXX"
#define SENTINEL_WAIT_MS 2000
#define CONNECT_TRIES 6000 /* 10 ms apart: a minute; the pool's init timeout ends it sooner */

struct buf {
    char *p;
    size_t len, cap;
};

static int buf_add(struct buf *b, const char *s, size_t n)
{
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->len + n + 1)
            cap *= 2;
        char *np = realloc(b->p, cap);
        if (!np)
            return -1;
        b->p = np;
        b->cap = cap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
    return 0;
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int write_all(int fd, const char *p, size_t n)
{
    while (n) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0)
            return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* ---- the server's logs -------------------------------------------------- */

struct logpipe {
    int fd, out; /* read from fd, copy lines to out */
    struct buf part;
    bool sentinel; /* seen since the last answer */
    bool eof;
};

/* Copies complete lines, dropping sentinels (noting them). */
static void log_take(struct logpipe *l)
{
    char tmp[8192];
    ssize_t n = read(l->fd, tmp, sizeof tmp);
    if (n <= 0) {
        if (n == 0 || (errno != EAGAIN && errno != EINTR)) {
            l->eof = true;
            if (l->part.len) {
                buf_add(&l->part, "\n", 1);
                write_all(l->out, l->part.p, l->part.len);
                l->part.len = 0;
            }
        }
        return;
    }
    buf_add(&l->part, tmp, (size_t)n);
    char *start = l->part.p, *nl;
    while ((nl = memchr(start, '\n', l->part.len - (size_t)(start - l->part.p)))) {
        size_t len = (size_t)(nl - start);
        if (len == strlen(SENTINEL) && memcmp(start, SENTINEL, len) == 0)
            l->sentinel = true;
        else
            write_all(l->out, start, len + 1);
        start = nl + 1;
    }
    size_t rest = l->part.len - (size_t)(start - l->part.p);
    memmove(l->part.p, start, rest);
    l->part.len = rest;
}

static void poll_logs(struct logpipe *lp, int timeout_ms)
{
    struct pollfd fds[2];
    int n = 0;
    for (int i = 0; i < 2; i++)
        if (!lp[i].eof)
            fds[n++] = (struct pollfd){.fd = lp[i].fd, .events = POLLIN};
    if (n == 0) {
        if (timeout_ms > 0)
            usleep((useconds_t)timeout_ms * 1000);
        return;
    }
    if (poll(fds, (nfds_t)n, timeout_ms) <= 0)
        return;
    for (int i = 0, k = 0; i < 2; i++)
        if (!lp[i].eof && fds[k++].revents)
            log_take(&lp[i]);
}

/* ---- HTTP ------------------------------------------------------------------ */

static int dial(void)
{
    int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons(PORT),
                              .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    int one = 1;
    if (s >= 0 && connect(s, (struct sockaddr *)&sin, sizeof sin) == 0) {
        /* the request leaves in one segment, not waiting on an ACK */
        (void)setsockopt(s, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        return s;
    }
    if (s >= 0)
        close(s);
    return -1;
}

/* POSTs body to path; the status, the body in *resp. Logs keep flowing
 * while it waits. -1 when the server did not answer. */
static int post(const char *path, const char *body, size_t len, struct buf *resp,
                struct logpipe *lp)
{
    int s = dial();
    if (s < 0)
        return -1;
    char head[256];
    int hl = snprintf(head, sizeof head,
                      "POST %s HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
                      "Content-Length: %zu\r\nConnection: close\r\n\r\n",
                      path, len);
    struct iovec iov[2] = {{head, (size_t)hl}, {(void *)body, len}};
    ssize_t w = writev(s, iov, 2);
    if (w < 0 || (size_t)w < (size_t)hl ||
        ((size_t)w < (size_t)hl + len && write_all(s, body + (w - hl), len - (size_t)(w - hl)) < 0)) {
        close(s);
        return -1;
    }
    struct buf in = {0};
    int status = -1;
    for (;;) {
        struct pollfd fds[3] = {{.fd = s, .events = POLLIN}};
        int n = 1;
        for (int i = 0; i < 2; i++)
            if (!lp[i].eof)
                fds[n++] = (struct pollfd){.fd = lp[i].fd, .events = POLLIN};
        if (poll(fds, (nfds_t)n, -1) < 0 && errno != EINTR)
            break;
        for (int i = 0, k = 1; i < 2; i++)
            if (!lp[i].eof && fds[k++].revents)
                log_take(&lp[i]);
        if (!fds[0].revents)
            continue;
        char tmp[16384];
        ssize_t r = read(s, tmp, sizeof tmp);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0 || buf_add(&in, tmp, (size_t)r) < 0 || in.len > LINE_MAX_BYTES)
            break;
        char *end = in.p ? strstr(in.p, "\r\n\r\n") : NULL;
        if (!end)
            continue;
        const char *cl = strcasestr(in.p, "\r\ncontent-length:");
        if (cl && cl < end) {
            size_t want = strtoul(cl + 17, NULL, 10);
            if (in.len - (size_t)(end + 4 - in.p) >= want) {
                in.len = (size_t)(end + 4 - in.p) + want;
                break;
            }
        }
    }
    close(s);
    char *end = in.p ? strstr(in.p, "\r\n\r\n") : NULL;
    if (end && sscanf(in.p, "HTTP/1.%*c %d", &status) == 1) {
        resp->len = 0;
        buf_add(resp, end + 4, in.len - (size_t)(end + 4 - in.p));
    } else {
        status = -1;
    }
    free(in.p);
    return status;
}

/* ---- the actionloop side --------------------------------------------------- */

static void answer(struct buf *body)
{
    for (size_t i = 0; i < body->len; i++)
        if (body->p[i] == '\n' || body->p[i] == '\r')
            body->p[i] = ' ';
    buf_add(body, "\n", 1);
    if (write_all(3, body->p, body->len) < 0)
        exit(1);
}

static void set_text(struct buf *b, const char *s)
{
    b->len = 0;
    buf_add(b, s, strlen(s));
}

/* An answer of the server's, or an {"error"} of ours when it is not JSON. */
static bool json_like(const struct buf *b)
{
    size_t i = 0;
    while (i < b->len && (b->p[i] == ' ' || b->p[i] == '\t' || b->p[i] == '\r' || b->p[i] == '\n'))
        i++;
    return i < b->len && (b->p[i] == '{' || b->p[i] == '[');
}

/* After a run's answer: both sentinels, or the wait is over. A server
 * that printed none after its first run is not waited for again (its
 * logs are taken as they come). */
static void await_sentinels(struct logpipe *lp)
{
    static int mode; /* 0: not known yet, 1: it prints them, 2: it does not */
    int64_t until = now_ms() + (mode == 2 ? 0 : SENTINEL_WAIT_MS);
    for (;;) {
        bool got = (lp[0].sentinel || lp[0].eof) && (lp[1].sentinel || lp[1].eof);
        int64_t left = until - now_ms();
        if (got || left <= 0)
            break;
        poll_logs(lp, (int)left);
    }
    poll_logs(lp, 0);
    if (mode == 0)
        mode = lp[0].sentinel || lp[1].sentinel ? 1 : 2;
    lp[0].sentinel = lp[1].sentinel = false;
}

static pid_t start_server(char **argv, struct logpipe *lp)
{
    int o[2], e[2];
    if (pipe2(o, O_CLOEXEC) < 0 || pipe2(e, O_CLOEXEC) < 0)
        return -1;
    pid_t pid = fork();
    if (pid == 0) {
        int devnull = open("/dev/null", O_RDONLY);
        dup2(devnull, 0);
        dup2(o[1], 1);
        dup2(e[1], 2);
        close(3);
        execvp(argv[0], argv);
        fprintf(stderr, "wisp-blackbox-shim: cannot run %s: %s\n", argv[0], strerror(errno));
        _exit(127);
    }
    close(o[1]);
    close(e[1]);
    fcntl(o[0], F_SETFL, O_NONBLOCK);
    fcntl(e[0], F_SETFL, O_NONBLOCK);
    lp[0] = (struct logpipe){.fd = o[0], .out = 1};
    lp[1] = (struct logpipe){.fd = e[0], .out = 2};
    return pid;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: wisp-blackbox-shim PROGRAM [ARG...]\n");
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    struct logpipe lp[2];
    pid_t server = start_server(argv + 1, lp);
    if (server < 0)
        return 1;
    /* ready when the server accepts */
    int s = -1;
    for (int i = 0; i < CONNECT_TRIES && (s = dial()) < 0; i++) {
        int st;
        if (waitpid(server, &st, WNOHANG) == server) {
            poll_logs(lp, 50);
            poll_logs(lp, 0);
            fprintf(stderr, "wisp-blackbox-shim: the image's server exited before it listened "
                            "on port %d\n", PORT);
            return 1;
        }
        poll_logs(lp, 10);
    }
    if (s < 0)
        return 1;
    close(s);
    if (write_all(3, "{\"ok\":true}\n", 12) < 0)
        return 1;
    struct buf line = {0}, resp = {0};
    bool inited = false;
    char *l = NULL;
    size_t cap = 0;
    ssize_t n;
    /* stdin is read blocking: the pool writes whole lines, and logs between
     * activations wait in their pipes for the next one */
    while ((n = getline(&l, &cap, stdin)) > 0) {
        line.len = 0;
        buf_add(&line, l, (size_t)n);
        bool is_init = !inited;
        int status = post(is_init ? "/init" : "/run", line.p, line.len, &resp, lp);
        if (is_init) {
            inited = true;
            if (status == 200)
                set_text(&resp, "{\"ok\":true}");
            else if (status < 0 || !json_like(&resp))
                set_text(&resp, status < 0 ? "{\"error\":\"The action's server did not answer /init.\"}"
                                           : "{\"error\":\"The action's server refused /init.\"}");
        } else if (status < 0 || !json_like(&resp)) {
            set_text(&resp, "{\"error\":\"The action did not return a dictionary or array.\"}");
        }
        if (is_init) /* init's logs go with the first run's */
            poll_logs(lp, 0);
        else
            await_sentinels(lp);
        answer(&resp);
    }
    kill(server, SIGKILL);
    return 0;
}
