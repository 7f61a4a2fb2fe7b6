/*
 * What meshcad keeps for relying parties that check revocation: the
 * current CRL and a cache of signed OCSP responses.
 *
 * The CRL lives in memory (DER and PEM) as a reference-counted snapshot
 * that a rebuild replaces whole, so a request never sees half of one.
 * One thread rebuilds it:
 *   - after a revocation, 200 ms after the first of a burst (one CRL for
 *     a `service disable --revoke` of a hundred certificates, not a
 *     hundred CRLs);
 *   - at half of crl_validity, so relying parties always find one well
 *     before the nextUpdate of the one they hold (RFC 5280 5.1.2.5);
 *   - after a failure, every CRL_RETRY_SECONDS.
 * Each CRL gets the recorded number + 1 (db_crl_insert), so numbers keep
 * increasing across restarts (RFC 5280 5.2.3), and lists only the
 * revoked certificates that have not expired (RFC 5280 3.3).
 *
 * OCSP responses to requests without a nonce are reused until half their
 * validity (RFC 5019 spirit: a flood of identical queries is not a flood
 * of signatures); a revocation drops those of its serial.
 */
#include "api/api.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ca/common/config.h"
#include "ca/common/log.h"
#include "ca/common/timefmt.h"

#define CRL_VALIDITY_DEFAULT	(24 * 3600)
#define OCSP_VALIDITY_DEFAULT	3600
#define VALIDITY_MIN		2			/* seconds: tests go this low */
#define CRL_VALIDITY_MAX	(31 * 86400)
#define OCSP_VALIDITY_MAX	(7 * 86400)
#define CRL_COALESCE_MS		200
#define CRL_RETRY_SECONDS	10
#define CRL_BUILD_ATTEMPTS	3			/* number races with another builder */
#define CRL_PEM_MAX		(256u * 1024 * 1024)
#define OCSP_BUCKETS		1024
#define OCSP_CACHE_MAX		8192			/* entries; past it the cache starts over */

struct crl_snap {
	struct api_crl	pub;
	unsigned	refs;		/* under crl_lock */
};

struct ocsp_entry {
	struct ocsp_entry	*next;
	unsigned char		 key[API_OCSP_KEY_LEN];
	char			 serial[CA_SERIAL_HEX_MAX];
	int64_t			 refresh_at;
	struct mca_buf		 der;
	int			 status;	/* enum api_ocsp_served, for metrics */
};

struct api_revocation {
	struct api_ctx		*ctx;
	int64_t			 crl_validity;
	int64_t			 ocsp_validity;

	pthread_mutex_t		 crl_lock;	/* everything below up to the OCSP part */
	pthread_cond_t		 wake;		/* CLOCK_MONOTONIC */
	pthread_t		 thread;
	bool			 running;
	bool			 stop;
	bool			 dirty;		/* a revocation awaits a rebuild */
	int64_t			 dirty_since_us;	/* monotonic */
	int64_t			 retry_at;	/* wall clock; 0: none */
	struct crl_snap		*crl;

	pthread_mutex_t		 ocsp_lock;
	struct ocsp_entry	*buckets[OCSP_BUCKETS];
	size_t			 ocsp_count;
	uint64_t		 ocsp_gen;
};

/* ---- locks ------------------------------------------------------------- */

static void
lock(pthread_mutex_t *m)
{
	if (pthread_mutex_lock(m) != 0)	/* only on a programming error */
		abort();
}

static void
unlock(pthread_mutex_t *m)
{
	if (pthread_mutex_unlock(m) != 0)
		abort();
}

/* ---- CRL snapshots ----------------------------------------------------- */

static void
snap_free(struct crl_snap *s)
{
	if (s == NULL)
		return;
	mca_buf_free(&s->pub.der);
	mca_buf_free(&s->pub.pem);
	free(s);
}

static void
snap_unref_locked(struct crl_snap *s)
{
	if (s != NULL && --s->refs == 0)
		snap_free(s);
}

const struct api_crl *
api_crl_get(struct api_ctx *ctx)
{
	struct api_revocation *rv = ctx->revocation;
	struct crl_snap *s;

	if (rv == NULL)
		return NULL;
	lock(&rv->crl_lock);
	if ((s = rv->crl) != NULL)
		s->refs++;
	unlock(&rv->crl_lock);
	return s != NULL ? &s->pub : NULL;
}

void
api_crl_put(struct api_ctx *ctx, const struct api_crl *crl)
{
	struct api_revocation *rv = ctx->revocation;

	if (crl == NULL || rv == NULL)
		return;
	lock(&rv->crl_lock);
	/* pub is the first member: the snapshot starts where it does. */
	snap_unref_locked((struct crl_snap *)(uintptr_t)crl);
	unlock(&rv->crl_lock);
}

static void
snap_install(struct api_revocation *rv, struct crl_snap *s)
{
	struct crl_snap *old;

	s->refs = 1;	/* the state's own reference */
	lock(&rv->crl_lock);
	old = rv->crl;
	rv->crl = s;
	snap_unref_locked(old);
	unlock(&rv->crl_lock);
}

/* ---- building a CRL ------------------------------------------------------ */

/* The list in the encoder's terms.  "unspecified" is left out: RFC 5280
 * 5.3.1 says the reasonCode extension SHOULD then be absent. */
static struct ca_revoked *
revoked_view(const struct db_revoked *rows, size_t n)
{
	struct ca_revoked *list = calloc(n > 0 ? n : 1, sizeof(*list));

	for (size_t i = 0; list != NULL && i < n; i++) {
		list[i].serial = rows[i].serial;
		list[i].revoked_at = rows[i].revoked_at;
		list[i].reason = rows[i].reason == DB_REASON_UNSPECIFIED ? -1 : rows[i].reason;
	}
	return list;
}

/* The number after both the recorded one and the one in memory. */
static enum mca_err
crl_next_number(struct api_revocation *rv, uint64_t *number)
{
	struct db_crl last = { 0 };
	uint64_t mem = 0;
	enum mca_err rc;

	rc = db_crl_latest(rv->ctx->db, false, &last);
	if (rc != MCA_OK && rc != MCA_ERR_NOT_FOUND)
		return rc;
	lock(&rv->crl_lock);
	if (rv->crl != NULL)
		mem = rv->crl->pub.number;
	unlock(&rv->crl_lock);
	*number = (last.number > mem ? last.number : mem) + 1;
	db_crl_clear(&last);
	return MCA_OK;
}

/* Signs and records one CRL; retried when another builder took the number. */
static enum mca_err
crl_sign_record(struct api_revocation *rv, const struct ca_revoked *list, size_t n,
    int64_t now, struct crl_snap *s)
{
	struct db_crl rec = { 0 };
	enum mca_err rc = MCA_ERR_EXISTS;

	int64_t validity = __atomic_load_n(&rv->crl_validity, __ATOMIC_RELAXED);	/* SIGHUP */

	for (int attempt = 0; attempt < CRL_BUILD_ATTEMPTS && rc == MCA_ERR_EXISTS; attempt++) {
		mca_buf_free(&s->pub.der);
		if ((rc = crl_next_number(rv, &s->pub.number)) != MCA_OK ||
		    (rc = ca_crl_build(rv->ctx->signer, list, n, s->pub.number, now,
		    now + validity, &s->pub.der)) != MCA_OK)
			return rc;
		rec.number = s->pub.number;
		rec.this_update = now;
		rec.next_update = now + validity;
		rec.created_at = now;
		rec.der = s->pub.der.data;
		rec.der_len = s->pub.der.len;
		rc = db_crl_insert(rv->ctx->db, &rec);
	}
	s->pub.this_update = now;
	s->pub.next_update = now + validity;
	s->pub.entries = n;
	return rc;
}

static enum mca_err
crl_pem(struct crl_snap *s)
{
	gnutls_datum_t der = { s->pub.der.data, (unsigned)s->pub.der.len }, pem = { NULL, 0 };
	enum mca_err rc;

	if (s->pub.der.len > CRL_PEM_MAX)
		return mca_err_set(MCA_ERR_TOOBIG, "CRL of %zu bytes", s->pub.der.len);
	if (gnutls_pem_base64_encode2("X509 CRL", &der, &pem) < 0)
		return mca_err_set(MCA_ERR_CRYPTO, "CRL: PEM encoding failed");
	rc = mca_buf_set(&s->pub.pem, pem.data, pem.size);
	gnutls_free(pem.data);
	return rc;
}

static void
crl_log(const struct crl_snap *s, const char *why, int64_t t0)
{
	char number[24], entries[24], ms[32], tu[MCA_TIME_LEN], nu[MCA_TIME_LEN], size[24];

	snprintf(number, sizeof(number), "%llu", (unsigned long long)s->pub.number);
	snprintf(entries, sizeof(entries), "%zu", s->pub.entries);
	snprintf(size, sizeof(size), "%zu", s->pub.der.len);
	snprintf(ms, sizeof(ms), "%.3f", (double)(mca_monotonic_us() - t0) / 1000.0);
	mca_time_format(s->pub.this_update, tu);
	mca_time_format(s->pub.next_update, nu);
	mca_log(MCA_LOG_INFO, "CRL rebuilt", "number", number, "entries", entries, "bytes", size,
	    "this_update", tu, "next_update", nu, "trigger", why, "duration_ms", ms,
	    (const char *)NULL);
}

static enum mca_err
crl_rebuild(struct api_revocation *rv, const char *why)
{
	struct db_revoked *rows = NULL;
	struct ca_revoked *list = NULL;
	struct crl_snap *s = NULL;
	int64_t t0 = mca_monotonic_us(), now = mca_now();
	size_t n = 0;
	enum mca_err rc;

	if ((rc = db_revoked_live(rv->ctx->db, now, &rows, &n)) != MCA_OK)
		goto out;
	rc = MCA_ERR_NOMEM;
	if ((list = revoked_view(rows, n)) == NULL || (s = calloc(1, sizeof(*s))) == NULL)
		goto out;
	mca_buf_init(&s->pub.der, 0, false);
	mca_buf_init(&s->pub.pem, 0, false);
	if ((rc = crl_sign_record(rv, list, n, now, s)) != MCA_OK || (rc = crl_pem(s)) != MCA_OK)
		goto out;
	crl_log(s, why, t0);
	snap_install(rv, s);
	s = NULL;
out:
	if (rc != MCA_OK)
		mca_log(MCA_LOG_ERROR, "CRL rebuild failed", "trigger", why, "error", mca_errname(rc),
		    "detail", mca_err_detail(), (const char *)NULL);
	snap_free(s);
	free(list);
	free(rows);
	return rc;
}

/* ---- the rebuild thread ------------------------------------------------ */

/* Waits on the condition until the monotonic time `until_us`. */
static void
wait_until_us(struct api_revocation *rv, int64_t until_us)
{
	struct timespec ts;

	ts.tv_sec = (time_t)(until_us / 1000000);
	ts.tv_nsec = (long)(until_us % 1000000) * 1000;
	(void)pthread_cond_timedwait(&rv->wake, &rv->crl_lock, &ts);
}

/* When the next scheduled rebuild is due (wall clock), under crl_lock. */
static int64_t
next_due_locked(const struct api_revocation *rv)
{
	int64_t due = rv->crl != NULL ? rv->crl->pub.this_update +
	    __atomic_load_n(&rv->crl_validity, __ATOMIC_RELAXED) / 2 : INT64_MAX;

	if (rv->retry_at != 0 && rv->retry_at < due)
		due = rv->retry_at;
	return due == INT64_MAX ? 0 : due;
}

static void *
crl_thread(void *arg)
{
	struct api_revocation *rv = arg;
	const char *why;

	lock(&rv->crl_lock);
	while (!rv->stop) {
		int64_t mono = mca_monotonic_us(), due = next_due_locked(rv), now = mca_now();

		if (rv->dirty) {
			if (mono < rv->dirty_since_us + CRL_COALESCE_MS * 1000) {
				wait_until_us(rv, rv->dirty_since_us + CRL_COALESCE_MS * 1000);
				continue;
			}
			why = "revocation";
		} else if (now < due) {
			wait_until_us(rv, mono + (due - now) * 1000000);
			continue;
		} else {
			why = rv->retry_at != 0 ? "retry" : "schedule";
		}
		rv->dirty = false;
		unlock(&rv->crl_lock);
		now = crl_rebuild(rv, why) == MCA_OK ? 0 : mca_now() + CRL_RETRY_SECONDS;
		lock(&rv->crl_lock);
		rv->retry_at = now;
	}
	unlock(&rv->crl_lock);
	return NULL;
}

void
api_revocation_changed(struct api_ctx *ctx, const char *serial)
{
	struct api_revocation *rv = ctx->revocation;
	struct ocsp_entry **pp, *e;

	if (rv == NULL)
		return;
	lock(&rv->ocsp_lock);
	rv->ocsp_gen++;
	for (size_t b = 0; b < OCSP_BUCKETS; b++) {
		for (pp = &rv->buckets[b]; (e = *pp) != NULL; ) {
			if (serial != NULL && strcmp(e->serial, serial) != 0) {
				pp = &e->next;
				continue;
			}
			*pp = e->next;
			mca_buf_free(&e->der);
			free(e);
			rv->ocsp_count--;
		}
	}
	unlock(&rv->ocsp_lock);
	lock(&rv->crl_lock);
	if (!rv->dirty) {
		rv->dirty = true;
		rv->dirty_since_us = mca_monotonic_us();
	}
	pthread_cond_signal(&rv->wake);
	unlock(&rv->crl_lock);
}

/* ---- the OCSP cache ------------------------------------------------------ */

static size_t
bucket_of(const unsigned char key[API_OCSP_KEY_LEN])
{
	/* The key is a SHA-256: any of its bits are uniform. */
	return ((size_t)key[0] << 8 | key[1]) % OCSP_BUCKETS;
}

uint64_t
api_ocsp_cache_gen(struct api_ctx *ctx)
{
	struct api_revocation *rv = ctx->revocation;
	uint64_t gen;

	lock(&rv->ocsp_lock);
	gen = rv->ocsp_gen;
	unlock(&rv->ocsp_lock);
	return gen;
}

bool
api_ocsp_cache_get(struct api_ctx *ctx, const unsigned char key[API_OCSP_KEY_LEN], int64_t now,
    struct mca_buf *out, int *status)
{
	struct api_revocation *rv = ctx->revocation;
	struct ocsp_entry *e;
	bool hit = false;

	lock(&rv->ocsp_lock);
	for (e = rv->buckets[bucket_of(key)]; e != NULL; e = e->next) {
		if (memcmp(e->key, key, API_OCSP_KEY_LEN) == 0) {
			hit = now < e->refresh_at && mca_buf_set(out, e->der.data, e->der.len) == MCA_OK;
			*status = e->status;
			break;
		}
	}
	unlock(&rv->ocsp_lock);
	return hit;
}

static void
ocsp_cache_flush_locked(struct api_revocation *rv)
{
	struct ocsp_entry *e, *next;

	for (size_t b = 0; b < OCSP_BUCKETS; b++) {
		for (e = rv->buckets[b]; e != NULL; e = next) {
			next = e->next;
			mca_buf_free(&e->der);
			free(e);
		}
		rv->buckets[b] = NULL;
	}
	rv->ocsp_count = 0;
}

void
api_ocsp_cache_put(struct api_ctx *ctx, const unsigned char key[API_OCSP_KEY_LEN],
    const char *serial, uint64_t gen, int64_t refresh_at, const struct mca_buf *der, int status)
{
	struct api_revocation *rv = ctx->revocation;
	struct ocsp_entry *e, **pp;
	size_t b = bucket_of(key);

	if ((e = calloc(1, sizeof(*e))) == NULL)
		return;
	memcpy(e->key, key, API_OCSP_KEY_LEN);
	snprintf(e->serial, sizeof(e->serial), "%s", serial);
	e->refresh_at = refresh_at;
	e->status = status;
	mca_buf_init(&e->der, 0, false);
	if (mca_buf_set(&e->der, der->data, der->len) != MCA_OK) {
		free(e);
		return;
	}
	lock(&rv->ocsp_lock);
	if (gen != rv->ocsp_gen) {	/* a revocation came in meanwhile */
		unlock(&rv->ocsp_lock);
		mca_buf_free(&e->der);
		free(e);
		return;
	}
	for (pp = &rv->buckets[b]; *pp != NULL; pp = &(*pp)->next) {
		if (memcmp((*pp)->key, key, API_OCSP_KEY_LEN) == 0) {	/* replace a stale one */
			struct ocsp_entry *old = *pp;

			e->next = old->next;
			*pp = e;
			mca_buf_free(&old->der);
			free(old);
			unlock(&rv->ocsp_lock);
			return;
		}
	}
	if (rv->ocsp_count >= OCSP_CACHE_MAX)
		ocsp_cache_flush_locked(rv);
	e->next = rv->buckets[b];
	rv->buckets[b] = e;
	rv->ocsp_count++;
	unlock(&rv->ocsp_lock);
}

int64_t
api_ocsp_validity(struct api_ctx *ctx)
{
	return ctx->revocation != NULL ?
	    __atomic_load_n(&ctx->revocation->ocsp_validity, __ATOMIC_RELAXED) : OCSP_VALIDITY_DEFAULT;
}

/* ---- start and stop ------------------------------------------------------ */

enum mca_err
api_revocation_settings_load(const struct mca_config *cfg, struct api_revocation_settings *s)
{
	enum mca_err rc;

	if ((rc = mca_config_duration(cfg, "crl_validity", CRL_VALIDITY_DEFAULT, &s->crl_validity)) != MCA_OK ||
	    (rc = mca_config_duration(cfg, "ocsp_validity", OCSP_VALIDITY_DEFAULT, &s->ocsp_validity)) != MCA_OK)
		return rc;
	if (s->crl_validity < VALIDITY_MIN || s->crl_validity > CRL_VALIDITY_MAX)
		return mca_err_set(MCA_ERR_CONFIG, "crl_validity must be between 2s and 31d");
	if (s->ocsp_validity < VALIDITY_MIN || s->ocsp_validity > OCSP_VALIDITY_MAX)
		return mca_err_set(MCA_ERR_CONFIG, "ocsp_validity must be between 2s and 7d");
	return MCA_OK;
}

void
api_revocation_settings_apply(struct api_ctx *ctx, const struct api_revocation_settings *s)
{
	struct api_revocation *rv = ctx->revocation;

	if (rv == NULL)
		return;
	lock(&rv->crl_lock);
	__atomic_store_n(&rv->crl_validity, s->crl_validity, __ATOMIC_RELAXED);
	__atomic_store_n(&rv->ocsp_validity, s->ocsp_validity, __ATOMIC_RELAXED);
	pthread_cond_signal(&rv->wake);		/* the next rebuild may be due sooner */
	unlock(&rv->crl_lock);
}

static enum mca_err
read_config(const struct mca_config *cfg, struct api_revocation *rv)
{
	struct api_revocation_settings s;
	enum mca_err rc;

	if ((rc = api_revocation_settings_load(cfg, &s)) != MCA_OK)
		return rc;
	rv->crl_validity = s.crl_validity;
	rv->ocsp_validity = s.ocsp_validity;
	return MCA_OK;
}

static enum mca_err
sync_init(struct api_revocation *rv)
{
	pthread_condattr_t attr;
	int err;

	if (pthread_condattr_init(&attr) != 0)
		return MCA_ERR_NOMEM;
	err = pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
	if (err == 0)
		err = pthread_cond_init(&rv->wake, &attr);
	pthread_condattr_destroy(&attr);
	if (err != 0)
		return mca_err_set(MCA_ERR_NOMEM, "revocation: condition variable: %s", strerror(err));
	if (pthread_mutex_init(&rv->crl_lock, NULL) != 0 || pthread_mutex_init(&rv->ocsp_lock, NULL) != 0)
		return mca_err_set(MCA_ERR_NOMEM, "revocation: mutex");
	return MCA_OK;
}

enum mca_err
api_revocation_start(struct api_ctx *ctx, const struct mca_config *cfg)
{
	struct api_revocation *rv;
	enum mca_err rc;
	int err;

	if ((rv = calloc(1, sizeof(*rv))) == NULL)
		return MCA_ERR_NOMEM;
	rv->ctx = ctx;
	if ((rc = read_config(cfg, rv)) != MCA_OK || (rc = sync_init(rv)) != MCA_OK) {
		free(rv);	/* never locked: nothing to destroy that matters */
		return rc;
	}
	ctx->revocation = rv;
	/* A first CRL before serving, so GET /v1/crl finds one.  Failing
	 * that, meshcad serves anyway (issuing does not need a CRL; /v1/crl
	 * answers 503) and the thread retries. */
	if (crl_rebuild(rv, "startup") != MCA_OK)
		rv->retry_at = mca_now() + CRL_RETRY_SECONDS;
	if ((err = pthread_create(&rv->thread, NULL, crl_thread, rv)) != 0) {
		api_revocation_stop(ctx);
		return mca_err_set(MCA_ERR_NOMEM, "revocation: cannot start the CRL thread: %s", strerror(err));
	}
	rv->running = true;
	return MCA_OK;
}

void
api_revocation_stop(struct api_ctx *ctx)
{
	struct api_revocation *rv = ctx->revocation;

	if (rv == NULL)
		return;
	if (rv->running) {
		lock(&rv->crl_lock);
		rv->stop = true;
		pthread_cond_signal(&rv->wake);
		unlock(&rv->crl_lock);
		pthread_join(rv->thread, NULL);
	}
	snap_unref_locked(rv->crl);	/* single-threaded from here */
	ocsp_cache_flush_locked(rv);
	pthread_cond_destroy(&rv->wake);
	pthread_mutex_destroy(&rv->crl_lock);
	pthread_mutex_destroy(&rv->ocsp_lock);
	free(rv);
	ctx->revocation = NULL;
}
