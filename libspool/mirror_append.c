/*
 * mirror_append.c - the replica's writer proper (mirror.c holds the
 * partition): a segment started where the source started one, and
 * received batches checked, appended and synced
 *
 * Every batch is checked (header checksum, body checksum, contiguous
 * offsets or compaction's gaps, nothing after an END) before any byte of
 * it is written; the good batches of a chunk, up to one that fails, go
 * to the file in one write, cut off again if that write fails, so
 * readers of the replica only ever see whole batches and never a byte
 * past damage.  Index entries are made as writer.c makes them: hints,
 * never synced.  The data is synced once, before the receiver
 * acknowledges it (spool_mirror_sync).
 */

#include <sys/types.h>

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <string.h>
#include <unistd.h>

#include "replicate.h"

/*
 * spool_mirror_segment - start segment base, as the source did: the head
 * must be closed by an END batch at base, or the partition hold nothing.
 * A segment past the END (a hole in the source's own log: a segment
 * deleted there) is started as the source has it, and 1 returned, the
 * hole in spool_errmsg: the replica holds what the source holds.
 */
int
spool_mirror_segment(struct spool_mirror *m, uint64_t base, int sync)
{
	char name[SPOOL_SEGNAME_LEN + 16];
	int r, hole = 0;

	if (m->logfd >= 0 && m->end == 0 && m->segbase == base)
		return 0;
	if (spool_mirror_holds(m)) {
		if (m->closed && base > m->next) {
			spool_seterr(m->t->sp, "%s/%" PRIu32 ": offsets %"
			    PRIu64 " to %" PRIu64 " are missing on the "
			    "source (its segment %" PRIu64 " follows one that "
			    "ends at %" PRIu64 "): copied as the same hole",
			    m->t->name, m->part, m->next, base - 1, base,
			    m->next);
			hole = 1;
		} else if (!m->closed || base != m->next) {
			spool_seterr(m->t->sp, "%s/%" PRIu32 ": segment %"
			    PRIu64 " from the source does not follow the "
			    "replica's end at %" PRIu64, m->t->name, m->part,
			    base, m->next);
			return -EBADMSG;
		}
		if ((r = spool_mirror_sync(m)) < 0)
			return r;
	} else if (m->logfd >= 0 && (r = spool_mirror_unlink_seg(m->partfd,
	    m->segbase)) < 0)
		return r;	/* an empty head of another name: it goes */
	spool_mirror_close_head(m);
	spool_seg_name(name, base, SPOOL_LOG_SUFFIX);
	m->logfd = openat(m->partfd, name, O_RDWR | O_CREAT | O_NOFOLLOW |
	    O_CLOEXEC, 0664);
	if (m->logfd == -1)
		return -errno;
	spool_seg_name(name, base, SPOOL_IDX_SUFFIX);
	m->idxfd = openat(m->partfd, name, O_RDWR | O_CREAT | O_TRUNC |
	    O_NOFOLLOW | O_CLOEXEC, 0664);
	if (m->idxfd == -1)
		return -errno;
	if (ftruncate(m->logfd, 0) == -1)
		return -errno;
	/* the new segment must not vanish in a crash with what goes in */
	if (sync && spool_fsync_dir(m->partfd) < 0)
		return -errno;
	if (!spool_mirror_holds(m))
		m->first = base;
	m->segbase = base;
	m->next = base;
	m->end = 0;
	m->closed = 0;
	m->lastidx = -SPOOL_IDX_INTERVAL;
	m->nseg++;
	return hole;
}

/* what a chunk of batches leaves the partition at, once checked */
struct chunk {
	size_t		 len;		/* its good bytes: whole batches */
	uint64_t	 off;		/* the offset after them */
	size_t		 nb;		/* their batches */
	int		 closed;	/* they end with an END batch */
	off_t		 lpos;		/* the last of them: position, */
	uint32_t	 lcrc;		/*  header checksum, */
	uint32_t	 llen;		/*  length with the header, */
	uint64_t	 loff;		/*  base offset */
	uint32_t	 lepoch;	/* the last but END: epoch */
	uint64_t	 ldoff;		/*  and offset */
};

/*
 * check_chunk - how much of buf, from its start, is whole batches that
 * belong after the partition's end (checksums, offsets, nothing after
 * an END), and where they leave it (c); -EBADMSG (detail in
 * spool_errmsg) if some of buf is not, -EPROTO if that is a batch a
 * newer mq wrote: c still says what came before it
 */
static int
check_chunk(struct spool_mirror *m, const unsigned char *buf, size_t len,
    struct chunk *c)
{
	struct spool_bhdr h;
	const char *why = NULL;
	size_t p = 0;
	int u, r = -EBADMSG;

	memset(c, 0, sizeof(*c));
	c->off = m->next;
	c->closed = m->closed;
	c->lepoch = m->lastepoch;
	c->ldoff = m->lastdoff;
	if (m->logfd < 0) {
		why = "data before any segment";
		goto bad;
	}
	while (p < len) {
		if (len - p < SPOOL_HDR_SIZE) {
			why = "a torn batch";
			goto bad;
		}
		if ((u = spool_bhdr_unpack(buf + p, &h)) < 0) {
			if (u == -EPROTO) {
				why = "a batch written by a newer version of "
				    "mq";
				r = -EPROTO;
			} else
				why = "a bad batch header";
			goto bad;
		}
		if (c->closed) {
			why = "a batch after the end of its segment";
			goto bad;
		}
		if (h.body_len > len - p - SPOOL_HDR_SIZE) {
			why = "a torn batch";
			goto bad;
		}
		if (spool_crc(0, buf + p + SPOOL_HDR_SIZE, h.body_len) !=
		    h.body_crc) {
			why = "a body checksum mismatch";
			goto bad;
		}
		/* compaction's gaps (mq-spool(5), Gaps) are copied as such */
		if (h.base_offset != c->off && !(h.base_offset > c->off &&
		    (h.flags & SPOOL_BF_COMPACTED))) {
			why = "a batch out of order";
			goto bad;
		}
		if (h.type == SPOOL_TYPE_END)
			c->closed = 1;
		c->lpos = m->end + (off_t)p;
		c->lcrc = get32(buf + p + 4);
		c->loff = h.base_offset;
		if (h.type != SPOOL_TYPE_END) {
			c->lepoch = h.epoch;
			c->ldoff = h.base_offset;
		}
		c->llen = SPOOL_HDR_SIZE + h.body_len;
		c->off = h.base_offset + h.count;
		p += SPOOL_HDR_SIZE + h.body_len;
		c->len = p;
		c->nb++;
	}
	return 0;
bad:
	spool_seterr(m->t->sp, "%s/%" PRIu32 ": from the source at offset %"
	    PRIu64 ": %s", m->t->name, m->part, c->off, why);
	return r;
}

/*
 * spool_mirror_append - check and append whole batches received from the
 * source: those before the first that does not belong here (-EBADMSG,
 * detail in spool_errmsg; -EPROTO for a batch a newer mq wrote) are
 * appended, nothing from it on
 */
int
spool_mirror_append(struct spool_mirror *m, const unsigned char *buf,
    size_t len, size_t *nbatches)
{
	struct chunk c;
	size_t p;
	off_t at;
	int bad, r;

	bad = check_chunk(m, buf, len, &c);
	if (c.len == 0)
		return bad;
	if ((r = spool_io_pwrite(m->io, m->logfd, buf, c.len, m->end,
	    0)) < 0) {
		/* leave no partial batch behind */
		if (ftruncate(m->logfd, m->end) == -1) {
			/* then the next open cuts it as torn */
		}
		return r;
	}
	/* index entries as a writer makes them: a hint, never synced */
	for (p = 0; p < c.len; p += SPOOL_HDR_SIZE + get32(buf + p + 20)) {
		at = m->end + (off_t)p;
		if (at - m->lastidx >= SPOOL_IDX_INTERVAL &&
		    spool_idx_append(m->idxfd, m->segbase, get64(buf + p + 8),
		    at) == 0)
			m->lastidx = at;
	}
	m->haslast = 1;
	m->lastseg = m->segbase;
	m->lastpos = c.lpos;
	m->lastcrc = c.lcrc;
	m->lastoff = c.loff;
	m->lastlen = c.llen;
	m->lastepoch = c.lepoch;
	m->lastdoff = c.ldoff;
	m->end += (off_t)c.len;
	m->next = c.off;
	m->closed = c.closed;
	m->dirty = 1;
	if (nbatches != NULL)
		*nbatches += c.nb;
	return bad;
}

/* spool_mirror_sync - make what was appended durable (before an ack) */
int
spool_mirror_sync(struct spool_mirror *m)
{
	int r;

	if (!m->dirty || m->logfd < 0)
		return 0;
	/* the only sync of this data: a failure is final */
	if ((r = spool_io_fdatasync(m->io, m->logfd)) < 0)
		return r;
	m->dirty = 0;
	return 0;
}
