/*
 * recv_exec.c - mq-recv -x: what becomes of a message once its command
 * (cmd/jobs.c) is done with it: committed when it exited 0, else, after
 * the retries, stored in the --dead-letter topic and committed, or left
 * uncommitted and the run stopped (exit 75).  A command killed by
 * SIGPIPE once the reader of mq-recv's stdout is gone failed on that
 * stdout, not on its message: it stops the run, never a dead letter.
 */

#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "recv.h"

/* the dead-letter topic, opened on first use */
static const char *dlt;
static struct spool_topic *dlt_topic;
static struct spool_writer *dlt_writer;

/* exec_setup - the --dead-letter topic, or NULL */
void
exec_setup(const char *dead_letter_topic)
{
	dlt = dead_letter_topic;
}

/* dead_letter - store a failed message, durably, in the dead-letter topic */
static void
dead_letter(const struct job *j)
{
	struct spool_writer_opts wo = { .sync = 1, .codec = -1,
	    .partition = -1 };
	struct spool_header h[64 + 5];
	struct spool_msg m = j->msg;
	char part[24], off[24], st[24], att[24];
	size_t n;
	int r;

	if (dlt_writer == NULL) {
		r = spool_topic_open(recv_sp, dlt, &dlt_topic);
		if (r == -ENOENT) {
			r = spool_topic_create(recv_sp, dlt, NULL);
			if (r == 0 || r == -EEXIST)
				r = spool_topic_open(recv_sp, dlt, &dlt_topic);
		}
		if (r == 0)
			cli_own(CLI_TOPIC, dlt_topic);
		if (r < 0 || (r = spool_writer_open(dlt_topic, &wo,
		    &dlt_writer)) < 0)
			cli_die(r, recv_sp, "%s", dlt);
		cli_own(CLI_WRITER, dlt_writer);
	}
	n = m.nheaders < 64 ? m.nheaders : 64;
	if (n > 0)	/* a message with no headers has NULL for them */
		memcpy(h, m.headers, n * sizeof(*h));
	snprintf(part, sizeof(part), "%" PRIu32, m.partition);
	snprintf(off, sizeof(off), "%" PRIu64, m.offset);
	snprintf(st, sizeof(st), "%d", j->status);
	snprintf(att, sizeof(att), "%d", j->attempts);
#define HDR(k, v) do { h[n].name = k; h[n].namelen = strlen(k); \
	h[n].value = v; h[n].valuelen = strlen(v); n++; } while (0)
	HDR("mq-source-topic", recv_topic);
	HDR("mq-source-partition", part);
	HDR("mq-source-offset", off);
	HDR("mq-exit-status", st);
	HDR("mq-attempts", att);
#undef HDR
	m.headers = h;
	m.nheaders = n;
	m.ts = 0;	/* the dead letter's own time: now */
	m.ts_given = 0;
	/* stored for good before the source message is let go */
	if ((r = spool_writer_add(dlt_writer, &m)) < 0 ||
	    (r = spool_writer_sync(dlt_writer)) < 0)
		cli_die(r, recv_sp, "%s", dlt);
}

/* stdout_gone - whether stdout is a pipe (or socket) nobody reads now */
static int
stdout_gone(void)
{
	struct pollfd p = { .fd = STDOUT_FILENO, .events = 0 };

	return poll(&p, 1, 0) == 1 && (p.revents & (POLLERR | POLLHUP));
}

/* job_finish - a command is done with its message for good */
void
job_finish(struct job *j)
{
	if (j->status == 0)
		ack(j->msg.partition, j->msg.offset, 1);
	else if (recv_stop) {
		/* cut short by the shutdown: delivered again next time */
		cli_warn("%s: partition %" PRIu32 " offset %" PRIu64 ": exit "
		    "%d while stopping; not committed", recv_topic,
		    j->msg.partition, j->msg.offset, j->status);
	} else if (j->status == 128 + SIGPIPE && stdout_gone()) {
		cli_warn("%s: partition %" PRIu32 " offset %" PRIu64 ": exit "
		    "%d after %d attempt%s: stdout closed; stopping, not "
		    "committed", recv_topic, j->msg.partition, j->msg.offset,
		    j->status, j->attempts, j->attempts == 1 ? "" : "s");
		rval = EX_TEMPFAIL;
		recv_stop = 1;
	} else if (dlt != NULL) {
		cli_warn("%s: partition %" PRIu32 " offset %" PRIu64 ": exit "
		    "%d after %d attempt%s; to %s", recv_topic, j->msg.partition,
		    j->msg.offset, j->status, j->attempts,
		    j->attempts == 1 ? "" : "s", dlt);
		dead_letter(j);
		ack(j->msg.partition, j->msg.offset, 1);
	} else {
		cli_warn("%s: partition %" PRIu32 " offset %" PRIu64 ": exit "
		    "%d after %d attempt%s; stopping, not committed", recv_topic,
		    j->msg.partition, j->msg.offset, j->status, j->attempts,
		    j->attempts == 1 ? "" : "s");
		rval = EX_TEMPFAIL;
		recv_stop = 1;
	}
	src_pause(j->msg.partition, 0);
	jobs_end(j);
}

/* drain - wait for every command still running, and settle each */
void
drain(void)
{
	struct job *j;

	while (jobs_count() > 0)
		if ((j = jobs_wait(1)) != NULL)
			job_finish(j);
}

/* hand_over - a partition goes to another member: settle what is out */
void
hand_over(void *arg)
{
	(void)arg;
	flush();
	drain();
}

/* dead_letter_close - what went to the dead-letter topic is stored */
void
dead_letter_close(void)
{
	int r;

	if ((r = cli_close(dlt_writer)) < 0)
		cli_die(r, recv_sp, "%s", dlt);
	(void)cli_close(dlt_topic);
}
