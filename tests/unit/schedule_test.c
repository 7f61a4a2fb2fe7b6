/*
 * cli/schedule.c unit tests: when `meshca agent` renews (fraction of the
 * lifetime, jitter bounds), how it backs off after failures (doubling,
 * capped, no overflow), when it retries near expiry, and how it parses
 * fractions.  Hostile inputs throughout: empty and negative lifetimes,
 * out-of-range fractions and draws, extreme times, malformed text.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <cmocka.h>

#include "cli/schedule.h"

#define T0 1700000000LL	/* an arbitrary "now" */

/* Without jitter: exactly start + lifetime * fraction. */
static void
test_renew_time_fraction(void **state)
{
	(void)state;
	assert_int_equal(sched_renew_time(T0, T0 + 300, 2.0 / 3.0, 0.0, 0.0), T0 + 200);
	assert_int_equal(sched_renew_time(T0, T0 + 86400, 0.5, 0.0, 0.9), T0 + 43200);
	assert_int_equal(sched_renew_time(T0, T0 + 100, 0.75, 0.0, 0.0), T0 + 75);
	/* A 3-second certificate still gets a wait, never "due at once". */
	assert_int_equal(sched_renew_time(T0, T0 + 3, 2.0 / 3.0, 0.0, 0.0), T0 + 2);
}

/* With jitter: in [start + wait/2, start + wait], at most life*jitter early. */
static void
test_renew_time_jitter_bounds(void **state)
{
	static const int64_t lives[] = { 1, 2, 7, 60, 300, 3600, 86400, 90 * 86400LL };
	static const double fractions[] = { 0.01, 0.5, 2.0 / 3.0, 0.9, 0.999 };
	static const double jitters[] = { 0.0, 0.05, 0.1, 0.5, 0.99 };

	(void)state;
	for (size_t l = 0; l < sizeof(lives) / sizeof(lives[0]); l++)
	for (size_t f = 0; f < sizeof(fractions) / sizeof(fractions[0]); f++)
	for (size_t j = 0; j < sizeof(jitters) / sizeof(jitters[0]); j++)
	for (int k = 0; k <= 100; k++) {
		double u = k == 100 ? 0.999999999 : k / 100.0;
		double life = (double)lives[l], wait = life * fractions[f];
		int64_t at = sched_renew_time(T0, T0 + lives[l], fractions[f], jitters[j], u);

		assert_true(at >= T0);
		assert_true(at <= T0 + lives[l]);
		assert_true((double)(at - T0) <= wait);
		assert_true((double)(at - T0) >= wait / 2.0 - 1.0);
		assert_true((double)(at - T0) >= wait - life * jitters[j] - 1.0);
	}
}

/* The earliest draw moves the time by exactly the jitter share. */
static void
test_renew_time_jitter_spread(void **state)
{
	(void)state;
	assert_int_equal(sched_renew_time(T0, T0 + 1000, 0.6, 0.1, 0.0), T0 + 600);
	assert_int_equal(sched_renew_time(T0, T0 + 1000, 0.6, 0.1, 0.5), T0 + 550);
	/* Jitter larger than half the wait is clamped to half the wait. */
	assert_int_equal(sched_renew_time(T0, T0 + 1000, 0.2, 0.5, 0.9), T0 + 100);
}

static void
test_renew_time_hostile(void **state)
{
	(void)state;
	/* No lifetime left, or a negative one: renew at once (start). */
	assert_int_equal(sched_renew_time(T0, T0, 0.5, 0.1, 0.5), T0);
	assert_int_equal(sched_renew_time(T0, T0 - 100, 0.5, 0.1, 0.5), T0);
	/* Out-of-range fractions fall back to the default 2/3. */
	assert_int_equal(sched_renew_time(T0, T0 + 300, 0.0, 0.0, 0.0), T0 + 200);
	assert_int_equal(sched_renew_time(T0, T0 + 300, 1.0, 0.0, 0.0), T0 + 200);
	assert_int_equal(sched_renew_time(T0, T0 + 300, -3.0, 0.0, 0.0), T0 + 200);
	assert_int_equal(sched_renew_time(T0, T0 + 300, 0.0 / 0.0, 0.0, 0.0), T0 + 200);
	/* Bad jitter or draw: no jitter. */
	assert_int_equal(sched_renew_time(T0, T0 + 300, 0.5, -1.0, 0.5), T0 + 150);
	assert_int_equal(sched_renew_time(T0, T0 + 300, 0.5, 0.1, 1.0), T0 + 150);
	assert_int_equal(sched_renew_time(T0, T0 + 300, 0.5, 0.1, -0.5), T0 + 150);
	/* Extreme times: no overflow, still inside [start, not_after]. */
	{
		int64_t at = sched_renew_time(INT64_MIN, INT64_MAX, 0.5, 0.1, 0.3);

		assert_true(at > INT64_MIN && at < INT64_MAX);
		at = sched_renew_time(INT64_MAX - 10, INT64_MAX, 0.5, 0.0, 0.0);
		assert_true(at >= INT64_MAX - 10 && at <= INT64_MAX);
	}
}

static void
test_backoff(void **state)
{
	static const int64_t want[] = { 5, 5, 10, 20, 40, 80, 160, 300, 300, 300 };

	(void)state;
	for (unsigned n = 0; n < sizeof(want) / sizeof(want[0]); n++)
		assert_int_equal(sched_backoff(n, 5, 300), want[n]);
	/* Many failures: capped, no overflow. */
	assert_int_equal(sched_backoff(64, 5, 300), 300);
	assert_int_equal(sched_backoff(UINT32_MAX, 5, 300), 300);
	assert_int_equal(sched_backoff(200, 1, INT64_MAX), INT64_MAX);
	/* Hostile bounds: min below 1 is 1; max below min is min. */
	assert_int_equal(sched_backoff(1, 0, 300), 1);
	assert_int_equal(sched_backoff(3, -7, 300), 4);
	assert_int_equal(sched_backoff(5, 60, 10), 60);
}

static void
test_retry_time(void **state)
{
	(void)state;
	/* Far from expiry: now + delay. */
	assert_int_equal(sched_retry_time(T0, T0 + 1000, 5), T0 + 5);
	/* The delay would pass expiry: one last try a second before it. */
	assert_int_equal(sched_retry_time(T0, T0 + 10, 300), T0 + 9);
	/* Already at the last second or expired: now + delay (the caller
	 * then finds it expired). */
	assert_int_equal(sched_retry_time(T0 + 9, T0 + 10, 300), T0 + 309);
	assert_int_equal(sched_retry_time(T0 + 50, T0 + 10, 5), T0 + 55);
	/* Hostile: no delay is a second; no overflow. */
	assert_int_equal(sched_retry_time(T0, T0 + 1000, 0), T0 + 1);
	assert_int_equal(sched_retry_time(T0, T0 + 1000, -5), T0 + 1);
	assert_int_equal(sched_retry_time(INT64_MAX - 1, INT64_MAX, INT64_MAX), INT64_MAX);
}

static void
test_fraction_parse(void **state)
{
	static const struct { const char *s; double v; } good[] = {
		{ "0.5", 0.5 }, { "0.75", 0.75 }, { "75%", 0.75 }, { "3/4", 0.75 },
		{ "2/3", 2.0 / 3.0 }, { "1%", 0.01 }, { ".9", 0.9 }, { "99.9%", 0.999 },
	};
	static const char *const bad[] = {
		"", " ", "0", "1", "1.0", "100%", "0%", "-0.5", "1.5", "4/3", "3/0", "3/",
		"/4", "0.5x", "75 %", "75%%", "nan", "inf", "-inf", "0x0.8", "1e-400",
		"0.5 ", " 0.5/", "3/-4", "50%x",
		"0.55555555555555555555555555555555555555555555555555555555555555555555x",
	};
	double v;

	(void)state;
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		assert_int_equal(sched_fraction_parse(good[i].s, &v), MCA_OK);
		assert_true(v > good[i].v - 1e-9 && v < good[i].v + 1e-9);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		v = 42.0;
		if (sched_fraction_parse(bad[i], &v) == MCA_OK)
			fail_msg("'%s' parsed as %g", bad[i], v);
		assert_true(v == 42.0);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_renew_time_fraction),
		cmocka_unit_test(test_renew_time_jitter_bounds),
		cmocka_unit_test(test_renew_time_jitter_spread),
		cmocka_unit_test(test_renew_time_hostile),
		cmocka_unit_test(test_backoff),
		cmocka_unit_test(test_retry_time),
		cmocka_unit_test(test_fraction_parse),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
