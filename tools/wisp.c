/* tools/wisp.c - the `wisp` command line. Today: `wisp admin`, which
 * manages namespaces and keys offline against a data dir, like OpenWhisk's
 * `wskadmin user`. LMDB allows it beside a running wispd: both processes
 * share the environment's lock, and wispd reads keys fresh on every request,
 * so a revoked key stops working at once. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "auth.h"
#include "store.h"

static void usage(FILE *f)
{
    fprintf(f,
            "usage: wisp admin [--data DIR] COMMAND\n"
            "  user create NAMESPACE [--key UUID:KEY]   create a key (printed once)\n"
            "  user list [NAMESPACE]                     list key uuids\n"
            "  user revoke UUID                          delete one key\n"
            "  namespace list                            list namespaces with keys\n"
            "  namespace revoke NAMESPACE                delete every key of a namespace\n"
            "DIR defaults to ./var (the data dir of wispd --data).\n");
}

static void print_key(void *arg, const char *uuid, const char *ns, long long created)
{
    (void)arg;
    char when[32] = "-";
    time_t t = (time_t)(created / 1000);
    struct tm tm;
    if (created > 0 && gmtime_r(&t, &tm))
        strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", &tm);
    printf("%s  %-24s %s\n", uuid, ns, when);
}

struct ns_set {
    char names[1024][AUTH_NS_MAX];
    unsigned n;
};

static void collect_ns(void *arg, const char *uuid, const char *ns, long long created)
{
    (void)uuid;
    (void)created;
    struct ns_set *s = arg;
    for (unsigned i = 0; i < s->n; i++)
        if (strcmp(s->names[i], ns) == 0)
            return;
    if (s->n < 1024)
        snprintf(s->names[s->n++], AUTH_NS_MAX, "%s", ns);
}

static int admin(int argc, char **argv)
{
    const char *data = "./var";
    int i = 0;
    if (argc >= 2 && strcmp(argv[0], "--data") == 0) {
        data = argv[1];
        i = 2;
    }
    if (argc - i < 2) {
        usage(stderr);
        return 2;
    }
    const char *noun = argv[i], *verb = argv[i + 1];
    char **rest = argv + i + 2;
    int nrest = argc - i - 2;
    struct store_cfg sc = {.dir = data, .map_bytes = 64ull << 20, .map_max_bytes = 64ull << 30};
    if (sizeof(void *) == 4)
        sc.map_max_bytes = 1ull << 30;
    struct store *st = NULL;
    struct wisp_err err = {0};
    int rc = 0;
    if (strcmp(noun, "user") && strcmp(noun, "namespace")) {
        usage(stderr);
        return 2;
    }
    if (store_open(&sc, NULL, &st, &err) < 0) {
        fprintf(stderr, "wisp admin: %s\n", err.msg);
        return 1;
    }
    if (strcmp(noun, "user") == 0 && strcmp(verb, "create") == 0 && (nrest == 1 || nrest == 3)) {
        const char *key_in = NULL;
        if (nrest == 3) {
            if (strcmp(rest[1], "--key") != 0) {
                usage(stderr);
                rc = 2;
                goto out;
            }
            key_in = rest[2];
        }
        char key[AUTH_UUID_LEN + AUTH_SECRET_LEN + 2];
        if ((rc = auth_key_create(st, rest[0], key_in, key, &err)) < 0)
            goto fail;
        printf("%s\n", key);
    } else if (strcmp(noun, "user") == 0 && strcmp(verb, "list") == 0 && nrest <= 1) {
        if ((rc = auth_key_list(st, nrest ? rest[0] : NULL, print_key, NULL)) < 0) {
            wisp_err_set(&err, rc, "cannot list keys: %s", strerror(-rc));
            goto fail;
        }
    } else if (strcmp(noun, "user") == 0 && strcmp(verb, "revoke") == 0 && nrest == 1) {
        if ((rc = auth_key_revoke(st, rest[0], &err)) < 0)
            goto fail;
        printf("revoked %s\n", rest[0]);
    } else if (strcmp(noun, "namespace") == 0 && strcmp(verb, "list") == 0 && nrest == 0) {
        static struct ns_set s;
        if ((rc = auth_key_list(st, NULL, collect_ns, &s)) < 0) {
            wisp_err_set(&err, rc, "cannot list keys: %s", strerror(-rc));
            goto fail;
        }
        for (unsigned k = 0; k < s.n; k++)
            printf("%s\n", s.names[k]);
    } else if (strcmp(noun, "namespace") == 0 && strcmp(verb, "revoke") == 0 && nrest == 1) {
        unsigned count;
        if ((rc = auth_ns_revoke(st, rest[0], &count, &err)) < 0)
            goto fail;
        printf("revoked %u key%s of %s\n", count, count == 1 ? "" : "s", rest[0]);
    } else {
        usage(stderr);
        rc = 2;
    }
    goto out;
fail:
    fprintf(stderr, "wisp admin: %s\n", err.msg);
    rc = 1;
out:
    store_close(st);
    return rc < 0 ? 1 : rc;
}

int main(int argc, char **argv)
{
    if (argc >= 2 && strcmp(argv[1], "admin") == 0)
        return admin(argc - 2, argv + 2);
    if (argc >= 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "help") == 0)) {
        usage(stdout);
        return 0;
    }
    usage(stderr);
    return 2;
}
