/* tests/unit/test_feed_mqtt.c - the mqtt feed (feeds/mqtt.c) against a
 * real broker: each test starts its own /usr/sbin/mosquitto on a free
 * loopback port (persistence off) and stops it by its PID. Messages come in
 * through /usr/bin/mosquitto_pub and go out to /usr/bin/mosquitto_sub, so
 * this file needs no libmosquitto. Waits run the event loop with a
 * deadline; nothing asserts on timing. WISP_TEST_VERBOSE=1 shows the
 * broker's and the clients' stderr. */
#include <arpa/inet.h>
#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"
#include "feed.h"
#include "plat.h"

#define MOSQUITTO "/usr/sbin/mosquitto"
#define MOSQUITTO_PUB "/usr/bin/mosquitto_pub"
#define MOSQUITTO_SUB "/usr/bin/mosquitto_sub"
#define STDBUF "/usr/bin/stdbuf"
#define OPENSSL "/usr/bin/openssl"

/* ---- child processes -------------------------------------------------- */

/* Starts argv[0] with stdin and stderr on /dev/null (stderr kept with
 * WISP_TEST_VERBOSE) and stdout on out_fd (or /dev/null). */
static pid_t spawn(char *const argv[], int out_fd)
{
    pid_t pid = fork();
    if (pid == 0) {
        int devnull = open("/dev/null", O_RDWR);
        dup2(devnull, 0);
        dup2(out_fd >= 0 ? out_fd : devnull, 1);
        if (!getenv("WISP_TEST_VERBOSE"))
            dup2(devnull, 2);
        execv(argv[0], argv);
        _exit(127);
    }
    return pid;
}

/* Waits for pid up to ms; kills it when it takes longer. Exit status, or
 * -1 (killed, or not a normal exit). */
static int wait_pid(pid_t pid, int ms)
{
    int64_t end = plat_clock_mono_us() + (int64_t)ms * 1000;
    int st = 0;
    for (;;) {
        pid_t r = waitpid(pid, &st, WNOHANG);
        if (r == pid)
            return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
        if (r < 0)
            return -1;
        if (plat_clock_mono_us() > end) {
            kill(pid, SIGKILL);
            waitpid(pid, &st, 0);
            return -1;
        }
        usleep(5000);
    }
}

static int run(char *const argv[])
{
    pid_t pid = spawn(argv, -1);
    return pid < 0 ? -1 : wait_pid(pid, 10000);
}

/* ---- the broker ------------------------------------------------------- */

struct broker {
    pid_t pid;
    int port;
    char dir[64];
    char portstr[16];
    bool tls;
};

static int free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t sl = sizeof sin;
    int port = 0;
    if (fd >= 0 && bind(fd, (struct sockaddr *)&sin, sizeof sin) == 0 &&
        getsockname(fd, (struct sockaddr *)&sin, &sl) == 0)
        port = ntohs(sin.sin_port);
    if (fd >= 0)
        close(fd);
    return port;
}

static bool port_open(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in sin = {.sin_family = AF_INET,
                              .sin_port = htons((uint16_t)port),
                              .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    bool ok = fd >= 0 && connect(fd, (struct sockaddr *)&sin, sizeof sin) == 0;
    if (fd >= 0)
        close(fd);
    return ok;
}

static bool broker_dir(struct broker *b)
{
    snprintf(b->dir, sizeof b->dir, "/tmp/wisp-mqtt-XXXXXX");
    if (!mkdtemp(b->dir))
        return false;
    chmod(b->dir, 0755); /* mosquitto drops root for its own user: it reads the certs */
    return true;
}

/* Starts the broker on b->port (a free one when 0) and waits until it
 * takes connections. */
static bool broker_start(struct broker *b)
{
    if (!b->port)
        b->port = free_port();
    snprintf(b->portstr, sizeof b->portstr, "%d", b->port);
    char conf[128];
    snprintf(conf, sizeof conf, "%s/mosquitto.conf", b->dir);
    FILE *fp = fopen(conf, "w");
    if (!fp)
        return false;
    fprintf(fp, "listener %d 127.0.0.1\nallow_anonymous true\npersistence false\n", b->port);
    if (b->tls)
        fprintf(fp, "cafile %s/ca.crt\ncertfile %s/srv.crt\nkeyfile %s/srv.key\n", b->dir, b->dir,
                b->dir);
    fclose(fp);
    char *argv[] = {MOSQUITTO, "-c", conf, NULL};
    b->pid = spawn(argv, -1);
    if (b->pid < 0)
        return false;
    int64_t end = plat_clock_mono_us() + 5000000;
    while (!port_open(b->port)) {
        int st;
        if (waitpid(b->pid, &st, WNOHANG) == b->pid || plat_clock_mono_us() > end) {
            fprintf(stderr, "  the broker did not start on port %d\n", b->port);
            kill(b->pid, SIGKILL);
            waitpid(b->pid, &st, 0);
            b->pid = 0;
            return false;
        }
        usleep(20000);
    }
    return true;
}

static void broker_kill(struct broker *b, int sig)
{
    if (b->pid > 0) {
        kill(b->pid, sig);
        if (sig == SIGKILL || sig == SIGTERM) {
            wait_pid(b->pid, 5000);
            b->pid = 0;
        }
    }
}

/* ---- the fixture ------------------------------------------------------ */

struct fx {
    struct event_base *base;
    struct event *hb; /* keeps the loop turning while we wait */
    struct broker br;
    struct feed_env env;
    void *self;
    char url[256];
    char client_id[64];
    json_t *fires; /* [[trigger, params], ...] */
    int fire_rc;
    const char *busy_trigger; /* fires of it answer -EBUSY while busy_left > 0 */
    int busy_left, refusals;
    int leave; /* inside the next fire: 1 unbinds `victim`, 2 stops the adapter */
    struct feed_binding *victim;
    int connects;
    int pub_done, pub_rc;
};

static int on_fire(void *ctx, const char *ns, const char *trigger, const json_t *params)
{
    struct fx *f = ctx;
    CHECK_STREQ(ns, "guest");
    if (f->busy_trigger && strcmp(trigger, f->busy_trigger) == 0 && f->busy_left > 0) {
        f->busy_left--;
        f->refusals++;
        return -EBUSY;
    }
    json_array_append_new(f->fires, json_pack("[s, o]", trigger, json_deep_copy(params)));
    if (f->leave == 1) {
        f->leave = 0;
        feed_mqtt_ops.unbind(f->self, f->victim);
    } else if (f->leave == 2) {
        f->leave = 0;
        feed_mqtt_ops.stop(f->self);
        f->self = NULL;
    }
    return f->fire_rc;
}

static void on_connect(void *arg)
{
    struct fx *f = arg;
    f->connects++;
}

static void on_published(void *arg, int rc)
{
    struct fx *f = arg;
    f->pub_done++;
    f->pub_rc = rc;
}

static void heartbeat(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    (void)arg;
}

#define WAIT_UNTIL(f, cond, ms)                                                                    \
    do {                                                                                           \
        int64_t end_ = plat_clock_mono_us() + (int64_t)(ms)*1000;                                  \
        while (!(cond) && plat_clock_mono_us() < end_)                                             \
            event_base_loop((f)->base, EVLOOP_ONCE);                                               \
    } while (0)

static void spin(struct fx *f, int ms)
{
    WAIT_UNTIL(f, false, ms);
}

static int fx_start(struct fx *f, const char *url, struct wisp_err *err)
{
    f->env = (struct feed_env){
        .base = f->base, .fire = on_fire, .ctx = f, .mqtt_url = url, .client_id = f->client_id};
    memset(err, 0, sizeof *err);
    int rc = feed_mqtt_ops.start(&f->env, &f->self, err);
    if (rc == 0)
        feed_mqtt_on_connect(f->self, on_connect, f);
    return rc;
}

/* The loop and, with a broker, a broker and a started adapter. */
static bool fx_init(struct fx *f, bool broker)
{
    memset(f, 0, sizeof *f);
    signal(SIGPIPE, SIG_IGN);
    f->base = event_base_new();
    f->hb = event_new(f->base, -1, EV_PERSIST, heartbeat, NULL);
    struct timeval tv = {0, 20000};
    event_add(f->hb, &tv);
    f->fires = json_array();
    snprintf(f->client_id, sizeof f->client_id, "wisp-test-%d", (int)getpid());
    if (!broker)
        return true;
    if (!broker_dir(&f->br) || !broker_start(&f->br)) {
        CHECK(!"broker");
        return false;
    }
    snprintf(f->url, sizeof f->url, "mqtt://127.0.0.1:%d", f->br.port);
    struct wisp_err err;
    int rc = fx_start(f, f->url, &err);
    if (rc)
        fprintf(stderr, "  start: %s\n", err.msg);
    CHECK_EQ_INT(rc, 0);
    return rc == 0;
}

static void fx_done(struct fx *f)
{
    if (f->self)
        feed_mqtt_ops.stop(f->self);
    f->self = NULL;
    broker_kill(&f->br, SIGTERM);
    if (f->br.dir[0])
        plat_rm_rf(f->br.dir);
    event_free(f->hb);
    event_base_free(f->base);
    json_decref(f->fires);
}

static int bind_json(struct fx *f, const char *trigger, const char *json, struct feed_binding **b,
                     struct wisp_err *err)
{
    json_error_t je;
    json_t *p = json_loads(json, 0, &je);
    if (!p) {
        fprintf(stderr, "bad test JSON: %s: %s\n", json, je.text);
        return -999;
    }
    memset(err, 0, sizeof *err);
    int rc = feed_mqtt_ops.bind(f->self, "guest", trigger, p, NULL, b, err);
    json_decref(p);
    if (rc && rc != -EINVAL)
        fprintf(stderr, "  bind: %s\n", err->msg);
    return rc;
}

static long long st_int(struct fx *f, const struct feed_binding *b, const char *key)
{
    json_t *s = feed_mqtt_ops.status(f->self, b);
    json_t *v = json_object_get(s, key);
    long long n = json_is_integer(v) ? json_integer_value(v) : json_is_true(v) ? 1 : 0;
    json_decref(s);
    return n;
}

static bool subscribed(struct fx *f, const struct feed_binding *b)
{
    return st_int(f, b, "subscribed") == 1;
}

static int nfires(struct fx *f, const char *trigger)
{
    int n = 0;
    for (size_t i = 0; i < json_array_size(f->fires); i++)
        n +=
            strcmp(json_string_value(json_array_get(json_array_get(f->fires, i), 0)), trigger) == 0;
    return n;
}

/* The params of trigger's latest fire (borrowed), or NULL. */
static json_t *last_params(struct fx *f, const char *trigger)
{
    json_t *found = NULL;
    for (size_t i = 0; i < json_array_size(f->fires); i++) {
        json_t *e = json_array_get(f->fires, i);
        if (strcmp(json_string_value(json_array_get(e, 0)), trigger) == 0)
            found = json_array_get(e, 1);
    }
    return found;
}

static const char *pstr(json_t *params, const char *key)
{
    return json_string_value(json_object_get(params, key));
}

/* mosquitto_pub -t topic -m msg -q qos (msg NULL: an empty message). */
static void pub(struct fx *f, const char *topic, const char *msg, int qos)
{
    char q[4];
    snprintf(q, sizeof q, "%d", qos);
    char *argv[16] = {MOSQUITTO_PUB, "-h",          "127.0.0.1", "-p", f->br.portstr,
                      "-t",          (char *)topic, "-q",        q};
    int n = 9;
    if (msg) {
        argv[n++] = "-m";
        argv[n++] = (char *)msg;
    } else {
        argv[n++] = "-n";
    }
    argv[n] = NULL;
    CHECK_EQ_INT(run(argv), 0);
}

static void pub_bytes(struct fx *f, const char *topic, const void *data, size_t len)
{
    char path[128];
    snprintf(path, sizeof path, "%s/payload.bin", f->br.dir);
    CHECK_EQ_INT(plat_write_file_fast(path, data, len, 0644), 0);
    char *argv[] = {MOSQUITTO_PUB, "-h", "127.0.0.1", "-p", f->br.portstr, "-t",
                    (char *)topic, "-q", "1",         "-f", path,          NULL};
    CHECK_EQ_INT(run(argv), 0);
}

/* ---- a mosquitto_sub subscriber --------------------------------------- */

struct sub_proc {
    pid_t pid;
    int fd;
    struct event *ev;
    char out[8192];
    size_t len;
};

static void sub_read(evutil_socket_t fd, short what, void *arg)
{
    (void)what;
    struct sub_proc *sp = arg;
    ssize_t n = read(fd, sp->out + sp->len, sizeof sp->out - 1 - sp->len);
    if (n > 0) {
        sp->len += (size_t)n;
        sp->out[sp->len] = '\0';
    } else if (n == 0 || (errno != EAGAIN && errno != EINTR)) {
        event_del(sp->ev);
    }
}

/* mosquitto_sub -d (line-buffered through stdbuf, so its "received SUBACK"
 * shows when it is subscribed) for count messages on topic. */
static bool sub_start(struct fx *f, struct sub_proc *sp, const char *topic, const char *count)
{
    memset(sp, 0, sizeof *sp);
    int p[2];
    if (pipe2(p, O_CLOEXEC) < 0)
        return false;
    char *argv[] = {STDBUF, "-oL",         MOSQUITTO_SUB, "-h",          "127.0.0.1",
                    "-p",   f->br.portstr, "-t",          (char *)topic, "-q",
                    "1",    "-C",          (char *)count, "-d",          NULL};
    sp->pid = spawn(argv, p[1]);
    close(p[1]);
    sp->fd = p[0];
    fcntl(sp->fd, F_SETFL, O_NONBLOCK);
    sp->ev = event_new(f->base, sp->fd, EV_READ | EV_PERSIST, sub_read, sp);
    event_add(sp->ev, NULL);
    WAIT_UNTIL(f, strstr(sp->out, "received SUBACK"), 5000);
    return strstr(sp->out, "received SUBACK") != NULL;
}

static bool has_line(const char *text, const char *line)
{
    size_t l = strlen(line);
    for (const char *p = text; (p = strstr(p, line)); p++)
        if ((p == text || p[-1] == '\n') && (p[l] == '\n' || p[l] == '\0'))
            return true;
    return false;
}

static void sub_done(struct sub_proc *sp)
{
    if (sp->pid > 0) {
        kill(sp->pid, SIGTERM);
        wait_pid(sp->pid, 5000);
    }
    if (sp->ev)
        event_free(sp->ev);
    if (sp->fd > 0)
        close(sp->fd);
}

/* ---- tests: configuration --------------------------------------------- */

static void mqtt_bad_urls(void)
{
    struct fx f;
    fx_init(&f, false);
    struct wisp_err err;
    struct {
        const char *url, *says;
    } bad[] = {
        {NULL, "no broker URL"},
        {"", "no broker URL"},
        {"http://127.0.0.1:1883", "mqtt://"},
        {"127.0.0.1:1883", "mqtt://HOST:PORT"},
        {"mqtt://broker.example.com:1883", "not an IP address"},
        {"mqtt://127.0.0.1:0", "bad port"},
        {"mqtt://127.0.0.1:70000", "not a valid"},
        {"mqtt://127.0.0.1:1883/some/path", "path"},
        {"mqtt://127.0.0.1:1883?foo=1", "unknown"},
        {"mqtt://127.0.0.1:1883?ca=/etc/hostname", "mqtts"},
        {"mqtts://127.0.0.1:8883?ca=/nonexistent/ca.pem", "CA"},
        {"mqtts://127.0.0.1:8883?insecure=yes", "insecure"},
        {"mqtt://[::1:1883", "valid"},
        {"mqtt://@127.0.0.1:1883", "user"},
        {"mqtt://127.0.0.1:1883 x", "spaces"},
    };
    for (size_t i = 0; i < WISP_ARRAY_LEN(bad); i++) {
        f.self = NULL;
        int rc = fx_start(&f, bad[i].url, &err);
        if (rc != -EINVAL || !strstr(err.msg, bad[i].says))
            fprintf(stderr, "  url %s: rc %d: %s\n", bad[i].url ? bad[i].url : "(null)", rc,
                    err.msg);
        CHECK_EQ_INT(rc, -EINVAL);
        CHECK(strstr(err.msg, bad[i].says) != NULL);
        CHECK(f.self == NULL);
    }
    /* accepted (nothing listens there; stop() cleans up) */
    const char *good[] = {"mqtt://127.0.0.1:1",
                          "mqtt://localhost:1",
                          "mqtt://[::1]:1",
                          "MQTT://127.0.0.1",
                          "mqtt://user:p%40ss@127.0.0.1:1",
                          "mqtts://127.0.0.1:1?insecure=1",
                          "mqtt://127.0.0.1:1/"};
    for (size_t i = 0; i < WISP_ARRAY_LEN(good); i++) {
        f.self = NULL;
        int rc = fx_start(&f, good[i], &err);
        if (rc)
            fprintf(stderr, "  url %s: %s\n", good[i], err.msg);
        CHECK_EQ_INT(rc, 0);
        if (rc == 0) {
            CHECK(!feed_mqtt_connected(f.self));
            feed_mqtt_ops.stop(f.self);
        }
    }
    f.self = NULL;
    fx_done(&f);
}

static void mqtt_bad_filters(void)
{
    struct fx f;
    fx_init(&f, false);
    struct wisp_err err;
    CHECK_EQ_INT(fx_start(&f, "mqtt://127.0.0.1:1", &err), 0);
    struct feed_binding *b = NULL;
    struct {
        const char *params, *says;
    } bad[] = {
        {"{}", "topic: missing"},
        {"{\"topic\": 5}", "topic: must be a string"},
        {"{\"topic\": \"\"}", "topic: must not be empty"},
        {"{\"topic\": \"a/#/b\"}", "'#'"},
        {"{\"topic\": \"a/b#\"}", "'#'"},
        {"{\"topic\": \"a+/b\"}", "'+'"},
        {"{\"topic\": \"a/+b\"}", "'+'"},
        {"{\"topic\": \"a\\u0000b\"}", "NUL"},
        {"{\"topic\": \"a\\u0001b\"}", "control"},
        {"{\"topic\": \"$share/g\"}", "filter after the group"},
        {"{\"topic\": \"$share/g/\"}", "filter after the group"},
        {"{\"topic\": \"$share//a\"}", "group name"},
        {"{\"topic\": \"$share/g+/a\"}", "group name"},
        {"{\"topic\": \"$share/g/a/#/b\"}", "'#'"},
        {"{\"topic\": \"a\", \"qos\": 3}", "qos"},
        {"{\"topic\": \"a\", \"qos\": -1}", "qos"},
        {"{\"topic\": \"a\", \"qos\": \"x\"}", "qos"},
        {"{\"topic\": \"a\", \"qos\": 1.5}", "qos"},
        {"{\"topic\": \"a\", \"payload\": \"xml\"}", "payload"},
        {"{\"topic\": \"a\", \"payload\": 1}", "payload"},
    };
    for (size_t i = 0; i < WISP_ARRAY_LEN(bad); i++) {
        json_error_t je;
        json_t *p = json_loads(bad[i].params, JSON_ALLOW_NUL, &je);
        CHECK(p != NULL);
        memset(&err, 0, sizeof err);
        int rc = feed_mqtt_ops.bind(f.self, "guest", "t", p, NULL, &b, &err);
        json_decref(p);
        if (rc != -EINVAL || !strstr(err.msg, bad[i].says))
            fprintf(stderr, "  params %s: rc %d: %s\n", bad[i].params, rc, err.msg);
        CHECK_EQ_INT(rc, -EINVAL);
        CHECK(strstr(err.msg, bad[i].says) != NULL);
        CHECK(b == NULL);
    }
    /* too long */
    char *big = malloc(70000);
    memset(big, 'a', 69999);
    big[69999] = '\0';
    json_t *p = json_pack("{s:s}", "topic", big);
    CHECK_EQ_INT(feed_mqtt_ops.bind(f.self, "guest", "t", p, NULL, &b, &err), -EINVAL);
    CHECK(strstr(err.msg, "longer") != NULL);
    json_decref(p);
    free(big);
    /* good ones, unconnected; status shows the parameters */
    const char *good[] = {"{\"topic\": \"#\"}",
                          "{\"topic\": \"+\"}",
                          "{\"topic\": \"a/+/c/#\", \"qos\": 0}",
                          "{\"topic\": \"/\", \"qos\": \"2\"}",
                          "{\"topic\": \"$share/g/a/+\", \"payload\": \"base64\"}",
                          "{\"topic\": \"caf\\u00e9/x\", \"payload\": \"text\"}"};
    struct feed_binding *bs[WISP_ARRAY_LEN(good)];
    for (size_t i = 0; i < WISP_ARRAY_LEN(good); i++) {
        bs[i] = NULL;
        CHECK_EQ_INT(bind_json(&f, "t", good[i], &bs[i], &err), 0);
        CHECK(bs[i] != NULL);
    }
    json_t *st = feed_mqtt_ops.status(f.self, bs[2]);
    CHECK_STREQ(json_string_value(json_object_get(st, "topic")), "a/+/c/#");
    CHECK_EQ_INT(json_integer_value(json_object_get(st, "qos")), 0);
    CHECK_STREQ(json_string_value(json_object_get(st, "payload")), "json");
    CHECK(json_is_false(json_object_get(st, "connected")));
    CHECK(json_is_false(json_object_get(st, "paused")));
    CHECK_EQ_INT(json_integer_value(json_object_get(st, "events")), 0);
    json_decref(st);
    CHECK_EQ_INT(st_int(&f, bs[3], "qos"), 2);
    for (size_t i = 0; i < WISP_ARRAY_LEN(good); i++)
        if (bs[i])
            feed_mqtt_ops.unbind(f.self, bs[i]);
    /* publishing while not connected, and bad publishes */
    CHECK_EQ_INT(feed_mqtt_publish(f.self, "a/b", "x", 1, 1, false, on_published, &f), -ENOTCONN);
    CHECK_EQ_INT(feed_mqtt_publish(f.self, "a/+", "x", 1, 1, false, on_published, &f), -EINVAL);
    CHECK_EQ_INT(feed_mqtt_publish(f.self, "", "x", 1, 1, false, on_published, &f), -EINVAL);
    CHECK_EQ_INT(feed_mqtt_publish(f.self, "a", "x", 1, 3, false, on_published, &f), -EINVAL);
    spin(&f, 50);
    CHECK_EQ_INT(f.pub_done, 0);
    fx_done(&f);
}

/* ---- tests: messages in ----------------------------------------------- */

static void mqtt_payloads(void)
{
    struct fx f;
    struct feed_binding *b = NULL;
    struct wisp_err err;
    if (!fx_init(&f, true))
        goto out;
    CHECK_EQ_INT(bind_json(&f, "t1", "{\"topic\": \"in/+\"}", &b, &err), 0);
    CHECK_EQ_INT(nfires(&f, "t1"), 0);
    WAIT_UNTIL(&f, subscribed(&f, b) && f.connects == 1, 5000); /* both links up */
    CHECK(subscribed(&f, b));
    CHECK(feed_mqtt_connected(f.self));
    CHECK_EQ_INT(f.connects, 1);
    /* a JSON object becomes the params, with the topic added */
    pub(&f, "in/j", "{\"a\": 1, \"b\": {\"c\": [true]}}", 1);
    WAIT_UNTIL(&f, nfires(&f, "t1") == 1, 5000);
    json_t *p = last_params(&f, "t1");
    CHECK_EQ_INT(json_integer_value(json_object_get(p, "a")), 1);
    CHECK(json_is_true(json_array_get(json_object_get(json_object_get(p, "b"), "c"), 0)));
    CHECK_STREQ(pstr(p, "topic"), "in/j");
    CHECK(json_object_get(p, "payload") == NULL);
    /* ... but its own "topic" stays */
    pub(&f, "in/j", "{\"topic\": \"mine\"}", 0);
    WAIT_UNTIL(&f, nfires(&f, "t1") == 2, 5000);
    CHECK_STREQ(pstr(last_params(&f, "t1"), "topic"), "mine");
    /* JSON that is not an object is text */
    pub(&f, "in/a", "[1, 2]", 1);
    WAIT_UNTIL(&f, nfires(&f, "t1") == 3, 5000);
    p = last_params(&f, "t1");
    CHECK_STREQ(pstr(p, "payload"), "[1, 2]");
    CHECK_STREQ(pstr(p, "topic"), "in/a");
    CHECK_EQ_INT(json_integer_value(json_object_get(p, "qos")), 1);
    CHECK(json_is_false(json_object_get(p, "retain")));
    CHECK(json_object_get(p, "payload_base64") == NULL);
    /* text, with a newline and UTF-8 */
    pub(&f, "in/t", "h\xc3\xa9llo\nworld", 0);
    WAIT_UNTIL(&f, nfires(&f, "t1") == 4, 5000);
    p = last_params(&f, "t1");
    CHECK_STREQ(pstr(p, "payload"), "h\xc3\xa9llo\nworld");
    CHECK_EQ_INT(json_integer_value(json_object_get(p, "qos")), 0);
    /* binary: base64 */
    const unsigned char bin[] = {0x00, 0xff, 0x10, 0x80};
    pub_bytes(&f, "in/b", bin, sizeof bin);
    WAIT_UNTIL(&f, nfires(&f, "t1") == 5, 5000);
    p = last_params(&f, "t1");
    CHECK_STREQ(pstr(p, "payload"), "AP8QgA==");
    CHECK(json_is_true(json_object_get(p, "payload_base64")));
    /* empty */
    pub(&f, "in/e", NULL, 1);
    WAIT_UNTIL(&f, nfires(&f, "t1") == 6, 5000);
    CHECK_STREQ(pstr(last_params(&f, "t1"), "payload"), "");
    /* a topic the filter does not match fires nothing (in/x/y has 2 levels) */
    pub(&f, "in/x/y", "no", 1);
    pub(&f, "in/z", "yes", 1);
    WAIT_UNTIL(&f, nfires(&f, "t1") == 7, 5000);
    CHECK_STREQ(pstr(last_params(&f, "t1"), "payload"), "yes");
    CHECK_EQ_INT(nfires(&f, "t1"), 7);
    CHECK_EQ_INT(st_int(&f, b, "events"), 7);
    CHECK_EQ_INT(st_int(&f, b, "fires"), 7);
    struct feed_counters c;
    feed_mqtt_ops.counters(f.self, &c);
    CHECK_EQ_INT(c.events_in, 7);
    CHECK_EQ_INT(c.fires, 7);
    CHECK_EQ_INT(c.drops, 0);
    /* core refusing a fire counts a drop */
    f.fire_rc = -ENOENT;
    pub(&f, "in/r", "x", 1);
    WAIT_UNTIL(&f, nfires(&f, "t1") == 8, 5000);
    CHECK_EQ_INT(st_int(&f, b, "drops"), 1);
    feed_mqtt_ops.counters(f.self, &c);
    CHECK_EQ_INT(c.drops, 1);
out:
    fx_done(&f);
}

static void mqtt_payload_modes(void)
{
    struct fx f;
    struct feed_binding *bt = NULL, *b64 = NULL, *bj = NULL;
    struct wisp_err err;
    if (!fx_init(&f, true))
        goto out;
    CHECK_EQ_INT(bind_json(&f, "text", "{\"topic\": \"m/#\", \"payload\": \"text\"}", &bt, &err),
                 0);
    CHECK_EQ_INT(bind_json(&f, "b64", "{\"topic\": \"m/#\", \"payload\": \"base64\"}", &b64, &err),
                 0);
    CHECK_EQ_INT(bind_json(&f, "json", "{\"topic\": \"m/#\"}", &bj, &err), 0);
    WAIT_UNTIL(&f, subscribed(&f, bj), 5000);
    pub(&f, "m/1", "{\"a\": 1}", 1);
    WAIT_UNTIL(&f, nfires(&f, "text") + nfires(&f, "b64") + nfires(&f, "json") == 3, 5000);
    CHECK_STREQ(pstr(last_params(&f, "text"), "payload"), "{\"a\": 1}");
    CHECK(json_object_get(last_params(&f, "text"), "payload_base64") == NULL);
    CHECK_STREQ(pstr(last_params(&f, "b64"), "payload"), "eyJhIjogMX0=");
    CHECK(json_is_true(json_object_get(last_params(&f, "b64"), "payload_base64")));
    CHECK_EQ_INT(json_integer_value(json_object_get(last_params(&f, "json"), "a")), 1);
    CHECK_EQ_INT(st_int(&f, bt, "fires"), 1);
    CHECK_EQ_INT(st_int(&f, b64, "fires"), 1);
out:
    fx_done(&f);
}

static void mqtt_wildcards_overlap(void)
{
    struct fx f;
    struct feed_binding *w1 = NULL, *w2 = NULL, *w3 = NULL, *w4 = NULL;
    struct wisp_err err;
    if (!fx_init(&f, true))
        goto out;
    CHECK_EQ_INT(bind_json(&f, "w1", "{\"topic\": \"w/+/x\"}", &w1, &err), 0);
    CHECK_EQ_INT(bind_json(&f, "w2", "{\"topic\": \"w/#\"}", &w2, &err), 0);
    CHECK_EQ_INT(bind_json(&f, "w3", "{\"topic\": \"w/#\", \"qos\": 0}", &w3, &err), 0);
    CHECK_EQ_INT(bind_json(&f, "w4", "{\"topic\": \"#\", \"qos\": 2}", &w4, &err), 0);
    WAIT_UNTIL(&f, subscribed(&f, w1) && subscribed(&f, w2) && subscribed(&f, w4), 5000);
    CHECK(subscribed(&f, w3)); /* the same subscription as w2 */
    /* overlapping subscriptions: every binding fires exactly once */
    pub(&f, "w/a/x", "1", 1);
    pub(&f, "w/end", "2", 1); /* after the first in the same stream */
    WAIT_UNTIL(&f, nfires(&f, "w2") == 2 && nfires(&f, "w3") == 2 && nfires(&f, "w4") == 2, 5000);
    spin(&f, 100);
    CHECK_EQ_INT(nfires(&f, "w1"), 1);
    CHECK_EQ_INT(nfires(&f, "w2"), 2);
    CHECK_EQ_INT(nfires(&f, "w3"), 2);
    CHECK_EQ_INT(nfires(&f, "w4"), 2);
    CHECK_STREQ(pstr(last_params(&f, "w1"), "topic"), "w/a/x");
    /* the message arrived at the highest qos of the filter's bindings */
    CHECK_EQ_INT(json_integer_value(json_object_get(last_params(&f, "w3"), "qos")), 1);
    /* # matches the parent level too */
    pub(&f, "w", "3", 1);
    WAIT_UNTIL(&f, nfires(&f, "w2") == 3, 5000);
    /* unbinding one of two bindings keeps the subscription */
    feed_mqtt_ops.unbind(f.self, w3);
    pub(&f, "w/b", "4", 1);
    WAIT_UNTIL(&f, nfires(&f, "w2") == 4, 5000);
    CHECK_EQ_INT(nfires(&f, "w3"), 3);
    /* unbinding the last one unsubscribes: only # (w4) still gets w/... */
    feed_mqtt_ops.unbind(f.self, w2);
    pub(&f, "w/c/x", "5", 1);
    WAIT_UNTIL(&f, nfires(&f, "w1") == 2 && nfires(&f, "w4") == 5, 5000);
    spin(&f, 100);
    CHECK_EQ_INT(nfires(&f, "w1"), 2);
    CHECK_EQ_INT(nfires(&f, "w2"), 4);
    CHECK_EQ_INT(nfires(&f, "w4"), 5);
    /* $ topics are not matched by a leading wildcard */
    pub(&f, "$x/y", "6", 1);
    pub(&f, "w/d/x", "7", 1);
    WAIT_UNTIL(&f, nfires(&f, "w1") == 3, 5000);
    CHECK_EQ_INT(nfires(&f, "w4"), 6);
out:
    fx_done(&f);
}

static void mqtt_shared_subscription(void)
{
    struct fx f;
    struct feed_binding *b = NULL, *plain = NULL;
    struct wisp_err err;
    if (!fx_init(&f, true))
        goto out;
    CHECK_EQ_INT(bind_json(&f, "sh", "{\"topic\": \"$share/grp/s/+\"}", &b, &err), 0);
    CHECK_EQ_INT(bind_json(&f, "plain", "{\"topic\": \"s/+\"}", &plain, &err), 0);
    WAIT_UNTIL(&f, subscribed(&f, b) && subscribed(&f, plain), 5000);
    CHECK(subscribed(&f, b));
    pub(&f, "s/1", "{\"v\": 7}", 1);
    WAIT_UNTIL(&f, nfires(&f, "sh") == 1 && nfires(&f, "plain") == 1, 5000);
    spin(&f, 100);
    CHECK_EQ_INT(nfires(&f, "sh"), 1);
    CHECK_EQ_INT(nfires(&f, "plain"), 1);
    CHECK_EQ_INT(json_integer_value(json_object_get(last_params(&f, "sh"), "v")), 7);
    CHECK_STREQ(pstr(last_params(&f, "sh"), "topic"), "s/1");
out:
    fx_done(&f);
}

static void mqtt_pause_drops(void)
{
    struct fx f;
    struct feed_binding *b = NULL;
    struct wisp_err err;
    if (!fx_init(&f, true))
        goto out;
    CHECK_EQ_INT(bind_json(&f, "p", "{\"topic\": \"p/t\"}", &b, &err), 0);
    WAIT_UNTIL(&f, subscribed(&f, b), 5000);
    feed_mqtt_ops.set_paused(f.self, b, true);
    CHECK_EQ_INT(st_int(&f, b, "paused"), 1);
    pub(&f, "p/t", "while paused", 1);
    WAIT_UNTIL(&f, st_int(&f, b, "events") == 1, 5000);
    CHECK_EQ_INT(st_int(&f, b, "drops"), 1);
    CHECK_EQ_INT(st_int(&f, b, "fires"), 0);
    CHECK_EQ_INT(nfires(&f, "p"), 0);
    feed_mqtt_ops.set_paused(f.self, b, false);
    pub(&f, "p/t", "after", 1);
    WAIT_UNTIL(&f, nfires(&f, "p") == 1, 5000);
    CHECK_STREQ(pstr(last_params(&f, "p"), "payload"), "after");
    CHECK_EQ_INT(st_int(&f, b, "events"), 2);
    CHECK_EQ_INT(st_int(&f, b, "fires"), 1);
    struct feed_counters c;
    feed_mqtt_ops.counters(f.self, &c);
    CHECK_EQ_INT(c.events_in, 2);
    CHECK_EQ_INT(c.fires, 1);
    CHECK_EQ_INT(c.drops, 1);
out:
    fx_done(&f);
}

/* Core holding fires back (-EBUSY: the namespace at its limits): one
 * subscription, two bindings; the
 * message waits, is offered again and reaches each binding exactly once,
 * in order; counted once, pending meanwhile. A drain reads nothing new. */
static void mqtt_hold_at_limits(void)
{
    struct fx f;
    struct feed_binding *b1 = NULL, *b2 = NULL;
    struct wisp_err err;
    if (!fx_init(&f, true))
        goto out;
    CHECK_EQ_INT(bind_json(&f, "h1", "{\"topic\": \"h/+\"}", &b1, &err), 0);
    CHECK_EQ_INT(bind_json(&f, "h2", "{\"topic\": \"h/+\"}", &b2, &err), 0);
    WAIT_UNTIL(&f, subscribed(&f, b1) && subscribed(&f, b2), 5000);
    f.busy_trigger = "h2";
    f.busy_left = 1 << 30;
    pub(&f, "h/1", "one", 1);
    pub(&f, "h/2", "two", 1);
    struct feed_counters c = {0};
    WAIT_UNTIL(&f, (feed_mqtt_ops.counters(f.self, &c), c.pending == 2) && f.refusals >= 3, 5000);
    CHECK_EQ_INT(c.pending, 2);
    CHECK(f.refusals >= 3);            /* offered again, and again */
    CHECK_EQ_INT(nfires(&f, "h1"), 1); /* the first binding had the first message */
    CHECK_EQ_INT(nfires(&f, "h2"), 0);
    CHECK_EQ_INT(c.events_in, 1);
    CHECK_EQ_INT(st_int(&f, b2, "events"), 0);
    f.busy_left = 0;
    WAIT_UNTIL(&f, nfires(&f, "h2") == 2, 5000);
    CHECK_EQ_INT(nfires(&f, "h1"), 2);
    CHECK_EQ_INT(nfires(&f, "h2"), 2);
    const char *order[] = {"h1", "h2", "h1", "h2"};
    for (size_t i = 0; i < 4 && json_array_size(f.fires) == 4; i++) {
        json_t *e = json_array_get(f.fires, i);
        CHECK_STREQ(json_string_value(json_array_get(e, 0)), order[i]);
        CHECK_STREQ(pstr(json_array_get(e, 1), "payload"), i < 2 ? "one" : "two");
    }
    feed_mqtt_ops.counters(f.self, &c);
    CHECK_EQ_INT(c.events_in, 4);
    CHECK_EQ_INT(c.fires, 4);
    CHECK_EQ_INT(c.drops, 0);
    CHECK_EQ_INT(c.pending, 0);
    /* draining: what comes now stays at the broker */
    feed_mqtt_ops.drain(f.self);
    pub(&f, "h/3", "three", 1);
    spin(&f, 300);
    CHECK_EQ_INT(nfires(&f, "h1"), 2);
out:
    fx_done(&f);
}

/* Results are published while messages are held back: the reading of
 * the messages stops (the rest wait at the broker), but the publishes'
 * acknowledgements still come (they have a connection of their own, read
 * all the time). The messages here are our own publishes, looped back. */
static void mqtt_publish_while_held(void)
{
    struct fx f;
    struct feed_binding *b = NULL;
    struct wisp_err err;
    enum { N = 200 };
    if (!fx_init(&f, true))
        goto out;
    CHECK_EQ_INT(bind_json(&f, "hb", "{\"topic\": \"hb/#\"}", &b, &err), 0);
    WAIT_UNTIL(&f, subscribed(&f, b) && feed_mqtt_connected(f.self), 5000);
    CHECK(feed_mqtt_connected(f.self));
    f.busy_trigger = "hb";
    f.busy_left = 1 << 30;
    for (int i = 0; i < N; i++) {
        char m[16];
        snprintf(m, sizeof m, "{\"i\":%d}", i);
        CHECK_EQ_INT(feed_mqtt_publish(f.self, "hb/x", m, strlen(m), 1, false, on_published, &f),
                     0);
    }
    struct feed_counters c = {0};
    WAIT_UNTIL(&f, f.pub_done == N && (feed_mqtt_ops.counters(f.self, &c), c.pending > 0), 10000);
    CHECK_EQ_INT(f.pub_done, N);
    CHECK_EQ_INT(f.pub_rc, 0);
    feed_mqtt_ops.counters(f.self, &c);
    CHECK(c.pending > 0 && c.pending < N); /* held: only a few read */
    CHECK_EQ_INT(nfires(&f, "hb"), 0);
    /* one more, with the reading stopped */
    CHECK_EQ_INT(feed_mqtt_publish(f.self, "hb/x", "{\"i\":-1}", 8, 1, false, on_published, &f),
                 0);
    WAIT_UNTIL(&f, f.pub_done == N + 1, 5000);
    CHECK_EQ_INT(f.pub_done, N + 1);
    f.busy_left = 0;
    WAIT_UNTIL(&f, nfires(&f, "hb") == N + 1, 10000);
    CHECK_EQ_INT(nfires(&f, "hb"), N + 1);
    feed_mqtt_ops.counters(f.self, &c);
    CHECK_EQ_INT(c.pending, 0);
out:
    fx_done(&f);
}

/* Core unbinding another binding, or stopping the adapter, from inside a
 * fire: nothing fires for what is gone. */
static void mqtt_leave_inside_fire(void)
{
    struct fx f;
    struct feed_binding *a = NULL, *b = NULL, *c = NULL;
    struct wisp_err err;
    if (!fx_init(&f, true))
        goto out;
    /* bindings fire in the order they were bound: a, then b */
    CHECK_EQ_INT(bind_json(&f, "a", "{\"topic\": \"u/t\"}", &a, &err), 0);
    CHECK_EQ_INT(bind_json(&f, "b", "{\"topic\": \"u/t\"}", &b, &err), 0);
    CHECK_EQ_INT(bind_json(&f, "c", "{\"topic\": \"u/+\"}", &c, &err), 0);
    WAIT_UNTIL(&f, subscribed(&f, a) && subscribed(&f, c), 5000);
    f.leave = 1;
    f.victim = b;
    pub(&f, "u/t", "1", 1);
    pub(&f, "u/t", "2", 1);
    WAIT_UNTIL(&f, nfires(&f, "a") == 2 && nfires(&f, "c") == 2, 5000);
    CHECK_EQ_INT(nfires(&f, "b"), 0);
    /* a stop inside a's fire: neither c nor anything later fires */
    f.leave = 2;
    pub(&f, "u/t", "3", 1);
    WAIT_UNTIL(&f, f.self == NULL, 5000);
    CHECK(f.self == NULL);
    spin(&f, 200);
    CHECK_EQ_INT(nfires(&f, "a"), 3);
    CHECK_EQ_INT(nfires(&f, "c"), 2);
out:
    fx_done(&f);
}

/* ---- tests: messages out ---------------------------------------------- */

/* Connected to the broker, with mosquitto_sub on topic for count messages. */
static bool connected_with_sub(struct fx *f, struct sub_proc *sp, const char *topic,
                               const char *count)
{
    WAIT_UNTIL(f, feed_mqtt_connected(f->self), 5000);
    CHECK(feed_mqtt_connected(f->self));
    if (!sub_start(f, sp, topic, count)) {
        CHECK(!"mosquitto_sub did not subscribe");
        return false;
    }
    return true;
}

static void mqtt_publish_reaches_subscriber(void)
{
    struct fx f;
    struct sub_proc sp = {0};
    if (!fx_init(&f, true) || !connected_with_sub(&f, &sp, "out/x", "2"))
        goto out;
    CHECK_EQ_INT(feed_mqtt_publish(f.self, "out/x", "hello0", 6, 0, false, on_published, &f), 0);
    CHECK_EQ_INT(f.pub_done, 0); /* never called back from inside publish */
    WAIT_UNTIL(&f, f.pub_done == 1, 5000);
    CHECK_EQ_INT(f.pub_rc, 0);
    CHECK_EQ_INT(feed_mqtt_publish(f.self, "out/x", "hello1", 6, 1, false, on_published, &f), 0);
    WAIT_UNTIL(&f, f.pub_done == 2, 5000);
    CHECK_EQ_INT(f.pub_rc, 0);
    WAIT_UNTIL(&f, has_line(sp.out, "hello0") && has_line(sp.out, "hello1"), 5000);
    CHECK(has_line(sp.out, "hello0"));
    CHECK(has_line(sp.out, "hello1"));
    CHECK_EQ_INT(wait_pid(sp.pid, 5000), 0); /* -C 2: it got both and left */
    sp.pid = 0;
    /* QoS 2, and an empty payload without a callback */
    CHECK_EQ_INT(feed_mqtt_publish(f.self, "out/y", "q2", 2, 2, false, on_published, &f), 0);
    WAIT_UNTIL(&f, f.pub_done == 3, 5000);
    CHECK_EQ_INT(f.pub_rc, 0);
    CHECK_EQ_INT(feed_mqtt_publish(f.self, "out/y", NULL, 0, 1, false, NULL, NULL), 0);
    spin(&f, 100);
out:
    sub_done(&sp);
    fx_done(&f);
}

/* A batch held back by feed_mqtt_batch leaves when released: every
 * message, in order, each publish called back once. */
static void mqtt_publish_batch(void)
{
    struct fx f;
    struct sub_proc sp = {0};
    if (!fx_init(&f, true) || !connected_with_sub(&f, &sp, "out/b", "6"))
        goto out;
    feed_mqtt_batch(f.self, true);
    feed_mqtt_batch(f.self, true); /* holding twice is holding */
    for (int i = 0; i < 6; i++) {
        char m[8];
        snprintf(m, sizeof m, "b%d", i);
        CHECK_EQ_INT(feed_mqtt_publish(f.self, "out/b", m, strlen(m), i == 5 ? 1 : 0, false,
                                       on_published, &f),
                     0);
    }
    feed_mqtt_batch(f.self, false);
    feed_mqtt_batch(f.self, false);
    WAIT_UNTIL(&f, f.pub_done == 6, 5000);
    CHECK_EQ_INT(f.pub_done, 6);
    CHECK_EQ_INT(f.pub_rc, 0);
    WAIT_UNTIL(&f, has_line(sp.out, "b5"), 5000);
    CHECK_EQ_INT(wait_pid(sp.pid, 5000), 0); /* -C 6: it got all six and left */
    sp.pid = 0;
    const char *at = sp.out;
    for (int i = 0; i < 6; i++) {
        char m[8];
        snprintf(m, sizeof m, "\nb%d\n", i);
        const char *p = strstr(at, m);
        CHECK(p != NULL); /* each one, after the one before */
        if (p)
            at = p + 1;
    }
out:
    sub_done(&sp);
    fx_done(&f);
}

/* A publish the broker has not acknowledged when the connection drops is
 * failed with -ENOTCONN; one outstanding at stop() is never called back. */
static void mqtt_publish_fails_on_disconnect(void)
{
    struct fx f;
    if (!fx_init(&f, true))
        goto out;
    WAIT_UNTIL(&f, feed_mqtt_connected(f.self), 5000);
    kill(f.br.pid, SIGSTOP); /* takes the bytes, never answers */
    CHECK_EQ_INT(feed_mqtt_publish(f.self, "o/t", "x", 1, 1, false, on_published, &f), 0);
    spin(&f, 200);
    CHECK_EQ_INT(f.pub_done, 0);
    broker_kill(&f.br, SIGKILL);
    WAIT_UNTIL(&f, f.pub_done == 1, 5000);
    CHECK_EQ_INT(f.pub_done, 1);
    CHECK_EQ_INT(f.pub_rc, -ENOTCONN);
    CHECK(!feed_mqtt_connected(f.self));
    CHECK_EQ_INT(feed_mqtt_publish(f.self, "o/t", "x", 1, 1, false, on_published, &f), -ENOTCONN);
    /* again with stop() while it is outstanding */
    if (!broker_start(&f.br)) {
        CHECK(!"restart");
        goto out;
    }
    WAIT_UNTIL(&f, feed_mqtt_connected(f.self), 10000);
    CHECK(feed_mqtt_connected(f.self));
    kill(f.br.pid, SIGSTOP);
    CHECK_EQ_INT(feed_mqtt_publish(f.self, "o/t", "y", 1, 1, false, on_published, &f), 0);
    feed_mqtt_ops.stop(f.self);
    f.self = NULL;
    spin(&f, 300);
    CHECK_EQ_INT(f.pub_done, 1);
    broker_kill(&f.br, SIGKILL);
out:
    fx_done(&f);
}

/* ---- tests: the connection -------------------------------------------- */

static void mqtt_broker_restart(void)
{
    struct fx f;
    struct feed_binding *b = NULL;
    struct wisp_err err;
    if (!fx_init(&f, true))
        goto out;
    CHECK_EQ_INT(bind_json(&f, "r", "{\"topic\": \"r/#\"}", &b, &err), 0);
    WAIT_UNTIL(&f, subscribed(&f, b), 5000);
    pub(&f, "r/1", "m1", 1);
    WAIT_UNTIL(&f, nfires(&f, "r") == 1, 5000);
    CHECK_EQ_INT(nfires(&f, "r"), 1);
    broker_kill(&f.br, SIGKILL);
    WAIT_UNTIL(&f, !feed_mqtt_connected(f.self), 5000);
    CHECK(!feed_mqtt_connected(f.self));
    CHECK_EQ_INT(st_int(&f, b, "connected"), 0);
    CHECK_EQ_INT(st_int(&f, b, "subscribed"), 0);
    CHECK_EQ_INT(feed_mqtt_publish(f.self, "r/x", "x", 1, 1, false, on_published, &f), -ENOTCONN);
    json_t *st = feed_mqtt_ops.status(f.self, b);
    CHECK(json_is_string(json_object_get(st, "lastError")));
    json_decref(st);
    spin(&f, 1500); /* at least one attempt fails: the backoff grows */
    CHECK(!feed_mqtt_connected(f.self));
    if (!broker_start(&f.br)) { /* the same port */
        CHECK(!"restart");
        goto out;
    }
    WAIT_UNTIL(&f, subscribed(&f, b) && feed_mqtt_connected(f.self), 15000);
    CHECK(feed_mqtt_connected(f.self));
    CHECK(subscribed(&f, b)); /* subscribed again: the new broker has no session */
    WAIT_UNTIL(&f, f.connects == 2, 5000);
    CHECK_EQ_INT(f.connects, 2);
    pub(&f, "r/2", "m2", 1);
    WAIT_UNTIL(&f, nfires(&f, "r") == 2, 5000);
    CHECK_EQ_INT(nfires(&f, "r"), 2);
    CHECK_STREQ(pstr(last_params(&f, "r"), "payload"), "m2");
    /* and publishing works again (to our own subscription) */
    CHECK_EQ_INT(feed_mqtt_publish(f.self, "r/3", "m3", 2, 1, false, on_published, &f), 0);
    WAIT_UNTIL(&f, f.pub_done == 1 && nfires(&f, "r") == 3, 5000);
    CHECK_EQ_INT(f.pub_rc, 0);
    CHECK_STREQ(pstr(last_params(&f, "r"), "payload"), "m3");
out:
    fx_done(&f);
}

/* The session outlives the client: a QoS 1 message published while wispd
 * was away is delivered when it comes back with the same client id (the
 * session expiry property reached the broker). */
static void mqtt_persistent_session(void)
{
    struct fx f;
    struct feed_binding *b = NULL;
    struct wisp_err err;
    if (!fx_init(&f, true))
        goto out;
    CHECK_EQ_INT(bind_json(&f, "s", "{\"topic\": \"sess/+\"}", &b, &err), 0);
    WAIT_UNTIL(&f, subscribed(&f, b), 5000);
    feed_mqtt_ops.stop(f.self);
    f.self = NULL;
    pub(&f, "sess/1", "while away", 1);
    CHECK_EQ_INT(fx_start(&f, f.url, &err), 0);
    CHECK_EQ_INT(bind_json(&f, "s", "{\"topic\": \"sess/+\"}", &b, &err), 0);
    WAIT_UNTIL(&f, nfires(&f, "s") == 1, 5000);
    CHECK_EQ_INT(nfires(&f, "s"), 1);
    CHECK_STREQ(pstr(last_params(&f, "s"), "payload"), "while away");
    WAIT_UNTIL(&f, subscribed(&f, b), 5000);
    spin(&f, 100);
    CHECK_EQ_INT(nfires(&f, "s"), 1);
out:
    fx_done(&f);
}

/* stop() while a reconnect is pending: no callback, no timer after it. */
static void mqtt_stop_with_pending_reconnect(void)
{
    struct fx f;
    struct feed_binding *b = NULL;
    struct wisp_err err;
    fx_init(&f, false);
    char url[64];
    snprintf(url, sizeof url, "mqtt://127.0.0.1:%d", free_port()); /* nobody listens */
    CHECK_EQ_INT(fx_start(&f, url, &err), 0);
    CHECK_EQ_INT(bind_json(&f, "x", "{\"topic\": \"x\"}", &b, &err), 0);
    spin(&f, 300); /* the first attempt is refused; the next one is a timer away */
    CHECK(!feed_mqtt_connected(f.self));
    json_t *st = feed_mqtt_ops.status(f.self, b);
    CHECK(json_is_false(json_object_get(st, "connected")));
    CHECK(json_is_string(json_object_get(st, "lastError")));
    json_decref(st);
    CHECK_EQ_INT(feed_mqtt_publish(f.self, "x", "1", 1, 1, false, on_published, &f), -ENOTCONN);
    feed_mqtt_ops.stop(f.self);
    f.self = NULL;
    spin(&f, 1500);
    CHECK_EQ_INT(f.connects, 0);
    CHECK_EQ_INT(f.pub_done, 0);
    fx_done(&f);
}

/* Started before the broker: the first attempts are refused, it connects
 * once the broker is up; bindings made (and unmade) meanwhile count. */
static void mqtt_broker_comes_later(void)
{
    struct fx f;
    struct feed_binding *x = NULL, *y = NULL, *z = NULL;
    struct wisp_err err;
    fx_init(&f, false);
    if (!broker_dir(&f.br)) {
        CHECK(!"dir");
        goto out;
    }
    f.br.port = free_port();
    snprintf(f.br.portstr, sizeof f.br.portstr, "%d", f.br.port);
    snprintf(f.url, sizeof f.url, "mqtt://127.0.0.1:%d", f.br.port);
    CHECK_EQ_INT(fx_start(&f, f.url, &err), 0);
    CHECK_EQ_INT(bind_json(&f, "x", "{\"topic\": \"l/x\"}", &x, &err), 0);
    spin(&f, 200); /* refused */
    CHECK(!feed_mqtt_connected(f.self));
    CHECK_EQ_INT(bind_json(&f, "y", "{\"topic\": \"l/y\"}", &y, &err), 0);
    feed_mqtt_ops.unbind(f.self, y);
    CHECK_EQ_INT(bind_json(&f, "z", "{\"topic\": \"l/z\"}", &z, &err), 0);
    feed_mqtt_ops.unbind(f.self, z);
    CHECK_EQ_INT(bind_json(&f, "z", "{\"topic\": \"l/z\"}", &z, &err), 0);
    if (!broker_start(&f.br)) {
        CHECK(!"broker");
        goto out;
    }
    /* connected (the on_connect callback) once both links are up */
    WAIT_UNTIL(&f, subscribed(&f, x) && subscribed(&f, z) && f.connects == 1, 10000);
    CHECK(subscribed(&f, x));
    CHECK(subscribed(&f, z));
    CHECK_EQ_INT(f.connects, 1);
    pub(&f, "l/y", "y", 1);
    pub(&f, "l/x", "x", 1);
    pub(&f, "l/z", "z", 1);
    WAIT_UNTIL(&f, nfires(&f, "x") == 1 && nfires(&f, "z") == 1, 5000);
    CHECK_EQ_INT(nfires(&f, "x"), 1);
    CHECK_EQ_INT(nfires(&f, "y"), 0);
    CHECK_EQ_INT(nfires(&f, "z"), 1);
out:
    fx_done(&f);
}

/* ---- tests: TLS ------------------------------------------------------- */

static bool sh_openssl(const char *dir, const char *args)
{
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "cd %s && %s %s >/dev/null 2>&1", dir, OPENSSL, args);
    return system(cmd) == 0;
}

static bool make_certs(const char *dir)
{
    char ext[128];
    snprintf(ext, sizeof ext, "%s/ext", dir);
    const char *e = "subjectAltName=IP:127.0.0.1\n";
    if (plat_write_file_fast(ext, e, strlen(e), 0644) != 0)
        return false;
    const char *ec = "-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes";
    char a[512];
    snprintf(a, sizeof a, "req -x509 %s -keyout ca.key -out ca.crt -days 2 -subj /CN=wisp-ca", ec);
    if (!sh_openssl(dir, a))
        return false;
    snprintf(a, sizeof a, "req -x509 %s -keyout other.key -out other.crt -days 2 -subj /CN=other",
             ec);
    if (!sh_openssl(dir, a))
        return false;
    snprintf(a, sizeof a, "req %s -keyout srv.key -out srv.csr -subj /CN=127.0.0.1", ec);
    if (!sh_openssl(dir, a) ||
        !sh_openssl(dir, "x509 -req -in srv.csr -CA ca.crt -CAkey ca.key -CAcreateserial "
                         "-out srv.crt -days 2 -extfile ext"))
        return false;
    char cmd[256];
    snprintf(cmd, sizeof cmd, "chmod 0644 %s/*", dir);
    return system(cmd) == 0;
}

static void mqtt_tls(void)
{
    if (access(OPENSSL, X_OK) != 0) {
        fprintf(stderr, "  (skipped: no %s)\n", OPENSSL);
        return;
    }
    struct fx f;
    struct feed_binding *b = NULL;
    struct wisp_err err;
    fx_init(&f, false);
    f.br.tls = true;
    if (!broker_dir(&f.br) || !make_certs(f.br.dir) || !broker_start(&f.br)) {
        CHECK(!"TLS broker");
        goto out;
    }
    /* a CA that did not sign the broker's certificate: never connects */
    snprintf(f.url, sizeof f.url, "mqtts://127.0.0.1:%d?ca=%s/other.crt", f.br.port, f.br.dir);
    int rc = fx_start(&f, f.url, &err);
    if (rc == -ENOTSUP && strstr(err.msg, "without OpenSSL")) { /* a sysroot without libssl-dev */
        printf("  (skipped: %s)\n", err.msg);
        goto out;
    }
    CHECK_EQ_INT(rc, 0);
    spin(&f, 1500);
    CHECK(!feed_mqtt_connected(f.self));
    CHECK_EQ_INT(f.connects, 0);
    feed_mqtt_ops.stop(f.self);
    f.self = NULL;
    /* the right one */
    snprintf(f.url, sizeof f.url, "mqtts://127.0.0.1:%d?ca=%s/ca.crt", f.br.port, f.br.dir);
    CHECK_EQ_INT(fx_start(&f, f.url, &err), 0);
    CHECK_EQ_INT(bind_json(&f, "tls", "{\"topic\": \"tls/+\"}", &b, &err), 0);
    WAIT_UNTIL(&f, subscribed(&f, b) && feed_mqtt_connected(f.self), 5000);
    CHECK(subscribed(&f, b));
    char ca[128];
    snprintf(ca, sizeof ca, "%s/ca.crt", f.br.dir);
    char *argv[] = {MOSQUITTO_PUB, "-h",    "127.0.0.1", "-p",     f.br.portstr, "--cafile", ca,
                    "-t",          "tls/1", "-m",        "secret", "-q",         "1",        NULL};
    CHECK_EQ_INT(run(argv), 0);
    WAIT_UNTIL(&f, nfires(&f, "tls") == 1, 5000);
    CHECK_STREQ(pstr(last_params(&f, "tls"), "payload"), "secret");
    /* a burst: nothing stays stuck in OpenSSL's buffer */
    for (int i = 0; i < 20; i++) {
        char t[16];
        snprintf(t, sizeof t, "%d", i);
        CHECK_EQ_INT(feed_mqtt_publish(f.self, "tls/2", t, strlen(t), 1, false, on_published, &f),
                     0);
    }
    WAIT_UNTIL(&f, f.pub_done == 20 && nfires(&f, "tls") == 21, 5000);
    CHECK_EQ_INT(f.pub_done, 20);
    CHECK_EQ_INT(f.pub_rc, 0);
    CHECK_EQ_INT(nfires(&f, "tls"), 21);
out:
    fx_done(&f);
}

static const struct check_test tests[] = {
    {"mqtt_bad_urls", mqtt_bad_urls},
    {"mqtt_bad_filters", mqtt_bad_filters},
    {"mqtt_payloads", mqtt_payloads},
    {"mqtt_payload_modes", mqtt_payload_modes},
    {"mqtt_wildcards_overlap", mqtt_wildcards_overlap},
    {"mqtt_shared_subscription", mqtt_shared_subscription},
    {"mqtt_pause_drops", mqtt_pause_drops},
    {"mqtt_hold_at_limits", mqtt_hold_at_limits},
    {"mqtt_publish_while_held", mqtt_publish_while_held},
    {"mqtt_leave_inside_fire", mqtt_leave_inside_fire},
    {"mqtt_publish_reaches_subscriber", mqtt_publish_reaches_subscriber},
    {"mqtt_publish_batch", mqtt_publish_batch},
    {"mqtt_publish_fails_on_disconnect", mqtt_publish_fails_on_disconnect},
    {"mqtt_broker_restart", mqtt_broker_restart},
    {"mqtt_persistent_session", mqtt_persistent_session},
    {"mqtt_stop_with_pending_reconnect", mqtt_stop_with_pending_reconnect},
    {"mqtt_broker_comes_later", mqtt_broker_comes_later},
    {"mqtt_tls", mqtt_tls},
};

CHECK_MAIN(tests)
