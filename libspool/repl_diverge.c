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
 * SPOOL/diverged/ in mq-recv -J format, whose path is reported: written
 * as NAME.partial and named NAME before anything is cut, so a run
 * stopped at any moment leaves whole files only (the next run removes a
 * .partial, and keeps an earlier whole file of the same cut and bytes
 * instead of a second one); a dry run only says where it would cut.  The contract of replication is at
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

/* aside_dir - SPOOL/diverged/, made if need be, open */
static int
aside_dir(struct sess *s)
{
	int dfd;

	/* the new directory must survive a crash with the file put in it */
	if (mkdirat(s->sp->dirfd, ASIDE_DIR, 0775) == 0 &&
	    (dfd = spool_sync_dir(s->sp, s->sp->dirfd)) < 0)
		return dfd;
	dfd = openat(s->sp->dirfd, ASIDE_DIR, O_RDONLY | O_DIRECTORY |
	    O_NOFOLLOW | O_CLOEXEC);
	return dfd == -1 ? -errno : dfd;
}

/*
 * aside_of - whether name is a file of cut-off messages of topic/part
 * (TOPIC.PART.OFFSET.MS.json, or .json.partial): 1 (*partial set, *off
 * its offset), or 0
 */
static int
aside_of(const char *name, const char *topic, uint32_t part, uint64_t *off,
    int *partial)
{
	char buf[SPOOL_NAME_MAX + 96], *dot[3], *e;
	size_t n = strlen(name), k;
	int i;

	if (n >= sizeof(buf))
		return 0;
	memcpy(buf, name, n + 1);
	*partial = n > 8 && strcmp(buf + n - 8, ".partial") == 0;
	if (*partial)
		buf[n -= 8] = '\0';
	if (n < 5 || strcmp(buf + n - 5, ".json") != 0)
		return 0;
	buf[n - 5] = '\0';
	/* TOPIC may hold dots: the three numbers are the last fields */
	for (i = 0; i < 3; i++) {
		if ((dot[i] = strrchr(buf, '.')) == NULL)
			return 0;
		*dot[i] = '\0';
	}
	if (strcmp(buf, topic) != 0)
		return 0;
	for (k = 1; dot[2][k] != '\0'; k++)
		if (dot[2][k] < '0' || dot[2][k] > '9')
			return 0;
	if (strtoul(dot[2] + 1, &e, 10) != part || *e != '\0')
		return 0;
	*off = strtoull(dot[1] + 1, &e, 10);
	return *e == '\0';
}

/* same_bytes - whether files a and b of dfd hold the same bytes */
static int
same_bytes(int dfd, const char *a, const char *b)
{
	unsigned char x[65536], y[65536];
	struct stat sa, sb;
	ssize_t n = 0, k;
	int fa, fb, same = 0;

	if ((fa = openat(dfd, a, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)) == -1)
		return 0;
	if ((fb = openat(dfd, b, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)) == -1) {
		close(fa);
		return 0;
	}
	if (fstat(fa, &sa) == 0 && fstat(fb, &sb) == 0 &&
	    sa.st_size == sb.st_size) {
		same = 1;
		while (same && (n = read(fa, x, sizeof(x))) > 0)
			same = (k = read(fb, y, (size_t)n)) == n &&
			    memcmp(x, y, (size_t)n) == 0;
		if (n < 0)
			same = 0;	/* unread is not the same */
	}
	close(fa);
	close(fb);
	return same;
}

/*
 * aside_scan - the files under SPOOL/diverged/ of topic/part: with
 * drop, remove the .partial ones (a run stopped before it named them;
 * nothing is cut before the name, so the log still holds all they do);
 * else find a whole one of the same cut (offset cutoff) holding the same
 * bytes as mine (a run stopped after it named it, before it cut): 1 and
 * its name, or 0
 */
static int
aside_scan(int dfd, const char *topic, uint32_t part, uint64_t cutoff,
    int drop, const char *mine, char *name, size_t len)
{
	struct dirent *de;
	uint64_t off;
	DIR *d;
	int fd, partial, found = 0, r = 0;

	if ((fd = openat(dfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC)) == -1)
		return -errno;
	if ((d = fdopendir(fd)) == NULL) {
		close(fd);
		return -errno;
	}
	while (!found && (de = readdir(d)) != NULL) {
		if (!aside_of(de->d_name, topic, part, &off, &partial))
			continue;
		if (drop && partial) {
			if (unlinkat(dfd, de->d_name, 0) == -1 &&
			    errno != ENOENT)
				r = -errno;
		} else if (!drop && !partial && off == cutoff &&
		    same_bytes(dfd, de->d_name, mine)) {
			snprintf(name, len, "%s", de->d_name);
			found = 1;
		}
	}
	closedir(d);
	return r < 0 ? r : found;
}

/*
 * keep_aside - the messages cut off from cutseg/cutpos (offset cutoff)
 * in a file under SPOOL/diverged/, written as NAME.partial, synced, then
 * named NAME (and the directory synced) before anything is cut, so that
 * a run stopped at any moment leaves whole files only, and the log
 * holds whatever no whole file does.  A whole file of the same cut with
 * the same bytes, which a run stopped before its cut left, is kept
 * instead of a second one (*reused).  NAME in name; 0 or -errno.
 */
static int
keep_aside(struct sess *s, struct spool_mirror *m, uint64_t cutseg,
    off_t cutpos, uint64_t cutoff, char *name, size_t len, uint64_t *nmsgs,
    int *reused)
{
	char tmp[SPOOL_NAME_MAX + 112];
	int dfd, afd, r;

	*nmsgs = 0;
	*reused = 0;
	if ((dfd = aside_dir(s)) < 0)
		return dfd;
	if ((r = aside_scan(dfd, m->t->name, m->part, cutoff, 1, NULL, NULL,
	    0)) < 0) {
		close(dfd);
		return r;
	}
	snprintf(name, len, "%s.%" PRIu32 ".%" PRIu64 ".%" PRId64 ".json",
	    m->t->name, m->part, cutoff, spool_now_ms());
	snprintf(tmp, sizeof(tmp), "%s.partial", name);
	if ((afd = openat(dfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW |
	    O_CLOEXEC, 0664)) == -1) {
		r = -errno;
		close(dfd);
		return r;
	}
	r = spool_mirror_aside(m, cutseg, cutpos, afd, nmsgs);
	close(afd);
	if (r == 0 && *nmsgs > 0 && (r = aside_scan(dfd, m->t->name,
	    m->part, cutoff, 0, tmp, name, len)) == 1) {
		*reused = 1;
		r = 0;
	}
	if (r == 0 && (*nmsgs == 0 || *reused))
		r = unlinkat(dfd, tmp, 0) == -1 ? -errno : 0;
	else if (r == 0 && renameat(dfd, tmp, dfd, name) == -1)
		r = -errno;
	/*
	 * the name must hold before anything is cut: this run's, or the
	 * earlier run's, which may have stopped before its own sync
	 */
	if (r == 0 && *nmsgs > 0 && spool_fsync_dir(dfd) < 0)
		r = -errno;
	close(dfd);
	return r;
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
	int r, found = 0, idx, reused;

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
	if ((r = keep_aside(s, m, cutseg, cutpos, cutoff, name, sizeof(name),
	    &nmsgs, &reused)) < 0)
		return repl_fail(s, r, "%s/%s: %s", s->path, ASIDE_DIR,
		    strerror(-r));
	r = spool_mirror_cut(m, cutseg, cutpos, s->sync);
	snprintf(path, sizeof(path), "%s/%s/%s", s->path, ASIDE_DIR, name);
	if (r < 0)
		return repl_fail(s, r,
		    "%s/%" PRIu32 ": cutting back to offset %"
		    PRIu64 ": %s", m->t->name, m->part, cutoff, strerror(-r));
	/* where cut-off messages went is said even under -q */
	if (reused) {
		repl_report(s, SPOOL_REPORT_ALWAYS, "%s/%" PRIu32 ": diverged "
		    "from the source: "
		    "cut back to offset %" PRIu64 "; its messages were kept "
		    "in %s by an earlier run, stopped before it cut",
		    m->t->name, m->part, cutoff, path);
		return 0;
	}
	repl_report(s, SPOOL_REPORT_ALWAYS, "%s/%" PRIu32 ": diverged from the "
	    "source: cut back to offset %" PRIu64 "; %" PRIu64 " message%s "
	    "kept in %s",
	    m->t->name, m->part, cutoff, nmsgs, nmsgs == 1 ? "" : "s",
	    nmsgs ? path : "(none)");
	return 0;
}
