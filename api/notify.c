/*
 * sd_notify(3) for meshcad: readiness, reload, stop and a watchdog whose
 * ping means "the database answers", not merely "the process exists"; a
 * meshcad that cannot record what it would issue is of no use, so systemd
 * should restart it (WatchdogSec= in deploy/systemd/meshcad.service).
 */
#include "api/notify.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "api/api.h"
#include "ca/common/log.h"
#include "ca/common/timefmt.h"

#ifdef MESHCA_HAVE_SYSTEMD
#include <systemd/sd-daemon.h>

#define WATCHDOG_MIN_US		20000	/* a half-interval below 10 ms is a misconfiguration */

struct api_watchdog {
	struct api_ctx	*ctx;
	int64_t		 period_us;	/* half of $WATCHDOG_USEC */
	pthread_mutex_t	 lock;
	pthread_cond_t	 wake;		/* CLOCK_MONOTONIC */
	pthread_t	 thread;
	bool		 stop;
	bool		 failing;	/* the last ping was withheld: log changes only */
};

static void
notify(const char *state)
{
	int r = sd_notify(0, state);

	if (r < 0)
		mca_log(MCA_LOG_WARN, "sd_notify failed", "state", state, "error", strerror(-r),
		    (const char *)NULL);
}

void
api_notify_ready(void)
{
	notify("READY=1\nSTATUS=serving");
}

void
api_notify_reloading(void)
{
	notify("RELOADING=1\nSTATUS=reloading the configuration");
}

void
api_notify_stopping(void)
{
	notify("STOPPING=1\nSTATUS=stopping");
}

/* One tick: check the database takes a write, and only then ping the
 * manager.  A read would not do: in WAL mode reads go on while another
 * process holds the write lock, and then nothing can be issued. */
static void
watchdog_tick(struct api_watchdog *w)
{
	enum mca_err rc = db_ping_write(w->ctx->db);

	if (rc == MCA_OK) {
		if (w->failing)
			mca_log(MCA_LOG_INFO, "watchdog: database answers again", (const char *)NULL);
		w->failing = false;
		notify("WATCHDOG=1");
		return;
	}
	if (!w->failing)
		mca_log(MCA_LOG_ERROR, "watchdog: database does not answer, withholding WATCHDOG=1",
		    "error", mca_errname(rc), "detail", mca_err_detail(), (const char *)NULL);
	w->failing = true;
}

static void *
watchdog_thread(void *arg)
{
	struct api_watchdog *w = arg;
	struct timespec ts;
	int64_t until;

	if (pthread_mutex_lock(&w->lock) != 0)
		abort();
	while (!w->stop) {
		(void)pthread_mutex_unlock(&w->lock);
		watchdog_tick(w);
		if (pthread_mutex_lock(&w->lock) != 0)
			abort();
		until = mca_monotonic_us() + w->period_us;
		ts.tv_sec = (time_t)(until / 1000000);
		ts.tv_nsec = (long)(until % 1000000) * 1000;
		while (!w->stop && pthread_cond_timedwait(&w->wake, &w->lock, &ts) != ETIMEDOUT)
			;
	}
	(void)pthread_mutex_unlock(&w->lock);
	return NULL;
}

static enum mca_err
watchdog_sync_init(struct api_watchdog *w)
{
	pthread_condattr_t attr;
	int err;

	if (pthread_condattr_init(&attr) != 0)
		return MCA_ERR_NOMEM;
	err = pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
	if (err == 0)
		err = pthread_cond_init(&w->wake, &attr);
	pthread_condattr_destroy(&attr);
	if (err != 0)
		return mca_err_set(MCA_ERR_NOMEM, "watchdog: cannot create its condition variable");
	if (pthread_mutex_init(&w->lock, NULL) != 0) {
		pthread_cond_destroy(&w->wake);
		return mca_err_set(MCA_ERR_NOMEM, "watchdog: cannot create its lock");
	}
	return MCA_OK;
}

enum mca_err
api_watchdog_start(struct api_ctx *ctx, struct api_watchdog **out)
{
	struct api_watchdog *w = NULL;
	uint64_t usec = 0;
	enum mca_err rc;
	int err;

	*out = NULL;
	if (sd_watchdog_enabled(0, &usec) <= 0)
		return MCA_OK;
	if ((w = calloc(1, sizeof(*w))) == NULL)
		return MCA_ERR_NOMEM;
	w->ctx = ctx;
	w->period_us = (int64_t)(usec / 2);
	if (w->period_us < WATCHDOG_MIN_US)
		w->period_us = WATCHDOG_MIN_US;
	if ((rc = watchdog_sync_init(w)) != MCA_OK) {
		free(w);
		return rc;
	}
	if ((err = pthread_create(&w->thread, NULL, watchdog_thread, w)) != 0) {
		pthread_cond_destroy(&w->wake);
		pthread_mutex_destroy(&w->lock);
		free(w);
		return mca_err_set(MCA_ERR_NOMEM, "watchdog: cannot start its thread: %s", strerror(err));
	}
	*out = w;
	return MCA_OK;
}

void
api_watchdog_stop(struct api_watchdog *w)
{
	if (w == NULL)
		return;
	if (pthread_mutex_lock(&w->lock) != 0)
		abort();
	w->stop = true;
	pthread_cond_signal(&w->wake);
	(void)pthread_mutex_unlock(&w->lock);
	pthread_join(w->thread, NULL);
	pthread_cond_destroy(&w->wake);
	pthread_mutex_destroy(&w->lock);
	free(w);
}

#else	/* !MESHCA_HAVE_SYSTEMD: built without libsystemd, nothing to tell */

void api_notify_ready(void) {}
void api_notify_reloading(void) {}
void api_notify_stopping(void) {}

enum mca_err
api_watchdog_start(struct api_ctx *ctx, struct api_watchdog **out)
{
	(void)ctx;
	*out = NULL;
	return MCA_OK;
}

void
api_watchdog_stop(struct api_watchdog *w)
{
	(void)w;
}

#endif
