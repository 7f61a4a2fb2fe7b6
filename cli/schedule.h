/*
 * When the agent renews: pure arithmetic on Unix seconds, no clock and no
 * randomness of its own (callers pass both in), so that it can be unit
 * tested exactly (tests/unit/schedule_test.c).
 */
#ifndef MCA_CLI_SCHEDULE_H
#define MCA_CLI_SCHEDULE_H

#include <stdint.h>

#include "ca/common/err.h"

#define SCHED_DEFAULT_FRACTION	(2.0 / 3.0)	/* renew after 2/3 of the lifetime */
#define SCHED_DEFAULT_JITTER	0.1		/* up to 10% of the lifetime earlier */
#define SCHED_DEFAULT_BACKOFF_MIN 5		/* seconds */
#define SCHED_DEFAULT_BACKOFF_MAX 300

/*
 * The moment to renew a certificate valid until not_after, held since
 * start (the later of its notBefore and the moment it was written: CAs
 * backdate notBefore, and counting that minute would make a short-lived
 * certificate due the moment it arrives).  fraction in (0, 1): the share
 * of the lifetime to let pass; jitter in [0, 1): at most that share of the
 * lifetime earlier, scaled by u in [0, 1), the caller's random draw, so a
 * fleet issued together does not come back together.  The jitter never
 * takes more than half of the wait away.
 *
 * Result: in [start + lifetime * fraction / 2, start + lifetime * fraction],
 * never after not_after; start itself when the lifetime is not positive.
 */
int64_t sched_renew_time(int64_t start, int64_t not_after, double fraction, double jitter,
    double u);

/* Seconds to wait after the n-th failure in a row (n >= 1): min doubled
 * n - 1 times, capped at max, without overflow. */
int64_t sched_backoff(unsigned n, int64_t min, int64_t max);

/* When to try again after a failure at now: now + delay, but a last try
 * one second before not_after rather than none while still valid. */
int64_t sched_retry_time(int64_t now, int64_t not_after, int64_t delay);

/* Parses a fraction strictly between 0 and 1: "0.75", "75%" or "3/4". */
enum mca_err sched_fraction_parse(const char *s, double *out) MCA_WUR;

#endif
