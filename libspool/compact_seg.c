/*
 * compact_seg.c - compaction's pass over one sealed segment
 *
 * Walks a sealed segment batch by batch, asks compact_keys.c of each
 * message whether it goes, and, when asked to write, writes what stays
 * to the output file (c->ofd) with its index entries: kept records keep
 * their offsets, times, keys, IDs and headers; a run of them is one new
 * batch, flagged SPOOL_BF_COMPACTED when offsets were removed before it;
 * a batch that loses nothing, and a skippable one, is copied byte for
 * byte; the output ends with the segment's END batch, so that it still
 * meets its successor without a gap.
 *
 * A segment that does not read as one is damage (-EBADMSG, left for
 * verify), one written by a newer mq is -EPROTO; either way the segment
 * stays as it is.  It does not open, sync or rename files
 * (compact_install.c).
 */

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "spool_impl.h"
#include "compact.h"

#define OUT_FLUSH	(1u << 20)	/* bytes of output buffered */

/* out_flush - write the buffered output */
static int
out_flush(struct cctx *c)
{
	size_t done = 0;
	ssize_t n;

	while (done < c->outlen) {
		n = pwrite(c->ofd, c->out + done, c->outlen - done,
		    c->opos + done);
		if (n == -1 && errno == EINTR)
			continue;
		if (n <= 0)
			return n == 0 ? -EIO : -errno;
		done += n;
	}
	c->opos += c->outlen;
	c->outlen = 0;
	return 0;
}

/* grow - room for need bytes in a buffer */
static int
grow(unsigned char **buf, size_t *cap, size_t need)
{
	unsigned char *p;
	size_t ncap = *cap ? *cap : 65536;

	if (need <= *cap)
		return 0;
	while (ncap < need)
		ncap *= 2;
	if ((p = realloc(*buf, ncap)) == NULL)
		return -ENOMEM;
	*buf = p;
	*cap = ncap;
	return 0;
}

/*
 * emit - append one finished batch (header packed, offsets base..+count)
 * to the output: flagged compacted, and stamped again, when offsets
 * before it were removed; indexed as a writer indexes
 */
static int
emit(struct cctx *c, unsigned char *batch, size_t len, uint64_t base,
    uint32_t count)
{
	off_t at = c->opos + c->outlen;
	int r;

	if (base > c->written && !(batch[51] & SPOOL_BF_COMPACTED)) {
		batch[51] |= SPOOL_BF_COMPACTED;
		spool_batch_stamp(batch, base);
	}
	if (get16(batch + 48) == SPOOL_TYPE_DATA &&
	    at - c->lastidx >= SPOOL_IDX_INTERVAL &&
	    base - c->seg <= UINT32_MAX && at <= UINT32_MAX) {
		if ((r = grow(&c->ix, &c->ixcap, c->ixlen + 8)) < 0)
			return r;
		put32(c->ix + c->ixlen, (uint32_t)(base - c->seg));
		put32(c->ix + c->ixlen + 4, (uint32_t)at);
		c->ixlen += 8;
		c->lastidx = at;
	}
	if ((r = grow(&c->out, &c->outcap, c->outlen + len)) < 0)
		return r;
	memcpy(c->out + c->outlen, batch, len);
	c->outlen += len;
	if (get16(batch + 48) != SPOOL_TYPE_END)
		c->written = base + count;
	return c->outlen >= OUT_FLUSH ? out_flush(c) : 0;
}

/* run_emit - seal the records gathered in c->b as one batch and emit it */
static int
run_emit(struct cctx *c, const struct spool_bhdr *h, uint64_t base)
{
	const unsigned char *sealed;
	unsigned char *hdr;
	size_t len;
	uint32_t count = c->b.count;
	int r, level;

	if (count == 0)
		return 0;
	level = h->codec == c->t->cfg.codec ? c->t->cfg.level : -1;
	if ((r = spool_batch_seal(&c->b, h->codec, level, &sealed, &len)) < 0)
		return r;
	hdr = (unsigned char *)sealed;
	/* a transaction's records stay its (txn.c counts its batches) */
	hdr[51] = h->flags & (SPOOL_BF_HINTS | SPOOL_BF_COMPACTED |
	    SPOOL_BF_TXN);
	if (base > h->base_offset)
		hdr[51] |= SPOOL_BF_COMPACTED;
	put32(hdr + 52, h->epoch);
	put64(hdr + 56, h->txid);
	spool_batch_stamp(hdr, base);
	r = emit(c, hdr, len, base, count);
	spool_batch_reset(&c->b);
	return r;
}

/* cdamage - a sealed segment that does not read as one: -EBADMSG */
static int
cdamage(struct cctx *c, uint64_t seg, off_t at, const char *why)
{
	spool_seterr(c->t->sp, "%s/%" PRIu32 "/%020" PRIu64 ".log: byte %lld: "
	    "%s; not compacted (see mq-topic verify)", c->t->name, c->part,
	    seg, (long long)at, why);
	return -EBADMSG;
}

/*
 * batch_in - read the batch at *pos of sealed segment seg (fd, size
 * bytes) into c->in and check that it follows offset expect: 1 and *h,
 * *pos past it; 0 and *h at the END batch (*pos not moved); or -errno
 */
static int
batch_in(struct cctx *c, int fd, uint64_t seg, off_t size, off_t *pos,
    uint64_t expect, struct spool_bhdr *h)
{
	unsigned char end[SPOOL_HDR_SIZE];
	char why[128];
	int r, u;

	if (size - *pos < SPOOL_HDR_SIZE ||
	    spool_io_pread(c->io, fd, end, SPOOL_HDR_SIZE, *pos) !=
	    SPOOL_HDR_SIZE)
		return cdamage(c, seg, *pos, "incomplete batch");
	if ((u = spool_bhdr_unpack(end, h)) == -EPROTO) {
		spool_bhdr_newer(end, why, sizeof(why));
		spool_seterr(c->t->sp, "%s/%" PRIu32 "/%020" PRIu64
		    ".log: byte %lld: %s; not compacted", c->t->name,
		    c->part, seg, (long long)*pos, why);
		return -EPROTO;
	}
	if (u < 0)
		return cdamage(c, seg, *pos, "bad batch header");
	if (h->base_offset < expect || (h->base_offset > expect &&
	    !(h->flags & SPOOL_BF_COMPACTED)))
		return cdamage(c, seg, *pos, "offsets out of order");
	if (h->type == SPOOL_TYPE_END)
		return 0;
	if ((off_t)h->body_len > size - *pos - SPOOL_HDR_SIZE)
		return cdamage(c, seg, *pos, "incomplete batch");
	if ((r = grow(&c->in, &c->incap, SPOOL_HDR_SIZE +
	    h->body_len)) < 0)
		return r;
	if (spool_io_pread(c->io, fd, c->in, SPOOL_HDR_SIZE +
	    h->body_len, *pos) != (ssize_t)(SPOOL_HDR_SIZE + h->body_len))
		return cdamage(c, seg, *pos, "short read");
	*pos += SPOOL_HDR_SIZE + h->body_len;
	return 1;
}

/*
 * runs_emit - write the records of batch h (in c->in) that stay
 * (c->keep): each run of them one new batch
 */
static int
runs_emit(struct cctx *c, const struct spool_bhdr *h)
{
	struct spool_msg m;
	char why[128];
	uint64_t runbase = 0;
	uint32_t i;
	int r;

	/* runs of kept records, each one new batch */
	if ((r = spool_body_open(&c->body, h, c->in + SPOOL_HDR_SIZE,
	    why, sizeof(why))) < 0)
		return r;
	spool_batch_reset(&c->b);
	for (i = 0; spool_body_next(&c->body, &m) == 1; i++) {
		if (!c->keep[i]) {
			if ((r = run_emit(c, h, runbase)) < 0)
				return r;
			continue;
		}
		if (c->b.count == 0)
			runbase = m.offset;
		if ((r = spool_batch_add(&c->b, &m, m.ts)) < 0)
			return r;
	}
	return run_emit(c, h, runbase);
}

/*
 * spool_compact_seg_pass - walk sealed segment seg (fd, size bytes),
 * deciding for each message whether it stays; with write set, write what
 * stays to c->ofd. Returns the number of messages that go, or -errno.
 */
int64_t
spool_compact_seg_pass(struct cctx *c, int fd, uint64_t seg, off_t size,
    int write)
{
	struct spool_bhdr h;
	struct spool_msg m;
	unsigned char end[SPOOL_HDR_SIZE];
	char why[128];
	uint64_t expect = seg, endoff = UINT64_MAX;
	int64_t endts = c->now, gone = 0;
	off_t pos = 0;
	uint32_t i, nd;
	int r;

	c->written = seg;
	while (pos < size) {
		if ((r = batch_in(c, fd, seg, size, &pos, expect, &h)) < 0)
			return r;
		if (r == 0) {
			endoff = h.base_offset;
			endts = h.base_ts;
			break;
		}
		expect = h.base_offset + h.count;
		if (h.type >= SPOOL_TYPE_SKIP) {
			/* not ours to read: copied as it is */
			if (write && (r = emit(c, c->in, SPOOL_HDR_SIZE +
			    h.body_len, h.base_offset, h.count)) < 0)
				return r;
			continue;
		}
		if ((r = grow(&c->keep, &c->keepcap, h.count)) < 0)
			return r;
		if ((r = spool_body_open(&c->body, &h, c->in + SPOOL_HDR_SIZE,
		    why, sizeof(why))) < 0)
			return r == -ENOMEM ? r : cdamage(c, seg,
			    pos - SPOOL_HDR_SIZE - h.body_len, why);
		for (i = nd = 0; (r = spool_body_next(&c->body, &m)) == 1; i++)
			if (i < h.count &&
			    !(c->keep[i] = !spool_compact_keys_drop(c, &m)))
				nd++;
		if (r < 0 || i != h.count)
			return r == -EPROTO ? r : cdamage(c, seg, pos -
			    SPOOL_HDR_SIZE - h.body_len, "records do not match "
			    "the batch header");
		gone += nd;
		if (!write)
			continue;
		if (nd == 0) {
			if ((r = emit(c, c->in, SPOOL_HDR_SIZE + h.body_len,
			    h.base_offset, h.count)) < 0)
				return r;
			continue;
		}
		if ((r = runs_emit(c, &h)) < 0)
			return r;
	}
	if (endoff == UINT64_MAX)
		endoff = expect;	/* sealed by its successor alone */
	if (write) {
		/* the segment still ends where its successor begins */
		spool_batch_end(end, endoff, endts);
		if ((r = emit(c, end, SPOOL_HDR_SIZE, endoff, 0)) < 0 ||
		    (r = out_flush(c)) < 0)
			return r;
	}
	return gone;
}
