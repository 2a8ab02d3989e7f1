/*
 * partition.c - a topic's partitions: opening one, and its bounds
 *
 * Owns where a partition's offsets begin and end as its segment files
 * say (spool_part_bounds): its first and next offset, bytes, segments,
 * and the offsets missing between segments as far as their END batches
 * tell; and how many of its batches from an offset on are of a kind
 * (spool_part_count, through a cursor).  It reads, takes no lock and
 * changes nothing on disk.
 *
 * It also creates a partition directory (spool_part_make), for a new
 * topic (topic.c) and one that grows (topic_config.c).  It does not walk
 * batches itself (cursor.c) or check segments (verify.c).
 */

#include <sys/stat.h>
#include <sys/types.h>

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "spool_impl.h"

/*
 * spool_part_make - create partition directory N in topic dirfd
 * with its lock and an empty first segment, all synced
 */
int
spool_part_make(const struct spool *sp, int tfd, uint32_t n)
{
	char name[16], seg[SPOOL_SEGNAME_LEN + 16];
	int fd, r;

	snprintf(name, sizeof(name), "%" PRIu32, n);
	if (mkdirat(tfd, name, 0775) == -1 && errno != EEXIST)
		return -errno;
	fd = openat(tfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd == -1)
		return -errno;
	if ((r = spool_touch(fd, SPOOL_LOCK_NAME)) == 0) {
		spool_seg_name(seg, 0, SPOOL_LOG_SUFFIX);
		r = spool_touch(fd, seg);
	}
	/* the partition's entries must be durable before it is named */
	if (r == 0)
		r = spool_sync_dir(sp, fd);
	close(fd);
	return r;
}

/* spool_part_open - the directory of partition n, or -ENOENT */
int
spool_part_open(struct spool_topic *t, uint32_t n)
{
	char name[16];
	int fd;

	if (n >= t->cfg.partitions)
		return -ENOENT;
	snprintf(name, sizeof(name), "%" PRIu32, n);
	fd = openat(t->dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW |
	    O_CLOEXEC);
	return fd == -1 ? -errno : fd;
}

/* open_seg - open a segment (and its index) of a partition for reading */
static int
open_seg(int partfd, uint64_t base, int *idxfd)
{
	char name[SPOOL_SEGNAME_LEN + 16];
	int fd;

	spool_seg_name(name, base, SPOOL_IDX_SUFFIX);
	if (idxfd != NULL)
		*idxfd = openat(partfd, name, O_RDONLY | O_NOFOLLOW |
		    O_CLOEXEC);
	spool_seg_name(name, base, SPOOL_LOG_SUFFIX);
	fd = openat(partfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd == -1) {
		fd = -errno;
		if (idxfd != NULL && *idxfd >= 0)
			close(*idxfd);
	}
	return fd;
}

/*
 * sealed_end - the next offset an END batch at the very end of a
 * segment names, or UINT64_MAX when there is none to read
 */
static uint64_t
sealed_end(struct spool_io *io, int pfd, const char *name, off_t size)
{
	unsigned char hdr[SPOOL_HDR_SIZE];
	struct spool_bhdr h;
	int fd;
	ssize_t n;

	if (size < SPOOL_HDR_SIZE || (fd = openat(pfd, name, O_RDONLY |
	    O_NOFOLLOW | O_CLOEXEC)) == -1)
		return UINT64_MAX;
	n = spool_io_pread(io, fd, hdr, sizeof(hdr), size - SPOOL_HDR_SIZE);
	close(fd);
	if (n != SPOOL_HDR_SIZE || spool_bhdr_unpack(hdr, &h) < 0 ||
	    h.type != SPOOL_TYPE_END)
		return UINT64_MAX;
	return h.base_offset;
}

/*
 * spool_part_ends - the first and next offset of the partition open as
 * pfd with segments l (pi's other fields are left alone): the walk to
 * the end of its newest segment, nothing more
 */
int
spool_part_ends(struct spool_io *io, int pfd, const struct spool_seglist *l,
    struct spool_part_info *pi)
{
	struct spool_scanpos pos;
	struct stat st;
	char why[128];
	int fd, idx, r = 0;

	pi->first = pi->next = 0;
	if (l->n == 0)
		return 0;
	pi->first = l->base[0];
	pi->next = l->base[l->n - 1];
	if ((fd = open_seg(pfd, l->base[l->n - 1], &idx)) < 0)
		return fd;
	if (fstat(fd, &st) == 0) {
		memset(&pos, 0, sizeof(pos));
		r = spool_seg_end(io, fd, idx, l->base[l->n - 1], st.st_size,
		    &pos, NULL, why, sizeof(why));
		/* a newer mq's batch: the end is before it */
		if (r >= 0 || r == -EPROTO)
			pi->next = pos.next;
		r = r < 0 && r != -EPROTO ? r : 0;
	}
	close(fd);
	if (idx >= 0)
		close(idx);
	/* an empty oldest segment: the first message is later */
	if (pi->first > pi->next)
		pi->first = pi->next;
	return r;
}

/*
 * spool_part_bounds - first and next offset, bytes, segments, and the
 * offsets missing between segments as far as their END batches tell
 */
int
spool_part_bounds(struct spool_topic *t, uint32_t part,
    struct spool_part_info *pi)
{
	struct spool_io *io = spool_get_io(t->sp);
	struct spool_seglist l;
	struct stat st;
	char name[SPOOL_SEGNAME_LEN + 16];
	size_t i;
	int pfd, r;

	memset(pi, 0, sizeof(*pi));
	if (io == NULL)
		return -ENOMEM;
	if ((pfd = spool_part_open(t, part)) < 0)
		return pfd;
	if ((r = spool_seg_list(pfd, &l)) < 0) {
		close(pfd);
		return r;
	}
	for (i = 0; i < l.n; i++) {
		uint64_t end;

		spool_seg_name(name, l.base[i], SPOOL_LOG_SUFFIX);
		if (fstatat(pfd, name, &st, AT_SYMLINK_NOFOLLOW) != 0)
			continue;
		pi->bytes += st.st_size;
		/* a hole (mq-spool(5), Gaps): its offsets hold no message */
		if (i + 1 < l.n && (end = sealed_end(io, pfd, name,
		    st.st_size)) < l.base[i + 1])
			pi->missing += l.base[i + 1] - end;
	}
	pi->segments = (uint32_t)l.n;
	r = spool_part_ends(io, pfd, &l, pi);
	if (pi->missing > pi->next - pi->first)
		pi->missing = pi->next - pi->first;
	spool_seg_free(&l);
	close(pfd);
	return r;
}

/* spool_topic_info - what describe prints for one partition */
int
spool_topic_info(struct spool_topic *t, uint32_t part,
    struct spool_part_info *pi)
{
	return spool_part_bounds(t, part, pi);
}

/*
 * spool_part_count - how many batches of partition part, at offset
 * from or later, wanted says are, up to max (the walk stops
 * there).  A torn last batch is not counted: it is no append, and the
 * next writer cuts it.
 */
int
spool_part_count(struct spool_topic *t, uint32_t part, uint64_t from,
    int (*wanted)(const struct spool_bhdr *, const void *), const void *arg,
    int max)
{
	struct spool_io *io = spool_get_io(t->sp);
	struct spool_cursor c;
	int pfd, s, n = 0;

	if (io == NULL)
		return -ENOMEM;
	if ((pfd = spool_part_open(t, part)) < 0)
		return pfd;
	if ((s = spool_cursor_open(&c, io, pfd)) == 0 &&
	    (s = spool_cursor_seek(&c, from)) == 0)
		while (n < max && ((s = spool_cursor_next(&c)) > 0 ||
		    s == -EPROTO))
			if (s == SPOOL_CUR_BATCH && c.h.base_offset >= from &&
			    wanted(&c.h, arg))
				n++;
	spool_cursor_close(&c);
	close(pfd);
	return s < 0 ? s : n;
}
