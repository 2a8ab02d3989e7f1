/*
 * segment.c - segment files: listing, walking, seeking, recovering
 *
 * A partition directory holds segment files named by their first offset
 * (20 digits, so that ls sorts them), each with an index file.  This
 * module reads one segment file's batches through a cursor to find
 * where its good data ends, bounds a damaged batch, rebuilds its index,
 * and recovers the tail of the newest segment after a crash; listing
 * and naming segments is seglist.c's, seeking to an offset cursor.c's.
 * It does not lock: callers that change files hold the partition lock
 * (head.c, topic.c).
 *
 * A batch is "torn" when the file ends before its last byte, or when
 * everything from its first byte to the end of the file is zero (a file
 * system that extended the size but lost the data).  A torn batch at the
 * end of the newest segment is a write that never finished: it is not a
 * message, and a writer cuts it off.  A complete batch whose checksum
 * fails is damage, reported and never cut silently.
 *
 * The index is a hint (idx.c): entries are believed only after the
 * header they point at checks out with the expected offset; otherwise
 * the walk starts from an earlier entry or from the start of the
 * segment.
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

#define ZERO_CHECK_MAX	(32u << 20)	/* bytes checked for an all-zero tail */

/*
 * spool_seg_zero_tail - whether every byte of fd from pos to size is
 * zero (space a file system allocated, its data not yet written)
 */
int
spool_seg_zero_tail(struct spool_io *io, int fd, off_t pos, off_t size)
{
	unsigned char buf[65536];
	ssize_t n, i;

	if (size - pos > (off_t)ZERO_CHECK_MAX)
		return 0;
	while (pos < size) {
		n = spool_io_pread(io, fd, buf, sizeof(buf), pos);
		if (n <= 0)
			return 0;
		for (i = 0; i < n; i++)
			if (buf[i] != 0)
				return 0;
		pos += n;
	}
	return 1;
}

/*
 * records_ok - whether a body whose checksum held decodes in full: 1, 0,
 * or -EPROTO for records of a newer format
 */
static int
records_ok(const struct spool_bhdr *h, const unsigned char *body, char *why,
    size_t whylen)
{
	struct spool_body b;
	struct spool_msg m;
	int r;

	memset(&b, 0, sizeof(b));
	*why = '\0';
	r = spool_body_open(&b, h, body, why, whylen);
	if (r == 0)
		while ((r = spool_body_next(&b, &m)) == 1)
			;
	spool_body_free(&b);
	if (r == -EPROTO) {
		snprintf(why, whylen, "record attributes of a newer format");
		return r;
	}
	if (r != 0 && *why == '\0')
		snprintf(why, whylen, "records do not match the batch header");
	return r == 0;
}

/*
 * spool_seg_scan - walk the batches of a segment from position from
 * (where offset sp->next is expected) up to size
 *
 * Returns the kind of place the walk stopped at (enum spool_scan), with
 * sp->pos the start of the batch there (or size), sp->next the offset
 * after the last good batch, sp->end set on an END batch.  With bodies
 * set, every body checksum is checked too.  Skippable batches are
 * walked over, and a batch flagged compacted may start past sp->next;
 * any other jump in offsets stops the walk as SCAN_BADHDR.  -EPROTO: a
 * batch written by a newer mq at sp->pos (why says what); other <0 is
 * an I/O error.
 */
int
spool_seg_scan(struct spool_io *io, int fd, off_t from,
    off_t size, int bodies, struct spool_scanpos *sp, char *why,
    size_t whylen)
{
	struct spool_cursor c;
	int r, u;

	spool_cursor_fd(&c, io, fd, 0, size, from, sp->next);
	sp->end = 0;
	for (;;) {
		r = spool_cursor_next(&c);
		sp->pos = c.pos;
		if (r != SPOOL_CUR_BATCH)
			break;
		if (bodies && c.h.body_len > 0 &&
		    (r = spool_cursor_body(&c)) != 1) {
			if (r == -EBADMSG)
				snprintf(why, whylen, "%s", c.why);
			r = r == 0 ? SCAN_TORN :
			    r == -EBADMSG ? SCAN_BADBODY : r;
			goto out;
		}
		/* a checked body must also decode into its records */
		if (bodies && c.h.type == SPOOL_TYPE_DATA &&
		    (u = records_ok(&c.h, c.body, why, whylen)) != 1) {
			r = u < 0 ? u : SCAN_BADBODY;
			goto out;
		}
		if (c.h.type == SPOOL_TYPE_END) {
			/* past the offsets compaction removed before it */
			sp->next = c.h.base_offset;
			sp->end = 1;
			sp->pos += SPOOL_HDR_SIZE;
			r = SPOOL_CUR_DONE;
			break;
		}
		/* a skippable batch's times are its own */
		if (c.h.type == SPOOL_TYPE_DATA && c.h.max_ts > sp->max_ts)
			sp->max_ts = c.h.max_ts;
		sp->next = c.h.base_offset + c.h.count;
	}
	switch (r) {
	case SPOOL_CUR_DONE:
		r = SCAN_OK;
		break;
	case SPOOL_CUR_TORN:
		r = SCAN_TORN;
		break;
	case SPOOL_CUR_BAD:
		if (spool_seg_zero_tail(io, fd, c.pos, size))
			r = SCAN_TORN;
		else {
			snprintf(why, whylen, "%s", c.why);
			r = SCAN_BADHDR;
		}
		break;
	case SPOOL_CUR_HOLE:
		snprintf(why, whylen, "%s", c.why);
		r = SCAN_BADHDR;
		break;
	case -EPROTO:
		/* not ours to judge, nor to cut */
		snprintf(why, whylen, "%s", c.why);
		break;
	}
out:
	spool_cursor_close(&c);
	return r;
}

/*
 * spool_seg_reindex - write the index of segment base (log open as fd,
 * size bytes) afresh from its batches, in partition directory pfd
 */
int
spool_seg_reindex(struct spool_io *io, int pfd, int fd, uint64_t base,
    off_t size)
{
	struct spool_cursor c;
	unsigned char *ix = NULL, *nix;
	char name[SPOOL_SEGNAME_LEN + 16];
	size_t n = 0, cap = 0;
	off_t last = -SPOOL_IDX_INTERVAL;
	int r, s;

	spool_cursor_fd(&c, io, fd, base, size, 0, base);
	/* data batches up to the first of any other kind; jumps are verify's */
	while ((s = spool_cursor_next(&c)) == SPOOL_CUR_BATCH ||
	    s == SPOOL_CUR_HOLE) {
		if (s != SPOOL_CUR_BATCH)
			continue;
		if (c.h.type != SPOOL_TYPE_DATA)
			break;
		if (c.pos - last < SPOOL_IDX_INTERVAL)
			continue;
		if (n + SPOOL_IDX_ENTRY > cap) {
			cap = cap ? cap * 2 : 4096;
			if ((nix = realloc(ix, cap)) == NULL) {
				free(ix);
				return -ENOMEM;
			}
			ix = nix;
		}
		if (spool_idx_put(ix + n, base, c.h.base_offset, c.pos)) {
			n += SPOOL_IDX_ENTRY;
			last = c.pos;
		}
	}
	spool_cursor_close(&c);
	if (s < 0 && s != -EPROTO) {
		free(ix);
		return s;
	}
	spool_seg_name(name, base, SPOOL_IDX_SUFFIX);
	r = spool_write_file(pfd, name, ix, n, 1);
	free(ix);
	return r;
}

/*
 * spool_seg_bound - whether the batch at pos, whose header does not check
 * out, still shows where it ends and how many offsets it holds: its
 * length fields fit the file, its body checksum holds, and the body
 * decodes into exactly the count of records the header says (no single
 * damaged field lets all three agree, but for the base offset, which is
 * taken as expected).  Sets *endpos and *next; its records are never
 * delivered, but their offsets are never given again.
 */
int
spool_seg_bound(struct spool_io *io, int fd, off_t pos, off_t size,
    uint64_t expect, off_t *endpos, uint64_t *next)
{
	unsigned char hdr[SPOOL_HDR_SIZE], *body;
	struct spool_bhdr h;
	char why[128];
	int ok;

	if (pos < 0 || size - pos < SPOOL_HDR_SIZE ||
	    spool_io_pread(io, fd, hdr, sizeof(hdr), pos) != SPOOL_HDR_SIZE)
		return 0;
	memset(&h, 0, sizeof(h));
	h.base_offset = expect;
	h.count = get32(hdr + 16);
	h.body_len = get32(hdr + 20);
	h.body_crc = get32(hdr + 24);
	h.raw_len = get32(hdr + 28);
	h.base_ts = (int64_t)get64(hdr + 32);
	h.type = SPOOL_TYPE_DATA;
	h.codec = hdr[50];
	if (h.count == 0 || h.body_len == 0 || h.body_len > SPOOL_BODY_MAX ||
	    h.raw_len > SPOOL_BODY_MAX ||
	    (off_t)h.body_len > size - pos - SPOOL_HDR_SIZE ||
	    expect > UINT64_MAX - h.count)
		return 0;
	if (!(h.codec == SPOOL_CODEC_NONE && h.raw_len == h.body_len) &&
	    h.codec != SPOOL_CODEC_ZLIB)
		return 0;
	if ((body = malloc(h.body_len)) == NULL)
		return -ENOMEM;
	ok = spool_io_pread(io, fd, body, h.body_len, pos + SPOOL_HDR_SIZE) ==
	    (ssize_t)h.body_len && records_ok(&h, body, why, sizeof(why));
	free(body);
	if (!ok)
		return 0;
	*endpos = pos + SPOOL_HDR_SIZE + h.body_len;
	*next = expect + h.count;
	return 1;
}

/*
 * spool_seg_end - find where the good data of a segment ends, without
 * changing anything: the walk starts at the last index entry that checks
 * out.  A damaged header with a good batch after it is passed over the
 * way readers pass it (spool_cursor_resync_fd), and so is a damaged last
 * batch whose extent is still sure (spool_seg_bound): the end is that of the
 * last batch of the file, and the damaged batches' offsets are never
 * given again.  Returns the enum spool_scan of the place it stopped
 * (SCAN_BADHDR: damage whose end is unknown, at pos->pos); *keep is the
 * number of index entries worth keeping.
 */
int
spool_seg_end(struct spool_io *io, int logfd, int idxfd, uint64_t base,
    off_t size, struct spool_scanpos *pos, ssize_t *keep, char *why,
    size_t whylen)
{
	unsigned char hdr[SPOOL_HDR_SIZE];
	struct spool_bhdr h;
	off_t from, found;
	ssize_t k;
	int r;

	k = spool_idx_best(io, logfd, idxfd, base, UINT64_MAX, size, &from,
	    &pos->next);
	if (k < 0)
		return (int)k;
	if (keep != NULL)
		*keep = k;
	pos->max_ts = 0;
	pos->indexed = from;
	for (;;) {
		r = spool_seg_scan(io, logfd, from, size, 0, pos, why, whylen);
		if (r != SCAN_BADHDR)
			return r;
		r = spool_cursor_resync_fd(io, logfd, pos->pos, size,
		    pos->next, &found);
		if (r < 0)
			return r;
		if (r == 0) {
			/* nothing good after it: the damage may be bounded */
			r = spool_seg_bound(io, logfd, pos->pos, size,
			    pos->next, &from, &pos->next);
			if (r <= 0)
				return r < 0 ? r : SCAN_BADHDR;
			continue;
		}
		if (spool_io_pread(io, logfd, hdr, sizeof(hdr), found) !=
		    SPOOL_HDR_SIZE || spool_bhdr_unpack(hdr, &h) < 0)
			return SCAN_BADHDR;
		/* the damaged batch's offsets are lost, never given again */
		pos->next = h.base_offset;
		from = found;
	}
}

/*
 * spool_seg_recover - bring the newest segment into a state fit for
 * appending: walk from the last good index entry to the end, cut a torn
 * tail, drop index entries past the end.  Called with the lock held.
 */
int
spool_seg_recover(struct spool *sp, uint64_t base, int logfd,
    int idxfd, struct spool_scanpos *pos)
{
	struct spool_io *io = spool_get_io(sp);
	struct stat st;
	char why[128] = "";
	ssize_t keep = 0;
	int r;

	if (io == NULL)
		return -ENOMEM;
	if (fstat(logfd, &st) == -1)
		return -errno;
	r = spool_seg_end(io, logfd, idxfd, base, st.st_size, pos, &keep, why,
	    sizeof(why));
	if (r == -EPROTO)
		spool_seterr(sp, "%020" PRIu64 "%s: byte %lld: %s", base,
		    SPOOL_LOG_SUFFIX, (long long)pos->pos, why);
	if (r < 0)
		return r;
	if (r == SCAN_BADHDR) {
		char name[SPOOL_SEGNAME_LEN + 16];

		spool_seg_name(name, base, SPOOL_LOG_SUFFIX);
		spool_seterr(sp, "%s: byte %lld: %s; run 'mq-topic verify "
		    "--repair'", name, (long long)pos->pos, why);
		return -EBADMSG;
	}
	if (r == SCAN_TORN && ftruncate(logfd, pos->pos) == -1)
		return -errno;
	return spool_idx_trim(idxfd, keep);
}
