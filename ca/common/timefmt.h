/*
 * Times are int64_t seconds since the Unix epoch, UTC.  Text forms are
 * RFC 3339 in UTC ("2026-11-22T15:31:19Z").  Durations are written like Go
 * and step-ca write them: "90s", "5m", "24h", "1h30m", "30d"; a bare number
 * means seconds.
 */
#ifndef MCA_TIMEFMT_H
#define MCA_TIMEFMT_H

#include <stdint.h>

#include "ca/common/err.h"

#define MCA_TIME_LEN 32

int64_t mca_now(void);
/* Monotonic clock in microseconds, for durations of requests. */
int64_t mca_monotonic_us(void);
void mca_time_format(int64_t t, char out[MCA_TIME_LEN]);
enum mca_err mca_time_parse(const char *s, int64_t *out) MCA_WUR;
/* Accepts up to 100 years; rejects empty, negative, overflowing input. */
enum mca_err mca_duration_parse(const char *s, int64_t *out) MCA_WUR;
void mca_duration_format(int64_t secs, char out[MCA_TIME_LEN]);

#endif
