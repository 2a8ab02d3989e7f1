/*
 * sched_cancel.c - cancelling scheduled messages by ID (mq-topic cancel)
 *
 * Removes the scheduled batches (schedule.c) not yet due whose records
 * carry an ID.  It takes scheduled/lock, as the mover does, so that a
 * batch is either moved or cancelled, never both, and first finishes a
 * move a killed mover left half done (spool_sched_recover).  A
 * cancelled batch stays gone after a crash: its directory is synced.
 *
 * A batch goes whole when any of its records carries the ID (a send
 * with --id stores its messages so); it never touches the partitions.
 */

#include <sys/file.h>

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "spool_impl.h"
#include "schedule.h"

/* has_id - does any record of a scheduled batch carry this ID */
static int
has_id(struct spool *sp, int bfd, const char *name, const void *id,
    size_t idlen)
{
	struct spool_body body;
	struct spool_bhdr h;
	struct spool_msg m;
	unsigned char *buf;
	char why[128];
	size_t len;
	int r, found = 0;

	if ((r = spool_batch_read_file(sp, "scheduled/", bfd, name, &buf, &len,
	    &h)) < 0)
		return r == -ENOENT ? 0 : r;
	memset(&body, 0, sizeof(body));
	if ((r = spool_body_open(&body, &h, buf + SPOOL_HDR_SIZE, why,
	    sizeof(why))) < 0) {
		free(buf);
		return r;
	}
	while ((r = spool_body_next(&body, &m)) > 0)
		if (m.id != NULL && m.idlen == idlen &&
		    memcmp(m.id, id, idlen) == 0) {
			found = 1;
			break;
		}
	spool_body_free(&body);
	free(buf);
	return r < 0 ? r : found;
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
		if ((r = has_id(c->sp, bfd, files[j].name, c->id,
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
