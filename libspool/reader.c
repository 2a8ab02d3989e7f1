/*
 * reader.c - reading a topic: batches, damage, the partitions read
 *
 * A reader walks each partition from a start position (position.c),
 * a batch at a time, taking the partitions in turn, and hands out one
 * message per spool_reader_next call (pointers valid until the next
 * call).  It takes no lock and changes nothing on disk.
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
 * Following uses inotify on the partition directories (appends, new
 * segments) and the topic directory (a config rename may add
 * partitions), never polling; follow.c waits on them.  Watches are set
 * up before the first read, so nothing written after a read can be
 * missed.
 */

#include <sys/file.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <sys/types.h>

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "spool_impl.h"

#define CHUNK		(1u << 20)

/* spool_reader_warn - a warning for the caller, if it wants them */
void
spool_reader_warn(struct spool_reader *r, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	if (r->o.warn == NULL)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	r->o.warn(r->o.arg, msg);
}

/* damage - record where and why a batch was skipped; returns -EBADMSG */
static int
damage(struct spool_reader *r, struct spool_rpart *p, off_t at, const char *why)
{
	spool_seterr(r->t->sp, "%s/%" PRIu32 "/%020" PRIu64 ".log: byte %lld: "
	    "%s; skipped", r->t->name, p->id, p->segbase, (long long)at, why);
	return -EBADMSG;
}

/*
 * stop_at - offsets are missing or out of order at byte at of p's
 * segment: stop the partition there, or with skip_damage go on (the
 * caller moves past); -EBADMSG either way, spool_errmsg says why
 */
static int
stop_at(struct spool_reader *r, struct spool_rpart *p, uint64_t seg, off_t at,
    const char *why)
{
	if (r->o.skip_damage) {
		spool_seterr(r->t->sp, "%s/%" PRIu32 "/%020" PRIu64 ".log: byte "
		    "%lld: %s; skipped", r->t->name, p->id, seg, (long long)at,
		    why);
		return -EBADMSG;
	}
	p->done = 1;
	spool_seterr(r->t->sp, "%s/%" PRIu32 "/%020" PRIu64 ".log: byte %lld: "
	    "%s; stopped at offset %" PRIu64 " (mq-recv --skip-damage reads "
	    "past it)", r->t->name, p->id, seg, (long long)at, why, p->next);
	return -EBADMSG;
}

/* newer - a batch a newer mq wrote: the partition stops there */
static int
newer(struct spool_reader *r, struct spool_rpart *p, off_t at, const char *what)
{
	p->done = 1;
	spool_seterr(r->t->sp, "%s/%" PRIu32 "/%020" PRIu64 ".log: byte %lld: "
	    "%s", r->t->name, p->id, p->segbase, (long long)at, what);
	return -EPROTO;
}

/* collect - finish the outstanding read-ahead, whoever it is for */
static void
collect(struct spool_reader *r)
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

/* spool_reader_reset - forget buffered bytes; read from pos next */
void
spool_reader_reset(struct spool_reader *r, struct spool_rpart *p, off_t pos)
{
	if (r->ahead == p)
		collect(r);
	p->filepos = pos;
	p->have = p->at = 0;
}

/*
 * spool_reader_seg - switch a partition to the segment that starts at
 * base
 */
int
spool_reader_seg(struct spool_reader *r, struct spool_rpart *p, uint64_t base, off_t pos)
{
	char name[SPOOL_SEGNAME_LEN + 16];
	int fd;

	spool_seg_name(name, base, SPOOL_LOG_SUFFIX);
	fd = openat(p->partfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd == -1)
		return -errno;
	spool_reader_reset(r, p, pos);
	if (p->logfd >= 0)
		close(p->logfd);
	p->logfd = fd;
	p->segbase = base;
	p->expect = base;	/* for pos 0; spool_position_start sets its own */
	return 0;
}

/*
 * fill - have at least need bytes from buf[at] if the file has them;
 * returns the bytes available
 */
static ssize_t
fill(struct spool_reader *r, struct spool_rpart *p, size_t need)
{
	unsigned char *nb;
	size_t ncap;
	ssize_t n;

	collect(r);
	if (p->have - p->at >= need)
		return p->have - p->at;
	if (p->at > 0) {
		memmove(p->buf, p->buf + p->at, p->have - p->at);
		p->filepos += p->at;
		p->have -= p->at;
		p->at = 0;
	}
	if (need > p->cap || p->cap - p->have < CHUNK / 4) {
		ncap = p->cap ? p->cap : CHUNK;
		while (ncap < need || ncap - p->have < CHUNK / 4)
			ncap *= 2;
		if ((nb = realloc(p->buf, ncap)) == NULL)
			return -ENOMEM;
		p->buf = nb;
		p->cap = ncap;
	}
	while (p->have < need) {
		n = spool_io_pread(r->io, p->logfd, p->buf + p->have,
		    p->cap - p->have, p->filepos + p->have);
		if (n < 0)
			return n;
		if (n == 0)
			break;
		p->have += n;
	}
	return p->have - p->at;
}

/* read_ahead - start reading what follows while a batch is decoded */
static void
read_ahead(struct spool_reader *r, struct spool_rpart *p)
{
	if (r->ahead != NULL || p->cap - p->have < CHUNK / 4)
		return;
	if (spool_io_read_start(r->io, &r->rd, p->logfd, p->buf + p->have,
	    p->cap - p->have, p->filepos + p->have) == 0)
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

/*
 * confirm - recheck a bad batch with writers held off; 1 if it is
 * really bad, 0 if it was a write in progress
 */
static int
confirm(struct spool_reader *r, struct spool_rpart *p, off_t pos)
{
	unsigned char hdr[SPOOL_HDR_SIZE], *body;
	struct spool_bhdr h;
	struct stat st;
	int lfd, bad = 1;
	ssize_t n;

	lfd = openat(p->partfd, SPOOL_LOCK_NAME, O_RDONLY | O_NOFOLLOW |
	    O_CLOEXEC);
	if (lfd >= 0)
		while (flock(lfd, LOCK_SH) == -1 && errno == EINTR)
			;
	n = spool_io_pread(r->io, p->logfd, hdr, sizeof(hdr), pos);
	if (n == SPOOL_HDR_SIZE && spool_bhdr_unpack(hdr, &h) == 0 &&
	    fstat(p->logfd, &st) == 0 &&
	    pos + SPOOL_HDR_SIZE + (off_t)h.body_len <= st.st_size) {
		if ((body = malloc(h.body_len ? h.body_len : 1)) != NULL) {
			n = spool_io_pread(r->io, p->logfd, body, h.body_len,
			    pos + SPOOL_HDR_SIZE);
			if (n == (ssize_t)h.body_len &&
			    spool_crc(0, body, h.body_len) == h.body_crc)
				bad = 0;
			free(body);
		}
	}
	if (lfd >= 0)
		close(lfd);	/* releases the lock */
	return bad;
}

/*
 * seg_gap - the segment just opened at base does not start at want,
 * where the one before it ended: a gap retention made (nothing older
 * is left) is said and passed; anything else is a hole
 */
static int
seg_gap(struct spool_reader *r, struct spool_rpart *p, uint64_t want,
    uint64_t base)
{
	uint64_t from = want > p->next ? want : p->next;
	char why[160];
	int s;

	if (base > want) {
		spool_seg_free(&p->segs);
		if ((s = spool_seg_list(p->partfd, &p->segs)) < 0)
			return s;
		if (p->segs.n > 0 && p->segs.base[0] >= base) {
			/* gc removed what lay between: as for -o below first */
			if (base > p->next)
				spool_reader_warn(r, "partition %" PRIu32 ": offsets %" PRIu64
				    " to %" PRIu64 " are no longer retained; "
				    "going on at %" PRIu64, p->id, p->next,
				    base - 1, base);
			if (base > p->next)
				p->next = base;
			return 0;
		}
		if (from >= base)
			return 0;	/* all before where we read from */
		snprintf(why, sizeof(why), "offsets %" PRIu64 " to %" PRIu64
		    " are missing (the segment before ends at %" PRIu64 ")",
		    from, base - 1, want);
	} else
		snprintf(why, sizeof(why), "the segment starts at %" PRIu64
		    ", before the end of the one before (%" PRIu64 ")", base,
		    want);
	s = stop_at(r, p, base, 0, why);
	if (r->o.skip_damage && base > p->next)
		p->next = base;
	return s;
}

/*
 * at_eof - the current segment has no complete batch at buf[at]: move
 * to the next segment, or report that nothing more is there now (0)
 */
static int
at_eof(struct spool_reader *r, struct spool_rpart *p, size_t avail, int *moved)
{
	uint64_t base, old = p->segbase, want = p->expect;
	off_t pos = p->filepos + p->at;
	int s, o;

	*moved = 0;
	if ((s = successor(p, &base, 0)) < 0)
		return s;
	while (s == 1) {
		if ((o = spool_reader_seg(r, p, base, 0)) == 0)
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
			spool_reader_reset(r, p, pos);
		return 0;
	}
	*moved = 1;
	if (avail == 0 && want != SPOOL_EXPECT_ANY && base != want)
		return seg_gap(r, p, want, base);
	if (base > p->next)
		p->next = base;
	if (avail > 0) {
		/* a batch cut short, and the log went on past it */
		spool_seterr(r->t->sp, "%s/%" PRIu32 "/%020" PRIu64 ".log: "
		    "byte %lld: incomplete batch before the next segment; "
		    "skipped", r->t->name, p->id, old, (long long)pos);
		return -EBADMSG;
	}
	return 0;
}

/* skip_bad_header - resync after a header that does not check out */
static int
skip_bad_header(struct spool_reader *r, struct spool_rpart *p)
{
	struct stat st;
	off_t pos = p->filepos + p->at, found;
	int s;

	if (fstat(p->logfd, &st) == -1)
		return -errno;
	s = spool_seg_resync(r->io, p->logfd, pos, st.st_size, p->next, &found);
	if (s < 0)
		return s;
	spool_reader_reset(r, p, s == 1 ? found : st.st_size);
	p->expect = SPOOL_EXPECT_ANY;	/* what the damage held is unknown */
	return damage(r, p, pos, "bad batch header");
}

/*
 * jump - the batch h at pos does not start where the one before ended
 * (p->expect): 0 when the gap is below where p reads from, else as
 * stop_at; with skip_damage the batch is taken as it is
 */
static int
jump(struct spool_reader *r, struct spool_rpart *p, const struct spool_bhdr *h,
    off_t pos)
{
	uint64_t from = p->expect > p->next ? p->expect : p->next;
	char why[192];

	if (h->base_offset > p->expect) {
		if (from >= h->base_offset) {
			p->expect = h->base_offset;
			return 0;
		}
		snprintf(why, sizeof(why), "offsets %" PRIu64 " to %" PRIu64
		    " are missing (batch offset %" PRIu64 " where %" PRIu64
		    " was expected)", from, h->base_offset - 1,
		    h->base_offset, p->expect);
	} else
		snprintf(why, sizeof(why), "batch offset %" PRIu64 " where %"
		    PRIu64 " was expected (offsets out of order or repeated)",
		    h->base_offset, p->expect);
	p->expect = h->base_offset;	/* with skip_damage: go on from it */
	return stop_at(r, p, p->segbase, pos, why);
}

/*
 * next_batch - get the next batch of partition p decoded: 1 when one is
 * ready, 0 when there is nothing more now, -EBADMSG after skipping damage
 * or at a hole, -EPROTO at a batch of a newer format
 */
static int
next_batch(struct spool_reader *r, struct spool_rpart *p)
{
	struct spool_bhdr h;
	char why[128];
	ssize_t avail;
	off_t pos;
	int s, moved;

	for (;;) {
		if ((avail = fill(r, p, SPOOL_HDR_SIZE)) < 0)
			return (int)avail;
		if (avail < SPOOL_HDR_SIZE) {
			if ((s = at_eof(r, p, avail, &moved)) != 0 || !moved)
				return s;
			continue;
		}
		pos = p->filepos + p->at;
		if ((s = spool_bhdr_unpack(p->buf + p->at, &h)) == -EPROTO) {
			spool_bhdr_newer(p->buf + p->at, why, sizeof(why));
			return newer(r, p, pos, why);
		}
		if (s < 0) {
			struct stat st;

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
				if (zero && avail >= 0) {
					if ((s = at_eof(r, p, 0, &moved)) != 0
					    || !moved)
						return s;
					continue;
				}
			}
			if (!confirm(r, p, pos)) {
				spool_reader_reset(r, p, pos);
				continue;
			}
			return skip_bad_header(r, p);
		}
		if (p->expect != SPOOL_EXPECT_ANY && h.base_offset != p->expect &&
		    !(h.base_offset > p->expect &&
		    (h.flags & SPOOL_BF_COMPACTED)) &&
		    (s = jump(r, p, &h, pos)) != 0)
			return s;
		if (h.type == SPOOL_TYPE_END) {
			p->expect = h.base_offset;	/* the next segment's */
			if ((s = at_eof(r, p, 0, &moved)) != 0 || !moved)
				return s;
			continue;
		}
		if (p->have - p->at < SPOOL_HDR_SIZE + h.body_len) {
			struct stat st;

			/* no buffer for a body the file does not hold yet */
			if (fstat(p->logfd, &st) == -1)
				return -errno;
			if (pos + SPOOL_HDR_SIZE + (off_t)h.body_len >
			    st.st_size) {
				if ((s = at_eof(r, p, st.st_size - pos,
				    &moved)) != 0 || !moved)
					return s;
				continue;
			}
		}
		if ((avail = fill(r, p, SPOOL_HDR_SIZE + h.body_len)) < 0)
			return (int)avail;
		if ((size_t)avail < SPOOL_HDR_SIZE + h.body_len) {
			if ((s = at_eof(r, p, avail, &moved)) != 0 || !moved)
				return s;
			continue;
		}
		if ((h.flags & SPOOL_BF_TXN) && h.txid != p->txok &&
		    h.base_offset + h.count > p->next) {
			/* visible unless its commit is under way: wait it out */
			if ((s = spool_txn_settle(r->t, h.txid)) < 0) {
				/*
				 * a damaged or unreadable state: stop the
				 * partition here (spool_errmsg names the
				 * file), never meet the batch again and again
				 */
				p->done = 1;
				return s;
			}
			p->txok = h.txid;
		}
		p->at += SPOOL_HDR_SIZE + h.body_len;
		p->expect = h.base_offset + h.count;
		if (h.type >= SPOOL_TYPE_SKIP) {
			/* passed over: its offsets are a legal gap */
			if (p->expect > p->next)
				p->next = p->expect;
			continue;
		}
		if (h.base_offset + h.count <= p->next)
			continue;	/* wholly before the start */
		if (h.base_offset > p->next)
			p->next = h.base_offset;
		s = spool_body_open(&p->body, &h, p->buf + p->at - h.body_len,
		    why, sizeof(why));
		if (s == -EILSEQ) {
			p->next = h.base_offset + h.count;
			return damage(r, p, pos, why);
		}
		if (s == -EBADMSG) {
			if (!confirm(r, p, pos)) {
				spool_reader_reset(r, p, pos);
				continue;
			}
			p->next = h.base_offset + h.count;
			return damage(r, p, pos, why);
		}
		if (s < 0)
			return s;
		p->bpos = pos;
		p->inbody = 1;
		read_ahead(r, p);
		return 1;
	}
}

/*
 * part_next - the next message of one partition: 1, 0 when there is
 * none now, TURN when a batch ended (the next partition's turn), <0
 */
#define TURN	2
static int
part_next(struct spool_reader *r, struct spool_rpart *p, struct spool_msg *m)
{
	int s;

	while (!p->done && !p->paused) {
		if (p->next >= p->until) {
			p->done = 1;	/* everything before --until given out */
			break;
		}
		if (!p->inbody) {
			if ((s = next_batch(r, p)) <= 0)
				return s;
		}
		s = spool_body_next(&p->body, m);
		if (s == 0) {
			p->inbody = 0;
			return TURN;
		}
		if (s == -EPROTO) {
			p->inbody = 0;
			return newer(r, p, p->bpos, "record attributes of a "
			    "newer format");
		}
		if (s < 0) {
			p->inbody = 0;
			return damage(r, p, p->filepos + p->at,
			    "records do not match the batch header");
		}
		if (m->offset < p->next)
			continue;
		if (m->offset >= p->until || m->ts >= p->until_ts) {
			p->done = 1;
			p->inbody = 0;
			return 0;
		}
		p->next = m->offset + 1;
		m->partition = p->id;
		return 1;
	}
	return 0;
}

/*
 * spool_reader_next - the next message: 1 and *m, 0 when every
 * partition is read to its end (for now), -EBADMSG after damage was
 * skipped or where a partition stopped at a hole, -EPROTO where a
 * partition stopped at a batch of a newer format (spool_errmsg says
 * where; call again to go on with the rest), other -errno
 */
int
spool_reader_next(struct spool_reader *r, struct spool_msg *m)
{
	struct spool_rpart *p;
	int s;

	if (r->n == 0)
		return 0;
	while (r->idle < r->n) {
		p = &r->parts[r->cur];
		s = part_next(r, p, m);
		if (s == 1) {
			r->idle = 0;
			return 1;
		}
		if (s < 0 && s != -EBADMSG)
			return s;	/* -EPROTO too: its partition stopped */
		/* a batch ended, or nothing there (or held back): the next */
		r->cur = (r->cur + 1) % r->n;
		if (s == 0)
			r->idle++;
		else
			r->idle = 0;
		if (s == -EBADMSG)
			return s;
	}
	r->idle = 0;
	return 0;
}

#define PART_EVENTS	(IN_MODIFY | IN_CREATE | IN_MOVED_TO | IN_CLOSE_WRITE)

/* part_free - what one partition of a reader holds */
static void
part_free(struct spool_rpart *p)
{
	if (p->logfd >= 0)
		close(p->logfd);
	if (p->partfd >= 0)
		close(p->partfd);
	free(p->buf);
	spool_body_free(&p->body);
	spool_seg_free(&p->segs);
}

/* add_one - open partition id, watch it, and start it at start */
static int
add_one(struct spool_reader *r, uint32_t id, const struct spool_pos *start)
{
	struct spool_rpart *np, *p;
	int i, s = 0;

	/* the read-ahead points into a partition: settle it first */
	collect(r);
	if ((np = realloc(r->parts, (r->n + 1) * sizeof(*np))) == NULL)
		return -ENOMEM;
	r->parts = np;
	p = &r->parts[r->n];
	memset(p, 0, sizeof(*p));
	p->logfd = p->wd = -1;
	p->id = id;
	if ((p->partfd = spool_part_open(r->t, id)) < 0)
		return p->partfd;
	r->n++;
	if (r->ifd >= 0 &&
	    (p->wd = spool_watch(r->ifd, p->partfd, PART_EVENTS)) == -1)
		return -errno;
	/* a segment may go (gc) between listing and opening: try again */
	for (i = 0; i < 3; i++)
		if ((s = spool_position_start(r, p, start)) != -ENOENT)
			break;
	return s;
}

/*
 * spool_reader_add_parts - open partitions [r->n, count) from their
 * start position
 */
int
spool_reader_add_parts(struct spool_reader *r, uint32_t count,
    const struct spool_pos *start)
{
	uint32_t i;
	int s;

	for (i = r->n; i < count; i++)
		if ((s = add_one(r, r->o.partition >= 0 ?
		    (uint32_t)r->o.partition : i, start)) < 0)
			return s;
	return 0;
}

/* find - the index of partition id among the reader's, or -1 */
static int
find(const struct spool_reader *r, uint32_t id)
{
	uint32_t i;

	for (i = 0; i < r->n; i++)
		if (r->parts[i].id == id)
			return (int)i;
	return -1;
}

/*
 * spool_reader_add - read partition part too, from start (a consumer
 * group member taking a partition over)
 */
int
spool_reader_add(struct spool_reader *r, uint32_t part,
    const struct spool_pos *start)
{
	if (find(r, part) >= 0)
		return -EEXIST;
	if (part >= r->t->cfg.partitions)
		return -ENOENT;
	return add_one(r, part, start);
}

/* spool_reader_drop - stop reading partition part */
int
spool_reader_drop(struct spool_reader *r, uint32_t part)
{
	struct spool_rpart *p;
	int i;

	if ((i = find(r, part)) < 0)
		return -ENOENT;
	collect(r);
	p = &r->parts[i];
	if (p->wd >= 0)
		(void)inotify_rm_watch(r->ifd, p->wd);
	part_free(p);
	r->parts[i] = r->parts[--r->n];
	if (r->cur >= r->n)
		r->cur = 0;
	r->idle = 0;
	return 0;
}

/* spool_reader_pause - hold a partition back (1) or let it go on (0) */
int
spool_reader_pause(struct spool_reader *r, uint32_t part, int on)
{
	int i;

	if ((i = find(r, part)) < 0)
		return -ENOENT;
	r->parts[i].paused = on;
	return 0;
}

/* spool_reader_position - the next offset the reader gives out of part */
int
spool_reader_position(const struct spool_reader *r, uint32_t part,
    uint64_t *off)
{
	int i;

	if ((i = find(r, part)) < 0)
		return -ENOENT;
	*off = r->parts[i].next;
	return 0;
}

/* spool_reader_open - a reader over topic t */
int
spool_reader_open(struct spool_topic *t, const struct spool_reader_opts *o,
    struct spool_reader **rp)
{
	struct spool_reader *r;
	int s;

	if (o->partition >= 0 && (uint32_t)o->partition >= t->cfg.partitions)
		return -ENOENT;
	if (o->partition < SPOOL_PART_NONE)
		return -EINVAL;
	if ((r = calloc(1, sizeof(*r))) == NULL)
		return -ENOMEM;
	r->t = t;
	r->o = *o;
	r->ifd = r->twd = -1;
	if ((r->io = spool_get_io(t->sp)) == NULL) {
		free(r);
		return -ENOMEM;
	}
	if (o->follow) {
		/*
		 * The topic directory: new partitions, and its own end (a
		 * delete renames it into tmp/, then removes it)
		 */
		r->ifd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
		if (r->ifd == -1 || (r->twd = spool_watch(r->ifd, t->dirfd,
		    IN_MOVED_TO | IN_CREATE | IN_MOVE_SELF | IN_DELETE_SELF)) ==
		    -1) {
			s = -errno;
			spool_reader_close(r);
			return s;
		}
	}
	s = o->partition == SPOOL_PART_NONE ? 0 : spool_reader_add_parts(r,
	    o->partition >= 0 ? 1 : t->cfg.partitions, &o->start);
	if (s < 0) {
		spool_reader_close(r);
		return s;
	}
	*rp = r;
	return 0;
}

/* spool_reader_done - every partition reached its --until position */
int
spool_reader_done(const struct spool_reader *r)
{
	uint32_t i;

	if (r->n == 0)
		return 0;
	for (i = 0; i < r->n; i++)
		if (!r->parts[i].done)
			return 0;
	return 1;
}

/* spool_reader_close - release a reader */
void
spool_reader_close(struct spool_reader *r)
{
	uint32_t i;

	if (r == NULL)
		return;
	collect(r);
	for (i = 0; i < r->n; i++)
		part_free(&r->parts[i]);
	if (r->ifd >= 0)
		close(r->ifd);
	free(r->parts);
	free(r);
}
