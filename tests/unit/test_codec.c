/* tests/unit/test_codec.c - msgpack records (core/codec.h): round trips for
 * every JSON type, kind peeking, and decoding that never trusts its bytes. */
#include <errno.h>
#include <msgpack.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"
#include "codec.h"
#include "plat.h"
#include "wjson.h"

/* ==== helpers =========================================================== */

/* Packs doc, unpacks it again and checks kind, time and equality. Returns
 * the decoded document (new reference) or NULL. */
static json_t *round_trip(enum rec_kind kind, int64_t upd, const json_t *doc)
{
    struct plat_buf buf = {0};
    int rc = codec_record_pack(&buf, kind, upd, doc);
    CHECK_EQ_INT(rc, 0);
    if (rc != 0) {
        plat_buf_fini(&buf);
        return NULL;
    }
    enum rec_kind k = 0;
    int64_t u = 0;
    json_t *out = NULL;
    rc = codec_record_unpack(buf.data, buf.len, &k, &u, &out);
    CHECK_EQ_INT(rc, 0);
    CHECK_EQ_INT(k, kind);
    CHECK(u == upd);
    CHECK(out != NULL);
    if (out)
        CHECK(json_equal(out, (json_t *)doc));
    plat_buf_fini(&buf);
    return out;
}

/* A growable byte buffer for hand-made msgpack. */
static void sbuf_init(msgpack_sbuffer *sb, msgpack_packer *pk)
{
    msgpack_sbuffer_init(sb);
    msgpack_packer_init(pk, sb, msgpack_sbuffer_write);
}

static void pack_cstr(msgpack_packer *pk, const char *s, size_t n)
{
    msgpack_pack_str(pk, n);
    msgpack_pack_str_body(pk, s, n);
}

/* Record header [schema, kind, updated, <doc follows>]. */
static void pack_header(msgpack_packer *pk, uint64_t schema, uint64_t kind, int64_t upd)
{
    msgpack_pack_array(pk, 4);
    msgpack_pack_uint64(pk, schema);
    msgpack_pack_uint64(pk, kind);
    msgpack_pack_int64(pk, upd);
}

static int unpack_rc(const void *data, size_t len)
{
    enum rec_kind k;
    int64_t u;
    json_t *doc = NULL;
    int rc = codec_record_unpack(data, len, &k, &u, &doc);
    if (rc == 0)
        CHECK(doc != NULL);
    else
        CHECK(doc == NULL);
    json_decref(doc);
    return rc;
}

static json_t *nested_arrays(int depth, json_t *innermost)
{
    json_t *j = innermost;
    for (int i = 0; i < depth; i++) {
        json_t *a = json_array();
        if (j)
            json_array_append_new(a, j);
        j = a;
    }
    return j;
}

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;
static uint64_t rng_next(void)
{
    uint64_t x = rng_state;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    rng_state = x;
    return x;
}

static json_t *sample_doc(void)
{
    json_t *doc = json_object();
    json_object_set_new(doc, "name", json_string("hello"));
    json_object_set_new(doc, "n", json_integer(42));
    json_object_set_new(doc, "neg", json_integer(-7));
    json_object_set_new(doc, "max", json_integer(INT64_MAX));
    json_object_set_new(doc, "min", json_integer(INT64_MIN));
    json_object_set_new(doc, "pi", json_real(3.25));
    json_object_set_new(doc, "ok", json_true());
    json_object_set_new(doc, "no", json_false());
    json_object_set_new(doc, "nil", json_null());
    json_t *arr = json_array();
    json_array_append_new(arr, json_integer(1));
    json_array_append_new(arr, json_string("two"));
    json_t *inner = json_object();
    json_object_set_new(inner, "deep", json_array());
    json_array_append_new(arr, inner);
    json_object_set_new(doc, "list", arr);
    return doc;
}

/* ==== round trips ======================================================= */

static void codec_round_trips_every_json_type(void)
{
    json_t *doc = sample_doc();
    json_object_set_new(doc, "empty_obj", json_object());
    json_object_set_new(doc, "empty_arr", json_array());
    json_object_set_new(doc, "tiny", json_real(-1.5e-300));
    json_object_set_new(doc, "huge", json_real(1.7976931348623157e308));
    json_object_set_new(doc, "zero", json_real(0.0));
    json_object_set_new(doc, "int0", json_integer(0));
    json_object_set_new(doc, "u8", json_integer(255));
    json_object_set_new(doc, "u32", json_integer(4294967296LL));
    json_object_set_new(doc, "i32", json_integer(-2147483649LL));
    json_t *out = round_trip(REC_ACTION, 1700000000123LL, doc);
    if (out) {
        CHECK(json_integer_value(json_object_get(out, "max")) == INT64_MAX);
        CHECK(json_integer_value(json_object_get(out, "min")) == INT64_MIN);
        CHECK(json_is_real(json_object_get(out, "pi")));
        CHECK(json_real_value(json_object_get(out, "pi")) == 3.25);
        CHECK(json_is_integer(json_object_get(out, "int0")));
        CHECK(json_is_real(json_object_get(out, "zero")));
        CHECK(json_is_null(json_object_get(out, "nil")));
        CHECK(json_is_object(json_object_get(out, "empty_obj")));
        CHECK_EQ_INT(json_object_size(json_object_get(out, "empty_obj")), 0);
        CHECK(json_is_array(json_object_get(out, "empty_arr")));
        CHECK_EQ_INT(json_array_size(json_object_get(out, "empty_arr")), 0);
    }
    json_decref(out);
    json_decref(doc);
}

static void codec_round_trips_scalar_documents(void)
{
    json_t *vals[] = {json_integer(INT64_MIN), json_integer(INT64_MAX), json_real(-0.125),
                      json_string(""), json_true(), json_false(), json_null(), json_array(),
                      json_object()};
    for (size_t i = 0; i < WISP_ARRAY_LEN(vals); i++) {
        json_decref(round_trip(REC_META, 1700000000000LL, vals[i]));
        json_decref(vals[i]);
    }
}

static void codec_round_trips_updated_ms_extremes_and_every_kind(void)
{
    json_t *doc = json_object();
    const int64_t times[] = {0, -1, INT64_MIN, INT64_MAX, 1700000000000LL};
    for (size_t i = 0; i < WISP_ARRAY_LEN(times); i++)
        for (int k = REC_ACTION; k <= REC_META; k++)
            json_decref(round_trip((enum rec_kind)k, times[i], doc));
    json_decref(doc);
}

/* Sizes that need the 16- and 32-bit msgpack length forms. */
static void codec_round_trips_large_strings_and_containers(void)
{
    json_t *doc = json_object();
    size_t lens[] = {31, 32, 255, 256, 65535, 65536, 200000};
    for (size_t i = 0; i < WISP_ARRAY_LEN(lens); i++) {
        char *b = malloc(lens[i]);
        for (size_t j = 0; j < lens[i]; j++)
            b[j] = (char)('a' + j % 26);
        char key[32];
        snprintf(key, sizeof key, "s%zu", lens[i]);
        json_object_set_new(doc, key, json_stringn(b, lens[i]));
        free(b);
    }
    size_t counts[] = {15, 16, 65535, 65536};
    for (size_t i = 0; i < WISP_ARRAY_LEN(counts); i++) {
        json_t *a = json_array();
        for (size_t j = 0; j < counts[i]; j++)
            json_array_append_new(a, json_integer((json_int_t)j * 1000003));
        char key[32];
        snprintf(key, sizeof key, "a%zu", counts[i]);
        json_object_set_new(doc, key, a);
    }
    json_t *m = json_object();
    for (int j = 0; j < 70000; j++) {
        char key[16];
        snprintf(key, sizeof key, "k%d", j);
        json_object_set_new(m, key, json_real(j + 0.5));
    }
    json_object_set_new(doc, "map70000", m);
    json_t *out = round_trip(REC_ACTIVATION, 1700000000000LL, doc);
    if (out)
        CHECK_EQ_INT(json_array_size(json_object_get(out, "a65536")), 65536);
    json_decref(out);
    json_decref(doc);
}

/* Whatever the packer accepts must unpack: object keys of any length
 * (user JSON in parameter values can carry long keys). */
static void codec_round_trips_long_object_keys(void)
{
    const size_t lens[] = {255, 4096, 4097, 10000};
    for (size_t i = 0; i < WISP_ARRAY_LEN(lens); i++) {
        char *key = malloc(lens[i] + 1);
        memset(key, 'k', lens[i]);
        key[lens[i]] = '\0';
        json_t *doc = json_object();
        json_object_set_new(doc, key, json_integer(1));
        struct plat_buf buf = {0};
        int prc = codec_record_pack(&buf, REC_ACTION, 1700000000000LL, doc);
        if (prc == 0) {
            enum rec_kind k;
            int64_t u;
            json_t *out = NULL;
            int rc = codec_record_unpack(buf.data, buf.len, &k, &u, &out);
            if (rc != 0)
                fprintf(stderr, "  key of %zu bytes: packed, unpack rc %d\n", lens[i], rc);
            CHECK_EQ_INT(rc, 0);
            CHECK(out && json_equal(out, doc));
            json_decref(out);
        }
        plat_buf_fini(&buf);
        json_decref(doc);
        free(key);
    }
}

static void codec_round_trips_unicode_strings(void)
{
    json_t *doc = json_object();
    json_object_set_new(doc, "latin", json_string("h\xc3\xa9llo"));        /* héllo */
    json_object_set_new(doc, "cjk", json_string("\xe6\xbc\xa2\xe5\xad\x97")); /* 漢字 */
    json_object_set_new(doc, "emoji", json_string("\xf0\x9f\x98\x80"));    /* U+1F600 */
    json_object_set_new(doc, "k\xc3\xa9y", json_string("unicode key"));
    json_t *out = round_trip(REC_ACTION, 1, doc);
    if (out) {
        CHECK_STREQ(json_string_value(json_object_get(out, "emoji")), "\xf0\x9f\x98\x80");
        CHECK_STREQ(json_string_value(json_object_get(out, "k\xc3\xa9y")), "unicode key");
    }
    json_decref(out);
    json_decref(doc);
}

static void codec_round_trips_strings_with_embedded_nul(void)
{
    json_t *doc = json_object();
    json_object_set_new(doc, "bin", json_stringn("a\0b\0", 4));
    json_object_set_new(doc, "only_nul", json_stringn("\0", 1));
    json_t *out = round_trip(REC_ACTION, 1, doc);
    if (out) {
        json_t *s = json_object_get(out, "bin");
        CHECK_EQ_INT(json_string_length(s), 4);
        CHECK(memcmp(json_string_value(s), "a\0b\0", 4) == 0);
        CHECK_EQ_INT(json_string_length(json_object_get(out, "only_nul")), 1);
    }
    json_decref(out);
    json_decref(doc);
}

/* Empty strings must survive whatever comes before them. msgpack-c hands
 * out a NULL pointer for a zero-length str when no multi-byte item was read
 * before it in the buffer (small updated_ms values are one-byte fixints). */
static void empty_strings_body(void)
{
    const char *docs[] = {"\"\"", "[\"\"]", "[1, \"\"]", "[\"\", 1]", "[[\"\"]]",
                          "{\"a\": \"\"}", "{\"\": 1}"};
    const int64_t times[] = {0, 5, -1, 1700000000000LL};
    for (size_t t = 0; t < WISP_ARRAY_LEN(times); t++) {
        for (size_t i = 0; i < WISP_ARRAY_LEN(docs); i++) {
            json_t *doc = json_loads(docs[i], JSON_DECODE_ANY, NULL);
            CHECK(doc != NULL);
            struct plat_buf buf = {0};
            CHECK_EQ_INT(codec_record_pack(&buf, REC_META, times[t], doc), 0);
            enum rec_kind k;
            int64_t u;
            json_t *out = NULL;
            int rc = codec_record_unpack(buf.data, buf.len, &k, &u, &out);
            if (rc != 0)
                fprintf(stderr, "  doc %s updated_ms %lld: unpack rc %d\n", docs[i],
                        (long long)times[t], rc);
            CHECK_EQ_INT(rc, 0);
            CHECK(out && json_equal(out, doc));
            json_decref(out);
            plat_buf_fini(&buf);
            json_decref(doc);
        }
    }
}

/* Runs body in a child process so that a sanitizer abort fails this test
 * only; the child's failed checks are reported on stderr as usual. */
static void in_child(void (*body)(void), const char *what)
{
    fflush(stderr);
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        check_failures = 0; /* count only the child's own failures */
        body();
        fflush(stderr);
        _exit(check_failures ? 1 : 0);
    }
    int status = 0;
    CHECK(waitpid(pid, &status, 0) == pid);
    if (!WIFEXITED(status))
        fprintf(stderr, "  %s: child killed by signal %d\n", what, WTERMSIG(status));
    else if (WEXITSTATUS(status) > 1)
        fprintf(stderr, "  %s: child aborted (exit %d, sanitizer?)\n", what, WEXITSTATUS(status));
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

static void codec_round_trips_empty_strings_at_any_updated_ms(void)
{
    in_child(empty_strings_body, "empty strings");
}

static void codec_preserves_object_key_order(void)
{
    const char *keys[] = {"zeta", "alpha", "mid", "beta", "_", "0", "yy"};
    json_t *doc = json_object();
    for (size_t i = 0; i < WISP_ARRAY_LEN(keys); i++)
        json_object_set_new(doc, keys[i], json_integer((json_int_t)i));
    json_t *out = round_trip(REC_PACKAGE, 5, doc);
    if (out) {
        size_t i = 0;
        const char *k;
        json_t *v;
        json_object_foreach(out, k, v) {
            CHECK(i < WISP_ARRAY_LEN(keys));
            if (i < WISP_ARRAY_LEN(keys))
                CHECK_STREQ(k, keys[i]);
            CHECK_EQ_INT(json_integer_value(v), (json_int_t)i);
            i++;
        }
        CHECK_EQ_INT(i, WISP_ARRAY_LEN(keys));
    }
    json_decref(out);
    json_decref(doc);
}

static void codec_buf_is_reset_between_packs(void)
{
    struct plat_buf buf = {0};
    json_t *big = sample_doc(), *small = json_object();
    CHECK_EQ_INT(codec_record_pack(&buf, REC_ACTION, 1, big), 0);
    size_t big_len = buf.len;
    CHECK_EQ_INT(codec_record_pack(&buf, REC_RULE, 2, small), 0);
    CHECK(buf.len < big_len);
    enum rec_kind k = 0;
    int64_t u = 0;
    json_t *out = NULL;
    CHECK_EQ_INT(codec_record_unpack(buf.data, buf.len, &k, &u, &out), 0);
    CHECK_EQ_INT(k, REC_RULE);
    CHECK_EQ_INT(u, 2);
    CHECK(out && json_equal(out, small));
    json_decref(out);
    json_decref(big);
    json_decref(small);
    plat_buf_fini(&buf);
    CHECK(buf.data == NULL && buf.len == 0 && buf.cap == 0);
}

/* ==== peek_kind ========================================================= */

static void codec_peek_kind_reads_kind_from_record_head(void)
{
    json_t *doc = sample_doc();
    for (int k = REC_ACTION; k <= REC_META; k++) {
        struct plat_buf buf = {0};
        CHECK_EQ_INT(codec_record_pack(&buf, (enum rec_kind)k, -3, doc), 0);
        CHECK_EQ_INT(codec_record_peek_kind(buf.data, buf.len), k);
        plat_buf_fini(&buf);
    }
    json_decref(doc);
}

static void codec_peek_kind_rejects_short_or_foreign_bytes(void)
{
    CHECK_EQ_INT(codec_record_peek_kind("", 0), -EBADMSG);
    CHECK_EQ_INT(codec_record_peek_kind("\x94\x01\x01", 3), -EBADMSG);
    CHECK_EQ_INT(codec_record_peek_kind("\x93\x01\x01\x00", 4), -EBADMSG); /* array of 3 */
    CHECK_EQ_INT(codec_record_peek_kind("\x84\x01\x01\x00", 4), -EBADMSG); /* a map */
    CHECK_EQ_INT(codec_record_peek_kind("\x94\xcc\x01\x00", 4), -EBADMSG); /* uint8 schema */
    CHECK_EQ_INT(codec_record_peek_kind("\x94\x01\xcc\x05", 4), -EBADMSG); /* uint8 kind */
    CHECK_EQ_INT(codec_record_peek_kind("\x94\x01\x03\x00", 4), 3);
}

/* updated_ms read from the head, at every msgpack integer width. */
static void codec_peek_updated_reads_every_int_width(void)
{
    static const int64_t upds[] = {0,          1,          127,        128,
                                   255,        256,        65535,      65536,
                                   4294967295, 4294967296, 1700000000000LL, INT64_MAX,
                                   -1,         -32,        -33,        -128,
                                   -129,       -32768,     -32769,     -2147483648LL,
                                   -2147483649LL, INT64_MIN};
    json_t *doc = json_pack("{s:s}", "name", "x");
    for (size_t i = 0; i < sizeof upds / sizeof upds[0]; i++) {
        struct plat_buf b = {0};
        CHECK_EQ_INT(codec_record_pack(&b, REC_ACTIVATION, upds[i], doc), 0);
        int64_t got = 0;
        CHECK_EQ_INT(codec_record_peek_updated(b.data, b.len, &got), 0);
        CHECK(got == upds[i]);
        unsigned char t = (unsigned char)b.data[3]; /* the integer's type byte */
        size_t head = 4 + (t >= 0xcc && t <= 0xd3 ? (size_t)1 << ((t - 0xcc) & 3) : 0);
        for (size_t n = 0; n < head; n++) /* cut before the integer is whole */
            CHECK_EQ_INT(codec_record_peek_updated(b.data, n, &got), -EBADMSG);
        CHECK_EQ_INT(codec_record_peek_updated(b.data, head, &got), 0);
        plat_buf_fini(&b);
    }
    json_decref(doc);
    int64_t got = 0;
    /* wide encodings of small values, and what is not an integer */
    CHECK_EQ_INT(codec_record_peek_updated("\x94\x01\x06\xd0\xff\x80", 6, &got), 0);
    CHECK_EQ_INT(got, -1);
    CHECK_EQ_INT(codec_record_peek_updated("\x94\x01\x06\xcd\x01\x00\x80", 7, &got), 0);
    CHECK_EQ_INT(got, 256);
    CHECK_EQ_INT(codec_record_peek_updated("\x94\x01\x06\xcf\x80\0\0\0\0\0\0\0\x80", 13, &got),
                 -EBADMSG); /* over INT64_MAX */
    CHECK_EQ_INT(codec_record_peek_updated("\x94\x01\x06\xc0\x80", 5, &got), -EBADMSG);
    CHECK_EQ_INT(codec_record_peek_updated("\x94\x01\x06\xcb\0\0\0\0\0\0\0\0\x80", 13, &got),
                 -EBADMSG); /* a float */
    CHECK_EQ_INT(codec_record_peek_updated("\x84\x01\x06\x00\x80", 5, &got), -EBADMSG);
}

static void check_peek(const void *data, size_t len, const char *key, int want, const char *val)
{
    const char *s = NULL;
    size_t n = 0;
    CHECK_EQ_INT(codec_record_peek_str(data, len, key, &s, &n), want);
    if (want == 0) {
        CHECK(n == strlen(val) && memcmp(s, val, n) == 0);
        CHECK((const char *)data <= s && s + n <= (const char *)data + len);
    }
}

/* A string field among those the document starts with, without decoding
 * the rest; anything past the first value that is not a string is not
 * looked at. */
static void codec_peek_str_reads_leading_string_fields(void)
{
    char long40[41], long300[301];
    memset(long40, 'l', 40);
    long40[40] = '\0';
    memset(long300, 'm', 300);
    long300[300] = '\0';
    json_t *doc = json_pack("{s:s, s:s, s:s, s:i, s:s}", "namespace", "guest", "name", long40,
                            "path", long300, "n", 1, "after", "x");
    struct plat_buf b = {0};
    CHECK_EQ_INT(codec_record_pack(&b, REC_ACTIVATION, 7, doc), 0);
    check_peek(b.data, b.len, "namespace", 0, "guest");
    check_peek(b.data, b.len, "name", 0, long40);   /* str8 */
    check_peek(b.data, b.len, "path", 0, long300);  /* str16 */
    check_peek(b.data, b.len, "after", -ENOENT, NULL); /* behind an int */
    check_peek(b.data, b.len, "nam", -ENOENT, NULL);
    for (size_t cut = 0; cut < b.len; cut++) { /* every prefix: an error or in bounds */
        const char *s = NULL;
        size_t n = 0;
        int rc = codec_record_peek_str(b.data, cut, "path", &s, &n);
        CHECK(rc == -EBADMSG || rc == -ENOENT || (rc == 0 && s + n <= b.data + cut));
    }
    json_decref(doc);
    json_t *only = json_pack("{s:s, s:s}", "a", "1", "b", "2");
    CHECK_EQ_INT(codec_record_pack(&b, REC_ACTIVATION, 7, only), 0);
    check_peek(b.data, b.len, "b", 0, "2");
    check_peek(b.data, b.len, "c", -ENOENT, NULL); /* the end of the map */
    json_decref(only);
    json_t *arr = json_pack("[s]", "name");
    CHECK_EQ_INT(codec_record_pack(&b, REC_ACTIVATION, 7, arr), 0);
    check_peek(b.data, b.len, "name", -EBADMSG, NULL); /* not a map */
    json_decref(arr);
    plat_buf_fini(&b);
}

/* ==== rejecting bad input =============================================== */

static void codec_unpack_rejects_every_truncated_prefix(void)
{
    json_t *doc = sample_doc();
    struct plat_buf buf = {0};
    CHECK_EQ_INT(codec_record_pack(&buf, REC_ACTION, 123456789, doc), 0);
    CHECK(buf.len > 20);
    for (size_t n = 0; n < buf.len; n++) {
        /* A fresh heap copy of exactly n bytes lets ASan catch over-reads. */
        char *p = malloc(n ? n : 1);
        memcpy(p, buf.data, n);
        int rc = unpack_rc(p, n);
        if (rc != -EBADMSG) {
            fprintf(stderr, "prefix of %zu/%zu bytes: rc %d\n", n, buf.len, rc);
            CHECK_EQ_INT(rc, -EBADMSG);
        }
        free(p);
    }
    CHECK_EQ_INT(unpack_rc(buf.data, buf.len), 0);
    plat_buf_fini(&buf);
    json_decref(doc);
}

static void codec_unpack_rejects_trailing_garbage(void)
{
    json_t *doc = sample_doc();
    struct plat_buf buf = {0};
    CHECK_EQ_INT(codec_record_pack(&buf, REC_ACTION, 1, doc), 0);
    char *p = malloc(buf.len + 3);
    memcpy(p, buf.data, buf.len);
    memcpy(p + buf.len, "\xc0\x01\x02", 3);
    CHECK_EQ_INT(unpack_rc(p, buf.len + 1), -EBADMSG);
    CHECK_EQ_INT(unpack_rc(p, buf.len + 3), -EBADMSG);
    /* A second whole record after the first is garbage too. */
    char *two = malloc(2 * buf.len);
    memcpy(two, buf.data, buf.len);
    memcpy(two + buf.len, buf.data, buf.len);
    CHECK_EQ_INT(unpack_rc(two, 2 * buf.len), -EBADMSG);
    free(two);
    free(p);
    plat_buf_fini(&buf);
    json_decref(doc);
}

static void codec_unpack_rejects_wrong_array_size(void)
{
    for (unsigned n = 0; n <= 6; n++) {
        if (n == 4)
            continue;
        msgpack_sbuffer sb;
        msgpack_packer pk;
        sbuf_init(&sb, &pk);
        msgpack_pack_array(&pk, n);
        for (unsigned i = 0; i < n; i++)
            msgpack_pack_uint8(&pk, 1);
        CHECK_EQ_INT(unpack_rc(sb.data, sb.size), -EBADMSG);
        msgpack_sbuffer_destroy(&sb);
    }
    /* Not an array at all: a map of four and a bare integer. */
    msgpack_sbuffer sb;
    msgpack_packer pk;
    sbuf_init(&sb, &pk);
    msgpack_pack_map(&pk, 0);
    CHECK_EQ_INT(unpack_rc(sb.data, sb.size), -EBADMSG);
    msgpack_sbuffer_clear(&sb);
    msgpack_pack_int(&pk, 7);
    CHECK_EQ_INT(unpack_rc(sb.data, sb.size), -EBADMSG);
    msgpack_sbuffer_destroy(&sb);
}

static void codec_unpack_rejects_newer_schema_with_eproto(void)
{
    msgpack_sbuffer sb;
    msgpack_packer pk;
    sbuf_init(&sb, &pk);
    pack_header(&pk, CODEC_SCHEMA_VERSION + 1, REC_ACTION, 0);
    msgpack_pack_map(&pk, 0);
    CHECK_EQ_INT(unpack_rc(sb.data, sb.size), -EPROTO);
    msgpack_sbuffer_clear(&sb);
    pack_header(&pk, 1000000, REC_ACTION, 0);
    msgpack_pack_map(&pk, 0);
    CHECK_EQ_INT(unpack_rc(sb.data, sb.size), -EPROTO);
    msgpack_sbuffer_clear(&sb);
    /* The current version decodes. */
    pack_header(&pk, CODEC_SCHEMA_VERSION, REC_ACTION, 0);
    msgpack_pack_map(&pk, 0);
    CHECK_EQ_INT(unpack_rc(sb.data, sb.size), 0);
    msgpack_sbuffer_clear(&sb);
    /* Version 0 never existed: not a valid record. */
    pack_header(&pk, 0, REC_ACTION, 0);
    msgpack_pack_map(&pk, 0);
    CHECK(unpack_rc(sb.data, sb.size) < 0);
    msgpack_sbuffer_destroy(&sb);
}

static void codec_unpack_rejects_bad_header_fields(void)
{
    msgpack_sbuffer sb;
    msgpack_packer pk;
    sbuf_init(&sb, &pk);
    /* schema as a string */
    msgpack_pack_array(&pk, 4);
    pack_cstr(&pk, "1", 1);
    msgpack_pack_uint8(&pk, 1);
    msgpack_pack_int64(&pk, 0);
    msgpack_pack_map(&pk, 0);
    CHECK_EQ_INT(unpack_rc(sb.data, sb.size), -EBADMSG);
    msgpack_sbuffer_clear(&sb);
    /* negative kind */
    msgpack_pack_array(&pk, 4);
    msgpack_pack_uint8(&pk, 1);
    msgpack_pack_int8(&pk, -1);
    msgpack_pack_int64(&pk, 0);
    msgpack_pack_map(&pk, 0);
    CHECK_EQ_INT(unpack_rc(sb.data, sb.size), -EBADMSG);
    msgpack_sbuffer_clear(&sb);
    /* updated_ms as a float */
    msgpack_pack_array(&pk, 4);
    msgpack_pack_uint8(&pk, 1);
    msgpack_pack_uint8(&pk, 1);
    msgpack_pack_double(&pk, 1.5);
    msgpack_pack_map(&pk, 0);
    CHECK_EQ_INT(unpack_rc(sb.data, sb.size), -EBADMSG);
    msgpack_sbuffer_destroy(&sb);
}

static void codec_unpack_rejects_invalid_utf8_string_value(void)
{
    const char *bad[] = {"\xff", "\xc3", "a\xc3(", "\xed\xa0\x80" /* surrogate */,
                         "\xc0\xaf" /* overlong */, "\xf4\x90\x80\x80" /* > U+10FFFF */};
    for (size_t i = 0; i < WISP_ARRAY_LEN(bad); i++) {
        msgpack_sbuffer sb;
        msgpack_packer pk;
        sbuf_init(&sb, &pk);
        pack_header(&pk, 1, REC_ACTION, 0);
        msgpack_pack_map(&pk, 1);
        pack_cstr(&pk, "k", 1);
        pack_cstr(&pk, bad[i], strlen(bad[i]));
        CHECK_EQ_INT(unpack_rc(sb.data, sb.size), -EBADMSG);
        msgpack_sbuffer_clear(&sb);
        /* inside an array, too */
        pack_header(&pk, 1, REC_ACTION, 0);
        msgpack_pack_array(&pk, 2);
        pack_cstr(&pk, "ok", 2);
        pack_cstr(&pk, bad[i], strlen(bad[i]));
        CHECK_EQ_INT(unpack_rc(sb.data, sb.size), -EBADMSG);
        msgpack_sbuffer_destroy(&sb);
    }
}

/* Object keys are strings too: an invalid UTF-8 key must not come out as a
 * jansson object that can no longer be serialised. */
static void codec_unpack_rejects_invalid_utf8_object_key(void)
{
    msgpack_sbuffer sb;
    msgpack_packer pk;
    sbuf_init(&sb, &pk);
    pack_header(&pk, 1, REC_ACTION, 0);
    msgpack_pack_map(&pk, 1);
    pack_cstr(&pk, "\xff\xfe", 2);
    msgpack_pack_int(&pk, 1);
    enum rec_kind k;
    int64_t u;
    json_t *doc = NULL;
    int rc = codec_record_unpack(sb.data, sb.size, &k, &u, &doc);
    CHECK_EQ_INT(rc, -EBADMSG);
    if (rc == 0) {
        /* What the API would do next with this document: serialise it. */
        char *s = wjson_dump(doc, NULL);
        if (!s)
            fprintf(stderr, "  decoded document with invalid UTF-8 key cannot be dumped\n");
        free(s);
    }
    json_decref(doc);
    msgpack_sbuffer_destroy(&sb);
}

/* A key with an embedded NUL cannot be held by jansson; it must not be
 * silently truncated (two distinct keys would merge). */
static void codec_unpack_rejects_object_key_with_nul(void)
{
    msgpack_sbuffer sb;
    msgpack_packer pk;
    sbuf_init(&sb, &pk);
    pack_header(&pk, 1, REC_ACTION, 0);
    msgpack_pack_map(&pk, 2);
    pack_cstr(&pk, "a\0x", 3);
    msgpack_pack_int(&pk, 1);
    pack_cstr(&pk, "a\0y", 3);
    msgpack_pack_int(&pk, 2);
    enum rec_kind k;
    int64_t u;
    json_t *doc = NULL;
    int rc = codec_record_unpack(sb.data, sb.size, &k, &u, &doc);
    CHECK_EQ_INT(rc, -EBADMSG);
    if (rc == 0)
        fprintf(stderr, "  2 distinct keys decoded into an object of %zu key(s)\n",
                json_object_size(doc));
    json_decref(doc);
    msgpack_sbuffer_destroy(&sb);
}

static void codec_unpack_rejects_non_json_msgpack_types(void)
{
    msgpack_sbuffer sb;
    msgpack_packer pk;
    sbuf_init(&sb, &pk);
    /* bin */
    pack_header(&pk, 1, REC_ACTION, 0);
    msgpack_pack_bin(&pk, 2);
    msgpack_pack_bin_body(&pk, "ab", 2);
    CHECK_EQ_INT(unpack_rc(sb.data, sb.size), -EBADMSG);
    msgpack_sbuffer_clear(&sb);
    /* ext */
    pack_header(&pk, 1, REC_ACTION, 0);
    msgpack_pack_ext(&pk, 1, 5);
    msgpack_pack_ext_body(&pk, "x", 1);
    CHECK_EQ_INT(unpack_rc(sb.data, sb.size), -EBADMSG);
    msgpack_sbuffer_clear(&sb);
    /* integer map key */
    pack_header(&pk, 1, REC_ACTION, 0);
    msgpack_pack_map(&pk, 1);
    msgpack_pack_int(&pk, 1);
    msgpack_pack_int(&pk, 2);
    CHECK_EQ_INT(unpack_rc(sb.data, sb.size), -EBADMSG);
    msgpack_sbuffer_clear(&sb);
    /* unsigned integer beyond INT64_MAX cannot be a JSON integer here */
    pack_header(&pk, 1, REC_ACTION, 0);
    msgpack_pack_uint64(&pk, UINT64_MAX);
    CHECK_EQ_INT(unpack_rc(sb.data, sb.size), -EBADMSG);
    msgpack_sbuffer_clear(&sb);
    /* float32 is read as a real */
    pack_header(&pk, 1, REC_ACTION, 0);
    msgpack_pack_float(&pk, 0.5f);
    enum rec_kind k;
    int64_t u;
    json_t *doc = NULL;
    CHECK_EQ_INT(codec_record_unpack(sb.data, sb.size, &k, &u, &doc), 0);
    CHECK(json_is_real(doc) && json_real_value(doc) == 0.5);
    json_decref(doc);
    msgpack_sbuffer_destroy(&sb);
}

static void codec_max_depth_document_round_trips(void)
{
    json_t *doc = nested_arrays(WJSON_MAX_DEPTH, json_string("leaf"));
    CHECK_EQ_INT(wjson_depth(doc), WJSON_MAX_DEPTH);
    json_decref(round_trip(REC_ACTION, 9, doc));
    json_decref(doc);
    /* same depth made of objects */
    json_t *o = json_integer(1);
    for (int i = 0; i < WJSON_MAX_DEPTH; i++) {
        json_t *w = json_object();
        json_object_set_new(w, "k", o);
        o = w;
    }
    CHECK_EQ_INT(wjson_depth(o), WJSON_MAX_DEPTH);
    json_decref(round_trip(REC_ACTION, 9, o));
    json_decref(o);
}

static void codec_document_40_deep_fails_cleanly(void)
{
    json_t *doc = nested_arrays(40, json_integer(1));
    struct plat_buf buf = {0};
    int rc = codec_record_pack(&buf, REC_ACTION, 0, doc);
    if (rc == 0) {
        /* If the packer accepted it, the unpacker must refuse it cleanly. */
        CHECK_EQ_INT(unpack_rc(buf.data, buf.len), -EBADMSG);
    } else {
        CHECK_EQ_INT(rc, -EINVAL);
    }
    plat_buf_fini(&buf);
    json_decref(doc);

    /* Hand-made 40-deep record bytes: refused, no crash. */
    msgpack_sbuffer sb;
    msgpack_packer pk;
    sbuf_init(&sb, &pk);
    pack_header(&pk, 1, REC_ACTION, 0);
    for (int i = 0; i < 40; i++)
        msgpack_pack_array(&pk, 1);
    msgpack_pack_int(&pk, 1);
    CHECK_EQ_INT(unpack_rc(sb.data, sb.size), -EBADMSG);
    msgpack_sbuffer_clear(&sb);
    pack_header(&pk, 1, REC_ACTION, 0);
    for (int i = 0; i < 40; i++) {
        msgpack_pack_map(&pk, 1);
        pack_cstr(&pk, "k", 1);
    }
    msgpack_pack_nil(&pk);
    CHECK_EQ_INT(unpack_rc(sb.data, sb.size), -EBADMSG);
    msgpack_sbuffer_destroy(&sb);
}

/* Every record the packer accepts must decode again (a record that cannot be
 * read back would be lost data). */
static void codec_every_packable_depth_unpacks(void)
{
    for (int d = 1; d <= 40; d++) {
        json_t *leaves[] = {NULL, json_integer(1), json_object()};
        for (size_t l = 0; l < WISP_ARRAY_LEN(leaves); l++) {
            json_t *doc = nested_arrays(d, leaves[l]);
            struct plat_buf buf = {0};
            if (codec_record_pack(&buf, REC_ACTION, 0, doc) == 0) {
                enum rec_kind k;
                int64_t u;
                json_t *out = NULL;
                int rc = codec_record_unpack(buf.data, buf.len, &k, &u, &out);
                if (rc != 0)
                    fprintf(stderr, "depth %d leaf %zu: packed but unpack rc %d\n", d, l, rc);
                CHECK_EQ_INT(rc, 0);
                CHECK(out && json_equal(out, doc));
                json_decref(out);
            }
            plat_buf_fini(&buf);
            json_decref(doc);
        }
    }
}

/* ==== robustness ======================================================== */

static void codec_random_bytes_never_crash(void)
{
    rng_state = 12345;
    unsigned char data[96];
    int ok = 0;
    for (int it = 0; it < 4000; it++) {
        size_t len = (size_t)(rng_next() % sizeof data);
        for (size_t i = 0; i < len; i++)
            data[i] = (unsigned char)rng_next();
        /* Half the time start like a record so the decoder goes deeper. */
        if (it & 1 && len >= 3) {
            data[0] = 0x94;
            data[1] = 0x01;
            data[2] = (unsigned char)(rng_next() % 8);
        }
        unsigned char *p = malloc(len ? len : 1);
        memcpy(p, data, len);
        int rc = codec_fuzz_one(p, len);
        CHECK(rc == 0 || rc == -EBADMSG || rc == -EPROTO);
        ok += rc == 0;
        int pk = codec_record_peek_kind(p, len);
        CHECK(pk == -EBADMSG || (pk >= 0 && pk <= 0x7f));
        free(p);
    }
    (void)ok;
}

static void codec_mutated_records_never_crash(void)
{
    rng_state = 777;
    json_t *doc = sample_doc();
    struct plat_buf buf = {0};
    CHECK_EQ_INT(codec_record_pack(&buf, REC_ACTION, 42, doc), 0);
    for (int it = 0; it < 4000; it++) {
        unsigned char *p = malloc(buf.len);
        memcpy(p, buf.data, buf.len);
        int flips = 1 + (int)(rng_next() % 4);
        for (int f = 0; f < flips; f++)
            p[rng_next() % buf.len] = (unsigned char)rng_next();
        size_t len = buf.len - (size_t)(rng_next() % 3 == 0 ? rng_next() % buf.len : 0);
        enum rec_kind k;
        int64_t u;
        json_t *out = NULL;
        int rc = codec_record_unpack(p, len, &k, &u, &out);
        CHECK(rc == 0 || rc == -EBADMSG || rc == -EPROTO);
        if (rc == 0)
            CHECK(out != NULL);
        json_decref(out);
        free(p);
    }
    plat_buf_fini(&buf);
    json_decref(doc);
}

/* A corrupt record that declares a 4-billion-element array or map in 9
 * bytes must be refused without first allocating room for the elements
 * (msgpack-c preallocates n objects: up to 128 GiB here). Whether such an
 * allocation fails depends on the machine, so under ASan this binary caps
 * single allocations at 1 GiB (see __asan_default_options below), which
 * makes a regression deterministic. Run in a child: ASan aborts on the cap.
 * The random loops below rely on the same cap. */
static void huge_container_body(void)
{
    static const unsigned char recs[][9] = {
        {0x94, 0x01, 0x01, 0x00, 0xdd, 0xff, 0xff, 0xff, 0xff}, /* array32 */
        {0x94, 0x01, 0x01, 0x00, 0xdf, 0xff, 0xff, 0xff, 0xff}, /* map32 */
    };
    for (size_t i = 0; i < WISP_ARRAY_LEN(recs); i++) {
        enum rec_kind k;
        int64_t u;
        json_t *doc = NULL;
        CHECK_EQ_INT(codec_record_unpack(recs[i], sizeof recs[i], &k, &u, &doc), -EBADMSG);
        json_decref(doc);
    }
}

/* msgpack-c's own packer, token by token: the reference the codec's
 * direct packer must match byte for byte. */
static void ref_pack(msgpack_packer *pk, const json_t *j)
{
    switch (json_typeof(j)) {
    case JSON_OBJECT: {
        msgpack_pack_map(pk, json_object_size(j));
        for (void *it = json_object_iter((json_t *)j); it; it = json_object_iter_next((json_t *)j, it)) {
            pack_cstr(pk, json_object_iter_key(it), json_object_iter_key_len(it));
            ref_pack(pk, json_object_iter_value(it));
        }
        break;
    }
    case JSON_ARRAY:
        msgpack_pack_array(pk, json_array_size(j));
        for (size_t i = 0; i < json_array_size(j); i++)
            ref_pack(pk, json_array_get(j, i));
        break;
    case JSON_STRING: pack_cstr(pk, json_string_value(j), json_string_length(j)); break;
    case JSON_INTEGER: msgpack_pack_int64(pk, json_integer_value(j)); break;
    case JSON_REAL: msgpack_pack_double(pk, json_real_value(j)); break;
    case JSON_TRUE: msgpack_pack_true(pk); break;
    case JSON_FALSE: msgpack_pack_false(pk); break;
    case JSON_NULL: msgpack_pack_nil(pk); break;
    }
}

static void codec_pack_matches_msgpack_c(void)
{
    static const long long ints[] = {0, 1, 31, 32, 127, 128, 255, 256, 65535, 65536,
                                     4294967295LL, 4294967296LL, INT64_MAX, -1, -31, -32, -33,
                                     -127, -128, -129, -32768, -32769, -2147483648LL,
                                     -2147483649LL, INT64_MIN};
    json_t *doc = json_object(), *arr = json_array();
    for (size_t i = 0; i < sizeof ints / sizeof ints[0]; i++)
        json_array_append_new(arr, json_integer(ints[i]));
    json_object_set_new(doc, "ints", arr);
    json_object_set_new(doc, "reals", json_pack("[f,f,f]", 0.0, -1.5, 1e300));
    json_object_set_new(doc, "lit", json_pack("[b,b,n]", 1, 0));
    size_t lens[] = {0, 1, 31, 32, 255, 256, 65535, 65536};
    json_t *strs = json_array(), *big = json_array(), *wide = json_object();
    for (size_t i = 0; i < sizeof lens / sizeof lens[0]; i++) {
        char *t = malloc(lens[i] + 1);
        memset(t, 'a' + (int)i, lens[i]);
        json_array_append_new(strs, json_stringn(t, lens[i]));
        free(t);
    }
    for (int i = 0; i < 70000; i++)
        json_array_append_new(big, json_integer(i));
    for (int i = 0; i < 20; i++) {
        char k[8];
        snprintf(k, sizeof k, "k%d", i);
        json_object_set_new(wide, k, json_integer(i));
    }
    json_object_set_new(doc, "strs", strs);
    json_object_set_new(doc, "big", big);
    json_object_set_new(doc, "wide", wide);
    json_object_set_new(doc, "nested", json_pack("{s:[{},[],{s:[]}]}", "x", "y"));
    int64_t upds[] = {0, 1700000000000LL, -5, INT64_MAX};
    for (size_t u = 0; u < sizeof upds / sizeof upds[0]; u++) {
        msgpack_sbuffer sb;
        msgpack_packer pk;
        sbuf_init(&sb, &pk);
        pack_header(&pk, CODEC_SCHEMA_VERSION, REC_ACTIVATION, upds[u]);
        ref_pack(&pk, doc);
        struct plat_buf b = {0};
        CHECK_EQ_INT(codec_record_pack(&b, REC_ACTIVATION, upds[u], doc), 0);
        CHECK_EQ_INT((long long)b.len, (long long)sb.size);
        CHECK(b.len == sb.size && memcmp(b.data, sb.data, b.len) == 0);
        plat_buf_fini(&b);
        msgpack_sbuffer_destroy(&sb);
    }
    json_decref(doc);
}

/* The JSON writer gives json_dumps' bytes for every kind of value, and
 * refuses what jansson refuses (invalid UTF-8 in a string made unchecked). */
static void wjson_dump_matches_jansson(void)
{
    static const char *const docs[] = {
        "{}", "[]", "\"\"", "0", "-1", "9223372036854775807", "-9223372036854775808",
        "1.5", "-0.0", "1e22", "0.1", "3.0", "1.7976931348623157e308", "true", "false", "null",
        "{\"a\":1,\"b\":[true,false,null,{\"c\":[[]]}]}",
        "\"\\u0000\\u0001\\u001f\\u007f \\b\\f\\n\\r\\t \\\" \\\\ / \"",
        "\"caf\u00e9 \u20ac \U0001F600\"", "{\"k\\u00e9\":1,\"\":2,\"\\\"\":3}",
        "[\"\\ud83d\\ude00\",\"\\u00ff\",\"\\uffff\"]"};
    for (size_t i = 0; i < sizeof docs / sizeof docs[0]; i++) {
        json_error_t je;
        json_t *j = json_loads(docs[i], JSON_DECODE_ANY | JSON_ALLOW_NUL, &je);
        if (!j)
            fprintf(stderr, "  %s: %s\n", docs[i], je.text);
        CHECK(j != NULL);
        size_t n = 0;
        char *ours = wjson_dump(j, &n);
        char *theirs = json_dumps(j, JSON_COMPACT | JSON_ENCODE_ANY);
        CHECK(ours != NULL && theirs != NULL);
        if (ours && theirs) {
            CHECK_EQ_INT((long long)n, (long long)strlen(theirs));
            CHECK_STREQ(ours, theirs);
        }
        free(ours);
        free(theirs);
        json_decref(j);
    }
    /* appended to what a buffer holds; a failure leaves it as it was */
    struct plat_buf b = {0};
    CHECK_EQ_INT(plat_buf_add(&b, "x=", 2), 0);
    json_t *o = json_pack("{s:i}", "k", 7);
    CHECK_EQ_INT(wjson_dump_to(&b, o), 0);
    CHECK_STREQ(b.data, "x={\"k\":7}");
    static const char *const bad[] = {"\xff", "\xc0\x80", "\xed\xa0\x80", "\xf4\x90\x80\x80",
                                      "\xe2\x82", "ok\xc3"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        json_t *s = json_stringn_nocheck(bad[i], strlen(bad[i]));
        json_t *a = json_pack("[O]", s);
        CHECK(json_dumps(a, JSON_COMPACT) == NULL);
        CHECK(wjson_dump(a, NULL) == NULL);
        CHECK_EQ_INT(wjson_dump_to(&b, a), -EINVAL);
        CHECK_STREQ(b.data, "x={\"k\":7}");
        json_decref(a);
        json_decref(s);
    }
    json_decref(o);
    plat_buf_fini(&b);
}

/* wjson_load reads what json_loadb reads into the same tree (same types,
 * same key order, the last of duplicate keys), and fails where it fails
 * with jansson's message. Documents the fast reader reads itself are
 * checked to be read by it (not handed on). */
static void wjson_load_matches_jansson(void)
{
    static const struct {
        const char *doc;
        size_t flags;
        bool fast; /* read by the fast reader, not handed to jansson */
    } ok[] = {
        {"{}", 0, true},
        {" [ ] ", 0, true},
        {"{\"seq\":12,\"t_us\":1234567890123,\"run\":7,\"pad\":\"xxxx\"}", 0, true},
        {"{\"a\":1,\"b\":2,\"a\":3}", 0, true}, /* last wins, first place */
        {"[0,-0,-1,123456789012345678,-123456789012345678]", 0, true},
        {"[1.5,-0.0,1e22,1E-3,2.5e+3,0.1]", 0, true},
        {"[true,false,null,[],{},[[{\"x\":[null]}]]]", 0, true},
        {"\"caf\u00e9 \u20ac \U0001F600\"", JSON_DECODE_ANY, true},
        {"\"\\u00e9\\ud83d\\ude00 \\b\\f\\n\\r\\t\\\"\\\\\\/\"", JSON_DECODE_ANY, true},
        {"{\"k\\u00e9y\":{\"\\\"\":\"v\\n\"}}", 0, true},
        {"\"a\\u0000b\"", JSON_DECODE_ANY | JSON_ALLOW_NUL, true},
        {"42", JSON_DECODE_ANY, true},
        {"\t\r\n null \n", JSON_DECODE_ANY, true},
        /* left to jansson, read all the same */
        {"[9223372036854775807,-9223372036854775808]", 0, false},
        {"[1234567890123456789]", 0, false},
    };
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        const char *d = ok[i].doc;
        json_error_t je;
        json_t *want = json_loadb(d, strlen(d), ok[i].flags, &je);
        json_t *got = wjson_load(d, strlen(d), ok[i].flags, &je);
        json_t *fast = wjson_load_fast(d, strlen(d), ok[i].flags);
        CHECK(want != NULL && got != NULL);
        CHECK(ok[i].fast == (fast != NULL));
        if (want && got) {
            char *a = wjson_dump(want, NULL), *b = wjson_dump(got, NULL);
            CHECK(a && b && strcmp(a, b) == 0);
            CHECK(json_equal(want, got));
            free(a);
            free(b);
        }
        json_decref(want);
        json_decref(got);
        json_decref(fast);
    }
    static const struct {
        const char *doc;
        size_t len;
        size_t flags;
    } bad[] = {
        {"", 0, 0}, {"42", 2, 0}, {"\"s\"", 3, 0}, {"{", 1, 0}, {"[1,]", 4, 0},
        {"{\"a\" 1}", 7, 0}, {"{\"a\":1,}", 8, 0}, {"[01]", 4, 0}, {"[1.]", 4, 0},
        {"[1e]", 4, 0}, {"[-]", 3, 0}, {"[.5]", 4, 0}, {"[+1]", 4, 0}, {"[1e400]", 7, 0},
        {"[9223372036854775808]", 21, 0}, {"[truex]", 7, 0}, {"[nul]", 5, 0},
        {"{} {}", 5, 0}, {"[\"\x01\"]", 5, 0}, {"[\"\\x\"]", 6, 0}, {"[\"\\ud800\"]", 10, 0},
        {"[\"\\udc00\"]", 10, 0}, {"[\"\\ud800\\u0041\"]", 16, 0}, {"[\"\\u00zz\"]", 10, 0},
        {"[\"\xff\"]", 5, 0}, {"[\"\xc0\x80\"]", 6, 0}, {"[\"\\u0000\"]", 10, 0},
        {"{\"a\\u0000\":1}", 13, JSON_ALLOW_NUL}, {"[\"abc]", 6, 0}, {"[1]\0", 4, 0},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        json_error_t je1, je2;
        json_t *want = json_loadb(bad[i].doc, bad[i].len, bad[i].flags, &je1);
        json_t *got = wjson_load(bad[i].doc, bad[i].len, bad[i].flags, &je2);
        CHECK(want == NULL && got == NULL);
        if (!want && !got) {
            CHECK_STREQ(je1.text, je2.text);
            CHECK_EQ_INT(je1.line, je2.line);
            CHECK_EQ_INT(je1.column, je2.column);
        }
        json_decref(want);
        json_decref(got);
    }
    /* deeper than the fast reader goes: jansson reads it */
    char deep[300];
    memset(deep, '[', 100);
    memset(deep + 100, ']', 100);
    json_error_t je;
    json_t *j = wjson_load(deep, 200, 0, &je);
    CHECK(j != NULL);
    CHECK(wjson_load_fast(deep, 200, 0) == NULL);
    CHECK_EQ_INT(wjson_depth(j), 100);
    json_decref(j);
}

static void codec_unpack_huge_declared_container_fails_cleanly(void)
{
    in_child(huge_container_body, "huge container");
}

/* Only used when built with ASan: no single allocation above 1 GiB. */
const char *__asan_default_options(void);
const char *__asan_default_options(void)
{
    return "max_allocation_size_mb=1024";
}

/* issue 16: records the peeks read one way and a full decode another: a
 * kind or schema not as a positive fixint (listings skipped what a get
 * returned), updated_ms over INT64_MAX (decoded as a negative number), a
 * key twice (the peek saw the first name, the document the last) */
static void codec_unpack_agrees_with_the_peeks(void)
{
    static const struct {
        const char *what;
        unsigned char bytes[24];
        size_t len;
    } rows[] = {
        {"kind as uint8", {0x94, 0x01, 0xcc, 0x01, 0x00, 0x80}, 6},
        {"schema as uint8", {0x94, 0xcc, 0x01, 0x01, 0x00, 0x80}, 6},
        {"kind 0", {0x94, 0x01, 0x00, 0x00, 0x80}, 5},
        {"updated_ms over INT64_MAX",
         {0x94, 0x01, 0x01, 0xcf, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x80}, 13},
        {"name twice",
         {0x94, 0x01, 0x01, 0x00, 0x82, 0xa4, 'n', 'a', 'm', 'e', 0xa1, 'x', 0xa4, 'n', 'a', 'm',
          'e', 0xa1, 'y'},
         19},
    };
    for (size_t i = 0; i < WISP_ARRAY_LEN(rows); i++) {
        enum rec_kind kind;
        int64_t upd;
        json_t *doc = NULL;
        int rc = codec_record_unpack(rows[i].bytes, rows[i].len, &kind, &upd, &doc);
        if (rc != -EBADMSG)
            fprintf(stderr, "  %s: %d\n", rows[i].what, rc);
        CHECK_EQ_INT(rc, -EBADMSG);
        json_decref(doc);
        CHECK_EQ_INT(codec_fuzz_one(rows[i].bytes, rows[i].len), -EBADMSG);
    }
    CHECK_EQ_INT(codec_record_peek_kind(rows[2].bytes, rows[2].len), -EBADMSG);
}

static const struct check_test tests[] = {
    {"codec_round_trips_every_json_type", codec_round_trips_every_json_type},
    {"codec_round_trips_scalar_documents", codec_round_trips_scalar_documents},
    {"codec_round_trips_updated_ms_extremes_and_every_kind",
     codec_round_trips_updated_ms_extremes_and_every_kind},
    {"codec_round_trips_large_strings_and_containers",
     codec_round_trips_large_strings_and_containers},
    {"codec_round_trips_long_object_keys", codec_round_trips_long_object_keys},
    {"codec_round_trips_unicode_strings", codec_round_trips_unicode_strings},
    {"codec_round_trips_strings_with_embedded_nul", codec_round_trips_strings_with_embedded_nul},
    {"codec_round_trips_empty_strings_at_any_updated_ms",
     codec_round_trips_empty_strings_at_any_updated_ms},
    {"codec_preserves_object_key_order", codec_preserves_object_key_order},
    {"codec_buf_is_reset_between_packs", codec_buf_is_reset_between_packs},
    {"codec_peek_kind_reads_kind_from_record_head", codec_peek_kind_reads_kind_from_record_head},
    {"codec_peek_kind_rejects_short_or_foreign_bytes",
     codec_peek_kind_rejects_short_or_foreign_bytes},
    {"codec_peek_updated_reads_every_int_width", codec_peek_updated_reads_every_int_width},
    {"codec_peek_str_reads_leading_string_fields", codec_peek_str_reads_leading_string_fields},
    {"codec_unpack_rejects_every_truncated_prefix", codec_unpack_rejects_every_truncated_prefix},
    {"codec_unpack_rejects_trailing_garbage", codec_unpack_rejects_trailing_garbage},
    {"codec_unpack_rejects_wrong_array_size", codec_unpack_rejects_wrong_array_size},
    {"codec_unpack_rejects_newer_schema_with_eproto",
     codec_unpack_rejects_newer_schema_with_eproto},
    {"codec_unpack_rejects_bad_header_fields", codec_unpack_rejects_bad_header_fields},
    {"codec_unpack_rejects_invalid_utf8_string_value",
     codec_unpack_rejects_invalid_utf8_string_value},
    {"codec_unpack_rejects_invalid_utf8_object_key", codec_unpack_rejects_invalid_utf8_object_key},
    {"codec_unpack_rejects_object_key_with_nul", codec_unpack_rejects_object_key_with_nul},
    {"codec_unpack_rejects_non_json_msgpack_types", codec_unpack_rejects_non_json_msgpack_types},
    {"codec_max_depth_document_round_trips", codec_max_depth_document_round_trips},
    {"codec_document_40_deep_fails_cleanly", codec_document_40_deep_fails_cleanly},
    {"codec_every_packable_depth_unpacks", codec_every_packable_depth_unpacks},
    {"codec_unpack_huge_declared_container_fails_cleanly",
     codec_unpack_huge_declared_container_fails_cleanly},
    {"wjson_dump_matches_jansson", wjson_dump_matches_jansson},
    {"wjson_load_matches_jansson", wjson_load_matches_jansson},
    {"codec_pack_matches_msgpack_c", codec_pack_matches_msgpack_c},
    {"codec_random_bytes_never_crash", codec_random_bytes_never_crash},
    {"codec_mutated_records_never_crash", codec_mutated_records_never_crash},
    {"codec_unpack_agrees_with_the_peeks", codec_unpack_agrees_with_the_peeks},
};

CHECK_MAIN(tests)
