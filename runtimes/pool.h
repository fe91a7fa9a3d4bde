/* runtimes/pool.h - the runtimes' public face to core.
 *
 * Today it holds the kind manifest (runtimes/kinds.json): which exec.kind
 * values exist, what each needs in exec (code, an image, or components),
 * and how `family:default` resolves. The worker pool interface joins it
 * here, so core keeps a single include into runtimes. Loop thread only. */
#pragma once
#include <stdbool.h>
#include <stddef.h>

#include "wisp.h"

enum rt_needs {
    RT_NEEDS_CODE,       /* exec.code (text, or base64 zip with binary) */
    RT_NEEDS_IMAGE,      /* exec.image (container image) */
    RT_NEEDS_COMPONENTS, /* exec.components (a sequence) */
};

struct rt_kind {
    const char *kind;   /* "python:3" */
    const char *family; /* "python" */
    bool is_default;    /* the family's default */
    const char *interpreter, *launcher; /* NULL for native, blackbox, sequence */
    enum rt_needs needs;
};

struct rt_kinds;

/* Loads a manifest file. 0 or -errno with err set (file:problem). */
int rt_kinds_load(const char *path, struct rt_kinds **out, struct wisp_err *err) WISP_MUST_CHECK;
/* Parses a manifest held in memory (also the fuzz entry point). */
int rt_kinds_parse(const char *text, size_t len, const char *origin, struct rt_kinds **out,
                   struct wisp_err *err) WISP_MUST_CHECK;
void rt_kinds_free(struct rt_kinds *k);
/* The kind for `name`, resolving "family:default"; NULL when unknown.
 * Borrowed until rt_kinds_free. */
const struct rt_kind *rt_kind_find(const struct rt_kinds *k, const char *name);
size_t rt_kinds_count(const struct rt_kinds *k);
const struct rt_kind *rt_kind_at(const struct rt_kinds *k, size_t i);
