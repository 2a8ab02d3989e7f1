/*
 * recv_src.c - where mq-recv's messages come from, and what every file
 * of it shares: the spool and topic (recv_sp, recv_topic), the source
 * itself (a plain reader, or with -g a consumer group member; the
 * src_* wrappers keep the loop the same for both), acknowledging and
 * committing what was handled, the stop flag of SIGINT and SIGTERM,
 * and the exit status so far.  recv_loop.c opens the source and runs
 * the loop; recv_out.c and recv_exec.c settle messages through here.
 * It calls none of them.
 */

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include "recv.h"

volatile sig_atomic_t recv_stop;
int rval = EX_OK;

/* src_warn - the library's warnings (damage passed, gaps), on stderr */
void
src_warn(void *arg, const char *msg)
{
	(void)arg;
	cli_warn("%s", msg);
}

struct spool_reader *recv_rd;
struct spool_consumer *recv_cons;
struct spool *recv_sp;
const char *recv_topic;

/* src_next - the next message, from whichever source is open */
int
src_next(struct spool_msg *m)
{
	return recv_cons ? spool_consumer_next(recv_cons, m) : spool_reader_next(recv_rd, m);
}

/* src_copy - spool_reader_copy from whichever source is open */
size_t
src_copy(void *out, size_t cap, const void *delim, size_t dlen, size_t big,
    size_t max, size_t *n, struct spool_msg *last)
{
	return recv_cons ? spool_consumer_copy(recv_cons, out, cap, delim,
	    dlen, big, max, n, last) : spool_reader_copy(recv_rd, out, cap,
	    delim, dlen, big, max, n, last);
}

/*
 * The stop pipe (the self-pipe trick): SIGINT and SIGTERM write a byte
 * to it beside setting recv_stop, and every wait watches its read end
 * (spool_set_stopfd, pace): a signal that comes while mq-recv is busy
 * ends the next wait at once rather than being slept through.
 */
int recv_stopfd = -1;
static int stopw = -1;

/* stop_init - make the stop pipe */
void
stop_init(void)
{
	int fd[2];

	if (pipe2(fd, O_CLOEXEC | O_NONBLOCK) == -1)
		cli_die(-errno, NULL, "pipe");
	recv_stopfd = fd[0];
	stopw = fd[1];
}

/* stop_now - SIGINT, SIGTERM: stop after the message at hand */
void
stop_now(void)
{
	int e = errno;

	recv_stop = 1;
	if (write(stopw, "", 1) == -1) {
		/* full: a byte is there already */
	}
	errno = e;
}

/* src_wait - wait until something may have been written (-EINTR: stop) */
int
src_wait(int ms)
{
	return recv_cons ? spool_consumer_wait(recv_cons, ms) : spool_reader_wait(recv_rd, ms);
}

/* src_done - whether the source has nothing more to give */
int
src_done(void)
{
	return recv_cons ? spool_consumer_done(recv_cons) : spool_reader_done(recv_rd);
}

/* src_pause - stop (on) or go on reading partition part */
void
src_pause(uint32_t part, int on)
{
	if (recv_cons)
		(void)spool_consumer_pause(recv_cons, part, on);
	else
		(void)spool_reader_pause(recv_rd, part, on);
}

/* ack - part is consumed up to off; with -x it is committed at once */
void
ack(uint32_t part, uint64_t off, int now)
{
	int r;

	if (recv_cons == NULL)
		return;
	if ((r = spool_consumer_ack(recv_cons, part, off)) < 0 ||
	    (now && (r = spool_consumer_commit(recv_cons)) < 0))
		cli_die(r, recv_sp, "%s: commit", recv_topic);
}

/* commit - commit what was acked (with -g) */
void
commit(void)
{
	int r;

	if (recv_cons != NULL && (r = spool_consumer_commit(recv_cons)) < 0)
		cli_die(r, recv_sp, "%s: commit", recv_topic);
}
