/*
 * io.c - the I/O engine: io_uring, or plain syscalls when it is refused
 *
 * Two kinds of request go through here.  Synchronous ones (pread,
 * pwrite with an optional fdatasync, fdatasync) return when the kernel
 * is done.  Asynchronous reads are requests the caller owns (struct
 * spool_io_req, usually a member of its own state): it starts one, does
 * other work (encoding a batch, decoding the previous chunk), and
 * collects it later.  Any number may be outstanding on one handle, one
 * per request object; a completion that arrives while the engine waits
 * for something else is parked in its request.  That read-ahead is how
 * mq-send overlaps reading stdin with encoding and writing, and how
 * mq-recv overlaps reading a segment with formatting its output.
 *
 * The sync engine does the same requests with pread/pwrite/read; its
 * "asynchronous" read simply happens at start time, so callers are
 * written once for both engines.  The engine is io_uring when
 * io_uring_queue_init succeeds, else sync, unless the caller forces one
 * (MQ_IO).  Left to choose, the handle sets the ring up only when a
 * request first wants it (ring): a one-shot send, or a read of a few
 * batches, never pays for a ring it would not use.  Forced, it sets it up at once, so that a refusal is an
 * error at open.
 *
 * The requests the caller waits for -- pread, pwrite, fdatasync -- are
 * plain system calls on either engine.  Through the ring they would be
 * the same work plus waiting for it: a buffered write to ext4 is handed
 * to a kernel worker thread (it cannot be done without blocking), and so
 * is every fsync, so the caller pays two wakeups for nothing it could
 * overlap.  On a 2-core machine that made a bulk mq-send --no-sync
 * three times slower (0.95 s against 0.28 s for 500 MB), a durable one
 * no faster, and a one-shot durable send set up a ring for one write.
 * The ring is for what overlaps: the read-ahead.
 *
 * Short writes are continued until everything is written or an error
 * comes back; nothing here retries an fsync that failed.
 */

#include <sys/types.h>

#include <errno.h>
#include <liburing.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "spool_impl.h"

#define RING_DEPTH	8

struct spool_io {
	int		 uring;		/* the ring is set up */
	int		 lazy;		/* set it up when first wanted */
	struct io_uring	 ring;
#ifdef SPOOL_FAULTS
	long		 fail_write;	/* the test build's MQ_FAULT countdowns */
	long		 fail_sync;
#endif
};

#ifdef SPOOL_FAULTS
/*
 * The test build (make asan) injects I/O errors where no strace can:
 * MQ_FAULT=write:N or fsync:N makes the Nth write or sync request of the
 * process fail with EIO, on either engine.  Release builds have none of
 * this.
 */
static void
fault_init(struct spool_io *io)
{
	const char *f = getenv("MQ_FAULT");

	if (f == NULL)
		return;
	if (strncmp(f, "write:", 6) == 0)
		io->fail_write = atol(f + 6);
	else if (strncmp(f, "fsync:", 6) == 0)
		io->fail_sync = atol(f + 6);
}

/* fault - whether this request is the one to fail */
static int
fault(long *countdown)
{
	return *countdown > 0 && --*countdown == 0;
}
#endif

/* spool_io_open - pick and set up an engine */
int
spool_io_open(struct spool_io **iop, enum spool_io_mode mode)
{
	struct spool_io *io;
	int r;

	if ((io = calloc(1, sizeof(*io))) == NULL)
		return -ENOMEM;
#ifdef SPOOL_FAULTS
	fault_init(io);
#endif
	if (mode == SPOOL_IO_URING) {
		if ((r = io_uring_queue_init(RING_DEPTH, &io->ring, 0)) < 0) {
			free(io);
			return r;
		}
		io->uring = 1;
	} else if (mode != SPOOL_IO_SYNC)
		io->lazy = 1;
	*iop = io;
	return 0;
}

/*
 * ring - whether requests go through io_uring: set the ring up the
 * first time one wants it, when the engine was left to choose (the
 * sync engine from then on if the kernel refuses)
 */
static int
ring(struct spool_io *io)
{
	if (io->lazy) {
		io->lazy = 0;
		io->uring = io_uring_queue_init(RING_DEPTH, &io->ring, 0) == 0;
	}
	return io->uring;
}

/*
 * spool_io_close - release the engine; every read-ahead must have been
 * collected by its owner, whose buffers the kernel would else write
 */
void
spool_io_close(struct spool_io *io)
{
	if (io == NULL)
		return;
	if (io->uring)
		io_uring_queue_exit(&io->ring);
	free(io);
}

/* spool_io_kind - "uring" or "sync" (the ring set up to tell), for -v */
const char *
spool_io_kind(struct spool_io *io)
{
	return ring(io) ? "uring" : "sync";
}

/* get_sqe - a submission slot; the ring is never full for our depth */
static struct io_uring_sqe *
get_sqe(struct spool_io *io)
{
	struct io_uring_sqe *sqe;

	if ((sqe = io_uring_get_sqe(&io->ring)) == NULL) {
		(void)io_uring_submit(&io->ring);
		sqe = io_uring_get_sqe(&io->ring);
	}
	return sqe;
}

/*
 * park - take a completion off the ring into its request: only
 * read-aheads go through the ring, and a completion's user data is the
 * address of its struct spool_io_req
 */
static void
park(struct spool_io *io, struct io_uring_cqe *cqe)
{
	struct spool_io_req *req;

	req = (struct spool_io_req *)(uintptr_t)io_uring_cqe_get_data64(cqe);
	req->done = 1;
	req->res = cqe->res;
	io_uring_cqe_seen(&io->ring, cqe);
}

/*
 * spool_io_pread - read up to len bytes at off; short only at EOF.
 * pread(2) on either engine: a read the caller waits for gains nothing
 * from the ring (read-ahead is spool_io_read_start's).
 */
ssize_t
spool_io_pread(struct spool_io *io, int fd, void *buf, size_t len, off_t off)
{
	size_t done = 0;
	ssize_t n;

	(void)io;
	while (done < len) {
		n = pread(fd, (char *)buf + done, len - done, off + done);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			break;
		done += n;
	}
	return done;
}

/* plain_pwrite - write all of buf at off, then fdatasync if asked */
static int
plain_pwrite(int fd, const void *buf, size_t len, off_t off, int datasync)
{
	size_t done = 0;
	ssize_t n;

	while (done < len) {
		n = pwrite(fd, (const char *)buf + done, len - done,
		    off + done);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			return -EIO;
		done += n;
	}
	if (datasync && fdatasync(fd) == -1)
		return -errno;
	return 0;
}

/*
 * spool_io_pwrite - write all of buf at off, then fdatasync if asked
 *
 * pwrite(2) and fdatasync(2) on either engine (see the top of the file).
 * A failed sync is returned as it is and never retried: after a failed
 * fsync the kernel may have dropped the dirty pages, so a second fsync
 * that succeeds proves nothing.
 */
int
spool_io_pwrite(struct spool_io *io, int fd, const void *buf, size_t len,
    off_t off, int datasync)
{
#ifdef SPOOL_FAULTS
	int r;

	if (len > 0 && fault(&io->fail_write))
		return -EIO;
	if (datasync && fault(&io->fail_sync)) {
		/* the data is written, its sync "fails" */
		if ((r = spool_io_pwrite(io, fd, buf, len, off, 0)) < 0)
			return r;
		return -EIO;
	}
#endif
	(void)io;
	return plain_pwrite(fd, buf, len, off, datasync);
}

/* spool_io_fdatasync - make written data of fd durable */
int
spool_io_fdatasync(struct spool_io *io, int fd)
{
	return spool_io_pwrite(io, fd, NULL, 0, 0, 1);
}

/*
 * spool_io_read_start - begin the read-ahead req: read up to len bytes
 * at off (off < 0: at the file position, for pipes) into buf
 */
int
spool_io_read_start(struct spool_io *io, struct spool_io_req *req, int fd,
    void *buf, size_t len, off_t off)
{
	struct io_uring_sqe *sqe;
	int r;

	if (req->pending)
		return -EBUSY;
	req->pending = 1;
	req->done = 0;
	if (!ring(io)) {
		/* done in spool_io_read_wait, which can honour a timeout */
		req->fd = fd;
		req->buf = buf;
		req->len = len;
		req->off = off;
		return 0;
	}
	if ((sqe = get_sqe(io)) == NULL) {
		req->pending = 0;
		return -EBUSY;
	}
	io_uring_prep_read(sqe, fd, buf, len,
	    off < 0 ? (uint64_t)-1 : (uint64_t)off);
	io_uring_sqe_set_data64(sqe, (uint64_t)(uintptr_t)req);
	if ((r = io_uring_submit(&io->ring)) < 0) {
		req->pending = 0;
		return r;
	}
	return 0;
}

/* sync_read - the sync engine's read-ahead, done now */
static ssize_t
sync_read(struct spool_io_req *req, int timeout_ms)
{
	struct pollfd pfd;
	ssize_t n;
	int r;

	if (timeout_ms >= 0 && req->off < 0) {
		pfd.fd = req->fd;
		pfd.events = POLLIN;
		if ((r = poll(&pfd, 1, timeout_ms)) == 0)
			return -ETIMEDOUT;
		if (r == -1)
			return -errno;
	}
	do
		n = req->off < 0 ? read(req->fd, req->buf, req->len) :
		    pread(req->fd, req->buf, req->len, req->off);
	while (n < 0 && errno == EINTR);
	return n < 0 ? -errno : n;
}

/*
 * spool_io_read_wait - the result of the read-ahead req: bytes, 0 at
 * end of file, -errno; -ETIMEDOUT after timeout_ms (<0: no limit), in
 * which case the read stays outstanding
 */
ssize_t
spool_io_read_wait(struct spool_io *io, struct spool_io_req *req,
    int timeout_ms)
{
	struct __kernel_timespec ts;
	struct io_uring_cqe *cqe;
	int r;

	if (!req->pending)
		return -EINVAL;
	if (!io->uring) {
		req->res = sync_read(req, timeout_ms);
		if (req->res == -ETIMEDOUT)
			return -ETIMEDOUT;
		req->done = 1;
	}
	while (!req->done) {
		if (timeout_ms >= 0) {
			ts.tv_sec = timeout_ms / 1000;
			ts.tv_nsec = (long long)(timeout_ms % 1000) * 1000000;
			r = io_uring_wait_cqe_timeout(&io->ring, &cqe, &ts);
			if (r == -ETIME)
				return -ETIMEDOUT;
		} else
			r = io_uring_wait_cqe(&io->ring, &cqe);
		if (r == -EINTR)
			continue;
		if (r < 0)
			return r;
		park(io, cqe);
	}
	req->pending = 0;
	return req->res;
}
