#include "ca/common/log.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "ca/common/buf.h"

/* A log line that hits its 16 KiB cap is cut short rather than lost. */
static void
put(struct mca_buf *b, const void *p, size_t n)
{
	if (mca_buf_append(b, p, n) != MCA_OK)
		return;
}

static void
put_str(struct mca_buf *b, const char *s)
{
	put(b, s, strlen(s));
}

/* Atomic: meshcad changes them on SIGHUP while other threads log. */
static _Atomic int log_min = MCA_LOG_INFO;
static atomic_bool log_json;
static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;

static const char *const level_names[MCA_LOG_LEVEL_MAX] = {
	[MCA_LOG_DEBUG] = "debug", [MCA_LOG_INFO] = "info",
	[MCA_LOG_WARN] = "warn", [MCA_LOG_ERROR] = "error",
};

void
mca_log_setup(enum mca_log_level min, bool json)
{
	atomic_store(&log_min, (int)min);
	atomic_store(&log_json, json);
}

enum mca_err
mca_log_level_parse(const char *s, enum mca_log_level *out)
{
	for (int i = 0; i < MCA_LOG_LEVEL_MAX; i++) {
		if (strcasecmp(s, level_names[i]) == 0) {
			*out = (enum mca_log_level)i;
			return MCA_OK;
		}
	}
	return mca_err_set(MCA_ERR_INVALID, "unknown log level '%s' (debug, info, warn, error)", s);
}

/* Append v quoted: logfmt and JSON share the escaping of '"', '\\' and
 * control characters, which keeps one log line one line. */
static void
put_quoted(struct mca_buf *b, const char *v)
{
	char esc[8];

	put(b, "\"", 1);
	for (const unsigned char *p = (const unsigned char *)v; *p; p++) {
		if (*p == '"' || *p == '\\') {
			esc[0] = '\\';
			esc[1] = (char)*p;
			put(b, esc, 2);
		} else if (*p < 0x20 || *p == 0x7f) {
			snprintf(esc, sizeof(esc), "\\u%04x", *p);
			put(b, esc, 6);
		} else {
			put(b, p, 1);
		}
	}
	put(b, "\"", 1);
}

static bool
needs_quotes(const char *v)
{
	if (*v == '\0')
		return true;
	for (const unsigned char *p = (const unsigned char *)v; *p; p++)
		if (*p <= ' ' || *p == '"' || *p == '=' || *p == '\\' || *p == 0x7f)
			return true;
	return false;
}

static void
put_field(struct mca_buf *b, const char *k, const char *v, bool first, bool json)
{
	if (json) {
		put_str(b, first ? "{" : ",");
		put_quoted(b, k);
		put(b, ":", 1);
		put_quoted(b, v);
		return;
	}
	if (!first)
		put(b, " ", 1);
	put_str(b, k);
	put(b, "=", 1);
	if (needs_quotes(v))
		put_quoted(b, v);
	else
		put_str(b, v);
}

static void
log_emit(enum mca_log_level lvl, const char *msg, va_list ap)
{
	struct mca_buf b;
	struct timespec ts;
	struct tm tm;
	char when[96];
	const char *k, *v;
	bool json = atomic_load(&log_json);	/* one format for the whole line */

	mca_buf_init(&b, 16384, false);
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	snprintf(when, sizeof(when), "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ",
	    tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
	    tm.tm_min, tm.tm_sec, (int)(ts.tv_nsec / 1000000));
	put_field(&b, "ts", when, true, json);
	put_field(&b, "level", level_names[lvl], false, json);
	put_field(&b, "msg", msg, false, json);
	while ((k = va_arg(ap, const char *)) != NULL) {
		v = va_arg(ap, const char *);
		if (v != NULL)
			put_field(&b, k, v, false, json);
	}
	put_str(&b, json ? "}\n" : "\n");
	pthread_mutex_lock(&log_lock);
	fwrite(b.data, 1, b.len, stderr);
	fflush(stderr);
	pthread_mutex_unlock(&log_lock);
	mca_buf_free(&b);
}

void
mca_log(enum mca_log_level lvl, const char *msg, ...)
{
	va_list ap;

	if ((int)lvl < atomic_load(&log_min) || lvl >= MCA_LOG_LEVEL_MAX)
		return;
	va_start(ap, msg);
	log_emit(lvl, msg, ap);
	va_end(ap);
}

void
mca_logf(enum mca_log_level lvl, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;

	if ((int)lvl < atomic_load(&log_min) || lvl >= MCA_LOG_LEVEL_MAX)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	mca_log(lvl, msg, (const char *)NULL);
}
