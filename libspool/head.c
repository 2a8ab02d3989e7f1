/*
 * head.c - the head segment of a partition: the newest segment file,
 * appended to under the partition lock
 *
 * Owns a writer's view of one partition's log: its directory and lock
 * file, the open head segment and its sparse index, and where the next
 * batch goes.  An append takes the partition's flock, held only for the
 * append itself, so that any number of writers take turns batch by
 * batch and their batches never interleave.  Under the lock it first
 * catches up with what other writers appended since its last turn (the
 * segment may have grown or been closed with an END batch), cuts a torn
 * tail left by a writer that died mid-write, rolls to a new segment
 * when this one is full (an END batch, durable before the next segment
 * exists), then writes the batch with its base offset and epoch stamped
 * in.  A failed write is cut off again before the lock is released.
 *
 * With sync, new directory entries are synced as they are made and
 * spool_head_sync fdatasyncs what was appended since the last sync; a
 * failed sync is never retried and reported as success.
 *
 * It does not build or seal batches, choose partitions, or keep a
 * writer's sticky error (writer.c).
 */

#include <sys/file.h>
#include <sys/stat.h>
#include <sys/types.h>

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "spool_impl.h"

/*
 * spool_head_init - a head for partition part of t, nothing open yet;
 * sync: durable directory entries and END batches
 */
void
spool_head_init(struct spool_head *p, struct spool_topic *t,
    struct spool_io *io, uint32_t part, int sync)
{
	memset(p, 0, sizeof(*p));
	p->t = t;
	p->io = io;
	p->part = part;
	p->sync = sync;
	p->partfd = p->lockfd = -1;
	p->logfd = p->idxfd = -1;
}

/* close_seg - let go of the open segment of a partition */
static void
close_seg(struct spool_head *p)
{
	if (p->logfd >= 0)
		close(p->logfd);
	if (p->idxfd >= 0)
		close(p->idxfd);
	p->logfd = p->idxfd = -1;
}

/*
 * new_seg - create the segment that starts at p->next (under the lock);
 * the file may be left over from a writer that died right after
 * creating it, so an existing one is fine
 */
static int
new_seg(struct spool_head *p)
{
	char name[SPOOL_SEGNAME_LEN + 16];
	int fd;

	spool_seg_name(name, p->next, SPOOL_LOG_SUFFIX);
	fd = openat(p->partfd, name, O_RDWR | O_CREAT | O_NOFOLLOW |
	    O_CLOEXEC, 0664);
	if (fd == -1)
		return -errno;
	close(fd);
	/* a segment that vanishes in a crash takes its messages along */
	if (p->sync && spool_fsync_dir(p->partfd) < 0)
		return -errno;
	return 0;
}

/*
 * open_head - open the newest segment of a partition for appending and
 * recover its tail (under the lock)
 */
static int
open_head(struct spool_head *p)
{
	struct spool_seglist l;
	struct spool_scanpos pos;
	char name[SPOOL_SEGNAME_LEN + 16];
	uint64_t off;
	int r;

	close_seg(p);
	for (;;) {
		if ((r = spool_seg_list(p->partfd, &l)) < 0)
			return r;
		if (l.n == 0) {
			/* a partition is made with its first segment */
			spool_seg_free(&l);
			p->next = spool_group_max(p->t, p->part);
			if ((r = new_seg(p)) < 0)
				return r;
			continue;
		}
		p->segbase = l.base[l.n - 1];
		spool_seg_free(&l);
		spool_seg_name(name, p->segbase, SPOOL_LOG_SUFFIX);
		p->logfd = openat(p->partfd, name, O_RDWR | O_NOFOLLOW |
		    O_CLOEXEC);
		if (p->logfd == -1)
			return -errno;
		spool_seg_name(name, p->segbase, SPOOL_IDX_SUFFIX);
		p->idxfd = openat(p->partfd, name, O_RDWR | O_CREAT |
		    O_NOFOLLOW | O_CLOEXEC, 0664);
		if (p->idxfd == -1) {
			r = -errno;
			close_seg(p);
			return r;
		}
		memset(&pos, 0, sizeof(pos));
		r = spool_seg_recover(p->t->sp, p->segbase,
		    p->logfd, p->idxfd, &pos);
		if (r < 0) {
			close_seg(p);
			return r;
		}
		p->next = pos.next;
		p->end = pos.pos;
		/*
		 * Index from the last entry that checks out, not from
		 * here: a segment grown by one-shot sends (a message a
		 * process) gets its entries too, so that the next
		 * process's walk to the end stays short.
		 */
		p->lastidx = p->end > 0 ? pos.indexed : -SPOOL_IDX_INTERVAL;
		if (pos.end && p->next == p->segbase) {
			/*
			 * An END closing a segment with no message in it is
			 * none a writer wrote (a roll needs a batch first):
			 * it holds nothing, so it goes, and appends go here.
			 */
			p->end = pos.pos - SPOOL_HDR_SIZE;
			if (ftruncate(p->logfd, p->end) == -1) {
				r = -errno;
				close_seg(p);
				return r;
			}
			return 0;
		}
		if (!pos.end)
			return 0;
		/*
		 * Closed, but its successor was never made (a crash as it
		 * rolled), or was deleted: offsets a group has read past
		 * the END are never given again; the gap they leave is a
		 * hole that verify and readers name (mq-spool(5), Gaps).
		 */
		if ((off = spool_group_max(p->t, p->part)) > p->next)
			p->next = off;
		close_seg(p);
		if ((r = new_seg(p)) < 0)
			return r;
	}
}

/* open_part - open a partition's directory and lock file */
static int
open_part(struct spool_head *p)
{
	int fd;

	if ((fd = spool_part_open(p->t, p->part)) < 0)
		return fd;
	p->partfd = fd;
	p->lockfd = openat(fd, SPOOL_LOCK_NAME, O_RDWR | O_CREAT | O_NOFOLLOW |
	    O_CLOEXEC, 0664);
	if (p->lockfd == -1)
		return -errno;
	/* entries another writer made without syncing must survive too */
	if (p->sync && spool_fsync_dir(fd) < 0)
		return -errno;
	return 0;
}

/*
 * catch_up - account for what other writers appended since our last
 * turn (under the lock)
 */
static int
catch_up(struct spool_head *p)
{
	struct spool_scanpos pos;
	struct stat st;
	char why[128];
	int r;

	if (p->logfd < 0)
		return open_head(p);
	if (fstat(p->logfd, &st) == -1)
		return -errno;
	if (st.st_size == p->end && st.st_nlink > 0)
		return 0;
	if (st.st_size < p->end || st.st_nlink == 0)
		return open_head(p);		/* cut or removed: start over */
	memset(&pos, 0, sizeof(pos));
	pos.next = p->next;
	r = spool_seg_scan(p->io, p->logfd, p->end, st.st_size, 0,
	    &pos, why, sizeof(why));
	if (r < 0)
		return r;
	if (pos.end || r == SCAN_BADHDR)
		return open_head(p);
	if (r == SCAN_TORN && ftruncate(p->logfd, pos.pos) == -1)
		return -errno;
	/* others' batches are not indexed by us; the walk from our last
	 * entry covers them */
	p->next = pos.next;
	p->end = pos.pos;
	return 0;
}

/* roll - close the full segment with an END batch and start the next */
static int
roll(struct spool_head *p)
{
	unsigned char end[SPOOL_HDR_SIZE];
	int r;

	spool_batch_end(end, p->next, spool_now_ms());
	/*
	 * The END and everything before it are durable before the next
	 * segment exists (mq-spool(5) DURABILITY): after a crash a closed
	 * segment never ends in a torn END beside its successor.
	 */
	if ((r = spool_io_pwrite(p->io, p->logfd, end, sizeof(end), p->end,
	    p->sync)) < 0)
		return r;
	p->dirty = 0;
	close_seg(p);
	if ((r = new_seg(p)) < 0)
		return r;
	return open_head(p);
}

/*
 * spool_head_append - write one sealed batch to the partition under its
 * lock, its base offset (*base) and the writer's epoch stamped in
 */
int
spool_head_append(struct spool_head *p, uint32_t epoch, unsigned char *buf,
    size_t len, uint32_t count, uint64_t *basep)
{
	uint64_t base;
	int r, e;

	if (p->partfd < 0 && (r = open_part(p)) < 0)
		return r;
	while (flock(p->lockfd, LOCK_EX) == -1)
		if (errno != EINTR)
			return -errno;
	if ((r = catch_up(p)) < 0)
		goto out;
	if (p->end > 0 && p->end + (off_t)len > p->t->cfg.segment_bytes &&
	    (r = roll(p)) < 0)
		goto out;
	base = p->next;
	if (epoch != 0)
		put32(buf + 52, epoch);	/* format.h: epoch */
	spool_batch_stamp(buf, base);
	if ((r = spool_io_pwrite(p->io, p->logfd, buf, len, p->end, 0)) < 0) {
		/* leave no partial batch behind for the next writer */
		if (ftruncate(p->logfd, p->end) == -1) {
			/* then the next writer cuts it under the lock */
		}
		goto out;
	}
	if (p->end - p->lastidx >= SPOOL_IDX_INTERVAL &&
	    spool_idx_append(p->idxfd, p->segbase, base, p->end) == 0)
		p->lastidx = p->end;
	p->end += len;
	p->next += count;
	p->dirty = 1;
	*basep = base;
out:
	e = errno;
	(void)flock(p->lockfd, LOCK_UN);
	errno = e;
	return r;
}

/*
 * spool_head_sync - make what was appended since the last sync durable;
 * a failure is final (the only sync of this data)
 */
int
spool_head_sync(struct spool_head *p)
{
	int r;

	if (!p->dirty || p->logfd < 0)
		return 0;
	if ((r = spool_io_fdatasync(p->io, p->logfd)) < 0)
		return r;
	p->dirty = 0;
	return 0;
}

/* spool_head_close - let go of the partition: segment, lock file, directory */
void
spool_head_close(struct spool_head *p)
{
	close_seg(p);
	if (p->lockfd >= 0)
		close(p->lockfd);
	if (p->partfd >= 0)
		close(p->partfd);
	p->partfd = p->lockfd = -1;
}
