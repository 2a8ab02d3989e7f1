/*
 * repl_stream.c - the sender's side of one partition (PSTATE): check the
 * replica's newest batch against this log, plan, and stream what follows
 *
 * The replica says what it holds (its newest batch: segment, position,
 * header checksum, offset; its head segment and size; the compaction
 * generation it copied).  One header read here tells whether that batch
 * is ours; then the plan (PLAN: append, restart at our first segment, a
 * retention gap, diverged, compacted since, or nothing to do) and, to
 * append, the whole batches that follow, as stored, segment by segment
 * (SEG, DATA; LOCAL to a receiver on this machine, which reads the files
 * itself), then PEND.  A batch of a transaction being committed, or
 * committed since the pass began, is held back with everything after it
 * (spool_mirror_held): the partition stops there this pass.  So it does
 * at a batch that is not one to stay (damage, or a batch a newer mq
 * wrote; not a write in progress, repl_seg_bad): its header goes to the
 * receiver, which checks it as any batch, says what it is and copies
 * nothing past it, so a source's damage is never passed in silence.  The
 * contract of replication is at the top of repl_send.c.  Nothing here
 * trusts the peer; it never prints (opts.report does).
 */

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdlib.h>
#include <unistd.h>

#include "repl.h"

/*
 * epoch_goes_on - whether our log goes on past offset off in epoch:
 * the first batch (END aside) that holds an offset from off on is of
 * that epoch.  Then a replica whose newest batch is that one, in a
 * segment compacted since, holds what this spool held before it
 * compacted, not batches of its own: epochs are never reused
 */
static int
epoch_goes_on(struct sess *s, int pfd, const struct spool_seglist *l,
    uint64_t off, uint32_t epoch)
{
	struct spool_cursor c;
	struct spool_io *io;
	off_t size;
	ssize_t i;
	size_t k;
	int fd, n, found = -1;

	if (l->n == 0 || (io = spool_get_io(s->sp)) == NULL)
		return 0;
	if (off < l->base[0])
		i = 0;		/* compaction removed where it was */
	else if ((i = spool_seg_find(l, off)) < 0)
		return 0;
	for (k = (size_t)i; k < l->n && found < 0; k++) {
		if ((fd = spool_seg_open_ro(pfd, l->base[k], &size)) < 0)
			return 0;
		spool_cursor_fd(&c, io, fd, l->base[k], size, 0, l->base[k]);
		/* a jump in offsets is not this walk's business */
		while ((n = spool_cursor_next(&c)) == SPOOL_CUR_BATCH ||
		    n == SPOOL_CUR_HOLE) {
			if (n == SPOOL_CUR_BATCH &&
			    c.h.type != SPOOL_TYPE_END &&
			    c.h.base_offset + c.h.count > off) {
				found = c.h.epoch == epoch;
				break;
			}
		}
		spool_cursor_close(&c);
		close(fd);
	}
	return found == 1;
}

/*
 * stream_seg - send the whole batches of a segment from pos; stops at a
 * torn or unwritten tail, (returning 1) at a batch of a commit under
 * way, and (returning 2) at one that is not to stay, whose header it
 * sends for the receiver to judge.  Returns the offset after the last
 * batch sent in *next.
 */
static int
stream_seg(struct sess *s, struct spool_topic *t, int pfd, uint64_t base,
    off_t pos, unsigned char **buf, size_t *cap, uint64_t *next,
    uint64_t *sent)
{
	struct spool_bhdr h;
	off_t size;
	size_t n, q, blen;
	ssize_t got;
	int fd, r = 0, held = 0;

	if ((fd = spool_seg_open_ro(pfd, base, &size)) < 0)
		return fd;
	while (pos < size) {
		n = (size_t)(size - pos) < *cap ? (size_t)(size - pos) : *cap;
		if ((got = pread(fd, *buf, n, pos)) < 0) {
			r = -errno;
			break;
		}
		n = (size_t)got;
		for (q = 0; q + SPOOL_HDR_SIZE <= n; q += blen) {
			if (spool_bhdr_unpack(*buf + q, &h) < 0)
				break;
			blen = SPOOL_HDR_SIZE + (size_t)h.body_len;
			if (q + blen > n)
				break;
			if ((held = spool_mirror_held(t, &h, s->pass_ms,
			    &s->held)) != 0)
				break;	/* the partition stops here this pass */
			*next = h.base_offset + h.count;
		}
		if (q == 0 && held) {
			r = 1;
			break;
		}
		if (q == 0) {
			/* one batch larger than the buffer, or the tail */
			if (n >= SPOOL_HDR_SIZE && spool_bhdr_unpack(*buf,
			    &h) == 0 && SPOOL_HDR_SIZE + (off_t)h.body_len <=
			    size - pos && SPOOL_HDR_SIZE + (size_t)h.body_len <
			    PROTO_FRAME_MAX &&
			    SPOOL_HDR_SIZE + h.body_len > *cap) {
				unsigned char *nb;
				size_t ncap = SPOOL_HDR_SIZE + h.body_len;

				if ((nb = realloc(*buf, ncap)) == NULL) {
					r = -ENOMEM;
					break;
				}
				*buf = nb;
				*cap = ncap;
				continue;
			}
			/* torn or being written: next pass; else it stays */
			if (n >= SPOOL_HDR_SIZE && repl_seg_bad(pfd, fd, *buf,
			    pos, size)) {
				r = proto_send_data(&s->pr, PROTO_DATA, *buf,
				    SPOOL_HDR_SIZE);
				if (r == 0)
					r = 2;
			}
			break;
		}
		if ((r = proto_send_data(&s->pr, PROTO_DATA, *buf, q)) < 0)
			break;
		*sent += q;
		if (s->o->progress != NULL)
			s->o->progress(s->o->arg, NULL, q, 0);
		pos += (off_t)q;
		if (held) {
			r = 1;
			break;
		}
	}
	close(fd);
	return r;
}

/*
 * local_seg - LOCAL: a receiver on this machine reads the segment from
 * pos to its present size itself (whole batches, as stream_seg sends)
 */
static int
local_seg(struct sess *s, int pfd, uint64_t base, off_t pos, uint64_t *sent)
{
	off_t size;
	int fd;

	if ((fd = spool_seg_open_ro(pfd, base, &size)) < 0)
		return fd;
	close(fd);
	if (size <= pos)
		return 0;
	proto_begin(&s->pr, PROTO_LOCAL);
	proto_u64(&s->pr, base);
	proto_u64(&s->pr, (uint64_t)pos);
	proto_u64(&s->pr, (uint64_t)size);
	*sent += (uint64_t)(size - pos);
	return proto_send(&s->pr);
}

/* send_plan - PLAN: what the receiver is about to get */
static int
send_plan(struct sess *s, int kind, uint64_t bytes)
{
	proto_begin(&s->pr, PROTO_PLAN);
	proto_u8(&s->pr, (uint8_t)kind);
	proto_u64(&s->pr, bytes);
	return proto_send(&s->pr);
}

/* what a PSTATE frame says of the replica's partition */
struct pstate {
	char		 topic[SPOOL_NAME_MAX + 1];
	uint32_t	 part;
	int		 flags;		/* PS_* */
	uint64_t	 rnext;		/* its next offset */
	uint64_t	 lastseg;	/* its newest batch: segment, */
	off_t		 lastpos;	/*  position, */
	uint32_t	 lastcrc;	/*  header checksum, */
	uint64_t	 lastoff;	/*  offset */
	uint64_t	 headbase;	/* its head segment */
	uint64_t	 headsize;	/*  and its size */
	uint32_t	 ldepoch;	/* its newest batch but END: epoch */
	uint64_t	 ldoff;		/*  and offset */
	uint64_t	 rgen;		/* the compaction generation copied */
};

/* pstate_get - decode a PSTATE frame */
static int
pstate_get(struct sess *s, struct pstate *ps)
{
	proto_getstr(&s->pr, ps->topic, sizeof(ps->topic));
	ps->part = proto_get32(&s->pr);
	ps->flags = proto_get8(&s->pr);
	ps->rnext = proto_get64(&s->pr);
	ps->lastseg = proto_get64(&s->pr);
	ps->lastpos = (off_t)(proto_get64(&s->pr) & INT64_MAX);
	ps->lastcrc = proto_get32(&s->pr);
	ps->lastoff = proto_get64(&s->pr);
	ps->headbase = proto_get64(&s->pr);
	ps->headsize = proto_get64(&s->pr);
	ps->ldepoch = proto_get32(&s->pr);
	ps->ldoff = proto_get64(&s->pr);
	ps->rgen = proto_get64(&s->pr);
	if (proto_done(&s->pr) < 0 || !spool_topic_name_ok(ps->topic))
		return repl_fail(s, -EBADMSG, "protocol: malformed PSTATE");
	return 0;
}

/*
 * compacted_since - our compaction generation when we compacted since
 * the replica last compared its segments, 0 otherwise: if its newest
 * batch is ours, or one compaction rewrote, it compares them (SEGS)
 * before anything else, so that it is not taken for diverged and ends
 * with the segments as they are here
 */
static uint64_t
compacted_since(struct sess *s, struct spool_topic *t, int pfd,
    const struct spool_seglist *l, const struct pstate *ps)
{
	uint64_t gen;

	if ((ps->flags & PS_HASLAST) && !(ps->flags & PS_NOCOMPACT) &&
	    t->cfg.compact != SPOOL_CLEANUP_DELETE &&
	    (gen = spool_compact_gen(pfd)) != 0 && gen != ps->rgen &&
	    (repl_has_batch(s, pfd, ps->lastseg, ps->lastpos, ps->lastcrc,
	    ps->lastoff) ||
	    (ps->lastseg >= l->base[0] && ps->lastseg < l->base[l->n - 1] &&
	    epoch_goes_on(s, pfd, l, ps->ldoff, ps->ldepoch))))
		return gen;
	return 0;
}

/*
 * plan_start - the plan's kind (PLAN_*) and, to append or restart,
 * where the batches to send start (*seghdr: 1 with a SEG for that
 * segment too, 2 with an END closing the replica's head before it)
 */
static int
plan_start(struct sess *s, struct spool_topic *t, int pfd,
    const struct spool_seglist *l, const struct pstate *ps,
    uint64_t *startseg, off_t *startpos, int *seghdr)
{
	int kind = PLAN_APPEND;
	size_t i;

	if (!(ps->flags & PS_HASLAST)) {
		/* the replica holds nothing: from the first segment */
		*startseg = l->base[0];
		*startpos = 0;
		*seghdr = 1;
	} else if (repl_has_batch(s, pfd, ps->lastseg, ps->lastpos,
	    ps->lastcrc, ps->lastoff)) {
		/* a prefix of ours: go on from the replica's head */
		*startseg = ps->headbase;
		*startpos = (off_t)(ps->headsize & INT64_MAX);
		if (spool_seg_find(l, *startseg) < 0 ||
		    l->base[spool_seg_find(l, *startseg)] != *startseg)
			kind = PLAN_DIVERGED;
	} else if (ps->lastseg < l->base[0] && ps->rnext >= l->base[0]) {
		/* retention took the batch to compare with: go on after */
		i = 0;
		while (i < l->n && l->base[i] < ps->headbase)
			i++;
		if (i < l->n && l->base[i] == ps->headbase) {
			*startseg = ps->headbase;
			*startpos = (off_t)(ps->headsize & INT64_MAX);
		} else if (ps->rnext == l->base[0] && epoch_goes_on(s, pfd,
		    l, ps->ldoff, ps->ldepoch)) {
			/*
			 * it ends where our oldest segment begins, and our
			 * log goes on there in the epoch of its newest
			 * batch (an old primary's own batches would be of
			 * an older one): that segment follows its head,
			 * which the END that closed ours (gone with its
			 * segment) must close first unless it did (its
			 * newest batch is an END)
			 */
			*startseg = l->base[0];
			*startpos = 0;
			*seghdr = ps->lastoff != ps->ldoff ? 1 : 2;
		} else
			kind = PLAN_DIVERGED;
	} else if (ps->lastseg < l->base[0]) {
		/* the replica ends below what we still hold */
		kind = (ps->flags & PS_RESTART_OK) ? PLAN_RESTART : PLAN_GAP;
		/*
		 * in a topic compacted alone, only compaction removes
		 * segments (emptied ones, the oldest): the replica's end
		 * was compacted away, unless it holds batches of its own
		 */
		if (kind == PLAN_GAP && t->cfg.compact == SPOOL_CLEANUP_COMPACT)
			kind = epoch_goes_on(s, pfd, l, ps->ldoff,
			    ps->ldepoch) ? PLAN_RESTART : PLAN_DIVERGED;
		*startseg = l->base[0];
		*startpos = 0;
		*seghdr = 1;
	} else
		kind = PLAN_DIVERGED;
	return kind;
}

/* plan_bytes - the bytes of our segments from startseg/startpos on */
static uint64_t
plan_bytes(int pfd, const struct spool_seglist *l, uint64_t startseg,
    off_t startpos)
{
	uint64_t bytes = 0;
	off_t size;
	size_t i;
	int fd;

	for (i = 0; i < l->n; i++) {
		if (l->base[i] < startseg)
			continue;
		if ((fd = spool_seg_open_ro(pfd, l->base[i], &size)) >= 0) {
			close(fd);
			bytes += (uint64_t)size - (l->base[i] == startseg ?
			    (uint64_t)startpos : 0);
		}
	}
	return bytes;
}

/*
 * close_head - DATA: an END batch at next, closing the replica's head
 * where our oldest segment begins, as the END of the segment retention
 * took from us did here
 */
static int
close_head(struct sess *s, uint64_t next)
{
	unsigned char end[SPOOL_HDR_SIZE];

	spool_batch_end(end, next, spool_now_ms());
	return proto_send_data(&s->pr, PROTO_DATA, end, sizeof(end));
}

/*
 * stream_from - send our segments from startseg/startpos on (SEG before
 * each but the first, unless seghdr; an END closing the replica's head
 * first if seghdr is 2), until a commit under way holds a batch back or
 * one is not to stay; *next: the offset after the last batch sent
 */
static int
stream_from(struct sess *s, struct spool_topic *t, int pfd,
    const struct spool_seglist *l, uint64_t startseg, off_t startpos,
    int seghdr, unsigned char **buf, size_t *cap, uint64_t *next,
    uint64_t *sent)
{
	size_t i;
	int r = 0, committing;

	if (s->pass_ms == 0)
		s->pass_ms = spool_now_ms();
	committing = spool_txn_any_unsettled(t, s->pass_ms);
	if (seghdr == 2 && (r = close_head(s, startseg)) < 0)
		return r;
	for (i = 0; i < l->n && r == 0; i++) {
		if (l->base[i] < startseg)
			continue;
		if (l->base[i] != startseg || seghdr) {
			proto_begin(&s->pr, PROTO_SEG);
			proto_u64(&s->pr, l->base[i]);
			if ((r = proto_send(&s->pr)) < 0)
				break;
		}
		/*
		 * a local receiver reads the files itself, unless a
		 * commit is under way: then batches are looked at
		 * one by one, to hold back the commit's
		 */
		if ((s->flags & SPOOL_REPL_LOCAL) && !committing)
			r = local_seg(s, pfd, l->base[i], l->base[i] ==
			    startseg ? startpos : 0, sent);
		else
			r = stream_seg(s, t, pfd, l->base[i],
			    l->base[i] == startseg ? startpos : 0, buf,
			    cap, next, sent);
		if (r > 0) {
			/* a commit under way: next pass; damage: never */
			r = 0;
			break;
		}
	}
	return r;
}

/*
 * repl_s_pstate - PSTATE: check the replica's newest batch, send what
 * follows
 */
int
repl_s_pstate(struct sess *s, unsigned char **buf, size_t *cap)
{
	struct pstate ps;
	struct spool_topic *t = NULL;
	struct spool_seglist l = { NULL, 0 };
	uint64_t startseg = 0, next, sent = 0, gen, bytes = 0;
	off_t startpos = 0;
	int pfd = -1, r, kind, seghdr = 0;

	if ((r = pstate_get(s, &ps)) < 0)
		return r;
	if (spool_topic_open(s->sp, ps.topic, &t) < 0 ||
	    (pfd = spool_part_open(t, ps.part)) < 0 ||
	    spool_seg_list(pfd, &l) < 0 || l.n == 0) {
		r = send_plan(s, PLAN_SKIP, 0);
		goto out;
	}
	next = l.base[0];
	if ((gen = compacted_since(s, t, pfd, &l, &ps)) != 0) {
		r = send_plan(s, PLAN_COMPACTED, gen);
		goto out;
	}
	kind = plan_start(s, t, pfd, &l, &ps, &startseg, &startpos, &seghdr);
	if (kind == PLAN_DIVERGED || kind == PLAN_GAP) {
		r = send_plan(s, kind, l.base[0]);
		goto out;
	}
	bytes = plan_bytes(pfd, &l, startseg, startpos);
	if ((r = send_plan(s, kind, bytes)) < 0)
		goto out;
	if (s->o->progress != NULL && !(ps.flags & PS_DRY) && bytes > 0)
		s->o->progress(s->o->arg, ps.topic, 0, bytes);
	if (!(ps.flags & PS_DRY)) {
		next = ps.rnext;
		if ((r = stream_from(s, t, pfd, &l, startseg, startpos, seghdr,
		    buf, cap, &next, &sent)) < 0)
			goto out;
	}
	proto_begin(&s->pr, PROTO_PEND);
	proto_u64(&s->pr, l.base[0]);
	proto_u64(&s->pr, next);
	r = proto_send(&s->pr);
	if (sent > 0)
		repl_report(s, 1, "%s/%" PRIu32 ": sent %" PRIu64 " bytes",
		    ps.topic, ps.part, sent);
out:
	spool_seg_free(&l);
	if (pfd >= 0)
		close(pfd);
	spool_topic_close(t);
	return r;
}
