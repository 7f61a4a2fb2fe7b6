/*
 * loadgen — a bounded load generator for meshcad's issuance paths.
 *
 * N threads, each with its own HTTPS connection (libcurl, the workload's
 * client certificate), POST /v1/renew for a fixed time, and report
 * requests per second and latency percentiles.  Renewal is the
 * steady-state load of a mesh (every workload, every 2/3 of a lifetime)
 * and, unlike enrollment, can be repeated with one credential.  Only
 * loopback URLs are accepted.  Bounded in time and in requests.
 *
 *   loadgen --url https://127.0.0.1:PORT --cacert root.crt --cert fullchain.pem \
 *       --key key.pem [--csr csr.pem | --fresh N] [--key-type p256] [--concurrency 8] \
 *       [--seconds 10] [--new-connections] [--no-resume] [--tls-max 1.2] [--server-pid PID]
 *
 * Every request carries a CSR for a key of its own, as agents rotating
 * their keys do: before the timer starts, loadgen generates --fresh N
 * keys of --key-type (p256, p384, ed25519, rsa2048) and a PKCS#10 request
 * for each (GnuTLS), on every CPU, and prints how long that took.  The
 * default N is enough for 6,000 requests a second over the run without
 * reuse (RSA: 128, ~80 ms a key); with --tokens, one per token.  If the
 * run sends more requests than there are CSRs they are used again in
 * turn, and the result line says so ("csrs=N cycled" instead of
 * "csrs=N distinct").  --csr FILE sends that one request every time.
 *
 * With --new-connections every request makes a TLS connection of its
 * own.  The handles share one TLS session cache (CURLSH), so libcurl
 * offers the server a session to resume; --no-resume turns the cache
 * off.  Whether the server resumed is read from the client's GnuTLS
 * session (gnutls_session_is_resumed) and reported as handshakes=N
 * resumed=M, with the TLS version.  --tls-max 1.2 caps the version.
 * Measured with Debian's libcurl-gnutls 7.88.1: it calls gnutls_init with
 * GNUTLS_NO_TICKETS, so it can only resume a TLS 1.2 session by its ID,
 * from a server-side cache, and never a TLS 1.3 one (no PSK).  meshcad
 * resumes by ticket only (api/resume.c): against it resumed=0 in both.
 *
 * With --server-pid, the server's CPU time over the run (utime + stime
 * from /proc) is reported per successful request.  --path, --csr-field and
 * --ok-status point it at another signer for a side-by-side run (cfssl:
 * --path /api/v1/cfssl/sign --csr-field certificate_request --ok-status 200).
 *
 * Enrollment: --tokens FILE (one enrollment token a line, minted before
 * the run) with --path /v1/enroll and no --cert/--key: each request
 * presents the next unused token with the next CSR; the run ends at the
 * deadline or when the tokens run out.
 */
#include <curl/curl.h>
#include <getopt.h>
#include <gnutls/abstract.h>
#include <gnutls/gnutls.h>
#include <gnutls/x509.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#define MAX_THREADS	256
#define MAX_SAMPLES	(1u << 20)	/* latency samples kept per run */
#define MAX_REQUESTS	5000000ULL	/* hard bound on one run */
#define MAX_FRESH	200000		/* pre-generated CSRs, ~0.6 KB each */
#define FRESH_PER_S	6000		/* default: no reuse up to this rate */
#define FRESH_RSA	128		/* RSA keys take ~80 ms each to generate */
#define TOKEN_MAX	200		/* longest token accepted (meshca's: 47) */

enum key_type { KEY_P256, KEY_P384, KEY_ED25519, KEY_RSA2048, KEY_TYPE_MAX };

static const struct {
	const char		*name;
	gnutls_pk_algorithm_t	 pk;
	unsigned int		 bits;
} key_types[KEY_TYPE_MAX] = {
	[KEY_P256] = { "p256", GNUTLS_PK_ECDSA, GNUTLS_CURVE_TO_BITS(GNUTLS_ECC_CURVE_SECP256R1) },
	[KEY_P384] = { "p384", GNUTLS_PK_ECDSA, GNUTLS_CURVE_TO_BITS(GNUTLS_ECC_CURVE_SECP384R1) },
	[KEY_ED25519] = { "ed25519", GNUTLS_PK_EDDSA_ED25519,
	    GNUTLS_CURVE_TO_BITS(GNUTLS_ECC_CURVE_ED25519) },
	[KEY_RSA2048] = { "rsa2048", GNUTLS_PK_RSA, 2048 },
};

struct opts {
	const char	*url, *cacert, *cert, *key, *csr_path;
	const char	*path;		/* default /v1/renew */
	const char	*csr_field;	/* JSON member carrying the CSR, default "csr" */
	long		 ok_status;	/* the success status, default 201 */
	int		 concurrency;
	int		 seconds;
	int		 new_connections;
	int		 no_resume;	/* new connections: no TLS session cache */
	long		 tls_max;	/* CURLOPT_SSLVERSION; 0: the default (1.3) */
	long		 server_pid;	/* 0: do not report the server's CPU */
	const char	*tokens_path;	/* enrollment: one token a line */
	enum key_type	 key_type;
	long		 fresh;		/* CSRs to generate; 0: the default */
};

/* The CSRs, each a JSON string literal (quotes included) ready to paste. */
struct csrs {
	char		**lit;
	size_t		 n, longest;
};

struct shared {
	const struct opts	*o;
	struct csrs		 csrs;
	char			**tokens;
	size_t			 ntokens;
	atomic_ullong		 sent;		/* requests started: indexes CSRs and tokens */
	double			 deadline;
	CURLSH			*share;		/* the TLS session cache of every handle */
	pthread_mutex_t		 lock;
	double			*lat;		/* milliseconds */
	size_t			 nlat;
	unsigned long long	 ok, failed;
	long			 first_bad_status;
};

/* One thread's handle and request body, and what its connections did. */
struct worker {
	struct shared		*sh;
	CURL			*h;
	char			*body;
	size_t			 body_max;
	int			 checked, resumed, tls;	/* the current transfer's connection */
	unsigned long long	 handshakes, resumptions;
};

static pthread_mutex_t share_locks[CURL_LOCK_DATA_LAST];

static double
now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* The literal of text[0..n) as a JSON string, or NULL. */
static char *
json_literal(const char *text, size_t n)
{
	json_t *s = json_stringn(text, n);
	char *lit = NULL;

	if (s != NULL) {
		lit = json_dumps(s, JSON_ENCODE_ANY | JSON_COMPACT);
		json_decref(s);
	}
	return lit;
}

/* A fresh key and a PKCS#10 request for it, as a JSON string literal.  No
 * names: meshcad takes the identity from the token or the presented
 * certificate, cfssl from its profile. */
static char *
csr_fresh(enum key_type kt)
{
	gnutls_privkey_t key = NULL;
	gnutls_pubkey_t pub = NULL;
	gnutls_x509_crq_t crq = NULL;
	gnutls_datum_t pem = { NULL, 0 };
	gnutls_digest_algorithm_t dig;
	char *lit = NULL;

	if (gnutls_privkey_init(&key) < 0 || gnutls_pubkey_init(&pub) < 0 ||
	    gnutls_x509_crq_init(&crq) < 0 ||
	    gnutls_privkey_generate2(key, key_types[kt].pk, key_types[kt].bits, 0, NULL, 0) < 0 ||
	    gnutls_pubkey_import_privkey(pub, key, 0, 0) < 0 ||
	    gnutls_pubkey_get_preferred_hash_algorithm(pub, &dig, NULL) < 0 ||
	    gnutls_x509_crq_set_version(crq, 1) < 0 ||
	    gnutls_x509_crq_set_dn_by_oid(crq, GNUTLS_OID_X520_COMMON_NAME, 0, "loadgen", 7) < 0 ||
	    gnutls_x509_crq_set_pubkey(crq, pub) < 0 ||
	    gnutls_x509_crq_privkey_sign(crq, key, dig, 0) < 0 ||
	    gnutls_x509_crq_export2(crq, GNUTLS_X509_FMT_PEM, &pem) < 0)
		goto out;
	lit = json_literal((const char *)pem.data, pem.size);
out:
	gnutls_free(pem.data);
	gnutls_x509_crq_deinit(crq);
	gnutls_pubkey_deinit(pub);
	gnutls_privkey_deinit(key);
	return lit;
}

struct keygen {
	struct csrs	*c;
	enum key_type	 kt;
	atomic_size_t	 next;
	atomic_int	 failed;
};

static void *
keygen_worker(void *arg)
{
	struct keygen *g = arg;
	size_t i;

	while (!atomic_load(&g->failed) && (i = atomic_fetch_add(&g->next, 1)) < g->c->n)
		if ((g->c->lit[i] = csr_fresh(g->kt)) == NULL)
			atomic_store(&g->failed, 1);
	return NULL;
}

/* n fresh CSRs, generated on every CPU this process may run on. */
static int
csrs_generate(struct csrs *c, size_t n, enum key_type kt, int *nthreads)
{
	struct keygen g = { .c = c, .kt = kt };
	pthread_t th[64];
	cpu_set_t cpus;
	int nt = 1;

	if ((c->lit = calloc(n, sizeof(*c->lit))) == NULL)
		return -1;
	c->n = n;
	if (sched_getaffinity(0, sizeof(cpus), &cpus) == 0)
		nt = CPU_COUNT(&cpus);
	nt = nt < 1 ? 1 : nt > 64 ? 64 : nt;
	for (int i = 0; i < nt; i++)
		if (pthread_create(&th[i], NULL, keygen_worker, &g) != 0)
			nt = i;
	if (nt == 0)
		keygen_worker(&g);
	for (int i = 0; i < nt; i++)
		pthread_join(th[i], NULL);
	*nthreads = nt > 0 ? nt : 1;
	return atomic_load(&g.failed) ? -1 : 0;
}

/* --csr FILE: that one request for every body. */
static int
csrs_fixed(struct csrs *c, const char *path)
{
	char *text = NULL;
	FILE *f = fopen(path, "r");
	size_t n;
	int rc = -1;

	if (f == NULL || (text = calloc(1, 65536)) == NULL ||
	    (c->lit = calloc(1, sizeof(*c->lit))) == NULL)
		goto out;
	n = fread(text, 1, 65535, f);
	if ((c->lit[0] = json_literal(text, n)) != NULL) {
		c->n = 1;
		rc = 0;
	}
out:
	if (f != NULL)
		fclose(f);
	free(text);
	return rc;
}

static void
csrs_free(struct csrs *c)
{
	for (size_t i = 0; c->lit != NULL && i < c->n; i++)
		free(c->lit[i]);
	free(c->lit);
}

static size_t
discard(char *p, size_t size, size_t n, void *u)
{
	(void)p;
	(void)u;
	return size * n;
}

/* Called with the first bytes of each answer, while the connection is
 * still open: did its handshake resume a session? */
static size_t
on_body(char *p, size_t size, size_t n, void *u)
{
	struct worker *w = u;
	struct curl_tlssessioninfo *ti = NULL;

	if (!w->checked && curl_easy_getinfo(w->h, CURLINFO_TLS_SSL_PTR, &ti) == CURLE_OK &&
	    ti != NULL && ti->backend == CURLSSLBACKEND_GNUTLS && ti->internals != NULL) {
		w->resumed = gnutls_session_is_resumed(ti->internals) != 0;
		w->tls = (int)gnutls_protocol_get_version(ti->internals);
		w->checked = 1;
	}
	return discard(p, size, n, u);
}

static void
share_lock(CURL *h, curl_lock_data d, curl_lock_access a, void *u)
{
	(void)h;
	(void)a;
	(void)u;
	pthread_mutex_lock(&share_locks[d]);
}

static void
share_unlock(CURL *h, curl_lock_data d, void *u)
{
	(void)h;
	(void)u;
	pthread_mutex_unlock(&share_locks[d]);
}

/* One TLS session cache for all threads: a session one thread got is
 * offered by the next connection of any thread. */
static CURLSH *
share_new(void)
{
	CURLSH *s = curl_share_init();

	for (int i = 0; i < CURL_LOCK_DATA_LAST; i++)
		pthread_mutex_init(&share_locks[i], NULL);
	if (s != NULL && (curl_share_setopt(s, CURLSHOPT_LOCKFUNC, share_lock) != CURLSHE_OK ||
	    curl_share_setopt(s, CURLSHOPT_UNLOCKFUNC, share_unlock) != CURLSHE_OK ||
	    curl_share_setopt(s, CURLSHOPT_SHARE, CURL_LOCK_DATA_SSL_SESSION) != CURLSHE_OK)) {
		curl_share_cleanup(s);
		s = NULL;
	}
	return s;
}

static CURL *
handle_new(const struct shared *sh, struct curl_slist *hdrs, struct worker *w)
{
	const struct opts *o = sh->o;
	char url[512];
	CURL *h = curl_easy_init();

	if (h == NULL)
		return NULL;
	snprintf(url, sizeof(url), "%s%s", o->url, o->path);
	curl_easy_setopt(h, CURLOPT_URL, url);
	curl_easy_setopt(h, CURLOPT_CAINFO, o->cacert);
	/* Debian's libcurl-gnutls is built --with-ca-path=/etc/ssl/certs: left
	 * set, every new connection parses the whole system store (~290 files)
	 * and the run measures the client, not meshcad.  The agent pins the
	 * root the same way (cli/http.c). */
	curl_easy_setopt(h, CURLOPT_CAPATH, NULL);
	if (o->cert != NULL) {
		curl_easy_setopt(h, CURLOPT_SSLCERT, o->cert);
		curl_easy_setopt(h, CURLOPT_SSLKEY, o->key);
	}
	if (o->tls_max != 0)
		curl_easy_setopt(h, CURLOPT_SSLVERSION, o->tls_max);
	if (o->no_resume)
		curl_easy_setopt(h, CURLOPT_SSL_SESSIONID_CACHE, 0L);
	else if (sh->share != NULL)
		curl_easy_setopt(h, CURLOPT_SHARE, sh->share);
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
	curl_easy_setopt(h, CURLOPT_POSTFIELDS, w->body);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, w);
	curl_easy_setopt(h, CURLOPT_TIMEOUT, 30L);
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	if (o->new_connections)
		curl_easy_setopt(h, CURLOPT_FORBID_REUSE, 1L);
	return h;
}

static void
record(struct shared *sh, double ms, long status)
{
	pthread_mutex_lock(&sh->lock);
	if (status == sh->o->ok_status) {
		sh->ok++;
		if (sh->nlat < MAX_SAMPLES)
			sh->lat[sh->nlat++] = ms;
	} else {
		sh->failed++;
		if (sh->first_bad_status == 0)
			sh->first_bad_status = status;
	}
	pthread_mutex_unlock(&sh->lock);
}

/* Request i's body: CSR i (cycling), with token i when enrolling; 0, or
 * -1 when the tokens have run out.  Tokens and the field name were
 * checked to need no JSON escaping. */
static int
body_next(struct worker *w, unsigned long long i)
{
	const struct shared *sh = w->sh;
	const char *lit = sh->csrs.lit[i % sh->csrs.n];

	if (sh->tokens == NULL)
		snprintf(w->body, w->body_max, "{\"%s\":%s}", sh->o->csr_field, lit);
	else if (i < sh->ntokens)
		snprintf(w->body, w->body_max, "{\"token\":\"%s\",\"%s\":%s}", sh->tokens[i],
		    sh->o->csr_field, lit);
	else
		return -1;
	return 0;
}

static void *
worker_run(void *arg)
{
	struct worker *w = arg;
	struct shared *sh = w->sh;
	struct curl_slist *hdrs = curl_slist_append(NULL, "Content-Type: application/json");

	w->h = handle_new(sh, hdrs, w);
	while (w->h != NULL && now_s() < sh->deadline) {
		unsigned long long i = atomic_fetch_add(&sh->sent, 1);
		long status = 0, conns = 0;
		double t0;

		if (i >= MAX_REQUESTS || body_next(w, i) != 0)
			break;
		w->checked = 0;
		t0 = now_s();
		if (curl_easy_perform(w->h) == CURLE_OK)
			curl_easy_getinfo(w->h, CURLINFO_RESPONSE_CODE, &status);
		record(sh, (now_s() - t0) * 1000.0, status);
		if (curl_easy_getinfo(w->h, CURLINFO_NUM_CONNECTS, &conns) == CURLE_OK && conns > 0 &&
		    w->checked) {
			w->handshakes++;
			w->resumptions += (unsigned long long)w->resumed;
		}
	}
	curl_easy_cleanup(w->h);
	curl_slist_free_all(hdrs);
	return NULL;
}

/* utime + stime of a process in seconds (proc(5)), or -1. */
static double
proc_cpu_s(long pid)
{
	char path[64], buf[1024], *p;
	unsigned long long ut, st;
	size_t n;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%ld/stat", pid);
	if ((f = fopen(path, "r")) == NULL)
		return -1;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	/* Fields after the parenthesised command name: state is field 3,
	 * utime 14 and stime 15. */
	if ((p = strrchr(buf, ')')) == NULL ||
	    sscanf(p + 1, " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st) != 2)
		return -1;
	return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

/* The server's CPU seconds, its child processes' included (meshcad's
 * signer process), and the children's alone in *children; -1 if unknown.
 * The children are read from /proc/PID/task/PID/children (proc(5)). */
static double
server_cpu_s(long pid, double *children)
{
	char path[96];
	double own = proc_cpu_s(pid), c;
	long kid;
	FILE *f;

	*children = 0;
	if (own < 0)
		return -1;
	snprintf(path, sizeof(path), "/proc/%ld/task/%ld/children", pid, pid);
	if ((f = fopen(path, "r")) == NULL)
		return own;
	while (fscanf(f, "%ld", &kid) == 1)
		if ((c = proc_cpu_s(kid)) > 0)
			*children += c;
	fclose(f);
	return own + *children;
}

static int
cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

static double
pct(const struct shared *sh, double p)
{
	if (sh->nlat == 0)
		return 0;
	return sh->lat[(size_t)(p * (double)(sh->nlat - 1))];
}

/* Goes into a JSON string unescaped: letters, digits, '-', '_'. */
static int
json_plain(const char *s)
{
	return s[0] != '\0' && s[strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
	    "0123456789-_")] == '\0';
}

/* One token a line; blank lines skipped.  At most MAX_REQUESTS. */
static int
read_tokens(const char *path, struct shared *sh)
{
	char line[512];
	size_t cap = 0;
	FILE *f = fopen(path, "r");
	int rc = -1;

	if (f == NULL)
		return -1;
	while (fgets(line, sizeof(line), f) != NULL && sh->ntokens < MAX_REQUESTS) {
		line[strcspn(line, "\r\n")] = '\0';
		if (line[0] == '\0')
			continue;
		if (strlen(line) > TOKEN_MAX || !json_plain(line))
			goto out;
		if (sh->ntokens == cap) {
			char **t = realloc(sh->tokens, (cap = cap ? cap * 2 : 1024) * sizeof(*t));

			if (t == NULL)
				goto out;
			sh->tokens = t;
		}
		if ((sh->tokens[sh->ntokens] = strdup(line)) == NULL)
			goto out;
		sh->ntokens++;
	}
	rc = sh->ntokens > 0 ? 0 : -1;
out:
	fclose(f);
	return rc;
}

static int
key_type_parse(const char *s, enum key_type *kt)
{
	for (int i = 0; i < KEY_TYPE_MAX; i++)
		if (strcmp(s, key_types[i].name) == 0) {
			*kt = (enum key_type)i;
			return 0;
		}
	return -1;
}

static long
tls_max_parse(const char *s)
{
	if (strcmp(s, "1.2") == 0)
		return (long)(CURL_SSLVERSION_DEFAULT | CURL_SSLVERSION_MAX_TLSv1_2);
	if (strcmp(s, "1.3") == 0)
		return (long)(CURL_SSLVERSION_DEFAULT | CURL_SSLVERSION_MAX_TLSv1_3);
	return -1;
}

static int
parse(int argc, char **argv, struct opts *o)
{
	static const struct option lo[] = {
		{ "url", required_argument, NULL, 'u' }, { "cacert", required_argument, NULL, 'a' },
		{ "cert", required_argument, NULL, 'c' }, { "key", required_argument, NULL, 'k' },
		{ "csr", required_argument, NULL, 'r' }, { "concurrency", required_argument, NULL, 'n' },
		{ "seconds", required_argument, NULL, 's' },
		{ "new-connections", no_argument, NULL, 'N' }, { "no-resume", no_argument, NULL, 'R' },
		{ "tls-max", required_argument, NULL, 'T' },
		{ "server-pid", required_argument, NULL, 'p' }, { "path", required_argument, NULL, 'P' },
		{ "csr-field", required_argument, NULL, 'f' }, { "ok-status", required_argument, NULL, 'o' },
		{ "tokens", required_argument, NULL, 't' }, { "key-type", required_argument, NULL, 'K' },
		{ "fresh", required_argument, NULL, 'F' },
		{ NULL, 0, NULL, 0 },
	};
	int ch;

	*o = (struct opts){ .concurrency = 8, .seconds = 10, .path = "/v1/renew", .csr_field = "csr",
	    .ok_status = 201 };
	while ((ch = getopt_long(argc, argv, "", lo, NULL)) != -1) {
		switch (ch) {
		case 'u': o->url = optarg; break;
		case 'a': o->cacert = optarg; break;
		case 'c': o->cert = optarg; break;
		case 'k': o->key = optarg; break;
		case 'r': o->csr_path = optarg; break;
		case 'n': o->concurrency = (int)strtol(optarg, NULL, 10); break;
		case 's': o->seconds = (int)strtol(optarg, NULL, 10); break;
		case 'N': o->new_connections = 1; break;
		case 'R': o->no_resume = 1; break;
		case 'T': if ((o->tls_max = tls_max_parse(optarg)) < 0) return -1; break;
		case 'p': o->server_pid = strtol(optarg, NULL, 10); break;
		case 'P': o->path = optarg; break;
		case 'f': o->csr_field = optarg; break;
		case 'o': o->ok_status = strtol(optarg, NULL, 10); break;
		case 't': o->tokens_path = optarg; break;
		case 'K': if (key_type_parse(optarg, &o->key_type) != 0) return -1; break;
		case 'F': if ((o->fresh = strtol(optarg, NULL, 10)) < 1) return -1; break;
		default: return -1;
		}
	}
	if (!o->url || !o->cacert || (o->cert == NULL) != (o->key == NULL) ||
	    (o->cert == NULL && o->tokens_path == NULL) || (o->csr_path != NULL && o->fresh != 0) ||
	    o->fresh > MAX_FRESH || !json_plain(o->csr_field) || strlen(o->csr_field) > 64 ||
	    o->concurrency < 1 || o->concurrency > MAX_THREADS || o->seconds < 1 || o->seconds > 600 ||
	    o->path[0] != '/' || strlen(o->path) > 200)
		return -1;
	/* Load is only ever sent to this machine. */
	if (strncmp(o->url, "https://127.0.0.1:", 18) != 0 && strncmp(o->url, "https://[::1]:", 14) != 0)
		return -1;
	return 0;
}

/* --fresh, or enough for the run: one per token, or FRESH_PER_S a second. */
static size_t
fresh_count(const struct opts *o, size_t ntokens)
{
	size_t n;

	if (o->fresh > 0)
		return (size_t)o->fresh;
	if (ntokens > 0)
		n = ntokens;
	else if (o->key_type == KEY_RSA2048)
		n = FRESH_RSA;
	else
		n = (size_t)o->seconds * FRESH_PER_S;
	return n < MAX_FRESH ? n : MAX_FRESH;
}

/* The CSRs, fixed or fresh (timed and reported: it happens before the run). */
static int
csrs_load(struct shared *sh)
{
	const struct opts *o = sh->o;
	double t0 = now_s();
	int nthreads = 0;

	if (o->csr_path != NULL)
		return csrs_fixed(&sh->csrs, o->csr_path);
	if (csrs_generate(&sh->csrs, fresh_count(o, sh->ntokens), o->key_type, &nthreads) != 0)
		return -1;
	printf("keygen: %zu %s keys and CSRs in %.2fs on %d threads, before the run\n", sh->csrs.n,
	    key_types[o->key_type].name, now_s() - t0, nthreads);
	fflush(stdout);
	return 0;
}

static int
setup(struct shared *sh)
{
	const struct opts *o = sh->o;

	if (curl_global_init(CURL_GLOBAL_DEFAULT) != 0 ||
	    (sh->lat = malloc(sizeof(double) * MAX_SAMPLES)) == NULL ||
	    (o->tokens_path != NULL && read_tokens(o->tokens_path, sh) != 0) ||
	    csrs_load(sh) != 0)
		return -1;
	for (size_t i = 0; i < sh->csrs.n; i++) {
		size_t len = strlen(sh->csrs.lit[i]);

		sh->csrs.longest = len > sh->csrs.longest ? len : sh->csrs.longest;
	}
	pthread_mutex_init(&sh->lock, NULL);
	if (!o->no_resume && (sh->share = share_new()) == NULL)
		return -1;
	return 0;
}

static void
report(const struct shared *sh, const struct worker *w, double elapsed, double cpu_s,
    double kids_s)
{
	const struct opts *o = sh->o;
	unsigned long long hs = 0, res = 0;
	int tls = 0;

	for (int i = 0; i < o->concurrency; i++) {
		hs += w[i].handshakes;
		res += w[i].resumptions;
		tls = w[i].tls != 0 ? w[i].tls : tls;
	}
	printf("concurrency=%d connections=%s seconds=%.1f ok=%llu failed=%llu rate=%.0f/s "
	    "p50=%.2fms p90=%.2fms p99=%.2fms max=%.2fms csrs=%zu %s\n",
	    o->concurrency, o->new_connections ? "new" : "keep-alive", elapsed, sh->ok, sh->failed,
	    (double)sh->ok / elapsed, pct(sh, 0.50), pct(sh, 0.90), pct(sh, 0.99), pct(sh, 1.0),
	    sh->csrs.n, o->csr_path != NULL ? "fixed" : sh->ok + sh->failed > sh->csrs.n ? "cycled" :
	    "distinct");
	printf("  tls=%s handshakes=%llu resumed=%llu%s\n",
	    tls != 0 ? gnutls_protocol_get_name((gnutls_protocol_t)tls) : "?", hs, res,
	    o->no_resume ? " (session cache off)" : "");
	if (cpu_s >= 0 && sh->ok > 0)
		printf("  server cpu=%.2fs per-request=%.0fus children=%.0fus\n", cpu_s,
		    cpu_s * 1e6 / (double)sh->ok, kids_s * 1e6 / (double)sh->ok);
	if (sh->failed)
		fprintf(stderr, "loadgen: %llu failed requests (first status %ld)\n", sh->failed,
		    sh->first_bad_status);
}

static void
teardown(struct shared *sh, struct worker *w)
{
	for (int i = 0; w != NULL && i < sh->o->concurrency; i++)
		free(w[i].body);
	free(w);
	curl_share_cleanup(sh->share);
	free(sh->lat);
	csrs_free(&sh->csrs);
	for (size_t i = 0; i < sh->ntokens; i++)
		free(sh->tokens[i]);
	free(sh->tokens);
	curl_global_cleanup();
}

int
main(int argc, char **argv)
{
	struct opts o;
	struct shared sh = { 0 };
	struct worker *w = NULL;
	pthread_t th[MAX_THREADS];
	double t0, elapsed, cpu0 = -1, cpu1 = -1, kids0 = 0, kids1 = 0;

	if (parse(argc, argv, &o) != 0) {
		fprintf(stderr, "usage: loadgen --url https://127.0.0.1:PORT --cacert F --cert F --key F\n"
		    "       [--csr F | --fresh 1-%d] [--key-type p256|p384|ed25519|rsa2048]\n"
		    "       [--concurrency 1-256] [--seconds 1-600] [--new-connections] [--no-resume]\n"
		    "       [--tls-max 1.2|1.3] [--server-pid PID] [--path /v1/renew] [--csr-field csr]\n"
		    "       [--ok-status 201] [--tokens FILE]\n", MAX_FRESH);
		return 2;
	}
	sh.o = &o;
	if (setup(&sh) != 0 || (w = calloc((size_t)o.concurrency, sizeof(*w))) == NULL) {
		fprintf(stderr, "loadgen: set-up failed\n");
		teardown(&sh, w);
		return 1;
	}
	for (int i = 0; i < o.concurrency; i++) {
		w[i].sh = &sh;
		w[i].body_max = sh.csrs.longest + TOKEN_MAX + 128;
		if ((w[i].body = malloc(w[i].body_max)) == NULL) {
			fprintf(stderr, "loadgen: set-up failed\n");
			teardown(&sh, w);
			return 1;
		}
	}
	if (o.server_pid > 0)
		cpu0 = server_cpu_s(o.server_pid, &kids0);
	t0 = now_s();
	sh.deadline = t0 + o.seconds;
	for (int i = 0; i < o.concurrency; i++)
		pthread_create(&th[i], NULL, worker_run, &w[i]);
	for (int i = 0; i < o.concurrency; i++)
		pthread_join(th[i], NULL);
	elapsed = now_s() - t0;
	if (o.server_pid > 0)
		cpu1 = server_cpu_s(o.server_pid, &kids1);
	qsort(sh.lat, sh.nlat, sizeof(double), cmp_double);
	report(&sh, w, elapsed, cpu0 >= 0 && cpu1 >= 0 ? cpu1 - cpu0 : -1, kids1 - kids0);
	teardown(&sh, w);
	return sh.failed ? 1 : 0;
}
