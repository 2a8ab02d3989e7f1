/*
 * writer.c - appending messages to a topic
 *
 * A writer collects messages into one batch a partition and appends a
 * batch when it is full, when the pending batches together pass a
 * bound, or on spool_writer_flush.  Memory is bounded by that: whatever
 * the length of the stream, a writer holds at most PENDING_MAX bytes of
 * batches plus one message.
 *
 * An append happens under the partition's flock, held only for the
 * append itself, so that any number of writers (cron jobs, pipelines)
 * take turns batch by batch and their batches never interleave.  Under
 * the lock the writer first catches up with what other writers appended
 * since its last turn (the segment may have grown or been closed with an
 * END batch), cuts a torn tail left by a writer that died mid-write,
 * rolls to a new segment when this one is full, then writes the batch
 * with its base offset stamped in.  A failed write is cut off again
 * before the lock is released, and the writer stays failed: every later
 * call returns the same error.
 *
 * Durability is the caller's choice: with opts.sync, spool_writer_sync
 * and spool_writer_close fdatasync every segment written since the last
 * sync, and new directory entries are synced as they are made.  A failed
 * sync is never retried and reported as success.
 */

#include <sys/file.h>
#include <sys/stat.h>
#include <sys/types.h>

#include <errno.h>
#include <fcntl.h>
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
	int		 partfd;
	int		 lockfd;
	int		 logfd;
	int		 idxfd;
	uint64_t	 segbase;
	off_t		 end;		/* where the next batch goes */
	off_t		 lastidx;	/* log position of the last entry */
	uint64_t	 next;		/* offset of the next message */
	int		 dirty;		/* written since the last sync */
	int		 synced_dir;	/* partition dir synced once */
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
		w->parts[i].partfd = w->parts[i].lockfd = -1;
		w->parts[i].logfd = w->parts[i].idxfd = -1;
		spool_batch_init(&w->parts[i].b);
	}
	/*
	 * Keyless messages are dealt round-robin, one at a time, so that
	 * even a small send gives every partition (every group member) its
	 * share; each partition still gets its own large batch.  Offsets
	 * reported in input order need a batch appended at each change of
	 * partition, so then a partition gets runs of RUN_REPORTED.  A
	 * writer starts on a partition of its own, so that one-message
	 * sends spread too.
	 */
	w->runlen = o->stored != NULL ? RUN_REPORTED : 1;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	w->rr = (uint32_t)(ts.tv_nsec ^ getpid()) % w->nparts;
	*wp = w;
	return 0;
}

/* close_seg - let go of the open segment of a partition */
static void
close_seg(struct wpart *p)
{
	if (p->logfd >= 0)
		close(p->logfd);
	if (p->idxfd >= 0)
		close(p->idxfd);
	p->logfd = p->idxfd = -1;
}

/*
 * new_seg - create the segment that starts at p->next (under the lock);
 * the file may be left over from a writer that died right after
 * creating it, so an existing one is fine
 */
static int
new_seg(struct spool_writer *w, struct wpart *p)
{
	char name[SPOOL_SEGNAME_LEN + 16];
	int fd;

	spool_seg_name(name, p->next, SPOOL_LOG_SUFFIX);
	fd = openat(p->partfd, name, O_RDWR | O_CREAT | O_NOFOLLOW |
	    O_CLOEXEC, 0664);
	if (fd == -1)
		return -errno;
	close(fd);
	/* a segment that vanishes in a crash takes its messages along */
	if (w->o.sync && spool_fsync_dir(p->partfd) < 0)
		return -errno;
	return 0;
}

/*
 * open_head - open the newest segment of a partition for appending and
 * recover its tail (under the lock)
 */
static int
open_head(struct spool_writer *w, struct wpart *p)
{
	struct spool_seglist l;
	struct spool_scanpos pos;
	char name[SPOOL_SEGNAME_LEN + 16];
	int r;

	close_seg(p);
	for (;;) {
		if ((r = spool_seg_list(p->partfd, &l)) < 0)
			return r;
		if (l.n == 0) {
			spool_seg_free(&l);
			p->next = 0;
			if ((r = new_seg(w, p)) < 0)
				return r;
			continue;
		}
		p->segbase = l.base[l.n - 1];
		spool_seg_free(&l);
		spool_seg_name(name, p->segbase, SPOOL_LOG_SUFFIX);
		p->logfd = openat(p->partfd, name, O_RDWR | O_NOFOLLOW |
		    O_CLOEXEC);
		if (p->logfd == -1)
			return -errno;
		spool_seg_name(name, p->segbase, SPOOL_IDX_SUFFIX);
		p->idxfd = openat(p->partfd, name, O_RDWR | O_CREAT |
		    O_NOFOLLOW | O_CLOEXEC, 0664);
		if (p->idxfd == -1) {
			r = -errno;
			close_seg(p);
			return r;
		}
		memset(&pos, 0, sizeof(pos));
		r = spool_seg_recover(w->t->sp, p->segbase,
		    p->logfd, p->idxfd, &pos);
		if (r < 0) {
			close_seg(p);
			return r;
		}
		p->next = pos.next;
		p->end = pos.pos;
		p->lastidx = p->end > 0 ? p->end : -SPOOL_IDX_INTERVAL;
		if (pos.end && p->next == p->segbase) {
			/*
			 * An END closing a segment with no message in it is
			 * none a writer wrote (a roll needs a batch first):
			 * it holds nothing, so it goes, and appends go here.
			 */
			p->end = pos.pos - SPOOL_HDR_SIZE;
			if (ftruncate(p->logfd, p->end) == -1) {
				r = -errno;
				close_seg(p);
				return r;
			}
			return 0;
		}
		if (!pos.end)
			return 0;
		/* closed, but its successor was never made: make it */
		close_seg(p);
		if ((r = new_seg(w, p)) < 0)
			return r;
	}
}

/* open_part - open a partition's directory and lock file */
static int
open_part(struct spool_writer *w, uint32_t n, struct wpart *p)
{
	int fd;

	if ((fd = spool_part_open(w->t, n)) < 0)
		return fd;
	p->partfd = fd;
	p->lockfd = openat(fd, SPOOL_LOCK_NAME, O_RDWR | O_CREAT | O_NOFOLLOW |
	    O_CLOEXEC, 0664);
	if (p->lockfd == -1)
		return -errno;
	/* entries another writer made without syncing must survive too */
	if (w->o.sync && spool_fsync_dir(fd) < 0)
		return -errno;
	return 0;
}

/*
 * catch_up - account for what other writers appended since our last
 * turn (under the lock)
 */
static int
catch_up(struct spool_writer *w, struct wpart *p)
{
	struct spool_scanpos pos;
	struct stat st;
	char why[128];
	int r;

	if (p->logfd < 0)
		return open_head(w, p);
	if (fstat(p->logfd, &st) == -1)
		return -errno;
	if (st.st_size == p->end && st.st_nlink > 0)
		return 0;
	if (st.st_size < p->end || st.st_nlink == 0)
		return open_head(w, p);		/* cut or removed: start over */
	memset(&pos, 0, sizeof(pos));
	pos.next = p->next;
	r = spool_seg_scan(w->io, p->logfd, p->end, st.st_size, 0,
	    &pos, why, sizeof(why));
	if (r < 0)
		return r;
	if (pos.end || r == SCAN_BADHDR)
		return open_head(w, p);
	if (r == SCAN_TORN && ftruncate(p->logfd, pos.pos) == -1)
		return -errno;
	/* others' batches are not indexed by us; the walk from our last
	 * entry covers them */
	p->next = pos.next;
	p->end = pos.pos;
	return 0;
}

/* roll - close the full segment with an END batch and start the next */
static int
roll(struct spool_writer *w, struct wpart *p)
{
	unsigned char end[SPOOL_HDR_SIZE];
	int r;

	spool_batch_end(end, p->next, spool_now_ms());
	/*
	 * The END and everything before it are durable before the next
	 * segment exists (mq-spool(5) DURABILITY): after a crash a closed
	 * segment never ends in a torn END beside its successor.
	 */
	if ((r = spool_io_pwrite(w->io, p->logfd, end, sizeof(end), p->end,
	    w->o.sync)) < 0)
		return r;
	p->dirty = 0;
	close_seg(p);
	if ((r = new_seg(w, p)) < 0)
		return r;
	return open_head(w, p);
}

/* append - write one sealed batch to partition n under its lock */
static int
append(struct spool_writer *w, uint32_t n, struct wpart *p,
    unsigned char *buf, size_t len, uint32_t count)
{
	uint64_t base;
	uint32_t i;
	int r, e;

	if (p->partfd < 0 && (r = open_part(w, n, p)) < 0)
		return r;
	while (flock(p->lockfd, LOCK_EX) == -1)
		if (errno != EINTR)
			return -errno;
	if ((r = catch_up(w, p)) < 0)
		goto out;
	if (p->end > 0 && p->end + (off_t)len > w->t->cfg.segment_bytes &&
	    (r = roll(w, p)) < 0)
		goto out;
	base = p->next;
	if (w->epoch != 0)
		put32(buf + 52, w->epoch);	/* format.h: epoch */
	spool_batch_stamp(buf, base);
	if ((r = spool_io_pwrite(w->io, p->logfd, buf, len, p->end, 0)) < 0) {
		/* leave no partial batch behind for the next writer */
		if (ftruncate(p->logfd, p->end) == -1) {
			/* then the next writer cuts it under the lock */
		}
		goto out;
	}
	if (p->end - p->lastidx >= SPOOL_IDX_INTERVAL &&
	    spool_idx_append(p->idxfd, p->segbase, base, p->end) == 0)
		p->lastidx = p->end;
	p->end += len;
	p->next += count;
	p->dirty = 1;
out:
	e = errno;
	(void)flock(p->lockfd, LOCK_UN);
	errno = e;
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
 * spool_writer_add - queue one message; it is appended when its batch
 * fills or at the next flush.  -EMSGSIZE: larger than max.message.bytes;
 * -EBADMSG: no key, in a compacted topic.
 */
int
spool_writer_add(struct spool_writer *w, const struct spool_msg *m)
{
	struct wpart *p;
	uint32_t n;
	size_t before;
	int64_t ts;
	int r;

	if (w->err)
		return w->err;
	if ((int64_t)m->len > w->t->cfg.max_message_bytes)
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

/* spool_writer_sync - flush, then make everything written durable */
int
spool_writer_sync(struct spool_writer *w)
{
	uint32_t i;
	int r;

	if ((r = spool_writer_flush(w)) < 0)
		return r;
	for (i = 0; i < w->nparts; i++) {
		struct wpart *p = &w->parts[i];

		if (!p->dirty || p->logfd < 0)
			continue;
		/* the only sync of this data: a failure is final */
		if ((r = spool_io_fdatasync(w->io, p->logfd)) < 0)
			return w->err = r;
		p->dirty = 0;
	}
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

		close_seg(p);
		if (p->lockfd >= 0)
			close(p->lockfd);
		if (p->partfd >= 0)
			close(p->partfd);
		spool_batch_free(&p->b);
	}
	free(w->parts);
	free(w);
	return r;
}
