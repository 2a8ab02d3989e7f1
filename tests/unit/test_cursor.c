/*
 * test_cursor.c - the batch cursor (libspool/cursor.c) over partitions
 * built byte by byte: offsets across segments, seeks, legal gaps
 * (compacted, skippable), holes inside and between segments, torn and
 * bad batches, and batches of a newer format
 */

#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "spool_impl.h"
#include "tap.h"

static char dir[256];
static int pfd;
static struct spool_io *io;

/* batch - append a batch of count offsets from base to segment seg */
static void
batch(uint64_t seg, uint64_t base, uint32_t count, uint16_t type,
    uint8_t flags)
{
	static unsigned char body[32768];
	unsigned char hdr[SPOOL_HDR_SIZE];
	char name[SPOOL_SEGNAME_LEN + 16];
	struct spool_bhdr h;
	int fd;

	memset(&h, 0, sizeof(h));
	memset(body, 0, sizeof(body));
	h.base_offset = base;
	h.count = count;
	h.type = type;
	h.flags = flags;
	h.body_len = h.raw_len = type == SPOOL_TYPE_END ? 0 : count * 4;
	h.body_crc = spool_crc(0, body, h.body_len);
	spool_bhdr_pack(hdr, &h);
	spool_batch_stamp(hdr, base);
	spool_seg_name(name, seg, SPOOL_LOG_SUFFIX);
	fd = openat(pfd, name, O_WRONLY | O_CREAT | O_APPEND, 0644);
	if (fd == -1 || write(fd, hdr, sizeof(hdr)) != sizeof(hdr) ||
	    write(fd, body, h.body_len) != (ssize_t)h.body_len) {
		perror(name);
		exit(2);
	}
	close(fd);
}

/* raw - append bytes to segment seg */
static void
raw(uint64_t seg, const void *p, size_t n)
{
	char name[SPOOL_SEGNAME_LEN + 16];
	int fd;

	spool_seg_name(name, seg, SPOOL_LOG_SUFFIX);
	fd = openat(pfd, name, O_WRONLY | O_CREAT | O_APPEND, 0644);
	if (fd == -1 || write(fd, p, n) != (ssize_t)n)
		exit(2);
	close(fd);
}

/* reset - an empty partition directory */
static void
reset(void)
{
	char cmd[600];

	if (pfd >= 0)
		close(pfd);
	snprintf(cmd, sizeof(cmd), "rm -rf %s/p && mkdir %s/p", dir, dir);
	if (system(cmd) != 0)
		exit(2);
	snprintf(cmd, sizeof(cmd), "%s/p", dir);
	if ((pfd = open(cmd, O_RDONLY | O_DIRECTORY)) == -1)
		exit(2);
}

/* walk - the cursor's answers from offset from, as "B0+3 B3+2 H ..." */
static const char *
walk(int seek, uint64_t from)
{
	static char out[1024];
	struct spool_cursor c;
	size_t n = 0;
	int s, i;

	out[0] = '\0';
	if (spool_cursor_open(&c, io, pfd) < 0)
		return "open failed";
	if (seek && spool_cursor_seek(&c, from) < 0) {
		spool_cursor_close(&c);
		return "seek failed";
	}
	for (i = 0; i < 40 && n < sizeof(out) - 64; i++) {
		s = spool_cursor_next(&c);
		if (s == SPOOL_CUR_DONE)
			break;
		if (s == SPOOL_CUR_BATCH)
			n += snprintf(out + n, sizeof(out) - n, "%s%s%s%llu+%u",
			    n ? " " : "", c.gap ? "g" : "",
			    c.h.type == SPOOL_TYPE_END ? "E" :
			    c.h.type >= SPOOL_TYPE_SKIP ? "S" : "B",
			    (unsigned long long)c.h.base_offset, c.h.count);
		else
			n += snprintf(out + n, sizeof(out) - n, "%s%s",
			    n ? " " : "", s == SPOOL_CUR_TORN ? "T" :
			    s == SPOOL_CUR_BAD ? "X" : s == SPOOL_CUR_HOLE ?
			    "H" : s == -EPROTO ? "P" : "?");
		if (s < 0 && s != -EPROTO)
			break;
	}
	spool_cursor_close(&c);
	return out;
}

#define WALK(seek, from, want, what) do {				\
	const char *got = walk(seek, from);				\
	ok(strcmp(got, want) == 0, "%s: %s", what, got);		\
} while (0)

int
main(void)
{
	unsigned char junk[SPOOL_HDR_SIZE];
	const char *t = getenv("TMPDIR");
	int i;

	snprintf(dir, sizeof(dir), "%s/test_cursor.XXXXXX", t ? t : "/tmp");
	if (mkdtemp(dir) == NULL || spool_io_open(&io, SPOOL_IO_SYNC) < 0)
		return 2;
	pfd = -1;

	reset();
	WALK(0, 0, "", "an empty partition has no batches");

	/* two segments that meet, an END between them */
	batch(0, 0, 3, SPOOL_TYPE_DATA, 0);
	batch(0, 3, 2, SPOOL_TYPE_DATA, 0);
	batch(0, 5, 0, SPOOL_TYPE_END, 0);
	batch(5, 5, 4, SPOOL_TYPE_DATA, 0);
	WALK(0, 0, "B0+3 B3+2 E5+0 B5+4", "walks across segments");
	WALK(1, 4, "B3+2 E5+0 B5+4", "seek to an offset inside a batch");
	WALK(1, 6, "B5+4", "seek into the second segment");
	WALK(1, 100, "", "seek past the end finds nothing");

	/* legal gaps: compacted and skippable */
	batch(5, 12, 2, SPOOL_TYPE_DATA, SPOOL_BF_COMPACTED);
	batch(5, 14, 3, SPOOL_TYPE_SKIP, 0);
	batch(5, 17, 1, SPOOL_TYPE_DATA, 0);
	WALK(1, 5, "B5+4 gB12+2 S14+3 B17+1", "compacted and skippable "
	    "batches are legal gaps");

	/* a hole inside a segment: reported, then the batch handed out */
	batch(5, 20, 1, SPOOL_TYPE_DATA, 0);
	WALK(1, 17, "gB12+2 S14+3 B17+1 H B20+1", "a seek stops at a "
	    "gap; a jump in a segment is a hole");

	/* a segment that does not start where the one before ended */
	batch(30, 30, 2, SPOOL_TYPE_DATA, 0);
	WALK(1, 20, "gB12+2 S14+3 B17+1 H B20+1 H B30+2", "a jump between "
	    "segments is a hole");

	/* a torn tail: reported, nothing after it */
	batch(30, 32, 2, SPOOL_TYPE_DATA, 0);
	raw(30, "mqB1", 4);
	WALK(1, 31, "B30+2 B32+2 T", "a torn tail is reported");

	/* a bad header mid-partition: the next segment is read, at any start */
	reset();
	batch(0, 0, 3, SPOOL_TYPE_DATA, 0);
	memset(junk, 'x', sizeof(junk));
	raw(0, junk, sizeof(junk));
	batch(0, 3, 2, SPOOL_TYPE_DATA, 0);
	batch(9, 9, 1, SPOOL_TYPE_DATA, 0);
	WALK(0, 0, "B0+3 X B9+1", "a bad header ends its segment's walk");

	/* a body longer than the file holds is torn, not a batch */
	reset();
	batch(0, 0, 3, SPOOL_TYPE_DATA, 0);
	batch(0, 3, 2, SPOOL_TYPE_DATA, 0);
	if (truncate(strcat(strcpy((char *)junk, dir), "/p/"
	    "00000000000000000000.log"), 64 + 12 + 64 + 4) != 0)
		return 2;
	WALK(0, 0, "B0+3 T", "a batch cut short is torn");

	/* a newer format stops the walk with -EPROTO */
	reset();
	batch(0, 0, 3, SPOOL_TYPE_DATA, 0);
	batch(0, 3, 1, SPOOL_TYPE_TXN, 0);
	WALK(0, 0, "B0+3 P", "a batch type of a newer mq is -EPROTO");
	batch(0, 4, 1, SPOOL_TYPE_DATA, 0);
	batch(7, 7, 1, SPOOL_TYPE_DATA, 0);
	WALK(0, 0, "B0+3 P B7+1", "after -EPROTO the next segment is read");

	/* bodies: read and checked on demand */
	reset();
	batch(0, 0, 3, SPOOL_TYPE_DATA, 0);
	{
		struct spool_cursor c;
		int fd;

		ok(spool_cursor_open(&c, io, pfd) == 0 &&
		    spool_cursor_next(&c) == SPOOL_CUR_BATCH &&
		    spool_cursor_body(&c) == 1 && c.body[0] == 0,
		    "a body whose checksum holds is read");
		spool_cursor_close(&c);
		fd = openat(pfd, "00000000000000000000.log", O_WRONLY);
		if (fd == -1 || pwrite(fd, "x", 1, SPOOL_HDR_SIZE + 1) != 1)
			return 2;
		close(fd);
		ok(spool_cursor_open(&c, io, pfd) == 0 &&
		    spool_cursor_next(&c) == SPOOL_CUR_BATCH &&
		    spool_cursor_body(&c) == -EBADMSG,
		    "a body whose checksum fails is -EBADMSG: %s", c.why);
		spool_cursor_close(&c);
	}

	/*
	 * the read-ahead: many small batches over several chunks, a large
	 * one among them (read alone), and a flipped byte in a body far
	 * into the run, found by its own batch only
	 */
	reset();
	for (i = 0; i < 1000; i++)
		batch(0, (uint64_t)i * 16, 16, SPOOL_TYPE_DATA, 0);
	batch(0, 16000, 5000, SPOOL_TYPE_DATA, 0);
	for (i = 0; i < 1000; i++)
		batch(0, 21000 + (uint64_t)i * 16, 16, SPOOL_TYPE_DATA, 0);
	{
		struct spool_cursor c;
		uint64_t expect = 0;
		int n = 0, good = 0, bad = -1, k, fd;

		fd = openat(pfd, "00000000000000000000.log", O_WRONLY);
		/* batch 1500: 1000 of 128 bytes, the large one, 499 more */
		if (fd == -1 || pwrite(fd, "x", 1, 1000 * 128 + 64 + 20000 +
		    499 * 128 + 64 + 7) != 1)
			return 2;
		close(fd);
		if (spool_cursor_open(&c, io, pfd) < 0)
			return 2;
		while ((k = spool_cursor_next(&c)) == SPOOL_CUR_BATCH) {
			if (c.h.base_offset != expect)
				break;
			expect += c.h.count;
			if ((k = spool_cursor_body(&c)) == 1)
				good++;
			else if (k == -EBADMSG && bad < 0)
				bad = n;
			n++;
		}
		ok(k == SPOOL_CUR_DONE && n == 2001 && expect == 37000 &&
		    good == 2000 && bad == 1500, "the read-ahead hands out "
		    "every batch and body in order across chunks and a large "
		    "batch: %d batches, %d good, bad at %d, %llu offsets", n,
		    good, bad, (unsigned long long)expect);
		spool_cursor_close(&c);
	}

	/* the first segment need not start at 0 (retention) */
	reset();
	for (i = 0; i < 3; i++)
		batch(100, 100 + i * 2, 2, SPOOL_TYPE_DATA, 0);
	WALK(1, 3, "B100+2 B102+2 B104+2", "offsets below the first "
	    "segment start at its first batch");
	WALK(1, 103, "B102+2 B104+2", "seek without an index walks");

	close(pfd);
	spool_io_close(io);
	{
		char cmd[300];

		snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
		if (system(cmd) != 0)
			return 2;
	}
	return tap_done();
}
