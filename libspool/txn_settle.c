/*
 * txn_settle.c - is a transaction's batch settled: what a reader asks
 * when it meets a batch of a transaction (spool_txn_settle: visible
 * once not committing, waiting for a live committer and completing a
 * dead one's commit) and what mq-replicate asks before it sends one
 * (spool_txn_committing, spool_txn_unsettled, spool_txn_any_unsettled)
 *
 * Guarantees: when spool_txn_settle returns 0 the transaction is not
 * being committed (committed with every batch appended, or not at
 * all).  What this does not do: it changes no state itself (a roll
 * forward goes through spool_txn_commit), and it decides nothing for
 * mq-replicate: an unreadable state is only "not yet" to it.
 */

#include <sys/file.h>
#include <sys/stat.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "spool_impl.h"
#include "txn.h"

/*
 * spool_txn_settle - a reader met a batch of txid: return once it is
 * visible, that is once its transaction is not committing (a live
 * committer is waited for, a dead one's commit is completed)
 */
int
spool_txn_settle(struct spool_topic *t, uint64_t txid)
{
	struct tstate s;
	char name[32];
	int xfd, dfd, lfd, r, st;

	if ((dfd = spool_txn_open(t, txid, &xfd, name, sizeof(name))) < 0)
		return dfd == -ENOENT ? 0 : dfd;	/* resolved long ago */
	if ((r = spool_txn_state_read(t->sp, dfd, name, &s)) < 0)
		goto out;
	st = s.st;
	spool_txn_state_free(&s);
	if (st != ST_COMMITTING)
		goto out;
	/* the committer holds the lock until it is done (none: no one) */
	if ((lfd = spool_txn_lock(xfd, LOCK_SH)) < 0 && lfd != -ENOENT) {
		r = lfd;
		goto out;
	}
	if (lfd >= 0)
		close(lfd);
	r = spool_txn_state_read(t->sp, dfd, name, &s);
	if (r == -ENOENT)
		r = 0;
	if (r < 0)
		goto out;
	st = s.st;
	spool_txn_state_free(&s);
	if (st == ST_COMMITTING) {
		/* the committer died: finish its work */
		r = spool_txn_commit(t, txid);
	}
out:
	close(dfd);
	close(xfd);
	return r;
}

/*
 * spool_txn_committing - is txid being committed right now (its batches
 * may be half appended): 1 yes, 0 no (mq-replicate holds such a batch
 * back)
 */
int
spool_txn_committing(struct spool_topic *t, uint64_t txid)
{
	struct tstate s;
	char name[32];
	int xfd, dfd, r;

	if ((dfd = spool_txn_open(t, txid, &xfd, name, sizeof(name))) < 0)
		return dfd == -ENOENT ? 0 : dfd;
	r = spool_txn_state_read(t->sp, dfd, name, &s);
	if (r == 0)
		r = s.st == ST_COMMITTING;
	spool_txn_state_free(&s);
	close(dfd);
	close(xfd);
	return r;
}

/*
 * spool_txn_any_unsettled - whether a batch of t may be one a replica
 * must not get yet (spool_txn_unsettled of any transaction): 1 maybe,
 * 0 no.  A transaction resolved since moved to done/, so a done/
 * changed at or after since counts too.
 */
int
spool_txn_any_unsettled(struct spool_topic *t, int64_t since)
{
	struct stat st;
	char **names;
	size_t n, i;
	int xfd, r = 0;

	if ((xfd = spool_txn_opendir(t->sp, t->dirfd, TXN_DIR, 0)) < 0)
		return xfd == -ENOENT ? 0 : 1;
	if (fstatat(xfd, TXN_DONE, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
	    (int64_t)st.st_mtim.tv_sec * 1000 + st.st_mtim.tv_nsec / 1000000 >=
	    since)
		r = 1;
	if (r == 0 && spool_txn_dirs(xfd, ".", &names, &n) == 0) {
		for (i = 0; i < n && r == 0; i++)
			r = spool_txn_unsettled(t, strtoull(names[i], NULL, 16),
			    since);
		spool_txn_dirs_free(names, n);
	} else if (r == 0)
		r = 1;
	close(xfd);
	return r;
}

/*
 * spool_txn_unsettled - must a replica not get txid's batches yet: 1
 * when its commit is under way, or ended at or after since (a copy
 * that began before the commit may have passed a partition before the
 * commit reached it, and would else send the others' part alone); 0
 * no; an unreadable state counts as 1 (the next pass retries)
 */
int
spool_txn_unsettled(struct spool_topic *t, uint64_t txid, int64_t since)
{
	struct tstate st;
	char name[32];
	int xfd, ddfd, dfd, r;

	memset(&st, 0, sizeof(st));
	spool_txn_hexname(name, sizeof(name), txid);
	if ((xfd = spool_txn_opendir(t->sp, t->dirfd, TXN_DIR, 0)) < 0)
		return xfd == -ENOENT ? 0 : 1;
	/* resolved, its state is under done/ for a day */
	if ((dfd = spool_txn_opendir(t->sp, xfd, name, 0)) == -ENOENT &&
	    (ddfd = spool_txn_opendir(t->sp, xfd, TXN_DONE, 0)) >= 0) {
		dfd = spool_txn_opendir(t->sp, ddfd, name, 0);
		close(ddfd);
	}
	close(xfd);
	if (dfd < 0)
		return dfd == -ENOENT ? 0 : 1;
	r = spool_txn_state_read(t->sp, dfd, name, &st);
	close(dfd);
	if (r < 0)
		return r == -ENOENT ? 0 : 1;
	r = st.st == ST_COMMITTING ||
	    (st.st == ST_COMMITTED && st.resolved >= since);
	spool_txn_state_free(&st);
	return r;
}
