/*
 * repl_diverge.c - the PROBE exchange: a diverged replica cut back to
 * the newest batch it shares with the source
 *
 * When the source does not hold the replica's newest batch (an old
 * primary that came back after its replica was promoted and written
 * to), the receiver sends its batches, segment by segment from the
 * newest, in PROBE frames (position, offset, header checksum); the
 * sender answers with the newest of them it holds too (PROBE_R), found
 * by checksum and offset, so epochs count (Kafka's KIP-101), never by
 * offsets alone.  The replica is cut back to it (mirror_cut.c), the
 * messages cut off first written, durably, to a new file under
 * SPOOL/diverged/ in mq-recv -J format, whose path is reported; a dry
 * run only says where it would cut.  The contract of replication is at
 * the top of repl_send.c.  Nothing here trusts the peer; it never
 * prints (opts.report does).
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

/* repl_s_probe - PROBE: the newest of the replica's batches we hold too */
int
repl_s_probe(struct sess *s)
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
		    repl_has_batch(s, pfd, segbase, pos, crc, off))
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
 * repl_r_diverged - find the newest batch both hold, segment by segment from
 * the newest, and cut the replica back to it (the rest kept aside)
 */
int
repl_r_diverged(struct sess *s, struct spool_mirror *m)
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
