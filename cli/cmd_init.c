/*
 * `meshca init`: creates a CA in a state directory, locally, on the CA
 * host: the root (key encrypted with a passphrase; meshcad never loads
 * it), the intermediate meshcad signs with, meshcad's own TLS
 * credential, the first admin credential, the database recording the
 * latter two, and meshca.conf, written last so that a half-made CA is
 * never mistaken for a complete one.  On failure, what init created is
 * removed.
 */
#include "cli/cli.h"

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ca/ca.h"
#include "ca/common/fileio.h"
#include "ca/common/timefmt.h"
#include "db/db.h"

#define INIT_ADMIN_NAME_MAX	63

enum init_file {
	F_ROOT_KEY, F_ROOT_CRT, F_INT_KEY, F_INT_CRT, F_SRV_KEY, F_SRV_CRT,
	F_ADM_KEY, F_ADM_CRT, F_DB, F_CONF, F_MAX
};

static const struct {
	const char	*name;
	const char	*what;
} init_files[F_MAX] = {
	[F_ROOT_KEY] = { "root.key",		"root key (encrypted; keep it offline)" },
	[F_ROOT_CRT] = { "root.crt",		"root certificate (the trust anchor)" },
	[F_INT_KEY]  = { "intermediate.key",	"intermediate key (meshcad signs with it)" },
	[F_INT_CRT]  = { "intermediate.crt",	"intermediate certificate" },
	[F_SRV_KEY]  = { "server.key",		"meshcad TLS key" },
	[F_SRV_CRT]  = { "server.crt",		"meshcad TLS certificate chain" },
	[F_ADM_KEY]  = { "admin.key",		"admin client key" },
	[F_ADM_CRT]  = { "admin.crt",		"admin client certificate chain" },
	[F_DB]	     = { "meshca.db",		"database" },
	[F_CONF]     = { MCA_CONFIG_FILE,	"configuration" },
};

struct init_opts {
	const char		*state_dir;
	const char		*trust_domain;
	enum ca_key_type	 root_type;
	enum ca_key_type	 int_type;
	int64_t			 root_ttl;
	int64_t			 int_ttl;
	int64_t			 server_ttl;
	int64_t			 admin_ttl;
	const char		*passphrase_file;
	const char		*int_key_uri;	/* --intermediate-key pkcs11:... */
	const char		*pin_file;	/* --pin-file: the token's PIN */
	const char		*listen;
	struct ca_sans		 server_names;
	const char		*admin_name;
	bool			 name_constraints;	/* --name-constraints */
	bool			 no_uri_constraint;
	struct ca_sans		 permitted;		/* --permitted-dns, --permitted-ip */
};

struct init_state {
	char			 dir[PATH_MAX];
	char			 path[F_MAX][PATH_MAX];
	bool			 created[F_MAX];
	bool			 dir_created;
	char			 url[300];
	char			 fingerprint[CA_FINGERPRINT_HEX_LEN];
	struct mca_buf		 pass;
	struct mca_buf		 pin;		/* the token's PIN (secret) */
	char			 pin_path[PATH_MAX];
	struct ca_signer	*signer;
	struct db		*db;
	int64_t			 now;
};

/* A leaf credential init makes: meshcad's server identity or an admin. */
struct init_leaf {
	enum init_file		 key_file;
	enum init_file		 crt_file;
	enum db_cert_kind	 kind;
	char			 spiffe_id[CA_MAX_SPIFFE_ID_LEN + 1];
	const char		*cn;
	struct ca_sans		 sans;
	int64_t			 ttl;
};

enum {
	O_STATE_DIR = 1, O_TRUST_DOMAIN, O_ROOT_KEY_TYPE, O_INT_KEY_TYPE, O_ROOT_TTL,
	O_INT_TTL, O_PASSFILE, O_LISTEN, O_SERVER_NAME, O_SERVER_TTL, O_ADMIN_NAME,
	O_ADMIN_TTL, O_NAME_CONSTRAINTS, O_PERMITTED_DNS, O_PERMITTED_IP, O_NO_URI_NC,
	O_INT_KEY, O_PIN_FILE
};

static const struct option init_longopts[] = {
	{ "state-dir",		 required_argument, NULL, O_STATE_DIR },
	{ "trust-domain",	 required_argument, NULL, O_TRUST_DOMAIN },
	{ "root-key-type",	 required_argument, NULL, O_ROOT_KEY_TYPE },
	{ "intermediate-key-type", required_argument, NULL, O_INT_KEY_TYPE },
	{ "root-ttl",		 required_argument, NULL, O_ROOT_TTL },
	{ "intermediate-ttl",	 required_argument, NULL, O_INT_TTL },
	{ "intermediate-key",	 required_argument, NULL, O_INT_KEY },
	{ "pin-file",		 required_argument, NULL, O_PIN_FILE },
	{ "passphrase-file",	 required_argument, NULL, O_PASSFILE },
	{ "listen",		 required_argument, NULL, O_LISTEN },
	{ "server-name",	 required_argument, NULL, O_SERVER_NAME },
	{ "server-ttl",		 required_argument, NULL, O_SERVER_TTL },
	{ "admin-name",		 required_argument, NULL, O_ADMIN_NAME },
	{ "admin-ttl",		 required_argument, NULL, O_ADMIN_TTL },
	{ "name-constraints",	 no_argument,	    NULL, O_NAME_CONSTRAINTS },
	{ "permitted-dns",	 required_argument, NULL, O_PERMITTED_DNS },
	{ "permitted-ip",	 required_argument, NULL, O_PERMITTED_IP },
	{ "no-uri-constraint",	 no_argument,	    NULL, O_NO_URI_NC },
	CLI_GLOBAL_LONGOPTS,
	{ NULL, 0, NULL, 0 }
};

static void
init_usage(FILE *fp)
{
	fprintf(fp,
	    "usage: %s init [options]\n\n"
	    "Creates a new CA in a state directory, locally on the CA host (no network).\n\n"
	    "Options:\n"
	    "  --state-dir DIR            where to create it (default $MESHCA_STATE_DIR,\n"
	    "                             else ~/.local/state/meshca)\n"
	    "  --trust-domain TD          SPIFFE trust domain (default mesh.internal)\n"
	    "  --root-key-type T          ecdsa-p256|ecdsa-p384|ed25519|rsa-2048|rsa-3072|rsa-4096\n"
	    "                             (default ecdsa-p384)\n"
	    "  --intermediate-key-type T  (default ecdsa-p256)\n"
	    "  --root-ttl D               root lifetime (default 87600h, 10 years)\n"
	    "  --intermediate-ttl D       intermediate lifetime (default 43800h, 5 years)\n"
	    "  --intermediate-key URI     generate the intermediate key inside a PKCS#11\n"
	    "                             token, pkcs11:token=T;object=LABEL (RFC 7512),\n"
	    "                             not extractable; meshcad then signs there\n"
	    "  --pin-file F               the token's user PIN, first line of F (needed\n"
	    "                             with --intermediate-key; meshcad reads it too)\n"
	    "  --passphrase-file F        root key passphrase, first line of F (else\n"
	    "                             $MESHCA_ROOT_PASSPHRASE, else asked on the terminal);\n"
	    "                             at least %d bytes\n"
	    "  --listen ADDR:PORT         meshcad address (default 127.0.0.1:8443)\n"
	    "  --server-name NAME         extra DNS name for meshcad's certificate (repeatable)\n"
	    "  --server-ttl D             meshcad certificate lifetime (default 90d)\n"
	    "  --admin-name NAME          first admin's name (default admin)\n"
	    "  --admin-ttl D              admin certificate lifetime (default 90d)\n"
	    "  --name-constraints         put X.509 name constraints (RFC 5280 4.2.1.10,\n"
	    "                             critical) on the intermediate: URIs in the trust\n"
	    "                             domain, DNS names under --permitted-dns, addresses\n"
	    "                             in --permitted-ip (meshcad's own names are added)\n"
	    "  --permitted-dns SUFFIX     a DNS suffix workloads may hold (repeatable)\n"
	    "  --permitted-ip CIDR        an address range workloads may hold (repeatable;\n"
	    "                             none: IP addresses are not constrained)\n"
	    "  --no-uri-constraint        leave the URI (trust domain) subtree out\n\n"
	    "Refuses to run where a CA already exists.\n\n%s",
	    CLI_PROG, CLI_PASSPHRASE_MIN, cli_global_usage);
}

static enum mca_err listen_apply(const char *, struct ca_sans *, char *, size_t) MCA_WUR;

/* ---- options -------------------------------------------------------- */

static int
opt_duration(const char *flag, const char *arg, int64_t *out)
{
	return cli_opt_duration("init", flag, arg, out);
}

static int
opt_key_type(const char *flag, const char *arg, enum ca_key_type *out)
{
	if (ca_key_type_parse(arg, out) != MCA_OK)
		return cli_usage_error("init", "--%s: unknown key type '%s'", flag, arg);
	return CLI_CONTINUE;
}

static int
init_opt(struct cli_ctx *ctx, struct init_opts *o, int c, const char *arg)
{
	switch (c) {
	case O_STATE_DIR:	o->state_dir = arg; break;
	case O_TRUST_DOMAIN:	o->trust_domain = arg; break;
	case O_PASSFILE:	o->passphrase_file = arg; break;
	case O_INT_KEY:		o->int_key_uri = arg; break;
	case O_PIN_FILE:	o->pin_file = arg; break;
	case O_LISTEN:		o->listen = arg; break;
	case O_ADMIN_NAME:	o->admin_name = arg; break;
	case O_ROOT_KEY_TYPE:	return opt_key_type("root-key-type", arg, &o->root_type);
	case O_INT_KEY_TYPE:	return opt_key_type("intermediate-key-type", arg, &o->int_type);
	case O_ROOT_TTL:	return opt_duration("root-ttl", arg, &o->root_ttl);
	case O_INT_TTL:		return opt_duration("intermediate-ttl", arg, &o->int_ttl);
	case O_SERVER_TTL:	return opt_duration("server-ttl", arg, &o->server_ttl);
	case O_ADMIN_TTL:	return opt_duration("admin-ttl", arg, &o->admin_ttl);
	case O_SERVER_NAME:
		if (ca_sans_add_dns(&o->server_names, arg, false) != MCA_OK)
			return cli_usage_error("init", "--server-name: %s", mca_err_detail());
		break;
	case O_NAME_CONSTRAINTS: o->name_constraints = true; break;
	case O_NO_URI_NC:	o->no_uri_constraint = true; break;
	case O_PERMITTED_DNS:
		if (ca_sans_add_dns(&o->permitted, arg, false) != MCA_OK)
			return cli_usage_error("init", "--permitted-dns: %s (RFC 5280 4.2.1.10: "
			    "a dNSName subtree is a host name, no wildcard)", mca_err_detail());
		break;
	case O_PERMITTED_IP:
		if (ca_sans_add_ip(&o->permitted, arg, true) != MCA_OK)
			return cli_usage_error("init", "--permitted-ip: %s", mca_err_detail());
		break;
	default:
		return cli_opt_common(ctx, c, arg, init_usage);
	}
	return CLI_CONTINUE;
}

static bool
admin_name_ok(const char *n)
{
	size_t len = strlen(n);

	if (len == 0 || len > INIT_ADMIN_NAME_MAX || strcmp(n, ".") == 0 || strcmp(n, "..") == 0)
		return false;
	return strspn(n, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-") == len;
}

static int
init_check_opts(const struct init_opts *o)
{
	struct ca_sans scratch = { 0 };
	char url[300];
	enum mca_err rc;

	if (ca_trust_domain_check(o->trust_domain) != MCA_OK)
		return cli_usage_error("init", "--trust-domain: %s", mca_err_detail());
	if (!admin_name_ok(o->admin_name))
		return cli_usage_error("init", "--admin-name: '%.80s' must be 1 to %d of "
		    "A-Z a-z 0-9 . _ -", o->admin_name, INIT_ADMIN_NAME_MAX);
	rc = listen_apply(o->listen, &scratch, url, sizeof(url));
	ca_sans_clear(&scratch);
	if (rc != MCA_OK)
		return cli_usage_error("init", "%s", mca_err_detail());
	if (!o->name_constraints && (o->permitted.ndns + o->permitted.nips > 0 ||
	    o->no_uri_constraint))
		return cli_usage_error("init", "--permitted-dns, --permitted-ip and "
		    "--no-uri-constraint go with --name-constraints");
	if (o->int_key_uri != NULL && !ca_key_is_pkcs11_uri(o->int_key_uri))
		return cli_usage_error("init", "--intermediate-key: a pkcs11: URI (RFC 7512), "
		    "not '%.80s'", o->int_key_uri);
	if ((o->int_key_uri != NULL) != (o->pin_file != NULL))
		return cli_usage_error("init", "--intermediate-key and --pin-file go together");
	return CLI_CONTINUE;
}

static int
init_parse(struct cli_ctx *ctx, struct init_opts *o, int argc, char **argv)
{
	int c, ret;

	o->trust_domain = "mesh.internal";
	o->root_type = CA_KEY_ECDSA_P384;
	o->int_type = CA_KEY_ECDSA_P256;
	o->root_ttl = 87600 * 3600LL;
	o->int_ttl = 43800 * 3600LL;
	o->server_ttl = o->admin_ttl = 90 * 86400LL;
	o->listen = "127.0.0.1:8443";
	o->admin_name = "admin";
	cli_getopt_reset();
	while ((c = getopt_long(argc, argv, "h", init_longopts, NULL)) != -1)
		if ((ret = init_opt(ctx, o, c, optarg)) != CLI_CONTINUE)
			return ret;
	if (optind < argc)
		return cli_usage_error("init", "unexpected argument '%.64s'", argv[optind]);
	return init_check_opts(o);
}

/* ---- the listen address --------------------------------------------- */

/* Splits "host:port" or "[v6]:port"; host is copied without brackets. */
static enum mca_err
listen_split(const char *listen, char *host, size_t n, long *port)
{
	const char *colon, *h = listen, *hend;

	if (*listen == '[') {
		h = listen + 1;
		if ((hend = strchr(h, ']')) == NULL || hend[1] != ':')
			goto bad;
		colon = hend + 1;
	} else {
		if ((colon = strrchr(listen, ':')) == NULL || strchr(listen, ':') != colon)
			goto bad;
		hend = colon;
	}
	if (hend == h || (size_t)(hend - h) >= n)
		goto bad;
	memcpy(host, h, (size_t)(hend - h));
	host[hend - h] = '\0';
	if (cli_parse_long(colon + 1, 1, 65535, port) != MCA_OK)
		goto bad;
	return MCA_OK;
bad:
	return mca_err_set(MCA_ERR_INVALID,
	    "--listen: '%.100s' is not ADDR:PORT (e.g. 127.0.0.1:8443, [::1]:8443)", listen);
}

/* Adds the listen host to meshcad's SANs and derives the CLI's URL: an
 * unspecified address (0.0.0.0, ::) is reached on loopback. */
static enum mca_err
listen_apply(const char *listen, struct ca_sans *sans, char *url, size_t n)
{
	char host[256];
	struct ca_ip ip;
	long port;
	enum mca_err rc;
	static const unsigned char zero[16];

	if ((rc = listen_split(listen, host, sizeof(host), &port)) != MCA_OK)
		return rc;
	rc = ca_ip_parse(host, false, &ip);
	mca_err_clear();		/* not an address: maybe a name */
	if (rc == MCA_OK) {
		if (memcmp(ip.addr, zero, ip.len) == 0)
			snprintf(host, sizeof(host), "%s", ip.len == 4 ? "127.0.0.1" : "::1");
		else if ((rc = ca_sans_add_ip(sans, host, false)) != MCA_OK)
			return rc;
		if (strchr(host, ':') != NULL)
			snprintf(url, n, "https://[%s]:%ld", host, port);
		else
			snprintf(url, n, "https://%s:%ld", host, port);
		return MCA_OK;
	}
	if (ca_dns_check(host, false) != MCA_OK)
		return mca_err_set(MCA_ERR_INVALID, "--listen: '%.100s' is neither an IP address "
		    "nor a DNS name", host);
	if ((rc = ca_sans_add_dns(sans, host, false)) != MCA_OK)
		return rc;
	snprintf(url, n, "https://%s:%ld", host, port);
	return MCA_OK;
}

/* ---- the state directory -------------------------------------------- */

static enum mca_err
state_dir_pick(const struct init_opts *o, char *out, size_t n)
{
	const char *d = o->state_dir;
	size_t len;

	if (d == NULL && cli_state_dir_default(out, n) != MCA_OK)
		return mca_err_set(MCA_ERR_CONFIG, "no --state-dir, MESHCA_STATE_DIR or HOME");
	if (d != NULL && snprintf(out, n, "%s", d) >= (int)n)
		return mca_err_set(MCA_ERR_TOOBIG, "state directory path too long");
	/* The paths go into meshca.conf: one line each, blanks trimmed. */
	len = strlen(out);
	if (len == 0 || out[0] == ' ' || out[len - 1] == ' ')
		return mca_err_set(MCA_ERR_INVALID, "bad state directory '%.100s'", out);
	for (size_t i = 0; i < len; i++)
		if ((unsigned char)out[i] < 0x20 || out[i] == 0x7f)
			return mca_err_set(MCA_ERR_INVALID, "state directory has control characters");
	return MCA_OK;
}

static enum mca_err
state_fill_paths(struct init_state *st)
{
	enum mca_err rc;

	for (int i = 0; i < F_MAX; i++)
		if ((rc = mca_path_join(st->path[i], sizeof(st->path[i]), st->dir,
		    init_files[i].name)) != MCA_OK)
			return rc;
	return MCA_OK;
}

/* Refuses a directory that holds any part of a CA. */
static enum mca_err
state_check_fresh(struct init_state *st)
{
	enum mca_err rc;

	if ((rc = state_fill_paths(st)) != MCA_OK)
		return rc;
	for (int i = F_MAX - 1; i >= 0; i--)
		if (mca_file_exists(st->path[i]))
			return mca_err_set(MCA_ERR_STATE_EXISTS, "a CA already exists in %s "
			    "(found %s); refusing to overwrite", st->dir, init_files[i].name);
	return MCA_OK;
}

static enum mca_err
state_make_dir(struct init_state *st)
{
	char real[PATH_MAX];
	struct stat sb;
	enum mca_err rc;

	if (stat(st->dir, &sb) == 0) {
		if (!S_ISDIR(sb.st_mode))
			return mca_err_set(MCA_ERR_IO, "%s is not a directory", st->dir);
	} else {
		if ((rc = mca_mkdir_p(st->dir, 0700)) != MCA_OK)
			return rc;
		st->dir_created = true;
		if (chmod(st->dir, 0700) != 0)	/* whatever the umask */
			return mca_err_set(MCA_ERR_IO, "chmod %s: %s", st->dir, strerror(errno));
	}
	/* meshca.conf holds absolute paths. */
	if (realpath(st->dir, real) == NULL)
		return mca_err_set(MCA_ERR_IO, "%s: %s", st->dir, strerror(errno));
	snprintf(st->dir, sizeof(st->dir), "%s", real);
	return state_fill_paths(st);
}

static void
unlink_quiet(const char *path, const char *suffix)
{
	char p[PATH_MAX + 16];

	if (snprintf(p, sizeof(p), "%s%s", path, suffix) < (int)sizeof(p))
		(void)unlink(p);
}

static void
state_remove(struct init_state *st)
{
	for (int i = 0; i < F_MAX; i++) {
		if (!st->created[i])
			continue;
		unlink_quiet(st->path[i], "");
		if (i == F_DB) {
			unlink_quiet(st->path[i], "-wal");
			unlink_quiet(st->path[i], "-shm");
			unlink_quiet(st->path[i], "-journal");
		}
	}
	if (st->dir_created && rmdir(st->dir) != 0)
		cli_warn("could not remove %s: %s", st->dir, strerror(errno));
}

/* ---- the CA itself -------------------------------------------------- */

static enum mca_err
write_cert(struct init_state *st, enum init_file f, const struct mca_buf *pem,
    const struct mca_buf *chain)
{
	struct mca_buf b = { 0 };
	enum mca_err rc;

	if ((rc = mca_buf_append(&b, pem->data, pem->len)) == MCA_OK &&
	    (chain == NULL || (rc = mca_buf_append(&b, chain->data, chain->len)) == MCA_OK)) {
		st->created[f] = true;
		rc = mca_file_write_atomic(st->path[f], b.data, b.len, 0644);
	}
	mca_buf_free(&b);
	return rc;
}

static enum mca_err
save_key(struct init_state *st, enum init_file f, const struct ca_key *k, const char *pass)
{
	st->created[f] = true;
	return ca_key_save(k, st->path[f], pass);
}

/* The permitted subtrees: the operator's, plus meshcad's own names so
 * that its server certificate verifies under them (its addresses only
 * when IP addresses are constrained at all). */
static enum mca_err
nc_permitted(const struct init_opts *o, struct ca_sans *perm)
{
	struct ca_sans srv = { 0 };
	char text[64], url[300];
	bool ips = o->permitted.nips > 0;
	enum mca_err rc;

	if ((rc = ca_sans_add_dns(&srv, "localhost", false)) != MCA_OK ||
	    (rc = ca_sans_add_ip(&srv, "127.0.0.1", false)) != MCA_OK ||
	    (rc = ca_sans_add_ip(&srv, "::1", false)) != MCA_OK ||
	    (rc = listen_apply(o->listen, &srv, url, sizeof(url))) != MCA_OK)
		goto out;
	for (size_t i = 0; i < o->server_names.ndns && rc == MCA_OK; i++)
		rc = ca_sans_add_dns(&srv, o->server_names.dns[i], false);
	for (size_t i = 0; i < o->permitted.ndns && rc == MCA_OK; i++)
		rc = ca_sans_add_dns(perm, o->permitted.dns[i], false);
	for (size_t i = 0; i < srv.ndns && rc == MCA_OK; i++)
		rc = ca_sans_add_dns(perm, srv.dns[i], false);
	for (size_t i = 0; i < o->permitted.nips + (ips ? srv.nips : 0) && rc == MCA_OK; i++) {
		ca_ip_format(i < o->permitted.nips ? &o->permitted.ips[i] :
		    &srv.ips[i - o->permitted.nips], text);
		rc = ca_sans_add_ip(perm, text, true);
	}
out:
	ca_sans_clear(&srv);
	return rc;
}

static enum mca_err
make_root_and_intermediate(struct init_state *st, const struct init_opts *o)
{
	struct ca_key *rkey = NULL, *ikey = NULL;
	struct ca_cert *root = NULL, *inter = NULL;
	struct ca_sans perm = { 0 };
	struct ca_name_constraints nc = { NULL, NULL };
	const char *pin = o->int_key_uri != NULL ? (const char *)st->pin.data : NULL;
	enum mca_err rc;

	if (o->name_constraints) {
		nc.uri_domain = o->no_uri_constraint ? NULL : o->trust_domain;
		nc.permitted = &perm;
		if ((rc = nc_permitted(o, &perm)) != MCA_OK)
			goto out;
	}
	if ((rc = ca_key_generate(o->root_type, &rkey)) != MCA_OK ||
	    (rc = ca_root_create(rkey, o->trust_domain, st->now, o->root_ttl, &root)) != MCA_OK ||
	    (rc = save_key(st, F_ROOT_KEY, rkey, (const char *)st->pass.data)) != MCA_OK ||
	    (rc = write_cert(st, F_ROOT_CRT, ca_cert_pem(root), NULL)) != MCA_OK)
		goto out;
	mca_buf_free(&st->pass);		/* not needed any more */
	if ((rc = o->int_key_uri != NULL ?
	    ca_key_generate_pkcs11(o->int_type, o->int_key_uri, pin, &ikey) :
	    ca_key_generate(o->int_type, &ikey)) != MCA_OK ||
	    (rc = ca_intermediate_create(root, rkey, ikey, o->trust_domain, st->now,
	    o->int_ttl, o->name_constraints ? &nc : NULL, &inter)) != MCA_OK ||
	    (o->int_key_uri == NULL && (rc = save_key(st, F_INT_KEY, ikey, NULL)) != MCA_OK) ||
	    (rc = write_cert(st, F_INT_CRT, ca_cert_pem(inter), NULL)) != MCA_OK)
		goto out;
	ca_cert_fingerprint(root, st->fingerprint);
	/* Reload from disk (or the token): what meshcad will load is what we sign with. */
	rc = ca_signer_open(st->path[F_INT_CRT], st->path[F_INT_KEY], pin, st->path[F_ROOT_CRT],
	    &st->signer);
out:
	ca_sans_clear(&perm);
	ca_cert_free(inter);
	ca_cert_free(root);
	ca_key_free(ikey);
	ca_key_free(rkey);
	return rc;
}

/* Inserts c with its audit entry: actor "meshca init", "cert.issue". */
static enum mca_err
record_insert(struct init_state *st, const struct db_cert *c)
{
	struct db_audit a = { "meshca init", "cert.issue", c->serial, true, NULL };
	json_t *o = json_pack("{s:s, s:s}", "kind", db_cert_kind_name(c->kind),
	    "spiffe_id", c->spiffe_id);
	char *detail = o != NULL ? json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
	enum mca_err rc;

	json_decref(o);
	if (detail == NULL)
		return MCA_ERR_NOMEM;
	a.detail = detail;
	rc = db_cert_insert(st->db, c, st->now, &a);
	free(detail);
	return rc;
}

/* Records an issued certificate so that meshcad knows it (an admin is
 * accepted only while its record is active). */
static enum mca_err
record_leaf(struct init_state *st, const struct init_leaf *l, const struct ca_issued *is)
{
	char ipbuf[CA_MAX_SANS][64];
	char *ips[CA_MAX_SANS];
	struct db_cert c;

	memset(&c, 0, sizeof(c));
	for (size_t i = 0; i < l->sans.nips && i < CA_MAX_SANS; i++) {
		ca_ip_format(&l->sans.ips[i], ipbuf[i]);
		ips[i] = ipbuf[i];
	}
	c.serial = (char *)is->serial;
	c.service_id = 0;
	c.kind = l->kind;
	c.spiffe_id = (char *)l->spiffe_id;
	c.dns_names = l->sans.dns;
	c.ndns = l->sans.ndns;
	c.ip_addresses = l->sans.nips > 0 ? ips : NULL;
	c.nips = l->sans.nips < CA_MAX_SANS ? l->sans.nips : CA_MAX_SANS;
	c.not_before = is->not_before;
	c.not_after = is->not_after;
	c.der = is->der.data;
	c.der_len = is->der.len;
	c.status = DB_CERT_ACTIVE;
	return record_insert(st, &c);
}

/* A key made here, a CSR for it checked as meshcad would, a certificate
 * from the intermediate; then the files and the database record. */
static enum mca_err
make_leaf(struct init_state *st, const struct init_leaf *l)
{
	struct ca_key *key = NULL;
	struct ca_csr *csr = NULL;
	struct mca_buf csr_pem = { 0 };
	struct ca_issued is;
	struct ca_leaf_req req;
	enum mca_err rc;

	memset(&is, 0, sizeof(is));
	memset(&req, 0, sizeof(req));
	req.spiffe_id = l->spiffe_id;
	req.common_name = l->cn;
	req.sans = &l->sans;
	req.ttl = l->ttl;
	req.now = st->now;
	if ((rc = ca_key_generate(CA_KEY_ECDSA_P256, &key)) != MCA_OK ||
	    (rc = ca_csr_create(key, l->cn, &l->sans, &csr_pem)) != MCA_OK ||
	    (rc = ca_csr_parse(csr_pem.data, csr_pem.len, &csr)) != MCA_OK ||
	    (rc = ca_issue_leaf(st->signer, csr, &req, &is)) != MCA_OK ||
	    (rc = save_key(st, l->key_file, key, NULL)) != MCA_OK ||
	    (rc = write_cert(st, l->crt_file, &is.pem, ca_signer_chain_pem(st->signer))) != MCA_OK ||
	    (rc = record_leaf(st, l, &is)) != MCA_OK)
		goto out;
out:
	ca_issued_clear(&is);
	ca_csr_free(csr);
	mca_buf_free(&csr_pem);
	ca_key_free(key);
	return rc;
}

static enum mca_err
make_server(struct init_state *st, const struct init_opts *o)
{
	struct init_leaf l;
	enum mca_err rc;

	memset(&l, 0, sizeof(l));
	l.key_file = F_SRV_KEY;
	l.crt_file = F_SRV_CRT;
	l.kind = DB_CERT_SERVER;
	l.cn = "meshcad";
	l.ttl = o->server_ttl;
	snprintf(l.spiffe_id, sizeof(l.spiffe_id), "spiffe://%s/meshca/server", o->trust_domain);
	if ((rc = ca_sans_add_dns(&l.sans, "localhost", false)) != MCA_OK)
		goto out;
	for (size_t i = 0; i < o->server_names.ndns; i++)
		if ((rc = ca_sans_add_dns(&l.sans, o->server_names.dns[i], false)) != MCA_OK)
			goto out;
	if ((rc = ca_sans_add_ip(&l.sans, "127.0.0.1", false)) != MCA_OK ||
	    (rc = ca_sans_add_ip(&l.sans, "::1", false)) != MCA_OK ||
	    (rc = listen_apply(o->listen, &l.sans, st->url, sizeof(st->url))) != MCA_OK)
		goto out;
	rc = make_leaf(st, &l);
out:
	ca_sans_clear(&l.sans);
	return rc;
}

static enum mca_err
make_admin(struct init_state *st, const struct init_opts *o)
{
	struct db_audit audit = { "meshca init", "admin.add", o->admin_name, true,
	    "{\"role\":\"admin\"}" };
	struct init_leaf l;
	enum mca_err rc;

	memset(&l, 0, sizeof(l));
	l.key_file = F_ADM_KEY;
	l.crt_file = F_ADM_CRT;
	l.kind = DB_CERT_ADMIN;
	l.cn = o->admin_name;
	l.ttl = o->admin_ttl;
	snprintf(l.spiffe_id, sizeof(l.spiffe_id), "spiffe://%s/meshca/admin/%s",
	    o->trust_domain, o->admin_name);
	if ((rc = ca_spiffe_id_check(l.spiffe_id, o->trust_domain)) != MCA_OK)
		return rc;
	/* The first operator, role admin: meshcad takes roles from this table. */
	if ((rc = make_leaf(st, &l)) == MCA_OK)
		rc = db_admin_insert(st->db, o->admin_name, DB_ROLE_ADMIN, st->now, NULL, &audit);
	ca_sans_clear(&l.sans);
	return rc;
}

/* ---- meshca.conf ---------------------------------------------------- */

static enum mca_err
conf_line(struct mca_buf *b, const char *key, const char *value)
{
	enum mca_err rc;

	if ((rc = mca_buf_append_str(b, key)) != MCA_OK ||
	    (rc = mca_buf_append_str(b, " = ")) != MCA_OK ||
	    (rc = mca_buf_append_str(b, value)) != MCA_OK)
		return rc;
	return mca_buf_append_str(b, "\n");
}

static enum mca_err
write_config(struct init_state *st, const struct init_opts *o)
{
	struct mca_buf b = { 0 };
	char when[MCA_TIME_LEN];
	enum mca_err rc;

	mca_time_format(st->now, when);
	if ((rc = mca_buf_append_str(&b, "# meshca configuration, written by `meshca init` at ")) ||
	    (rc = mca_buf_append_str(&b, when)) || (rc = mca_buf_append_str(&b, "\n")) ||
	    (rc = conf_line(&b, "trust_domain", o->trust_domain)) ||
	    (rc = conf_line(&b, "listen", o->listen)) ||
	    (rc = conf_line(&b, "database", st->path[F_DB])) ||
	    (rc = conf_line(&b, "root_cert", st->path[F_ROOT_CRT])) ||
	    (rc = conf_line(&b, "intermediate_cert", st->path[F_INT_CRT])) ||
	    (rc = conf_line(&b, "intermediate_key", st->path[F_INT_KEY])) ||
	    (o->int_key_uri != NULL &&
	    (rc = conf_line(&b, "intermediate_key_passphrase_file", st->pin_path))) ||
	    (rc = conf_line(&b, "server_cert", st->path[F_SRV_CRT])) ||
	    (rc = conf_line(&b, "server_key", st->path[F_SRV_KEY])) ||
	    (rc = conf_line(&b, "default_ttl", "24h")) ||
	    (rc = conf_line(&b, "min_ttl", "5m")) ||
	    (rc = conf_line(&b, "token_ttl", "1h")) ||
	    (rc = conf_line(&b, "log_format", "logfmt")) ||
	    (rc = mca_buf_append_str(&b, "# for the meshca CLI\n")) ||
	    (rc = conf_line(&b, "url", st->url)) ||
	    (rc = conf_line(&b, "admin_cert", st->path[F_ADM_CRT])) ||
	    (rc = conf_line(&b, "admin_key", st->path[F_ADM_KEY])))
		goto out;
	/* Exclusive: a concurrent init cannot have its config replaced. */
	if ((rc = mca_file_create_excl(st->path[F_CONF], b.data, b.len, 0600)) == MCA_OK)
		st->created[F_CONF] = true;
out:
	mca_buf_free(&b);
	return rc;
}

/* ---- report --------------------------------------------------------- */

static enum mca_err
print_json(const struct init_state *st, const struct init_opts *o)
{
	json_t *files = json_object(), *v = NULL;
	enum mca_err rc = MCA_ERR_NOMEM;

	if (files == NULL)
		return rc;
	for (int i = 0; i < F_MAX; i++)
		if (json_object_set_new(files, init_files[i].name, json_string(st->path[i])) != 0)
			goto out;
	v = json_pack("{s:s, s:s, s:s, s:s, s:s, s:O}", "trust_domain", o->trust_domain,
	    "state_dir", st->dir, "root_fingerprint", st->fingerprint,
	    "config", st->path[F_CONF], "url", st->url, "files", files);
	if (v != NULL)
		rc = cli_print_json(v);
out:
	json_decref(v);
	json_decref(files);
	return rc;
}

static void
print_text(const struct init_state *st, const struct init_opts *o)
{
	printf("Created a meshca CA for trust domain %s in %s\n\n", o->trust_domain, st->dir);
	printf("Root certificate SHA-256 fingerprint:\n  %s\n\n", st->fingerprint);
	printf("Files:\n");
	for (int i = 0; i < F_MAX; i++)
		printf("  %-*s  %s\n", (int)(strlen(st->dir) + sizeof("/intermediate.key") - 1),
		    st->path[i], init_files[i].what);
	printf("\nNext steps:\n"
	    "  meshcad --config %s\n"
	    "  export MESHCA_CONFIG=%s\n"
	    "  meshca service add payments --dns payments.svc\n"
	    "  meshca token create payments\n"
	    "  # on the workload:\n"
	    "  meshca enroll --url %s --fingerprint %s --token-file FILE\n",
	    st->path[F_CONF], st->path[F_CONF], st->url, st->fingerprint);
}

/* ---- the command ---------------------------------------------------- */

static enum mca_err
init_run(struct init_state *st, const struct init_opts *o)
{
	enum mca_err rc;

	st->now = mca_now();
	if ((rc = state_make_dir(st)) != MCA_OK)
		return rc;
	/* A key in a token: its URI is what meshca.conf names. */
	if (o->int_key_uri != NULL &&
	    snprintf(st->path[F_INT_KEY], PATH_MAX, "%s", o->int_key_uri) >= PATH_MAX)
		return mca_err_set(MCA_ERR_INVALID, "--intermediate-key: URI too long");
	if ((rc = make_root_and_intermediate(st, o)) != MCA_OK)
		return rc;
	st->created[F_DB] = true;
	if ((rc = db_open(st->path[F_DB], &st->db)) != MCA_OK ||
	    (rc = make_server(st, o)) != MCA_OK ||
	    (rc = make_admin(st, o)) != MCA_OK)
		return rc;
	db_close(st->db);
	st->db = NULL;
	return write_config(st, o);
}

/* The token PIN: the first line of the file, whose absolute path goes
 * into meshca.conf as intermediate_key_passphrase_file (meshcad(8)). */
static enum mca_err
pin_load(const char *file, struct init_state *st)
{
	enum mca_err rc;
	size_t n;

	if (realpath(file, st->pin_path) == NULL)
		return mca_err_set(MCA_ERR_IO, "--pin-file %s: %s", file, strerror(errno));
	if ((rc = mca_file_read(st->pin_path, CLI_SECRET_MAX, &st->pin)) != MCA_OK ||
	    (rc = mca_buf_terminate(&st->pin)) != MCA_OK)
		return rc;
	n = strcspn((const char *)st->pin.data, "\r\n");
	mca_wipe(st->pin.data + n, st->pin.len - n);
	st->pin.len = n;
	if (n == 0)
		return mca_err_set(MCA_ERR_PASSPHRASE, "--pin-file %s: empty PIN", file);
	return MCA_OK;
}

/* Checks that need no secret and write nothing (but read the PIN). */
static enum mca_err
init_precheck(struct init_state *st, const struct init_opts *o)
{
	enum mca_err rc;

	if ((rc = state_dir_pick(o, st->dir, sizeof(st->dir))) != MCA_OK ||
	    (rc = state_check_fresh(st)) != MCA_OK)
		return rc;
	return o->int_key_uri != NULL ? pin_load(o->pin_file, st) : MCA_OK;
}

int
cli_cmd_init(struct cli_ctx *ctx, int argc, char **argv)
{
	struct init_opts o;
	struct init_state *st;
	enum mca_err rc;
	int ret;

	memset(&o, 0, sizeof(o));
	if ((st = calloc(1, sizeof(*st))) == NULL)
		return cli_fail("init", MCA_ERR_NOMEM);
	mca_buf_init(&st->pass, CLI_SECRET_MAX + 2, true);
	mca_buf_init(&st->pin, CLI_SECRET_MAX + 2, true);
	if ((ret = init_parse(ctx, &o, argc, argv)) != CLI_CONTINUE)
		goto out;
	if ((rc = init_precheck(st, &o)) != MCA_OK ||
	    (rc = cli_passphrase_get(o.passphrase_file, &st->pass)) != MCA_OK) {
		ret = cli_fail("init", rc);
		goto out;
	}
	if ((rc = init_run(st, &o)) != MCA_OK) {
		ret = cli_fail("init", rc);
		db_close(st->db);
		st->db = NULL;
		state_remove(st);
		goto out;
	}
	ret = CLI_EXIT_OK;
	if (ctx->json)
		ret = print_json(st, &o) == MCA_OK ? CLI_EXIT_OK : cli_fail("init", MCA_ERR_IO);
	else
		print_text(st, &o);
out:
	ca_signer_free(st->signer);
	db_close(st->db);
	mca_buf_free(&st->pass);
	mca_buf_free(&st->pin);
	ca_sans_clear(&o.server_names);
	ca_sans_clear(&o.permitted);
	free(st);
	return ret;
}
