/* mqttload: an MQTT load generator for the tools/bench/mqtt benchmark.
 *
 * It subscribes to an output topic, publishes numbered, timestamped JSON
 * messages to an input topic and waits for whatever sits between the two
 * (the floor responder, Node-RED, wispd) to send each one back:
 *
 *   {"seq": N, "t_us": <CLOCK_MONOTONIC µs at send>, "run": R, "pad": "xxx..."}
 *
 * A reply is any message on the output topic that carries the same "seq",
 * "t_us" and "run" keys (anywhere in it, also inside a string, so a
 * responder that wraps the object still counts); latency = now - t_us.
 * "run" is random per invocation, so replies left over from an earlier run
 * are ignored (and counted as stray).
 *
 * Modes:
 *   closed loop   -w W: W messages in flight, the next one is sent when a
 *                 reply comes (-w 1 = one at a time), for -d seconds;
 *   open loop     -r R: R messages a second on a fixed schedule, -d seconds.
 * Then it waits up to -D seconds (default 5) for the missing replies
 * ("drain"); whatever is still missing is lost. If some are, it listens -L
 * seconds more (default 1) and counts those that come then as late (they
 * stay counted as lost).
 *
 * Output: one line on stdout
 *   MQTTRESULT sent=N received=N lost=N dup=N rate=X p50_us=X p90_us=X
 *              p99_us=X max_us=X late=N ooo=N stray=N mean_us=X pubfail=N
 * (one line; wrapped here) and a human summary on stderr. Exit status 0
 * when the run happened (whatever it measured), 1 when it could not
 * connect or subscribe, 2 for bad usage.
 *
 *   cc -O2 mqttload.c -o mqttload $(pkg-config --cflags --libs libmosquitto) -lpthread
 */
#define _GNU_SOURCE
#include <errno.h>
#include <inttypes.h>
#include <mosquitto.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

enum { F_SENT = 1, F_GOT = 2, F_GAVEUP = 4 };

static struct {
    /* options */
    const char *host, *in, *out, *id;
    int port, qos, window, keepalive;
    double rate, secs, drain_secs, late_secs, timeout_secs;
    size_t pad;
    uint64_t warmup;
    bool quiet;

    struct mosquitto *mosq;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool connected, subscribed, conn_failed, lost_conn;
    int sub_mid;
    uint32_t run;
    char *buf; /* payload being built (under mu) */
    size_t bufcap;

    /* per-seq flags, grown on demand (under mu) */
    uint8_t *flags;
    uint64_t cap, next_seq;
    bool sending;       /* closed loop: replies may send the next one */
    int inflight;       /* closed loop: sent, neither answered nor given up */
    uint64_t t_stop_us; /* closed loop: no new sends from this time */
    int phase;          /* 0 running/draining, 1 late window, 2 done */

    /* measured */
    uint64_t t0_us;     /* first measured send */
    uint64_t t_last_us; /* last measured reply */
    uint64_t t_last_progress_us;
    uint64_t sent, received, dup, ooo, late, stray, pubfail, gaveup;
    int64_t max_seq_got;
    uint32_t *lat;
    size_t nlat, latcap;
} g = {
    .host = "127.0.0.1",
    .in = "bench/in",
    .out = "bench/out",
    .port = 1883,
    .qos = 0,
    .window = 1,
    .keepalive = 60,
    .secs = 10,
    .drain_secs = 5,
    .late_secs = 1,
    .timeout_secs = 2,
    .max_seq_got = -1,
};

static uint64_t now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static void die(const char *fmt, const char *arg)
{
    fprintf(stderr, "mqttload: ");
    fprintf(stderr, fmt, arg);
    fputc('\n', stderr);
    exit(1);
}

static void *xrealloc(void *p, size_t n)
{
    void *q = realloc(p, n);
    if (!q)
        die("out of memory%s", "");
    return q;
}

/* under mu: makes room for seq */
static void grow_flags(uint64_t seq)
{
    if (seq < g.cap)
        return;
    uint64_t ncap = g.cap ? g.cap : 65536;
    while (ncap <= seq)
        ncap *= 2;
    g.flags = xrealloc(g.flags, ncap);
    memset(g.flags + g.cap, 0, ncap - g.cap);
    g.cap = ncap;
}

/* under mu: publishes the next seq; false when the client refused it */
static bool send_next(void)
{
    uint64_t seq = g.next_seq++;
    grow_flags(seq);
    size_t need = g.pad + 128;
    if (need > g.bufcap) {
        g.buf = xrealloc(g.buf, need);
        g.bufcap = need;
    }
    uint64_t t = now_us();
    if (seq == g.warmup)
        g.t0_us = t;
    int n = snprintf(g.buf, g.bufcap, "{\"seq\":%" PRIu64 ",\"t_us\":%" PRIu64 ",\"run\":%" PRIu32
                     ",\"pad\":\"", seq, t, g.run);
    memset(g.buf + n, 'x', g.pad);
    n += (int)g.pad;
    memcpy(g.buf + n, "\"}", 2);
    n += 2;
    int rc = mosquitto_publish(g.mosq, NULL, g.in, n, g.buf, g.qos, false);
    if (rc != MOSQ_ERR_SUCCESS) {
        if (seq >= g.warmup)
            g.pubfail++;
        return false;
    }
    g.flags[seq] |= F_SENT;
    if (seq >= g.warmup)
        g.sent++;
    return true;
}

/* Finds the number of key in p[0..len): the key quoted as "key" or, inside
 * a JSON string, as \"key\", then ':' (spaces allowed), then digits. */
static bool find_num(const char *p, size_t len, const char *key, uint64_t *out)
{
    size_t kl = strlen(key);
    const char *end = p + len, *s = p;
    while ((s = memmem(s, (size_t)(end - s), key, kl)) != NULL) {
        const char *k = s;
        s += kl;
        if (k == p || k[-1] != '"')
            continue;
        const char *q = s;
        if (q < end && *q == '\\')
            q++;
        if (q >= end || *q != '"')
            continue;
        q++;
        while (q < end && (*q == ' ' || *q == '\t' || *q == '\n' || *q == '\r'))
            q++;
        if (q >= end || *q != ':')
            continue;
        q++;
        while (q < end && (*q == ' ' || *q == '\t' || *q == '\n' || *q == '\r'))
            q++;
        if (q >= end || *q < '0' || *q > '9')
            continue;
        uint64_t v = 0;
        while (q < end && *q >= '0' && *q <= '9')
            v = v * 10 + (uint64_t)(*q++ - '0');
        *out = v;
        return true;
    }
    return false;
}

static void on_connect(struct mosquitto *m, void *u, int rc)
{
    (void)u;
    pthread_mutex_lock(&g.mu);
    if (rc != 0) {
        g.conn_failed = true;
    } else {
        g.connected = true;
        /* (re)subscribe on every connect */
        mosquitto_subscribe(m, &g.sub_mid, g.out, g.qos);
    }
    pthread_cond_broadcast(&g.cv);
    pthread_mutex_unlock(&g.mu);
}

static void on_disconnect(struct mosquitto *m, void *u, int rc)
{
    (void)m, (void)u;
    pthread_mutex_lock(&g.mu);
    g.connected = false;
    if (rc != 0)
        g.lost_conn = true;
    pthread_cond_broadcast(&g.cv);
    pthread_mutex_unlock(&g.mu);
}

static void on_subscribe(struct mosquitto *m, void *u, int mid, int n, const int *granted)
{
    (void)m, (void)u;
    pthread_mutex_lock(&g.mu);
    if (mid == g.sub_mid) {
        if (n >= 1 && granted[0] >= 0 && granted[0] <= 2)
            g.subscribed = true;
        else
            g.conn_failed = true;
    }
    pthread_cond_broadcast(&g.cv);
    pthread_mutex_unlock(&g.mu);
}

static void on_message(struct mosquitto *m, void *u, const struct mosquitto_message *msg)
{
    (void)m, (void)u;
    uint64_t t = now_us();
    uint64_t seq, sent_us, run;
    const char *p = msg->payload;
    size_t len = (size_t)msg->payloadlen;
    pthread_mutex_lock(&g.mu);
    if (!p || !find_num(p, len, "seq", &seq) || !find_num(p, len, "t_us", &sent_us) ||
        !find_num(p, len, "run", &run) || run != g.run || seq >= g.next_seq ||
        !(g.flags[seq] & F_SENT)) {
        g.stray++;
        goto out;
    }
    bool first = !(g.flags[seq] & F_GOT);
    bool measured = seq >= g.warmup;
    if (!first) {
        if (measured)
            g.dup++;
        goto out;
    }
    g.flags[seq] |= F_GOT;
    g.t_last_progress_us = t;
    if (measured) {
        if (g.phase >= 1) {
            g.late++; /* past the drain deadline: lost, but seen */
            goto out;
        }
        g.received++;
        if ((int64_t)seq < g.max_seq_got)
            g.ooo++;
        if (g.nlat == g.latcap) {
            g.latcap = g.latcap ? 2 * g.latcap : 65536;
            g.lat = xrealloc(g.lat, g.latcap * sizeof *g.lat);
        }
        uint64_t l = t >= sent_us ? t - sent_us : 0;
        g.lat[g.nlat++] = l > UINT32_MAX ? UINT32_MAX : (uint32_t)l;
        g.t_last_us = t;
    }
    if ((int64_t)seq > g.max_seq_got)
        g.max_seq_got = (int64_t)seq;
    if (g.window > 0 && !(g.flags[seq] & F_GAVEUP)) {
        g.inflight--;
        if (g.sending && t < g.t_stop_us) {
            if (send_next())
                g.inflight++;
        }
    }
    pthread_cond_broadcast(&g.cv);
out:
    pthread_mutex_unlock(&g.mu);
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

static uint32_t pct(double q)
{
    if (!g.nlat)
        return 0;
    size_t i = (size_t)(q * (double)g.nlat + 0.999999);
    if (i < 1)
        i = 1;
    if (i > g.nlat)
        i = g.nlat;
    return g.lat[i - 1];
}

static void timed_wait_until(uint64_t deadline_us)
{
    /* cond waits on CLOCK_REALTIME by default; set to MONOTONIC in main */
    struct timespec ts = {.tv_sec = (time_t)(deadline_us / 1000000u),
                          .tv_nsec = (long)(deadline_us % 1000000u) * 1000};
    pthread_cond_timedwait(&g.cv, &g.mu, &ts);
}

static void usage(void)
{
    fprintf(stderr,
            "usage: mqttload [-h host] [-p port] [-i in-topic] [-o out-topic] [-q 0|1|2]\n"
            "                (-w window | -r rate) [-d seconds] [-s pad-bytes] [-W warmup]\n"
            "                [-D drain-seconds] [-L late-seconds] [-T reply-timeout-seconds]\n"
            "                [-c client-id] [-Q]\n"
            "  -w W  closed loop, W messages in flight (default 1)\n"
            "  -r R  open loop, R messages a second\n"
            "  -W N  N warm-up messages first, not counted (default 0)\n"
            "  -T S  closed loop: with no reply for S seconds, give up on the ones in\n"
            "        flight (they count as lost unless they come later) and send new ones\n"
            "  -Q    no summary on stderr\n");
    exit(2);
}

static double num(const char *s)
{
    char *e;
    errno = 0;
    double v = strtod(s, &e);
    if (errno || e == s || *e || v < 0)
        usage();
    return v;
}

int main(int argc, char **argv)
{
    int c;
    bool open_loop = false;
    while ((c = getopt(argc, argv, "h:p:i:o:q:w:r:d:s:W:D:L:T:c:Q")) != -1) {
        switch (c) {
        case 'h': g.host = optarg; break;
        case 'p': g.port = (int)num(optarg); break;
        case 'i': g.in = optarg; break;
        case 'o': g.out = optarg; break;
        case 'q': g.qos = (int)num(optarg); break;
        case 'w': g.window = (int)num(optarg); open_loop = false; break;
        case 'r': g.rate = num(optarg); open_loop = true; break;
        case 'd': g.secs = num(optarg); break;
        case 's': g.pad = (size_t)num(optarg); break;
        case 'W': g.warmup = (uint64_t)num(optarg); break;
        case 'D': g.drain_secs = num(optarg); break;
        case 'L': g.late_secs = num(optarg); break;
        case 'T': g.timeout_secs = num(optarg); break;
        case 'c': g.id = optarg; break;
        case 'Q': g.quiet = true; break;
        default: usage();
        }
    }
    if (optind != argc || g.qos > 2 || g.port < 1 || g.port > 65535 ||
        (open_loop ? g.rate <= 0 : g.window < 1))
        usage();
    if (open_loop)
        g.window = 0;

    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&g.cv, &ca);
    pthread_mutex_init(&g.mu, NULL);
    g.run = (uint32_t)(now_us() ^ ((uint64_t)getpid() << 16)) & 0x7fffffffu;

    char idbuf[64];
    if (!g.id) {
        snprintf(idbuf, sizeof idbuf, "mqttload-%d-%" PRIu32, (int)getpid(), g.run);
        g.id = idbuf;
    }
    mosquitto_lib_init();
    g.mosq = mosquitto_new(g.id, true, NULL);
    if (!g.mosq)
        die("mosquitto_new failed%s", "");
    mosquitto_int_option(g.mosq, MOSQ_OPT_TCP_NODELAY, 1);
    /* the generator must not be what limits QoS 1/2 throughput */
    mosquitto_int_option(g.mosq, MOSQ_OPT_SEND_MAXIMUM, 65535);
    mosquitto_max_inflight_messages_set(g.mosq, 0);
    mosquitto_connect_callback_set(g.mosq, on_connect);
    mosquitto_disconnect_callback_set(g.mosq, on_disconnect);
    mosquitto_subscribe_callback_set(g.mosq, on_subscribe);
    mosquitto_message_callback_set(g.mosq, on_message);
    int rc = mosquitto_connect(g.mosq, g.host, g.port, g.keepalive);
    if (rc != MOSQ_ERR_SUCCESS)
        die("connect: %s", rc == MOSQ_ERR_ERRNO ? strerror(errno) : mosquitto_strerror(rc));
    if ((rc = mosquitto_loop_start(g.mosq)) != MOSQ_ERR_SUCCESS)
        die("loop_start: %s", mosquitto_strerror(rc));

    pthread_mutex_lock(&g.mu);
    uint64_t deadline = now_us() + 10000000u;
    while (!g.subscribed && !g.conn_failed && now_us() < deadline)
        timed_wait_until(deadline);
    if (!g.subscribed) {
        pthread_mutex_unlock(&g.mu);
        die("could not connect and subscribe to %s", g.out);
    }

    uint64_t start = now_us(), warm_stop = 0;
    g.t_last_progress_us = start;
    if (!open_loop) {
        /* closed loop: fill the window; replies keep it full until t_stop.
         * The measured period starts at the first measured send, so the
         * stop time is set once the warm-up is through. */
        g.t_stop_us = UINT64_MAX;
        g.sending = true;
        for (int i = 0; i < g.window; i++)
            if (send_next())
                g.inflight++;
        bool stop_set = false;
        for (;;) {
            uint64_t t = now_us();
            if (!stop_set && g.next_seq > g.warmup) {
                g.t_stop_us = g.t0_us + (uint64_t)(g.secs * 1e6);
                stop_set = true;
            }
            if (stop_set && t >= g.t_stop_us)
                break;
            if (!stop_set && t - start > 60000000u + (uint64_t)(g.timeout_secs * 1e6)) {
                warm_stop = t; /* the warm-up never got through */
                break;
            }
            if (t - g.t_last_progress_us >= (uint64_t)(g.timeout_secs * 1e6)) {
                /* nothing came back for a while: give up on those in
                 * flight and keep the window full with new ones */
                for (uint64_t s = 0; s < g.next_seq; s++)
                    if ((g.flags[s] & (F_SENT | F_GOT | F_GAVEUP)) == F_SENT) {
                        g.flags[s] |= F_GAVEUP;
                        g.gaveup++;
                    }
                g.inflight = 0;
                g.t_last_progress_us = t;
                for (int i = 0; i < g.window; i++)
                    if (send_next())
                        g.inflight++;
            }
            uint64_t wake = t + 50000;
            if (stop_set && g.t_stop_us < wake)
                wake = g.t_stop_us;
            timed_wait_until(wake);
        }
        g.sending = false;
    } else {
        /* open loop: message k (warm-up included) is due at start + k/rate */
        uint64_t total = g.warmup + (uint64_t)(g.rate * g.secs + 0.5);
        for (uint64_t k = 0; k < total; k++) {
            uint64_t due = start + (uint64_t)((double)k * 1e6 / g.rate);
            uint64_t t = now_us();
            if (t < due) {
                pthread_mutex_unlock(&g.mu);
                struct timespec ts = {.tv_sec = (time_t)(due / 1000000u),
                                      .tv_nsec = (long)(due % 1000000u) * 1000};
                while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR)
                    ;
                pthread_mutex_lock(&g.mu);
            }
            send_next();
        }
    }
    uint64_t send_end = now_us();

    /* drain: until every measured message sent is answered, or the deadline */
    uint64_t drain_end = send_end + (uint64_t)(g.drain_secs * 1e6);
    while (g.received < g.sent && now_us() < drain_end)
        timed_wait_until(drain_end);
    g.phase = 1;
    uint64_t lost = g.sent - g.received;
    if (lost > 0 && g.late_secs > 0) {
        uint64_t late_end = now_us() + (uint64_t)(g.late_secs * 1e6);
        while (g.late < lost && now_us() < late_end)
            timed_wait_until(late_end);
    }
    g.phase = 2;
    bool lost_conn = g.lost_conn;
    pthread_mutex_unlock(&g.mu);

    mosquitto_disconnect(g.mosq);
    mosquitto_loop_stop(g.mosq, false);

    /* numbers (the callback thread is gone) */
    qsort(g.lat, g.nlat, sizeof *g.lat, cmp_u32);
    double span = g.t_last_us > g.t0_us ? (double)(g.t_last_us - g.t0_us) / 1e6 : 0;
    double rate = span > 0 ? (double)g.received / span : 0;
    double sum = 0;
    for (size_t i = 0; i < g.nlat; i++)
        sum += g.lat[i];
    double mean = g.nlat ? sum / (double)g.nlat : 0;
    printf("MQTTRESULT sent=%" PRIu64 " received=%" PRIu64 " lost=%" PRIu64 " dup=%" PRIu64
           " rate=%.1f p50_us=%" PRIu32 " p90_us=%" PRIu32 " p99_us=%" PRIu32 " max_us=%" PRIu32
           " late=%" PRIu64 " ooo=%" PRIu64 " stray=%" PRIu64 " mean_us=%.0f pubfail=%" PRIu64
           "\n",
           g.sent, g.received, lost, g.dup, rate, pct(0.50), pct(0.90), pct(0.99),
           g.nlat ? g.lat[g.nlat - 1] : 0, g.late, g.ooo, g.stray, mean, g.pubfail);
    fflush(stdout);
    if (!g.quiet) {
        if (open_loop)
            fprintf(stderr, "mqttload: open loop %.0f/s for %.1f s (+%" PRIu64
                    " warm-up), QoS %d, %s -> %s, %zu pad bytes; sending took %.2f s\n",
                    g.rate, g.secs, g.warmup, g.qos, g.in, g.out, g.pad,
                    (double)(send_end - start) / 1e6);
        else
            fprintf(stderr, "mqttload: closed loop, %d in flight, %.1f s (+%" PRIu64
                    " warm-up), QoS %d, %s -> %s, %zu pad bytes\n",
                    g.window, g.secs, g.warmup, g.qos, g.in, g.out, g.pad);
        fprintf(stderr,
                "mqttload: %" PRIu64 " sent, %" PRIu64 " answered (%.1f/s), %" PRIu64
                " lost (%" PRIu64 " of them late), %" PRIu64 " duplicated, %" PRIu64
                " out of order, %" PRIu64 " stray\n",
                g.sent, g.received, rate, lost, g.late, g.dup, g.ooo, g.stray);
        fprintf(stderr,
                "mqttload: latency µs: p50 %" PRIu32 "  p90 %" PRIu32 "  p99 %" PRIu32
                "  max %" PRIu32 "  mean %.0f\n",
                pct(0.50), pct(0.90), pct(0.99), g.nlat ? g.lat[g.nlat - 1] : 0, mean);
        if (g.gaveup)
            fprintf(stderr, "mqttload: gave up waiting on %" PRIu64 " message(s) (-T %.1f s)\n",
                    g.gaveup, g.timeout_secs);
        if (g.pubfail)
            fprintf(stderr, "mqttload: %" PRIu64 " publish call(s) failed\n", g.pubfail);
        if (warm_stop)
            fprintf(stderr, "mqttload: the warm-up did not get through: nothing measured\n");
        if (lost_conn)
            fprintf(stderr, "mqttload: the connection to the broker was lost during the run\n");
    }
    mosquitto_destroy(g.mosq);
    mosquitto_lib_cleanup();
    free(g.flags);
    free(g.lat);
    free(g.buf);
    return 0;
}
