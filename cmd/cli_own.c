/*
 * cli_own.c - the handles a program opens (the spool, topics, writers,
 * readers, consumers, inputs, lists and buffers), owned from cli_own
 * until cli_close, so that every way out -- a return from main,
 * cli_die, cli_fail, a usage error -- releases them on one path, newest
 * first, and LeakSanitizer has nothing to report whichever exit a
 * program takes.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

#define OWNED_MAX	16

static struct owned {
	enum cli_kind	 kind;
	void		*p;
	size_t		 n;		/* CLI_NAMES: how many */
	void		(*fn)(void *);	/* CLI_FN: what frees it */
} owned[OWNED_MAX];
static size_t nowned;

/*
 * close_owned - close one handle as its kind says; the writer's result
 * counts
 */
static int
close_owned(const struct owned *o)
{
	switch (o->kind) {
	case CLI_SPOOL:
		spool_close(o->p);
		break;
	case CLI_TOPIC:
		spool_topic_close(o->p);
		break;
	case CLI_WRITER:
		return spool_writer_close(o->p);
	case CLI_READER:
		spool_reader_close(o->p);
		break;
	case CLI_CONSUMER:
		spool_consumer_close(o->p);
		break;
	case CLI_INPUT:
		spool_input_close(o->p);
		break;
	case CLI_NAMES:
		for (size_t i = 0; i < o->n; i++)
			free(((char **)o->p)[i]);
		free(o->p);
		break;
	case CLI_MEM:
		free(o->p);
		break;
	case CLI_FN:
		o->fn(o->p);
		break;
	case CLI_DEDUP:
		/* not stored: the marker stays, a retry looks for what was */
		return spool_dedup_end(o->p, 0);
	}
	return 0;
}

/*
 * release_all - at exit, close what is still open, newest first (a
 * writer before its topic, a topic before its spool); a writer closed
 * here on the way out of an error still stores what it was given
 */
static void
release_all(void)
{
	while (nowned > 0) {
		nowned--;
		(void)close_owned(&owned[nowned]);
	}
}

/* cli_own - keep a handle until cli_close, or until the program exits */
void
cli_own(enum cli_kind kind, void *p)
{
	static int registered;

	if (p == NULL)
		return;
	if (!registered) {
		if (atexit(release_all) != 0) {
			fprintf(stderr, "%s: atexit failed\n",
			    program_invocation_short_name);
			exit(EX_IOERR);
		}
		registered = 1;
	}
	if (nowned == OWNED_MAX) {
		/* a programming error, caught by the tests */
		fprintf(stderr, "%s: more than %d handles open\n",
		    program_invocation_short_name, OWNED_MAX);
		abort();
	}
	owned[nowned].kind = kind;
	owned[nowned].p = p;
	owned[nowned].n = 0;
	owned[nowned].fn = NULL;
	nowned++;
}

/* cli_own_names - keep a list of n names (spool_topic_list and the like) */
void
cli_own_names(char **v, size_t n)
{
	cli_own(CLI_NAMES, v);
	if (v != NULL)
		owned[nowned - 1].n = n;
}

/* cli_own_fn - keep p, freed by fn (mq-send -J's decoding state) */
void
cli_own_fn(void (*fn)(void *), void *p)
{
	cli_own(CLI_FN, p);
	if (p != NULL)
		owned[nowned - 1].fn = fn;
}

/* cli_disown - stop owning p: the caller closes it in its own way */
void
cli_disown(void *p)
{
	size_t i;

	for (i = nowned; i-- > 0;)
		if (owned[i].p == p) {
			memmove(&owned[i], &owned[i + 1],
			    (nowned - i - 1) * sizeof(owned[0]));
			nowned--;
			return;
		}
	abort();	/* not ours: a programming error */
}

/*
 * cli_close - close an owned handle now; NULL is no handle.  Returns
 * what closing it returned (a writer's last flush and sync), else 0.
 */
int
cli_close(void *p)
{
	struct owned o;
	size_t i;

	if (p == NULL)
		return 0;
	for (i = nowned; i-- > 0;)
		if (owned[i].p == p) {
			o = owned[i];
			memmove(&owned[i], &owned[i + 1],
			    (nowned - i - 1) * sizeof(owned[0]));
			nowned--;
			return close_owned(&o);
		}
	/* not ours: a programming error, caught by the tests */
	abort();
}
