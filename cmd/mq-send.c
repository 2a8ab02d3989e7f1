/*
 * mq-send - append messages to a topic, from arguments or stdin
 *
 * Options, then libspool: records come from spool_input (stdin split on
 * the delimiter, read ahead while the writer encodes and appends), go
 * through spool_writer, and are durable when this exits 0 unless
 * --no-sync.  While stdin is idle the pending batches are appended at
 * once, so followers see messages without waiting for a full batch.
 *
 * This file holds the usage and main; the options are parsed in
 * send_opts.c, the topic and writer are send_write.c's, the messages
 * from arguments or stdin send_input.c's, and --commit and --abort
 * send_txn.c's.
 */

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "send.h"

static const char usage_text[] =
"usage: mq-send [-0qv] [-D delim] [-H name=value] [-K delim] [-k key] [-p partition]\n"
"               [-s spool] [-z codec[:level]] [--at time | --delay duration]\n"
"               [--id id] [--no-create] [--no-sync] [--print-offsets]\n"
"               [--replicas n [--timeout duration]] [--sync-interval duration]\n"
"               [--progress] [--whole] [-J]\n"
"               [--prepare [--txn-timeout duration] [--check cmd]]\n"
"               topic [message ...]\n"
"       mq-send [-qv] [-s spool] --commit txid | --abort txid\n";

/* usage - the synopsis, as in mq-send(1); exits with status */
void
usage(int status)
{
	fputs(usage_text, status ? stderr : stdout);
	cli_exit(status);
}

int
main(int argc, char *argv[])
{
	struct send_opts o;
	struct spool *sp;
	struct spool_topic *t;
	struct spool_writer *w;
	struct spool_msg base;
	int closed;

	closed = cli_fds();
	memset(&base, 0, sizeof(base));
	send_options(argc, argv, &o);
	if (o.commit != NULL || o.abort_ != NULL)
		return resolve_txn(o.spool, o.commit != NULL ? o.commit :
		    o.abort_, o.commit != NULL);

	/* a write past ulimit -f is an error to report, not a death */
	signal(SIGXFSZ, SIG_IGN);
	send_open(&o, &sp, &t, &w);
	if (o.id != NULL && send_id(&o, sp, t, w, &base)) {
		(void)cli_close(t);
		(void)cli_close(sp);
		(void)cli_close(o.dbuf);
		(void)cli_close(o.kdelim);
		return EX_OK;
	}
	if (o.key != NULL) {
		base.key = o.key;
		base.keylen = strlen(o.key);
	}
	base.headers = o.nheaders ? o.headers : NULL;
	base.nheaders = o.nheaders;

	if (o.argc > 1)
		send_args(&o, sp, w, &base);
	else
		send_stdin(&o, sp, t, w, &base, closed);
	send_done(&o, sp, t, w);
	(void)cli_close(t);
	(void)cli_close(sp);
	(void)cli_close(o.dbuf);
	(void)cli_close(o.kdelim);
	return EX_OK;
}
