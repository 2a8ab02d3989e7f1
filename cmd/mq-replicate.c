/*
 * mq-replicate - copy a spool to a replica, locally or over ssh
 *
 * Options, then libspool: the two ends always talk the replication
 * protocol over a pipe, so the local and remote paths are one code
 * path.  Locally the source end is a forked child on a socketpair;
 * remotely it is `CMD [user@]host mq-replicate --server ...` (CMD from -e,
 * default ssh), as rsync does it.  With --follow a broken pipe is
 * reconnected with backoff.  --promote and --server are the other two
 * modes.  All the work is spool_replicate's.
 *
 * This file holds the usage, main and the two ends' sessions (serve,
 * client); the options are parsed in replicate_opts.c.
 */

#include <sys/socket.h>
#include <sys/types.h>
#include <sys/wait.h>

#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "replicate_opts.h"

#define MAX_ARGS	64

static const char usage_text[] =
"usage: mq-replicate [-fnqv] [-e command] [-t topic] [--delete] [--demote]\n"
"                    [--progress] [--remote-path path] [--timeout duration]\n"
"                    source destination\n"
"       mq-replicate [-fnqv] [-s spool] [-e command] [-t topic] [--delete]\n"
"                    [--demote] [--progress] [--remote-path path]\n"
"                    [--timeout duration] destination\n"
"       mq-replicate --promote [-s spool | directory]\n"
"       mq-replicate --server [--read-only] [--sender] directory\n";

/* usage - the synopsis, as in mq-replicate(1); exits with status */
void
usage(int status)
{
	fputs(usage_text, status ? stderr : stdout);
	cli_exit(status);
}

/* progress state: one line on stderr, when it is a terminal */
static int show_progress;
static uint64_t moved, planned;
static struct timespec started, shown;

/* ms_since - milliseconds from a to now */
static int64_t
ms_since(const struct timespec *a)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (int64_t)(now.tv_sec - a->tv_sec) * 1000 +
	    (now.tv_nsec - a->tv_nsec) / 1000000;
}

/*
 * progress - the library moved bytes of topic, or plans to move more;
 * the ETA is of what is planned so far (a partition at a time)
 */
static void
progress(void *arg, const char *topic, uint64_t bytes, uint64_t plan)
{
	char eta[32] = "";
	double rate;
	int64_t ms;

	(void)arg;
	moved += bytes;
	planned += plan;
	if (!show_progress || ms_since(&shown) < 200)
		return;
	clock_gettime(CLOCK_MONOTONIC, &shown);
	ms = ms_since(&started);
	rate = ms > 0 ? moved / 1e3 / ms : 0.0;		/* MB/s */
	if (rate > 0 && planned > moved)
		snprintf(eta, sizeof(eta), " ETA %.0f s",
		    (planned - moved) / 1e6 / rate);
	fprintf(stderr, "\r%-30.30s %12" PRIu64 " bytes %8.1f MB/s%s\033[K",
	    topic ? topic : "", moved, rate, eta);
}

/*
 * say - what the library wants said: with -v only, unless -q, or (where
 * data was kept aside) always
 */
static void
say(void *arg, int verbose, const char *msg)
{
	int quiet = cli_quiet;

	(void)arg;
	if (verbose > 0 && !cli_verbose)
		return;
	if (show_progress)
		fputs("\r\033[K", stderr);
	if (verbose == SPOOL_REPORT_ALWAYS)
		cli_quiet = 0;
	cli_warn("%s", msg);
	cli_quiet = quiet;
}

/*
 * is_remote - [user@]host:path (a colon before any slash), as rsync; a
 * colon with no host before it or no path after it is a usage error
 * (./:x names a local file with a colon)
 */
static int
is_remote(const char *s, char **host, const char **path)
{
	const char *c = strchr(s, ':'), *sl = strchr(s, '/');

	if (c == NULL || (sl != NULL && sl < c))
		return 0;
	if (c == s)
		cli_usage_die("%s: no host before the colon (./%s for a local "
		    "path)", s, s);
	if (c[1] == '\0')
		cli_usage_die("%s: no spool path after the colon", s);
	if ((*host = strndup(s, c - s)) == NULL)
		cli_die(-ENOMEM, NULL, "%s", s);
	*path = c + 1;
	return 1;
}

/* quote - a path as one word for the remote shell */
static char *
quote(const char *s)
{
	char *q, *p;

	if (*s != '\0' && strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmn"
	    "opqrstuvwxyz0123456789/._-+=:@,%") == strlen(s))
		return strdup(s);
	if ((q = malloc(strlen(s) * 4 + 3)) == NULL)
		return NULL;
	p = q;
	*p++ = '\'';
	for (; *s; s++) {
		if (*s == '\'') {
			memcpy(p, "'\\''", 4);
			p += 4;
		} else
			*p++ = *s;
	}
	*p++ = '\'';
	*p = '\0';
	return q;
}

/*
 * spawn - start the other end: a forked server on a socketpair (local
 * source) or CMD host mq-replicate --server ... (remote); returns its pid
 * and our end of the pipe in *fd
 */
static pid_t
spawn(const char *rsh, const char *host, const char *rpath, int sender,
    const char *path, int *fd)
{
	struct spool_repl_opts so;
	char *cmd, *argv[MAX_ARGS], *w, *save = NULL;
	int sv[2], n = 0, r;
	pid_t pid;

	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == -1)
		cli_die(-errno, NULL, "socketpair");
	if ((pid = fork()) == -1)
		cli_die(-errno, NULL, "fork");
	if (pid > 0) {
		close(sv[1]);
		*fd = sv[0];
		return pid;
	}
	close(sv[0]);
	if (host == NULL) {
		/* the local source: the server's code, in-process */
		memset(&so, 0, sizeof(so));
		so.role = SPOOL_REPL_SENDER;
		so.server = 1;
		so.rfd = so.wfd = sv[1];
		so.timeout_ms = 60000;
		r = spool_replicate(path, &so);
		_exit(r == 0 ? EX_OK : r == -SPOOL_EROLE ? EX_UNAVAILABLE :
		    cli_exitcode(r));
	}
	if (dup2(sv[1], STDIN_FILENO) == -1 || dup2(sv[1], STDOUT_FILENO) == -1)
		_exit(EX_IOERR);
	if ((cmd = strdup(rsh)) == NULL)
		_exit(EX_IOERR);
	for (w = strtok_r(cmd, " \t", &save); w != NULL && n < MAX_ARGS - 8;
	    w = strtok_r(NULL, " \t", &save))
		argv[n++] = w;
	if (n == 0) {
		fprintf(stderr, "mq-replicate: -e: empty command\n");
		_exit(EX_USAGE);
	}
	argv[n++] = (char *)host;
	argv[n++] = (char *)rpath;
	argv[n++] = "--server";
	if (sender)
		argv[n++] = "--sender";
	argv[n++] = quote(path);
	argv[n] = NULL;
	execvp(argv[0], argv);
	fprintf(stderr, "mq-replicate: %s: %s\n", argv[0], strerror(errno));
	_exit(errno == ENOENT ? 127 : 126);
}

/* reap_peer - wait for the other end; a stuck one is stopped */
static void
reap_peer(pid_t pid, int fd)
{
	int i, st;

	close(fd);
	for (i = 0; i < 100; i++) {
		if (waitpid(pid, &st, WNOHANG) != 0)
			return;
		usleep(10000);
	}
	kill(pid, SIGTERM);
	(void)waitpid(pid, &st, 0);
}

/* exit_code - the exit status of a session's failure */
static int
exit_code(int r)
{
	if (r == -SPOOL_EROLE)
		return EX_UNAVAILABLE;
	if (r == -EPROTO)
		return EX_DATAERR;
	return cli_exitcode(r);
}

/* transient - whether --follow should reconnect after r */
static int
transient(int r)
{
	switch (-r) {
	case ECONNRESET:
	case EPIPE:
	case ETIMEDOUT:
	case EIO:
		return 1;
	default:
		return 0;
	}
}

/* promote - --promote DIR */
static int
promote(const char *dir)
{
	struct spool *sp;
	uint32_t epoch;
	int r;

	sp = cli_open_spool(dir, 0);
	if ((r = spool_promote(sp, &epoch)) == -EALREADY)
		cli_fail(-EINVAL, "%s: already a primary", dir);
	if (r == -ENOENT)
		cli_fail(r, "%s: not a spool", dir);
	if (r < 0)
		cli_die(r, sp, "%s", dir);
	if (!cli_quiet)
		printf("%s: primary, epoch %" PRIu32 "\n", dir, epoch);
	(void)cli_close(sp);
	return EX_OK;
}

/*
 * serve - --server DIR: the other end of a client's session on stdin
 * and stdout; the client's options arrive in its HELLO
 */
static int
serve(const struct replicate_opts *ro, struct spool_repl_opts *o)
{
	int r;

	if (ro->argc != 1)
		usage(EX_USAGE);
	/* a read-only server serves pulls: it sends */
	o->role = ro->sender || (ro->flags & SPOOL_REPL_READONLY) ?
	    SPOOL_REPL_SENDER : SPOOL_REPL_RECEIVER;
	o->server = 1;
	o->rfd = STDIN_FILENO;
	o->wfd = STDOUT_FILENO;
	o->flags = ro->flags & SPOOL_REPL_READONLY;
	r = spool_replicate(ro->argv[0], o);
	/* the client heard why (an ERROR frame) and says it */
	return r == 0 ? EX_OK : exit_code(r);
}

/*
 * client - source destination: one side local, the other local too or
 * [user@]host:path; with -f the session again after a transient failure
 */
static int
client(const struct replicate_opts *ro, struct spool_repl_opts *o)
{
	const char *src, *dst, *spath = NULL, *dpath = NULL, *local, *rp;
	char *shost = NULL, *dhost = NULL, *host;
	int64_t backoff = 100;
	int r, fd;
	pid_t pid;

	if (ro->argc == 2 && ro->spool != NULL)
		cli_usage_die("give SRC or -s, not both");
	if (ro->argc < 1 || ro->argc > 2 || ro->sender ||
	    (ro->flags & SPOOL_REPL_READONLY))
		usage(EX_USAGE);
	/* one operand: the source is the local spool, as mq-send's */
	src = ro->argc == 2 ? ro->argv[0] : cli_spool_path(ro->spool);
	dst = ro->argv[ro->argc - 1];
	if (ro->argc == 1 || !is_remote(src, &shost, &spath))
		spath = src;
	if (!is_remote(dst, &dhost, &dpath))
		dpath = dst;
	if (shost != NULL && dhost != NULL)
		cli_usage_die("%s, %s: one side must be local", src, dst);
	o->flags = ro->flags;
	o->topics = ro->topics;
	o->ntopics = (size_t)ro->ntopics;
	/* push: a remote destination; else we receive */
	o->role = dhost != NULL ? SPOOL_REPL_SENDER : SPOOL_REPL_RECEIVER;
	local = dhost != NULL ? spath : dpath;
	host = dhost != NULL ? dhost : shost;
	rp = dhost != NULL ? dpath : spath;
	o->peer_path = rp;
	/* both local: the receiver reads the source's segments itself */
	if (shost == NULL && dhost == NULL)
		o->local_src = spath;
	clock_gettime(CLOCK_MONOTONIC, &started);
	for (;;) {
		pid = spawn(ro->rsh, host, ro->rpath, dhost == NULL, rp, &fd);
		o->rfd = o->wfd = fd;
		o->passes = 0;
		r = spool_replicate(local, o);
		reap_peer(pid, fd);
		if (show_progress)
			fputs("\r\033[K", stderr);
		if (r == 0)
			break;
		if (!(ro->flags & SPOOL_REPL_FOLLOW) || !transient(r)) {
			fprintf(stderr, "mq-replicate: %s\n", o->errmsg);
			exit(exit_code(r));
		}
		if (o->passes > 0)
			backoff = 100;
		cli_warn("%s; reconnecting in %.1f s", o->errmsg,
		    backoff / 1000.0);
		usleep((useconds_t)backoff * 1000);
		if (backoff < 5000)
			backoff *= 2;
	}
	if (cli_verbose)
		cli_warn("%" PRIu64 " bytes received, %" PRIu64 " sent",
		    o->bytes_in, o->bytes_out);
	free(shost);
	free(dhost);
	return EX_OK;
}

int
main(int argc, char *argv[])
{
	struct replicate_opts ro;
	struct spool_repl_opts o;

	cli_fds();
	replicate_options(argc, argv, &ro);
	show_progress = ro.progress;
	/* a peer gone is an error to report, not a death */
	signal(SIGPIPE, SIG_IGN);
	if (ro.promote) {
		if (ro.argc > 1 || ro.server)
			usage(EX_USAGE);
		if (ro.argc == 1 && ro.spool != NULL)
			cli_usage_die("give DIRECTORY or -s, not both");
		/* no operand: the local spool */
		return promote(ro.argc == 1 ? ro.argv[0] :
		    cli_spool_path(ro.spool));
	}
	memset(&o, 0, sizeof(o));
	o.timeout_ms = (int)ro.timeout;
	o.report = say;
	o.progress = progress;
	if (ro.server) {
		if (ro.spool != NULL)
			cli_usage_die("--server takes its directory as an "
			    "operand, not -s");
		return serve(&ro, &o);
	}
	return client(&ro, &o);
}
