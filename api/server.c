/*
 * The libmicrohttpd side of meshcad: TLS set-up, request bodies with a
 * hard cap, routing, one log line per request, graceful stop.
 */
#include "api/api.h"
#include "api/metrics.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include "ca/common/log.h"
#include "ca/common/timefmt.h"

/* TLS 1.3 preferred, 1.2 the floor (DESIGN: HTTPS only). */
#define API_TLS_PRIORITIES "NORMAL:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2:%SERVER_PRECEDENCE"

struct api_server {
	struct MHD_Daemon	*daemon;
	struct api_ctx		*ctx;
	struct mca_buf		 trust_pem;	/* kept alive for MHD */
	uint16_t		 port;
};

struct route {
	const char	*method;
	const char	*pattern;	/* '*' matches one path segment */
	api_handler	 handler;
};

static const struct route routes[] = {
	{ "GET",  "/v1/health",			route_health },
	{ "GET",  "/v1/roots",			route_roots },
	{ "GET",  "/v1/roots.pem",		route_roots_pem },
	{ "POST", "/v1/enroll",			route_enroll },
	{ "POST", "/v1/renew",			route_renew },
	{ "POST", "/v1/services",		route_service_create },
	{ "GET",  "/v1/services",		route_service_list },
	{ "GET",  "/v1/services/*",		route_service_get },
	{ "PATCH", "/v1/services/*",		route_service_update },
	{ "POST", "/v1/services/*/tokens",	route_token_create },
	{ "GET",  "/v1/certificates",		route_cert_list },
	{ "GET",  "/v1/certificates/*",		route_cert_get },
	{ "POST", "/v1/revoke",			route_revoke },
	{ "POST", "/v1/services/*/disable",	route_service_disable },
	{ "POST", "/v1/services/*/enable",	route_service_enable },
	{ "GET",  "/v1/crl",			route_crl },
	{ "GET",  "/v1/crl.pem",		route_crl_pem },
	{ "GET",  "/v1/intermediate.crt",	route_intermediate },
	{ "POST", "/v1/ocsp",			route_ocsp_post },
	{ "GET",  "/v1/ocsp/**",		route_ocsp_get },
	{ "POST", "/v1/admins",			route_admin_create },
	{ "GET",  "/v1/admins",			route_admin_list },
	{ "GET",  "/v1/admins/*",		route_admin_get },
	{ "POST", "/v1/admins/*/tokens",	route_admin_token },
	{ "POST", "/v1/admins/*/remove",	route_admin_remove },
	{ "GET",  "/v1/status",			route_status },
	{ "GET",  "/v1/audit",			route_audit_list },
	{ "GET",  "/v1/audit/checkpoints/latest", route_audit_checkpoint_latest },
};

/* Matches path against pattern; the '*' segment is copied to arg.  A
 * final "**" matches the rest of the path, slashes included (base64 in
 * GET /v1/ocsp/{base64} may hold '/'). */
static bool
route_match(const char *pattern, const char *path, char *arg, size_t argsz)
{
	const char *star = strchr(pattern, '*');
	size_t pre, seg;

	if (star == NULL)
		return strcmp(pattern, path) == 0;
	pre = (size_t)(star - pattern);
	if (strncmp(pattern, path, pre) != 0)
		return false;
	path += pre;
	seg = strcmp(star, "**") == 0 ? strlen(path) : strcspn(path, "/");
	if (seg == 0 || seg >= argsz)
		return false;
	if (star[1] != '*' && strcmp(star + 1, path + seg) != 0)
		return false;
	memcpy(arg, path, seg);
	arg[seg] = '\0';
	return true;
}

/* The route pattern a path matches, as a metrics label: bounded, unlike paths. */
static const char *
route_label(const char *path)
{
	char arg[256];

	for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); i++)
		if (route_match(routes[i].pattern, path, arg, sizeof(arg)))
			return routes[i].pattern;
	return "other";
}

static enum MHD_Result
dispatch(struct api_request *r)
{
	char arg[256];
	char *allow = r->allow;
	size_t n = 0;

	for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); i++) {
		if (!route_match(routes[i].pattern, r->path, arg, sizeof(arg)))
			continue;
		if (strcmp(routes[i].method, r->method) == 0) {
			/* Issuing requests queue for the worker pool (workers.c). */
			if ((routes[i].handler == route_enroll || routes[i].handler == route_renew) &&
			    api_workers_submit(r->ctx->workers, r, routes[i].handler))
				return MHD_YES;
			return routes[i].handler(r, strchr(routes[i].pattern, '*') ? arg : NULL);
		}
		n += (size_t)snprintf(allow + n, sizeof(r->allow) - n, "%s%s", n ? ", " : "", routes[i].method);
		if (n >= sizeof(r->allow))
			n = sizeof(r->allow) - 1;
	}
	if (n > 0) {
		/* RFC 9110 15.5.6: a 405 names the methods the resource has. */
		return api_reply_error(r, 405, "method_not_allowed", "%s is not allowed on %s (allowed: %s)",
		    r->method, r->path, allow);
	}
	return api_reply_error(r, 404, "not_found", "no such endpoint: %s", r->path);
}

static struct api_request *
request_new(struct api_ctx *ctx, struct MHD_Connection *conn, const char *method, const char *url)
{
	struct api_request *r;
	unsigned char rnd[8];

	if ((r = calloc(1, sizeof(*r))) == NULL)
		return NULL;
	ctx->inflight++;
	r->ctx = ctx;
	r->conn = conn;
	r->method = method;
	r->start_us = mca_monotonic_us();
	mca_buf_init(&r->body, ctx->limits.max_body, false);
	/* Paths longer than any route are cut: they match nothing (404). */
	snprintf(r->path, sizeof(r->path), "%s", url);
	if (gnutls_rnd(GNUTLS_RND_NONCE, rnd, sizeof(rnd)) == 0)
		mca_hex_encode(rnd, sizeof(rnd), r->id);
	return r;
}

/* A body declared beyond what we would drain is refused at once (the
 * connection then closes); a smaller oversize body is drained and
 * answered 413 at its end, so the client reliably reads the answer. */
static bool
declared_too_big(struct MHD_Connection *conn)
{
	const char *cl = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
	char *end;
	unsigned long long n;

	if (cl == NULL)
		return false;
	n = strtoull(cl, &end, 10);
	return *end != '\0' || n > API_MAX_DISCARD;
}

static enum MHD_Result
on_request(void *cls, struct MHD_Connection *conn, const char *url, const char *method,
    const char *version, const char *upload, size_t *upload_size, void **con_cls)
{
	struct api_request *r = *con_cls;

	(void)version;
	if (r == NULL) {
		if ((r = request_new(cls, conn, method, url)) == NULL)
			return MHD_NO;
		*con_cls = r;
		/* Refuse a declared oversize body before reading any of it. */
		if (declared_too_big(conn))
			return api_reply_error(r, 413, "body_too_large",
			    "request body exceeds %zu bytes", r->ctx->limits.max_body);
		return MHD_YES;
	}
	if (r->offloaded)		/* resumed: the worker's reply */
		return api_workers_deliver(r);
	if (r->replied) {		/* discard the rest of a refused upload */
		*upload_size = 0;
		return MHD_YES;
	}
	if (*upload_size > 0) {
		/* MHD cannot answer in the middle of an upload: past the cap,
		 * drop the data and answer 413 at its end, unless the client
		 * keeps pushing, in which case the connection is cut. */
		if (!r->too_big && mca_buf_append(&r->body, upload, *upload_size) != MCA_OK) {
			r->too_big = true;
			mca_buf_free(&r->body);
		}
		if (r->too_big) {
			r->discarded += *upload_size;
			if (r->discarded > API_MAX_DISCARD)
				return MHD_NO;
		}
		*upload_size = 0;
		return MHD_YES;
	}
	if (r->too_big)
		return api_reply_error(r, 413, "body_too_large", "request body exceeds %zu bytes",
		    r->ctx->limits.max_body);
	return dispatch(r);
}

static void
on_completed(void *cls, struct MHD_Connection *conn, void **con_cls, enum MHD_RequestTerminationCode toe)
{
	struct api_request *r = *con_cls;
	const union MHD_ConnectionInfo *ci;
	char status[8], ms[32], peer[INET6_ADDRSTRLEN] = "";

	(void)cls;
	if (r == NULL)
		return;
	api_conns_touch(r->ctx->conns, conn);	/* the next request's time starts now */
	ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
	if (ci != NULL && ci->client_addr != NULL) {
		const struct sockaddr *sa = ci->client_addr;

		if (sa->sa_family == AF_INET)
			inet_ntop(AF_INET, &((const struct sockaddr_in *)(const void *)sa)->sin_addr, peer, sizeof(peer));
		else if (sa->sa_family == AF_INET6)
			inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr, peer, sizeof(peer));
	}
	snprintf(status, sizeof(status), "%u", r->status);
	snprintf(ms, sizeof(ms), "%.3f", (double)(mca_monotonic_us() - r->start_us) / 1000.0);
	mca_log(r->status >= 500 ? MCA_LOG_ERROR : MCA_LOG_INFO, "request",
	    "id", r->id, "method", r->method, "path", r->path, "status", status,
	    "duration_ms", ms, "remote", peer,
	    "actor", r->peer.verified ? r->peer.spiffe_id : NULL,
	    "aborted", toe == MHD_REQUEST_TERMINATED_COMPLETED_OK ? NULL : "true",
	    (const char *)NULL);
	api_metrics_request(r->method, route_label(r->path), r->status,
	    mca_monotonic_us() - r->start_us, r->service, r->error_code);
	r->ctx->inflight--;
	mca_buf_free(&r->body);
	free(r);
	*con_cls = NULL;
}

/* Connection start and end: session tickets (resume.c), then the
 * per-connection request watchdog (conn_limits.c). */
static void
on_connection(void *cls, struct MHD_Connection *conn, void **socket_context,
    enum MHD_ConnectionNotificationCode code)
{
	struct api_ctx *ctx = cls;

	if (code == MHD_CONNECTION_NOTIFY_STARTED)
		api_resume_enable(conn);
	api_conns_notify(ctx->conns, conn, socket_context, code);
}

static void
on_mhd_log(void *cls, const char *fmt, va_list ap)
{
	char msg[512];
	size_t n;

	(void)cls;
	vsnprintf(msg, sizeof(msg), fmt, ap);
	n = strlen(msg);
	while (n > 0 && (msg[n - 1] == '\n' || msg[n - 1] == '\r'))
		msg[--n] = '\0';
	mca_log(MCA_LOG_WARN, "libmicrohttpd", "detail", msg, (const char *)NULL);
}

enum mca_err
api_listen_parse(const char *text, struct api_listen *out)
{
	const char *colon;
	char *end;
	size_t hostlen;
	long port;
	unsigned char tmp[16];

	memset(out, 0, sizeof(*out));
	if (text[0] == '[') {
		const char *rb = strchr(text, ']');

		if (rb == NULL || rb[1] != ':')
			goto bad;
		hostlen = (size_t)(rb - text - 1);
		text++;
		colon = rb + 1;
	} else {
		if ((colon = strrchr(text, ':')) == NULL)
			goto bad;
		hostlen = (size_t)(colon - text);
	}
	if (hostlen == 0 || hostlen >= sizeof(out->host))
		goto bad;
	memcpy(out->host, text, hostlen);
	port = strtol(colon + 1, &end, 10);
	if (colon[1] == '\0' || *end != '\0' || port < 0 || port > 65535)
		goto bad;
	out->port = (uint16_t)port;
	if (inet_pton(AF_INET, out->host, tmp) != 1 && inet_pton(AF_INET6, out->host, tmp) != 1)
		goto bad;
	return MCA_OK;
bad:
	return mca_err_set(MCA_ERR_CONFIG,
	    "listen address '%s' is not ADDRESS:PORT with a literal IP (127.0.0.1:8443, [::1]:8443)", text);
}

static enum mca_err
server_trust_pem(struct api_server *s)
{
	const struct mca_buf *roots = ca_signer_roots_pem(s->ctx->signer);
	const struct mca_buf *chain = ca_signer_chain_pem(s->ctx->signer);

	mca_buf_init(&s->trust_pem, 0, false);
	if (mca_buf_append(&s->trust_pem, roots->data, roots->len) != MCA_OK ||
	    mca_buf_append(&s->trust_pem, chain->data, chain->len) != MCA_OK)
		return MCA_ERR_NOMEM;
	return MCA_OK;
}

/* Every connection is a descriptor: lift the soft limit (1024 under
 * systemd by default) toward max_connections, up to the hard limit. */
static void
server_nofile(const struct api_limits *lim)
{
	struct rlimit rl;
	rlim_t want = (rlim_t)lim->max_connections + 256;	/* database, keys, logs, metrics */
	char have[32];

	if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur >= want)
		return;
	rl.rlim_cur = rl.rlim_max != RLIM_INFINITY && rl.rlim_max < want ? rl.rlim_max : want;
	if (setrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur < want) {
		snprintf(have, sizeof(have), "%llu", (unsigned long long)rl.rlim_cur);
		mca_log(MCA_LOG_WARN, "open file limit below max_connections; connections past it are "
		    "refused at accept (raise LimitNOFILE)", "limit", have, (const char *)NULL);
	}
}

static void
server_free(struct api_server *s)
{
	if (s == NULL)
		return;
	/* Before the daemon: it must not stop with a connection suspended;
	 * the pool runs what is queued and resumes each. */
	api_workers_stop(s->ctx->workers);
	s->ctx->workers = NULL;
	if (s->daemon != NULL)
		MHD_stop_daemon(s->daemon);
	/* After the daemon: its last connections are notified closed. */
	api_conns_stop(s->ctx->conns);
	s->ctx->conns = NULL;
	api_resume_free();
	mca_buf_free(&s->trust_pem);
	free(s);
}

enum mca_err
api_server_start(struct api_ctx *ctx, const struct api_listen *l, struct api_server **out)
{
	struct api_server *s;
	struct sockaddr_storage ss;
	/* poll(2), not epoll: libmicrohttpd 0.9.75 in epoll mode busy-loops
	 * (epoll_wait with a zero timeout, recv -> EAGAIN) while a TLS
	 * handshake waits for the client, so every handshake burnt CPU for
	 * as long as the client took, and a client that sent a ClientHello
	 * and stalled held a core until the connection timeout.  Thread per
	 * connection avoids it too, at about twice the memory per idle
	 * connection.  Figures: tests/bench/README.md. */
	unsigned int flags = MHD_USE_TLS | MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_POLL |
	    MHD_USE_ITC | MHD_USE_ERROR_LOG | MHD_ALLOW_SUSPEND_RESUME;
	const union MHD_DaemonInfo *info;
	enum mca_err rc = MCA_ERR_NOMEM;

	*out = NULL;
	if ((s = calloc(1, sizeof(*s))) == NULL)
		return MCA_ERR_NOMEM;
	s->ctx = ctx;
	memset(&ss, 0, sizeof(ss));
	if (inet_pton(AF_INET, l->host, &((struct sockaddr_in *)&ss)->sin_addr) == 1) {
		((struct sockaddr_in *)&ss)->sin_family = AF_INET;
		((struct sockaddr_in *)&ss)->sin_port = htons(l->port);
	} else if (inet_pton(AF_INET6, l->host, &((struct sockaddr_in6 *)&ss)->sin6_addr) == 1) {
		((struct sockaddr_in6 *)&ss)->sin6_family = AF_INET6;
		((struct sockaddr_in6 *)&ss)->sin6_port = htons(l->port);
		flags |= MHD_USE_IPv6;
	} else {
		rc = mca_err_set(MCA_ERR_CONFIG, "bad listen address %s", l->host);
		goto out;
	}
	if ((rc = server_trust_pem(s)) != MCA_OK ||
	    (rc = api_conns_start(ctx->limits.request_timeout, &ctx->conns)) != MCA_OK ||
	    (rc = api_workers_start(ctx->limits.workers, &ctx->workers)) != MCA_OK ||
	    (rc = api_resume_init()) != MCA_OK)
		goto out;
	server_nofile(&ctx->limits);
	s->daemon = MHD_start_daemon(flags, l->port, NULL, NULL, on_request, ctx,
	    MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, NULL,	/* first, to see all */
	    MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss,
	    /* Asked at every handshake, so a rotated certificate serves at once. */
	    MHD_OPTION_HTTPS_CERT_CALLBACK, api_tls_retrieve,
	    /* A trust list makes MHD request (not require) a client certificate. */
	    MHD_OPTION_HTTPS_MEM_TRUST, (const char *)s->trust_pem.data,
	    MHD_OPTION_HTTPS_PRIORITIES, API_TLS_PRIORITIES,
	    MHD_OPTION_THREAD_POOL_SIZE, (unsigned int)2,
	    /* Limits (conn_limits.h, meshcad(8)): idle seconds, connections in
	     * all and per client address, and the per-connection buffer that
	     * holds the request line and headers (431 beyond). */
	    MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int)ctx->limits.idle_timeout,
	    MHD_OPTION_CONNECTION_LIMIT, ctx->limits.max_connections,
	    MHD_OPTION_PER_IP_CONNECTION_LIMIT, ctx->limits.max_per_ip,
	    MHD_OPTION_CONNECTION_MEMORY_LIMIT, ctx->limits.max_header,
	    MHD_OPTION_NOTIFY_CONNECTION, on_connection, ctx,
	    MHD_OPTION_NOTIFY_COMPLETED, on_completed, ctx,
	    MHD_OPTION_END);
	if (s->daemon == NULL) {
		rc = mca_err_set(MCA_ERR_IO, "cannot listen on %s port %u (address in use, or bad TLS material)",
		    l->host, l->port);
		goto out;
	}
	info = MHD_get_daemon_info(s->daemon, MHD_DAEMON_INFO_BIND_PORT);
	s->port = info != NULL ? info->port : l->port;
	*out = s;
	s = NULL;
	rc = MCA_OK;
out:
	server_free(s);
	return rc;
}

uint16_t
api_server_port(const struct api_server *s)
{
	return s->port;
}

void
api_server_stop(struct api_server *s, int grace)
{
	MHD_socket lsock;

	if (s == NULL)
		return;
	/* Stop accepting; requests already in flight get `grace` seconds.
	 * Idle keep-alive connections hold no request and do not delay the
	 * stop.  The listening socket is handed back to us to close. */
	if ((lsock = MHD_quiesce_daemon(s->daemon)) != MHD_INVALID_SOCKET)
		close(lsock);
	for (int i = 0; i < grace * 10 && s->ctx->inflight > 0; i++)
		usleep(100 * 1000);
	server_free(s);
}
