/*
 * fuzz_segment.c - segment reader, index reader and recovery over
 * arbitrary files
 *
 * The input is a segment file, optionally followed by the marker
 * "\nMQFUZZ-INDEX\n" and the bytes of its index.  Each run writes them as
 * topics/t/0/00000000000000000000.log (and .index) in a spool made once
 * per process, then:
 *
 *  1. reads the topic from the beginning with the public reader,
 *     going on after -EBADMSG, until 0 or another error, once stopping
 *     at holes and once reading past them (skip_damage);
 *  2. reads it again from a position derived from the input (an
 *     offset, from the end, or a time), to reach the index and time
 *     lookups;
 *  3. runs spool_topic_verify without and then with repair;
 *  4. appends one message with a writer and reads everything again.
 *
 * The files are removed between runs.  MQ_FUZZ_IO=uring selects the
 * io_uring engine (default: sync, which is faster and deterministic).
 */

#include <sys/stat.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fuzz_common.h"

#define MARKER		"\nMQFUZZ-INDEX\n"
#define MARKERLEN	(sizeof(MARKER) - 1)
#define MAXCALLS	100000	/* reader calls a run, a bound on progress */

static char tmpdir[256];
static struct spool *sp;
static int partfd = -1;
static volatile uint32_t sink;

static void
cleanup(void)
{
	if (sp != NULL)
		spool_close(sp);
	if (partfd >= 0)
		close(partfd);
	if (*tmpdir != '\0')
		(void)spool_rmtree(AT_FDCWD, tmpdir);
}

static void
die(const char *what, int r)
{
	fprintf(stderr, "fuzz_segment: %s: %s\n", what, strerror(-r));
	exit(1);
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	const char *t = getenv("TMPDIR"), *io = getenv("MQ_FUZZ_IO");
	enum spool_io_mode mode = SPOOL_IO_SYNC;
	char path[300];
	int r;

	(void)argc;
	(void)argv;
	snprintf(tmpdir, sizeof(tmpdir), "%s/mq-fuzz-segment.XXXXXX",
	    t && *t ? t : "/tmp");
	if (mkdtemp(tmpdir) == NULL)
		die("mkdtemp", -errno);
	atexit(cleanup);
	snprintf(path, sizeof(path), "%s/spool", tmpdir);
	if ((r = spool_open(&sp, path, SPOOL_CREATE)) < 0)
		die("spool_open", r);
	if (io != NULL && spool_io_mode_parse(io, &mode) < 0)
		die("MQ_FUZZ_IO", -EINVAL);
	if ((r = spool_set_io(sp, mode)) < 0)
		die("spool_set_io", r);
	if ((r = spool_topic_create(sp, "t", NULL)) < 0)	/* partitions=1 */
		die("spool_topic_create", r);
	snprintf(path, sizeof(path), "%s/spool/topics/t/0", tmpdir);
	if ((partfd = open(path, O_RDONLY | O_DIRECTORY)) == -1)
		die(path, -errno);
	return 0;
}

/* clear - empty the partition directory but for its lock */
static void
clear(void)
{
	struct dirent *de;
	DIR *d;
	int fd;

	if ((fd = openat(partfd, ".", O_RDONLY | O_DIRECTORY)) == -1)
		die("openat", -errno);
	if ((d = fdopendir(fd)) == NULL)
		die("fdopendir", -errno);
	while ((de = readdir(d)) != NULL)
		if (de->d_name[0] != '.' && strcmp(de->d_name, "lock") != 0)
			(void)unlinkat(partfd, de->d_name, 0);
	closedir(d);
}

static void
put_file(const char *name, const void *buf, size_t len)
{
	int fd;

	fd = openat(partfd, name, O_WRONLY | O_CREAT | O_TRUNC, 0666);
	if (fd == -1 || (len > 0 && write(fd, buf, len) != (ssize_t)len))
		die(name, -errno);
	close(fd);
}

static void
touch_msg(const struct spool_msg *m)
{
	const unsigned char *p;
	uint32_t h = (uint32_t)m->offset;
	size_t i, j;

	if (m->key != NULL)
		for (p = m->key, i = 0; i < m->keylen; i++)
			h = h * 31 + p[i];
	for (p = m->payload, i = 0; i < m->len; i++)
		h = h * 31 + p[i];
	for (j = 0; j < m->nheaders; j++) {
		for (p = (const void *)m->headers[j].name, i = 0;
		    i < m->headers[j].namelen; i++)
			h = h * 31 + p[i];
		for (p = m->headers[j].value, i = 0;
		    i < m->headers[j].valuelen; i++)
			h = h * 31 + p[i];
	}
	sink += h;
}

/* read_all - read from start to the end; returns messages read */
static long
read_all(struct spool_topic *t, struct spool_pos start, struct spool_pos until,
    int skip)
{
	struct spool_reader_opts o;
	struct spool_reader *r;
	struct spool_msg m;
	long n = 0, calls;
	int s;

	memset(&o, 0, sizeof(o));
	o.partition = -1;
	o.start = start;
	o.until = until;
	o.skip_damage = skip;
	if (spool_reader_open(t, &o, &r) < 0)
		return -1;
	for (calls = 0; calls < MAXCALLS; calls++) {
		s = spool_reader_next(r, &m);
		if (s == 1) {
			touch_msg(&m);
			n++;
			continue;
		}
		if (s == -EBADMSG) {
			sink += strlen(spool_errmsg(sp));
			continue;
		}
		break;
	}
	if (calls == MAXCALLS) {
		fprintf(stderr, "fuzz_segment: reader makes no progress\n");
		abort();
	}
	(void)spool_reader_done(r);
	spool_reader_close(r);
	return n;
}

static void
report(void *arg, const char *msg)
{
	(void)arg;
	sink += strlen(msg);
}

/* a position from the input's bytes, so that a crash file reproduces */
static struct spool_pos
derive(const uint8_t *data, size_t size, int which)
{
	struct spool_pos p;
	uint32_t c = spool_crc((uint32_t)which, data, size);

	memset(&p, 0, sizeof(p));
	switch (c % 5) {
	case 0:
		p.kind = SPOOL_POS_OFFSET;
		p.value = (c >> 8) % 64;
		break;
	case 1:
		p.kind = SPOOL_POS_FROM_END;
		p.value = (c >> 8) % 16;
		break;
	case 2:
		/* a time near the first batch's, when there is one */
		p.kind = SPOOL_POS_TIME;
		p.value = size >= 40 ? (int64_t)get64(data + 32) +
		    (int64_t)((c >> 8) % 8) - 2 : (int64_t)(c >> 8);
		break;
	case 3:
		p.kind = SPOOL_POS_END;
		break;
	default:
		p.kind = which ? SPOOL_POS_NONE : SPOOL_POS_BEGIN;
	}
	return p;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct spool_topic *t;
	struct spool_writer_opts wo;
	struct spool_writer *w;
	struct spool_msg m;
	struct spool_pos beg = { SPOOL_POS_BEGIN, 0 }, none = { SPOOL_POS_NONE, 0 };
	const uint8_t *mk;
	size_t loglen = size;
	int r;

	clear();
	mk = memmem(data, size, MARKER, MARKERLEN);
	if (mk != NULL) {
		loglen = mk - data;
		put_file("00000000000000000000.index", mk + MARKERLEN,
		    size - loglen - MARKERLEN);
	}
	put_file("00000000000000000000.log", data, loglen);
	sp->errmsg[0] = '\0';

	if ((r = spool_topic_open(sp, "t", &t)) < 0)
		die("spool_topic_open", r);
	(void)read_all(t, beg, none, 0);
	(void)read_all(t, beg, none, 1);
	if (loglen > 0) {
		struct spool_pos s = derive(data, loglen, 0),
		    u = derive(data, loglen, 1);

		(void)read_all(t, s, u, 0);
	}
	(void)spool_topic_verify(t, 0, report, NULL);
	(void)spool_topic_verify(t, 1, report, NULL);

	memset(&wo, 0, sizeof(wo));
	wo.codec = -1;
	wo.partition = -1;
	if (spool_writer_open(t, &wo, &w) == 0) {
		memset(&m, 0, sizeof(m));
		m.key = "k";
		m.keylen = 1;
		m.payload = "appended";
		m.len = 8;
		(void)spool_writer_add(w, &m);
		(void)spool_writer_close(w);
	}
	(void)read_all(t, beg, none, 1);
	spool_topic_close(t);
	return 0;
}

/* mutate the segment with checksums kept right; the index plainly */
size_t
LLVMFuzzerCustomMutator(uint8_t *data, size_t size, size_t maxsize,
    unsigned int seed)
{
	uint8_t *mk = memmem(data, size, MARKER, MARKERLEN);
	size_t loglen, tail, n;
	uint8_t *save;

	if (mk == NULL || seed % 4 == 0 || mk == data ||
	    maxsize - (size - (size_t)(mk - data)) == 0) {
		n = LLVMFuzzerMutate(data, size, maxsize);
		if (seed % 8 != 0) {
			uint32_t rs = seed | 1;
			uint8_t *k = memmem(data, n, MARKER, MARKERLEN);

			fz_fix_crcs(data, k ? (size_t)(k - data) : n, &rs);
		}
		return n;
	}
	loglen = mk - data;
	tail = size - loglen;
	if ((save = malloc(tail)) == NULL)
		return size;
	memcpy(save, mk, tail);
	n = fz_mutate_batches(data, loglen, maxsize - tail, seed / 4);
	memcpy(data + n, save, tail);
	free(save);
	return n + tail;
}
