/*
 * test_io.c - the I/O engine's read-aheads: several outstanding on one
 * handle, collected in any order, parked while a synchronous request
 * waits, on both engines
 */

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "spool_impl.h"
#include "tap.h"

#define NREQ	4
#define LEN	4096

/* engine - run the checks on one engine */
static void
engine(enum spool_io_mode mode, const char *name, int fd)
{
	struct spool_io_req req[NREQ], pipereq;
	static char buf[NREQ][LEN], pbuf[64];
	struct spool_io *io;
	char want[LEN], w[8] = "written";
	int p[2], i, good;
	ssize_t n;

	if (spool_io_open(&io, mode) < 0) {
		ok(1, "%s: engine not available here, skipped", name);
		return;
	}
	memset(req, 0, sizeof(req));
	memset(&pipereq, 0, sizeof(pipereq));
	if (pipe(p) == -1)
		abort();
	for (i = 0; i < NREQ; i++)
		ok(spool_io_read_start(io, &req[i], fd, buf[i], LEN,
		    (off_t)i * LEN) == 0, "%s: read %d started", name, i);
	ok(spool_io_read_start(io, &req[0], fd, buf[0], LEN, 0) == -EBUSY,
	    "%s: a pending request cannot start twice", name);
	ok(spool_io_read_start(io, &pipereq, p[0], pbuf, sizeof(pbuf), -1) ==
	    0, "%s: a pipe read started beside them", name);
	/* a synchronous write waits while the reads complete */
	ok(spool_io_pwrite(io, fd, w, sizeof(w), NREQ * LEN, 1) == 0,
	    "%s: a synchronous write between", name);
	ok(spool_io_read_wait(io, &pipereq, 50) == -ETIMEDOUT,
	    "%s: the empty pipe times out and stays outstanding", name);
	if (write(p[1], "hello", 5) != 5)
		abort();
	for (i = NREQ - 1; i >= 0; i--) {
		n = spool_io_read_wait(io, &req[i], -1);
		memset(want, 'a' + i, LEN);
		good = n == LEN && memcmp(buf[i], want, LEN) == 0;
		ok(good, "%s: read %d collected out of order, right bytes",
		    name, i);
		ok(!req[i].pending, "%s: read %d no longer pending", name, i);
	}
	n = spool_io_read_wait(io, &pipereq, 1000);
	ok(n == 5 && memcmp(pbuf, "hello", 5) == 0,
	    "%s: the pipe read completes once data comes", name);
	ok(spool_io_read_wait(io, &req[0], -1) == -EINVAL,
	    "%s: waiting on a collected request is -EINVAL", name);
	close(p[0]);
	close(p[1]);
	spool_io_close(io);
}

int
main(void)
{
	char path[] = "/tmp/test_io.XXXXXX", block[LEN];
	int fd, i;

	if ((fd = mkstemp(path)) == -1)
		abort();
	unlink(path);
	for (i = 0; i < NREQ; i++) {
		memset(block, 'a' + i, LEN);
		if (write(fd, block, LEN) != LEN)
			abort();
	}
	engine(SPOOL_IO_URING, "uring", fd);
	engine(SPOOL_IO_SYNC, "sync", fd);
	close(fd);
	return tap_done();
}
