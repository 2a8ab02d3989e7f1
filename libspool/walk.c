/*
 * walk.c - walking the batches of one partition for a reader (reader.c)
 *
 * Owns a reader partition's segment file: it reads the segments of
 * the partition in order through the partition's buffer (rbuf.c; one
 * read-ahead in flight per reader, started while a batch is decoded),
 * checks each batch header, crosses into the next segment after an END
 * batch or at the end of a segment's file (once that file has not
 * changed since it was read: the last appends before a roll may have
 * come after the read and before the listing that found the next
 * segment), and opens the body of each data batch for reader.c to hand
 * out, message by message.  At the end of the file (a follower waiting
 * for the next append) it reads with pread(2) and starts no read-ahead
 * (tail_read), and goes back to the engine once a read fills what it
 * asked.
 *
 * What a reader may see beside running writers: the tail of the newest
 * segment may hold part of a batch being written, which is "not yet
 * written" and read again later.  A batch whose checksum fails may be a
 * concurrent truncate-and-rewrite of a torn tail, so before calling it
 * damage the reader takes the partition lock shared (waiting out any
 * writer), reads it again, and only then reports -EBADMSG, skips it and
 * goes on with the next good batch.  No byte of a batch whose checksum
 * fails is ever returned.
 *
 * Offsets never jump in silence (mq-spool(5), Gaps): each batch must
 * start where the one before it ended, and each segment where the one
 * before it ended.  The legal gaps are below the first segment (what
 * retention deleted, even under a reader), before a batch flagged
 * compacted, and over a skippable batch.  Any other jump is a hole: the
 * partition stops there with -EBADMSG, or with skip_damage the reader
 * says so (-EBADMSG) and goes on past it.  A batch written by a newer
 * mq stops its partition with -EPROTO.
 *
 * A batch of a transaction (flag SPOOL_BF_TXN) is visible unless its
 * transaction is being committed: then the reader waits for the commit
 * to end, and completes it when its committer died (txn.c); this is the
 * one place a reader may write.
 *
 * It does not choose where a partition starts (position.c), take turns
 * between partitions or decode records (reader.c), or wait for more
 * (follow.c).  It walks by hand rather than with the batch cursor
 * (cursor.c): it reads through a buffer with a read-ahead, reads a
 * growing segment again where it ended, lists the directory again for
 * a segment made since, and resyncs inside a segment after a bad
 * header, none of which the cursor does.
 */

#include <sys/file.h>
#include <sys/stat.h>
#include <sys/types.h>

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "spool_impl.h"

#define CHUNK		SPOOL_RBUF_CHUNK

/* spool_walk_collect - finish the read-ahead in flight, whoever it is for */
void
spool_walk_collect(struct spool_reader *r)
{
	struct spool_rpart *p = r->ahead;
	ssize_t n;

	if (p == NULL)
		return;
	n = spool_io_read_wait(r->io, &r->rd, -1);
	if (n > 0)
		p->have += n;
	r->ahead = NULL;
}

/* spool_walk_reset - forget buffered bytes; read from pos next */
void
spool_walk_reset(struct spool_reader *r, struct spool_rpart *p, off_t pos)
{
	if (r->ahead == p)
		spool_walk_collect(r);
	p->filepos = pos;
	p->have = p->at = 0;
	p->drained = 0;
}

/*
 * spool_walk_seg - switch a partition to the segment that starts at
 * base
 */
int
spool_walk_seg(struct spool_reader *r, struct spool_rpart *p, uint64_t base,
    off_t pos)
{
	char name[SPOOL_SEGNAME_LEN + 16];
	int fd;

	spool_seg_name(name, base, SPOOL_LOG_SUFFIX);
	fd = openat(p->partfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd == -1)
		return -errno;
	spool_walk_reset(r, p, pos);
	if (p->logfd >= 0)
		close(p->logfd);
	p->logfd = fd;
	p->segbase = base;
	p->expect = base;	/* for pos 0; spool_position_start sets its own */
	return 0;
}

/*
 * tail_read - read what follows buf's bytes into the room after them.
 * At the end of the file (the last read was short: a follower waiting
 * for the next append) a plain pread(2), which returns at once, rather
 * than a round trip through the ring, whose read completes tens of
 * microseconds later; the ring again once a read fills what was asked.
 */
static ssize_t
tail_read(struct spool_reader *r, struct spool_rpart *p)
{
	size_t want = spool_rbuf_room(p, p->at);
	ssize_t n;

	if (!p->tail)
		n = spool_io_pread(r->io, p->logfd, p->buf + p->have, want,
		    p->filepos + p->have);
	else
		while ((n = pread(p->logfd, p->buf + p->have, want,
		    p->filepos + p->have)) == -1 && errno == EINTR)
			;
	if (n < 0)
		return p->tail ? -errno : n;
	p->tail = p->drained = (size_t)n < want;
	return n;
}

/*
 * fill - have at least need bytes from buf[at] if the file has them;
 * returns the bytes available
 */
static ssize_t
fill(struct spool_reader *r, struct spool_rpart *p, size_t need)
{
	ssize_t n;
	int e;

	spool_walk_collect(r);
	if (p->have - p->at >= need)
		return p->have - p->at;
	if ((e = spool_rbuf_make(p, need)) < 0)
		return e;
	while (p->have - p->at < need) {
		n = tail_read(r, p);
		if (n < 0)
			return n;
		if (n == 0)
			break;
		p->have += n;
	}
	return p->have - p->at;
}

/*
 * read_ahead - start reading what follows while the batch just opened
 * (from file position bpos on) is decoded
 */
static void
read_ahead(struct spool_reader *r, struct spool_rpart *p)
{
	size_t keep = (size_t)(p->bpos - p->filepos);

	/* at the end, nothing to read ahead: the next append is not made */
	if (r->ahead != NULL || p->tail)
		return;
	spool_rbuf_norm(p, &keep);
	if (spool_rbuf_room(p, keep) < CHUNK / 4)
		return;
	if (spool_io_read_start(r->io, &r->rd, p->logfd, p->buf + p->have,
	    spool_rbuf_room(p, keep), p->filepos + p->have) == 0)
		r->ahead = p;
}

/*
 * successor - the base of the segment after p's: 1 and *base, or 0 if
 * there is none; the directory is listed again only when the last
 * listing has no later segment and (following) inotify saw a file come
 * since (follow.c)
 */
static int
successor(struct spool_rpart *p, uint64_t *base, int fresh)
{
	size_t i;
	int r, pass;

	for (pass = fresh; pass < 2; pass++) {
		if (pass == 1) {
			if (!fresh && p->listed)
				break;
			p->listed = p->wd >= 0;
			spool_seg_free(&p->segs);
			if ((r = spool_seg_list(p->partfd, &p->segs)) < 0)
				return r;
		}
		for (i = 0; i < p->segs.n; i++)
			if (p->segs.base[i] > p->segbase) {
				*base = p->segs.base[i];
				return 1;
			}
	}
	return 0;
}

#define AGAIN	2	/* a step's result: read on to the next batch */
#define HAVE	3	/* whole's: the batch is in the buffer */

/*
 * changed - the segment's file is no longer the seen bytes the caller
 * read of it, and holds something at pos: 1, 0, or -errno
 */
static int
changed(struct spool_rpart *p, off_t pos, off_t seen)
{
	struct stat st;

	if (fstat(p->logfd, &st) == -1)
		return -errno;
	return st.st_size != seen && st.st_size > pos;
}

/*
 * eof_again - the current segment has no complete batch at buf[at]
 * (avail bytes of one there; the file read up to byte seen, or -1 after
 * an END batch, which ends the segment): AGAIN when the walk goes on,
 * in the next segment or in this one read again, or 0 when nothing
 * more is there now
 */
static int
eof_again(struct spool_reader *r, struct spool_rpart *p, size_t avail,
    off_t seen)
{
	uint64_t base, old = p->segbase, want = p->expect;
	off_t pos = p->filepos + p->at;
	int s, o;

	if ((s = successor(p, &base, 0)) < 0)
		return s;
	/*
	 * A writer appends a segment's last batches and its END before it
	 * makes the next one (head.c, roll), but this reader may have read
	 * to the end before those appends (or before a writer cut a torn
	 * tail and wrote the END there) and listed the directory after the
	 * roll: if the file changed since it was read, read it again
	 * rather than cross past what it has now (a hole, or an incomplete
	 * batch, that is not there).
	 */
	if (s == 1 && seen >= 0 && (o = changed(p, pos, seen)) != 0) {
		if (o < 0)
			return o;
		spool_walk_reset(r, p, pos);
		return AGAIN;
	}
	while (s == 1) {
		if ((o = spool_walk_seg(r, p, base, 0)) == 0)
			break;
		if (o != -ENOENT)
			return o;
		/* gc deleted what the last listing had: look again */
		if ((s = successor(p, &base, 1)) < 0)
			return s;
	}
	if (s == 0) {
		/*
		 * A torn tail of the newest segment: not yet written.  Its
		 * bytes are read again next time, for the next writer may
		 * cut them off and write something else there.
		 */
		if (avail > 0)
			spool_walk_reset(r, p, pos);
		return 0;
	}
	if (avail == 0 && want != SPOOL_EXPECT_ANY && base != want)
		return (s = spool_damage_seg_gap(r, p, want, base)) != 0 ?
		    s : AGAIN;
	if (base > p->next)
		p->next = base;
	if (avail > 0) {
		/* a batch cut short, and the log went on past it */
		spool_seterr(r->t->sp, "%s/%" PRIu32 "/%020" PRIu64 ".log: "
		    "byte %lld: incomplete batch before the next segment; "
		    "skipped", r->t->name, p->id, old, (long long)pos);
		return -EBADMSG;
	}
	return AGAIN;
}

/*
 * bad_header - the header at pos does not check out: zeros to the end
 * of the file, a write in progress (AGAIN: read it again), or damage
 * passed by a resync
 */
static int
bad_header(struct spool_reader *r, struct spool_rpart *p, off_t pos)
{
	struct stat st;
	ssize_t avail;
	off_t found;
	int s;

	/* zeros to the end: space allocated, data not yet */
	if (fstat(p->logfd, &st) == 0 &&
	    st.st_size - pos <= (off_t)CHUNK) {
		size_t i, zero = 1;

		avail = fill(r, p, st.st_size - pos);
		for (i = 0; avail > 0 && i < (size_t)avail; i++)
			if (p->buf[p->at + i] != 0) {
				zero = 0;
				break;
			}
		if (zero && avail >= 0)
			return eof_again(r, p, 0, pos + avail);
	}
	if (!spool_damage_confirm(r->io, p->partfd, p->logfd, pos)) {
		spool_walk_reset(r, p, pos);
		return AGAIN;
	}
	/* damage: go on at the next header that checks out, or the end */
	if (fstat(p->logfd, &st) == -1)
		return -errno;
	s = spool_cursor_resync_fd(r->io, p->logfd, pos, st.st_size,
	    p->next, &found);
	if (s < 0)
		return s;
	spool_walk_reset(r, p, s == 1 ? found : st.st_size);
	p->expect = SPOOL_EXPECT_ANY;	/* what the damage held is unknown */
	return spool_damage_skip(r, p, pos, "bad batch header");
}

/*
 * whole - have all of batch h at pos in the buffer: HAVE, or as
 * eof_again when the file does not hold all of it (yet)
 */
static int
whole(struct spool_reader *r, struct spool_rpart *p,
    const struct spool_bhdr *h, off_t pos)
{
	struct stat st;
	ssize_t avail;

	if (p->have - p->at < SPOOL_HDR_SIZE + h->body_len) {
		/* no buffer for a body the file does not hold yet */
		if (fstat(p->logfd, &st) == -1)
			return -errno;
		if (pos + SPOOL_HDR_SIZE + (off_t)h->body_len > st.st_size)
			return eof_again(r, p, st.st_size - pos, st.st_size);
	}
	if ((avail = fill(r, p, SPOOL_HDR_SIZE + h->body_len)) < 0)
		return (int)avail;
	if ((size_t)avail < SPOOL_HDR_SIZE + h->body_len)
		return eof_again(r, p, avail, pos + avail);
	return HAVE;
}

/*
 * visible - a batch of a transaction is visible unless its commit is
 * under way: wait that out; 0, or <0 with the partition stopped
 */
static int
visible(struct spool_reader *r, struct spool_rpart *p,
    const struct spool_bhdr *h)
{
	uint32_t i;
	int s;

	if ((h->flags & SPOOL_BF_TXN) && h->txid != p->txok &&
	    h->base_offset + h->count > p->next) {
		/* visible unless its commit is under way: wait it out */
		if ((s = spool_txn_settle(r->t, h->txid)) < 0) {
			/*
			 * a damaged or unreadable state: stop the
			 * partition here (spool_errmsg names the
			 * file), never meet the batch again and again
			 */
			p->done = 1;
			return s;
		}
		p->txok = h->txid;
		/*
		 * Its other batches may have come to partitions this
		 * reader found at their end before (drained): all or
		 * none, so each is read again before the reader says it
		 * is at the end.
		 */
		for (i = 0; i < r->n; i++)
			r->parts[i].drained = 0;
	}
	return 0;
}

/*
 * open_body - decode data batch h at pos, just passed in the buffer: 1,
 * AGAIN when it lies wholly before the start or was a write in
 * progress, -EBADMSG when it is damaged
 */
static int
open_body(struct spool_reader *r, struct spool_rpart *p,
    const struct spool_bhdr *h, off_t pos)
{
	char why[128];
	int s;

	if (h->base_offset + h->count <= p->next)
		return AGAIN;	/* wholly before the start */
	if (h->base_offset > p->next)
		p->next = h->base_offset;
	s = spool_body_open(&p->body, h, p->buf + p->at - h->body_len,
	    why, sizeof(why));
	if (s == -EILSEQ) {
		p->next = h->base_offset + h->count;
		return spool_damage_skip(r, p, pos, why);
	}
	if (s == -EBADMSG) {
		if (!spool_damage_confirm(r->io, p->partfd, p->logfd, pos)) {
			spool_walk_reset(r, p, pos);
			return AGAIN;
		}
		p->next = h->base_offset + h->count;
		return spool_damage_skip(r, p, pos, why);
	}
	if (s < 0)
		return s;
	p->bpos = pos;
	p->inbody = 1;
	read_ahead(r, p);
	return 1;
}

/*
 * step - one batch of partition p: as spool_walk_next, or AGAIN when
 * the walk goes on (a segment crossed, a batch passed over)
 */
static int
step(struct spool_reader *r, struct spool_rpart *p)
{
	struct spool_bhdr h;
	char why[128];
	ssize_t avail;
	off_t pos;
	int s;

	/*
	 * A read that came back short took all the file had; until the
	 * follower wakes (spool_reader_wait), another would find nothing:
	 * a follower skips that read, one syscall a message (issue 14).
	 */
	if (p->drained && p->have - p->at < SPOOL_HDR_SIZE)
		avail = p->have - p->at;
	else if ((avail = fill(r, p, SPOOL_HDR_SIZE)) < 0)
		return (int)avail;
	if (avail < SPOOL_HDR_SIZE)
		return eof_again(r, p, avail, p->filepos + p->at + avail);
	pos = p->filepos + p->at;
	if ((s = spool_bhdr_unpack(p->buf + p->at, &h)) == -EPROTO) {
		spool_bhdr_newer(p->buf + p->at, why, sizeof(why));
		return spool_damage_newer(r, p, pos, why);
	}
	if (s < 0)
		return bad_header(r, p, pos);
	if (spool_cursor_follows(&h, p->expect) < 0 &&
	    (s = spool_damage_jump(r, p, &h, pos)) != 0)
		return s;
	if (h.type == SPOOL_TYPE_END) {
		p->expect = h.base_offset;	/* the next segment's */
		return eof_again(r, p, 0, -1);
	}
	if ((s = whole(r, p, &h, pos)) != HAVE)
		return s;
	if ((s = visible(r, p, &h)) < 0)
		return s;
	p->at += SPOOL_HDR_SIZE + h.body_len;
	p->expect = h.base_offset + h.count;
	if (h.type >= SPOOL_TYPE_SKIP) {
		/* passed over: its offsets are a legal gap */
		if (p->expect > p->next)
			p->next = p->expect;
		return AGAIN;
	}
	return open_body(r, p, &h, pos);
}

/*
 * spool_walk_next - get the next batch of partition p decoded: 1 when
 * one is ready, 0 when there is nothing more now, -EBADMSG after
 * skipping damage or at a hole, -EPROTO at a batch of a newer format
 */
int
spool_walk_next(struct spool_reader *r, struct spool_rpart *p)
{
	int s;

	while ((s = step(r, p)) == AGAIN)
		;
	return s;
}
