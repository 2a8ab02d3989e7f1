/*
 * topic_stats.c - mq-topic stats: every topic of a spool for monitoring,
 * as a table, JSON or the Prometheus text format, to stdout or (-o)
 * atomically to a file
 */

#include <sys/stat.h>

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "topic.h"

/*
 * prom_family - one metric family of every partition of the topics
 * names: k indexes fam (5: group_lag, one series a group)
 */
static void
prom_family(struct spool *sp, char **names, size_t n, size_t k)
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
	size_t i, g, ng;
	uint32_t p;
	int r, h;

	printf("# HELP mq_%s %s\n# TYPE mq_%s gauge\n", k < 5 ?
	    fam[k] : "group_lag", k < 5 ? help[k] : "Messages of a "
	    "partition a group has not consumed.", k < 5 ? fam[k] :
	    "group_lag");
	for (i = 0; i < n; i++) {
		if ((t = listed_open(sp, names[i])) == NULL)
			continue;	/* deleted since */
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

/*
 * stats_prometheus - the text exposition format: every metric family
 * whole, its HELP and TYPE first, as promtool wants
 */
static void
stats_prometheus(struct spool *sp, char **names, size_t n)
{
	struct spool_topic *t;
	size_t i, k;
	int r;

	for (k = 0; k <= 5; k++)
		prom_family(sp, names, n, k);
	for (k = 0; k < 2; k++) {
		printf(k == 0 ? "# HELP mq_scheduled Messages of a topic waiting "
		    "for their due time.\n# TYPE mq_scheduled gauge\n" :
		    "# HELP mq_scheduled_next_due_ms When the next scheduled "
		    "message is due.\n# TYPE mq_scheduled_next_due_ms gauge\n");
		for (i = 0; i < n; i++) {
			uint64_t ns;
			int64_t due;

			if ((t = listed_open(sp, names[i])) == NULL)
				continue;
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
		if ((t = listed_open(sp, names[i])) == NULL)
			continue;
		printf("mq_transactions_open{topic=" JSTR "} %zu\n", names[i],
		    open_txns(sp, t, names[i]));
		(void)cli_close(t);
	}
	printf("# HELP mq_replica_lag Messages of a partition a replica has "
	    "not acknowledged.\n# TYPE mq_replica_lag gauge\n");
	for (i = 0; i < n; i++) {
		if ((t = listed_open(sp, names[i])) == NULL)
			continue;
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
 * out_fail - -o FILE cannot be made: a path that leads nowhere is an I/O
 * error (74, as for stdout), not the missing spool or topic of 66
 */
static void
out_fail(int negerr, const char *file)
{
	fflush(stdout);
	fprintf(stderr, "mq-topic: %s: %s\n", file, strerror(-negerr));
	if (negerr == -ENOENT || negerr == -ENOTDIR)
		exit(EX_IOERR);
	exit(cli_exitcode(negerr));
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
		out_fail(-errno, file);
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

/*
 * stats_groups - the groups of topic name and, with --json, each one's
 * committed offset, lag and hold a partition
 */
static void
stats_groups(struct spool *sp, struct spool_topic *t, const char *name,
    int mode)
{
	struct spool_part_info pi;
	char **groups;
	uint64_t c, lag;
	size_t ng, k;
	uint32_t p, np = spool_topic_config(t)->partitions;
	int r, h;

	if ((r = spool_group_list(t, &groups, &ng)) < 0)
		cli_die(r, sp, "%s: groups", name);
	cli_own_names(groups, ng);
	for (k = 0; k < ng; k++) {
		if (mode == OPT_JSON)
			printf("%s{\"group\":" JSTR ",\"partitions\":[",
			    k ? "," : "", groups[k]);
		for (p = 0; p < np; p++) {
			if ((r = spool_topic_info(t, p, &pi)) < 0)
				cli_die(r, sp, "%s", name);
			lag = group_lag(sp, t, groups[k], p, &pi, &c, &h);
			if (mode == OPT_JSON) {
				printf("%s{\"partition\":%" PRIu32,
				    p ? "," : "", p);
				if (c != UINT64_MAX)
					printf(",\"committed\":%" PRIu64, c);
				printf(",\"lag\":%" PRIu64 ",\"held\":"
				    "%s}", lag, h ? "true" : "false");
			}
		}
		if (mode == OPT_JSON)
			printf("]}");
	}
	(void)cli_close(groups);
}

/*
 * stats_topic - a topic after i shown: its rows of the table or its
 * JSON object; what is scheduled in it in *nsched and *due.  0 if it is
 * no topic (deleted since the listing, or no config) and shows nothing.
 */
static int
stats_topic(struct spool *sp, const char *name, size_t i, int mode,
    uint64_t *nsched, int64_t *due)
{
	struct spool_part_info pi;
	struct spool_topic *t;
	uint32_t p, np;
	int r;

	if ((t = listed_open(sp, name)) == NULL)
		return 0;
	np = spool_topic_config(t)->partitions;
	if ((r = spool_sched_info(t, nsched, due)) < 0)
		cli_die(r, sp, "%s: scheduled", name);
	if (mode == OPT_JSON) {
		printf("%s{\"topic\":" JSTR ",\"scheduled\":%" PRIu64
		    ",\"transactions\":%zu", i ? "," : "", name, *nsched,
		    open_txns(sp, t, name));
		if (*due >= 0)
			printf(",\"next_due\":%" PRId64, *due);
		printf(",\"partitions\":[");
	}
	for (p = 0; p < np; p++) {
		if ((r = spool_topic_info(t, p, &pi)) < 0)
			cli_die(r, sp, "%s: partition %" PRIu32, name, p);
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
			    PRIu32 "\n", name, p, pi.first, pi.next,
			    pi.next - pi.first - pi.missing, pi.bytes,
			    pi.segments);
	}
	if (mode == OPT_JSON)
		printf("],\"groups\":[");
	stats_groups(sp, t, name, mode);
	if (mode == OPT_JSON)
		printf("],\"replicas\":[");
	if (mode != 0)
		replicas(sp, t, name, mode);
	if (mode == OPT_JSON)
		printf("]}");
	(void)cli_close(t);
	return 1;
}

/* stats_mode - stats' options: 0 (the table), OPT_JSON or OPT_PROMETHEUS */
static int
stats_mode(int argc, char *argv[], const char **file)
{
	static const struct option lo[] = {
		{ "output", required_argument, NULL, 'o' },
		{ "json", no_argument, NULL, OPT_JSON },
		{ "prometheus", no_argument, NULL, OPT_PROMETHEUS },
		{ NULL, 0, NULL, 0 }
	};
	int ch, mode = 0;

	while ((ch = getopt_long(argc, argv, "o:", lo, NULL)) != -1) {
		if (ch == 'o') {
			if (*optarg == '\0')
				cli_usage_die("stats -o \"\": empty path");
			*file = optarg;
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
	return mode;
}

/* cmd_stats - stats [--json | --prometheus] [-o file]: for monitoring */
int
cmd_stats(int argc, char *argv[])
{
	struct spool *sp;
	char **names, *out = NULL;
	const char *file = NULL;
	uint64_t *nsched;
	int64_t *due;
	size_t n, i, anysched = 0, shown = 0;
	int mode;

	mode = stats_mode(argc, argv, &file);
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
		shown += stats_topic(sp, names[i], shown, mode, &nsched[i],
		    &due[i]);
		anysched += nsched[i] > 0;
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
