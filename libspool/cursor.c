/*
 * cursor.c - the verified batch headers of one partition, in order
 *
 * A cursor hands out the batches of a partition one header at a time:
 * it opens each segment in turn, reads a header, checks it
 * (spool_bhdr_unpack), checks that the whole batch is in the file and
 * that its offsets follow the batch before it, and steps to the next,
 * crossing into the next segment after an END batch or at the end of a
 * segment's file.  It can also walk just one segment file the caller
 * opened (spool_cursor_fd).
 *
 * It applies the gap rule of mq-spool(5) and says what it found; what
 * to do about it is the caller's.  Legal gaps are a batch flagged
 * compacted starting past the end of the one before (c->gap is set)
 * and a skippable batch (handed out like any other: its type says so).
 * Any other jump in offsets, inside a segment or between two, is a hole
 * (SPOOL_CUR_HOLE, c->why says which offsets).  After a torn or bad
 * batch the rest of that segment is passed over, and where the next
 * segment should start is not known.
 *
 * A cursor takes no lock, changes nothing on disk, and reads no body
 * unless asked (spool_cursor_body).  The segment list is taken once,
 * when the cursor is opened.  While batches are small it reads ahead
 * in chunks of CUR_CHUNK, so that a walk over many small batches costs
 * one read per chunk, not one per header; after a large batch it reads
 * the next header alone, so that a walk over large batches reads little
 * more than their headers.
 */

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

#define CUR_ANY	UINT64_MAX	/* where the next batch starts: not known */
#define CUR_CHUNK	65536	/* one read-ahead */
#define CUR_SMALL	8192	/* a batch this size or less: read ahead */

/* spool_cursor_fd - a cursor over one segment file, from byte at */
void
spool_cursor_fd(struct spool_cursor *c, struct spool_io *io, int fd,
    uint64_t base, off_t size, off_t at, uint64_t expect)
{
	memset(c, 0, sizeof(*c));
	c->io = io;
	c->partfd = -1;
	c->logfd = fd;
	c->base = base;
	c->size = size;
	c->at = at;
	c->expect = expect;
}

/* spool_cursor_open - a cursor over partition partfd, before its first batch */
int
spool_cursor_open(struct spool_cursor *c, struct spool_io *io, int partfd)
{
	int r;

	memset(c, 0, sizeof(*c));
	c->io = io;
	c->partfd = partfd;
	c->logfd = -1;
	c->seg = (size_t)-1;
	c->expect = CUR_ANY;
	if ((r = spool_seg_list(partfd, &c->segs)) < 0)
		return r;
	return 0;
}

/* spool_cursor_close - release what a cursor holds */
void
spool_cursor_close(struct spool_cursor *c)
{
	if (c->ownfd && c->logfd >= 0)
		close(c->logfd);
	c->logfd = -1;
	c->ownfd = 0;
	spool_seg_free(&c->segs);
	free(c->body);
	c->body = NULL;
	c->bcap = 0;
	free(c->rbuf);
	c->rbuf = NULL;
	c->rlen = 0;
}

/*
 * cur_read - len bytes of the open segment at byte at into dst: from
 * the read-ahead when it holds them, else by a read of a chunk from at
 * when batches are small (c->ahead), else by a read of just these
 * bytes; the count read (short at the end of the file), or -errno
 */
static ssize_t
cur_read(struct spool_cursor *c, void *dst, size_t len, off_t at)
{
	ssize_t n;
	size_t want;

	if (c->rlen > 0 && at >= c->rpos &&
	    (size_t)(at - c->rpos) + len <= c->rlen) {
		memcpy(dst, c->rbuf + (at - c->rpos), len);
		return (ssize_t)len;
	}
	if (!c->ahead || len > CUR_CHUNK / 2 || at >= c->size)
		return spool_io_pread(c->io, c->logfd, dst, len, at);
	if (c->rbuf == NULL && (c->rbuf = malloc(CUR_CHUNK)) == NULL)
		return -ENOMEM;
	want = c->size - at < CUR_CHUNK ? (size_t)(c->size - at) : CUR_CHUNK;
	if (want < len)
		want = len;
	c->rlen = 0;
	if ((n = spool_io_pread(c->io, c->logfd, c->rbuf, want, at)) < 0)
		return n;
	c->rpos = at;
	c->rlen = (size_t)n;
	if ((size_t)n > len)
		n = (ssize_t)len;
	memcpy(dst, c->rbuf, (size_t)n);
	return n;
}

/*
 * seg_open - open segment i of the list at byte 0: 1, 0 when it is gone
 * (retention may delete under a reader), or -errno
 */
static int
seg_open(struct spool_cursor *c, size_t i)
{
	char name[SPOOL_SEGNAME_LEN + 16];
	struct stat st;
	int fd;

	spool_seg_name(name, c->segs.base[i], SPOOL_LOG_SUFFIX);
	fd = openat(c->partfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd == -1)
		return errno == ENOENT ? 0 : -errno;
	if (fstat(fd, &st) == -1) {
		close(fd);
		return -errno;
	}
	if (c->ownfd && c->logfd >= 0)
		close(c->logfd);
	c->logfd = fd;
	c->ownfd = 1;
	c->seg = i;
	c->base = c->segs.base[i];
	c->size = st.st_size;
	c->at = 0;
	c->rlen = 0;		/* the read-ahead was of another file */
	return 1;
}

/*
 * spool_cursor_find - the position of the batch holding offset in a
 * segment, or of the first batch after it, or of the end of the good
 * data, or of the first jump in offsets; the index narrows the walk.
 * *expect is the offset the batch at *pos should start at.
 */
int
spool_cursor_find(struct spool_io *io, int logfd, int idxfd, uint64_t base,
    uint64_t offset, off_t size, off_t *pos, uint64_t *expect)
{
	struct spool_cursor c;
	uint64_t at;
	off_t p;
	ssize_t n;

	n = spool_idx_best(io, logfd, idxfd, base, offset, size, &p, &at);
	if (n < 0)
		return (int)n;
	spool_cursor_fd(&c, io, logfd, base, size, p, at);
	/* a gap, legal or not, is the reader's to judge */
	while (spool_cursor_next(&c) == SPOOL_CUR_BATCH && !c.gap &&
	    c.h.type != SPOOL_TYPE_END && c.h.base_offset + c.h.count <= offset)
		at = c.expect;
	*pos = c.pos;
	*expect = at;
	spool_cursor_close(&c);
	return 0;
}

/*
 * spool_cursor_seek - put the cursor before the batch that holds offset
 * (or the first one after it), or before an earlier one: the index
 * narrows the walk, which stops at any gap (spool_cursor_find).  Offsets
 * below the first segment start it at the first batch.
 */
int
spool_cursor_seek(struct spool_cursor *c, uint64_t offset)
{
	char name[SPOOL_SEGNAME_LEN + 16];
	uint64_t expect;
	off_t pos;
	size_t i;
	int k, r = 0, ifd;

	c->held = 0;
	k = spool_seg_find(&c->segs, offset);
	for (i = k < 0 ? 0 : (size_t)k; i < c->segs.n; i++)
		if ((r = seg_open(c, i)) != 0)
			break;
	if (i >= c->segs.n) {
		c->seg = c->segs.n;
		return 0;
	}
	if (r < 0)
		return r;
	c->expect = c->base;
	if ((int)i != k)
		return 0;
	spool_seg_name(name, c->base, SPOOL_IDX_SUFFIX);
	ifd = openat(c->partfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	r = spool_cursor_find(c->io, c->logfd, ifd, c->base, offset, c->size,
	    &pos, &expect);
	if (ifd >= 0)
		close(ifd);
	if (r == 0) {
		c->at = pos;
		c->expect = expect;
	}
	return 0;
}

/*
 * cross - step into the segment after the open one: SPOOL_CUR_DONE when
 * there is none, SPOOL_CUR_HOLE when it does not start where the one
 * before ended, else -1 (go on reading), or -errno
 */
static int
cross(struct spool_cursor *c)
{
	uint64_t want = c->expect;
	size_t i;
	int r = 0;

	if (c->partfd < 0)
		return SPOOL_CUR_DONE;
	for (i = c->seg + 1; i < c->segs.n; i++)
		if ((r = seg_open(c, i)) != 0)
			break;
	if (i >= c->segs.n) {
		c->seg = c->segs.n;
		c->at = c->size;
		return SPOOL_CUR_DONE;
	}
	if (r < 0)
		return r;
	c->expect = c->base;
	c->pos = 0;
	if (want == CUR_ANY || want == c->base)
		return -1;
	if (c->base > want)
		snprintf(c->why, sizeof(c->why), "offsets %" PRIu64 " to %"
		    PRIu64 " are missing (the segment before ends at %" PRIu64
		    ")", want, c->base - 1, want);
	else
		snprintf(c->why, sizeof(c->why), "the segment starts at %"
		    PRIu64 ", before the end of the one before (%" PRIu64 ")",
		    c->base, want);
	return SPOOL_CUR_HOLE;
}

/*
 * spool_cursor_follows - whether batch h may come where the one before
 * it ended (expect; UINT64_MAX: not known, anything may): 0 it does, 1
 * across a legal gap (it is flagged compacted), -1 a hole
 */
int
spool_cursor_follows(const struct spool_bhdr *h, uint64_t expect)
{
	if (expect == CUR_ANY || h->base_offset == expect)
		return 0;
	if (h->base_offset > expect && (h->flags & SPOOL_BF_COMPACTED))
		return 1;
	return -1;
}

/* take - hand out the batch in c->h at c->pos and step past it */
static int
take(struct spool_cursor *c)
{
	if (c->h.type == SPOOL_TYPE_END) {
		/* the next segment's first offset; nothing after it here */
		c->expect = c->h.base_offset;
		c->at = c->size;
	} else {
		c->expect = c->h.base_offset + c->h.count;
		c->at = c->pos + SPOOL_HDR_SIZE + c->h.body_len;
	}
	c->ahead = c->h.body_len <= CUR_SMALL;
	return SPOOL_CUR_BATCH;
}

/* stop - the rest of the segment is not to be read: say what stopped it */
static int
stop(struct spool_cursor *c, int what)
{
	c->at = c->size;
	c->expect = CUR_ANY;	/* what the rest held is not known */
	return what;
}

/*
 * spool_cursor_next - the next batch: SPOOL_CUR_BATCH with its header in
 * c->h (raw in c->hdr) at byte c->pos of segment c->base; SPOOL_CUR_DONE
 * when no segment has more; SPOOL_CUR_TORN where a segment ends in part
 * of a batch, SPOOL_CUR_BAD at a header that does not check out (the
 * next call goes on with the next segment); SPOOL_CUR_HOLE where offsets
 * jump (c->why; the next call hands out the batch there, or reads the
 * new segment); -EPROTO at a batch a newer mq wrote (c->why; the next
 * call goes on with the next segment); other -errno
 */
int
spool_cursor_next(struct spool_cursor *c)
{
	ssize_t n;
	int u, r, f;

	if (c->held) {
		c->held = 0;
		return take(c);
	}
	for (;;) {
		if (c->partfd >= 0 && c->seg >= c->segs.n) {
			if (c->seg == (size_t)-1 && c->segs.n > 0) {
				if ((r = spool_cursor_seek(c, 0)) < 0)
					return r;
				continue;
			}
			return SPOOL_CUR_DONE;
		}
		c->gap = 0;
		c->pos = c->at;
		if (c->at >= c->size) {
			if ((r = cross(c)) >= 0)
				return r;
			continue;
		}
		if (c->size - c->at < SPOOL_HDR_SIZE)
			return stop(c, SPOOL_CUR_TORN);
		n = cur_read(c, c->hdr, sizeof(c->hdr), c->at);
		if (n < 0)
			return (int)n;
		if (n < SPOOL_HDR_SIZE)
			return stop(c, SPOOL_CUR_TORN);
		if ((u = spool_bhdr_unpack(c->hdr, &c->h)) == -EPROTO) {
			spool_bhdr_newer(c->hdr, c->why, sizeof(c->why));
			return stop(c, u);
		}
		if (u < 0) {
			snprintf(c->why, sizeof(c->why), "bad batch header");
			return stop(c, SPOOL_CUR_BAD);
		}
		if ((off_t)c->h.body_len > c->size - c->at - SPOOL_HDR_SIZE)
			return stop(c, SPOOL_CUR_TORN);
		if ((f = spool_cursor_follows(&c->h, c->expect)) >= 0) {
			c->gap = f;
			return take(c);
		}
		if (c->h.base_offset > c->expect)
			snprintf(c->why, sizeof(c->why), "offsets %" PRIu64
			    " to %" PRIu64 " are missing (batch offset %"
			    PRIu64 " where %" PRIu64 " was expected)",
			    c->expect, c->h.base_offset - 1, c->h.base_offset,
			    c->expect);
		else
			snprintf(c->why, sizeof(c->why), "batch offset %"
			    PRIu64 " where %" PRIu64 " was expected",
			    c->h.base_offset, c->expect);
		c->held = 1;
		return SPOOL_CUR_HOLE;
	}
}

/*
 * spool_cursor_resync_fd - after damage at byte from of segment file fd, the position of the next
 * batch header that checks out and holds offsets from minoff on, or
 * that a newer mq wrote (never to be skipped or cut as damage); 1 if
 * one was found, 0 if none is left before size
 */
int
spool_cursor_resync_fd(struct spool_io *io, int fd, off_t from, off_t size,
    uint64_t minoff, off_t *found)
{
	unsigned char *buf;
	struct spool_bhdr h;
	const size_t chunk = 1u << 20;
	off_t at = from + 1;
	ssize_t n, i;
	int u;

	if ((buf = malloc(chunk)) == NULL)
		return -ENOMEM;
	while (at + SPOOL_HDR_SIZE <= size) {
		n = spool_io_pread(io, fd, buf, chunk, at);
		if (n < SPOOL_HDR_SIZE)
			break;
		for (i = 0; i + SPOOL_HDR_SIZE <= n; i++) {
			if (buf[i] != 'm' || memcmp(buf + i, SPOOL_MAGIC, 4))
				continue;
			u = spool_bhdr_unpack(buf + i, &h);
			if ((u == 0 && h.base_offset >= minoff) ||
			    u == -EPROTO) {
				*found = at + i;
				free(buf);
				return 1;
			}
		}
		at += i;
	}
	free(buf);
	return 0;
}

/*
 * spool_cursor_resync - after SPOOL_CUR_BAD, go on at the next header of
 * the open segment that checks out and holds offsets from minoff on
 * (what the damage held is not known: no hole is said at it), as
 * readers do (walk.c); 1 if one was found, 0 if the rest of the segment
 * is passed over, or -errno
 */
int
spool_cursor_resync(struct spool_cursor *c, uint64_t minoff)
{
	off_t found;
	int r;

	if ((r = spool_cursor_resync_fd(c->io, c->logfd, c->pos, c->size,
	    minoff, &found)) <= 0)
		return r;
	c->at = found;
	c->expect = CUR_ANY;
	return 1;
}

/*
 * spool_cursor_body - read the body of the batch spool_cursor_next
 * handed out into c->body and check it: 1 when its checksum holds, 0
 * when the file ends before it does, -EBADMSG when the checksum fails
 * (c->why), other -errno
 */
int
spool_cursor_body(struct spool_cursor *c)
{
	unsigned char *nb;
	ssize_t n;

	if (c->h.body_len + 1 > c->bcap) {
		if ((nb = realloc(c->body, c->h.body_len + 1)) == NULL)
			return -ENOMEM;
		c->body = nb;
		c->bcap = c->h.body_len + 1;
	}
	if (c->h.body_len == 0)
		return 1;
	n = cur_read(c, c->body, c->h.body_len, c->pos + SPOOL_HDR_SIZE);
	if (n < 0)
		return (int)n;
	if ((size_t)n < c->h.body_len)
		return 0;
	if (spool_crc(0, c->body, c->h.body_len) != c->h.body_crc) {
		snprintf(c->why, sizeof(c->why), "body checksum mismatch");
		return -EBADMSG;
	}
	return 1;
}
