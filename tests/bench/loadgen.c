/*
 * loadgen — a bounded load generator for meshcad's renewal path.
 *
 * N threads, each with its own keep-alive HTTPS connection (libcurl, the
 * workload's client certificate), POST /v1/renew with one CSR for a fixed
 * time, and report requests per second and latency percentiles.  Renewal
 * is the steady-state load of a mesh (every workload, every 2/3 of a
 * lifetime) and, unlike enrollment, can be repeated with one credential.
 * Only loopback URLs are accepted.  Bounded in time and in requests.
 *
 *   loadgen --url https://127.0.0.1:PORT --cacert root.crt --cert fullchain.pem \
 *       --key key.pem --csr csr.pem [--concurrency 8] [--seconds 10] [--new-connections] \
 *       [--server-pid PID]
 *
 * With --server-pid, the server's CPU time over the run (utime + stime
 * from /proc) is reported per successful request.  --path, --csr-field and
 * --ok-status point it at another signer for a side-by-side run (cfssl:
 * --path /api/v1/cfssl/sign --csr-field certificate_request --ok-status 200).
 *
 * Enrollment: --tokens FILE (one enrollment token a line, minted before
 * the run) with --path /v1/enroll and no --cert/--key: each request
 * presents the next unused token with the CSR; the run ends at the
 * deadline or when the tokens run out.
 */
#include <curl/curl.h>
#include <getopt.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#define MAX_THREADS	256
#define MAX_SAMPLES	(1u << 20)	/* latency samples kept per run */
#define MAX_REQUESTS	5000000ULL	/* hard bound on one run */

struct opts {
	const char	*url, *cacert, *cert, *key, *csr_path;
	const char	*path;		/* default /v1/renew */
	const char	*csr_field;	/* JSON member carrying the CSR, default "csr" */
	long		 ok_status;	/* the success status, default 201 */
	int		 concurrency;
	int		 seconds;
	int		 new_connections;
	long		 server_pid;	/* 0: do not report the server's CPU */
	const char	*tokens_path;	/* enrollment: one token a line */
};

struct shared {
	const struct opts	*o;
	char			*body;
	char			*csr;		/* with tokens: the CSR, for each body */
	char			**tokens;
	size_t			 ntokens, next_token;
	double			 deadline;
	pthread_mutex_t		 lock;
	double			*lat;		/* milliseconds */
	size_t			 nlat;
	unsigned long long	 ok, failed;
	long			 first_bad_status;
};

static double
now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static size_t
discard(char *p, size_t size, size_t n, void *u)
{
	(void)p;
	(void)u;
	return size * n;
}

static CURL *
handle_new(const struct shared *sh, struct curl_slist *hdrs)
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
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
	curl_easy_setopt(h, CURLOPT_POSTFIELDS, sh->body);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, discard);
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

/* With --tokens: the next body {token, csr}, or NULL when none is left. */
static char *
token_body(struct shared *sh)
{
	const char *tok = NULL;
	json_t *o;
	char *body = NULL;

	pthread_mutex_lock(&sh->lock);
	if (sh->next_token < sh->ntokens)
		tok = sh->tokens[sh->next_token++];
	pthread_mutex_unlock(&sh->lock);
	if (tok != NULL && (o = json_pack("{s:s,s:s}", "token", tok, sh->o->csr_field, sh->csr)) != NULL) {
		body = json_dumps(o, JSON_COMPACT);
		json_decref(o);
	}
	return body;
}

static void *
worker(void *arg)
{
	struct shared *sh = arg;
	struct curl_slist *hdrs = curl_slist_append(NULL, "Content-Type: application/json");
	CURL *h = handle_new(sh, hdrs);
	char *body = NULL;

	while (h != NULL && now_s() < sh->deadline && sh->ok + sh->failed < MAX_REQUESTS) {
		double t0;
		long status = 0;

		if (sh->tokens != NULL) {
			free(body);
			if ((body = token_body(sh)) == NULL)
				break;
			curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
		}
		t0 = now_s();

		if (curl_easy_perform(h) == CURLE_OK)
			curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
		record(sh, (now_s() - t0) * 1000.0, status);
	}
	curl_easy_cleanup(h);
	curl_slist_free_all(hdrs);
	free(body);
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

/* One token a line; blank lines skipped.  At most MAX_REQUESTS. */
static int
read_tokens(const char *path, struct shared *sh)
{
	char line[512];
	size_t cap = 0;
	FILE *f = fopen(path, "r");

	if (f == NULL)
		return -1;
	while (fgets(line, sizeof(line), f) != NULL && sh->ntokens < MAX_REQUESTS) {
		line[strcspn(line, "\r\n")] = '\0';
		if (line[0] == '\0')
			continue;
		if (sh->ntokens == cap) {
			char **t = realloc(sh->tokens, (cap = cap ? cap * 2 : 1024) * sizeof(*t));

			if (t == NULL)
				break;
			sh->tokens = t;
		}
		if ((sh->tokens[sh->ntokens] = strdup(line)) == NULL)
			break;
		sh->ntokens++;
	}
	fclose(f);
	return sh->ntokens > 0 ? 0 : -1;
}

static char *
read_file(const char *path)
{
	char *text = NULL;
	FILE *f = fopen(path, "r");
	size_t n;

	if (f == NULL || (text = calloc(1, 65536)) == NULL)
		goto out;
	n = fread(text, 1, 65535, f);
	text[n] = '\0';
out:
	if (f != NULL)
		fclose(f);
	return text;
}

static char *
read_body(const char *csr_path, const char *field)
{
	json_error_t err;
	json_t *o;
	char *csr = NULL, *body = NULL;
	FILE *f = fopen(csr_path, "r");
	size_t n;

	if (f == NULL || (csr = calloc(1, 65536)) == NULL)
		goto out;
	n = fread(csr, 1, 65535, f);
	csr[n] = '\0';
	if ((o = json_pack_ex(&err, 0, "{s:s}", field, csr)) != NULL) {
		body = json_dumps(o, JSON_COMPACT);
		json_decref(o);
	}
out:
	if (f != NULL)
		fclose(f);
	free(csr);
	return body;
}

static int
parse(int argc, char **argv, struct opts *o)
{
	static const struct option lo[] = {
		{ "url", required_argument, NULL, 'u' }, { "cacert", required_argument, NULL, 'a' },
		{ "cert", required_argument, NULL, 'c' }, { "key", required_argument, NULL, 'k' },
		{ "csr", required_argument, NULL, 'r' }, { "concurrency", required_argument, NULL, 'n' },
		{ "seconds", required_argument, NULL, 's' },
		{ "new-connections", no_argument, NULL, 'N' },
		{ "server-pid", required_argument, NULL, 'p' }, { "path", required_argument, NULL, 'P' },
		{ "csr-field", required_argument, NULL, 'f' }, { "ok-status", required_argument, NULL, 'o' },
		{ "tokens", required_argument, NULL, 't' },
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
		case 'p': o->server_pid = strtol(optarg, NULL, 10); break;
		case 'P': o->path = optarg; break;
		case 'f': o->csr_field = optarg; break;
		case 'o': o->ok_status = strtol(optarg, NULL, 10); break;
		case 't': o->tokens_path = optarg; break;
		default: return -1;
		}
	}
	if (!o->url || !o->cacert || !o->csr_path || (o->cert == NULL) != (o->key == NULL) ||
	    (o->cert == NULL && o->tokens_path == NULL) ||
	    o->concurrency < 1 || o->concurrency > MAX_THREADS || o->seconds < 1 || o->seconds > 600 ||
	    o->path[0] != '/' || strlen(o->path) > 200)
		return -1;
	/* Load is only ever sent to this machine. */
	if (strncmp(o->url, "https://127.0.0.1:", 18) != 0 && strncmp(o->url, "https://[::1]:", 14) != 0)
		return -1;
	return 0;
}

int
main(int argc, char **argv)
{
	struct opts o;
	struct shared sh = { 0 };
	pthread_t th[MAX_THREADS];
	double t0, elapsed, cpu0 = -1, cpu1 = -1;

	if (parse(argc, argv, &o) != 0) {
		fprintf(stderr, "usage: loadgen --url https://127.0.0.1:PORT --cacert F --cert F --key F "
		    "--csr F [--concurrency 1-256] [--seconds 1-600] [--new-connections] [--server-pid PID]\n"
		    "       [--path /v1/renew] [--csr-field csr] [--ok-status 201] [--tokens FILE]\n");
		return 2;
	}
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != 0 || (sh.body = read_body(o.csr_path, o.csr_field)) == NULL ||
	    (sh.lat = malloc(sizeof(double) * MAX_SAMPLES)) == NULL ||
	    (o.tokens_path != NULL && ((sh.csr = read_file(o.csr_path)) == NULL ||
	    read_tokens(o.tokens_path, &sh) != 0))) {
		fprintf(stderr, "loadgen: set-up failed\n");
		return 1;
	}
	sh.o = &o;
	pthread_mutex_init(&sh.lock, NULL);
	if (o.server_pid > 0)
		cpu0 = proc_cpu_s(o.server_pid);
	t0 = now_s();
	sh.deadline = t0 + o.seconds;
	for (int i = 0; i < o.concurrency; i++)
		pthread_create(&th[i], NULL, worker, &sh);
	for (int i = 0; i < o.concurrency; i++)
		pthread_join(th[i], NULL);
	elapsed = now_s() - t0;
	if (o.server_pid > 0)
		cpu1 = proc_cpu_s(o.server_pid);
	qsort(sh.lat, sh.nlat, sizeof(double), cmp_double);
	printf("concurrency=%d connections=%s seconds=%.1f ok=%llu failed=%llu rate=%.0f/s "
	    "p50=%.2fms p90=%.2fms p99=%.2fms max=%.2fms\n",
	    o.concurrency, o.new_connections ? "new" : "keep-alive", elapsed, sh.ok, sh.failed,
	    (double)sh.ok / elapsed, pct(&sh, 0.50), pct(&sh, 0.90), pct(&sh, 0.99), pct(&sh, 1.0));
	if (cpu0 >= 0 && cpu1 >= 0 && sh.ok > 0)
		printf("  server cpu=%.2fs per-request=%.0fus\n", cpu1 - cpu0, (cpu1 - cpu0) * 1e6 / (double)sh.ok);
	if (sh.failed)
		fprintf(stderr, "loadgen: %llu failed requests (first status %ld)\n", sh.failed, sh.first_bad_status);
	free(sh.lat);
	free(sh.body);
	free(sh.csr);
	for (size_t i = 0; i < sh.ntokens; i++)
		free(sh.tokens[i]);
	free(sh.tokens);
	curl_global_cleanup();
	return sh.failed ? 1 : 0;
}
