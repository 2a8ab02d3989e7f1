/*
 * repl_recv.c - the receiver, one partition at a time: PSTATE, the
 * plan, appending what comes (divergence in repl_diverge.c, compacted
 * segments in repl_segs.c, the role check in repl_admit.c)
 *
 * The contract of replication (all repl_*.c files) is at the top of
 * repl_send.c.  Nothing here trusts the peer; it never prints
 * (opts.report does).
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

/* ---- the receiver ---------------------------------------------------- */

/*
 * writeback - start writing out what was appended, every WRITEBACK bytes,
 * so that the sync before the acknowledgement finds little left to do
 * and the disk works while we read on (sync_file_range without WAIT
 * syncs nothing: the fdatasync stays the only guarantee)
 */
static void
writeback(struct sess *s, struct spool_mirror *m)
{
	if (!s->sync || m->logfd < 0)
		return;
	if (s->wbfrom > m->end)
		s->wbfrom = 0;	/* another partition's head, or a new one */
	if (m->end - s->wbfrom < (off_t)WRITEBACK)
		return;
	(void)sync_file_range(m->logfd, s->wbfrom, m->end - s->wbfrom,
	    SYNC_FILE_RANGE_WRITE);
	s->wbfrom = m->end;
}

/*
 * r_local - LOCAL: append the whole batches of the source's segment base
 * from pos to size, read here (a local source), checked as DATA is; at
 * a batch that is not to stay (repl_seg_bad) the mirror is given its
 * header, to say what it is, as a remote sender would
 */
static int
r_local(struct sess *s, struct spool_mirror *m, uint64_t base, off_t pos,
    off_t size)
{
	char rel[SPOOL_NAME_MAX + 48], name[SPOOL_SEGNAME_LEN + 16];
	struct spool_bhdr h;
	size_t n, q, blen, nb = 0;
	ssize_t got;
	int pfd, fd, r = 0;

	if (s->srcfd < 0 || !(s->flags & SPOOL_REPL_LOCAL) || pos < 0 ||
	    size < pos)
		return repl_fail(s, -EBADMSG, "protocol: LOCAL unasked for");
	snprintf(rel, sizeof(rel), "topics/%s/%" PRIu32, m->t->name, m->part);
	spool_seg_name(name, base, SPOOL_LOG_SUFFIX);
	if ((pfd = openat(s->srcfd, rel, O_RDONLY | O_DIRECTORY |
	    O_NOFOLLOW | O_CLOEXEC)) == -1)
		return repl_fail(s, -errno, "%s: %s", rel, strerror(errno));
	if ((fd = openat(pfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)) == -1) {
		r = repl_fail(s, -errno, "%s/%s: %s", rel, name,
		    strerror(errno));
		close(pfd);
		return r;
	}
	if (s->lbuf == NULL && (s->lbuf = malloc(s->lcap = LCHUNK)) == NULL)
		r = -ENOMEM;
	while (r == 0 && pos < size) {
		n = (size_t)(size - pos) < s->lcap ? (size_t)(size - pos) :
		    s->lcap;
		if ((got = pread(fd, s->lbuf, n, pos)) <= 0) {
			r = got < 0 ? -errno : 0;
			break;
		}
		n = (size_t)got;
		for (q = 0; q + SPOOL_HDR_SIZE <= n; q += blen) {
			if (spool_bhdr_unpack(s->lbuf + q, &h) < 0)
				break;
			blen = SPOOL_HDR_SIZE + (size_t)h.body_len;
			if (q + blen > n)
				break;
		}
		if (q == 0) {
			/* one batch larger than the buffer, or the tail */
			unsigned char *nb2;

			if (n < SPOOL_HDR_SIZE || spool_bhdr_unpack(s->lbuf,
			    &h) < 0 || SPOOL_HDR_SIZE + (off_t)h.body_len >
			    size - pos || SPOOL_HDR_SIZE + (size_t)h.body_len <=
			    s->lcap || SPOOL_HDR_SIZE + (size_t)h.body_len >=
			    PROTO_FRAME_MAX) {
				/* torn or being written: next pass */
				if (n >= SPOOL_HDR_SIZE && repl_seg_bad(pfd,
				    fd, s->lbuf, pos, size))
					r = spool_mirror_append(m, s->lbuf,
					    SPOOL_HDR_SIZE, &nb);
				break;
			}
			if ((nb2 = realloc(s->lbuf, SPOOL_HDR_SIZE +
			    h.body_len)) == NULL) {
				r = -ENOMEM;
				break;
			}
			s->lbuf = nb2;
			s->lcap = SPOOL_HDR_SIZE + h.body_len;
			continue;
		}
		r = spool_mirror_append(m, s->lbuf, q, &nb);
		writeback(s, m);	/* what came before damage too */
		if (r < 0)
			break;
		if (s->o->progress != NULL)
			s->o->progress(s->o->arg, m->t->name, q, 0);
		pos += (off_t)q;
	}
	close(fd);
	close(pfd);
	return r;
}

/*
 * r_stream - receive SEG/DATA frames until PEND.  A batch that is not
 * one to keep (damage on the source or on the way: -EBADMSG; written by
 * a newer mq: -EPROTO) stops the partition there: what came before it
 * stays, the rest of the stream is read and dropped, and *stopped says
 * so (repl_damaged has said it; the session goes on)
 */
static int
r_stream(struct sess *s, struct spool_mirror *m, uint64_t *srcfirst,
    int *stopped)
{
	const unsigned char *d;
	size_t len, nb = 0;
	int type, r;

	*stopped = 0;
	for (;;) {
		if ((type = repl_expect(s, 0)) < 0)
			return type;
		/* a dry run asked for no data: a sender that sends some errs */
		if ((type == PROTO_SEG || type == PROTO_DATA ||
		    type == PROTO_LOCAL) &&
		    (s->flags & SPOOL_REPL_DRYRUN))
			return repl_fail(s, -EBADMSG,
			    "protocol: data in a dry run");
		/* past a stop: read, not kept */
		if (*stopped && (type == PROTO_SEG || type == PROTO_DATA ||
		    type == PROTO_LOCAL))
			continue;
		switch (type) {
		case PROTO_SEG:
			r = spool_mirror_segment(m, proto_get64(&s->pr),
			    s->sync);
			if (proto_done(&s->pr) < 0)
				return repl_fail(s, -EBADMSG,
				    "protocol: bad SEG");
			if (r == 1) {
				/* a hole of the source's, copied: said */
				repl_report(s, 0, "%s", spool_errmsg(s->sp));
				s->holes++;
				r = 0;
			}
			break;
		case PROTO_DATA:
			d = proto_rest(&s->pr, &len);
			r = spool_mirror_append(m, d, len, &nb);
			writeback(s, m);	/* what came before damage too */
			if (r == 0 && s->o->progress != NULL)
				s->o->progress(s->o->arg, m->t->name, len, 0);
			break;
		case PROTO_LOCAL: {
			uint64_t base = proto_get64(&s->pr);
			uint64_t from = proto_get64(&s->pr);
			uint64_t to = proto_get64(&s->pr);

			if (proto_done(&s->pr) < 0 || from > INT64_MAX ||
			    to > INT64_MAX)
				return repl_fail(s, -EBADMSG,
				    "protocol: bad LOCAL");
			if ((r = r_local(s, m, base, (off_t)from,
			    (off_t)to)) < 0 && s->o->errmsg[0] != '\0')
				return r;
			break;
		}
		case PROTO_PEND:
			*srcfirst = proto_get64(&s->pr);
			(void)proto_get64(&s->pr);
			return proto_done(&s->pr) < 0 ? repl_fail(s, -EBADMSG,
			    "protocol: bad PEND") : 0;
		default:
			return repl_fail(s, -EBADMSG, "protocol: frame type %d "
			    "in a partition's stream", type);
		}
		if (r == -EBADMSG || r == -EPROTO) {
			if ((r = repl_damaged(s, m, r)) < 0)
				return r;
			*stopped = 1;
		} else if (r < 0)
			return repl_fail(s, r, "%s/%" PRIu32 ": %s", m->t->name,
			    m->part, strerror(-r));
	}
}

/* send_pstate - PSTATE: what the replica holds of the partition */
static int
send_pstate(struct sess *s, struct spool_topic *t, uint32_t part,
    struct spool_mirror *m, int compared)
{
	int dry = (s->flags & SPOOL_REPL_DRYRUN) != 0;

	proto_begin(&s->pr, PROTO_PSTATE);
	proto_str(&s->pr, t ? t->name : s->src_topics[s->nsrc - 1]);
	proto_u32(&s->pr, part);
	proto_u8(&s->pr, (uint8_t)((dry ? PS_DRY : 0) |
	    (m->haslast ? PS_HASLAST : 0) |
	    (compared ? PS_NOCOMPACT : 0) |
	    (!spool_mirror_holds(m) ||
	    (s->flags & SPOOL_REPL_DELETE) ? PS_RESTART_OK : 0)));
	proto_u64(&s->pr, m->next);
	proto_u64(&s->pr, m->lastseg);
	proto_u64(&s->pr, (uint64_t)m->lastpos);
	proto_u32(&s->pr, m->lastcrc);
	proto_u64(&s->pr, m->lastoff);
	proto_u64(&s->pr, m->logfd >= 0 ? m->segbase : 0);
	proto_u64(&s->pr, (uint64_t)m->end);
	proto_u32(&s->pr, m->lastepoch);
	proto_u64(&s->pr, m->lastdoff);
	proto_u64(&s->pr, t != NULL && t->cfg.compact !=
	    SPOOL_CLEANUP_DELETE ? spool_mirror_gen(m) : 0);
	return proto_send(&s->pr);
}

/*
 * drops - whether the replica's segments below srcfirst, the source's
 * oldest offset, go: with --delete, or in a topic compaction alone
 * cleans up (it removes only segments it emptied)
 */
static int
drops(const struct sess *s, const struct spool_mirror *m, uint64_t srcfirst)
{
	return ((s->flags & SPOOL_REPL_DELETE) ||
	    m->t->cfg.compact == SPOOL_CLEANUP_COMPACT) &&
	    srcfirst > m->first;
}

/*
 * would - a dry run of topic/part (m: nothing open if the topic is not
 * here yet): say what r_append would do with the plan (kind, bytes) and
 * the source's oldest offset srcfirst
 */
static void
would(struct sess *s, const char *topic, uint32_t part,
    struct spool_mirror *m, int kind, uint64_t bytes, uint64_t srcfirst)
{
	int n;

	if (kind == PLAN_RESTART) {
		repl_report(s, 0, "%s/%" PRIu32 ": the source starts at a "
		    "later segment: would delete the replica's segments and "
		    "copy %" PRIu64 " bytes from offset %" PRIu64, topic, part,
		    bytes, srcfirst);
		return;
	}
	if (bytes > 0)
		repl_report(s, 0, "%s/%" PRIu32 ": would copy %" PRIu64 " bytes "
		    "from offset %" PRIu64, topic, part, bytes, m->next);
	if (m->t != NULL && drops(s, m, srcfirst) &&
	    (n = spool_mirror_droppable(m, srcfirst)) > 0)
		repl_report(s, 0, "%s/%" PRIu32 ": would delete %d segment%s "
		    "below offset %" PRIu64, topic, part, n, n == 1 ? "" : "s",
		    srcfirst);
}

/*
 * r_append - PLAN_APPEND or PLAN_RESTART: take the stream, drop what the
 * source no longer holds, make it durable, acknowledge (before: the
 * replica's next offset when the partition was opened)
 */
static int
r_append(struct sess *s, struct spool_mirror *m, int kind, uint64_t bytes,
    uint64_t before)
{
	struct spool_topic *t = m->t;
	uint32_t part = m->part;
	uint64_t srcfirst;
	int r, stopped;

	if (kind == PLAN_RESTART) {
		repl_report(s, 0, "%s/%" PRIu32 ": the source starts "
		    "at a later segment: the replica's segments go",
		    t->name, part);
		if ((r = spool_mirror_drop(m, UINT64_MAX, s->sync)) < 0)
			return repl_fail(s, r, "%s/%" PRIu32 ": %s",
			    t->name, part, strerror(-r));
	} else if (kind != PLAN_APPEND)
		return repl_fail(s, -EBADMSG, "protocol: PLAN kind %d", kind);
	if (s->o->progress != NULL && bytes > 0)
		s->o->progress(s->o->arg, t->name, 0, bytes);
	if ((r = r_stream(s, m, &srcfirst, &stopped)) < 0)
		return r;
	if (kind == PLAN_RESTART)
		before = m->first;	/* the copy starts over there */
	if (drops(s, m, srcfirst)) {
		if ((r = spool_mirror_drop(m, srcfirst, s->sync)) < 0)
			return repl_fail(s, r, "%s/%" PRIu32 ": %s", t->name,
			    part, strerror(-r));
		if (r > 0)
			repl_report(s, 1, "%s/%" PRIu32 ": %d segment%s below "
			    "offset %" PRIu64 " deleted, as on the source",
			    t->name, part, r, r == 1 ? "" : "s", srcfirst);
	}
	/* durable before acknowledged */
	if (s->sync && (r = spool_mirror_sync(m)) < 0)
		return repl_fail(s, r, "%s/%" PRIu32 ": %s", t->name, part,
		    strerror(-r));
	proto_begin(&s->pr, PROTO_ACK);
	proto_str(&s->pr, t->name);
	proto_u32(&s->pr, part);
	proto_u64(&s->pr, m->next);
	r = proto_send(&s->pr);
	if (m->next != before)
		repl_report(s, 1, "%s/%" PRIu32 ": %" PRIu64 " to %"
		    PRIu64, t->name, part, before, m->next);
	return r;
}

/* r_part - bring one partition up to date */
int
repl_r_part(struct sess *s, struct spool_topic *t, uint32_t part)
{
	struct spool_mirror m;
	uint64_t srcfirst, bytes, before;
	int r, kind, round, dry = (s->flags & SPOOL_REPL_DRYRUN) != 0;
	int compared = 0, stopped;

	/* stopped at damage: said once, not asked for again (following) */
	if (t != NULL && repl_stopped(s, t->name, part))
		return 0;
	if (t == NULL) {	/* a dry run, the topic not here yet */
		memset(&m, 0, sizeof(m));
		m.partfd = m.lockfd = m.logfd = m.idxfd = -1;
	} else if ((r = spool_mirror_open(t, part, !dry, &m)) < 0)
		return repl_fail(s, r, "%s/%" PRIu32 ": %s", t->name, part,
		    r == -EBADMSG ? spool_errmsg(s->sp) : strerror(-r));
	else if ((r = repl_still_replica(s)) < 0) {
		/* under the partition lock: promoted, maybe written to */
		spool_mirror_close(&m);
		return r;
	}
	before = m.next;
	for (round = 0; round < 4; round++) {
		if ((r = send_pstate(s, t, part, &m, compared)) < 0 ||
		    (r = repl_expect(s, PROTO_PLAN)) < 0)
			break;
		kind = proto_get8(&s->pr);
		bytes = proto_get64(&s->pr);
		if ((r = proto_done(&s->pr)) < 0) {
			r = repl_fail(s, r, "protocol: bad PLAN");
			break;
		}
		if (kind == PLAN_SKIP)
			break;
		if (kind == PLAN_GAP) {
			r = repl_behind(s, t->name, part, m.next, bytes);
			break;
		}
		if (kind == PLAN_DIVERGED) {
			if ((r = repl_r_diverged(s, &m)) != 0)
				break;
			before = m.next;	/* what is copied starts there */
			continue;
		}
		if (kind == PLAN_COMPACTED && dry) {
			repl_report(s, 0, "%s/%" PRIu32 ": compacted on the "
			    "source: would copy its compacted segments",
			    t ? t->name : s->src_topics[s->nsrc - 1], part);
			break;
		}
		if (kind == PLAN_COMPACTED) {
			compared = 1;
			if ((r = repl_r_compacted(s, &m)) != 0)
				break;	/* 1: a commit under way, next pass */
			continue;
		}
		if (dry) {
			if ((r = r_stream(s, &m, &srcfirst, &stopped)) == 0)
				would(s, t ? t->name : s->src_topics[s->nsrc -
				    1], part, &m, kind, bytes, srcfirst);
			break;
		}
		r = r_append(s, &m, kind, bytes, before);
		break;
	}
	if (round == 4)
		r = repl_fail(s, -EBADMSG, "%s/%" PRIu32 ": no common prefix "
		    "after cutting back", t->name, part);
	spool_mirror_close(&m);
	return r < 0 ? r : 0;
}
