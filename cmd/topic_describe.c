/*
 * topic_describe.c - mq-topic list and describe: read-only views of
 * topics (totals, partitions, compaction, replicas, and the groups and
 * transactions tables of topic_groups.c and topic_txn.c)
 */

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "topic.h"

/* totals - messages and bytes of a whole topic, name */
static void
totals(struct spool *sp, struct spool_topic *t, const char *name,
    uint64_t *msgs, uint64_t *bytes)
{
	struct spool_part_info pi;
	uint32_t i;
	int r;

	*msgs = *bytes = 0;
	for (i = 0; i < spool_topic_config(t)->partitions; i++) {
		if ((r = spool_topic_info(t, i, &pi)) < 0)
			cli_die(r, sp, "%s: partition %" PRIu32, name, i);
		*msgs += pi.next - pi.first - pi.missing;
		*bytes += pi.bytes;
	}
}

/* cmd_list - list [-l] */
int
cmd_list(int argc, char *argv[])
{
	static const struct option lo[] = {
		{ "long", no_argument, NULL, 'l' },
		{ "json", no_argument, NULL, OPT_JSON },
		{ NULL, 0, NULL, 0 }
	};
	struct spool *sp;
	struct spool_topic *t;
	uint64_t msgs, bytes;
	char **names;
	size_t n, i, shown = 0;
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
		/* deleted since the listing, or a directory with no config */
		if ((r = spool_topic_open(sp, names[i], &t)) == -ENOENT)
			continue;
		if (r == 0)
			cli_own(CLI_TOPIC, t);
		if (!lflag)
			printf("%s\n", names[i]);
		else if (r == 0) {
			totals(sp, t, names[i], &msgs, &bytes);
			printf(json ? "%s{\"topic\":\"%s\",\"partitions\":%"
			    PRIu32 ",\"messages\":%" PRIu64 ",\"bytes\":%"
			    PRIu64 "}" : "%s%-24s %10" PRIu32 " %12" PRIu64
			    " %14" PRIu64 "\n", json && shown > 0 ? "," : "",
			    names[i], spool_topic_config(t)->partitions, msgs,
			    bytes);
			shown++;	/* a topic that did not open gets no comma */
		}
		if (r == 0)
			(void)cli_close(t);
	}
	if (json)
		printf("]\n");
	(void)cli_close(names);
	(void)cli_close(sp);
	return EX_OK;
}

#define MAX_REPLICAS	64

/*
 * replicas - each replica's acknowledged offset and lag a partition
 * (mq-replicate): a table (mode 0), Prometheus lines or a JSON array
 */
void
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

/* cmd_describe - describe topic */
int
cmd_describe(int argc, char *argv[])
{
	struct spool_part_info pi;
	struct spool *sp;
	struct spool_topic *t;
	const char *name;
	char text[4096], *line;
	uint64_t nsched;
	int64_t due;
	uint32_t i, np;
	int r, json;

	json = topic_cmd(argc, argv, &name, &sp, &t);
	np = spool_topic_config(t)->partitions;
	if (json) {
		describe_json(sp, t, name);
		return topic_cmd_done(sp, t);
	}
	printf("topic %s\npartitions %" PRIu32 "\n", name, np);
	/* the rest of the config, partitions= aside (said above) */
	if ((r = spool_config_format(spool_topic_config(t), text,
	    sizeof(text))) < 0)
		cli_die(r, sp, "%s", name);
	for (line = strtok(text, "\n"); line; line = strtok(NULL, "\n"))
		if (strncmp(line, "partitions=", 11) != 0)
			printf("%s\n", line);
	if ((r = spool_sched_info(t, &nsched, &due)) < 0)
		cli_die(r, sp, "%s: scheduled", name);
	printf("scheduled %" PRIu64 "\n", nsched);
	if (due >= 0)
		printf("next.due %s %" PRId64 "\n", iso_time(due), due);
	describe_txns(sp, t, name, 0);
	printf("%9s %14s %14s %14s %14s %8s\n", "PARTITION", "FIRST", "NEXT",
	    "MESSAGES", "BYTES", "SEGMENTS");
	for (i = 0; i < np; i++) {
		if ((r = spool_topic_info(t, i, &pi)) < 0)
			cli_die(r, sp, "%s: partition %" PRIu32, name, i);
		printf("%9" PRIu32 " %14" PRIu64 " %14" PRIu64 " %14" PRIu64
		    " %14" PRIu64 " %8" PRIu32 "\n", i, pi.first, pi.next,
		    pi.next - pi.first - pi.missing, pi.bytes, pi.segments);
	}
	if (spool_topic_config(t)->compact != SPOOL_CLEANUP_DELETE)
		describe_compaction(sp, t, name);
	describe_groups(sp, t);
	replicas(sp, t, name, 0);
	return topic_cmd_done(sp, t);
}
