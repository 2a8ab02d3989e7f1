/*
 * repl_send.c - the sender: it answers LIST, PSTATE, PROBE, GROUPS_REQ,
 * ACK, SCHED_REQ and SCHED_GET
 *
 * The contract of replication (all repl_*.c files):
 *
 * A session runs over one pipe between a sender (the source spool) and
 * a receiver (the replica), whichever end started it: the client sends
 * HELLO, the server answers with its own (proto.h; mq-spool(5) has the
 * exchange).  Then the receiver drives: it asks for the topic list, and
 * for each partition says what it holds (its newest batch: segment,
 * position, header checksum, offset); the sender checks that batch
 * against its own log by reading one header, and streams only what
 * follows, whole batches as stored, segment by segment.  The receiver
 * appends them through mirror.c, syncs, and acknowledges; the sender
 * records the acknowledgement in SPOOL/replicas/ID for mq-send
 * --replicas.  A replica whose newest batch the source does not have has
 * diverged: the two find their newest common batch (by header checksum
 * and offset, so epochs count, as in Kafka's KIP-101) and the replica is
 * cut back to it, its cut-off messages first kept aside in
 * SPOOL/diverged/.  Compaction rewrites sealed segments: when the
 * source's compaction generation (compact.c) is not the one the replica
 * recorded, and the replica's newest batch is the source's or one whose
 * epoch the source's log goes on in, the replica lists its segments
 * (SEGS) and the sender sends whole each sealed one that differs, which
 * mirror.c installs as gc installs one; that is not divergence.
 *
 * Roles live in small files of the spool directory: id (a stable random
 * identity), epoch (the replication epoch writers stamp into batches),
 * replica (present on a replica: the identity of its source).
 *
 * Nothing here trusts the peer: names are checked as everywhere else,
 * partitions against the topic, every batch before it is written; a
 * malformed frame is -EBADMSG.  It never prints (opts.report does).
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

/* ---- the sender ------------------------------------------------------ */

/* s_list - LIST: every topic (that -t lets through) with its config */
static int
s_list(struct sess *s)
{
	struct spool_topic *t;
	char **names, text[CONFIG_TEXT];
	size_t n, i;
	int r, len;

	s->pass_ms = spool_now_ms();	/* a pass begins (spool_mirror_held) */
	if ((r = spool_topic_list(s->sp, &names, &n)) < 0)
		return repl_fail(s, r, "%s: topics: %s", s->path, strerror(-r));
	if ((s->flags & SPOOL_REPL_FOLLOW) && s->ifd < 0)
		s->ifd = inotify_init1(IN_CLOEXEC | IN_NONBLOCK);
	if (s->ifd >= 0) {
		/* watches first, then the listing: nothing falls between */
		repl_watch_all(s, names, n);
		repl_drain(s);
	}
	for (i = 0; i < n && r == 0; i++) {
		if (!repl_want_topic(s, names[i]))
			continue;
		/*
		 * Deleted meanwhile: skip it.  Any other failure (a damaged
		 * config, EACCES) fails the listing, or a receiver with
		 * --delete would take the topic for deleted and drop its copy
		 */
		if ((r = spool_topic_open(s->sp, names[i], &t)) == -ENOENT) {
			r = 0;
			continue;
		}
		if (r < 0)
			break;
		if ((len = spool_config_format(&t->cfg, text,
		    sizeof(text))) >= 0) {
			proto_begin(&s->pr, PROTO_TOPIC);
			proto_str(&s->pr, names[i]);
			proto_str(&s->pr, text);
			r = proto_send(&s->pr);
		} else
			r = len;	/* not a topic left out: an error */
		spool_topic_close(t);
	}
	for (i = 0; i < n; i++)
		free(names[i]);
	free(names);
	if (r < 0)
		return r;
	proto_begin(&s->pr, PROTO_LIST_END);
	return proto_send(&s->pr);
}

/* seg_open - a source segment for reading, and its size */
static int
seg_open(int pfd, uint64_t base, off_t *size)
{
	char name[SPOOL_SEGNAME_LEN + 16];
	struct stat st;
	int fd;

	spool_seg_name(name, base, SPOOL_LOG_SUFFIX);
	if ((fd = openat(pfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)) == -1)
		return -errno;
	if (fstat(fd, &st) == -1) {
		close(fd);
		return -errno;
	}
	*size = st.st_size;
	return fd;
}

/* has_batch - whether the source holds the batch at base/pos */
static int
has_batch(struct sess *s, int pfd, uint64_t base, off_t pos, uint32_t crc,
    uint64_t off)
{
	unsigned char hdr[SPOOL_HDR_SIZE];
	struct spool_bhdr h;
	off_t size;
	int fd, ok;

	if ((fd = seg_open(pfd, base, &size)) < 0)
		return 0;
	ok = pos >= 0 && pos <= size - SPOOL_HDR_SIZE &&
	    pread(fd, hdr, sizeof(hdr), pos) == SPOOL_HDR_SIZE &&
	    spool_bhdr_unpack(hdr, &h) == 0 && get32(hdr + 4) == crc &&
	    h.base_offset == off &&
	    (off_t)h.body_len <= size - pos - SPOOL_HDR_SIZE;
	close(fd);
	return ok;
}

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
	unsigned char hdr[SPOOL_HDR_SIZE];
	struct spool_bhdr h;
	off_t pos, size;
	ssize_t i;
	size_t k;
	int fd, found = -1;

	(void)s;
	if (l->n == 0)
		return 0;
	if (off < l->base[0])
		i = 0;		/* compaction removed where it was */
	else if ((i = spool_seg_find(l, off)) < 0)
		return 0;
	for (k = (size_t)i; k < l->n && found < 0; k++) {
		if ((fd = seg_open(pfd, l->base[k], &size)) < 0)
			return 0;
		for (pos = 0; pos + SPOOL_HDR_SIZE <= size; pos +=
		    SPOOL_HDR_SIZE + h.body_len) {
			if (pread(fd, hdr, sizeof(hdr), pos) != SPOOL_HDR_SIZE ||
			    spool_bhdr_unpack(hdr, &h) < 0)
				break;
			if (h.type != SPOOL_TYPE_END &&
			    h.base_offset + h.count > off) {
				found = h.epoch == epoch;
				break;
			}
		}
		close(fd);
	}
	return found == 1;
}

/*
 * stream_seg - send the whole batches of a segment from pos; stops at a
 * torn or unwritten tail, and (returning 1) at a batch of a commit under
 * way.  Returns the offset after the last batch sent in *next.
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

	if ((fd = seg_open(pfd, base, &size)) < 0)
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
			if ((held = spool_mirror_held(t, &h, s->pass_ms)) != 0)
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
			break;	/* torn, being written, or damaged */
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

	if ((fd = seg_open(pfd, base, &size)) < 0)
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

/* s_pstate - PSTATE: check the replica's newest batch, send what follows */
static int
s_pstate(struct sess *s, unsigned char **buf, size_t *cap)
{
	char topic[SPOOL_NAME_MAX + 1];
	struct spool_topic *t = NULL;
	struct spool_seglist l = { NULL, 0 };
	uint64_t rnext, lastseg, lastoff, headbase, headsize, bytes = 0;
	uint64_t next, sent = 0, startseg, ldoff, rgen, gen;
	uint32_t part, lastcrc, ldepoch;
	off_t lastpos, size, startpos;
	size_t i;
	int flags, pfd = -1, r, fd, kind = PLAN_APPEND, seghdr = 0;
	int committing = 0;

	proto_getstr(&s->pr, topic, sizeof(topic));
	part = proto_get32(&s->pr);
	flags = proto_get8(&s->pr);
	rnext = proto_get64(&s->pr);
	lastseg = proto_get64(&s->pr);
	lastpos = (off_t)(proto_get64(&s->pr) & INT64_MAX);
	lastcrc = proto_get32(&s->pr);
	lastoff = proto_get64(&s->pr);
	headbase = proto_get64(&s->pr);
	headsize = proto_get64(&s->pr);
	ldepoch = proto_get32(&s->pr);
	ldoff = proto_get64(&s->pr);
	rgen = proto_get64(&s->pr);
	if (proto_done(&s->pr) < 0 || !spool_topic_name_ok(topic))
		return repl_fail(s, -EBADMSG, "protocol: malformed PSTATE");
	if (spool_topic_open(s->sp, topic, &t) < 0 ||
	    (pfd = spool_part_open(t, part)) < 0 ||
	    spool_seg_list(pfd, &l) < 0 || l.n == 0) {
		r = send_plan(s, PLAN_SKIP, 0);
		goto out;
	}
	next = l.base[0];
	/*
	 * compacted here since the replica last compared its segments: if
	 * its newest batch is ours, or one compaction rewrote, it compares
	 * them (SEGS) before anything else, so that it is not taken for
	 * diverged and ends with the segments as they are here
	 */
	if ((flags & PS_HASLAST) && !(flags & PS_NOCOMPACT) &&
	    t->cfg.compact != SPOOL_CLEANUP_DELETE &&
	    (gen = spool_compact_gen(pfd)) != 0 && gen != rgen &&
	    (has_batch(s, pfd, lastseg, lastpos, lastcrc, lastoff) ||
	    (lastseg >= l.base[0] && lastseg < l.base[l.n - 1] &&
	    epoch_goes_on(s, pfd, &l, ldoff, ldepoch)))) {
		r = send_plan(s, PLAN_COMPACTED, gen);
		goto out;
	}
	if (!(flags & PS_HASLAST)) {
		/* the replica holds nothing: from the first segment */
		startseg = l.base[0];
		startpos = 0;
		seghdr = 1;
	} else if (has_batch(s, pfd, lastseg, lastpos, lastcrc, lastoff)) {
		/* a prefix of ours: go on from the replica's head */
		startseg = headbase;
		startpos = (off_t)(headsize & INT64_MAX);
		if (spool_seg_find(&l, startseg) < 0 ||
		    l.base[spool_seg_find(&l, startseg)] != startseg)
			kind = PLAN_DIVERGED;
	} else if (lastseg < l.base[0] && rnext >= l.base[0]) {
		/* retention took the batch to compare with: go on after */
		i = 0;
		while (i < l.n && l.base[i] < headbase)
			i++;
		if (i < l.n && l.base[i] == headbase) {
			startseg = headbase;
			startpos = (off_t)(headsize & INT64_MAX);
		} else
			kind = PLAN_DIVERGED;
	} else if (lastseg < l.base[0]) {
		/* the replica ends below what we still hold */
		kind = (flags & PS_RESTART_OK) ? PLAN_RESTART : PLAN_GAP;
		/*
		 * in a topic compacted alone, only compaction removes
		 * segments (emptied ones, the oldest): the replica's end
		 * was compacted away, unless it holds batches of its own
		 */
		if (kind == PLAN_GAP && t->cfg.compact == SPOOL_CLEANUP_COMPACT)
			kind = epoch_goes_on(s, pfd, &l, ldoff, ldepoch) ?
			    PLAN_RESTART : PLAN_DIVERGED;
		startseg = l.base[0];
		startpos = 0;
		seghdr = 1;
	} else
		kind = PLAN_DIVERGED;
	if (kind == PLAN_DIVERGED || kind == PLAN_GAP) {
		r = send_plan(s, kind, l.base[0]);
		goto out;
	}
	for (i = 0; i < l.n; i++) {
		if (l.base[i] < startseg)
			continue;
		if ((fd = seg_open(pfd, l.base[i], &size)) >= 0) {
			close(fd);
			bytes += (uint64_t)size - (l.base[i] == startseg ?
			    (uint64_t)startpos : 0);
		}
	}
	if ((r = send_plan(s, kind, bytes)) < 0)
		goto out;
	if (s->o->progress != NULL && !(flags & PS_DRY) && bytes > 0)
		s->o->progress(s->o->arg, topic, 0, bytes);
	if (!(flags & PS_DRY)) {
		if (s->pass_ms == 0)
			s->pass_ms = spool_now_ms();
		committing = spool_txn_any_unsettled(t, s->pass_ms);
		next = rnext;
		for (i = 0; i < l.n && r == 0; i++) {
			if (l.base[i] < startseg)
				continue;
			if (l.base[i] != startseg || seghdr) {
				proto_begin(&s->pr, PROTO_SEG);
				proto_u64(&s->pr, l.base[i]);
				if ((r = proto_send(&s->pr)) < 0)
					break;
			}
			/*
			 * a local receiver reads the files itself, unless a
			 * commit is under way: then batches are looked at
			 * one by one, to hold back the commit's
			 */
			if ((s->flags & SPOOL_REPL_LOCAL) && !committing)
				r = local_seg(s, pfd, l.base[i], l.base[i] ==
				    startseg ? startpos : 0, &sent);
			else
				r = stream_seg(s, t, pfd, l.base[i],
				    l.base[i] == startseg ? startpos : 0, buf,
				    cap, &next, &sent);
			if (r == 1) {
				r = 0;	/* a commit under way: next pass */
				break;
			}
		}
		if (r < 0)
			goto out;
	}
	proto_begin(&s->pr, PROTO_PEND);
	proto_u64(&s->pr, l.base[0]);
	proto_u64(&s->pr, next);
	r = proto_send(&s->pr);
	if (sent > 0)
		repl_report(s, 1, "%s/%" PRIu32 ": sent %" PRIu64 " bytes",
		    topic, part, sent);
out:
	spool_seg_free(&l);
	if (pfd >= 0)
		close(pfd);
	spool_topic_close(t);
	return r;
}

/*
 * send_whole - SEGFILE and DATA: sealed segment base whole, as stored,
 * unless a batch of it must be held back (1: nothing sent)
 */
static int
send_whole(struct sess *s, struct spool_topic *t, int pfd, uint64_t base,
    unsigned char **buf, size_t *cap, uint64_t *sent)
{
	unsigned char hdr[SPOOL_HDR_SIZE], *nb;
	struct spool_bhdr h;
	off_t size, pos;
	size_t n, q, blen = 0;
	ssize_t got;
	int fd, r = 0;

	if ((fd = seg_open(pfd, base, &size)) < 0)
		return fd;
	/* one file, one version: what gc renames meanwhile is not this */
	for (pos = 0; pos + SPOOL_HDR_SIZE <= size; pos += SPOOL_HDR_SIZE +
	    h.body_len) {
		if (pread(fd, hdr, sizeof(hdr), pos) != SPOOL_HDR_SIZE ||
		    spool_bhdr_unpack(hdr, &h) < 0 || (off_t)h.body_len >
		    size - pos - SPOOL_HDR_SIZE ||
		    SPOOL_HDR_SIZE + (size_t)h.body_len >= PROTO_FRAME_MAX) {
			close(fd);
			spool_seterr(s->sp, "%s: segment %" PRIu64 ": a bad "
			    "batch at byte %lld", t->name, base,
			    (long long)pos);
			return -EBADMSG;
		}
		if (spool_mirror_held(t, &h, s->pass_ms)) {
			close(fd);
			return 1;
		}
	}
	if (pos != size) {
		close(fd);
		return 1;	/* not sealed after all */
	}
	proto_begin(&s->pr, PROTO_SEGFILE);
	proto_u64(&s->pr, base);
	proto_u64(&s->pr, (uint64_t)size);
	if ((r = proto_send(&s->pr)) < 0) {
		close(fd);
		return r;
	}
	for (pos = 0; pos < size && r == 0; pos += (off_t)q) {
		n = (size_t)(size - pos) < *cap ? (size_t)(size - pos) : *cap;
		if ((got = pread(fd, *buf, n, pos)) <= 0) {
			r = got < 0 ? -errno : -EIO;
			break;
		}
		n = (size_t)got;
		for (q = 0; q + SPOOL_HDR_SIZE <= n; q += blen) {
			if (spool_bhdr_unpack(*buf + q, &h) < 0) {
				r = -EIO;
				break;
			}
			blen = SPOOL_HDR_SIZE + (size_t)h.body_len;
			if (q + blen > n)
				break;
		}
		if (r == 0 && q == 0) {
			/* one batch larger than the buffer */
			if (blen <= *cap) {
				r = -EIO;	/* shorter than it was */
				break;
			}
			if ((nb = realloc(*buf, blen)) == NULL) {
				r = -ENOMEM;
				break;
			}
			*buf = nb;
			*cap = blen;
			continue;
		}
		if (r == 0 && (r = proto_send_data(&s->pr, PROTO_DATA, *buf,
		    q)) == 0) {
			*sent += q;
			if (s->o->progress != NULL)
				s->o->progress(s->o->arg, NULL, q, 0);
		}
	}
	close(fd);
	return r;
}

/*
 * s_segs - SEGS: the replica's segments; each that is sealed here and
 * differs (size, last batch) is sent whole, then SEGS_END with the
 * compaction generation they are of (0: one had to wait)
 */
static int
s_segs(struct sess *s, unsigned char **buf, size_t *cap)
{
	char topic[SPOOL_NAME_MAX + 1];
	struct spool_topic *t = NULL;
	struct spool_seglist l = { NULL, 0 };
	struct spool_io *io = NULL;
	uint64_t *rb = NULL, gen = 0, sent = 0;
	off_t *rs = NULL, size;
	uint32_t part, n, i, *rc = NULL, crc, count = 0;
	ssize_t k;
	int pfd = -1, r = 0;

	proto_getstr(&s->pr, topic, sizeof(topic));
	part = proto_get32(&s->pr);
	n = proto_get32(&s->pr);
	if (proto_done(&s->pr) < 0 || !spool_topic_name_ok(topic) ||
	    n > SEGS_MAX || (size_t)n * 20 > s->pr.len)
		return repl_fail(s, -EBADMSG, "protocol: malformed SEGS");
	if ((rb = calloc(n + 1, sizeof(*rb))) == NULL ||
	    (rs = calloc(n + 1, sizeof(*rs))) == NULL ||
	    (rc = calloc(n + 1, sizeof(*rc))) == NULL) {
		r = -ENOMEM;
		goto out;
	}
	/* the frames below reuse the buffer: the list is copied first */
	for (i = 0; i < n; i++) {
		rb[i] = proto_get64(&s->pr);
		rs[i] = (off_t)(proto_get64(&s->pr) & INT64_MAX);
		rc[i] = proto_get32(&s->pr);
	}
	if (proto_done(&s->pr) < 0) {
		r = repl_fail(s, -EBADMSG, "protocol: malformed SEGS");
		goto out;
	}
	if (s->pass_ms == 0)
		s->pass_ms = spool_now_ms();
	/* the generation first: a rewrite after it shows in the next one */
	if (spool_topic_open(s->sp, topic, &t) == 0 &&
	    (pfd = spool_part_open(t, part)) >= 0 &&
	    spool_seg_list(pfd, &l) == 0 && l.n > 0)
		gen = spool_compact_gen(pfd);
	for (i = 0; i < n && gen != 0 && r == 0; i++) {
		/* ours and sealed, or none of this exchange's business */
		if ((k = spool_seg_find(&l, rb[i])) < 0 || l.base[k] != rb[i] ||
		    (size_t)k + 1 >= l.n)
			continue;
		if (io == NULL && (io = spool_get_io(s->sp)) == NULL) {
			r = -ENOMEM;
			break;
		}
		if (spool_mirror_ident(io, pfd, rb[i], &size, &crc) < 0 ||
		    (size == rs[i] && crc == rc[i]))
			continue;
		if ((r = send_whole(s, t, pfd, rb[i], buf, cap, &sent)) == 1) {
			gen = 0;	/* held back: next pass */
			r = 0;
			break;
		}
		if (r < 0) {
			r = repl_fail(s, r, "%s/%" PRIu32 ": %s", topic, part,
			    r == -EBADMSG ? spool_errmsg(s->sp) :
			    strerror(-r));
			break;
		}
		count++;
	}
	if (r == 0) {
		proto_begin(&s->pr, PROTO_SEGS_END);
		proto_u64(&s->pr, gen);
		proto_u32(&s->pr, count);
		r = proto_send(&s->pr);
	}
	if (count > 0)
		repl_report(s, 1, "%s/%" PRIu32 ": sent %" PRIu32 " compacted "
		    "segment%s, %" PRIu64 " bytes", topic, part, count,
		    count == 1 ? "" : "s", sent);
out:
	free(rb);
	free(rs);
	free(rc);
	spool_seg_free(&l);
	if (pfd >= 0)
		close(pfd);
	spool_topic_close(t);
	return r;
}

/* s_probe - PROBE: the newest of the replica's batches we hold too */
static int
s_probe(struct sess *s)
{
	char topic[SPOOL_NAME_MAX + 1];
	struct spool_topic *t = NULL;
	uint64_t segbase, off;
	uint32_t part, n, i, crc;
	off_t pos;
	int pfd = -1, found = -1;

	proto_getstr(&s->pr, topic, sizeof(topic));
	part = proto_get32(&s->pr);
	segbase = proto_get64(&s->pr);
	n = proto_get32(&s->pr);
	if (proto_done(&s->pr) < 0 || !spool_topic_name_ok(topic) ||
	    n > PROBE_MAX)
		return repl_fail(s, -EBADMSG, "protocol: malformed PROBE");
	if (spool_topic_open(s->sp, topic, &t) == 0)
		pfd = spool_part_open(t, part);
	for (i = 0; i < n; i++) {
		pos = (off_t)(proto_get64(&s->pr) & INT64_MAX);
		off = proto_get64(&s->pr);
		crc = proto_get32(&s->pr);
		if (proto_done(&s->pr) < 0)
			break;
		if (found < 0 && pfd >= 0 &&
		    has_batch(s, pfd, segbase, pos, crc, off))
			found = (int)i;
	}
	if (pfd >= 0)
		close(pfd);
	spool_topic_close(t);
	if (proto_done(&s->pr) < 0)
		return repl_fail(s, -EBADMSG, "protocol: malformed PROBE");
	proto_begin(&s->pr, PROTO_PROBE_R);
	proto_u32(&s->pr, (uint32_t)found);
	return proto_send(&s->pr);
}

/* s_groups - GROUPS_REQ: the committed offsets of a topic's groups */
static int
s_groups(struct sess *s)
{
	char topic[SPOOL_NAME_MAX + 1], **groups = NULL;
	struct spool_topic *t = NULL;
	size_t ng = 0, k;
	uint64_t off;
	uint32_t p, count = 0;
	size_t countpos;
	int held;

	proto_getstr(&s->pr, topic, sizeof(topic));
	if (proto_done(&s->pr) < 0 || !spool_topic_name_ok(topic))
		return repl_fail(s, -EBADMSG, "protocol: malformed GROUPS_REQ");
	proto_begin(&s->pr, PROTO_GROUPS);
	countpos = s->pr.len;
	proto_u32(&s->pr, 0);
	if (spool_topic_open(s->sp, topic, &t) == 0 &&
	    spool_group_list(t, &groups, &ng) == 0) {
		for (k = 0; k < ng; k++) {
			for (p = 0; p < t->cfg.partitions; p++) {
				if (spool_group_info(t, groups[k], p, &off,
				    &held) < 0)
					continue;
				proto_str(&s->pr, groups[k]);
				proto_u32(&s->pr, p);
				proto_u64(&s->pr, off);
				count++;
			}
			free(groups[k]);
		}
		free(groups);
	}
	spool_topic_close(t);
	if (!s->pr.bad)
		put32(s->pr.buf + countpos, count);
	return proto_send(&s->pr);
}

/* s_ack - ACK: the replica holds topic/part durably up to next */
static int
s_ack(struct sess *s)
{
	char topic[SPOOL_NAME_MAX + 1];
	struct spool_topic *t;
	struct spool_part_info pi;
	uint32_t part;
	uint64_t next;
	int r;

	proto_getstr(&s->pr, topic, sizeof(topic));
	part = proto_get32(&s->pr);
	next = proto_get64(&s->pr);
	if (proto_done(&s->pr) < 0 || !spool_topic_name_ok(topic) ||
	    part >= SPOOL_PART_MAX)
		return repl_fail(s, -EBADMSG, "protocol: malformed ACK");
	/*
	 * A replica cannot hold more than this spool has: an ACK past the
	 * partition's end (a confused or forging peer) counts only up to it,
	 * so mq-send --replicas never takes it for data that was not sent
	 */
	if (spool_topic_open(s->sp, topic, &t) < 0)
		return 0;	/* deleted meanwhile: nothing to acknowledge */
	r = part < t->cfg.partitions ? spool_part_bounds(t, part, &pi) :
	    -ENOENT;
	spool_topic_close(t);
	if (r < 0)
		return 0;
	if (next > pi.next)
		next = pi.next;
	if ((r = repl_acks_set(s, topic, part, next)) < 0)
		repl_report(s, 0, "replicas/%s: %s", s->peer_id, strerror(-r));
	return 0;
}

/*
 * s_sched - SCHED_REQ: the topic's scheduled files, between two readings
 * of each partition's next offset (schedule.c says what the replica
 * does with them)
 */
static int
s_sched(struct sess *s)
{
	char topic[SPOOL_NAME_MAX + 1], **names = NULL;
	struct spool_topic *t = NULL;
	struct spool_part_info pi;
	uint64_t *before = NULL;
	size_t n = 0, i;
	uint32_t p, np = 0;
	int r = 0;

	proto_getstr(&s->pr, topic, sizeof(topic));
	if (proto_done(&s->pr) < 0 || !spool_topic_name_ok(topic))
		return repl_fail(s, -EBADMSG, "protocol: malformed SCHED_REQ");
	if (spool_topic_open(s->sp, topic, &t) == 0) {
		np = t->cfg.partitions;
		if ((before = calloc(np, sizeof(*before))) == NULL)
			r = -ENOMEM;
		for (p = 0; p < np && r == 0; p++)
			if (spool_part_bounds(t, p, &pi) == 0)
				before[p] = pi.next;
		if (r == 0 && (r = spool_sched_names(t, &names, &n)) < 0)
			r = repl_fail(s, r, "%s/scheduled: %s", topic,
			    strerror(-r));
	}
	if (r == 0) {
		proto_begin(&s->pr, PROTO_SCHED);
		proto_u32(&s->pr, np);
		for (p = 0; p < np; p++) {
			proto_u64(&s->pr, before[p]);
			/* after listing: a file not listed was moved below */
			if (spool_part_bounds(t, p, &pi) < 0)
				pi.next = 0;
			proto_u64(&s->pr, pi.next);
		}
		proto_u32(&s->pr, (uint32_t)n);
		for (i = 0; i < n; i++)
			proto_str(&s->pr, names[i]);
		r = proto_send(&s->pr);
	}
	for (i = 0; i < n; i++)
		free(names[i]);
	free(names);
	free(before);
	spool_topic_close(t);
	return r;
}

/* s_sched_get - SCHED_GET: one scheduled file, or nothing if gone */
static int
s_sched_get(struct sess *s)
{
	char topic[SPOOL_NAME_MAX + 1], name[SPOOL_NAME_MAX + 1];
	struct spool_topic *t;
	unsigned char *buf = NULL;
	size_t len = 0;
	int r;

	proto_getstr(&s->pr, topic, sizeof(topic));
	proto_getstr(&s->pr, name, sizeof(name));
	if (proto_done(&s->pr) < 0 || !spool_topic_name_ok(topic))
		return repl_fail(s, -EBADMSG, "protocol: malformed SCHED_GET");
	if (spool_topic_open(s->sp, topic, &t) == 0) {
		if ((r = spool_sched_get(t, name, &buf, &len)) < 0 &&
		    r != -ENOENT) {
			spool_topic_close(t);
			return repl_fail(s, r, "%s/scheduled/%s: %s", topic,
			    name, r == -EBADMSG ? spool_errmsg(s->sp) :
			    strerror(-r));
		}
		spool_topic_close(t);
	}
	r = proto_send_data(&s->pr, PROTO_SCHED_FILE, buf, len);
	free(buf);
	return r;
}

/* sender - serve the receiver's requests until BYE */
int
repl_sender(struct sess *s)
{
	unsigned char *buf;
	size_t cap = CHUNK;
	int type, r;

	if ((buf = malloc(cap)) == NULL)
		return -ENOMEM;
	(void)repl_acks_load(s);
	for (;;) {
		if ((type = repl_expect(s, 0)) < 0) {
			r = type;
			break;
		}
		switch (type) {
		case PROTO_LIST:
			r = s_list(s);
			break;
		case PROTO_PSTATE:
			r = s_pstate(s, &buf, &cap);
			break;
		case PROTO_PROBE:
			r = s_probe(s);
			break;
		case PROTO_SEGS:
			r = s_segs(s, &buf, &cap);
			break;
		case PROTO_GROUPS_REQ:
			r = s_groups(s);
			break;
		case PROTO_ACK:
			r = s_ack(s);
			break;
		case PROTO_SCHED_REQ:
			r = s_sched(s);
			break;
		case PROTO_SCHED_GET:
			r = s_sched_get(s);
			break;
		case PROTO_WAIT:
			r = repl_s_wait(s);
			s->o->passes++;
			break;
		case PROTO_BYE:
			s->o->passes++;
			free(buf);
			return 0;
		default:
			r = repl_fail(s, -EBADMSG, "protocol: frame type %d "
			    "from the receiver", type);
		}
		if (r < 0)
			break;
	}
	free(buf);
	return r;
}
