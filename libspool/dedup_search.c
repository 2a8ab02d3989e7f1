/*
 * dedup_search.c - the search for what an earlier attempt at a send with
 * an ID stored (dedup.c), and the walk over a partition's records with
 * IDs that the promotion's markers come from too (dedup_rebuild.c)
 *
 * The search reads the scheduled batches stored from a time on and
 * each partition's next offset under scheduled/lock, then, the lock let
 * go, each partition from the marker's start up to that offset, and
 * remembers the hash of each record that carries the ID (find_sched,
 * find_stored): a batch the mover appends in between is found once.
 * Damage and a newer mq's batches are passed over: verify reports them.
 * It takes no other lock (the caller holds ids/lock) and writes nothing.
 */

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "spool_impl.h"
#include "dedup_search.h"
#include "schedule.h"

/*
 * spool_dedup_hash - what tells messages of a send apart: key, headers,
 * payload
 */
uint64_t
spool_dedup_hash(const struct spool_msg *m)
{
	uint64_t h = 14695981039346656037u;
	size_t i;

#define MIX(p, n) do {							\
	const unsigned char *s_ = (const void *)(p);			\
	size_t n_ = (n);						\
	while (n_-- > 0) {						\
		h ^= *s_++;						\
		h *= 1099511628211u;					\
	}								\
} while (0)
#define MIXN(v) do { uint64_t v_ = (v); MIX(&v_, sizeof(v_)); } while (0)
	MIXN(m->key != NULL);
	if (m->key != NULL) {
		MIXN(m->keylen);
		MIX(m->key, m->keylen);
	}
	MIXN(m->nheaders);
	for (i = 0; i < m->nheaders; i++) {
		MIXN(m->headers[i].namelen);
		MIX(m->headers[i].name, m->headers[i].namelen);
		MIXN(m->headers[i].valuelen);
		MIX(m->headers[i].value, m->headers[i].valuelen);
	}
	MIXN(m->len);
	MIX(m->payload, m->len);
#undef MIXN
#undef MIX
	return h;
}

/* cmp64 - qsort order of hashes */
static int
cmp64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* remember - a record of the ID an earlier attempt stored */
static int
remember(struct spool_dedup *d, const struct spool_msg *m)
{
	uint64_t *nf;

	if (d->nfound == d->cap) {
		d->cap = d->cap ? 2 * d->cap : 64;
		if ((nf = realloc(d->found, d->cap * sizeof(*nf))) == NULL)
			return -ENOMEM;
		d->found = nf;
	}
	d->found[d->nfound++] = spool_dedup_hash(m);
	return 0;
}

/* remember_sched - spool_sched_find's fn: remember a scheduled record */
static int
remember_sched(const struct sfile *f, const struct spool_msg *m, void *arg)
{
	return remember(arg, m);
}

/*
 * spool_dedup_each - call fn with each record of partition part that
 * carries an ID, from start on and before offset until (UINT64_MAX: to
 * the end; damage and holes passed over: verify's to report); fn
 * returns 0, or -errno to stop with it
 */
int
spool_dedup_each(struct spool_topic *t, uint32_t part,
    const struct spool_pos *start, uint64_t until,
    int (*fn)(uint32_t, const struct spool_msg *, void *), void *arg)
{
	struct spool_reader_opts o;
	struct spool_reader *r;
	struct spool_msg m;
	int s;

	memset(&o, 0, sizeof(o));
	o.partition = (int)part;
	o.start = *start;
	o.until.kind = SPOOL_POS_NONE;
	if (until != UINT64_MAX) {
		o.until.kind = SPOOL_POS_OFFSET;
		o.until.value = (int64_t)until;
	}
	o.skip_damage = 1;	/* records past a hole count too */
	if ((s = spool_reader_open(t, &o, &r)) < 0)
		return s;
	while ((s = spool_reader_next(r, &m)) != 0) {
		/* a newer mq's batch ends the partition there, as damage */
		if (s == -EBADMSG || s == -EPROTO)
			continue;
		if (s < 0)
			break;
		if (m.idlen > 0 && (s = fn(part, &m, arg)) < 0)
			break;
	}
	spool_reader_close(r);
	return s;
}

/* what find_stored looks for */
struct want {
	struct spool_dedup *d;
	const void	*id;
	size_t		 len;
	int64_t		 since;
};

/* stored_one - spool_dedup_each's fn: remember a record of the ID */
static int
stored_one(uint32_t part, const struct spool_msg *m, void *arg)
{
	const struct want *w = arg;

	if (m->idlen != w->len || memcmp(m->id, w->id, w->len) != 0 ||
	    m->ts < w->since)
		return 0;
	return remember(w->d, m);
}

/*
 * find_stored - read partition p from offset start on, before offset
 * until, and remember each record that carries the ID (stamped at or
 * after since)
 */
static int
find_stored(struct spool_dedup *d, const void *id, size_t len, uint32_t p,
    uint64_t start, uint64_t until, int64_t since)
{
	struct want w = { d, id, len, since };
	struct spool_pos pos;

	pos.kind = SPOOL_POS_OFFSET;
	pos.value = (int64_t)start;
	return spool_dedup_each(d->t, p, &pos, until, stored_one, &w);
}

/*
 * find_sched - remember each record that carries the ID in the
 * scheduled batches stored from from on (ms), and each partition's next
 * offset (ends) as it is meanwhile: scheduled/lock is held over both
 * (the mover appends under it), so that a batch moved before is in a
 * partition below its end, one moved after was read here, and no batch
 * is found twice or missed.  The partitions are read afterwards, the
 * lock let go (find_stored, before ends).
 */
static int
find_sched(struct spool_dedup *d, const void *id, size_t len, int64_t from,
    uint64_t *ends)
{
	struct spool_part_info pi;
	uint32_t p;
	int sfd, lfd, r;

	if ((r = spool_sched_lock(d->t, &sfd, &lfd)) < 0)
		return r;
	for (p = 0; p < d->t->cfg.partitions; p++) {
		memset(&pi, 0, sizeof(pi));
		/* a damaged head's bound is below its end: no bound then */
		r = spool_part_bounds(d->t, p, &pi);
		ends[p] = r < 0 && pi.segments > 0 ? UINT64_MAX : pi.next;
	}
	r = 0;
	if (sfd >= 0)
		r = spool_sched_find(d->t, sfd, id, len, from, remember_sched,
		    d);
	if (lfd >= 0)
		close(lfd);
	if (sfd >= 0)
		close(sfd);
	return r;
}

/*
 * spool_dedup_search - remember, in d, each record of the ID an earlier
 * attempt stored: in the scheduled batches stored from from (ms) on,
 * and in each partition from starts[p] (0 past nstarts: made since) on,
 * stamped at or after since; then sort them for spool_dedup_stored.
 * 0 or -errno.
 */
int
spool_dedup_search(struct spool_dedup *d, const void *id, size_t len,
    int64_t from, const uint64_t *starts, size_t nstarts, int64_t since)
{
	struct spool_topic *t = d->t;
	uint64_t *ends;
	uint32_t p;
	int r;

	if ((ends = calloc(t->cfg.partitions, sizeof(*ends))) == NULL)
		return -ENOMEM;
	r = find_sched(d, id, len, from, ends);
	for (p = 0; p < t->cfg.partitions && r >= 0; p++)
		r = find_stored(d, id, len, p, p < nstarts ? starts[p] : 0,
		    ends[p], since);
	free(ends);
	if (r >= 0 && d->nfound > 0) {
		qsort(d->found, d->nfound, sizeof(*d->found), cmp64);
		if ((d->used = calloc(d->nfound, 1)) == NULL)
			r = -ENOMEM;
	}
	return r < 0 ? r : 0;
}
