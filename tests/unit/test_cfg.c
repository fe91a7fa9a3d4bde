/* tests/unit/test_cfg.c - settings: defaults, cfg_set, the file parser,
 * argv layering over board profiles and config files, host:port. */
#include <errno.h>
#include <ftw.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cfg.h"
#include "check.h"
#include "wisp_config.h"

/* ==== helpers =========================================================== */

static int rm_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static char *make_tmpdir(void)
{
    char tmpl[] = "/tmp/wisp-test-cfg-XXXXXX";
    char *d = mkdtemp(tmpl);
    CHECK(d != NULL);
    return strdup(d ? d : "/nonexistent");
}

static void rm_rf(char *dir)
{
    CHECK_EQ_INT(nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS), 0);
    free(dir);
}

static void write_text(const char *dir, const char *name, const char *text, char *path_out,
                       size_t cap)
{
    snprintf(path_out, cap, "%s/%s", dir, name);
    FILE *f = fopen(path_out, "w");
    CHECK(f != NULL);
    if (f) {
        fputs(text, f);
        fclose(f);
    }
}

/* cfg_load edits argv in place ("--k=v" gets a NUL): give it copies. */
struct argv_copy {
    int argc;
    char *argv[32];
};

static void argv_make(struct argv_copy *a, const char *const *args)
{
    a->argc = 0;
    a->argv[a->argc++] = strdup("wispd");
    for (; *args && a->argc < 31; args++)
        a->argv[a->argc++] = strdup(*args);
    a->argv[a->argc] = NULL;
}

static void argv_free(struct argv_copy *a)
{
    for (int i = 0; i < a->argc; i++)
        free(a->argv[i]);
}

static int load(struct wisp_cfg *cfg, struct wisp_err *err, const char *const *args)
{
    struct argv_copy a;
    argv_make(&a, args);
    memset(err, 0, sizeof *err);
    int rc = cfg_load(cfg, a.argc, a.argv, err);
    argv_free(&a);
    return rc;
}

static char *print_cfg(const struct wisp_cfg *cfg)
{
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    CHECK(f != NULL);
    cfg_print(cfg, f);
    fclose(f);
    return text;
}

/* A board dir holding generic.conf (empty) so loads are hermetic. */
static char *board_dir(void)
{
    char *d = make_tmpdir();
    char p[512];
    write_text(d, "generic.conf", "# nothing\n", p, sizeof p);
    return d;
}

/* ==== defaults / print ================================================== */

static void cfg_defaults_have_documented_values(void)
{
    struct wisp_cfg cfg;
    memset(&cfg, 0x5a, sizeof cfg);
    cfg_defaults(&cfg);
    CHECK_STREQ(cfg.listen, "127.0.0.1:3233");
    CHECK_STREQ(cfg.data, "./var");
    CHECK_STREQ(cfg.board, "generic");
    CHECK_STREQ(cfg.log_level, "info");
    CHECK_STREQ(cfg.config, "");
    CHECK_STREQ(cfg.tls_cert, "");
    CHECK_STREQ(cfg.kinds, WISP_SOURCE_DIR "/runtimes/kinds.json");
    CHECK_STREQ(cfg.board_dir, WISP_SOURCE_DIR "/board/profiles");
    CHECK_EQ_INT(cfg.store_map_mb, 64);
    CHECK(cfg.store_map_max_mb >= cfg.store_map_mb);
    CHECK_EQ_INT(cfg.entity_cache, 1024);
    CHECK_EQ_INT(cfg.action_max_code_kb, 48 * 1024);
    CHECK_EQ_INT(cfg.max_params_kb, 1024);
    CHECK_EQ_INT(cfg.sequence_max, 50);
    CHECK_EQ_INT(cfg.concurrency_max, 500);
    CHECK_EQ_INT(cfg.drain_timeout_s, 30);
    char host[256];
    unsigned port = 0;
    CHECK_EQ_INT(cfg_split_hostport(cfg.listen, host, sizeof host, &port), 0);
    CHECK_EQ_INT(port, 3233);
}

/* Every default printed must be accepted back by cfg_set (in range), and a
 * printed config re-parses to the same config. */
static void cfg_defaults_are_in_range_and_print_round_trips(void)
{
    struct wisp_cfg cfg;
    cfg_defaults(&cfg);
    char *text = print_cfg(&cfg);
    CHECK(text != NULL);
    if (!text)
        return;
    CHECK(strstr(text, "listen = 127.0.0.1:3233\n") != NULL);
    CHECK(strstr(text, "data = ./var\n") != NULL);
    int lines = 0;
    char *save = NULL, *copy = strdup(text);
    for (char *line = strtok_r(copy, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        char *eq = strstr(line, " = ");
        CHECK(eq != NULL);
        if (!eq)
            continue;
        *eq = '\0';
        struct wisp_cfg probe;
        cfg_defaults(&probe);
        struct wisp_err err = {0};
        int rc = cfg_set(&probe, line, eq + 3, &err);
        if (rc != 0)
            fprintf(stderr, "  default %s = %s refused: %s\n", line, eq + 3, err.msg);
        CHECK_EQ_INT(rc, 0);
        lines++;
    }
    free(copy);
    CHECK(lines >= 20);
    struct wisp_cfg back;
    cfg_defaults(&back);
    CHECK_EQ_INT(cfg_set(&back, "entity-cache", "7", NULL), 0); /* overwritten below */
    struct wisp_err err = {0};
    CHECK_EQ_INT(cfg_parse(&back, text, strlen(text), "printed", &err), 0);
    char *text2 = print_cfg(&back);
    CHECK_STREQ(text2, text);
    free(text2);
    free(text);
}

static void cfg_print_masks_tls_key(void)
{
    struct wisp_cfg cfg;
    cfg_defaults(&cfg);
    CHECK_EQ_INT(cfg_set(&cfg, "tls-key", "/etc/wisp/very-secret.key", NULL), 0);
    CHECK_EQ_INT(cfg_set(&cfg, "tls-cert", "/etc/wisp/cert.pem", NULL), 0);
    char *text = print_cfg(&cfg);
    CHECK(text && strstr(text, "very-secret") == NULL);
    CHECK(text && strstr(text, "tls-key = (set)\n") != NULL);
    CHECK(text && strstr(text, "tls-cert = /etc/wisp/cert.pem\n") != NULL);
    free(text);
    /* usage lists every key */
    char *u = NULL;
    size_t ulen = 0;
    FILE *f = open_memstream(&u, &ulen);
    cfg_usage(f);
    fclose(f);
    CHECK(u && strstr(u, "--listen") && strstr(u, "--store-map-max-mb") &&
          strstr(u, "--drain-timeout-s"));
    free(u);
}

/* ==== cfg_set =========================================================== */

static void cfg_set_range_errors_name_key_and_range(void)
{
    struct {
        const char *key, *value;
        int rc;
        const char *msg1, *msg2;
    } rows[] = {
        {"store-map-mb", "0", -ERANGE, "store-map-mb", "out of range 1.."},
        {"http-max-conns", "65537", -ERANGE, "http-max-conns", "65537 out of range 1..65536"},
        {"drain-timeout-s", "3601", -ERANGE, "drain-timeout-s", "0..3600"},
        {"concurrency-max", "501", -ERANGE, "concurrency-max", "1..500"},
        {"entity-cache", "abc", -EINVAL, "entity-cache", "not a number"},
        {"entity-cache", "-1", -EINVAL, "entity-cache", "not a number"},
        {"entity-cache", "", -EINVAL, "entity-cache", "not a number"},
        {"entity-cache", "12x", -EINVAL, "entity-cache", "not a number"},
        {"entity-cache", " 5", -EINVAL, "entity-cache", "not a number"},
        {"entity-cache", "99999999999999999999999", -EINVAL, "entity-cache", "not a number"},
        {"no-such-key", "1", -EINVAL, "no-such-key", "unknown"},
    };
    for (size_t i = 0; i < WISP_ARRAY_LEN(rows); i++) {
        struct wisp_cfg cfg;
        cfg_defaults(&cfg);
        uint64_t before = cfg.entity_cache;
        struct wisp_err err = {0};
        int rc = cfg_set(&cfg, rows[i].key, rows[i].value, &err);
        if (rc != rows[i].rc)
            fprintf(stderr, "  row %zu (%s=%s): rc %d\n", i, rows[i].key, rows[i].value, rc);
        CHECK_EQ_INT(rc, rows[i].rc);
        CHECK_EQ_INT(err.code, rows[i].rc);
        if (!strstr(err.msg, rows[i].msg1) || !strstr(err.msg, rows[i].msg2))
            fprintf(stderr, "  row %zu: message '%s'\n", i, err.msg);
        CHECK(strstr(err.msg, rows[i].msg1) != NULL);
        CHECK(strstr(err.msg, rows[i].msg2) != NULL);
        CHECK_EQ_INT(cfg.entity_cache, before); /* a refused value changes nothing */
    }
}

static void cfg_set_accepts_bounds_and_strings(void)
{
    struct wisp_cfg cfg;
    cfg_defaults(&cfg);
    CHECK_EQ_INT(cfg_set(&cfg, "drain-timeout-s", "0", NULL), 0);
    CHECK_EQ_INT(cfg.drain_timeout_s, 0);
    CHECK_EQ_INT(cfg_set(&cfg, "drain-timeout-s", "3600", NULL), 0);
    CHECK_EQ_INT(cfg.drain_timeout_s, 3600);
    CHECK_EQ_INT(cfg_set(&cfg, "http-max-conns", "65536", NULL), 0);
    CHECK_EQ_INT(cfg.http_max_conns, 65536);
    CHECK_EQ_INT(cfg_set(&cfg, "entity-cache", "0", NULL), 0);
    CHECK_EQ_INT(cfg.entity_cache, 0);
    CHECK_EQ_INT(cfg_set(&cfg, "data", "/srv/wisp data", NULL), 0);
    CHECK_STREQ(cfg.data, "/srv/wisp data");
    /* listen holds 255 characters, not 256 */
    char v[300];
    memset(v, 'h', sizeof v);
    v[255] = '\0';
    CHECK_EQ_INT(cfg_set(&cfg, "listen", v, NULL), 0);
    CHECK_EQ_INT(strlen(cfg.listen), 255);
    v[255] = 'h';
    v[256] = '\0';
    struct wisp_err err = {0};
    CHECK_EQ_INT(cfg_set(&cfg, "listen", v, &err), -ERANGE);
    CHECK(strstr(err.msg, "listen") != NULL);
    CHECK(strstr(err.msg, "255") != NULL);
    CHECK_EQ_INT(strlen(cfg.listen), 255); /* unchanged */
}

/* ==== cfg_parse ========================================================= */

static void cfg_parse_accepts_every_line_form(void)
{
    static const char text[] = "# a comment line\n"
                               "listen = 10.0.0.1:80\n"
                               "entity-cache=5\n"
                               "sequence-max 7\n"
                               "\n"
                               "   \t  \n"
                               "  data\t=\t/srv/wisp   # trailing comment\n"
                               "log-level debug\r\n"
                               "   # indented comment = 3\n"
                               "http-max-conns\t\t9\n"
                               "mqtt = mqtt://broker:1883";
    struct wisp_cfg cfg;
    cfg_defaults(&cfg);
    struct wisp_err err = {0};
    int rc = cfg_parse(&cfg, text, strlen(text), "t.conf", &err);
    if (rc)
        fprintf(stderr, "  %s\n", err.msg);
    CHECK_EQ_INT(rc, 0);
    CHECK_STREQ(cfg.listen, "10.0.0.1:80");
    CHECK_EQ_INT(cfg.entity_cache, 5);
    CHECK_EQ_INT(cfg.sequence_max, 7);
    CHECK_STREQ(cfg.data, "/srv/wisp");
    CHECK_STREQ(cfg.log_level, "debug");
    CHECK_EQ_INT(cfg.http_max_conns, 9);
    CHECK_STREQ(cfg.mqtt, "mqtt://broker:1883");
    /* empty input and only comments are fine */
    CHECK_EQ_INT(cfg_parse(&cfg, "", 0, "empty", &err), 0);
    CHECK_EQ_INT(cfg_parse(&cfg, "# x\n\n#y", 7, "c", &err), 0);
    CHECK_EQ_INT(cfg.entity_cache, 5);
}

static void cfg_parse_errors_name_origin_and_line(void)
{
    struct {
        const char *text, *msg;
        int rc;
    } rows[] = {
        {"listen = 1.2.3.4:5\n# c\n\nbogus = 1\n", "board.conf:4: unknown setting 'bogus'", -EINVAL},
        {"bogus\n", "board.conf:1: unknown setting 'bogus'", -EINVAL},
        {"\n\nhttp-max-conns = 0\n", "board.conf:3: http-max-conns: 0 out of range", -ERANGE},
        {"entity-cache = lots\n", "board.conf:1: entity-cache: 'lots' is not a number", -EINVAL},
        {"entity-cache = 5 6\n", "board.conf:1: entity-cache", -EINVAL},
    };
    for (size_t i = 0; i < WISP_ARRAY_LEN(rows); i++) {
        struct wisp_cfg cfg;
        cfg_defaults(&cfg);
        struct wisp_err err = {0};
        int rc = cfg_parse(&cfg, rows[i].text, strlen(rows[i].text), "board.conf", &err);
        CHECK_EQ_INT(rc, rows[i].rc);
        CHECK_EQ_INT(err.code, rows[i].rc);
        if (!strstr(err.msg, rows[i].msg))
            fprintf(stderr, "  row %zu: got '%s', want '%s'\n", i, err.msg, rows[i].msg);
        CHECK(strstr(err.msg, rows[i].msg) != NULL);
    }
    /* a NUL byte in a line */
    struct wisp_cfg cfg;
    cfg_defaults(&cfg);
    struct wisp_err err = {0};
    CHECK_EQ_INT(cfg_parse(&cfg, "data = a\0b\n", 11, "n.conf", &err), -EINVAL);
    CHECK(strstr(err.msg, "n.conf:1") != NULL);
    /* a line longer than any setting can hold */
    size_t big = PATH_MAX + 1000;
    char *text = malloc(big);
    memcpy(text, "data = ", 7);
    memset(text + 7, 'x', big - 7);
    CHECK_EQ_INT(cfg_parse(&cfg, text, big, "long.conf", &err), -EINVAL);
    CHECK(strstr(err.msg, "long.conf:1") != NULL);
    free(text);
}

static void cfg_parse_random_bytes_never_crash(void)
{
    uint64_t x = 99;
    char buf[256];
    const char alphabet[] = "ab=# \t\n\r-0123456789:listen data entity-cache sequence-max";
    for (int it = 0; it < 3000; it++) {
        size_t len = (size_t)(x % sizeof buf);
        for (size_t i = 0; i < len; i++) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            buf[i] = (it & 1) ? (char)x : alphabet[x % (sizeof alphabet - 1)];
        }
        char *p = malloc(len ? len : 1);
        memcpy(p, buf, len);
        int rc = cfg_fuzz_one((const uint8_t *)p, len);
        CHECK(rc == 0 || rc == -EINVAL || rc == -ERANGE);
        free(p);
        x += 0x9e3779b97f4a7c15ull;
    }
}

/* ==== cfg_load ========================================================== */

static void cfg_load_flag_forms(void)
{
    char *bd = board_dir();
    struct wisp_cfg cfg;
    struct wisp_err err;
    const char *a1[] = {"--board-dir", bd, "--listen=0.0.0.0:8080", NULL};
    CHECK_EQ_INT(load(&cfg, &err, a1), 0);
    CHECK_STREQ(cfg.listen, "0.0.0.0:8080");
    const char *a2[] = {"--board-dir", bd, "--listen", "127.0.0.1:9090", "--entity-cache", "3",
                        NULL};
    CHECK_EQ_INT(load(&cfg, &err, a2), 0);
    CHECK_STREQ(cfg.listen, "127.0.0.1:9090");
    CHECK_EQ_INT(cfg.entity_cache, 3);
    /* a value may itself contain '=' */
    const char *a3[] = {"--board-dir=", NULL};
    CHECK(load(&cfg, &err, a3) < 0); /* empty board dir: no profile there */
    const char *a4[] = {"--board-dir", bd, "--mqtt=mqtt://h:1883/?a=b", NULL};
    CHECK_EQ_INT(load(&cfg, &err, a4), 0);
    CHECK_STREQ(cfg.mqtt, "mqtt://h:1883/?a=b");
    /* the last of repeated flags wins */
    const char *a5[] = {"--board-dir", bd, "--sequence-max=3", "--sequence-max=4", NULL};
    CHECK_EQ_INT(load(&cfg, &err, a5), 0);
    CHECK_EQ_INT(cfg.sequence_max, 4);
    rm_rf(bd);
}

static void cfg_load_help_and_print_config(void)
{
    char *bd = board_dir();
    struct wisp_cfg cfg;
    struct wisp_err err;
    const char *h1[] = {"--help", NULL};
    CHECK_EQ_INT(load(&cfg, &err, h1), 1);
    const char *h2[] = {"--listen=1.2.3.4:5", "-h", NULL};
    CHECK_EQ_INT(load(&cfg, &err, h2), 1);
    const char *p1[] = {"--board-dir", bd, "--print-config", "--listen=1.2.3.4:5", NULL};
    CHECK_EQ_INT(load(&cfg, &err, p1), 2);
    CHECK_STREQ(cfg.listen, "1.2.3.4:5"); /* the config is still built */
    rm_rf(bd);
}

static void cfg_load_argument_errors(void)
{
    char *bd = board_dir();
    struct wisp_cfg cfg;
    struct wisp_err err;
    const char *a1[] = {"--board-dir", bd, "--listen", NULL};
    CHECK_EQ_INT(load(&cfg, &err, a1), -EINVAL);
    CHECK(strstr(err.msg, "--listen needs a value") != NULL);
    const char *a2[] = {"--board-dir", bd, "stray", NULL};
    CHECK_EQ_INT(load(&cfg, &err, a2), -EINVAL);
    CHECK(strstr(err.msg, "unexpected argument 'stray'") != NULL);
    const char *a3[] = {"-x", NULL};
    CHECK_EQ_INT(load(&cfg, &err, a3), -EINVAL);
    CHECK(strstr(err.msg, "'-x'") != NULL);
    const char *a4[] = {"--board-dir", bd, "--bogus=1", NULL};
    CHECK_EQ_INT(load(&cfg, &err, a4), -EINVAL);
    CHECK(strstr(err.msg, "bogus") != NULL);
    const char *a5[] = {"--board-dir", bd, "--http-max-conns=0", NULL};
    CHECK_EQ_INT(load(&cfg, &err, a5), -ERANGE);
    CHECK(strstr(err.msg, "http-max-conns") != NULL);
    const char *a6[] = {"--board-dir", bd, "--store-map-mb=100", "--store-map-max-mb=50", NULL};
    CHECK_EQ_INT(load(&cfg, &err, a6), -ERANGE);
    CHECK(strstr(err.msg, "store-map-max-mb") != NULL);
    const char *a7[] = {"--board-dir", bd, "--log-level=loud", NULL};
    CHECK_EQ_INT(load(&cfg, &err, a7), -EINVAL);
    CHECK(strstr(err.msg, "log-level") != NULL);
    const char *a8[] = {"--board-dir", bd, "--listen=nohostport", NULL};
    CHECK_EQ_INT(load(&cfg, &err, a8), -EINVAL);
    CHECK(strstr(err.msg, "listen") != NULL);
    const char *a9[] = {"--board-dir", bd, "--tls-cert=/x/cert.pem", NULL};
    CHECK_EQ_INT(load(&cfg, &err, a9), -EINVAL);
    CHECK(strstr(err.msg, "tls-key") != NULL);
    const char *a10[] = {"--board-dir", bd, "--board=../etc", NULL};
    CHECK_EQ_INT(load(&cfg, &err, a10), -EINVAL);
    const char *a11[] = {"--board-dir", bd, "--board=.hidden", NULL};
    CHECK_EQ_INT(load(&cfg, &err, a11), -EINVAL);
    const char *a12[] = {"--board-dir", bd, "--board=nosuch", NULL};
    CHECK_EQ_INT(load(&cfg, &err, a12), -ENOENT);
    CHECK(strstr(err.msg, "nosuch") != NULL);
    const char *a13[] = {"--board-dir", bd, "--config", "/nonexistent/wisp.conf", NULL};
    CHECK_EQ_INT(load(&cfg, &err, a13), -ENOENT);
    CHECK(strstr(err.msg, "/nonexistent/wisp.conf") != NULL);
    /* limits that bound each other: a default outside its range is refused */
    const char *a14[] = {"--board-dir", bd, "--action-memory-max-mb=256",
                         "--action-memory-default-mb=300", NULL};
    CHECK_EQ_INT(load(&cfg, &err, a14), -ERANGE);
    CHECK(strstr(err.msg, "action-memory-max-mb (256) is below action-memory-default-mb (300)"));
    const char *a15[] = {"--board-dir", bd, "--action-timeout-max-ms=1000", NULL};
    CHECK_EQ_INT(load(&cfg, &err, a15), -ERANGE); /* the 60000 ms default is above it */
    CHECK(strstr(err.msg, "action-timeout-default-ms") != NULL);
    const char *a16[] = {"--board-dir", bd, "--action-memory-max-mb=256",
                         "--action-memory-default-mb=128", NULL};
    CHECK_EQ_INT(load(&cfg, &err, a16), 0);
    CHECK_EQ_INT((long long)cfg.action_memory_max_mb, 256);
    rm_rf(bd);
}

static void cfg_load_layers_board_file_flags(void)
{
    char *bd = make_tmpdir();
    char p[512], conf[512];
    write_text(bd, "myboard.conf",
               "entity-cache = 11\nhttp-max-conns = 22\nsequence-max = 33\n", p, sizeof p);
    write_text(bd, "generic.conf", "entity-cache = 99\n", p, sizeof p);
    write_text(bd, "wisp.conf", "http-max-conns = 44\nsequence-max = 55\n", conf, sizeof conf);
    struct wisp_cfg cfg;
    struct wisp_err err;
    const char *a[] = {"--board-dir", bd,           "--board", "myboard",
                       "--config",    conf,         "--sequence-max=66", NULL};
    int rc = load(&cfg, &err, a);
    if (rc)
        fprintf(stderr, "  %s\n", err.msg);
    CHECK_EQ_INT(rc, 0);
    CHECK_EQ_INT(cfg.entity_cache, 11);   /* board */
    CHECK_EQ_INT(cfg.http_max_conns, 44); /* file over board */
    CHECK_EQ_INT(cfg.sequence_max, 66);   /* flag over file */
    CHECK_STREQ(cfg.board, "myboard");
    CHECK_STREQ(cfg.config, conf);
    CHECK_STREQ(cfg.board_dir, bd);
    /* without --board the default profile (generic) applies */
    const char *b[] = {"--board-dir", bd, NULL};
    CHECK_EQ_INT(load(&cfg, &err, b), 0);
    CHECK_EQ_INT(cfg.entity_cache, 99);
    CHECK_STREQ(cfg.board, "generic");
    rm_rf(bd);
}

static void cfg_load_board_named_by_config_file(void)
{
    char *bd = make_tmpdir();
    char p[512], conf[512], line[700];
    write_text(bd, "generic.conf", "entity-cache = 1\n", p, sizeof p);
    write_text(bd, "other.conf", "entity-cache = 77\nhttp-max-conns = 8\n", p, sizeof p);
    snprintf(line, sizeof line, "board = other\nboard-dir = %s\nhttp-max-conns = 9\n", bd);
    write_text(bd, "wisp.conf", line, conf, sizeof conf);
    struct wisp_cfg cfg;
    struct wisp_err err;
    const char *a[] = {"--config", conf, NULL};
    int rc = load(&cfg, &err, a);
    if (rc)
        fprintf(stderr, "  %s\n", err.msg);
    CHECK_EQ_INT(rc, 0);
    CHECK_EQ_INT(cfg.entity_cache, 77); /* from the board the file names */
    CHECK_EQ_INT(cfg.http_max_conns, 9);
    CHECK_STREQ(cfg.board, "other");
    /* a flag naming the board beats the file */
    const char *b[] = {"--config", conf, "--board=generic", NULL};
    CHECK_EQ_INT(load(&cfg, &err, b), 0);
    CHECK_EQ_INT(cfg.entity_cache, 1);
    CHECK_STREQ(cfg.board, "generic");
    rm_rf(bd);
}

static void cfg_load_config_file_error_names_file_and_line(void)
{
    char *bd = board_dir();
    char conf[512];
    write_text(bd, "bad.conf", "# fine\nlisten = 1.2.3.4:5\nentity-cache = many\n", conf,
               sizeof conf);
    struct wisp_cfg cfg;
    struct wisp_err err;
    const char *a[] = {"--board-dir", bd, "--config", conf, NULL};
    CHECK_EQ_INT(load(&cfg, &err, a), -EINVAL);
    char want[600];
    snprintf(want, sizeof want, "%s:3:", conf);
    if (!strstr(err.msg, want))
        fprintf(stderr, "  got '%s'\n", err.msg);
    CHECK(strstr(err.msg, want) != NULL);
    rm_rf(bd);
}

/* ==== host:port ========================================================= */

static void cfg_split_hostport_table(void)
{
    struct {
        const char *in;
        int rc;
        const char *host;
        unsigned port;
    } rows[] = {
        {"127.0.0.1:3233", 0, "127.0.0.1", 3233},
        {"127.0.0.1:65535", 0, "127.0.0.1", 65535},
        {"localhost:0", 0, "localhost", 0},
        {"[::1]:0", 0, "::1", 0},
        {"[::1]:8080", 0, "::1", 8080},
        {"[fe80::1%eth0]:80", 0, "fe80::1%eth0", 80},
        {"0.0.0.0:00080", 0, "0.0.0.0", 80},
        {":80", -EINVAL, NULL, 0},
        {"host:", -EINVAL, NULL, 0},
        {"host:65536", -EINVAL, NULL, 0},
        {"host:99999", -EINVAL, NULL, 0},
        {"host:123456", -EINVAL, NULL, 0},
        {"host:abc", -EINVAL, NULL, 0},
        {"host:-1", -EINVAL, NULL, 0},
        {"host:+1", -EINVAL, NULL, 0},
        {"host: 1", -EINVAL, NULL, 0},
        {"host", -EINVAL, NULL, 0},
        {"", -EINVAL, NULL, 0},
        {"[::1]", -EINVAL, NULL, 0},
        {"[::1]80", -EINVAL, NULL, 0},
        {"[]:80", -EINVAL, NULL, 0},
        {"[::1:80", -EINVAL, NULL, 0},
    };
    for (size_t i = 0; i < WISP_ARRAY_LEN(rows); i++) {
        char host[64] = "unchanged";
        unsigned port = 12345;
        int rc = cfg_split_hostport(rows[i].in, host, sizeof host, &port);
        if (rc != rows[i].rc)
            fprintf(stderr, "  '%s': rc %d\n", rows[i].in, rc);
        CHECK_EQ_INT(rc, rows[i].rc);
        if (rows[i].rc == 0) {
            CHECK_STREQ(host, rows[i].host);
            CHECK_EQ_INT(port, rows[i].port);
        }
    }
    /* a host that does not fit the caller's buffer */
    char small[4];
    unsigned port;
    CHECK_EQ_INT(cfg_split_hostport("abcd:1", small, sizeof small, &port), -EINVAL);
    CHECK_EQ_INT(cfg_split_hostport("abc:1", small, sizeof small, &port), 0);
    CHECK_STREQ(small, "abc");
}

/* ==== board auto ========================================================= */

static void cfg_board_pick_table(void)
{
    static const struct {
        const char *model;
        uint64_t mem_mb;
        const char *pick;
    } rows[] = {
        {"Raspberry Pi Zero 2 W Rev 1.0", 427, "arm-512"},
        {"Raspberry Pi 3 Model A Plus Rev 1.0", 432, "arm-512"},
        {"Raspberry Pi 3 Model B Rev 1.2", 926, "pi3"},
        {"Raspberry Pi 4 Model B Rev 1.4", 3794, "pi4"},
        {"Raspberry Pi 5 Model B Rev 1.0", 8052, "pi4"},
        {"Pine64 RockPro64 v2.1", 3868, "pi4"},
        {"", 480, "arm-512"},   /* a PC, or any machine, in a 512 MB cgroup */
        {"", 1900, "generic"},  /* a 2 GB PC */
        {"", 3800, "x86-small"}, /* 4 GB and up */
        {"", 0, "generic"},     /* memory unknown */
    };
    for (size_t i = 0; i < WISP_ARRAY_LEN(rows); i++) {
        const char *got = cfg_board_pick(rows[i].model, rows[i].mem_mb);
        if (strcmp(got, rows[i].pick) != 0)
            fprintf(stderr, "  '%s' %llu MB: %s\n", rows[i].model,
                    (unsigned long long)rows[i].mem_mb, got);
        CHECK_STREQ(got, rows[i].pick);
    }
}

/* Every shipped profile loads (no unknown key, values in range), and auto
 * picks one of them for this machine and says why. */
static void cfg_load_every_profile_and_auto(void)
{
    static const char *const names[] = {"auto", "generic", "pi3", "pi4", "x86-small", "arm-512"};
    for (size_t i = 0; i < WISP_ARRAY_LEN(names); i++) {
        struct wisp_cfg cfg;
        struct wisp_err err;
        const char *a[] = {"--board", names[i], "--board-dir", WISP_SOURCE_DIR "/board/profiles",
                           NULL};
        int rc = load(&cfg, &err, a);
        if (rc)
            fprintf(stderr, "  %s: %s\n", names[i], err.msg);
        CHECK_EQ_INT(rc, 0);
        if (i == 0) {
            CHECK(strncmp(cfg.board_auto, "board auto: ", 12) == 0);
            CHECK(strcmp(cfg.board, "auto") != 0);
            char want[80];
            snprintf(want, sizeof want, "board auto: %s (", cfg.board);
            CHECK(strncmp(cfg.board_auto, want, strlen(want)) == 0);
        } else {
            CHECK_STREQ(cfg.board, names[i]);
            CHECK_STREQ(cfg.board_auto, "");
        }
    }
}

static const struct check_test tests[] = {
    {"cfg_board_pick_table", cfg_board_pick_table},
    {"cfg_load_every_profile_and_auto", cfg_load_every_profile_and_auto},
    {"cfg_defaults_have_documented_values", cfg_defaults_have_documented_values},
    {"cfg_defaults_are_in_range_and_print_round_trips",
     cfg_defaults_are_in_range_and_print_round_trips},
    {"cfg_print_masks_tls_key", cfg_print_masks_tls_key},
    {"cfg_set_range_errors_name_key_and_range", cfg_set_range_errors_name_key_and_range},
    {"cfg_set_accepts_bounds_and_strings", cfg_set_accepts_bounds_and_strings},
    {"cfg_parse_accepts_every_line_form", cfg_parse_accepts_every_line_form},
    {"cfg_parse_errors_name_origin_and_line", cfg_parse_errors_name_origin_and_line},
    {"cfg_parse_random_bytes_never_crash", cfg_parse_random_bytes_never_crash},
    {"cfg_load_flag_forms", cfg_load_flag_forms},
    {"cfg_load_help_and_print_config", cfg_load_help_and_print_config},
    {"cfg_load_argument_errors", cfg_load_argument_errors},
    {"cfg_load_layers_board_file_flags", cfg_load_layers_board_file_flags},
    {"cfg_load_board_named_by_config_file", cfg_load_board_named_by_config_file},
    {"cfg_load_config_file_error_names_file_and_line",
     cfg_load_config_file_error_names_file_and_line},
    {"cfg_split_hostport_table", cfg_split_hostport_table},
};

CHECK_MAIN(tests)
