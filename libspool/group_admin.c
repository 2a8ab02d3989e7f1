/*
 * group_admin.c - consumer groups seen from outside: listing, looking,
 * resetting, deleting, storing
 *
 * What mq-topic, verify and mq-replicate do to a group that they are no
 * member of: list a topic's groups, say a partition's committed offset
 * and whether it is held, report damaged offset files, and, under the
 * group's lock taken exclusive (-EAGAIN while a member lives), reset its
 * offsets or delete it; store one replicated commit unless a live
 * member holds the partition.  Offsets an operator or a replica sets
 * are synced before it returns.
 *
 * Membership and a member's own commits are group.c's, the offset file
 * format offset.c's.
 */

#include <sys/file.h>
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

/* group_entry - a directory entry that may be a group */
static int
group_entry(const struct dirent *de, void *arg)
{
	return spool_topic_name_ok(de->d_name);
}

/* spool_group_list - the groups of a topic, sorted */
int
spool_group_list(struct spool_topic *t, char ***names, size_t *n)
{
	DIR *d;
	int r;

	*names = NULL;
	*n = 0;
	if ((r = spool_opendir(t->dirfd, "groups", &d)) < 0)
		return r == -ENOENT ? 0 : r;
	return spool_dir_names(d, group_entry, NULL, names, n);
}

/*
 * spool_group_info - a group's committed offset of part (-ENOENT if it
 * never committed) and whether a live member holds the partition
 */
int
spool_group_info(struct spool_topic *t, const char *name, uint32_t part,
    uint64_t *off, int *isheld)
{
	char lk[32];
	uint64_t seq;
	int gfd, r;

	if ((gfd = spool_group_dir(t, name, 0)) < 0)
		return gfd;
	snprintf(lk, sizeof(lk), "%" PRIu32 ".lock", part);
	*isheld = spool_group_held(gfd, lk);
	r = spool_offset_read(gfd, part, off, &seq);
	close(gfd);
	return r == -EBADMSG ? spool_offset_damaged(t, name, part) : r;
}

/*
 * past_end - whether group's commit off of part lies past the
 * partition's end (read after the commit: a log only grows at its end,
 * so a commit made beside it never is): the offsets between were lost,
 * a deleted newest segment or a power loss under --no-sync; then msg
 * says so
 */
static int
past_end(struct spool_topic *t, const char *group, uint32_t part,
    uint64_t off, char *msg, size_t len)
{
	struct spool_part_info pi;

	if (part >= t->cfg.partitions || spool_part_bounds(t, part, &pi) < 0 ||
	    off <= pi.next)
		return 0;
	snprintf(msg, len, "%s/%" PRIu32 ": group %s committed up to offset %"
	    PRIu64 ", past the partition's end (%" PRIu64 "): offsets %" PRIu64
	    " to %" PRIu64 " are lost (a deleted segment, or a power loss "
	    "under --no-sync)", t->name, part, group, off, pi.next, pi.next,
	    off - 1);
	return 1;
}

/*
 * spool_group_verify - report each offset file of each group that holds
 * no readable commit, or a commit past its partition's end; returns how
 * many, or -errno.  Reads only.
 */
int
spool_group_verify(struct spool_topic *t, void (*report)(void *,
    const char *), void *arg)
{
	struct dirent *de;
	char **names, msg[SPOOL_ERRMSG_MAX];
	uint64_t off, seq;
	uint32_t part;
	size_t n, i;
	DIR *d;
	int r, k, bad = 0;
	char end;

	if ((r = spool_group_list(t, &names, &n)) < 0)
		return r;
	for (i = 0; i < n; i++) {
		int gfd = spool_group_dir(t, names[i], 0);

		if (gfd < 0 || (r = spool_opendir(gfd, ".", &d)) < 0) {
			r = gfd < 0 ? gfd : r;
			if (gfd >= 0)
				close(gfd);
			break;
		}
		while ((de = readdir(d)) != NULL) {
			if (sscanf(de->d_name, "%" SCNu32 ".offse%c", &part,
			    &end) != 2 || end != 't')
				continue;
			k = spool_offset_read(gfd, part, &off, &seq);
			if (k == 0 && past_end(t, names[i], part, off, msg,
			    sizeof(msg))) {
				if (report != NULL)
					report(arg, msg);
				bad++;
			}
			if (k != -EBADMSG)
				continue;
			spool_offset_damaged(t, names[i], part);
			snprintf(msg, sizeof(msg), "%s (the group starts "
			    "there again from its start position)",
			    spool_errmsg(t->sp));
			if (report != NULL)
				report(arg, msg);
			bad++;
		}
		closedir(d);
		close(gfd);
	}
	for (i = 0; i < n; i++)
		free(names[i]);
	free(names);
	return r < 0 ? r : bad;
}

/* admin - take a group away from its members, or -EAGAIN while one lives */
static int
admin(struct spool_topic *t, const char *name, int *gfd)
{
	int fd;

	if ((*gfd = spool_group_dir(t, name, 0)) < 0)
		return *gfd;
	if ((fd = spool_group_lockat(*gfd, "lock", LOCK_EX | LOCK_NB)) < 0) {
		close(*gfd);
		return fd;
	}
	return fd;
}

/*
 * spool_group_reset - set every partition's committed offset of a group
 * to position to; -EAGAIN while a member is live
 */
int
spool_group_reset(struct spool_topic *t, const char *name,
    const struct spool_pos *to)
{
	struct spool_reader_opts o;
	struct spool_reader *r;
	struct spool_part_info pi;
	uint64_t off, seq;
	uint32_t p;
	int gfd, lfd, fd, s = 0;

	if ((lfd = admin(t, name, &gfd)) < 0)
		return lfd;
	for (p = 0; p < t->cfg.partitions && s == 0; p++) {
		memset(&o, 0, sizeof(o));
		o.partition = (int)p;
		o.start = *to;
		o.until.kind = SPOOL_POS_NONE;
		if ((s = spool_reader_open(t, &o, &r)) < 0)
			break;
		s = spool_reader_position(r, p, &off);
		spool_reader_close(r);
		if (s < 0 || (s = spool_part_bounds(t, p, &pi)) < 0)
			break;
		/* an offset past the end is the end, as Kafka clamps it */
		if (off > pi.next)
			off = pi.next;
		fd = -1;
		seq = 0;
		s = spool_offset_write(t->sp, gfd, &fd, p, &seq, off);
		/* a reset is an operator's act: make it stick */
		if (fd >= 0) {
			if (s == 0 && !t->sp->nosync && fdatasync(fd) == -1)
				s = -errno;
			close(fd);
		}
	}
	close(lfd);
	close(gfd);
	return s;
}

/* spool_group_delete - remove a group; -EAGAIN while a member is live */
int
spool_group_delete(struct spool_topic *t, const char *name)
{
	int gsfd, gfd, lfd, r;

	if ((lfd = admin(t, name, &gfd)) < 0)
		return lfd;
	if ((gsfd = spool_group_topdir(t, 0)) < 0) {
		r = gsfd;
	} else {
		r = spool_rmtree(gsfd, name);
		/* the group stays gone */
		if (r == 0)
			r = spool_sync_dir(t->sp, gsfd);
		close(gsfd);
	}
	close(lfd);
	close(gfd);
	return r;
}

/*
 * spool_group_store - set a group's committed offset of part (the group
 * made if new), durably; 0 without writing while a live member holds
 * the partition (its own commits win).  For mq-replicate.
 */
int
spool_group_store(struct spool_topic *t, const char *name, uint32_t part,
    uint64_t off)
{
	char lk[32];
	uint64_t seq = 0, cur;
	int gfd, fd = -1, r;

	if ((gfd = spool_group_dir(t, name, 1)) < 0)
		return gfd;
	snprintf(lk, sizeof(lk), "%" PRIu32 ".lock", part);
	if (spool_group_held(gfd, lk) ||
	    (spool_offset_read(gfd, part, &cur, &seq) == 0 && cur == off)) {
		close(gfd);
		return 0;
	}
	r = spool_offset_write(t->sp, gfd, &fd, part, &seq, off);
	/* a replica acknowledges what it stored: make it stick */
	if (fd >= 0) {
		if (r == 0 && !t->sp->nosync && fdatasync(fd) == -1)
			r = -errno;
		close(fd);
	}
	close(gfd);
	return r;
}

/*
 * spool_group_live - 1 while a member of the group runs (it holds the
 * group's lock shared), 0 when none does or there is no such group;
 * needs no write access
 */
int
spool_group_live(struct spool_topic *t, const char *name)
{
	int gfd, fd, r;

	if ((gfd = spool_group_dir(t, name, 0)) < 0)
		return gfd == -ENOENT ? 0 : gfd;
	fd = openat(gfd, "lock", O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	close(gfd);
	if (fd == -1)
		return errno == ENOENT ? 0 : -errno;
	while ((r = flock(fd, LOCK_EX | LOCK_NB)) == -1 && errno == EINTR)
		;
	r = r == 0 ? 0 : errno == EWOULDBLOCK ? 1 : -errno;
	close(fd);	/* and with it the probe's lock, if it got one */
	return r;
}
