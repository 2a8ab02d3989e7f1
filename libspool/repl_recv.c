/*
 * repl_recv.c - the receiver, one partition at a time: the role check,
 * divergence, appending what comes
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

/* ---- the receiver ---------------------------------------------------- */

/* holds_data - whether any partition of the spool holds a batch */
static int
holds_data(struct spool *sp)
{
	struct spool_topic *t;
	struct spool_part_info pi;
	char **names;
	size_t n, i;
	uint32_t p;
	int r, found = 0;

	if ((r = spool_topic_list(sp, &names, &n)) < 0)
		return r;
	for (i = 0; i < n; i++) {
		if (!found && spool_topic_open(sp, names[i], &t) == 0) {
			for (p = 0; p < t->cfg.partitions && !found; p++)
				if (spool_part_bounds(t, p, &pi) == 0 &&
				    (pi.bytes > 0 || pi.segments > 1))
					found = 1;
			spool_topic_close(t);
		}
		free(names[i]);
	}
	free(names);
	return found;
}

/*
 * sched_aside - a spool about to become a replica of this source keeps
 * its own scheduled messages aside, never drops them: each topic's
 * scheduled/ becomes SPOOL/diverged/TOPIC.scheduled.MS (batch files as
 * mq-spool(5) describes them), and the source's are copied afresh
 */
static int
sched_aside(struct sess *s)
{
	char **names, name[SPOOL_NAME_MAX + 48], rel[SPOOL_NAME_MAX + 16];
	size_t n, i;
	int r, dfd = -1, moved = 0;

	if (s->sp->topicsfd < 0)
		return 0;
	if ((r = spool_topic_list(s->sp, &names, &n)) < 0)
		return r;
	for (i = 0; i < n && r == 0; i++) {
		snprintf(rel, sizeof(rel), "%s/scheduled", names[i]);
		if (faccessat(s->sp->topicsfd, rel, F_OK,
		    AT_SYMLINK_NOFOLLOW) != 0)
			continue;
		if (dfd < 0) {
			if (mkdirat(s->sp->dirfd, ASIDE_DIR, 0775) == 0 &&
			    spool_fsync_dir(s->sp->dirfd) < 0)
				r = -errno;
			if (r == 0 && (dfd = openat(s->sp->dirfd, ASIDE_DIR,
			    O_RDONLY | O_DIRECTORY | O_NOFOLLOW |
			    O_CLOEXEC)) == -1)
				r = -errno;
			if (r < 0)
				break;
		}
		snprintf(name, sizeof(name), "%s.scheduled.%" PRId64, names[i],
		    spool_now_ms());
		if (renameat(s->sp->topicsfd, rel, dfd, name) == -1) {
			r = -errno;
			break;
		}
		moved++;
		repl_report(s, 0, "%s: its own scheduled messages kept in "
		    "%s/%s/%s", names[i], s->path, ASIDE_DIR, name);
	}
	for (i = 0; i < n; i++)
		free(names[i]);
	free(names);
	/* both names must stick before the source's files come in */
	if (r == 0 && moved > 0 && (spool_fsync_dir(dfd) < 0 ||
	    spool_fsync_dir(s->sp->topicsfd) < 0))
		r = -errno;
	if (dfd >= 0)
		close(dfd);
	return r;
}

/*
 * check_role - may this spool receive from the sender?  A replica of it,
 * or an empty spool, yes; a primary holding data only with --demote.
 */
int
repl_check_role(struct sess *s)
{
	char src[64];
	int r, demote = (s->flags & SPOOL_REPL_DEMOTE) != 0;

	if (s->peer_id[0] != '\0' && strcmp(s->peer_id, s->id) == 0)
		return repl_fail(s, -SPOOL_EROLE, "%s: source and destination "
		    "are the same spool", s->path);
	if ((r = spool_replica_of(s->sp, src, sizeof(src))) < 0)
		return repl_fail(s, r, "%s/replica: %s", s->path, strerror(-r));
	if (r == 1 && strcmp(src, s->peer_id) == 0)
		return 0;
	if (r == 1 && !demote)
		return repl_fail(s, -SPOOL_EROLE, "%s is a replica of another "
		    "spool (%s); --demote makes it a replica of this source",
		    s->path, src);
	if (r == 0 && !demote) {
		if ((r = holds_data(s->sp)) < 0)
			return repl_fail(s, r, "%s: %s", s->path, strerror(-r));
		if (r)
			return repl_fail(s, -SPOOL_EROLE, "%s is a primary "
			    "holding data: refusing to replicate over it (are "
			    "SRC and DST swapped?); --demote makes it a "
			    "replica",
			    s->path);
	}
	if (s->flags & SPOOL_REPL_DRYRUN)
		return 0;
	if ((r = sched_aside(s)) < 0)
		return repl_fail(s, r, "%s/%s: %s", s->path, ASIDE_DIR,
		    strerror(-r));
	if ((r = repl_mark_replica(s->sp, s->peer_id)) < 0)
		return repl_fail(s, r, "%s/replica: %s", s->path, strerror(-r));
	repl_report(s, 1, "%s: now a replica of %s", s->path, s->peer_id);
	return 0;
}

/* config_apply - make topic t's config the source's text (growing only) */
int
repl_config_apply(struct sess *s, struct spool_topic *t, const char *text)
{
	char mine[CONFIG_TEXT], copy[CONFIG_TEXT], *kv[32], *line, *save = NULL;
	size_t n = 0;
	int r;

	if (spool_config_format(&t->cfg, mine, sizeof(mine)) < 0 ||
	    strcmp(mine, text) == 0)
		return 0;
	snprintf(copy, sizeof(copy), "%s", text);
	for (line = strtok_r(copy, "\n", &save); line != NULL && n < 32;
	    line = strtok_r(NULL, "\n", &save))
		if (strchr(line, '=') != NULL)
			kv[n++] = line;
	if ((r = spool_topic_config_update(t, (const char *const *)kv,
	    n)) < 0)
		return repl_fail(s, r, "%s: config from the source: %s",
		    t->name, spool_errmsg(s->sp));
	repl_report(s, 1, "%s: config updated", t->name);
	return 0;
}

/* aside_open - a new file under SPOOL/diverged/ for cut-off messages */
static int
aside_open(struct sess *s, const char *topic, uint32_t part, uint64_t off,
    char *name, size_t len)
{
	int dfd, fd;

	/* the new directory must survive a crash with the file put in it */
	if (mkdirat(s->sp->dirfd, ASIDE_DIR, 0775) == 0 &&
	    (dfd = spool_sync_dir(s->sp, s->sp->dirfd)) < 0)
		return dfd;
	dfd = openat(s->sp->dirfd, ASIDE_DIR, O_RDONLY | O_DIRECTORY |
	    O_NOFOLLOW | O_CLOEXEC);
	if (dfd == -1)
		return -errno;
	snprintf(name, len, "%s.%" PRIu32 ".%" PRIu64 ".%" PRId64 ".json",
	    topic, part, off, spool_now_ms());
	fd = openat(dfd, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW |
	    O_CLOEXEC, 0664);
	if (fd == -1) {
		fd = -errno;
		close(dfd);
		return fd;
	}
	/* the file's name must survive before anything is cut */
	if (spool_fsync_dir(dfd) < 0) {
		close(fd);
		fd = -errno;
	}
	close(dfd);
	return fd;
}

/*
 * r_diverged - find the newest batch both hold, segment by segment from
 * the newest, and cut the replica back to it (the rest kept aside)
 */
static int
r_diverged(struct sess *s, struct spool_mirror *m)
{
	struct spool_seglist l;
	struct spool_mbatch *b;
	char name[SPOOL_NAME_MAX + 96], path[PATH_MAX];
	uint64_t cutseg, nmsgs, cutoff;
	uint32_t k, chunk;
	off_t cutpos;
	size_t nb, i, j;
	int r, found = 0, afd, idx;

	if ((r = spool_mirror_segs(m, &l)) < 0)
		return r;
	cutseg = l.n > 0 ? l.base[0] : 0;
	cutpos = 0;
	cutoff = cutseg;
	for (i = l.n; i > 0 && !found; i--) {
		if ((r = spool_mirror_batches(m, l.base[i - 1], &b, &nb)) < 0)
			break;
		for (j = nb; j > 0 && !found; j -= chunk) {
			chunk = j > PROBE_MAX ? PROBE_MAX : (uint32_t)j;
			proto_begin(&s->pr, PROTO_PROBE);
			proto_str(&s->pr, m->t->name);
			proto_u32(&s->pr, m->part);
			proto_u64(&s->pr, l.base[i - 1]);
			proto_u32(&s->pr, chunk);
			for (k = 0; k < chunk; k++) {
				proto_u64(&s->pr, (uint64_t)b[j - 1 - k].pos);
				proto_u64(&s->pr, b[j - 1 - k].off);
				proto_u32(&s->pr, b[j - 1 - k].crc);
			}
			if ((r = proto_send(&s->pr)) < 0 ||
			    (r = repl_expect(s, PROTO_PROBE_R)) < 0)
				break;
			idx = (int)proto_get32(&s->pr);
			if (proto_done(&s->pr) < 0 || idx >= (int)chunk)
				r = repl_fail(s, -EBADMSG, "protocol: "
				    "malformed PROBE_R");
			if (r < 0)
				break;
			if (idx >= 0) {
				found = 1;
				cutseg = l.base[i - 1];
				cutpos = b[j - 1 - idx].pos +
				    b[j - 1 - idx].len;
				cutoff = b[j - 1 - idx].off +
				    b[j - 1 - idx].count;
			}
		}
		free(b);
		if (r < 0)
			break;
	}
	spool_seg_free(&l);
	if (r < 0)
		return r;
	if (s->flags & SPOOL_REPL_DRYRUN) {
		repl_report(s, 0, "%s/%" PRIu32 ": diverged from the source: "
		    "would cut back to offset %" PRIu64, m->t->name, m->part,
		    cutoff);
		return 1;
	}
	if ((afd = aside_open(s, m->t->name, m->part, cutoff, name,
	    sizeof(name))) < 0)
		return repl_fail(s, afd, "%s/%s: %s", s->path, ASIDE_DIR,
		    strerror(-afd));
	r = spool_mirror_cut(m, cutseg, cutpos, afd, &nmsgs, s->sync);
	close(afd);
	snprintf(path, sizeof(path), "%s/%s/%s", s->path, ASIDE_DIR, name);
	if (r < 0)
		return repl_fail(s, r,
		    "%s/%" PRIu32 ": cutting back to offset %"
		    PRIu64 ": %s", m->t->name, m->part, cutoff, strerror(-r));
	if (nmsgs == 0)
		(void)unlinkat(s->sp->dirfd, path + strlen(s->path) + 1, 0);
	repl_report(s, 0, "%s/%" PRIu32 ": diverged from the source: cut back "
	    "to offset %" PRIu64 "; %" PRIu64 " message%s kept in %s",
	    m->t->name, m->part, cutoff, nmsgs, nmsgs == 1 ? "" : "s",
	    nmsgs ? path : "(none)");
	return 0;
}

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
 * from pos to size, read here (a local source), checked as DATA is
 */
static int
r_local(struct sess *s, struct spool_mirror *m, uint64_t base, off_t pos,
    off_t size)
{
	char rel[SPOOL_NAME_MAX + SPOOL_SEGNAME_LEN + 48];
	struct spool_bhdr h;
	size_t n, q, blen, nb = 0;
	ssize_t got;
	int fd, r = 0;

	if (s->srcfd < 0 || !(s->flags & SPOOL_REPL_LOCAL) || pos < 0 ||
	    size < pos)
		return repl_fail(s, -EBADMSG, "protocol: LOCAL unasked for");
	n = snprintf(rel, sizeof(rel), "topics/%s/%" PRIu32 "/", m->t->name,
	    m->part);
	spool_seg_name(rel + n, base, SPOOL_LOG_SUFFIX);
	if ((fd = openat(s->srcfd, rel, O_RDONLY | O_NOFOLLOW |
	    O_CLOEXEC)) == -1)
		return repl_fail(s, -errno, "%s: %s", rel, strerror(errno));
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
			    PROTO_FRAME_MAX)
				break;	/* torn, being written, or damaged */
			if ((nb2 = realloc(s->lbuf, SPOOL_HDR_SIZE +
			    h.body_len)) == NULL) {
				r = -ENOMEM;
				break;
			}
			s->lbuf = nb2;
			s->lcap = SPOOL_HDR_SIZE + h.body_len;
			continue;
		}
		if ((r = spool_mirror_append(m, s->lbuf, q, &nb)) < 0)
			break;
		writeback(s, m);
		if (s->o->progress != NULL)
			s->o->progress(s->o->arg, m->t->name, q, 0);
		pos += (off_t)q;
	}
	close(fd);
	return r;
}

/* r_stream - receive SEG/DATA frames until PEND */
static int
r_stream(struct sess *s, struct spool_mirror *m, uint64_t *srcfirst)
{
	const unsigned char *d;
	size_t len, nb = 0;
	int type, r;

	for (;;) {
		if ((type = repl_expect(s, 0)) < 0)
			return type;
		/* a dry run asked for no data: a sender that sends some errs */
		if ((type == PROTO_SEG || type == PROTO_DATA ||
		    type == PROTO_LOCAL) &&
		    (s->flags & SPOOL_REPL_DRYRUN))
			return repl_fail(s, -EBADMSG,
			    "protocol: data in a dry run");
		switch (type) {
		case PROTO_SEG:
			r = spool_mirror_segment(m, proto_get64(&s->pr),
			    s->sync);
			if (proto_done(&s->pr) < 0)
				return repl_fail(s, -EBADMSG,
				    "protocol: bad SEG");
			break;
		case PROTO_DATA:
			d = proto_rest(&s->pr, &len);
			r = spool_mirror_append(m, d, len, &nb);
			if (r == 0)
				writeback(s, m);
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
		if (r < 0)
			return repl_fail(s, r, "%s/%" PRIu32 ": %s", m->t->name,
			    m->part, r == -EBADMSG ? spool_errmsg(s->sp) :
			    strerror(-r));
	}
}

/*
 * r_compacted - the source compacted segments since the replica last
 * compared: list ours (SEGS), install each it sends whole (SEGFILE and
 * DATA) in place of ours, as gc replaces a segment, then record the
 * generation they are of.  1: one had to wait for the next pass.
 */
static int
r_compacted(struct sess *s, struct spool_mirror *m)
{
	struct spool_seglist l;
	struct spool_minstall in;
	const unsigned char *d;
	uint64_t gen, base, size;
	uint32_t crc, count;
	off_t sz;
	size_t i, len;
	int r, type, installing = 0;

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
	if ((r = proto_send(&s->pr)) < 0)
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

/* r_part - bring one partition up to date */
int
repl_r_part(struct sess *s, struct spool_topic *t, uint32_t part)
{
	struct spool_mirror m;
	uint64_t srcfirst, bytes, before;
	int r, kind, round, dry = (s->flags & SPOOL_REPL_DRYRUN) != 0;
	int compared = 0;

	if (t == NULL) {	/* a dry run, the topic not here yet */
		memset(&m, 0, sizeof(m));
		m.partfd = m.lockfd = m.logfd = m.idxfd = -1;
	} else if ((r = spool_mirror_open(t, part, !dry, &m)) < 0)
		return repl_fail(s, r, "%s/%" PRIu32 ": %s", t->name, part,
		    r == -EBADMSG ? spool_errmsg(s->sp) : strerror(-r));
	before = m.next;
	for (round = 0; round < 4; round++) {
		proto_begin(&s->pr, PROTO_PSTATE);
		proto_str(&s->pr, t ? t->name : s->src_topics[s->nsrc - 1]);
		proto_u32(&s->pr, part);
		proto_u8(&s->pr, (uint8_t)((dry ? PS_DRY : 0) |
		    (m.haslast ? PS_HASLAST : 0) |
		    (compared ? PS_NOCOMPACT : 0) |
		    (!spool_mirror_holds(&m) ||
		    (s->flags & SPOOL_REPL_DELETE) ? PS_RESTART_OK : 0)));
		proto_u64(&s->pr, m.next);
		proto_u64(&s->pr, m.lastseg);
		proto_u64(&s->pr, (uint64_t)m.lastpos);
		proto_u32(&s->pr, m.lastcrc);
		proto_u64(&s->pr, m.lastoff);
		proto_u64(&s->pr, m.logfd >= 0 ? m.segbase : 0);
		proto_u64(&s->pr, (uint64_t)m.end);
		proto_u32(&s->pr, m.lastepoch);
		proto_u64(&s->pr, m.lastdoff);
		proto_u64(&s->pr, t != NULL && t->cfg.compact !=
		    SPOOL_CLEANUP_DELETE ? spool_mirror_gen(&m) : 0);
		if ((r = proto_send(&s->pr)) < 0 ||
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
			repl_report(s, 0, "%s/%" PRIu32 ": the source no "
			    "longer holds offsets %" PRIu64 " to %" PRIu64 " "
			    "(retention); --delete drops the replica's older "
			    "segments and goes on", t->name, part, m.next,
			    bytes - 1);
			break;
		}
		if (kind == PLAN_DIVERGED) {
			if ((r = r_diverged(s, &m)) != 0)
				break;
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
			if ((r = r_compacted(s, &m)) != 0)
				break;	/* 1: a commit under way, next pass */
			continue;
		}
		if (dry) {
			if (bytes > 0)
				repl_report(s, 0, "%s/%" PRIu32 ": would copy %"
				    PRIu64 " bytes from offset %" PRIu64,
				    t ? t->name : s->src_topics[s->nsrc - 1],
				    part, bytes, m.next);
			r = r_stream(s, &m, &srcfirst);
			break;
		}
		if (kind == PLAN_RESTART) {
			repl_report(s, 0, "%s/%" PRIu32 ": the source starts "
			    "at a later segment: the replica's segments go",
			    t->name, part);
			if ((r = spool_mirror_drop(&m, UINT64_MAX,
			    s->sync)) < 0) {
				r = repl_fail(s, r, "%s/%" PRIu32 ": %s",
				    t->name, part, strerror(-r));
				break;
			}
		} else if (kind != PLAN_APPEND) {
			r = repl_fail(s, -EBADMSG, "protocol: PLAN kind %d",
			    kind);
			break;
		}
		if (s->o->progress != NULL && bytes > 0)
			s->o->progress(s->o->arg, t->name, 0, bytes);
		if ((r = r_stream(s, &m, &srcfirst)) < 0)
			break;
		/* compaction alone removes only segments it emptied */
		if (((s->flags & SPOOL_REPL_DELETE) ||
		    t->cfg.compact == SPOOL_CLEANUP_COMPACT) &&
		    srcfirst > m.first &&
		    (r = spool_mirror_drop(&m, srcfirst, s->sync)) < 0) {
			r = repl_fail(s, r, "%s/%" PRIu32 ": %s", t->name, part,
			    strerror(-r));
			break;
		}
		/* durable before acknowledged */
		if (s->sync && (r = spool_mirror_sync(&m)) < 0) {
			r = repl_fail(s, r, "%s/%" PRIu32 ": %s", t->name, part,
			    strerror(-r));
			break;
		}
		proto_begin(&s->pr, PROTO_ACK);
		proto_str(&s->pr, t->name);
		proto_u32(&s->pr, part);
		proto_u64(&s->pr, m.next);
		r = proto_send(&s->pr);
		if (m.next != before)
			repl_report(s, 1, "%s/%" PRIu32 ": %" PRIu64 " to %"
			    PRIu64, t->name, part, before, m.next);
		break;
	}
	if (round == 4)
		r = repl_fail(s, -EBADMSG, "%s/%" PRIu32 ": no common prefix "
		    "after cutting back", t->name, part);
	spool_mirror_close(&m);
	return r < 0 ? r : 0;
}
