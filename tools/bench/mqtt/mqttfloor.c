/* mqttfloor: the floor responder of the tools/bench/mqtt benchmark. A
 * minimal libmosquitto client (TCP_NODELAY on) that subscribes to the input
 * topic and republishes every message's payload, unchanged, to the output
 * topic with the QoS it arrived with. What mqttload measures through it is
 * what the broker and the box cost alone: no parsing, no function, no
 * storage.
 *
 *   mqttfloor [-h host] [-p port] [-i in-topic] [-o out-topic] [-q max-qos]
 *
 * -q is the subscription's QoS (default 1): messages published at a lower
 * QoS arrive, and go out again, at that lower QoS, so one floor serves the
 * QoS 0 and the QoS 1 runs. Once subscribed it prints
 *   mqttfloor: ready (HOST:PORT, IN -> OUT)
 * on stderr. It runs until killed; on a lost connection it reconnects.
 *
 *   cc -O2 mqttfloor.c -o mqttfloor $(pkg-config --cflags --libs libmosquitto)
 */
#include <errno.h>
#include <mosquitto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char *host = "127.0.0.1", *in = "bench/in", *out = "bench/out";
static int port = 1883, qos = 1, sub_mid;
static unsigned long long forwarded, failed;

static void on_connect(struct mosquitto *m, void *u, int rc)
{
    (void)u;
    if (rc != 0) {
        fprintf(stderr, "mqttfloor: connect refused: %s\n", mosquitto_connack_string(rc));
        return;
    }
    mosquitto_subscribe(m, &sub_mid, in, qos);
}

static void on_subscribe(struct mosquitto *m, void *u, int mid, int n, const int *granted)
{
    (void)m, (void)u;
    if (mid != sub_mid)
        return;
    if (n < 1 || granted[0] < 0 || granted[0] > 2) {
        fprintf(stderr, "mqttfloor: subscribing to %s was refused\n", in);
        exit(1);
    }
    fprintf(stderr, "mqttfloor: ready (%s:%d, %s -> %s)\n", host, port, in, out);
}

static void on_message(struct mosquitto *m, void *u, const struct mosquitto_message *msg)
{
    (void)u;
    int rc = mosquitto_publish(m, NULL, out, msg->payloadlen, msg->payload, msg->qos, false);
    if (rc == MOSQ_ERR_SUCCESS)
        forwarded++;
    else if (failed++ < 10)
        fprintf(stderr, "mqttfloor: publish: %s\n", mosquitto_strerror(rc));
}

int main(int argc, char **argv)
{
    int c;
    while ((c = getopt(argc, argv, "h:p:i:o:q:")) != -1) {
        switch (c) {
        case 'h': host = optarg; break;
        case 'p': port = atoi(optarg); break;
        case 'i': in = optarg; break;
        case 'o': out = optarg; break;
        case 'q': qos = atoi(optarg); break;
        default:
            fprintf(stderr, "usage: mqttfloor [-h host] [-p port] [-i in] [-o out] [-q 0|1|2]\n");
            return 2;
        }
    }
    if (qos < 0 || qos > 2 || port < 1 || port > 65535) {
        fprintf(stderr, "mqttfloor: bad -q or -p\n");
        return 2;
    }
    char id[64];
    snprintf(id, sizeof id, "mqttfloor-%d", (int)getpid());
    mosquitto_lib_init();
    struct mosquitto *m = mosquitto_new(id, true, NULL);
    if (!m) {
        fprintf(stderr, "mqttfloor: mosquitto_new failed\n");
        return 1;
    }
    mosquitto_int_option(m, MOSQ_OPT_TCP_NODELAY, 1);
    /* the floor forwards; it should not be what limits QoS 1 throughput */
    mosquitto_int_option(m, MOSQ_OPT_SEND_MAXIMUM, 65535);
    mosquitto_max_inflight_messages_set(m, 0);
    mosquitto_connect_callback_set(m, on_connect);
    mosquitto_subscribe_callback_set(m, on_subscribe);
    mosquitto_message_callback_set(m, on_message);
    int rc = mosquitto_connect(m, host, port, 60);
    if (rc != MOSQ_ERR_SUCCESS) {
        fprintf(stderr, "mqttfloor: connect to %s:%d: %s\n", host, port,
                rc == MOSQ_ERR_ERRNO ? strerror(errno) : mosquitto_strerror(rc));
        return 1;
    }
    rc = mosquitto_loop_forever(m, -1, 1);
    fprintf(stderr, "mqttfloor: loop ended: %s (%llu forwarded, %llu failed)\n",
            mosquitto_strerror(rc), forwarded, failed);
    mosquitto_destroy(m);
    mosquitto_lib_cleanup();
    return rc == MOSQ_ERR_SUCCESS ? 0 : 1;
}
