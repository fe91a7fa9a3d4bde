/* platform/plat.h - the OS facade: clocks, random bytes, ids, files.
 * Every fd created here is close-on-exec. Nothing here blocks on the network;
 * the file helpers do small synchronous file I/O and are meant for start-up
 * and for the offline admin tool, never for the request path. */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "wisp.h"

/* Milliseconds since the Unix epoch (wall clock). */
int64_t plat_clock_real_ms(void);
/* Microseconds from a monotonic clock (for durations and timers). */
int64_t plat_clock_mono_us(void);

/* Fills buf with len bytes from the kernel CSPRNG. 0 or -errno. */
int plat_rand_bytes(void *buf, size_t len) WISP_MUST_CHECK;
/* Lowercase hex of len bytes into out (2*len+1 bytes incl. NUL). */
void plat_hex(const void *bytes, size_t len, char *out);
/* Decodes 2 * len hex digits (either case) into out. False on a non-digit. */
bool plat_unhex(const char *hex, size_t len, unsigned char *out);
/* FNV-1a (64-bit) of len bytes: a fast, stable, non-cryptographic hash. */
static inline uint64_t plat_fnv1a64(const void *p, size_t len)
{
    const unsigned char *b = p;
    uint64_t h = 14695981039346656037ull;
    for (size_t i = 0; i < len; i++)
        h = (h ^ b[i]) * 1099511628211ull;
    return h;
}
/* The n-byte (n <= 8) big-endian unsigned integer at p, and its inverse. */
static inline uint64_t plat_be_get(const void *p, size_t n)
{
    const unsigned char *b = p;
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++)
        v = v << 8 | b[i];
    return v;
}
static inline void plat_be_put(void *p, uint64_t v, size_t n)
{
    unsigned char *b = p;
    for (size_t i = n; i-- > 0; v >>= 8)
        b[i] = (unsigned char)v;
}
/* A random RFC 4122 version-4 UUID, 36 chars + NUL. 0 or -errno. */
int plat_uuid4(char out[37]) WISP_MUST_CHECK;
/* Constant-time comparison of two equal-length buffers. */
bool plat_ct_equal(const void *a, const void *b, size_t len);

/* mkdir -p with mode for new components. 0 or -errno. */
int plat_mkdir_p(const char *path, unsigned mode) WISP_MUST_CHECK;
/* Reads a whole regular file of at most max bytes; *out is NUL-terminated
 * and freed by the caller with free(). -E2BIG when larger. */
int plat_read_file(const char *path, size_t max, char **out, size_t *len) WISP_MUST_CHECK;
/* Reads a kernel pseudo-file (/proc, /sys: sizes they do not report) into
 * buf, NUL-terminated, at most cap - 1 bytes. The length or -errno. */
int plat_read_pseudo(const char *path, char *buf, size_t cap) WISP_MUST_CHECK;
/* This process's resident set now and at its peak (VmRSS, VmHWM of
 * /proc/self/status), in bytes; 0 where unknown. */
void plat_self_rss(uint64_t *now, uint64_t *peak);
/* Takes an exclusive lock (flock) on path, created 0600, and writes this
 * process's pid in it; held while *fd stays open (close-on-exec, so workers
 * do not carry it). 0; -EWOULDBLOCK when another process holds it, with
 * *holder the pid it wrote (0 if unreadable); or -errno. */
int plat_lock_pidfile(const char *path, int *fd, long *holder) WISP_MUST_CHECK;
/* Raises the soft limit of open files to the hard limit (start-up). The
 * soft limit now, or -errno. */
long plat_raise_nofile(void);
/* Writes data to path (created or truncated) without syncing: for files
 * that need not survive a crash, such as a worker's program. 0 or -errno. */
int plat_write_file_fast(const char *path, const void *data, size_t len, unsigned mode)
    WISP_MUST_CHECK;
/* A growing byte buffer; zero-initialize, release with plat_buf_fini. */
struct plat_buf {
    char *data;
    size_t len, cap;
};
/* Appends n bytes (keeping room for a terminating NUL). 0 or -ENOMEM. */
int plat_buf_add(struct plat_buf *b, const void *p, size_t n) WISP_MUST_CHECK;
int plat_buf_grow(struct plat_buf *b, size_t n) WISP_MUST_CHECK; /* plat_buf_reserve's slow path */
/* Room for n more bytes (and the NUL) at b->data + b->len. 0 or -ENOMEM. */
static inline int plat_buf_reserve(struct plat_buf *b, size_t n)
{
    return b->len + n + 1 <= b->cap ? 0 : plat_buf_grow(b, n);
}
void plat_buf_fini(struct plat_buf *b);
/* For a buffer reused across calls: releases it once it has grown past
 * 1 MB, so it keeps a usual size rather than the largest ever needed. */
void plat_buf_trim(struct plat_buf *b);

/* Decodes standard base64 (padding optional, no whitespace). False when the
 * input is not base64 or out is too small; *outlen gets the decoded size. */
bool plat_base64_decode(const char *in, size_t len, unsigned char *out, size_t cap,
                        size_t *outlen);
/* True when uid/gid may reach path: search permission on every directory
 * from / down to path itself. */
bool plat_path_reachable(const char *path, unsigned uid, unsigned gid);
/* snprintf(dst, cap, "%s", src) without the format machinery (names are
 * copied on every event): truncates, always terminates when cap > 0, and
 * returns strlen(src). */
size_t plat_strcpy(char *dst, size_t cap, const char *src);
/* snprintf(dst, cap, "%s%c%s", a, sep, b), the same way; returns the
 * length the whole would have. */
size_t plat_strjoin(char *dst, size_t cap, const char *a, char sep, const char *b);
/* Copies a regular file to to (created with mode, or truncated), in
 * pieces; with sync, to is fsynced before it is closed. 0 or -errno. */
int plat_copy_file(const char *from, const char *to, unsigned mode, bool sync) WISP_MUST_CHECK;
/* Removes a directory tree without following symlinks. Best effort. */
void plat_rm_rf(const char *path);
/* Writes data to path atomically (temp file, fsync, rename, fsync dir). */
int plat_write_file(const char *path, const void *data, size_t len, unsigned mode) WISP_MUST_CHECK;
