/*
 * repl_promote.c - making a replica a primary (mq-replicate --promote)
 *
 * The order is the guarantee: a new epoch first, so that no batch the
 * new primary writes carries an old one; then the scheduled files whose
 * batches the source had already moved are dropped (sched_repl.c), so
 * that the new primary moves each of the others once; then the replica
 * marker goes, and that removal, synced, is the promotion.  A kill at
 * any point leaves a replica (the marker is there) that a second
 * --promote finishes.  The role files themselves are repl_role.c's.
 */

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <unistd.h>

#include "repl.h"

/*
 * promote_sched - before the marker goes, drop the scheduled files
 * whose batches the source moved after the last listing copied
 * (sched_repl.c): the new primary moves each of the others once
 */
static int
promote_sched(struct spool *sp)
{
	struct spool_topic *t;
	char **names;
	size_t n, i;
	int r;

	if (sp->topicsfd < 0)
		return 0;
	if ((r = spool_topic_list(sp, &names, &n)) < 0)
		return r;
	for (i = 0; i < n; i++) {
		if (r >= 0 && spool_topic_open(sp, names[i], &t) == 0) {
			r = spool_sched_reconcile(t);
			spool_topic_close(t);
		}
		free(names[i]);
	}
	free(names);
	return r < 0 ? r : 0;
}

/*
 * spool_promote - make a replica a primary: a new epoch first (so that
 * no batch of the new primary carries an old one), then the marker goes;
 * -EALREADY if it is a primary, -ENOENT if it is no spool (no topics/)
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
	if ((r = repl_set_epoch(sp, ++*epoch)) < 0)
		return r;
	if ((r = promote_sched(sp)) < 0)
		return r;
	if (unlinkat(sp->dirfd, REPLICA_NAME, 0) == -1)
		return -errno;
	/* the marker's removal is the promotion: it must stick */
	return spool_fsync_dir(sp->dirfd);
}
