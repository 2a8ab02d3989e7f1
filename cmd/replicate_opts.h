/*
 * replicate_opts.h - what the files of mq-replicate share: the options
 * as parsed (replicate_opts.c) and the usage (mq-replicate.c).  Nothing
 * here is used outside mq-replicate.
 */

#ifndef REPLICATE_OPTS_H
#define REPLICATE_OPTS_H

#include <stdint.h>

#include "cli.h"

#define MAX_TOPICS	256

/* the command line, checked: what main goes by */
struct replicate_opts {
	const char	*rsh;		/* -e */
	const char	*rpath;		/* --remote-path */
	const char	*spool;		/* -s: the local spool, or NULL */
	const char	*topics[MAX_TOPICS];	/* -t */
	int		 ntopics;
	int64_t		 timeout;	/* --timeout, ms */
	unsigned	 flags;		/* SPOOL_REPL_*: -f, -n, --delete, ... */
	int		 argc;		/* the operands */
	char		**argv;
	int		 server, sender, promote, progress;
};

/* mq-replicate.c */
void	 usage(int) __attribute__((noreturn));

/* replicate_opts.c */
void	 replicate_options(int, char *[], struct replicate_opts *);

#endif
