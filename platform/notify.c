/* platform/notify.c - NOTIFY_SOCKET readiness. See notify.h.
 *
 * The protocol is a datagram of newline-separated KEY=VALUE lines on a unix
 * socket; we only ever say READY=1, so libsystemd is not worth linking. */
#include "notify.h"

#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

int plat_notify_ready(void)
{
    const char *path = getenv("NOTIFY_SOCKET");
    if (!path || !path[0])
        return 0;
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    size_t len = strlen(path);
    if ((path[0] != '/' && path[0] != '@') || len >= sizeof sa.sun_path)
        return -EINVAL;
    memcpy(sa.sun_path, path, len);
    if (path[0] == '@')
        sa.sun_path[0] = '\0'; /* abstract namespace: not NUL-terminated */
    socklen_t salen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len +
                                  (path[0] == '/' ? 1 : 0));
    int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    static const char msg[] = "READY=1";
    ssize_t n = sendto(fd, msg, sizeof msg - 1, MSG_NOSIGNAL, (struct sockaddr *)&sa, salen);
    int rc = n < 0 ? -errno : n == (ssize_t)(sizeof msg - 1) ? 0 : -EIO;
    close(fd);
    unsetenv("NOTIFY_SOCKET");
    return rc;
}
