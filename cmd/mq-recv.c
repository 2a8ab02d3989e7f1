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
 */

#include <errno.h>
#include <fnmatch.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "jobs.h"

#define OBUF		(1u << 20)
#define MAX_FILTERS	32

enum { OPT_DEAD_LETTER = 256, OPT_EXEC_TIMEOUT, OPT_FILTER, OPT_RATE,
	OPT_RETRIES, OPT_SKIP_DAMAGE, OPT_TIMEOUT, OPT_VERSION, OPT_WAIT_TOPIC };

static const struct option longopts[] = {
	{ "null",	 no_argument,		NULL, '0' },
	{ "count",	 required_argument,	NULL, 'c' },
	{ "delimiter",	 required_argument,	NULL, 'D' },
	{ "format",	 required_argument,	NULL, 'F' },
	{ "follow",	 no_argument,		NULL, 'f' },
	{ "group",	 required_argument,	NULL, 'g' },
	{ "help",	 no_argument,		NULL, 'h' },
	{ "json",	 no_argument,		NULL, 'J' },
	{ "jobs",	 required_argument,	NULL, 'j' },
	{ "offset",	 required_argument,	NULL, 'o' },
	{ "partition",	 required_argument,	NULL, 'p' },
	{ "quiet",	 no_argument,		NULL, 'q' },
	{ "spool",	 required_argument,	NULL, 's' },
	{ "until",	 required_argument,	NULL, 'u' },
	{ "verbose",	 no_argument,		NULL, 'v' },
	{ "exec",	 required_argument,	NULL, 'x' },
	{ "dead-letter", required_argument,	NULL, OPT_DEAD_LETTER },
	{ "exec-timeout", required_argument,	NULL, OPT_EXEC_TIMEOUT },
	{ "filter",	 required_argument,	NULL, OPT_FILTER },
	{ "rate",	 required_argument,	NULL, OPT_RATE },
	{ "retries",	 required_argument,	NULL, OPT_RETRIES },
	{ "skip-damage", no_argument,		NULL, OPT_SKIP_DAMAGE },
	{ "wait-topic",	 no_argument,		NULL, OPT_WAIT_TOPIC },
	{ "timeout",	 required_argument,	NULL, OPT_TIMEOUT },
	{ "version",	 no_argument,		NULL, OPT_VERSION },
	{ NULL, 0, NULL, 0 }
};

static const char usage_text[] =
"usage: mq-recv [-0fJqv] [-c count] [-D delim] [-F format] [-g group] [-j jobs]\n"
"               [-o offset] [-p partition] [-s spool] [-u offset] [-x command]\n"
"               [--dead-letter topic] [--exec-timeout duration]\n"
"               [--filter [name=]glob] [--rate n[/s|/m|/h]] [--retries n]\n"
"               [--skip-damage] [--timeout duration] [--wait-topic] topic\n";

static void usage(int) __attribute__((noreturn));

static void
usage(int status)
{
	fputs(usage_text, status ? stderr : stdout);
	exit(status);
}

static char *obuf;
/* -J's line, grown by spool_json_encode; file scope, so never lost */
static char *jbuf;
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

static void commit(void);

/* flush - write out what the buffer holds, then commit what it held */
static void
flush(void)
{
	writeall(obuf, olen);
	olen = 0;
	commit();
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
	int n = snprintf(b, sizeof(b), "%lld", v);

	out(b, n);
}

/* outbe32 - a length as 4 bytes, big-endian (kcat's %R), for framing */
static void
outbe32(size_t v)
{
	unsigned char b[4];

	b[0] = (unsigned char)(v >> 24);
	b[1] = (unsigned char)(v >> 16);
	b[2] = (unsigned char)(v >> 8);
	b[3] = (unsigned char)v;
	out(b, 4);
}

/*
 * format - print m by a -F format: kcat's tokens %s %S %R %k %K %t %p %o
 * %T %h %%; the format was checked by cli_format_ok
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
		case 'R': outbe32(m->len); break;
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

/*
 * The source of messages: a plain reader, or a consumer group member.
 * These wrappers keep the loop in main the same for both.
 */
static struct spool_reader *rd;
static struct spool_consumer *cons;
static struct spool *sp;
static const char *topic;

static int
src_next(struct spool_msg *m)
{
	return cons ? spool_consumer_next(cons, m) : spool_reader_next(rd, m);
}

static int
src_wait(int ms)
{
	return cons ? spool_consumer_wait(cons, ms) : spool_reader_wait(rd, ms);
}

static int
src_done(void)
{
	return cons ? spool_consumer_done(cons) : spool_reader_done(rd);
}

static void
src_pause(uint32_t part, int on)
{
	if (cons)
		(void)spool_consumer_pause(cons, part, on);
	else
		(void)spool_reader_pause(rd, part, on);
}

/* ack - part is consumed up to off; with -x it is committed at once */
static void
ack(uint32_t part, uint64_t off, int now)
{
	int r;

	if (cons == NULL)
		return;
	if ((r = spool_consumer_ack(cons, part, off)) < 0 ||
	    (now && (r = spool_consumer_commit(cons)) < 0))
		cli_die(r, sp, "%s: commit", topic);
}

/* commit - commit what was acked (with -g) */
static void
commit(void)
{
	int r;

	if (cons != NULL && (r = spool_consumer_commit(cons)) < 0)
		cli_die(r, sp, "%s: commit", topic);
}

/* filters: --filter GLOB (the key) and --filter NAME=GLOB (a header) */
static const char *filters[MAX_FILTERS];
static int nfilters;

/* glob_match - fnmatch on bytes that may hold no NUL */
static int
glob_match(const char *glob, const void *s, size_t n)
{
	char buf[256], *b = buf;
	int r;

	if (n >= sizeof(buf) && (b = malloc(n + 1)) == NULL)
		cli_die(-ENOMEM, NULL, "filter");
	memcpy(b, s, n);
	b[n] = '\0';
	r = memchr(s, '\0', n) == NULL && fnmatch(glob, b, 0) == 0;
	if (b != buf)
		free(b);
	return r;
}

/* match - whether m passes every filter */
static int
match(const struct spool_msg *m)
{
	const char *eq;
	size_t i, nl;
	int f, ok;

	for (f = 0; f < nfilters; f++) {
		if ((eq = strchr(filters[f], '=')) == NULL) {
			if (!glob_match(filters[f], m->key ? m->key : "",
			    m->key ? m->keylen : 0))
				return 0;
			continue;
		}
		nl = eq - filters[f];
		for (ok = 0, i = 0; i < m->nheaders && !ok; i++)
			ok = m->headers[i].namelen == nl &&
			    memcmp(m->headers[i].name, filters[f], nl) == 0 &&
			    glob_match(eq + 1, m->headers[i].value,
			    m->headers[i].valuelen);
		if (!ok)
			return 0;
	}
	return 1;
}

/* --rate: at most one message every rate_ns, no bursts */
static int64_t rate_ns, rate_next;

static int64_t
mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* pace - sleep until the next message may go (a signal cuts it short) */
static void
pace(void)
{
	struct timespec ts;
	int64_t now, wait;

	if (rate_ns == 0)
		return;
	now = mono_ns();
	if (rate_next > now) {
		wait = rate_next - now;
		ts.tv_sec = wait / 1000000000;
		ts.tv_nsec = wait % 1000000000;
		nanosleep(&ts, NULL);
		now = mono_ns();
	}
	rate_next = (rate_next > now ? rate_next : now) + rate_ns;
}

/* parse_rate - N, N/s, N/m or N/h */
static void
parse_rate(const char *s)
{
	char *end;
	double n, per = 1e9;

	n = strtod(s, &end);
	if (end == s || n <= 0 || n > 1e9)
		cli_usage_die("--rate %s: expected N, N/s, N/m or N/h", s);
	if (strcmp(end, "/m") == 0)
		per = 60e9;
	else if (strcmp(end, "/h") == 0)
		per = 3600e9;
	else if (*end != '\0' && strcmp(end, "/s") != 0)
		cli_usage_die("--rate %s: expected N, N/s, N/m or N/h", s);
	rate_ns = (int64_t)(per / n);
}

/* the dead-letter topic, opened on first use */
static const char *dlt;
static struct spool_topic *dlt_topic;
static struct spool_writer *dlt_writer;

/* dead_letter - store a failed message, durably, in the dead-letter topic */
static void
dead_letter(const struct job *j)
{
	struct spool_writer_opts wo = { .sync = 1, .codec = -1,
	    .partition = -1 };
	struct spool_header h[64 + 5];
	struct spool_msg m = j->msg;
	char part[24], off[24], st[24], att[24];
	size_t n;
	int r;

	if (dlt_writer == NULL) {
		r = spool_topic_open(sp, dlt, &dlt_topic);
		if (r == -ENOENT) {
			r = spool_topic_create(sp, dlt, NULL);
			if (r == 0 || r == -EEXIST)
				r = spool_topic_open(sp, dlt, &dlt_topic);
		}
		if (r == 0)
			cli_own(CLI_TOPIC, dlt_topic);
		if (r < 0 || (r = spool_writer_open(dlt_topic, &wo,
		    &dlt_writer)) < 0)
			cli_die(r, sp, "%s", dlt);
		cli_own(CLI_WRITER, dlt_writer);
	}
	n = m.nheaders < 64 ? m.nheaders : 64;
	if (n > 0)	/* a message with no headers has NULL for them */
		memcpy(h, m.headers, n * sizeof(*h));
	snprintf(part, sizeof(part), "%" PRIu32, m.partition);
	snprintf(off, sizeof(off), "%" PRIu64, m.offset);
	snprintf(st, sizeof(st), "%d", j->status);
	snprintf(att, sizeof(att), "%d", j->attempts);
#define HDR(k, v) do { h[n].name = k; h[n].namelen = strlen(k); \
	h[n].value = v; h[n].valuelen = strlen(v); n++; } while (0)
	HDR("mq-source-topic", topic);
	HDR("mq-source-partition", part);
	HDR("mq-source-offset", off);
	HDR("mq-exit-status", st);
	HDR("mq-attempts", att);
#undef HDR
	m.headers = h;
	m.nheaders = n;
	m.ts = 0;	/* the dead letter's own time: now */
	m.ts_given = 0;
	/* stored for good before the source message is let go */
	if ((r = spool_writer_add(dlt_writer, &m)) < 0 ||
	    (r = spool_writer_sync(dlt_writer)) < 0)
		cli_die(r, sp, "%s", dlt);
}

static int rval = EX_OK;

/* finish - a command is done with its message for good */
static void
finish(struct job *j)
{
	if (j->status == 0)
		ack(j->msg.partition, j->msg.offset, 1);
	else if (stop) {
		/* cut short by the shutdown: delivered again next time */
		cli_warn("%s: partition %" PRIu32 " offset %" PRIu64 ": exit "
		    "%d while stopping; not committed", topic,
		    j->msg.partition, j->msg.offset, j->status);
	} else if (dlt != NULL) {
		cli_warn("%s: partition %" PRIu32 " offset %" PRIu64 ": exit "
		    "%d after %d attempts; to %s", topic, j->msg.partition,
		    j->msg.offset, j->status, j->attempts, dlt);
		dead_letter(j);
		ack(j->msg.partition, j->msg.offset, 1);
	} else {
		cli_warn("%s: partition %" PRIu32 " offset %" PRIu64 ": exit "
		    "%d after %d attempts; stopping, not committed", topic,
		    j->msg.partition, j->msg.offset, j->status, j->attempts);
		rval = EX_TEMPFAIL;
		stop = 1;
	}
	src_pause(j->msg.partition, 0);
	jobs_end(j);
}

/*
 * sched_touch - move the topic's due scheduled messages; *due is when
 * the next one is, -1 for none or when they cannot be moved by us.  A
 * reader that may not write the spool reads on without moving them; a
 * damaged scheduled file is reported once, and reading goes on.
 */
static int
sched_touch(struct spool_topic *t, int64_t *due)
{
	static int warned;
	int r;

	if ((r = spool_sched_move(t, spool_now_ms(), due)) >= 0)
		return r;
	*due = -1;
	if (r == -EACCES || r == -EPERM || r == -EROFS) {
		if (cli_verbose && !warned++)
			cli_warn("%s: scheduled messages not moved: %s",
			    topic, strerror(-r));
		return 0;
	}
	if (r == -EBADMSG || r == -EPROTO) {
		if (!warned++)
			cli_warn("%s", spool_errmsg(sp));
		rval = EX_DATAERR;
		return 0;
	}
	cli_die(r, sp, "%s: scheduled", topic);
}

/* drain - wait for every command still running, and settle each */
static void
drain(void)
{
	struct job *j;

	while (jobs_count() > 0)
		if ((j = jobs_wait(1)) != NULL)
			finish(j);
}

/* release - a partition goes to another member: settle what is out */
static void
release(void *arg)
{
	(void)arg;
	flush();
	drain();
}

int
main(int argc, char *argv[])
{
	struct spool_reader_opts ro = { .partition = -1 };
	struct spool_consumer_opts co;
	struct spool_topic *t;
	struct spool_msg m;
	struct sigaction sa;
	struct job *j;
	const char *spool = NULL, *group = NULL, *xcmd = NULL;
	char *delim = "\n", *fmt = NULL, *dbuf = NULL;
	size_t dlen = 1, flen = 0, jcap = 0, jlen;
	long long count = -1, got = 0;
	int64_t timeout = -1, last, due;
	struct jobs_opts jo = { .retries = 3, .timeout_ms = -1 };
	const char *spath;
	char rpath[PATH_MAX];
	int ch, r, json = 0, follow = 0, njobs = 1, retries_given = 0, left, wait;
	int closed, delim_given = 0, wait_topic = 0, again = 0;
	char **argv0 = argv;	/* --wait-topic starts again with these */
	int skip = 0;

	closed = cli_fds();
	ro.start.kind = SPOOL_POS_BEGIN;
	ro.until.kind = SPOOL_POS_NONE;
	while ((ch = getopt_long(argc, argv, "0c:D:F:fg:hJj:o:p:qs:u:vx:",
	    longopts, NULL)) != -1) {
		switch (ch) {
		case '0':
			delim = "";
			dlen = 1;
			delim_given = 1;
			break;
		case 'c':
			count = cli_number(optarg, "count", 0, LLONG_MAX);
			break;
		case 'D':
			(void)cli_close(dbuf);
			if ((delim = dbuf = cli_unescape(optarg, &dlen)) == NULL)
				cli_usage_die("-D %s: invalid delimiter", optarg);
			cli_own(CLI_MEM, dbuf);
			delim_given = 1;
			break;
		case 'F':
			(void)cli_close(fmt);
			if ((fmt = cli_unescape(optarg, &flen)) == NULL)
				cli_usage_die("-F %s: invalid escape", optarg);
			cli_own(CLI_MEM, fmt);
			if (cli_format_ok(fmt, flen) < 0)
				cli_usage_die("-F %s: unknown token or %% at the "
				    "end (tokens: %%s %%S %%R %%k %%K %%t %%p %%o "
				    "%%T %%h %%%%)", optarg);
			break;
		case 'f':
			follow = 1;
			break;
		case 'g':
			cli_check_group(optarg);
			group = optarg;
			break;
		case 'h':
			usage(EX_OK);
		case 'J':
			json = 1;
			break;
		case 'j':
			njobs = (int)cli_number(optarg, "job count", 1, 1024);
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
		case 'x':
			xcmd = optarg;
			break;
		case OPT_DEAD_LETTER:
			cli_check_topic(optarg);
			dlt = optarg;
			break;
		case OPT_EXEC_TIMEOUT:
			if (cli_duration(optarg, &jo.timeout_ms) < 0 ||
			    jo.timeout_ms <= 0)
				cli_usage_die("--exec-timeout %s: invalid "
				    "duration", optarg);
			break;
		case OPT_FILTER:
			if (nfilters == MAX_FILTERS)
				cli_usage_die("--filter: at most %d",
				    MAX_FILTERS);
			filters[nfilters++] = optarg;
			break;
		case OPT_RATE:
			parse_rate(optarg);
			break;
		case OPT_RETRIES:
			jo.retries = (int)cli_number(optarg, "retry count", 0,
			    1000);
			retries_given = 1;
			break;
		case OPT_WAIT_TOPIC:
			wait_topic = 1;
			break;
		case OPT_SKIP_DAMAGE:
			skip = 1;
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
	if (group != NULL && ro.partition >= 0)
		cli_usage_die("-g spreads partitions over members; it takes "
		    "no -p");
	if (xcmd != NULL && (json || fmt != NULL))
		cli_usage_die("-x runs a command per message; it prints "
		    "nothing, so -J and -F do not apply");
	if ((dlt != NULL || njobs > 1 || retries_given ||
	    jo.timeout_ms >= 0) && xcmd == NULL)
		cli_usage_die("--dead-letter, --exec-timeout, --retries and -j "
		    "go with -x");
	if (dlt != NULL && strcmp(dlt, topic) == 0)
		cli_usage_die("--dead-letter %s: not the topic itself", dlt);
	if (timeout >= 0 && !follow && count < 0 && !wait_topic)
		cli_usage_die("--timeout goes with -f, -c or --wait-topic: "
		    "without them mq-recv does not wait");
	if (delim_given && (fmt != NULL || json))
		cli_usage_die("-0 and -D end a payload; -F and -J say "
		    "themselves how a message ends");
	/* -c with --timeout waits for the count like -f */
	if (count >= 0 && timeout >= 0)
		follow = 1;

	/* nowhere to print to is an error, unless nothing is printed */
	if ((closed & 1 << STDOUT_FILENO) && xcmd == NULL)
		cli_fail(-EBADF, "stdout: Bad file descriptor (closed)");
	signal(SIGPIPE, SIG_IGN);
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = onsignal;
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	if ((obuf = malloc(OBUF)) == NULL)
		cli_die(-ENOMEM, NULL, "output");
	cli_own(CLI_MEM, obuf);
	if (xcmd != NULL) {
		/* a command that runs mq-send without -s finds this spool */
		spath = cli_spool_path(spool);
		jo.spool = realpath(spath, rpath) != NULL ? rpath : spath;
		jo.cmd = xcmd;
		jo.topic = topic;
		jo.group = group;
		jo.max = njobs;
		jobs_init(&jo);
	}

	sp = cli_open_spool(spool, 0);
	/* --wait-topic: a topic not made yet is waited for, as tail -F does */
	r = wait_topic ? spool_topic_wait(sp, topic, timeout < 0 ? -1 :
	    (int)timeout, &t) : spool_topic_open(sp, topic, &t);
	if (r == -ETIMEDOUT)
		return EX_TEMPFAIL;
	if (r == -EINTR)
		return EX_OK;
	if (r < 0) {
		if (r == -ENOENT)
			cli_fail(r, "%s: No such topic", topic);
		cli_die(r, sp, "%s", topic);
	}
	cli_own(CLI_TOPIC, t);
	/* whoever touches the topic moves what is due */
	(void)sched_touch(t, &due);
	/* ...and aborts timed-out transactions (if it may write) */
	if ((r = spool_txn_tick(t, spool_now_ms(), 0)) < 0 && r != -EACCES &&
	    r != -EPERM && r != -EROFS)
		cli_die(r, sp, "%s: transactions", topic);
	if (group != NULL) {
		memset(&co, 0, sizeof(co));
		co.group = group;
		co.start = ro.start;
		co.until = ro.until;
		co.follow = follow;
		co.skip_damage = skip;
		co.release = release;
		co.warn = warn_cb;
		r = spool_consumer_open(t, &co, &cons);
	} else {
		ro.follow = follow;
		ro.skip_damage = skip;
		ro.warn = warn_cb;
		r = spool_reader_open(t, &ro, &rd);
	}
	if (r < 0) {
		if (r == -ENOENT && ro.partition >= 0 && group == NULL)
			cli_fail(r, "%s: No such partition %d (it has %" PRIu32
			    ", 0 to %" PRIu32 ")", topic, ro.partition,
			    spool_topic_config(t)->partitions,
			    spool_topic_config(t)->partitions - 1);
		cli_die(r, sp, "%s", topic);
	}
	cli_own(CLI_CONSUMER, cons);
	cli_own(CLI_READER, rd);
	last = spool_now_ms();
	while (!stop && got != count) {
		if (xcmd != NULL) {
			while ((j = jobs_wait(0)) != NULL)
				finish(j);
			if (jobs_free_slots() == 0) {
				if ((j = jobs_wait(1)) != NULL)
					finish(j);
				continue;
			}
		}
		r = src_next(&m);
		if (r == -EBADMSG) {
			cli_warn("%s", spool_errmsg(sp));
			rval = EX_DATAERR;
			continue;
		}
		if (r == -EPROTO) {
			/* what came before it is delivered; nothing after */
			if (xcmd != NULL)
				drain();
			flush();
		}
		if (r < 0)
			cli_die(r, sp, "%s", topic);
		if (r == 0) {
			flush();
			if (xcmd != NULL && jobs_count() > 0) {
				if ((j = jobs_wait(1)) != NULL)
					finish(j);
				continue;
			}
			if (!follow || src_done())
				break;
			/* due messages now; a timer for the next due one */
			if (sched_touch(t, &due) > 0)
				continue;
			left = timeout < 0 ? -1 : (int)(timeout -
			    (spool_now_ms() - last));
			wait = left;
			if (due >= 0) {
				due -= spool_now_ms();
				due = due < 0 ? 0 : due;
				if (wait < 0 || due < wait)
					wait = (int)(due > INT32_MAX ?
					    INT32_MAX : due);
			}
			r = timeout >= 0 && left <= 0 ? -ETIMEDOUT :
			    src_wait(wait);
			if (r == -ETIMEDOUT && wait != left)
				continue;	/* something is due */
			if (r == -ETIMEDOUT) {
				if (cli_verbose)
					cli_warn("%s: no message within the "
					    "timeout", topic);
				rval = rval ? rval : EX_TEMPFAIL;
				break;
			}
			if (r == -ENOENT && wait_topic) {
				/* as tail -F: start again on the next one */
				cli_warn("%s: the topic was deleted; waiting for "
				    "it to be made again", topic);
				again = 1;
				break;
			}
			if (r == -ENOENT)	/* the topic was deleted */
				cli_fail(r, "%s: the topic was deleted", topic);
			if (r < 0 && r != -EINTR)
				cli_die(r, sp, "%s", topic);
			continue;
		}
		if (timeout >= 0)
			last = spool_now_ms();
		if (nfilters > 0 && !match(&m)) {
			/* routed elsewhere: consumed, as far as the group goes */
			ack(m.partition, m.offset, 0);
			continue;
		}
		pace();
		got++;
		if (xcmd != NULL) {
			/* the partition's next message waits for this one */
			src_pause(m.partition, 1);
			jobs_start(&m);
			continue;
		}
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
			if (dlen == 1)
				obuf[olen + m.len] = *delim;
			else
				memcpy(obuf + olen + m.len, delim, dlen);
			olen += m.len + dlen;
		} else {
			out(m.payload, m.len);
			out(delim, dlen);
		}
		ack(m.partition, m.offset, 0);
	}
	/* what is under way is finished and committed, then we go */
	if (xcmd != NULL)
		drain();
	flush();
	if ((r = cli_close(dlt_writer)) < 0)
		cli_die(r, sp, "%s", dlt);
	(void)cli_close(dlt_topic);
	/* the group's place is durable before we say we are done */
	if (cons != NULL && (r = spool_consumer_sync(cons)) < 0)
		cli_die(r, sp, "%s: group %s", topic, group);
	(void)cli_close(cons);
	(void)cli_close(rd);
	(void)cli_close(t);
	(void)cli_close(sp);
	(void)cli_close(dbuf);
	(void)cli_close(fmt);
	(void)cli_close(obuf);
	free(jbuf);
	if (again) {
		/* everything above is released; the same command, afresh */
		execv("/proc/self/exe", argv0);
		cli_die(-errno, NULL, "%s: exec", argv0[0]);
	}
	return rval;
}
