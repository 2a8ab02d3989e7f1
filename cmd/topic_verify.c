/*
 * topic_verify.c - mq-topic verify, gc and dump: checking and repairing
 * segments, applying retention, and the batch-by-batch debugging view
 */

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>

#include "topic.h"

/* cmd_verify - verify [--repair] [topic] */
int
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
			topic_report(NULL, spool_errmsg(sp));
			rval = EX_DATAERR;
			continue;
		}
		if (r == -ENOENT && argc == optind) {
			/* deleted since the listing: nothing to check */
			if ((s = spool_topic_exists(sp, names[i])) == 0)
				continue;
			/* a directory with no config is a finding, too */
			if (s > 0) {
				cli_warn("%s: not a topic (no config); "
				    "mq-topic delete removes it", names[i]);
				rval = EX_DATAERR;
				continue;
			}
		}
		if (r < 0)
			t = open_topic(sp, names[i]);
		else
			cli_own(CLI_TOPIC, t);
		if ((r = spool_topic_verify(t, repair, topic_report, NULL)) < 0 &&
		    r == -ENOENT && argc == optind &&
		    spool_topic_exists(sp, names[i]) == 0) {
			(void)cli_close(t);
			continue;	/* deleted while we were at it */
		}
		if (r < 0)
			cli_die(r, sp, "%s", names[i]);
		if ((s = spool_topic_verify_state(t, topic_report, NULL)) < 0)
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

/* cmd_gc - gc [topic]: apply retention; clean tmp/ */
int
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
			    topic_report : NULL, NULL);
		(void)cli_close(t);
		if (r == -ENOENT && argc == 1 && !topic_exists(sp, names[i]))
			continue;	/* deleted while we were at it */
		if (r < 0)
			cli_die(r, sp, "%s", names[i]);
	}
	/* and, for the whole spool, what crashes left in tmp/ */
	if (argc == 1 && (r = spool_tmp_gc(sp, spool_now_ms(), cli_verbose ?
	    topic_report : NULL, NULL)) < 0)
		cli_die(r, sp, "tmp");
	(void)cli_close(names);
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
int
cmd_dump(int argc, char *argv[])
{
	static const struct option lo[] = {
		{ "partition", required_argument, NULL, 'p' },
		{ "json", no_argument, NULL, OPT_JSON },
		{ NULL, 0, NULL, 0 }
	};
	struct spool *sp;
	struct spool_topic *t;
	char *name;
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
	name = argv[optind];
	t = topic_cmd_open(name, 0, &sp);
	np = spool_topic_config(t)->partitions;
	if (part >= (long long)np)
		cli_fail(-ENOENT, "%s: No such partition %lld (it has %" PRIu32
		    ", 0 to %" PRIu32 ")", name, part, np, np - 1);
	if (!json)
		printf("%4s %20s %10s %14s %7s %-4s %-4s %4s %5s %6s %9s %9s "
		    "%10s %10s %13s %13s %s\n", "PART", "SEGMENT", "POS",
		    "OFFSET", "COUNT", "TYPE", "CODEC", "FLAGS", "EPOCH", "TXID",
		    "BODY", "RAW", "HDR_CRC", "BODY_CRC", "BASE_TS", "MAX_TS",
		    "STATE");
	for (i = part < 0 ? 0 : (uint32_t)part; i < np; i++) {
		if ((r = spool_dump(t, i, dump_one, json ? name : NULL)) < 0)
			cli_die(r, sp, "%s: partition %" PRIu32, name, i);
		if (part >= 0)
			break;
	}
	if (fflush(stdout) == EOF)
		cli_die(-errno, NULL, "stdout");
	return topic_cmd_done(sp, t);
}
