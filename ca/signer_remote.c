/*
 * The network side of the signer process: a struct ca_key whose private
 * half lives in another process (see ca.h, "the signer process").
 *
 * The child signs to-be-signed bytes it can check, never a digest (GnuTLS
 * would hash before calling an external key): workload certificates,
 * meshcad's own server certificate among them (leaf_der.c), CRLs, OCSP
 * responses and audit checkpoints are built as TBS bytes and sent as
 * they are.  CA certificates are made by `meshca init` with the key at
 * hand, never through the child.
 *
 * One socket shared by every thread, in rounds, like db/batch.c's group
 * commit: a caller queues its request; if no round is in flight it
 * leads one, writing every request queued so far back to back (one
 * sendmsg) and reading the replies, which the child sends in order, so
 * the n-th reply is the n-th request's.  Each caller is woken once, when
 * its reply is in (or when it is to lead); requests that arrive during a
 * round form the next one.  The child signs serially anyway: what rounds
 * save is the wakeups and socket calls of a round trip per signature.
 *
 * A child that closes the socket, breaks the framing, or makes no
 * progress for CA_SIGNER_TIMEOUT_S is gone for good: every request of
 * the round in flight, every queued one and every later one fails at
 * once with MCA_ERR_SIGNER_UNAVAILABLE instead of waiting.  A refusal
 * (status 1) is its own request's answer and disturbs no other.
 */
#include "ca/ca_internal.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/uio.h>
#include <unistd.h>

#include "ca/common/log.h"

/* Replies read ahead of parsing: more than one reply of the largest size. */
#define REMOTE_RBUF	(4 * (CA_SIGNREQ_HDR + CA_SIGNREP_MAX))
/* iovecs per sendmsg (two a request; well under IOV_MAX). */
#define REMOTE_IOV	128

/* One caller's signature, on its stack from ca_remote_sign's start to end. */
struct remote_req {
	unsigned char		 hdr[CA_SIGNREQ_HDR];
	const unsigned char	*tbs;
	size_t			 len;
	int			 status;	/* the reply's: 0 signed, 1 refused */
	gnutls_datum_t		 body;		/* the signature, or the reason */
	enum mca_err		 rc;		/* MCA_OK: status and body are the reply */
	char			 detail[256];	/* mca_err_detail of a failure, for the caller */
	bool			 done;		/* the caller may return; else it is to lead */
	sem_t			 wake;		/* posted once, after done is set, to a waiter */
	struct remote_req	*next;
};

/* The leader's cursors over its round's list of requests. */
struct remote_round {
	struct remote_req	*send;		/* the first not fully written, or NULL */
	size_t			 send_off;	/* bytes of it written (header, then TBS) */
	struct remote_req	*recv;		/* the first without a reply, or NULL */
	struct remote_req	*handed;	/* the first not handed back to its caller */
	size_t			 rlen;		/* bytes in rbuf */
};

struct ca_remote {
	int			 fd;
	pthread_mutex_t		 mu;		/* head, tail, busy */
	struct remote_req	*head, *tail;	/* queued for the next round */
	bool			 busy;		/* a leader is running rounds */
	atomic_bool		 dead;
	unsigned char		 rbuf[REMOTE_RBUF];	/* the leader's only */
	gnutls_pk_algorithm_t	 pk;
	unsigned int		 bits;
	gnutls_sign_algorithm_t	 alg;
};

/* GnuTLS's view of the key: it answers what GnuTLS asks about the key's
 * type and refuses to sign.  Everything the key signs goes to the child
 * as to-be-signed bytes (ca_remote_sign), never through GnuTLS. */
static int
placeholder_sign(gnutls_privkey_t key, gnutls_sign_algorithm_t algo, void *userdata,
    unsigned int flags, const gnutls_datum_t *data, gnutls_datum_t *sig)
{
	(void)key, (void)algo, (void)userdata, (void)flags, (void)data, (void)sig;
	return GNUTLS_E_INVALID_REQUEST;
}

static int
placeholder_info(gnutls_privkey_t key, unsigned int flags, void *userdata)
{
	const struct ca_remote *r = userdata;

	(void)key;
	if (flags & GNUTLS_PRIVKEY_INFO_HAVE_SIGN_ALGO)
		return GNUTLS_FLAGS_TO_SIGN_ALGO(flags) == r->alg;
	if (flags & GNUTLS_PRIVKEY_INFO_PK_ALGO)
		return (int)r->pk;
	if (flags & GNUTLS_PRIVKEY_INFO_PK_ALGO_BITS)
		return (int)r->bits;
	if (flags & GNUTLS_PRIVKEY_INFO_SIGN_ALGO)
		return (int)r->alg;
	return -1;
}

void
ca_remote_free(struct ca_remote *r)
{
	if (r == NULL)
		return;
	if (r->fd >= 0)
		close(r->fd);	/* the child sees end of file and exits */
	pthread_mutex_destroy(&r->mu);
	free(r);
}

static enum mca_err
remote_gone(struct ca_remote *r, const char *why)
{
	if (!atomic_exchange(&r->dead, true))
		mca_log(MCA_LOG_ERROR, "signer process gone: nothing can be signed until meshcad "
		    "restarts", "detail", why, (const char *)NULL);
	return mca_err_set(MCA_ERR_SIGNER_UNAVAILABLE, "the signer process is gone (%s)", why);
}

/* A request that will not be answered: rc, with this thread's detail. */
static void
req_fail(struct remote_req *m, enum mca_err rc)
{
	m->rc = rc;
	(void)snprintf(m->detail, sizeof(m->detail), "%s", mca_err_detail());
}

/* Wakes m's caller, done or to lead.  A semaphore, posted without mu:
 * the caller wakes once and needs no lock to return (m is gone once it
 * has; glibc's sem_post allows that, as POSIX's sem_destroy asks). */
static void
req_wake(struct remote_req *m, bool done)
{
	m->done = done;
	(void)sem_post(&m->wake);
}

/* Wakes the callers whose replies are in: from handed up to recv.  The
 * round's list is the leader's alone: nobody else links to it. */
static void
round_hand_out(struct remote_round *st)
{
	struct remote_req *m, *next;

	for (m = st->handed; m != st->recv; m = next) {
		next = m->next;
		req_wake(m, true);
	}
	st->handed = st->recv;
}

/* Writes as much of the round's requests as the socket takes now. */
static enum mca_err
round_send(struct ca_remote *r, struct remote_round *st)
{
	struct iovec iov[REMOTE_IOV];
	struct msghdr msg = { .msg_iov = iov };
	struct remote_req *m = st->send;
	size_t off = st->send_off, n = 0, w;
	ssize_t sent;

	for (; m != NULL && n + 2 <= REMOTE_IOV; m = m->next, off = 0) {
		if (off < CA_SIGNREQ_HDR)
			iov[n++] = (struct iovec){ m->hdr + off, CA_SIGNREQ_HDR - off };
		off = off < CA_SIGNREQ_HDR ? 0 : off - CA_SIGNREQ_HDR;
		iov[n++] = (struct iovec){ (void *)(uintptr_t)(m->tbs + off), m->len - off };
	}
	msg.msg_iovlen = n;
	do
		sent = sendmsg(r->fd, &msg, MSG_DONTWAIT | MSG_NOSIGNAL);
	while (sent < 0 && errno == EINTR);
	if (sent < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
		return MCA_OK;
	if (sent < 0)
		return remote_gone(r, strerror(errno));
	for (w = (size_t)sent; w > 0 && st->send != NULL; ) {
		size_t left = CA_SIGNREQ_HDR + st->send->len - st->send_off;

		if (w < left) {
			st->send_off += w;
			break;
		}
		w -= left;
		st->send = st->send->next;
		st->send_off = 0;
	}
	return MCA_OK;
}

/* Takes every complete reply in rbuf, in request order. */
static enum mca_err
round_parse(struct ca_remote *r, struct remote_round *st)
{
	size_t off = 0;

	while (st->rlen - off >= CA_SIGNREQ_HDR) {
		const unsigned char *h = r->rbuf + off;
		uint32_t n = ca_get_u32(h);
		struct remote_req *m = st->recv;

		if (n > CA_SIGNREP_MAX || h[4] > 1)
			return remote_gone(r, "malformed reply");
		/* The child answers a request once it has read all of it. */
		if (m == NULL || m == st->send)
			return remote_gone(r, "a reply to no request");
		if (st->rlen - off - CA_SIGNREQ_HDR < n)
			break;
		m->status = h[4];
		if ((m->body.data = gnutls_malloc((size_t)n + 1)) == NULL)
			req_fail(m, mca_err_set(MCA_ERR_NOMEM, "signer reply of %u bytes", n));
		else {
			memcpy(m->body.data, h + CA_SIGNREQ_HDR, n);
			m->body.data[n] = '\0';
			m->body.size = n;
		}
		off += CA_SIGNREQ_HDR + n;
		st->recv = m->next;
	}
	st->rlen -= off;
	memmove(r->rbuf, r->rbuf + off, st->rlen);
	if (st->recv == NULL && st->rlen > 0)
		return remote_gone(r, "a reply to no request");
	return MCA_OK;
}

/* Reads replies: what is there (MSG_DONTWAIT), or waits for some, at
 * most CA_SIGNER_TIMEOUT_S (SO_RCVTIMEO). */
static enum mca_err
round_recv(struct ca_remote *r, struct remote_round *st, int flags)
{
	ssize_t n;

	do
		n = recv(r->fd, r->rbuf + st->rlen, sizeof(r->rbuf) - st->rlen, flags);
	while (n < 0 && errno == EINTR);
	if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
		return (flags & MSG_DONTWAIT) ? MCA_OK : remote_gone(r, "no answer in time");
	if (n <= 0)
		return remote_gone(r, n < 0 ? strerror(errno) : "closed by the other end");
	st->rlen += (size_t)n;
	return round_parse(r, st);
}

/* Requests left to write: write, then wait until the socket takes more
 * or replies come (the child may answer before it has read them all). */
static enum mca_err
round_pump(struct ca_remote *r, struct remote_round *st)
{
	struct pollfd p = { .fd = r->fd, .events = POLLIN | POLLOUT };
	enum mca_err rc;
	int n;

	if ((rc = round_send(r, st)) != MCA_OK || st->send == NULL)
		return rc;
	while ((n = poll(&p, 1, CA_SIGNER_TIMEOUT_S * 1000)) < 0 && errno == EINTR)
		;
	if (n < 0)
		return remote_gone(r, strerror(errno));
	if (n == 0)
		return remote_gone(r, "no progress in time");
	if (p.revents & (POLLIN | POLLERR | POLLHUP))
		return round_recv(r, st, MSG_DONTWAIT);
	return MCA_OK;
}

/* One round: batch written, every reply read and handed back. */
static void
round_run(struct ca_remote *r, struct remote_req *batch)
{
	struct remote_round st = { batch, 0, batch, batch, 0 };
	enum mca_err rc = MCA_OK;

	if (atomic_load(&r->dead))
		rc = mca_err_set(MCA_ERR_SIGNER_UNAVAILABLE, "the signer process is gone");
	while (rc == MCA_OK && st.recv != NULL) {
		if (st.send != NULL)
			rc = round_pump(r, &st);
		else
			rc = round_recv(r, &st, 0);
		round_hand_out(&st);
	}
	for (struct remote_req *m = st.recv; m != NULL; m = m->next)
		req_fail(m, rc);
	st.recv = NULL;
	round_hand_out(&st);
}

/* Runs the round of everything queued, then hands leadership to the
 * next queue, or, with the child gone, fails it. */
static void
remote_lead(struct ca_remote *r)
{
	struct remote_req *m, *after, *batch, *drop = NULL, *next;

	pthread_mutex_lock(&r->mu);
	batch = r->head;
	r->head = r->tail = NULL;
	pthread_mutex_unlock(&r->mu);
	round_run(r, batch);
	pthread_mutex_lock(&r->mu);
	if (atomic_load(&r->dead)) {	/* nobody queued gets an answer */
		drop = r->head;
		r->head = r->tail = NULL;
	}
	if ((next = r->head) == NULL)
		r->busy = false;
	pthread_mutex_unlock(&r->mu);
	if (drop != NULL)
		(void)mca_err_set(MCA_ERR_SIGNER_UNAVAILABLE, "the signer process is gone");
	for (m = drop; m != NULL; m = after) {
		after = m->next;
		req_fail(m, MCA_ERR_SIGNER_UNAVAILABLE);
		req_wake(m, true);
	}
	if (next != NULL)	/* the next round is theirs; they wait until told */
		req_wake(next, false);
}

/* Queues me; waits until me is done, or leads the round that does it. */
static void
remote_wait(struct ca_remote *r, struct remote_req *me)
{
	bool lead;

	pthread_mutex_lock(&r->mu);
	if (atomic_load(&r->dead)) {
		pthread_mutex_unlock(&r->mu);
		req_fail(me, mca_err_set(MCA_ERR_SIGNER_UNAVAILABLE, "the signer process is gone"));
		return;
	}
	if (r->tail != NULL)
		r->tail->next = me;
	else
		r->head = me;
	r->tail = me;
	if ((lead = !r->busy))
		r->busy = true;
	pthread_mutex_unlock(&r->mu);
	if (!lead) {	/* done is written before the one post */
		while (sem_wait(&me->wake) != 0 && errno == EINTR)
			;
		if (me->done)
			return;
	}
	remote_lead(r);	/* me among the round */
}

enum mca_err
ca_remote_sign(const struct ca_key *key, enum ca_signreq_type t, gnutls_sign_algorithm_t alg,
    const unsigned char *tbs, size_t len, gnutls_datum_t *sig)
{
	struct ca_remote *r = key->remote;
	struct remote_req me = { .tbs = tbs, .len = len, .rc = MCA_OK, .status = 1 };
	enum mca_err rc;

	sig->data = NULL;
	sig->size = 0;
	if (len == 0 || len > CA_SIGNREQ_MAX_BYTES)
		return mca_err_set(MCA_ERR_TOOBIG, "%zu bytes to sign (at most %u)", len,
		    (unsigned)CA_SIGNREQ_MAX_BYTES);
	if (atomic_load(&r->dead))
		return mca_err_set(MCA_ERR_SIGNER_UNAVAILABLE, "the signer process is gone");
	ca_put_u32(me.hdr, (uint32_t)len);
	me.hdr[4] = CA_SIGNREQ_VERSION;
	me.hdr[5] = (unsigned char)t;
	me.hdr[6] = (unsigned char)((unsigned)alg >> 8);
	me.hdr[7] = (unsigned char)alg;
	if (sem_init(&me.wake, 0, 0) != 0)
		return mca_err_set(MCA_ERR_NOMEM, "signer: sem_init: %s", strerror(errno));
	remote_wait(r, &me);
	(void)sem_destroy(&me.wake);
	if (me.rc != MCA_OK) {
		gnutls_free(me.body.data);
		return mca_err_set(me.rc, "%s", me.detail);
	}
	if (me.status != 0) {
		rc = mca_err_set(MCA_ERR_SIGN, "the signer process refused: %s",
		    (char *)me.body.data);
		gnutls_free(me.body.data);
		return rc;
	}
	*sig = me.body;
	return MCA_OK;
}

/* The child's first message: its key is loaded, or why not
 * ("MCA_ERR_PASSPHRASE wrong passphrase ..."). */
static enum mca_err
remote_hello(int fd)
{
	unsigned char h[CA_SIGNREQ_HDR];
	char text[CA_SIGNREP_MAX + 1];
	uint32_t n;
	enum mca_err rc;

	if ((rc = ca_fd_read_all(fd, h, sizeof(h), NULL)) != MCA_OK)
		return mca_err_set(MCA_ERR_SIGNER_UNAVAILABLE, "the signer process did not "
		    "start: %s", mca_err_detail());
	if ((n = ca_get_u32(h)) > CA_SIGNREP_MAX || h[4] > 1)
		return mca_err_set(MCA_ERR_SIGNER_UNAVAILABLE, "the signer process said nonsense");
	if (h[4] == 0 && n == 0)
		return MCA_OK;
	if ((rc = ca_fd_read_all(fd, text, n, NULL)) != MCA_OK)
		return mca_err_set(MCA_ERR_SIGNER_UNAVAILABLE, "the signer process did not "
		    "start: %s", mca_err_detail());
	text[n] = '\0';
	rc = MCA_ERR_SIGNER_UNAVAILABLE;
	for (int e = 1; e < MCA_ERR_MAX; e++) {
		size_t l = strlen(mca_errname((enum mca_err)e));

		if (strncmp(text, mca_errname((enum mca_err)e), l) == 0 && text[l] == ' ')
			rc = (enum mca_err)e;
	}
	return mca_err_set(rc, "signer process: %s", strchr(text, ' ') != NULL ?
	    strchr(text, ' ') + 1 : text);
}

enum mca_err
ca_remote_key_new(int fd, gnutls_x509_crt_t crt, struct ca_key **out)
{
	struct timeval tv = { .tv_sec = CA_SIGNER_TIMEOUT_S };
	struct ca_key *k = NULL;
	gnutls_pubkey_t pub = NULL;
	struct ca_remote *r;
	enum mca_err rc = MCA_ERR_NOMEM;

	if ((r = calloc(1, sizeof(*r))) == NULL) {
		close(fd);
		return MCA_ERR_NOMEM;
	}
	r->fd = fd;
	pthread_mutex_init(&r->mu, NULL);
	(void)setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	(void)setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	if ((rc = remote_hello(fd)) != MCA_OK)
		goto out;
	rc = MCA_ERR_NOMEM;
	if ((k = calloc(1, sizeof(*k))) == NULL || gnutls_pubkey_init(&pub) < 0)
		goto out;
	k->remote = r;
	r = NULL;
	rc = mca_err_set(MCA_ERR_CRYPTO, "the intermediate certificate's public key");
	if (gnutls_pubkey_import_x509(pub, crt, 0) < 0 ||
	    (rc = ca_pubkey_classify(pub, &k->type)) != MCA_OK)
		goto out;
	k->remote->alg = ca_key_type_sign_algo(k->type);
	k->remote->pk = (gnutls_pk_algorithm_t)gnutls_pubkey_get_pk_algorithm(pub, &k->remote->bits);
	rc = mca_err_set(MCA_ERR_CRYPTO, "cannot set up the remote key");
	if (gnutls_privkey_init(&k->priv) < 0 ||
	    gnutls_privkey_import_ext4(k->priv, k->remote, placeholder_sign, placeholder_sign,
	    NULL, NULL, placeholder_info, 0) < 0)
		goto out;
	*out = k;
	k = NULL;
	rc = MCA_OK;
out:
	gnutls_pubkey_deinit(pub);
	ca_remote_free(r);
	ca_key_free(k);
	return rc;
}

bool
ca_remote_available(const struct ca_remote *r)
{
	return r == NULL || !atomic_load(&r->dead);
}
