/* runtimes/image.h - the container image store: OCI images imported into
 * the data dir, unpacked once, shared read-only by every container of an
 * image.
 *
 * Layout, under DIR/images (DIR: wispd's --data):
 *   <id>/rootfs/       the unpacked layers (id: the sha256 of the image config)
 *   <id>/config.json   the image config (Entrypoint, Cmd, Env, WorkingDir,
 *                      User, Labels) exactly as the image carries it
 *   refs/<ref>         a NAME:TAG (escaped: '/' as '%2F') naming an id
 *   .tmp-*             an import in progress, or one a crash left (swept)
 * An import writes everything under a .tmp- folder and renames it into
 * place, then writes the ref (also by rename): a failed or interrupted
 * import leaves nothing that a reader sees. `wisp image import` runs beside
 * a running wispd; wispd resolves a ref when a container starts.
 *
 * Archives: an OCI image layout as a tar (what `skopeo copy ...
 * oci-archive:FILE` writes; an index with one image, or one per platform:
 * the machine's is taken) and a `docker save` tarball (manifest.json,
 * config and layer.tar files, or the OCI layout newer Dockers write beside
 * it). The outer archive and each layer may be gzip-compressed. Every blob
 * is checked against its sha256 digest, every layer against its diff_id.
 *
 * Layers are applied in order with OCI whiteouts (".wh.NAME" removes NAME
 * from the layers below, ".wh..wh..opq" empties its folder of them).
 * Nothing is written outside the rootfs: entries are created with openat
 * relative to the rootfs, never following a symlink (an entry whose path
 * goes through a symlink is an error), ".." and absolute names are refused
 * (a leading "/" or "./" is dropped), hard links must name a file already
 * in the rootfs, device nodes are refused, setuid/setgid bits are dropped.
 * Symlinks themselves may point anywhere: they are resolved inside the
 * container, whose root is the rootfs. Truncated or corrupt tar or gzip
 * data, a digest mismatch and a total over max_bytes (unpacked) are errors. */
#pragma once
#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "wisp.h"

#define IMG_ID_LEN 64   /* hex sha256 */
#define IMG_REF_MAX 256 /* NAME:TAG */

struct img_import_opts {
    const char *data_dir;
    const char *file;     /* the archive */
    const char *ref;      /* NAME[:TAG]; TAG defaults to latest */
    uint64_t max_bytes;   /* the unpacked size bound (image-max-mb) */
    const char *arch;     /* OCI architecture to pick ("amd64"...); NULL: this build's */
};

/* Imports an archive. 0 with id (IMG_ID_LEN + 1 bytes) set, or -errno with
 * err saying what is wrong with the archive. */
int img_import(const struct img_import_opts *o, char *id, struct wisp_err *err) WISP_MUST_CHECK;

/* Parses NAME[:TAG] into its canonical "name:tag" form (lower-case names
 * of [a-z0-9._-] components separated by '/', an optional registry
 * host[:port] first; a tag of [A-Za-z0-9_.-], up to 128). -EINVAL with err. */
int img_ref_parse(const char *ref, char *out, size_t cap, struct wisp_err *err) WISP_MUST_CHECK;

/* The image a ref names: its folder (DIR/images/<id>) into dir. -ENOENT
 * when not imported. */
int img_resolve(const char *data_dir, const char *ref, char *dir, size_t cap) WISP_MUST_CHECK;

typedef void img_list_fn(void *arg, const char *ref, const char *id, uint64_t bytes);
/* Calls fn for every ref, sorted. 0 or -errno. */
int img_list(const char *data_dir, img_list_fn *fn, void *arg) WISP_MUST_CHECK;

/* Removes a ref, and the image when no other ref names it. -ENOENT. */
int img_remove(const char *data_dir, const char *ref, struct wisp_err *err) WISP_MUST_CHECK;

/* Removes what interrupted imports left. */
void img_sweep(const char *data_dir);

/* ---- the bytes-only parts (unit tests, fuzzing) ----------------------- */

struct img_tar_entry {
    const char *name;     /* as the archive names it */
    const char *linkname; /* symlinks and hard links */
    char type;            /* '0' file, '1' hard link, '2' symlink, '3'/'4' device, '5' dir, '6' fifo */
    unsigned mode;
    uint64_t size;
    long uid, gid;
};
/* Called for each entry; data/len: a regular file's whole content. A
 * non-zero return stops the walk with it. */
typedef int img_tar_fn(void *arg, const struct img_tar_entry *e, const void *data, size_t len);
/* Walks a tar (or gzip-compressed tar) held in memory: long names (GNU and
 * pax), checksums, truncation. 0 at the end, the callback's value, or
 * -EINVAL/-EFBIG with err. */
int img_tar_walk_mem(const void *buf, size_t len, uint64_t max_bytes, img_tar_fn *fn, void *arg,
                     struct wisp_err *err) WISP_MUST_CHECK;

/* A tar entry's name made safe: a leading "/" and "./" dropped, "." parts
 * dropped, a trailing "/" dropped; -EINVAL for a ".." part or an empty
 * name. out may equal name. */
int img_clean_path(const char *name, char *out, size_t cap) WISP_MUST_CHECK;

/* The config's fields a container starts with. Strings point into cfg. */
struct img_config {
    const char *user, *workdir, *protocol; /* protocol: Labels["io.wisp.protocol"] or NULL */
    const json_t *entrypoint, *cmd, *env;  /* arrays of strings (borrowed), or NULL */
};
/* Reads an image config document (also the fuzz entry point). -EINVAL. */
int img_config_read(const json_t *doc, struct img_config *out, struct wisp_err *err)
    WISP_MUST_CHECK;
