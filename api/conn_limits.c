/*
 * Connection and resource limits: the config keys, and the watchdog that
 * bounds the total time of one request.
 */
#include "api/conn_limits.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "ca/common/config.h"
#include "ca/common/log.h"
#include "ca/common/timefmt.h"

/* An integer key within [lo, hi]; absent: def. */
static enum mca_err
limit_uint(const struct mca_config *cfg, const char *key, unsigned long long def,
    unsigned long long lo, unsigned long long hi, unsigned long long *out)
{
	const char *v = mca_config_get(cfg, key);
	char *end;

	*out = def;
	if (v == NULL)
		return MCA_OK;
	errno = 0;
	*out = strtoull(v, &end, 10);
	if (v[0] < '0' || v[0] > '9' || *end != '\0' || errno != 0 || *out < lo || *out > hi)
		return mca_err_set(MCA_ERR_CONFIG, "%s = '%s': want an integer from %llu to %llu",
		    key, v, lo, hi);
	return MCA_OK;
}

/* A duration key within [lo, hi] seconds; absent: def. */
static enum mca_err
limit_duration(const struct mca_config *cfg, const char *key, int64_t def, int64_t lo, int64_t hi,
    int64_t *out)
{
	enum mca_err rc;

	if ((rc = mca_config_duration(cfg, key, def, out)) != MCA_OK)
		return rc;
	if (*out < lo || *out > hi)
		return mca_err_set(MCA_ERR_CONFIG, "%s: want a duration from %llds to %llds",
		    key, (long long)lo, (long long)hi);
	return MCA_OK;
}

enum mca_err
api_limits_load(const struct mca_config *cfg, struct api_limits *out)
{
	unsigned long long conns, per_ip, body, header, burst, workers;
	enum mca_err rc;

	memset(out, 0, sizeof(*out));
	if ((rc = limit_uint(cfg, "max_connections", API_DEFAULT_MAX_CONNECTIONS, 16, 65536, &conns)) != MCA_OK ||
	    (rc = limit_uint(cfg, "max_connections_per_ip", API_DEFAULT_MAX_PER_IP, 1, 65536, &per_ip)) != MCA_OK ||
	    /* A CSR with its JSON fits in a few KiB; past 1 MiB is never a request of ours. */
	    (rc = limit_uint(cfg, "max_request_body", API_DEFAULT_MAX_BODY, 4096, 1024 * 1024, &body)) != MCA_OK ||
	    /* Below 4 KiB a client certificate-less request with a few headers would not fit. */
	    (rc = limit_uint(cfg, "max_header_bytes", API_DEFAULT_MAX_HEADER, 4096, 1024 * 1024, &header)) != MCA_OK ||
	    (rc = limit_uint(cfg, "bad_token_burst", API_DEFAULT_BAD_TOKEN_BURST, 1, 1000000, &burst)) != MCA_OK ||
	    (rc = limit_uint(cfg, "workers", 0, 0, API_MAX_WORKERS, &workers)) != MCA_OK ||
	    (rc = limit_duration(cfg, "idle_timeout", API_DEFAULT_IDLE_TIMEOUT, 1, 3600, &out->idle_timeout)) != MCA_OK ||
	    (rc = limit_duration(cfg, "request_timeout", API_DEFAULT_REQUEST_TIMEOUT, 1, 3600,
	    &out->request_timeout)) != MCA_OK ||
	    (rc = limit_duration(cfg, "bad_token_refill", API_DEFAULT_BAD_TOKEN_REFILL, 1, 86400,
	    &out->bad_token_refill)) != MCA_OK)
		return rc;
	if (per_ip > conns)
		return mca_err_set(MCA_ERR_CONFIG, "max_connections_per_ip (%llu) exceeds max_connections (%llu)",
		    per_ip, conns);
	out->max_connections = (unsigned)conns;
	out->max_per_ip = (unsigned)per_ip;
	out->max_body = (size_t)body;
	out->max_header = (size_t)header;
	out->bad_token_burst = (unsigned)burst;
	out->workers = (unsigned)workers;
	return MCA_OK;
}

/* ---- the request-time watchdog ------------------------------------- */

struct api_conn {
	struct api_conn	*prev, *next;
	int		 fd;
	int64_t		 since_us;	/* accept, or the last response */
	bool		 cut;
};

struct api_conns {
	pthread_mutex_t	 lock;
	pthread_cond_t	 wake;
	pthread_t	 thread;
	bool		 stop;
	int64_t		 timeout_us;
	struct api_conn	 head;		/* circular list sentinel */
};

static _Atomic uint64_t cut_total;

uint64_t
api_conns_cut_total(void)
{
	return cut_total;
}

/* Under cs->lock. */
static void
conns_sweep(struct api_conns *cs, int64_t now)
{
	for (struct api_conn *c = cs->head.next; c != &cs->head; c = c->next) {
		if (c->cut || now - c->since_us <= cs->timeout_us)
			continue;
		/* MHD sees end of stream and closes the connection itself; the
		 * fd stays valid until its CLOSED notification, which needs
		 * this lock, so it cannot be reused under us. */
		(void)shutdown(c->fd, SHUT_RDWR);
		c->cut = true;
		cut_total++;
	}
}

static void *
conns_main(void *arg)
{
	struct api_conns *cs = arg;
	struct timespec ts;

	pthread_mutex_lock(&cs->lock);
	while (!cs->stop) {
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_sec += 1;
		(void)pthread_cond_timedwait(&cs->wake, &cs->lock, &ts);
		if (!cs->stop)
			conns_sweep(cs, mca_monotonic_us());
	}
	pthread_mutex_unlock(&cs->lock);
	return NULL;
}

enum mca_err
api_conns_start(int64_t timeout_s, struct api_conns **out)
{
	struct api_conns *cs;

	*out = NULL;
	if ((cs = calloc(1, sizeof(*cs))) == NULL)
		return MCA_ERR_NOMEM;
	cs->timeout_us = timeout_s * 1000000;
	cs->head.next = cs->head.prev = &cs->head;
	if (pthread_mutex_init(&cs->lock, NULL) != 0) {
		free(cs);
		return MCA_ERR_NOMEM;
	}
	if (pthread_cond_init(&cs->wake, NULL) != 0) {
		pthread_mutex_destroy(&cs->lock);
		free(cs);
		return MCA_ERR_NOMEM;
	}
	if (pthread_create(&cs->thread, NULL, conns_main, cs) != 0) {
		pthread_cond_destroy(&cs->wake);
		pthread_mutex_destroy(&cs->lock);
		free(cs);
		return mca_err_set(MCA_ERR_NOMEM, "cannot start the request-time watchdog");
	}
	*out = cs;
	return MCA_OK;
}

void
api_conns_stop(struct api_conns *cs)
{
	struct api_conn *c, *next;

	if (cs == NULL)
		return;
	pthread_mutex_lock(&cs->lock);
	cs->stop = true;
	pthread_cond_signal(&cs->wake);
	pthread_mutex_unlock(&cs->lock);
	pthread_join(cs->thread, NULL);
	for (c = cs->head.next; c != &cs->head; c = next) {
		next = c->next;
		free(c);
	}
	pthread_cond_destroy(&cs->wake);
	pthread_mutex_destroy(&cs->lock);
	free(cs);
}

void
api_conns_notify(void *cls, struct MHD_Connection *conn, void **socket_context,
    enum MHD_ConnectionNotificationCode code)
{
	struct api_conns *cs = cls;
	struct api_conn *c = *socket_context;
	const union MHD_ConnectionInfo *ci;

	if (cs == NULL)
		return;
	if (code == MHD_CONNECTION_NOTIFY_STARTED) {
		ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
		/* Untracked on failure: the idle timeout still applies to it. */
		if (ci == NULL || (c = calloc(1, sizeof(*c))) == NULL)
			return;
		c->fd = ci->connect_fd;
		c->since_us = mca_monotonic_us();
		pthread_mutex_lock(&cs->lock);
		c->next = &cs->head;
		c->prev = cs->head.prev;
		cs->head.prev->next = c;
		cs->head.prev = c;
		pthread_mutex_unlock(&cs->lock);
		*socket_context = c;
		return;
	}
	if (c == NULL)
		return;
	pthread_mutex_lock(&cs->lock);
	c->prev->next = c->next;
	c->next->prev = c->prev;
	pthread_mutex_unlock(&cs->lock);
	free(c);
	*socket_context = NULL;
}

void
api_conns_touch(struct api_conns *cs, struct MHD_Connection *conn)
{
	const union MHD_ConnectionInfo *ci;
	struct api_conn *c;

	if (cs == NULL)
		return;
	ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
	if (ci == NULL || (c = ci->socket_context) == NULL)
		return;
	pthread_mutex_lock(&cs->lock);
	c->since_us = mca_monotonic_us();
	pthread_mutex_unlock(&cs->lock);
}
