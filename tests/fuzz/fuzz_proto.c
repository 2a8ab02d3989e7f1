/*
 * fuzz_proto.c - the mq-replicate protocol, as a server hears it
 *
 * The input is what a hostile client sends: its first byte picks the
 * server's role (receiver: the input's batches would be written to the
 * spool; sender: the input's requests read it), the rest is the byte
 * stream.  The server runs spool_replicate on a spool made once per
 * process, holding a topic with messages; its replies go to /dev/null.
 * It must end with 0 or an error, never crash, hang or write outside
 * the spool; a replica it wrote to must read back without damage (a
 * hole the stream's segments leave is the sender's, kept as sent).
 * The spool path is the fixed "s" inside a private working directory,
 * so that inputs can name it in their HELLO.
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
static unsigned runs;

static void
cleanup(void)
{
	char cmd[96];

	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	if (system(cmd) != 0)
		return;
}

/* fresh - a spool "s" with topic t holding three messages */
static void
fresh(void)
{
	struct spool_writer_opts o = { .codec = -1, .partition = -1 };
	struct spool_writer *w;
	struct spool_topic *t;
	struct spool *sp;
	struct spool_msg m;
	int i;

	if (system("rm -rf s") != 0)
		abort();
	if (spool_open(&sp, "s", SPOOL_CREATE | SPOOL_NOSYNC) < 0 ||
	    spool_topic_create(sp, "t", NULL) < 0 ||
	    spool_topic_open(sp, "t", &t) < 0 ||
	    spool_writer_open(t, &o, &w) < 0)
		abort();
	memset(&m, 0, sizeof(m));
	m.payload = "x";
	m.len = 1;
	for (i = 0; i < 3; i++)
		spool_writer_add(w, &m);
	if (spool_writer_close(w) < 0)
		abort();
	spool_topic_close(t);
	spool_close(sp);
}

/*
 * bad - count what verify finds but holes: a sender may send a segment
 * past the end of the one before it (a hole in its own log), which the
 * replica keeps as the same hole (mq-replicate(1)); no batch that fails
 * its checks is ever written
 */
static void
bad(void *arg, const char *msg)
{
	if (strstr(msg, "are missing") == NULL)
		(*(int *)arg)++;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct spool_repl_opts o;
	char in[] = "in";
	int fd, out, r;

	if (dir[0] == '\0') {
		snprintf(dir, sizeof(dir), "/tmp/fuzz_proto.%d", (int)getpid());
		if (mkdir(dir, 0775) == -1 || chdir(dir) == -1)
			abort();
		atexit(cleanup);
		fresh();
	}
	if (size < 1)
		return 0;
	if (++runs % 1000 == 0)
		fresh();
	if ((fd = open(in, O_RDWR | O_CREAT | O_TRUNC, 0664)) < 0)
		abort();
	if (write(fd, data + 1, size - 1) != (ssize_t)(size - 1))
		abort();
	lseek(fd, 0, SEEK_SET);
	if ((out = open("/dev/null", O_WRONLY)) < 0)
		abort();
	memset(&o, 0, sizeof(o));
	o.role = data[0] & 1 ? SPOOL_REPL_RECEIVER : SPOOL_REPL_SENDER;
	o.server = 1;
	o.rfd = fd;
	o.wfd = out;
	o.timeout_ms = 1000;
	o.flags = SPOOL_REPL_NOSYNC | ((data[0] & 2) ? SPOOL_REPL_READONLY : 0);
	r = spool_replicate("s", &o);
	close(fd);
	close(out);
	if (r > 0)
		abort();
	/* whatever it wrote reads back whole, or it wrote nothing */
	{
		struct spool *sp;
		struct spool_topic *t;

		if (spool_open(&sp, "s", 0) == 0) {
			if (spool_topic_open(sp, "t", &t) == 0) {
				int n = 0;

				if (spool_topic_verify(t, 0, bad, &n) > 0 &&
				    n > 0)
					abort();
				spool_topic_close(t);
			}
			spool_close(sp);
		}
	}
	return 0;
}
