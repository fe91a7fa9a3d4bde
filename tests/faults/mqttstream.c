/* mqttstream: a QoS 1 event stream with a result collector, for the fault
 * tests (tests/faults) and the long fault run (tools/bench/faults).
 *
 * Two MQTT v5 clients with persistent sessions (clean start off, a session
 * expiry interval), so that neither loses anything across a broker restart:
 *   ID-sub  subscribes OUT/# at QoS 1 and counts the results: a result is
 *           any message whose payload carries "i": N (N < COUNT);
 *   ID-pub  publishes {"i": N} to IN/N at QoS 1, COUNT messages at RATE a
 *           second, holding while it is disconnected.
 * An input counts as acknowledged when its PUBACK came with a success code;
 * libmosquitto resends unacknowledged ones after a reconnect. When every
 * input is sent, it waits until each acknowledged one has a result, or
 * until DRAIN seconds pass without a new result.
 *
 * Output (stdout, line-buffered):
 *   progress acked=N results=N           every 250 acknowledged inputs
 *   STREAM sent=N acked=N results=N lost=N dup=N reconnects=N lost_after=N
 * lost = acknowledged inputs without a result; dup = results past the first
 * for one input; lost_after = those of the lost whose acknowledgement came
 * after the publisher's first reconnect (a broker killed loses what it had
 * not saved before it died; what it acknowledges after it is back, it has). Exit 0 when the run happened (whatever it counted), 1 when
 * it could not connect, 2 for bad usage.
 *
 *   mqttstream -p PORT -i ID -n COUNT -r RATE [-t IN] [-o OUT] [-D DRAIN]
 */
#include <errno.h>
#include <mosquitto.h>
#include <mqtt_protocol.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define EXPIRY 3600        /* seconds the broker keeps either session */
#define CONNECT_WAIT_S 20  /* for the first connection of both clients */
#define MAX_COUNT 10000000 /* inputs one run may send */

static struct {
    const char *host, *id, *in, *out;
    int port;
    long count;
    double rate, drain;

    pthread_mutex_t mu;
    bool pub_up, sub_up, subscribed;
    int sub_mid;
    long reconnects;
    long pub_connects;
    int *mid_of; /* per input: its publish's mid while unacknowledged */
    uint8_t *acked;
    uint32_t *results;
    long sent, nacked, nresults, dup;
    struct { /* acks that came before their publish call returned */
        int mid;
        long at; /* sent then: a late ack of an old mid is not kept */
    } early[64];
    int nearly;
} g;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void nap(double s)
{
    struct timespec ts = {(time_t)s, (long)((s - (time_t)s) * 1e9)};
    nanosleep(&ts, NULL);
}

/* mids are 16 bits and reused: an input's entry is found by scanning the
 * window of unacknowledged inputs, kept short by the broker's acks. */
static long input_of_mid(int mid)
{
    for (long i = g.sent - 1; i >= 0 && i >= g.sent - 65536; i--)
        if (g.mid_of[i] == mid)
            return i;
    return -1;
}

static void on_pub_connect(struct mosquitto *m, void *u, int rc, int flags,
                           const mosquitto_property *p)
{
    (void)m, (void)u, (void)flags, (void)p;
    pthread_mutex_lock(&g.mu);
    if (rc == 0) {
        /* pub_up is false again after a disconnect: count the connects */
        if (g.pub_connects++ > 0)
            g.reconnects++;
        g.pub_up = true;
    }
    pthread_mutex_unlock(&g.mu);
}

static void on_pub_disconnect(struct mosquitto *m, void *u, int rc, const mosquitto_property *p)
{
    (void)m, (void)u, (void)rc, (void)p;
    pthread_mutex_lock(&g.mu);
    g.pub_up = false;
    pthread_mutex_unlock(&g.mu);
}

static void ack(long i)
{
    g.mid_of[i] = -1;
    if (!g.acked[i]) {
        g.acked[i] = g.pub_connects > 1 ? 2 : 1; /* 2: after the first reconnect */
        g.nacked++;
        if (g.nacked % 250 == 0)
            printf("progress acked=%ld results=%ld\n", g.nacked, g.nresults);
    }
}

static void on_published(struct mosquitto *m, void *u, int mid, int reason,
                         const mosquitto_property *p)
{
    (void)m, (void)u, (void)p;
    pthread_mutex_lock(&g.mu);
    long i = input_of_mid(mid);
    if (i >= 0 && reason < 0x80)
        ack(i);
    else if (i >= 0)
        g.mid_of[i] = -1;
    else if (reason < 0x80 && g.nearly < (int)(sizeof g.early / sizeof g.early[0]))
        g.early[g.nearly].mid = mid, g.early[g.nearly++].at = g.sent;
    pthread_mutex_unlock(&g.mu);
}

static void on_sub_connect(struct mosquitto *m, void *u, int rc, int flags,
                           const mosquitto_property *p)
{
    (void)u, (void)flags, (void)p;
    if (rc != 0)
        return;
    char filter[512];
    snprintf(filter, sizeof filter, "%s/#", g.out);
    int mid = 0;
    mosquitto_subscribe_v5(m, &mid, filter, 1, 0, NULL);
    pthread_mutex_lock(&g.mu);
    if (g.sub_up)
        g.reconnects++;
    g.sub_up = true;
    g.sub_mid = mid;
    pthread_mutex_unlock(&g.mu);
}

static void on_subscribed(struct mosquitto *m, void *u, int mid, int n, const int *granted,
                          const mosquitto_property *p)
{
    (void)m, (void)u, (void)p;
    pthread_mutex_lock(&g.mu);
    if (mid == g.sub_mid && n == 1 && granted[0] == 1)
        g.subscribed = true;
    pthread_mutex_unlock(&g.mu);
}

static void on_message(struct mosquitto *m, void *u, const struct mosquitto_message *msg,
                       const mosquitto_property *p)
{
    (void)m, (void)u, (void)p;
    char buf[256];
    size_t n = msg->payloadlen < (int)sizeof buf - 1 ? (size_t)msg->payloadlen : sizeof buf - 1;
    memcpy(buf, msg->payload, n);
    buf[n] = 0;
    const char *at = strstr(buf, "\"i\":");
    if (!at)
        return;
    long i = strtol(at + 4, NULL, 10);
    if (i < 0 || i >= g.count)
        return;
    pthread_mutex_lock(&g.mu);
    if (g.results[i]++ == 0)
        g.nresults++;
    else
        g.dup++;
    pthread_mutex_unlock(&g.mu);
}

static struct mosquitto *client(const char *suffix, bool pub)
{
    char id[256];
    snprintf(id, sizeof id, "%s-%s", g.id, suffix);
    struct mosquitto *m = mosquitto_new(id, false, NULL);
    if (!m)
        return NULL;
    mosquitto_int_option(m, MOSQ_OPT_PROTOCOL_VERSION, MQTT_PROTOCOL_V5);
    mosquitto_reconnect_delay_set(m, 1, 1, false);
    if (pub) {
        mosquitto_connect_v5_callback_set(m, on_pub_connect);
        mosquitto_disconnect_v5_callback_set(m, on_pub_disconnect);
        mosquitto_publish_v5_callback_set(m, on_published);
    } else {
        mosquitto_connect_v5_callback_set(m, on_sub_connect);
        mosquitto_subscribe_v5_callback_set(m, on_subscribed);
        mosquitto_message_v5_callback_set(m, on_message);
    }
    mosquitto_property *props = NULL;
    mosquitto_property_add_int32(&props, MQTT_PROP_SESSION_EXPIRY_INTERVAL, EXPIRY);
    int rc = mosquitto_connect_bind_v5(m, g.host, g.port, 10, NULL, props);
    mosquitto_property_free_all(&props);
    if (rc != MOSQ_ERR_SUCCESS || mosquitto_loop_start(m) != MOSQ_ERR_SUCCESS) {
        fprintf(stderr, "mqttstream: cannot connect %s: %s\n", id, mosquitto_strerror(rc));
        mosquitto_destroy(m);
        return NULL;
    }
    return m;
}

static void send_all(struct mosquitto *pub)
{
    double t0 = now_s();
    for (long i = 0; i < g.count;) {
        double due = t0 + i / g.rate, t = now_s();
        if (due > t)
            nap(due - t);
        pthread_mutex_lock(&g.mu);
        bool up = g.pub_up;
        pthread_mutex_unlock(&g.mu);
        if (!up) { /* hold the stream; its schedule starts over */
            nap(0.01);
            t0 = now_s() - i / g.rate;
            continue;
        }
        char topic[512], payload[64];
        snprintf(topic, sizeof topic, "%s/%ld", g.in, i);
        int len = snprintf(payload, sizeof payload, "{\"i\": %ld}", i);
        int mid = 0;
        int rc = mosquitto_publish_v5(pub, &mid, topic, len, payload, 1, false, NULL);
        pthread_mutex_lock(&g.mu);
        if (rc == MOSQ_ERR_SUCCESS) {
            g.mid_of[i] = mid;
            g.sent = i + 1;
            for (int k = 0; k < g.nearly; k++) {
                if (g.early[k].mid == mid) /* its ack came first */
                    ack(i);
                if (g.early[k].mid == mid || g.sent - g.early[k].at > 8)
                    g.early[k--] = g.early[--g.nearly];
            }
            i++;
        }
        pthread_mutex_unlock(&g.mu);
        if (rc != MOSQ_ERR_SUCCESS)
            nap(0.01);
    }
}

static void drain(void)
{
    double idle_since = now_s();
    long last = -1;
    for (;;) {
        pthread_mutex_lock(&g.mu);
        long missing = 0;
        for (long i = 0; i < g.count; i++)
            missing += g.acked[i] && !g.results[i];
        long unacked = g.sent - g.nacked;
        long got = g.nresults;
        pthread_mutex_unlock(&g.mu);
        if (missing == 0 && unacked == 0)
            return;
        if (got != last) {
            last = got;
            idle_since = now_s();
        } else if (now_s() - idle_since > g.drain) {
            return;
        }
        nap(0.02);
    }
}

static int usage(void)
{
    fprintf(stderr, "usage: mqttstream -p PORT -i ID -n COUNT -r RATE [-h HOST] [-t IN] [-o OUT] "
                    "[-D DRAIN_S]\n");
    return 2;
}

int main(int argc, char **argv)
{
    g.host = "127.0.0.1";
    g.in = "stream/in";
    g.out = "stream/out";
    g.drain = 30;
    int c;
    while ((c = getopt(argc, argv, "h:p:i:n:r:t:o:D:")) != -1) {
        switch (c) {
        case 'h':
            g.host = optarg;
            break;
        case 'p':
            g.port = atoi(optarg);
            break;
        case 'i':
            g.id = optarg;
            break;
        case 'n':
            g.count = atol(optarg);
            break;
        case 'r':
            g.rate = atof(optarg);
            break;
        case 't':
            g.in = optarg;
            break;
        case 'o':
            g.out = optarg;
            break;
        case 'D':
            g.drain = atof(optarg);
            break;
        default:
            return usage();
        }
    }
    if (!g.id || g.port <= 0 || g.count <= 0 || g.count > MAX_COUNT || g.rate <= 0)
        return usage();
    setvbuf(stdout, NULL, _IOLBF, 0);
    pthread_mutex_init(&g.mu, NULL);
    g.mid_of = malloc(g.count * sizeof *g.mid_of);
    g.acked = calloc(g.count, 1);
    g.results = calloc(g.count, sizeof *g.results);
    if (!g.mid_of || !g.acked || !g.results)
        return 1;
    memset(g.mid_of, 0xff, g.count * sizeof *g.mid_of);
    mosquitto_lib_init();
    struct mosquitto *sub = client("sub", false), *pub = sub ? client("pub", true) : NULL;
    if (!pub)
        return 1;
    double until = now_s() + CONNECT_WAIT_S;
    bool ready = false;
    while (!ready && now_s() < until) {
        pthread_mutex_lock(&g.mu);
        ready = g.pub_up && g.subscribed;
        pthread_mutex_unlock(&g.mu);
        nap(0.01);
    }
    if (!ready) {
        fprintf(stderr, "mqttstream: not connected and subscribed within %d s\n", CONNECT_WAIT_S);
        return 1;
    }
    printf("ready\n");
    send_all(pub);
    drain();
    pthread_mutex_lock(&g.mu);
    long lost = 0, lost_after = 0;
    for (long i = 0; i < g.count; i++) {
        lost += g.acked[i] && !g.results[i];
        lost_after += g.acked[i] == 2 && !g.results[i];
    }
    printf("STREAM sent=%ld acked=%ld results=%ld lost=%ld dup=%ld reconnects=%ld lost_after=%ld\n",
           g.sent, g.nacked, g.nresults, lost, g.dup, g.reconnects, lost_after);
    pthread_mutex_unlock(&g.mu);
    mosquitto_disconnect_v5(pub, 0, NULL);
    mosquitto_disconnect_v5(sub, 0, NULL);
    mosquitto_loop_stop(pub, false);
    mosquitto_loop_stop(sub, false);
    mosquitto_destroy(pub);
    mosquitto_destroy(sub);
    mosquitto_lib_cleanup();
    free(g.mid_of);
    free(g.acked);
    free(g.results);
    return 0;
}
