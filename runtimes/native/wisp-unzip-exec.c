/* runtimes/native/wisp-unzip-exec.c - the first program of a zipped native
 * worker: it unpacks the action, then becomes the action.
 *
 * The pool writes the base64-decoded archive as action.zip into the
 * worker's own directory (the cwd here) and starts this program in place of
 * ./exec, with the worker's pipes on fds 0..3 and its environment. Inflating
 * in wispd would put unbounded work on the loop thread; here it runs in the
 * worker, under the worker's identity, cgroup and limits.
 *
 * Protocol with the pool (runtimes/pool.c), on fd 3, one line:
 *   {"ok":true}       unpacked, ./exec exists and is executable: the pool
 *                     now sends the runs; this process execve()s ./exec with
 *                     the same fds and environment, so the action's own
 *                     actionloop handshake (__OW_WAIT_FOR_ACK) follows as
 *                     for a plain native action;
 *   {"error":"..."}   the archive cannot be used: the activation fails as an
 *                     initialisation error with this message, which also
 *                     goes to stderr, that is, to the activation's logs.
 * stdin is never read here: it belongs to the action. */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "unzip.h"

#define ARCHIVE "action.zip"
#define PROGRAM "exec"
#define CTL_FD 3
/* The archive is at most the action code limit (1 GB of base64 at most). */
#define MAX_ARCHIVE_BYTES (768ull << 20)

extern char **environ;

static void write_ctl(const char *s, size_t n)
{
    while (n > 0) {
        ssize_t w = write(CTL_FD, s, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return; /* no pool listening (run by hand): stderr has it */
        s += w;
        n -= (size_t)w;
    }
}

/* Reports why the action cannot start, on stderr and fd 3. 1, the exit
 * status. */
static int fail(const char *fmt, ...) WISP_PRINTF(1, 2);
static int fail(const char *fmt, ...)
{
    char msg[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    fprintf(stderr, "wisp-unzip-exec: %s\n", msg);
    /* JSON string: the messages are ASCII (unzip.c shows names that way);
     * quotes, backslashes and control bytes are escaped all the same */
    char line[sizeof msg * 6 + 32];
    size_t k = (size_t)snprintf(line, sizeof line, "{\"error\":\"");
    for (const unsigned char *s = (const unsigned char *)msg; *s; s++) {
        if (*s == '"' || *s == '\\')
            k += (size_t)snprintf(line + k, sizeof line - k, "\\%c", *s);
        else if (*s < 0x20 || *s >= 0x7f)
            k += (size_t)snprintf(line + k, sizeof line - k, "\\u%04x", *s);
        else
            line[k++] = (char)*s;
    }
    k += (size_t)snprintf(line + k, sizeof line - k, "\"}\n");
    write_ctl(line, k);
    return 1;
}

/* Unpacks ARCHIVE into the cwd and removes it. 0, or the exit status of a
 * failure already reported. */
static int unpack(void)
{
    int fd = open(ARCHIVE, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return fail("cannot open %s: %s", ARCHIVE, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return fail("%s is not a regular file", ARCHIVE);
    }
    if ((uint64_t)st.st_size > MAX_ARCHIVE_BYTES || (uint64_t)st.st_size > SIZE_MAX) {
        close(fd);
        return fail("the action's zip file is too large: %lld bytes", (long long)st.st_size);
    }
    size_t len = (size_t)st.st_size;
    void *map = len ? mmap(NULL, len, PROT_READ, MAP_PRIVATE, fd, 0) : NULL;
    close(fd);
    if (map == MAP_FAILED)
        return fail("cannot map %s: %s", ARCHIVE, strerror(errno));
    /* Gone from the directory, so no entry can collide with it; the mapping
     * keeps the data until the exec. */
    if (unlink(ARCHIVE) < 0) {
        int e = errno;
        if (map)
            munmap(map, len);
        return fail("cannot remove %s: %s", ARCHIVE, strerror(e));
    }
    int dirfd = open(".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dirfd < 0) {
        int e = errno;
        if (map)
            munmap(map, len);
        return fail("cannot open the action's directory: %s", strerror(e));
    }
    struct wisp_err err = {0};
    int rc = unzip_to_dir(map, len, dirfd, NULL, NULL, &err);
    if (map)
        munmap(map, len);
    if (rc < 0) {
        close(dirfd);
        return fail("the action's zip file cannot be used: %s", err.msg);
    }
    /* The program must be there, a file, and executable whatever the
     * archive said (zips made on Windows carry no modes). */
    rc = fstatat(dirfd, PROGRAM, &st, AT_SYMLINK_NOFOLLOW);
    if (rc < 0 && errno == ENOENT)
        rc = fail("the action's zip file has no executable named '%s' at its root", PROGRAM);
    else if (rc < 0)
        rc = fail("cannot inspect %s: %s", PROGRAM, strerror(errno));
    else if (!S_ISREG(st.st_mode))
        rc = fail("'%s' in the action's zip file is not a regular file", PROGRAM);
    else if (fchmodat(dirfd, PROGRAM, 0755, 0) < 0)
        rc = fail("cannot make %s executable: %s", PROGRAM, strerror(errno));
    close(dirfd);
    return rc;
}

int main(void)
{
    int rc = unpack();
    if (rc != 0)
        return rc;
    write_ctl("{\"ok\":true}\n", 12);
    char *argv[] = {"./" PROGRAM, NULL};
    execve(argv[0], argv, environ);
    /* Too late for an error line: the pool has the ack. The action ends as
     * one that exited without answering, with this in its logs. */
    fprintf(stderr, "wisp-unzip-exec: cannot execute %s from the action's zip file: %s\n", PROGRAM,
            strerror(errno));
    return 127;
}
