/*
 * mirror_cut.c - removing from a replica's partition: the oldest
 * segments, or a diverged replica's newest batches
 *
 * Whole segments go, oldest first, while the next one starts at or below
 * an offset (retention carried over from the source) or all of them (a
 * restart at the source's first segment), the directory synced before
 * anything new is written (spool_mirror_drop).
 *
 * A replica whose newest batches the source does not have (an old
 * primary come back, mq-replicate(1)) is cut back to the newest batch
 * both hold.  This file lists a segment's whole batches for the probe
 * that finds that batch (spool_mirror_batches), and cuts: every message
 * from the cut on is first written as JSON lines (mq-recv -J) to a file
 * the caller gives and synced (spool_mirror_aside), only then (the
 * caller has given the file its name) are the later segments removed
 * and the cut one truncated, its index trimmed, the directory synced,
 * and the head found again (spool_mirror_load).  A crash in between
 * leaves messages both kept aside and still in the log, never neither.
 * It takes no lock of its own (the caller holds the partition's, from
 * spool_mirror_open) and does not talk to the source (repl_*.c do).
 */

#include <sys/file.h>
#include <sys/stat.h>
#include <sys/types.h>

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "replicate.h"

/*
 * dropping - how many of the oldest segments of l go: those the next
 * one of starts at or below offset below, or all of them (UINT64_MAX)
 */
static size_t
dropping(const struct spool_seglist *l, uint64_t below)
{
	size_t i;

	if (below == UINT64_MAX)
		return l->n;
	for (i = 0; i + 1 < l->n && l->base[i + 1] <= below; i++)
		continue;
	return i;
}

/*
 * spool_mirror_droppable - how many segments spool_mirror_drop would
 * remove after the copy (for a dry run), or -errno: a replica that ends
 * where the source's oldest segment begins (below) would hold that
 * segment by then, and its own head would go too
 */
int
spool_mirror_droppable(struct spool_mirror *m, uint64_t below)
{
	struct spool_seglist l;
	size_t n;
	int r;

	if (m->partfd < 0)
		return 0;
	if ((r = spool_seg_list(m->partfd, &l)) < 0)
		return r;
	n = dropping(&l, below);
	if (l.n > 0 && m->next == below && l.base[l.n - 1] < below)
		n = l.n;
	spool_seg_free(&l);
	return n > INT_MAX ? INT_MAX : (int)n;
}

/*
 * spool_mirror_drop - remove the oldest segments while the next one
 * starts at or below offset below (retention as the source did it);
 * below UINT64_MAX removes every segment (a restart at the source's
 * first segment), oldest first so that a crash leaves a valid tail;
 * how many went, or -errno
 */
int
spool_mirror_drop(struct spool_mirror *m, uint64_t below, int sync)
{
	struct spool_seglist l;
	size_t i, n, gone = 0;
	int r = 0, all;

	if ((r = spool_seg_list(m->partfd, &l)) < 0)
		return r;
	n = dropping(&l, below);
	for (i = 0; i < n; i++) {
		if ((r = spool_mirror_unlink_seg(m->partfd, l.base[i])) < 0)
			break;
		gone++;
	}
	all = gone == l.n;
	spool_seg_free(&l);
	if (gone == 0)
		return r;
	/* the removals must stick before anything new is written */
	if (r == 0 && sync && spool_fsync_dir(m->partfd) < 0)
		r = -errno;
	spool_mirror_close_head(m);
	if (r == 0 && all) {
		/* what load finds in an empty partition, without listing it */
		m->haslast = m->closed = m->dirty = 0;
		m->end = 0;
		m->next = m->first = 0;
		m->nseg = 0;
	} else if (r == 0)
		r = spool_mirror_load(m);
	if (r < 0)
		return r;
	return gone > INT_MAX ? INT_MAX : (int)gone;
}

/* spool_mirror_batches - the whole batches of segment segbase, in order */
int
spool_mirror_batches(struct spool_mirror *m, uint64_t segbase,
    struct spool_mbatch **out, size_t *n)
{
	struct spool_mbatch *v = NULL, *nv;
	struct spool_cursor c;
	size_t cap = 0;
	off_t size;
	int fd, k;

	*out = NULL;
	*n = 0;
	if ((fd = spool_seg_open_ro(m->partfd, segbase, &size)) < 0)
		return fd;
	spool_cursor_fd(&c, m->io, fd, segbase, size, 0, segbase);
	/* a jump in offsets is not this walk's business */
	while ((k = spool_cursor_next(&c)) == SPOOL_CUR_BATCH ||
	    k == SPOOL_CUR_HOLE) {
		if (k == SPOOL_CUR_HOLE)
			continue;
		if (*n == cap) {
			cap = cap ? cap * 2 : 256;
			if ((nv = realloc(v, cap * sizeof(*v))) == NULL) {
				free(v);
				close(fd);
				return -ENOMEM;
			}
			v = nv;
		}
		v[*n].pos = c.pos;
		v[*n].off = c.h.base_offset;
		v[*n].crc = get32(c.hdr + 4);
		v[*n].len = SPOOL_HDR_SIZE + c.h.body_len;
		v[*n].count = c.h.count;
		(*n)++;
	}
	spool_cursor_close(&c);
	close(fd);
	*out = v;
	return 0;
}

/* write_all - write a buffer whole to fd */
static int
write_all(int fd, const char *b, size_t len)
{
	ssize_t w;

	while (len > 0) {
		if ((w = write(fd, b, len)) == -1) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		b += w;
		len -= w;
	}
	return 0;
}

/* aside - the messages of one segment from pos on, as JSON lines to afd */
static int
aside(struct spool_mirror *m, uint64_t base, off_t from, int afd,
    uint64_t *nmsgs)
{
	unsigned char *body = NULL;
	struct spool_cursor c;
	struct spool_body b;
	struct spool_msg msg;
	char why[128], *jbuf = NULL;
	size_t bcap = 0, jcap = 0, jlen;
	off_t size;
	int fd, k, r = 0;

	if ((fd = spool_seg_open_ro(m->partfd, base, &size)) < 0)
		return fd;
	spool_cursor_fd(&c, m->io, fd, base, size, from, base);
	/* a jump in offsets is not this walk's business */
	while (r == 0 && ((k = spool_cursor_next(&c)) == SPOOL_CUR_BATCH ||
	    k == SPOOL_CUR_HOLE)) {
		if (k == SPOOL_CUR_HOLE)
			continue;
		if (c.h.type != SPOOL_TYPE_DATA)
			continue;
		if (c.h.body_len > bcap) {
			unsigned char *nb = realloc(body, c.h.body_len);

			if (nb == NULL) {
				r = -ENOMEM;
				break;
			}
			body = nb;
			bcap = c.h.body_len;
		}
		if (spool_io_pread(m->io, fd, body, c.h.body_len,
		    c.pos + SPOOL_HDR_SIZE) != (ssize_t)c.h.body_len) {
			r = -EIO;
			break;
		}
		memset(&b, 0, sizeof(b));
		if ((r = spool_body_open(&b, &c.h, body, why,
		    sizeof(why))) == 0) {
			while ((r = spool_body_next(&b, &msg)) == 1) {
				msg.partition = m->part;
				jlen = 0;
				if ((r = spool_json_encode(m->t->name, &msg,
				    &jbuf, &jcap, &jlen)) < 0 ||
				    (r = write_all(afd, jbuf, jlen)) < 0)
					break;
				(*nmsgs)++;
			}
		}
		spool_body_free(&b);
		if (r > 0)
			r = 0;
	}
	spool_cursor_close(&c);
	close(fd);
	free(body);
	free(jbuf);
	return r;
}

/* trim_index - drop the index entries of a segment at or past pos */
static int
trim_index(int partfd, uint64_t base, off_t pos)
{
	char name[SPOOL_SEGNAME_LEN + 16];
	unsigned char e[SPOOL_IDX_ENTRY];
	off_t k = 0;
	int fd, r = 0;

	spool_seg_name(name, base, SPOOL_IDX_SUFFIX);
	fd = openat(partfd, name, O_RDWR | O_NOFOLLOW | O_CLOEXEC);
	if (fd == -1)
		return errno == ENOENT ? 0 : -errno;
	while (pread(fd, e, sizeof(e), k * SPOOL_IDX_ENTRY) == sizeof(e) &&
	    (off_t)get32(e + 4) < pos)
		k++;
	if (ftruncate(fd, k * SPOOL_IDX_ENTRY) == -1)
		r = -errno;
	close(fd);
	return r;
}

/*
 * spool_mirror_aside - every message of the partition from position pos
 * of segment segbase on, written to afd as JSON lines (mq-recv -J) and
 * synced: what spool_mirror_cut is about to remove, safe elsewhere first
 */
int
spool_mirror_aside(struct spool_mirror *m, uint64_t segbase, off_t pos,
    int afd, uint64_t *nmsgs)
{
	struct spool_seglist l;
	size_t i;
	int r;

	*nmsgs = 0;
	if ((r = spool_seg_list(m->partfd, &l)) < 0)
		return r;
	for (i = 0; i < l.n && r == 0; i++)
		if (l.base[i] >= segbase)
			r = aside(m, l.base[i], l.base[i] == segbase ? pos : 0,
			    afd, nmsgs);
	spool_seg_free(&l);
	/* nothing is cut before what it held is safe elsewhere */
	if (r == 0 && fsync(afd) == -1)
		r = -errno;
	return r;
}

/*
 * spool_mirror_cut - cut the partition back to position pos of segment
 * segbase, once spool_mirror_aside kept what goes: the later segments
 * are removed and that one truncated
 */
int
spool_mirror_cut(struct spool_mirror *m, uint64_t segbase, off_t pos,
    int sync)
{
	struct spool_seglist l;
	size_t i;
	int fd, r = 0;
	char name[SPOOL_SEGNAME_LEN + 16];

	if ((r = spool_seg_list(m->partfd, &l)) < 0)
		return r;
	for (i = l.n; i > 0 && r == 0; i--)
		if (l.base[i - 1] > segbase)
			r = spool_mirror_unlink_seg(m->partfd, l.base[i - 1]);
	spool_seg_free(&l);
	if (r < 0)
		return r;
	spool_mirror_close_head(m);
	spool_seg_name(name, segbase, SPOOL_LOG_SUFFIX);
	fd = openat(m->partfd, name, O_RDWR | O_NOFOLLOW | O_CLOEXEC);
	if (fd == -1)
		return -errno;
	if (ftruncate(fd, pos) == -1 || (sync && fsync(fd) == -1))
		r = -errno;
	close(fd);
	if (r == 0)
		r = trim_index(m->partfd, segbase, pos);
	/* the removals too must hold before the source's batches come */
	if (r == 0 && sync && spool_fsync_dir(m->partfd) < 0)
		r = -errno;
	if (r == 0)
		r = spool_mirror_load(m);
	return r;
}
