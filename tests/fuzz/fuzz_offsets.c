/*
 * fuzz_offsets.c - the consumer-group offset file reader
 *
 * The input becomes topics/t/groups/g/0.offset of a spool made once per
 * process; spool_group_info reads it (two slots, checksums, the newer
 * valid one wins), and a consumer of the group then starts from what it
 * says, reads, commits, and reads the commit back.  The committed offset
 * after that must be the one the consumer reached.
 */

#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "spool.h"

static char dir[64];
static struct spool *sp;
static struct spool_topic *t;

static void
cleanup(void)
{
	char cmd[96];

	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	if (system(cmd) != 0)
		return;
}

static void
setup(void)
{
	struct spool_config c;

	snprintf(dir, sizeof(dir), "/tmp/fuzz_offsets.%d", (int)getpid());
	atexit(cleanup);
	if (spool_open(&sp, dir, SPOOL_CREATE) < 0 ||
	    spool_set_io(sp, SPOOL_IO_SYNC) < 0)
		abort();
	spool_config_default(&c);
	if (spool_topic_create(sp, "t", &c) < 0 ||
	    spool_topic_open(sp, "t", &t) < 0)
		abort();
	/* three messages to read from wherever the file says */
	{
		struct spool_writer_opts o = { .codec = -1, .partition = -1 };
		struct spool_writer *w;
		struct spool_msg m;

		memset(&m, 0, sizeof(m));
		m.payload = "x";
		m.len = 1;
		if (spool_writer_open(t, &o, &w) < 0)
			abort();
		for (int i = 0; i < 3; i++)
			spool_writer_add(w, &m);
		if (spool_writer_close(w) < 0)
			abort();
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct spool_consumer_opts co;
	struct spool_consumer *c;
	struct spool_msg m;
	char path[128];
	uint64_t off, last = UINT64_MAX;
	int fd, held, r;

	if (sp == NULL)
		setup();
	snprintf(path, sizeof(path), "%s/topics/t/groups", dir);
	mkdir(path, 0775);
	snprintf(path, sizeof(path), "%s/topics/t/groups/g", dir);
	mkdir(path, 0775);
	snprintf(path, sizeof(path), "%s/topics/t/groups/g/0.offset", dir);
	if ((fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0664)) < 0)
		abort();
	if (write(fd, data, size) != (ssize_t)size)
		abort();
	close(fd);

	(void)spool_group_info(t, "g", 0, &off, &held);

	memset(&co, 0, sizeof(co));
	co.group = "g";
	co.start.kind = SPOOL_POS_BEGIN;
	co.until.kind = SPOOL_POS_NONE;
	if (spool_consumer_open(t, &co, &c) < 0)
		abort();
	while ((r = spool_consumer_next(c, &m)) == 1) {
		spool_consumer_ack(c, m.partition, m.offset);
		last = m.offset;
	}
	if (r < 0 && r != -EBADMSG)
		abort();
	if (spool_consumer_commit(c) < 0)
		abort();
	spool_consumer_close(c);
	/* what was read is what is committed now */
	if (last != UINT64_MAX &&
	    (spool_group_info(t, "g", 0, &off, &held) < 0 || off != last + 1))
		abort();
	return 0;
}
