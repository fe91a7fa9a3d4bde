/* runtimes/pool.c - pre-warmed workers and the actionloop channel.
 *
 * Policy. A run goes to, in order: an idle warm worker of the same action
 * version (or a busy one with a free concurrency slot); a stem cell of its
 * kind (an interpreter started ahead of time with the launcher loaded,
 * given the code now); a new worker (a cold start). Each live worker
 * reserves its action's limits.memory (a stem cell, stem_memory_mb) and the
 * sum never exceeds the budget: to make room the pool stops idle workers,
 * least recently used first, stem cells last. What still cannot start waits
 * in a bounded FIFO. A stem cell missing from its prewarm count may stop a
 * warm worker idle for stem_reclaim_s (nothing queued): stems serve every
 * new action, a long-idle warm worker only its own.
 *
 * Channel. Four non-blocking pipes per worker. stdin takes init and run
 * lines through an output buffer; fd 3 gives one line per answer; stdout
 * and stderr are split into log lines in OpenWhisk's form. When an answer
 * arrives, the log pipes are read to the end first: a launcher flushes its
 * logs before it answers, so everything logged during the activation is in
 * the pipes by then, and none of it can leak into the next activation.
 *
 * Lifetimes. A worker is killed at most once (worker_kill), which fails its
 * runs and releases its memory at once; the struct lives on, DEAD, until
 * SIGCHLD reaps its pid. A run's done callback is called exactly once: from
 * an event, or from the run's own zero-delay timer when the outcome is known
 * inside pool_run. */
#include <errno.h>
#include <event2/buffer.h>
#include <event2/event.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "actionloop.h"
#include "log.h"
#include "plat.h"
#include "pool_priv.h"
#include "wjson.h"

#define ACK_LINE "{\"ok\":true}"
#define FLOOD_MIN_BYTES (16u << 20)
/* Read from one pipe per event at most: more than a pipe holds (64 KB,
 * 1 MB if the action raised it), so the drain before an answer still
 * takes everything written before it. */
#define DRAIN_MAX (2u << 20)
#define INIT_LINE_SLACK 4096
#define REAPED_WAIT_US (30 * 1000000) /* see free_reaped */

enum wk_state {
    WK_STARTING, /* launcher spawned, waiting for its ack */
    WK_STEM,     /* acked, no code yet: a stem cell */
    WK_INITING,  /* init line sent (or a zip being unpacked), waiting for {"ok":true} */
    WK_READY,    /* has its action's code; runs activations */
    WK_DEAD,     /* killed or exited; waiting to be reaped */
};

struct run {
    struct run *next;
    struct pool *p;
    struct worker *w;
    char *key, *name, *main, *image; /* in the run's own allocation, after the struct */
    const char *kind;        /* the kind table's */
    json_t *code;
    bool binary, network;
    unsigned memory_mb, timeout_ms, concurrency;
    size_t log_limit, result_limit;
    char *msg;
    size_t len;
    pool_done_fn *done;
    void *arg;
    int64_t enq_us, start_us, init_ms;
    json_t *logs;
    size_t log_bytes, seen_bytes;
    bool truncated, sent;
    struct event *ev; /* timeout, or deferred completion */
    enum pool_status fin_status;
    char *fin_error;
};

/* A backend of the table (backend_table) as this pool opened it. */
struct backend {
    const struct pool_backend_ops *ops;
    void *self;     /* NULL: unavailable, for the reason in why */
    char why[256];
};

struct worker {
    struct worker *prev, *next;
    struct pool *p;
    const struct rt_kind *kind;
    struct backend *be;
    char *key;   /* the action version it holds (READY/INITING) */
    char *image; /* kinds that run an image: the image it runs */
    unsigned id;
    struct worker_proc proc;
    bool native, zipped, skip_ack;
    bool reaped;         /* its pid is gone; what it started may still be exiting */
    int64_t reaped_us;
    enum wk_state state;
    bool killing; /* inside worker_kill: its log drain must not kill again */
    bool paused;  /* frozen by its backend (idle past pause_ms) */
    struct event *ev_pause;
    unsigned reserved_mb, concurrency;
    struct run *runs, *runs_tail; /* FIFO of runs handed to this worker */
    unsigned nruns;
    size_t stray_bytes; /* log bytes written with no run to keep them */
    struct evbuffer *in, *out, *err, *ctl;
    struct event *ev_in, *ev_out, *ev_err, *ev_ctl;
    int64_t spawned_us, last_used_us;
    char dir[PATH_MAX];
};

struct prewarm {
    const struct rt_kind *kind;
    unsigned count;
    char image[256];   /* kinds that run an image: which one ("blackbox:IMAGE=N") */
    int64_t retry_us;  /* after a failed start: not again before this */
};

#define STEM_RETRY_US (10 * 1000000) /* a stem that cannot start (an image not imported) */

struct pool {
    struct event_base *base;
    struct pool_cfg cfg;
    /* absolute: workers chdir into their own directory before exec */
    char work_dir[PATH_MAX], runtimes_dir[PATH_MAX];
    char unzip_exec[PATH_MAX]; /* the zipped native actions' first program */
    struct backend be[2]; /* as backend_table */
    struct worker *workers;
    struct run *queue, *queue_tail;
    unsigned nqueued, next_id;
    uint64_t reserved_mb;
    struct prewarm prewarm[16];
    unsigned nprewarm;
    struct event *ev_sigchld, *ev_tick, *ev_kick;
    struct pool_stats stats;
    struct plat_buf line; /* scratch: a run or init line being written */
    int nice; /* wispd's own nice value, the base of the workers' */
    bool closing;
};

/* Every worker backend: a kind's "backend" in the manifest names one. */
static const struct pool_backend_ops *const backend_table[] = {
    &process_backend_ops,
    &container_backend_ops,
};

static struct backend *backend_of(struct pool *p, const struct rt_kind *k)
{
    for (size_t i = 0; i < WISP_ARRAY_LEN(backend_table); i++)
        if (strcmp(p->be[i].ops->name, k->backend) == 0)
            return &p->be[i];
    return NULL; /* pool_open checked every kind: not reached */
}

/* Whether the kernel's OOM killer ended it (its backend knows where to look). */
static bool worker_oom(const struct worker *w)
{
    struct worker_stats st;
    return w->be->ops->stats && w->be->ops->stats(w->be->self, &w->proc, &st) == 0 &&
           st.oom_killed;
}

static void dispatch(struct pool *p);
static void worker_kill(struct worker *w, enum pool_status st, const char *msg);
static void kick(struct pool *p);

/* A worker's CPU weight, as OpenWhisk gives an action container
 * cpu-shares: a full share (wispd's own weight) times its limits.memory over
 * the memory budget, at least 2 of 1024. Under contention the loop, which
 * serves every event, is not held back by each worker it wakes; alone on a
 * core, a worker still gets all of it. Called once a worker knows its
 * action (a worker never changes action): raising a nice value needs no
 * privilege. */
static bool worker_nice(const struct pool *p, unsigned memory_mb, int *nice)
{
    if (!p->cfg.cpu_by_memory || !p->cfg.memory_budget_mb)
        return false;
    uint64_t share = 1024 * (uint64_t)memory_mb / p->cfg.memory_budget_mb;
    /* past 19, setpriority (in the child, or plat_group_nice) keeps 19 */
    *nice = p->nice + plat_nice_for_share(share < 2 ? 2 : share > 1024 ? 1024 : (unsigned)share);
    return true;
}

/* A stem cell taking its action: the whole process group. (A worker
 * spawned for its action starts at its value: worker_start.nice.) */
static void worker_cpu_share(struct pool *p, struct worker *w, unsigned memory_mb)
{
    int nice, rc;
    if (worker_nice(p, memory_mb, &nice) && (rc = plat_group_nice(w->proc.pid, nice)) < 0)
        wlog_debug("pool", "worker %u: cannot lower its CPU weight: %s", w->id, strerror(-rc));
}

/* ==== runs ============================================================ */

static void run_free(struct run *r)
{
    if (r->ev)
        event_free(r->ev);
    json_decref(r->code);
    json_decref(r->logs);
    free(r->fin_error);
    free(r);
}

/* Calls done and frees the run. */
static void run_complete(struct run *r, enum pool_status st, json_t *result, size_t result_bytes,
                         const char *error)
{
    int64_t now = plat_clock_mono_us();
    struct pool_result res = {
        .status = st,
        .result = result,
        .result_bytes = result_bytes,
        .error = error,
        .logs = r->logs,
        .wait_ms = ((r->start_us ? r->start_us : now) - r->enq_us) / 1000,
        .init_ms = r->init_ms,
    };
    r->done(r->arg, &res);
    run_free(r);
}

static void on_run_deferred(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct run *r = arg;
    run_complete(r, r->fin_status, NULL, 0, r->fin_error);
}

/* For outcomes known where done must not be called (inside pool_run). */
static void run_complete_later(struct run *r, enum pool_status st, const char *error)
{
    r->fin_status = st;
    free(r->fin_error);
    r->fin_error = error ? strdup(error) : NULL;
    if (r->ev)
        event_free(r->ev);
    r->ev = evtimer_new(r->p->base, on_run_deferred, r);
    struct timeval zero = {0, 0};
    if (!r->ev || evtimer_add(r->ev, &zero) < 0)
        wlog_err("pool", "cannot defer a completion: the activation is lost");
}

/* ==== log lines ======================================================= */

static void append_line(struct run *r, const char *stream, const char *line, size_t len)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    json_t *js = al_log_line(&ts, stream, line, len);
    if (js)
        json_array_append_new(r->logs, js);
}

static void add_log(struct run *r, const char *stream, const char *line, size_t len)
{
    r->seen_bytes += len + 1;
    if (r->truncated)
        return;
    /* A line costs what the record keeps of it, its timestamp and stream
     * included: counted by its text alone, empty lines were free, and a
     * flood of them (16 M lines under the flood guard) held gigabytes of
     * log strings in wispd. */
    size_t cost = AL_LOG_PREFIX_LEN + len;
    if (r->log_bytes + cost > r->log_limit) {
        /* OpenWhisk adds the notice as a log line of its own */
        char msg[160];
        int n = al_truncation_notice(msg, sizeof msg, r->log_limit);
        r->truncated = true;
        append_line(r, "stderr", msg, n > 0 && (size_t)n < sizeof msg ? (size_t)n : 0);
        return;
    }
    r->log_bytes += cost;
    append_line(r, stream, line, len);
}

/* Past its log limit a run keeps nothing more, so what it writes is only
 * counted, a buffer at a time rather than a line at a time. */
static size_t drop_all(struct evbuffer *buf)
{
    size_t n = evbuffer_get_length(buf);
    evbuffer_drain(buf, n);
    return n;
}

/* Whether the run wrote so far past its limit that it is stopped. */
static bool flooded(const struct run *r)
{
    size_t bound = r->log_limit * 4 > FLOOD_MIN_BYTES ? r->log_limit * 4 : FLOOD_MIN_BYTES;
    return r->seen_bytes > bound;
}

/* Moves complete lines (all lines when flush) from buf into the current
 * run's logs. Without a run nobody keeps them: a worker that writes while
 * idle (a thread its action left behind) is stopped past the flood bound,
 * instead of keeping the loop reading for ever. */
static void take_lines(struct worker *w, struct evbuffer *buf, const char *stream, bool flush)
{
    struct run *r = w->runs;
    char msg[160];
    if (!r || r->truncated) {
        size_t n = drop_all(buf);
        if (r)
            r->seen_bytes += n;
        else
            w->stray_bytes += n;
        if (!w->killing && (r ? flooded(r) : w->stray_bytes > FLOOD_MIN_BYTES)) {
            snprintf(msg, sizeof msg,
                     "The action flooded its output (more than %zu bytes) and was stopped.",
                     r ? r->seen_bytes : w->stray_bytes);
            if (!r)
                wlog_warn("pool", "worker %u: %s", w->id, msg);
            worker_kill(w, POOL_FLOOD, msg);
        }
        return;
    }
    for (;;) {
        size_t len;
        struct evbuffer_ptr eol = evbuffer_search_eol(buf, NULL, &len, EVBUFFER_EOL_LF);
        size_t take;
        if (eol.pos >= 0) {
            take = (size_t)eol.pos;
        } else if (flush || evbuffer_get_length(buf) >= 65536) {
            take = evbuffer_get_length(buf); /* a partial or overlong line */
            len = 0;
            if (take == 0)
                return;
        } else {
            return;
        }
        const char *line = (const char *)evbuffer_pullup(buf, (ssize_t)take);
        add_log(r, stream, line ? line : "", take);
        evbuffer_drain(buf, take + len);
        if (r->truncated) { /* the rest of the buffer only counts */
            take_lines(w, buf, stream, flush);
            return;
        }
    }
}

/* Reads a pipe until it would block, or for at most DRAIN_MAX bytes: a
 * writer as fast as the reader would otherwise keep the loop here, its
 * bytes piling up in buf. Whatever is left is read at the next EV_READ
 * (level-triggered). -1 at EOF or error. */
static int drain_fd(int fd, struct evbuffer *buf)
{
    /* plain read(): evbuffer_read asks FIONREAD first, one more syscall on
     * the hot path for every pipe read */
    char chunk[16384];
    for (size_t got = 0; got < DRAIN_MAX;) {
        ssize_t n = read(fd, chunk, sizeof chunk);
        if (n > 0) {
            if (evbuffer_add(buf, chunk, (size_t)n) < 0)
                return -1;
            if ((size_t)n < sizeof chunk)
                return 0; /* a short read: the pipe is empty for now */
            got += (size_t)n;
            continue;
        }
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return 0;
        if (n < 0 && errno == EINTR)
            continue;
        return -1;
    }
    return 0;
}

static void on_log(evutil_socket_t fd, short what, void *arg)
{
    (void)what;
    struct worker *w = arg;
    bool is_out = fd == w->proc.fd_out;
    struct evbuffer *buf = is_out ? w->out : w->err;
    int rc = drain_fd(fd, buf);
    take_lines(w, buf, is_out ? "stdout" : "stderr", false);
    if (rc < 0 && w->state != WK_DEAD) /* the log pipe closed: stop watching it */
        event_del(is_out ? w->ev_out : w->ev_err);
}

/* ==== stdin =========================================================== */

static void on_stdin(evutil_socket_t fd, short what, void *arg)
{
    (void)what;
    struct worker *w = arg;
    while (evbuffer_get_length(w->in) > 0) {
        int n = evbuffer_write(w->in, fd);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            event_add(w->ev_in, NULL); /* the pipe is full: wait for room */
            return;
        }
        if (n < 0) {
            worker_kill(w, POOL_CRASHED,
                        "The action did not produce a valid response and exited unexpectedly.");
            return;
        }
    }
}

static void send_line(struct worker *w, const char *s, size_t len)
{
    evbuffer_add(w->in, s, len);
    evbuffer_add(w->in, "\n", 1);
    on_stdin(w->proc.fd_in, EV_WRITE, w);
}

/* ==== runs on a worker ================================================ */

/* A run's time limit covers its worker's start and init too (as OpenWhisk
 * bounds /init): a hanging init ends as a timeout instead of a request
 * that never returns. The clock starts again for the run itself once it
 * is sent. */
static void on_run_timeout(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct run *r = arg;
    char msg[128];
    snprintf(msg, sizeof msg, "The action exceeded its time limits of %u milliseconds%s.",
             r->timeout_ms, r->sent ? "" : " during initialization");
    worker_kill(r->w, POOL_TIMEOUT, msg);
}

static void arm_timeout(struct worker *w, struct run *r)
{
    if (!r->ev)
        r->ev = evtimer_new(w->p->base, on_run_timeout, r);
    struct timeval tv = {r->timeout_ms / 1000, (r->timeout_ms % 1000) * 1000};
    if (r->ev)
        evtimer_add(r->ev, &tv); /* re-adding restarts the clock */
}

static void send_run(struct worker *w, struct run *r)
{
    r->sent = true;
    r->start_us = r->start_us ? r->start_us : plat_clock_mono_us();
    arm_timeout(w, r);
    send_line(w, r->msg, r->len);
}

static void send_pending_runs(struct worker *w)
{
    for (struct run *r = w->runs; r; r = r->next)
        if (!r->sent)
            send_run(w, r);
}

/* Idle since pause_ms: frozen, where its backend can. */
static void on_pause(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct worker *w = arg;
    if (w->state != WK_READY || w->nruns || w->paused)
        return;
    int rc = w->be->ops->pause(w->be->self, &w->proc);
    if (rc == 0) {
        w->paused = true;
        w->p->stats.pauses++;
    } else {
        wlog_debug("pool", "worker %u: cannot pause it: %s", w->id, strerror(-rc));
    }
}

/* A worker whose last run just ended: paused after pause_ms. */
static void arm_pause(struct worker *w)
{
    struct pool *p = w->p;
    if (!p->cfg.pause_ms || !w->be->ops->pause || w->nruns)
        return;
    if (!w->ev_pause && !(w->ev_pause = evtimer_new(p->base, on_pause, w)))
        return;
    struct timeval tv = {p->cfg.pause_ms / 1000, (p->cfg.pause_ms % 1000) * 1000};
    evtimer_add(w->ev_pause, &tv);
}

/* Runs again before it is given a run. false: it could not be resumed
 * (it was killed). */
static bool worker_wake(struct worker *w)
{
    if (w->ev_pause)
        event_del(w->ev_pause);
    if (!w->paused)
        return true;
    int rc = w->be->ops->resume(w->be->self, &w->proc);
    w->paused = false;
    if (rc == 0) {
        w->p->stats.resumes++;
        return true;
    }
    wlog_err("pool", "worker %u: cannot resume it: %s", w->id, strerror(-rc));
    worker_kill(w, POOL_SYSTEM_ERROR, "The action's container could not be resumed.");
    return false;
}

static void attach_run(struct worker *w, struct run *r)
{
    w->stray_bytes = 0; /* what it writes now is r's */
    r->w = w;
    r->next = NULL;
    if (w->runs_tail)
        w->runs_tail->next = r;
    else
        w->runs = r;
    w->runs_tail = r;
    w->nruns++;
    if (!r->start_us)
        r->start_us = plat_clock_mono_us();
    if (w->state == WK_READY)
        send_run(w, r);
    else
        arm_timeout(w, r);
}

static struct run *detach_head(struct worker *w)
{
    struct run *r = w->runs;
    if (!r)
        return NULL;
    w->runs = r->next;
    if (!w->runs)
        w->runs_tail = NULL;
    w->nruns--;
    r->next = NULL;
    return r;
}

/* Sends the init line of run r's action. */
static void send_init(struct worker *w, const struct run *r)
{
    struct plat_buf *b = &w->p->line;
    b->len = 0;
    if (al_init_line(b, r->name, r->main, r->code, r->binary) < 0) {
        worker_kill(w, POOL_SYSTEM_ERROR, "out of memory");
        return;
    }
    send_line(w, b->data, b->len);
    plat_buf_trim(b);
}

/* One line from fd 3. */
static void ctl_line(struct worker *w, const char *line, size_t len)
{
    struct pool *p = w->p;
    switch (w->state) {
    case WK_STARTING:
        if (!al_is_ack(line, len)) {
            worker_kill(w, POOL_INIT_FAILED, "The runtime did not start: no acknowledgement.");
            return;
        }
        w->skip_ack = false; /* the ack an actionloop image's stem may send */
        w->state = w->key ? WK_INITING : WK_STEM;
        if (w->key) /* a cold start for a run: send its code now */
            send_init(w, w->runs);
        else
            kick(p); /* a new stem cell may serve a queued run */
        return;
    case WK_STEM: /* an actionloop image's stem: only its __OW_WAIT_FOR_ACK ack */
        if (w->skip_ack && al_is_ack(line, len)) {
            w->skip_ack = false;
            return;
        }
        worker_kill(w, POOL_BAD_RESULT, "The action wrote an answer nobody asked for.");
        return;
    case WK_INITING: {
        char msg[512];
        if (al_init_answer(line, len, msg, sizeof msg) == 0) {
            w->state = WK_READY;
            if (w->runs && w->runs->init_ms < 0)
                w->runs->init_ms = (plat_clock_mono_us() - w->spawned_us) / 1000;
            send_pending_runs(w);
            return;
        }
        worker_kill(w, POOL_INIT_FAILED, msg);
        return;
    }
    case WK_READY: {
        if (w->skip_ack) { /* a native program that honours __OW_WAIT_FOR_ACK */
            w->skip_ack = false;
            if (al_is_ack(line, len))
                return;
        }
        struct run *r = w->runs;
        if (!r || !r->sent) {
            worker_kill(w, POOL_BAD_RESULT, "The action wrote an answer nobody asked for.");
            return;
        }
        json_t *j = al_result(line, len);
        if (!j) {
            worker_kill(w, POOL_BAD_RESULT,
                        "The action did not produce a valid JSON response.");
            return;
        }
        /* Everything logged before the answer is in the pipes now, but
         * the loop may not have seen it: epoll_wait reports at most
         * maxevents ready fds, and a log pipe readied just before the
         * answer can be left to the next round (reading log pipes at a
         * higher event priority is not enough; the 200-concurrent test
         * catches it). One poll() instead of a read() per pipe: most runs
         * log nothing. */
        struct pollfd pf[2] = {{.fd = w->proc.fd_out, .events = POLLIN},
                               {.fd = w->proc.fd_err, .events = POLLIN}};
        if (poll(pf, 2, 0) > 0) {
            if (pf[0].revents)
                drain_fd(w->proc.fd_out, w->out);
            if (pf[1].revents)
                drain_fd(w->proc.fd_err, w->err);
        }
        take_lines(w, w->out, "stdout", true);
        if (w->state == WK_DEAD) { /* flooded while draining */
            json_decref(j);
            return;
        }
        take_lines(w, w->err, "stderr", true);
        if (w->state == WK_DEAD) {
            json_decref(j);
            return;
        }
        r = detach_head(w);
        w->last_used_us = plat_clock_mono_us();
        p->stats.warm_runs += r->init_ms < 0;
        run_complete(r, POOL_OK, j, len, NULL);
        json_decref(j);
        arm_pause(w);
        kick(p);
        return;
    }
    default:
        return;
    }
}

static void on_ctl(evutil_socket_t fd, short what, void *arg)
{
    (void)what;
    struct worker *w = arg;
    int rc = drain_fd(fd, w->ctl);
    for (;;) {
        if (w->state == WK_DEAD)
            return;
        size_t eol_len;
        struct evbuffer_ptr eol = evbuffer_search_eol(w->ctl, NULL, &eol_len, EVBUFFER_EOL_LF);
        if (eol.pos < 0)
            break;
        size_t len = (size_t)eol.pos;
        char *line = (char *)evbuffer_pullup(w->ctl, (ssize_t)len + (ssize_t)eol_len);
        ctl_line(w, line, len);
        if (w->state == WK_DEAD)
            return;
        evbuffer_drain(w->ctl, len + eol_len);
    }
    size_t limit = w->runs ? w->runs->result_limit : (1u << 20);
    if (evbuffer_get_length(w->ctl) > limit + INIT_LINE_SLACK) {
        char msg[160];
        snprintf(msg, sizeof msg,
                 "The action produced a response that exceeded the allowed length: %zu > %zu "
                 "bytes.", evbuffer_get_length(w->ctl), limit);
        worker_kill(w, POOL_BAD_RESULT, msg);
        return;
    }
    if (rc < 0) { /* fd 3 closed: the worker is gone or broke the protocol */
        bool oom = worker_oom(w);
        worker_kill(w, oom ? POOL_OOM : POOL_CRASHED,
                    oom ? "The action exhausted its memory and was aborted."
                        : "The action did not produce a valid response and exited "
                          "unexpectedly.");
    }
}

/* ==== worker lifecycle ================================================ */

static void worker_unlink(struct worker *w)
{
    struct pool *p = w->p;
    if (w->prev)
        w->prev->next = w->next;
    else
        p->workers = w->next;
    if (w->next)
        w->next->prev = w->prev;
}

static void worker_free(struct worker *w)
{
    worker_unlink(w);
    free(w->image);
    if (w->ev_pause)
        event_free(w->ev_pause);
    if (w->be->ops->release)
        w->be->ops->release(w->be->self, &w->proc);
    if (w->dir[0])
        plat_rm_rf(w->dir); /* code files, a zip the launcher extracted */
    free(w->key);
    free(w);
}

static void close_channel(struct worker *w)
{
    struct event **evs[] = {&w->ev_in, &w->ev_out, &w->ev_err, &w->ev_ctl};
    for (size_t i = 0; i < 4; i++) {
        if (*evs[i]) {
            event_free(*evs[i]);
            *evs[i] = NULL;
        }
    }
    int *fds[] = {&w->proc.fd_in, &w->proc.fd_out, &w->proc.fd_err, &w->proc.fd_ctl};
    for (size_t i = 0; i < 4; i++) {
        if (*fds[i] >= 0) {
            close(*fds[i]);
            *fds[i] = -1;
        }
    }
    struct evbuffer **bufs[] = {&w->in, &w->out, &w->err, &w->ctl};
    for (size_t i = 0; i < 4; i++) {
        if (*bufs[i]) {
            evbuffer_free(*bufs[i]);
            *bufs[i] = NULL;
        }
    }
}

/* Stops a worker: kills its process group, fails its runs with st (the
 * head run with msg; runs behind it lost their worker), releases its
 * memory. Idempotent. */
static void worker_kill(struct worker *w, enum pool_status st, const char *msg)
{
    if (w->state == WK_DEAD || w->killing)
        return;
    w->killing = true;
    struct pool *p = w->p;
    if (w->runs) { /* keep the logs the head run wrote before it failed */
        drain_fd(w->proc.fd_out, w->out);
        drain_fd(w->proc.fd_err, w->err);
        take_lines(w, w->out, "stdout", true);
        take_lines(w, w->err, "stderr", true);
    }
    w->state = WK_DEAD;
    w->be->ops->kill(w->be->self, &w->proc);
    p->stats.kills++;
    p->reserved_mb -= w->reserved_mb;
    w->reserved_mb = 0;
    close_channel(w);
    bool first = true;
    struct run *r;
    while ((r = detach_head(w))) {
        if (r->ev)
            event_del(r->ev);
        run_complete(r, first ? st : POOL_CRASHED,
                     NULL, 0, first ? msg : "The worker running the action failed.");
        first = false;
    }
    if (!p->closing)
        kick(p);
}

static char *const *worker_env(const struct worker *w, char *buf, size_t cap, char **envp,
                               size_t nenv)
{
    /* A small fixed environment: nothing of wispd's leaks to actions. */
    int n = snprintf(buf, cap, "PATH=/usr/local/bin:/usr/bin:/bin%cHOME=%s%cLANG=C.UTF-8%c"
                               "PYTHONDONTWRITEBYTECODE=1%c__OW_WAIT_FOR_ACK=1%c",
                     0, w->dir, 0, 0, 0, 0);
    size_t k = 0;
    for (char *s = buf; s < buf + n && k + 1 < nenv; s += strlen(s) + 1)
        envp[k++] = s;
    envp[k] = NULL;
    return envp;
}

static const char *interpreter_of(struct pool *p, const struct rt_kind *k)
{
    (void)p; /* the --interpreters overrides are the kind's own since rt_kinds_resolve */
    return k->interpreter;
}

/* Writes a native action's program into the worker's directory, or its
 * zip as action.zip for wisp-unzip-exec to unpack (w->zipped). */
static int write_native(struct worker *w, const struct run *r, char *path, size_t cap,
                        struct wisp_err *err)
{
    const char *code = json_string_value(r->code);
    size_t len = json_string_length(r->code);
    unsigned char *bin = NULL;
    const void *data = code;
    if (r->binary) {
        size_t olen = 0;
        bin = malloc(len);
        if (!bin || !plat_base64_decode(code, len, bin, len, &olen)) {
            free(bin);
            return wisp_err_set(err, -EINVAL, "The action's code is not valid base64.");
        }
        /* an empty archive is only an end record */
        w->zipped = olen >= 4 && (memcmp(bin, "PK\3\4", 4) == 0 || memcmp(bin, "PK\5\6", 4) == 0);
        data = bin;
        len = olen;
    }
    snprintf(path, cap, "%s/%s", w->dir, w->zipped ? "action.zip" : "exec");
    int rc = plat_write_file_fast(path, data, len, w->zipped ? 0644 : 0755);
    free(bin);
    if (rc < 0)
        return wisp_err_set(err, rc, "cannot write the action's program: %s", strerror(-rc));
    return 0;
}

/* Starts a worker for kind k; with r, for that run (a cold start). */
static struct worker *worker_spawn(struct pool *p, const struct rt_kind *k, struct run *r,
                                   const char *img, unsigned reserve_mb, struct wisp_err *err)
{
    struct worker *w = calloc(1, sizeof *w);
    if (!w) {
        wisp_err_set(err, -ENOMEM, "out of memory");
        return NULL;
    }
    w->p = p;
    w->kind = k;
    w->be = backend_of(p, k);
    w->id = ++p->next_id;
    w->native = k->launcher == NULL;
    w->proc.fd_in = w->proc.fd_out = w->proc.fd_err = w->proc.fd_ctl = -1;
    w->concurrency = r ? (r->concurrency ? r->concurrency : 1) : 1;
    snprintf(w->dir, sizeof w->dir, "%s/w%u", p->cfg.work_dir, w->id);
    int rc = 0;
    if (mkdir(w->dir, 0700) < 0 && errno != EEXIST) {
        rc = wisp_err_set(err, -errno, "cannot make %s: %s", w->dir, strerror(errno));
        w->dir[0] = '\0';
        goto fail;
    }
    if (p->cfg.drop_privs && chown(w->dir, p->cfg.uid, p->cfg.gid) < 0) {
        rc = wisp_err_set(err, -errno, "cannot chown %s: %s", w->dir, strerror(errno));
        goto fail;
    }
    char prog[PATH_MAX + 16] = "", launcher[PATH_MAX + 64] = "";
    bool image = k->needs == RT_NEEDS_IMAGE;
    if (!w->be->self) {
        rc = wisp_err_set(err, -ENXIO, "%s", w->be->why);
        goto fail;
    }
    if (image) { /* the backend starts the image's entrypoint */
        if (!img || !(w->image = strdup(img))) {
            rc = wisp_err_set(err, img ? -ENOMEM : -EINVAL, "kind %s needs an image", k->kind);
            goto fail;
        }
        w->skip_ack = true;
    } else if (w->native) {
        if ((rc = write_native(w, r, prog, sizeof prog, err)) < 0)
            goto fail;
        /* exec'd relative to its own directory, which the child enters
         * before it drops privileges: the unprivileged worker need not be
         * able to traverse the data dir's parents. A zip is unpacked first
         * by the helper, which lives with the launchers (reachable, as
         * they are) and acks on fd 3 before it becomes ./exec. */
        snprintf(prog, sizeof prog, "%s", w->zipped ? p->unzip_exec : "./exec");
        w->skip_ack = true;
    } else {
        snprintf(launcher, sizeof launcher, "%s/%s", p->cfg.runtimes_dir, k->launcher);
    }
    char wid[16];
    snprintf(wid, sizeof wid, "w%u", w->id);
    char envbuf[PATH_MAX + 256], *envp[8];
    struct worker_start ws = {
        .program = w->native && !image ? prog : NULL,
        .interpreter = interpreter_of(p, k),
        .interp_args = k->args,
        .launcher = launcher,
        .envp = worker_env(w, envbuf, sizeof envbuf, envp, 8),
        .cwd = w->dir,
        .mem_bytes = (uint64_t)(r ? r->memory_mb : reserve_mb) << 20,
        .image = image ? img : NULL,
        .network = r && r->network,
        .id = wid,
    };
    ws.set_nice = r && worker_nice(p, r->memory_mb, &ws.nice);
    w->spawned_us = plat_clock_mono_us();
    if ((rc = w->be->ops->start(w->be->self, &ws, &w->proc, err)) < 0)
        goto fail;
    if (image && w->proc.with_init) { /* OpenWhisk's contract: an ack, then the init line */
        w->native = false;
        w->skip_ack = false;
    }
    w->in = evbuffer_new();
    w->out = evbuffer_new();
    w->err = evbuffer_new();
    w->ctl = evbuffer_new();
    w->ev_in = event_new(p->base, w->proc.fd_in, EV_WRITE, on_stdin, w);
    w->ev_out = event_new(p->base, w->proc.fd_out, EV_READ | EV_PERSIST, on_log, w);
    w->ev_err = event_new(p->base, w->proc.fd_err, EV_READ | EV_PERSIST, on_log, w);
    w->ev_ctl = event_new(p->base, w->proc.fd_ctl, EV_READ | EV_PERSIST, on_ctl, w);
    /* linked before anything can fail, so the kill path finds it */
    w->next = p->workers;
    if (p->workers)
        p->workers->prev = w;
    p->workers = w;
    w->reserved_mb = reserve_mb;
    p->reserved_mb += reserve_mb;
    if (!w->in || !w->out || !w->err || !w->ctl || !w->ev_in || !w->ev_out || !w->ev_err ||
        !w->ev_ctl || event_add(w->ev_out, NULL) < 0 || event_add(w->ev_err, NULL) < 0 ||
        event_add(w->ev_ctl, NULL) < 0) {
        worker_kill(w, POOL_SYSTEM_ERROR, "out of memory");
        wisp_err_set(err, -ENOMEM, "out of memory");
        return NULL;
    }
    w->last_used_us = w->spawned_us;
    if (r) {
        w->key = strdup(r->key);
        /* a zipped native action is initialising until the helper acks */
        w->state = w->zipped ? WK_INITING : w->native ? WK_READY : WK_STARTING;
        r->init_ms = w->native && !w->zipped ? (plat_clock_mono_us() - w->spawned_us) / 1000 : -1;
        p->stats.cold_starts++;
    } else { /* a stem cell: a stem once it acks, or (an actionloop image, which
              * need not ack) once its backend says it runs (on_sigchld) */
        w->state = WK_STARTING;
    }
    return w;
fail:
    if (w->dir[0])
        plat_rm_rf(w->dir);
    free(w->image);
    free(w);
    (void)rc;
    return NULL;
}

/* Frees reaped workers (only w, when given) whose backend counts no
 * process of theirs left. The kernel keeps a cgroup leaf while a child the
 * worker started is still exiting, and its directory must not go while
 * such a child writes in it: freed at once, the leaves of fork bombs were
 * left behind for good. A worker whose leftovers outlast REAPED_WAIT_US
 * (a zombie nobody reaps) goes anyway. */
static void free_reaped(struct pool *p, struct worker *only)
{
    int64_t now = plat_clock_mono_us();
    for (struct worker *w = only ? only : p->workers, *next; w; w = only ? NULL : next) {
        next = w->next;
        struct worker_stats st;
        if (!w->reaped)
            continue;
        bool left = w->be->ops->stats && w->be->ops->stats(w->be->self, &w->proc, &st) == 0 &&
                    st.pids > 0;
        if (!left || now - w->reaped_us > REAPED_WAIT_US)
            worker_free(w);
    }
}

/* w's pid exited with status. */
static void worker_reaped(struct pool *p, struct worker *w, int status)
{
    const struct pool_backend_ops *ops = w->be->ops;
    if (ops->exited && ops->exited(w->be->self, &w->proc, w->state == WK_DEAD, status)) {
        /* a launcher handed over: the worker lives on as its new pid;
         * an actionloop image's stem is ready now (it need not ack) */
        if (w->state == WK_STARTING && w->native && !w->key) {
            w->state = WK_STEM;
            kick(p);
        }
        return;
    }
    if (w->state != WK_DEAD) {
        /* Exited on its own; the fd 3 EOF may not have been seen
         * yet. Read what is left so an answer written just before
         * exit still counts, then fail what remains. */
        on_ctl(w->proc.fd_ctl, EV_READ, w);
        if (w->state != WK_DEAD) {
            bool oom = worker_oom(w);
            worker_kill(w, oom ? POOL_OOM : POOL_CRASHED,
                        oom ? "The action exhausted its memory and was aborted."
                            : "The action did not produce a valid response and exited "
                              "unexpectedly.");
        }
    }
    /* Only now, dead and reaped, may it go: nothing refers to it. */
    w->reaped = true;
    w->reaped_us = plat_clock_mono_us();
    free_reaped(p, w);
}

static void on_sigchld(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct pool *p = arg;
    int status;
    for (pid_t pid; (pid = waitpid(-1, &status, WNOHANG)) > 0;) {
        struct worker *w = p->workers;
        while (w && (w->reaped || w->proc.pid != pid)) /* a reaped one's pid may be new again */
            w = w->next;
        if (w) {
            worker_reaped(p, w, status);
            continue;
        }
        /* a backend's helper, or a runtime's child (containers) */
        for (size_t i = 0; i < WISP_ARRAY_LEN(p->be); i++)
            if (p->be[i].self && p->be[i].ops->reaped &&
                p->be[i].ops->reaped(p->be[i].self, pid, status))
                break;
    }
}

/* ==== policy ========================================================== */

/* A stem cell of kind k (and image, for the kinds that run one). */
static bool stem_of(const struct worker *w, const struct rt_kind *k, const char *image)
{
    return w->kind == k && !w->key && (!image || (w->image && strcmp(w->image, image) == 0));
}

static unsigned count_stems(struct pool *p, const struct prewarm *pw)
{
    unsigned n = 0;
    const char *image = pw->image[0] ? pw->image : NULL;
    for (struct worker *w = p->workers; w; w = w->next)
        if (stem_of(w, pw->kind, image) && (w->state == WK_STEM || w->state == WK_STARTING))
            n++;
    return n;
}

/* Stops idle warm workers last used before idle_before, least recently
 * used first, then (when stems is set) stem cells, until need_mb fits.
 * True when it fits. */
static bool make_room(struct pool *p, uint64_t need_mb, bool stems, int64_t idle_before)
{
    while (p->reserved_mb + need_mb > p->cfg.memory_budget_mb) {
        struct worker *victim = NULL;
        for (int pass = 0; pass < 2 && !victim; pass++) {
            for (struct worker *w = p->workers; w; w = w->next) {
                bool idle = pass == 0 ? (w->state == WK_READY && w->nruns == 0 &&
                                         w->last_used_us <= idle_before)
                                      : (stems && w->state == WK_STEM);
                if (idle && (!victim || w->last_used_us < victim->last_used_us))
                    victim = w;
            }
        }
        if (!victim)
            return false;
        p->stats.evictions++;
        worker_kill(victim, POOL_CRASHED, "evicted");
    }
    return true;
}

/* Tries to start r now. True when r went to a worker (or failed for good). */
static bool try_start(struct pool *p, struct run *r)
{
    const struct rt_kind *k = rt_kind_find(p->cfg.kinds, r->kind);
    /* 1. a warm worker of this action version with a free slot, idle first */
    struct worker *best = NULL;
    for (struct worker *w = p->workers; w; w = w->next) {
        if (w->state == WK_DEAD || w->state == WK_STEM || !w->key ||
            strcmp(w->key, r->key) != 0 || w->nruns >= w->concurrency)
            continue;
        if (!best || w->nruns < best->nruns ||
            (w->nruns == best->nruns && w->last_used_us > best->last_used_us))
            best = w;
    }
    if (best && worker_wake(best)) { /* a paused one is resumed first */
        attach_run(best, r);
        return true;
    }
    /* 2. a stem cell of its kind (and image; stem containers have no network) */
    for (struct worker *w = p->workers; w && !r->network; w = w->next) {
        if (w->state != WK_STEM || !stem_of(w, k, k->needs == RT_NEEDS_IMAGE ? r->image : NULL))
            continue;
        uint64_t extra = r->memory_mb > w->reserved_mb ? r->memory_mb - w->reserved_mb : 0;
        if (!make_room(p, extra, false, INT64_MAX))
            break;
        p->reserved_mb = p->reserved_mb - w->reserved_mb + r->memory_mb;
        w->reserved_mb = r->memory_mb;
        w->key = strdup(r->key);
        worker_cpu_share(p, w, r->memory_mb);
        w->concurrency = r->concurrency ? r->concurrency : 1;
        p->stats.stem_inits++;
        if (w->native) { /* an actionloop image: its entrypoint is the action, no init */
            w->state = WK_READY;
            r->init_ms = 0;
            attach_run(w, r);
            return true;
        }
        w->state = WK_INITING;
        w->spawned_us = plat_clock_mono_us(); /* initTime counts from here */
        r->init_ms = -1;
        attach_run(w, r);
        send_init(w, r);
        return true;
    }
    /* 3. a new worker */
    if (!make_room(p, r->memory_mb, true, INT64_MAX))
        return false;
    struct wisp_err err = {0};
    struct worker *w = worker_spawn(p, k, r, r->image, r->memory_mb, &err);
    if (!w) {
        wlog_err("pool", "cannot start a %s worker: %s", k->kind, err.msg);
        bool theirs = err.code == -ENOTSUP || err.code == -EINVAL || err.code == -ENOENT;
        run_complete_later(r, theirs ? POOL_INIT_FAILED : POOL_SYSTEM_ERROR, err.msg);
        return true;
    }
    attach_run(w, r);
    return true;
}

/* Room for one stem cell, stopping warm workers idle for stem_reclaim_s or
 * longer (least recently used first): when warm workers fill the budget, a
 * new action would otherwise pay a cold start for as long as they stay. */
static bool room_for_stem(struct pool *p)
{
    if (!p->cfg.stem_reclaim_s || p->queue)
        return p->reserved_mb + p->cfg.stem_memory_mb <= p->cfg.memory_budget_mb;
    int64_t cutoff = plat_clock_mono_us() - (int64_t)p->cfg.stem_reclaim_s * 1000000;
    return make_room(p, p->cfg.stem_memory_mb, false, cutoff);
}

static void replenish(struct pool *p)
{
    int64_t now = plat_clock_mono_us();
    for (unsigned i = 0; i < p->nprewarm; i++) {
        struct prewarm *pw = &p->prewarm[i];
        if (now < pw->retry_us)
            continue;
        while (count_stems(p, pw) < pw->count && room_for_stem(p)) {
            struct wisp_err err = {0};
            if (!worker_spawn(p, pw->kind, NULL, pw->image[0] ? pw->image : NULL,
                              p->cfg.stem_memory_mb, &err)) {
                wlog_err("pool", "cannot start a %s%s%s stem cell: %s (trying again in %d s)",
                         pw->kind->kind, pw->image[0] ? " " : "", pw->image, err.msg,
                         STEM_RETRY_US / 1000000);
                pw->retry_us = now + STEM_RETRY_US;
                break;
            }
        }
    }
}

static void dispatch(struct pool *p)
{
    struct run **pp = &p->queue, *prev = NULL;
    while (*pp) {
        struct run *r = *pp;
        struct run *next = r->next; /* try_start hands r on and reuses its link */
        if (try_start(p, r)) {
            *pp = next;
            if (p->queue_tail == r)
                p->queue_tail = prev;
            p->nqueued--;
        } else {
            prev = r;
            pp = &r->next;
        }
    }
    replenish(p);
}

static void on_kick(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    dispatch(arg);
}

/* Runs dispatch from the loop soon: never re-enters from a callback. */
static void kick(struct pool *p)
{
    if (p->ev_kick && !evtimer_pending(p->ev_kick, NULL)) {
        struct timeval zero = {0, 0};
        evtimer_add(p->ev_kick, &zero);
    }
}

static void on_tick(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct pool *p = arg;
    free_reaped(p, NULL);
    int64_t cutoff = plat_clock_mono_us() - (int64_t)p->cfg.idle_evict_s * 1000000;
    for (struct worker *w = p->workers, *next; w; w = next) {
        next = w->next;
        if (w->state == WK_READY && w->nruns == 0 && w->last_used_us < cutoff) {
            p->stats.evictions++;
            worker_kill(w, POOL_CRASHED, "idle");
        }
    }
    dispatch(p);
}

int pool_run(struct pool *p, const struct pool_action *a, const struct pool_msg *m,
             pool_done_fn *done, void *arg)
{
    /* a->kind is what the action was stored with: nodejs:20 runs on the
     * node installed now, whatever its version */
    const struct rt_kind *k = rt_kind_for_stored(p->cfg.kinds, a->kind);
    if (!k || (k->needs != RT_NEEDS_CODE && k->needs != RT_NEEDS_IMAGE) ||
        (k->needs == RT_NEEDS_IMAGE && !a->image))
        return -ENOTSUP;
    if (a->memory_mb > p->cfg.memory_budget_mb)
        return -E2BIG;
    p->line.len = 0;
    int rc = al_run_line(&p->line, m);
    if (rc < 0)
        return rc;
    const char *msg = p->line.data;
    size_t len = p->line.len;
    /* one allocation: the run, then its key, name, main and message */
    size_t kl = strlen(a->key) + 1, nl = strlen(a->name) + 1, ml = a->main ? strlen(a->main) + 1 : 0;
    size_t il = a->image ? strlen(a->image) + 1 : 0;
    struct run *r = calloc(1, sizeof *r + kl + nl + ml + il + len);
    if (!r)
        return -ENOMEM;
    char *tail = (char *)(r + 1);
    r->p = p;
    r->key = memcpy(tail, a->key, kl);
    r->name = memcpy(tail + kl, a->name, nl);
    r->main = a->main ? memcpy(tail + kl + nl, a->main, ml) : NULL;
    r->image = a->image ? memcpy(tail + kl + nl + ml, a->image, il) : NULL;
    r->msg = tail + kl + nl + ml + il;
    memcpy(r->msg, msg, len);
    r->kind = k->kind;
    r->code = json_incref(a->code);
    r->binary = a->binary;
    r->memory_mb = a->memory_mb;
    r->timeout_ms = a->timeout_ms;
    r->concurrency = a->concurrency;
    r->network = a->network;
    r->log_limit = a->log_limit_bytes;
    r->result_limit = a->result_limit_bytes;
    r->len = len;
    r->done = done;
    r->arg = arg;
    r->enq_us = plat_clock_mono_us();
    r->init_ms = -1;
    r->logs = json_array();
    plat_buf_trim(&p->line);
    if (!r->logs) {
        run_free(r);
        return -ENOMEM;
    }
    if (!p->queue && try_start(p, r))
        return 0;
    if (p->nqueued >= p->cfg.queue_max) {
        run_free(r);
        return -EAGAIN;
    }
    if (p->queue_tail)
        p->queue_tail->next = r;
    else
        p->queue = r;
    p->queue_tail = r;
    p->nqueued++;
    kick(p);
    return 0;
}

/* ==== open / close ==================================================== */

/* "kind=count,...": stem cells per kind, or per image for the kinds that
 * run one ("blackbox:NAME[:TAG]=N"). Start-up configuration outlives
 * interpreter upgrades: a version not installed here ("nodejs:20" where
 * node 18 runs) prewarms the one that is, and a kind that cannot run here
 * at all is skipped; both are logged, neither stops wispd. */
static int parse_prewarm(struct pool *p, const char *spec, struct wisp_err *err)
{
    char buf[1024];
    if (!spec || !*spec)
        return 0;
    if (strlen(spec) >= sizeof buf)
        return wisp_err_set(err, -EINVAL, "prewarm: too long");
    strcpy(buf, spec);
    for (char *save = NULL, *tok = strtok_r(buf, ",", &save); tok;
         tok = strtok_r(NULL, ",", &save)) {
        char *eq = strrchr(tok, '=');
        if (!eq)
            return wisp_err_set(err, -EINVAL, "prewarm: '%s' is not kind=value", tok);
        *eq = '\0';
        const struct rt_kind *k = rt_kind_for_stored(p->cfg.kinds, tok);
        const char *image = NULL;
        char *colon = strchr(tok, ':');
        const char *why = k ? NULL : rt_kind_unavailable(p->cfg.kinds, tok);
        if (why) {
            wlog_warn("pool", "prewarm: no %s stem cells: %s", tok, why);
            continue;
        }
        if (!k && colon) { /* KIND:IMAGE for the kinds that run an image */
            *colon = '\0';
            k = rt_kind_find(p->cfg.kinds, tok);
            image = colon + 1;
            if (!k || k->needs != RT_NEEDS_IMAGE || !*image || strlen(image) >= 256)
                return wisp_err_set(err, -EINVAL, "prewarm: '%s:%s' is not KIND:IMAGE of a kind "
                                    "that runs images (blackbox:NAME[:TAG]=N)", tok, image);
        } else if (!k || !k->launcher) {
            return wisp_err_set(err, -EINVAL,
                                "prewarm: '%s' is not a kind with a launcher (or blackbox:IMAGE)",
                                tok);
        } else if (strcmp(k->kind, tok) != 0 && !strstr(tok, ":default") &&
                   !rt_kind_find(p->cfg.kinds, tok)) {
            wlog_warn("pool", "prewarm: %s is not installed here; %s stem cells instead", tok,
                      k->kind);
        }
        char *end;
        unsigned long n = strtoul(eq + 1, &end, 10);
        if (*end || n > 64 || p->nprewarm == WISP_ARRAY_LEN(p->prewarm))
            return wisp_err_set(err, -EINVAL, "prewarm: bad count for %s", tok);
        struct prewarm *pw = &p->prewarm[p->nprewarm++];
        *pw = (struct prewarm){.kind = k, .count = (unsigned)n};
        plat_strcpy(pw->image, sizeof pw->image, image ? image : "");
    }
    return 0;
}

/* The zipped native actions' helper is a compiled program: it comes from
 * the build or the install (libexec_dir), not from the runtimes' sources.
 * Copied under a temporary name and renamed: a copy still running from an
 * earlier start would make writing it in place fail (ETXTBSY). */
static int install_unzip_exec(struct pool *p, const char *libexec_dir, const char *ldir,
                              struct wisp_err *err)
{
    char from[PATH_MAX + 32], dir[PATH_MAX + 16], tmp[PATH_MAX + 48];
    snprintf(from, sizeof from, "%s/wisp-unzip-exec", libexec_dir ? libexec_dir : ".");
    snprintf(dir, sizeof dir, "%s/native", ldir);
    snprintf(tmp, sizeof tmp, "%s/.wisp-unzip-exec.new", dir);
    int n = snprintf(p->unzip_exec, sizeof p->unzip_exec, "%s/wisp-unzip-exec", dir);
    if (n < 0 || (size_t)n >= sizeof p->unzip_exec)
        return wisp_err_set(err, -ENAMETOOLONG, "work dir path too long");
    int rc = plat_mkdir_p(dir, 0755);
    if (rc == 0)
        rc = plat_copy_file(from, tmp, 0755, false);
    /* the umask must not take the workers' right to run it */
    if (rc == 0 && (chmod(tmp, 0755) < 0 || rename(tmp, p->unzip_exec) < 0))
        rc = -errno;
    if (rc < 0) {
        unlink(tmp);
        return wisp_err_set(err, rc, "cannot install %s: %s", from, strerror(-rc));
    }
    return 0;
}

/* Opens every backend a kind of the manifest names. One that cannot run
 * here (no OCI runtime, say) stays closed with its reason: its kinds'
 * activations get that reason, everything else runs. */
static int open_backends(struct pool *p, struct wisp_err *err)
{
    for (size_t i = 0; i < WISP_ARRAY_LEN(backend_table); i++)
        p->be[i].ops = backend_table[i];
    for (size_t i = 0; i < rt_kinds_count(p->cfg.kinds); i++) {
        const struct rt_kind *k = rt_kind_at(p->cfg.kinds, i);
        struct backend *b = backend_of(p, k);
        if (!b)
            return wisp_err_set(err, -EINVAL, "kind %s: no backend '%s' in this build (process, "
                                "container)", k->kind, k->backend);
        if (b->self || b->why[0])
            continue;
        struct wisp_err e = {0};
        if (b->ops->open(&p->cfg, p->work_dir, &b->self, &e) < 0) {
            if (b->ops == &process_backend_ops)
                return wisp_err_set(err, e.code, "%s", e.msg);
            b->self = NULL;
            plat_strcpy(b->why, sizeof b->why, e.msg);
            wlog_warn("pool", "%s", e.msg);
        }
    }
    return 0;
}

int pool_open(struct event_base *base, const struct pool_cfg *cfg, struct pool **out,
              struct wisp_err *err)
{
    struct pool *p = calloc(1, sizeof *p);
    if (!p)
        return wisp_err_set(err, -ENOMEM, "out of memory");
    p->base = base;
    p->cfg = *cfg;
    int rc;
    /* Which kinds run here, asked as the workers' user: what it cannot
     * run is no kind of ours. Blocking, and start-up only. */
    struct rt_probe_user as = {.drop_privs = cfg->drop_privs, .uid = cfg->uid, .gid = cfg->gid};
    if ((rc = rt_kinds_resolve(cfg->kinds, cfg->interpreters, rt_probe_interpreter, &as, err)) <
            0 ||
        (rc = parse_prewarm(p, cfg->prewarm, err)) < 0)
        goto fail;
    if ((rc = plat_mkdir_p(cfg->work_dir, 0711)) < 0) {
        wisp_err_set(err, rc, "cannot make %s: %s", cfg->work_dir, strerror(-rc));
        goto fail;
    }
    if (!realpath(cfg->work_dir, p->work_dir) || !realpath(cfg->runtimes_dir, p->runtimes_dir)) {
        rc = wisp_err_set(err, -errno, "cannot resolve %s or %s: %s", cfg->work_dir,
                          cfg->runtimes_dir, strerror(errno));
        goto fail;
    }
    p->cfg.work_dir = p->work_dir;
    /* The launchers are copied under the work dir, which the workers can
     * reach: the source tree may sit in a directory they cannot (/root). */
    char ldir[PATH_MAX + 16];
    snprintf(ldir, sizeof ldir, "%s/launchers", p->work_dir);
    for (size_t i = 0; i < rt_kinds_count(cfg->kinds); i++) {
        const struct rt_kind *k = rt_kind_at(cfg->kinds, i);
        if (!k->launcher)
            continue;
        char from[2 * PATH_MAX + 2], to[2 * PATH_MAX + 32];
        snprintf(from, sizeof from, "%s/%s", p->runtimes_dir, k->launcher);
        snprintf(to, sizeof to, "%s/%s", ldir, k->launcher);
        char *slash = strrchr(to, '/');
        *slash = '\0';
        rc = plat_mkdir_p(to, 0755);
        *slash = '/';
        if (rc == 0)
            rc = plat_copy_file(from, to, 0644, false);
        if (rc < 0) {
            wisp_err_set(err, rc, "cannot install launcher %s: %s", from, strerror(-rc));
            goto fail;
        }
    }
    if (strlen(ldir) >= sizeof p->runtimes_dir) {
        rc = wisp_err_set(err, -ENAMETOOLONG, "work dir path too long");
        goto fail;
    }
    memcpy(p->runtimes_dir, ldir, strlen(ldir) + 1);
    p->cfg.runtimes_dir = p->runtimes_dir;
    if ((rc = install_unzip_exec(p, cfg->libexec_dir, ldir, err)) < 0 ||
        (rc = open_backends(p, err)) < 0)
        goto fail;
    errno = 0;
    p->nice = getpriority(PRIO_PROCESS, 0);
    if (errno)
        p->nice = 0;
    p->ev_sigchld = evsignal_new(base, SIGCHLD, on_sigchld, p);
    p->ev_tick = event_new(base, -1, EV_PERSIST, on_tick, p);
    p->ev_kick = evtimer_new(base, on_kick, p);
    struct timeval sec = {1, 0};
    if (!p->ev_sigchld || !p->ev_tick || !p->ev_kick || event_add(p->ev_sigchld, NULL) < 0 ||
        event_add(p->ev_tick, &sec) < 0) {
        rc = wisp_err_set(err, -ENOMEM, "cannot register pool events");
        goto fail;
    }
    p->stats.budget_mb = cfg->memory_budget_mb;
    kick(p); /* stem cells start from the loop */
    *out = p;
    return 0;
fail:
    pool_close(p);
    return rc;
}

void pool_close(struct pool *p)
{
    if (!p)
        return;
    p->closing = true;
    struct run *r;
    while ((r = p->queue)) {
        p->queue = r->next;
        run_complete(r, POOL_SYSTEM_ERROR, NULL, 0, "The system is shutting down.");
    }
    for (struct worker *w = p->workers; w; w = w->next)
        worker_kill(w, POOL_SYSTEM_ERROR, "The system is shutting down.");
    /* Reap what was killed; the processes are gone within moments. */
    for (int tries = 0; p->workers && tries < 200; tries++) {
        on_sigchld(-1, 0, p);
        free_reaped(p, NULL);
        if (p->workers)
            usleep(5000); /* shutdown only: the loop is no longer serving */
    }
    while (p->workers)
        worker_free(p->workers);
    for (size_t i = 0; i < WISP_ARRAY_LEN(p->be); i++)
        if (p->be[i].self)
            p->be[i].ops->close(p->be[i].self);
    if (p->ev_sigchld)
        event_free(p->ev_sigchld);
    if (p->ev_tick)
        event_free(p->ev_tick);
    if (p->ev_kick)
        event_free(p->ev_kick);
    plat_buf_fini(&p->line);
    free(p);
}

void pool_get_stats(const struct pool *p, struct pool_stats *out)
{
    *out = p->stats;
    out->workers = out->idle = out->stem_cells = 0;
    _Static_assert(WISP_ARRAY_LEN(backend_table) <= WISP_ARRAY_LEN(out->backends),
                   "pool_stats.backends holds every backend");
    out->nbackends = WISP_ARRAY_LEN(backend_table);
    for (size_t i = 0; i < out->nbackends; i++)
        out->backends[i] = (struct pool_backend_stats){backend_table[i]->name, 0, 0};
    for (struct worker *w = p->workers; w; w = w->next) {
        if (w->state == WK_DEAD)
            continue;
        out->workers++;
        out->idle += w->state == WK_READY && w->nruns == 0;
        out->stem_cells += w->state == WK_STEM;
        size_t b = (size_t)(w->be - p->be);
        struct worker_stats st;
        out->backends[b].workers++;
        if (w->be->ops->stats && w->be->ops->stats(w->be->self, &w->proc, &st) == 0)
            out->backends[b].mem_bytes += st.mem_bytes;
    }
    out->queued = p->nqueued;
    out->reserved_mb = p->reserved_mb;
    out->budget_mb = p->cfg.memory_budget_mb;
}
