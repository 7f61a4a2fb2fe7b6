/*
 * Token buckets per client address, kept as GCRA's "theoretical arrival
 * time" (one integer per address): each failure pushes tat forward by
 * refill_us from max(tat, now); the address is out of allowances while
 * tat - now > (burst - 1) * refill_us.
 */
#include "api/ratelimit.h"

#include <netinet/in.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

struct rl_key {
	unsigned char	family;		/* 0: free slot */
	unsigned char	addr[8];	/* IPv4 address, or the IPv6 /64 */
};

struct rl_slot {
	struct rl_key	key;
	int64_t		tat;		/* monotonic microseconds */
};

struct api_ratelimit {
	pthread_mutex_t	 lock;
	unsigned	 burst;
	int64_t		 refill_us;
	size_t		 mask;		/* slots - 1 */
	struct rl_slot	*slot;
};

enum mca_err
api_ratelimit_new(unsigned burst, int64_t refill_us, size_t slots, struct api_ratelimit **out)
{
	struct api_ratelimit *rl;
	size_t n = API_RATELIMIT_PROBE;

	*out = NULL;
	if (burst < 1 || refill_us < 1 || slots < API_RATELIMIT_PROBE || slots > ((size_t)1 << 24))
		return mca_err_set(MCA_ERR_INVALID, "rate limit: burst %u, refill %lld us, %zu slots",
		    burst, (long long)refill_us, slots);
	while (n < slots)
		n <<= 1;
	if ((rl = calloc(1, sizeof(*rl))) == NULL)
		return MCA_ERR_NOMEM;
	if ((rl->slot = calloc(n, sizeof(*rl->slot))) == NULL ||
	    pthread_mutex_init(&rl->lock, NULL) != 0) {
		free(rl->slot);
		free(rl);
		return MCA_ERR_NOMEM;
	}
	rl->burst = burst;
	rl->refill_us = refill_us;
	rl->mask = n - 1;
	*out = rl;
	return MCA_OK;
}

void
api_ratelimit_free(struct api_ratelimit *rl)
{
	if (rl == NULL)
		return;
	pthread_mutex_destroy(&rl->lock);
	free(rl->slot);
	free(rl);
}

/* false for families we do not limit. */
static bool
rl_key_of(const struct sockaddr *sa, struct rl_key *k)
{
	static const unsigned char mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };

	memset(k, 0, sizeof(*k));
	if (sa == NULL)
		return false;
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *in = (const void *)sa;

		k->family = 4;
		memcpy(k->addr, &in->sin_addr, 4);
		return true;
	}
	if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *in6 = (const void *)sa;
		const unsigned char *b = in6->sin6_addr.s6_addr;

		if (memcmp(b, mapped, sizeof(mapped)) == 0) {	/* ::ffff:a.b.c.d is IPv4 */
			k->family = 4;
			memcpy(k->addr, b + 12, 4);
		} else {
			k->family = 6;
			memcpy(k->addr, b, 8);
		}
		return true;
	}
	return false;
}

/* FNV-1a over the key. */
static size_t
rl_hash(const struct rl_key *k)
{
	uint64_t h = 1469598103934665603ULL;
	const unsigned char *p = (const unsigned char *)k;

	for (size_t i = 0; i < sizeof(*k); i++) {
		h ^= p[i];
		h *= 1099511628211ULL;
	}
	return (size_t)(h ^ (h >> 32));
}

static int64_t
rl_debt(const struct rl_slot *s, int64_t now)
{
	if (s->key.family == 0)
		return -1;
	return s->tat > now ? s->tat - now : 0;
}

/* Under rl->lock: the slot of k, or NULL when it has none (create false),
 * or a fresh or reused slot for it (create true). */
static struct rl_slot *
rl_find(struct api_ratelimit *rl, const struct rl_key *k, int64_t now, bool create)
{
	size_t h = rl_hash(k);
	struct rl_slot *victim = NULL;

	for (size_t i = 0; i < API_RATELIMIT_PROBE; i++) {
		struct rl_slot *s = &rl->slot[(h + i) & rl->mask];

		if (s->key.family == k->family && memcmp(s->key.addr, k->addr, sizeof(k->addr)) == 0)
			return s;
		/* A free slot first, else the one with the least debt (a
		 * bucket full again, tat <= now, has none). */
		if (victim == NULL || rl_debt(s, now) < rl_debt(victim, now))
			victim = s;
	}
	if (!create)
		return NULL;
	victim->key = *k;
	victim->tat = now;
	return victim;
}

bool
api_ratelimit_allow(struct api_ratelimit *rl, const struct sockaddr *addr, int64_t now_us,
    unsigned *retry_s)
{
	struct rl_key k;
	struct rl_slot *s;
	int64_t over;
	bool ok = true;

	*retry_s = 0;
	if (rl == NULL || !rl_key_of(addr, &k))
		return true;
	pthread_mutex_lock(&rl->lock);
	if ((s = rl_find(rl, &k, now_us, false)) != NULL) {
		over = s->tat - now_us - (int64_t)(rl->burst - 1) * rl->refill_us;
		if (over > 0) {
			ok = false;
			*retry_s = (unsigned)((over + 999999) / 1000000);
		}
	}
	pthread_mutex_unlock(&rl->lock);
	return ok;
}

void
api_ratelimit_charge(struct api_ratelimit *rl, const struct sockaddr *addr, int64_t now_us)
{
	struct rl_key k;
	struct rl_slot *s;
	int64_t cap;

	if (rl == NULL || !rl_key_of(addr, &k))
		return;
	pthread_mutex_lock(&rl->lock);
	s = rl_find(rl, &k, now_us, true);
	if (s->tat < now_us)
		s->tat = now_us;
	/* Debt stops at an empty bucket: presentations refused with 429 are
	 * not charged, and a long flood does not lock an address out longer
	 * than one refill period after it stops. */
	cap = now_us + (int64_t)rl->burst * rl->refill_us;
	s->tat = s->tat + rl->refill_us > cap ? cap : s->tat + rl->refill_us;
	pthread_mutex_unlock(&rl->lock);
}

size_t
api_ratelimit_entries(struct api_ratelimit *rl)
{
	size_t n = 0;

	if (rl == NULL)
		return 0;
	pthread_mutex_lock(&rl->lock);
	for (size_t i = 0; i <= rl->mask; i++)
		n += rl->slot[i].key.family != 0;
	pthread_mutex_unlock(&rl->lock);
	return n;
}
