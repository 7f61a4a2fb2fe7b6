/*
 * meshcad and its service manager (systemd's sd_notify protocol, see
 * sd_notify(3)): readiness, reloads, shutdown, and a watchdog that pings
 * only while the database answers.
 *
 * Without $NOTIFY_SOCKET (not under systemd, or Type= other than notify)
 * every call here is a no-op; so is every call in a build without
 * libsystemd (meson -Dsystemd=disabled, or libsystemd-dev missing).
 */
#ifndef MESHCA_API_NOTIFY_H
#define MESHCA_API_NOTIFY_H

#include "ca/common/err.h"

struct api_ctx;
struct api_watchdog;

/* READY=1 with a STATUS= line: call once the listener accepts and the
 * port file (if any) is written. */
void api_notify_ready(void);
/* RELOADING=1 before a SIGHUP reload, READY=1 after it. */
void api_notify_reloading(void);
/* STOPPING=1: the first thing meshcad does on SIGTERM/SIGINT. */
void api_notify_stopping(void);

/* When the service manager asked for a watchdog ($WATCHDOG_USEC, and
 * $WATCHDOG_PID naming this process if set), starts a thread that checks
 * the database takes a write (db_ping_write) and then sends WATCHDOG=1, every half of
 * the interval.  *out is NULL when no watchdog was asked (or without
 * libsystemd).  Fails only when the thread cannot be created. */
enum mca_err api_watchdog_start(struct api_ctx *ctx, struct api_watchdog **out) MCA_WUR;
/* Stops and joins the thread; NULL is a no-op. */
void api_watchdog_stop(struct api_watchdog *w);

#endif
