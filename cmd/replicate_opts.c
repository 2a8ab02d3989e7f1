/*
 * replicate_opts.c - mq-replicate's command line: the getopt_long loop
 * into a struct replicate_opts; a malformed option exits 64 here, before
 * any spool is opened.  Which options go with which mode is main's.
 */

#include <getopt.h>
#include <string.h>
#include <unistd.h>

#include "replicate_opts.h"

enum { OPT_DELETE = 256, OPT_DEMOTE, OPT_PROGRESS, OPT_PROMOTE,
	OPT_READ_ONLY, OPT_REMOTE_PATH, OPT_SENDER, OPT_SERVER, OPT_TIMEOUT,
	OPT_VERSION };

static const struct option longopts[] = {
	{ "rsh",		required_argument,	NULL, 'e' },
	{ "follow",		no_argument,		NULL, 'f' },
	{ "help",		no_argument,		NULL, 'h' },
	{ "dry-run",		no_argument,		NULL, 'n' },
	{ "quiet",		no_argument,		NULL, 'q' },
	{ "spool",		required_argument,	NULL, 's' },
	{ "topic",		required_argument,	NULL, 't' },
	{ "verbose",		no_argument,		NULL, 'v' },
	{ "delete",		no_argument,		NULL, OPT_DELETE },
	{ "demote",		no_argument,		NULL, OPT_DEMOTE },
	{ "progress",		no_argument,		NULL, OPT_PROGRESS },
	{ "promote",		no_argument,		NULL, OPT_PROMOTE },
	{ "read-only",		no_argument,		NULL, OPT_READ_ONLY },
	{ "remote-path",	required_argument,	NULL, OPT_REMOTE_PATH },
	{ "sender",		no_argument,		NULL, OPT_SENDER },
	{ "server",		no_argument,		NULL, OPT_SERVER },
	{ "timeout",		required_argument,	NULL, OPT_TIMEOUT },
	{ "version",		no_argument,		NULL, OPT_VERSION },
	{ NULL, 0, NULL, 0 }
};

/* replicate_options - parse the command line into o, or exit 64 */
void
replicate_options(int argc, char *argv[], struct replicate_opts *o)
{
	int ch, i;

	memset(o, 0, sizeof(*o));
	o->rsh = "ssh";
	o->rpath = "mq-replicate";
	o->timeout = 60000;
	while ((ch = getopt_long(argc, argv, "e:fhnqs:t:v", longopts, NULL)) !=
	    -1) {
		switch (ch) {
		case 'e':
			o->rsh = optarg;
			break;
		case 'f':
			o->flags |= SPOOL_REPL_FOLLOW;
			break;
		case 'h':
			usage(EX_OK);
		case 'n':
			o->flags |= SPOOL_REPL_DRYRUN;
			break;
		case 'q':
			cli_quiet = 1;
			break;
		case 's':
			o->spool = optarg;
			break;
		case 't':
			cli_check_topic(optarg);
			if (o->ntopics == MAX_TOPICS)
				cli_usage_die("-t: at most %d topics",
				    MAX_TOPICS);
			o->topics[o->ntopics++] = optarg;
			break;
		case 'v':
			cli_verbose = 1;
			break;
		case OPT_DELETE:
			o->flags |= SPOOL_REPL_DELETE;
			break;
		case OPT_DEMOTE:
			o->flags |= SPOOL_REPL_DEMOTE;
			break;
		case OPT_PROGRESS:
			o->progress = isatty(STDERR_FILENO);
			break;
		case OPT_PROMOTE:
			o->promote = 1;
			break;
		case OPT_READ_ONLY:
			o->flags |= SPOOL_REPL_READONLY;
			break;
		case OPT_REMOTE_PATH:
			o->rpath = optarg;
			break;
		case OPT_SENDER:
			o->sender = 1;
			break;
		case OPT_SERVER:
			o->server = 1;
			break;
		case OPT_TIMEOUT:
			if (cli_duration(optarg, &o->timeout) < 0 ||
			    o->timeout <= 0 || o->timeout > 86400000)
				cli_usage_die("--timeout %s: invalid duration",
				    optarg);
			break;
		case OPT_VERSION:
			cli_version();
		default:
			usage(EX_USAGE);
		}
	}
	o->argc = argc - optind;
	o->argv = argv + optind;
	for (i = 0; i < o->argc; i++)
		if (*o->argv[i] == '\0')
			cli_usage_die("\"\": empty spool path");
}
