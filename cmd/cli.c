/*
 * cli.c - the user-facing edge shared by the mq-* programs
 *
 * Everything that prints, exits or reads the environment lives here or
 * in the programs, never in libspool: the one table from -errno to exit
 * status, the message format ("mq-send: jobs: No space left on device"),
 * spool resolution (-s, $MQ_SPOOL, the XDG default), $MQ_IO, and the
 * parsers of numbers, durations, times, positions and escapes.
 *
 * It also owns the handles a program opens (the spool, topics, writers,
 * readers, consumers, inputs, lists and buffers) from cli_own until cli_close, so that
 * every way out -- a return from main, cli_die, cli_fail, a usage
 * error -- releases them on one path, newest first, and LeakSanitizer
 * has nothing to report whichever exit a program takes.
 */

#include <sys/stat.h>

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"

int cli_quiet;
int cli_verbose;

#define OWNED_MAX	16

static struct owned {
	enum cli_kind	 kind;
	void		*p;
	size_t		 n;		/* CLI_NAMES: how many */
	void		(*fn)(void *);	/* CLI_FN: what frees it */
} owned[OWNED_MAX];
static size_t nowned;

/* release - close one handle as its kind says; the writer's result counts */
static int
release(const struct owned *o)
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
		(void)release(&owned[nowned]);
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
			return release(&o);
		}
	/* not ours: a programming error, caught by the tests */
	abort();
}

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
	exit(EX_OK);
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
	const char *s, *home;

	if (opt != NULL)
		return opt;
	if ((s = getenv("MQ_SPOOL")) != NULL && *s != '\0')
		return s;
	if ((s = getenv("XDG_STATE_HOME")) != NULL && *s == '/') {
		snprintf(buf, sizeof(buf), "%s/mq", s);
		return buf;
	}
	if ((home = getenv("HOME")) == NULL || *home == '\0')
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

/* cli_number - a decimal integer in [lo, hi], or exit 64 */
long long
cli_number(const char *s, const char *what, long long lo, long long hi)
{
	char *end;
	long long v;

	errno = 0;
	v = strtoll(s, &end, 10);
	if (*s == '\0' || isspace((unsigned char)*s) || *end != '\0' ||
	    errno != 0 || v < lo || v > hi)
		cli_usage_die("%s: invalid %s (expected %lld to %lld)", s, what,
		    lo, hi);
	return v;
}

/* cli_duration - "1.5s", "200ms", "2m", "1h", "1d", or seconds */
int
cli_duration(const char *s, int64_t *ms)
{
	char *end;
	double v, mult = 1000;

	if (!isdigit((unsigned char)*s) && *s != '.')
		return -EINVAL;
	errno = 0;
	v = strtod(s, &end);
	if (errno != 0 || end == s)
		return -EINVAL;
	if (strcmp(end, "ms") == 0)
		mult = 1;
	else if (strcmp(end, "s") == 0 || *end == '\0')
		mult = 1000;
	else if (strcmp(end, "m") == 0)
		mult = 60000;
	else if (strcmp(end, "h") == 0)
		mult = 3600000;
	else if (strcmp(end, "d") == 0)
		mult = 86400000;
	else
		return -EINVAL;
	if (v * mult > 9e15)
		return -EINVAL;
	*ms = (int64_t)(v * mult + 0.5);
	return 0;
}

/* digits - n decimal digits at *p */
static int
digits(const char **p, int n, int *v)
{
	*v = 0;
	while (n-- > 0) {
		if (!isdigit((unsigned char)**p))
			return 0;
		*v = *v * 10 + (*(*p)++ - '0');
	}
	return 1;
}

/*
 * cli_time - epoch milliseconds, or ISO 8601: YYYY-MM-DD, optionally
 * [T ]HH:MM[:SS[.fff]] and Z or +HH:MM / -HHMM (no zone: UTC)
 */
int
cli_time(const char *s, int64_t *ms)
{
	struct tm tm;
	const char *p = s;
	int y, mo, d, h = 0, mi = 0, sec = 0, frac = 0, zh, zm, sign, n;
	int64_t t;

	if (*s != '\0' && strspn(s, "0123456789") == strlen(s)) {
		errno = 0;
		t = strtoll(s, NULL, 10);
		if (errno != 0)
			return -EINVAL;
		*ms = t;
		return 0;
	}
	if (!digits(&p, 4, &y) || *p++ != '-' || !digits(&p, 2, &mo) ||
	    *p++ != '-' || !digits(&p, 2, &d))
		return -EINVAL;
	if (*p == 'T' || *p == ' ') {
		p++;
		if (!digits(&p, 2, &h) || *p++ != ':' || !digits(&p, 2, &mi))
			return -EINVAL;
		if (*p == ':') {
			p++;
			if (!digits(&p, 2, &sec))
				return -EINVAL;
			if (*p == '.' || *p == ',') {
				p++;
				for (n = 0; isdigit((unsigned char)*p); n++, p++)
					if (n < 3)
						frac = frac * 10 + (*p - '0');
				if (n == 0)
					return -EINVAL;
				for (; n < 3; n++)
					frac *= 10;
			}
		}
	}
	if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 ||
	    sec > 60)
		return -EINVAL;
	memset(&tm, 0, sizeof(tm));
	tm.tm_year = y - 1900;
	tm.tm_mon = mo - 1;
	tm.tm_mday = d;
	tm.tm_hour = h;
	tm.tm_min = mi;
	tm.tm_sec = sec;
	t = (int64_t)timegm(&tm);
	if (*p == 'Z' || *p == 'z')
		p++;
	else if (*p == '+' || *p == '-') {
		sign = *p++ == '-' ? -1 : 1;
		if (!digits(&p, 2, &zh))
			return -EINVAL;
		if (*p == ':')
			p++;
		if (!digits(&p, 2, &zm) || zh > 23 || zm > 59)
			return -EINVAL;
		t -= sign * (zh * 3600 + zm * 60);
	}
	if (*p != '\0')
		return -EINVAL;
	*ms = t * 1000 + frac;
	return 0;
}

/* cli_pos - beginning, end, N, -N or @TIME */
int
cli_pos(const char *s, struct spool_pos *pos)
{
	char *end;
	long long v;

	if (strcmp(s, "beginning") == 0) {
		pos->kind = SPOOL_POS_BEGIN;
		return 0;
	}
	if (strcmp(s, "end") == 0) {
		pos->kind = SPOOL_POS_END;
		return 0;
	}
	if (*s == '@') {
		pos->kind = SPOOL_POS_TIME;
		return cli_time(s + 1, &pos->value);
	}
	if (!isdigit((unsigned char)s[*s == '-']))
		return -EINVAL;
	errno = 0;
	v = strtoll(s, &end, 10);
	if (errno != 0 || *end != '\0' || v == LLONG_MIN)
		return -EINVAL;
	pos->kind = v < 0 || *s == '-' ? SPOOL_POS_FROM_END : SPOOL_POS_OFFSET;
	pos->value = v < 0 ? -v : v;
	return 0;
}

/* cli_unescape - \n \t \r \0 \\ \xNN in a delimiter or format; malloc'd */
char *
cli_unescape(const char *s, size_t *len)
{
	char *out, *o;
	int v, i;

	if ((o = out = malloc(strlen(s) + 1)) == NULL)
		cli_die(-ENOMEM, NULL, "unescape");
	while (*s != '\0') {
		if (*s != '\\') {
			*o++ = *s++;
			continue;
		}
		switch (*++s) {
		case 'n': *o++ = '\n'; s++; break;
		case 't': *o++ = '\t'; s++; break;
		case 'r': *o++ = '\r'; s++; break;
		case '0': *o++ = '\0'; s++; break;
		case '\\': *o++ = '\\'; s++; break;
		case 'x':
			s++;
			for (v = 0, i = 0; i < 2 && isxdigit((unsigned char)*s);
			    i++, s++)
				v = v * 16 + (isdigit((unsigned char)*s) ?
				    *s - '0' : (tolower((unsigned char)*s) -
				    'a' + 10));
			if (i == 0) {
				free(out);
				return NULL;
			}
			*o++ = (char)v;
			break;
		default:
			free(out);
			return NULL;
		}
	}
	*len = o - out;
	return out;
}

/*
 * cli_format_ok - whether a -F format (escapes already undone) uses only
 * kcat's tokens: %s %S %R %k %K %t %p %o %T %h %%
 */
int
cli_format_ok(const char *f, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		if (f[i] != '%')
			continue;
		if (++i == n || f[i] == '\0' || strchr("sSRkKtpoTh%", f[i]) == NULL)
			return -EINVAL;
	}
	return 0;
}
