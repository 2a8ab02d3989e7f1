/*
 * recv_opts.c - mq-recv's command line: the getopt_long loop and the
 * checks of options that do not go together, into a struct recv_opts;
 * every mistake exits 64 here, before the spool is opened
 */

#include <getopt.h>
#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "recv.h"

enum { OPT_DEAD_LETTER = 256, OPT_EXEC_TIMEOUT, OPT_FILTER, OPT_RATE,
	OPT_RETRIES, OPT_SKIP_DAMAGE, OPT_TIMEOUT, OPT_VERSION, OPT_WAIT_TOPIC };

static const struct option longopts[] = {
	{ "null",	 no_argument,		NULL, '0' },
	{ "count",	 required_argument,	NULL, 'c' },
	{ "delimiter",	 required_argument,	NULL, 'D' },
	{ "format",	 required_argument,	NULL, 'F' },
	{ "follow",	 no_argument,		NULL, 'f' },
	{ "group",	 required_argument,	NULL, 'g' },
	{ "help",	 no_argument,		NULL, 'h' },
	{ "json",	 no_argument,		NULL, 'J' },
	{ "jobs",	 required_argument,	NULL, 'j' },
	{ "offset",	 required_argument,	NULL, 'o' },
	{ "partition",	 required_argument,	NULL, 'p' },
	{ "quiet",	 no_argument,		NULL, 'q' },
	{ "spool",	 required_argument,	NULL, 's' },
	{ "until",	 required_argument,	NULL, 'u' },
	{ "verbose",	 no_argument,		NULL, 'v' },
	{ "exec",	 required_argument,	NULL, 'x' },
	{ "dead-letter", required_argument,	NULL, OPT_DEAD_LETTER },
	{ "exec-timeout", required_argument,	NULL, OPT_EXEC_TIMEOUT },
	{ "filter",	 required_argument,	NULL, OPT_FILTER },
	{ "rate",	 required_argument,	NULL, OPT_RATE },
	{ "retries",	 required_argument,	NULL, OPT_RETRIES },
	{ "skip-damage", no_argument,		NULL, OPT_SKIP_DAMAGE },
	{ "timeout",	 required_argument,	NULL, OPT_TIMEOUT },
	{ "version",	 no_argument,		NULL, OPT_VERSION },
	{ "wait-topic",	 no_argument,		NULL, OPT_WAIT_TOPIC },
	{ NULL, 0, NULL, 0 }
};

/* parse_rate - N, N/s, N/m or N/h */
static int64_t
parse_rate(const char *s)
{
	char *end;
	double n, per = 1e9;

	n = strtod(s, &end);
	if (end == s || n <= 0 || n > 1e9)
		cli_usage_die("--rate %s: expected N, N/s, N/m or N/h", s);
	if (strcmp(end, "/m") == 0)
		per = 60e9;
	else if (strcmp(end, "/h") == 0)
		per = 3600e9;
	else if (*end != '\0' && strcmp(end, "/s") != 0)
		cli_usage_die("--rate %s: expected N, N/s, N/m or N/h", s);
	return (int64_t)(per / n);
}

/* recv_options - parse and check the command line into o, or exit 64 */
void
recv_options(int argc, char *argv[], struct recv_opts *o)
{
	int ch, delim_given = 0, retries_given = 0;

	memset(o, 0, sizeof(*o));
	o->ro.partition = -1;
	o->jo.retries = 3;
	o->jo.timeout_ms = -1;
	o->delim = "\n";
	o->dlen = 1;
	o->count = -1;
	o->timeout = -1;
	o->njobs = 1;
	o->ro.start.kind = SPOOL_POS_BEGIN;
	o->ro.until.kind = SPOOL_POS_NONE;
	while ((ch = getopt_long(argc, argv, "0c:D:F:fg:hJj:o:p:qs:u:vx:",
	    longopts, NULL)) != -1) {
		switch (ch) {
		case '0':
			o->delim = "";
			o->dlen = 1;
			delim_given = 1;
			break;
		case 'c':
			o->count = cli_number(optarg, "count", 0, LLONG_MAX);
			break;
		case 'D':
			(void)cli_close(o->dbuf);
			if ((o->delim = o->dbuf = cli_unescape(optarg,
			    &o->dlen)) == NULL)
				cli_usage_die("-D %s: invalid delimiter", optarg);
			cli_own(CLI_MEM, o->dbuf);
			if (o->dlen == 0)
				cli_usage_die("-D \"\": empty delimiter");
			delim_given = 1;
			break;
		case 'F':
			(void)cli_close(o->fmt);
			if ((o->fmt = cli_unescape(optarg, &o->flen)) == NULL)
				cli_usage_die("-F %s: invalid escape", optarg);
			cli_own(CLI_MEM, o->fmt);
			if (cli_format_ok(o->fmt, o->flen) < 0)
				cli_usage_die("-F %s: unknown token or %% at the "
				    "end (tokens: %%s %%S %%R %%k %%K %%t %%p %%o "
				    "%%T %%h %%%%)", optarg);
			break;
		case 'f':
			o->follow = 1;
			break;
		case 'g':
			cli_check_group(optarg);
			o->group = optarg;
			break;
		case 'h':
			usage(EX_OK);
		case 'J':
			o->json = 1;
			break;
		case 'j':
			o->njobs = (int)cli_number(optarg, "job count", 1, 1024);
			break;
		case 'o':
			if (cli_pos(optarg, &o->ro.start) < 0)
				cli_usage_die("-o %s: expected beginning, end, "
				    "N, -N or @TIME", optarg);
			break;
		case 'p':
			o->ro.partition = (int)cli_number(optarg, "partition", 0,
			    65535);
			break;
		case 'q':
			cli_quiet = 1;
			break;
		case 's':
			o->spool = optarg;
			break;
		case 'u':
			if (cli_pos(optarg, &o->ro.until) < 0 ||
			    o->ro.until.kind == SPOOL_POS_BEGIN)
				cli_usage_die("-u %s: expected N, -N, end or "
				    "@TIME", optarg);
			break;
		case 'v':
			cli_verbose = 1;
			break;
		case 'x':
			if (*optarg == '\0')
				cli_usage_die("-x \"\": empty command");
			o->xcmd = optarg;
			break;
		case OPT_DEAD_LETTER:
			cli_check_topic(optarg);
			o->dlt = optarg;
			break;
		case OPT_EXEC_TIMEOUT:
			if (cli_duration(optarg, &o->jo.timeout_ms) < 0 ||
			    o->jo.timeout_ms <= 0)
				cli_usage_die("--exec-timeout %s: invalid "
				    "duration", optarg);
			break;
		case OPT_FILTER:
			if (*optarg == '=')
				cli_usage_die("--filter %s: empty header name",
				    optarg);
			if (o->nfilters == MAX_FILTERS)
				cli_usage_die("--filter: at most %d",
				    MAX_FILTERS);
			o->filters[o->nfilters++] = optarg;
			break;
		case OPT_RATE:
			o->rate_ns = parse_rate(optarg);
			break;
		case OPT_RETRIES:
			o->jo.retries = (int)cli_number(optarg, "retry count", 0,
			    1000);
			retries_given = 1;
			break;
		case OPT_SKIP_DAMAGE:
			o->skip = 1;
			break;
		case OPT_TIMEOUT:
			if (cli_duration(optarg, &o->timeout) < 0 ||
			    o->timeout > INT32_MAX)
				cli_usage_die("--timeout %s: invalid duration",
				    optarg);
			break;
		case OPT_VERSION:
			cli_version();
		case OPT_WAIT_TOPIC:
			o->wait_topic = 1;
			break;
		default:
			usage(EX_USAGE);
		}
	}
	argc -= optind;
	argv += optind;
	if (argc != 1)
		usage(EX_USAGE);
	recv_topic = argv[0];
	cli_check_topic(recv_topic);
	if (o->json && o->fmt != NULL)
		cli_usage_die("-J and -F are two output formats; pick one");
	if (o->group != NULL && o->ro.partition >= 0)
		cli_usage_die("-g spreads partitions over members; it takes "
		    "no -p");
	if (o->xcmd != NULL && (o->json || o->fmt != NULL))
		cli_usage_die("-x runs a command per message; it prints "
		    "nothing, so -J and -F do not apply");
	if ((o->dlt != NULL || o->njobs > 1 || retries_given ||
	    o->jo.timeout_ms >= 0) && o->xcmd == NULL)
		cli_usage_die("--dead-letter, --exec-timeout, --retries and -j "
		    "go with -x");
	if (o->dlt != NULL && strcmp(o->dlt, recv_topic) == 0)
		cli_usage_die("--dead-letter %s: not the topic itself", o->dlt);
	if (o->timeout >= 0 && !o->follow && o->count < 0 && !o->wait_topic)
		cli_usage_die("--timeout goes with -f, -c or --wait-topic: "
		    "without them mq-recv does not wait");
	if (delim_given && (o->fmt != NULL || o->json))
		cli_usage_die("-0 and -D end a payload; -F and -J say "
		    "themselves how a message ends");
	/* -c with --timeout waits for the count like -f */
	if (o->count >= 0 && o->timeout >= 0)
		o->follow = 1;
}
