#include "ca/common/config.h"

#include <ctype.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ca/common/buf.h"
#include "ca/common/fileio.h"
#include "ca/common/timefmt.h"

/* Every key either program understands, with what it means. */
static const char *const known_keys[] = {
	"trust_domain",		/* SPIFFE trust domain, fixed at init */
	"listen",		/* meshcad address:port, e.g. 127.0.0.1:8443 */
	"database",		/* SQLite file */
	"root_cert",		/* trust anchor (PEM) */
	"intermediate_cert",	/* issuing CA certificate (PEM) */
	"intermediate_key",	/* issuing CA key (PEM, 0600) */
	"intermediate_key_passphrase_file",	/* meshcad: its passphrase, first line (else systemd credential intermediate-key-passphrase) */
	"server_cert",		/* meshcad's own TLS certificate (PEM) */
	"server_key",		/* meshcad's own TLS key (PEM, 0600) */
	"server_ttl",		/* lifetime of meshcad's rotated server certificates (default: as issued by init) */
	"default_ttl",		/* workload TTL when a service sets none */
	"min_ttl",		/* shortest TTL meshcad issues */
	"admin_max_ttl",	/* longest TTL of a renewed admin certificate (default 90d) */
	"token_ttl",		/* enrollment token lifetime by default */
	"log_format",		/* logfmt | json */
	"log_level",		/* debug | info | warn | error */
	"public_url",		/* base URL relying parties reach meshcad at, for CRL/OCSP/AIA URLs in certificates */
	"crl_validity",		/* CRL thisUpdate..nextUpdate (24h); rebuilt at half of it */
	"ocsp_validity",	/* OCSP response thisUpdate..nextUpdate (1h); reused for half of it */
	"audit_checkpoint_interval",	/* meshcad signs an audit checkpoint this often (5m) when the log moved */
	"metrics_listen",	/* meshcad Prometheus listener, plain HTTP, e.g. 127.0.0.1:9443 (off when unset) */
	"max_connections",	/* meshcad: connections at once (4096) */
	"max_connections_per_ip",	/* meshcad: connections at once from one client address (64) */
	"max_request_body",	/* meshcad: bytes of a request body, 413 beyond (65536) */
	"max_header_bytes",	/* meshcad: per-connection buffer for request line and headers, 431 beyond (16384) */
	"idle_timeout",		/* meshcad: close a connection silent this long (30s) */
	"request_timeout",	/* meshcad: cut a connection whose one request takes this long (60s) */
	"bad_token_burst",	/* meshcad: failed token presentations per address before 429 (10) */
	"bad_token_refill",	/* meshcad: one failed presentation forgiven every this long (6s) */
	"workers",		/* meshcad: threads that issue (enroll, renew); 0 or unset: 32 per CPU, at most 256 */
	"user",			/* meshcad: account to switch to when started as root (default meshca if it exists; root keeps root) */
	"url",			/* CLI: meshcad base URL */
	"admin_cert",		/* CLI: admin client certificate (PEM) */
	"admin_key",		/* CLI: admin client key (PEM, 0600) */
	"output",		/* CLI: text | json */
};

#define NKEYS (sizeof(known_keys) / sizeof(known_keys[0]))

struct mca_config {
	char	*values[NKEYS];
	char	 dir[PATH_MAX];
};

int
mca_config_key_known(const char *key)
{
	for (size_t i = 0; i < NKEYS; i++)
		if (strcmp(key, known_keys[i]) == 0)
			return 1;
	return 0;
}

static int
key_index(const char *key)
{
	for (size_t i = 0; i < NKEYS; i++)
		if (strcmp(key, known_keys[i]) == 0)
			return (int)i;
	return -1;
}

void
mca_config_free(struct mca_config *cfg)
{
	if (cfg == NULL)
		return;
	for (size_t i = 0; i < NKEYS; i++)
		free(cfg->values[i]);
	free(cfg);
}

static char *
trim(char *s, char *end)
{
	while (s < end && isspace((unsigned char)*s))
		s++;
	while (end > s && isspace((unsigned char)end[-1]))
		end--;
	*end = '\0';
	return s;
}

static enum mca_err
parse_line(struct mca_config *cfg, char *line, const char *origin, int lineno)
{
	char *eq, *key, *val;
	int idx;

	line = trim(line, line + strlen(line));
	if (*line == '\0' || *line == '#')
		return MCA_OK;
	if ((eq = strchr(line, '=')) == NULL)
		return mca_err_set(MCA_ERR_CONFIG, "%s:%d: expected 'key = value'", origin, lineno);
	key = trim(line, eq);
	val = trim(eq + 1, eq + 1 + strlen(eq + 1));
	if ((idx = key_index(key)) < 0)
		return mca_err_set(MCA_ERR_CONFIG, "%s:%d: unknown key '%.64s'", origin, lineno, key);
	if (cfg->values[idx] != NULL)
		return mca_err_set(MCA_ERR_CONFIG, "%s:%d: '%s' set twice", origin, lineno, key);
	if (*val == '\0')
		return mca_err_set(MCA_ERR_CONFIG, "%s:%d: '%s' has an empty value", origin, lineno, key);
	if ((cfg->values[idx] = strdup(val)) == NULL)
		return MCA_ERR_NOMEM;
	return MCA_OK;
}

enum mca_err
mca_config_parse(const char *text, size_t len, const char *origin, struct mca_config **out)
{
	struct mca_config *cfg = NULL;
	char *copy = NULL, *line, *save = NULL;
	enum mca_err rc = MCA_ERR_NOMEM;
	int lineno = 0;

	*out = NULL;
	if (len > MCA_CONFIG_MAX_BYTES)
		return mca_err_set(MCA_ERR_TOOBIG, "%s: larger than %d bytes", origin, MCA_CONFIG_MAX_BYTES);
	if (memchr(text, '\0', len) != NULL)
		return mca_err_set(MCA_ERR_CONFIG, "%s: contains a NUL byte", origin);
	if ((cfg = calloc(1, sizeof(*cfg))) == NULL || (copy = strndup(text, len)) == NULL)
		goto out;
	snprintf(cfg->dir, sizeof(cfg->dir), ".");
	/* strtok_r would merge empty lines and so miscount line numbers. */
	for (line = copy; line != NULL; line = save) {
		save = strchr(line, '\n');
		if (save != NULL)
			*save++ = '\0';
		lineno++;
		if ((rc = parse_line(cfg, line, origin, lineno)) != MCA_OK)
			goto out;
	}
	*out = cfg;
	cfg = NULL;
	rc = MCA_OK;
out:
	free(copy);
	mca_config_free(cfg);
	return rc;
}

enum mca_err
mca_config_load(const char *path, struct mca_config **out)
{
	struct mca_buf b;
	char copy[PATH_MAX];
	enum mca_err rc;

	mca_buf_init(&b, MCA_CONFIG_MAX_BYTES, false);
	if ((rc = mca_file_read(path, MCA_CONFIG_MAX_BYTES, &b)) == MCA_OK &&
	    (rc = mca_config_parse((const char *)b.data, b.len, path, out)) == MCA_OK) {
		snprintf(copy, sizeof(copy), "%s", path);
		snprintf((*out)->dir, sizeof((*out)->dir), "%s", dirname(copy));
	}
	mca_buf_free(&b);
	return rc;
}

const char *
mca_config_get(const struct mca_config *cfg, const char *key)
{
	int idx = key_index(key);

	if (cfg == NULL || idx < 0)
		return NULL;
	return cfg->values[idx];
}

const char *
mca_config_dir(const struct mca_config *cfg)
{
	return cfg->dir;
}

enum mca_err
mca_config_duration(const struct mca_config *cfg, const char *key, int64_t def, int64_t *out)
{
	const char *v = mca_config_get(cfg, key);

	if (v == NULL) {
		*out = def;
		return MCA_OK;
	}
	if (mca_duration_parse(v, out) != MCA_OK)
		return mca_err_set(MCA_ERR_CONFIG, "%s: %s", key, mca_err_detail());
	return MCA_OK;
}
