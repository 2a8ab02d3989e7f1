/*
 * cli.h - what the mq-* programs share and the library must not do:
 * talking to the user, exit codes, parsing arguments
 */

#ifndef CLI_H
#define CLI_H

#include <stddef.h>
#include <stdint.h>

#include "spool.h"

/* sysexits(3), the codes DESIGN.md fixes */
#define EX_OK		0
#define EX_USAGE	64
#define EX_DATAERR	65
#define EX_NOINPUT	66
#define EX_UNAVAILABLE	69
#define EX_IOERR	74
#define EX_TEMPFAIL	75
#define EX_NOPERM	77

extern int cli_quiet;
extern int cli_verbose;
extern int cli_status_shown;	/* a status line is on the terminal */

int	 cli_fds(void);
int	 cli_exitcode(int negerr);
int64_t	 cli_mono_ns(void);
void	 cli_die(int negerr, struct spool *, const char *fmt, ...)
	    __attribute__((noreturn, format(printf, 3, 4)));
void	 cli_fail(int negerr, const char *fmt, ...)
	    __attribute__((noreturn, format(printf, 2, 3)));
void	 cli_usage_die(const char *fmt, ...)
	    __attribute__((noreturn, format(printf, 1, 2)));
void	 cli_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void	 cli_version(void) __attribute__((noreturn));
void	 cli_exit(int status) __attribute__((noreturn));
const char *cli_spool_path(const char *opt);
struct spool *cli_open_spool(const char *opt, int flags);

/* handles owned until closed, released on every way out (cli_own.c) */
enum cli_kind { CLI_SPOOL, CLI_TOPIC, CLI_WRITER, CLI_READER, CLI_CONSUMER,
	CLI_INPUT, CLI_NAMES, CLI_MEM, CLI_FN, CLI_DEDUP };
void	 cli_own(enum cli_kind, void *);
void	 cli_own_names(char **, size_t);
void	 cli_own_fn(void (*)(void *), void *);
int	 cli_close(void *);
void	 cli_disown(void *);
void	 cli_check_primary(struct spool *, const char *path);
void	 cli_check_topic(const char *);
void	 cli_check_group(const char *);

/* what users type, parsed (cli_parse.c) */
long long cli_number(const char *, const char *what, long long lo, long long hi);
int	 cli_duration(const char *, int64_t *ms);
int	 cli_time(const char *, int64_t *ms);
int	 cli_pos(const char *, struct spool_pos *);
char	*cli_unescape(const char *, size_t *len);
int	 cli_format_ok(const char *, size_t);

/* progress.c: a progress line on stderr for long work */
enum { PROGRESS_AUTO, PROGRESS_ON, PROGRESS_OFF };
void	 progress_start(int mode, const char *name);
void	 progress_tick(unsigned long long msgs, unsigned long long bytes);
void	 progress_end(void);

#endif
