/*
 * mq-send - append messages to a topic, from arguments or stdin
 *
 * Options, then libspool: records come from spool_input (stdin split on
 * the delimiter, read ahead while the writer encodes and appends), go
 * through spool_writer, and are durable when this exits 0 unless
 * --no-sync.  While stdin is idle the pending batches are appended at
 * once, so followers see messages without waiting for a full batch.
 */

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"

#define MAX_HEADERS	64

enum { OPT_AT = 256, OPT_DELAY, OPT_ID, OPT_NO_CREATE, OPT_NO_SYNC,
	OPT_PRINT_OFFSETS, OPT_PROGRESS, OPT_REPLICAS, OPT_SYNC_INTERVAL,
	OPT_TIMEOUT, OPT_WHOLE, OPT_VERSION, OPT_PREPARE, OPT_COMMIT, OPT_ABORT,
	OPT_TXN_TIMEOUT, OPT_CHECK };

static const struct option longopts[] = {
	{ "null",		no_argument,		NULL, '0' },
	{ "delimiter",		required_argument,	NULL, 'D' },
	{ "header",		required_argument,	NULL, 'H' },
	{ "help",		no_argument,		NULL, 'h' },
	{ "json",		no_argument,		NULL, 'J' },
	{ "key-delimiter",	required_argument,	NULL, 'K' },
	{ "key",		required_argument,	NULL, 'k' },
	{ "partition",		required_argument,	NULL, 'p' },
	{ "quiet",		no_argument,		NULL, 'q' },
	{ "spool",		required_argument,	NULL, 's' },
	{ "verbose",		no_argument,		NULL, 'v' },
	{ "compress",		required_argument,	NULL, 'z' },
	{ "abort",		required_argument,	NULL, OPT_ABORT },
	{ "at",			required_argument,	NULL, OPT_AT },
	{ "check",		required_argument,	NULL, OPT_CHECK },
	{ "commit",		required_argument,	NULL, OPT_COMMIT },
	{ "delay",		required_argument,	NULL, OPT_DELAY },
	{ "id",			required_argument,	NULL, OPT_ID },
	{ "no-create",		no_argument,		NULL, OPT_NO_CREATE },
	{ "no-sync",		no_argument,		NULL, OPT_NO_SYNC },
	{ "prepare",		no_argument,		NULL, OPT_PREPARE },
	{ "print-offsets",	no_argument,		NULL, OPT_PRINT_OFFSETS },
	{ "progress",		no_argument,		NULL, OPT_PROGRESS },
	{ "replicas",		required_argument,	NULL, OPT_REPLICAS },
	{ "sync-interval",	required_argument,	NULL, OPT_SYNC_INTERVAL },
	{ "timeout",		required_argument,	NULL, OPT_TIMEOUT },
	{ "txn-timeout",	required_argument,	NULL, OPT_TXN_TIMEOUT },
	{ "version",		no_argument,		NULL, OPT_VERSION },
	{ "whole",		no_argument,		NULL, OPT_WHOLE },
	{ NULL, 0, NULL, 0 }
};

static const char usage_text[] =
"usage: mq-send [-0qv] [-D delim] [-H name=value] [-K delim] [-k key] [-p partition]\n"
"               [-s spool] [-z codec[:level]] [--at time | --delay duration]\n"
"               [--id id] [--no-create] [--no-sync] [--print-offsets]\n"
"               [--replicas n [--timeout duration]] [--sync-interval duration]\n"
"               [--progress] [--whole] [-J]\n"
"               [--prepare [--txn-timeout duration] [--check cmd]]\n"
"               topic [message ...]\n"
"       mq-send [-qv] [-s spool] --commit txid | --abort txid\n";

static void usage(int) __attribute__((noreturn));

static void
usage(int status)
{
	fputs(usage_text, status ? stderr : stdout);
	exit(status);
}

static struct spool_header headers[MAX_HEADERS];
static size_t nheaders;
static struct spool_dedup *dedup;	/* --id: what an earlier try stored */

static int print_offsets;
static uint64_t *need;		/* --replicas: next offset a partition */

/*
 * stored - --print-offsets: one line a stored message, in input order;
 * --replicas: what the replicas must acknowledge
 */
static void
stored(void *arg, uint32_t part, uint64_t off)
{
	(void)arg;
	if (print_offsets)
		printf("%" PRIu32 " %" PRIu64 "\n", part, off);
	if (need != NULL && off + 1 > need[part])
		need[part] = off + 1;
}

/* add - hand one message to the writer, or die saying why not */
/* -v: what this send stored */
static unsigned long long nstored, bstored;

static void
add(struct spool *sp, struct spool_writer *w, const char *topic,
    struct spool_msg *m)
{
	int r;

	/* stored by an attempt at this send that was cut short */
	if (dedup != NULL && spool_dedup_stored(dedup, m))
		return;
	if ((r = spool_writer_add(w, m)) == 0) {
		nstored++;
		bstored += m->len;
		return;
	}
	if (r == -EMSGSIZE) {
		/* what came before stays stored; nothing after it is */
		(void)cli_close(w);
		cli_die(r, sp, "%s: %zu-byte message", topic, m->len);
	}
	if (r == -EBADMSG && m->key == NULL) {
		/* the same for a keyless message in a compacted topic */
		(void)cli_close(w);
		cli_fail(r, "%s: message refused: %s", topic, spool_errmsg(sp));
	}
	cli_die(r, sp, "%s", topic);
}

/*
 * parse_txid - TOPIC.HEX16 (what --prepare printed) into its topic and
 * txid; exit 64 if it is not one
 */
static char *
parse_txid(const char *s, uint64_t *txid)
{
	const char *dot = strrchr(s, '.');
	char *topic, *end;

	if (dot == NULL || dot == s || strlen(dot + 1) != 16 ||
	    strspn(dot + 1, "0123456789abcdef") != 16)
		cli_usage_die("%s: not a transaction ID (TOPIC.ID, as "
		    "--prepare prints it)", s);
	*txid = strtoull(dot + 1, &end, 16);
	if ((topic = strndup(s, dot - s)) == NULL)
		cli_die(-ENOMEM, NULL, "%s", s);
	cli_check_topic(topic);
	return topic;
}

/*
 * resolve_txn - --commit or --abort TXID: exit 0 when it is (or was
 * already) so, 66 when unknown, 65 when it went the other way
 */
static int
resolve_txn(const char *spool, const char *txstr, int commit)
{
	struct spool *sp;
	struct spool_topic *t;
	uint64_t txid;
	char *topic;
	int r;

	topic = parse_txid(txstr, &txid);
	cli_own(CLI_MEM, topic);
	sp = cli_open_spool(spool, 0);
	cli_check_primary(sp, cli_spool_path(spool));
	if ((r = spool_topic_open(sp, topic, &t)) == -ENOENT)
		cli_fail(r, "%s: No such transaction (no topic %s)", txstr,
		    topic);
	if (r < 0)
		cli_die(r, sp, "%s", topic);
	cli_own(CLI_TOPIC, t);
	if ((r = spool_txn_tick(t, spool_now_ms(), 0)) < 0)
		cli_die(r, sp, "%s: transactions", topic);
	r = commit ? spool_txn_commit(t, txid) : spool_txn_abort(t, txid);
	if (r == -ENOENT)
		cli_fail(r, "%s: No such transaction", txstr);
	if (r == -ECANCELED)
		cli_fail(r, "%s: the transaction was %s", txstr, commit ?
		    "aborted" : "committed");
	if (r < 0)
		cli_die(r, sp, "%s", txstr);
	if (cli_verbose)
		cli_warn("%s: %s", txstr, commit ? "committed" : "aborted");
	(void)cli_close(t);
	(void)cli_close(sp);
	(void)cli_close(topic);
	return EX_OK;
}

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

int
main(int argc, char *argv[])
{
	struct spool_writer_opts wo = { .sync = 1, .codec = -1, .partition = -1 };
	struct spool_config cfg;
	struct spool *sp;
	struct spool_topic *t;
	struct spool_writer *w;
	struct spool_input *in;
	struct spool_msg m, base;
	const char *spool = NULL, *topic, *key = NULL, *eq, *id = NULL;
	char *delim = "\n", *kdelim = NULL, *dbuf = NULL;
	size_t dlen = 1, kdlen = 0, len;
	int64_t interval = 1000, last, now, started = spool_now_ms(), due = 0;
	int64_t delay = -1;
	int ch, r, nocreate = 0, whole = 0, json = 0, unflushed = 0;
	int unsynced = 0, timeout, closed, idstate, seen, replicas = 0;
	int64_t rtimeout = 30000, txtimeout = 15 * 60 * 1000;
	const char *commit = NULL, *abort_ = NULL, *check = NULL;
	int prepare = 0, txset = 0;
	uint64_t txid = 0;
	int progress = PROGRESS_AUTO;
	const char *rtstr = "30s";
	unsigned count = 0;
	const void *rec;
	void *jstate;
	unsigned long long lineno = 0;

	closed = cli_fds();
	memset(&base, 0, sizeof(base));
	while ((ch = getopt_long(argc, argv, "0D:H:hJK:k:p:qs:vz:", longopts,
	    NULL)) != -1) {
		switch (ch) {
		case '0':
			delim = "";
			dlen = 1;
			break;
		case 'D':
			(void)cli_close(dbuf);
			if ((delim = dbuf = cli_unescape(optarg, &dlen)) == NULL)
				cli_usage_die("-D %s: invalid delimiter", optarg);
			cli_own(CLI_MEM, dbuf);
			if (dlen == 0)
				cli_usage_die("-D %s: invalid delimiter", optarg);
			break;
		case 'H':
			if ((eq = strchr(optarg, '=')) == NULL)
				cli_usage_die("-H %s: expected name=value",
				    optarg);
			if (nheaders == MAX_HEADERS)
				cli_usage_die("-H: at most %d headers",
				    MAX_HEADERS);
			headers[nheaders].name = optarg;
			headers[nheaders].namelen = eq - optarg;
			headers[nheaders].value = eq + 1;
			headers[nheaders].valuelen = strlen(eq + 1);
			nheaders++;
			break;
		case 'h':
			usage(EX_OK);
		case 'J':
			json = 1;
			break;
		case 'K':
			(void)cli_close(kdelim);
			if ((kdelim = cli_unescape(optarg, &kdlen)) == NULL)
				cli_usage_die("-K %s: invalid delimiter", optarg);
			cli_own(CLI_MEM, kdelim);
			if (kdlen == 0)
				cli_usage_die("-K %s: invalid delimiter", optarg);
			break;
		case 'k':
			key = optarg;
			break;
		case 'p':
			wo.partition = (int)cli_number(optarg, "partition", 0,
			    65535);
			break;
		case 'q':
			cli_quiet = 1;
			break;
		case 's':
			spool = optarg;
			break;
		case 'v':
			cli_verbose = 1;
			break;
		case 'z':
			spool_config_default(&cfg);
			if (spool_config_set(&cfg, "compression", optarg) < 0)
				cli_usage_die("-z %s: expected none, zlib or "
				    "zlib:0-9", optarg);
			wo.codec = cfg.codec;
			wo.level = cfg.level;
			break;
		case OPT_AT:
			if (cli_time(optarg, &due) < 0)
				cli_usage_die("--at %s: invalid time", optarg);
			delay = -1;
			break;
		case OPT_DELAY:
			if (cli_duration(optarg, &delay) < 0)
				cli_usage_die("--delay %s: invalid duration",
				    optarg);
			due = 0;
			break;
		case OPT_PREPARE:
			prepare = 1;
			break;
		case OPT_COMMIT:
			commit = optarg;
			break;
		case OPT_ABORT:
			abort_ = optarg;
			break;
		case OPT_TXN_TIMEOUT:
			if (cli_duration(optarg, &txtimeout) < 0)
				cli_usage_die("--txn-timeout %s: invalid "
				    "duration", optarg);
			txset = 1;
			break;
		case OPT_CHECK:
			check = optarg;
			if (*check == '\0' || strchr(check, '\n') != NULL)
				cli_usage_die("--check: a command on one line");
			break;
		case OPT_ID:
			id = optarg;
			if (*id == '\0' || strlen(id) > SPOOL_ID_MAX)
				cli_usage_die("--id: 1 to %d bytes", SPOOL_ID_MAX);
			break;
		case OPT_NO_CREATE:
			nocreate = 1;
			break;
		case OPT_NO_SYNC:
			wo.sync = 0;
			break;
		case OPT_PRINT_OFFSETS:
			wo.stored = stored;
			print_offsets = 1;
			break;
		case OPT_PROGRESS:
			progress = PROGRESS_ON;
			break;
		case OPT_REPLICAS:
			replicas = (int)cli_number(optarg, "--replicas", 0, 64);
			if (replicas > 0)
				wo.stored = stored;
			break;
		case OPT_TIMEOUT:
			rtstr = optarg;
			if (cli_duration(optarg, &rtimeout) < 0 ||
			    rtimeout > INT32_MAX)
				cli_usage_die("--timeout %s: invalid duration",
				    optarg);
			break;
		case OPT_SYNC_INTERVAL:
			if (cli_duration(optarg, &interval) < 0)
				cli_usage_die("--sync-interval %s: invalid "
				    "duration", optarg);
			break;
		case OPT_VERSION:
			cli_version();
		case OPT_WHOLE:
			whole = 1;
			break;
		default:
			usage(EX_USAGE);
		}
	}
	argc -= optind;
	argv += optind;
	if (commit != NULL || abort_ != NULL) {
		if (argc > 0 || (commit != NULL && abort_ != NULL) || prepare)
			cli_usage_die("--commit and --abort take a transaction "
			    "ID and nothing else");
		return resolve_txn(spool, commit != NULL ? commit : abort_,
		    commit != NULL);
	}
	if (!prepare && (txset || check != NULL))
		cli_usage_die("--txn-timeout and --check go with --prepare");
	if (prepare && (id != NULL || due != 0 || delay >= 0 ||
	    wo.stored != NULL))
		cli_usage_die("--prepare takes no --id, --delay, --at, "
		    "--print-offsets or --replicas");
	if (argc < 1)
		usage(EX_USAGE);
	topic = argv[0];
	cli_check_topic(topic);
	if (json && (whole || kdelim != NULL))
		cli_usage_die("-J reads JSON lines; it takes no --whole or -K");
	if ((due != 0 || delay >= 0) && wo.stored != NULL)
		cli_usage_die("--print-offsets: a scheduled message has no "
		    "offset yet");
	/* a time in the past means now */
	if (delay >= 0)
		due = spool_now_ms() + delay;
	if (due > spool_now_ms())
		wo.due = due;

	/* a write past ulimit -f is an error to report, not a death */
	signal(SIGXFSZ, SIG_IGN);
	sp = cli_open_spool(spool, (nocreate ? 0 : SPOOL_CREATE) |
	    (wo.sync ? 0 : SPOOL_NOSYNC));
	cli_check_primary(sp, cli_spool_path(spool));
	r = spool_topic_open(sp, topic, &t);
	if (r == -ENOENT && !nocreate) {
		r = spool_topic_create(sp, topic, NULL);
		if (r == 0 || r == -EEXIST)
			r = spool_topic_open(sp, topic, &t);
	}
	if (r == -ENOENT)
		cli_fail(r, "%s: No such topic", topic);
	if (r < 0)
		cli_die(r, sp, "%s", topic);
	cli_own(CLI_TOPIC, t);
	if (replicas > 0 && (need = calloc(spool_topic_config(t)->partitions,
	    sizeof(*need))) == NULL)
		cli_die(-ENOMEM, NULL, "%s", topic);
	cli_own(CLI_MEM, need);
	/* whoever touches the topic moves what is due, before its own */
	if ((r = spool_sched_move(t, spool_now_ms(), NULL)) < 0)
		cli_die(r, sp, "%s: scheduled", topic);
	/* ...and aborts transactions past their timeout */
	if ((r = spool_txn_tick(t, spool_now_ms(), 0)) < 0)
		cli_die(r, sp, "%s: transactions", topic);
	/* --prepare: the batches go aside, under a new transaction */
	if (prepare && (r = spool_txn_begin(t, &wo.txid)) < 0)
		cli_die(r, sp, "%s: --prepare", topic);
	txid = wo.txid;
	if ((r = spool_writer_open(t, &wo, &w)) < 0) {
		if (r == -ENOENT)
			cli_fail(r, "%s: No such partition %d (it has %" PRIu32
			    ", 0 to %" PRIu32 ")", topic, wo.partition,
			    spool_topic_config(t)->partitions,
			    spool_topic_config(t)->partitions - 1);
		cli_die(r, sp, "%s", topic);
	}
	cli_own(CLI_WRITER, w);
	if (id != NULL) {
		/* a send whose ID is known stores nothing, and succeeds */
		if ((r = spool_dedup_begin(t, id, strlen(id), &dedup,
		    &idstate)) < 0)
			cli_die(r, sp, "%s: --id", topic);
		cli_own(CLI_DEDUP, dedup);
		if (idstate == SPOOL_DEDUP_DAMAGED)
			cli_warn("%s; looking for --id %s in the stored "
			    "messages", spool_errmsg(sp), id);
		else if (idstate == SPOOL_DEDUP_RETRY && cli_verbose)
			cli_warn("%s: --id %s: an earlier attempt was cut "
			    "short; storing what it did not", topic, id);
		if (idstate == SPOOL_DEDUP_SEEN) {
			if (cli_verbose)
				cli_warn("%s: --id %s: already stored", topic,
				    id);
			(void)cli_close(w);
			(void)cli_close(dedup);
			(void)cli_close(t);
			(void)cli_close(sp);
			(void)cli_close(dbuf);
			(void)cli_close(kdelim);
			return EX_OK;
		}
		base.id = id;
		base.idlen = strlen(id);
	}
	if (key != NULL) {
		base.key = key;
		base.keylen = strlen(key);
	}
	base.headers = nheaders ? headers : NULL;
	base.nheaders = nheaders;

	if (argc > 1) {
		for (int i = 1; i < argc; i++) {
			m = base;
			m.payload = argv[i];
			m.len = strlen(argv[i]);
			if (kdelim != NULL)
				split_key(&m, argv[i], m.len, kdelim, kdlen);
			add(sp, w, topic, &m);
		}
		goto done;
	}

	if (closed & 1 << STDIN_FILENO)
		cli_fail(-ENOENT, "stdin: Bad file descriptor (closed)");
	if ((r = spool_input_open(sp, STDIN_FILENO, delim, whole ? 0 : dlen,
	    json ? SIZE_MAX / 4 : (size_t)spool_topic_config(t)->max_message_bytes,
	    &in)) < 0)
		cli_die(r, sp, "stdin");
	cli_own(CLI_INPUT, in);
	last = spool_now_ms();
	progress_start(progress, topic);
	for (;;) {
		/* idle stdin: append now; durable: sync within the interval */
		if (unflushed)
			timeout = 0;
		else if (unsynced && wo.sync) {
			now = interval - (spool_now_ms() - last);
			timeout = now < 0 ? 0 : now > INT32_MAX ? INT32_MAX :
			    (int)now;
		} else
			timeout = -1;
		r = spool_input_next(in, &rec, &len, timeout);
		if (r == -ETIMEDOUT) {
			progress_tick(nstored, bstored);
			if (unflushed) {
				if ((r = spool_writer_flush(w)) < 0)
					cli_die(r, sp, "%s", topic);
				unflushed = 0;
				unsynced = 1;
			} else {
				if ((r = spool_writer_sync(w)) < 0)
					cli_die(r, sp, "%s", topic);
				unsynced = 0;
				last = spool_now_ms();
			}
			continue;
		}
		if (r == -EMSGSIZE) {
			(void)cli_close(w);
			cli_die(r, sp, "%s: stdin", topic);
		}
		if (r < 0)
			cli_die(r, sp, "stdin");
		if (r == 0)
			break;
		m = base;
		if (json) {
			lineno++;
			if (len == 0)
				continue;
			if ((r = spool_json_decode(rec, len, &m, &jstate)) < 0) {
				/* what came before stays stored; nothing after */
				cli_own(CLI_JSON, jstate);
				if (r == -ENOMEM)
					cli_die(r, NULL, "%s: stdin", topic);
				if ((r = cli_close(w)) < 0)
					cli_die(r, sp, "%s", topic);
				cli_fail(-EBADMSG, "%s: stdin line %llu: %s",
				    topic, lineno, spool_json_why(jstate));
			}
			if (m.key == NULL && key != NULL) {
				m.key = key;
				m.keylen = strlen(key);
			}
			if (m.nheaders == 0) {
				m.headers = base.headers;
				m.nheaders = base.nheaders;
			}
			/* m points into jstate until the writer has it */
			cli_own(CLI_JSON, jstate);
			if (id != NULL) {
				/* the send's ID is what a retry looks for */
				m.id = base.id;
				m.idlen = base.idlen;
			}
			add(sp, w, topic, &m);
			(void)cli_close(jstate);
		} else {
			m.payload = rec;
			m.len = len;
			if (kdelim != NULL)
				split_key(&m, rec, len, kdelim, kdlen);
			add(sp, w, topic, &m);
		}
		unflushed = 1;
		/* the clock is read every 1024 messages, not every one */
		if ((++count & 1023) == 0)
			progress_tick(nstored, bstored);
		if (wo.sync && (count & 1023) == 0 &&
		    spool_now_ms() - last >= interval) {
			if ((r = spool_writer_sync(w)) < 0)
				cli_die(r, sp, "%s", topic);
			unflushed = unsynced = 0;
			last = spool_now_ms();
		}
	}
	(void)cli_close(in);
	progress_end();
done:
	if ((r = cli_close(w)) < 0)
		cli_die(r, sp, "%s", topic);
	/* the ID is known only once its messages are stored */
	if (dedup != NULL)
		cli_disown(dedup);
	/* everything is stored: now the transaction may be committed */
	if (prepare) {
		if ((r = spool_txn_prepare(t, txid, txtimeout, check)) < 0)
			cli_die(r, sp, "%s: --prepare", topic);
		printf("%s.%016" PRIx64 "\n", topic, txid);
	}
	if (id != NULL && (r = spool_dedup_end(dedup, 1)) < 0)
		cli_die(r, sp, "%s: --id", topic);
	/* followers wait for the next due time: it may be ours */
	if (wo.due > 0)
		spool_sched_kick(t);
	if (fflush(stdout) == EOF)
		cli_die(-errno, NULL, "stdout");
	if (cli_verbose)
		cli_warn("%s: stored %llu messages (%llu bytes of payload) in "
		    "%.3f s%s", topic, nstored, bstored,
		    (spool_now_ms() - started) / 1000.0, wo.sync ? ", synced" :
		    "");
	if (replicas > 0 && (r = spool_replica_wait(sp, topic, need,
	    spool_topic_config(t)->partitions, replicas, (int)rtimeout,
	    &seen)) < 0) {
		if (r == -ETIMEDOUT)
			cli_fail(r, "%s: %d of %d replicas acknowledged the "
			    "messages within %s; they stay stored here", topic,
			    seen, replicas, rtstr);
		cli_die(r, sp, "%s: --replicas", topic);
	}
	(void)cli_close(need);
	(void)cli_close(t);
	(void)cli_close(sp);
	(void)cli_close(dbuf);
	(void)cli_close(kdelim);
	return EX_OK;
}
