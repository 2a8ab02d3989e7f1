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

enum { OPT_AT = 256, OPT_DELAY, OPT_ID, OPT_NO_CREATE, OPT_NO_SYNC, OPT_PRINT_OFFSETS,
	OPT_SYNC_INTERVAL, OPT_WHOLE, OPT_VERSION };

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
	{ "at",			required_argument,	NULL, OPT_AT },
	{ "delay",		required_argument,	NULL, OPT_DELAY },
	{ "id",			required_argument,	NULL, OPT_ID },
	{ "no-create",		no_argument,		NULL, OPT_NO_CREATE },
	{ "no-sync",		no_argument,		NULL, OPT_NO_SYNC },
	{ "print-offsets",	no_argument,		NULL, OPT_PRINT_OFFSETS },
	{ "sync-interval",	required_argument,	NULL, OPT_SYNC_INTERVAL },
	{ "version",		no_argument,		NULL, OPT_VERSION },
	{ "whole",		no_argument,		NULL, OPT_WHOLE },
	{ NULL, 0, NULL, 0 }
};

static const char usage_text[] =
"usage: mq-send [-0qv] [-D delim] [-H name=value] [-K delim] [-k key] [-p partition]\n"
"               [-s spool] [-z codec[:level]] [--at time | --delay duration]\n"
"               [--id id] [--no-create] [--no-sync]\n"
"               [--print-offsets] [--sync-interval duration] [--whole] [-J]\n"
"               topic [message ...]\n";

static void usage(int) __attribute__((noreturn));

static void
usage(int status)
{
	fputs(usage_text, status ? stderr : stdout);
	exit(status);
}

static struct spool_header headers[MAX_HEADERS];
static size_t nheaders;

/* stored - --print-offsets: one line a stored message, in input order */
static void
stored(void *arg, uint32_t part, uint64_t off)
{
	(void)arg;
	printf("%" PRIu32 " %" PRIu64 "\n", part, off);
}

/* add - hand one message to the writer, or die saying why not */
static void
add(struct spool *sp, struct spool_writer *w, const char *topic,
    struct spool_msg *m)
{
	int r;

	if ((r = spool_writer_add(w, m)) == 0)
		return;
	if (r == -EMSGSIZE) {
		/* what came before stays stored; nothing after it is */
		(void)cli_close(w);
		cli_die(r, sp, "%s: %zu-byte message", topic, m->len);
	}
	cli_die(r, sp, "%s", topic);
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
	int64_t interval = 1000, last, now, due = 0, delay = -1;
	int ch, r, nocreate = 0, whole = 0, json = 0, unflushed = 0;
	int unsynced = 0, timeout, closed, idlock = -1, seen;
	unsigned count = 0;
	const void *rec;
	void *jstate;

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
	/* whoever touches the topic moves what is due, before its own */
	if ((r = spool_sched_move(t, spool_now_ms(), NULL)) < 0)
		cli_die(r, sp, "%s: scheduled", topic);
	if ((r = spool_writer_open(t, &wo, &w)) < 0) {
		if (r == -ENOENT)
			cli_fail(r, "%s: No such partition", topic);
		cli_die(r, sp, "%s", topic);
	}
	cli_own(CLI_WRITER, w);
	if (id != NULL) {
		/* a send whose ID is known stores nothing, and succeeds */
		if ((idlock = spool_dedup_begin(t, id, strlen(id), &seen)) < 0)
			cli_die(idlock, sp, "%s: --id", topic);
		if (seen) {
			if (cli_verbose)
				cli_warn("%s: --id %s: already stored", topic,
				    id);
			(void)cli_close(w);
			close(idlock);
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
			if (len == 0)
				continue;
			if (spool_json_decode(rec, len, &m, &jstate) < 0) {
				spool_json_free(jstate);
				(void)cli_close(w);
				cli_die(-EBADMSG, NULL, "%s: stdin: not a "
				    "message in JSON", topic);
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
		if (wo.sync && (++count & 1023) == 0 &&
		    spool_now_ms() - last >= interval) {
			if ((r = spool_writer_sync(w)) < 0)
				cli_die(r, sp, "%s", topic);
			unflushed = unsynced = 0;
			last = spool_now_ms();
		}
	}
	(void)cli_close(in);
done:
	if ((r = cli_close(w)) < 0)
		cli_die(r, sp, "%s", topic);
	/* the ID is known only once its messages are stored */
	if (id != NULL && (r = spool_dedup_end(t, id, strlen(id), idlock,
	    wo.sync)) < 0)
		cli_die(r, sp, "%s: --id", topic);
	/* followers wait for the next due time: it may be ours */
	if (wo.due > 0)
		spool_sched_kick(t);
	if (fflush(stdout) == EOF)
		cli_die(-errno, NULL, "stdout");
	(void)cli_close(t);
	(void)cli_close(sp);
	(void)cli_close(dbuf);
	(void)cli_close(kdelim);
	return EX_OK;
}
