/*
 * topic_groups.c - mq-topic groups, reset and delete-group: consumer
 * groups of a topic, their committed offsets and lag (also shown by
 * describe and stats)
 */

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

#include "topic.h"

/*
 * group_lag - a group's lag on one partition: next minus committed, or
 * everything retained when it never committed
 */
uint64_t
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
void
describe_groups(struct spool *sp, struct spool_topic *t)
{
	show_groups(sp, t, NULL, GS_DESCRIBE);
}

/* groups_json - a topic's groups as a JSON array; full: with held */
void
groups_json(struct spool *sp, struct spool_topic *t, int full)
{
	show_groups(sp, t, NULL, full ? GS_JSON_HELD : GS_JSON);
}

/* cmd_groups - groups [--json] topic */
int
cmd_groups(int argc, char *argv[])
{
	struct spool *sp;
	struct spool_topic *t;
	const char *name;
	int json;

	json = topic_cmd(argc, argv, &name, &sp, &t);
	show_groups(sp, t, name, json ? GS_JSON_HELD : GS_TABLE);
	if (json)
		putchar('\n');
	return topic_cmd_done(sp, t);
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
int
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
	t = topic_cmd_open(argv[optind + 1], 0, &sp);
	group_result(sp, argv[optind], spool_group_reset(t, argv[optind], &to));
	return topic_cmd_done(sp, t);
}

/* cmd_delete_group - delete-group group topic */
int
cmd_delete_group(int argc, char *argv[])
{
	struct spool *sp;
	struct spool_topic *t;

	if (argc != 3)
		usage(EX_USAGE);
	cli_check_group(argv[1]);
	t = topic_cmd_open(argv[2], 0, &sp);
	group_result(sp, argv[1], spool_group_delete(t, argv[1]));
	return topic_cmd_done(sp, t);
}
