/*
 * test_spool.c - libspool through its public interface: round trips
 * across segment rolls, seeks to every kind of position, and recovery
 * from a tail torn at every byte, on both I/O engines
 */

#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "spool.h"
#include "tap.h"

static char dir[256];

/* print_none - a writer's stored callback that keeps nothing */
static void
print_none(void *arg, uint32_t part, uint64_t off)
{
	(void)arg;
	(void)part;
	(void)off;
}

static struct spool_topic *
topic(struct spool *sp, const char *name, int64_t segbytes, uint32_t parts)
{
	struct spool_config c;
	struct spool_topic *t;

	spool_config_default(&c);
	c.segment_bytes = segbytes;
	c.partitions = parts;
	if (spool_topic_create(sp, name, &c) < 0 ||
	    spool_topic_open(sp, name, &t) < 0)
		return NULL;
	return t;
}

static int
send(struct spool_topic *t, int from, int n, int sync)
{
	struct spool_writer_opts o = { .sync = sync, .codec = -1,
	    .partition = -1 };
	struct spool_writer *w;
	struct spool_msg m;
	char buf[128];
	int i, r;

	if ((r = spool_writer_open(t, &o, &w)) < 0)
		return r;
	for (i = from; i < from + n; i++) {
		memset(&m, 0, sizeof(m));
		m.len = snprintf(buf, sizeof(buf), "m%d%.*s", i, i % 50,
		    "..................................................");
		m.payload = buf;
		m.ts = 1000 + i;
		if ((r = spool_writer_add(w, &m)) < 0)
			return r;
		/* small batches, so that 4 KiB segments roll often */
		if (i % 10 == 9 && (r = spool_writer_flush(w)) < 0)
			return r;
	}
	return spool_writer_close(w);
}

/* recv - read from a position; check contiguity and contents */
static int
recv(struct spool_topic *t, enum spool_pos_kind k, int64_t v, int *first,
    int *count)
{
	struct spool_reader_opts o = { .partition = -1 };
	struct spool_reader *r;
	struct spool_msg m;
	char buf[128];
	int s, n = 0, good = 1;

	o.start.kind = k;
	o.start.value = v;
	o.until.kind = SPOOL_POS_NONE;
	if ((s = spool_reader_open(t, &o, &r)) < 0)
		return s;
	*first = -1;
	while ((s = spool_reader_next(r, &m)) == 1) {
		int i = (int)m.offset;

		if (*first < 0)
			*first = i;
		snprintf(buf, sizeof(buf), "m%d%.*s", i, i % 50,
		    "..................................................");
		if (m.offset != (uint64_t)(*first + n) || m.len != strlen(buf)
		    || memcmp(m.payload, buf, m.len) != 0 || m.ts != 1000 + i)
			good = 0;
		n++;
	}
	spool_reader_close(r);
	*count = n;
	return s < 0 ? s : good;
}

static off_t
fsize(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0 ? st.st_size : -1;
}

static void
run(enum spool_io_mode mode, const char *name)
{
	struct spool *sp;
	struct spool_topic *t;
	struct spool_part_info pi;
	char path[512], *saved;
	int first, count, r, k, bad;
	off_t size, before;
	FILE *f;

	snprintf(dir, sizeof(dir), "/tmp/test_spool.%d.%s", getpid(), name);
	ok(spool_open(&sp, dir, 0) == -ENOENT, "%s: no spool, no create",
	    name);
	ok(spool_open(&sp, dir, SPOOL_CREATE) == 0, "%s: spool created", name);
	ok(spool_set_io(sp, mode) == 0, "%s: engine %s", name,
	    spool_io_name(sp));

	/* many small segments */
	t = topic(sp, "rolls", 4096, 1);
	ok(t != NULL, "%s: topic with 4 KiB segments", name);
	ok(send(t, 0, 20000, 0) == 0, "%s: 20000 messages sent", name);
	ok(spool_topic_info(t, 0, &pi) == 0 && pi.next == 20000 &&
	    pi.segments > 100, "%s: next 20000 over %u segments", name,
	    pi.segments);
	r = recv(t, SPOOL_POS_BEGIN, 0, &first, &count);
	ok(r == 1 && first == 0 && count == 20000, "%s: all read back in "
	    "order (r=%d first=%d count=%d)", name, r, first, count);
	bad = 0;
	for (k = 0; k < 20000; k += 97) {
		r = recv(t, SPOOL_POS_OFFSET, k, &first, &count);
		bad += !(r == 1 && first == k && count == 20000 - k);
	}
	ok(bad == 0, "%s: seek to 207 offsets across segments", name);
	r = recv(t, SPOOL_POS_FROM_END, 5, &first, &count);
	ok(r == 1 && first == 19995 && count == 5, "%s: -o -5", name);
	r = recv(t, SPOOL_POS_END, 0, &first, &count);
	ok(r == 1 && count == 0, "%s: -o end", name);
	r = recv(t, SPOOL_POS_TIME, 1000 + 12345, &first, &count);
	ok(r == 1 && first == 12345, "%s: -o @time", name);
	r = recv(t, SPOOL_POS_OFFSET, 30000, &first, &count);
	ok(r == 1 && count == 0, "%s: past the end reads nothing", name);
	ok(spool_topic_verify(t, 0, NULL, NULL) == 0, "%s: verify clean",
	    name);
	spool_topic_close(t);

	/* a tail torn at every byte of the last batch */
	t = topic(sp, "torn", 1 << 30, 1);
	ok(send(t, 0, 100, 1) == 0, "%s: first batch", name);
	snprintf(path, sizeof(path), "%s/topics/torn/0/%020d.log", dir, 0);
	before = fsize(path);
	ok(send(t, 100, 10, 1) == 0, "%s: second batch", name);
	size = fsize(path);
	saved = malloc(size);
	f = fopen(path, "r");
	ok(f && fread(saved, 1, size, f) == (size_t)size, "%s: log saved",
	    name);
	fclose(f);
	bad = 0;
	for (k = before + 1; k < size; k++) {
		if (truncate(path, k) < 0) {
			bad++;
			break;
		}
		r = recv(t, SPOOL_POS_BEGIN, 0, &first, &count);
		bad += !(r == 1 && count == 100);
		/* the next writer cuts the torn batch and goes on */
		r = send(t, 100, 1, 0);
		bad += r != 0;
		r = recv(t, SPOOL_POS_BEGIN, 0, &first, &count);
		bad += !(r == 1 && count == 101);
		f = fopen(path, "w");
		fwrite(saved, 1, size, f);
		fclose(f);
	}
	ok(bad == 0, "%s: torn at each of %lld bytes: complete messages "
	    "only, then recovered", name, (long long)(size - before - 1));
	free(saved);
	spool_topic_close(t);

	/* keys pick partitions; the same key the same one */
	t = topic(sp, "parts", 1 << 20, 4);
	{
		struct spool_writer_opts o = { .codec = -1, .partition = -1 };
		struct spool_writer *w;
		struct spool_reader_opts ro = { .partition = -1 };
		struct spool_reader *rd;
		struct spool_msg m;
		uint32_t seen[4] = { 0 }, kp[26];
		char key[2] = "a";
		int i, same = 1;

		ok(spool_writer_open(t, &o, &w) == 0, "%s: writer on 4 "
		    "partitions", name);
		for (i = 0; i < 2600; i++) {
			memset(&m, 0, sizeof(m));
			key[0] = 'a' + i % 26;
			m.key = key;
			m.keylen = 1;
			m.payload = key;
			m.len = 1;
			spool_writer_add(w, &m);
		}
		ok(spool_writer_close(w) == 0, "%s: keyed sends", name);
		memset(kp, 0xff, sizeof(kp));
		ro.start.kind = SPOOL_POS_BEGIN;
		ro.until.kind = SPOOL_POS_NONE;
		spool_reader_open(t, &ro, &rd);
		count = 0;
		while (spool_reader_next(rd, &m) == 1) {
			int c = ((const char *)m.key)[0] - 'a';

			if (kp[c] == 0xffffffffu)
				kp[c] = m.partition;
			same &= kp[c] == m.partition;
			seen[m.partition]++;
			count++;
		}
		spool_reader_close(rd);
		ok(count == 2600 && same, "%s: one partition per key", name);
		ok(seen[0] && seen[1] && seen[2] && seen[3], "%s: keys spread "
		    "over all 4 partitions", name);
	}
	spool_topic_close(t);
	spool_close(sp);
	snprintf(path, sizeof(path), "rm -rf %s", dir);
	if (system(path) != 0)
		ok(0, "cleanup");
}

/*
 * sched_next - the next due time spool_sched_move reports is the first
 * file of the first later bucket that holds one: an empty bucket before
 * it (a cancel or a killed sender leaves one) is passed, and nothing is
 * moved before its time
 */
static void
sched_next(void)
{
	struct spool_writer_opts o = { .codec = -1, .partition = -1 };
	struct spool_writer *w;
	struct spool_topic *t;
	struct spool_msg m;
	struct spool *sp;
	char path[600];
	int64_t now, next = 0, due[2];
	int i, r;

	/* a minute's start a day from now: the messages are in the future */
	now = ((int64_t)time(NULL) + 86400) / 60 * 60000;

	snprintf(dir, sizeof(dir), "/tmp/test_spool.%d.sched", getpid());
	ok(spool_open(&sp, dir, SPOOL_CREATE) == 0, "sched: spool");
	t = topic(sp, "later", 1 << 20, 1);
	/* the 3rd and 5th minute after now; an empty bucket for the 2nd */
	due[0] = now + 5 * 60000 + 7;
	due[1] = now + 3 * 60000 + 11;
	for (i = 0, r = 0; i < 2 && r == 0; i++) {
		o.due = due[i];
		memset(&m, 0, sizeof(m));
		m.payload = "x";
		m.len = 1;
		if ((r = spool_writer_open(t, &o, &w)) == 0) {
			r = spool_writer_add(w, &m);
			if (spool_writer_close(w) < 0)
				r = -1;
		}
	}
	ok(r == 0, "sched: two messages scheduled");
	snprintf(path, sizeof(path), "%s/topics/later/scheduled/%020lld", dir,
	    (long long)((now + 2 * 60000) / 60000));
	ok(mkdir(path, 0775) == 0, "sched: an empty bucket before them");
	r = spool_sched_move(t, now, &next);
	ok(r == 0 && next == due[1], "sched: nothing moved, next %lld "
	    "(want %lld)", (long long)next, (long long)due[1]);
	r = spool_sched_move(t, due[1], &next);
	ok(r == 1 && next == due[0], "sched: one moved at its time, next %lld",
	    (long long)next);
	r = spool_sched_move(t, due[0] + 1, &next);
	ok(r == 1 && next == -1, "sched: the other moved, none left");
	spool_topic_close(t);
	spool_close(sp);
	snprintf(path, sizeof(path), "rm -rf %s", dir);
	if (system(path) != 0)
		ok(0, "cleanup");
}

/*
 * input_left - spool_input_left tells, without waiting, that a pipe has
 * ended and how many records it still holds; on a pipe still open it
 * says 0 at once, and the read it may take early loses nothing
 */
static void
input_left(enum spool_io_mode mode, const char *name)
{
	struct spool_input *in = NULL;
	struct spool *sp;
	const void *rec;
	char all[64] = "", path[600];
	size_t len, n = 99;
	int fd[2], r, got = 0;

	snprintf(dir, sizeof(dir), "/tmp/test_spool.%d.left", getpid());
	if (spool_open(&sp, dir, SPOOL_CREATE) < 0 || spool_set_io(sp, mode) < 0 ||
	    pipe(fd) < 0) {
		ok(0, "%s: input_left set up", name);
		return;
	}
	/* ended: "1\n2\n3" has two records left after the first */
	r = write(fd[1], "1\n2\n3", 5) == 5 && close(fd[1]) == 0;
	r = r && spool_input_open(sp, fd[0], "\n", 1, 100, &in) == 0 &&
	    spool_input_next(in, &rec, &len, -1) == 1;
	ok(r && spool_input_left(in, &n) == 1 && n == 2,
	    "%s: a pipe that has ended: 2 records left (said %zu)", name, n);
	while (in != NULL && spool_input_next(in, &rec, &len, -1) == 1)
		got++;
	ok(got == 2, "%s: and those 2 come (%d)", name, got);
	spool_input_close(in);
	close(fd[0]);
	/* open: not known, no wait; what comes after is all read */
	if (pipe(fd) < 0 || write(fd[1], "a\nb\n", 4) != 4 ||
	    spool_input_open(sp, fd[0], "\n", 1, 100, &in) < 0) {
		ok(0, "%s: input_left, open pipe", name);
		return;
	}
	r = spool_input_next(in, &rec, &len, -1) == 1;
	ok(r && spool_input_left(in, &n) == 0, "%s: a pipe still open: "
	    "not known", name);
	r = write(fd[1], "c\nd", 3) == 3;
	ok(r && spool_input_left(in, &n) == 0, "%s: more written: still "
	    "not known", name);
	close(fd[1]);
	while ((r = spool_input_next(in, &rec, &len, -1)) == 1)
		strncat(all, rec, len < 8 ? len : 8);
	ok(r == 0 && strcmp(all, "bcd") == 0, "%s: every record after the "
	    "first read, in order (\"%s\")", name, all);
	spool_input_close(in);
	close(fd[0]);
	spool_close(sp);
	snprintf(path, sizeof(path), "rm -rf %s", dir);
	if (system(path) != 0)
		ok(0, "cleanup");
}

/* counts - messages in each of 4 partitions, sorted high to low */
static void
counts(struct spool_topic *t, uint64_t c[4])
{
	struct spool_part_info pi;
	uint64_t x;
	int i, j;

	for (i = 0; i < 4; i++)
		c[i] = spool_topic_info(t, i, &pi) == 0 ? pi.next : 0;
	for (i = 0; i < 4; i++)
		for (j = i + 1; j < 4; j++)
			if (c[j] > c[i]) {
				x = c[i];
				c[i] = c[j];
				c[j] = x;
			}
}

/* sends - n keyless messages through one writer, told n when tell */
static int
sends(struct spool_topic *t, const struct spool_writer_opts *o, int n,
    int tell)
{
	struct spool_writer *w;
	struct spool_msg m;
	int r;

	memset(&m, 0, sizeof(m));
	m.payload = "x";
	m.len = 1;
	if ((r = spool_writer_open(t, o, &w)) < 0)
		return r;
	if (tell)
		spool_writer_expect(w, n);
	while (n-- > 0 && r == 0)
		r = spool_writer_add(w, &m);
	if (spool_writer_close(w) < 0)
		r = -1;
	return r;
}

/*
 * writer_expect - a writer that reports offsets deals keyless messages
 * in runs of 256; told how many come, in one run a partition, N/P each
 * and the first N%P one more; one that does not report deals them one
 * at a time either way
 */
static void
writer_expect(void)
{
	struct spool_writer_opts o = { .codec = -1, .partition = -1 };
	struct spool_topic *t;
	struct spool *sp;
	char path[600];
	uint64_t c[4];
	int r;

	snprintf(dir, sizeof(dir), "/tmp/test_spool.%d.expect", getpid());
	ok(spool_open(&sp, dir, SPOOL_CREATE) == 0, "expect: spool");
	o.stored = print_none;
	t = topic(sp, "runs", 1 << 20, 4);
	r = sends(t, &o, 10, 0);
	counts(t, c);
	ok(r == 0 && c[0] == 10, "expect: reported, not told: one run of 10 "
	    "(%llu)", (unsigned long long)c[0]);
	spool_topic_close(t);
	t = topic(sp, "told", 1 << 20, 4);
	r = sends(t, &o, 10, 1);
	counts(t, c);
	ok(r == 0 && c[0] == 3 && c[1] == 3 && c[2] == 2 && c[3] == 2,
	    "expect: reported, told 10: runs of 3 3 2 2 (%llu %llu %llu %llu)",
	    (unsigned long long)c[0], (unsigned long long)c[1],
	    (unsigned long long)c[2], (unsigned long long)c[3]);
	r = sends(t, &o, 2, 1);
	counts(t, c);
	ok(r == 0 && c[0] + c[1] + c[2] + c[3] == 12 && c[0] <= 4,
	    "expect: told 2 more: one each to two partitions");
	spool_topic_close(t);
	o.stored = NULL;
	t = topic(sp, "dealt", 1 << 20, 4);
	r = sends(t, &o, 10, 1);
	counts(t, c);
	ok(r == 0 && c[0] == 3 && c[3] == 2, "expect: not reported: dealt "
	    "one at a time, told or not");
	spool_topic_close(t);
	spool_close(sp);
	snprintf(path, sizeof(path), "rm -rf %s", dir);
	if (system(path) != 0)
		ok(0, "cleanup");
}

/*
 * input_split - spool_input_next and spool_input_more hand out exactly
 * the records written, whatever their lengths (empty ones, ones across
 * the 64-byte blocks the bulk split reads, across reads), the delimiter
 * byte, and however many a call may take
 */
static void
input_split(enum spool_io_mode mode, const char *name)
{
	static const size_t lens[] = { 0, 1, 5, 62, 63, 64, 65, 100, 127,
	    128, 129, 300, 4000 };
	static const unsigned char delims[] = { '\n', '\0', 'x' };
	struct spool_input *in;
	struct spool_rec v[600];
	struct spool *sp;
	const void *rec;
	unsigned char *data;
	size_t *want, nrec = 30000, i, j, k, n, len, pos, max, total = 0;
	size_t bad;
	char path[600];
	int fd, d, r;

	snprintf(dir, sizeof(dir), "/tmp/test_spool.%d.split", getpid());
	if (spool_open(&sp, dir, SPOOL_CREATE) < 0 ||
	    spool_set_io(sp, mode) < 0) {
		ok(0, "%s: input_split set up", name);
		return;
	}
	want = malloc(nrec * sizeof(*want));
	for (i = 0; i < nrec; i++)
		total += (want[i] = lens[(i * 7 + i / 13) % 13]) + 1;
	data = malloc(total);
	snprintf(path, sizeof(path), "%s/in", dir);
	for (d = 0; d < 3; d++) {
		/* record i is its length in bytes of 'a' + i % 20 */
		for (i = pos = 0; i < nrec; i++) {
			memset(data + pos, 'a' + i % 20, want[i]);
			pos += want[i];
			data[pos++] = delims[d];
		}
		fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
		r = fd >= 0 && write(fd, data, total) == (ssize_t)total &&
		    lseek(fd, 0, SEEK_SET) == 0 &&
		    spool_input_open(sp, fd, &delims[d], 1, 10000, &in) == 0;
		bad = !r;
		for (i = 0, max = 1; r && i < nrec; max = (max * 5 + 3) % 600) {
			if (spool_input_next(in, &rec, &len, -1) != 1) {
				bad++;
				break;
			}
			v[0].p = rec;
			v[0].len = len;
			n = 1 + spool_input_more(in, v + 1, max);
			bad += n - 1 > max;
			for (k = 0; k < n && i < nrec; k++, i++) {
				bad += v[k].len != want[i];
				for (j = 0; j < v[k].len && j < want[i]; j++)
					bad += ((const unsigned char *)
					    v[k].p)[j] != 'a' + i % 20;
			}
			bad += k < n;
		}
		bad += r && spool_input_next(in, &rec, &len, -1) != 0;
		ok(bad == 0 && i == nrec, "%s: %zu records of 0 to 4000 bytes "
		    "split at byte 0x%02x, however many a call takes (%zu "
		    "wrong)", name, nrec, delims[d], bad);
		if (r)
			spool_input_close(in);
		if (fd >= 0)
			close(fd);
	}
	free(data);
	free(want);
	spool_close(sp);
	snprintf(path, sizeof(path), "rm -rf %s", dir);
	if (system(path) != 0)
		ok(0, "%s: rm -rf", dir);
}

int
main(void)
{
	input_left(SPOOL_IO_SYNC, "sync");
	input_left(SPOOL_IO_URING, "uring");
	input_split(SPOOL_IO_SYNC, "sync");
	input_split(SPOOL_IO_URING, "uring");
	writer_expect();
	sched_next();
	run(SPOOL_IO_SYNC, "sync");
	run(SPOOL_IO_URING, "uring");
	return tap_done();
}
