/*
 * mq-topic - create, delete, list, describe, configure and verify topics
 *
 * Global options, a command, its options: each command is a few lines
 * over libspool.  Only create and config write; list, describe and
 * verify without --repair never create or change anything.
 */

#include <sys/stat.h>
#include <sys/wait.h>

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <time.h>

#include "cli.h"

enum { OPT_CONFIG = 256, OPT_FORCE, OPT_IF_NOT_EXISTS, OPT_JSON, OPT_PROMETHEUS, OPT_REPAIR, OPT_TO,
	OPT_VERSION };

static const char usage_text[] =
"usage: mq-topic [-qv] [-s spool] create [-P partitions] [--config key=value]...\n"
"                [--if-not-exists] topic\n"
"       mq-topic [-qv] [-s spool] delete [--force] topic\n"
"       mq-topic [-qv] [-s spool] list [-l] [--json]\n"
"       mq-topic [-qv] [-s spool] describe [--json] topic\n"
"       mq-topic [-qv] [-s spool] config [--json] topic [key=value ...]\n"
"       mq-topic [-qv] [-s spool] verify [--repair] [topic]\n"
"       mq-topic [-qv] [-s spool] groups [--json] topic\n"
"       mq-topic [-qv] [-s spool] reset group topic --to position\n"
"       mq-topic [-qv] [-s spool] delete-group group topic\n"
"       mq-topic [-qv] [-s spool] gc [topic]\n"
"       mq-topic [-qv] [-s spool] cancel topic id\n"
"       mq-topic [-qv] [-s spool] abort topic txid\n"
"       mq-topic [-qv] [-s spool] dump [-p partition] [--json] topic\n"
"       mq-topic [-qv] [-s spool] stats [--json | --prometheus] [-o file]\n";

static void usage(int) __attribute__((noreturn));

static void
usage(int status)
{
	fputs(usage_text, status ? stderr : stdout);
	exit(status);
}

static const char *spool_opt;

static void	describe_compaction(struct spool *, struct spool_topic *,
		    const char *);
static void	describe_groups(struct spool *, struct spool_topic *);
static void	describe_json(struct spool *, struct spool_topic *, const char *);
static void	replicas(struct spool *, struct spool_topic *, const char *,
		    int mode);

/* open_topic - open an existing topic or exit 66 */
static struct spool_topic *
open_topic(struct spool *sp, const char *name)
{
	struct spool_topic *t;
	int r;

	cli_check_topic(name);
	if ((r = spool_topic_open(sp, name, &t)) < 0) {
		if (r == -ENOENT)
			cli_fail(r, "%s: No such topic", name);
		cli_die(r, sp, "%s", name);
	}
	cli_own(CLI_TOPIC, t);
	return t;
}

/*
 * json_opt - the options of a command that takes only --json: 1 if it
 * was given; optind is then at the first operand
 */
static int
json_opt(int argc, char *argv[])
{
	static const struct option lo[] = {
		{ "json", no_argument, NULL, OPT_JSON },
		{ NULL, 0, NULL, 0 }
	};
	int ch, json = 0;

	while ((ch = getopt_long(argc, argv, "", lo, NULL)) != -1) {
		if (ch != OPT_JSON)
			usage(EX_USAGE);
		json = 1;
	}
	return json;
}

/*
 * json_config - a config as one JSON object: numbers as numbers, the
 * rest (compression, cleanup.policy) as strings; keys as in key=value
 */
static void
json_config(struct spool *sp, const struct spool_config *cfg)
{
	char text[4096], *line, *eq, *end;
	int r, first = 1;

	if ((r = spool_config_format(cfg, text, sizeof(text))) < 0)
		cli_die(r, sp, "config");
	putchar('{');
	for (line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
		if ((eq = strchr(line, '=')) == NULL)
			continue;
		*eq++ = '\0';
		(void)strtod(eq, &end);
		/* values hold no quote or backslash: none is valid */
		printf(*end == '\0' && end != eq ? "%s\"%s\":%s" :
		    "%s\"%s\":\"%s\"", first ? "" : ",", line, eq);
		first = 0;
	}
	putchar('}');
}

/* config_kv - apply one --config key=value to cfg, or exit 64 */
static void
config_kv(struct spool_config *cfg, char *kv)
{
	char *eq;
	int r;

	if ((eq = strchr(kv, '=')) == NULL)
		cli_usage_die("--config %s: expected key=value", kv);
	*eq = '\0';
	r = spool_config_set(cfg, kv, eq + 1);
	*eq = '=';
	if (r == -ENOENT)
		cli_usage_die("--config %s: unknown key", kv);
	if (r < 0)
		cli_usage_die("--config %s: invalid value", kv);
}

#define MAX_CONFIG	64	/* --config options to one create */

/*
 * same_config - --if-not-exists: whether the existing topic has what
 * this create asks for (the partitions and keys given; the rest is
 * free); if not, diff says how they differ ("partitions=4, not 2")
 */
static int
same_config(struct spool *sp, const char *name, uint32_t parts,
    char **kv, size_t nkv, char *diff, size_t difflen)
{
	struct spool_topic *t = open_topic(sp, name);
	struct spool_config want = *spool_topic_config(t);
	char wbuf[1024], hbuf[1024], *w, *h, *wn, *hn;
	size_t i, len = 0;

	if (parts > 0)
		want.partitions = parts;
	for (i = 0; i < nkv; i++)
		config_kv(&want, kv[i]);
	if (spool_config_format(&want, wbuf, sizeof(wbuf)) < 0 ||
	    spool_config_format(spool_topic_config(t), hbuf, sizeof(hbuf)) < 0)
		cli_die(-ENOMEM, sp, "%s", name);
	(void)cli_close(t);
	*diff = '\0';
	/* both are the same keys, sorted, one "key=value\n" a line */
	for (w = wbuf, h = hbuf; *w != '\0' && *h != '\0'; w = wn, h = hn) {
		wn = strchr(w, '\n');
		hn = strchr(h, '\n');
		if (wn == NULL || hn == NULL)
			break;
		*wn++ = '\0';
		*hn++ = '\0';
		if (strcmp(w, h) != 0 && len < difflen)
			len += snprintf(diff + len, difflen - len, "%s%s, not %s",
			    len ? "; " : "", h, strchr(w, '=') + 1);
	}
	return *diff == '\0';
}

/*
 * cmd_create - create [-P partitions] [--config key=value]...
 * [--if-not-exists] topic
 */
static int
cmd_create(int argc, char *argv[])
{
	static const struct option lo[] = {
		{ "config",		required_argument, NULL, OPT_CONFIG },
		{ "if-not-exists",	no_argument,	   NULL, OPT_IF_NOT_EXISTS },
		{ "partitions",		required_argument, NULL, 'P' },
		{ NULL, 0, NULL, 0 }
	};
	struct spool_config cfg;
	struct spool *sp;
	char *kv[MAX_CONFIG], diff[1024];
	size_t nkv = 0;
	uint32_t parts = 0;
	int ch, r, ifne = 0;

	spool_config_default(&cfg);
	while ((ch = getopt_long(argc, argv, "P:", lo, NULL)) != -1) {
		switch (ch) {
		case 'P':
			parts = (uint32_t)cli_number(optarg,
			    "partition count", 1, 4096);
			cfg.partitions = parts;
			break;
		case OPT_CONFIG:
			if (nkv == MAX_CONFIG)
				cli_usage_die("--config: at most %d",
				    MAX_CONFIG);
			config_kv(&cfg, optarg);
			kv[nkv++] = optarg;
			break;
		case OPT_IF_NOT_EXISTS:
			ifne = 1;
			break;
		default:
			usage(EX_USAGE);
		}
	}
	if (argc - optind != 1)
		usage(EX_USAGE);
	cli_check_topic(argv[optind]);
	sp = cli_open_spool(spool_opt, SPOOL_CREATE);
	cli_check_primary(sp, cli_spool_path(spool_opt));
	r = spool_topic_create(sp, argv[optind], &cfg);
	if (r == -EEXIST && ifne) {
		if (!same_config(sp, argv[optind], parts, kv, nkv, diff,
		    sizeof(diff)))
			cli_fail(r, "%s: exists with other settings: %s",
			    argv[optind], diff);
		r = 0;
	}
	if (r < 0) {
		if (r == -EEXIST)
			cli_fail(r, "%s: Topic exists", argv[optind]);
		cli_die(r, sp, "%s", argv[optind]);
	}
	(void)cli_close(sp);
	return EX_OK;
}

/*
 * live_group - the first group of a topic with a live member, or NULL;
 * the name is owned (cli_close)
 */
static char *
live_group(struct spool *sp, struct spool_topic *t)
{
	char **names, *g = NULL;
	size_t n, i;
	int r;

	if ((r = spool_group_list(t, &names, &n)) < 0)
		cli_die(r, sp, "groups");
	cli_own_names(names, n);
	for (i = 0; i < n && g == NULL; i++) {
		if ((r = spool_group_live(t, names[i])) < 0)
			cli_die(r, sp, "group %s", names[i]);
		if (r > 0 && (g = strdup(names[i])) == NULL)
			cli_die(-ENOMEM, sp, "groups");
	}
	(void)cli_close(names);
	cli_own(CLI_MEM, g);
	return g;
}

/* cmd_delete - delete [--force] topic */
static int
cmd_delete(int argc, char *argv[])
{
	static const struct option lo[] = {
		{ "force",	no_argument, NULL, OPT_FORCE },
		{ NULL, 0, NULL, 0 }
	};
	struct spool *sp;
	struct spool_topic *t;
	char *g;
	int ch, r, force = 0;

	while ((ch = getopt_long(argc, argv, "", lo, NULL)) != -1) {
		if (ch != OPT_FORCE)
			usage(EX_USAGE);
		force = 1;
	}
	if (argc - optind != 1)
		usage(EX_USAGE);
	cli_check_topic(argv[optind]);
	sp = cli_open_spool(spool_opt, 0);
	cli_check_primary(sp, cli_spool_path(spool_opt));
	if (!force) {
		/* consumers at work are not cut off by surprise */
		t = open_topic(sp, argv[optind]);
		if ((g = live_group(sp, t)) != NULL)
			cli_fail(-EAGAIN, "%s: group %s has a live member; "
			    "stop it, or delete with --force", argv[optind], g);
		(void)cli_close(t);
	}
	if ((r = spool_topic_delete(sp, argv[optind])) < 0) {
		if (r == -ENOENT)
			cli_fail(r, "%s: No such topic", argv[optind]);
		cli_die(r, sp, "%s", argv[optind]);
	}
	(void)cli_close(sp);
	return EX_OK;
}

/* totals - messages and bytes of a whole topic */
static void
totals(struct spool *sp, struct spool_topic *t, uint64_t *msgs,
    uint64_t *bytes)
{
	struct spool_part_info pi;
	uint32_t i;
	int r;

	*msgs = *bytes = 0;
	for (i = 0; i < spool_topic_config(t)->partitions; i++) {
		if ((r = spool_topic_info(t, i, &pi)) < 0)
			cli_die(r, sp, "partition %" PRIu32, i);
		*msgs += pi.next - pi.first - pi.missing;
		*bytes += pi.bytes;
	}
}

/* cmd_list - list [-l] */
static int
cmd_list(int argc, char *argv[])
{
	static const struct option lo[] = {
		{ "json", no_argument, NULL, OPT_JSON },
		{ "long", no_argument, NULL, 'l' },
		{ NULL, 0, NULL, 0 }
	};
	struct spool *sp;
	struct spool_topic *t;
	uint64_t msgs, bytes;
	char **names;
	size_t n, i;
	int ch, r, lflag = 0, json = 0;

	while ((ch = getopt_long(argc, argv, "l", lo, NULL)) != -1) {
		if (ch == 'l')
			lflag = 1;
		else if (ch == OPT_JSON)
			json = lflag = 1;	/* the table's columns */
		else
			usage(EX_USAGE);
	}
	if (argc != optind)
		usage(EX_USAGE);
	sp = cli_open_spool(spool_opt, 0);
	if ((r = spool_topic_list(sp, &names, &n)) < 0)
		cli_die(r, sp, "topics");
	cli_own_names(names, n);
	if (json)
		putchar('[');
	else if (lflag)
		printf("%-24s %10s %12s %14s\n", "TOPIC", "PARTITIONS",
		    "MESSAGES", "BYTES");
	for (i = 0; i < n; i++) {
		if (!lflag)
			printf("%s\n", names[i]);
		else if (spool_topic_open(sp, names[i], &t) == 0) {
			cli_own(CLI_TOPIC, t);
			totals(sp, t, &msgs, &bytes);
			printf(json ? "%s{\"topic\":\"%s\",\"partitions\":%"
			    PRIu32 ",\"messages\":%" PRIu64 ",\"bytes\":%"
			    PRIu64 "}" : "%s%-24s %10" PRIu32 " %12" PRIu64
			    " %14" PRIu64 "\n", json && i ? "," : "", names[i],
			    spool_topic_config(t)->partitions, msgs, bytes);
			(void)cli_close(t);
		}
	}
	if (json)
		printf("]\n");
	(void)cli_close(names);
	(void)cli_close(sp);
	return EX_OK;
}

/* iso_time - ms since the epoch as ISO 8601 UTC, in a static buffer */
static const char *
iso_time(int64_t ms)
{
	static char buf[64];
	struct tm tm;
	time_t s = (time_t)(ms / 1000);

	if (gmtime_r(&s, &tm) == NULL)
		return "-";
	snprintf(buf, sizeof(buf), "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ",
	    tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
	    tm.tm_min, tm.tm_sec, (int)(ms % 1000));
	return buf;
}

/* cmd_cancel - cancel topic id: drop the scheduled messages sent with id */
static int
cmd_cancel(int argc, char *argv[])
{
	struct spool *sp;
	struct spool_topic *t;
	int r;

	if (argc != 3)
		usage(EX_USAGE);
	if (*argv[2] == '\0' || strlen(argv[2]) > SPOOL_ID_MAX)
		cli_usage_die("cancel: an ID is 1 to %d bytes", SPOOL_ID_MAX);
	sp = cli_open_spool(spool_opt, 0);
	cli_check_primary(sp, cli_spool_path(spool_opt));
	t = open_topic(sp, argv[1]);
	/* what is due now is no longer scheduled: it goes to its partition */
	if ((r = spool_sched_move(t, spool_now_ms(), NULL)) < 0 ||
	    (r = spool_sched_cancel(t, argv[2], strlen(argv[2]))) < 0)
		cli_die(r, sp, "%s: scheduled", argv[1]);
	if (r == 0)
		cli_fail(-ENOENT, "%s: %s: No such scheduled message",
		    argv[1], argv[2]);
	if (cli_verbose)
		cli_warn("%s: %s: %d scheduled messages cancelled", argv[1],
		    argv[2], r);
	(void)cli_close(t);
	(void)cli_close(sp);
	return EX_OK;
}

/* json_puts - s as a JSON string (a --check command may need escapes) */
static void
json_puts(const char *s)
{
	putchar('"');
	for (; *s != '\0'; s++) {
		if (*s == '"' || *s == '\\')
			printf("\\%c", *s);
		else if ((unsigned char)*s < 0x20)
			printf("\\u%04x", (unsigned char)*s);
		else
			putchar(*s);
	}
	putchar('"');
}

/* open_txns - how many transactions of a topic are open (stats) */
static size_t
open_txns(struct spool *sp, struct spool_topic *t, const char *name)
{
	struct spool_txn_info *v;
	size_t n;
	int r;

	if ((r = spool_txn_list(t, &v, &n)) < 0)
		cli_die(r, sp, "%s: transactions", name);
	spool_txn_list_free(v, n);
	return n;
}

/*
 * describe_txns - the open transactions of a topic, oldest first: a
 * table (json 0) or a JSON array
 */
static void
describe_txns(struct spool *sp, struct spool_topic *t, const char *name,
    int json)
{
	struct spool_txn_info *v;
	int64_t now = spool_now_ms();
	size_t n, i;
	int r;

	if ((r = spool_txn_list(t, &v, &n)) < 0)
		cli_die(r, sp, "%s: transactions", name);
	if (json)
		putchar('[');
	else {
		printf("transactions %zu\n", n);
		if (n > 0)
			printf("%-40s %-10s %10s %10s %10s  %s\n", "TXID",
			    "STATE", "MESSAGES", "AGE", "EXPIRES", "CHECK");
	}
	for (i = 0; i < n; i++) {
		if (json) {
			printf("%s{\"txid\":\"%s.%016" PRIx64 "\",\"state\":"
			    "\"%s\",\"messages\":%" PRIu64 ",\"created\":%"
			    PRId64 ",\"age_ms\":%" PRId64 ",\"deadline\":%"
			    PRId64 ",\"check\":", i ? "," : "", name, v[i].txid,
			    v[i].committing ? "committing" : "prepared",
			    v[i].messages, v[i].created, now - v[i].created,
			    v[i].deadline);
			if (v[i].check != NULL)
				json_puts(v[i].check);
			else
				printf("null");
			putchar('}');
		} else
			printf("%s.%016" PRIx64 "%*s %-10s %10" PRIu64
			    " %9.1fs %9.1fs  %s\n", name, v[i].txid,
			    (int)(strlen(name) + 17 < 40 ? 40 - strlen(name) -
			    17 : 0), "", v[i].committing ? "committing" :
			    "prepared", v[i].messages, (now - v[i].created) /
			    1000.0, (v[i].deadline - now) / 1000.0,
			    v[i].check ? v[i].check : "-");
	}
	if (json)
		putchar(']');
	spool_txn_list_free(v, n);
}

/*
 * cmd_abort - abort topic txid: discard an open transaction (txid as
 * mq-send --prepare printed it, or its 16 hex digits alone)
 */
static int
cmd_abort(int argc, char *argv[])
{
	struct spool *sp;
	struct spool_topic *t;
	const char *hex, *dot;
	uint64_t txid;
	int r;

	if (argc != 3)
		usage(EX_USAGE);
	hex = argv[2];
	if ((dot = strrchr(hex, '.')) != NULL) {
		if ((size_t)(dot - hex) != strlen(argv[1]) ||
		    strncmp(hex, argv[1], dot - hex) != 0)
			cli_usage_die("abort: %s is not a transaction of %s",
			    argv[2], argv[1]);
		hex = dot + 1;
	}
	if (strlen(hex) != 16 || strspn(hex, "0123456789abcdef") != 16)
		cli_usage_die("abort: %s: not a transaction ID", argv[2]);
	txid = strtoull(hex, NULL, 16);
	sp = cli_open_spool(spool_opt, 0);
	cli_check_primary(sp, cli_spool_path(spool_opt));
	t = open_topic(sp, argv[1]);
	r = spool_txn_abort(t, txid);
	if (r == -ENOENT)
		cli_fail(r, "%s: %s: No such transaction", argv[1], argv[2]);
	if (r == -ECANCELED)
		cli_fail(r, "%s: %s: the transaction was committed", argv[1],
		    argv[2]);
	if (r < 0)
		cli_die(r, sp, "%s: %s", argv[1], argv[2]);
	(void)cli_close(t);
	(void)cli_close(sp);
	return EX_OK;
}

static const char *const dump_states[] = {
	"ok", "torn", "badhdr", "badbody", "newer"
};

/* dump_type - a batch type's name, or its number */
static const char *
dump_type(uint16_t type)
{
	static char num[8];

	switch (type) {		/* mq-spool(5) */
	case 0:
		return "data";
	case 1:
		return "end";
	case 2:
		return "txn";
	}
	snprintf(num, sizeof(num), "%u", (unsigned)type);
	return num;
}

/* dump_codec - a codec's name, or its number */
static const char *
dump_codec(uint8_t codec)
{
	static char num[8];

	if (codec == 0)		/* mq-spool(5) */
		return "none";
	if (codec == 1)
		return "zlib";
	snprintf(num, sizeof(num), "%u", (unsigned)codec);
	return num;
}

/* dump_one - one batch: a table row, or a JSON object (arg non-NULL) */
static int
dump_one(void *arg, const struct spool_dump_batch *b)
{
	if (arg == NULL) {
		printf("%4" PRIu32 " %20" PRIu64 " %10" PRIu64 " %14" PRIu64
		    " %7" PRIu32 " %-4s %-4s 0x%02x %5" PRIu32 " %6" PRIu64
		    " %9" PRIu32 " %9" PRIu32 " 0x%08" PRIx32 " 0x%08" PRIx32
		    " %13" PRId64 " %13" PRId64 " %s\n", b->partition,
		    b->segment, b->pos, b->base_offset, b->count,
		    dump_type(b->type), dump_codec(b->codec), b->flags,
		    b->epoch, b->txid, b->body_len, b->raw_len, b->hdr_crc,
		    b->body_crc, b->base_ts, b->max_ts, dump_states[b->state]);
		return ferror(stdout) ? -EIO : 0;
	}
	printf("{\"topic\":\"%s\",\"partition\":%" PRIu32 ",\"segment\":%"
	    PRIu64 ",\"pos\":%" PRIu64 ",\"offset\":%" PRIu64 ",\"count\":%"
	    PRIu32 ",\"type\":\"%s\",\"codec\":\"%s\",\"flags\":%u,"
	    "\"epoch\":%" PRIu32 ",\"txid\":%" PRIu64 ",\"body_len\":%" PRIu32
	    ",\"raw_len\":%" PRIu32 ",\"hdr_crc\":%" PRIu32 ",\"body_crc\":%"
	    PRIu32 ",\"base_ts\":%" PRId64 ",\"max_ts\":%" PRId64
	    ",\"state\":\"%s\"}\n", (const char *)arg, b->partition,
	    b->segment, b->pos, b->base_offset, b->count, dump_type(b->type),
	    dump_codec(b->codec), (unsigned)b->flags, b->epoch, b->txid,
	    b->body_len, b->raw_len, b->hdr_crc, b->body_crc, b->base_ts,
	    b->max_ts, dump_states[b->state]);
	return ferror(stdout) ? -EIO : 0;
}

/*
 * cmd_dump - dump [-p partition] [--json] topic: every batch header as
 * on disk, for debugging
 */
static int
cmd_dump(int argc, char *argv[])
{
	static const struct option lo[] = {
		{ "json", no_argument, NULL, OPT_JSON },
		{ "partition", required_argument, NULL, 'p' },
		{ NULL, 0, NULL, 0 }
	};
	struct spool *sp;
	struct spool_topic *t;
	uint32_t i, np;
	long long part = -1;
	int ch, r, json = 0;

	while ((ch = getopt_long(argc, argv, "p:", lo, NULL)) != -1) {
		switch (ch) {
		case 'p':
			part = cli_number(optarg, "partition", 0, 65535);
			break;
		case OPT_JSON:
			json = 1;
			break;
		default:
			usage(EX_USAGE);
		}
	}
	if (argc - optind != 1)
		usage(EX_USAGE);
	argv += optind - 1;
	sp = cli_open_spool(spool_opt, 0);
	t = open_topic(sp, argv[1]);
	np = spool_topic_config(t)->partitions;
	if (part >= (long long)np)
		cli_fail(-ENOENT, "%s: No such partition %lld (it has %" PRIu32
		    ", 0 to %" PRIu32 ")", argv[1], part, np, np - 1);
	if (!json)
		printf("%4s %20s %10s %14s %7s %-4s %-4s %4s %5s %6s %9s %9s "
		    "%10s %10s %13s %13s %s\n", "PART", "SEGMENT", "POS",
		    "OFFSET", "COUNT", "TYPE", "CODEC", "FLAGS", "EPOCH", "TXID",
		    "BODY", "RAW", "HDR_CRC", "BODY_CRC", "BASE_TS", "MAX_TS",
		    "STATE");
	for (i = part < 0 ? 0 : (uint32_t)part; i < np; i++) {
		if ((r = spool_dump(t, i, dump_one, json ? argv[1] : NULL)) < 0)
			cli_die(r, sp, "%s: partition %" PRIu32, argv[1], i);
		if (part >= 0)
			break;
	}
	if (fflush(stdout) == EOF)
		cli_die(-errno, NULL, "stdout");
	(void)cli_close(t);
	(void)cli_close(sp);
	return EX_OK;
}

/* cmd_describe - describe topic */
static int
cmd_describe(int argc, char *argv[])
{
	struct spool_part_info pi;
	struct spool *sp;
	struct spool_topic *t;
	char text[4096], *line;
	uint64_t nsched;
	int64_t due;
	uint32_t i, np;
	int r, json;

	json = json_opt(argc, argv);
	if (argc - optind != 1)
		usage(EX_USAGE);
	argv += optind - 1;
	sp = cli_open_spool(spool_opt, 0);
	t = open_topic(sp, argv[1]);
	np = spool_topic_config(t)->partitions;
	if (json) {
		describe_json(sp, t, argv[1]);
		(void)cli_close(t);
		(void)cli_close(sp);
		return EX_OK;
	}
	printf("topic %s\npartitions %" PRIu32 "\n", argv[1], np);
	/* the rest of the config, partitions= aside (said above) */
	if ((r = spool_config_format(spool_topic_config(t), text,
	    sizeof(text))) < 0)
		cli_die(r, sp, "%s", argv[1]);
	for (line = strtok(text, "\n"); line; line = strtok(NULL, "\n"))
		if (strncmp(line, "partitions=", 11) != 0)
			printf("%s\n", line);
	if ((r = spool_sched_info(t, &nsched, &due)) < 0)
		cli_die(r, sp, "%s: scheduled", argv[1]);
	printf("scheduled %" PRIu64 "\n", nsched);
	if (due >= 0)
		printf("next.due %s %" PRId64 "\n", iso_time(due), due);
	describe_txns(sp, t, argv[1], 0);
	printf("%9s %14s %14s %14s %14s %8s\n", "PARTITION", "FIRST", "NEXT",
	    "MESSAGES", "BYTES", "SEGMENTS");
	for (i = 0; i < np; i++) {
		if ((r = spool_topic_info(t, i, &pi)) < 0)
			cli_die(r, sp, "%s: partition %" PRIu32, argv[1], i);
		printf("%9" PRIu32 " %14" PRIu64 " %14" PRIu64 " %14" PRIu64
		    " %14" PRIu64 " %8" PRIu32 "\n", i, pi.first, pi.next,
		    pi.next - pi.first - pi.missing, pi.bytes, pi.segments);
	}
	if (spool_topic_config(t)->compact != SPOOL_CLEANUP_DELETE)
		describe_compaction(sp, t, argv[1]);
	describe_groups(sp, t);
	replicas(sp, t, argv[1], 0);
	(void)cli_close(t);
	(void)cli_close(sp);
	return EX_OK;
}

#ifndef JSTR
#ifndef JSTR
#define JSTR "\"%s\""
#endif
#endif
#define MAX_REPLICAS	64

/*
 * replicas - each replica's acknowledged offset and lag a partition
 * (mq-replicate): a table (mode 0), Prometheus lines or a JSON array
 */
static void
replicas(struct spool *sp, struct spool_topic *t, const char *name, int mode)
{
	static char ids[MAX_REPLICAS][SPOOL_ID_LEN + 1];
	uint64_t next[MAX_REPLICAS], lag;
	struct spool_part_info pi;
	uint32_t p;
	int n, k, any = 0;

	for (p = 0; p < spool_topic_config(t)->partitions; p++) {
		if ((n = spool_replica_acked(sp, name, p, ids, next,
		    MAX_REPLICAS)) < 0)
			cli_die(n, sp, "replicas");
		if (n > 0 && spool_topic_info(t, p, &pi) < 0)
			continue;
		for (k = 0; k < n; k++) {
			lag = next[k] >= pi.next ? 0 : pi.next - next[k];
			if (mode == 0 && !any)
				printf("%-32s %9s %14s %14s\n", "REPLICA",
				    "PARTITION", "ACKED", "LAG");
			if (mode == 0)
				printf("%-32s %9" PRIu32 " %14" PRIu64 " %14"
				    PRIu64 "\n", ids[k], p, next[k], lag);
			else if (mode == OPT_PROMETHEUS)
				printf("mq_replica_lag{topic=" JSTR ",replica="
				    JSTR ",partition=\"%" PRIu32 "\"} %" PRIu64
				    "\n", name, ids[k], p, lag);
			else
				printf("%s{\"replica\":" JSTR ",\"partition\":%"
				    PRIu32 ",\"acked\":%" PRIu64 ",\"lag\":%"
				    PRIu64 "}", any ? "," : "", ids[k], p,
				    next[k], lag);
			any = 1;
		}
	}
}

/*
 * group_lag - a group's lag on one partition: next minus committed, or
 * everything retained when it never committed
 */
static uint64_t
group_lag(struct spool *sp, struct spool_topic *t, const char *g, uint32_t p,
    const struct spool_part_info *pi, uint64_t *committed, int *held)
{
	int r;

	r = spool_group_info(t, g, p, committed, held);
	if (r == -ENOENT) {
		*committed = UINT64_MAX;
		return pi->next - pi->first;
	}
	if (r < 0)
		cli_die(r, sp, "group %s", g);
	if (*committed < pi->first)
		return pi->next - pi->first;
	return *committed >= pi->next ? 0 : pi->next - *committed;
}

enum { GS_DESCRIBE, GS_TABLE, GS_JSON, GS_JSON_HELD };

/*
 * show_groups - the one walk over a topic's groups and their partitions,
 * printed in one of the styles: describe's table (committed offset and
 * lag a partition, and each group's total), groups' table (with the next
 * offset and whether a member holds it), or a JSON array of groups, each
 * with its total lag and, a partition, the committed offset (null: none
 * yet), the next offset, the lag and (GS_JSON_HELD) held.  name, when
 * not NULL, is said in error messages.
 */
static void
show_groups(struct spool *sp, struct spool_topic *t, const char *name,
    int style)
{
	struct spool_part_info *pi;
	uint64_t lag, total, c;
	char **names, cbuf[24];
	size_t n, i;
	uint32_t p, np = spool_topic_config(t)->partitions;
	int r, h, json = style >= GS_JSON;
	const char *pfx = name ? name : "", *sep = name ? ": " : "";

	if ((r = spool_group_list(t, &names, &n)) < 0)
		cli_die(r, sp, "%s%sgroups", pfx, sep);
	cli_own_names(names, n);
	if ((pi = calloc(np, sizeof(*pi))) == NULL)
		cli_die(-ENOMEM, NULL, "%s%sgroups", pfx, sep);
	cli_own(CLI_MEM, pi);
	for (p = 0; p < np; p++)
		if ((r = spool_topic_info(t, p, &pi[p])) < 0)
			cli_die(r, sp, "%s%spartition %" PRIu32, pfx, sep, p);
	if (json)
		putchar('[');
	else if (n > 0 && style == GS_DESCRIBE)
		printf("%-24s %9s %14s %14s\n", "GROUP", "PARTITION",
		    "COMMITTED", "LAG");
	else if (n > 0)
		printf("%-24s %9s %14s %14s %14s %6s\n", "GROUP", "PARTITION",
		    "COMMITTED", "NEXT", "LAG", "HELD");
	for (i = 0; i < n; i++) {
		total = 0;
		if (json)
			printf("%s{\"group\":\"%s\",\"partitions\":[",
			    i ? "," : "", names[i]);
		for (p = 0; p < np; p++) {
			lag = group_lag(sp, t, names[i], p, &pi[p], &c, &h);
			total += lag;
			if (c == UINT64_MAX)
				snprintf(cbuf, sizeof(cbuf), json ? "null" : "-");
			else
				snprintf(cbuf, sizeof(cbuf), "%" PRIu64, c);
			if (style == GS_DESCRIBE)
				printf("%-24s %9" PRIu32 " %14s %14" PRIu64 "\n",
				    names[i], p, cbuf, lag);
			else if (style == GS_TABLE)
				printf("%-24s %9" PRIu32 " %14s %14" PRIu64
				    " %14" PRIu64 " %6s\n", names[i], p, cbuf,
				    pi[p].next, lag, h ? "yes" : "no");
			else {
				printf("%s{\"partition\":%" PRIu32 ",\"committed\":"
				    "%s,\"next\":%" PRIu64 ",\"lag\":%" PRIu64,
				    p ? "," : "", p, cbuf, pi[p].next, lag);
				if (style == GS_JSON_HELD)
					printf(",\"held\":%s", h ? "true" :
					    "false");
				putchar('}');
			}
		}
		if (json)
			printf("],\"lag\":%" PRIu64 "}", total);
		else if (style == GS_DESCRIBE)
			printf("%-24s %9s %14s %14" PRIu64 "\n", names[i], "all",
			    "", total);
	}
	if (json)
		putchar(']');
	(void)cli_close(pi);
	(void)cli_close(names);
}

/* describe_groups - describe's table of groups (show_groups) */
static void
describe_groups(struct spool *sp, struct spool_topic *t)
{
	show_groups(sp, t, NULL, GS_DESCRIBE);
}

/* groups_json - a topic's groups as a JSON array; full: with held */
static void
groups_json(struct spool *sp, struct spool_topic *t, int full)
{
	show_groups(sp, t, NULL, full ? GS_JSON_HELD : GS_JSON);
}

/*
 * describe_compaction - describe's table of a compacted topic: bytes
 * written since compaction last ran, their share, what it removed, when
 */
static void
describe_compaction(struct spool *sp, struct spool_topic *t, const char *name)
{
	struct spool_compact_info ci;
	uint32_t i, np = spool_topic_config(t)->partitions;
	int r;

	printf("%9s %14s %11s %14s %s\n", "PARTITION", "DIRTY", "DIRTY-RATIO",
	    "REMOVED", "COMPACTED");
	for (i = 0; i < np; i++) {
		if ((r = spool_compact_info(t, i, &ci)) < 0)
			cli_die(r, sp, "%s: partition %" PRIu32, name, i);
		printf("%9" PRIu32 " %14" PRIu64 " %11.2f %14" PRIu64 " %s\n", i,
		    ci.dirty_bytes, ci.dirty_ratio, ci.removed,
		    ci.last_ms ? iso_time(ci.last_ms) : "never");
	}
}

/* describe_json - describe --json: one object, schema in mq-topic(1) */
static void
describe_json(struct spool *sp, struct spool_topic *t, const char *name)
{
	struct spool_part_info pi;
	uint32_t i, np = spool_topic_config(t)->partitions;
	int r;

	printf("{\"topic\":\"%s\",\"partitions\":%" PRIu32 ",\"config\":",
	    name, np);
	json_config(sp, spool_topic_config(t));
	printf(",\"partition\":[");
	for (i = 0; i < np; i++) {
		if ((r = spool_topic_info(t, i, &pi)) < 0)
			cli_die(r, sp, "%s: partition %" PRIu32, name, i);
		printf("%s{\"partition\":%" PRIu32 ",\"first\":%" PRIu64
		    ",\"next\":%" PRIu64 ",\"messages\":%" PRIu64
		    ",\"bytes\":%" PRIu64 ",\"segments\":%" PRIu32,
		    i ? "," : "", i, pi.first, pi.next,
		    pi.next - pi.first - pi.missing, pi.bytes, pi.segments);
		if (spool_topic_config(t)->compact != SPOOL_CLEANUP_DELETE) {
			struct spool_compact_info ci;

			if ((r = spool_compact_info(t, i, &ci)) < 0)
				cli_die(r, sp, "%s: partition %" PRIu32, name, i);
			printf(",\"dirty_bytes\":%" PRIu64 ",\"dirty_ratio\":%.4g"
			    ",\"removed\":%" PRIu64, ci.dirty_bytes,
			    ci.dirty_ratio, ci.removed);
			if (ci.last_ms)
				printf(",\"compacted\":%" PRId64, ci.last_ms);
			else
				printf(",\"compacted\":null");
		}
		putchar('}');
	}
	printf("],\"groups\":");
	groups_json(sp, t, 0);
	printf(",\"transactions\":");
	describe_txns(sp, t, name, 1);
	printf("}\n");
}

/* cmd_groups - groups [--json] topic */
static int
cmd_groups(int argc, char *argv[])
{
	struct spool *sp;
	struct spool_topic *t;
	int json;

	json = json_opt(argc, argv);
	if (argc - optind != 1)
		usage(EX_USAGE);
	argv += optind - 1;
	sp = cli_open_spool(spool_opt, 0);
	t = open_topic(sp, argv[1]);
	show_groups(sp, t, argv[1], json ? GS_JSON_HELD : GS_TABLE);
	if (json)
		putchar('\n');
	(void)cli_close(t);
	(void)cli_close(sp);
	return EX_OK;
}

/* group_result - exit as reset or delete-group of group must, on failure */
static void
group_result(struct spool *sp, const char *group, int r)
{
	if (r == -EAGAIN)
		cli_fail(r, "%s: a live member holds the group", group);
	if (r == -ENOENT)
		cli_fail(r, "%s: No such group", group);
	if (r < 0)
		cli_die(r, sp, "%s", group);
}

/* cmd_reset - reset group topic --to position */
static int
cmd_reset(int argc, char *argv[])
{
	static const struct option lo[] = {
		{ "to", required_argument, NULL, OPT_TO },
		{ NULL, 0, NULL, 0 }
	};
	struct spool_pos to = { SPOOL_POS_NONE, 0 };
	struct spool *sp;
	struct spool_topic *t;
	int ch;

	while ((ch = getopt_long(argc, argv, "", lo, NULL)) != -1) {
		if (ch != OPT_TO)
			usage(EX_USAGE);
		if (cli_pos(optarg, &to) < 0 || to.kind == SPOOL_POS_FROM_END)
			cli_usage_die("--to %s: expected beginning, end, N or "
			    "@TIME", optarg);
	}
	if (argc - optind != 2 || to.kind == SPOOL_POS_NONE)
		usage(EX_USAGE);
	cli_check_group(argv[optind]);
	sp = cli_open_spool(spool_opt, 0);
	t = open_topic(sp, argv[optind + 1]);
	group_result(sp, argv[optind], spool_group_reset(t, argv[optind], &to));
	(void)cli_close(t);
	(void)cli_close(sp);
	return EX_OK;
}

/* cmd_delete_group - delete-group group topic */
static int
cmd_delete_group(int argc, char *argv[])
{
	struct spool *sp;
	struct spool_topic *t;

	if (argc != 3)
		usage(EX_USAGE);
	cli_check_group(argv[1]);
	sp = cli_open_spool(spool_opt, 0);
	t = open_topic(sp, argv[2]);
	group_result(sp, argv[1], spool_group_delete(t, argv[1]));
	(void)cli_close(t);
	(void)cli_close(sp);
	return EX_OK;
}

/* cmd_config - config topic [key=value ...] */
static int
cmd_config(int argc, char *argv[])
{
	struct spool *sp;
	struct spool_topic *t;
	char text[4096];
	int r, json;

	json = json_opt(argc, argv);
	if (argc - optind < 1)
		usage(EX_USAGE);
	argc -= optind - 1;
	argv += optind - 1;
	sp = cli_open_spool(spool_opt, 0);
	if (argc > 2)
		cli_check_primary(sp, cli_spool_path(spool_opt));
	t = open_topic(sp, argv[1]);
	if (argc > 2 && (r = spool_topic_config_update(t,
	    (const char *const *)argv + 2, argc - 2)) < 0) {
		if (r == -EINVAL)
			cli_usage_die("%s: %s", argv[1], spool_errmsg(sp));
		cli_die(r, sp, "%s", argv[1]);
	}
	if (json) {
		json_config(sp, spool_topic_config(t));
		putchar('\n');
	} else if (argc == 2) {
		if ((r = spool_config_format(spool_topic_config(t), text,
		    sizeof(text))) < 0)
			cli_die(r, sp, "%s", argv[1]);
		fputs(text, stdout);
	}
	(void)cli_close(t);
	(void)cli_close(sp);
	return EX_OK;
}

static void
report(void *arg, const char *msg)
{
	(void)arg;
	if (!cli_quiet)
		printf("%s\n", msg);
}

/* topics - the named topic, or every topic; owned, cli_close frees them */
static char **
topics(struct spool *sp, int argc, char *argv[], size_t *n)
{
	char **names;
	int r;

	if (argc == 1) {
		cli_check_topic(argv[0]);
		if ((names = calloc(1, sizeof(*names))) == NULL ||
		    (names[0] = strdup(argv[0])) == NULL)
			cli_die(-ENOMEM, NULL, "topics");
		*n = 1;
		cli_own_names(names, 1);
		return names;
	}
	if ((r = spool_topic_list(sp, &names, n)) < 0)
		cli_die(r, sp, "topics");
	cli_own_names(names, *n);
	return names;
}

/* cmd_verify - verify [--repair] [topic] */
static int
cmd_verify(int argc, char *argv[])
{
	static const struct option lo[] = {
		{ "repair", no_argument, NULL, OPT_REPAIR },
		{ NULL, 0, NULL, 0 }
	};
	struct spool *sp;
	struct spool_topic *t;
	char **names;
	size_t n, i;
	int ch, r, s, repair = 0, rval = EX_OK;

	while ((ch = getopt_long(argc, argv, "", lo, NULL)) != -1) {
		if (ch != OPT_REPAIR)
			usage(EX_USAGE);
		repair = 1;
	}
	if (argc - optind > 1)
		usage(EX_USAGE);
	sp = cli_open_spool(spool_opt, 0);
	names = topics(sp, argc - optind, argv + optind, &n);
	for (i = 0; i < n; i++) {
		/* a damaged config is a finding; the other topics go on */
		if ((r = spool_topic_open(sp, names[i], &t)) == -EBADMSG) {
			report(NULL, spool_errmsg(sp));
			rval = EX_DATAERR;
			continue;
		}
		if (r < 0)
			t = open_topic(sp, names[i]);
		else
			cli_own(CLI_TOPIC, t);
		if ((r = spool_topic_verify(t, repair, report, NULL)) < 0)
			cli_die(r, sp, "%s", names[i]);
		if ((s = spool_topic_verify_state(t, report, NULL)) < 0)
			cli_die(s, sp, "%s", names[i]);
		r += s;
		if (r > 0)
			rval = EX_DATAERR;
		else if (cli_verbose)
			cli_warn("%s: ok", names[i]);	/* -v says on stderr */
		(void)cli_close(t);
	}
	(void)cli_close(names);
	(void)cli_close(sp);
	return rval;
}

/* topic_exists - whether a topic is still there */
static int
topic_exists(struct spool *sp, const char *name)
{
	struct spool_topic *t;
	int r;

	if ((r = spool_topic_open(sp, name, &t)) == 0)
		spool_topic_close(t);
	return r != -ENOENT;
}

#define CHECK_LIMIT_MS	60000	/* a --check command that runs longer fails */

/*
 * check_one - run a transaction's --check command (sh -c, MQ_TXID,
 * MQ_TOPIC and MQ_SPOOL in its environment, stdin /dev/null): its exit
 * status, or -1 when it could not run or ran too long (ask again)
 */
static int
check_one(const char *name, const struct spool_txn_info *x)
{
	char txid[SPOOL_NAME_MAX + 24];
	int64_t start = spool_now_ms();
	pid_t pid;
	int st, fd;

	snprintf(txid, sizeof(txid), "%s.%016" PRIx64, name, x->txid);
	fflush(stdout);
	if ((pid = fork()) == -1)
		return -1;
	if (pid == 0) {
		if ((fd = open("/dev/null", O_RDONLY)) >= 0)
			dup2(fd, STDIN_FILENO);
		setenv("MQ_TXID", txid, 1);
		setenv("MQ_TOPIC", name, 1);
		setenv("MQ_SPOOL", cli_spool_path(spool_opt), 1);
		execl("/bin/sh", "sh", "-c", x->check, (char *)NULL);
		_exit(127);
	}
	for (;;) {
		pid_t w = waitpid(pid, &st, WNOHANG);

		if (w == pid)
			break;
		if (w == -1 && errno != EINTR)
			return -1;
		if (spool_now_ms() - start > CHECK_LIMIT_MS) {
			kill(pid, SIGKILL);
			(void)waitpid(pid, &st, 0);
			cli_warn("%s: --check of %s ran over %d s; asking again "
			    "later", name, txid, CHECK_LIMIT_MS / 1000);
			return -1;
		}
		usleep(10000);
	}
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/*
 * check_txns - gc's part in transactions: each one past its timeout
 * that has a --check command is resolved as the command says (0
 * commit, 1 abort, anything else: ask again at the next gc)
 */
static void
check_txns(struct spool *sp, struct spool_topic *t, const char *name)
{
	struct spool_txn_info *v;
	int64_t now = spool_now_ms();
	size_t n, i;
	int r, st;

	if ((r = spool_txn_list(t, &v, &n)) < 0)
		cli_die(r, sp, "%s: transactions", name);
	for (i = 0; i < n; i++) {
		if (v[i].committing || v[i].check == NULL || now < v[i].deadline)
			continue;
		st = check_one(name, &v[i]);
		if (st == 0)
			r = spool_txn_commit(t, v[i].txid);
		else if (st == 1)
			r = spool_txn_abort(t, v[i].txid);
		else
			r = 0;
		if (cli_verbose)
			cli_warn("%s: %s.%016" PRIx64 ": --check exited %d: %s",
			    name, name, v[i].txid, st, st == 0 ? "committed" :
			    st == 1 ? "aborted" : "asking again later");
		if (r < 0 && r != -ECANCELED && r != -ENOENT) {
			spool_txn_list_free(v, n);
			cli_die(r, sp, "%s: transactions", name);
		}
	}
	spool_txn_list_free(v, n);
}

/* cmd_gc - gc [topic]: apply retention; clean tmp/ */
static int
cmd_gc(int argc, char *argv[])
{
	struct spool *sp;
	struct spool_topic *t;
	char **names;
	size_t n, i;
	int r;

	if (argc > 2)
		usage(EX_USAGE);
	sp = cli_open_spool(spool_opt, 0);
	/* a replica's retention is its source's (mq-replicate --delete) */
	cli_check_primary(sp, cli_spool_path(spool_opt));
	names = topics(sp, argc - 1, argv + 1, &n);
	for (i = 0; i < n; i++) {
		if (argc == 1) {
			/* a topic deleted since the listing needs no gc */
			if ((r = spool_topic_open(sp, names[i], &t)) == -ENOENT)
				continue;
			if (r < 0)
				cli_die(r, sp, "%s", names[i]);
			cli_own(CLI_TOPIC, t);
		} else
			t = open_topic(sp, names[i]);
		/* gc touches the topic: it moves what is due, too */
		r = spool_sched_move(t, spool_now_ms(), NULL);
		/* and settles transactions: timed out, checked, forgotten */
		if (r >= 0 && (r = spool_txn_tick(t, spool_now_ms(), 1)) >= 0)
			check_txns(sp, t, names[i]);
		if (r >= 0)
			r = spool_topic_gc(t, spool_now_ms(), cli_verbose ?
			    report : NULL, NULL);
		(void)cli_close(t);
		if (r == -ENOENT && argc == 1 && !topic_exists(sp, names[i]))
			continue;	/* deleted while we were at it */
		if (r < 0)
			cli_die(r, sp, "%s", names[i]);
	}
	/* and, for the whole spool, what crashes left in tmp/ */
	if (argc == 1 && (r = spool_tmp_gc(sp, spool_now_ms(), cli_verbose ?
	    report : NULL, NULL)) < 0)
		cli_die(r, sp, "tmp");
	(void)cli_close(names);
	(void)cli_close(sp);
	return EX_OK;
}

/* json_str - a topic or group name as a JSON string (names need no escapes) */
#define JSTR "\"%s\""

/*
 * stats_prometheus - the text exposition format: every metric family
 * whole, its HELP and TYPE first, as promtool wants
 */
static void
stats_prometheus(struct spool *sp, char **names, size_t n)
{
	static const char *fam[] = { "messages", "bytes", "next_offset",
	    "first_offset", "segments" };
	static const char *help[] = { "Messages retained in a partition.",
	    "Bytes of segment files of a partition.",
	    "Offset the next message of a partition gets.",
	    "First offset retained in a partition.",
	    "Segment files of a partition." };
	struct spool_part_info pi;
	struct spool_topic *t;
	char **groups;
	uint64_t v, c;
	size_t i, k, g, ng;
	uint32_t p;
	int r, h;

	for (k = 0; k <= 5; k++) {
		printf("# HELP mq_%s %s\n# TYPE mq_%s gauge\n", k < 5 ?
		    fam[k] : "group_lag", k < 5 ? help[k] : "Messages of a "
		    "partition a group has not consumed.", k < 5 ? fam[k] :
		    "group_lag");
		for (i = 0; i < n; i++) {
			t = open_topic(sp, names[i]);
			groups = NULL;
			ng = 1;
			if (k == 5) {
				if ((r = spool_group_list(t, &groups, &ng)) < 0)
					cli_die(r, sp, "%s: groups", names[i]);
				cli_own_names(groups, ng);
			}
			for (g = 0; g < ng; g++)
			for (p = 0; p < spool_topic_config(t)->partitions; p++) {
				if ((r = spool_topic_info(t, p, &pi)) < 0)
					cli_die(r, sp, "%s: partition %" PRIu32,
					    names[i], p);
				v = k == 0 ? pi.next - pi.first - pi.missing :
				    k == 1 ? pi.bytes : k == 2 ? pi.next :
				    k == 3 ? pi.first : pi.segments;
				if (k == 5) {
					v = group_lag(sp, t, groups[g], p, &pi,
					    &c, &h);
					printf("mq_group_lag{topic=" JSTR ",group="
					    JSTR ",partition=\"%" PRIu32 "\"} %"
					    PRIu64 "\n", names[i], groups[g], p,
					    v);
				} else
					printf("mq_%s{topic=" JSTR ",partition="
					    "\"%" PRIu32 "\"} %" PRIu64 "\n",
					    fam[k], names[i], p, v);
			}
			(void)cli_close(groups);
			(void)cli_close(t);
		}
	}
	for (k = 0; k < 2; k++) {
		printf(k == 0 ? "# HELP mq_scheduled Messages of a topic waiting "
		    "for their due time.\n# TYPE mq_scheduled gauge\n" :
		    "# HELP mq_scheduled_next_due_ms When the next scheduled "
		    "message is due.\n# TYPE mq_scheduled_next_due_ms gauge\n");
		for (i = 0; i < n; i++) {
			uint64_t ns;
			int64_t due;

			t = open_topic(sp, names[i]);
			if ((r = spool_sched_info(t, &ns, &due)) < 0)
				cli_die(r, sp, "%s: scheduled", names[i]);
			if (k == 0)
				printf("mq_scheduled{topic=" JSTR "} %" PRIu64
				    "\n", names[i], ns);
			else if (due >= 0)
				printf("mq_scheduled_next_due_ms{topic=" JSTR
				    "} %" PRId64 "\n", names[i], due);
			(void)cli_close(t);
		}
	}
	printf("# HELP mq_transactions_open Transactions of a topic prepared "
	    "and not yet committed or aborted.\n# TYPE mq_transactions_open "
	    "gauge\n");
	for (i = 0; i < n; i++) {
		t = open_topic(sp, names[i]);
		printf("mq_transactions_open{topic=" JSTR "} %zu\n", names[i],
		    open_txns(sp, t, names[i]));
		(void)cli_close(t);
	}
	printf("# HELP mq_replica_lag Messages of a partition a replica has "
	    "not acknowledged.\n# TYPE mq_replica_lag gauge\n");
	for (i = 0; i < n; i++) {
		t = open_topic(sp, names[i]);
		replicas(sp, t, names[i], OPT_PROMETHEUS);
		(void)cli_close(t);
	}
}

/* the -o temporary file until it is renamed; removed on any other exit */
static char *out_tmp;

static void
out_cleanup(void)
{
	if (out_tmp != NULL)
		(void)unlink(out_tmp);
}

/*
 * out_open - -o FILE: stdout goes to a temporary file beside FILE, so
 * that a reader of FILE (node_exporter) never sees half of it
 */
static char *
out_open(const char *file)
{
	char *tmp;
	mode_t mask;
	int fd;

	if (asprintf(&tmp, "%s.tmp.XXXXXX", file) == -1)
		cli_die(-ENOMEM, NULL, "%s", file);
	cli_own(CLI_MEM, tmp);
	if ((fd = mkstemp(tmp)) == -1)
		cli_die(-errno, NULL, "%s", file);
	out_tmp = tmp;
	(void)atexit(out_cleanup);
	/* as a file made by the shell's > would be, not mkstemp's 0600 */
	mask = umask(0);
	(void)umask(mask);
	(void)fchmod(fd, 0666 & ~mask);
	if (dup2(fd, STDOUT_FILENO) == -1)
		cli_die(-errno, NULL, "%s", file);
	close(fd);
	return tmp;
}

/* commit_out - -o FILE: the whole output, synced, renamed over FILE */
static void
commit_out(const char *tmp)
{
	char *file = strdup(tmp), *x;

	if (file == NULL)
		cli_die(-ENOMEM, NULL, "%s", tmp);
	*(x = strrchr(file, '.')) = '\0';	/* .XXXXXX */
	*(x = strrchr(file, '.')) = '\0';	/* .tmp */
	if (fflush(stdout) == EOF || fsync(STDOUT_FILENO) == -1 ||
	    rename(tmp, file) == -1) {
		int e = -errno;

		cli_die(e, NULL, "%s", file);
	}
	out_tmp = NULL;
	free(file);
}

/* cmd_stats - stats [--json | --prometheus] [-o file]: for monitoring */
static int
cmd_stats(int argc, char *argv[])
{
	static const struct option lo[] = {
		{ "json", no_argument, NULL, OPT_JSON },
		{ "output", required_argument, NULL, 'o' },
		{ "prometheus", no_argument, NULL, OPT_PROMETHEUS },
		{ NULL, 0, NULL, 0 }
	};
	struct spool_part_info pi;
	struct spool *sp;
	struct spool_topic *t;
	char **names, **groups, *out = NULL;
	const char *file = NULL;
	uint64_t c, lag, *nsched;
	int64_t *due;
	size_t n, ng, i, k, anysched = 0;
	uint32_t p, np;
	int ch, r, h, mode = 0;

	while ((ch = getopt_long(argc, argv, "o:", lo, NULL)) != -1) {
		if (ch == 'o') {
			file = optarg;
			continue;
		}
		if (ch != OPT_JSON && ch != OPT_PROMETHEUS)
			usage(EX_USAGE);
		if (mode != 0 && mode != ch)
			cli_usage_die("stats: --json or --prometheus, not both");
		mode = ch;
	}
	if (argc != optind)
		usage(EX_USAGE);
	sp = cli_open_spool(spool_opt, 0);
	if (file != NULL)
		out = out_open(file);
	names = topics(sp, 0, NULL, &n);
	if (mode == OPT_PROMETHEUS) {
		stats_prometheus(sp, names, n);
		goto done;
	}
	if (mode == OPT_JSON)
		printf("{\"topics\":[");
	else
		printf("%-24s %9s %14s %14s %14s %14s %8s\n", "TOPIC",
		    "PARTITION", "FIRST", "NEXT", "MESSAGES", "BYTES",
		    "SEGMENTS");
	if ((nsched = calloc(n + 1, sizeof(*nsched))) == NULL ||
	    (due = calloc(n + 1, sizeof(*due))) == NULL)
		cli_die(-ENOMEM, NULL, "stats");
	cli_own(CLI_MEM, nsched);
	cli_own(CLI_MEM, due);
	for (i = 0; i < n; i++) {
		t = open_topic(sp, names[i]);
		np = spool_topic_config(t)->partitions;
		if ((r = spool_sched_info(t, &nsched[i], &due[i])) < 0)
			cli_die(r, sp, "%s: scheduled", names[i]);
		anysched += nsched[i] > 0;
		if (mode == OPT_PROMETHEUS) {
			printf("mq_scheduled{topic=" JSTR "} %" PRIu64 "\n",
			    names[i], nsched[i]);
			if (due[i] >= 0)
				printf("mq_scheduled_next_due_ms{topic=" JSTR
				    "} %" PRId64 "\n", names[i], due[i]);
		}
		if (mode == OPT_JSON) {
			printf("%s{\"topic\":" JSTR ",\"scheduled\":%" PRIu64
			    ",\"transactions\":%zu", i ? "," : "", names[i],
			    nsched[i], open_txns(sp, t, names[i]));
			if (due[i] >= 0)
				printf(",\"next_due\":%" PRId64, due[i]);
			printf(",\"partitions\":[");
		}
		for (p = 0; p < np; p++) {
			if ((r = spool_topic_info(t, p, &pi)) < 0)
				cli_die(r, sp, "%s: partition %" PRIu32,
				    names[i], p);
			if (mode == OPT_JSON)
				printf("%s{\"partition\":%" PRIu32 ",\"first\":%"
				    PRIu64 ",\"next\":%" PRIu64 ",\"messages\":%"
				    PRIu64 ",\"bytes\":%" PRIu64 ",\"segments\":%"
				    PRIu32 "}", p ? "," : "", p, pi.first,
				    pi.next, pi.next - pi.first - pi.missing,
				    pi.bytes, pi.segments);
			else
				printf("%-24s %9" PRIu32 " %14" PRIu64 " %14"
				    PRIu64 " %14" PRIu64 " %14" PRIu64 " %8"
				    PRIu32 "\n", names[i], p, pi.first, pi.next,
				    pi.next - pi.first - pi.missing, pi.bytes,
				    pi.segments);
		}
		if (mode == OPT_JSON)
			printf("],\"groups\":[");
		if ((r = spool_group_list(t, &groups, &ng)) < 0)
			cli_die(r, sp, "%s: groups", names[i]);
		cli_own_names(groups, ng);
		for (k = 0; k < ng; k++) {
			if (mode == OPT_JSON)
				printf("%s{\"group\":" JSTR ",\"partitions\":[",
				    k ? "," : "", groups[k]);
			for (p = 0; p < np; p++) {
				if ((r = spool_topic_info(t, p, &pi)) < 0)
					cli_die(r, sp, "%s", names[i]);
				lag = group_lag(sp, t, groups[k], p, &pi, &c,
				    &h);
				if (mode == OPT_JSON) {
					printf("%s{\"partition\":%" PRIu32,
					    p ? "," : "", p);
					if (c != UINT64_MAX)
						printf(",\"committed\":%" PRIu64,
						    c);
					printf(",\"lag\":%" PRIu64 ",\"held\":"
					    "%s}", lag, h ? "true" : "false");
				}
			}
			if (mode == OPT_JSON)
				printf("]}");
		}
		(void)cli_close(groups);
		if (mode == OPT_JSON)
			printf("],\"replicas\":[");
		if (mode != 0)
			replicas(sp, t, names[i], mode);
		if (mode == OPT_JSON)
			printf("]}");
		(void)cli_close(t);
	}
	if (mode == OPT_JSON)
		printf("]}\n");
	/* scheduled messages: a table of their own, when there are any */
	if (mode == 0 && anysched > 0) {
		printf("\n%-24s %14s %s\n", "TOPIC", "SCHEDULED", "NEXT-DUE");
		for (i = 0; i < n; i++)
			if (nsched[i] > 0)
				printf("%-24s %14" PRIu64 " %s\n", names[i],
				    nsched[i], iso_time(due[i]));
	}
	(void)cli_close(due);
	(void)cli_close(nsched);
done:
	(void)cli_close(names);
	(void)cli_close(sp);
	if (out != NULL)
		commit_out(out);
	return EX_OK;
}

int
main(int argc, char *argv[])
{
	static const struct option lo[] = {
		{ "help",	no_argument,		NULL, 'h' },
		{ "quiet",	no_argument,		NULL, 'q' },
		{ "spool",	required_argument,	NULL, 's' },
		{ "verbose",	no_argument,		NULL, 'v' },
		{ "version",	no_argument,		NULL, OPT_VERSION },
		{ NULL, 0, NULL, 0 }
	};
	static const struct {
		const char *name;
		int (*fn)(int, char *[]);
	} cmds[] = {
		{ "abort", cmd_abort },
		{ "cancel", cmd_cancel },
		{ "config", cmd_config },
		{ "create", cmd_create },
		{ "delete", cmd_delete },
		{ "delete-group", cmd_delete_group },
		{ "describe", cmd_describe },
		{ "dump", cmd_dump },
		{ "gc", cmd_gc },
		{ "groups", cmd_groups },
		{ "list", cmd_list },
		{ "reset", cmd_reset },
		{ "stats", cmd_stats },
		{ "verify", cmd_verify },
	};
	size_t i;
	int ch;

	(void)cli_fds();
	/* global options stop at the command */
	while ((ch = getopt_long(argc, argv, "+hqs:v", lo, NULL)) != -1) {
		switch (ch) {
		case 'h':
			usage(EX_OK);
		case 'q':
			cli_quiet = 1;
			break;
		case 's':
			spool_opt = optarg;
			break;
		case 'v':
			cli_verbose = 1;
			break;
		case OPT_VERSION:
			cli_version();
		default:
			usage(EX_USAGE);
		}
	}
	argc -= optind;
	argv += optind;
	if (argc < 1)
		usage(EX_USAGE);
	/* "mq-topic create --help" is a question, not a topic named so */
	if (argc > 1 && (strcmp(argv[1], "-h") == 0 ||
	    strcmp(argv[1], "--help") == 0))
		usage(EX_OK);
	for (i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++)
		if (strcmp(argv[0], cmds[i].name) == 0) {
			optind = 0;	/* GNU getopt: start afresh */
			/* getopt's own messages start "mq-topic: " too */
			argv[0] = program_invocation_short_name;
			return cmds[i].fn(argc, argv);
		}
	cli_usage_die("%s: unknown command", argv[0]);
}
