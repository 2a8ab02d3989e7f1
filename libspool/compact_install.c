/*
 * compact_install.c - putting compaction's results in place
 *
 * A rewritten segment goes to NAME.log.compacting, is synced, and is
 * renamed over NAME.log (its index likewise, the old index removed
 * first), then the directory is synced: a reader that has the old file
 * open reads on in it, a new one gets the new file, and a crash leaves
 * one or the other, never both.  The state file's generation changes
 * (compact_state.c) before the first rename of a run.  Segments left
 * with their END batch alone are deleted while no older segment holds a
 * message (the gap below the first segment is legal, as after
 * retention).  What a killed gc left (*.compacting) goes at the next gc
 * of the partition.
 *
 * It decides nothing about messages (compact_keys.c, compact_seg.c).
 */

#include <sys/stat.h>
#include <sys/types.h>

#include <dirent.h>
#include <fcntl.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "spool_impl.h"
#include "compact.h"

#define TMP_SUFFIX	".compacting"

/* open_tmp - create NAME.compacting afresh */
static int
open_tmp(struct cctx *c, const char *name)
{
	char tmp[SPOOL_SEGNAME_LEN + 32];
	int fd;

	snprintf(tmp, sizeof(tmp), "%s%s", name, TMP_SUFFIX);
	(void)unlinkat(c->pfd, tmp, 0);
	fd = openat(c->pfd, tmp, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW |
	    O_CLOEXEC, 0664);
	return fd == -1 ? -errno : fd;
}

/* put_tmp - rename NAME.compacting over NAME */
static int
put_tmp(struct cctx *c, const char *name)
{
	char tmp[SPOOL_SEGNAME_LEN + 32];

	snprintf(tmp, sizeof(tmp), "%s%s", name, TMP_SUFFIX);
	return renameat(c->pfd, tmp, c->pfd, name) == -1 ? -errno : 0;
}

/*
 * spool_compact_install_rewrite - compact sealed segment seg: the new file
 * and index beside the old ones, synced, then renamed over them; returns
 * the number of messages removed (0: none, and nothing was replaced)
 */
int
spool_compact_install_rewrite(struct cctx *c, int fd, uint64_t seg,
    off_t size)
{
	char log[SPOOL_SEGNAME_LEN + 16], idx[SPOOL_SEGNAME_LEN + 16];
	int64_t n;
	int ifd = -1, r, sync = !c->t->sp->nosync;

	spool_seg_name(log, seg, SPOOL_LOG_SUFFIX);
	spool_seg_name(idx, seg, SPOOL_IDX_SUFFIX);
	if ((c->ofd = open_tmp(c, log)) < 0)
		return c->ofd;
	c->outlen = 0;
	c->opos = 0;
	c->ixlen = 0;
	c->lastidx = -SPOOL_IDX_INTERVAL;
	c->seg = seg;
	spool_batch_reset(&c->b);
	if ((n = spool_compact_seg_pass(c, fd, seg, size, 1)) <= 0) {
		r = (int)n;	/* an error, or nothing goes: the copy goes */
		goto out;
	}
	/* the new segment is on disk before its name points at it */
	if (sync && fsync(c->ofd) == -1) {
		r = -errno;
		goto out;
	}
	if ((ifd = open_tmp(c, idx)) < 0) {
		r = ifd;
		goto out;
	}
	r = 0;
	if (c->ixlen > 0 && pwrite(ifd, c->ix, c->ixlen, 0) !=
	    (ssize_t)c->ixlen)
		r = errno ? -errno : -EIO;
	/* and so is its index: verify trusts an index it finds */
	if (r == 0 && sync && fsync(ifd) == -1)
		r = -errno;
	if (r < 0)
		goto out;
	/*
	 * the generation changes before the first segment of a run is
	 * replaced and again at its end (or, killed, at the next run's):
	 * a replica that saw any other compares its segments again
	 * (mq-replicate), and one that saw the last one saw them all
	 */
	if (!c->newgen && (r = spool_compact_state_newgen(c)) < 0)
		goto out;
	/* no moment where the new log has the old index */
	if (unlinkat(c->pfd, idx, 0) == -1 && errno != ENOENT) {
		r = -errno;
		goto out;
	}
	if ((r = put_tmp(c, log)) < 0 || (r = put_tmp(c, idx)) < 0)
		goto out;
	/* the renames must survive a crash before the next one is made */
	if (sync && (r = spool_fsync_dir(c->pfd)) < 0)
		goto out;
	r = n > INT32_MAX ? INT32_MAX : (int)n;
out:
	if (ifd >= 0)
		close(ifd);
	close(c->ofd);
	c->ofd = -1;
	if (r <= 0) {
		char tmp[SPOOL_SEGNAME_LEN + 32];

		snprintf(tmp, sizeof(tmp), "%s%s", log, TMP_SUFFIX);
		(void)unlinkat(c->pfd, tmp, 0);
		snprintf(tmp, sizeof(tmp), "%s%s", idx, TMP_SUFFIX);
		(void)unlinkat(c->pfd, tmp, 0);
	}
	return r;
}

/* spool_compact_install_clean - remove what a killed compaction left */
void
spool_compact_install_clean(int pfd)
{
	struct dirent *de;
	size_t len, sl = strlen(TMP_SUFFIX);
	DIR *d;
	int dfd;

	if ((dfd = dup(pfd)) == -1)
		return;
	if ((d = fdopendir(dfd)) == NULL) {
		close(dfd);
		return;
	}
	rewinddir(d);
	while ((de = readdir(d)) != NULL) {
		len = strlen(de->d_name);
		if (len > sl && strcmp(de->d_name + len - sl, TMP_SUFFIX) == 0)
			(void)unlinkat(pfd, de->d_name, 0);
	}
	closedir(d);
}

/*
 * spool_compact_install_drop_empty - remove the oldest sealed segments
 * compaction left with their END batch alone: the gap below the first
 * segment is legal (mq-spool(5), Gaps), as after retention.  One in the
 * middle stays: the segment before it must end where the next one begins.
 * Returns how many went.
 */
int
spool_compact_install_drop_empty(struct cctx *c,
    void (*report)(void *, const char *), void *arg)
{
	unsigned char hdr[SPOOL_HDR_SIZE];
	char name[SPOOL_SEGNAME_LEN + 16], msg[256];
	struct spool_seglist l;
	struct spool_bhdr h;
	struct stat st;
	size_t i;
	int fd, r = 0, n = 0, empty;

	if ((r = spool_seg_list(c->pfd, &l)) < 0)
		return r;
	for (i = 0; i + 1 < l.n; i++) {
		spool_seg_name(name, l.base[i], SPOOL_LOG_SUFFIX);
		if ((fd = openat(c->pfd, name, O_RDONLY | O_NOFOLLOW |
		    O_CLOEXEC)) == -1)
			break;
		empty = fstat(fd, &st) == 0 && st.st_size == SPOOL_HDR_SIZE &&
		    pread(fd, hdr, sizeof(hdr), 0) == SPOOL_HDR_SIZE &&
		    spool_bhdr_unpack(hdr, &h) == 0 &&
		    h.type == SPOOL_TYPE_END && h.base_offset == l.base[i + 1];
		close(fd);
		if (!empty)
			break;
		/* the log first: an index without its log is ignored */
		if (unlinkat(c->pfd, name, 0) == -1) {
			r = -errno;
			break;
		}
		spool_seg_name(name, l.base[i], SPOOL_IDX_SUFFIX);
		(void)unlinkat(c->pfd, name, 0);
		n++;
		if (report != NULL) {
			snprintf(msg, sizeof(msg), "%s/%" PRIu32 "/%020" PRIu64
			    ".log: deleted (emptied by compaction)",
			    c->t->name, c->part, l.base[i]);
			report(arg, msg);
		}
	}
	spool_seg_free(&l);
	/* the removals must not come back after a crash */
	if (r == 0 && n > 0 && spool_sync_dir(c->t->sp, c->pfd) < 0)
		r = -errno;
	return r < 0 ? r : n;
}
