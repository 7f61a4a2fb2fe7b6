/*
 * meshcad's connection and resource limits (config keys, documented in
 * meshcad(8)), and the watchdog that enforces the total time a request
 * may take, which libmicrohttpd's idle timeout alone cannot: a client
 * that trickles one byte of its headers every few seconds (slowloris) is
 * never idle.
 */
#ifndef MCA_API_LIMITS_H
#define MCA_API_LIMITS_H

#include <stddef.h>
#include <stdint.h>

#include <microhttpd.h>

#include "ca/common/err.h"

struct mca_config;

struct api_limits {
	unsigned	max_connections;	/* max_connections: whole server */
	unsigned	max_per_ip;		/* max_connections_per_ip: one client address */
	size_t		max_body;		/* max_request_body: bytes of a request body (413 beyond) */
	size_t		max_header;		/* max_header_bytes: per-connection buffer for the request line and headers */
	int64_t		idle_timeout;		/* idle_timeout: seconds without a byte */
	int64_t		request_timeout;	/* request_timeout: seconds for one whole request */
	unsigned	bad_token_burst;	/* bad_token_burst: failed token presentations per address ... */
	int64_t		bad_token_refill;	/* bad_token_refill: ... one forgiven every this many seconds */
	unsigned	workers;		/* workers: issuing threads, 0 = by CPU count (workers.c) */
};

/* The defaults, sized for a small (2-core) host holding a few thousand
 * workloads' connections. */
#define API_DEFAULT_MAX_CONNECTIONS	4096
#define API_DEFAULT_MAX_PER_IP		64
#define API_DEFAULT_MAX_BODY		(64 * 1024)
#define API_DEFAULT_MAX_HEADER		(16 * 1024)
#define API_DEFAULT_IDLE_TIMEOUT	30
#define API_DEFAULT_REQUEST_TIMEOUT	60
#define API_DEFAULT_BAD_TOKEN_BURST	10
#define API_DEFAULT_BAD_TOKEN_REFILL	6
#define API_MAX_WORKERS			256

/* Reads the keys above (absent: the default); MCA_ERR_CONFIG naming the
 * key and its accepted range when a value is malformed or out of range. */
enum mca_err api_limits_load(const struct mca_config *cfg, struct api_limits *out) MCA_WUR;

/* ---- the request-time watchdog ------------------------------------- */

struct api_conns;

/* Starts the watchdog thread: every second it cuts (shutdown(2)) each
 * connection whose current request has taken longer than timeout_s,
 * counted from the connection's accept or its previous response. */
enum mca_err api_conns_start(int64_t timeout_s, struct api_conns **out) MCA_WUR;
/* Stops the thread; connections still tracked are forgotten. NULL: no-op. */
void api_conns_stop(struct api_conns *cs);
/* libmicrohttpd's MHD_OPTION_NOTIFY_CONNECTION callback (cls: the
 * struct api_conns): tracks connections from accept to close. */
void api_conns_notify(void *cls, struct MHD_Connection *conn, void **socket_context,
    enum MHD_ConnectionNotificationCode code);
/* A response was sent on conn: its next request's time starts now. */
void api_conns_touch(struct api_conns *cs, struct MHD_Connection *conn);
/* Connections cut by the watchdog since start (process-wide). */
uint64_t api_conns_cut_total(void);

#endif
