/* platform/dl.c - see dl.h. */
#include "dl.h"

#include <dlfcn.h>
#include <errno.h>

void *plat_dl_open(const char *soname, const char *feature, struct wisp_err *err)
{
    void *h = dlopen(soname, RTLD_NOW | RTLD_LOCAL);
    if (!h) {
        const char *why = dlerror();
        wisp_err_set(err, -ENOENT, "%s needs %s, which cannot be loaded: %.200s", feature, soname,
                     why ? why : "unknown error");
    }
    return h;
}

void *plat_dl_sym(void *handle, const char *soname, const char *name, struct wisp_err *err)
{
    dlerror();
    void *p = dlsym(handle, name);
    if (!p)
        wisp_err_set(err, -ENOENT, "%s has no %s (a version this wispd was not built for?)", soname,
                     name);
    return p;
}
