/*
 * dedup.c - idempotent sends: a send with an ID is stored once per
 * dedup window, whatever point a crash cut an earlier attempt at
 *
 * A topic's ids/ directory holds a marker a send ID, named by the hex of
 * the ID.  A send with an ID takes ids/lock (exclusive, for the whole
 * send, so sends of one topic with IDs take turns) and reads the marker:
 *
 *	T			stored at time T (ms): within
 *				dedup.window.ms of T, store nothing
 *	pending T S0 S1 ...	an attempt began at T and may have stored
 *				any part of its messages, each at or after
 *				offset Sp of partition p (its next offset
 *				when the attempt began)
 *
 * With no marker (or one older than the window) it writes a pending
 * marker, made durable before any message is written, then stores its
 * messages, syncs them, and only then replaces the marker with "T".  The
 * messages carry the ID in their records (attrs bit 1).  So after a crash
 * at any point either there is no marker and nothing was stored, or
 * there is a pending marker and the stored part is found by reading
 * the scheduled batches stored since a window before T (a delayed send's;
 * an earlier send of the ID stored its own before that) and every
 * partition from Sp on (a keyless send may have used any one) up to
 * where it was when the scheduled store was read under scheduled/lock
 * (find_sched: no batch moved between the two is missed or found twice),
 * for records with the ID: the retry skips each message it finds stored
 * (matched by key, headers and payload, as many times as it is found)
 * and stores the rest.  A retry with the same messages stores each
 * exactly once, however the first attempt ended.
 *
 * A marker that is neither form is damage: the send warns, reads every
 * retained record for the ID (only records stamped within the window
 * count) and goes on as a retry; verify reports it.
 *
 * This file owns a send's part: the marker of one ID, the lock, what
 * the retry skips; dedup_search.c the search for what an earlier
 * attempt stored.  dedup_ids.c looks over
 * every marker at once (expiry, verify, the offsets compaction keeps);
 * the marker's format is shared through dedup.h.
 *
 * What this does not do: tell apart two identical messages (same key,
 * headers and payload) of one send, other than by counting them; find
 * records with the ID written by a send that did not take the lock
 * (mq-send -J lines with their own "id" and no --id); keep a window
 * across the removal of the marker by hand.  With SPOOL_NOSYNC nothing
 * is synced and a power loss may undo any of this.
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
#include "dedup.h"
#include "dedup_search.h"

/* spool_dedup_marker_name - ids/ file name of an ID: its bytes in hex */
void
spool_dedup_marker_name(char *buf, const void *id, size_t len)
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

/* spool_dedup_open_ids - topics/T/ids/, made (and durable) on first use */
int
spool_dedup_open_ids(struct spool_topic *t, int create)
{
	int fd, r;

	/* markers in a directory that vanishes in a crash mean nothing */
	if (create && mkdirat(t->dirfd, "ids", 0775) == 0) {
		if ((r = spool_sync_dir(t->sp, t->dirfd)) < 0)
			return r;
	} else if (create && errno != EEXIST)
		return -errno;
	fd = openat(t->dirfd, "ids", O_RDONLY | O_DIRECTORY | O_NOFOLLOW |
	    O_CLOEXEC);
	return fd == -1 ? -errno : fd;
}

/*
 * spool_dedup_parse - read marker text: 1 with *ts for a stored send, 2 with
 * *ts and starts[0..*nstarts) for a pending one, -EBADMSG for neither
 */
int
spool_dedup_parse(char *text, int64_t *ts, uint64_t *starts, size_t *nstarts)
{
	char *p = text, *end;
	int pending = 0;

	*nstarts = 0;
	if (strncmp(p, "pending ", 8) == 0) {
		pending = 1;
		p += 8;
	}
	if (*p < '0' || *p > '9')
		return -EBADMSG;
	*ts = strtoll(p, &end, 10);
	for (p = end; pending && *p == ' '; p = end) {
		if (p[1] < '0' || p[1] > '9' || *nstarts == SPOOL_PART_MAX)
			return -EBADMSG;
		starts[(*nstarts)++] = strtoull(p + 1, &end, 10);
	}
	return strcmp(p, "\n") == 0 ? 1 + pending : -EBADMSG;
}

/*
 * pending - write the pending marker: now, and each partition's next
 * offset (no message of this send can come before it; an earlier send of
 * the ID, past its window, is before it), or 0 everywhere when an
 * earlier attempt may have stored anywhere
 */
static int
pending(struct spool_dedup *d, int idsfd, char *text, int anywhere)
{
	struct spool_part_info pi;
	uint32_t p;
	size_t n;
	int r;

	n = (size_t)sprintf(text, "pending %" PRId64, spool_now_ms());
	for (p = 0; p < d->t->cfg.partitions; p++) {
		/*
		 * A damaged newest segment leaves pi.next at its first
		 * offset: earlier than the end, so still a bound.
		 */
		if ((r = spool_part_bounds(d->t, p, &pi)) < 0 &&
		    pi.segments == 0)
			return r;
		n += (size_t)sprintf(text + n, " %" PRIu64,
		    anywhere ? 0 : pi.next);
	}
	text[n++] = '\n';
	/* durable before any message of the send is written */
	return spool_write_file(idsfd, d->name, text, n, !d->t->sp->nosync);
}

/*
 * spool_dedup_begin - lock the topic's IDs and find out what an earlier
 * send of id stored: *state is SPOOL_DEDUP_SEEN (stored within the
 * window: store nothing), _NEW, _RETRY (an attempt was cut short: skip
 * what spool_dedup_stored says it stored) or _DAMAGED (the marker was
 * damage, spool_errmsg names it: handled as a retry).  Returns the
 * handle in *dp or -errno; -EINVAL: an empty ID or one over
 * SPOOL_ID_MAX bytes.
 */
int
spool_dedup_begin(struct spool_topic *t, const void *id, size_t len,
    struct spool_dedup **dp, int *state)
{
	struct spool_dedup *d;
	uint64_t *starts = NULL;
	size_t nstarts = 0;
	char *text = NULL;
	int64_t ts, now, since = INT64_MIN;
	int idsfd, r, kind;

	*dp = NULL;
	*state = SPOOL_DEDUP_NEW;
	if (len == 0 || len > SPOOL_ID_MAX)
		return -EINVAL;
	if ((d = calloc(1, sizeof(*d))) == NULL)
		return -ENOMEM;
	d->t = t;
	d->lockfd = -1;
	spool_dedup_marker_name(d->name, id, len);
	if ((idsfd = spool_dedup_open_ids(t, 1)) < 0) {
		free(d);
		return idsfd;
	}
	if ((r = d->lockfd = spool_lock_file(idsfd, LOCK_EX)) < 0)
		goto out;
	/* sends of the same topic with IDs take turns from here */
	if ((text = malloc(MARKER_MAX)) == NULL ||
	    (starts = calloc(SPOOL_PART_MAX, sizeof(*starts))) == NULL) {
		r = -ENOMEM;
		goto out;
	}
	now = spool_now_ms();
	r = spool_read_file(idsfd, d->name, text, MARKER_MAX);
	kind = r >= 0 || r == -EFBIG ? (r == -EFBIG ? -EBADMSG :
	    spool_dedup_parse(text, &ts, starts, &nstarts)) : r;
	if (kind == -ENOENT || (kind > 0 &&
	    ts < now - t->cfg.dedup_window_ms))
		kind = 0;	/* none, or its window has passed */
	else if (kind < 0 && kind != -EBADMSG) {
		r = kind;
		goto out;
	}
	r = 0;
	if (kind == 1) {
		*state = SPOOL_DEDUP_SEEN;
		goto out;
	}
	if (kind == -EBADMSG) {
		spool_seterr(t->sp, "%s/topics/%s/ids/%s: damaged: not a send "
		    "ID marker", t->sp->path, t->name, d->name);
		*state = SPOOL_DEDUP_DAMAGED;
		memset(starts, 0, SPOOL_PART_MAX * sizeof(*starts));
		nstarts = 0;
		since = now - t->cfg.dedup_window_ms;
	} else if (kind == 2)
		*state = SPOOL_DEDUP_RETRY;
	if (kind != 2 && (r = pending(d, idsfd, text, kind != 0)) < 0)
		goto out;
	if (kind == 0)
		goto out;
	/*
	 * the scheduled store too (mq-send --delay), from a window before
	 * T: an earlier send of the ID stored its batches before that,
	 * and a clock set back by less does not hide the attempt's
	 */
	r = spool_dedup_search(d, id, len, (kind == 2 ? ts : now) -
	    t->cfg.dedup_window_ms, starts, nstarts, since);
out:
	free(text);
	free(starts);
	close(idsfd);
	if (r < 0) {
		(void)spool_dedup_end(d, 0);
		return r;
	}
	*dp = d;
	return 0;
}

/*
 * spool_dedup_stored - whether an earlier attempt of this send stored m
 * (1: skip it; each stored record matches one message, once)
 */
int
spool_dedup_stored(struct spool_dedup *d, const struct spool_msg *m)
{
	uint64_t h;
	size_t lo = 0, hi = d->nfound, mid;

	if (d->nfound == 0)
		return 0;
	h = spool_dedup_hash(m);
	while (lo < hi) {
		mid = lo + (hi - lo) / 2;
		if (d->found[mid] < h)
			lo = mid + 1;
		else
			hi = mid;
	}
	for (; lo < d->nfound && d->found[lo] == h; lo++)
		if (!d->used[lo]) {
			d->used[lo] = 1;
			return 1;
		}
	return 0;
}

/*
 * spool_dedup_end - with stored set, after the messages are stored (and
 * synced, unless SPOOL_NOSYNC): mark the ID stored now.  Then let the
 * lock go and free d.  Without stored the marker stays as it is.
 */
int
spool_dedup_end(struct spool_dedup *d, int stored)
{
	char text[32];
	int idsfd, n, r = 0;

	if (d == NULL)
		return 0;
	if (stored) {
		if ((idsfd = spool_dedup_open_ids(d->t, 0)) < 0)
			r = idsfd;
		else {
			n = snprintf(text, sizeof(text), "%" PRId64 "\n",
			    spool_now_ms());
			/* durable, or the retry would look again: no harm */
			r = spool_write_file(idsfd, d->name, text, n,
			    !d->t->sp->nosync);
			close(idsfd);
		}
	}
	if (d->lockfd >= 0)
		close(d->lockfd);	/* the lock goes with it */
	free(d->found);
	free(d->used);
	free(d);
	return r;
}
