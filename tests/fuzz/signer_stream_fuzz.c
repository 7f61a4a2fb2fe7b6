/*
 * The signer process's serving loop (ca_signer_serve): the byte stream
 * the network process writes to it.  signer_fuzz covers the admission
 * check of one TBS; this covers what comes before it: framing, buffered
 * reads of several requests at once, requests split across reads, bodies
 * larger than the read buffer, headers refused, and a stream cut short.
 * Whoever controls meshcad's network process controls these bytes.
 *
 * Input: the whole stream.  It is written to one end of a socketpair and
 * that end shut for writing; ca_signer_serve runs on the other end until
 * it returns, while a thread reads and drops its replies (so a long run of
 * replies cannot block it).  It must return, never crash, and say OK only
 * for a stream that ended between requests.
 */
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "ca/ca.h"
#include "tests/fuzz/fuzz_util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct feed {
	int		 fd;
	const uint8_t	*data;
	size_t		 size;
};

/* Writes the stream, shuts the write side, then drains the replies. */
static void *
feed_main(void *arg)
{
	struct feed *f = arg;
	unsigned char sink[4096];
	size_t off = 0;
	ssize_t n;

	while (off < f->size) {
		n = write(f->fd, f->data + off, f->size - off);
		if (n <= 0)
			break;		/* the signer stopped reading: it has refused the stream */
		off += (size_t)n;
	}
	(void)shutdown(f->fd, SHUT_WR);
	while (read(f->fd, sink, sizeof(sink)) > 0)
		;
	return NULL;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const struct ca_signer *s = fuzz_signer();
	struct feed f = { -1, data, size };
	pthread_t th;
	int sv[2];

	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0)
		abort();
	f.fd = sv[0];
	if (pthread_create(&th, NULL, feed_main, &f) != 0)
		abort();
	(void)ca_signer_serve(s, sv[1]);
	close(sv[1]);		/* the feeder's reads end, and a blocked write fails */
	if (pthread_join(th, NULL) != 0)
		abort();
	close(sv[0]);
	return 0;
}
