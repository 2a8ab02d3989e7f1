/*
 * fuzz_batch.c - the batch decoder over arbitrary bytes
 *
 * The input is what a segment holds: batches back to back.  Each one is
 * unpacked (spool_bhdr_unpack), its body opened (spool_body_open, which
 * checks the CRC and inflates zlib) and walked (spool_body_next).  Every
 * body is copied into a buffer of exactly body_len bytes first, so that
 * AddressSanitizer sees a read past the batch, not only past the input.
 *
 * A batch whose records all decode is then encoded again with the writer's
 * codec (spool_batch_add/seal, either codec) and decoded once more: the
 * records must come back the same (time, key, headers, payload), or the
 * target aborts.
 *
 * Every body is also walked as mq-recv's bulk path walks it: runs of
 * spool_body_copy into buffers of varying room, spool_body_next for each
 * record a run stops before.  The payloads, the count, the offsets and
 * the last result must be what spool_body_next alone gave.
 */

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_common.h"

#define MAXREC	4096

struct rec {
	int64_t		 ts;
	const void	*key;
	size_t		 keylen;
	int		 haskey;
	struct spool_header *hdrs;
	size_t		 nh;
	const void	*payload;
	size_t		 len;
};

static volatile uint32_t sink;

/* touch - read every byte ASan should vouch for */
static void
touch(const void *p, size_t n)
{
	const unsigned char *s = p;
	uint32_t h = 0;

	while (n-- > 0)
		h = h * 31 + *s++;
	sink += h;
}

static int
same(const void *a, size_t alen, const void *b, size_t blen)
{
	return alen == blen && (alen == 0 || memcmp(a, b, alen) == 0);
}

/* reencode - build the records again, decode, compare */
static void
reencode(const struct rec *rs, size_t n, int codec)
{
	struct spool_batch b;
	struct spool_bhdr h;
	struct spool_body body;
	struct spool_msg m;
	const unsigned char *out;
	unsigned char *copy;
	size_t outlen, i, j;
	char why[128];

	for (i = 0; i < n; i++)
		if (rs[i].ts < 0)	/* writers never see these (json: ts >= 0) */
			return;
	spool_batch_init(&b);
	for (i = 0; i < n; i++) {
		memset(&m, 0, sizeof(m));
		m.key = rs[i].haskey ? (rs[i].key ? rs[i].key : "") : NULL;
		m.keylen = rs[i].keylen;
		m.headers = rs[i].hdrs;
		m.nheaders = rs[i].nh;
		m.payload = rs[i].payload;
		m.len = rs[i].len;
		if (spool_batch_add(&b, &m, rs[i].ts) < 0) {
			spool_batch_free(&b);
			return;
		}
	}
	if (spool_batch_seal(&b, codec, 1, &out, &outlen) < 0) {
		spool_batch_free(&b);
		return;
	}
	copy = malloc(outlen);
	memcpy(copy, out, outlen);
	spool_batch_stamp(copy, 7);
	if (spool_bhdr_unpack(copy, &h) < 0)
		abort();
	memset(&body, 0, sizeof(body));
	if (spool_body_open(&body, &h, copy + SPOOL_HDR_SIZE, why,
	    sizeof(why)) < 0)
		abort();
	for (i = 0; i < n; i++) {
		if (spool_body_next(&body, &m) != 1)
			abort();
		if (m.offset != 7 + i || m.ts != rs[i].ts ||
		    (m.key != NULL) != rs[i].haskey ||
		    (m.key && !same(m.key, m.keylen, rs[i].key, rs[i].keylen)) ||
		    !same(m.payload, m.len, rs[i].payload, rs[i].len) ||
		    m.nheaders != rs[i].nh)
			abort();
		for (j = 0; j < m.nheaders; j++)
			if (!same(m.headers[j].name, m.headers[j].namelen,
			    rs[i].hdrs[j].name, rs[i].hdrs[j].namelen) ||
			    !same(m.headers[j].value, m.headers[j].valuelen,
			    rs[i].hdrs[j].value, rs[i].hdrs[j].valuelen))
				abort();
	}
	if (spool_body_next(&body, &m) != 0)
		abort();
	spool_body_free(&body);
	free(copy);
	spool_batch_free(&b);
}

/*
 * copy_walk - the body of h (at copy) walked as the bulk reader walks it;
 * want holds spool_body_next's payloads, each with a newline (wlen
 * bytes, n records, its last result rwant)
 */
static void
copy_walk(const struct spool_bhdr *h, const unsigned char *copy,
    const unsigned char *want, size_t wlen, size_t nwant, int rwant)
{
	struct spool_body_range rg = { 0, UINT64_MAX, INT64_MAX, SIZE_MAX };
	struct spool_body body;
	struct spool_msg m;
	unsigned char *got;
	uint64_t last;
	size_t glen = 0, k = 0, n, room, turn = 0;
	char why[128];
	int r;

	memset(&body, 0, sizeof(body));
	if (spool_body_open(&body, h, copy, why, sizeof(why)) < 0)
		abort();	/* it opened a moment ago */
	got = malloc(wlen + 1);
	for (;;) {
		/* room for everything, or a little, to stop runs short */
		room = wlen - glen;
		if (turn++ % 3 == 1 && room > 0)
			room = 1 + (turn * 37) % room;
		glen += spool_body_copy(&body, got + glen, room,
		    (const unsigned char *)"\n", 1, SIZE_MAX, &rg, &n, &last);
		if (n > 0) {
			k += n;
			if (last != h->base_offset + k - 1)
				abort();
			continue;
		}
		if ((r = spool_body_next(&body, &m)) != 1)
			break;
		if (glen + m.len + 1 > wlen)
			abort();
		memcpy(got + glen, m.payload, m.len);
		glen += m.len;
		got[glen++] = '\n';
		k++;
	}
	if (r != rwant || k != nwant || glen != wlen ||
	    memcmp(got, want, wlen) != 0)
		abort();
	free(got);
	spool_body_free(&body);
}

/* put - append n bytes to the growing buffer *b (length *len) */
static void
put(unsigned char **b, size_t *len, size_t *cap, const void *p, size_t n)
{
	if (n == 0)
		return;
	if (*len + n > *cap) {
		while (*len + n > *cap)
			*cap = *cap ? *cap * 2 : 256;
		if ((*b = realloc(*b, *cap)) == NULL)
			abort();
	}
	memcpy(*b + *len, p, n);
	*len += n;
}

/*
 * take - what a reader with range rg does with record m: 0 to stop
 * there (beyond until or until_ts), else 1, its payload and delim
 * appended to *b unless it is below from
 */
static int
take(const struct spool_msg *m, const struct spool_body_range *rg,
    const unsigned char *delim, size_t dlen, unsigned char **b,
    size_t *len, size_t *cap)
{
	if (m->offset >= rg->until || m->ts >= rg->until_ts)
		return 0;
	if (m->offset >= rg->from) {
		put(b, len, cap, m->payload, m->len);
		put(b, len, cap, delim, dlen);
	}
	return 1;
}

/*
 * ranged_walk - the body of h walked with limits taken from the input
 * and the variant v (from, until, until_ts, big, a delimiter of one or
 * two bytes, at most max records a run): once by spool_body_next alone,
 * once by runs of spool_body_copy with spool_body_next for each record
 * a run stops before.  Both must give the same bytes and stop at the
 * same record.  The runs have room to spare (a run that takes too much
 * shows), or exactly the bytes the first walk gave (AddressSanitizer
 * sees a copy past its room).
 */
static void
ranged_walk(const struct spool_bhdr *h, const unsigned char *copy,
    unsigned v)
{
	struct spool_body_range rg;
	struct spool_body body;
	struct spool_msg m;
	const unsigned char *delim = (const unsigned char *)"\r\n";
	unsigned char *want = NULL, *got;
	uint32_t x = h->body_crc ^ (v * 0x9e3779b9u);
	uint64_t last;
	size_t wlen = 0, wcap = 0, glen = 0, gcap, n, room, max, turn = 0;
	size_t slack;
	size_t dlen = v & 1 ? 1 : 2;
	char why[128];
	int r, rr;

	rg.from = h->base_offset + x % (h->count + 2ull);
	rg.until = h->base_offset + h->count + 1 - (x >> 8) % (h->count + 2ull);
	switch (v % 4) {
	case 0:
		rg.until_ts = INT64_MAX;
		break;
	case 1:		/* near the batch's time, where a run's shortcut ends */
		rg.until_ts = (int64_t)((uint64_t)h->base_ts +
		    ((x >> 16) & 0xff) - 128);
		break;
	case 2:
		rg.until_ts = h->max_ts;
		break;
	default:
		rg.until_ts = (int64_t)((uint64_t)h->base_ts + 64 +
		    ((x >> 16) & 3));
		break;
	}
	rg.big = v & 2 ? (x >> 24) % 200 : SIZE_MAX;
	max = v & 4 ? 1 + (x >> 4) % 5 : SIZE_MAX;
	if (dlen == 1)
		delim++;

	memset(&body, 0, sizeof(body));
	if (spool_body_open(&body, h, copy, why, sizeof(why)) < 0)
		abort();	/* it opened a moment ago */
	while ((r = spool_body_next(&body, &m)) == 1)
		if (!take(&m, &rg, delim, dlen, &want, &wlen, &wcap)) {
			r = 2;
			break;
		}
	spool_body_free(&body);

	memset(&body, 0, sizeof(body));
	if (spool_body_open(&body, h, copy, why, sizeof(why)) < 0)
		abort();
	/* room beyond what it should take, or exactly that */
	slack = v & 8 ? 0 : 1024;
	got = malloc(gcap = wlen + slack + 1);
	for (;;) {
		if (glen > wlen + slack)
			abort();	/* more than spool_body_next gave */
		room = wlen + slack - glen;
		if (turn++ % 3 == 1 && room > 0)
			room = 1 + (turn * 37) % room;
		glen += spool_body_copy(&body, got + glen, room, delim, dlen,
		    max, &rg, &n, &last);
		if (n > 0) {
			if (n > max)
				abort();
			continue;
		}
		if ((rr = spool_body_next(&body, &m)) != 1)
			break;
		if (!take(&m, &rg, delim, dlen, &got, &glen, &gcap)) {
			rr = 2;
			break;
		}
	}
	if (rr != r || glen != wlen ||
	    (wlen > 0 && memcmp(got, want, wlen) != 0))
		abort();
	free(got);
	free(want);
	spool_body_free(&body);
}

/* one_batch - decode the body of one batch; the copy is exactly sized */
static void
one_batch(const struct spool_bhdr *h, const unsigned char *src, int codec)
{
	struct spool_body body;
	struct spool_msg m;
	struct rec *rs;
	unsigned char *copy, *want;
	size_t n = 0, i, wlen = 0, wcap;
	char why[128];
	int r;

	copy = malloc(h->body_len ? h->body_len : 1);
	memcpy(copy, src, h->body_len);
	memset(&body, 0, sizeof(body));
	if (spool_body_open(&body, h, copy, why, sizeof(why)) < 0) {
		spool_body_free(&body);
		free(copy);
		return;
	}
	rs = calloc(MAXREC, sizeof(*rs));
	want = malloc(wcap = 4096);
	while ((r = spool_body_next(&body, &m)) == 1) {
		if (wlen + m.len + 1 > wcap) {
			while (wlen + m.len + 1 > wcap)
				wcap *= 2;
			want = realloc(want, wcap);
		}
		memcpy(want + wlen, m.payload, m.len);
		wlen += m.len;
		want[wlen++] = '\n';
		if (m.offset != h->base_offset + n)
			abort();
		if (m.key != NULL)
			touch(m.key, m.keylen);
		touch(m.payload, m.len);
		for (i = 0; i < m.nheaders; i++) {
			touch(m.headers[i].name, m.headers[i].namelen);
			touch(m.headers[i].value, m.headers[i].valuelen);
		}
		if (n < MAXREC) {
			struct rec *x = &rs[n];

			x->ts = m.ts;
			x->haskey = m.key != NULL;
			x->key = m.key;
			x->keylen = m.keylen;
			x->payload = m.payload;
			x->len = m.len;
			x->nh = m.nheaders;
			/* the header array is the decoder's, reused: copy */
			x->hdrs = m.nheaders ? malloc(m.nheaders *
			    sizeof(*x->hdrs)) : NULL;
			if (m.nheaders)
				memcpy(x->hdrs, m.headers, m.nheaders *
				    sizeof(*x->hdrs));
		}
		n++;
	}
	/* a body that decodes holds exactly count records */
	if (r == 0 && n != h->count)
		abort();
	if (r == 0 && n > 0 && n <= MAXREC)
		reencode(rs, n, codec);
	copy_walk(h, copy, want, wlen, n, r);
	for (i = 0; i < 16; i++)
		ranged_walk(h, copy, (unsigned)i);
	free(want);
	for (i = 0; i < n && i < MAXREC; i++)
		free(rs[i].hdrs);
	free(rs);
	spool_body_free(&body);
	free(copy);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct spool_bhdr h;
	size_t pos = 0;
	int nb = 0;

	while (pos + SPOOL_HDR_SIZE <= size && nb++ < 64) {
		memset(&h, 0, sizeof(h));
		if (spool_bhdr_unpack(data + pos, &h) < 0)
			break;
		if (h.body_len > size - pos - SPOOL_HDR_SIZE)
			break;
		one_batch(&h, data + pos + SPOOL_HDR_SIZE,
		    data[pos + 8] & 1 ? SPOOL_CODEC_ZLIB : SPOOL_CODEC_NONE);
		pos += SPOOL_HDR_SIZE + h.body_len;
	}
	return 0;
}

size_t
LLVMFuzzerCustomMutator(uint8_t *data, size_t size, size_t maxsize,
    unsigned int seed)
{
	return fz_mutate_batches(data, size, maxsize, seed);
}
