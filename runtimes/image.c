/* runtimes/image.c - the container image store (see image.h).
 *
 * Reading. Archives are read as streams (struct src): a file or a buffer,
 * gzip-decompressed when it starts with gzip's magic, hashed (sha256) both
 * as stored and as decompressed, and bounded in what it may decompress to.
 * The tar reader (struct tar) sits on a src: ustar/GNU/pax headers, one
 * entry at a time, the data read by the caller or skipped.
 *
 * Writing. Everything goes through one writer (struct tree) rooted at a
 * directory fd: every path is resolved component by component with openat
 * and O_NOFOLLOW, so no entry, however named, lands outside the root. The
 * outer archive is unpacked by the same writer into the import's scratch
 * folder, but its symlinks are kept in a table instead of on disk and
 * resolved by name, inside the archive, when a manifest names a file.
 *
 * Not on the loop: `wisp image import` runs it, offline. */
#define ZLIB_CONST
#include "image.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <limits.h>
#include <mbedtls/sha256.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "plat.h"
#include "wjson.h"

#define CHUNK (64u * 1024)
#define META_MAX (4u << 20) /* a manifest, index or config */
#define LONGNAME_MAX 4096
#define LINK_HOPS 8
#define MAX_LAYERS 256
#define MAX_DEPTH 4 /* nested indexes */

/* ==== byte sources ===================================================== */

struct src {
    int fd; /* -1: mem */
    const unsigned char *mem;
    size_t memlen, mempos;
    unsigned char *in; /* CHUNK: raw bytes read ahead */
    size_t in_pos, in_len;
    bool raw_eof, gz, z_on, z_end;
    z_stream z;
    mbedtls_sha256_context raw_sha, out_sha;
    uint64_t out_total, max;
    struct wisp_err *err;
    const char *what; /* for messages: "the archive", "layer 2" */
};

static int src_fill(struct src *s)
{
    if (s->in_pos < s->in_len || s->raw_eof)
        return 0;
    ssize_t n;
    if (s->fd >= 0) {
        do
            n = read(s->fd, s->in, CHUNK);
        while (n < 0 && errno == EINTR);
        if (n < 0)
            return wisp_err_set(s->err, -errno, "%s: read: %s", s->what, strerror(errno));
    } else {
        n = (ssize_t)(s->memlen - s->mempos < CHUNK ? s->memlen - s->mempos : CHUNK);
        memcpy(s->in, s->mem + s->mempos, (size_t)n);
        s->mempos += (size_t)n;
    }
    s->in_pos = 0;
    s->in_len = (size_t)n;
    s->raw_eof = n == 0;
    mbedtls_sha256_update_ret(&s->raw_sha, s->in, (size_t)n);
    return 0;
}

static int src_open(struct src *s, int fd, const void *mem, size_t len, uint64_t max,
                    const char *what, struct wisp_err *err)
{
    memset(s, 0, sizeof *s);
    s->fd = fd;
    s->mem = mem;
    s->memlen = len;
    s->max = max;
    s->what = what;
    s->err = err;
    mbedtls_sha256_init(&s->raw_sha);
    mbedtls_sha256_init(&s->out_sha);
    mbedtls_sha256_starts_ret(&s->raw_sha, 0);
    mbedtls_sha256_starts_ret(&s->out_sha, 0);
    if (!(s->in = malloc(CHUNK)))
        return wisp_err_set(err, -ENOMEM, "out of memory");
    int rc = src_fill(s);
    if (rc < 0)
        return rc;
    /* one read may give fewer than two bytes only at the end */
    s->gz = s->in_len >= 2 && s->in[0] == 0x1f && s->in[1] == 0x8b;
    if (s->gz) {
        if (inflateInit2(&s->z, 16 + MAX_WBITS) != Z_OK)
            return wisp_err_set(err, -ENOMEM, "out of memory");
        s->z_on = true;
    }
    return 0;
}

static void src_close(struct src *s)
{
    if (s->z_on)
        inflateEnd(&s->z);
    mbedtls_sha256_free(&s->raw_sha);
    mbedtls_sha256_free(&s->out_sha);
    free(s->in);
    s->in = NULL;
    s->z_on = false;
}

/* Up to n decompressed bytes: the count, 0 at the end, or -errno. */
static ssize_t src_some(struct src *s, void *buf, size_t n)
{
    int rc;
    if (!s->gz) {
        if ((rc = src_fill(s)) < 0)
            return rc;
        size_t k = s->in_len - s->in_pos < n ? s->in_len - s->in_pos : n;
        memcpy(buf, s->in + s->in_pos, k);
        s->in_pos += k;
        return (ssize_t)k;
    }
    for (;;) {
        if (s->z_end) {
            /* gzip members may follow one another (pigz, cat a.gz b.gz) */
            if ((rc = src_fill(s)) < 0)
                return rc;
            if (s->in_pos == s->in_len)
                return 0;
            if (inflateReset(&s->z) != Z_OK)
                return wisp_err_set(s->err, -EINVAL, "%s: bad gzip data", s->what);
            s->z_end = false;
        }
        if ((rc = src_fill(s)) < 0)
            return rc;
        s->z.next_in = s->in + s->in_pos;
        s->z.avail_in = (uInt)(s->in_len - s->in_pos);
        s->z.next_out = buf;
        s->z.avail_out = (uInt)n;
        int zrc = inflate(&s->z, Z_NO_FLUSH);
        s->in_pos = s->in_len - s->z.avail_in;
        size_t got = n - s->z.avail_out;
        if (zrc == Z_STREAM_END)
            s->z_end = true;
        else if (zrc == Z_BUF_ERROR && s->raw_eof && got == 0)
            return wisp_err_set(s->err, -EINVAL, "%s: the gzip data is truncated", s->what);
        else if (zrc != Z_OK && zrc != Z_BUF_ERROR)
            return wisp_err_set(s->err, zrc == Z_MEM_ERROR ? -ENOMEM : -EINVAL,
                                "%s: bad gzip data (%s)", s->what, s->z.msg ? s->z.msg : "?");
        if (got)
            return (ssize_t)got;
    }
}

/* Exactly n bytes, or -EINVAL (the data ends first) or -EFBIG. */
static int src_read(struct src *s, void *buf, size_t n)
{
    for (size_t done = 0; done < n;) {
        ssize_t k = src_some(s, (char *)buf + done, n - done);
        if (k < 0)
            return (int)k;
        if (k == 0)
            return wisp_err_set(s->err, -EINVAL, "%s is truncated", s->what);
        done += (size_t)k;
    }
    s->out_total += n;
    if (s->out_total > s->max)
        return wisp_err_set(s->err, -EFBIG,
                            "%s unpacks to more than %llu MB (image-max-mb)", s->what,
                            (unsigned long long)(s->max >> 20));
    mbedtls_sha256_update_ret(&s->out_sha, buf, n);
    return 0;
}

/* Reads the rest (a tar's padding after its end), so the hashes cover
 * everything. The padding counts against the bound too. */
static int src_drain(struct src *s)
{
    unsigned char buf[4096];
    for (;;) {
        ssize_t k = src_some(s, buf, sizeof buf);
        if (k <= 0)
            return (int)k;
        s->out_total += (size_t)k;
        if (s->out_total > s->max)
            return wisp_err_set(s->err, -EFBIG, "%s unpacks to more than %llu MB (image-max-mb)",
                                s->what, (unsigned long long)(s->max >> 20));
        mbedtls_sha256_update_ret(&s->out_sha, buf, (size_t)k);
    }
}

static void sha_hex(mbedtls_sha256_context *c, char out[IMG_ID_LEN + 1])
{
    unsigned char d[32];
    mbedtls_sha256_finish_ret(c, d);
    plat_hex(d, sizeof d, out);
}

/* ==== tar ============================================================== */

struct tar {
    struct src *s;
    struct img_tar_entry e;
    char name[LONGNAME_MAX + 256], link[LONGNAME_MAX];
    char long_name[LONGNAME_MAX], long_link[LONGNAME_MAX]; /* from 'L'/'K' or pax */
    bool have_long_name, have_long_link, have_size;
    uint64_t pax_size;
    uint64_t left, pad; /* of the current entry's data */
};

static bool all_zero(const unsigned char *b, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (b[i])
            return false;
    return true;
}

/* An octal field (NUL or space terminated), or GNU base-256. */
static bool tar_num(const unsigned char *f, size_t n, uint64_t *out)
{
    uint64_t v = 0;
    if (f[0] & 0x80) {
        if (f[0] != 0x80)
            return false; /* negative, or beyond 64 bits */
        for (size_t i = 1; i < n; i++) {
            if (v >> 56)
                return false;
            v = v << 8 | f[i];
        }
        *out = v;
        return true;
    }
    size_t i = 0;
    while (i < n && f[i] == ' ')
        i++;
    bool any = false;
    for (; i < n && f[i] >= '0' && f[i] <= '7'; i++) {
        if (v >> 60)
            return false;
        v = v << 3 | (uint64_t)(f[i] - '0');
        any = true;
    }
    if (i < n && f[i] != '\0' && f[i] != ' ')
        return false;
    *out = v;
    return any || i == n || f[i] == '\0' || f[i] == ' ';
}

static int tar_skip(struct tar *t)
{
    unsigned char buf[4096];
    uint64_t n = t->left + t->pad;
    while (n) {
        size_t k = n < sizeof buf ? (size_t)n : sizeof buf;
        int rc = src_read(t->s, buf, k);
        if (rc < 0)
            return rc;
        n -= k;
    }
    t->left = t->pad = 0;
    return 0;
}

/* The data of the current entry, into buf (exactly len <= left). */
static int tar_data(struct tar *t, void *buf, size_t len)
{
    int rc = src_read(t->s, buf, len);
    if (rc == 0)
        t->left -= len;
    return rc;
}

/* A pax extended header: "LEN key=value\n" records. */
static int tar_pax(struct tar *t, char *p, size_t len)
{
    struct wisp_err *err = t->s->err;
    while (len > 0) {
        char *end = NULL;
        unsigned long rl = strtoul(p, &end, 10);
        if (!end || *end != ' ' || rl == 0 || rl > len || p[rl - 1] != '\n')
            return wisp_err_set(err, -EINVAL, "%s: bad pax header", t->s->what);
        char *kv = end + 1, *eq = memchr(kv, '=', (size_t)(p + rl - kv));
        if (!eq)
            return wisp_err_set(err, -EINVAL, "%s: bad pax header", t->s->what);
        size_t kl = (size_t)(eq - kv), vl = (size_t)(p + rl - 1 - (eq + 1));
        const char *v = eq + 1;
        if (kl == 4 && memcmp(kv, "path", 4) == 0 && vl < sizeof t->long_name) {
            memcpy(t->long_name, v, vl);
            t->long_name[vl] = '\0';
            t->have_long_name = true;
        } else if (kl == 8 && memcmp(kv, "linkpath", 8) == 0 && vl < sizeof t->long_link) {
            memcpy(t->long_link, v, vl);
            t->long_link[vl] = '\0';
            t->have_long_link = true;
        } else if (kl == 4 && memcmp(kv, "size", 4) == 0) {
            char num[24];
            if (vl == 0 || vl >= sizeof num)
                return wisp_err_set(err, -EINVAL, "%s: bad pax size", t->s->what);
            memcpy(num, v, vl);
            num[vl] = '\0';
            t->pax_size = strtoull(num, &end, 10);
            if (*end)
                return wisp_err_set(err, -EINVAL, "%s: bad pax size", t->s->what);
            t->have_size = true;
        }
        p += rl;
        len -= rl;
    }
    return 0;
}

/* A metadata entry's data ('L', 'K', 'x'): read whole, NUL-terminated. */
static int tar_meta(struct tar *t, uint64_t size, char *buf, size_t cap)
{
    if (size >= cap)
        return wisp_err_set(t->s->err, -EINVAL, "%s: a long name or pax header over %zu bytes",
                            t->s->what, cap - 1);
    t->left = size;
    t->pad = (512 - size % 512) % 512;
    int rc = tar_data(t, buf, (size_t)size);
    if (rc == 0)
        rc = tar_skip(t);
    buf[size] = '\0';
    return rc;
}

/* The next entry into t->e: 1, 0 at the end of the archive, or -errno. */
static int tar_next(struct tar *t)
{
    struct wisp_err *err = t->s->err;
    int rc = tar_skip(t);
    t->have_long_name = t->have_long_link = t->have_size = false;
    for (;;) {
        unsigned char h[512];
        if (rc < 0 || (rc = src_read(t->s, h, sizeof h)) < 0)
            return rc;
        if (all_zero(h, sizeof h))
            return 0; /* the end (a second zero block and padding may follow) */
        uint64_t sum = 0, want = 0;
        for (size_t i = 0; i < 512; i++)
            sum += i >= 148 && i < 156 ? ' ' : h[i];
        if (!tar_num(h + 148, 8, &want) || want != sum)
            return wisp_err_set(err, -EINVAL, "%s: not a tar archive (bad header checksum)",
                                t->s->what);
        uint64_t size = 0, mode = 0, uid = 0, gid = 0;
        if (!tar_num(h + 124, 12, &size) || !tar_num(h + 100, 8, &mode) ||
            !tar_num(h + 108, 8, &uid) || !tar_num(h + 116, 8, &gid))
            return wisp_err_set(err, -EINVAL, "%s: bad numbers in a tar header", t->s->what);
        char type = (char)h[156];
        if (type == 'L' || type == 'K') {
            rc = tar_meta(t, size, type == 'L' ? t->long_name : t->long_link, LONGNAME_MAX);
            *(type == 'L' ? &t->have_long_name : &t->have_long_link) = true;
            continue;
        }
        if (type == 'x' || type == 'g') {
            char *pax = malloc(size + 1 > META_MAX ? 1 : (size_t)size + 1);
            if (!pax)
                return wisp_err_set(err, -ENOMEM, "out of memory");
            rc = tar_meta(t, size, pax, META_MAX);
            if (rc == 0 && type == 'x')
                rc = tar_pax(t, pax, (size_t)size);
            free(pax);
            continue;
        }
        if (t->have_long_name) {
            snprintf(t->name, sizeof t->name, "%s", t->long_name);
        } else {
            char nm[101], pre[156];
            memcpy(nm, h, 100);
            nm[100] = '\0';
            pre[0] = '\0';
            if (memcmp(h + 257, "ustar", 5) == 0) {
                memcpy(pre, h + 345, 155);
                pre[155] = '\0';
            }
            snprintf(t->name, sizeof t->name, "%s%s%s", pre, pre[0] ? "/" : "", nm);
        }
        if (t->have_long_link) {
            snprintf(t->link, sizeof t->link, "%s", t->long_link);
        } else {
            memcpy(t->link, h + 157, 100);
            t->link[100] = '\0';
        }
        if (t->have_size)
            size = t->pax_size;
        if (type == '\0' || type == '7')
            type = '0';
        t->e = (struct img_tar_entry){.name = t->name, .linkname = t->link, .type = type,
                                      .mode = (unsigned)(mode & 07777), .size = size,
                                      .uid = (long)(uid > 0x7fffffff ? 0 : uid),
                                      .gid = (long)(gid > 0x7fffffff ? 0 : gid)};
        /* only files carry data; a size on anything else is skipped */
        t->left = size;
        t->pad = (512 - size % 512) % 512;
        return 1;
    }
}

int img_tar_walk_mem(const void *buf, size_t len, uint64_t max_bytes, img_tar_fn *fn, void *arg,
                     struct wisp_err *err)
{
    struct src s;
    struct tar *t = calloc(1, sizeof *t);
    int rc = t ? src_open(&s, -1, buf, len, max_bytes, "the archive", err)
               : wisp_err_set(err, -ENOMEM, "out of memory");
    unsigned char *data = NULL;
    if (t)
        t->s = &s;
    while (rc == 0 && (rc = tar_next(t)) == 1) {
        size_t n = t->e.type == '0' ? (size_t)t->e.size : 0;
        if (t->e.type == '0' && t->e.size > max_bytes) {
            rc = wisp_err_set(err, -EFBIG, "entry '%.200s' is too large", t->e.name);
            break;
        }
        free(data);
        data = malloc(n ? n : 1);
        if (!data) {
            rc = wisp_err_set(err, -ENOMEM, "out of memory");
            break;
        }
        if (n && (rc = tar_data(t, data, n)) < 0)
            break;
        rc = fn(arg, &t->e, data, n);
    }
    free(data);
    if (t)
        src_close(&s);
    free(t);
    return rc;
}

/* ==== paths ============================================================ */

int img_clean_path(const char *name, char *out, size_t cap)
{
    char tmp[LONGNAME_MAX + 256];
    size_t o = 0;
    for (const char *p = name; *p;) {
        while (*p == '/')
            p++;
        size_t l = strcspn(p, "/");
        if (l == 0)
            break;
        if (l == 2 && p[0] == '.' && p[1] == '.')
            return -EINVAL;
        if (!(l == 1 && p[0] == '.')) {
            if (o + l + 2 > sizeof tmp)
                return -ENAMETOOLONG;
            if (o)
                tmp[o++] = '/';
            memcpy(tmp + o, p, l);
            o += l;
        }
        p += l;
    }
    if (o == 0 || o + 1 > cap)
        return o == 0 ? -EINVAL : -ENAMETOOLONG;
    memcpy(out, tmp, o);
    out[o] = '\0';
    return 0;
}

/* A symlink target resolved by name against the folder holding it, kept
 * inside the root: the resolved path, or -EINVAL when it leaves. */
static int join_inside(const char *from, const char *target, char *out, size_t cap)
{
    if (target[0] == '/')
        return -EINVAL;
    char buf[2 * LONGNAME_MAX];
    const char *slash = strrchr(from, '/');
    size_t dl = slash ? (size_t)(slash - from) : 0;
    if (dl + strlen(target) + 2 > sizeof buf)
        return -ENAMETOOLONG;
    memcpy(buf, from, dl);
    snprintf(buf + dl, sizeof buf - dl, "%s%s", dl ? "/" : "", target);
    /* lexical: a ".." pops the last part, and may not pop past the root */
    char *parts[512];
    size_t n = 0;
    for (char *save = NULL, *p = strtok_r(buf, "/", &save); p; p = strtok_r(NULL, "/", &save)) {
        if (strcmp(p, ".") == 0)
            continue;
        if (strcmp(p, "..") == 0) {
            if (n == 0)
                return -EINVAL;
            n--;
        } else if (n < 512) {
            parts[n++] = p;
        } else {
            return -ENAMETOOLONG;
        }
    }
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        int w = snprintf(out + o, cap - o, "%s%s", i ? "/" : "", parts[i]);
        if (w < 0 || (size_t)w >= cap - o)
            return -ENAMETOOLONG;
        o += (size_t)w;
    }
    return n ? 0 : -EINVAL;
}

/* ==== the writer ======================================================= */

struct tree {
    int root;          /* dirfd */
    bool as_root;      /* keep the entries' owners */
    bool keep_links;   /* outer archive: symlinks into links, not on disk */
    json_t *links;     /* name -> target (outer archive) */
    json_t *seen;      /* paths written by the current layer (opaque whiteouts) */
    json_t *dir_modes; /* path -> mode, applied at the end */
    uint64_t bytes, max;
    struct wisp_err *err;
    const char *what;
};

/* Opens the folder holding path's last part (made when missing), with
 * *leaf pointing into path; never through a symlink. dirfd or -errno. */
static int tree_parent(struct tree *t, char *path, const char **leaf, bool make)
{
    int cur = t->root;
    char *s = path;
    for (char *slash; (slash = strchr(s, '/')); s = slash + 1) {
        *slash = '\0';
        if (make && mkdirat(cur, s, 0755) < 0 && errno != EEXIST) {
            int e = errno;
            *slash = '/';
            if (cur != t->root)
                close(cur);
            return wisp_err_set(t->err, -e, "%s: '%.200s': cannot make a folder: %s", t->what,
                                path, strerror(e));
        }
        int next = openat(cur, s, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        int e = errno;
        *slash = '/';
        if (cur != t->root)
            close(cur);
        if (next < 0)
            return wisp_err_set(t->err, -e,
                                e == ELOOP || e == ENOTDIR
                                    ? "%s: '%.200s' goes through a symlink or a file"
                                    : "%s: '%.200s': %s",
                                t->what, path, strerror(e));
        cur = next;
    }
    *leaf = s;
    return cur;
}

static void close_parent(struct tree *t, int fd)
{
    if (fd != t->root)
        close(fd);
}

/* Removes name in dirfd, a folder with everything in it. */
static int rm_at(int dirfd, const char *name)
{
    struct stat st;
    if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
        return errno == ENOENT ? 0 : -errno;
    if (!S_ISDIR(st.st_mode))
        return unlinkat(dirfd, name, 0) < 0 ? -errno : 0;
    int fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    DIR *d = fdopendir(fd);
    if (!d) {
        close(fd);
        return -errno;
    }
    int rc = 0;
    for (struct dirent *de; rc == 0 && (de = readdir(d));)
        if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
            rc = rm_at(fd, de->d_name);
    closedir(d);
    if (rc == 0 && unlinkat(dirfd, name, AT_REMOVEDIR) < 0)
        rc = -errno;
    return rc;
}

/* An opaque whiteout: empties dir (relative path, "" the root) of what the
 * layers below put there; this layer's entries stay. */
static int tree_opaque(struct tree *t, const char *dir)
{
    int fd = t->root;
    char buf[LONGNAME_MAX + 512];
    if (*dir) {
        snprintf(buf, sizeof buf, "%s/x", dir);
        const char *leaf;
        int pfd = tree_parent(t, buf, &leaf, true);
        if (pfd < 0)
            return pfd;
        fd = pfd;
    }
    int dfd = dup(fd);
    DIR *d = dfd >= 0 ? fdopendir(dfd) : NULL;
    if (!d) {
        if (dfd >= 0)
            close(dfd);
        close_parent(t, fd);
        return wisp_err_set(t->err, -errno, "%s: cannot read a folder", t->what);
    }
    int rc = 0;
    for (struct dirent *de; rc == 0 && (de = readdir(d));) {
        if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
            continue;
        char p[LONGNAME_MAX + 512];
        snprintf(p, sizeof p, "%s%s%s", dir, *dir ? "/" : "", de->d_name);
        if (!json_object_get(t->seen, p))
            rc = rm_at(fd, de->d_name);
    }
    closedir(d);
    close_parent(t, fd);
    return rc < 0 ? wisp_err_set(t->err, rc, "%s: cannot apply a whiteout: %s", t->what,
                                 strerror(-rc))
                  : 0;
}

static int tree_file(struct tree *t, struct tar *tr, int dfd, const char *leaf, const char *shown)
{
    int fd = openat(dfd, leaf, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0)
        return wisp_err_set(t->err, -errno, "%s: '%.200s': %s", t->what, shown, strerror(errno));
    t->bytes += tr->e.size;
    int rc = 0;
    if (t->bytes > t->max)
        rc = wisp_err_set(t->err, -EFBIG, "the image unpacks to more than %llu MB (image-max-mb)",
                          (unsigned long long)(t->max >> 20));
    char *buf = rc ? NULL : malloc(CHUNK);
    if (!rc && !buf)
        rc = wisp_err_set(t->err, -ENOMEM, "out of memory");
    while (rc == 0 && tr->left > 0) {
        size_t k = tr->left < CHUNK ? (size_t)tr->left : CHUNK;
        if ((rc = tar_data(tr, buf, k)) < 0)
            break;
        for (size_t o = 0; o < k;) {
            ssize_t w = write(fd, buf + o, k - o);
            if (w < 0 && errno == EINTR)
                continue;
            if (w < 0) {
                rc = wisp_err_set(t->err, -errno, "%s: writing '%.200s': %s", t->what, shown,
                                  strerror(errno));
                break;
            }
            o += (size_t)w;
        }
    }
    free(buf);
    if (rc == 0 && t->as_root && fchown(fd, (uid_t)tr->e.uid, (gid_t)tr->e.gid) < 0)
        rc = wisp_err_set(t->err, -errno, "%s: chown '%.200s': %s", t->what, shown,
                          strerror(errno));
    /* after chown, which clears them anyway: no setuid/setgid, ever */
    if (rc == 0 && fchmod(fd, tr->e.mode & 01777) < 0)
        rc = -errno;
    close(fd);
    return rc;
}

/* A hard link: its target must be a file already in the tree. */
static int tree_hardlink(struct tree *t, const char *target, int dfd, const char *leaf,
                         const char *shown)
{
    char tp[LONGNAME_MAX + 256];
    if (img_clean_path(target, tp, sizeof tp) < 0)
        return wisp_err_set(t->err, -EINVAL, "%s: hard link '%.200s' leaves the image", t->what,
                            shown);
    const char *tleaf;
    int tfd = tree_parent(t, tp, &tleaf, false);
    if (tfd < 0)
        return wisp_err_set(t->err, -EINVAL, "%s: hard link '%.200s' names no file of the image",
                            t->what, shown);
    struct stat st;
    int rc = 0;
    if (fstatat(tfd, tleaf, &st, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISREG(st.st_mode))
        rc = wisp_err_set(t->err, -EINVAL, "%s: hard link '%.200s' names no file of the image",
                          t->what, shown);
    else if (linkat(tfd, tleaf, dfd, leaf, 0) < 0)
        rc = wisp_err_set(t->err, -errno, "%s: hard link '%.200s': %s", t->what, shown,
                          strerror(errno));
    close_parent(t, tfd);
    return rc;
}

static int tree_entry_at(struct tree *t, struct tar *tr, char *path, int dfd, const char *leaf)
{
    const struct img_tar_entry *e = &tr->e;
    int rc = 0;
    struct stat st;
    bool exists = fstatat(dfd, leaf, &st, AT_SYMLINK_NOFOLLOW) == 0;
    if (e->type == '5') {
        if (exists && !S_ISDIR(st.st_mode) && (rc = rm_at(dfd, leaf)) < 0)
            return wisp_err_set(t->err, rc, "%s: '%.200s': %s", t->what, path, strerror(-rc));
        if ((!exists || !S_ISDIR(st.st_mode)) && mkdirat(dfd, leaf, 0755) < 0)
            return wisp_err_set(t->err, -errno, "%s: '%.200s': %s", t->what, path,
                                strerror(errno));
        if (t->as_root && fchownat(dfd, leaf, (uid_t)e->uid, (gid_t)e->gid, AT_SYMLINK_NOFOLLOW))
            return wisp_err_set(t->err, -errno, "%s: chown '%.200s'", t->what, path);
        json_object_set_new(t->dir_modes, path, json_integer(e->mode & 01777));
        return 0;
    }
    if (exists && (rc = rm_at(dfd, leaf)) < 0)
        return wisp_err_set(t->err, rc, "%s: '%.200s': %s", t->what, path, strerror(-rc));
    switch (e->type) {
    case '0':
        return tree_file(t, tr, dfd, leaf, path);
    case '1':
        return tree_hardlink(t, e->linkname, dfd, leaf, path);
    case '2':
        if (!e->linkname[0])
            return wisp_err_set(t->err, -EINVAL, "%s: symlink '%.200s' has no target", t->what,
                                path);
        if (symlinkat(e->linkname, dfd, leaf) < 0)
            return wisp_err_set(t->err, -errno, "%s: symlink '%.200s': %s", t->what, path,
                                strerror(errno));
        if (t->as_root && fchownat(dfd, leaf, (uid_t)e->uid, (gid_t)e->gid, AT_SYMLINK_NOFOLLOW))
            return wisp_err_set(t->err, -errno, "%s: chown '%.200s'", t->what, path);
        return 0;
    case '6':
        if (mkfifoat(dfd, leaf, e->mode & 0777) < 0)
            return wisp_err_set(t->err, -errno, "%s: fifo '%.200s': %s", t->what, path,
                                strerror(errno));
        return 0;
    case '3':
    case '4':
        return wisp_err_set(t->err, -EPERM, "%s: '%.200s' is a device node (refused)", t->what,
                            path);
    default:
        return wisp_err_set(t->err, -EINVAL, "%s: '%.200s' has tar type '%c' (not supported)",
                            t->what, path, e->type >= ' ' && e->type < 127 ? e->type : '?');
    }
}

/* One entry of a layer (or of the outer archive) into the tree. */
static int tree_entry(struct tree *t, struct tar *tr)
{
    char path[LONGNAME_MAX + 256];
    int rc = img_clean_path(tr->e.name, path, sizeof path);
    if (rc == -EINVAL) { /* "..", or nothing left: "./" and "/" are the root itself */
        if (strstr(tr->e.name, ".."))
            return wisp_err_set(t->err, -EINVAL, "%s: entry '%.200s' leaves the image (..)",
                                t->what, tr->e.name);
        return tr->e.type == '5' ? 0 : wisp_err_set(t->err, -EINVAL, "%s: an entry without a name", t->what);
    }
    if (rc < 0)
        return wisp_err_set(t->err, rc, "%s: entry name too long", t->what);
    if (t->keep_links && tr->e.type == '2') {
        char to[LONGNAME_MAX + 256];
        if (join_inside(path, tr->e.linkname, to, sizeof to) < 0)
            return wisp_err_set(t->err, -EINVAL, "%s: symlink '%.200s' points out of the archive",
                                t->what, path);
        json_object_set_new(t->links, path, json_string(to));
        return 0;
    }
    if (t->keep_links && tr->e.type != '0' && tr->e.type != '5')
        return tr->e.type == '3' || tr->e.type == '4'
                   ? wisp_err_set(t->err, -EPERM, "%s: '%.200s' is a device node (refused)",
                                  t->what, path)
                   : 0;
    char *slash = strrchr(path, '/');
    const char *base = slash ? slash + 1 : path;
    if (t->seen)
        json_object_set_new(t->seen, path, json_true());
    if (!t->keep_links && strncmp(base, ".wh.", 4) == 0) {
        if (strcmp(base, ".wh..wh..opq") == 0) {
            if (slash)
                *slash = '\0';
            return tree_opaque(t, slash ? path : "");
        }
        char victim[LONGNAME_MAX + 256];
        snprintf(victim, sizeof victim, "%.*s%s", (int)(base - path), path, base + 4);
        if (!base[4] || strcmp(base + 4, ".") == 0 || strcmp(base + 4, "..") == 0)
            return wisp_err_set(t->err, -EINVAL, "%s: bad whiteout '%.200s'", t->what, path);
        const char *leaf;
        int dfd = tree_parent(t, victim, &leaf, true);
        if (dfd < 0)
            return dfd;
        rc = rm_at(dfd, leaf);
        close_parent(t, dfd);
        return rc < 0 ? wisp_err_set(t->err, rc, "%s: whiteout '%.200s': %s", t->what, path,
                                     strerror(-rc))
                      : 0;
    }
    const char *leaf;
    int dfd = tree_parent(t, path, &leaf, true);
    if (dfd < 0)
        return dfd;
    rc = tree_entry_at(t, tr, path, dfd, leaf);
    close_parent(t, dfd);
    return rc;
}

/* Applies the folder modes the tar gave (after their contents were
 * written: a 0555 folder would refuse them). */
static int tree_dir_modes(struct tree *t)
{
    const char *k;
    json_t *v;
    json_object_foreach(t->dir_modes, k, v)
    {
        char p[LONGNAME_MAX + 512];
        snprintf(p, sizeof p, "%s/x", k);
        const char *leaf;
        int dfd = tree_parent(t, p, &leaf, false);
        if (dfd < 0) /* a later layer made it something else, or removed it */
            continue;
        /* opening it as dfd followed no symlink: chmod "." is the folder */
        int rc = fchmodat(dfd, ".", (mode_t)json_integer_value(v), 0);
        close_parent(t, dfd);
        if (rc < 0)
            return wisp_err_set(t->err, -errno, "chmod '%.200s': %s", k, strerror(errno));
    }
    return 0;
}

/* Unpacks a whole tar stream into the tree. */
static int tree_unpack(struct tree *t, struct src *s)
{
    struct tar *tr = calloc(1, sizeof *tr);
    if (!tr)
        return wisp_err_set(t->err, -ENOMEM, "out of memory");
    tr->s = s;
    int rc;
    while ((rc = tar_next(tr)) == 1)
        if ((rc = tree_entry(t, tr)) < 0)
            break;
    if (rc == 0)
        rc = src_drain(s);
    free(tr);
    return rc;
}

/* ==== the archive's files ============================================== */

struct arc {
    struct tree t;      /* the outer archive, unpacked into dir/archive */
    char dir[PATH_MAX]; /* the import's scratch folder */
    struct wisp_err *err;
};

/* Opens a file of the archive by name, following the archive's symlinks
 * by name. fd or -errno with err. */
static int arc_open(struct arc *a, const char *name)
{
    char p[LONGNAME_MAX + 256];
    if (img_clean_path(name, p, sizeof p) < 0)
        return wisp_err_set(a->err, -EINVAL, "the manifest names '%.200s', outside the archive",
                            name);
    for (int hops = 0; hops <= LINK_HOPS; hops++) {
        const char *to = json_string_value(json_object_get(a->t.links, p));
        if (!to) {
            const char *leaf;
            int dfd = tree_parent(&a->t, p, &leaf, false);
            if (dfd < 0)
                return wisp_err_set(a->err, -ENOENT, "the archive has no file '%.200s'", name);
            int fd = openat(dfd, leaf, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
            int e = errno;
            close_parent(&a->t, dfd);
            if (fd < 0)
                return wisp_err_set(a->err, -e, "the archive has no file '%.200s'", name);
            return fd;
        }
        snprintf(p, sizeof p, "%s", to);
    }
    return wisp_err_set(a->err, -ELOOP, "'%.200s': too many symlinks", name);
}

/* A small JSON file of the archive, checked against digest when given
 * ("sha256:HEX"). */
static json_t *arc_json(struct arc *a, const char *name, const char *digest, char *hex_out)
{
    int fd = arc_open(a, name);
    if (fd < 0)
        return NULL;
    struct stat st;
    char *buf = NULL;
    json_t *doc = NULL;
    if (fstat(fd, &st) < 0 || st.st_size > (off_t)META_MAX) {
        wisp_err_set(a->err, -EFBIG, "'%.200s' is not a manifest (too large)", name);
        goto out;
    }
    buf = malloc((size_t)st.st_size + 1);
    ssize_t n = buf ? read(fd, buf, (size_t)st.st_size) : -1;
    if (n != st.st_size) {
        wisp_err_set(a->err, -EIO, "cannot read '%.200s'", name);
        goto out;
    }
    unsigned char d[32];
    char hex[IMG_ID_LEN + 1];
    mbedtls_sha256_ret((unsigned char *)buf, (size_t)n, d, 0);
    plat_hex(d, sizeof d, hex);
    if (digest && (strncmp(digest, "sha256:", 7) || strcmp(digest + 7, hex))) {
        wisp_err_set(a->err, -EINVAL, "'%.200s' does not match its digest %.80s", name, digest);
        goto out;
    }
    if (hex_out)
        memcpy(hex_out, hex, sizeof hex);
    json_error_t je;
    doc = json_loadb(buf, (size_t)n, JSON_REJECT_DUPLICATES, &je);
    if (!doc)
        wisp_err_set(a->err, -EINVAL, "'%.200s' is not JSON: %s", name, je.text);
    else if (!json_is_object(doc) && !json_is_array(doc)) {
        wisp_err_set(a->err, -EINVAL, "'%.200s' is not a JSON object", name);
        json_decref(doc);
        doc = NULL;
    }
out:
    free(buf);
    close(fd);
    return doc;
}

static const char *blob_path(const char *digest, char *buf, size_t cap)
{
    if (!digest || strncmp(digest, "sha256:", 7) || strlen(digest) != 7 + IMG_ID_LEN ||
        strspn(digest + 7, "0123456789abcdef") != IMG_ID_LEN)
        return NULL;
    snprintf(buf, cap, "blobs/sha256/%s", digest + 7);
    return buf;
}

/* ==== manifests ======================================================== */

struct layer {
    char path[LONGNAME_MAX]; /* in the archive */
    char digest[80];         /* of the blob as stored ("" docker save) */
};

struct image {
    char config_path[LONGNAME_MAX];
    char config_digest[80]; /* "" docker save (the name carries it) */
    struct layer *layers;
    size_t nlayers;
};

static const char *go_arch(void)
{
#if defined(__x86_64__)
    return "amd64";
#elif defined(__aarch64__)
    return "arm64";
#elif defined(__arm__)
    return "arm";
#else
    return "unknown";
#endif
}

static int layers_from(struct arc *a, struct image *im, const json_t *arr, bool oci)
{
    if (!json_is_array(arr) || json_array_size(arr) > MAX_LAYERS)
        return wisp_err_set(a->err, -EINVAL, "the manifest's layers are not a list (or over %d)",
                            MAX_LAYERS);
    im->layers = calloc(json_array_size(arr) + 1, sizeof *im->layers);
    if (!im->layers)
        return wisp_err_set(a->err, -ENOMEM, "out of memory");
    size_t i;
    json_t *l;
    json_array_foreach(arr, i, l)
    {
        struct layer *ly = &im->layers[im->nlayers++];
        if (oci) {
            const char *mt = wjson_str(l, "mediaType"), *dg = wjson_str(l, "digest");
            if (mt && strstr(mt, "zstd"))
                return wisp_err_set(a->err, -ENOTSUP,
                                    "layer %zu is zstd-compressed: not supported (gzip or plain "
                                    "tar layers only)",
                                    i + 1);
            if (!blob_path(dg, ly->path, sizeof ly->path))
                return wisp_err_set(a->err, -EINVAL, "layer %zu has no sha256 digest", i + 1);
            snprintf(ly->digest, sizeof ly->digest, "%s", dg);
        } else {
            if (!json_is_string(l) || json_string_length(l) >= sizeof ly->path)
                return wisp_err_set(a->err, -EINVAL, "manifest.json: a layer is not a file name");
            snprintf(ly->path, sizeof ly->path, "%s", json_string_value(l));
        }
    }
    return 0;
}

static bool platform_fits(const json_t *d, const char *arch)
{
    const json_t *pf = json_object_get(d, "platform");
    if (!pf)
        return true;
    const char *os = wjson_str(pf, "os"), *ar = wjson_str(pf, "architecture");
    return (!os || strcmp(os, "linux") == 0) && (!ar || strcmp(ar, arch) == 0);
}

/* An OCI index (or a manifest list): its first manifest for this platform,
 * nested indexes followed. */
static int oci_pick(struct arc *a, struct image *im, json_t *index, const char *arch, int depth)
{
    const json_t *ms = json_object_get(index, "manifests");
    if (!json_is_array(ms) || json_array_size(ms) == 0)
        return wisp_err_set(a->err, -EINVAL, "the image index lists no manifests");
    size_t i;
    json_t *d;
    json_array_foreach(ms, i, d)
    {
        if (!platform_fits(d, arch))
            continue;
        char p[LONGNAME_MAX];
        const char *dg = wjson_str(d, "digest"), *mt = wjson_str(d, "mediaType");
        if (!blob_path(dg, p, sizeof p))
            return wisp_err_set(a->err, -EINVAL, "a manifest in the index has no sha256 digest");
        json_t *m = arc_json(a, p, dg, NULL);
        if (!m)
            return a->err->code ? a->err->code : -EINVAL;
        int rc;
        if (mt && (strstr(mt, "index") || strstr(mt, "manifest.list")))
            rc = depth >= MAX_DEPTH ? wisp_err_set(a->err, -EINVAL, "image indexes nest too deep")
                                    : oci_pick(a, im, m, arch, depth + 1);
        else if (json_object_get(m, "manifests"))
            rc = depth >= MAX_DEPTH ? wisp_err_set(a->err, -EINVAL, "image indexes nest too deep")
                                    : oci_pick(a, im, m, arch, depth + 1);
        else {
            const char *cd = wjson_str(json_object_get(m, "config"), "digest");
            rc = blob_path(cd, im->config_path, sizeof im->config_path)
                     ? 0
                     : wisp_err_set(a->err, -EINVAL, "the manifest has no config digest");
            if (rc == 0) {
                snprintf(im->config_digest, sizeof im->config_digest, "%s", cd);
                rc = layers_from(a, im, json_object_get(m, "layers"), true);
            }
        }
        json_decref(m);
        return rc;
    }
    return wisp_err_set(a->err, -ENOENT, "the image has no manifest for linux/%s", arch);
}

static int docker_pick(struct arc *a, struct image *im, json_t *man)
{
    if (!json_is_array(man) || json_array_size(man) == 0)
        return wisp_err_set(a->err, -EINVAL, "manifest.json lists no image");
    if (json_array_size(man) > 1)
        return wisp_err_set(a->err, -EINVAL,
                            "manifest.json lists %zu images; save one image per archive",
                            json_array_size(man));
    const json_t *m = json_array_get(man, 0);
    const char *cfg = wjson_str(m, "Config");
    if (!cfg || strlen(cfg) >= sizeof im->config_path)
        return wisp_err_set(a->err, -EINVAL, "manifest.json names no Config");
    snprintf(im->config_path, sizeof im->config_path, "%s", cfg);
    /* the config's name is its digest: "HEX.json" or "blobs/sha256/HEX" */
    const char *base = strrchr(cfg, '/') ? strrchr(cfg, '/') + 1 : cfg;
    if (strspn(base, "0123456789abcdef") == IMG_ID_LEN)
        snprintf(im->config_digest, sizeof im->config_digest, "sha256:%.64s", base);
    return layers_from(a, im, json_object_get(m, "Layers"), false);
}

/* ==== import =========================================================== */

static int unpack_layer(struct arc *a, struct tree *rootfs, const struct layer *ly, size_t i,
                        const char *diff_id)
{
    char what[48];
    snprintf(what, sizeof what, "layer %zu", i + 1);
    int fd = arc_open(a, ly->path);
    if (fd < 0)
        return fd;
    struct src s;
    int rc = src_open(&s, fd, NULL, 0, rootfs->max, what, a->err);
    rootfs->what = what;
    json_decref(rootfs->seen);
    rootfs->seen = json_object();
    if (rc == 0)
        rc = tree_unpack(rootfs, &s);
    char raw[IMG_ID_LEN + 1], out[IMG_ID_LEN + 1];
    if (rc == 0) {
        sha_hex(&s.raw_sha, raw);
        sha_hex(&s.out_sha, out);
        if (ly->digest[0] && strcmp(ly->digest + 7, raw) != 0)
            rc = wisp_err_set(a->err, -EINVAL, "%s does not match its digest %.80s", what,
                              ly->digest);
        else if (!diff_id || strncmp(diff_id, "sha256:", 7) || strcmp(diff_id + 7, out) != 0)
            rc = wisp_err_set(a->err, -EINVAL,
                              "%s does not match the config's diff_id %.80s", what,
                              diff_id ? diff_id : "(none)");
    }
    src_close(&s);
    close(fd);
    return rc;
}

/* The mount points a container needs, in the (then read-only) rootfs. */
static int make_mountpoints(struct tree *t)
{
    static const char *const dirs[] = {"proc", "dev", "sys", "tmp", ".wisp"};
    for (size_t i = 0; i < WISP_ARRAY_LEN(dirs); i++) {
        struct stat st;
        if (fstatat(t->root, dirs[i], &st, AT_SYMLINK_NOFOLLOW) == 0) {
            if (!S_ISDIR(st.st_mode) && rm_at(t->root, dirs[i]) == 0)
                (void)mkdirat(t->root, dirs[i], 0755);
            continue;
        }
        if (mkdirat(t->root, dirs[i], 0755) < 0)
            return wisp_err_set(t->err, -errno, "cannot make /%s in the image", dirs[i]);
    }
    /* the OCI runtime gives the tmpfs on /tmp this folder's mode: the
     * container's unprivileged user must be able to write there */
    if (fchmodat(t->root, "tmp", 01777, 0) < 0)
        return wisp_err_set(t->err, -errno, "cannot chmod /tmp in the image: %s", strerror(errno));
    return 0;
}

static int open_dir(const char *path, struct wisp_err *err)
{
    int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return wisp_err_set(err, -errno, "%s: %s", path, strerror(errno));
    return fd;
}

/* Unpacks the outer archive into a->dir/archive. */
static int unpack_archive(struct arc *a, const char *file, uint64_t max)
{
    char p[PATH_MAX + 16];
    snprintf(p, sizeof p, "%s/archive", a->dir);
    if (mkdir(p, 0700) < 0)
        return wisp_err_set(a->err, -errno, "%s: %s", p, strerror(errno));
    int fd = open(file, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return wisp_err_set(a->err, -errno, "%s: %s", file, strerror(errno));
    a->t = (struct tree){.root = open_dir(p, a->err), .keep_links = true, .links = json_object(),
                         .dir_modes = json_object(), .max = max, .err = a->err,
                         .what = "the archive"};
    int rc = a->t.root;
    struct src s;
    if (rc >= 0 && (rc = src_open(&s, fd, NULL, 0, max, "the archive", a->err)) == 0)
        rc = tree_unpack(&a->t, &s);
    if (a->t.root >= 0)
        src_close(&s);
    close(fd);
    return rc < 0 ? rc : 0;
}

/* Reads the manifest and config, then the layers into a->dir/rootfs, and
 * writes config.json beside it. */
static int build_image(struct arc *a, const struct img_import_opts *o, char *id)
{
    struct image im = {0};
    json_t *man = arc_json(a, "manifest.json", NULL, NULL), *cfg = NULL;
    int rc = 0;
    if (man) {
        rc = docker_pick(a, &im, man);
    } else if (a->err->code == -ENOENT) {
        *a->err = (struct wisp_err){0};
        json_t *index = arc_json(a, "index.json", NULL, NULL);
        if (!index && a->err->code == -ENOENT)
            rc = wisp_err_set(a->err, -EINVAL,
                              "neither an OCI image layout (index.json) nor a docker save "
                              "archive (manifest.json)");
        else
            rc = index ? oci_pick(a, &im, index, o->arch ? o->arch : go_arch(), 0)
                       : a->err->code;
        json_decref(index);
    } else {
        rc = a->err->code;
    }
    if (rc == 0 && !(cfg = arc_json(a, im.config_path, im.config_digest[0] ? im.config_digest : NULL, id)))
        rc = a->err->code ? a->err->code : -EINVAL;
    const json_t *diffs = json_object_get(json_object_get(cfg, "rootfs"), "diff_ids");
    if (rc == 0 && json_array_size(diffs) != im.nlayers)
        rc = wisp_err_set(a->err, -EINVAL, "the config lists %zu layers (diff_ids), the manifest %zu",
                          json_array_size(diffs), im.nlayers);
    struct img_config ic;
    if (rc == 0)
        rc = img_config_read(cfg, &ic, a->err);
    char p[PATH_MAX + 16];
    snprintf(p, sizeof p, "%s/rootfs", a->dir);
    struct tree root = {.root = -1, .as_root = geteuid() == 0, .dir_modes = json_object(),
                        .max = o->max_bytes, .err = a->err};
    if (rc == 0 && mkdir(p, 0755) < 0)
        rc = wisp_err_set(a->err, -errno, "%s: %s", p, strerror(errno));
    if (rc == 0 && (root.root = open_dir(p, a->err)) < 0)
        rc = root.root;
    for (size_t i = 0; rc == 0 && i < im.nlayers; i++)
        rc = unpack_layer(a, &root, &im.layers[i], i, json_string_value(json_array_get(diffs, i)));
    if (rc == 0)
        rc = tree_dir_modes(&root);
    if (rc == 0)
        rc = make_mountpoints(&root);
    if (rc == 0) {
        char *text = json_dumps(cfg, JSON_COMPACT);
        snprintf(p, sizeof p, "%s/config.json", a->dir);
        rc = text ? plat_write_file(p, text, strlen(text), 0644) : -ENOMEM;
        free(text);
        char sz[32];
        int n = snprintf(sz, sizeof sz, "%llu\n", (unsigned long long)root.bytes);
        snprintf(p, sizeof p, "%s/size", a->dir);
        if (rc == 0)
            rc = plat_write_file(p, sz, (size_t)n, 0644);
        if (rc < 0)
            wisp_err_set(a->err, rc, "cannot write the image's config: %s", strerror(-rc));
    }
    if (root.root >= 0)
        close(root.root);
    json_decref(root.seen);
    json_decref(root.dir_modes);
    json_decref(man);
    json_decref(cfg);
    free(im.layers);
    return rc;
}

int img_ref_parse(const char *ref, char *out, size_t cap, struct wisp_err *err)
{
    if (!ref || !*ref || strlen(ref) >= IMG_REF_MAX)
        return wisp_err_set(err, -EINVAL, "an image name is NAME[:TAG], up to %d characters",
                            IMG_REF_MAX - 1);
    if (strchr(ref, '@'))
        return wisp_err_set(err, -EINVAL, "image '%.100s': digests (@sha256:) are not supported; "
                            "name it NAME:TAG", ref);
    const char *last_slash = strrchr(ref, '/'), *colon = strrchr(ref, ':');
    if (colon && last_slash && colon < last_slash)
        colon = NULL; /* a registry's port */
    size_t nl = colon ? (size_t)(colon - ref) : strlen(ref);
    const char *tag = colon ? colon + 1 : "latest";
    size_t tl = strlen(tag);
    if (tl == 0 || tl > 128 || strspn(tag, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-") != tl ||
        tag[0] == '.' || tag[0] == '-')
        return wisp_err_set(err, -EINVAL, "image '%.100s': a tag is [A-Za-z0-9_.-], up to 128", ref);
    /* the first component may be a registry host[:port] */
    size_t first = strcspn(ref, "/");
    bool host = first < nl && (memchr(ref, '.', first) || memchr(ref, ':', first) ||
                               (first == 9 && memcmp(ref, "localhost", 9) == 0));
    for (size_t i = host ? first + 1 : 0; i < nl;) {
        size_t l = 0;
        while (i + l < nl && ref[i + l] != '/')
            l++;
        if (l == 0 || strspn(ref + i, "abcdefghijklmnopqrstuvwxyz0123456789._-") < l ||
            !((ref[i] >= 'a' && ref[i] <= 'z') || (ref[i] >= '0' && ref[i] <= '9')))
            return wisp_err_set(err, -EINVAL,
                                "image '%.100s': a name is lower-case [a-z0-9._-] parts "
                                "separated by /",
                                ref);
        i += l + 1;
    }
    if (host && strspn(ref, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-:") < first)
        return wisp_err_set(err, -EINVAL, "image '%.100s': bad registry host", ref);
    if (nl + 1 + tl + 1 > cap)
        return wisp_err_set(err, -ENAMETOOLONG, "image name too long");
    snprintf(out, cap, "%.*s:%s", (int)nl, ref, tag);
    return 0;
}

/* refs/<ref with '/' as %2F> */
static void ref_file(const char *data_dir, const char *ref, char *out, size_t cap)
{
    size_t o = (size_t)snprintf(out, cap, "%s/images/refs/", data_dir);
    for (const char *p = ref; *p && o + 4 < cap; p++) {
        if (*p == '/') {
            memcpy(out + o, "%2F", 3);
            o += 3;
        } else {
            out[o++] = *p;
        }
    }
    out[o < cap ? o : cap - 1] = '\0';
}

void img_sweep(const char *data_dir)
{
    char p[PATH_MAX];
    snprintf(p, sizeof p, "%s/images", data_dir);
    DIR *d = opendir(p);
    if (!d)
        return;
    for (struct dirent *de; (de = readdir(d));) {
        if (strncmp(de->d_name, ".tmp-", 5) == 0) {
            char q[PATH_MAX + 256];
            snprintf(q, sizeof q, "%s/%s", p, de->d_name);
            plat_rm_rf(q);
        }
    }
    closedir(d);
}

int img_import(const struct img_import_opts *o, char *id, struct wisp_err *err)
{
    char ref[IMG_REF_MAX], p[PATH_MAX], q[PATH_MAX + 128];
    int rc = img_ref_parse(o->ref, ref, sizeof ref, err);
    if (rc < 0)
        return rc;
    snprintf(p, sizeof p, "%s/images/refs", o->data_dir);
    if ((rc = plat_mkdir_p(p, 0755)) < 0)
        return wisp_err_set(err, rc, "%s: %s", p, strerror(-rc));
    struct arc *a = calloc(1, sizeof *a);
    if (!a)
        return wisp_err_set(err, -ENOMEM, "out of memory");
    a->err = err;
    a->t.root = -1;
    snprintf(a->dir, sizeof a->dir, "%s/images/.tmp-XXXXXX", o->data_dir);
    if (!mkdtemp(a->dir)) {
        rc = wisp_err_set(err, -errno, "%s: %s", a->dir, strerror(errno));
        a->dir[0] = '\0';
        goto out;
    }
    chmod(a->dir, 0755); /* containers' unprivileged users traverse it */
    uint64_t max = o->max_bytes ? o->max_bytes : (1ull << 30);
    if ((rc = unpack_archive(a, o->file, max)) < 0)
        goto out;
    if ((rc = build_image(a, o, id)) < 0)
        goto out;
    snprintf(q, sizeof q, "%s/archive", a->dir);
    plat_rm_rf(q);
    snprintf(p, sizeof p, "%s/images/%s", o->data_dir, id);
    if (rename(a->dir, p) < 0) {
        if (errno != EEXIST && errno != ENOTEMPTY) {
            rc = wisp_err_set(err, -errno, "%s: %s", p, strerror(errno));
            goto out;
        }
        /* the same image is there already (its id is its config's digest) */
    } else {
        a->dir[0] = '\0';
    }
    snprintf(q, sizeof q, "%s/images/refs/.tmp-ref-XXXXXX", o->data_dir);
    int fd = mkstemp(q);
    char line[IMG_ID_LEN + 2];
    snprintf(line, sizeof line, "%s\n", id);
    if (fd < 0 || write(fd, line, strlen(line)) != (ssize_t)strlen(line) || fsync(fd) < 0) {
        rc = wisp_err_set(err, -EIO, "cannot write the image's name");
    } else {
        fchmod(fd, 0644);
        ref_file(o->data_dir, ref, p, sizeof p);
        if (rename(q, p) < 0)
            rc = wisp_err_set(err, -errno, "cannot write the image's name: %s", strerror(errno));
    }
    if (fd >= 0)
        close(fd);
    if (rc < 0)
        unlink(q);
out:
    if (a->t.root >= 0)
        close(a->t.root);
    json_decref(a->t.links);
    json_decref(a->t.dir_modes);
    if (a->dir[0])
        plat_rm_rf(a->dir);
    free(a);
    return rc;
}

static int ref_id(const char *data_dir, const char *ref, char *id)
{
    char p[PATH_MAX], *text = NULL;
    size_t len = 0;
    ref_file(data_dir, ref, p, sizeof p);
    int rc = plat_read_file(p, 128, &text, &len);
    if (rc < 0)
        return rc;
    if (len < IMG_ID_LEN || strspn(text, "0123456789abcdef") != IMG_ID_LEN)
        rc = -EINVAL;
    else
        memcpy(id, text, IMG_ID_LEN), id[IMG_ID_LEN] = '\0';
    free(text);
    return rc;
}

int img_resolve(const char *data_dir, const char *ref, char *dir, size_t cap)
{
    char canon[IMG_REF_MAX], id[IMG_ID_LEN + 1];
    struct wisp_err e = {0};
    int rc = img_ref_parse(ref, canon, sizeof canon, &e);
    if (rc == 0)
        rc = ref_id(data_dir, canon, id);
    if (rc < 0)
        return rc == -EINVAL ? -EINVAL : -ENOENT;
    snprintf(dir, cap, "%s/images/%s", data_dir, id);
    char root[PATH_MAX + 16];
    snprintf(root, sizeof root, "%s/rootfs", dir);
    struct stat st;
    return stat(root, &st) == 0 && S_ISDIR(st.st_mode) ? 0 : -ENOENT;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The refs, unescaped and sorted (a NULL-terminated array to free). */
static char **ref_names(const char *data_dir, size_t *n)
{
    char p[PATH_MAX];
    snprintf(p, sizeof p, "%s/images/refs", data_dir);
    *n = 0;
    DIR *d = opendir(p);
    if (!d)
        return calloc(1, sizeof(char *));
    size_t cap = 16;
    char **v = calloc(cap, sizeof *v);
    for (struct dirent *de; v && (de = readdir(d));) {
        if (de->d_name[0] == '.')
            continue;
        if (*n + 2 > cap) {
            char **nv = realloc(v, (cap *= 2) * sizeof *v);
            if (!nv)
                break;
            v = nv;
        }
        char *s = strdup(de->d_name), *w = s;
        for (const char *r = de->d_name; s && *r; r++) {
            if (strncmp(r, "%2F", 3) == 0) {
                *w++ = '/';
                r += 2;
            } else {
                *w++ = *r;
            }
        }
        if (s) {
            *w = '\0';
            v[(*n)++] = s;
            v[*n] = NULL;
        }
    }
    closedir(d);
    if (v)
        qsort(v, *n, sizeof *v, cmp_str);
    return v;
}

static void free_names(char **v)
{
    for (size_t i = 0; v && v[i]; i++)
        free(v[i]);
    free(v);
}

int img_list(const char *data_dir, img_list_fn *fn, void *arg)
{
    size_t n;
    char **v = ref_names(data_dir, &n);
    if (!v)
        return -ENOMEM;
    for (size_t i = 0; i < n; i++) {
        char id[IMG_ID_LEN + 1], p[PATH_MAX + 128], *text = NULL;
        size_t len;
        if (ref_id(data_dir, v[i], id) < 0)
            continue;
        snprintf(p, sizeof p, "%s/images/%s/size", data_dir, id);
        uint64_t bytes = 0;
        if (plat_read_file(p, 64, &text, &len) == 0)
            bytes = strtoull(text, NULL, 10);
        free(text);
        fn(arg, v[i], id, bytes);
    }
    free_names(v);
    return 0;
}

int img_remove(const char *data_dir, const char *ref, struct wisp_err *err)
{
    char canon[IMG_REF_MAX], id[IMG_ID_LEN + 1], p[PATH_MAX];
    int rc = img_ref_parse(ref, canon, sizeof canon, err);
    if (rc < 0)
        return rc;
    if (ref_id(data_dir, canon, id) < 0)
        return wisp_err_set(err, -ENOENT, "no image %s", canon);
    ref_file(data_dir, canon, p, sizeof p);
    if (unlink(p) < 0)
        return wisp_err_set(err, -errno, "%s: %s", p, strerror(errno));
    size_t n;
    char **v = ref_names(data_dir, &n);
    bool used = false;
    for (size_t i = 0; v && i < n && !used; i++) {
        char other[IMG_ID_LEN + 1];
        used = ref_id(data_dir, v[i], other) == 0 && strcmp(other, id) == 0;
    }
    free_names(v);
    if (!used) { /* out of sight first: a half-removed image is never found */
        char from[PATH_MAX + 128], to[PATH_MAX + 128];
        snprintf(from, sizeof from, "%s/images/%s", data_dir, id);
        snprintf(to, sizeof to, "%s/images/.tmp-rm-%s", data_dir, id);
        if (rename(from, to) == 0)
            plat_rm_rf(to);
    }
    return 0;
}

int img_config_read(const json_t *doc, struct img_config *out, struct wisp_err *err)
{
    memset(out, 0, sizeof *out);
    if (!json_is_object(doc))
        return wisp_err_set(err, -EINVAL, "the image config is not a JSON object");
    const json_t *c = json_object_get(doc, "config");
    if (c && !json_is_object(c) && !json_is_null(c))
        return wisp_err_set(err, -EINVAL, "the image config's \"config\" is not an object");
    const char *os = wjson_str(doc, "os");
    if (os && strcmp(os, "linux") != 0)
        return wisp_err_set(err, -EINVAL, "the image is for %.40s, not linux", os);
    out->user = wjson_str(c, "User");
    out->workdir = wjson_str(c, "WorkingDir");
    const char *keys[] = {"Entrypoint", "Cmd", "Env"};
    const json_t **dst[] = {&out->entrypoint, &out->cmd, &out->env};
    for (size_t i = 0; i < 3; i++) {
        const json_t *v = json_object_get(c, keys[i]);
        if (!v || json_is_null(v))
            continue;
        if (!json_is_array(v))
            return wisp_err_set(err, -EINVAL, "the image config's %s is not a list", keys[i]);
        size_t k;
        const json_t *s;
        json_array_foreach(v, k, s) if (!json_is_string(s)) return wisp_err_set(
            err, -EINVAL, "the image config's %s holds a non-string", keys[i]);
        *dst[i] = v;
    }
    out->protocol = wjson_str(json_object_get(c, "Labels"), "io.wisp.protocol");
    if (out->protocol && strcmp(out->protocol, "actionloop") && strcmp(out->protocol, "http"))
        return wisp_err_set(err, -EINVAL,
                            "the image's label io.wisp.protocol is '%.40s' (actionloop or http)",
                            out->protocol);
    return 0;
}
