/*
 * send_opts.c - mq-send's command line: the getopt_long loop and the
 * checks of options that do not go together, into a struct send_opts;
 * every mistake exits 64 here, before the spool is opened
 */

#include <getopt.h>
#include <string.h>

#include "send.h"

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

/* send_options - parse and check the command line into o, or exit 64 */
void
send_options(int argc, char *argv[], struct send_opts *o)
{
	struct spool_config cfg;
	const char *eq;
	int64_t due = 0, delay = -1;
	int ch, txset = 0, nul = 0, dset = 0, tset = 0, rset = 0;

	memset(o, 0, sizeof(*o));
	o->wo.sync = 1;
	o->wo.codec = -1;
	o->wo.partition = -1;
	o->started = spool_now_ms();
	o->delim = "\n";
	o->dlen = 1;
	o->interval = 1000;
	o->rtimeout = 30000;
	o->rtstr = "30s";
	o->txtimeout = 15 * 60 * 1000;
	o->progress = PROGRESS_AUTO;
	while ((ch = getopt_long(argc, argv, "0D:H:hJK:k:p:qs:vz:", longopts,
	    NULL)) != -1) {
		switch (ch) {
		case '0':
			o->delim = "";
			o->dlen = 1;
			nul = 1;
			break;
		case 'D':
			(void)cli_close(o->dbuf);
			if ((o->delim = o->dbuf = cli_unescape(optarg,
			    &o->dlen)) == NULL)
				cli_usage_die("-D %s: invalid delimiter", optarg);
			cli_own(CLI_MEM, o->dbuf);
			if (o->dlen == 0)
				cli_usage_die("-D \"\": empty delimiter");
			dset = 1;
			break;
		case 'H':
			if ((eq = strchr(optarg, '=')) == NULL)
				cli_usage_die("-H %s: expected name=value",
				    optarg);
			if (eq == optarg)
				cli_usage_die("-H %s: empty header name", optarg);
			if (o->nheaders == MAX_HEADERS)
				cli_usage_die("-H: at most %d headers",
				    MAX_HEADERS);
			o->headers[o->nheaders].name = optarg;
			o->headers[o->nheaders].namelen = eq - optarg;
			o->headers[o->nheaders].value = eq + 1;
			o->headers[o->nheaders].valuelen = strlen(eq + 1);
			o->nheaders++;
			break;
		case 'h':
			usage(EX_OK);
		case 'J':
			o->json = 1;
			break;
		case 'K':
			(void)cli_close(o->kdelim);
			if ((o->kdelim = cli_unescape(optarg,
			    &o->kdlen)) == NULL)
				cli_usage_die("-K %s: invalid delimiter", optarg);
			cli_own(CLI_MEM, o->kdelim);
			if (o->kdlen == 0)
				cli_usage_die("-K \"\": empty delimiter");
			break;
		case 'k':
			o->key = optarg;
			break;
		case 'p':
			o->wo.partition = (int)cli_number(optarg, "partition", 0,
			    65535);
			break;
		case 'q':
			cli_quiet = 1;
			break;
		case 's':
			o->spool = optarg;
			break;
		case 'v':
			cli_verbose = 1;
			break;
		case 'z':
			spool_config_default(&cfg);
			if (spool_config_set(&cfg, "compression", optarg) < 0)
				cli_usage_die("-z %s: expected none, zlib or "
				    "zlib:0-9", optarg);
			o->wo.codec = cfg.codec;
			o->wo.level = cfg.level;
			break;
		case OPT_ABORT:
			o->abort_ = optarg;
			break;
		case OPT_AT:
			if (cli_time(optarg, &due) < 0)
				cli_usage_die("--at %s: invalid time", optarg);
			delay = -1;
			break;
		case OPT_CHECK:
			o->check = optarg;
			if (*o->check == '\0' || strchr(o->check, '\n') != NULL)
				cli_usage_die("--check: a command on one line");
			break;
		case OPT_COMMIT:
			o->commit = optarg;
			break;
		case OPT_DELAY:
			if (cli_duration(optarg, &delay) < 0)
				cli_usage_die("--delay %s: invalid duration",
				    optarg);
			due = 0;
			break;
		case OPT_ID:
			o->id = optarg;
			if (*o->id == '\0' || strlen(o->id) > SPOOL_ID_MAX)
				cli_usage_die("--id: 1 to %d bytes", SPOOL_ID_MAX);
			break;
		case OPT_NO_CREATE:
			o->nocreate = 1;
			break;
		case OPT_NO_SYNC:
			o->wo.sync = 0;
			break;
		case OPT_PREPARE:
			o->prepare = 1;
			break;
		case OPT_PRINT_OFFSETS:
			o->wo.stored = print_stored;
			print_offsets = 1;
			break;
		case OPT_PROGRESS:
			o->progress = PROGRESS_ON;
			break;
		case OPT_REPLICAS:
			o->replicas = (int)cli_number(optarg, "--replicas", 0, 64);
			rset = 1;
			if (o->replicas > 0)
				o->wo.stored = print_stored;
			break;
		case OPT_SYNC_INTERVAL:
			if (cli_duration(optarg, &o->interval) < 0)
				cli_usage_die("--sync-interval %s: invalid "
				    "duration", optarg);
			break;
		case OPT_TIMEOUT:
			tset = 1;
			o->rtstr = optarg;
			if (cli_duration(optarg, &o->rtimeout) < 0 ||
			    o->rtimeout > INT32_MAX)
				cli_usage_die("--timeout %s: invalid duration",
				    optarg);
			break;
		case OPT_TXN_TIMEOUT:
			if (cli_duration(optarg, &o->txtimeout) < 0)
				cli_usage_die("--txn-timeout %s: invalid "
				    "duration", optarg);
			txset = 1;
			break;
		case OPT_VERSION:
			cli_version();
		case OPT_WHOLE:
			o->whole = 1;
			break;
		default:
			usage(EX_USAGE);
		}
	}
	argc -= optind;
	argv += optind;
	o->argc = argc;
	o->argv = argv;
	if (o->commit != NULL || o->abort_ != NULL) {
		/* main resolves it (send_txn.c) */
		if (argc > 0 || (o->commit != NULL && o->abort_ != NULL) ||
		    o->prepare)
			cli_usage_die("--commit and --abort take a transaction "
			    "ID and nothing else");
		return;
	}
	if (tset && !rset)
		cli_usage_die("--timeout goes with --replicas: without it "
		    "mq-send does not wait");
	if (nul && dset)
		cli_usage_die("-0 and -D both end a record; pick one");
	if (o->whole && (nul || dset))
		cli_usage_die("--whole reads all of standard input as one "
		    "message; it takes no -0 or -D");
	if (!o->prepare && (txset || o->check != NULL))
		cli_usage_die("--txn-timeout and --check go with --prepare");
	if (o->prepare && (o->id != NULL || due != 0 || delay >= 0 ||
	    o->wo.stored != NULL))
		cli_usage_die("--prepare takes no --id, --delay, --at, "
		    "--print-offsets or --replicas");
	if (argc < 1)
		usage(EX_USAGE);
	o->topic = argv[0];
	cli_check_topic(o->topic);
	if (o->json && (o->whole || o->kdelim != NULL))
		cli_usage_die("-J reads JSON lines; it takes no --whole or -K");
	if ((due != 0 || delay >= 0) && o->wo.stored != NULL)
		cli_usage_die("--print-offsets: a scheduled message has no "
		    "offset yet");
	/* a time in the past means now */
	if (delay >= 0)
		due = spool_now_ms() + delay;
	if (due > spool_now_ms())
		o->wo.due = due;
}
