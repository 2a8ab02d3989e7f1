/*
 * mirror_install.c - installing a segment compacted on the source
 *
 * When the source's compaction rewrote a sealed segment, the replica
 * gets the new one whole and puts it in place of its own as compact.c
 * replaces one: written beside it as NAME.compacting (log and index),
 * each batch checked before it is written (checksums, offsets rising
 * with compaction's gaps legal, nothing after the END, nothing past the
 * size announced), synced, renamed over the old names, the directory
 * synced; a reader with the old file open reads on in it.
 * N/compaction.copied records the source's compaction generation the
 * replica's segments are of, written once they are in place.  It also
 * tells two copies of a segment apart (spool_mirror_ident: size and a
 * checksum of every batch header), for either spool.  It
 * takes no lock of its own (the caller holds the partition's) and does
 * not talk to the source (repl_*.c do).
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

#include "replicate.h"

/*
 * seg_digest - the header checksums of every whole batch of a segment,
 * chained in order (0: none); each covers its batch's body checksum, so
 * two copies that differ in any batch differ here, whatever their sizes
 * and END batches.  It stops at a torn or bad batch; a jump in offsets
 * is not its business.
 */
static int
seg_digest(struct spool_io *io, int fd, off_t size, uint32_t *digest)
{
	struct spool_cursor c;
	uint32_t d = 0;
	int k;

	spool_cursor_fd(&c, io, fd, 0, size, 0, UINT64_MAX);
	while ((k = spool_cursor_next(&c)) == SPOOL_CUR_BATCH ||
	    k == SPOOL_CUR_HOLE)
		if (k == SPOOL_CUR_BATCH)
			d = spool_crc(d, c.hdr + 4, 4);
	spool_cursor_close(&c);
	*digest = d;
	return k < 0 && k != -EPROTO ? k : 0;
}

/*
 * spool_mirror_ident - what tells two copies of segment base apart: its
 * size and a checksum of all its batch headers (seg_digest; 0 when it
 * has none), for either spool, partfd its partition.  Not the size and
 * the last batch alone: compaction keeps a segment's END batch, and
 * may keep its size to the byte (a record gone, a header more).
 */
int
spool_mirror_ident(struct spool_io *io, int partfd, uint64_t base,
    off_t *size, uint32_t *crc)
{
	char name[SPOOL_SEGNAME_LEN + 16];
	struct stat st;
	int fd, r;

	*size = 0;
	*crc = 0;
	spool_seg_name(name, base, SPOOL_LOG_SUFFIX);
	if ((fd = openat(partfd, name, O_RDONLY | O_NOFOLLOW |
	    O_CLOEXEC)) == -1)
		return -errno;
	if (fstat(fd, &st) == -1)
		r = -errno;
	else if ((r = seg_digest(io, fd, st.st_size, crc)) == 0)
		*size = st.st_size;
	close(fd);
	return r;
}

/* tmp_name - NAME.compacting of segment base's log or index */
static void
tmp_name(char *buf, size_t len, uint64_t base, const char *suffix)
{
	char name[SPOOL_SEGNAME_LEN + 16];

	spool_seg_name(name, base, suffix);
	snprintf(buf, len, "%s.compacting", name);
}

/*
 * spool_mirror_install_begin - start replacing segment base, which the
 * replica holds, by the source's compacted copy of size bytes: written
 * beside it, as gc writes its own (compact.c), and named .compacting
 */
int
spool_mirror_install_begin(struct spool_mirror *m, uint64_t base, off_t size,
    struct spool_minstall *in)
{
	char name[SPOOL_SEGNAME_LEN + 32];
	int fd;

	memset(in, 0, sizeof(*in));
	in->fd = in->ifd = -1;
	spool_seg_name(name, base, SPOOL_LOG_SUFFIX);
	if ((fd = openat(m->partfd, name, O_RDONLY | O_NOFOLLOW |
	    O_CLOEXEC)) == -1)
		return -errno;	/* only a segment the replica holds */
	close(fd);
	if (size < SPOOL_HDR_SIZE || base < m->first) {
		spool_seterr(m->t->sp, "%s/%" PRIu32 ": segment %" PRIu64
		    " from the source: not a sealed segment", m->t->name,
		    m->part, base);
		return -EBADMSG;
	}
	in->base = base;
	in->size = size;
	in->next = base;
	in->lastidx = -SPOOL_IDX_INTERVAL;
	/* what a killed install left of these goes first */
	tmp_name(name, sizeof(name), base, SPOOL_LOG_SUFFIX);
	(void)unlinkat(m->partfd, name, 0);
	in->fd = openat(m->partfd, name, O_RDWR | O_CREAT | O_EXCL |
	    O_NOFOLLOW | O_CLOEXEC, 0664);
	if (in->fd == -1)
		return -errno;
	tmp_name(name, sizeof(name), base, SPOOL_IDX_SUFFIX);
	(void)unlinkat(m->partfd, name, 0);
	in->ifd = openat(m->partfd, name, O_RDWR | O_CREAT | O_EXCL |
	    O_NOFOLLOW | O_CLOEXEC, 0664);
	if (in->ifd == -1)
		return -errno;
	return 0;
}

/*
 * spool_mirror_install_data - check and write whole batches of the
 * segment being installed: checksums, offsets rising (compaction's gaps
 * legal), nothing after the END, nothing past the size announced
 */
int
spool_mirror_install_data(struct spool_mirror *m, struct spool_minstall *in,
    const unsigned char *buf, size_t len)
{
	struct spool_bhdr h;
	const char *why = NULL;
	size_t p = 0;
	off_t at;
	int r;

	if ((off_t)len > in->size - in->pos) {
		why = "more bytes than announced";
		goto bad;
	}
	for (p = 0; p < len; p += SPOOL_HDR_SIZE + h.body_len) {
		if (len - p < SPOOL_HDR_SIZE || spool_bhdr_unpack(buf + p,
		    &h) < 0 || h.body_len > len - p - SPOOL_HDR_SIZE) {
			why = "a torn or bad batch";
			goto bad;
		}
		if (in->closed) {
			why = "a batch after the end of its segment";
			goto bad;
		}
		if (spool_crc(0, buf + p + SPOOL_HDR_SIZE, h.body_len) !=
		    h.body_crc) {
			why = "a body checksum mismatch";
			goto bad;
		}
		if (h.base_offset < in->next || (h.base_offset > in->next &&
		    !(h.flags & SPOOL_BF_COMPACTED))) {
			why = "a batch out of order";
			goto bad;
		}
		at = in->pos + (off_t)p;
		if (h.type == SPOOL_TYPE_DATA &&
		    at - in->lastidx >= SPOOL_IDX_INTERVAL &&
		    spool_idx_append(in->ifd, in->base, h.base_offset, at) == 0)
			in->lastidx = at;
		if (h.type == SPOOL_TYPE_END)
			in->closed = 1;
		in->next = h.base_offset + h.count;
	}
	if ((r = spool_io_pwrite(m->io, in->fd, buf, len, in->pos, 0)) < 0)
		return r;
	in->pos += (off_t)len;
	return 0;
bad:
	spool_seterr(m->t->sp, "%s/%" PRIu32 ": byte %lld of segment %" PRIu64
	    " compacted on the source: %s", m->t->name, m->part,
	    (long long)(in->pos + (off_t)p), in->base, why);
	return -EBADMSG;
}

/*
 * spool_mirror_install_end - put the segment in place as gc does: the
 * new log and index synced, the old index removed, both renamed over the
 * old names, the directory synced.  It must end with an END batch where
 * the replica's next segment begins, or, for the newest, not before the
 * replica's end; a reader with the old file open reads on in it.
 */
int
spool_mirror_install_end(struct spool_mirror *m, struct spool_minstall *in,
    int sync)
{
	char log[SPOOL_SEGNAME_LEN + 16], idx[SPOOL_SEGNAME_LEN + 16];
	char tlog[SPOOL_SEGNAME_LEN + 32], tidx[SPOOL_SEGNAME_LEN + 32];
	struct spool_seglist l;
	uint64_t want = 0;
	size_t i;
	int r, after = 0;

	if ((r = spool_seg_list(m->partfd, &l)) < 0)
		goto out;
	for (i = 0; i < l.n; i++)
		if (l.base[i] > in->base) {
			want = l.base[i];
			after = 1;
			break;
		}
	spool_seg_free(&l);
	if (in->pos != in->size || !in->closed || (after &&
	    in->next != want) || (!after && in->next < m->next)) {
		spool_seterr(m->t->sp, "%s/%" PRIu32 ": segment %" PRIu64
		    " compacted on the source does not end where the "
		    "replica's does", m->t->name, m->part, in->base);
		r = -EBADMSG;
		goto out;
	}
	/* the new segment is on disk before its name points at it */
	if (sync && (fsync(in->fd) == -1 || fsync(in->ifd) == -1)) {
		r = -errno;
		goto out;
	}
	spool_seg_name(log, in->base, SPOOL_LOG_SUFFIX);
	spool_seg_name(idx, in->base, SPOOL_IDX_SUFFIX);
	tmp_name(tlog, sizeof(tlog), in->base, SPOOL_LOG_SUFFIX);
	tmp_name(tidx, sizeof(tidx), in->base, SPOOL_IDX_SUFFIX);
	/* no moment where the new log has the old index */
	if ((unlinkat(m->partfd, idx, 0) == -1 && errno != ENOENT) ||
	    renameat(m->partfd, tlog, m->partfd, log) == -1 ||
	    renameat(m->partfd, tidx, m->partfd, idx) == -1) {
		r = -errno;
		goto out;
	}
	/* the renames must survive a crash before the next one is made */
	if (sync && spool_fsync_dir(m->partfd) < 0)
		r = -errno;
out:
	close(in->fd);
	close(in->ifd);
	in->fd = in->ifd = -1;
	if (r < 0)
		spool_mirror_install_abort(m, in);
	return r;
}

/* spool_mirror_install_abort - drop a segment being installed */
void
spool_mirror_install_abort(struct spool_mirror *m, struct spool_minstall *in)
{
	char name[SPOOL_SEGNAME_LEN + 32];

	if (in->fd >= 0)
		close(in->fd);
	if (in->ifd >= 0)
		close(in->ifd);
	in->fd = in->ifd = -1;
	tmp_name(name, sizeof(name), in->base, SPOOL_LOG_SUFFIX);
	(void)unlinkat(m->partfd, name, 0);
	tmp_name(name, sizeof(name), in->base, SPOOL_IDX_SUFFIX);
	(void)unlinkat(m->partfd, name, 0);
}

#define GEN_NAME	"compaction.copied"

/*
 * spool_mirror_gen - the source's compaction generation (compact.c)
 * whose segments the replica holds (0: none recorded)
 */
uint64_t
spool_mirror_gen(struct spool_mirror *m)
{
	char text[64];
	unsigned long long v;

	if (m->partfd < 0 || spool_read_file(m->partfd, GEN_NAME, text,
	    sizeof(text)) < 0 || sscanf(text, "generation=%llu", &v) != 1)
		return 0;
	return v;
}

/* spool_mirror_set_gen - record it, once its segments are in place */
int
spool_mirror_set_gen(struct spool_mirror *m, uint64_t gen, int sync)
{
	char text[64];
	int n;

	n = snprintf(text, sizeof(text), "generation=%" PRIu64 "\n", gen);
	return spool_write_file(m->partfd, GEN_NAME, text, n, sync);
}
