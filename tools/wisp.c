/* tools/wisp.c - the `wisp` command line: the dispatcher, and the two
 * offline tools. `wisp admin` manages namespaces and keys against a data
 * dir, like OpenWhisk's `wskadmin user`; `wisp image` is the container
 * image store (runtimes/image.h). Both work without a server: LMDB allows
 * it beside a running wispd, as both processes share the environment's
 * lock, and wispd reads keys fresh on every request, so a revoked key
 * stops working at once. Every other command is the client of wispd's
 * REST API with wsk's verbs (tools/cli_main.c). */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "auth.h"
#include "cli_cmd.h"
#include "image.h"
#include "plat.h"
#include "store.h"
#include "wjson.h"

static void usage(FILE *f)
{
    fprintf(f,
            "usage: wisp admin [--data DIR] COMMAND\n"
            "  user create NAMESPACE [--key UUID:KEY]   create a key (printed once)\n"
            "  user list [NAMESPACE]                     list key uuids\n"
            "  user revoke UUID                          delete one key\n"
            "  namespace list                            list namespaces with keys\n"
            "  namespace revoke NAMESPACE                delete every key of a namespace\n"
            "  backup FILE                               a consistent, compacted copy of the\n"
            "                                            store (beside a running wispd)\n"
            "  restore FILE                              put a backup in place of the store\n"
            "                                            (wispd stopped; the old one is kept)\n"
            "usage: wisp image [--data DIR] COMMAND\n"
            "  import [--image-max-mb N] FILE NAME[:TAG]   import an OCI layout or docker save tar\n"
            "  list                                       list imported images\n"
            "  rm [--force] NAME[:TAG]                    remove (refused while an action uses it)\n"
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

/* The leading --data DIR of `wisp admin` and `wisp image` (./var by
 * default); *i: the first argument after it. */
static const char *data_dir_arg(int argc, char **argv, int *i)
{
    *i = argc >= 2 && strcmp(argv[0], "--data") == 0 ? 2 : 0;
    return *i ? argv[1] : "./var";
}

/* The store as the offline commands open it (beside a running wispd). */
static struct store_cfg offline_store(const char *data)
{
    struct store_cfg sc = {.dir = data, .map_bytes = 64ull << 20, .map_max_bytes = 64ull << 30};
    if (sizeof(void *) == 4)
        sc.map_max_bytes = 1ull << 30;
    return sc;
}

/* wisp admin backup FILE: beside a running wispd (LMDB's readers do not
 * block its writer). */
static int admin_backup(const char *data, const char *file)
{
    struct store_cfg sc = offline_store(data);
    struct store *st = NULL;
    struct wisp_err err = {0};
    struct stat sb;
    char mdb[PATH_MAX];
    snprintf(mdb, sizeof mdb, "%s/data.mdb", data);
    int rc = stat(mdb, &sb) < 0 ? wisp_err_set(&err, -errno, "no store in %s: %s", data,
                                               strerror(errno))
                                : 0; /* store_open would make one */
    if (rc == 0)
        rc = store_open(&sc, NULL, &st, &err);
    if (rc == 0)
        rc = store_backup(st, file, &err);
    store_close(st);
    if (rc < 0) {
        fprintf(stderr, "wisp admin: %s\n", err.msg);
        return 1;
    }
    if (stat(file, &sb) == 0)
        printf("backed up %s to %s (%lld bytes)\n", data, file, (long long)sb.st_size);
    return 0;
}

/* wisp admin restore FILE: with wispd stopped, which its lock tells. */
static int admin_restore(const char *data, const char *file)
{
    char lock[PATH_MAX];
    int fd = -1;
    long holder = 0;
    struct wisp_err err = {0};
    struct store_backup_info info;
    snprintf(lock, sizeof lock, "%s/wispd.lock", data);
    int rc = plat_mkdir_p(data, 0700);
    if (rc == 0)
        rc = plat_lock_pidfile(lock, &fd, &holder);
    if (rc == -EWOULDBLOCK)
        wisp_err_set(&err, rc, "wispd (pid %ld) runs on %s: stop it first", holder, data);
    else if (rc < 0)
        wisp_err_set(&err, rc, "cannot lock %s: %s", lock, strerror(-rc));
    else
        rc = store_restore(data, file, &info, &err);
    if (fd >= 0) {
        unlink(lock); /* wispd makes it anew */
        close(fd);
    }
    if (rc < 0) {
        fprintf(stderr, "wisp admin: %s\n", err.msg);
        return 1;
    }
    printf("restored %s into %s: schema %u, %llu keys, %llu entities, %llu activations\n", file,
           data, info.schema, (unsigned long long)info.keys, (unsigned long long)info.entities,
           (unsigned long long)info.activations);
    if (info.replaced)
        printf("the store it replaced is %s/data.mdb.pre-restore\n", data);
    return 0;
}

static int admin(int argc, char **argv)
{
    int i;
    const char *data = data_dir_arg(argc, argv, &i);
    if (argc - i < 2) {
        usage(stderr);
        return 2;
    }
    const char *noun = argv[i], *verb = argv[i + 1];
    if (argc - i == 2 && strcmp(noun, "backup") == 0)
        return admin_backup(data, verb);
    if (argc - i == 2 && strcmp(noun, "restore") == 0)
        return admin_restore(data, verb);
    char **rest = argv + i + 2;
    int nrest = argc - i - 2;
    struct store_cfg sc = offline_store(data);
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

static void print_image(void *arg, const char *ref, const char *id, uint64_t bytes)
{
    (void)arg;
    printf("%-40s %.12s  %6.1f MB\n", ref, id, (double)bytes / (1 << 20));
}

struct image_users {
    const char *ref; /* canonical */
    unsigned n;
    char first[512];
};

/* Counts the actions whose exec.image names u->ref. */
static int count_user(void *arg, const struct store_rec *r)
{
    struct image_users *u = arg;
    json_t *doc = NULL;
    if (store_rec_kind(r) != REC_ACTION || store_rec_doc(r, &doc) < 0)
        return 0;
    const char *img = wjson_str(json_object_get(doc, "exec"), "image");
    char canon[IMG_REF_MAX];
    struct wisp_err e = {0};
    if (img && img_ref_parse(img, canon, sizeof canon, &e) == 0 && strcmp(canon, u->ref) == 0 &&
        u->n++ == 0)
        snprintf(u->first, sizeof u->first, "/%s/%s", wjson_str(doc, "namespace") ?: "?",
                 wjson_str(doc, "name") ?: "?");
    json_decref(doc);
    return 0;
}

/* The actions naming ref, from the data dir's store (read beside wispd). */
static int image_users(const char *data, const char *ref, struct image_users *u,
                       struct wisp_err *err)
{
    struct store_cfg sc = offline_store(data);
    struct store *st = NULL;
    *u = (struct image_users){.ref = ref};
    int rc = store_open(&sc, NULL, &st, err);
    if (rc == 0 && (rc = store_scan(st, STORE_ENTITIES, "", 0, false, count_user, u)) < 0)
        wisp_err_set(err, rc, "cannot read the actions: %s", strerror(-rc));
    store_close(st);
    return rc;
}

static int image(int argc, char **argv)
{
    int i;
    const char *data = data_dir_arg(argc, argv, &i);
    if (argc - i < 1) {
        usage(stderr);
        return 2;
    }
    const char *verb = argv[i++];
    struct wisp_err err = {0};
    int rc = 0;
    if (strcmp(verb, "import") == 0) {
        uint64_t max_mb = 1024;
        if (argc - i >= 2 && strcmp(argv[i], "--image-max-mb") == 0) {
            char *end;
            max_mb = strtoull(argv[i + 1], &end, 10);
            if (*end || max_mb == 0) {
                fprintf(stderr, "wisp image: --image-max-mb takes a positive number\n");
                return 2;
            }
            i += 2;
        }
        if (argc - i != 2) {
            usage(stderr);
            return 2;
        }
        char id[IMG_ID_LEN + 1], ref[IMG_REF_MAX];
        struct img_import_opts o = {.data_dir = data, .file = argv[i], .ref = argv[i + 1],
                                    .max_bytes = max_mb << 20};
        if ((rc = img_ref_parse(argv[i + 1], ref, sizeof ref, &err)) == 0 &&
            (rc = img_import(&o, id, &err)) == 0)
            printf("imported %s (%.12s)\n", ref, id);
    } else if (strcmp(verb, "list") == 0 && argc - i == 0) {
        if ((rc = img_list(data, print_image, NULL)) < 0)
            wisp_err_set(&err, rc, "cannot list images: %s", strerror(-rc));
    } else if (strcmp(verb, "rm") == 0 && argc - i >= 1 && argc - i <= 2) {
        bool force = argc - i == 2 && strcmp(argv[i], "--force") == 0;
        if (argc - i == 2 && !force) {
            usage(stderr);
            return 2;
        }
        const char *name = argv[argc - 1];
        char ref[IMG_REF_MAX];
        struct image_users u;
        if ((rc = img_ref_parse(name, ref, sizeof ref, &err)) == 0 && !force &&
            (rc = image_users(data, ref, &u, &err)) == 0 && u.n > 0)
            rc = wisp_err_set(&err, -EBUSY,
                              "%s is used by %u action%s (%s%s); delete %s first, or use --force",
                              ref, u.n, u.n == 1 ? "" : "s", u.first, u.n > 1 ? ", ..." : "",
                              u.n == 1 ? "it" : "them");
        if (rc == 0 && (rc = img_remove(data, ref, &err)) == 0)
            printf("removed %s\n", ref);
    } else {
        usage(stderr);
        return 2;
    }
    if (rc < 0) {
        fprintf(stderr, "wisp image: %s\n", err.msg);
        return 1;
    }
    return 0;
}

static const struct {
    const char *name;
    int (*run)(int argc, char **argv);
} offline_tools[] = {{"admin", admin}, {"image", image}};

int main(int argc, char **argv)
{
    const char *cmd = argc >= 2 ? argv[1] : NULL;
    for (size_t i = 0; cmd && i < WISP_ARRAY_LEN(offline_tools); i++)
        if (strcmp(cmd, offline_tools[i].name) == 0)
            return offline_tools[i].run(argc - 2, argv + 2);
    bool help = cmd && (strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0 ||
                        strcmp(cmd, "help") == 0);
    if (cmd && !help)
        return cli_main(argc, argv);
    cli_usage(help ? stdout : stderr);
    usage(help ? stdout : stderr);
    return help ? 0 : 2;
}
