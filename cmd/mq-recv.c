/*
 * mq-recv - print the messages of a topic, or run a command for each
 *
 * Options, then libspool: a spool_reader (or, with -g, a consumer group
 * member, spool_consumer) from the start position, one message at a
 * time.  Printed messages go into a large output buffer that is written
 * when full, when the reader has caught up (so that -f shows messages as
 * they come), and at exit; with -g a message is committed only after the
 * buffer holding it was written.  With -x each message runs a command
 * (cmd/jobs.c) and is committed when the command exits 0.  A closed
 * stdout ends the run quietly with status 0.  Damage is reported as it
 * is met and makes the exit status 65; everything else is still read.
 * At a hole in a partition's offsets the library stops that partition
 * (unless --skip-damage); at a batch of a newer format we stop, after
 * writing out what came before it.
 *
 * This file holds the usage and main; the options are parsed in
 * recv_opts.c, the loop is recv_loop.c, the output recv_out.c and -x's
 * settling of commands recv_exec.c (running them: jobs.c).
 */

#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "recv.h"

static const char usage_text[] =
"usage: mq-recv [-0fJqv] [-c count] [-D delim] [-F format] [-g group] [-j jobs]\n"
"               [-o offset] [-p partition] [-s spool] [-u offset] [-x command]\n"
"               [--dead-letter topic] [--exec-timeout duration]\n"
"               [--filter [name=]glob] [--rate n[/s|/m|/h]] [--retries n]\n"
"               [--skip-damage] [--timeout duration] [--wait-topic] topic\n";

/* usage - the synopsis, as in mq-recv(1); exits with status */
void
usage(int status)
{
	fputs(usage_text, status ? stderr : stdout);
	cli_exit(status);
}

/* onsignal - SIGINT, SIGTERM: stop after the message at hand */
static void
onsignal(int sig)
{
	(void)sig;
	stop_now();
}

int
main(int argc, char *argv[])
{
	struct recv_opts o;
	struct spool_topic *t;
	struct sigaction sa;
	const char *spath;
	char rpath[PATH_MAX];
	char **argv0 = argv;	/* --wait-topic starts again with these */
	int closed, r, again;

	closed = cli_fds();
	recv_options(argc, argv, &o);

	/* nowhere to print to is an error, unless nothing is printed */
	if ((closed & 1 << STDOUT_FILENO) && o.xcmd == NULL)
		cli_fail(-EBADF, "stdout: Bad file descriptor (closed)");
	signal(SIGPIPE, SIG_IGN);
	stop_init();
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = onsignal;
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	out_init();
	if (o.xcmd != NULL) {
		/* a command that runs mq-send without -s finds this spool */
		spath = cli_spool_path(o.spool);
		o.jo.spool = realpath(spath, rpath) != NULL ? rpath : spath;
		o.jo.cmd = o.xcmd;
		o.jo.topic = recv_topic;
		o.jo.group = o.group;
		o.jo.max = o.njobs;
		jobs_init(&o.jo);
		exec_setup(o.dlt);
	}

	if ((r = recv_open(&o, &t)) == -ETIMEDOUT)
		return EX_TEMPFAIL;
	if (r == -EINTR)
		return EX_OK;
	again = recv_loop(&o, t);
	/* what is under way is finished and committed, then we go */
	if (o.xcmd != NULL)
		drain();
	flush();
	dead_letter_close();
	recv_close(&o, t);
	(void)cli_close(o.dbuf);
	(void)cli_close(o.fmt);
	out_free();
	if (again) {
		/* everything above is released; the same command, afresh */
		execv("/proc/self/exe", argv0);
		cli_die(-errno, NULL, "%s: exec", argv0[0]);
	}
	return rval;
}
