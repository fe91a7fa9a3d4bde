/* runtimes/native/unzip.c - a small, strict zip extractor (see unzip.h).
 *
 * The central directory is the truth: names, sizes, CRCs, methods and modes
 * come from it, because local headers may carry zero sizes (data
 * descriptors) and Unix modes exist only there. The local header is read
 * only to find where an entry's data starts; its own extra field may differ
 * in length from the central one.
 *
 * Two passes: the first checks every central record (bounds, features,
 * names, types, limits) without touching the directory, so an archive with
 * one bad entry leaves nothing behind; the second writes, and is where
 * deflate errors and CRC mismatches surface.
 *
 * Every offset read from the archive is checked against the buffer before
 * it is used, in 64-bit arithmetic so no sum of 32-bit fields can wrap. */
#define ZLIB_CONST
#include "unzip.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#define SIG_LOCAL 0x04034b50u
#define SIG_CENTRAL 0x02014b50u
#define SIG_END 0x06054b50u
#define SIG_END64_LOCATOR 0x07064b50u
#define END_LEN 22u
#define CENTRAL_LEN 46u
#define LOCAL_LEN 30u
#define HOST_UNIX 3u
#define FLAG_ENCRYPTED 0x0001u
#define FLAG_STRONG_ENCRYPTION 0x0040u
#define METHOD_STORED 0u
#define METHOD_DEFLATED 8u
#define CHUNK 65536u

struct entry {
    char name[PATH_MAX]; /* NUL-terminated; validated in pass 1 */
    char shown[96];      /* the name as it may appear in a message */
    uint16_t method;
    uint32_t crc;
    uint64_t csize, usize;
    uint64_t data_off; /* where the compressed bytes start */
    unsigned mode;     /* Unix mode bits, 0 when the archive has none */
    bool is_dir;
};

static uint16_t rd16(const uint8_t *p)
{
    return (uint16_t)(p[0] | p[1] << 8);
}

static uint32_t rd32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* True when [off, off + n) lies within a buffer of len bytes. */
static bool fits(uint64_t off, uint64_t n, uint64_t len)
{
    return off <= len && n <= len - off;
}

/* A name as it may appear in an error message (and so in JSON and logs):
 * printable ASCII only, shortened. */
static void show_name(const uint8_t *n, size_t len, char *out, size_t cap)
{
    size_t k = 0;
    for (size_t i = 0; i < len && k + 4 < cap; i++)
        out[k++] = n[i] >= 0x20 && n[i] < 0x7f && n[i] != '"' && n[i] != '\\' ? (char)n[i] : '?';
    if (k + 4 >= cap && len > k) {
        memcpy(out + k, "...", 3);
        k += 3;
    }
    out[k] = '\0';
}

/* Checks a name component by component: relative, no `..`, no backslash.
 * "." and empty components are dropped, so "./a//b" is "a/b". Writes the
 * normalised name (without a trailing slash) to e->name. 0, or -EPERM /
 * -EINVAL with err. */
static int check_name(const uint8_t *n, size_t len, struct entry *e, struct wisp_err *err)
{
    if (len == 0)
        return wisp_err_set(err, -EINVAL, "an entry has an empty name");
    if (len >= sizeof e->name)
        return wisp_err_set(err, -EINVAL, "entry '%s': name too long", e->shown);
    if (memchr(n, '\0', len))
        return wisp_err_set(err, -EINVAL, "entry '%s': NUL byte in its name", e->shown);
    if (memchr(n, '\\', len))
        return wisp_err_set(err, -EPERM, "entry '%s': backslash in its name", e->shown);
    if (n[0] == '/')
        return wisp_err_set(err, -EPERM, "entry '%s': absolute path", e->shown);
    size_t k = 0;
    for (size_t i = 0; i < len;) {
        size_t j = i;
        while (j < len && n[j] != '/')
            j++;
        size_t clen = j - i;
        if (clen == 2 && n[i] == '.' && n[i + 1] == '.')
            return wisp_err_set(err, -EPERM, "entry '%s': '..' leaves the action's directory",
                                e->shown);
        if (clen > 0 && !(clen == 1 && n[i] == '.')) {
            if (k > 0)
                e->name[k++] = '/';
            memcpy(e->name + k, n + i, clen);
            k += clen;
        }
        i = j + 1;
    }
    e->name[k] = '\0';
    return 0;
}

/* Reads the central record at *pos (advanced past it) into e and checks
 * everything that can be checked without writing. */
static int parse_entry(const uint8_t *zip, uint64_t cd_off, uint64_t cd_end, uint64_t *pos,
                       const struct unzip_limits *lim, struct entry *e, struct wisp_err *err)
{
    uint64_t p = *pos;
    if (!fits(p, CENTRAL_LEN, cd_end) || rd32(zip + p) != SIG_CENTRAL)
        return wisp_err_set(err, -EINVAL, "bad central directory record at offset %llu",
                            (unsigned long long)p);
    const uint8_t *c = zip + p;
    uint16_t made_by = rd16(c + 4), flags = rd16(c + 8);
    uint32_t csize = rd32(c + 20), usize = rd32(c + 24), local = rd32(c + 42);
    uint16_t nlen = rd16(c + 28), xlen = rd16(c + 30), clen = rd16(c + 32);
    uint16_t disk = rd16(c + 34);
    uint32_t ext_attr = rd32(c + 38);
    if (!fits(p + CENTRAL_LEN, (uint64_t)nlen + xlen + clen, cd_end))
        return wisp_err_set(err, -EINVAL,
                            "central directory record at offset %llu overruns "
                            "the directory",
                            (unsigned long long)p);
    *pos = p + CENTRAL_LEN + nlen + xlen + clen;
    const uint8_t *n = c + CENTRAL_LEN;
    *e =
        (struct entry){.method = rd16(c + 10), .crc = rd32(c + 16), .csize = csize, .usize = usize};
    show_name(n, nlen, e->shown, sizeof e->shown);

    if (csize == UINT32_MAX || usize == UINT32_MAX || local == UINT32_MAX || disk == UINT16_MAX)
        return wisp_err_set(err, -ENOTSUP, "entry '%s': zip64 archives are not supported",
                            e->shown);
    if (disk != 0)
        return wisp_err_set(err, -ENOTSUP, "entry '%s': multi-disk archives are not supported",
                            e->shown);
    if (flags & (FLAG_ENCRYPTED | FLAG_STRONG_ENCRYPTION))
        return wisp_err_set(err, -ENOTSUP, "entry '%s' is encrypted", e->shown);
    if (e->method != METHOD_STORED && e->method != METHOD_DEFLATED)
        return wisp_err_set(err, -ENOTSUP,
                            "entry '%s': compression method %u is not supported "
                            "(only stored and deflated)",
                            e->shown, e->method);
    if (e->method == METHOD_STORED && csize != usize)
        return wisp_err_set(err, -EINVAL, "entry '%s': stored with different sizes", e->shown);
    int rc = check_name(n, nlen, e, err);
    if (rc < 0)
        return rc;

    unsigned type = 0;
    if ((made_by >> 8) == HOST_UNIX) {
        e->mode = ext_attr >> 16;
        type = e->mode & S_IFMT;
    }
    if (type == S_IFLNK)
        return wisp_err_set(err, -EPERM, "entry '%s' is a symlink", e->shown);
    if (type != 0 && type != S_IFREG && type != S_IFDIR)
        return wisp_err_set(err, -EPERM, "entry '%s' is a special file", e->shown);
    e->is_dir = type == S_IFDIR || n[nlen - 1] == '/';
    if (e->is_dir && usize != 0)
        return wisp_err_set(err, -EINVAL, "directory entry '%s' has data", e->shown);
    if (!e->is_dir && e->name[0] == '\0')
        return wisp_err_set(err, -EINVAL, "entry '%s' names no file", e->shown);
    if (usize > lim->max_entry_bytes)
        return wisp_err_set(err, -EFBIG, "entry '%s' is too large: %u > %llu bytes", e->shown,
                            usize, (unsigned long long)lim->max_entry_bytes);

    /* The local header, only for where the data starts. */
    if (!fits(local, LOCAL_LEN, cd_off) || rd32(zip + local) != SIG_LOCAL)
        return wisp_err_set(err, -EINVAL, "entry '%s': bad local header offset", e->shown);
    if (rd16(zip + local + 6) & (FLAG_ENCRYPTED | FLAG_STRONG_ENCRYPTION))
        return wisp_err_set(err, -ENOTSUP, "entry '%s' is encrypted", e->shown);
    e->data_off = (uint64_t)local + LOCAL_LEN + rd16(zip + local + 26) + rd16(zip + local + 28);
    if (!fits(e->data_off, csize, cd_off))
        return wisp_err_set(err, -EINVAL, "entry '%s': data lies outside the archive", e->shown);
    return 0;
}

/* Finds the end-of-central-directory record and, from it, the central
 * directory. It sits at the end, before a comment of up to 64 KiB. */
static int find_directory(const uint8_t *zip, size_t len, const struct unzip_limits *lim,
                          uint64_t *cd_off, uint64_t *cd_end, unsigned *count, struct wisp_err *err)
{
    if (len < END_LEN)
        return wisp_err_set(err, -EINVAL, "not a zip file: %zu bytes", len);
    size_t lo = len - END_LEN > 0xffff ? len - END_LEN - 0xffff : 0;
    size_t end = SIZE_MAX;
    for (size_t i = len - END_LEN + 1; i-- > lo;) {
        if (rd32(zip + i) == SIG_END && i + END_LEN + rd16(zip + i + 20) <= len) {
            end = i;
            break;
        }
    }
    if (end == SIZE_MAX)
        return wisp_err_set(err, -EINVAL, "not a zip file: no end of central directory");
    const uint8_t *e = zip + end;
    uint16_t disk = rd16(e + 4), cd_disk = rd16(e + 6), here = rd16(e + 8), total = rd16(e + 10);
    uint32_t size = rd32(e + 12), off = rd32(e + 16);
    if ((end >= 20 && rd32(zip + end - 20) == SIG_END64_LOCATOR) || total == UINT16_MAX ||
        size == UINT32_MAX || off == UINT32_MAX)
        return wisp_err_set(err, -ENOTSUP, "zip64 archives are not supported");
    if (disk != 0 || cd_disk != 0 || here != total)
        return wisp_err_set(err, -ENOTSUP, "multi-disk archives are not supported");
    if (total > lim->max_entries)
        return wisp_err_set(err, -EFBIG, "too many entries: %u > %u", total, lim->max_entries);
    if (!fits(off, size, end))
        return wisp_err_set(err, -EINVAL, "the central directory lies outside the archive");
    *cd_off = off;
    *cd_end = (uint64_t)off + size;
    *count = total;
    return 0;
}

/* ==== writing ========================================================= */

static int write_all(int fd, const uint8_t *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0)
            return -errno;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* Opens (making it when missing) the directory holding e->name's last
 * component, and points *leaf at that component. Never follows a symlink:
 * nothing extracted is one, but the directory is not ours alone. */
static int open_parent(int dirfd, struct entry *e, const char **leaf, struct wisp_err *err)
{
    int cur = dirfd;
    char *s = e->name;
    for (char *slash; (slash = strchr(s, '/')); s = slash + 1) {
        *slash = '\0';
        if (mkdirat(cur, s, 0755) < 0 && errno != EEXIST) {
            int rc = -errno;
            *slash = '/';
            if (cur != dirfd)
                close(cur);
            return wisp_err_set(err, rc, "entry '%s': cannot make a directory: %s", e->shown,
                                strerror(-rc));
        }
        int next = openat(cur, s, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        int saved = errno;
        *slash = '/';
        if (cur != dirfd)
            close(cur);
        if (next < 0)
            return wisp_err_set(err, -saved, "entry '%s': a parent is not a directory: %s",
                                e->shown, strerror(saved));
        cur = next;
    }
    *leaf = s;
    return cur;
}

static int inflate_to(const uint8_t *in, const struct entry *e, int fd, uint8_t *out_buf,
                      uint32_t *crc, struct wisp_err *err)
{
    z_stream zs;
    memset(&zs, 0, sizeof zs);
    if (inflateInit2(&zs, -MAX_WBITS) != Z_OK)
        return wisp_err_set(err, -ENOMEM, "entry '%s': cannot start inflating", e->shown);
    zs.next_in = in;
    zs.avail_in = (uInt)e->csize;
    uint64_t total = 0;
    int rc = 0;
    for (;;) {
        zs.next_out = out_buf;
        zs.avail_out = CHUNK;
        int zrc = inflate(&zs, Z_NO_FLUSH);
        size_t got = CHUNK - zs.avail_out;
        if (zrc != Z_OK && zrc != Z_STREAM_END && !(zrc == Z_BUF_ERROR && got > 0)) {
            if (zrc == Z_BUF_ERROR)
                rc = wisp_err_set(err, -EINVAL, "entry '%s': the deflated data is truncated",
                                  e->shown);
            else
                rc = wisp_err_set(err, zrc == Z_MEM_ERROR ? -ENOMEM : -EINVAL,
                                  "entry '%s': bad deflated data (%s)", e->shown,
                                  zs.msg ? zs.msg : "inflate failed");
            break;
        }
        if (got > e->usize - total) {
            rc = wisp_err_set(err, -EINVAL,
                              "entry '%s' inflates beyond its declared size of "
                              "%llu bytes",
                              e->shown, (unsigned long long)e->usize);
            break;
        }
        total += got;
        *crc = (uint32_t)crc32(*crc, out_buf, (uInt)got);
        if ((rc = write_all(fd, out_buf, got)) < 0) {
            wisp_err_set(err, rc, "entry '%s': write: %s", e->shown, strerror(-rc));
            break;
        }
        if (zrc == Z_STREAM_END)
            break;
    }
    inflateEnd(&zs);
    if (rc == 0 && total != e->usize)
        rc = wisp_err_set(err, -EINVAL,
                          "entry '%s' inflates to %llu bytes, not the declared "
                          "%llu",
                          e->shown, (unsigned long long)total, (unsigned long long)e->usize);
    return rc;
}

static int extract(const uint8_t *zip, int dirfd, struct entry *e, uint8_t *buf,
                   struct unzip_stats *st, struct wisp_err *err)
{
    if (e->is_dir && e->name[0] == '\0')
        return 0; /* "./": the directory itself */
    const char *leaf = e->name;
    int parent = open_parent(dirfd, e, &leaf, err);
    if (parent < 0)
        return parent;
    int rc = 0;
    if (e->is_dir) {
        struct stat sb;
        if (mkdirat(parent, leaf, 0755) < 0 &&
            (errno != EEXIST || fstatat(parent, leaf, &sb, AT_SYMLINK_NOFOLLOW) < 0 ||
             !S_ISDIR(sb.st_mode)))
            rc = errno == EEXIST
                     ? wisp_err_set(err, -EEXIST, "entry '%s' appears twice", e->shown)
                     : wisp_err_set(err, -errno, "entry '%s': cannot make a directory: %s",
                                    e->shown, strerror(errno));
        else
            st->dirs++;
        goto out;
    }
    unsigned mode = (e->mode & 0111) ? 0755 : 0644;
    int fd = openat(parent, leaf, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode);
    if (fd < 0) {
        rc = errno == EEXIST ? wisp_err_set(err, -EEXIST, "entry '%s' appears twice", e->shown)
                             : wisp_err_set(err, -errno, "entry '%s': cannot create: %s", e->shown,
                                            strerror(errno));
        goto out;
    }
    uint32_t crc = (uint32_t)crc32(0, NULL, 0);
    const uint8_t *data = zip + e->data_off;
    if (e->method == METHOD_DEFLATED) {
        rc = inflate_to(data, e, fd, buf, &crc, err);
    } else {
        for (uint64_t done = 0; done < e->usize && rc == 0;) {
            size_t n = e->usize - done > CHUNK ? CHUNK : (size_t)(e->usize - done);
            crc = (uint32_t)crc32(crc, data + done, (uInt)n);
            if ((rc = write_all(fd, data + done, n)) < 0)
                wisp_err_set(err, rc, "entry '%s': write: %s", e->shown, strerror(-rc));
            done += n;
        }
    }
    /* the mode asked for at creation went through the umask */
    if (rc == 0 && fchmod(fd, mode) < 0)
        rc = wisp_err_set(err, -errno, "entry '%s': chmod: %s", e->shown, strerror(errno));
    if (close(fd) < 0 && rc == 0)
        rc = wisp_err_set(err, -errno, "entry '%s': close: %s", e->shown, strerror(errno));
    if (rc == 0 && crc != e->crc)
        rc = wisp_err_set(err, -EINVAL, "entry '%s': CRC mismatch (corrupt archive)", e->shown);
    if (rc == 0) {
        st->files++;
        st->bytes += e->usize;
    }
out:
    if (parent != dirfd)
        close(parent);
    return rc;
}

int unzip_to_dir(const uint8_t *zip, size_t len, int dirfd, const struct unzip_limits *lim,
                 struct unzip_stats *stats, struct wisp_err *err)
{
    static const struct unzip_limits defaults = {
        .max_total_bytes = UNZIP_MAX_TOTAL_BYTES,
        .max_entry_bytes = UNZIP_MAX_ENTRY_BYTES,
        .max_entries = UNZIP_MAX_ENTRIES,
    };
    struct unzip_stats dummy;
    lim = lim ? lim : &defaults;
    stats = stats ? stats : &dummy;
    *stats = (struct unzip_stats){0};
    uint64_t cd_off = 0, cd_end = 0;
    unsigned count = 0;
    int rc = find_directory(zip, len, lim, &cd_off, &cd_end, &count, err);
    if (rc < 0)
        return rc;
    /* an entry holds PATH_MAX of name: off the stack, with the output buffer */
    struct work {
        struct entry e;
        uint8_t buf[CHUNK];
    } *w = malloc(sizeof *w);
    if (!w)
        return wisp_err_set(err, -ENOMEM, "out of memory");
    uint64_t pos = cd_off, total = 0;
    for (unsigned i = 0; i < count && rc == 0; i++) {
        if ((rc = parse_entry(zip, cd_off, cd_end, &pos, lim, &w->e, err)) < 0)
            break;
        total += w->e.usize;
        if (total > lim->max_total_bytes)
            rc = wisp_err_set(err, -EFBIG, "the archive expands to more than %llu bytes",
                              (unsigned long long)lim->max_total_bytes);
    }
    pos = cd_off;
    for (unsigned i = 0; i < count && rc == 0; i++) {
        if ((rc = parse_entry(zip, cd_off, cd_end, &pos, lim, &w->e, err)) == 0)
            rc = extract(zip, dirfd, &w->e, w->buf, stats, err);
    }
    free(w);
    return rc;
}
