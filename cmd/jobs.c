/*
 * jobs.c - mq-recv -x: one command a message, retried with backoff
 *
 * Each job owns a copy of its message (the reader's pointers do not
 * outlive the next read), runs CMD through sh -c with the payload on its
 * standard input and MQ_SPOOL, MQ_TOPIC, MQ_PARTITION, MQ_OFFSET,
 * MQ_KEY, MQ_TIMESTAMP, MQ_GROUP, MQ_ATTEMPT and MQ_HEADER_<NAME> in its
 * environment, and is retried after 100 ms, 200 ms, 400 ms... until it
 * exits 0 or has failed retries + 1 times.  A command still running at
 * --exec-timeout is killed (its whole process group) and has failed.
 * Up to max jobs run at once; the caller keeps them on different
 * partitions.
 *
 * Children are waited for with SIGCHLD blocked and sigtimedwait, so that
 * no exit is missed between looking and waiting, and a retry that falls
 * due wakes the wait.  SIGINT and SIGTERM still interrupt it.
 */

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

#include "cli.h"
#include "jobs.h"

#define BACKOFF_MS	100
#define BACKOFF_MAX_MS	30000

static struct job *jobs;
static int njobs;
static struct jobs_opts o;
static sigset_t chld;

/* jobs_init - get ready to run commands as opts say */
void
jobs_init(const struct jobs_opts *opts)
{
	o = *opts;
	if ((jobs = calloc(o.max, sizeof(*jobs))) == NULL)
		cli_die(-ENOMEM, NULL, "jobs");
	sigemptyset(&chld);
	sigaddset(&chld, SIGCHLD);
	sigprocmask(SIG_BLOCK, &chld, NULL);
}

/* jobs_free_slots - how many more jobs may start */
int
jobs_free_slots(void)
{
	return o.max - njobs;
}

/* jobs_count - jobs running or waiting for a retry */
int
jobs_count(void)
{
	return njobs;
}

/* dup_bytes - a malloc'd copy */
static void *
dup_bytes(const void *p, size_t n)
{
	void *d = malloc(n ? n : 1);

	if (d == NULL)
		cli_die(-ENOMEM, NULL, "jobs");
	memcpy(d, p, n);
	return d;
}

/*
 * header_env - MQ_HEADER_<NAME>=value for each header: the name upper
 * case, anything but letters and digits as "_"; a value with a NUL byte
 * is cut there (the environment cannot hold it)
 */
static void
header_env(const struct spool_msg *m)
{
	char name[128], *val;
	size_t i, k, n;

	for (i = 0; i < m->nheaders; i++) {
		const struct spool_header *h = &m->headers[i];

		n = snprintf(name, sizeof(name), "MQ_HEADER_");
		for (k = 0; k < h->namelen && n < sizeof(name) - 1; k++) {
			unsigned char c = ((const unsigned char *)h->name)[k];

			name[n++] = c >= 'a' && c <= 'z' ? c - 'a' + 'A' :
			    (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ?
			    c : '_';
		}
		name[n] = '\0';
		if ((val = malloc(h->valuelen + 1)) == NULL)
			_exit(127);
		memcpy(val, h->value, h->valuelen);
		val[h->valuelen] = '\0';
		setenv(name, val, 1);
		free(val);
	}
}

/* spawn - run the command for job j */
static void
spawn(struct job *j)
{
	char num[4][24];
	int fd[2];
	pid_t pid;
	size_t done = 0;
	ssize_t n;

	if (pipe(fd) == -1)
		cli_die(-errno, NULL, "pipe");
	if ((pid = fork()) == -1)
		cli_die(-errno, NULL, "fork");
	if (pid == 0) {
		/*
		 * First of all let go of the group's lock files: they are
		 * close-on-exec, but a child that shares them until its exec
		 * would keep the locks of a member killed meanwhile.
		 */
		dup2(fd[0], STDIN_FILENO);
		close_range(3, ~0U, 0);
		/*
		 * A process group of its own: a Ctrl-C at the terminal stops
		 * mq-recv, which lets the running command finish and commits
		 * it, rather than killing it halfway.
		 */
		(void)setpgid(0, 0);
		sigprocmask(SIG_UNBLOCK, &chld, NULL);
		signal(SIGPIPE, SIG_DFL);
		snprintf(num[0], sizeof(num[0]), "%" PRIu32, j->msg.partition);
		snprintf(num[1], sizeof(num[1]), "%" PRIu64, j->msg.offset);
		snprintf(num[2], sizeof(num[2]), "%" PRId64, j->msg.ts);
		snprintf(num[3], sizeof(num[3]), "%d", j->attempts + 1);
		setenv("MQ_SPOOL", o.spool, 1);
		setenv("MQ_TOPIC", o.topic, 1);
		setenv("MQ_PARTITION", num[0], 1);
		setenv("MQ_OFFSET", num[1], 1);
		setenv("MQ_TIMESTAMP", num[2], 1);
		if (j->msg.key != NULL)
			setenv("MQ_KEY", j->key, 1);
		else
			unsetenv("MQ_KEY");
		if (o.group != NULL)
			setenv("MQ_GROUP", o.group, 1);
		else
			unsetenv("MQ_GROUP");
		setenv("MQ_ATTEMPT", num[3], 1);
		header_env(&j->msg);
		execl("/bin/sh", "sh", "-c", o.cmd, (char *)NULL);
		_exit(127);
	}
	close(fd[0]);
	/* a command that does not read its input is no error */
	while (done < j->msg.len) {
		n = write(fd[1], (const char *)j->msg.payload + done,
		    j->msg.len - done);
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1)
			break;
		done += n;
	}
	close(fd[1]);
	j->pid = pid;
	j->attempts++;
	j->due = 0;
	j->timedout = 0;
	j->deadline = o.timeout_ms >= 0 ? spool_now_ms() + o.timeout_ms : 0;
}

/* jobs_start - copy message m and run the command for it */
struct job *
jobs_start(const struct spool_msg *m)
{
	struct job *j = &jobs[njobs++];
	size_t i;

	memset(j, 0, sizeof(*j));
	j->msg = *m;
	j->msg.payload = j->payload = dup_bytes(m->payload, m->len);
	if (m->key != NULL) {
		/* a NUL-terminated copy, for MQ_KEY */
		j->key = malloc(m->keylen + 1);
		if (j->key == NULL)
			cli_die(-ENOMEM, NULL, "jobs");
		memcpy(j->key, m->key, m->keylen);
		j->key[m->keylen] = '\0';
		j->msg.key = j->key;
	}
	if (m->nheaders > 0) {
		j->hdrs = dup_bytes(m->headers, m->nheaders * sizeof(*j->hdrs));
		for (i = 0; i < m->nheaders; i++) {
			j->hdrs[i].name = dup_bytes(m->headers[i].name,
			    m->headers[i].namelen);
			j->hdrs[i].value = dup_bytes(m->headers[i].value,
			    m->headers[i].valuelen);
		}
		j->msg.headers = j->hdrs;
	}
	spawn(j);
	return j;
}

/* jobs_end - forget job j (after the caller dealt with its outcome) */
void
jobs_end(struct job *j)
{
	size_t i;

	free(j->payload);
	free(j->key);
	for (i = 0; i < j->msg.nheaders; i++) {
		free((void *)j->hdrs[i].name);
		free((void *)j->hdrs[i].value);
	}
	free(j->hdrs);
	*j = jobs[--njobs];
}

/*
 * jobs_wait - wait (block: up to the next retry; else not at all) for a
 * job to finish for good: returns it, with j->status its exit status
 * (0 ok, >0 the status of the last attempt, 128+N for signal N), or NULL
 */
struct job *
jobs_wait(int block)
{
	struct timespec ts;
	int64_t now, next;
	pid_t pid;
	int st, i;

	for (;;) {
		while ((pid = waitpid(-1, &st, WNOHANG)) > 0) {
			for (i = 0; i < njobs && jobs[i].pid != pid; i++)
				;
			if (i == njobs)
				continue;
			jobs[i].pid = 0;
			jobs[i].status = WIFEXITED(st) ? WEXITSTATUS(st) :
			    128 + WTERMSIG(st);
			if (jobs[i].timedout && jobs[i].status == 0)
				jobs[i].status = 128 + SIGKILL;
			if (jobs[i].timedout)
				cli_warn("%s: offset %" PRIu64 ": killed after "
				    "--exec-timeout", o.topic,
				    jobs[i].msg.offset);
			if (jobs[i].status == 0 || jobs[i].attempts > o.retries)
				return &jobs[i];
			next = (int64_t)BACKOFF_MS << (jobs[i].attempts - 1);
			jobs[i].due = spool_now_ms() +
			    (next > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : next);
			if (cli_verbose)
				cli_warn("%s: offset %" PRIu64 ": exit %d, "
				    "retry %d of %d", o.topic,
				    jobs[i].msg.offset, jobs[i].status,
				    jobs[i].attempts, o.retries);
		}
		now = spool_now_ms();
		next = INT64_MAX;
		for (i = 0; i < njobs; i++) {
			if (jobs[i].pid == 0) {
				if (jobs[i].due > now) {
					if (jobs[i].due < next)
						next = jobs[i].due;
					continue;
				}
				spawn(&jobs[i]);
			}
			if (jobs[i].deadline == 0 || jobs[i].timedout)
				continue;
			if (jobs[i].deadline <= now) {
				/* it hangs: the command and what it started */
				jobs[i].timedout = 1;
				(void)kill(-jobs[i].pid, SIGKILL);
				(void)kill(jobs[i].pid, SIGKILL);
			} else if (jobs[i].deadline < next)
				next = jobs[i].deadline;
		}
		if (!block || njobs == 0)
			return NULL;
		if (next == INT64_MAX) {
			ts.tv_sec = 3600;
			ts.tv_nsec = 0;
		} else {
			ts.tv_sec = (next - now) / 1000;
			ts.tv_nsec = (next - now) % 1000 * 1000000;
		}
		if (sigtimedwait(&chld, NULL, &ts) == -1 && errno == EINTR)
			return NULL;	/* a signal: let the caller look */
	}
}

/* jobs_kill_wait - wait for every running command (at exit) */
void
jobs_kill_wait(void)
{
	int i, st;

	for (i = 0; i < njobs; i++)
		if (jobs[i].pid > 0)
			(void)waitpid(jobs[i].pid, &st, 0);
}
