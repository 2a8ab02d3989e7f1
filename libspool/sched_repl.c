/*
 * sched_repl.c - the scheduled files of a replica: copied from the
 * source by mq-replicate (repl_pass.c), reconciled on promotion
 *
 * A replica holds a copy of its source's scheduled files and never moves
 * them itself (spool_sched_move does nothing on a replica): the source's
 * moves reach it as log appends, and mq-replicate removes the files the
 * source no longer has.  SCHED_FROM records, per partition, the source's
 * next offset taken just before the last listing it copied: a file held
 * then and moved later has its batch at or after that offset, so on
 * promotion spool_sched_reconcile drops the files whose batch the
 * replica already holds there, and the new primary moves each of the
 * others once.
 *
 * It owns scheduled/replicated.  What this does not do: it never moves
 * a batch into a partition (sched_move.c does, once the replica is
 * promoted) and does not decide what to copy (repl_pass.c does).
 */

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "spool_impl.h"
#include "schedule.h"

#define SCHED_FROM	"replicated"

/* the names spool_sched_names gathers */
struct name_list {
	char	**v;
	size_t	  n;
};

/* names_add - spool_sched_each's fn for spool_sched_names */
static int
names_add(int bfd, const struct sfile *files, size_t nf, void *arg)
{
	struct name_list *nm = arg;
	char **nv;
	size_t j;

	if (nf == 0)
		return 0;
	if ((nv = realloc(nm->v, (nm->n + nf) * sizeof(*nv))) == NULL)
		return -ENOMEM;
	nm->v = nv;
	for (j = 0; j < nf; j++)
		if ((nm->v[nm->n++] = strdup(files[j].name)) == NULL) {
			nm->n--;
			return -ENOMEM;
		}
	return 0;
}

/* spool_sched_names - every scheduled file's name, in due order */
int
spool_sched_names(struct spool_topic *t, char ***out, size_t *np)
{
	struct name_list nm = { NULL, 0 };
	int sfd, r;

	*out = NULL;
	*np = 0;
	if ((sfd = spool_sched_opendir(t->sp, t->dirfd, SCHED_DIR, 0)) < 0)
		return sfd == -ENOENT ? 0 : sfd;
	r = spool_sched_each(sfd, names_add, &nm);
	close(sfd);
	if (r < 0) {
		spool_sched_free(nm.v, nm.n);
		return r;
	}
	*out = nm.v;
	*np = nm.n;
	return 0;
}

/* bucket_of - the open bucket directory of a scheduled file's name */
static int
bucket_of(struct spool_topic *t, const char *name, int create, int *sfdp)
{
	char bucket[32];
	struct sfile f;
	int sfd, bfd;

	if (spool_sched_parse(name, &f) < 0) {
		spool_seterr(t->sp, "scheduled/%s: not a scheduled file", name);
		return -EBADMSG;
	}
	if ((sfd = spool_sched_opendir(t->sp, t->dirfd, SCHED_DIR, create)) < 0)
		return sfd;
	spool_sched_bucket(bucket, sizeof(bucket), f.due);
	if ((bfd = spool_sched_opendir(t->sp, sfd, bucket, create)) < 0) {
		close(sfd);
		return bfd;
	}
	*sfdp = sfd;
	return bfd;
}

/* spool_sched_get - a scheduled file's batch, checked (*buf to free) */
int
spool_sched_get(struct spool_topic *t, const char *name, unsigned char **buf,
    size_t *len)
{
	struct spool_bhdr h;
	int sfd, bfd, r;

	if ((bfd = bucket_of(t, name, 0, &sfd)) < 0)
		return bfd;
	r = spool_batch_read_file(t->sp, "scheduled/", bfd, name, buf, len,
	    &h);
	close(bfd);
	close(sfd);
	return r;
}

/*
 * spool_sched_put - keep the source's scheduled batch under its name
 * (a replica); checked as a mover would read it; durable if sync
 */
int
spool_sched_put(struct spool_topic *t, const char *name,
    const unsigned char *buf, size_t len, int sync)
{
	struct spool_bhdr h;
	struct sfile f;
	int sfd, bfd, r;

	if (spool_sched_parse(name, &f) < 0 || f.part >= t->cfg.partitions ||
	    len < SPOOL_HDR_SIZE || spool_bhdr_unpack(buf, &h) < 0 ||
	    (size_t)h.body_len != len - SPOOL_HDR_SIZE || h.count != f.count ||
	    spool_crc(0, buf + SPOOL_HDR_SIZE, h.body_len) != h.body_crc) {
		spool_seterr(t->sp, "scheduled/%s: not a scheduled batch of "
		    "this topic", name);
		return -EBADMSG;
	}
	if ((bfd = bucket_of(t, name, 1, &sfd)) < 0)
		return bfd;
	r = spool_write_file(bfd, name, buf, len, sync);
	close(bfd);
	close(sfd);
	return r;
}

/* spool_sched_drop - remove a scheduled file (gone from the source) */
int
spool_sched_drop(struct spool_topic *t, const char *name, int sync)
{
	int sfd, bfd, r = 0;

	if ((bfd = bucket_of(t, name, 0, &sfd)) < 0)
		return bfd == -ENOENT ? 0 : bfd;
	if (unlinkat(bfd, name, 0) == -1)
		r = errno == ENOENT ? 0 : -errno;
	/* gone for good: a promoted replica would deliver it again */
	else if (sync && spool_fsync_dir(bfd) < 0)
		r = -errno;
	close(bfd);
	close(sfd);
	return r;
}

/*
 * spool_sched_setfrom - record where the batches of the files held now
 * can be, should the source move them (see above); durable if sync
 */
int
spool_sched_setfrom(struct spool_topic *t, const uint64_t *from, uint32_t n,
    int sync)
{
	char *text;
	size_t len = 0, cap = (size_t)n * 21 + 1;
	uint32_t i;
	int sfd, r;

	if ((text = malloc(cap)) == NULL)
		return -ENOMEM;
	for (i = 0; i < n; i++)
		len += snprintf(text + len, cap - len, "%" PRIu64 "\n",
		    from[i]);
	if ((sfd = spool_sched_opendir(t->sp, t->dirfd, SCHED_DIR, 1)) < 0) {
		free(text);
		return sfd;
	}
	r = spool_write_file(sfd, SCHED_FROM, text, len, sync);
	close(sfd);
	free(text);
	return r;
}

/*
 * spool_sched_reconcile - on promotion: drop the scheduled files whose
 * batch the replica already holds (moved on the source after the last
 * listing copied); the rest stay for the new primary to move
 */
int
spool_sched_reconcile(struct spool_topic *t)
{
	const size_t cap = SPOOL_PART_MAX * 21 + 1;
	char *text, *p, *end, **names;
	uint64_t *from;
	struct spool_bhdr h;
	struct sfile f;
	unsigned char *buf;
	size_t n, i, len, nfrom = 0;
	int sfd, r, dropped = 0;

	if ((sfd = spool_sched_opendir(t->sp, t->dirfd, SCHED_DIR, 0)) < 0)
		return sfd == -ENOENT ? 0 : sfd;
	if ((text = malloc(cap)) == NULL ||
	    (from = calloc(SPOOL_PART_MAX, sizeof(*from))) == NULL) {
		free(text);
		close(sfd);
		return -ENOMEM;
	}
	r = spool_read_file(sfd, SCHED_FROM, text, cap);
	close(sfd);
	for (p = text; r >= 0 && nfrom < SPOOL_PART_MAX && *p != '\0';
	    p = end + 1) {
		from[nfrom++] = strtoull(p, &end, 10);
		if (*end != '\n')
			break;
	}
	free(text);
	if (r >= 0)
		r = spool_sched_names(t, &names, &n);
	if (r < 0) {
		free(from);
		/* never copied a listing: nothing to drop */
		return r == -ENOENT ? 0 : r;
	}
	for (i = 0; i < n && r >= 0; i++) {
		(void)spool_sched_parse(names[i], &f);
		if (f.part >= nfrom ||
		    spool_sched_get(t, names[i], &buf, &len) < 0)
			continue;	/* a mover reports what is wrong */
		(void)spool_bhdr_unpack(buf, &h);	/* checked by _get */
		free(buf);
		if ((r = spool_sched_moved(t, f.part, from[f.part], &h)) == 1 &&
		    (r = spool_sched_drop(t, names[i], !t->sp->nosync)) == 0)
			dropped++;
	}
	spool_sched_free(names, n);
	free(from);
	return r < 0 ? r : dropped;
}
