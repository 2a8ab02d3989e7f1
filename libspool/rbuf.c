/*
 * rbuf.c - a reader partition's buffer (walk.c reads through it)
 *
 * The buffer is a ring mapped twice in a row (ring_map): the byte at
 * buf[i + cap] is the byte at buf[i], so that a batch that runs past
 * the end of the ring is still whole in memory, and what is left of
 * the last chunk never has to be moved to the front before the next
 * read: a quarter of every megabyte, with the 256 KB batches of a bulk
 * mq-send, and 33 of mq-recv's 164 instructions a 100-byte message
 * (callgrind; 131 without).  buf[at] is the next batch, buf[have]
 * where the next read goes; at < cap once normalized
 * (spool_rbuf_norm), and have - at <= cap.  The bytes of
 * the open batch, from keep on, are not read over.
 *
 * A reader starts with plain memory (ring is 0), whose rest is moved to
 * the front when it is small, and turns to a ring the first time a
 * large rest would be moved: a one-shot read of the last message maps
 * nothing, a bulk read maps its ring once.  Where the kernel will not
 * map one (memfd_create refused), the buffer stays plain memory.
 *
 * It owns the buffer's memory and where its bytes are; it reads nothing
 * (walk.c does, into spool_rbuf_room bytes at buf[have]).
 */

#include <sys/mman.h>
#include <sys/types.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "spool_impl.h"

#define RING_AFTER	(SPOOL_RBUF_CHUNK / 16)	/* a rest to move: use a ring */

/*
 * ring_map - a ring of cap bytes (a multiple of the page size) mapped
 * at two addresses in a row; NULL if it cannot be
 */
static unsigned char *
ring_map(size_t cap)
{
	unsigned char *a;
	int fd;

	/* reserve both halves, then map the same memory into each */
	a = mmap(NULL, 2 * cap, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (a == MAP_FAILED)
		return NULL;
	if ((fd = memfd_create("mq-ring", MFD_CLOEXEC)) == -1)
		goto fail;
	/* the mappings keep the memory; the descriptor can go */
	if (ftruncate(fd, (off_t)cap) == -1 ||
	    mmap(a, cap, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED, fd,
	    0) == MAP_FAILED ||
	    mmap(a + cap, cap, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED,
	    fd, 0) == MAP_FAILED) {
		close(fd);
		goto fail;
	}
	close(fd);
	return a;
fail:
	munmap(a, 2 * cap);
	return NULL;
}

/* spool_rbuf_free - let go of a partition's buffer */
void
spool_rbuf_free(struct spool_rpart *p)
{
	if (p->ring)
		munmap(p->buf, 2 * p->cap);
	else
		free(p->buf);
	p->buf = NULL;
	p->cap = p->have = p->at = 0;
}

/*
 * spool_rbuf_norm - bring at (and keep, *keep) into the first half: the same
 * bytes, cap lower, where the pointers into the second half still are
 */
void
spool_rbuf_norm(struct spool_rpart *p, size_t *keep)
{
	if (!p->ring || *keep < p->cap)
		return;
	*keep -= p->cap;
	p->at -= p->cap;
	p->have -= p->cap;
	p->filepos += (off_t)p->cap;
}

/* spool_rbuf_room - how many bytes may be read at buf[have], keeping buf[keep] on */
size_t
spool_rbuf_room(const struct spool_rpart *p, size_t keep)
{
	return p->ring ? keep + p->cap - p->have : p->cap - p->have;
}

/*
 * grow - a buffer for need bytes from buf[at] with room to read more,
 * a ring if wanted and the kernel gives one, else plain memory
 */
static int
grow(struct spool_rpart *p, size_t need, int ring)
{
	size_t ncap = p->cap ? p->cap : SPOOL_RBUF_CHUNK, at = p->at;
	size_t left = p->have - at;
	unsigned char *nb = NULL;

	while (ncap < need + SPOOL_RBUF_CHUNK / 4)
		ncap *= 2;
	if (ring && !p->noring && (nb = ring_map(ncap)) == NULL)
		p->noring = 1;	/* memfd_create refused: plain from now on */
	ring = ring && !p->noring;
	if (!ring && (nb = malloc(ncap)) == NULL)
		return -ENOMEM;
	if (left > 0)
		memcpy(nb, p->buf + at, left);
	spool_rbuf_free(p);
	p->ring = ring;
	p->filepos += (off_t)at;	/* spool_rbuf_free forgot them */
	p->buf = nb;
	p->cap = ncap;
	p->at = 0;
	p->have = left;
	return 0;
}

/*
 * spool_rbuf_make - room for need bytes from buf[at] and for a read
 * after them.  The first buffer is plain memory: a read of a few
 * messages sets up no ring.  A plain buffer whose rest would be moved
 * becomes a ring once that rest is large (RING_AFTER: a bulk read of
 * big batches); a small rest is moved.
 */
int
spool_rbuf_make(struct spool_rpart *p, size_t need)
{
	size_t keep = p->at;

	if (p->buf == NULL)
		return grow(p, need, 0);
	spool_rbuf_norm(p, &keep);
	if (!p->ring && p->at > 0) {
		if (p->have - p->at >= RING_AFTER && !p->noring)
			return grow(p, need, 1);
		memmove(p->buf, p->buf + p->at, p->have - p->at);
		p->filepos += (off_t)p->at;
		p->have -= p->at;
		p->at = 0;
	}
	if (need > p->cap || spool_rbuf_room(p, p->at) < SPOOL_RBUF_CHUNK / 4)
		return grow(p, need, 1);
	return 0;
}
