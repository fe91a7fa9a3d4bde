/* platform/dl.h - libraries loaded when their feature starts (dlopen), not
 * when wispd does: a wispd that never uses the feature never maps them.
 * libmosquitto and OpenSSL, which only the MQTT feed uses, are 1.7 MB of
 * resident pages on x86_64, more than the rest of an idle wispd's heap.
 *
 * PLAT_DLOPEN_NOTE records such a library in the binary's .note.dlopen
 * section, in the format of the ELF dlopen metadata specification
 * (systemd.io/ELF_DLOPEN_METADATA: a note of owner "FDO", type 0x407c0c0a,
 * whose descriptor is a JSON array). A dlopen'ed library is in no
 * DT_NEEDED entry; tools/package reads the notes (`readelf -p
 * .note.dlopen`) for the package's Depends and the libraries its tarball
 * carries, and so can any other packager.
 *
 * Start-up and a feature's first use only: dlopen reads files. */
#pragma once
#include <stdint.h>

#include "wisp.h"

#define PLAT_DLOPEN_NOTE_TYPE 0x407c0c0au

/* One note for one library; var names the (unused) object. feature,
 * description and soname are string literals (no quotes or backslashes:
 * they are pasted into JSON as they are). */
#define PLAT_DLOPEN_NOTE(var, feature, description, soname)                                        \
    PLAT_DLOPEN_NOTE_JSON(var, "[{\"feature\":\"" feature "\",\"description\":\"" description      \
                               "\",\"priority\":\"recommended\",\"soname\":[\"" soname "\"]}]")
#define PLAT_DLOPEN_NOTE_JSON(var, json)                                                           \
    __attribute__((used, section(".note.dlopen"), aligned(4))) static const struct {               \
        uint32_t namesz, descsz, type;                                                             \
        char name[4];                                                                              \
        char desc[(sizeof(json) + 3) & ~(size_t)3];                                                \
    } var = {4, sizeof(json), PLAT_DLOPEN_NOTE_TYPE, "FDO", json}

/* dlopen(soname, RTLD_NOW | RTLD_LOCAL). The handle (never closed: the
 * library stays for the process's life), or NULL with err naming the
 * library, what the loader said, and that feature needs it. */
void *plat_dl_open(const char *soname, const char *feature, struct wisp_err *err);
/* The address of symbol name in handle's library or its dependencies;
 * NULL with err naming both. */
void *plat_dl_sym(void *handle, const char *soname, const char *name, struct wisp_err *err);
