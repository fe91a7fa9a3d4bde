/* runtimes/native/unzip.h - extracts a zip archive held in memory into a
 * directory, for zipped native actions.
 *
 * The archive is untrusted input (an action's code): every read is bounds-
 * checked against the buffer, and anything that could write outside the
 * directory or outgrow the limits is refused before a byte of it is written.
 * Supported: stored and deflated entries, data descriptors, archive comments.
 * Refused, each with its own message: zip64, multi-disk archives, encrypted
 * entries, other compression methods, absolute names, `..` components,
 * backslashes, symlinks and other special files, duplicate names, entries or
 * a total over the limits, too many entries, and CRC or size mismatches.
 *
 * Used by the helper program wisp-unzip-exec, never by wispd itself: the
 * work is bounded but not small, and the loop thread must not do it. No
 * state: safe to call from any thread. */
#pragma once
#include <stddef.h>
#include <stdint.h>

#include "wisp.h"

/* The action code limit is 48 MB of base64; a zip of it expands to at most
 * these by default. */
#define UNZIP_MAX_TOTAL_BYTES (256ull << 20)
#define UNZIP_MAX_ENTRY_BYTES (256ull << 20)
#define UNZIP_MAX_ENTRIES 10000u

struct unzip_limits {
    uint64_t max_total_bytes; /* sum of the entries' uncompressed sizes */
    uint64_t max_entry_bytes; /* one entry's uncompressed size */
    unsigned max_entries;     /* central directory records, directories included */
};

struct unzip_stats {
    unsigned files, dirs;
    uint64_t bytes; /* written */
};

/* Extracts the zip in zip[0..len) into the directory dirfd (not closed).
 * Files are created new (O_EXCL, never through a symlink) with mode 0755
 * when the archive gives them any executable bit (Unix external attributes)
 * and 0644 otherwise; directories get 0755. lim NULL: the defaults above.
 * stats may be NULL.
 *
 * Returns 0, or with err set:
 *   -EINVAL   not a zip, or a malformed or inconsistent one (bad offsets,
 *             signatures, sizes or CRC, a truncated deflate stream);
 *   -ENOTSUP  a feature this extractor refuses (zip64, encryption, a method
 *             other than stored or deflated, several disks);
 *   -EPERM    an unsafe entry (absolute name, `..`, backslash, symlink or
 *             other special file);
 *   -EFBIG    an entry, the total or the entry count over the limits;
 *   -EEXIST   two entries with the same name;
 *   -ENOMEM, or another -errno when creating or writing a file fails.
 * On error what was extracted so far stays in the directory. */
int unzip_to_dir(const uint8_t *zip, size_t len, int dirfd, const struct unzip_limits *lim,
                 struct unzip_stats *stats, struct wisp_err *err) WISP_MUST_CHECK;
