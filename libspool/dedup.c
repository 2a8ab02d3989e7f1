/*
 * dedup.c - idempotent sends: a send with an ID is stored once per
 * dedup window
 *
 * A topic's ids/ directory holds a marker a send ID, named by the hex of
 * the ID and holding the time it was stored.  A send with an ID takes
 * ids/lock, looks for the marker, and when one younger than
 * dedup.window.ms is there, stores nothing; otherwise it stores its
 * messages, syncs them, and only then writes the marker (replaced
 * atomically, synced) and lets the lock go.  So concurrent sends of one
 * ID are serialized, and a marker never stands for messages that are not
 * on disk.  The messages carry the ID in their records as well.
 *
 * What this does not do: a send killed after its messages were synced
 * and before its marker was written leaves no marker, and its retry
 * stores the messages a second time.  The window is the time between
 * the last fsync of the data and the rename of the marker.
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

/* marker_name - ids/ file name of an ID: its bytes in hex */
static void
marker_name(char *buf, const void *id, size_t len)
{
	static const char hex[] = "0123456789abcdef";
	const unsigned char *p = id;
	size_t i;

	for (i = 0; i < len; i++) {
		buf[2 * i] = hex[p[i] >> 4];
		buf[2 * i + 1] = hex[p[i] & 15];
	}
	buf[2 * len] = '\0';
}

/* open_ids - topics/T/ids/, made (and made durable) on first use */
static int
open_ids(struct spool_topic *t)
{
	int fd;

	if (mkdirat(t->dirfd, "ids", 0775) == 0)
		(void)spool_sync_dir(t->sp, t->dirfd);
	else if (errno != EEXIST)
		return -errno;
	fd = openat(t->dirfd, "ids", O_RDONLY | O_DIRECTORY | O_NOFOLLOW |
	    O_CLOEXEC);
	return fd == -1 ? -errno : fd;
}

/* marker_time - when the ID's messages were stored; -ENOENT if never */
static int
marker_time(int idsfd, const char *name, int64_t *ts)
{
	char text[32];
	char *end;
	int r;

	if ((r = spool_read_file(idsfd, name, text, sizeof(text))) < 0)
		return r;
	*ts = strtoll(text, &end, 10);
	return end == text ? -ENOENT : 0;
}

/*
 * spool_dedup_begin - lock the topic's IDs and say whether id was stored
 * within the dedup window; returns the lock (for spool_dedup_end) or
 * -errno.  -EINVAL: an empty ID or one over SPOOL_ID_MAX bytes.
 */
int
spool_dedup_begin(struct spool_topic *t, const void *id, size_t len,
    int *seen)
{
	char name[2 * SPOOL_ID_MAX + 1];
	int64_t ts;
	int idsfd, lfd;

	*seen = 0;
	if (len == 0 || len > SPOOL_ID_MAX)
		return -EINVAL;
	if ((idsfd = open_ids(t)) < 0)
		return idsfd;
	lfd = openat(idsfd, SPOOL_LOCK_NAME, O_RDWR | O_CREAT | O_NOFOLLOW |
	    O_CLOEXEC, 0664);
	if (lfd == -1) {
		lfd = -errno;
		close(idsfd);
		return lfd;
	}
	/* sends of the same topic with IDs take turns here */
	while (flock(lfd, LOCK_EX) == -1)
		if (errno != EINTR) {
			int e = -errno;

			close(lfd);
			close(idsfd);
			return e;
		}
	marker_name(name, id, len);
	if (marker_time(idsfd, name, &ts) == 0 &&
	    ts >= spool_now_ms() - t->cfg.dedup_window_ms)
		*seen = 1;
	close(idsfd);
	return lfd;
}

/*
 * spool_dedup_end - after the messages are stored (and synced, if sync):
 * write the marker, then let the lock go
 */
int
spool_dedup_end(struct spool_topic *t, const void *id, size_t len, int lfd,
    int sync)
{
	char name[2 * SPOOL_ID_MAX + 1], text[32];
	int idsfd, r, n;

	if ((idsfd = open_ids(t)) < 0) {
		close(lfd);
		return idsfd;
	}
	marker_name(name, id, len);
	n = snprintf(text, sizeof(text), "%" PRId64 "\n", spool_now_ms());
	r = spool_write_file(idsfd, name, text, n, sync);
	close(idsfd);
	close(lfd);	/* the lock goes with it */
	return r;
}

/* spool_dedup_gc - remove the markers older than the dedup window */
int
spool_dedup_gc(struct spool_topic *t, int64_t now)
{
	struct dirent *de;
	DIR *d;
	int64_t ts;
	int idsfd, lfd, r, n = 0;

	if ((r = spool_opendir(t->dirfd, "ids", &d)) < 0)
		return r == -ENOENT ? 0 : r;
	idsfd = dirfd(d);
	/* not while a send is between its check and its marker */
	lfd = openat(idsfd, SPOOL_LOCK_NAME, O_RDWR | O_CREAT | O_NOFOLLOW |
	    O_CLOEXEC, 0664);
	if (lfd >= 0)
		while (flock(lfd, LOCK_EX) == -1 && errno == EINTR)
			;
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.' || strcmp(de->d_name, "lock") == 0 ||
		    strchr(de->d_name, '.') != NULL)
			continue;
		if (marker_time(idsfd, de->d_name, &ts) == 0 &&
		    ts < now - t->cfg.dedup_window_ms &&
		    unlinkat(idsfd, de->d_name, 0) == 0)
			n++;
	}
	if (lfd >= 0)
		close(lfd);
	closedir(d);
	return n;
}
