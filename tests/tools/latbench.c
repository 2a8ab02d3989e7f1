/*
 * latbench - end-to-end follow latency: a producer thread writes one
 * 100-byte message at a time, each carrying its send time
 * (CLOCK_MONOTONIC), paced a little apart so that latency is measured,
 * not throughput; a consumer thread in the same process times each
 * message's arrival.  Prints the percentiles in microseconds.
 *
 *	latbench pipe			write to a pipe -> read
 *	latbench append DIR		O_APPEND write to DIR/f -> inotify
 *					(on DIR) -> read
 *	latbench cmd SEND... -- RECV...	write into SEND's stdin; read
 *					RECV's stdout (mq-send | mq-recv -f)
 *	latbench ack SEND...		write into SEND's stdin; read the
 *					offsets it prints (--print-offsets)
 *
 * Environment: LATBENCH_N (messages, default 10000), LATBENCH_GAP_US
 * (microseconds from one send to the next, default 150).
 *
 * In cmd mode RECV must print each message as its payload and a newline
 * (mq-recv's default).  Until RECV prints the first warm-up message
 * (sent every 10 ms), it is not yet following; then the N timed
 * messages go.  Output, one line:
 *	n N p50 X p99 X p999 X max X
 * Exit status 0, or 1 when a message was lost, garbled or late by more
 * than the timeout (10 s without progress).
 *
 * Used by tests/bench.sh (make bench).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <sys/inotify.h>
#include <sys/prctl.h>
#include <sys/types.h>
#include <sys/wait.h>

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define MSG		100	/* bytes a message, the newline included */
#define WARMUP_NS	10000000LL
#define STALL_NS	10000000000LL

static long n = 10000;		/* timed messages */
static long gap_ns = 150000;
static int wfd = -1;		/* the producer writes here */
static int rfd = -1;		/* the consumer reads here */
static int ifd = -1;		/* append: the inotify descriptor */
static int ackmode;		/* rfd carries "PART OFFSET" lines */
static volatile int following;	/* the consumer saw a warm-up message */
static volatile int done;	/* the consumer has all it waits for */
static int64_t *sent;		/* ack: send time of message i */
static double *lat;		/* microseconds, message i */
static long got;
static pid_t spid = -1, rpid = -1;	/* the commands, while they run */

/* reap - at exit, no follower is left running */
static void
reap(void)
{
	if (rpid > 0)
		kill(-rpid, SIGTERM);
	if (spid > 0)
		kill(-spid, SIGTERM);
}

/* now_ns - CLOCK_MONOTONIC in nanoseconds */
static int64_t
now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* die - say why and exit 1 */
static void
die(const char *what)
{
	fprintf(stderr, "latbench: %s: %s\n", what, strerror(errno));
	exit(1);
}

/* writeall - all of p to fd */
static void
writeall(int fd, const char *p, size_t len)
{
	ssize_t w;

	while (len > 0) {
		if ((w = write(fd, p, len)) == -1) {
			if (errno == EINTR)
				continue;
			die("write");
		}
		p += w;
		len -= w;
	}
}

/* sleep_until - absolute CLOCK_MONOTONIC sleep */
static void
sleep_until(int64_t t)
{
	struct timespec ts = { t / 1000000000, t % 1000000000 };

	while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) ==
	    EINTR)
		;
}

/*
 * producer - warm-up messages (sequence -1) every 10 ms until the
 * consumer sees one, then the n timed ones, gap_ns apart; then it
 * closes wfd
 */
static void *
producer(void *arg)
{
	char m[MSG + 1];
	int64_t t, next;
	long i;

	(void)arg;
	(void)prctl(PR_SET_TIMERSLACK, 1UL, 0, 0, 0);
	memset(m, '.', MSG);
	m[MSG - 1] = '\n';
	while (!following && !ackmode) {
		t = now_ns();
		memcpy(m, "W", 1);
		writeall(wfd, m, MSG);
		sleep_until(t + WARMUP_NS);
	}
	next = now_ns();
	for (i = 0; i < n; i++) {
		sleep_until(next);
		t = now_ns();
		/* "T <seq> <ns> ": the consumer parses it back */
		snprintf(m, sizeof(m), "T %08ld %020lld ", i, (long long)t);
		m[strlen(m)] = '.';
		m[MSG - 1] = '\n';
		if (sent != NULL)
			sent[i] = t;
		writeall(wfd, m, MSG);
		/* on schedule; one that went late does not bunch the rest */
		next += gap_ns;
		if (next < t)
			next = t;
	}
	if (close(wfd) == -1)
		die("close");
	wfd = -1;
	return NULL;
}

/* line - one line read back at time t; -1 when it is garbled */
static int
line(const char *p, size_t len, int64_t t)
{
	static long long base = -1;
	long long ts, off;
	long seq;

	if (ackmode) {
		/* "PART OFFSET", one partition: the first is message 0 */
		if (sscanf(p, "%*u %lld", &off) != 1)
			return -1;
		if (base < 0)
			base = off;
		if (off - base != got)
			return -1;
		lat[got] = (t - sent[got]) / 1000.0;
		got++;
		return 0;
	}
	if (len != MSG - 1)
		return -1;
	if (p[0] == 'W') {
		following = 1;
		return 0;
	}
	if (sscanf(p, "T %ld %lld", &seq, &ts) != 2 || seq != got)
		return -1;
	lat[got++] = (t - ts) / 1000.0;
	return 0;
}

/* consume - read rfd (after an inotify event, in append mode) */
static void
consume(void)
{
	static char buf[1 << 16];
	char ev[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
	size_t have = 0, i, s;
	int64_t t, last = now_ns();
	ssize_t r;
	struct pollfd pfd;

	while (got < n) {
		/* a wait that times out now and then, to see a stall */
		pfd.fd = ifd >= 0 ? ifd : rfd;
		pfd.events = POLLIN;
		if ((r = poll(&pfd, 1, 1000)) == -1 && errno != EINTR)
			die("poll");
		if (r <= 0) {
			if (now_ns() - last > STALL_NS) {
				fprintf(stderr, "latbench: stalled after %ld "
				    "of %ld messages\n", got, n);
				exit(1);
			}
			continue;
		}
		if (ifd >= 0 && read(ifd, ev, sizeof(ev)) == -1)
			die("read inotify");
		r = read(rfd, buf + have, sizeof(buf) - have);
		t = now_ns();
		if (r == -1 && errno == EINTR)
			continue;
		if (r == -1)
			die("read");
		if (r == 0 && ifd >= 0)
			continue;	/* an event for what was read before */
		if (r == 0) {
			fprintf(stderr, "latbench: end of input after %ld "
			    "of %ld messages\n", got, n);
			exit(1);
		}
		last = t;
		have += r;
		for (s = 0, i = 0; i < have; i++) {
			if (buf[i] != '\n')
				continue;
			buf[i] = '\0';
			if (line(buf + s, i - s, t) < 0) {
				fprintf(stderr, "latbench: message %ld garbled "
				    "or out of order: %.40s\n", got, buf + s);
				exit(1);
			}
			s = i + 1;
		}
		memmove(buf, buf + s, have - s);
		have -= s;
	}
	done = 1;
}

/* spawn - run argv with stdin and stdout as given */
static pid_t
spawn(char **argv, int in, int out, int closefd)
{
	pid_t pid;

	if ((pid = fork()) == -1)
		die("fork");
	if (pid == 0) {
		/* its own group: what it starts (strace's tracee) ends too */
		(void)setpgid(0, 0);
		if (in != 0 && (dup2(in, 0) == -1 || close(in) == -1))
			_exit(127);
		if (out != 1 && (dup2(out, 1) == -1 || close(out) == -1))
			_exit(127);
		if (closefd >= 0)
			close(closefd);
		execvp(argv[0], argv);
		fprintf(stderr, "latbench: %s: %s\n", argv[0], strerror(errno));
		_exit(127);
	}
	(void)setpgid(pid, pid);
	return pid;
}

static int
cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

/* pct - the p-th percentile (nearest rank) of the sorted lat[] */
static double
pct(double p)
{
	long k = (long)(p / 100.0 * n + 0.999999);

	if (k < 1)
		k = 1;
	if (k > n)
		k = n;
	return lat[k - 1];
}

static void
usage(void)
{
	fprintf(stderr, "usage: latbench pipe | append DIR | "
	    "cmd SEND... -- RECV... | ack SEND...\n");
	exit(2);
}

int
main(int argc, char **argv)
{
	pthread_t th;
	int p[2], q[2], st, bad = 0, i = 0;
	char path[4096], *e;

	if ((e = getenv("LATBENCH_N")) != NULL && (n = atol(e)) < 1)
		usage();
	if ((e = getenv("LATBENCH_GAP_US")) != NULL)
		gap_ns = atol(e) * 1000;
	if (argc < 2)
		usage();
	signal(SIGPIPE, SIG_IGN);
	atexit(reap);
	if ((lat = calloc(n, sizeof(*lat))) == NULL)
		die("calloc");
	if (strcmp(argv[1], "pipe") == 0 && argc == 2) {
		if (pipe(p) == -1)
			die("pipe");
		rfd = p[0];
		wfd = p[1];
	} else if (strcmp(argv[1], "append") == 0 && argc == 3) {
		snprintf(path, sizeof(path), "%s/f", argv[2]);
		if ((wfd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND |
		    O_CLOEXEC, 0644)) == -1 ||
		    (rfd = open(path, O_RDONLY | O_CLOEXEC)) == -1)
			die(path);
		if ((ifd = inotify_init1(IN_CLOEXEC)) == -1 ||
		    inotify_add_watch(ifd, argv[2], IN_MODIFY) == -1)
			die("inotify");
		/* the warm-up is for a command that starts late */
		following = 1;
	} else if (strcmp(argv[1], "cmd") == 0 && argc > 2) {
		for (i = 2; i < argc && strcmp(argv[i], "--") != 0; i++)
			;
		if (i == 2 || i >= argc - 1)
			usage();
		argv[i] = NULL;
		if (pipe2(p, O_CLOEXEC) == -1 || pipe2(q, O_CLOEXEC) == -1)
			die("pipe");
		rpid = spawn(argv + i + 1, 0, q[1], -1);
		spid = spawn(argv + 2, p[0], 1, -1);
		close(p[0]);
		close(q[1]);
		wfd = p[1];
		rfd = q[0];
	} else if (strcmp(argv[1], "ack") == 0 && argc > 2) {
		if (pipe2(p, O_CLOEXEC) == -1 || pipe2(q, O_CLOEXEC) == -1)
			die("pipe");
		spid = spawn(argv + 2, p[0], q[1], -1);
		close(p[0]);
		close(q[1]);
		wfd = p[1];
		rfd = q[0];
		ackmode = 1;
		if ((sent = calloc(n, sizeof(*sent))) == NULL)
			die("calloc");
	} else
		usage();
	if ((errno = pthread_create(&th, NULL, producer, NULL)) != 0)
		die("pthread_create");
	consume();
	if ((errno = pthread_join(th, NULL)) != 0)
		die("pthread_join");
	if (rpid > 0) {
		kill(-rpid, SIGTERM);
		if (waitpid(rpid, &st, 0) == -1)
			die("waitpid");
		rpid = -1;
		if (!WIFEXITED(st) || (WEXITSTATUS(st) != 0 &&
		    WEXITSTATUS(st) != 143)) {
			fprintf(stderr, "latbench: %s exited with %d\n",
			    argv[i + 1], WIFEXITED(st) ? WEXITSTATUS(st) :
			    128 + WTERMSIG(st));
			bad = 1;
		}
	}
	if (spid > 0) {
		if (waitpid(spid, &st, 0) == -1)
			die("waitpid");
		spid = -1;
		if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
			fprintf(stderr, "latbench: %s exited with %d\n",
			    argv[2], WIFEXITED(st) ? WEXITSTATUS(st) :
			    128 + WTERMSIG(st));
			bad = 1;
		}
	}
	qsort(lat, n, sizeof(*lat), cmp);
	printf("n %ld p50 %.1f p99 %.1f p999 %.1f max %.1f\n", n, pct(50),
	    pct(99), pct(99.9), lat[n - 1]);
	return bad;
}
