/*
 * topic.c - topics: creation, deletion, listing, opening
 *
 * A topic is a directory topics/NAME holding its config file, a topic
 * lock and one directory a partition.  A topic appears whole or not at
 * all: it is built in tmp/, synced, and renamed into topics/ with
 * RENAME_NOREPLACE, so two processes creating it at once cannot both win
 * and no reader sees a half-made topic.  Deletion is the reverse rename
 * into tmp/ followed by removal, so the name disappears atomically.
 * The process that stages a topic in tmp/ holds a flock on the staged
 * directory until it is done; what a crash leaves there is unlocked, and
 * spool_tmp_gc removes it once it is old enough.
 *
 * Configuration changes are serialized by the topic lock and written by
 * atomic replacement; partitions may grow, never shrink.  Growth creates
 * the new partition directories before the config names them.  Loading
 * and changing the config is topic_config.c's, a partition's bounds
 * partition.c's.
 *
 * This module does not append or read messages (writer.c, reader.c),
 * nor check segments (verify.c), nor apply retention (retention.c).
 */

#include <sys/file.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <sys/types.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "spool_impl.h"

#define CONFIG_MAX	SPOOL_CONFIG_MAX
#define TMP_GRACE_MS	(60 * 60 * 1000)	/* age of a stage gc may remove */

/* spool_topic_name_ok - 1 to 249 of [A-Za-z0-9._-], not . or .. */
int
spool_topic_name_ok(const char *s)
{
	size_t n;

	if (s == NULL)
		return 0;
	n = strlen(s);
	if (n == 0 || n > SPOOL_NAME_MAX)
		return 0;
	if (strcmp(s, ".") == 0 || strcmp(s, "..") == 0)
		return 0;
	return strspn(s, "abcdefghijklmnopqrstuvwxyz"
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-") == n;
}

/* stage_name - a unique name under tmp/ */
static void
stage_name(char *buf, size_t len, const char *what)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	snprintf(buf, len, "%s.%ld.%lld.%ld", what, (long)getpid(),
	    (long long)ts.tv_sec, ts.tv_nsec);
}

/* open_tmp - the spool's staging directory */
static int
open_tmp(struct spool *sp)
{
	int fd;

	fd = openat(sp->dirfd, "tmp", O_RDONLY | O_DIRECTORY | O_NOFOLLOW |
	    O_CLOEXEC);
	if (fd == -1 && errno == ENOENT) {
		if (mkdirat(sp->dirfd, "tmp", 0775) == -1 && errno != EEXIST)
			return -errno;
		fd = openat(sp->dirfd, "tmp", O_RDONLY | O_DIRECTORY |
		    O_NOFOLLOW | O_CLOEXEC);
	}
	return fd == -1 ? -errno : fd;
}

/* spool_topic_create - make a topic with cfg (NULL: defaults) */
int
spool_topic_create(struct spool *sp, const char *name,
    const struct spool_config *cfg)
{
	struct spool_config def;
	char stage[96], text[CONFIG_MAX];
	uint32_t i;
	int tmpfd = -1, tfd = -1, r, n;

	if (!spool_topic_name_ok(name))
		return -EINVAL;
	if (cfg == NULL) {
		spool_config_default(&def);
		cfg = &def;
	}
	if ((r = spool_topics_dir(sp, 1)) < 0)
		return r;
	if ((tmpfd = open_tmp(sp)) < 0)
		return tmpfd;
	stage_name(stage, sizeof(stage), "new");
	if (mkdirat(tmpfd, stage, 0775) == -1) {
		r = -errno;
		goto out;
	}
	tfd = openat(tmpfd, stage, O_RDONLY | O_DIRECTORY | O_NOFOLLOW |
	    O_CLOEXEC);
	if (tfd == -1) {
		r = -errno;
		goto fail;
	}
	/* ours until published: spool_tmp_gc leaves a locked stage alone */
	if (flock(tfd, LOCK_EX) == -1) {
		r = -errno;
		goto fail;
	}
	/* a crash leaves the stage where gc finds it, not an orphan inode */
	if ((r = spool_sync_dir(sp, tmpfd)) < 0)
		goto fail;
	if ((n = spool_config_format(cfg, text, sizeof(text))) < 0) {
		r = n;
		goto fail;
	}
	if ((r = spool_write_file(tfd, SPOOL_CONFIG_NAME, text, n,
	    !sp->nosync)) < 0)
		goto fail;
	if ((r = spool_touch(tfd, SPOOL_LOCK_NAME)) < 0)
		goto fail;
	for (i = 0; i < cfg->partitions; i++)
		if ((r = spool_part_make(sp, tfd, i)) < 0)
			goto fail;
	if ((r = spool_sync_dir(sp, tfd)) < 0)
		goto fail;
	/* publish the topic whole; an existing one is never replaced */
	if (renameat2(tmpfd, stage, sp->topicsfd, name, RENAME_NOREPLACE) == -1) {
		r = errno == ENOTEMPTY ? -EEXIST : -errno;
		goto fail;
	}
	/* and make the new name durable */
	r = spool_sync_dir(sp, sp->topicsfd);
	goto out;
fail:
	(void)spool_rmtree(tmpfd, stage);
out:
	if (tfd >= 0)
		close(tfd);
	close(tmpfd);
	return r;
}

/* spool_topic_delete - remove a topic and everything in it */
int
spool_topic_delete(struct spool *sp, const char *name)
{
	char stage[96];
	int tmpfd, dfd, r;

	if (!spool_topic_name_ok(name))
		return -EINVAL;
	if (sp->topicsfd < 0)
		return -ENOENT;
	if ((tmpfd = open_tmp(sp)) < 0)
		return tmpfd;
	/* held until the files are gone: spool_tmp_gc leaves them to us */
	dfd = openat(sp->topicsfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW |
	    O_CLOEXEC);
	if (dfd >= 0 && flock(dfd, LOCK_EX) == -1) {
		r = -errno;
		goto out;
	}
	stage_name(stage, sizeof(stage), "del");
	/* the name goes away at once; the files after it */
	if (renameat(sp->topicsfd, name, tmpfd, stage) == -1) {
		r = -errno;
		goto out;
	}
	r = spool_sync_dir(sp, sp->topicsfd);
	/* and it is in tmp/, where gc finishes the removal after a crash */
	if (r == 0)
		r = spool_sync_dir(sp, tmpfd);
	if (r == 0)
		r = spool_rmtree(tmpfd, stage);
out:
	if (dfd >= 0)
		close(dfd);
	close(tmpfd);
	return r;
}

/* stage_time - the creation time in a stage name, ms; -1 if not one */
static int64_t
stage_time(const char *name)
{
	long long pid, sec, nsec;
	char kind[4], end;

	if (sscanf(name, "%3[a-z].%lld.%lld.%lld%c", kind, &pid, &sec, &nsec,
	    &end) != 4 || (strcmp(kind, "new") != 0 && strcmp(kind, "del") != 0))
		return -1;
	if (sec < 0 || sec > INT64_MAX / 1000 - 1 || nsec < 0 ||
	    nsec >= 1000000000)
		return -1;
	return (int64_t)sec * 1000 + nsec / 1000000;
}

/*
 * spool_tmp_gc - remove what crashed creations and deletions of topics
 * left in SPOOL/tmp: a stage (new.* or del.*) that nobody holds locked,
 * made and last changed more than TMP_GRACE_MS before now; anything else
 * in tmp/ stays.  Returns the number removed.
 */
int
spool_tmp_gc(struct spool *sp, int64_t now,
    void (*report)(void *, const char *), void *arg)
{
	struct dirent *de;
	struct stat st;
	char msg[320];
	int64_t made, changed;
	DIR *d;
	int tmpfd, fd, r = 0, removed = 0;

	tmpfd = openat(sp->dirfd, "tmp", O_RDONLY | O_DIRECTORY | O_NOFOLLOW |
	    O_CLOEXEC);
	if (tmpfd == -1)
		return errno == ENOENT ? 0 : -errno;
	if ((r = spool_opendir(tmpfd, ".", &d)) < 0) {
		close(tmpfd);
		return r;
	}
	while (r == 0 && (de = readdir(d)) != NULL) {
		if ((made = stage_time(de->d_name)) < 0)
			continue;
		fd = openat(tmpfd, de->d_name, O_RDONLY | O_DIRECTORY |
		    O_NOFOLLOW | O_CLOEXEC);
		if (fd == -1)
			continue;	/* gone meanwhile, or not a directory */
		/* locked: a creation or deletion at work right now */
		if (flock(fd, LOCK_EX | LOCK_NB) == -1) {
			if (errno != EWOULDBLOCK)
				r = -errno;
			close(fd);
			continue;
		}
		/* unlocked but young: perhaps made a moment before its lock */
		if (fstat(fd, &st) == -1) {
			r = -errno;
			close(fd);
			break;
		}
		changed = (int64_t)st.st_mtim.tv_sec * 1000 +
		    st.st_mtim.tv_nsec / 1000000;
		if (made > now - TMP_GRACE_MS || changed > now - TMP_GRACE_MS) {
			close(fd);
			continue;
		}
		r = spool_rmtree(tmpfd, de->d_name);
		close(fd);
		if (r < 0)
			break;
		removed++;
		if (report != NULL) {
			snprintf(msg, sizeof(msg), "tmp/%s: removed (left by a "
			    "crash)", de->d_name);
			report(arg, msg);
		}
	}
	closedir(d);
	/* the removals must not come back after a crash */
	if (r == 0 && removed > 0)
		r = spool_sync_dir(sp, tmpfd);
	close(tmpfd);
	return r < 0 ? r : removed;
}

/* topic_entry - a directory entry that may be a topic */
static int
topic_entry(const struct dirent *de, void *arg)
{
	return spool_topic_name_ok(de->d_name) &&
	    (de->d_type == DT_DIR || de->d_type == DT_UNKNOWN);
}

/* spool_topic_list - the topic names, sorted; free each and the array */
int
spool_topic_list(struct spool *sp, char ***names, size_t *np)
{
	DIR *d;
	int r;

	*names = NULL;
	*np = 0;
	if (sp->topicsfd < 0)
		return 0;
	if ((r = spool_opendir(sp->topicsfd, ".", &d)) < 0)
		return r;
	return spool_dir_names(d, topic_entry, NULL, names, np);
}

/* spool_topic_open - open an existing topic */
int
spool_topic_open(struct spool *sp, const char *name, struct spool_topic **tp)
{
	struct spool_topic *t;
	int r;

	if (!spool_topic_name_ok(name))
		return -EINVAL;
	if (sp->topicsfd < 0 && (r = spool_topics_dir(sp, 0)) < 0)
		return r;
	if ((t = calloc(1, sizeof(*t))) == NULL)
		return -ENOMEM;
	t->sp = sp;
	t->dirfd = openat(sp->topicsfd, name, O_RDONLY | O_DIRECTORY |
	    O_NOFOLLOW | O_CLOEXEC);
	if (t->dirfd == -1) {
		r = errno == ELOOP ? -ENOENT : -errno;
		free(t);
		return r;
	}
	if ((t->name = strdup(name)) == NULL) {
		spool_topic_close(t);
		return -ENOMEM;
	}
	if ((r = spool_topic_config_load(t)) < 0) {
		spool_topic_close(t);
		return r;
	}
	*tp = t;
	return 0;
}

/*
 * spool_topic_exists - whether topics/name is a directory: 1 for a topic
 * or for a directory that is none (spool_topic_open says -ENOENT, it has
 * no config), 0 if nothing of that name is there, -errno
 */
int
spool_topic_exists(struct spool *sp, const char *name)
{
	struct stat st;
	int r;

	if (!spool_topic_name_ok(name))
		return -EINVAL;
	if (sp->topicsfd < 0 && (r = spool_topics_dir(sp, 0)) < 0)
		return r == -ENOENT ? 0 : r;
	if (fstatat(sp->topicsfd, name, &st, AT_SYMLINK_NOFOLLOW) == -1)
		return errno == ENOENT ? 0 : -errno;
	return S_ISDIR(st.st_mode);
}

/* spool_topic_close - release a topic handle */
void
spool_topic_close(struct spool_topic *t)
{
	if (t == NULL)
		return;
	if (t->dirfd >= 0)
		close(t->dirfd);
	free(t->name);
	free(t);
}

/*
 * spool_topic_wait - open topic name, waiting for it to be created if
 * it is missing (inotify on the spool and its topics directory, not
 * polling): 0 and *tp, -ETIMEDOUT after timeout_ms (<0: for ever),
 * -EINTR on a signal or the spool's stop descriptor, -errno
 */
int
spool_topic_wait(struct spool *sp, const char *name, int timeout_ms,
    struct spool_topic **tp)
{
	char buf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
	int64_t until = timeout_ms < 0 ? INT64_MAX : spool_now_ms() + timeout_ms;
	int ifd, r, left;

	if ((r = spool_topic_open(sp, name, tp)) != -ENOENT)
		return r;
	if ((ifd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC)) == -1)
		return -errno;
	for (;;) {
		/*
		 * Watch before looking again, so that a topic made between
		 * the look and the wait still wakes us: topics/ gets the
		 * rename of a new topic, the spool gets topics/ itself
		 */
		if (spool_watch(ifd, sp->dirfd, IN_CREATE | IN_MOVED_TO |
		    IN_ONLYDIR) == -1 || (spool_topics_dir(sp, 0) == 0 &&
		    spool_watch(ifd, sp->topicsfd, IN_CREATE | IN_MOVED_TO |
		    IN_ONLYDIR) == -1)) {
			r = -errno;
			break;
		}
		if ((r = spool_topic_open(sp, name, tp)) != -ENOENT)
			break;
		left = until == INT64_MAX ? -1 : (int)(until - spool_now_ms());
		if (until != INT64_MAX && left <= 0) {
			r = -ETIMEDOUT;
			break;
		}
		if ((r = spool_wait_fd(sp, ifd, left)) < 0)
			break;
		while (read(ifd, buf, sizeof(buf)) > 0)
			;
	}
	close(ifd);
	return r;
}
