/*
 * repl_segs.c - the SEGS exchange: segments compacted on the source,
 * sent whole and installed whole on the replica
 *
 * When the source's compaction generation (compact.c) is not the one the
 * replica recorded, the replica lists its segments (SEGS: base, size,
 * checksum of its batch headers); the sender sends whole each one
 * that is sealed here and differs (SEGFILE, then DATA), unless a batch of
 * it must be held back for a commit under way, and ends with SEGS_END
 * and the generation those segments are of (0: one had to wait).  The
 * receiver installs each through mirror_install.c, in place of its own,
 * and records the generation once they are in place.  That is not
 * divergence: nothing is cut or kept aside.  The contract of
 * replication is at the top of repl_send.c.  Nothing here trusts the
 * peer; it never prints (opts.report does).
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

/*
 * send_bytes - one DATA frame of bytes from..to of segment fd, read into buf
 */
static int
send_bytes(struct sess *s, int fd, off_t from, off_t to, unsigned char *buf,
    uint64_t *sent)
{
	size_t n = (size_t)(to - from);
	ssize_t got;
	int r;

	if ((got = pread(fd, buf, n, from)) < 0)
		return -errno;
	if ((size_t)got != n)
		return -EIO;		/* shorter than it was */
	if ((r = proto_send_data(&s->pr, PROTO_DATA, buf, n)) < 0)
		return r;
	*sent += n;
	if (s->o->progress != NULL)
		s->o->progress(s->o->arg, NULL, n, 0);
	return 0;
}

/*
 * send_data - segment fd as DATA frames cut at batch ends: as many
 * whole batches as the buffer holds, or one larger batch alone (the
 * buffer grows to it)
 */
static int
send_data(struct sess *s, struct spool_io *io, int fd, uint64_t base,
    off_t size, unsigned char **buf, size_t *cap, uint64_t *sent)
{
	struct spool_cursor c;
	unsigned char *nb;
	off_t start = 0, end;
	int k, r = 0;

	spool_cursor_fd(&c, io, fd, base, size, 0, UINT64_MAX);
	while (r == 0 && ((k = spool_cursor_next(&c)) == SPOOL_CUR_BATCH ||
	    k == SPOOL_CUR_HOLE)) {
		if (k == SPOOL_CUR_HOLE)
			continue;	/* checked before: not ours */
		end = c.pos + SPOOL_HDR_SIZE + (off_t)c.h.body_len;
		if (end - start > (off_t)*cap && c.pos > start) {
			r = send_bytes(s, fd, start, c.pos, *buf, sent);
			start = c.pos;
		}
		if (r == 0 && end - start > (off_t)*cap) {
			if ((nb = realloc(*buf, (size_t)(end - start))) == NULL)
				r = -ENOMEM;
			else {
				*buf = nb;
				*cap = (size_t)(end - start);
			}
		}
	}
	spool_cursor_close(&c);
	if (r == 0 && k != SPOOL_CUR_DONE)
		r = k < 0 && k != -EPROTO ? k : -EIO;	/* changed since */
	if (r == 0 && start < size)
		r = send_bytes(s, fd, start, size, *buf, sent);
	return r;
}

/*
 * send_whole - SEGFILE and DATA: sealed segment base whole, as stored,
 * unless a batch of it must be held back (1: nothing sent)
 */
static int
send_whole(struct sess *s, struct spool_io *io, struct spool_topic *t,
    int pfd, uint64_t base, unsigned char **buf, size_t *cap, uint64_t *sent)
{
	struct spool_cursor c;
	off_t size, pos;
	int fd, k, r;

	if ((fd = spool_seg_open_ro(pfd, base, &size)) < 0)
		return fd;
	/* one file, one version: what gc renames meanwhile is not this */
	spool_cursor_fd(&c, io, fd, base, size, 0, UINT64_MAX);
	/* a jump in offsets is not this exchange's business */
	while ((k = spool_cursor_next(&c)) == SPOOL_CUR_BATCH ||
	    k == SPOOL_CUR_HOLE) {
		if (k == SPOOL_CUR_HOLE)
			continue;
		if (SPOOL_HDR_SIZE + (size_t)c.h.body_len >= PROTO_FRAME_MAX)
			break;
		if (spool_mirror_held(t, &c.h, s->pass_ms, &s->held)) {
			spool_cursor_close(&c);
			close(fd);
			return 1;
		}
	}
	pos = c.pos;
	spool_cursor_close(&c);
	if (k != SPOOL_CUR_DONE) {
		close(fd);
		if (k < 0 && k != -EPROTO)
			return k;
		spool_seterr(s->sp, "%s: segment %" PRIu64 ": a bad batch at "
		    "byte %lld", t->name, base, (long long)pos);
		return -EBADMSG;
	}
	proto_begin(&s->pr, PROTO_SEGFILE);
	proto_u64(&s->pr, base);
	proto_u64(&s->pr, (uint64_t)size);
	if ((r = proto_send(&s->pr)) < 0) {
		close(fd);
		return r;
	}
	r = send_data(s, io, fd, base, size, buf, cap, sent);
	close(fd);
	return r;
}

/*
 * segs_get - the n segments a SEGS frame lists (base, size, checksum),
 * copied out of it; the caller frees them whatever this returns
 */
static int
segs_get(struct sess *s, uint32_t n, uint64_t **prb, off_t **prs,
    uint32_t **prc)
{
	uint64_t *rb;
	off_t *rs;
	uint32_t i, *rc;

	if ((rb = *prb = calloc(n + 1, sizeof(*rb))) == NULL ||
	    (rs = *prs = calloc(n + 1, sizeof(*rs))) == NULL ||
	    (rc = *prc = calloc(n + 1, sizeof(*rc))) == NULL)
		return -ENOMEM;
	/* the frames below reuse the buffer: the list is copied first */
	for (i = 0; i < n; i++) {
		rb[i] = proto_get64(&s->pr);
		rs[i] = (off_t)(proto_get64(&s->pr) & INT64_MAX);
		rc[i] = proto_get32(&s->pr);
	}
	if (proto_done(&s->pr) < 0)
		return repl_fail(s, -EBADMSG, "protocol: malformed SEGS");
	return 0;
}

/*
 * repl_s_segs - SEGS: the replica's segments; each that is sealed here and
 * differs (size, batch headers) is sent whole, then SEGS_END with the
 * compaction generation they are of (0: one had to wait)
 */
int
repl_s_segs(struct sess *s, unsigned char **buf, size_t *cap)
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
	if ((r = segs_get(s, n, &rb, &rs, &rc)) < 0)
		goto out;
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
		/* one not told apart would stay, under the generation */
		if ((r = spool_mirror_ident(io, pfd, rb[i], &size, &crc)) < 0) {
			if (r == -ENOENT) {
				r = 0;	/* gone since the list: retention */
				continue;
			}
			r = repl_fail(s, r, "%s/%" PRIu32 ": %s", topic, part,
			    strerror(-r));
			break;
		}
		if (size == rs[i] && crc == rc[i])
			continue;
		if ((r = send_whole(s, io, t, pfd, rb[i], buf, cap,
		    &sent)) == 1) {
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

/* send_segs - SEGS: the replica's segments, each with its size and crc */
static int
send_segs(struct sess *s, struct spool_mirror *m)
{
	struct spool_seglist l;
	uint32_t crc;
	off_t sz;
	size_t i;
	int r;

	if ((r = spool_mirror_segs(m, &l)) < 0)
		return repl_fail(s, r, "%s/%" PRIu32 ": %s", m->t->name,
		    m->part, strerror(-r));
	proto_begin(&s->pr, PROTO_SEGS);
	proto_str(&s->pr, m->t->name);
	proto_u32(&s->pr, m->part);
	proto_u32(&s->pr, (uint32_t)l.n);
	for (i = 0; i < l.n; i++) {
		if (spool_mirror_ident(m->io, m->partfd, l.base[i], &sz,
		    &crc) < 0)
			sz = crc = 0;
		proto_u64(&s->pr, l.base[i]);
		proto_u64(&s->pr, (uint64_t)sz);
		proto_u32(&s->pr, crc);
	}
	spool_seg_free(&l);
	return proto_send(&s->pr);
}

/*
 * repl_r_compacted - the source compacted segments since the replica last
 * compared: list ours (SEGS), install each it sends whole (SEGFILE and
 * DATA) in place of ours, as gc replaces a segment, then record the
 * generation they are of.  1: one had to wait for the next pass.
 */
int
repl_r_compacted(struct sess *s, struct spool_mirror *m)
{
	struct spool_minstall in;
	const unsigned char *d;
	uint64_t gen, base, size;
	uint32_t count;
	size_t len;
	int r, type, installing = 0;

	if ((r = send_segs(s, m)) < 0)
		return r;
	memset(&in, 0, sizeof(in));
	in.fd = in.ifd = -1;
	for (;;) {
		if ((type = repl_expect(s, 0)) < 0) {
			r = type;
			break;
		}
		if (type == PROTO_SEGFILE && !installing) {
			base = proto_get64(&s->pr);
			size = proto_get64(&s->pr);
			if (proto_done(&s->pr) < 0 || size > INT64_MAX) {
				r = repl_fail(s, -EBADMSG,
				    "protocol: bad SEGFILE");
				break;
			}
			if ((r = spool_mirror_install_begin(m, base,
			    (off_t)size, &in)) < 0)
				break;
			installing = 1;
		} else if (type == PROTO_DATA && installing) {
			d = proto_rest(&s->pr, &len);
			if ((r = spool_mirror_install_data(m, &in, d,
			    len)) < 0)
				break;
			if (s->o->progress != NULL)
				s->o->progress(s->o->arg, m->t->name, len, 0);
		} else if (type == PROTO_SEGS_END && !installing) {
			gen = proto_get64(&s->pr);
			count = proto_get32(&s->pr);
			if (proto_done(&s->pr) < 0) {
				r = repl_fail(s, -EBADMSG,
				    "protocol: bad SEGS_END");
				break;
			}
			if (count > 0 && (r = spool_mirror_reload(m)) < 0)
				break;
			if (count > 0)
				repl_report(s, 1, "%s/%" PRIu32 ": %" PRIu32
				    " segment%s compacted on the source "
				    "copied whole", m->t->name, m->part, count,
				    count == 1 ? "" : "s");
			if (gen == 0)
				return 1;
			/* recorded once what it stands for is in place */
			if ((r = spool_mirror_set_gen(m, gen, s->sync)) < 0)
				return repl_fail(s, r, "%s/%" PRIu32 ": %s",
				    m->t->name, m->part, strerror(-r));
			return 0;
		} else {
			r = repl_fail(s, -EBADMSG, "protocol: frame type %d "
			    "while segments are compared", type);
			break;
		}
		if (installing && in.pos == in.size) {
			installing = 0;
			if ((r = spool_mirror_install_end(m, &in,
			    s->sync)) < 0)
				break;
		}
	}
	if (installing)
		spool_mirror_install_abort(m, &in);
	if (r < 0 && s->o->errmsg[0] == '\0')
		r = repl_fail(s, r, "%s/%" PRIu32 ": %s", m->t->name, m->part,
		    r == -EBADMSG ? spool_errmsg(s->sp) : strerror(-r));
	return r;
}
