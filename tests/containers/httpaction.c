/* tests/containers/httpaction.c - an OpenWhisk blackbox action as the
 * runtime images serve one: HTTP on port 8080, POST /init once, POST /run
 * per activation, logs on stdout and stderr, each activation's ending
 * with XXX_THE_END_OF_A_WHISK_ACTIVATION_XXX on both. Built static for a
 * one-layer test image.
 *   /init: 200 {"ok":true}; the code "refuse" gets 502 {"error":...}; a
 *          second /init is refused (403), as OpenWhisk's proxies do.
 *   /run:  200 {"value": <the value>, "code": <the init's code>,
 *          "activation_id": <the run's>}; a value with "fail" gets 502
 *          {"error":"failed as asked"}. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#define SENTINEL "XXX_THE_END_OF_A_WHISK_ACTIVATION_XXX"

static char code[4096] = "";
static int inited;

/* The JSON value that follows "key": in s (an object or a string), copied. */
static int member(const char *s, const char *key, char *out, size_t cap)
{
    char pat[64];
    snprintf(pat, sizeof pat, "\"%s\":", key);
    const char *p = strstr(s, pat);
    if (!p)
        return -1;
    p += strlen(pat);
    while (*p == ' ')
        p++;
    const char *q = p;
    int depth = 0;
    int str = 0;
    for (; *q; q++) {
        if (str) {
            if (*q == '\\' && q[1])
                q++;
            else if (*q == '"')
                str = 0;
            if (!str && depth == 0)
                break;
            continue;
        }
        if (*q == '"')
            str = 1;
        else if (*q == '{' || *q == '[')
            depth++;
        else if (*q == '}' || *q == ']') {
            if (--depth == 0)
                break;
        }
    }
    size_t n = (size_t)(q - p) + 1;
    if (!*q || n >= cap)
        return -1;
    memcpy(out, p, n);
    out[n] = '\0';
    return 0;
}

static void reply(int c, int status, const char *body)
{
    static char msg[1 << 20];
    int n = snprintf(msg, sizeof msg, "HTTP/1.1 %d X\r\nContent-Type: application/json\r\n"
                     "Content-Length: %zu\r\nConnection: close\r\n\r\n%s", status, strlen(body),
                     body);
    if (write(c, msg, (size_t)n) < 0) /* one write, as the runtimes' proxies answer */
        perror("write");
}

static void serve(int c)
{
    static char req[1 << 20];
    size_t len = 0;
    char *body = NULL;
    size_t want = 0;
    for (;;) {
        ssize_t r = read(c, req + len, sizeof req - 1 - len);
        if (r <= 0)
            return;
        len += (size_t)r;
        req[len] = '\0';
        char *end = strstr(req, "\r\n\r\n");
        if (!end)
            continue;
        char *cl = strcasestr(req, "content-length:");
        want = cl ? strtoul(cl + 15, NULL, 10) : 0;
        body = end + 4;
        if (len - (size_t)(body - req) >= want)
            break;
    }
    body[want] = '\0';
    static char value[1 << 19], out[1 << 20], id[128];
    if (strncmp(req, "POST /init", 10) == 0) {
        if (inited) {
            reply(c, 403, "{\"error\":\"Cannot initialize the action more than once.\"}");
            return;
        }
        if (member(body, "code", code, sizeof code) < 0)
            strcpy(code, "null");
        printf("init with %s\n", code);
        fflush(stdout);
        if (strcmp(code, "\"refuse\"") == 0) {
            reply(c, 502, "{\"error\":\"init refused as asked\"}");
            return;
        }
        inited = 1;
        reply(c, 200, "{\"ok\":true}");
        return;
    }
    if (strncmp(req, "POST /run", 9) == 0) {
        if (member(body, "value", value, sizeof value) < 0)
            strcpy(value, "{}");
        if (member(body, "activation_id", id, sizeof id) < 0)
            strcpy(id, "null");
        printf("run %s\n", id);
        fprintf(stderr, "to stderr %s\n", id);
        fflush(stdout);
        if (strstr(value, "\"fail\""))
            reply(c, 502, "{\"error\":\"failed as asked\"}");
        else {
            snprintf(out, sizeof out, "{\"value\":%s,\n \"code\":%s,\"activation_id\":%s}", value,
                     code, id);
            reply(c, 200, out);
        }
        printf("%s\n", SENTINEL);
        fflush(stdout);
        fprintf(stderr, "%s\n", SENTINEL);
        return;
    }
    reply(c, 404, "{\"error\":\"no such route\"}");
}

int main(void)
{
    int s = socket(AF_INET, SOCK_STREAM, 0), one = 1;
    setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons(8080)};
    if (bind(s, (struct sockaddr *)&sin, sizeof sin) < 0 || listen(s, 16) < 0) {
        perror("listen");
        return 1;
    }
    printf("listening on 8080\n");
    fflush(stdout);
    for (;;) {
        int c = accept(s, NULL, NULL);
        if (c < 0)
            continue;
        serve(c);
        close(c);
    }
}
