/*
 * topic_txn.c - mq-topic cancel and abort, and the rest of the
 * commands' dealings with scheduled messages and transactions: the
 * open transactions table (describe, stats) and gc's --check commands
 */

#include <sys/wait.h>

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "topic.h"

/* cmd_cancel - cancel topic id: drop the scheduled messages sent with id */
int
cmd_cancel(int argc, char *argv[])
{
	struct spool *sp;
	struct spool_topic *t;
	int r;

	if (argc != 3)
		usage(EX_USAGE);
	if (*argv[2] == '\0' || strlen(argv[2]) > SPOOL_ID_MAX)
		cli_usage_die("cancel: an ID is 1 to %d bytes", SPOOL_ID_MAX);
	t = topic_cmd_open(argv[1], 1, &sp);
	/* what is due now is no longer scheduled: it goes to its partition */
	if ((r = spool_sched_move(t, spool_now_ms(), NULL)) < 0 ||
	    (r = spool_sched_cancel(t, argv[2], strlen(argv[2]))) < 0)
		cli_die(r, sp, "%s: scheduled", argv[1]);
	if (r == 0)
		cli_fail(-ENOENT, "%s: %s: No such scheduled message",
		    argv[1], argv[2]);
	if (cli_verbose)
		cli_warn("%s: %s: %d scheduled messages cancelled", argv[1],
		    argv[2], r);
	return topic_cmd_done(sp, t);
}

/* json_puts - s as a JSON string (a --check command may need escapes) */
static void
json_puts(const char *s)
{
	putchar('"');
	for (; *s != '\0'; s++) {
		if (*s == '"' || *s == '\\')
			printf("\\%c", *s);
		else if ((unsigned char)*s < 0x20)
			printf("\\u%04x", (unsigned char)*s);
		else
			putchar(*s);
	}
	putchar('"');
}

/* open_txns - how many transactions of a topic are open (stats) */
size_t
open_txns(struct spool *sp, struct spool_topic *t, const char *name)
{
	struct spool_txn_info *v;
	size_t n;
	int r;

	if ((r = spool_txn_list(t, &v, &n)) < 0)
		cli_die(r, sp, "%s: transactions", name);
	spool_txn_list_free(v, n);
	return n;
}

/*
 * describe_txns - the open transactions of a topic, oldest first: a
 * table (json 0) or a JSON array
 */
void
describe_txns(struct spool *sp, struct spool_topic *t, const char *name,
    int json)
{
	struct spool_txn_info *v;
	int64_t now = spool_now_ms();
	size_t n, i;
	int r;

	if ((r = spool_txn_list(t, &v, &n)) < 0)
		cli_die(r, sp, "%s: transactions", name);
	if (json)
		putchar('[');
	else {
		printf("transactions %zu\n", n);
		if (n > 0)
			printf("%-40s %-10s %10s %10s %10s  %s\n", "TXID",
			    "STATE", "MESSAGES", "AGE", "EXPIRES", "CHECK");
	}
	for (i = 0; i < n; i++) {
		if (json) {
			printf("%s{\"txid\":\"%s.%016" PRIx64 "\",\"state\":"
			    "\"%s\",\"messages\":%" PRIu64 ",\"created\":%"
			    PRId64 ",\"age_ms\":%" PRId64 ",\"deadline\":%"
			    PRId64 ",\"check\":", i ? "," : "", name, v[i].txid,
			    v[i].committing ? "committing" : "prepared",
			    v[i].messages, v[i].created, now - v[i].created,
			    v[i].deadline);
			if (v[i].check != NULL)
				json_puts(v[i].check);
			else
				printf("null");
			putchar('}');
		} else
			printf("%s.%016" PRIx64 "%*s %-10s %10" PRIu64
			    " %9.1fs %9.1fs  %s\n", name, v[i].txid,
			    (int)(strlen(name) + 17 < 40 ? 40 - strlen(name) -
			    17 : 0), "", v[i].committing ? "committing" :
			    "prepared", v[i].messages, (now - v[i].created) /
			    1000.0, (v[i].deadline - now) / 1000.0,
			    v[i].check ? v[i].check : "-");
	}
	if (json)
		putchar(']');
	spool_txn_list_free(v, n);
}

/*
 * cmd_abort - abort topic txid: discard an open transaction (txid as
 * mq-send --prepare printed it, or its 16 hex digits alone)
 */
int
cmd_abort(int argc, char *argv[])
{
	struct spool *sp;
	struct spool_topic *t;
	const char *hex, *dot;
	uint64_t txid;
	int r;

	if (argc != 3)
		usage(EX_USAGE);
	hex = argv[2];
	if ((dot = strrchr(hex, '.')) != NULL) {
		if ((size_t)(dot - hex) != strlen(argv[1]) ||
		    strncmp(hex, argv[1], dot - hex) != 0)
			cli_usage_die("abort: %s is not a transaction of %s",
			    argv[2], argv[1]);
		hex = dot + 1;
	}
	if (strlen(hex) != 16 || strspn(hex, "0123456789abcdef") != 16)
		cli_usage_die("abort: %s: not a transaction ID", argv[2]);
	txid = strtoull(hex, NULL, 16);
	t = topic_cmd_open(argv[1], 1, &sp);
	r = spool_txn_abort(t, txid);
	if (r == -ENOENT)
		cli_fail(r, "%s: %s: No such transaction", argv[1], argv[2]);
	if (r == -ECANCELED)
		cli_fail(r, "%s: %s: the transaction was committed", argv[1],
		    argv[2]);
	if (r < 0)
		cli_die(r, sp, "%s: %s", argv[1], argv[2]);
	return topic_cmd_done(sp, t);
}

#define CHECK_LIMIT_MS	60000	/* a --check command that runs longer fails */

/*
 * check_one - run a transaction's --check command (sh -c, MQ_TXID,
 * MQ_TOPIC and MQ_SPOOL in its environment, stdin /dev/null): its exit
 * status, or -1 when it could not run or ran too long (ask again)
 */
static int
check_one(const char *name, const struct spool_txn_info *x)
{
	char txid[SPOOL_NAME_MAX + 24];
	int64_t start = spool_now_ms();
	pid_t pid;
	int st, fd;

	snprintf(txid, sizeof(txid), "%s.%016" PRIx64, name, x->txid);
	fflush(stdout);
	if ((pid = fork()) == -1)
		return -1;
	if (pid == 0) {
		if ((fd = open("/dev/null", O_RDONLY)) >= 0)
			dup2(fd, STDIN_FILENO);
		setenv("MQ_TXID", txid, 1);
		setenv("MQ_TOPIC", name, 1);
		setenv("MQ_SPOOL", cli_spool_path(spool_opt), 1);
		execl("/bin/sh", "sh", "-c", x->check, (char *)NULL);
		_exit(127);
	}
	for (;;) {
		pid_t w = waitpid(pid, &st, WNOHANG);

		if (w == pid)
			break;
		if (w == -1 && errno != EINTR)
			return -1;
		if (spool_now_ms() - start > CHECK_LIMIT_MS) {
			kill(pid, SIGKILL);
			(void)waitpid(pid, &st, 0);
			cli_warn("%s: --check of %s ran over %d s; asking again "
			    "later", name, txid, CHECK_LIMIT_MS / 1000);
			return -1;
		}
		usleep(10000);
	}
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/*
 * check_txns - gc's part in transactions: each one past its timeout
 * that has a --check command is resolved as the command says (0
 * commit, 1 abort, anything else: ask again at the next gc)
 */
void
check_txns(struct spool *sp, struct spool_topic *t, const char *name)
{
	struct spool_txn_info *v;
	int64_t now = spool_now_ms();
	size_t n, i;
	int r, st;

	if ((r = spool_txn_list(t, &v, &n)) < 0)
		cli_die(r, sp, "%s: transactions", name);
	for (i = 0; i < n; i++) {
		if (v[i].committing || v[i].check == NULL || now < v[i].deadline)
			continue;
		st = check_one(name, &v[i]);
		if (st == 0)
			r = spool_txn_commit(t, v[i].txid);
		else if (st == 1)
			r = spool_txn_abort(t, v[i].txid);
		else
			r = 0;
		if (cli_verbose)
			cli_warn("%s: %s.%016" PRIx64 ": --check exited %d: %s",
			    name, name, v[i].txid, st, st == 0 ? "committed" :
			    st == 1 ? "aborted" : "asking again later");
		if (r < 0 && r != -ECANCELED && r != -ENOENT) {
			spool_txn_list_free(v, n);
			cli_die(r, sp, "%s: transactions", name);
		}
	}
	spool_txn_list_free(v, n);
}
