/*
 * api/ratelimit.c: per-address token buckets for failed token
 * presentations.  Burst, refill and Retry-After arithmetic, address
 * keying (IPv4, IPv4-mapped IPv6, IPv6 /64), a bounded table under a
 * flood of distinct addresses, and bad parameters.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include <cmocka.h>

#include "api/ratelimit.h"

#define SEC 1000000LL

static struct sockaddr_in
v4(const char *a)
{
	struct sockaddr_in in;

	memset(&in, 0, sizeof(in));
	in.sin_family = AF_INET;
	assert_int_equal(inet_pton(AF_INET, a, &in.sin_addr), 1);
	return in;
}

static struct sockaddr_in6
v6(const char *a)
{
	struct sockaddr_in6 in6;

	memset(&in6, 0, sizeof(in6));
	in6.sin6_family = AF_INET6;
	assert_int_equal(inet_pton(AF_INET6, a, &in6.sin6_addr), 1);
	return in6;
}

#define SA(x) ((const struct sockaddr *)(const void *)&(x))

static void
test_burst_then_refill(void **state)
{
	struct api_ratelimit *rl = NULL;
	struct sockaddr_in a = v4("127.0.0.2"), b = v4("127.0.0.1");
	unsigned retry = 99;
	int64_t t = 1000 * SEC;

	(void)state;
	assert_int_equal(api_ratelimit_new(3, 2 * SEC, 64, &rl), MCA_OK);
	for (int i = 0; i < 3; i++) {
		assert_true(api_ratelimit_allow(rl, SA(a), t, &retry));
		assert_int_equal(retry, 0);
		api_ratelimit_charge(rl, SA(a), t);
	}
	assert_false(api_ratelimit_allow(rl, SA(a), t, &retry));
	assert_int_equal(retry, 2);
	/* Other addresses are not affected. */
	assert_true(api_ratelimit_allow(rl, SA(b), t, &retry));
	/* Charges while empty do not extend the wait beyond one refill. */
	for (int i = 0; i < 100; i++)
		api_ratelimit_charge(rl, SA(a), t);
	assert_false(api_ratelimit_allow(rl, SA(a), t + SEC, &retry));
	assert_int_equal(retry, 1);
	assert_true(api_ratelimit_allow(rl, SA(a), t + 2 * SEC, &retry));
	/* One allowance back: one failure empties it again. */
	api_ratelimit_charge(rl, SA(a), t + 2 * SEC);
	assert_false(api_ratelimit_allow(rl, SA(a), t + 2 * SEC, &retry));
	/* Long after, the whole burst is back. */
	t += 100 * SEC;
	for (int i = 0; i < 3; i++) {
		assert_true(api_ratelimit_allow(rl, SA(a), t, &retry));
		api_ratelimit_charge(rl, SA(a), t);
	}
	assert_false(api_ratelimit_allow(rl, SA(a), t, &retry));
	api_ratelimit_free(rl);
}

static void
test_address_keys(void **state)
{
	struct api_ratelimit *rl = NULL;
	struct sockaddr_in6 h1 = v6("2001:db8:1:2::1"), h2 = v6("2001:db8:1:2:ffff::9");
	struct sockaddr_in6 other = v6("2001:db8:1:3::1");
	struct sockaddr_in6 mapped = v6("::ffff:192.0.2.7");
	struct sockaddr_in plain = v4("192.0.2.7");
	struct sockaddr_un_like { sa_family_t f; char p[32]; } unix_sa = { AF_UNIX, "x" };
	unsigned retry;

	(void)state;
	assert_int_equal(api_ratelimit_new(1, 10 * SEC, 64, &rl), MCA_OK);
	api_ratelimit_charge(rl, SA(h1), 0);
	/* The same /64 shares the bucket; the next /64 does not. */
	assert_false(api_ratelimit_allow(rl, SA(h2), 0, &retry));
	assert_true(api_ratelimit_allow(rl, SA(other), 0, &retry));
	/* ::ffff:a.b.c.d is the IPv4 address. */
	api_ratelimit_charge(rl, SA(mapped), 0);
	assert_false(api_ratelimit_allow(rl, SA(plain), 0, &retry));
	/* Unknown families and NULL are never limited nor tracked. */
	api_ratelimit_charge(rl, SA(unix_sa), 0);
	assert_true(api_ratelimit_allow(rl, SA(unix_sa), 0, &retry));
	api_ratelimit_charge(rl, NULL, 0);
	assert_true(api_ratelimit_allow(rl, NULL, 0, &retry));
	assert_true(api_ratelimit_allow(NULL, SA(plain), 0, &retry));
	api_ratelimit_charge(NULL, SA(plain), 0);
	assert_int_equal(api_ratelimit_entries(rl), 2);
	api_ratelimit_free(rl);
}

/* A flood of distinct failing addresses never grows the table, and an
 * address deep in debt is not pushed out by addresses with less. */
static void
test_bounded_under_flood(void **state)
{
	struct api_ratelimit *rl = NULL;
	struct sockaddr_in debtor = v4("10.0.0.1");
	unsigned retry;

	(void)state;
	assert_int_equal(api_ratelimit_new(5, 60 * SEC, 64, &rl), MCA_OK);
	for (int i = 0; i < 5; i++)
		api_ratelimit_charge(rl, SA(debtor), 0);
	for (uint32_t i = 0; i < 200000; i++) {
		struct sockaddr_in a;

		memset(&a, 0, sizeof(a));
		a.sin_family = AF_INET;
		a.sin_addr.s_addr = htonl(0x0b000000u + i);
		api_ratelimit_charge(rl, SA(a), 0);
	}
	assert_true(api_ratelimit_entries(rl) <= 64);
	assert_false(api_ratelimit_allow(rl, SA(debtor), 0, &retry));
	assert_int_equal(retry, 60);
	api_ratelimit_free(rl);
}

static void
test_bad_parameters(void **state)
{
	struct api_ratelimit *rl = (void *)1;

	(void)state;
	assert_int_equal(api_ratelimit_new(0, SEC, 64, &rl), MCA_ERR_INVALID);
	assert_null(rl);
	assert_int_equal(api_ratelimit_new(1, 0, 64, &rl), MCA_ERR_INVALID);
	assert_int_equal(api_ratelimit_new(1, SEC, 3, &rl), MCA_ERR_INVALID);
	assert_int_equal(api_ratelimit_new(1, SEC, (size_t)1 << 30, &rl), MCA_ERR_INVALID);
	/* Rounded up to a power of two. */
	assert_int_equal(api_ratelimit_new(1, SEC, 100, &rl), MCA_OK);
	api_ratelimit_free(rl);
	api_ratelimit_free(NULL);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_burst_then_refill),
		cmocka_unit_test(test_address_keys),
		cmocka_unit_test(test_bounded_under_flood),
		cmocka_unit_test(test_bad_parameters),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
