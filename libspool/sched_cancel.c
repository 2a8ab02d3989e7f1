/*
 * sched_cancel.c - scheduled messages by ID: cancelling them (mq-topic
 * cancel), and finding them for the send ID searches (dedup.c,
 * dedup_rebuild.c)
 *
 * Cancelling removes the scheduled batches (schedule.c) not yet due
 * whose records carry an ID.  It takes scheduled/lock, as the mover
 * does, so that a batch is either moved or cancelled, never both, and
 * first finishes a move a killed mover left half done
 * (spool_sched_recover).  A cancelled batch stays gone after a crash:
 * its directory is synced.  A batch goes whole when any of its records
 * carries the ID (a send with --id stores its messages so); it never
 * touches the partitions.
 *
 * Finding hands each record that carries an ID, in the batches stored
 * from a time on, to a callback; the caller holds the same lock
 * (spool_sched_lock) over that and its search of the partitions, so
 * that no batch is moved from one to the other in between.
 */

#include <sys/file.h>

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "spool_impl.h"
#include "schedule.h"

/*
 * id_records - call fn with each record of the scheduled batch f that
 * carries id (any ID if id is NULL); fn returns 1 to stop, 0 to go on,
 * or -errno.  1 if fn stopped it, 0 if not (or the batch is gone: moved
 * meanwhile), or -errno.
 */
static int
id_records(struct spool *sp, int bfd, const struct sfile *f, const void *id,
    size_t idlen, int (*fn)(const struct sfile *, const struct spool_msg *,
    void *), void *arg)
{
	struct spool_body body;
	struct spool_bhdr h;
	struct spool_msg m;
	unsigned char *buf;
	char why[128];
	size_t len;
	int r, stop = 0;

	if ((r = spool_batch_read_file(sp, "scheduled/", bfd, f->name, &buf,
	    &len, &h)) < 0)
		return r == -ENOENT ? 0 : r;
	memset(&body, 0, sizeof(body));
	if ((r = spool_body_open(&body, &h, buf + SPOOL_HDR_SIZE, why,
	    sizeof(why))) < 0) {
		free(buf);
		return r;
	}
	while (!stop && (r = spool_body_next(&body, &m)) > 0)
		if (m.id != NULL && (id == NULL || (m.idlen == idlen &&
		    memcmp(m.id, id, idlen) == 0)) && (r = stop = fn(f, &m,
		    arg)) < 0)
			break;
	spool_body_free(&body);
	free(buf);
	return r < 0 ? r : stop;
}

/* is_one - id_records' fn for has_id: the first one is enough */
static int
is_one(const struct sfile *f, const struct spool_msg *m, void *arg)
{
	return 1;
}

/* has_id - does any record of a scheduled batch carry this ID */
static int
has_id(struct spool *sp, int bfd, const struct sfile *f, const void *id,
    size_t idlen)
{
	return id_records(sp, bfd, f, id, idlen, is_one, NULL);
}

/* what spool_sched_cancel looks for, and how many messages went */
struct cancel {
	struct spool	*sp;
	const void	*id;
	size_t		 idlen;
	int		 n;
};

/* cancel_in - spool_sched_each's fn for spool_sched_cancel */
static int
cancel_in(int bfd, const struct sfile *files, size_t nf, void *arg)
{
	struct cancel *c = arg;
	size_t j;
	int r = 0, gone = 0;

	for (j = 0; j < nf; j++) {
		if ((r = has_id(c->sp, bfd, &files[j], c->id,
		    c->idlen)) < 0)
			break;
		if (r == 0)
			continue;
		if (unlinkat(bfd, files[j].name, 0) == -1) {
			r = -errno;
			break;
		}
		gone = 1;
		c->n += files[j].count;
	}
	/* a cancelled message must not come back after a crash */
	if (r >= 0 && gone && !c->sp->nosync && spool_fsync_dir(bfd) < 0)
		r = -errno;
	return r < 0 ? r : 0;
}

/*
 * spool_sched_cancel - remove the scheduled batches not yet due whose
 * records carry id; returns how many messages went (0: none)
 */
int
spool_sched_cancel(struct spool_topic *t, const void *id, size_t idlen)
{
	struct cancel c = { t->sp, id, idlen, 0 };
	int sfd, lfd, r;

	if ((sfd = spool_sched_opendir(t->sp, t->dirfd, SCHED_DIR, 0)) < 0)
		return sfd == -ENOENT ? 0 : sfd;
	/* not while a mover is moving it */
	if ((lfd = spool_lock_file(sfd, LOCK_EX)) < 0) {
		close(sfd);
		return lfd;
	}
	if ((r = spool_sched_recover(t, sfd)) == 0)
		r = spool_sched_each(sfd, cancel_in, &c);
	close(lfd);
	close(sfd);
	return r < 0 ? r : c.n;
}

/*
 * spool_sched_lock - take topic t's scheduled/lock, as the mover does,
 * and finish a move a killed mover left half done: *sfd the scheduled
 * directory and *lfd the lock, both -1 when t has no scheduled store;
 * 0 or -errno
 */
int
spool_sched_lock(struct spool_topic *t, int *sfd, int *lfd)
{
	int r;

	*lfd = -1;
	if ((*sfd = spool_sched_opendir(t->sp, t->dirfd, SCHED_DIR, 0)) < 0) {
		r = *sfd;
		*sfd = -1;
		return r == -ENOENT ? 0 : r;
	}
	if ((*lfd = spool_lock_file(*sfd, LOCK_EX)) < 0 ||
	    (r = spool_sched_recover(t, *sfd)) < 0) {
		r = *lfd < 0 ? *lfd : r;
		if (*lfd >= 0)
			close(*lfd);
		close(*sfd);
		*sfd = *lfd = -1;
		return r;
	}
	return 0;
}

/* what spool_sched_find looks for */
struct find {
	struct spool	*sp;
	const void	*id;
	size_t		 idlen;
	int64_t		 from;
	int		(*fn)(const struct sfile *, const struct spool_msg *,
			    void *);
	void		*arg;
};

/* find_in - spool_sched_each's fn for spool_sched_find */
static int
find_in(int bfd, const struct sfile *files, size_t nf, void *arg)
{
	struct find *f = arg;
	size_t j;
	int r;

	for (j = 0; j < nf; j++) {
		if ((int64_t)(files[j].seq / 1000000) < f->from)
			continue;
		r = id_records(f->sp, bfd, &files[j], f->id, f->idlen, f->fn,
		    f->arg);
		/* a damaged batch is verify's to report, as in a partition */
		if (r < 0 && r != -EBADMSG && r != -EPROTO)
			return r;
	}
	return 0;
}

/*
 * spool_sched_find - call fn with each record that carries id (any ID
 * if id is NULL) in the batches of scheduled/ (sfd, held with
 * spool_sched_lock, or not written to otherwise: a replica's) stored at
 * or after from (ms, realtime), damaged ones passed over; fn returns 0,
 * or -errno to stop with it
 */
int
spool_sched_find(struct spool_topic *t, int sfd, const void *id,
    size_t idlen, int64_t from,
    int (*fn)(const struct sfile *, const struct spool_msg *, void *),
    void *arg)
{
	struct find f = { t->sp, id, idlen, from, fn, arg };

	return spool_sched_each(sfd, find_in, &f);
}
