/*
 * writer.c - appending messages to a topic
 *
 * A writer collects messages into one batch a partition and appends a
 * batch when it is full, when the pending batches together pass a
 * bound, or on spool_writer_flush.  Memory is bounded by that: whatever
 * the length of the stream, a writer holds at most PENDING_MAX bytes of
 * batches plus one message (plus one batch, BATCH_TARGET, on the bulk
 * path, spool_writer_add_recs, which checks the bound a run at a time).
 *
 * A batch is appended to its partition's head segment (head.c) under
 * the partition's flock, so that any number of writers (cron jobs,
 * pipelines) take turns batch by batch.  After a failed append or sync
 * the writer stays failed: every later call returns the same error.
 *
 * Durability is the caller's choice: with opts.sync, spool_writer_sync
 * and spool_writer_close fdatasync every segment written since the last
 * sync, and new directory entries are synced as they are made.  A failed
 * sync is never retried and reported as success.
 */

#include <sys/types.h>

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "spool_impl.h"

#define BATCH_TARGET	(256u << 10)	/* append a batch at this size */
#define RUN_REPORTED	256	/* keyless run a partition gets, offsets reported */
#define PENDING_MAX	(4u << 20)	/* all partitions' batches together */

struct wpart {
	struct spool_head h;		/* where its batches go (head.c) */
	struct spool_batch b;
};

struct spool_writer {
	struct spool_topic *t;
	struct spool_io	*io;
	struct spool_writer_opts o;
	struct wpart	*parts;
	uint32_t	 nparts;
	uint32_t	 rr;		/* partition of the next keyless message */
	uint32_t	 run;		/* keyless messages it got in a row */
	uint32_t	 runlen;	/* how many it gets before the next one */
	int		 planned;	/* runs from spool_writer_expect: */
	uint32_t	 planq, planr;	/* n/P a partition, +1 for the first n%P */
	uint32_t	 plank;		/* the runs dealt so far */
	int		 last;		/* partition of the last message */
	size_t		 pending;
	int		 err;		/* sticky */
	int64_t		 now;		/* the clock, read every CLOCK_EVERY */
	unsigned	 tick;
	uint32_t	 epoch;		/* the spool's, stamped into batches */
	uint32_t	 txseq;		/* batches kept for a transaction */
};

#define CLOCK_EVERY	256	/* messages between readings of the clock */

/* fnv1a - the key hash that picks a partition (mq-send(1)) */
static uint32_t
fnv1a(const void *p, size_t n)
{
	const unsigned char *s = p;
	uint32_t h = 2166136261u;

	while (n-- > 0) {
		h ^= *s++;
		h *= 16777619u;
	}
	return h;
}

/* spool_writer_open - a writer on topic t */
int
spool_writer_open(struct spool_topic *t, const struct spool_writer_opts *o,
    struct spool_writer **wp)
{
	struct spool_writer *w;
	struct timespec ts;
	uint32_t i;

	if (o->partition >= 0 && (uint32_t)o->partition >= t->cfg.partitions)
		return -ENOENT;
	if ((w = calloc(1, sizeof(*w))) == NULL)
		return -ENOMEM;
	w->t = t;
	w->o = *o;
	if (w->o.codec < 0) {
		w->o.codec = t->cfg.codec;
		w->o.level = t->cfg.level;
	}
	w->nparts = t->cfg.partitions;
	w->last = -1;
	if (spool_epoch(t->sp, &w->epoch) < 0)
		w->epoch = 0;	/* a bad epoch file: mq-replicate says so */
	if ((w->io = spool_get_io(t->sp)) == NULL ||
	    (w->parts = calloc(w->nparts, sizeof(*w->parts))) == NULL) {
		free(w);
		return -ENOMEM;
	}
	for (i = 0; i < w->nparts; i++) {
		spool_head_init(&w->parts[i].h, t, w->io, i, o->sync);
		spool_batch_init(&w->parts[i].b);
	}
	/*
	 * Keyless messages are dealt round-robin, one at a time, so that
	 * even a small send gives every partition (every group member) its
	 * share; each partition still gets its own large batch.  Offsets
	 * reported in input order need a batch appended at each change of
	 * partition, so then a partition gets runs of RUN_REPORTED (or one
	 * run, when the caller says how many come: spool_writer_expect).  A
	 * writer starts on a partition of its own, so that one-message
	 * sends spread too.
	 */
	w->runlen = o->stored != NULL ? RUN_REPORTED : 1;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	w->rr = (uint32_t)(ts.tv_nsec ^ getpid()) % w->nparts;
	*wp = w;
	return 0;
}

/* append - write one sealed batch to partition n, report its offsets */
static int
append(struct spool_writer *w, uint32_t n, struct wpart *p,
    unsigned char *buf, size_t len, uint32_t count)
{
	uint64_t base;
	uint32_t i;
	int r;

	r = spool_head_append(&p->h, w->epoch, buf, len, count, &base);
	if (r == 0 && w->o.stored != NULL)
		for (i = 0; i < count; i++)
			w->o.stored(w->o.arg, n, base + i);
	return r;
}

/* flush_part - seal and append the pending batch of partition n */
static int
flush_part(struct spool_writer *w, uint32_t n)
{
	struct wpart *p = &w->parts[n];
	const unsigned char *out;
	size_t len;
	uint32_t count = p->b.count;
	int r;

	if (count == 0)
		return 0;
	if ((r = spool_batch_seal(&p->b, w->o.codec, w->o.level, &out,
	    &len)) < 0)
		return r;
	if (w->o.txid != 0)
		/* a prepared batch waits outside the log (txn.c) */
		r = spool_txn_store(w->t, w->o.txid, w->txseq++, n,
		    (unsigned char *)out, len, count, w->o.sync);
	else if (w->o.due > 0)
		/* a delayed batch waits outside the log (schedule.c) */
		r = spool_sched_store(w->t, n, w->o.due, (unsigned char *)out,
		    len, count, w->o.sync);
	else
		r = append(w, n, p, (unsigned char *)out, len, count);
	w->pending -= p->b.len - SPOOL_HDR_SIZE;
	spool_batch_reset(&p->b);
	return r;
}

/*
 * spool_writer_put_batch - append a sealed batch as it is (a scheduled
 * one that is due); its base offset is stamped under the lock
 */
int
spool_writer_put_batch(struct spool_writer *w, uint32_t n, unsigned char *buf,
    size_t len, uint32_t count)
{
	int r;

	if (w->err)
		return w->err;
	if (n >= w->nparts)
		return -ENOENT;
	if ((r = append(w, n, &w->parts[n], buf, len, count)) < 0)
		return w->err = r;
	return 0;
}

/* spool_writer_flush - append every pending batch */
int
spool_writer_flush(struct spool_writer *w)
{
	uint32_t i;
	int r;

	if (w->err)
		return w->err;
	for (i = 0; i < w->nparts; i++)
		if ((r = flush_part(w, i)) < 0)
			return w->err = r;
	return 0;
}

/*
 * next_run - the length of the next planned run (spool_writer_expect);
 * past the plan, runs of RUN_REPORTED again
 */
static void
next_run(struct spool_writer *w)
{
	w->plank++;
	w->runlen = w->planq + (w->plank < w->planr);
	if (w->runlen == 0 || w->plank >= w->nparts) {
		w->planned = 0;
		w->runlen = RUN_REPORTED;
	}
}

/*
 * spool_writer_expect - the writer is told that n messages, and no
 * more, are still to come.  Where keyless messages go in runs (offsets
 * reported in input order, see spool_writer_open), they are then dealt
 * in one run a partition, n/P messages each give or take one, rather
 * than in runs of RUN_REPORTED, which a small send would not take past
 * its first partition.  Elsewhere it changes nothing.
 */
void
spool_writer_expect(struct spool_writer *w, uint64_t n)
{
	if (w->o.stored == NULL || w->nparts < 2 || n == 0 ||
	    n / w->nparts > UINT32_MAX - 1)
		return;
	w->planned = 1;
	w->planq = n / w->nparts;
	w->planr = n % w->nparts;
	w->plank = 0;
	w->run = 0;
	w->runlen = w->planq + (w->planr > 0);
}

/* queue - spool_writer_add's work, without the sticky error's check */
static int
queue(struct spool_writer *w, const struct spool_msg *m)
{
	struct wpart *p;
	uint32_t n;
	size_t before;
	int64_t ts;
	int r;

	/* a message's size: its key and payload together */
	if ((int64_t)(m->len + (m->key != NULL ? m->keylen : 0)) >
	    w->t->cfg.max_message_bytes)
		return -EMSGSIZE;
	/* compaction keeps the newest message of each key: no key, no place */
	if (m->key == NULL && w->t->cfg.compact != SPOOL_CLEANUP_DELETE) {
		spool_seterr(w->t->sp, "cleanup.policy=compact: a message needs "
		    "a key (mq-send -k or -K)");
		return -EBADMSG;
	}
	if (w->o.partition >= 0)
		n = (uint32_t)w->o.partition;
	else if (m->key != NULL)
		n = fnv1a(m->key, m->keylen) % w->nparts;
	else {
		n = w->rr;
		if (w->nparts > 1 && ++w->run == w->runlen) {
			w->run = 0;
			if (++w->rr == w->nparts)
				w->rr = 0;
			if (w->planned)
				next_run(w);
		}
	}
	/* offsets are reported in input order: one batch at a time */
	if (w->o.stored != NULL && w->last >= 0 && (uint32_t)w->last != n &&
	    (r = spool_writer_flush(w)) < 0)
		return r;
	w->last = (int)n;
	p = &w->parts[n];
	if ((ts = m->ts) == 0 && !m->ts_given) {
		/* a stream of 5M messages a second need not ask 5M times */
		if (w->tick++ % CLOCK_EVERY == 0 || p->b.count == 0)
			w->now = spool_now_ms();
		ts = w->now;
	}
	before = p->b.len;
	if ((r = spool_batch_add(&p->b, m, ts)) < 0)
		return w->err = r;
	w->pending += p->b.len - before;
	if (p->b.len - SPOOL_HDR_SIZE >= BATCH_TARGET) {
		if ((r = flush_part(w, n)) < 0)
			return w->err = r;
	}
	if (w->pending >= PENDING_MAX && (r = spool_writer_flush(w)) < 0)
		return r;
	return 0;
}

/*
 * spool_writer_add - queue one message; it is appended when its batch
 * fills or at the next flush.  -EMSGSIZE: larger than max.message.bytes;
 * -EBADMSG: no key, in a compacted topic.
 */
int
spool_writer_add(struct spool_writer *w, const struct spool_msg *m)
{
	if (w->err)
		return w->err;
	return queue(w, m);
}

/*
 * add_run - add v[0..nv) to partition n's batch as plain records, whole
 * runs at a time: how many were added (fewer: the next is too large),
 * or -errno
 */
static ssize_t
add_run(struct spool_writer *w, uint32_t n, const struct spool_rec *v,
    size_t nv)
{
	struct wpart *p = &w->parts[n];
	size_t i = 0, before, max = w->t->cfg.max_message_bytes;
	ssize_t k;
	int r;

	w->now = spool_now_ms();	/* once a run, as queue does every 256 */
	w->last = (int)n;
	while (i < nv) {
		before = p->b.len;
		k = spool_batch_add_recs(&p->b, v + i, nv - i, w->now, max,
		    BATCH_TARGET);
		if (k < 0)
			return w->err = k;
		i += k;
		w->pending += p->b.len - before;
		if (p->b.len - SPOOL_HDR_SIZE >= BATCH_TARGET &&
		    (r = flush_part(w, n)) < 0)
			return w->err = r;
		if (w->pending >= PENDING_MAX && (r = spool_writer_flush(w)) < 0)
			return r;
		if (k == 0 && i < nv)
			break;	/* v[i] is over max.message.bytes */
	}
	return i;
}

#define DEAL	64	/* add_dealt: records a partition takes a slice */

/*
 * add_dealt - add_run for keyless messages dealt round-robin, one a
 * partition: each partition's share of a slice at once, to the same
 * partitions as one at a time.  Nothing from a message over
 * max.message.bytes on is added: the slice ends before it.  How many
 * were added, or -errno.
 */
static ssize_t
add_dealt(struct spool_writer *w, const struct spool_rec *v, size_t nv)
{
	struct spool_rec share[DEAL];
	size_t i = 0, j, m, slice, max = w->t->cfg.max_message_bytes;
	uint32_t q, np = w->nparts;
	ssize_t k;

	while (i < nv) {
		slice = nv - i < (size_t)DEAL * np ? nv - i : (size_t)DEAL * np;
		for (j = 0; j < slice && v[i + j].len <= max; j++)
			;
		if (j < slice)
			slice = j;	/* stop before the one too large */
		for (q = 0; q < np && q < slice; q++) {
			for (m = 0, j = q; j < slice; j += np)
				share[m++] = v[i + j];
			if ((k = add_run(w, (w->rr + q) % np, share, m)) < 0)
				return k;
		}
		w->rr = (w->rr + slice) % np;
		i += slice;
		if (slice < (size_t)DEAL * np && i < nv)
			break;	/* v[i] is over max.message.bytes */
	}
	return i;
}

/*
 * spool_writer_add_recs - spool_writer_add of n messages, each base with
 * v[i] as its payload, in one call: the bulk path.  0 with *added = n,
 * or the error of message v[*added] (those before it are added).
 * Messages with nothing but a payload and the writer's clock are
 * encoded a run at a time: all of them when they go to one partition,
 * each partition's share when they are dealt round-robin.
 */
int
spool_writer_add_recs(struct spool_writer *w, const struct spool_msg *base,
    const struct spool_rec *v, size_t n, size_t *added)
{
	struct spool_msg m = *base;
	ssize_t k;
	size_t i;
	int r = 0;

	*added = 0;
	if (w->err)
		return w->err;
	if (base->key == NULL && base->id == NULL && base->nheaders == 0 &&
	    base->ts == 0 && !base->ts_given && w->o.stored == NULL &&
	    w->t->cfg.compact == SPOOL_CLEANUP_DELETE) {
		if (w->nparts == 1 || w->o.partition >= 0)
			k = add_run(w, w->o.partition >= 0 ?
			    (uint32_t)w->o.partition : 0, v, n);
		else
			k = add_dealt(w, v, n);
		if (k < 0)
			return k;
		*added = k;
		return (size_t)k < n ? -EMSGSIZE : 0;
	}
	for (i = 0; i < n; i++) {
		m.payload = v[i].p;
		m.len = v[i].len;
		if ((r = queue(w, &m)) < 0)
			break;
	}
	*added = i;
	return r;
}

/* spool_writer_sync - flush, then make everything written durable */
int
spool_writer_sync(struct spool_writer *w)
{
	uint32_t i;
	int r;

	if ((r = spool_writer_flush(w)) < 0)
		return r;
	for (i = 0; i < w->nparts; i++)
		/* the only sync of this data: a failure is final */
		if ((r = spool_head_sync(&w->parts[i].h)) < 0)
			return w->err = r;
	return 0;
}

/*
 * spool_writer_close - flush, sync if the writer is durable, release;
 * the result says whether everything added is stored (and synced)
 */
int
spool_writer_close(struct spool_writer *w)
{
	uint32_t i;
	int r;

	if (w == NULL)
		return 0;
	r = w->o.sync ? spool_writer_sync(w) : spool_writer_flush(w);
	for (i = 0; i < w->nparts; i++) {
		struct wpart *p = &w->parts[i];

		spool_head_close(&p->h);
		spool_batch_free(&p->b);
	}
	free(w->parts);
	free(w);
	return r;
}
