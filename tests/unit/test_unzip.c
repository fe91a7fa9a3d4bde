/* Unit tests: runtimes/native/unzip.c, the extractor behind zipped native
 * actions. Archives are built here byte by byte (deflate from zlib), so a
 * test can make exactly the malformed or hostile archive it needs; each is
 * extracted into a fresh temporary directory and the result is read back
 * from the file system. */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "check.h"
#include "plat.h"
#include "unzip.h"

/* ==== a small zip writer ============================================== */

struct zent {
    const char *name;
    const void *data;
    size_t len;
    bool deflate;
    unsigned mode;          /* Unix mode for the external attributes; 0: a DOS entry */
    uint16_t flags;         /* general purpose flags as written */
    int method;             /* overrides 0/8 when nonzero */
    bool descriptor;        /* sizes and CRC after the data, zeros in the local header */
    uint32_t crc_xor;       /* corrupts the stored CRC */
    int64_t usize_override; /* >= 0: the declared uncompressed size */
};

struct zbuf {
    uint8_t *p;
    size_t len, cap;
    size_t central[16]; /* offsets of the central records */
    size_t end;         /* offset of the end record */
};

static void put(struct zbuf *b, const void *d, size_t n)
{
    if (n == 0)
        return;
    if (b->len + n > b->cap) {
        b->cap = (b->len + n) * 2 + 256;
        b->p = realloc(b->p, b->cap);
        if (!b->p)
            abort();
    }
    memcpy(b->p + b->len, d, n);
    b->len += n;
}

static void put16(struct zbuf *b, unsigned v)
{
    uint8_t x[2] = {(uint8_t)v, (uint8_t)(v >> 8)};
    put(b, x, 2);
}

static void put32(struct zbuf *b, uint32_t v)
{
    uint8_t x[4] = {(uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24)};
    put(b, x, 4);
}

static void set32(struct zbuf *b, size_t off, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        b->p[off + (size_t)i] = (uint8_t)(v >> (8 * i));
}

static void set16(struct zbuf *b, size_t off, unsigned v)
{
    b->p[off] = (uint8_t)v;
    b->p[off + 1] = (uint8_t)(v >> 8);
}

static uint8_t *deflate_raw(const void *in, size_t len, size_t *out_len)
{
    z_stream zs;
    memset(&zs, 0, sizeof zs);
    if (deflateInit2(&zs, 9, Z_DEFLATED, -MAX_WBITS, 8, Z_DEFAULT_STRATEGY) != Z_OK)
        abort();
    size_t cap = deflateBound(&zs, (uLong)len) + 16;
    uint8_t *out = malloc(cap);
    zs.next_in = (Bytef *)(uintptr_t)in;
    zs.avail_in = (uInt)len;
    zs.next_out = out;
    zs.avail_out = (uInt)cap;
    if (!out || deflate(&zs, Z_FINISH) != Z_STREAM_END)
        abort();
    *out_len = cap - zs.avail_out;
    deflateEnd(&zs);
    return out;
}

/* Builds an archive of n entries; comment is appended after the end record. */
static struct zbuf zip_build(const struct zent *e, size_t n, const char *comment)
{
    struct zbuf b = {0};
    size_t local[16];
    uint32_t crcs[16];
    size_t csizes[16];
    for (size_t i = 0; i < n; i++) {
        size_t clen = e[i].len;
        uint8_t *comp = NULL;
        const void *data = e[i].data;
        if (e[i].deflate) {
            comp = deflate_raw(e[i].data, e[i].len, &clen);
            data = comp;
        }
        crcs[i] = (uint32_t)crc32(0, e[i].data, (uInt)e[i].len) ^ e[i].crc_xor;
        csizes[i] = clen;
        uint16_t flags = e[i].flags | (e[i].descriptor ? 0x08 : 0);
        uint32_t usize =
            e[i].usize_override >= 0 ? (uint32_t)e[i].usize_override : (uint32_t)e[i].len;
        local[i] = b.len;
        put32(&b, 0x04034b50);
        put16(&b, 20);
        put16(&b, flags);
        put16(&b, e[i].method ? (unsigned)e[i].method : e[i].deflate ? 8 : 0);
        put16(&b, 0);
        put16(&b, 0x21);
        put32(&b, e[i].descriptor ? 0 : crcs[i]);
        put32(&b, e[i].descriptor ? 0 : (uint32_t)clen);
        put32(&b, e[i].descriptor ? 0 : usize);
        put16(&b, (unsigned)strlen(e[i].name));
        put16(&b, 4); /* an extra field the central record does not have */
        put(&b, e[i].name, strlen(e[i].name));
        put(&b, "\xfe\xca\0\0", 4);
        put(&b, data, clen);
        if (e[i].descriptor) {
            put32(&b, 0x08074b50);
            put32(&b, crcs[i]);
            put32(&b, (uint32_t)clen);
            put32(&b, usize);
        }
        free(comp);
    }
    size_t cd = b.len;
    for (size_t i = 0; i < n; i++) {
        uint32_t usize =
            e[i].usize_override >= 0 ? (uint32_t)e[i].usize_override : (uint32_t)e[i].len;
        b.central[i] = b.len;
        put32(&b, 0x02014b50);
        put16(&b, e[i].mode ? (3u << 8 | 20) : 20);
        put16(&b, 20);
        put16(&b, e[i].flags | (e[i].descriptor ? 0x08 : 0));
        put16(&b, e[i].method ? (unsigned)e[i].method : e[i].deflate ? 8 : 0);
        put16(&b, 0);
        put16(&b, 0x21);
        put32(&b, crcs[i]);
        put32(&b, (uint32_t)csizes[i]);
        put32(&b, usize);
        put16(&b, (unsigned)strlen(e[i].name));
        put16(&b, 0);
        put16(&b, 0);
        put16(&b, 0);
        put16(&b, 0);
        put32(&b, (uint32_t)e[i].mode << 16);
        put32(&b, (uint32_t)local[i]);
        put(&b, e[i].name, strlen(e[i].name));
    }
    size_t cd_size = b.len - cd;
    b.end = b.len;
    put32(&b, 0x06054b50);
    put16(&b, 0);
    put16(&b, 0);
    put16(&b, (unsigned)n);
    put16(&b, (unsigned)n);
    put32(&b, (uint32_t)cd_size);
    put32(&b, (uint32_t)cd);
    put16(&b, comment ? (unsigned)strlen(comment) : 0);
    if (comment)
        put(&b, comment, strlen(comment));
    return b;
}

/* ==== a scratch directory ============================================= */

struct scratch {
    char path[64];
    int fd;
};

static void scratch_open(struct scratch *s)
{
    snprintf(s->path, sizeof s->path, "/tmp/wisp-unzip-XXXXXX");
    if (!mkdtemp(s->path))
        abort();
    s->fd = open(s->path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (s->fd < 0)
        abort();
}

static void scratch_close(struct scratch *s)
{
    close(s->fd);
    plat_rm_rf(s->path);
}

/* How many of the names the tests use exist at the top of the directory. */
static int scratch_count(struct scratch *s)
{
    int n = 0;
    struct stat st;
    const char *names[] = {"exec", "a", "x", "lib", "etc", "data", "b", "n", "f"};
    for (size_t i = 0; i < WISP_ARRAY_LEN(names); i++)
        n += fstatat(s->fd, names[i], &st, AT_SYMLINK_NOFOLLOW) == 0;
    return n;
}

static bool file_is(struct scratch *s, const char *name, const char *want, unsigned mode)
{
    char path[128];
    snprintf(path, sizeof path, "%s/%s", s->path, name);
    char *got = NULL;
    size_t len = 0;
    struct stat st;
    bool ok = plat_read_file(path, 1 << 24, &got, &len) == 0 && len == strlen(want) &&
              memcmp(got, want, len) == 0 && stat(path, &st) == 0 && (st.st_mode & 07777) == mode &&
              S_ISREG(st.st_mode);
    if (!ok)
        fprintf(stderr, "  %s: got %zu bytes, mode %o\n", name, len,
                stat(path, &st) == 0 ? (unsigned)st.st_mode : 0u);
    free(got);
    return ok;
}

/* Extracts into a fresh directory (s) and returns the code, err filled. */
static int try_zip(const struct zbuf *b, size_t len, const struct unzip_limits *lim,
                   struct scratch *s, struct wisp_err *err)
{
    scratch_open(s);
    *err = (struct wisp_err){0};
    return unzip_to_dir(b->p, len, s->fd, lim, NULL, err);
}

#define ENT(n, d)                                                                                  \
    {                                                                                              \
        .name = (n), .data = (d), .len = sizeof(d) - 1, .usize_override = -1                       \
    }

/* One entry expected to be refused with code and a message containing part;
 * nothing may have been written. */
static void expect_refused(const struct zent *e, size_t n, int code, const char *part)
{
    struct zbuf b = zip_build(e, n, NULL);
    struct scratch s;
    struct wisp_err err;
    int rc = try_zip(&b, b.len, NULL, &s, &err);
    CHECK_EQ_INT(rc, code);
    if (!strstr(err.msg, part))
        fprintf(stderr, "  message '%s' lacks '%s'\n", err.msg, part);
    CHECK(strstr(err.msg, part) != NULL);
    CHECK_EQ_INT(scratch_count(&s), 0);
    scratch_close(&s);
    free(b.p);
}

/* ==== tests =========================================================== */

static const char SCRIPT[] = "#!/bin/sh\necho hi\n";
static const char TEXT[] = "some data, some data, some data, some data, some data\n";

static void unzip_extracts_stored_and_deflated_with_modes(void)
{
    struct zent e[] = {
        {.name = "exec",
         .data = SCRIPT,
         .len = sizeof SCRIPT - 1,
         .deflate = true,
         .mode = 0100755,
         .usize_override = -1},
        {.name = "lib/", .mode = 040755, .usize_override = -1},
        {.name = "lib/data.txt",
         .data = TEXT,
         .len = sizeof TEXT - 1,
         .mode = 0100600,
         .usize_override = -1},
        {.name = "a/b/c.sh",
         .data = SCRIPT,
         .len = sizeof SCRIPT - 1,
         .deflate = true,
         .mode = 0100700,
         .descriptor = true,
         .usize_override = -1},
        ENT("x", ""), /* DOS entry, no mode, empty */
    };
    struct zbuf b = zip_build(e, WISP_ARRAY_LEN(e), "a comment");
    struct scratch s;
    scratch_open(&s);
    struct wisp_err err = {0};
    struct unzip_stats st;
    CHECK_EQ_INT(unzip_to_dir(b.p, b.len, s.fd, NULL, &st, &err), 0);
    CHECK_STREQ(err.msg, "");
    CHECK(file_is(&s, "exec", SCRIPT, 0755));
    CHECK(file_is(&s, "lib/data.txt", TEXT, 0644));
    CHECK(file_is(&s, "a/b/c.sh", SCRIPT, 0755));
    CHECK(file_is(&s, "x", "", 0644));
    CHECK_EQ_INT(st.files, 4);
    CHECK_EQ_INT(st.dirs, 1);
    CHECK_EQ_INT(st.bytes, 2 * (sizeof SCRIPT - 1) + sizeof TEXT - 1);
    scratch_close(&s);
    free(b.p);
}

static void unzip_normalises_dot_components(void)
{
    struct zent e[] = {ENT("./", ""), ENT("./a//b.txt", "b"), ENT("a/./c.txt", "c")};
    e[0].mode = 040755;
    struct zbuf b = zip_build(e, 3, NULL);
    struct scratch s;
    struct wisp_err err;
    CHECK_EQ_INT(try_zip(&b, b.len, NULL, &s, &err), 0);
    CHECK(file_is(&s, "a/b.txt", "b", 0644));
    CHECK(file_is(&s, "a/c.txt", "c", 0644));
    scratch_close(&s);
    free(b.p);
}

static void unzip_refuses_paths_outside(void)
{
    struct zent e1[] = {ENT("../x", "x")};
    expect_refused(e1, 1, -EPERM, "'..'");
    struct zent e2[] = {ENT("exec", "ok"), ENT("a/../../x", "x")};
    expect_refused(e2, 2, -EPERM, "'..'");
    struct zent e3[] = {ENT("/etc/x", "x")};
    expect_refused(e3, 1, -EPERM, "absolute");
    struct zent e4[] = {ENT("a\\..\\..\\x", "x")};
    expect_refused(e4, 1, -EPERM, "backslash");
    struct zent e5[] = {ENT("..", "")};
    expect_refused(e5, 1, -EPERM, "'..'");
}

static void unzip_refuses_symlinks_and_special_files(void)
{
    struct zent e[] = {ENT("exec", "/bin/sh")};
    e[0].mode = 0120777;
    expect_refused(e, 1, -EPERM, "symlink");
    e[0].mode = 010644; /* a FIFO */
    expect_refused(e, 1, -EPERM, "special file");
}

static void unzip_refuses_encryption_and_other_methods(void)
{
    struct zent e[] = {ENT("exec", "secret")};
    e[0].flags = 1;
    expect_refused(e, 1, -ENOTSUP, "encrypted");
    e[0].flags = 0;
    e[0].method = 12; /* bzip2 */
    expect_refused(e, 1, -ENOTSUP, "method 12");
}

static void unzip_refuses_zip64(void)
{
    struct zent e[] = {ENT("exec", "x")};
    struct zbuf b = zip_build(e, 1, NULL);
    struct scratch s;
    struct wisp_err err;
    set32(&b, b.central[0] + 20, UINT32_MAX); /* csize in the zip64 extra */
    CHECK_EQ_INT(try_zip(&b, b.len, NULL, &s, &err), -ENOTSUP);
    CHECK(strstr(err.msg, "zip64") != NULL);
    scratch_close(&s);
    free(b.p);
    b = zip_build(e, 1, NULL);
    set16(&b, b.end + 10, 0xffff); /* entry count in the zip64 end record */
    CHECK_EQ_INT(try_zip(&b, b.len, NULL, &s, &err), -ENOTSUP);
    CHECK(strstr(err.msg, "zip64") != NULL);
    scratch_close(&s);
    free(b.p);
}

static void unzip_refuses_crc_mismatch(void)
{
    struct zent e[] = {ENT("exec", "payload")};
    e[0].crc_xor = 1;
    struct zbuf b = zip_build(e, 1, NULL);
    struct scratch s;
    struct wisp_err err;
    CHECK_EQ_INT(try_zip(&b, b.len, NULL, &s, &err), -EINVAL);
    CHECK(strstr(err.msg, "CRC") != NULL);
    scratch_close(&s);
    free(b.p);
    e[0].deflate = true;
    b = zip_build(e, 1, NULL);
    CHECK_EQ_INT(try_zip(&b, b.len, NULL, &s, &err), -EINVAL);
    CHECK(strstr(err.msg, "CRC") != NULL);
    scratch_close(&s);
    free(b.p);
}

static void unzip_enforces_limits(void)
{
    static char big[4096];
    memset(big, 'z', sizeof big);
    struct zent e[] = {
        {.name = "exec", .data = big, .len = sizeof big, .deflate = true, .usize_override = -1},
        {.name = "more", .data = big, .len = 3000, .usize_override = -1}};
    struct zbuf b = zip_build(e, 2, NULL);
    struct scratch s;
    struct wisp_err err;
    struct unzip_limits lim = {
        .max_total_bytes = 1 << 20, .max_entry_bytes = 4000, .max_entries = 10};
    CHECK_EQ_INT(try_zip(&b, b.len, &lim, &s, &err), -EFBIG);
    CHECK(strstr(err.msg, "'exec' is too large") != NULL);
    CHECK_EQ_INT(scratch_count(&s), 0);
    scratch_close(&s);
    lim = (struct unzip_limits){
        .max_total_bytes = 7000, .max_entry_bytes = 1 << 20, .max_entries = 10};
    CHECK_EQ_INT(try_zip(&b, b.len, &lim, &s, &err), -EFBIG);
    CHECK(strstr(err.msg, "more than 7000 bytes") != NULL);
    CHECK_EQ_INT(scratch_count(&s), 0);
    scratch_close(&s);
    lim = (struct unzip_limits){
        .max_total_bytes = 1 << 20, .max_entry_bytes = 1 << 20, .max_entries = 1};
    CHECK_EQ_INT(try_zip(&b, b.len, &lim, &s, &err), -EFBIG);
    CHECK(strstr(err.msg, "too many entries") != NULL);
    scratch_close(&s);
    lim.max_entries = 2;
    CHECK_EQ_INT(try_zip(&b, b.len, &lim, &s, &err), 0);
    scratch_close(&s);
    free(b.p);
}

/* A deflate stream that expands beyond its declared size is cut off there. */
static void unzip_stops_at_the_declared_size(void)
{
    static char big[1 << 16];
    memset(big, 'z', sizeof big);
    struct zent e[] = {
        {.name = "exec", .data = big, .len = sizeof big, .deflate = true, .usize_override = 100}};
    struct zbuf b = zip_build(e, 1, NULL);
    struct scratch s;
    struct wisp_err err;
    CHECK_EQ_INT(try_zip(&b, b.len, NULL, &s, &err), -EINVAL);
    CHECK(strstr(err.msg, "beyond its declared size") != NULL);
    struct stat st;
    CHECK(fstatat(s.fd, "exec", &st, 0) == 0 && st.st_size <= 100);
    scratch_close(&s);
    free(b.p);
    /* and one that is shorter than declared */
    e[0].usize_override = sizeof big + 1;
    b = zip_build(e, 1, NULL);
    CHECK_EQ_INT(try_zip(&b, b.len, NULL, &s, &err), -EINVAL);
    CHECK(strstr(err.msg, "not the declared") != NULL);
    scratch_close(&s);
    free(b.p);
}

static void unzip_refuses_duplicates_and_file_parents(void)
{
    struct zent e1[] = {ENT("exec", "one"), ENT("exec", "two")};
    struct zbuf b = zip_build(e1, 2, NULL);
    struct scratch s;
    struct wisp_err err;
    CHECK_EQ_INT(try_zip(&b, b.len, NULL, &s, &err), -EEXIST);
    CHECK(strstr(err.msg, "twice") != NULL);
    CHECK(file_is(&s, "exec", "one", 0644)); /* the first stays */
    scratch_close(&s);
    free(b.p);
    struct zent e2[] = {ENT("f", "file"), ENT("f/g", "under a file")};
    b = zip_build(e2, 2, NULL);
    CHECK_EQ_INT(try_zip(&b, b.len, NULL, &s, &err), -ENOTDIR);
    scratch_close(&s);
    free(b.p);
    struct zent e3[] = {ENT("d/", "data")};
    expect_refused(e3, 1, -EINVAL, "has data");
}

static void unzip_refuses_what_is_not_a_zip(void)
{
    struct zbuf b = {.p = (uint8_t *)"#!/bin/sh\necho not a zip at all\n"};
    struct scratch s;
    struct wisp_err err;
    CHECK_EQ_INT(try_zip(&b, strlen((char *)b.p), NULL, &s, &err), -EINVAL);
    CHECK(strstr(err.msg, "not a zip") != NULL);
    scratch_close(&s);
    CHECK_EQ_INT(try_zip(&b, 0, NULL, &s, &err), -EINVAL);
    scratch_close(&s);
    /* an empty archive is a zip: nothing in it */
    b = zip_build(NULL, 0, NULL);
    CHECK_EQ_INT(try_zip(&b, b.len, NULL, &s, &err), 0);
    CHECK_EQ_INT(scratch_count(&s), 0);
    scratch_close(&s);
    free(b.p);
}

/* Every strict prefix of an archive lacks its end record; every single-byte
 * change is either refused or extracted, never read out of bounds (ASan). */
static void unzip_survives_truncation_and_corruption(void)
{
    struct zent e[] = {{.name = "exec",
                        .data = SCRIPT,
                        .len = sizeof SCRIPT - 1,
                        .deflate = true,
                        .mode = 0100755,
                        .usize_override = -1},
                       ENT("d/t", "text")};
    struct zbuf b = zip_build(e, 2, NULL);
    struct scratch s;
    struct wisp_err err;
    for (size_t n = 0; n < b.len; n++) {
        int rc = try_zip(&b, n, NULL, &s, &err);
        if (rc == 0)
            fprintf(stderr, "  prefix of %zu bytes extracted\n", n);
        CHECK(rc < 0);
        scratch_close(&s);
    }
    unsigned refused = 0;
    for (size_t i = 0; i < b.len; i++) {
        uint8_t saved = b.p[i];
        b.p[i] ^= 0x5a;
        refused += try_zip(&b, b.len, NULL, &s, &err) < 0;
        scratch_close(&s);
        b.p[i] = saved;
    }
    CHECK(refused > b.len / 2); /* most bytes matter: CRCs, offsets, signatures */
    free(b.p);
}

int main(int argc, char **argv)
{
    umask(022);
    static const struct check_test tests[] = {
        {"unzip_extracts_stored_and_deflated_with_modes",
         unzip_extracts_stored_and_deflated_with_modes},
        {"unzip_normalises_dot_components", unzip_normalises_dot_components},
        {"unzip_refuses_paths_outside", unzip_refuses_paths_outside},
        {"unzip_refuses_symlinks_and_special_files", unzip_refuses_symlinks_and_special_files},
        {"unzip_refuses_encryption_and_other_methods", unzip_refuses_encryption_and_other_methods},
        {"unzip_refuses_zip64", unzip_refuses_zip64},
        {"unzip_refuses_crc_mismatch", unzip_refuses_crc_mismatch},
        {"unzip_enforces_limits", unzip_enforces_limits},
        {"unzip_stops_at_the_declared_size", unzip_stops_at_the_declared_size},
        {"unzip_refuses_duplicates_and_file_parents", unzip_refuses_duplicates_and_file_parents},
        {"unzip_refuses_what_is_not_a_zip", unzip_refuses_what_is_not_a_zip},
        {"unzip_survives_truncation_and_corruption", unzip_survives_truncation_and_corruption},
    };
    return check_run(tests, WISP_ARRAY_LEN(tests), argc, argv);
}
