/*
 * mirror.c - a replica's partition, held for the receiver
 *
 * A replica holds the same segment files as its source, byte for byte:
 * the same names, the same batches (offsets, timestamps, epochs, codecs
 * and bodies unchanged), the same END batches.  This module holds a
 * replica's partition for the receiver: it takes the partition lock
 * (the one writer.c takes) in spool_mirror_open and keeps it to
 * spool_mirror_close; on open it cuts a torn tail as a writer does
 * (spool_seg_recover) and finds the newest batch held, which the source
 * compares with its own.
 *
 * It also says whether the source must hold a batch back
 * (spool_mirror_held).  Starting segments and appending batches is
 * mirror_append.c's; removing (segments below an offset, a diverged
 * replica cut back), mirror_cut.c's; installing a segment compacted on
 * the source, mirror_install.c's.  It does not talk to the source
 * (repl_*.c do).
 */

#include <sys/file.h>
#include <sys/stat.h>
#include <sys/types.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "replicate.h"

/*
 * spool_mirror_walk_last - the newest batch of a segment up to size
 * (0: none)
 */
int
spool_mirror_walk_last(struct spool_mirror *m, int logfd, int idxfd,
    uint64_t base, uint64_t next, off_t size)
{
	struct spool_cursor c;
	uint64_t expect;
	off_t p = 0;
	int r, k, pass;

	if ((r = spool_cursor_find(m->io, logfd, idxfd, base,
	    next > base ? next - 1 : base, size, &p, &expect)) < 0)
		return r;
	for (pass = 0; pass < 2; pass++) {
		spool_cursor_fd(&c, m->io, logfd, base, size, p, expect);
		/* a jump in offsets is not this walk's business */
		while ((k = spool_cursor_next(&c)) == SPOOL_CUR_BATCH ||
		    k == SPOOL_CUR_HOLE) {
			if (k == SPOOL_CUR_HOLE)
				continue;
			m->haslast = 1;
			m->lastseg = base;
			m->lastpos = c.pos;
			m->lastcrc = get32(c.hdr + 4);
			m->lastoff = c.h.base_offset;
			m->lastlen = SPOOL_HDR_SIZE + c.h.body_len;
			if (c.h.type != SPOOL_TYPE_END) {
				m->lastdoff = c.h.base_offset;
				m->lastepoch = c.h.epoch;
			}
		}
		spool_cursor_close(&c);
		if (m->haslast)
			break;
		p = 0;		/* the seek found nothing: walk it all */
		expect = base;
	}
	return 0;
}

/*
 * spool_mirror_load - open the head segment, recover its tail, find the
 * newest batch
 */
int
spool_mirror_load(struct spool_mirror *m)
{
	struct spool_seglist l;
	struct spool_scanpos pos;
	struct stat st;
	char name[SPOOL_SEGNAME_LEN + 16];
	int r, fd, ifd;

	m->logfd = m->idxfd = -1;
	m->haslast = m->closed = m->dirty = 0;
	m->end = 0;
	m->next = m->first = 0;
	if ((r = spool_seg_list(m->partfd, &l)) < 0)
		return r;
	m->nseg = l.n;
	if (l.n == 0) {
		spool_seg_free(&l);
		return 0;
	}
	m->first = l.base[0];
	m->segbase = l.base[l.n - 1];
	spool_seg_name(name, m->segbase, SPOOL_LOG_SUFFIX);
	if ((m->logfd = openat(m->partfd, name, O_RDWR | O_NOFOLLOW |
	    O_CLOEXEC)) == -1) {
		r = -errno;
		goto out;
	}
	spool_seg_name(name, m->segbase, SPOOL_IDX_SUFFIX);
	if ((m->idxfd = openat(m->partfd, name, O_RDWR | O_CREAT | O_NOFOLLOW |
	    O_CLOEXEC, 0664)) == -1) {
		r = -errno;
		goto out;
	}
	memset(&pos, 0, sizeof(pos));
	if ((r = spool_seg_recover(m->t->sp, m->segbase, m->logfd, m->idxfd,
	    &pos)) < 0)
		goto out;
	m->next = pos.next;
	m->end = pos.pos;
	m->closed = pos.end;
	m->lastidx = m->end > 0 ? pos.indexed : -SPOOL_IDX_INTERVAL;	/* head.c */
	if (m->end > 0) {
		r = spool_mirror_walk_last(m, m->logfd, m->idxfd, m->segbase,
		    m->next, m->end);
		goto out;
	}
	if (l.n < 2)
		goto out;
	/* an empty head: the newest batch is the END of the one before */
	fd = openat(m->partfd, (spool_seg_name(name, l.base[l.n - 2],
	    SPOOL_LOG_SUFFIX), name), O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd == -1)
		goto out;
	spool_seg_name(name, l.base[l.n - 2], SPOOL_IDX_SUFFIX);
	ifd = openat(m->partfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fstat(fd, &st) == 0)
		r = spool_mirror_walk_last(m, fd, ifd, l.base[l.n - 2], m->next,
		    st.st_size);
	close(fd);
	if (ifd >= 0)
		close(ifd);
out:
	spool_seg_free(&l);
	return r;
}

/* spool_mirror_close_head - let go of the head segment */
void
spool_mirror_close_head(struct spool_mirror *m)
{
	if (m->logfd >= 0)
		close(m->logfd);
	if (m->idxfd >= 0)
		close(m->idxfd);
	m->logfd = m->idxfd = -1;
}

/*
 * spool_mirror_open - take partition part of t for replication: under
 * its lock (unless lock is 0: a dry run that only looks), its head
 * recovered and the newest batch found
 */
int
spool_mirror_open(struct spool_topic *t, uint32_t part, int lock,
    struct spool_mirror *m)
{
	int r;

	memset(m, 0, sizeof(*m));
	m->t = t;
	m->part = part;
	m->partfd = m->lockfd = m->logfd = m->idxfd = -1;
	if ((m->io = spool_get_io(t->sp)) == NULL)
		return -ENOMEM;
	if ((m->partfd = spool_part_open(t, part)) < 0) {
		r = m->partfd;
		m->partfd = -1;
		return r;
	}
	if (lock) {
		m->lockfd = openat(m->partfd, SPOOL_LOCK_NAME, O_RDWR |
		    O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0664);
		if (m->lockfd == -1) {
			r = -errno;
			spool_mirror_close(m);
			return r;
		}
		while (flock(m->lockfd, LOCK_EX) == -1)
			if (errno != EINTR) {
				r = -errno;
				spool_mirror_close(m);
				return r;
			}
	}
	if ((r = spool_mirror_load(m)) < 0)
		spool_mirror_close(m);
	return r;
}

/* spool_mirror_close - release the partition (and its lock) */
void
spool_mirror_close(struct spool_mirror *m)
{
	spool_mirror_close_head(m);
	if (m->lockfd >= 0)
		close(m->lockfd);
	if (m->partfd >= 0)
		close(m->partfd);
	m->lockfd = m->partfd = -1;
}

/* spool_mirror_holds - whether the partition holds any batch at all */
int
spool_mirror_holds(const struct spool_mirror *m)
{
	return m->nseg > 1 || m->end > 0;
}

/* spool_mirror_segs - the partition's segments, oldest first */
int
spool_mirror_segs(struct spool_mirror *m, struct spool_seglist *l)
{
	return spool_seg_list(m->partfd, l);
}

/* spool_mirror_unlink_seg - remove a segment and its index */
int
spool_mirror_unlink_seg(int partfd, uint64_t base)
{
	char name[SPOOL_SEGNAME_LEN + 16];

	spool_seg_name(name, base, SPOOL_IDX_SUFFIX);
	(void)unlinkat(partfd, name, 0);
	spool_seg_name(name, base, SPOOL_LOG_SUFFIX);
	if (unlinkat(partfd, name, 0) == -1 && errno != ENOENT)
		return -errno;
	return 0;
}

/* spool_mirror_reload - find the head and newest batch again */
int
spool_mirror_reload(struct spool_mirror *m)
{
	spool_mirror_close_head(m);
	return spool_mirror_load(m);
}

/*
 * spool_mirror_held - must the source hold this batch back: a batch of
 * a transaction being committed (txn.c), or committed since the pass
 * began at since (epoch ms), which a replica must not get before every
 * partition of the commit goes in the same pass; 1 yes, 0 no.  ok (or
 * NULL) remembers the transaction last found settled: a batch of a
 * transaction is in a log only once its commit began, and from there it
 * only ends, so settled stays settled; unsettled is never remembered
 */
int
spool_mirror_held(struct spool_topic *t, const struct spool_bhdr *h,
    int64_t since, struct spool_mheld *ok)
{
	int r;

	if (!(h->flags & SPOOL_BF_TXN))
		return 0;
	if (ok != NULL && h->txid == ok->txid && since >= ok->since &&
	    strcmp(t->name, ok->topic) == 0)
		return 0;
	if ((r = spool_txn_unsettled(t, h->txid, since)) == 0 && ok != NULL) {
		snprintf(ok->topic, sizeof(ok->topic), "%s", t->name);
		ok->txid = h->txid;
		ok->since = since;
	}
	return r;
}
