/*
 * mq-recv - print the messages of a topic
 *
 * Options, then libspool: a spool_reader from the start position, one
 * message at a time, formatted into a large output buffer that is
 * written when full, when the reader has caught up (so that -f shows
 * messages as they come), and at exit.  A closed stdout ends the run
 * quietly with status 0.  Damage is reported as it is met and makes the
 * exit status 65; everything else readable is still printed.
 */

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"

#define OBUF	(1u << 20)

enum { OPT_TIMEOUT = 256, OPT_VERSION };

static const struct option longopts[] = {
	{ "null",	no_argument,		NULL, '0' },
	{ "count",	required_argument,	NULL, 'c' },
	{ "delimiter",	required_argument,	NULL, 'D' },
	{ "format",	required_argument,	NULL, 'F' },
	{ "follow",	no_argument,		NULL, 'f' },
	{ "help",	no_argument,		NULL, 'h' },
	{ "json",	no_argument,		NULL, 'J' },
	{ "offset",	required_argument,	NULL, 'o' },
	{ "partition",	required_argument,	NULL, 'p' },
	{ "quiet",	no_argument,		NULL, 'q' },
	{ "spool",	required_argument,	NULL, 's' },
	{ "until",	required_argument,	NULL, 'u' },
	{ "verbose",	no_argument,		NULL, 'v' },
	{ "timeout",	required_argument,	NULL, OPT_TIMEOUT },
	{ "version",	no_argument,		NULL, OPT_VERSION },
	{ NULL, 0, NULL, 0 }
};

static const char usage_text[] =
"usage: mq-recv [-0fJqv] [-c count] [-D delim] [-F format] [-o offset] [-p partition]\n"
"               [-s spool] [-u offset] [--timeout duration] topic\n";

static void usage(int) __attribute__((noreturn));

static void
usage(int status)
{
	fputs(usage_text, status ? stderr : stdout);
	exit(status);
}

static char *obuf;
static size_t olen;
static volatile sig_atomic_t stop;

/* writeall - write to stdout; a closed pipe ends the run quietly */
static void
writeall(const char *p, size_t len)
{
	ssize_t n;

	while (len > 0) {
		n = write(STDOUT_FILENO, p, len);
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1 && errno == EPIPE)
			exit(EX_OK);
		if (n == -1)
			cli_die(-errno, NULL, "stdout");
		p += n;
		len -= n;
	}
}

/* flush - write out what the buffer holds */
static void
flush(void)
{
	writeall(obuf, olen);
	olen = 0;
}

/* out - queue bytes for stdout */
static void
out(const void *p, size_t n)
{
	if (olen + n > OBUF) {
		flush();
		if (n > OBUF) {
			writeall(p, n);
			return;
		}
	}
	memcpy(obuf + olen, p, n);
	olen += n;
}

/* outnum - a decimal number */
static void
outnum(long long v)
{
	char b[24];

	out(b, snprintf(b, sizeof(b), "%lld", v));
}

/*
 * format - print m by a -F format: kcat's tokens %s %S %k %K %t %p %o
 * %T %h %%; the format was checked by check_format
 */
static void
format(const char *f, size_t flen, const char *topic, const struct spool_msg *m)
{
	const char *end = f + flen, *run;
	size_t i;

	while (f < end) {
		for (run = f; f < end && *f != '%'; f++)
			;
		out(run, f - run);
		if (f++ == end)
			break;
		switch (*f++) {
		case 's': out(m->payload, m->len); break;
		case 'S': outnum((long long)m->len); break;
		case 'k': if (m->key) out(m->key, m->keylen); break;
		case 'K': outnum(m->key ? (long long)m->keylen : -1); break;
		case 't': out(topic, strlen(topic)); break;
		case 'p': outnum(m->partition); break;
		case 'o': outnum((long long)m->offset); break;
		case 'T': outnum(m->ts); break;
		case '%': out("%", 1); break;
		case 'h':
			for (i = 0; i < m->nheaders; i++) {
				if (i > 0)
					out(",", 1);
				out(m->headers[i].name, m->headers[i].namelen);
				out("=", 1);
				out(m->headers[i].value,
				    m->headers[i].valuelen);
			}
			break;
		}
	}
}

/* check_format - exit 64 on a token -F does not know */
static void
check_format(const char *f, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		if (f[i] != '%')
			continue;
		if (++i == n)
			cli_usage_die("-F: %% at the end of the format");
		if (strchr("sSkKtpoTh%", f[i]) == NULL || f[i] == '\0')
			cli_usage_die("-F: unknown token %%%c", f[i]);
	}
}

static void
onsignal(int sig)
{
	(void)sig;
	stop = 1;
}

static void
warn_cb(void *arg, const char *msg)
{
	(void)arg;
	cli_warn("%s", msg);
}

int
main(int argc, char *argv[])
{
	struct spool_reader_opts ro = { .partition = -1 };
	struct spool *sp;
	struct spool_topic *t;
	struct spool_reader *rd;
	struct spool_msg m;
	struct sigaction sa;
	const char *spool = NULL, *topic;
	char *delim = "\n", *fmt = NULL, *jbuf = NULL, *dbuf = NULL;
	size_t dlen = 1, flen = 0, jcap = 0, jlen;
	long long count = -1, got = 0;
	int64_t timeout = -1;
	int ch, r, json = 0, follow = 0, rval = EX_OK;

	ro.start.kind = SPOOL_POS_BEGIN;
	ro.until.kind = SPOOL_POS_NONE;
	while ((ch = getopt_long(argc, argv, "0c:D:F:fhJo:p:qs:u:v", longopts,
	    NULL)) != -1) {
		switch (ch) {
		case '0':
			delim = "";
			dlen = 1;
			break;
		case 'c':
			count = cli_number(optarg, "count", 0, LLONG_MAX);
			break;
		case 'D':
			free(dbuf);
			if ((delim = dbuf = cli_unescape(optarg, &dlen)) == NULL)
				cli_usage_die("-D %s: invalid delimiter", optarg);
			break;
		case 'F':
			free(fmt);
			if ((fmt = cli_unescape(optarg, &flen)) == NULL)
				cli_usage_die("-F %s: invalid escape", optarg);
			check_format(fmt, flen);
			break;
		case 'f':
			follow = 1;
			break;
		case 'h':
			usage(EX_OK);
		case 'J':
			json = 1;
			break;
		case 'o':
			if (cli_pos(optarg, &ro.start) < 0)
				cli_usage_die("-o %s: expected beginning, end, "
				    "N, -N or @TIME", optarg);
			break;
		case 'p':
			ro.partition = (int)cli_number(optarg, "partition", 0,
			    65535);
			break;
		case 'q':
			cli_quiet = 1;
			break;
		case 's':
			spool = optarg;
			break;
		case 'u':
			if (cli_pos(optarg, &ro.until) < 0 ||
			    ro.until.kind == SPOOL_POS_BEGIN)
				cli_usage_die("-u %s: expected N, -N, end or "
				    "@TIME", optarg);
			break;
		case 'v':
			cli_verbose = 1;
			break;
		case OPT_TIMEOUT:
			if (cli_duration(optarg, &timeout) < 0 ||
			    timeout > INT32_MAX)
				cli_usage_die("--timeout %s: invalid duration",
				    optarg);
			break;
		case OPT_VERSION:
			cli_version();
		default:
			usage(EX_USAGE);
		}
	}
	argc -= optind;
	argv += optind;
	if (argc != 1)
		usage(EX_USAGE);
	topic = argv[0];
	cli_check_topic(topic);
	if (json && fmt != NULL)
		cli_usage_die("-J and -F are two output formats; pick one");
	/* -c with --timeout waits for the count like -f */
	if (count >= 0 && timeout >= 0)
		follow = 1;
	ro.follow = follow;
	ro.warn = warn_cb;

	signal(SIGPIPE, SIG_IGN);
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = onsignal;
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	if ((obuf = malloc(OBUF)) == NULL)
		cli_die(-ENOMEM, NULL, "output");

	sp = cli_open_spool(spool, 0);
	if ((r = spool_topic_open(sp, topic, &t)) < 0)
		cli_die(r, sp, r == -ENOENT ? "%s: no such topic" : "%s", topic);
	if ((r = spool_reader_open(t, &ro, &rd)) < 0)
		cli_die(r, sp, r == -ENOENT ? "%s: no such partition" : "%s",
		    topic);
	while (!stop && got != count) {
		r = spool_reader_next(rd, &m);
		if (r == -EBADMSG) {
			cli_warn("%s", spool_errmsg(sp));
			rval = EX_DATAERR;
			continue;
		}
		if (r < 0)
			cli_die(r, sp, "%s", topic);
		if (r == 0) {
			flush();
			if (!follow || spool_reader_done(rd))
				break;
			r = spool_reader_wait(rd, (int)timeout);
			if (r == -ETIMEDOUT) {
				if (cli_verbose)
					cli_warn("%s: no message within the "
					    "timeout", topic);
				rval = rval ? rval : EX_TEMPFAIL;
				break;
			}
			if (r < 0 && r != -EINTR)
				cli_die(r, sp, "%s", topic);
			continue;
		}
		got++;
		if (json) {
			jlen = 0;
			if (spool_json_encode(topic, &m, &jbuf, &jcap,
			    &jlen) < 0)
				cli_die(-ENOMEM, NULL, "output");
			out(jbuf, jlen);
		} else if (fmt != NULL)
			format(fmt, flen, topic, &m);
		else if (olen + m.len + dlen <= OBUF) {
			/* the common case, without two calls to out */
			memcpy(obuf + olen, m.payload, m.len);
			memcpy(obuf + olen + m.len, delim, dlen);
			olen += m.len + dlen;
		} else {
			out(m.payload, m.len);
			out(delim, dlen);
		}
	}
	flush();
	spool_reader_close(rd);
	spool_topic_close(t);
	spool_close(sp);
	free(jbuf);
	free(dbuf);
	free(fmt);
	free(obuf);
	return rval;
}
