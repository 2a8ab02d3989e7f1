/*
 * txn_commit.c - resolving a transaction: commit (rolled forward to its
 * end whoever started it), abort, and the tick that completes dead
 * commits, aborts timed-out prepares and forgets old ones
 *
 * Commit, under txn/lock (exclusive): state -> committing (durable);
 * each batch appended to its partition with flags SPOOL_BF_TXN and the
 * header's txid set (synced); state -> committed (one rename: the
 * visibility point); the batch files go and the directory moves to
 * txn/done/.  A reader that meets a TXN batch whose transaction is
 * committing waits for txn/lock and, when the committer died, rolls the
 * commit forward itself (spool_txn_settle); so does anyone who calls
 * spool_txn_tick.  Rolling forward is idempotent: a partition that
 * already holds k batches of this txid at or after its "from" offset
 * has had its first k batch files appended, and gets only the rest.
 *
 * Offsets are given at commit, so they stay dense and in the order
 * messages become visible, and a reader never waits on a prepared
 * transaction, only (briefly) on one being committed.
 *
 * It owns the state changes past prepared and txn/done/.  What this
 * does not do: it runs no --check command (the caller does, from
 * spool_txn_list) and stores no batch (txn.c).
 */

#include <sys/file.h>
#include <sys/stat.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "spool_impl.h"
#include "txn.h"

/* of_txn - is h a batch of transaction *txid */
static int
of_txn(const struct spool_bhdr *h, const void *txid)
{
	return (h->flags & SPOOL_BF_TXN) && h->txid == *(const uint64_t *)txid;
}

/*
 * count_txn - how many batches of txid partition part holds at offset
 * from or later
 */
static int
count_txn(struct spool_topic *t, uint32_t part, uint64_t from, uint64_t txid)
{
	return spool_part_count(t, part, from, of_txn, &txid, INT_MAX);
}

/* from_of - partition part's offset in a "from P:N ..." line */
static int
from_of(const char *from, uint32_t part, uint64_t *off)
{
	unsigned p;
	uint64_t n;
	int used;

	while (from != NULL && sscanf(from, " %u:%" SCNu64 "%n", &p, &n,
	    &used) == 2) {
		if (p == part) {
			*off = n;
			return 0;
		}
		from += used;
	}
	return -1;
}

/* finish - the batch files go and the directory moves to done/ */
static void
finish(struct spool_topic *t, int xfd, int dfd, const char *name)
{
	struct tfile *files;
	size_t n, i;
	int done;

	if (spool_txn_files(dfd, &files, &n) == 0) {
		for (i = 0; i < n; i++)
			(void)unlinkat(dfd, files[i].name, 0);
		free(files);
	}
	if ((done = spool_txn_opendir(t->sp, xfd, TXN_DONE, 1)) < 0)
		return;
	/* a crash before this leaves it in txn/: the next tick moves it */
	if (renameat(xfd, name, done, name) == -1 && errno == ENOTEMPTY)
		(void)spool_rmtree(xfd, name);
	close(done);
}

/*
 * roll - append what a committing transaction has not yet appended,
 * then mark it committed (under txn/lock)
 */
static int
roll(struct spool_topic *t, int xfd, int dfd, const char *name,
    uint64_t txid, struct tstate *s)
{
	struct spool_writer_opts wo = { .sync = !t->sp->nosync, .codec = -1,
	    .partition = -1 };
	struct spool_writer *w = NULL;
	struct spool_bhdr h;
	struct tfile *files;
	unsigned char *buf = NULL;
	uint64_t from;
	uint32_t *skip = NULL, *seen = NULL, np = t->cfg.partitions;
	size_t n, i, len = 0;
	int r, c;

	if ((r = spool_txn_files(dfd, &files, &n)) < 0)
		return r;
	if ((skip = calloc(np, sizeof(*skip))) == NULL ||
	    (seen = calloc(np, sizeof(*seen))) == NULL) {
		r = -ENOMEM;
		goto out;
	}
	/* what an earlier committer appended before it died */
	for (i = 0; i < n; i++) {
		if (files[i].part >= np) {
			spool_seterr(t->sp, "%s: txn/%s/%s: no partition %u",
			    t->name, name, files[i].name, files[i].part);
			r = -EBADMSG;
			goto out;
		}
		if (seen[files[i].part]++ > 0)
			continue;
		if (from_of(s->from, files[i].part, &from) < 0) {
			spool_seterr(t->sp, "%s: txn/%s/state: no offset for "
			    "partition %u", t->name, name, files[i].part);
			r = -EBADMSG;
			goto out;
		}
		if ((r = count_txn(t, files[i].part, from, txid)) < 0)
			goto out;
		skip[files[i].part] = (uint32_t)r;
	}
	for (i = 0; i < n; i++) {
		if (skip[files[i].part] > 0) {
			skip[files[i].part]--;
			continue;
		}
		if ((r = spool_batch_read_file(t->sp, "txn batch ", dfd,
		    files[i].name, &buf, &len, &h)) < 0)
			goto out;
		buf[51] |= SPOOL_BF_TXN;	/* format.h: flags */
		put64(buf + 56, txid);		/* format.h: txid */
		if (w == NULL && (r = spool_writer_open(t, &wo, &w)) < 0) {
			free(buf);
			goto out;
		}
		r = spool_writer_put_batch(w, files[i].part, buf, len, h.count);
		free(buf);
		if (r < 0)
			goto out;
	}
	/* every batch on stable storage before the state says committed */
	if (w != NULL) {
		r = spool_writer_close(w);
		w = NULL;
		if (r < 0)
			goto out;
	}
	if ((r = spool_txn_state_write(t->sp, dfd, ST_COMMITTED, s, NULL)) < 0)
		goto out;
	finish(t, xfd, dfd, name);
	/* followers held at it (mq-replicate --follow) look again */
	spool_sched_kick(t);
out:
	if (w != NULL && (c = spool_writer_close(w)) < 0 && r >= 0)
		r = c;
	free(skip);
	free(seen);
	free(files);
	return r;
}

/* begin_commit - prepared -> committing, with each partition's offset */
static int
begin_commit(struct spool_topic *t, int dfd, struct tstate *s)
{
	struct spool_part_info pi;
	struct tfile *files;
	char *from = NULL, *nf;
	unsigned char *seen;
	size_t n, i, len = 0, cap = 256;
	int r;

	if ((r = spool_txn_files(dfd, &files, &n)) < 0)
		return r;
	if ((seen = calloc(t->cfg.partitions, 1)) == NULL ||
	    (from = malloc(cap)) == NULL) {
		r = -ENOMEM;
		goto out;
	}
	from[0] = '\0';
	/* every batch whole before the point of no return */
	for (i = 0; i < n; i++) {
		struct spool_bhdr h;
		unsigned char *buf;
		size_t blen;

		if (files[i].part >= t->cfg.partitions) {
			spool_seterr(t->sp, "%s: transaction batch %s: no "
			    "partition %u", t->name, files[i].name,
			    files[i].part);
			r = -EBADMSG;
			goto out;
		}
		if ((r = spool_batch_read_file(t->sp, "txn batch ", dfd,
		    files[i].name, &buf, &blen, &h)) < 0)
			goto out;
		free(buf);
	}
	for (i = 0; i < n; i++) {
		if (seen[files[i].part])
			continue;
		seen[files[i].part] = 1;
		if (len + 32 > cap) {
			cap *= 2;
			if ((nf = realloc(from, cap)) == NULL) {
				r = -ENOMEM;
				goto out;
			}
			from = nf;
		}
		if ((r = spool_part_bounds(t, files[i].part, &pi)) < 0)
			goto out;
		len += snprintf(from + len, cap - len, "%s%u:%" PRIu64,
		    len ? " " : "", files[i].part, pi.next);
	}
	/* durable before the first append: recovery looks from here */
	r = spool_txn_state_write(t->sp, dfd, ST_COMMITTING, s, from);
	if (r == 0) {
		spool_txn_state_free(s);
		r = spool_txn_state_read(t->sp, dfd, "", s);
	}
out:
	free(seen);
	free(from);
	free(files);
	return r;
}

/* do_abort - prepared -> aborted; its batches go (under txn/lock) */
static int
do_abort(struct spool_topic *t, int xfd, int dfd, const char *name,
    struct tstate *s)
{
	int r;

	if ((r = spool_txn_state_write(t->sp, dfd, ST_ABORTED, s, NULL)) < 0)
		return r;
	finish(t, xfd, dfd, name);
	return 0;
}

/*
 * resolve - commit (want ST_COMMITTED) or abort a transaction: 0 done
 * (or already so), -ENOENT unknown, -ECANCELED resolved the other way
 */
static int
resolve(struct spool_topic *t, uint64_t txid, int want)
{
	struct tstate s;
	char name[32];
	int xfd, dfd, lfd, r, done;

	spool_txn_hexname(name, sizeof(name), txid);
	if ((xfd = spool_txn_opendir(t->sp, t->dirfd, TXN_DIR, 0)) < 0)
		return xfd;
	if ((lfd = spool_txn_lock(xfd, LOCK_EX)) < 0) {
		close(xfd);
		return lfd;
	}
	if ((dfd = spool_txn_opendir(t->sp, xfd, name, 0)) == -ENOENT) {
		/* resolved earlier: remembered in done/ for a day */
		if ((done = spool_txn_opendir(t->sp, xfd, TXN_DONE, 0)) >= 0) {
			dfd = spool_txn_opendir(t->sp, done, name, 0);
			close(done);
		}
		if (dfd < 0) {
			r = dfd;
			goto out;
		}
	} else if (dfd < 0) {
		r = dfd;
		goto out;
	}
	if ((r = spool_txn_state_read(t->sp, dfd, name, &s)) < 0)
		goto out;
	switch (s.st) {
	case ST_NONE:
		r = -ENOENT;		/* its prepare never finished */
		break;
	case ST_COMMITTED:
	case ST_ABORTED:
		r = s.st == want ? 0 : -ECANCELED;
		break;
	case ST_COMMITTING:
		/* past the point of no return: it is completed */
		r = roll(t, xfd, dfd, name, txid, &s);
		if (r == 0 && want != ST_COMMITTED)
			r = -ECANCELED;
		break;
	case ST_PREPARED:
		if (want == ST_COMMITTED && s.check == NULL &&
		    spool_now_ms() >= s.deadline) {
			/* too late: it is aborted, as the next tick would */
			if ((r = do_abort(t, xfd, dfd, name, &s)) == 0)
				r = -ECANCELED;
			spool_seterr(t->sp, "%s: transaction timed out",
			    t->name);
		} else if (want == ST_COMMITTED) {
			if ((r = begin_commit(t, dfd, &s)) == 0)
				r = roll(t, xfd, dfd, name, txid, &s);
		} else
			r = do_abort(t, xfd, dfd, name, &s);
		break;
	}
	spool_txn_state_free(&s);
out:
	if (dfd >= 0)
		close(dfd);
	close(lfd);
	close(xfd);
	return r;
}

/* spool_txn_commit - make a prepared transaction visible, all at once */
int
spool_txn_commit(struct spool_topic *t, uint64_t txid)
{
	return resolve(t, txid, ST_COMMITTED);
}

/* spool_txn_abort - discard a prepared transaction */
int
spool_txn_abort(struct spool_topic *t, uint64_t txid)
{
	return resolve(t, txid, ST_ABORTED);
}

/*
 * spool_txn_tick - what anyone touching the topic does: complete
 * commits whose committer died, abort prepared transactions past their
 * timeout that have no check command, and (gc) forget resolved ones
 * older than a day and prepares abandoned for a day.  Returns how many
 * it resolved.
 */
int
spool_txn_tick(struct spool_topic *t, int64_t now, int gc)
{
	struct tstate s;
	struct stat st;
	char **v;
	size_t n, i;
	uint64_t txid;
	int xfd, dfd, lfd, done, r = 0, count = 0, act;

	if ((xfd = spool_txn_opendir(t->sp, t->dirfd, TXN_DIR, 0)) < 0)
		return xfd == -ENOENT ? 0 : xfd;
	if ((r = spool_txn_dirs(xfd, ".", &v, &n)) < 0)
		goto out;
	for (i = 0; i < n && r >= 0; i++) {
		if ((dfd = spool_txn_opendir(t->sp, xfd, v[i], 0)) < 0)
			continue;
		act = ST_NONE;
		if ((r = spool_txn_state_read(t->sp, dfd, v[i], &s)) ==
		    -EBADMSG)
			r = 0;	/* verify says so; the others go on */
		else if (r < 0)
			;
		else if (s.st == ST_NONE) {
			/* a prepare killed before its state, long ago */
			if (gc && fstat(dfd, &st) == 0 &&
			    now - (int64_t)st.st_mtime * 1000 > TXN_KEEP_MS)
				(void)spool_rmtree(xfd, v[i]);
		} else if (s.st == ST_COMMITTING)
			act = ST_COMMITTED;	/* its committer may be dead */
		else if (s.st == ST_PREPARED && s.check == NULL &&
		    now >= s.deadline)
			act = ST_ABORTED;	/* timed out */
		else if (s.st == ST_COMMITTED || s.st == ST_ABORTED) {
			/* resolved, but not yet moved aside */
			if ((lfd = spool_txn_lock(xfd, LOCK_EX)) >= 0) {
				finish(t, xfd, dfd, v[i]);
				close(lfd);
			}
		}
		spool_txn_state_free(&s);
		close(dfd);
		if (act == ST_NONE)
			continue;
		txid = strtoull(v[i], NULL, 16);
		r = resolve(t, txid, act);
		if (r == -ECANCELED || r == -ENOENT)
			r = 0;	/* someone else resolved it meanwhile */
		else if (r == 0)
			count++;
	}
	spool_txn_dirs_free(v, n);
	if (r < 0 || !gc)
		goto out;
	/* forget what was resolved more than a day ago */
	if ((r = spool_txn_dirs(xfd, TXN_DONE, &v, &n)) < 0)
		goto out;
	if ((done = spool_txn_opendir(t->sp, xfd, TXN_DONE, 0)) >= 0) {
		for (i = 0; i < n; i++) {
			if ((dfd = spool_txn_opendir(t->sp, done, v[i], 0)) < 0)
				continue;
			if (spool_txn_state_read(t->sp, dfd, v[i], &s) == 0 &&
			    (s.st == ST_NONE || now - s.resolved > TXN_KEEP_MS))
				(void)spool_rmtree(done, v[i]);
			spool_txn_state_free(&s);
			close(dfd);
		}
		close(done);
	}
	spool_txn_dirs_free(v, n);
out:
	close(xfd);
	return r < 0 ? r : count;
}
