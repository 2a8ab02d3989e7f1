/*
 * input.c - splitting a byte stream (mq-send's stdin) into records
 *
 * Records are separated by a delimiter of one or more bytes, or the
 * whole stream is one record.  The delimiter is not part of a record; a
 * last record without one is still a record.
 *
 * Reading overlaps with the caller's work: two buffers take turns, and
 * while the caller encodes and appends the records of one, the I/O
 * engine already reads into the other (io_uring read-ahead; the sync
 * engine reads when asked, and so does io_uring while the input
 * trickles: see refill).  Records are handed out in place, without a
 * copy, unless one straddles two reads; then it is put together in a
 * carry buffer.  Memory stays bounded: a record longer than the limit
 * is -EMSGSIZE, found before it is all read.  After a record,
 * spool_input_more hands out the whole records that follow it in the
 * buffer in one call, for the writer's bulk path; spool_input_left says,
 * without waiting, whether the input has ended and how many records
 * are left.
 */

#include <sys/stat.h>
#include <sys/types.h>

#include <errno.h>
#include <poll.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define HAVE_LINES_AVX2
#endif

#include "spool_impl.h"

#define CHUNK	(1u << 20)
#define TRICKLE	(4u << 10)	/* a read this short: no read-ahead */

struct spool_input {
	struct spool_io	*io;
	int		 fd;
	unsigned char	*delim;
	size_t		 dlen;		/* 0: the whole stream is one record */
	size_t		 max;
	unsigned char	*buf[2];
	size_t		 len;		/* bytes in buf[cur] */
	size_t		 pos;		/* parsed up to here */
	int		 cur;
	struct spool_io_req rd;		/* the read into buf[!cur], when out */
	int		 eof;
	int		 done;
	unsigned char	*carry;
	size_t		 clen;
	size_t		 ccap;
	int		 cused;		/* carry was handed out last time */
	int		 trickle;	/* the last read was short: read when asked */
	int		 early;		/* spool_input_left read into buf[!cur]: */
	ssize_t		 got;		/* ...this, for refill to take */
	int		 avx2;		/* the CPU has it: lines_avx2 */
};

/* spool_input_open - read records from fd, at most max bytes each */
int
spool_input_open(struct spool *sp, int fd, const void *delim, size_t dlen,
    size_t max, struct spool_input **inp)
{
	struct spool_input *in;
	struct stat st;

	if ((in = calloc(1, sizeof(*in))) == NULL)
		return -ENOMEM;
	in->fd = fd;
	in->max = max;
	in->dlen = dlen;
	in->io = spool_get_io(sp);
	in->buf[0] = malloc(CHUNK);
	in->buf[1] = malloc(CHUNK);
	in->delim = malloc(dlen + 1);
	if (in->io == NULL || !in->buf[0] || !in->buf[1] || !in->delim) {
		spool_input_close(in);
		return -ENOMEM;
	}
	memcpy(in->delim, delim, dlen);
#ifdef HAVE_LINES_AVX2
	in->avx2 = __builtin_cpu_supports("avx2") &&
	    __builtin_cpu_supports("bmi");
#endif
	/* bigger pipe reads mean fewer wakeups; a failure costs nothing */
	if (fstat(fd, &st) == 0 && S_ISFIFO(st.st_mode))
		(void)fcntl(fd, F_SETPIPE_SZ, CHUNK);
	*inp = in;
	return 0;
}

/* spool_input_close - release the reader (a pending read is waited for) */
void
spool_input_close(struct spool_input *in)
{
	if (in == NULL)
		return;
	if (in->rd.pending)
		(void)spool_io_read_wait(in->io, &in->rd, -1);
	free(in->buf[0]);
	free(in->buf[1]);
	free(in->delim);
	free(in->carry);
	free(in);
}

/* keep - append bytes to the carry buffer, within the record limit */
static int
keep(struct spool_input *in, const unsigned char *p, size_t n)
{
	unsigned char *nc;
	size_t ncap;

	if (in->clen + n > in->max + in->dlen)
		return -EMSGSIZE;
	if (in->clen + n > in->ccap) {
		ncap = in->ccap ? in->ccap : 65536;
		while (ncap < in->clen + n)
			ncap *= 2;
		if ((nc = realloc(in->carry, ncap)) == NULL)
			return -ENOMEM;
		in->carry = nc;
		in->ccap = ncap;
	}
	memcpy(in->carry + in->clen, p, n);
	in->clen += n;
	return 0;
}

/* find - the first delimiter in p[0..n), or NULL */
static const unsigned char *
find(const struct spool_input *in, const unsigned char *p, size_t n)
{
	if (in->dlen == 1)
		return memchr(p, in->delim[0], n);
	return memmem(p, n, in->delim, in->dlen);
}

/*
 * straddle - how many delimiter bytes end the carry such that the rest
 * of the delimiter starts p (0: none)
 */
static size_t
straddle(const struct spool_input *in, const unsigned char *p, size_t n)
{
	size_t k;

	for (k = in->dlen - 1; k > 0; k--)
		if (in->clen >= k && n >= in->dlen - k &&
		    memcmp(in->carry + in->clen - k, in->delim, k) == 0 &&
		    memcmp(p, in->delim + k, in->dlen - k) == 0)
			return k;
	return 0;
}

/*
 * plain_read - read into the spare buffer now (a trickling input), as the
 * sync engine does: poll first when there is a timeout, and when stdin
 * was left non-blocking
 */
static ssize_t
plain_read(struct spool_input *in, int timeout_ms)
{
	struct pollfd pfd;
	ssize_t n;
	int r;

	for (;;) {
		if (timeout_ms >= 0) {
			pfd.fd = in->fd;
			pfd.events = POLLIN;
			if ((r = poll(&pfd, 1, timeout_ms)) == 0)
				return -ETIMEDOUT;
			if (r == -1 && errno != EINTR)
				return -errno;
		}
		if ((n = read(in->fd, in->buf[!in->cur], CHUNK)) >= 0)
			return n;
		if (errno == EAGAIN && timeout_ms < 0) {
			pfd.fd = in->fd;
			pfd.events = POLLIN;
			(void)poll(&pfd, 1, -1);
		} else if (errno != EINTR && errno != EAGAIN)
			return -errno;
	}
}

/*
 * refill - swap in the buffer being read, start reading the other.
 * Input that trickles (a read of less than TRICKLE bytes: a producer
 * writing a line at a time) is read with plain read(2) when it is
 * wanted, not ahead through the ring: a ring's read of an idle pipe
 * completes through a wakeup and task work, tens of microseconds later
 * than read(2) returns, and that is a message's latency (issue 14).
 * Read-ahead comes back with the first large read.
 */
static int
refill(struct spool_input *in, int timeout_ms)
{
	struct pollfd pfd;
	ssize_t n;
	int r;

	if (in->early) {
		/* spool_input_left's read, already done */
		in->early = 0;
		if ((n = in->got) < 0)
			return (int)n;
		goto got;
	}
	if (in->trickle && !in->rd.pending) {
		/*
		 * The last read took all the input had (a pipe's read
		 * returns what is there): asked not to wait, say at once
		 * that it is idle rather than poll(2) to learn it again.
		 */
		if (timeout_ms == 0)
			return -ETIMEDOUT;
		if ((n = plain_read(in, timeout_ms)) < 0)
			return (int)n;
		goto got;
	}
	for (;;) {
		if (!in->rd.pending && (r = spool_io_read_start(in->io,
		    &in->rd, in->fd, in->buf[!in->cur], CHUNK, -1)) < 0)
			return r;
		n = spool_io_read_wait(in->io, &in->rd, timeout_ms);
		if (n == -ETIMEDOUT)
			return (int)n;
		if (n == -EAGAIN) {
			/* stdin left non-blocking: wait until it has data */
			pfd.fd = in->fd;
			pfd.events = POLLIN;
			if (poll(&pfd, 1, timeout_ms) == 0)
				return -ETIMEDOUT;
			continue;
		}
		if (n != -EINTR)
			break;
	}
	if (n < 0)
		return (int)n;
got:
	in->cur = !in->cur;
	in->len = n;
	in->pos = 0;
	if (n == 0) {
		in->eof = 1;
		return 0;
	}
	if ((in->trickle = (size_t)n < TRICKLE))
		return 0;
	/* the next read goes on while the caller works on this one */
	return spool_io_read_start(in->io, &in->rd, in->fd, in->buf[!in->cur],
	    CHUNK, -1);
}

/*
 * spool_input_next - the next record, valid until the next call: 1, 0 at
 * the end, -ETIMEDOUT when nothing came within timeout_ms (<0: wait;
 * call again), -EMSGSIZE for a record over the limit, other -errno
 */
int
spool_input_next(struct spool_input *in, const void **rec, size_t *len,
    int timeout_ms)
{
	const unsigned char *p, *d;
	size_t n, k;
	int r;

	if (in->cused) {
		in->clen = 0;
		in->cused = 0;
	}
	for (;;) {
		p = in->buf[in->cur] + in->pos;
		n = in->len - in->pos;
		if (n > 0 && in->dlen > 0) {
			if (in->clen > 0 && (k = straddle(in, p, n)) > 0) {
				in->clen -= k;
				in->pos += in->dlen - k;
				goto carried;
			}
			if ((d = find(in, p, n)) != NULL) {
				in->pos += d - p + in->dlen;
				if (in->clen == 0) {
					*rec = p;
					*len = d - p;
					return 1;
				}
				if ((r = keep(in, p, d - p)) < 0)
					return r;
				goto carried;
			}
		}
		if (n > 0) {
			if ((r = keep(in, p, n)) < 0)
				return r;
			in->pos = in->len;
		}
		if (in->eof) {
			if (in->done || (in->clen == 0 && in->dlen > 0))
				return 0;
			in->done = 1;
			goto carried;
		}
		if ((r = refill(in, timeout_ms)) < 0)
			return r;
	}
carried:
	if (in->clen > in->max)
		return -EMSGSIZE;
	*rec = in->carry != NULL ? in->carry : (unsigned char *)"";
	*len = in->clen;
	in->cused = 1;
	return 1;
}

/*
 * spool_input_left - whether the input is known to have ended, without
 * waiting: 1 and *n, the records still to come (all in the buffer), or
 * 0 when more may follow or it cannot be told now.  It may take the
 * next read early, if that needs no wait (refill takes it then).
 */
int
spool_input_left(struct spool_input *in, size_t *n)
{
	const unsigned char *p, *d, *e;
	ssize_t r;
	size_t k = 0;

	if (in->dlen == 0 || (in->clen > 0 && !in->cused))
		return 0;	/* one record, or one half carried */
	if (!in->eof && !in->early) {
		if (in->rd.pending)
			r = spool_io_read_wait(in->io, &in->rd, 0);
		else
			r = plain_read(in, 0);
		if (r == -ETIMEDOUT || r == -EAGAIN || r == -EINTR)
			return 0;
		in->early = 1;
		in->got = r;
	}
	if (!in->eof && (!in->early || in->got != 0))
		return 0;
	p = in->buf[in->cur] + in->pos;
	e = in->buf[in->cur] + in->len;
	while (p < e && (d = find(in, p, e - p)) != NULL) {
		k++;
		p = d + in->dlen;
	}
	*n = k + (p < e);	/* a last record without a delimiter */
	return 1;
}

#ifdef HAVE_LINES_AVX2
/*
 * lines_avx2 - spool_input_more's split at the one-byte delimiter c,
 * 64 bytes a step: one comparison gives a bit for each delimiter in
 * them, and each set bit ends a record, so a line costs no call and
 * no scan of its own (mq-send: 37 of its 160 instructions a message
 * went to memchr).  Up to max records from *pp, before e, into v; *pp
 * moved past them.  What is left, under 64 bytes, is the caller's.
 */
__attribute__((target("avx2,bmi")))
static size_t
lines_avx2(const unsigned char **pp, const unsigned char *e, unsigned char c,
    struct spool_rec *v, size_t max)
{
	const __m256i cv = _mm256_set1_epi8((char)c);
	const unsigned char *b = *pp, *p = *pp, *d;
	uint64_t m;
	size_t k = 0;

	for (; k < max && e - b >= 64; b += 64) {
		m = (uint32_t)_mm256_movemask_epi8(_mm256_cmpeq_epi8(
		    _mm256_loadu_si256((const __m256i *)b), cv)) |
		    (uint64_t)(uint32_t)_mm256_movemask_epi8(_mm256_cmpeq_epi8(
		    _mm256_loadu_si256((const __m256i *)(b + 32)), cv)) << 32;
		for (; m != 0 && k < max; m = _blsr_u64(m)) {
			d = b + _tzcnt_u64(m);
			v[k].p = p;
			v[k++].len = d - p;
			p = d + 1;
		}
	}
	*pp = p;
	return k;
}
#endif

/*
 * spool_input_more - after spool_input_next gave a record, up to max
 * more whole records that lie in the buffer already read, without a
 * read: in v, valid until the next call of either; how many (0: the
 * next needs spool_input_next).  The bulk path: one call for a buffer's
 * worth of lines instead of one a line.
 */
size_t
spool_input_more(struct spool_input *in, struct spool_rec *v, size_t max)
{
	const unsigned char *p, *d, *e;
	size_t k = 0;

	/* after a record, nothing is half carried: the buffer is fresh */
	if (in->dlen == 0 || (in->clen > 0 && !in->cused))
		return 0;
	p = in->buf[in->cur] + in->pos;
	e = in->buf[in->cur] + in->len;
	if (in->dlen == 1) {
#ifdef HAVE_LINES_AVX2
		if (in->avx2)
			k = lines_avx2(&p, e, in->delim[0], v, max);
#endif
		/* find(), without its test each time */
		while (k < max && p < e &&
		    (d = memchr(p, in->delim[0], e - p)) != NULL) {
			v[k].p = p;
			v[k++].len = d - p;
			p = d + 1;
		}
	} else {
		while (k < max && p < e && (d = find(in, p, e - p)) != NULL) {
			v[k].p = p;
			v[k++].len = d - p;
			p = d + in->dlen;
		}
	}
	in->pos = p - in->buf[in->cur];
	return k;
}
