/* core/codec.h - msgpack records for the store.
 *
 * Every record is a msgpack array of four: [schema_version, kind,
 * updated_ms, doc], where doc is the JSON document encoded as msgpack
 * (objects as maps, strings as str, integers as int64, reals as float64).
 * The first three bytes of a record are fixed-width (fixarray, positive
 * fixints), so a listing can filter by kind without decoding the document.
 * Decoding never trusts the bytes: corruption or an unknown schema version
 * is -EBADMSG / -EPROTO for that record, never a crash. */
#pragma once
#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "wisp.h"

struct plat_buf;

#define CODEC_SCHEMA_VERSION 1

enum rec_kind {
    REC_ACTION = 1,
    REC_PACKAGE = 2,
    REC_TRIGGER = 3,
    REC_RULE = 4,
    REC_KEY = 5,
    REC_ACTIVATION = 6,
    REC_META = 7,
};

/* Encodes a record into buf (reset first; buf owns its memory, release with
 * plat_buf_fini). 0, -ENOMEM, or -EINVAL for values msgpack cannot hold. */
int codec_record_pack(struct plat_buf *buf, enum rec_kind kind, int64_t updated_ms,
                      const json_t *doc) WISP_MUST_CHECK;
/* Writing a record piece by piece, for records built where they are made
 * (an activation) instead of as a json_t first: begin (resets buf), then
 * exactly one document made of these. Strings are NUL-terminated UTF-8.
 * Each gives 0 or -ENOMEM (-EINVAL from codec_put_json as above). */
int codec_record_begin(struct plat_buf *buf, enum rec_kind kind, int64_t updated_ms)
    WISP_MUST_CHECK;
int codec_put_map(struct plat_buf *buf, size_t n) WISP_MUST_CHECK;
int codec_put_array(struct plat_buf *buf, size_t n) WISP_MUST_CHECK;
int codec_put_str(struct plat_buf *buf, const char *s) WISP_MUST_CHECK;
int codec_put_strn(struct plat_buf *buf, const char *s, size_t n) WISP_MUST_CHECK;
int codec_put_int(struct plat_buf *buf, int64_t v) WISP_MUST_CHECK;
int codec_put_bool(struct plat_buf *buf, bool v) WISP_MUST_CHECK;
/* depth: how deep j sits in the document (the document itself: 0), so the
 * record keeps to the nesting codec_record_pack allows */
int codec_put_json(struct plat_buf *buf, const json_t *j, int depth) WISP_MUST_CHECK;
/* Decodes a record; *doc is a new reference. 0, -EBADMSG (not a record,
 * truncated, too deep, a head codec_record_peek_kind() does not read
 * (kind 0 among them), a map with a key twice), -EPROTO (schema version
 * newer than this build). */
int codec_record_unpack(const void *data, size_t len, enum rec_kind *kind, int64_t *updated_ms,
                        json_t **doc) WISP_MUST_CHECK;
/* The kind of a record from its first bytes, or -EBADMSG. */
int codec_record_peek_kind(const void *data, size_t len) WISP_MUST_CHECK;
/* A record's updated_ms from its head, without decoding the document. 0 or
 * -EBADMSG. */
int codec_record_peek_updated(const void *data, size_t len, int64_t *updated_ms)
    WISP_MUST_CHECK;
/* The string value of `key` in the document's map, found among the string
 * entries the map starts with (records written field by field put their
 * names first), without decoding the rest: 0 with *s (not NUL-terminated,
 * pointing into data) and *n set; -ENOENT when the leading string entries
 * do not hold it (the document may still: decode it to know); -EBADMSG. */
int codec_record_peek_str(const void *data, size_t len, const char *key, const char **s,
                          size_t *n) WISP_MUST_CHECK;

/* Fuzz entry point: decodes arbitrary bytes, discards the result; abort()s
 * when the peeks disagree with the decoding or a decoded record does not
 * pack and decode again to the same. */
int codec_fuzz_one(const uint8_t *data, size_t len);
