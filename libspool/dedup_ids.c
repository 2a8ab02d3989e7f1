/*
 * dedup_ids.c - every send ID marker of a topic at once: removing the
 * ones past the dedup window (gc), reporting damaged ones (verify), and
 * the lowest offset a pending send may have stored at, which
 * compaction must keep (dedup.c describes the markers)
 *
 * gc takes ids/lock, so that no send is between its check and its
 * marker; a damaged marker is never removed, only reported.  What this
 * does not do: it reads no message, and verify and pending_from take
 * no lock (a marker gone since the listing is passed over).
 */

#include <sys/file.h>

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "spool_impl.h"
#include "dedup.h"

/*
 * marker_ts - the time of a marker (stored or pending); -EBADMSG for
 * damage, -errno
 */
static int
marker_ts(int idsfd, const char *name, int64_t *ts)
{
	char *text;
	uint64_t *starts;
	size_t n;
	int r;

	text = malloc(MARKER_MAX);
	starts = calloc(SPOOL_PART_MAX, sizeof(*starts));
	if (text == NULL || starts == NULL)
		r = -ENOMEM;
	else if ((r = spool_read_file(idsfd, name, text, MARKER_MAX)) >= 0 ||
	    r == -EFBIG)
		r = r == -EFBIG ? -EBADMSG : spool_dedup_parse(text, ts, starts,
		    &n);
	free(text);
	free(starts);
	return r < 0 ? r : 0;
}

/* is_marker - whether an ids/ entry is a marker (not the lock, a temp) */
static int
is_marker(const char *name)
{
	return name[0] != '.' && strcmp(name, SPOOL_LOCK_NAME) != 0 &&
	    strchr(name, '.') == NULL;
}

/*
 * spool_dedup_pending_from - the lowest offset of partition part at or
 * after which a pending send (one its retry may finish) may have stored
 * records, in *off (UINT64_MAX: none).  A retry finds what was stored
 * by reading from there, so compaction must keep everything from there.
 * A damaged marker is passed over (verify reports it).
 */
int
spool_dedup_pending_from(struct spool_topic *t, uint32_t part, uint64_t *off)
{
	struct dirent *de;
	uint64_t *starts;
	char *text;
	size_t n;
	DIR *d;
	int64_t ts;
	int r;

	*off = UINT64_MAX;
	if ((r = spool_opendir(t->dirfd, "ids", &d)) < 0)
		return r == -ENOENT ? 0 : r;
	text = malloc(MARKER_MAX);
	starts = calloc(SPOOL_PART_MAX, sizeof(*starts));
	r = text == NULL || starts == NULL ? -ENOMEM : 0;
	while (r == 0 && (de = readdir(d)) != NULL) {
		if (!is_marker(de->d_name) ||
		    spool_read_file(dirfd(d), de->d_name, text, MARKER_MAX) < 0 ||
		    spool_dedup_parse(text, &ts, starts, &n) != 2)
			continue;
		if (part < n && starts[part] < *off)
			*off = starts[part];
	}
	free(text);
	free(starts);
	closedir(d);
	return r;
}

/*
 * spool_dedup_gc - remove the markers older than the dedup window (a
 * damaged one stays, for verify to report); returns how many
 */
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
	if ((lfd = spool_lock_file(idsfd, LOCK_EX)) < 0) {
		closedir(d);
		return lfd;
	}
	while ((de = readdir(d)) != NULL) {
		if (!is_marker(de->d_name))
			continue;
		if (marker_ts(idsfd, de->d_name, &ts) == 0 &&
		    ts < now - t->cfg.dedup_window_ms &&
		    unlinkat(idsfd, de->d_name, 0) == 0)
			n++;
	}
	close(lfd);
	closedir(d);
	return n;
}

/*
 * spool_dedup_verify - report each damaged marker; returns how many, or
 * -errno.  Reads only, takes no lock.
 */
int
spool_dedup_verify(struct spool_topic *t, void (*report)(void *,
    const char *), void *arg)
{
	struct dirent *de;
	char msg[SPOOL_ERRMSG_MAX];
	DIR *d;
	int64_t ts;
	int r, bad = 0;

	if ((r = spool_opendir(t->dirfd, "ids", &d)) < 0)
		return r == -ENOENT ? 0 : r;
	while ((de = readdir(d)) != NULL) {
		if (!is_marker(de->d_name))
			continue;
		/* -ENOENT: gone since readdir */
		if ((r = marker_ts(dirfd(d), de->d_name, &ts)) == 0 ||
		    r == -ENOENT) {
			r = 0;
			continue;
		}
		if (r != -EBADMSG)
			break;
		r = 0;
		snprintf(msg, sizeof(msg), "%s/topics/%s/ids/%s: damaged: not "
		    "a send ID marker (a send of that ID looks for it in the "
		    "stored messages)", t->sp->path, t->name, de->d_name);
		if (report != NULL)
			report(arg, msg);
		bad++;
	}
	closedir(d);
	return r < 0 ? r : bad;
}
