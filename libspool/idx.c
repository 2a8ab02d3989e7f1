/*
 * idx.c - the sparse index of a segment, the one place that knows its
 * format
 *
 * An index file (NNN.index, beside NNN.log) holds SPOOL_IDX_ENTRY-byte
 * entries, u32 offset relative to the segment's base and u32 byte
 * position of a batch header, about one every SPOOL_IDX_INTERVAL bytes
 * of log.  It is a hint: an entry is believed only after the header it
 * points at checks out with the offset it claims, and verify rebuilds
 * an index that disagrees with its log.  Appends are made under the
 * partition lock (head.c); this module takes no lock itself.
 */

#include <sys/stat.h>
#include <sys/types.h>

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

#include "spool_impl.h"

/* idx_load - read a whole index file; returns entries */
static ssize_t
idx_load(struct spool_io *io, int idxfd, unsigned char **out)
{
	struct stat st;
	unsigned char *buf;
	ssize_t n;

	*out = NULL;
	if (idxfd < 0 || fstat(idxfd, &st) == -1 || st.st_size < SPOOL_IDX_ENTRY)
		return 0;
	if (st.st_size > (off_t)(64u << 20))	/* not an index we wrote */
		return 0;
	if ((buf = malloc(st.st_size)) == NULL)
		return -ENOMEM;
	n = spool_io_pread(io, idxfd, buf, st.st_size, 0);
	if (n < 0) {
		free(buf);
		return n;
	}
	*out = buf;
	return n / SPOOL_IDX_ENTRY;
}

/* idx_check - whether an index entry points at the batch it claims */
static int
idx_check(struct spool_io *io, int logfd, uint64_t base, uint32_t rel,
    off_t pos, off_t size)
{
	unsigned char hdr[SPOOL_HDR_SIZE];
	struct spool_bhdr h;

	if (pos < 0 || pos + SPOOL_HDR_SIZE > size)
		return 0;
	if (spool_io_pread(io, logfd, hdr, sizeof(hdr), pos) != SPOOL_HDR_SIZE)
		return 0;
	if (spool_bhdr_unpack(hdr, &h) < 0)
		return 0;
	return h.base_offset == base + rel;
}

/*
 * spool_idx_best - the last trustworthy index entry at or before offset
 * (UINT64_MAX: the last one overall); sets *pos and *at, else 0 and base
 */
ssize_t
spool_idx_best(struct spool_io *io, int logfd, int idxfd, uint64_t base,
    uint64_t offset, off_t size, off_t *pos, uint64_t *at)
{
	unsigned char *ix;
	ssize_t n, lo, hi, i;

	*pos = 0;
	*at = base;
	if ((n = idx_load(io, idxfd, &ix)) <= 0)
		return n;
	/* the entries are sorted when they are ours; find the last <= */
	lo = 0;
	hi = n;
	while (lo < hi) {
		ssize_t mid = (lo + hi) / 2;

		if (base + get32(ix + mid * SPOOL_IDX_ENTRY) <= offset &&
		    (off_t)get32(ix + mid * SPOOL_IDX_ENTRY + 4) < size)
			lo = mid + 1;
		else
			hi = mid;
	}
	for (i = lo - 1; i >= 0 && i >= lo - 8; i--) {
		uint32_t rel = get32(ix + i * SPOOL_IDX_ENTRY);
		off_t p = get32(ix + i * SPOOL_IDX_ENTRY + 4);

		if (idx_check(io, logfd, base, rel, p, size)) {
			*pos = p;
			*at = base + rel;
			free(ix);
			return i + 1;
		}
	}
	free(ix);
	return 0;
}

/*
 * spool_idx_put - the entry for the batch at pos holding offset, of
 * segment base, into e (SPOOL_IDX_ENTRY bytes): 1, or 0 when it cannot
 * have one (past what an entry's fields hold)
 */
int
spool_idx_put(unsigned char *e, uint64_t base, uint64_t offset, off_t pos)
{
	if (offset - base > UINT32_MAX || pos > UINT32_MAX)
		return 0;
	put32(e, (uint32_t)(offset - base));
	put32(e + 4, (uint32_t)pos);
	return 1;
}

/*
 * spool_idx_append - add an index entry for the batch at pos (under the
 * partition lock, which is what makes the end of the index ours)
 */
int
spool_idx_append(int idxfd, uint64_t base, uint64_t offset, off_t pos)
{
	unsigned char e[SPOOL_IDX_ENTRY];
	struct stat st;

	if (idxfd < 0 || !spool_idx_put(e, base, offset, pos))
		return 0;
	if (fstat(idxfd, &st) == -1)
		return -errno;
	/* an index entry is a hint: no sync, and a failure costs a scan */
	if (pwrite(idxfd, e, sizeof(e), st.st_size - st.st_size %
	    SPOOL_IDX_ENTRY) != (ssize_t)sizeof(e))
		return errno ? -errno : -EIO;
	return 0;
}

/*
 * spool_idx_check - whether every entry of the index of segment base
 * (log open as fd, size bytes) in partition directory pfd is right
 */
int
spool_idx_check(struct spool_io *io, int pfd, int fd, uint64_t base,
    off_t size)
{
	unsigned char hdr[SPOOL_HDR_SIZE], e[SPOOL_IDX_ENTRY];
	struct spool_bhdr h;
	char name[SPOOL_SEGNAME_LEN + 16];
	off_t at = 0, prev = -1;
	int ifd, bad = 0;

	spool_seg_name(name, base, SPOOL_IDX_SUFFIX);
	if ((ifd = openat(pfd, name, O_RDONLY | O_NOFOLLOW |
	    O_CLOEXEC)) == -1)
		return 1;	/* none at all: readers scan; a writer makes one */
	while (pread(ifd, e, sizeof(e), at) == sizeof(e)) {
		off_t p = get32(e + 4);

		if (p <= prev || p + SPOOL_HDR_SIZE > size ||
		    spool_io_pread(io, fd, hdr, sizeof(hdr), p) !=
		    SPOOL_HDR_SIZE || spool_bhdr_unpack(hdr, &h) < 0 ||
		    h.base_offset != base + get32(e)) {
			bad = 1;
			break;
		}
		prev = p;
		at += sizeof(e);
	}
	if (!bad) {
		struct stat st;

		if (fstat(ifd, &st) == 0 && st.st_size % SPOOL_IDX_ENTRY)
			bad = 1;
	}
	close(ifd);
	return !bad;
}

/*
 * spool_idx_trim - keep only the first keep entries of an index (entries
 * past the end of the log would point into whatever comes next)
 */
int
spool_idx_trim(int idxfd, ssize_t keep)
{
	struct stat st;

	if (idxfd >= 0 && fstat(idxfd, &st) == 0 &&
	    st.st_size > keep * SPOOL_IDX_ENTRY &&
	    ftruncate(idxfd, keep * SPOOL_IDX_ENTRY) == -1)
		return -errno;
	return 0;
}
