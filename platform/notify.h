/* platform/notify.h - service-manager readiness (the NOTIFY_SOCKET protocol
 * of systemd's Type=notify). */
#pragma once

/* Tells the service manager that the daemon is ready: sends "READY=1" as
 * one datagram to the unix socket named by $NOTIFY_SOCKET (a path, or
 * "@name" for the abstract namespace), then unsets the variable so the
 * workers wispd spawns cannot speak for it. Returns 0 when sent or when
 * NOTIFY_SOCKET is not set (not run by a service manager), -errno when the
 * message could not be sent. */
int plat_notify_ready(void);
