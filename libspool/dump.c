/*
 * dump.c - the batch headers of a partition as they are on disk, for
 * debugging (mq-topic dump) and for tests that would otherwise parse the
 * format themselves
 *
 * Walks every segment of a partition from its first byte and hands each
 * batch header to a callback: where it is, its fields, and whether its
 * header and body checksums hold.  It reads, never writes, locks or
 * repairs, and judges nothing beyond the checksums and the header
 * checks of spool_bhdr_unpack: gaps, the END rules and the index are
 * verify's (topic.c).  In a segment, the walk stops at the first header
 * that is torn, damaged or of a newer format, since the length of what
 * follows is then unknown; the next segment is walked all the same.
 */

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "spool_impl.h"

#define CHUNK	(256u << 10)	/* body bytes read at a time for the CRC */

/* body_crc - CRC-32 of len bytes at pos; -errno, or 1 if the file ends */
static int
body_crc(struct spool_io *io, int fd, off_t pos, uint32_t len,
    unsigned char *buf, uint32_t *crc)
{
	ssize_t n;
	uint32_t want;

	*crc = 0;
	while (len > 0) {
		want = len < CHUNK ? len : CHUNK;
		n = spool_io_pread(io, fd, buf, want, pos);
		if (n < 0)
			return (int)n;
		if ((uint32_t)n != want)
			return 1;
		*crc = spool_crc(*crc, buf, want);
		pos += want;
		len -= want;
	}
	return 0;
}

/* raw - the header fields as the bytes say, whether they hold or not */
static void
raw(const unsigned char *p, struct spool_dump_batch *b)
{
	b->hdr_crc = get32(p + 4);
	b->base_offset = get64(p + 8);
	b->count = get32(p + 16);
	b->body_len = get32(p + 20);
	b->body_crc = get32(p + 24);
	b->raw_len = get32(p + 28);
	b->base_ts = (int64_t)get64(p + 32);
	b->max_ts = (int64_t)get64(p + 40);
	b->type = get16(p + 48);
	b->codec = p[50];
	b->flags = p[51];
	b->epoch = get32(p + 52);
	b->txid = get64(p + 56);
}

/* segment - hand each batch of one segment file to fn */
static int
segment(struct spool_io *io, int pfd, uint32_t part, uint64_t base,
    unsigned char *buf, int (*fn)(void *, const struct spool_dump_batch *),
    void *arg)
{
	unsigned char hdr[SPOOL_HDR_SIZE];
	char name[SPOOL_SEGNAME_LEN + 16];
	struct spool_dump_batch b;
	struct spool_bhdr h;
	struct stat st;
	uint32_t crc;
	off_t pos = 0;
	ssize_t n;
	int fd, r = 0;

	spool_seg_name(name, base, SPOOL_LOG_SUFFIX);
	if ((fd = openat(pfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)) == -1)
		return errno == ENOENT ? 0 : -errno;	/* gone to gc */
	if (fstat(fd, &st) == -1) {
		r = -errno;
		goto out;
	}
	while (pos < st.st_size) {
		memset(&b, 0, sizeof(b));
		b.partition = part;
		b.segment = base;
		b.pos = (uint64_t)pos;
		if ((n = spool_io_pread(io, fd, hdr, sizeof(hdr), pos)) < 0) {
			r = (int)n;
			break;
		}
		if (n < SPOOL_HDR_SIZE) {
			b.state = SPOOL_DUMP_TORN;
			r = fn(arg, &b);
			break;
		}
		raw(hdr, &b);
		switch (spool_bhdr_unpack(hdr, &h)) {
		case 0:
			break;
		case -EPROTO:
			b.state = SPOOL_DUMP_NEWER;
			break;
		default:
			b.state = SPOOL_DUMP_BADHDR;
		}
		if (b.state == SPOOL_DUMP_OK) {
			if ((r = body_crc(io, fd, pos + SPOOL_HDR_SIZE,
			    h.body_len, buf, &crc)) < 0)
				break;
			if (r == 1)
				b.state = SPOOL_DUMP_TORN;
			else if (crc != h.body_crc)
				b.state = SPOOL_DUMP_BADBODY;
		}
		if ((r = fn(arg, &b)) != 0 || (b.state != SPOOL_DUMP_OK &&
		    b.state != SPOOL_DUMP_BADBODY))
			break;
		pos += SPOOL_HDR_SIZE + (off_t)h.body_len;
	}
out:
	close(fd);
	return r;
}

/*
 * spool_dump - call fn for every batch of partition part, in file
 * order; fn returning non-zero stops the walk with that value.
 * -ENOENT: no such partition; other -errno for I/O.
 */
int
spool_dump(struct spool_topic *t, uint32_t part,
    int (*fn)(void *, const struct spool_dump_batch *), void *arg)
{
	struct spool_seglist l;
	struct spool_io *io;
	unsigned char *buf;
	size_t i;
	int pfd, r;

	if ((io = spool_get_io(t->sp)) == NULL)
		return -ENOMEM;
	if ((pfd = spool_part_open(t, part)) < 0)
		return pfd;
	if ((buf = malloc(CHUNK)) == NULL) {
		close(pfd);
		return -ENOMEM;
	}
	if ((r = spool_seg_list(pfd, &l)) == 0) {
		for (i = 0; i < l.n && r == 0; i++)
			r = segment(io, pfd, part, l.base[i], buf, fn, arg);
		spool_seg_free(&l);
	}
	free(buf);
	close(pfd);
	return r;
}
