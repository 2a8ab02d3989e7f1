/*
 * damage.c - what a reader (walk.c) does where a partition's batches do
 * not follow: damage, holes and batches of a newer format
 *
 * Owns the reader's judgement of a bad place and what it says about it
 * (spool_errmsg, or a warning for a gap retention made).  A batch whose
 * checksum fails is confirmed with the partition lock held shared
 * (waiting out a writer cutting a torn tail) before it is called
 * damage; a bad header is passed (walk.c resyncs at the next good one);
 * offsets that jump are a hole unless the gap is legal (mq-spool(5),
 * Gaps) or lies below where the reader reads from.  A hole stops the
 * partition, or with skip_damage is said and passed; a batch of a newer
 * format stops the partition.
 *
 * It only reads; the shared lock is the one it takes.  It does not walk
 * the batches, resync or move between segments (walk.c).  It also
 * hands the reader's warnings to the caller (spool_damage_warn).
 */

#include <sys/file.h>
#include <sys/stat.h>
#include <sys/types.h>

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "spool_impl.h"

/* spool_damage_warn - a warning for the reader's caller, if it wants them */
void
spool_damage_warn(struct spool_reader *r, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	if (r->o.warn == NULL)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	r->o.warn(r->o.arg, msg);
}

/* spool_damage_skip - record where and why a batch was skipped: -EBADMSG */
int
spool_damage_skip(struct spool_reader *r, struct spool_rpart *p, off_t at,
    const char *why)
{
	spool_seterr(r->t->sp, "%s/%" PRIu32 "/%020" PRIu64 ".log: byte %lld: "
	    "%s; skipped", r->t->name, p->id, p->segbase, (long long)at, why);
	return -EBADMSG;
}

/*
 * stop_at - offsets are missing or out of order at byte at of p's
 * segment: stop the partition there, or with skip_damage go on (the
 * caller moves past); -EBADMSG either way, spool_errmsg says why
 */
static int
stop_at(struct spool_reader *r, struct spool_rpart *p, uint64_t seg, off_t at,
    const char *why)
{
	if (r->o.skip_damage) {
		spool_seterr(r->t->sp, "%s/%" PRIu32 "/%020" PRIu64 ".log: byte "
		    "%lld: %s; skipped", r->t->name, p->id, seg, (long long)at,
		    why);
		return -EBADMSG;
	}
	p->done = 1;
	spool_seterr(r->t->sp, "%s/%" PRIu32 "/%020" PRIu64 ".log: byte %lld: "
	    "%s; stopped at offset %" PRIu64 " (mq-recv --skip-damage reads "
	    "past it)", r->t->name, p->id, seg, (long long)at, why, p->next);
	return -EBADMSG;
}

/* spool_damage_newer - a batch a newer mq wrote: the partition stops there */
int
spool_damage_newer(struct spool_reader *r, struct spool_rpart *p, off_t at,
    const char *what)
{
	p->done = 1;
	spool_seterr(r->t->sp, "%s/%" PRIu32 "/%020" PRIu64 ".log: byte %lld: "
	    "%s", r->t->name, p->id, p->segbase, (long long)at, what);
	return -EPROTO;
}

/*
 * spool_damage_confirm - recheck the batch at pos of a segment (logfd,
 * in the partition directory partfd) with writers held off (the
 * partition lock, shared); 1 if it is really bad, 0 if it was a write in
 * progress.  A replication sender asks it too (repl_srcseg.c).
 */
int
spool_damage_confirm(struct spool_io *io, int partfd, int logfd, off_t pos)
{
	unsigned char hdr[SPOOL_HDR_SIZE], *body;
	struct spool_bhdr h;
	struct stat st;
	int lfd, bad = 1;
	ssize_t n;

	lfd = openat(partfd, SPOOL_LOCK_NAME, O_RDONLY | O_NOFOLLOW |
	    O_CLOEXEC);
	if (lfd >= 0)
		while (flock(lfd, LOCK_SH) == -1 && errno == EINTR)
			;
	n = spool_io_pread(io, logfd, hdr, sizeof(hdr), pos);
	if (n == SPOOL_HDR_SIZE && spool_bhdr_unpack(hdr, &h) == 0 &&
	    fstat(logfd, &st) == 0 &&
	    pos + SPOOL_HDR_SIZE + (off_t)h.body_len <= st.st_size) {
		if ((body = malloc(h.body_len ? h.body_len : 1)) != NULL) {
			n = spool_io_pread(io, logfd, body, h.body_len,
			    pos + SPOOL_HDR_SIZE);
			if (n == (ssize_t)h.body_len &&
			    spool_crc(0, body, h.body_len) == h.body_crc)
				bad = 0;
			free(body);
		}
	}
	if (lfd >= 0)
		close(lfd);	/* releases the lock */
	return bad;
}

/*
 * spool_damage_seg_gap - the segment just opened at base does not start
 * at want, where the one before it ended: a gap retention made (nothing
 * older is left) is said and passed; anything else is a hole
 */
int
spool_damage_seg_gap(struct spool_reader *r, struct spool_rpart *p,
    uint64_t want, uint64_t base)
{
	uint64_t from = want > p->next ? want : p->next;
	char why[160];
	int s;

	if (base > want) {
		spool_seg_free(&p->segs);
		if ((s = spool_seg_list(p->partfd, &p->segs)) < 0)
			return s;
		if (p->segs.n > 0 && p->segs.base[0] >= base) {
			/* gc removed what lay between: as for -o below first */
			if (base > p->next)
				spool_damage_warn(r, "partition %" PRIu32 ": offsets %" PRIu64
				    " to %" PRIu64 " are no longer retained; "
				    "going on at %" PRIu64, p->id, p->next,
				    base - 1, base);
			if (base > p->next)
				p->next = base;
			return 0;
		}
		if (from >= base)
			return 0;	/* all before where we read from */
		snprintf(why, sizeof(why), "offsets %" PRIu64 " to %" PRIu64
		    " are missing (the segment before ends at %" PRIu64 ")",
		    from, base - 1, want);
	} else
		snprintf(why, sizeof(why), "the segment starts at %" PRIu64
		    ", before the end of the one before (%" PRIu64 ")", base,
		    want);
	s = stop_at(r, p, base, 0, why);
	if (r->o.skip_damage && base > p->next)
		p->next = base;
	return s;
}

/*
 * spool_damage_jump - the batch h at pos does not start where the one
 * before ended (p->expect): 0 when the gap is below where p reads from,
 * else as stop_at; with skip_damage the batch is taken as it is
 */
int
spool_damage_jump(struct spool_reader *r, struct spool_rpart *p,
    const struct spool_bhdr *h, off_t pos)
{
	uint64_t from = p->expect > p->next ? p->expect : p->next;
	char why[192];

	if (h->base_offset > p->expect) {
		if (from >= h->base_offset) {
			p->expect = h->base_offset;
			return 0;
		}
		snprintf(why, sizeof(why), "offsets %" PRIu64 " to %" PRIu64
		    " are missing (batch offset %" PRIu64 " where %" PRIu64
		    " was expected)", from, h->base_offset - 1,
		    h->base_offset, p->expect);
	} else
		snprintf(why, sizeof(why), "batch offset %" PRIu64 " where %"
		    PRIu64 " was expected (offsets out of order or repeated)",
		    h->base_offset, p->expect);
	p->expect = h->base_offset;	/* with skip_damage: go on from it */
	return stop_at(r, p, p->segbase, pos, why);
}
