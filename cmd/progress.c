/*
 * progress.c - a progress line on stderr for long work (mq-send)
 *
 * Owns one line on standard error: "prog: topic: N messages, X MB,
 * R messages/s, S MB/s" (rates averaged from the start).  It appears once
 * the work has run for a second, and is redrawn at most four times a
 * second.  On a terminal it is one line rewritten in place ("\r", erase
 * to the end of the line) and erased by progress_end, or before any
 * message cli.c prints (cli_status_shown); asked for where standard error
 * is not a terminal, each update is a line of its own and nothing is
 * erased.  It never decides by itself to show on a non-terminal.
 * The caller says how often to look: progress_tick reads the clock.
 */

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "cli.h"

#define FIRST_MS	1000	/* nothing for work shorter than this */
#define EVERY_MS	250	/* at most four lines a second */

static int on, tty;
static const char *what;
static int64_t started, shown;

/* now_ms - the monotonic clock (cli_mono_ns), in ms */
static int64_t
now_ms(void)
{
	return cli_mono_ns() / 1000000;
}

/*
 * progress_start - mode PROGRESS_AUTO shows the line when stderr is a
 * terminal and stdin is not (a person typing needs no progress line) and
 * not -q; PROGRESS_ON always; PROGRESS_OFF never.  name is the topic.
 */
void
progress_start(int mode, const char *name)
{
	tty = isatty(STDERR_FILENO);
	if (mode == PROGRESS_ON)
		on = 1;
	else if (mode == PROGRESS_AUTO)
		on = tty && !isatty(STDIN_FILENO) && !cli_quiet;
	else
		on = 0;
	what = name;
	started = now_ms();
	shown = 0;
}

/* progress_tick - redraw the line if it is time; msgs and bytes so far */
void
progress_tick(unsigned long long msgs, unsigned long long bytes)
{
	int64_t now, ms;
	double s;

	if (!on)
		return;
	now = now_ms();
	ms = now - started;
	if (ms < FIRST_MS || now - shown < EVERY_MS)
		return;
	shown = now;
	s = ms / 1000.0;
	fprintf(stderr, "%s%s: %s: %llu messages, %.1f MB, %.0f messages/s, "
	    "%.1f MB/s%s", tty ? "\r" : "", program_invocation_short_name,
	    what, msgs, bytes / 1e6, msgs / s, bytes / 1e6 / s,
	    tty ? "\033[K" : "\n");
	fflush(stderr);
	cli_status_shown = tty;
}

/* progress_end - erase the line from the terminal */
void
progress_end(void)
{
	if (on && tty && cli_status_shown) {
		fputs("\r\033[K", stderr);
		fflush(stderr);
		cli_status_shown = 0;
	}
	on = 0;
}
