/*
 * verify.c - checking a topic's segments and indexes, and repairing
 * what may be repaired (mq-topic verify [--repair])
 *
 * Every batch of every segment is read and checked (header, body,
 * records), and so are the offsets between batches and between
 * segments (mq-spool(5), Gaps) and each index against its log.  Without
 * repair nothing is changed: the newest segment is read under the
 * partition lock held shared.  With repair, under the lock held
 * exclusively, a torn tail is cut, a damaged tail of the newest segment
 * is moved aside into a side file, and an index that disagrees with its
 * log is rebuilt; damage in the middle of a segment is reported and
 * left for readers to skip.  A batch written by a newer mq is reported,
 * never cut.  A torn tail of the newest segment is reported but is no
 * problem: it is not a message, and the next writer cuts it.
 */

#include <sys/file.h>
#include <sys/stat.h>
#include <sys/types.h>

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "spool_impl.h"

/* verify context: one partition's walk */
struct vctx {
	struct spool_topic *t;
	struct spool_io	*io;
	uint32_t	 part;
	int		 pfd;
	int		 repair;
	int		 problems;
	void		(*report)(void *, const char *);
	void		*arg;
};

/* vreport - one line about one segment (at < 0: about its index) */
static void
vreport(struct vctx *v, uint64_t base, off_t at, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void
vreport(struct vctx *v, uint64_t base, off_t at, const char *fmt, ...)
{
	char msg[512], what[256], where[32] = "";
	va_list ap;

	if (v->report == NULL)
		return;
	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	if (at >= 0)
		snprintf(where, sizeof(where), " byte %lld:", (long long)at);
	snprintf(msg, sizeof(msg), "%s/%" PRIu32 "/%020" PRIu64 "%s:%s %s",
	    v->t->name, v->part, base, at < 0 ? SPOOL_IDX_SUFFIX :
	    SPOOL_LOG_SUFFIX, where, what);
	v->report(v->arg, msg);
}

/* cut_aside - move the bytes of a segment from at on into a side file */
static int
cut_aside(struct vctx *v, int fd, uint64_t base, off_t at, off_t size,
    char *side, size_t sidelen)
{
	char buf[65536];
	ssize_t n;
	off_t p;
	int sfd, r = 0;

	snprintf(side, sidelen, "%020" PRIu64 ".log.cut-%" PRId64, base,
	    spool_now_ms());
	sfd = openat(v->pfd, side, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW |
	    O_CLOEXEC, 0664);
	if (sfd == -1)
		return -errno;
	for (p = at; p < size && r == 0; p += n) {
		if ((n = pread(fd, buf, sizeof(buf), p)) <= 0) {
			r = n < 0 ? -errno : -EIO;
			break;
		}
		if (write(sfd, buf, n) != n)
			r = -EIO;
	}
	/* the cut bytes are safe aside before they leave the segment */
	if (r == 0 && fsync(sfd) == -1)
		r = -errno;
	close(sfd);
	if (r == 0)
		r = spool_fsync_dir(v->pfd);
	if (r == 0 && ftruncate(fd, at) == -1)
		r = -errno;
	/* and the cut itself, so the damage cannot come back in a crash */
	if (r == 0)
		r = spool_io_fdatasync(v->io, fd);
	return r;
}

/*
 * torn_tail - a torn tail of segment base (fd) at byte at: cut off with
 * repair (*size: what is left), reported otherwise: a problem in an
 * older segment, a note in the newest
 */
static int
torn_tail(struct vctx *v, int fd, uint64_t base, int head, off_t at,
    off_t *size)
{
	int r;

	if (v->repair) {
		if (ftruncate(fd, at) == -1)
			return -errno;
		/* a repair that is reported is durable */
		if ((r = spool_io_fdatasync(v->io, fd)) < 0)
			return r;
		vreport(v, base, at, "torn tail cut off");
		*size = at;
	} else if (head) {
		/*
		 * not a problem: under the partition lock no write is under
		 * way, so this is what a writer (or mq-replicate) killed in
		 * mid-write leaves, and it is no message (mq-spool(5), TORN
		 * TAILS AND DAMAGE); it is said, and the next writer cuts it
		 */
		vreport(v, base, at, "torn tail (an "
		    "unfinished write; cut by the next writer "
		    "or --repair)");
	} else {
		vreport(v, base, at, "incomplete batch "
		    "before the next segment (cut by --repair)");
		v->problems++;
	}
	return 0;
}

/*
 * scan_log - check every batch of segment base (fd, *size bytes) and
 * repair what may be repaired (*size: what is left); *next becomes the
 * offset after its last batch (UINT64_MAX after a newer mq's batch)
 */
static int
scan_log(struct vctx *v, int fd, uint64_t base, int head, off_t *size,
    uint64_t *next)
{
	struct spool_scanpos pos;
	char why[128], side[96];
	off_t from = 0, found;
	int r = 0, s, newer = 0;

	memset(&pos, 0, sizeof(pos));
	pos.next = base;
	while (from < *size) {
		s = spool_seg_scan(v->io, fd, from, *size, 1, &pos,
		    why, sizeof(why));
		if (s == -EPROTO) {
			/* not damage: never cut; what follows is unknown */
			vreport(v, base, pos.pos, "written by a newer version "
			    "of mq (%s); not checked past it", why);
			v->problems++;
			newer = 1;
			break;
		}
		if (s < 0)
			return s;
		if (s == SCAN_OK)
			break;
		if (s == SCAN_TORN) {
			if ((r = torn_tail(v, fd, base, head, pos.pos,
			    size)) < 0)
				return r;
			break;
		}
		vreport(v, base, pos.pos, "%s", why);
		r = spool_cursor_resync_fd(v->io, fd, pos.pos, *size,
		    pos.next, &found);
		if (r < 0)
			return r;
		if (r == 1) {
			unsigned char hdr[SPOOL_HDR_SIZE];
			struct spool_bhdr h;

			/* damage in the middle stays; readers skip it */
			v->problems++;
			if (spool_io_pread(v->io, fd, hdr, sizeof(hdr), found)
			    == SPOOL_HDR_SIZE && spool_bhdr_unpack(hdr, &h) == 0)
				pos.next = h.base_offset;
			from = found;
			r = 0;
			continue;
		}
		/* a damaged last batch whose extent is sure stays too */
		r = spool_seg_bound(v->io, fd, pos.pos, *size, pos.next,
		    &found, &pos.next);
		if (r < 0)
			return r;
		if (r == 1) {
			v->problems++;
			from = found;
			r = 0;
			continue;
		}
		if (v->repair && head) {
			if ((r = cut_aside(v, fd, base, pos.pos, *size,
			    side, sizeof(side))) < 0)
				return r;
			vreport(v, base, pos.pos, "damaged tail moved to %s",
			    side);
			*size = pos.pos;
		} else
			v->problems++;
		break;
	}
	*next = newer ? UINT64_MAX : pos.next;
	return 0;
}

/* verify_seg - check one segment; repair what may be repaired */
static int
verify_seg(struct vctx *v, uint64_t base, uint64_t *next, int head)
{
	struct stat st;
	char name[SPOOL_SEGNAME_LEN + 16];
	int fd, lfd = -1, r = 0;

	spool_seg_name(name, base, SPOOL_LOG_SUFFIX);
	fd = openat(v->pfd, name, (v->repair ? O_RDWR : O_RDONLY) |
	    O_NOFOLLOW | O_CLOEXEC);
	if (fd == -1)
		return -errno;
	/* the newest segment may be growing: hold writers off */
	if (head || v->repair) {
		lfd = spool_lock_file(v->pfd, v->repair ? LOCK_EX : LOCK_SH);
		if (lfd < 0) {
			close(fd);
			return lfd;
		}
	}
	if (fstat(fd, &st) == -1) {
		r = -errno;
		goto out;
	}
	if (base != *next && *next != UINT64_MAX && base < *next)
		vreport(v, base, 0, "segment starts at offset %" PRIu64
		    ", before the end of the previous one (%" PRIu64 ")",
		    base, *next), v->problems++;
	/* no gap between segments but below the first (mq-spool(5), Gaps) */
	if (*next != UINT64_MAX && base > *next)
		vreport(v, base, 0, "offsets %" PRIu64 " to %" PRIu64 " are "
		    "missing (the segment before ends at %" PRIu64 ")", *next,
		    base - 1, *next), v->problems++;
	if ((r = scan_log(v, fd, base, head, &st.st_size, next)) < 0)
		goto out;
	if (!spool_idx_check(v->io, v->pfd, fd, base, st.st_size)) {
		if (v->repair) {
			if ((r = spool_seg_reindex(v->io, v->pfd, fd, base, st.st_size)) < 0)
				goto out;
			vreport(v, base, -1, "rebuilt");
		} else {
			vreport(v, base, -1, "does not match the log");
			v->problems++;
		}
	}
out:
	if (lfd >= 0)
		close(lfd);
	close(fd);
	return r;
}

/*
 * spool_topic_verify - check every batch and index of a topic, calling
 * report for each finding; returns the number of problems left (0: all
 * clean), or -errno
 */
int
spool_topic_verify(struct spool_topic *t, int repair,
    void (*report)(void *, const char *), void *arg)
{
	struct spool_seglist l;
	struct vctx v;
	uint64_t next;
	size_t i;
	int r = 0;

	memset(&v, 0, sizeof(v));
	v.t = t;
	v.repair = repair;
	v.report = report;
	v.arg = arg;
	if ((v.io = spool_get_io(t->sp)) == NULL)
		return -ENOMEM;
	for (v.part = 0; v.part < t->cfg.partitions && r >= 0; v.part++) {
		if ((v.pfd = spool_part_open(t, v.part)) < 0) {
			r = v.pfd;
			break;
		}
		if ((r = spool_seg_list(v.pfd, &l)) == 0) {
			next = UINT64_MAX;
			for (i = 0; i < l.n && r >= 0; i++)
				r = verify_seg(&v, l.base[i], &next,
				    i + 1 == l.n);
			spool_seg_free(&l);
		}
		close(v.pfd);
	}
	return r < 0 ? r : v.problems;
}

/*
 * spool_topic_verify_state - check a topic's state files (group offset
 * files, send ID markers and transactions; its config was read when it
 * was opened), reporting each damaged one; returns how many, or -errno.
 * Reads only.
 */
int
spool_topic_verify_state(struct spool_topic *t,
    void (*report)(void *, const char *), void *arg)
{
	int g, d, x;

	if ((g = spool_group_verify(t, report, arg)) < 0)
		return g;
	if ((d = spool_dedup_verify(t, report, arg)) < 0)
		return d;
	if ((x = spool_txn_verify(t, report, arg)) < 0)
		return x;
	return g + d + x;
}
