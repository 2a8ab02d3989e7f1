/*
 * repl_promote.c - making a replica a primary (mq-replicate --promote)
 *
 * The order is the guarantee.  The replica marker first says a
 * promotion is under way ("promoting"): a follower still copying into
 * the spool checks the marker under each partition's lock before it
 * writes (repl_still_replica), so once every partition's lock has been
 * taken and let go here (quiesce), no follower writes a partition
 * again.  Its other writes (topics, configs, group offsets, scheduled
 * files) it checks holding the role lock, SPOOL/lock, shared
 * (repl_hold); taken exclusive and let go here once, after the mark
 * (hold_off), it says that none of them is made again.  Then a new
 * epoch, so that no batch the new primary writes carries an old one;
 * the scheduled files whose batches the source had already moved are
 * dropped (sched_repl.c), so that the new primary moves each of the
 * others once; the send ID markers the records call for are written
 * (dedup_rebuild.c), so that a client's retry after the failover stores
 * nothing twice, and made durable together (one syncfs).  Then the
 * replica marker goes, and that removal, synced, is the promotion.  A
 * kill at any point leaves a replica (the marker is there) that a
 * second --promote finishes.  The role files themselves are
 * repl_role.c's.
 */

#include <sys/file.h>

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <unistd.h>

#include "repl.h"

/*
 * quiesce - take and let go each partition's lock: a follower that
 * wrote there has finished, and the next one sees the marker
 */
static int
quiesce(struct spool_topic *t)
{
	uint32_t p;
	int pfd, lk;

	for (p = 0; p < t->cfg.partitions; p++) {
		if ((pfd = spool_part_open(t, p)) == -ENOENT)
			continue;	/* no partition, no writer */
		if (pfd < 0)
			return pfd;
		lk = spool_lock_file(pfd, LOCK_EX);
		close(pfd);
		if (lk < 0)
			return lk;
		close(lk);
	}
	return 0;
}

/*
 * hold_off - take and let go the role lock: a follower's write outside
 * the partitions that checked the mark before it changed has finished,
 * and the next one sees it
 */
static int
hold_off(struct spool *sp)
{
	int lk;

	if ((lk = spool_lock_file(sp->dirfd, LOCK_EX)) < 0)
		return lk;
	close(lk);
	return 0;
}

/*
 * promote_topics - with the followers held off, each topic's part of a
 * promotion: the scheduled files whose batches the source moved after
 * the last listing copied go (sched_repl.c), so that the new primary
 * moves each of the others once; the send ID markers are written
 * (dedup_rebuild.c), and made durable at once
 */
static int
promote_topics(struct spool *sp)
{
	struct spool_topic *t;
	char **names;
	size_t n, i, wrote, all = 0;
	int r;

	if (sp->topicsfd < 0)
		return 0;
	if ((r = spool_topic_list(sp, &names, &n)) < 0)
		return r;
	for (i = 0; i < n; i++) {
		if (r >= 0 && spool_topic_open(sp, names[i], &t) == 0) {
			if ((r = quiesce(t)) >= 0 &&
			    (r = spool_sched_reconcile(t)) >= 0 &&
			    (r = spool_dedup_rebuild(t, &wrote)) >= 0)
				all += wrote;
			spool_topic_close(t);
		}
		free(names[i]);
	}
	free(names);
	/* the markers must hold before the promotion does */
	if (r >= 0 && all > 0 && !sp->nosync && syncfs(sp->dirfd) == -1)
		r = -errno;
	return r < 0 ? r : 0;
}

/*
 * spool_promote - make a replica a primary, in the order the top of the
 * file gives: the marker says a promotion is under way, a new epoch,
 * each topic's part, then the marker goes; -EALREADY if it is a
 * primary, -ENOENT if it is no spool (no topics/)
 */
int
spool_promote(struct spool *sp, uint32_t *epoch)
{
	char src[64];
	int r;

	if ((r = spool_replica_of(sp, src, sizeof(src))) < 0)
		return r;
	if (r == 0)
		return sp->topicsfd < 0 ? -ENOENT : -EALREADY;
	if ((r = spool_epoch(sp, epoch)) < 0)
		return r;
	if (*epoch == UINT32_MAX)
		return -EOVERFLOW;
	if ((r = repl_mark_promoting(sp)) < 0 || (r = hold_off(sp)) < 0 ||
	    (r = repl_set_epoch(sp, ++*epoch)) < 0)
		return r;
	if ((r = promote_topics(sp)) < 0)
		return r;
	if (unlinkat(sp->dirfd, REPLICA_NAME, 0) == -1)
		return -errno;
	/* the marker's removal is the promotion: it must stick */
	return spool_fsync_dir(sp->dirfd);
}
