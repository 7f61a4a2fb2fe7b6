/*
 * The worker pool: issuing requests (enroll, renew) run on a fixed set of
 * threads (config key workers; by default 32 per CPU), fed first come,
 * first served.
 *
 * libmicrohttpd's thread pool keeps each connection on the thread that
 * accepted it and serves its poll set unevenly: at 64 keep-alive clients
 * a few waited up to ~2 s while others went round many times
 * (tests/bench/README.md).  Here its threads only do the TLS and HTTP
 * I/O: once a request's body is in, the connection is suspended
 * (MHD_suspend_connection), the request joins one FIFO queue, a worker
 * runs the handler with replies captured in r->pending (reply.c), and
 * resumes the connection; libmicrohttpd then calls the access handler
 * again, which queues the captured reply (api_workers_deliver).
 *
 * The queue is bounded by the connections themselves: a connection has
 * at most one request in it, and their number is capped (conn_limits).
 */
#include "api/api.h"

#include <pthread.h>
#include <stdlib.h>
#include <unistd.h>

#include "ca/common/log.h"

#define WORKERS_MAX	API_MAX_WORKERS

struct api_workers {
	pthread_mutex_t		 lock;
	pthread_cond_t		 cond;
	struct api_request	*head, *tail;	/* FIFO through next_job */
	bool			 stopping;
	unsigned		 n;
	pthread_t		 th[WORKERS_MAX];
};

static struct api_request *
queue_pop(struct api_workers *w)
{
	struct api_request *r;

	pthread_mutex_lock(&w->lock);
	while (w->head == NULL && !w->stopping)
		pthread_cond_wait(&w->cond, &w->lock);
	if ((r = w->head) != NULL) {
		w->head = r->next_job;
		if (w->head == NULL)
			w->tail = NULL;
		r->next_job = NULL;
	}
	pthread_mutex_unlock(&w->lock);
	return r;
}

static void
run_one(struct api_request *r)
{
	struct MHD_Connection *conn = r->conn;

	r->deferred = true;
	if (r->job(r, NULL) == MHD_NO && r->pending != NULL) {
		/* A reply was built but the handler wants the connection cut. */
		MHD_destroy_response(r->pending);
		r->pending = NULL;
	}
	/* r belongs to libmicrohttpd again from here: not touched after. */
	MHD_resume_connection(conn);
}

static void *
worker_main(void *arg)
{
	struct api_workers *w = arg;
	struct api_request *r;

	while ((r = queue_pop(w)) != NULL)
		run_one(r);
	return NULL;
}

/* 32 per CPU: a worker spends much of a request waiting (its group
 * commit's fsync, the signer's round), not computing.  While one commit
 * syncs, the others verify, sign and queue, and share the next commit
 * (db/batch.c) and the next signer round: with one per CPU every batch
 * held one member.  Renewals at c=64 on 2 CPUs: 4 workers 1,851/s, 16
 * 2,212/s; with read-only connections and signer rounds, 16 workers
 * 2,938-3,244/s and 64 workers 3,248-3,635/s, at less CPU per
 * certificate (tests/bench/README.md). */
#define WORKERS_PER_CPU	32

unsigned
api_per_cpu(unsigned k, unsigned max)
{
	long n = sysconf(_SC_NPROCESSORS_ONLN);

	if (n < 1)
		n = 1;
	return (unsigned long)n > max / k ? max : (unsigned)n * k;
}

enum mca_err
api_workers_start(unsigned n, struct api_workers **out)
{
	struct api_workers *w;

	*out = NULL;
	if (n == 0)
		n = api_per_cpu(WORKERS_PER_CPU, WORKERS_MAX);
	if (n > WORKERS_MAX)
		return mca_err_set(MCA_ERR_CONFIG, "at most %d workers", WORKERS_MAX);
	if ((w = calloc(1, sizeof(*w))) == NULL)
		return MCA_ERR_NOMEM;
	if (pthread_mutex_init(&w->lock, NULL) != 0 || pthread_cond_init(&w->cond, NULL) != 0) {
		free(w);
		return MCA_ERR_NOMEM;
	}
	for (w->n = 0; w->n < n; w->n++) {
		if (pthread_create(&w->th[w->n], NULL, worker_main, w) != 0) {
			api_workers_stop(w);
			return mca_err_set(MCA_ERR_NOMEM, "cannot start worker thread %u", n);
		}
	}
	*out = w;
	return MCA_OK;
}

bool
api_workers_submit(struct api_workers *w, struct api_request *r, api_handler h)
{
	if (w == NULL)
		return false;
	pthread_mutex_lock(&w->lock);
	if (w->stopping) {
		pthread_mutex_unlock(&w->lock);
		return false;
	}
	/* Suspended before it is queued: a worker may resume it at once. */
	MHD_suspend_connection(r->conn);
	r->offloaded = true;
	r->job = h;
	r->next_job = NULL;
	if (w->tail != NULL)
		w->tail->next_job = r;
	else
		w->head = r;
	w->tail = r;
	pthread_cond_signal(&w->cond);
	pthread_mutex_unlock(&w->lock);
	return true;
}

enum MHD_Result
api_workers_deliver(struct api_request *r)
{
	struct MHD_Response *resp = r->pending;
	enum MHD_Result ret;

	if (resp == NULL)
		return MHD_NO;
	r->pending = NULL;
	ret = MHD_queue_response(r->conn, r->status, resp);
	MHD_destroy_response(resp);
	return ret;
}

void
api_workers_stop(struct api_workers *w)
{
	if (w == NULL)
		return;
	pthread_mutex_lock(&w->lock);
	w->stopping = true;
	pthread_cond_broadcast(&w->cond);
	pthread_mutex_unlock(&w->lock);
	/* queue_pop hands out what is left before it returns NULL. */
	for (unsigned i = 0; i < w->n; i++)
		pthread_join(w->th[i], NULL);
	pthread_cond_destroy(&w->cond);
	pthread_mutex_destroy(&w->lock);
	free(w);
}
