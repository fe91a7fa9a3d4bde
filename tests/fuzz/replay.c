/* tests/fuzz/replay.c - runs every file of the corpus directories given on
 * the command line through the target's LLVMFuzzerTestOneInput. Built in
 * every configuration so the corpora run as ordinary tests. */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_targets.h"
#include "plat.h"

int main(int argc, char **argv)
{
    int files = 0;
    for (int i = 1; i < argc; i++) {
        DIR *d = opendir(argv[i]);
        if (!d) {
            fprintf(stderr, "replay: cannot open %s\n", argv[i]);
            return 1;
        }
        struct dirent *e;
        while ((e = readdir(d))) {
            if (e->d_name[0] == '.')
                continue;
            char path[4096];
            snprintf(path, sizeof path, "%s/%s", argv[i], e->d_name);
            char *buf;
            size_t len;
            if (plat_read_file(path, 1 << 24, &buf, &len) < 0) {
                fprintf(stderr, "replay: cannot read %s\n", path);
                closedir(d);
                return 1;
            }
            LLVMFuzzerTestOneInput((const uint8_t *)buf, len);
            free(buf);
            files++;
        }
        closedir(d);
    }
    fprintf(stderr, "replay: %d inputs\n", files);
    return files > 0 ? 0 : 1;
}
