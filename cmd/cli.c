/*
 * cli.c - the user-facing edge shared by the mq-* programs
 *
 * Everything that prints, exits or reads the environment lives here or
 * in the programs, never in libspool: the one table from -errno to exit
 * status, the message format ("mq-send: jobs: No space left on device"),
 * spool resolution (-s, $MQ_SPOOL, the XDG default) and $MQ_IO.  The
 * handles a program opens are cli_own.c's; the parsers of numbers,
 * durations, times, positions and escapes are cli_parse.c's.
 */

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"

int cli_quiet;
int cli_verbose;

/*
 * cli_fds - make sure descriptors 0, 1 and 2 are open (on /dev/null if
 * they were closed), so that no spool file ever lands on one of them and
 * gets written as if it were stdout; returns a mask of those that were
 * closed (1 << fd)
 */
int
cli_fds(void)
{
	int fd, mask = 0;

	for (fd = 0; fd <= 2; fd++)
		if (fcntl(fd, F_GETFD) == -1 && errno == EBADF) {
			mask |= 1 << fd;
			if (open("/dev/null", fd == 0 ? O_RDONLY : O_WRONLY) != fd)
				exit(EX_IOERR);
		}
	return mask;
}

/*
 * cli_mono_ns - the monotonic clock in ns, for the programs' own pacing
 * (progress.c's redraws, mq-recv --rate); not the wall clock
 */
int64_t
cli_mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* cli_exitcode - the one map from -errno to exit status */
int
cli_exitcode(int negerr)
{
	switch (-negerr) {
	case 0:
		return EX_OK;
	case EINVAL:
	case EEXIST:
	case ENAMETOOLONG:
		return EX_USAGE;
	case EBADMSG:
	case EMSGSIZE:
	case EPROTO:		/* written by a newer mq */
	case ECANCELED:		/* a transaction resolved the other way */
		return EX_DATAERR;
	case ENOENT:
	case ENOTDIR:
		return EX_NOINPUT;
	case EACCES:
	case EPERM:
	case EROFS:
		return EX_NOPERM;
	case ETIMEDOUT:
	case EAGAIN:
	case EINTR:
		return EX_TEMPFAIL;
	default:
		return EX_IOERR;
	}
}

/* a status line on the terminal (progress.c), erased before a message */
int cli_status_shown;

/* status_erase - make room for a message where a status line is shown */
static void
status_erase(void)
{
	if (cli_status_shown) {
		fputs("\r\033[K", stderr);
		cli_status_shown = 0;
	}
}

/* vmsg - "prog: message" on stderr */
static void
vmsg(const char *fmt, va_list ap)
{
	status_erase();
	fprintf(stderr, "%s: ", program_invocation_short_name);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
}

/*
 * cli_die - report an error about an object and exit with its status;
 * for corrupt data the library's detail is added
 */
void
cli_die(int negerr, struct spool *sp, const char *fmt, ...)
{
	va_list ap;
	const char *why;

	fflush(stdout);
	status_erase();
	fprintf(stderr, "%s: ", program_invocation_short_name);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	switch (-negerr) {
	case ENOENT:
		why = "No such file or directory";
		break;
	case EMSGSIZE:
		why = "message larger than max.message.bytes";
		break;
	case EPROTO:
		why = "written by a newer version of mq";
		break;
	default:
		why = strerror(-negerr);
	}
	fprintf(stderr, ": %s", why);
	if (sp != NULL && (negerr == -EBADMSG || negerr == -EINVAL ||
	    negerr == -EPROTO) && *spool_errmsg(sp) != '\0')
		fprintf(stderr, " (%s)", spool_errmsg(sp));
	if (negerr == -EPROTO)
		fputs("; upgrade mq", stderr);
	fputc('\n', stderr);
	exit(cli_exitcode(negerr));
}

/* cli_fail - say what went wrong in our own words; exit as negerr says */
void
cli_fail(int negerr, const char *fmt, ...)
{
	va_list ap;

	fflush(stdout);
	va_start(ap, fmt);
	vmsg(fmt, ap);
	va_end(ap);
	exit(cli_exitcode(negerr));
}

/* cli_usage_die - a bad argument: say why, exit 64 */
void
cli_usage_die(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vmsg(fmt, ap);
	va_end(ap);
	exit(EX_USAGE);
}

/* cli_warn - a warning, unless -q */
void
cli_warn(const char *fmt, ...)
{
	va_list ap;

	if (cli_quiet)
		return;
	va_start(ap, fmt);
	vmsg(fmt, ap);
	va_end(ap);
}

/* cli_version - print "prog VERSION" and exit */
void
cli_version(void)
{
	printf("%s %s\n", program_invocation_short_name, SPOOL_VERSION);
	cli_exit(EX_OK);
}

/*
 * cli_exit - exit with status once stdout is flushed: a help text or a
 * version lost to a full disk or a closed pipe is no success (74)
 */
void
cli_exit(int status)
{
	int e;

	errno = 0;
	if (fflush(stdout) == EOF || ferror(stdout)) {
		e = errno != 0 ? errno : EIO;
		cli_fail(-e, "stdout: %s", strerror(e));
	}
	exit(status);
}

/*
 * cli_check_primary - writers refuse a replica: exit 69 saying how to
 * promote it
 */
void
cli_check_primary(struct spool *sp, const char *path)
{
	char src[64];
	int r;

	if ((r = spool_replica_of(sp, src, sizeof(src))) < 0)
		cli_die(r, sp, "%s/replica", path);
	if (r == 0)
		return;
	fflush(stdout);
	fprintf(stderr, "%s: %s is a replica of %s; mq-replicate --promote "
	    "%s makes it primary\n", program_invocation_short_name, path, src,
	    path);
	exit(EX_UNAVAILABLE);
}

/* cli_spool_path - -s, else $MQ_SPOOL, else the XDG state directory */
const char *
cli_spool_path(const char *opt)
{
	static char buf[PATH_MAX];
	const struct passwd *pw;
	const char *s, *home;

	if (opt != NULL) {
		if (*opt == '\0')
			cli_usage_die("-s \"\": empty spool path");
		return opt;
	}
	if ((s = getenv("MQ_SPOOL")) != NULL && *s != '\0')
		return s;
	if ((s = getenv("XDG_STATE_HOME")) != NULL && *s == '/') {
		snprintf(buf, sizeof(buf), "%s/mq", s);
		return buf;
	}
	/* no HOME (a service started without one): the password database's */
	if (((home = getenv("HOME")) == NULL || *home == '\0') &&
	    ((pw = getpwuid(getuid())) == NULL ||
	    (home = pw->pw_dir) == NULL || *home != '/'))
		cli_usage_die("no spool: set -s, MQ_SPOOL or HOME");
	snprintf(buf, sizeof(buf), "%s/.local/state/mq", home);
	return buf;
}

/* cli_open_spool - open the spool (SPOOL_CREATE: writers) with $MQ_IO's engine */
struct spool *
cli_open_spool(const char *opt, int flags)
{
	enum spool_io_mode mode;
	struct spool *sp;
	const char *path = cli_spool_path(opt), *io = getenv("MQ_IO");
	int r;

	if (spool_io_mode_parse(io, &mode) < 0)
		cli_usage_die("MQ_IO=%s: expected uring or sync", io);
	if ((r = spool_open(&sp, path, flags)) < 0)
		cli_die(r, NULL, "%s", path);
	cli_own(CLI_SPOOL, sp);
	if ((r = spool_set_io(sp, mode)) < 0)
		cli_die(r, NULL, "io_uring (MQ_IO=uring)");
	if (cli_verbose)
		fprintf(stderr, "%s: spool %s, io %s\n",
		    program_invocation_short_name, path, spool_io_name(sp));
	return sp;
}

/* cli_check_topic - exit 64 unless the topic name is valid */
void
cli_check_topic(const char *name)
{
	if (!spool_topic_name_ok(name))
		cli_usage_die("%s: invalid topic name (1 to 249 characters of "
		    "[A-Za-z0-9._-], not . or ..)", name);
}

/* cli_check_group - exit 64 unless the group name is valid */
void
cli_check_group(const char *name)
{
	if (!spool_topic_name_ok(name))
		cli_usage_die("%s: invalid group name (1 to 249 characters of "
		    "[A-Za-z0-9._-], not . or ..)", name);
}
