/* Fuzz target: the zip extractor behind zipped native actions
 * (runtimes/native/unzip.c). Each input is extracted into a fresh directory
 * under one scratch directory, with small limits so a run stays fast; the
 * directory is removed again, so what was written never outlives the input. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fuzz_targets.h"
#include "plat.h"
#include "unzip.h"

static char root[64];

static void remove_root(void)
{
    plat_rm_rf(root);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!root[0]) {
        /* tmpfs where there is one: every input makes, writes and removes files */
        snprintf(root, sizeof root, "%s/wisp-fuzz-unzip-XXXXXX",
                 access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp");
        if (!mkdtemp(root))
            abort();
        atexit(remove_root);
    }
    char dir[96];
    snprintf(dir, sizeof dir, "%s/x", root);
    if (mkdir(dir, 0700) < 0)
        abort();
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        abort();
    struct unzip_limits lim = {
        .max_total_bytes = 1 << 20, .max_entry_bytes = 1 << 20, .max_entries = 64};
    struct wisp_err err;
    int rc = unzip_to_dir(data, size, fd, &lim, NULL, &err);
    if (rc < 0 && err.msg[0] == '\0')
        abort(); /* every refusal says why */
    close(fd);
    plat_rm_rf(dir);
    return 0;
}
