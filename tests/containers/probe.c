/* tests/containers/probe.c - an actionloop program for container tests,
 * built static so a one-layer image holds it alone. Each run line's
 * "value" carries "op":
 *   echo          the value back
 *   read PATH     {"ok":bool,"errno":N}  (opens PATH for reading)
 *   write PATH    {"ok":bool,"errno":N}  (creates PATH)
 *   procs         {"count":N}            (numeric entries in /proc)
 *   alloc MB      touches MB megabytes, then {"ok":true}
 *   connect IP PORT   {"ok":bool,"errno":N} (a TCP connect)
 *   whoami        {"uid":N,"gid":N}
 * Its arguments are in the value as "arg" and "arg2" (strings). */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* The string value of "key" in line (no escapes needed by the tests). */
static int str_of(const char *line, const char *key, char *out, size_t cap)
{
    char pat[64];
    snprintf(pat, sizeof pat, "\"%s\":\"", key);
    const char *p = strstr(line, pat);
    if (!p)
        return -1;
    p += strlen(pat);
    size_t n = strcspn(p, "\"");
    if (n >= cap)
        return -1;
    memcpy(out, p, n);
    out[n] = '\0';
    return 0;
}

static void answer(const char *s)
{
    size_t n = strlen(s);
    if (write(3, s, n) != (ssize_t)n)
        exit(1);
}

int main(void)
{
    static char line[1 << 20];
    char op[32], arg[512], arg2[64], out[1024];
    while (fgets(line, sizeof line, stdin)) {
        if (str_of(line, "op", op, sizeof op) < 0)
            strcpy(op, "echo");
        if (str_of(line, "arg", arg, sizeof arg) < 0)
            arg[0] = '\0';
        if (str_of(line, "arg2", arg2, sizeof arg2) < 0)
            arg2[0] = '\0';
        printf("probe %s %s\n", op, arg);
        fflush(stdout);
        if (strcmp(op, "read") == 0) {
            int fd = open(arg, O_RDONLY);
            snprintf(out, sizeof out, "{\"ok\":%s,\"errno\":%d}\n", fd >= 0 ? "true" : "false",
                     fd >= 0 ? 0 : errno);
            if (fd >= 0)
                close(fd);
        } else if (strcmp(op, "write") == 0) {
            int fd = open(arg, O_WRONLY | O_CREAT | O_TRUNC, 0644);
            snprintf(out, sizeof out, "{\"ok\":%s,\"errno\":%d}\n", fd >= 0 ? "true" : "false",
                     fd >= 0 ? 0 : errno);
            if (fd >= 0)
                close(fd);
        } else if (strcmp(op, "procs") == 0) {
            int n = 0;
            DIR *d = opendir("/proc");
            for (struct dirent *de; d && (de = readdir(d));)
                n += de->d_name[0] >= '1' && de->d_name[0] <= '9';
            if (d)
                closedir(d);
            snprintf(out, sizeof out, "{\"count\":%d}\n", n);
        } else if (strcmp(op, "alloc") == 0) {
            long mb = atol(arg);
            for (long i = 0; i < mb; i++) {
                char *p = malloc(1 << 20);
                if (!p)
                    break;
                memset(p, 1, 1 << 20);
            }
            snprintf(out, sizeof out, "{\"ok\":true}\n");
        } else if (strcmp(op, "connect") == 0) {
            int s = socket(AF_INET, SOCK_STREAM, 0);
            struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons((uint16_t)atoi(arg2))};
            inet_pton(AF_INET, arg, &sin.sin_addr);
            int rc = s >= 0 ? connect(s, (struct sockaddr *)&sin, sizeof sin) : -1;
            snprintf(out, sizeof out, "{\"ok\":%s,\"errno\":%d}\n", rc == 0 ? "true" : "false",
                     rc == 0 ? 0 : errno);
            if (s >= 0)
                close(s);
        } else if (strcmp(op, "whoami") == 0) {
            snprintf(out, sizeof out, "{\"uid\":%d,\"gid\":%d}\n", (int)getuid(), (int)getgid());
        } else {
            const char *v = strstr(line, "\"value\":");
            const char *end = v ? strstr(v, "}") : NULL;
            if (v && end && (size_t)(end - v) < sizeof out - 8)
                snprintf(out, sizeof out, "%.*s}\n", (int)(end - v - 8), v + 8);
            else
                snprintf(out, sizeof out, "{}\n");
        }
        answer(out);
    }
    return 0;
}
