/*
 * send_write.c - mq-send's writer side: the topic opened (made when it
 * is missing), the writer, --id's record of what an earlier try stored,
 * each message handed over, and at the end what makes the send durable
 * and known: the transaction prepared, the ID recorded, the replicas
 * waited for.  Messages are durable when this exits 0 unless --no-sync.
 */

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "send.h"

static struct spool_dedup *dedup;	/* --id: what an earlier try stored */

int print_offsets;
static uint64_t *need;		/* --replicas: next offset a partition */

/*
 * --print-offsets of a durable send: what is appended but not yet
 * synced, as runs of offsets in input order; printed by acks() once a
 * sync has made them durable
 */
static struct run {
	uint32_t	 part;
	uint64_t	 off;
	uint64_t	 n;
} *runs;
static size_t nruns, runcap;
static int defer;		/* durable: print at acks(), not when stored */

/*
 * print_stored - --print-offsets: one line a stored message, in input order
 * (durable: once synced, see acks); --replicas: what the replicas must
 * acknowledge
 */
void
print_stored(void *arg, uint32_t part, uint64_t off)
{
	struct run *nr;
	size_t ncap;

	(void)arg;
	if (need != NULL && off + 1 > need[part])
		need[part] = off + 1;
	if (!print_offsets)
		return;
	if (!defer) {
		printf("%" PRIu32 " %" PRIu64 "\n", part, off);
		return;
	}
	if (nruns > 0 && runs[nruns - 1].part == part &&
	    runs[nruns - 1].off + runs[nruns - 1].n == off) {
		runs[nruns - 1].n++;
		return;
	}
	if (nruns == runcap) {
		ncap = runcap ? runcap * 2 : 64;
		if ((nr = realloc(runs, ncap * sizeof(*runs))) == NULL)
			cli_die(-ENOMEM, NULL, "--print-offsets");
		runs = nr;
		runcap = ncap;
	}
	runs[nruns].part = part;
	runs[nruns].off = off;
	runs[nruns].n = 1;
	nruns++;
}

/*
 * acks - --print-offsets: everything written so far is print_stored (durable:
 * synced); print what was held back and flush it out, so that a reader
 * of our output learns of its messages now, not when a buffer fills
 */
void
acks(void)
{
	size_t i;
	uint64_t k;

	if (!print_offsets)
		return;
	for (i = 0; i < nruns; i++)
		for (k = 0; k < runs[i].n; k++)
			printf("%" PRIu32 " %" PRIu64 "\n", runs[i].part,
			    runs[i].off + k);
	nruns = 0;
	if (fflush(stdout) == EOF)
		cli_die(-errno, NULL, "stdout");
}

/*
 * send_cut - the send stops before its end (a message refused): what
 * came before it stays stored, and --print-offsets says what that is
 * once it is (durable: synced)
 */
void
send_cut(struct spool_writer *w)
{
	if (cli_close(w) == 0)
		acks();
}

/* -v: what this send stored */
unsigned long long nstored, bstored;

/* refused - the writer refused m with r: say why and die */
static void
refused(struct spool *sp, struct spool_writer *w, const char *topic,
    const struct spool_msg *m, int r)
{
	if (r == -EMSGSIZE) {
		/* what came before stays stored; nothing after it is */
		send_cut(w);
		cli_die(r, sp, "%s: %zu-byte message%s", topic, m->len +
		    (m->key != NULL ? m->keylen : 0), m->key != NULL &&
		    m->keylen > 0 ? " (key and payload)" : "");
	}
	if (r == -EBADMSG && m->key == NULL) {
		/* the same for a keyless message in a compacted topic */
		send_cut(w);
		cli_fail(r, "%s: message refused: %s", topic, spool_errmsg(sp));
	}
	cli_die(r, sp, "%s", topic);
}

/* add - hand one message to the writer, or die saying why not */
void
add(struct spool *sp, struct spool_writer *w, const char *topic,
    struct spool_msg *m)
{
	int r;

	/* stored by an attempt at this send that was cut short */
	if (dedup != NULL && spool_dedup_stored(dedup, m))
		return;
	if ((r = spool_writer_add(w, m)) < 0)
		refused(sp, w, topic, m, r);
	nstored++;
	bstored += m->len;
}

/*
 * add_recs - add of each of v[0..n) as the payload of base, in one call
 * to the writer when no earlier try of this send is to be skipped
 */
void
add_recs(struct spool *sp, struct spool_writer *w, const char *topic,
    const struct spool_msg *base, const struct spool_rec *v, size_t n)
{
	struct spool_msg m = *base;
	size_t i, k;
	int r;

	if (dedup != NULL) {
		for (i = 0; i < n; i++) {
			m.payload = v[i].p;
			m.len = v[i].len;
			add(sp, w, topic, &m);
		}
		return;
	}
	r = spool_writer_add_recs(w, base, v, n, &k);
	nstored += k;
	for (i = 0; i < k; i++)
		bstored += v[i].len;
	if (r < 0) {
		m.payload = v[k].p;
		m.len = v[k].len;
		refused(sp, w, topic, &m, r);
	}
}

/*
 * send_open - open the spool and topic (made unless --no-create), move
 * what is due, begin --prepare's transaction, open the writer
 */
void
send_open(struct send_opts *o, struct spool **spp, struct spool_topic **tp,
    struct spool_writer **wp)
{
	struct spool *sp;
	struct spool_topic *t;
	struct spool_writer *w;
	int r;

	sp = cli_open_spool(o->spool, (o->nocreate ? 0 : SPOOL_CREATE) |
	    (o->wo.sync ? 0 : SPOOL_NOSYNC));
	cli_check_primary(sp, cli_spool_path(o->spool));
	r = spool_topic_open(sp, o->topic, &t);
	if (r == -ENOENT && !o->nocreate) {
		r = spool_topic_create(sp, o->topic, NULL);
		if (r == 0 || r == -EEXIST)
			r = spool_topic_open(sp, o->topic, &t);
	}
	if (r == -ENOENT)
		cli_fail(r, "%s: No such topic", o->topic);
	if (r < 0)
		cli_die(r, sp, "%s", o->topic);
	cli_own(CLI_TOPIC, t);
	if (o->replicas > 0 && (need = calloc(spool_topic_config(t)->partitions,
	    sizeof(*need))) == NULL)
		cli_die(-ENOMEM, NULL, "%s", o->topic);
	cli_own(CLI_MEM, need);
	/* whoever touches the topic moves what is due, before its own */
	if ((r = spool_sched_move(t, spool_now_ms(), NULL)) < 0)
		cli_die(r, sp, "%s: scheduled", o->topic);
	/* ...and aborts transactions past their timeout */
	if ((r = spool_txn_tick(t, spool_now_ms(), 0)) < 0)
		cli_die(r, sp, "%s: transactions", o->topic);
	/* --prepare: the batches go aside, under a new transaction */
	if (o->prepare && (r = spool_txn_begin(t, &o->wo.txid)) < 0)
		cli_die(r, sp, "%s: --prepare", o->topic);
	o->txid = o->wo.txid;
	if ((r = spool_writer_open(t, &o->wo, &w)) < 0) {
		if (r == -ENOENT)
			cli_fail(r, "%s: No such partition %d (it has %" PRIu32
			    ", 0 to %" PRIu32 ")", o->topic, o->wo.partition,
			    spool_topic_config(t)->partitions,
			    spool_topic_config(t)->partitions - 1);
		cli_die(r, sp, "%s", o->topic);
	}
	cli_own(CLI_WRITER, w);
	/* a durable send prints an offset once its message is synced */
	defer = o->wo.sync;
	*spp = sp;
	*tp = t;
	*wp = w;
}

/*
 * send_id - --id: look for what an earlier try of this send stored; 1
 * when all of it was (the writer is closed: nothing to do), else 0 and
 * base carries the ID
 */
int
send_id(struct send_opts *o, struct spool *sp, struct spool_topic *t,
    struct spool_writer *w, struct spool_msg *base)
{
	int idstate, r;

	/* a send whose ID is known stores nothing, and succeeds */
	if ((r = spool_dedup_begin(t, o->id, strlen(o->id), &dedup,
	    &idstate)) < 0)
		cli_die(r, sp, "%s: --id", o->topic);
	cli_own(CLI_DEDUP, dedup);
	if (idstate == SPOOL_DEDUP_DAMAGED)
		cli_warn("%s; looking for --id %s in the stored "
		    "messages", spool_errmsg(sp), o->id);
	else if (idstate == SPOOL_DEDUP_RETRY && cli_verbose)
		cli_warn("%s: --id %s: an earlier attempt was cut "
		    "short; storing what it did not", o->topic, o->id);
	if (idstate == SPOOL_DEDUP_SEEN) {
		if (cli_verbose)
			cli_warn("%s: --id %s: already stored", o->topic,
			    o->id);
		(void)cli_close(w);
		(void)cli_close(dedup);
		return 1;
	}
	base->id = o->id;
	base->idlen = strlen(o->id);
	return 0;
}

/*
 * send_done - close the writer (the last batches appended and synced);
 * then --prepare, --id and --replicas, each only once all is stored
 */
void
send_done(struct send_opts *o, struct spool *sp, struct spool_topic *t,
    struct spool_writer *w)
{
	int r, seen;

	if ((r = cli_close(w)) < 0)
		cli_die(r, sp, "%s", o->topic);
	acks();
	free(runs);
	/* the ID is known only once its messages are stored */
	if (dedup != NULL)
		cli_disown(dedup);
	/* everything is stored: now the transaction may be committed */
	if (o->prepare) {
		if ((r = spool_txn_prepare(t, o->txid, o->txtimeout,
		    o->check)) < 0)
			cli_die(r, sp, "%s: --prepare", o->topic);
		printf("%s.%016" PRIx64 "\n", o->topic, o->txid);
	}
	if (o->id != NULL && (r = spool_dedup_end(dedup, 1)) < 0)
		cli_die(r, sp, "%s: --id", o->topic);
	/* followers wait for the next due time: it may be ours */
	if (o->wo.due > 0)
		spool_sched_kick(t);
	if (fflush(stdout) == EOF)
		cli_die(-errno, NULL, "stdout");
	if (cli_verbose)
		cli_warn("%s: stored %llu messages (%llu bytes of payload) in "
		    "%.3f s%s", o->topic, nstored, bstored,
		    (spool_now_ms() - o->started) / 1000.0,
		    o->wo.sync ? ", synced" : "");
	if (o->replicas > 0 && (r = spool_replica_wait(sp, o->topic, need,
	    spool_topic_config(t)->partitions, o->replicas, (int)o->rtimeout,
	    &seen)) < 0) {
		if (r == -ETIMEDOUT)
			cli_fail(r, "%s: %d of %d replicas acknowledged the "
			    "messages within %s; they stay stored here", o->topic,
			    seen, o->replicas, o->rtstr);
		cli_die(r, sp, "%s: --replicas", o->topic);
	}
	(void)cli_close(need);
}
