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

	spool_writer_expect(w, o->argc - 1);
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
	/* the decoder's state, kept from line to line, freed at exit */
	static void *jstate;
	struct spool_msg m = *base;
	int r, fresh = jstate == NULL;

	r = json_in_decode(rec, len, &m, &jstate);
	if (fresh && jstate != NULL)
		cli_own_fn(json_in_free, jstate);
	if (r < 0) {
		/* what came before stays stored; nothing after */
		if (r == -ENOMEM)
			cli_die(r, NULL, "%s: stdin", o->topic);
		if ((r = cli_close(w)) < 0)
			cli_die(r, sp, "%s", o->topic);
		acks();
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
	/* m points into jstate until the writer has it (add copies it) */
	if (o->id != NULL) {
		/* the send's ID is what a retry looks for */
		m.id = base->id;
		m.idlen = base->idlen;
	}
	add(sp, w, o->topic, &m);
}

/* between records: what the writer holds that is not appended or synced */
struct pace {
	int		 unflushed;	/* records not yet appended */
	int		 unsynced;	/* appended, not yet synced */
	int64_t		 last;		/* the last sync */
};

/* wait_for - how long to wait for the next record, in ms (-1: for ever) */
static int
wait_for(const struct send_opts *o, const struct pace *pc)
{
	int64_t left;

	if (pc->unflushed)
		return 0;
	if (!pc->unsynced || !o->wo.sync)
		return -1;
	left = o->interval - (spool_now_ms() - pc->last);
	return left < 0 ? 0 : left > INT32_MAX ? INT32_MAX : (int)left;
}

/* idle - stdin went quiet: append what is held, or (durable) sync it */
static void
idle(struct send_opts *o, struct spool *sp, struct spool_writer *w,
    struct pace *pc)
{
	int r;

	progress_tick(nstored, bstored);
	if (pc->unflushed) {
		if ((r = spool_writer_flush(w)) < 0)
			cli_die(r, sp, "%s", o->topic);
		pc->unflushed = 0;
		pc->unsynced = 1;
		if (!o->wo.sync)
			acks();	/* stored is all it waits for */
	} else {
		if ((r = spool_writer_sync(w)) < 0)
			cli_die(r, sp, "%s", o->topic);
		pc->unsynced = 0;
		pc->last = spool_now_ms();
		acks();
	}
}

/* record - one record of stdin as a message (-J: a JSON line); 0: none */
static inline int
record(struct send_opts *o, struct spool *sp, struct spool_writer *w,
    const struct spool_msg *base, const void *rec, size_t len,
    unsigned long long lineno)
{
	struct spool_msg m = *base;

	if (o->json) {
		if (len == 0)
			return 0;	/* skipped, but counted */
		json_record(o, sp, w, base, rec, len, lineno);
		return 1;
	}
	m.payload = rec;
	m.len = len;
	if (o->kdelim != NULL)
		split_key(&m, rec, len, o->kdelim, o->kdlen);
	add(sp, w, o->topic, &m);
	return 1;
}

#define BULK	512	/* plain records handed to the writer in one call */
#define JSON_SLACK	(1u << 20)	/* a -J line's room beyond 6 a byte */

/*
 * record_max - the longest input record a message of the topic can come
 * as (bounded memory whatever the input): its key and payload together
 * are at most max.message.bytes; -K adds the delimiter, and -J up to six
 * bytes a byte (\u0000) and room for the members, headers and numbers
 */
static size_t
record_max(const struct send_opts *o, struct spool_topic *t)
{
	size_t max = (size_t)spool_topic_config(t)->max_message_bytes;

	if (o->json)
		return 6 * max + JSON_SLACK;
	return o->kdelim != NULL ? max + o->kdlen : max;
}

/*
 * send_stdin - the records of stdin, until its end, taken a buffer's
 * worth at a time; plain ones (no -J, no -K) go to the writer so too
 */
void
send_stdin(struct send_opts *o, struct spool *sp, struct spool_topic *t,
    struct spool_writer *w, const struct spool_msg *base, int closed)
{
	struct spool_input *in;
	struct pace pc = { 0, 0, 0 };
	struct spool_rec v[BULK];
	const void *rec;
	size_t len, i, k, n, left;
	unsigned long long lineno = 0;
	unsigned count = 0, prev;
	int r, bulk = !o->json && o->kdelim == NULL;

	if (closed & 1 << STDIN_FILENO)
		cli_fail(-ENOENT, "stdin: Bad file descriptor (closed)");
	if ((r = spool_input_open(sp, STDIN_FILENO, o->delim,
	    o->whole ? 0 : o->dlen, record_max(o, t), &in)) < 0)
		cli_die(r, sp, "stdin");
	cli_own(CLI_INPUT, in);
	pc.last = spool_now_ms();
	progress_start(o->progress, o->topic);
	for (;;) {
		/* idle stdin: append now; durable: sync within the interval */
		r = spool_input_next(in, &rec, &len, wait_for(o, &pc));
		if (r == -ETIMEDOUT) {
			idle(o, sp, w, &pc);
			continue;
		}
		if (r == -EMSGSIZE) {
			send_cut(w);
			cli_die(r, sp, "%s: stdin", o->topic);
		}
		if (r < 0)
			cli_die(r, sp, "stdin");
		if (r == 0)
			break;
		/*
		 * Offsets reported: keyless messages go in runs.  A small
		 * send, all read at once, gets one run a partition.
		 */
		if (lineno == 0 && count == 0 && o->wo.stored != NULL &&
		    spool_input_left(in, &left) == 1)
			spool_writer_expect(w, left + 1);
		/* this record and those read with it */
		v[0].p = rec;
		v[0].len = len;
		n = 1 + spool_input_more(in, v + 1, BULK - 1);
		if (bulk) {
			add_recs(sp, w, o->topic, base, v, n);	/* in one call */
			k = n;
		} else {
			for (i = k = 0; i < n; i++)
				k += record(o, sp, w, base, v[i].p, v[i].len,
				    ++lineno);
			if (k == 0)
				continue;
		}
		pc.unflushed = 1;
		/* the clock is read every 1024 messages, not every one */
		prev = count;
		count += k;
		if (count >> 10 == prev >> 10)
			continue;
		progress_tick(nstored, bstored);
		if (o->wo.sync && spool_now_ms() - pc.last >= o->interval) {
			if ((r = spool_writer_sync(w)) < 0)
				cli_die(r, sp, "%s", o->topic);
			pc.unflushed = pc.unsynced = 0;
			pc.last = spool_now_ms();
			acks();
		}
	}
	(void)cli_close(in);
	progress_end();
}
