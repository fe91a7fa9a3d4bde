/* Fuzz target: the container image reader (runtimes/image.c). The first
 * byte picks the part: the tar walker (plain or gzip-compressed tar, long
 * names, pax headers), the image config reader, or the tar-entry path
 * cleaner. Besides not crashing: a cleaned path has no "." or ".." part,
 * no leading, trailing or doubled '/', and cleaning it again changes
 * nothing; every walked entry's size fits what the walk was given. */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_targets.h"
#include "image.h"

static int on_entry(void *arg, const struct img_tar_entry *e, const void *data, size_t len)
{
    (void)data;
    size_t *total = arg;
    if (e->type == '0' && e->size != len)
        abort();
    *total += len;
    return 0;
}

static void check_clean(const char *in)
{
    char out[8192], again[8192];
    if (img_clean_path(in, out, sizeof out) < 0)
        return;
    if (out[0] == '/' || out[strlen(out) - 1] == '/' || strstr(out, "//"))
        abort();
    for (const char *p = out; *p;) {
        size_t l = strcspn(p, "/");
        if ((l == 1 && p[0] == '.') || (l == 2 && p[0] == '.' && p[1] == '.'))
            abort();
        p += l + (p[l] == '/');
    }
    if (img_clean_path(out, again, sizeof again) < 0 || strcmp(out, again) != 0)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    const uint8_t *p = data + 1;
    size_t n = size - 1;
    struct wisp_err err = {0};
    switch (data[0] % 3) {
    case 0: {
        size_t total = 0;
        int rc = img_tar_walk_mem(p, n, 16u << 20, on_entry, &total, &err);
        if (total > (16u << 20) || (rc < 0 && !err.msg[0]))
            abort();
        break;
    }
    case 1: {
        json_t *doc = json_loadb((const char *)p, n, 0, NULL);
        struct img_config ic;
        if (doc && img_config_read(doc, &ic, &err) == 0 && ic.protocol &&
            strcmp(ic.protocol, "actionloop") && strcmp(ic.protocol, "http"))
            abort();
        json_decref(doc);
        break;
    }
    default: {
        char *s = malloc(n + 1);
        if (!s)
            return 0;
        memcpy(s, p, n);
        s[n] = '\0';
        check_clean(s);
        free(s);
        break;
    }
    }
    return 0;
}
