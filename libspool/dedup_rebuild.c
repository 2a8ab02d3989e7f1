/*
 * dedup_rebuild.c - send ID markers made again from the records that
 * carry the IDs, for a replica that becomes a primary (repl_promote.c)
 *
 * A replica holds its source's records, each with the ID of the send
 * that stored it (mq-send --id), but not the source's ids/ markers
 * (dedup.c): they are not copied.  After a failover a client retries on
 * the new primary; with no marker there the retry would store its
 * messages a second time.  So a promotion reads each partition's
 * records stamped within dedup.window.ms and, for each ID found that
 * has no marker within its window, writes the marker an attempt cut
 * short would have left (dedup.c):
 *
 *	pending T S0 S1 ...	T the oldest such record's time; Sp the
 *				offset of the first record with the ID
 *				in partition p, or p's end if it has none
 *
 * A retry with the same messages then stores what the replica lacks of
 * them (what the old primary stored and did not copy in time) and
 * nothing twice; the window runs from T.  The starts keep out records
 * of an earlier send of the ID, past its window, that lie before them.
 *
 * The caller holds off writers (a replica takes none but a follower,
 * which --promote has stopped first).  Markers are written without a
 * sync each; the caller makes them durable at once (*wrote says if it
 * must).  The scheduled batches (mq-send --delay) stored within the
 * window count too: an ID found only there gets the partitions' ends
 * and the time its first batch was stored, and a retry finds them
 * there (dedup.c).  What this does not do: it reads all of each
 * partition's last window, IDs or not (about a second for a few hundred
 * megabytes).
 */

#include <sys/file.h>

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "spool_impl.h"
#include "dedup.h"
#include "dedup_search.h"
#include "schedule.h"

#define NO_OFFSET	UINT64_MAX	/* a scheduled record: in no log yet */

/* one ID's first record in one partition */
struct seen {
	uint32_t	 part;
	uint64_t	 off;		/* its offset, or NO_OFFSET */
	int64_t		 ts;		/* the oldest time of the ID's there */
	size_t		 len;
	unsigned char	 id[SPOOL_ID_MAX];
};

struct seenlist {
	struct seen	*v;
	size_t		 n;
	size_t		 cap;
};

/* cmp_seen - qsort order: by ID, then partition, then offset */
static int
cmp_seen(const void *a, const void *b)
{
	const struct seen *x = a, *y = b;
	int c;

	if (x->len != y->len)
		return x->len < y->len ? -1 : 1;
	if ((c = memcmp(x->id, y->id, x->len)) != 0)
		return c;
	if (x->part != y->part)
		return x->part < y->part ? -1 : 1;
	return x->off < y->off ? -1 : x->off > y->off;
}

/* same_id - whether entry e is for ID id/len in partition part */
static int
same_id(const struct seen *e, uint32_t part, const void *id, size_t len)
{
	return e->part == part && e->len == len &&
	    memcmp(e->id, id, len) == 0;
}

/*
 * add_entry - one more entry of l, or -ENOMEM; the next record of the
 * same send (same ID, partition and kind as the last entry: the records
 * of one send lie together) adds nothing but its time
 */
static int
add_entry(struct seenlist *l, uint32_t part, uint64_t off, int64_t ts,
    const void *id, size_t len)
{
	struct seen *e, *nv;

	if (len > SPOOL_ID_MAX)
		return 0;
	e = l->n > 0 ? &l->v[l->n - 1] : NULL;
	if (e != NULL && (e->off == NO_OFFSET) == (off == NO_OFFSET) &&
	    same_id(e, part, id, len)) {
		if (ts < e->ts)
			e->ts = ts;
		return 0;
	}
	if (l->n == l->cap) {
		l->cap = l->cap ? 2 * l->cap : 64;
		if ((nv = realloc(l->v, l->cap * sizeof(*nv))) == NULL)
			return -ENOMEM;
		l->v = nv;
	}
	e = &l->v[l->n++];
	e->part = part;
	e->off = off;
	e->ts = ts;
	e->len = len;
	memcpy(e->id, id, len);
	return 0;
}

/* what add_rec adds to */
struct scan {
	struct seenlist	*l;
	int64_t		 since;
};

/* add_rec - spool_dedup_each's fn: a record with an ID, if recent */
static int
add_rec(uint32_t part, const struct spool_msg *m, void *arg)
{
	struct scan *sc = arg;

	if (m->ts < sc->since)
		return 0;
	return add_entry(sc->l, part, m->offset, m->ts, m->id, m->idlen);
}

/*
 * scan_part - remember the records of partition part stamped at or
 * after since that carry an ID: one entry for each run of records of
 * the same ID, with the run's first offset and oldest time
 */
static int
scan_part(struct spool_topic *t, uint32_t part, int64_t since,
    struct seenlist *l)
{
	struct scan sc = { l, since };
	struct spool_pos pos;

	pos.kind = SPOOL_POS_TIME;
	pos.value = since;
	return spool_dedup_each(t, part, &pos, UINT64_MAX, add_rec, &sc);
}

/*
 * add_sched - spool_sched_find's fn: a scheduled record that carries an
 * ID (a delayed send's, not in the log yet): an entry with no offset,
 * the time its batch was stored
 */
static int
add_sched(const struct sfile *f, const struct spool_msg *m, void *arg)
{
	return add_entry(arg, f->part, NO_OFFSET, (int64_t)(f->seq / 1000000),
	    m->id, m->idlen);
}

/*
 * scan_sched - the records with IDs of the scheduled batches stored at or
 * after since (a replica moves none: no lock to take)
 */
static int
scan_sched(struct spool_topic *t, int64_t since, struct seenlist *l)
{
	int sfd, r;

	if ((sfd = spool_sched_opendir(t->sp, t->dirfd, SCHED_DIR, 0)) < 0)
		return sfd == -ENOENT ? 0 : sfd;
	r = spool_sched_find(t, sfd, NULL, 0, since, add_sched, l);
	close(sfd);
	return r;
}

/*
 * live_marker - whether ids/name is a marker still within its window
 * (the primary this spool once was wrote it: it stays as it is)
 */
static int
live_marker(struct spool_topic *t, int idsfd, const char *name, int64_t now,
    char *text, uint64_t *starts)
{
	int64_t ts;
	size_t n;
	int r;

	if ((r = spool_read_file(idsfd, name, text, MARKER_MAX)) < 0)
		return 0;
	return spool_dedup_parse(text, &ts, starts, &n) > 0 &&
	    ts >= now - t->cfg.dedup_window_ms;
}

/*
 * write_markers - one pending marker for each ID of l (sorted) without
 * a live one: its oldest time, and its first offset in each partition
 * or the partition's end (ends); *wrote counts them
 */
static int
write_markers(struct spool_topic *t, int idsfd, const struct seenlist *l,
    const uint64_t *ends, int64_t now, size_t *wrote)
{
	char name[2 * SPOOL_ID_MAX + 1], *text;
	uint64_t *starts;
	int64_t ts;
	size_t i, j, k, n;
	uint32_t p;
	int r = 0;

	if ((text = malloc(MARKER_MAX)) == NULL ||
	    (starts = malloc(SPOOL_PART_MAX * sizeof(*starts))) == NULL) {
		free(text);
		return -ENOMEM;
	}
	for (i = 0; i < l->n && r == 0; i = j) {
		ts = l->v[i].ts;
		for (j = i + 1; j < l->n && l->v[j].len == l->v[i].len &&
		    memcmp(l->v[j].id, l->v[i].id, l->v[i].len) == 0; j++)
			if (l->v[j].ts < ts)
				ts = l->v[j].ts;
		spool_dedup_marker_name(name, l->v[i].id, l->v[i].len);
		if (live_marker(t, idsfd, name, now, text, starts))
			continue;
		memcpy(starts, ends, t->cfg.partitions * sizeof(*starts));
		/* each partition's first offset, its entries sorted */
		for (k = j; k > i; k--)
			if (l->v[k - 1].off != NO_OFFSET)
				starts[l->v[k - 1].part] = l->v[k - 1].off;
		n = (size_t)sprintf(text, "pending %" PRId64, ts);
		for (p = 0; p < t->cfg.partitions; p++)
			n += (size_t)sprintf(text + n, " %" PRIu64, starts[p]);
		text[n++] = '\n';
		/* made durable with the others, by the caller */
		if ((r = spool_write_file(idsfd, name, text, n, 0)) == 0)
			(*wrote)++;
	}
	free(text);
	free(starts);
	return r;
}

/*
 * spool_dedup_rebuild - write the send ID markers topic t's records
 * call for (see the top of the file); *wrote counts those written, which
 * the caller must make durable (syncfs).  0 or -errno.
 */
int
spool_dedup_rebuild(struct spool_topic *t, size_t *wrote)
{
	struct seenlist l = { NULL, 0, 0 };
	struct spool_part_info pi;
	uint64_t *ends = NULL;
	int64_t now = spool_now_ms();
	uint32_t p;
	int idsfd = -1, lockfd = -1, r = 0;

	*wrote = 0;
	if ((ends = calloc(t->cfg.partitions, sizeof(*ends))) == NULL)
		return -ENOMEM;
	for (p = 0; p < t->cfg.partitions && r == 0; p++) {
		memset(&pi, 0, sizeof(pi));
		/* a damaged head leaves a bound; no segment, no records */
		if (spool_part_bounds(t, p, &pi) < 0 && pi.segments == 0)
			continue;
		ends[p] = pi.next;
		r = scan_part(t, p, now - t->cfg.dedup_window_ms, &l);
	}
	if (r < 0 || (r = scan_sched(t, now - t->cfg.dedup_window_ms,
	    &l)) < 0 || l.n == 0)
		goto out;
	qsort(l.v, l.n, sizeof(*l.v), cmp_seen);
	if ((r = idsfd = spool_dedup_open_ids(t, 1)) < 0 ||
	    (r = lockfd = spool_lock_file(idsfd, LOCK_EX)) < 0)
		goto out;
	r = write_markers(t, idsfd, &l, ends, now, wrote);
out:
	if (lockfd >= 0)
		close(lockfd);
	if (idsfd >= 0)
		close(idsfd);
	free(l.v);
	free(ends);
	return r < 0 ? r : 0;
}
