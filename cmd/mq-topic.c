/*
 * mq-topic - create, delete, list, describe, configure and verify topics
 *
 * Global options, a command, its options: each command is a few lines
 * over libspool.  Only create and config write; list, describe and
 * verify without --repair never create or change anything.
 *
 * This file holds the usage, main (global options and the table of
 * commands) and the helpers every command uses.  The commands live in
 * topic_admin.c (create, delete, config), topic_describe.c (list,
 * describe), topic_groups.c (groups, reset, delete-group), topic_txn.c
 * (cancel, abort), topic_verify.c (verify, gc, dump) and topic_stats.c
 * (stats).
 */

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "topic.h"

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

/* the command being run; NULL until main has found it */
static const char *cmd_name;

/*
 * cmd_usage - the one synopsis line of command name, as in mq-topic(1)
 * (continuation lines joined, the global options left out), on stderr
 */
static void
cmd_usage(const char *name)
{
	const char *p, *q, *end;
	size_t len = strlen(name);
	int found = 0;

	for (p = usage_text; *p != '\0'; p = end + 1) {
		end = strchr(p, '\n');
		if ((q = strstr(p, "[-s spool] ")) != NULL && q < end) {
			if (found)
				break;
			q += strlen("[-s spool] ");
			if (strncmp(q, name, len) != 0 ||
			    (q[len] != ' ' && q[len] != '\n'))
				continue;
			found = 1;
			fprintf(stderr, "usage: mq-topic %.*s", (int)(end - q),
			    q);
		} else if (found) {
			q = p + strspn(p, " ");
			fprintf(stderr, " %.*s", (int)(end - q), q);
		}
	}
	if (found)
		fputc('\n', stderr);
	else
		fputs(usage_text, stderr);
}

/*
 * usage - the synopsis, as in mq-topic(1); exits with status.  A usage
 * error inside a command prints that command's line only.
 */
void
usage(int status)
{
	/* "mq-topic list -s DIR": the common options go first, as git's */
	if (status != EX_OK && cmd_name != NULL && optopt != 0 &&
	    strchr("qsv", optopt) != NULL)
		fprintf(stderr, "mq-topic: -%c goes before the command: "
		    "mq-topic -%c%s %s ...\n", optopt, optopt,
		    optopt == 's' ? " spool" : "", cmd_name);
	if (status != EX_OK && cmd_name != NULL)
		cmd_usage(cmd_name);
	else
		fputs(usage_text, status ? stderr : stdout);
	cli_exit(status);
}

/* -s spool, or NULL: cli_spool_path resolves it */
const char *spool_opt;

/* open_topic - open an existing topic or exit 66 */
struct spool_topic *
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
 * listed_open - open a topic of a whole-spool listing, owned: NULL for
 * one deleted since the listing or a directory that is no topic (no
 * config), which such a command passes over; exits on other errors
 */
struct spool_topic *
listed_open(struct spool *sp, const char *name)
{
	struct spool_topic *t;
	int r;

	if ((r = spool_topic_open(sp, name, &t)) == -ENOENT)
		return NULL;
	if (r < 0)
		cli_die(r, sp, "%s", name);
	cli_own(CLI_TOPIC, t);
	return t;
}

/*
 * topic_cmd_open - the spool and the topic name of a command open, both
 * owned; change: the command changes the topic, so a replica refuses
 */
struct spool_topic *
topic_cmd_open(const char *name, int change, struct spool **sp)
{
	*sp = cli_open_spool(spool_opt, 0);
	if (change)
		cli_check_primary(*sp, cli_spool_path(spool_opt));
	return open_topic(*sp, name);
}

/*
 * topic_cmd - the start of a command "[--json] topic": its options, its
 * one operand (*name), the spool and the topic open; 1 if --json was given
 */
int
topic_cmd(int argc, char *argv[], const char **name, struct spool **sp,
    struct spool_topic **t)
{
	int json;

	json = json_opt(argc, argv);
	if (argc - optind != 1)
		usage(EX_USAGE);
	*name = argv[optind];
	*t = topic_cmd_open(*name, 0, sp);
	return json;
}

/* topic_cmd_done - the end of a command over a topic: both closed, EX_OK */
int
topic_cmd_done(struct spool *sp, struct spool_topic *t)
{
	(void)cli_close(t);
	(void)cli_close(sp);
	return EX_OK;
}

/*
 * json_opt - the options of a command that takes only --json: 1 if it
 * was given; optind is then at the first operand
 */
int
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

/* iso_time - ms since the epoch as ISO 8601 UTC, in a static buffer */
const char *
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

/* topic_report - print one finding of verify or gc, unless -q */
void
topic_report(void *arg, const char *msg)
{
	(void)arg;
	if (!cli_quiet)
		printf("%s\n", msg);
}

/* topics - the named topic, or every topic; owned, cli_close frees them */
char **
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
	int ch, r;

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
			cmd_name = cmds[i].name;
			/* getopt's own messages start "mq-topic: " too */
			argv[0] = program_invocation_short_name;
			r = cmds[i].fn(argc, argv);
			/* a table lost to a full disk is no success */
			errno = 0;
			if (fflush(stdout) == EOF || ferror(stdout))
				cli_die(errno != 0 ? -errno : -EIO, NULL,
				    "stdout");
			return r;
		}
	cli_usage_die("%s: unknown command", argv[0]);
}
