/*
 * send_input.c - mq-send's messages: one an argument, or records from
 * stdin (spool_input splits it on the delimiter, read ahead while the
 * writer encodes and appends; -J decodes JSON lines, json_in.c).  While stdin is
 * idle the pending batches are appended at once, so followers see
 * messages without waiting for a full batch, and synced within
 * --sync-interval.
 */

#include <errno.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

#include "json_in.h"
#include "send.h"

/* split_key - -K: KEY delim PAYLOAD; no delimiter, no key */
static void
split_key(struct spool_msg *m, const void *rec, size_t len, const char *kd,
    size_t kdlen)
{
	const char *d = memmem(rec, len, kd, kdlen);

	if (d == NULL) {
		m->payload = rec;
		m->len = len;
		return;
	}
	m->key = rec;
	m->keylen = d - (const char *)rec;
	m->payload = d + kdlen;
	m->len = len - m->keylen - kdlen;
}

/* send_args - each operand after the topic is one message */
void
send_args(struct send_opts *o, struct spool *sp, struct spool_writer *w,
    const struct spool_msg *base)
{
	struct spool_msg m;

	for (int i = 1; i < o->argc; i++) {
		m = *base;
		m.payload = o->argv[i];
		m.len = strlen(o->argv[i]);
		if (o->kdelim != NULL)
			split_key(&m, o->argv[i], m.len, o->kdelim, o->kdlen);
		add(sp, w, o->topic, &m);
	}
}

/*
 * json_record - -J: one line of stdin as a message; -k, -H and --id
 * fill in what the line does not say.  A line that is not a message
 * ends the send (65) after what came before it is stored.
 */
static void
json_record(struct send_opts *o, struct spool *sp, struct spool_writer *w,
    const struct spool_msg *base, const void *rec, size_t len,
    unsigned long long lineno)
{
	struct spool_msg m = *base;
	void *jstate;
	int r;

	if ((r = json_in_decode(rec, len, &m, &jstate)) < 0) {
		/* what came before stays stored; nothing after */
		cli_own_fn(json_in_free, jstate);
		if (r == -ENOMEM)
			cli_die(r, NULL, "%s: stdin", o->topic);
		if ((r = cli_close(w)) < 0)
			cli_die(r, sp, "%s", o->topic);
		cli_fail(-EBADMSG, "%s: stdin line %llu: %s",
		    o->topic, lineno, json_in_why(jstate));
	}
	if (m.key == NULL && o->key != NULL) {
		m.key = o->key;
		m.keylen = strlen(o->key);
	}
	if (m.nheaders == 0) {
		m.headers = base->headers;
		m.nheaders = base->nheaders;
	}
	/* m points into jstate until the writer has it */
	cli_own_fn(json_in_free, jstate);
	if (o->id != NULL) {
		/* the send's ID is what a retry looks for */
		m.id = base->id;
		m.idlen = base->idlen;
	}
	add(sp, w, o->topic, &m);
	(void)cli_close(jstate);
}

/* send_stdin - the records of stdin, until its end */
void
send_stdin(struct send_opts *o, struct spool *sp, struct spool_topic *t,
    struct spool_writer *w, const struct spool_msg *base, int closed)
{
	struct spool_input *in;
	struct spool_msg m;
	const void *rec;
	size_t len;
	int64_t last, now;
	unsigned long long lineno = 0;
	unsigned count = 0;
	int r, timeout, unflushed = 0, unsynced = 0;

	if (closed & 1 << STDIN_FILENO)
		cli_fail(-ENOENT, "stdin: Bad file descriptor (closed)");
	if ((r = spool_input_open(sp, STDIN_FILENO, o->delim,
	    o->whole ? 0 : o->dlen, o->json ? SIZE_MAX / 4 :
	    (size_t)spool_topic_config(t)->max_message_bytes, &in)) < 0)
		cli_die(r, sp, "stdin");
	cli_own(CLI_INPUT, in);
	last = spool_now_ms();
	progress_start(o->progress, o->topic);
	for (;;) {
		/* idle stdin: append now; durable: sync within the interval */
		if (unflushed)
			timeout = 0;
		else if (unsynced && o->wo.sync) {
			now = o->interval - (spool_now_ms() - last);
			timeout = now < 0 ? 0 : now > INT32_MAX ? INT32_MAX :
			    (int)now;
		} else
			timeout = -1;
		r = spool_input_next(in, &rec, &len, timeout);
		if (r == -ETIMEDOUT) {
			progress_tick(nstored, bstored);
			if (unflushed) {
				if ((r = spool_writer_flush(w)) < 0)
					cli_die(r, sp, "%s", o->topic);
				unflushed = 0;
				unsynced = 1;
				if (!o->wo.sync)
					acks();	/* stored is all it waits for */
			} else {
				if ((r = spool_writer_sync(w)) < 0)
					cli_die(r, sp, "%s", o->topic);
				unsynced = 0;
				last = spool_now_ms();
				acks();
			}
			continue;
		}
		if (r == -EMSGSIZE) {
			(void)cli_close(w);
			cli_die(r, sp, "%s: stdin", o->topic);
		}
		if (r < 0)
			cli_die(r, sp, "stdin");
		if (r == 0)
			break;
		m = *base;
		if (o->json) {
			lineno++;
			if (len == 0)
				continue;
			json_record(o, sp, w, base, rec, len, lineno);
		} else {
			m.payload = rec;
			m.len = len;
			if (o->kdelim != NULL)
				split_key(&m, rec, len, o->kdelim, o->kdlen);
			add(sp, w, o->topic, &m);
		}
		unflushed = 1;
		/* the clock is read every 1024 messages, not every one */
		if ((++count & 1023) == 0)
			progress_tick(nstored, bstored);
		if (o->wo.sync && (count & 1023) == 0 &&
		    spool_now_ms() - last >= o->interval) {
			if ((r = spool_writer_sync(w)) < 0)
				cli_die(r, sp, "%s", o->topic);
			unflushed = unsynced = 0;
			last = spool_now_ms();
			acks();
		}
	}
	(void)cli_close(in);
	progress_end();
}
