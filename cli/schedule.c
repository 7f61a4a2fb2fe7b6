/* Renewal timing of `meshca agent`; see schedule.h. */
#include "cli/schedule.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int64_t
sched_renew_time(int64_t start, int64_t not_after, double fraction, double jitter, double u)
{
	double life, wait, early, at;

	if (not_after <= start)
		return start;
	if (!(fraction > 0.0 && fraction < 1.0))
		fraction = SCHED_DEFAULT_FRACTION;
	if (!(jitter >= 0.0 && jitter < 1.0))
		jitter = 0.0;
	if (!(u >= 0.0 && u < 1.0))
		u = 0.0;
	/* In double: not_after - start may not fit an int64_t. */
	life = (double)not_after - (double)start;
	wait = life * fraction;
	early = life * jitter * u;
	if (early > wait / 2.0)
		early = wait / 2.0;
	at = (double)start + (wait - early);
	if (at >= (double)not_after)
		return not_after;
	if (at <= (double)start)
		return start;
	return (int64_t)at;
}

int64_t
sched_backoff(unsigned n, int64_t min, int64_t max)
{
	int64_t d = min > 0 ? min : 1;

	if (max < d)
		max = d;
	for (unsigned i = 1; i < n && d < max; i++)
		d = d > max / 2 ? max : d * 2;
	return d < max ? d : max;
}

int64_t
sched_retry_time(int64_t now, int64_t not_after, int64_t delay)
{
	int64_t last = not_after - 1;

	if (delay < 1)
		delay = 1;
	if (delay > INT64_MAX - now)
		return INT64_MAX;
	if (now < last && now + delay > last)
		return last;
	return now + delay;
}

enum mca_err
sched_fraction_parse(const char *s, double *out)
{
	char *end = NULL;
	double v, d;

	/* Decimal only: strtod alone would take "nan", "inf", hex and blanks. */
	if (s[strspn(s, "0123456789./%")] != '\0')
		goto bad;
	errno = 0;
	v = strtod(s, &end);
	if (end == s || errno != 0)
		goto bad;
	if (*end == '%' && end[1] == '\0') {
		v /= 100.0;
	} else if (*end == '/') {
		const char *den = end + 1;

		d = strtod(den, &end);
		if (end == den || *end != '\0' || errno != 0 || !(d > 0.0))
			goto bad;
		v /= d;
	} else if (*end != '\0') {
		goto bad;
	}
	if (!(v > 0.0 && v < 1.0))
		goto bad;
	*out = v;
	return MCA_OK;
bad:
	return mca_err_set(MCA_ERR_INVALID, "'%.40s' is not a fraction between 0 and 1 "
	    "(0.75, 75%% or 3/4)", s);
}
