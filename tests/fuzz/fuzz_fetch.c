/* Fuzz target: the poll feed's HTTP/1.1 response parser (feeds/fetch.c)
 * through its socket-free entry: status line, 1xx interim answers,
 * headers, Content-Length, chunked (extensions, trailers) and
 * close-delimited bodies, the head and body bounds.
 *
 * The first byte's low bit asks for a HEAD exchange; the rest is what the
 * server sends before it closes the connection. It runs twice, in one read
 * and in reads of 1..16 bytes (the size from the last byte): both must end
 * the same way with the same status, headers and body. */
#include <event2/buffer.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fetch.h"
#include "fuzz_targets.h"

#define MAX_HEAD 512
#define MAX_BODY 1024

struct outcome {
    int rc, status;
    uint64_t hash; /* FNV-1a of the error text, the headers asked for, the body */
};

static void mix(uint64_t *h, const void *p, size_t n)
{
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++) {
        *h ^= b[i];
        *h *= 1099511628211u;
    }
    *h ^= 0xff;
    *h *= 1099511628211u;
}

static void run(bool head, const uint8_t *data, size_t size, size_t step, struct outcome *o)
{
    struct fetch *f;
    if (fetch_fuzz_new(head, MAX_HEAD, MAX_BODY, &f) < 0)
        abort();
    int rc = 0, done = 0;
    size_t off = 0;
    do { /* at least once: an empty answer is a close before anything */
        size_t n = size - off < step ? size - off : step;
        unsigned char *p = malloc(n ? n : 1); /* its own block, so ASan sees over-reads */
        memcpy(p, data + off, n);
        off += n;
        done = fetch_fuzz_feed(f, p, n, off == size, &rc);
        free(p);
    } while (done == 0 && off < size);
    if (done != 1)
        abort(); /* the close ends every exchange */
    o->rc = rc;
    o->status = fetch_status(f);
    o->hash = 14695981039346656037u;
    struct evbuffer *body = fetch_body(f);
    size_t blen = evbuffer_get_length(body);
    if (blen > MAX_BODY)
        abort();
    if (rc == 0 && (o->status < 200 || o->status > 999))
        abort(); /* 1xx answers are skipped, the status line has 3 digits */
    if (rc != 0 && (o->status != 0 || !fetch_error(f)[0]))
        abort();
    if (rc != 0) {
        mix(&o->hash, fetch_error(f), strlen(fetch_error(f)));
    } else {
        static const char *const names[] = {"Content-Type", "etag", "Last-Modified",
                                            "content-length", "Transfer-Encoding"};
        for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
            const char *v = fetch_header(f, names[i]);
            mix(&o->hash, v ? v : "", v ? strlen(v) + 1 : 0);
        }
        mix(&o->hash, evbuffer_pullup(body, -1), blen);
    }
    fetch_free(f);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    bool head = data[0] & 1;
    struct outcome whole, split;
    run(head, data + 1, size - 1, size, &whole);
    run(head, data + 1, size - 1, data[size - 1] % 16 + 1, &split);
    if (whole.rc != split.rc || whole.status != split.status || whole.hash != split.hash)
        abort();
    return 0;
}
