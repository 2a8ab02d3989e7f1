/*
 * group.c - consumer groups: membership, partition ownership, offsets
 *
 * A group lives in topics/T/groups/G/:
 *
 *	lock		every live member holds it shared; reset and delete
 *			take it exclusive, so they cannot run under a member
 *	member.N	member slots: a member holds the lowest free one
 *			exclusive; the held slots are the live members
 *	N.lock		partition N's owner holds it exclusive
 *	N.offset	partition N's committed offset (the next to read)
 *
 * Every lock is a flock(2) lock, so a member that exits or is killed
 * gives everything up at once and nothing stale is ever left behind.
 * Members look at who is live every SPOOL_GROUP_REFRESH_MS: with M live members, the
 * member of rank r (its slot among the live slots, in order) wants the
 * partitions p with p % M == r, so none has more than ceil(P / M).  A
 * partition changes hands only through its lock: the old owner commits
 * and lets go, then the new one takes it, so one member at a time ever
 * reads a partition.
 *
 * An offset file (offset.c) keeps the last commit of a partition even
 * when a commit is torn by a crash.  Commits are
 * not synced one by one (a process crash loses nothing, the page cache
 * keeps them); spool_group_sync syncs them at a clean exit (a failure
 * there is an error of the program), and after a power loss the
 * last commits may be lost, which means redelivery, never loss: delivery
 * is at least once.
 *
 * The consumer (consumer.c) ties a group member to a reader.  What is
 * done to a group from outside it (list, info, verify, reset, delete,
 * store, live) is group_admin.c's.
 */

#include <sys/file.h>
#include <sys/stat.h>
#include <sys/types.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "spool_impl.h"

#define SLOT_MAX	1024	/* members a group may have */

struct spool_group {
	struct spool_topic *t;
	char		*name;
	int		 gfd;		/* the group's directory */
	int		 lockfd;	/* lock, held shared */
	int		 slotfd;	/* member.N, held exclusive */
	int		 slot;
	uint32_t	 nparts;
	int		*plock;		/* N.lock fds of held partitions */
	int		*ofd;		/* N.offset fds, opened on use */
	uint64_t	*seq;		/* last commit sequence a partition */
	int		 members;
	int		 rank;
};

/* spool_group_topdir - topics/T/groups/, made if asked */
int
spool_group_topdir(struct spool_topic *t, int create)
{
	int fd, r;

	/* a new groups/ must survive, or the groups in it would not */
	if (create && mkdirat(t->dirfd, "groups", 0775) == 0) {
		if ((r = spool_sync_dir(t->sp, t->dirfd)) < 0)
			return r;
	} else if (create && errno != EEXIST)
		return -errno;	/* EACCES is not "no such partition" */
	fd = openat(t->dirfd, "groups", O_RDONLY | O_DIRECTORY | O_NOFOLLOW |
	    O_CLOEXEC);
	return fd == -1 ? -errno : fd;
}

/* spool_group_dir - the directory of group name, made if asked */
int
spool_group_dir(struct spool_topic *t, const char *name, int create)
{
	int gsfd, fd;

	if (!spool_topic_name_ok(name))
		return -EINVAL;
	if ((gsfd = spool_group_topdir(t, create)) < 0)
		return gsfd;
	/* a new group's entry must survive, or its commits would not */
	if (create && mkdirat(gsfd, name, 0775) == 0)
		fd = spool_sync_dir(t->sp, gsfd);
	else
		fd = create && errno != EEXIST ? -errno : 0;
	if (fd == 0 && (fd = openat(gsfd, name, O_RDONLY | O_DIRECTORY |
	    O_NOFOLLOW | O_CLOEXEC)) == -1)
		fd = -errno;
	close(gsfd);
	return fd;
}

/*
 * spool_group_max - the highest offset of part any group of t committed
 * (0 when none did): a writer that finds the partition's newest segment
 * gone gives no offset below it again (head.c).  Reads only.
 */
uint64_t
spool_group_max(struct spool_topic *t, uint32_t part)
{
	struct dirent *de;
	uint64_t off, seq, max = 0;
	DIR *d;
	int gsfd, gfd;

	if ((gsfd = spool_group_topdir(t, 0)) < 0)
		return 0;
	if (spool_opendir(gsfd, ".", &d) < 0) {
		close(gsfd);
		return 0;
	}
	while ((de = readdir(d)) != NULL) {
		if (!spool_topic_name_ok(de->d_name) || (gfd = openat(gsfd,
		    de->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW |
		    O_CLOEXEC)) == -1)
			continue;
		if (spool_offset_read(gfd, part, &off, &seq) == 0 && off > max)
			max = off;
		close(gfd);
	}
	closedir(d);
	close(gsfd);
	return max;
}

/*
 * spool_group_lockat - open dirfd/name and flock it; -EAGAIN if held
 * elsewhere
 */
int
spool_group_lockat(int dirfd, const char *name, int how)
{
	int fd, e;

	fd = openat(dirfd, name, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC,
	    0664);
	if (fd == -1)
		return -errno;
	while (flock(fd, how) == -1) {
		if (errno == EINTR)
			continue;
		e = errno == EWOULDBLOCK ? -EAGAIN : -errno;
		close(fd);
		return e;
	}
	return fd;
}

/* spool_group_held - whether someone holds dirfd/name locked exclusive */
int
spool_group_held(int dirfd, const char *name)
{
	int fd, r;

	fd = openat(dirfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd == -1)
		return 0;
	r = flock(fd, LOCK_SH | LOCK_NB) == -1 && errno == EWOULDBLOCK;
	close(fd);	/* drops the probe's lock, if it got one */
	return r;
}

/* grow - make room for the topic's partitions in the per-partition arrays */
static int
grow(struct spool_group *g, uint32_t n)
{
	int *pl, *of;
	uint64_t *sq;
	uint32_t i;

	if (n <= g->nparts)
		return 0;
	if ((pl = realloc(g->plock, n * sizeof(*pl))) == NULL)
		return -ENOMEM;
	g->plock = pl;
	if ((of = realloc(g->ofd, n * sizeof(*of))) == NULL)
		return -ENOMEM;
	g->ofd = of;
	if ((sq = realloc(g->seq, n * sizeof(*sq))) == NULL)
		return -ENOMEM;
	g->seq = sq;
	for (i = g->nparts; i < n; i++) {
		g->plock[i] = g->ofd[i] = -1;
		g->seq[i] = 0;
	}
	g->nparts = n;
	return 0;
}

/* spool_group_open - join group name on topic t as a new member */
int
spool_group_open(struct spool_topic *t, const char *name,
    struct spool_group **gp)
{
	struct spool_group *g;
	char slot[32];
	int r;

	if ((g = calloc(1, sizeof(*g))) == NULL)
		return -ENOMEM;
	g->t = t;
	g->lockfd = g->slotfd = -1;
	if ((g->name = strdup(name)) == NULL) {
		free(g);
		return -ENOMEM;
	}
	if ((g->gfd = spool_group_dir(t, name, 1)) < 0) {
		r = g->gfd;
		free(g->name);
		free(g);
		return r;
	}
	if ((r = spool_group_lockat(g->gfd, "lock", LOCK_SH)) < 0)
		goto fail;
	g->lockfd = r;
	for (g->slot = 0; g->slot < SLOT_MAX; g->slot++) {
		snprintf(slot, sizeof(slot), "member.%d", g->slot);
		if ((r = spool_group_lockat(g->gfd, slot,
		    LOCK_EX | LOCK_NB)) >= 0)
			break;
		if (r != -EAGAIN)
			goto fail;
	}
	if (g->slot == SLOT_MAX) {
		r = -EUSERS;
		goto fail;
	}
	g->slotfd = r;
	if ((r = grow(g, t->cfg.partitions)) < 0)
		goto fail;
	*gp = g;
	return 0;
fail:
	spool_group_close(g);
	return r;
}

/*
 * spool_group_refresh - count the live members and find this member's
 * rank; the topic's partition count is read again too
 */
int
spool_group_refresh(struct spool_group *g)
{
	struct dirent *de;
	DIR *d;
	int n, live = 0, rank = 0, r;

	if ((r = spool_topic_reload(g->t)) < 0)
		return r;
	if ((r = grow(g, g->t->cfg.partitions)) < 0)
		return r;
	if ((r = spool_opendir(g->gfd, ".", &d)) < 0)
		return r;
	while ((de = readdir(d)) != NULL) {
		if (sscanf(de->d_name, "member.%d", &n) != 1 || n < 0)
			continue;
		if (n != g->slot && !spool_group_held(g->gfd, de->d_name))
			continue;
		live++;
		if (n < g->slot)
			rank++;
	}
	closedir(d);
	g->members = live > 0 ? live : 1;
	g->rank = rank;
	return 0;
}

/* spool_group_wants - whether this member should own partition part */
int
spool_group_wants(const struct spool_group *g, uint32_t part)
{
	return part < g->nparts &&
	    part % (uint32_t)g->members == (uint32_t)g->rank;
}

/* spool_group_nparts - how many partitions the member knows of */
uint32_t
spool_group_nparts(const struct spool_group *g)
{
	return g->nparts;
}

/* spool_group_holds - whether this member owns partition part */
int
spool_group_holds(const struct spool_group *g, uint32_t part)
{
	return part < g->nparts && g->plock[part] >= 0;
}

/* spool_group_take - take partition part over; -EAGAIN while another has it */
int
spool_group_take(struct spool_group *g, uint32_t part)
{
	char name[32];
	int fd;

	if (part >= g->nparts)
		return -ENOENT;
	if (g->plock[part] >= 0)
		return 0;
	snprintf(name, sizeof(name), "%" PRIu32 ".lock", part);
	if ((fd = spool_group_lockat(g->gfd, name, LOCK_EX | LOCK_NB)) < 0)
		return fd;
	g->plock[part] = fd;
	return 0;
}

/* spool_group_give - let partition part go (commit first) */
void
spool_group_give(struct spool_group *g, uint32_t part)
{
	if (part < g->nparts && g->plock[part] >= 0) {
		close(g->plock[part]);
		g->plock[part] = -1;
	}
}

/*
 * spool_group_committed - the committed offset of part; -ENOENT: none,
 * -EBADMSG: a damaged offset file (spool_errmsg names it)
 */
int
spool_group_committed(struct spool_group *g, uint32_t part, uint64_t *off)
{
	uint64_t seq;
	int r;

	if (part >= g->nparts)
		return -ENOENT;
	if ((r = spool_offset_read(g->gfd, part, off, &seq)) == 0 &&
	    seq > g->seq[part])
		g->seq[part] = seq;
	return r == -EBADMSG ? spool_offset_damaged(g->t, g->name, part) : r;
}

/* spool_group_commit - record that part is consumed up to off (next to read) */
int
spool_group_commit(struct spool_group *g, uint32_t part, uint64_t off)
{
	if (part >= g->nparts)
		return -ENOENT;
	return spool_offset_write(g->t->sp, g->gfd, &g->ofd[part], part,
	    &g->seq[part], off);
}

/*
 * spool_group_sync - make the commits durable (nothing with
 * SPOOL_NOSYNC); a failure is the caller's to report, never retried
 */
int
spool_group_sync(struct spool_group *g)
{
	uint32_t i;

	if (g->t->sp->nosync)
		return 0;
	for (i = 0; i < g->nparts; i++)
		if (g->ofd[i] >= 0 && fdatasync(g->ofd[i]) == -1)
			return -errno;
	return 0;
}

/*
 * spool_group_close - leave the group; commits not made durable by
 * spool_group_sync first are in the page cache only
 */
void
spool_group_close(struct spool_group *g)
{
	uint32_t i;

	if (g == NULL)
		return;
	for (i = 0; i < g->nparts; i++) {
		if (g->ofd[i] >= 0)
			close(g->ofd[i]);
		if (g->plock[i] >= 0)
			close(g->plock[i]);
	}
	if (g->slotfd >= 0)
		close(g->slotfd);
	if (g->lockfd >= 0)
		close(g->lockfd);
	if (g->gfd >= 0)
		close(g->gfd);
	free(g->plock);
	free(g->ofd);
	free(g->seq);
	free(g->name);
	free(g);
}
