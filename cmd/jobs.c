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
#include <spawn.h>
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
 * The environment of one command: ours (MQ_*, owned, first nown
 * entries), then the inherited entries whose names are not ours.
 */
struct env {
	char		**v;
	size_t		  n, cap, nown;
};

/* env_add - append string s to e's vector */
static void
env_add(struct env *e, char *s)
{
	char **v;

	if (e->n + 2 > e->cap) {
		e->cap = e->cap ? 2 * e->cap : 64;
		if ((v = realloc(e->v, e->cap * sizeof(*v))) == NULL)
			cli_die(-ENOMEM, NULL, "jobs");
		e->v = v;
	}
	e->v[e->n++] = s;
	e->v[e->n] = NULL;
}

/*
 * env_put - NAME=value of ours (value len bytes, cut at a NUL byte: the
 * environment cannot hold one), replacing an earlier NAME of ours
 */
static void
env_put(struct env *e, const char *name, const void *val, size_t len)
{
	size_t nl = strlen(name), i;
	char *s;

	len = strnlen(val, len);
	if ((s = malloc(nl + len + 2)) == NULL)
		cli_die(-ENOMEM, NULL, "jobs");
	memcpy(s, name, nl);
	s[nl] = '=';
	memcpy(s + nl + 1, val, len);
	s[nl + 1 + len] = '\0';
	for (i = 0; i < e->n; i++)
		if (strncmp(e->v[i], s, nl + 1) == 0) {
			free(e->v[i]);
			e->v[i] = s;
			return;
		}
	env_add(e, s);
	e->nown = e->n;
}

/* env_ours - whether the inherited entry s names a variable of ours */
static int
env_ours(const struct env *e, const char *s)
{
	/* set, or unset when the message has none */
	static const char *const fixed[] = { "MQ_SPOOL", "MQ_TOPIC",
	    "MQ_PARTITION", "MQ_OFFSET", "MQ_TIMESTAMP", "MQ_KEY",
	    "MQ_GROUP", "MQ_ATTEMPT" };
	size_t nl = strcspn(s, "="), i;

	if (nl < 3 || strncmp(s, "MQ_", 3) != 0)
		return 0;
	for (i = 0; i < sizeof(fixed) / sizeof(fixed[0]); i++)
		if (strlen(fixed[i]) == nl && strncmp(s, fixed[i], nl) == 0)
			return 1;
	for (i = 0; i < e->nown; i++)
		if (strncmp(e->v[i], s, nl + 1) == 0)
			return 1;
	return 0;
}

/*
 * job_env - the environment of job j's command: MQ_SPOOL, MQ_TOPIC,
 * MQ_PARTITION, MQ_OFFSET, MQ_TIMESTAMP, MQ_KEY, MQ_GROUP, MQ_ATTEMPT
 * and MQ_HEADER_<NAME> for each header (the name upper case, anything
 * but letters and digits as "_"), then what mq-recv inherited
 */
static void
job_env(struct env *e, const struct job *j)
{
	char num[24], name[128];
	size_t i, k, n;

#define PUT(k, v) env_put(e, k, v, strlen(v))
	PUT("MQ_SPOOL", o.spool);
	PUT("MQ_TOPIC", o.topic);
	snprintf(num, sizeof(num), "%" PRIu32, j->msg.partition);
	PUT("MQ_PARTITION", num);
	snprintf(num, sizeof(num), "%" PRIu64, j->msg.offset);
	PUT("MQ_OFFSET", num);
	snprintf(num, sizeof(num), "%" PRId64, j->msg.ts);
	PUT("MQ_TIMESTAMP", num);
	if (j->msg.key != NULL)
		PUT("MQ_KEY", j->key);
	if (o.group != NULL)
		PUT("MQ_GROUP", o.group);
	snprintf(num, sizeof(num), "%d", j->attempts + 1);
	PUT("MQ_ATTEMPT", num);
#undef PUT
	for (i = 0; i < j->msg.nheaders; i++) {
		const struct spool_header *h = &j->msg.headers[i];

		n = snprintf(name, sizeof(name), "MQ_HEADER_");
		for (k = 0; k < h->namelen && n < sizeof(name) - 1; k++) {
			unsigned char c = ((const unsigned char *)h->name)[k];

			name[n++] = c >= 'a' && c <= 'z' ? c - 'a' + 'A' :
			    (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ?
			    c : '_';
		}
		name[n] = '\0';
		env_put(e, name, h->value, h->valuelen);
	}
	for (i = 0; environ[i] != NULL; i++)
		if (!env_ours(e, environ[i]))
			env_add(e, environ[i]);
}

/* env_free - let go of what job_env built */
static void
env_free(struct env *e)
{
	size_t i;

	for (i = 0; i < e->nown; i++)
		free(e->v[i]);
	free(e->v);
}

/*
 * spawn - run the command for job j: sh -c CMD, in a process group of
 * its own (a Ctrl-C at the terminal stops mq-recv, which lets the
 * running command finish and commits it, rather than killing it
 * halfway), with SIGCHLD unblocked, SIGPIPE at its default and the
 * payload on its standard input.
 *
 * posix_spawn(3) (a vfork in glibc): no copy of mq-recv's page tables
 * for a process that execs at once, and the child shares the group's
 * lock files (flock(2) locks go with the open file) only while it sets
 * up, mq-recv waiting: a member killed meanwhile leaves them held the
 * shortest time possible.
 */
static void
spawn(struct job *j)
{
	char *argv[] = { "sh", "-c", (char *)o.cmd, NULL };
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t at;
	struct env e = { 0 };
	sigset_t mask, dfl;
	int fd[2], r;
	pid_t pid;
	size_t done = 0;
	ssize_t n;

	if (pipe(fd) == -1)
		cli_die(-errno, NULL, "pipe");
	job_env(&e, j);
	sigprocmask(SIG_SETMASK, NULL, &mask);
	sigdelset(&mask, SIGCHLD);
	sigemptyset(&dfl);
	sigaddset(&dfl, SIGPIPE);
	if ((r = posix_spawnattr_init(&at)) != 0 ||
	    (r = posix_spawnattr_setflags(&at, POSIX_SPAWN_SETPGROUP |
	    POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF)) != 0 ||
	    (r = posix_spawnattr_setpgroup(&at, 0)) != 0 ||
	    (r = posix_spawnattr_setsigmask(&at, &mask)) != 0 ||
	    (r = posix_spawnattr_setsigdefault(&at, &dfl)) != 0 ||
	    (r = posix_spawn_file_actions_init(&fa)) != 0)
		cli_die(-r, NULL, "posix_spawn");
	/* the payload on stdin; nothing else of ours, the pipe's end first */
	if ((r = posix_spawn_file_actions_adddup2(&fa, fd[0],
	    STDIN_FILENO)) != 0 ||
	    (r = posix_spawn_file_actions_addclosefrom_np(&fa, 3)) != 0)
		cli_die(-r, NULL, "posix_spawn");
	r = posix_spawn(&pid, "/bin/sh", &fa, &at, argv, e.v);
	posix_spawn_file_actions_destroy(&fa);
	posix_spawnattr_destroy(&at);
	env_free(&e);
	if (r != 0)
		cli_die(-r, NULL, "/bin/sh");
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
