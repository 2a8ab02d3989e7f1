/*
 * repl_admit.c - what the receiver settles before any data: may this
 * spool receive from the sender, and the topic configs it takes over
 *
 * A spool may receive from a source if it is a replica of that source,
 * or holds no batch; a replica of another spool or a primary holding
 * data only with --demote (never the source itself).  Becoming a
 * replica, it first keeps its own scheduled messages aside in
 * SPOOL/diverged/ (never drops them), then records the source's identity
 * (repl_role.c).  A topic's config is made the source's, growing only
 * (spool_topic_config_update refuses what may not change).  Before each
 * write a session checks again that the spool is still the sender's
 * replica (repl_still_replica): a promotion stops a running follower.
 * The check is made under a lock the promotion takes after it marks the
 * spool: a partition's lock for a partition's data, the role lock
 * (repl_hold) for everything else.  The contract of replication is at
 * the top of repl_send.c.  It never prints (opts.report does).
 */

#include <sys/file.h>
#include <sys/inotify.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/types.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "repl.h"

/*
 * has_files - whether the directory rel of at holds a file, at most
 * depth directories down (a scheduled message's bucket, a transaction's
 * directory); a missing one holds none, and a lock file or done/ (the
 * transactions settled) is no data
 */
static int
has_files(int at, const char *rel, int depth)
{
	struct dirent *de;
	struct stat st;
	DIR *d;
	int fd, dir, found = 0;

	if ((fd = openat(at, rel, O_RDONLY | O_DIRECTORY | O_NOFOLLOW |
	    O_CLOEXEC)) == -1)
		return 0;
	if ((d = fdopendir(fd)) == NULL) {
		close(fd);
		return 0;
	}
	while (!found && (de = readdir(d)) != NULL) {
		if (strcmp(de->d_name, ".") == 0 ||
		    strcmp(de->d_name, "..") == 0 ||
		    strcmp(de->d_name, SPOOL_LOCK_NAME) == 0 ||
		    strcmp(de->d_name, "done") == 0)
			continue;
		dir = de->d_type == DT_DIR;
		if (de->d_type == DT_UNKNOWN)
			dir = fstatat(dirfd(d), de->d_name, &st,
			    AT_SYMLINK_NOFOLLOW) == 0 && S_ISDIR(st.st_mode);
		if (!dir)
			found = 1;
		else if (depth > 0)
			found = has_files(dirfd(d), de->d_name, depth - 1);
	}
	closedir(d);
	return found;
}

/*
 * holds_data - whether any partition of the spool holds a batch, or any
 * topic a scheduled message or a transaction's messages
 */
static int
holds_data(struct spool *sp)
{
	struct spool_topic *t;
	struct spool_part_info pi;
	char **names;
	size_t n, i;
	uint32_t p;
	int r, found = 0;

	if ((r = spool_topic_list(sp, &names, &n)) < 0)
		return r;
	for (i = 0; i < n; i++) {
		char rel[SPOOL_NAME_MAX + 16];

		snprintf(rel, sizeof(rel), "%s/scheduled", names[i]);
		if (!found && has_files(sp->topicsfd, rel, 1))
			found = 1;
		snprintf(rel, sizeof(rel), "%s/txn", names[i]);
		if (!found && has_files(sp->topicsfd, rel, 1))
			found = 1;
		if (!found && spool_topic_open(sp, names[i], &t) == 0) {
			for (p = 0; p < t->cfg.partitions && !found; p++)
				if (spool_part_bounds(t, p, &pi) == 0 &&
				    (pi.bytes > 0 || pi.segments > 1))
					found = 1;
			spool_topic_close(t);
		}
		free(names[i]);
	}
	free(names);
	return found;
}

/*
 * sched_aside - a spool about to become a replica of this source keeps
 * its own scheduled messages aside, never drops them: each topic's
 * scheduled/ becomes SPOOL/diverged/TOPIC.scheduled.MS (batch files as
 * mq-spool(5) describes them), and the source's are copied afresh
 */
static int
sched_aside(struct sess *s)
{
	char **names, name[SPOOL_NAME_MAX + 48], rel[SPOOL_NAME_MAX + 16];
	size_t n, i;
	int r, dfd = -1, moved = 0;

	if (s->sp->topicsfd < 0)
		return 0;
	if ((r = spool_topic_list(s->sp, &names, &n)) < 0)
		return r;
	for (i = 0; i < n && r == 0; i++) {
		snprintf(rel, sizeof(rel), "%s/scheduled", names[i]);
		if (faccessat(s->sp->topicsfd, rel, F_OK,
		    AT_SYMLINK_NOFOLLOW) != 0)
			continue;
		if (dfd < 0) {
			if (mkdirat(s->sp->dirfd, ASIDE_DIR, 0775) == 0 &&
			    spool_fsync_dir(s->sp->dirfd) < 0)
				r = -errno;
			if (r == 0 && (dfd = openat(s->sp->dirfd, ASIDE_DIR,
			    O_RDONLY | O_DIRECTORY | O_NOFOLLOW |
			    O_CLOEXEC)) == -1)
				r = -errno;
			if (r < 0)
				break;
		}
		snprintf(name, sizeof(name), "%s.scheduled.%" PRId64, names[i],
		    spool_now_ms());
		if (renameat(s->sp->topicsfd, rel, dfd, name) == -1) {
			r = -errno;
			break;
		}
		moved++;
		repl_report(s, SPOOL_REPORT_ALWAYS, "%s: its own scheduled "
		    "messages kept in "
		    "%s/%s/%s", names[i], s->path, ASIDE_DIR, name);
	}
	for (i = 0; i < n; i++)
		free(names[i]);
	free(names);
	/* both names must stick before the source's files come in */
	if (r == 0 && moved > 0 && (spool_fsync_dir(dfd) < 0 ||
	    spool_fsync_dir(s->sp->topicsfd) < 0))
		r = -errno;
	if (dfd >= 0)
		close(dfd);
	return r;
}

/*
 * check_role - may this spool receive from the sender?  A replica of it,
 * or an empty spool, yes; a primary holding data only with --demote.
 */
int
repl_check_role(struct sess *s)
{
	char src[64];
	int r, demote = (s->flags & SPOOL_REPL_DEMOTE) != 0;

	if (s->peer_id[0] != '\0' && strcmp(s->peer_id, s->id) == 0)
		return repl_fail(s, -SPOOL_EROLE, "%s: source and destination "
		    "are the same spool", s->path);
	if ((r = spool_replica_of(s->sp, src, sizeof(src))) < 0)
		return repl_fail(s, r, "%s/replica: %s", s->path, strerror(-r));
	if (r == 1 && strcmp(src, s->peer_id) == 0)
		return 0;
	if (r == 1 && !demote)
		return repl_fail(s, -SPOOL_EROLE, "%s is a replica of another "
		    "spool (%s); --demote makes it a replica of this source",
		    s->path, src);
	if (r == 0 && !demote) {
		if ((r = holds_data(s->sp)) < 0)
			return repl_fail(s, r, "%s: %s", s->path, strerror(-r));
		if (r)
			return repl_fail(s, -SPOOL_EROLE, "%s is a primary "
			    "holding data: refusing to replicate over it (are "
			    "SRC and DST swapped?); --demote makes it a "
			    "replica",
			    s->path);
	}
	if (s->flags & SPOOL_REPL_DRYRUN)
		return 0;
	if ((r = sched_aside(s)) < 0)
		return repl_fail(s, r, "%s/%s: %s", s->path, ASIDE_DIR,
		    strerror(-r));
	if ((r = repl_mark_replica(s->sp, s->peer_id)) < 0)
		return repl_fail(s, r, "%s/replica: %s", s->path, strerror(-r));
	s->made = 0;	/* a replica now: a failure later leaves it be */
	repl_report(s, 1, "%s: now a replica of %s", s->path, s->peer_id);
	return 0;
}

/*
 * repl_still_replica - before it writes, is this spool still a replica
 * of the sender?  A --promote (or a --demote to another source) while a
 * follower runs ends the follower's session (-SPOOL_EROLE): it never
 * writes into, or cuts back, a primary.  Called with the partition lock
 * held before a partition is written, the check cannot miss a write the
 * new primary made there: mq-send refuses a replica, so any write it
 * makes comes after the promotion, and under that lock.
 */
int
repl_still_replica(struct sess *s)
{
	char src[64];
	int r;

	if (s->flags & SPOOL_REPL_DRYRUN)
		return 0;
	if ((r = spool_replica_of(s->sp, src, sizeof(src))) < 0)
		return repl_fail(s, r, "%s/replica: %s", s->path, strerror(-r));
	if (r == 1 && strcmp(src, s->peer_id) == 0)
		return 0;
	return repl_fail(s, -SPOOL_EROLE, "%s is no longer a replica of the "
	    "source (promoted while this run copied into it): stopping, "
	    "nothing more written there", s->path);
}

/*
 * repl_hold - take the role lock (SPOOL/lock) shared, then check that
 * the spool is still the sender's replica; for a write no partition
 * lock covers (a topic, its config, group offsets, scheduled files).  A
 * promotion marks the spool first and takes the lock exclusive after
 * (spool_promote), so such a write either ends before the promotion
 * goes on or sees the mark and is never made.  Not to be held while
 * waiting on the peer: a promotion would wait as long.  *fd for
 * repl_let_go; -1 in a dry run, which writes nothing.
 */
int
repl_hold(struct sess *s, int *fd)
{
	int r;

	*fd = -1;
	if (s->flags & SPOOL_REPL_DRYRUN)
		return 0;
	if ((r = spool_lock_file(s->sp->dirfd, LOCK_SH)) < 0)
		return repl_fail(s, r, "%s/%s: %s", s->path, SPOOL_LOCK_NAME,
		    strerror(-r));
	*fd = r;
	if ((r = repl_still_replica(s)) < 0) {
		repl_let_go(*fd);
		*fd = -1;
	}
	return r;
}

/* repl_let_go - let go of the role lock repl_hold took, if it did */
void
repl_let_go(int fd)
{
	if (fd >= 0)
		close(fd);
}

/* config_apply - make topic t's config the source's text (growing only) */
int
repl_config_apply(struct sess *s, struct spool_topic *t, const char *text)
{
	char mine[CONFIG_TEXT], copy[CONFIG_TEXT], *kv[32], *line, *save = NULL;
	size_t n = 0;
	int r;

	if (spool_config_format(&t->cfg, mine, sizeof(mine)) < 0 ||
	    strcmp(mine, text) == 0)
		return 0;
	snprintf(copy, sizeof(copy), "%s", text);
	for (line = strtok_r(copy, "\n", &save); line != NULL && n < 32;
	    line = strtok_r(NULL, "\n", &save))
		if (strchr(line, '=') != NULL)
			kv[n++] = line;
	if ((r = spool_topic_config_update(t, (const char *const *)kv,
	    n)) < 0)
		return repl_fail(s, r, "%s: config from the source: %s",
		    t->name, spool_errmsg(s->sp));
	repl_report(s, 1, "%s: config updated", t->name);
	return 0;
}
