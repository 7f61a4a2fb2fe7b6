#include "ca/common/timefmt.h"

#include <ctype.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#define MAX_DURATION (100LL * 366 * 86400)

int64_t
mca_now(void)
{
	return (int64_t)time(NULL);
}

int64_t
mca_monotonic_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

void
mca_time_format(int64_t t, char out[MCA_TIME_LEN])
{
	time_t tt = (time_t)t;
	struct tm tm;

	if (gmtime_r(&tt, &tm) == NULL) {
		snprintf(out, MCA_TIME_LEN, "invalid");
		return;
	}
	strftime(out, MCA_TIME_LEN, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

enum mca_err
mca_time_parse(const char *s, int64_t *out)
{
	struct tm tm;
	const char *end;

	char canon[MCA_TIME_LEN];
	int64_t t;

	memset(&tm, 0, sizeof(tm));
	end = strptime(s, "%Y-%m-%dT%H:%M:%SZ", &tm);
	if (end == NULL || *end != '\0')
		goto bad;
	t = (int64_t)timegm(&tm);
	/* strptime is lenient (blanks, one-digit fields, February 30th):
	 * accept only the one canonical spelling of a real instant. */
	mca_time_format(t, canon);
	if (strcmp(canon, s) != 0)
		goto bad;
	*out = t;
	return MCA_OK;
bad:
	return mca_err_set(MCA_ERR_PARSE, "RFC 3339: '%.40s' is not a UTC time like 2026-01-02T03:04:05Z", s);
}

enum mca_err
mca_duration_parse(const char *s, int64_t *out)
{
	int64_t total = 0, n;
	const char *p = s;
	bool any = false;

	if (s == NULL || *s == '\0')
		return mca_err_set(MCA_ERR_PARSE, "empty duration");
	while (*p != '\0') {
		int64_t unit;

		if (!isdigit((unsigned char)*p))
			goto bad;
		for (n = 0; isdigit((unsigned char)*p); p++) {
			n = n * 10 + (*p - '0');
			if (n > MAX_DURATION)
				goto big;
		}
		switch (*p) {
		case 's': unit = 1; p++; break;
		case 'm': unit = 60; p++; break;
		case 'h': unit = 3600; p++; break;
		case 'd': unit = 86400; p++; break;
		case '\0':
			if (any)	/* "1h30" is ambiguous */
				goto bad;
			unit = 1;
			break;
		default:
			goto bad;
		}
		if (n > MAX_DURATION / unit)
			goto big;
		total += n * unit;
		if (total > MAX_DURATION)
			goto big;
		any = true;
	}
	*out = total;
	return MCA_OK;
bad:
	return mca_err_set(MCA_ERR_PARSE, "'%s' is not a duration (examples: 300, 90s, 5m, 24h, 1h30m, 30d)", s);
big:
	return mca_err_set(MCA_ERR_PARSE, "duration '%s' exceeds 100 years", s);
}

void
mca_duration_format(int64_t secs, char out[MCA_TIME_LEN])
{
	int64_t d = secs / 86400, h = secs % 86400 / 3600, m = secs % 3600 / 60, s = secs % 60;
	size_t n = 0;

	out[0] = '\0';
	if (secs <= 0) {
		snprintf(out, MCA_TIME_LEN, "0s");
		return;
	}
	if (d)
		n += (size_t)snprintf(out + n, MCA_TIME_LEN - n, "%lldd", (long long)d);
	if (h && n < MCA_TIME_LEN)
		n += (size_t)snprintf(out + n, MCA_TIME_LEN - n, "%lldh", (long long)h);
	if (m && n < MCA_TIME_LEN)
		n += (size_t)snprintf(out + n, MCA_TIME_LEN - n, "%lldm", (long long)m);
	if (s && n < MCA_TIME_LEN)
		snprintf(out + n, MCA_TIME_LEN - n, "%llds", (long long)s);
}
