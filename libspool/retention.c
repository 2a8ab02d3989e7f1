/*
 * retention.c - applying a topic's retention (mq-topic gc): deleting
 * its oldest segments by age and size, then compacting what is left
 * (compact.c) and expiring send IDs (dedup.c)
 *
 * The newest segment of a partition is never deleted, and a log goes
 * before its index.  A compacted partition is collected under its gc
 * lock, taken without waiting (another gc passes it by).  Readers that
 * have a deleted segment open read on; a reader asking for an offset no
 * longer retained starts at the first one (position.c).
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

/* seg_max_ts - the largest message time in a segment (headers only) */
static int
seg_max_ts(struct spool_io *io, int pfd, uint64_t base, int64_t *max_ts,
    off_t *size)
{
	struct spool_scanpos pos;
	struct stat st;
	char name[SPOOL_SEGNAME_LEN + 16], why[128];
	int fd, r;

	spool_seg_name(name, base, SPOOL_LOG_SUFFIX);
	fd = openat(pfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd == -1)
		return -errno;
	if (fstat(fd, &st) == -1) {
		r = -errno;
		close(fd);
		return r;
	}
	memset(&pos, 0, sizeof(pos));
	pos.next = base;
	pos.max_ts = INT64_MIN;
	r = spool_seg_scan(io, fd, 0, st.st_size, 0, &pos, why,
	    sizeof(why));
	close(fd);
	/* a newer mq's batch: its times are unknown, so it is not old */
	if (r == -EPROTO) {
		pos.max_ts = INT64_MAX;
		r = 0;
	}
	*max_ts = pos.max_ts;
	*size = st.st_size;
	return r < 0 ? r : 0;
}

/*
 * part_retain - delete the oldest segments of partition p (directory
 * pfd) that retention says go, reporting each; *deleted counts them (a
 * count over the partitions so far: the directory is synced when it is
 * not 0).  Returns 0 or -errno.
 */
static int
part_retain(struct spool_topic *t, struct spool_io *io, uint32_t p,
    int pfd, int64_t now, void (*report)(void *, const char *), void *arg,
    int *deleted)
{
	struct spool_seglist l;
	char name[SPOOL_SEGNAME_LEN + 16], msg[256];
	uint64_t total;
	int64_t max_ts = INT64_MIN;
	off_t size, *sizes;
	size_t i;
	int r = 0;

	if ((r = spool_seg_list(pfd, &l)) < 0)
		return r;
	total = 0;
	sizes = calloc(l.n ? l.n : 1, sizeof(*sizes));
	if (sizes == NULL)
		r = -ENOMEM;
	for (i = 0; r >= 0 && i < l.n; i++) {
		struct stat st;

		spool_seg_name(name, l.base[i], SPOOL_LOG_SUFFIX);
		if (fstatat(pfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0)
			sizes[i] = st.st_size;
		total += sizes[i];
	}
	/*
	 * A prefix of the segments goes, the newest always stays;
	 * none by age or size when cleanup.policy is compact alone
	 * (a table keeps its keys however old)
	 */
	for (i = 0; r >= 0 && i + 1 < l.n &&
	    t->cfg.compact != SPOOL_CLEANUP_COMPACT; i++) {
		int old = 0, big = 0;

		if (t->cfg.retention_ms >= 0) {
			if ((r = seg_max_ts(io, pfd, l.base[i], &max_ts,
			    &size)) < 0)
				break;
			old = max_ts != INT64_MIN &&
			    max_ts < now - t->cfg.retention_ms;
		}
		big = t->cfg.retention_bytes >= 0 &&
		    total > (uint64_t)t->cfg.retention_bytes;
		if (!old && !big)
			break;
		/* the log first: an index without its log is ignored */
		spool_seg_name(name, l.base[i], SPOOL_LOG_SUFFIX);
		if (unlinkat(pfd, name, 0) == -1 && errno != ENOENT) {
			r = -errno;
			break;
		}
		spool_seg_name(name, l.base[i], SPOOL_IDX_SUFFIX);
		(void)unlinkat(pfd, name, 0);
		total -= sizes[i];
		(*deleted)++;
		if (report != NULL) {
			snprintf(msg, sizeof(msg), "%s/%" PRIu32 "/%020"
			    PRIu64 ".log: deleted (%s)", t->name, p,
			    l.base[i], old ? "retention.ms" :
			    "retention.bytes");
			report(arg, msg);
		}
	}
	/* the deletions must not come back after a crash */
	if (r >= 0 && *deleted > 0)
		r = spool_sync_dir(t->sp, pfd);
	free(sizes);
	spool_seg_free(&l);
	return r;
}

/*
 * spool_topic_gc - apply retention: delete, oldest first, the segments
 * (never the newest of a partition) whose messages are all older than
 * retention.ms, or that take the partition over retention.bytes; report
 * each one.  Readers that have a deleted segment open read on; a reader
 * asking for an offset no longer retained starts at the first one.
 * Returns the number of segments deleted.
 */
int
spool_topic_gc(struct spool_topic *t, int64_t now,
    void (*report)(void *, const char *), void *arg)
{
	struct spool_io *io = spool_get_io(t->sp);
	char msg[256];
	uint32_t p;
	int pfd, n, r = 0, bad = 0, deleted = 0;

	if (io == NULL)
		return -ENOMEM;
	for (p = 0; p < t->cfg.partitions && r >= 0; p++) {
		if ((pfd = spool_part_open(t, p)) < 0)
			return pfd;
		/*
		 * One gc at a time rewrites or deletes a compacted
		 * partition's segments (compact.c); another one passes
		 */
		if (t->cfg.compact != SPOOL_CLEANUP_DELETE &&
		    flock(pfd, LOCK_EX | LOCK_NB) == -1) {
			if (errno != EWOULDBLOCK)
				r = -errno;
			close(pfd);
			continue;
		}
		r = part_retain(t, io, p, pfd, now, report, arg, &deleted);
		/*
		 * a damaged partition is not compacted (verify says where);
		 * the others are, and the damage is the result
		 */
		if (r >= 0 && t->cfg.compact != SPOOL_CLEANUP_DELETE &&
		    (n = spool_compact_part(t, p, pfd, now, report, arg)) < 0) {
			if (n == -EBADMSG)
				bad = n;
			else
				r = n;
		}
		close(pfd);	/* and with it the gc lock */
	}
	/* and the send IDs past their window */
	if (r >= 0 && (r = spool_dedup_gc(t, now)) > 0 && report != NULL) {
		snprintf(msg, sizeof(msg), "%s: %d send IDs past "
		    "dedup.window.ms forgotten", t->name, r);
		report(arg, msg);
	}
	if (r >= 0 && bad < 0)
		r = bad;
	return r < 0 ? r : deleted;
}
