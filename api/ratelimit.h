/*
 * Per-address token buckets for failed credential presentations (bad,
 * used or expired enrollment tokens).  Each client address starts with
 * `burst` allowances; a failure spends one; one comes back every
 * `refill_us`.  An address with none left is refused (429) before its
 * token is even looked up, so guessing costs the guesser time while
 * clients at other addresses are not slowed at all.
 *
 * The table is fixed-size (no growth whatever the number of addresses):
 * an address is found by hash with a short linear probe; when every slot
 * of the probe is taken, the slot whose bucket is fullest is reused (a
 * full bucket is the same as no entry, so that loses nothing until the
 * table is flooded with more distinct failing addresses than it holds,
 * and then the oldest debts are forgotten first).  IPv6 addresses are
 * keyed by their /64, the block one host usually controls.
 *
 * Thread-safe (one mutex); no I/O; time is passed in (monotonic
 * microseconds) so tests control it.
 */
#ifndef MCA_API_RATELIMIT_H
#define MCA_API_RATELIMIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ca/common/err.h"

struct sockaddr;
struct api_ratelimit;

#define API_RATELIMIT_SLOTS	4096	/* default table size: ~160 KiB */
#define API_RATELIMIT_PROBE	16

/* burst >= 1, refill_us >= 1, slots >= API_RATELIMIT_PROBE (rounded up to a
 * power of two).  MCA_ERR_INVALID otherwise, MCA_ERR_NOMEM. */
enum mca_err api_ratelimit_new(unsigned burst, int64_t refill_us, size_t slots,
    struct api_ratelimit **out) MCA_WUR;
/* NULL is a no-op. */
void api_ratelimit_free(struct api_ratelimit *rl);

/* true when addr may present a credential now.  When false, *retry_s is
 * the whole seconds until it may (>= 1).  A NULL rl or addr, or a family
 * other than AF_INET/AF_INET6, is always allowed. */
bool api_ratelimit_allow(struct api_ratelimit *rl, const struct sockaddr *addr, int64_t now_us,
    unsigned *retry_s);
/* Spends one allowance of addr (a failed presentation). */
void api_ratelimit_charge(struct api_ratelimit *rl, const struct sockaddr *addr, int64_t now_us);
/* Addresses currently tracked (for tests and metrics). */
size_t api_ratelimit_entries(struct api_ratelimit *rl);

#endif
