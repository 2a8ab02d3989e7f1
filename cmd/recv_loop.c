/*
 * recv_loop.c - mq-recv's loop: a spool_reader (or, with -g, a consumer
 * group member, spool_consumer) from the start position, one message at
 * a time, filtered (--filter), paced (--rate), then printed (recv_out.c)
 * or handed to a command (-x, recv_exec.c).  Damage is reported as it
 * is met and makes the exit status 65; everything else is still read.
 * At a hole in a partition's offsets the library stops that partition
 * (unless --skip-damage); at a batch of a newer format we stop, after
 * writing out what came before it.
 */

#include <errno.h>
#include <fnmatch.h>
#include <inttypes.h>
#include <limits.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "recv.h"

/* glob_match - fnmatch on bytes that may hold no NUL */
static int
glob_match(const char *glob, const void *s, size_t n)
{
	char buf[256], *b = buf;
	int r;

	if (n >= sizeof(buf) && (b = malloc(n + 1)) == NULL)
		cli_die(-ENOMEM, NULL, "filter");
	memcpy(b, s, n);
	b[n] = '\0';
	r = memchr(s, '\0', n) == NULL && fnmatch(glob, b, 0) == 0;
	if (b != buf)
		free(b);
	return r;
}

/* match - whether m passes every filter */
static int
match(const struct recv_opts *o, const struct spool_msg *m)
{
	const char *eq;
	size_t i, nl;
	int f, ok;

	for (f = 0; f < o->nfilters; f++) {
		if ((eq = strchr(o->filters[f], '=')) == NULL) {
			if (!glob_match(o->filters[f], m->key ? m->key : "",
			    m->key ? m->keylen : 0))
				return 0;
			continue;
		}
		nl = eq - o->filters[f];
		for (ok = 0, i = 0; i < m->nheaders && !ok; i++)
			ok = m->headers[i].namelen == nl &&
			    memcmp(m->headers[i].name, o->filters[f], nl) == 0 &&
			    glob_match(eq + 1, m->headers[i].value,
			    m->headers[i].valuelen);
		if (!ok)
			return 0;
	}
	return 1;
}

/* --rate: when the next message may go */
static int64_t rate_next;

/*
 * pace - --rate: at most one message every rate_ns, no bursts; sleep
 * until the next message may go (a stop signal, whenever it came, cuts
 * it short: the sleep watches the stop pipe).  What was printed is
 * written out first: paced messages reach their reader one by one, not
 * a full buffer (1 MiB) at a time.
 */
static void
pace(int64_t rate_ns)
{
	struct pollfd p = { .fd = recv_stopfd, .events = POLLIN };
	struct timespec ts;
	int64_t now, wait;

	if (rate_ns == 0)
		return;
	now = cli_mono_ns();
	if (rate_next > now) {
		flush();
		wait = rate_next - now;
		ts.tv_sec = wait / 1000000000;
		ts.tv_nsec = wait % 1000000000;
		(void)ppoll(&p, 1, &ts, NULL);
		now = cli_mono_ns();
	}
	rate_next = (rate_next > now ? rate_next : now) + rate_ns;
}

/*
 * sched_touch - move the topic's due scheduled messages; *due is when
 * the next one is, -1 for none or when they cannot be moved by us.  A
 * reader that may not write the spool reads on without moving them; a
 * damaged scheduled file is reported once, and reading goes on.
 */
static int
sched_touch(struct spool_topic *t, int64_t *due)
{
	static int warned;
	int r;

	if ((r = spool_sched_move(t, spool_now_ms(), due)) >= 0)
		return r;
	*due = -1;
	if (r == -EACCES || r == -EPERM || r == -EROFS) {
		if (cli_verbose && !warned++)
			cli_warn("%s: scheduled messages not moved: %s",
			    recv_topic, strerror(-r));
		return 0;
	}
	if (r == -EBADMSG || r == -EPROTO) {
		if (!warned++)
			cli_warn("%s", spool_errmsg(recv_sp));
		rval = EX_DATAERR;
		return 0;
	}
	cli_die(r, recv_sp, "%s: scheduled", recv_topic);
}

/*
 * recv_open - open the topic (--wait-topic: wait for it) and the reader
 * or consumer; -ETIMEDOUT or -EINTR while waiting, else 0 or exit
 */
int
recv_open(struct recv_opts *o, struct spool_topic **tp)
{
	struct spool_consumer_opts co;
	struct spool_topic *t;
	int64_t due;
	int r;

	recv_sp = cli_open_spool(o->spool, 0);
	/* a stop signal ends any wait, whenever it came */
	spool_set_stopfd(recv_sp, recv_stopfd);
	/* --wait-topic: a topic not made yet is waited for, as tail -F does */
	r = o->wait_topic ? spool_topic_wait(recv_sp, recv_topic,
	    o->timeout < 0 ? -1 : (int)o->timeout, &t) :
	    spool_topic_open(recv_sp, recv_topic, &t);
	if (r == -ETIMEDOUT || r == -EINTR)
		return r;
	if (r < 0) {
		if (r == -ENOENT)
			cli_fail(r, "%s: No such topic", recv_topic);
		cli_die(r, recv_sp, "%s", recv_topic);
	}
	cli_own(CLI_TOPIC, t);
	/* whoever touches the topic moves what is due */
	(void)sched_touch(t, &due);
	/* ...and aborts timed-out transactions (if it may write) */
	if ((r = spool_txn_tick(t, spool_now_ms(), 0)) < 0 && r != -EACCES &&
	    r != -EPERM && r != -EROFS)
		cli_die(r, recv_sp, "%s: transactions", recv_topic);
	if (o->group != NULL) {
		memset(&co, 0, sizeof(co));
		co.group = o->group;
		co.start = o->ro.start;
		co.until = o->ro.until;
		co.follow = o->follow;
		co.skip_damage = o->skip;
		co.release = hand_over;
		co.warn = src_warn;
		r = spool_consumer_open(t, &co, &recv_cons);
	} else {
		o->ro.follow = o->follow;
		o->ro.skip_damage = o->skip;
		o->ro.warn = src_warn;
		r = spool_reader_open(t, &o->ro, &recv_rd);
	}
	if (r < 0) {
		if (r == -ENOENT && o->ro.partition >= 0 && o->group == NULL)
			cli_fail(r, "%s: No such partition %d (it has %" PRIu32
			    ", 0 to %" PRIu32 ")", recv_topic, o->ro.partition,
			    spool_topic_config(t)->partitions,
			    spool_topic_config(t)->partitions - 1);
		cli_die(r, recv_sp, "%s", recv_topic);
	}
	cli_own(CLI_CONSUMER, recv_cons);
	cli_own(CLI_READER, recv_rd);
	*tp = t;
	return 0;
}

enum { WAIT_ON, WAIT_END, WAIT_AGAIN };

/*
 * caught_up - no message now: settle -x's commands, or wait for more
 * (-f) as long as --timeout allows, waking for scheduled messages when
 * they are due; WAIT_ON: read on, WAIT_END: the run is over,
 * WAIT_AGAIN: the topic was deleted and --wait-topic starts again
 */
static int
caught_up(struct recv_opts *o, struct spool_topic *t, int64_t last)
{
	struct job *j;
	int64_t due = -1;
	int r, left, wait;

	flush();
	if (o->xcmd != NULL && jobs_count() > 0) {
		if ((j = jobs_wait(1)) != NULL)
			job_finish(j);
		return WAIT_ON;
	}
	if (!o->follow || src_done())
		return WAIT_END;
	/* due messages now; a timer for the next due one */
	if (sched_touch(t, &due) > 0)
		return WAIT_ON;
	left = o->timeout < 0 ? -1 : (int)(o->timeout -
	    (spool_now_ms() - last));
	wait = left;
	if (due >= 0) {
		due -= spool_now_ms();
		due = due < 0 ? 0 : due;
		if (wait < 0 || due < wait)
			wait = (int)(due > INT32_MAX ?
			    INT32_MAX : due);
	}
	r = o->timeout >= 0 && left <= 0 ? -ETIMEDOUT :
	    src_wait(wait);
	if (r == -ETIMEDOUT && wait != left)
		return WAIT_ON;	/* something is due */
	if (r == -ETIMEDOUT) {
		if (cli_verbose)
			cli_warn("%s: no message within the "
			    "timeout", recv_topic);
		rval = rval ? rval : EX_TEMPFAIL;
		return WAIT_END;
	}
	if (r == -ENOENT && o->wait_topic) {
		/* as tail -F: start again on the next one */
		cli_warn("%s: the topic was deleted; waiting for "
		    "it to be made again", recv_topic);
		return WAIT_AGAIN;
	}
	if (r == -ENOENT)	/* the topic was deleted */
		cli_fail(r, "%s: the topic was deleted", recv_topic);
	if (r < 0 && r != -EINTR)
		cli_die(r, recv_sp, "%s", recv_topic);
	return WAIT_ON;
}

/*
 * recv_loop - read, filter, print or run, until the count, the end (no
 * -f), a timeout or a signal; 1: the topic was deleted and --wait-topic
 * says to start again
 */
int
recv_loop(struct recv_opts *o, struct spool_topic *t)
{
	struct spool_msg m;
	struct job *j;
	long long got = 0;
	int64_t last;
	int r, plain;

	/* payloads alone: whole batches at a time */
	plain = !o->json && o->fmt == NULL && o->xcmd == NULL &&
	    o->nfilters == 0 && o->rate_ns == 0;
	last = spool_now_ms();
	while (!recv_stop && got != o->count) {
		if (o->xcmd != NULL) {
			while ((j = jobs_wait(0)) != NULL)
				job_finish(j);
			if (jobs_free_slots() == 0) {
				if ((j = jobs_wait(1)) != NULL)
					job_finish(j);
				continue;
			}
		}
		r = src_next(&m);
		if (r == -EBADMSG) {
			cli_warn("%s", spool_errmsg(recv_sp));
			rval = EX_DATAERR;
			continue;
		}
		if (r == -EPROTO) {
			/* what came before it is delivered; nothing after */
			if (o->xcmd != NULL)
				drain();
			flush();
		}
		if (r < 0)
			cli_die(r, recv_sp, "%s", recv_topic);
		if (r == 0) {
			if ((r = caught_up(o, t, last)) == WAIT_END)
				break;
			if (r == WAIT_AGAIN)
				return 1;
			continue;
		}
		if (o->timeout >= 0)
			last = spool_now_ms();
		if (o->nfilters > 0 && !match(o, &m)) {
			/* routed elsewhere: consumed, as far as the group goes */
			ack(m.partition, m.offset, 0);
			continue;
		}
		pace(o->rate_ns);
		if (recv_stop)
			break;	/* came in the wait: m is not delivered */
		got++;
		if (o->xcmd != NULL) {
			/* the partition's next message waits for this one */
			src_pause(m.partition, 1);
			jobs_start(&m);
			continue;
		}
		print_msg(o, &m);
		ack(m.partition, m.offset, 0);
		if (plain)
			got += print_run(o, o->count < 0 ? LLONG_MAX :
			    o->count - got);
	}
	return 0;
}

/* recv_close - make the group's place durable; close the source */
void
recv_close(struct recv_opts *o, struct spool_topic *t)
{
	int r;

	/* the group's place is durable before we say we are done */
	if (recv_cons != NULL && (r = spool_consumer_sync(recv_cons)) < 0)
		cli_die(r, recv_sp, "%s: group %s", recv_topic, o->group);
	(void)cli_close(recv_cons);
	(void)cli_close(recv_rd);
	(void)cli_close(t);
	(void)cli_close(recv_sp);
}
