/*
 * txn.c - transactional messages: prepared invisibly, committed at once
 *
 * A transaction (mq-send --prepare) keeps its messages outside the
 * partition logs, in topics/T/txn/ID/ (ID: the txid, 16 hex digits),
 * one file a sealed batch named SEQ-PART-COUNT (send order, 8 hex
 * digits; the partition; its record count), base_offset 0, like a
 * scheduled batch (schedule.c).  The file ID/state says where it is:
 *
 *	prepared CREATED DEADLINE        the batches are all stored
 *	committing CREATED DEADLINE      being appended; "from P:N ..."
 *	committed CREATED DEADLINE WHEN  visible
 *	aborted CREATED DEADLINE WHEN    discarded
 *
 * with an optional line "check CMD" (--check) and, for committing, the
 * line "from P:N ..." (each partition's next offset before the first
 * append).  A directory without a state file is a prepare not finished.
 *
 * This file owns txn/ and the layout in it: the state file, the batch
 * files, txn/lock, and the prepare side (begin, store, prepare), whose
 * result is durable when spool_txn_prepare returns 0.  The others
 * share its helpers through txn.h: txn_commit.c commits, aborts and
 * rolls forward (and spool_txn_tick); txn_settle.c answers readers and
 * mq-replicate whether a transaction's batches are settled;
 * txn_list.c lists and verifies transactions.
 *
 * What this does not do: it runs no --check command (the caller does,
 * from spool_txn_list), and it makes nothing visible: that is the
 * commit's (txn_commit.c).
 */

#include <sys/file.h>
#include <sys/random.h>
#include <sys/stat.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "spool_impl.h"
#include "txn.h"

static const char *const stnames[] = { "none", "prepared", "committing",
	"committed", "aborted" };

/* spool_txn_hexname - the directory name of a txid */
void
spool_txn_hexname(char *buf, size_t len, uint64_t txid)
{
	snprintf(buf, len, "%016" PRIx64, txid);
}

/*
 * spool_txn_opendir - a directory under dirfd; created (and synced) when
 * asked
 */
int
spool_txn_opendir(const struct spool *sp, int dirfd, const char *name,
    int create)
{
	int fd;

	if (create) {
		if (mkdirat(dirfd, name, 0775) == 0) {
			/* the new entry must survive a crash with its files */
			if (!sp->nosync && spool_fsync_dir(dirfd) < 0)
				return -errno;
		} else if (errno != EEXIST)
			return -errno;
	}
	fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW |
	    O_CLOEXEC);
	return fd == -1 ? -errno : fd;
}

/* spool_txn_state_free - release what spool_txn_state_read filled in */
void
spool_txn_state_free(struct tstate *s)
{
	free(s->buf);
	memset(s, 0, sizeof(*s));
}

/* spool_txn_state_read - parse dfd/state; ST_NONE when there is none */
int
spool_txn_state_read(struct spool *sp, int dfd, const char *id,
    struct tstate *s)
{
	char word[16], *line, *nl;
	int r, n;

	memset(s, 0, sizeof(*s));
	if ((s->buf = malloc(TXN_STATE_MAX)) == NULL)
		return -ENOMEM;
	if ((r = spool_read_file(dfd, TXN_STATE, s->buf, TXN_STATE_MAX)) < 0) {
		free(s->buf);
		s->buf = NULL;
		return r == -ENOENT ? 0 : r;
	}
	n = sscanf(s->buf, "%15s %" SCNd64 " %" SCNd64 " %" SCNd64, word,
	    &s->created, &s->deadline, &s->resolved);
	for (s->st = ST_PREPARED; s->st <= ST_ABORTED; s->st++)
		if (strcmp(word, stnames[s->st]) == 0)
			break;
	if (n < 3 || s->st > ST_ABORTED) {
		spool_seterr(sp, "txn/%s/state: not a transaction state", id);
		spool_txn_state_free(s);
		return -EBADMSG;
	}
	for (line = s->buf; (nl = strchr(line, '\n')) != NULL; line = nl + 1) {
		*nl = '\0';
		if (strncmp(line, "check ", 6) == 0)
			s->check = line + 6;
		else if (strncmp(line, "from ", 5) == 0)
			s->from = line + 5;
	}
	return 0;
}

/*
 * spool_txn_state_write - replace dfd/state durably (the rename is the
 * switch)
 */
int
spool_txn_state_write(struct spool *sp, int dfd, int st, const struct tstate *s,
    const char *from)
{
	char *buf;
	size_t cap = 256 + (s->check ? strlen(s->check) : 0) +
	    (from ? strlen(from) : 0);
	int n, r;

	if ((buf = malloc(cap)) == NULL)
		return -ENOMEM;
	n = snprintf(buf, cap, "%s %" PRId64 " %" PRId64, stnames[st],
	    s->created, s->deadline);
	if (st == ST_COMMITTED || st == ST_ABORTED)
		n += snprintf(buf + n, cap - n, " %" PRId64, spool_now_ms());
	n += snprintf(buf + n, cap - n, "\n");
	if (from != NULL)
		n += snprintf(buf + n, cap - n, "from %s\n", from);
	if (s->check != NULL)
		n += snprintf(buf + n, cap - n, "check %s\n", s->check);
	r = spool_write_file(dfd, TXN_STATE, buf, n, !sp->nosync);
	free(buf);
	return r;
}

/* parse_file - spool_dir_list's parse: split a batch file's name */
static int
parse_file(const struct dirent *de, void *elem, void *arg)
{
	struct tfile *f = elem;
	const char *name = de->d_name;
	int n = -1;

	if (strlen(name) >= TXN_NAME_MAX ||
	    sscanf(name, "%8x-%u-%u%n", &f->seq, &f->part, &f->count, &n) !=
	    3 || n < 0 || name[n] != '\0')
		return 0;
	memcpy(f->name, name, strlen(name) + 1);
	return 1;
}

/* cmp_file - qsort batch files by send order */
static int
cmp_file(const void *a, const void *b)
{
	uint32_t x = ((const struct tfile *)a)->seq;
	uint32_t y = ((const struct tfile *)b)->seq;

	return x < y ? -1 : x > y;
}

/* spool_txn_files - the batch files of a transaction, in send order */
int
spool_txn_files(int dfd, struct tfile **out, size_t *np)
{
	void *v;
	DIR *d;
	int r;

	*out = NULL;
	*np = 0;
	if ((r = spool_opendir(dfd, ".", &d)) < 0)
		return r;
	if ((r = spool_dir_list(d, sizeof(**out), parse_file, NULL, cmp_file,
	    NULL, &v, np)) == 0)
		*out = v;
	return r;
}

/* spool_txn_lock - txn/lock, exclusive (LOCK_EX) or shared; returns the fd */
int
spool_txn_lock(int xfd, int how)
{
	int lfd, e;

	lfd = openat(xfd, SPOOL_LOCK_NAME, (how == LOCK_EX ? O_RDWR | O_CREAT :
	    O_RDONLY) | O_NOFOLLOW | O_CLOEXEC, 0664);
	if (lfd == -1)
		return -errno;
	while (flock(lfd, how) == -1)
		if (errno != EINTR) {
			e = -errno;
			close(lfd);
			return e;
		}
	return lfd;
}

/*
 * spool_txn_begin - a new transaction: its directory, with no state yet
 * (not committable); *txid is random and never 0
 */
int
spool_txn_begin(struct spool_topic *t, uint64_t *txid)
{
	char name[32];
	int xfd, dfd, tries;

	if ((xfd = spool_txn_opendir(t->sp, t->dirfd, TXN_DIR, 1)) < 0)
		return xfd;
	for (tries = 0; tries < 100; tries++) {
		if (getrandom(txid, sizeof(*txid), 0) != sizeof(*txid)) {
			close(xfd);
			return -errno;
		}
		if (*txid == 0)
			continue;
		spool_txn_hexname(name, sizeof(name), *txid);
		if (mkdirat(xfd, name, 0775) == 0)
			break;
		if (errno != EEXIST) {
			dfd = -errno;
			close(xfd);
			return dfd;
		}
	}
	close(xfd);
	return tries < 100 ? 0 : -EEXIST;
}

/* spool_txn_open - txn/ID of a txid, or -ENOENT; *xfd gets txn/ */
int
spool_txn_open(struct spool_topic *t, uint64_t txid, int *xfd, char *name,
    size_t len)
{
	int dfd;

	spool_txn_hexname(name, len, txid);
	if ((*xfd = spool_txn_opendir(t->sp, t->dirfd, TXN_DIR, 0)) < 0)
		return *xfd;
	if ((dfd = spool_txn_opendir(t->sp, *xfd, name, 0)) < 0) {
		close(*xfd);
		*xfd = -1;
	}
	return dfd;
}

/*
 * spool_txn_store - keep one sealed batch of a transaction being
 * prepared (writer.c); durable when this returns 0 if sync
 */
int
spool_txn_store(struct spool_topic *t, uint64_t txid, uint32_t seq,
    uint32_t part, unsigned char *buf, size_t len, uint32_t count, int sync)
{
	char dir[32], name[TXN_NAME_MAX];
	int xfd, dfd, r;

	spool_batch_stamp(buf, 0);
	if ((dfd = spool_txn_open(t, txid, &xfd, dir, sizeof(dir))) < 0)
		return dfd;
	close(xfd);
	snprintf(name, sizeof(name), "%08x-%u-%u", seq, part, count);
	r = spool_write_file(dfd, name, buf, len, sync);
	close(dfd);
	return r;
}

/*
 * spool_txn_prepare - the transaction's batches are all stored: give it
 * its state (timeout from now, check command or NULL); committable from
 * here on, durably so when this returns 0
 */
int
spool_txn_prepare(struct spool_topic *t, uint64_t txid, int64_t timeout_ms,
    const char *check)
{
	struct tstate s;
	char name[32];
	int xfd, dfd, r;

	if ((dfd = spool_txn_open(t, txid, &xfd, name, sizeof(name))) < 0)
		return dfd;
	memset(&s, 0, sizeof(s));
	s.created = spool_now_ms();
	s.deadline = s.created + timeout_ms;
	s.check = (char *)check;
	r = spool_txn_state_write(t->sp, dfd, ST_PREPARED, &s, NULL);
	/* the transaction's own entry in txn/, made when it began */
	if (r == 0 && !t->sp->nosync && spool_fsync_dir(xfd) < 0)
		r = -errno;
	close(dfd);
	close(xfd);
	return r;
}

/* is_txid - a name of a transaction directory: 16 hex digits */
static int
is_txid(const struct dirent *de, void *arg)
{
	return strlen(de->d_name) == 16 &&
	    strspn(de->d_name, "0123456789abcdef") == 16;
}

/* spool_txn_dirs - the transaction directories under dfd/name, sorted */
int
spool_txn_dirs(int dfd, const char *name, char ***v, size_t *n)
{
	DIR *d;
	int r;

	*v = NULL;
	*n = 0;
	if ((r = spool_opendir(dfd, name, &d)) < 0)
		return r == -ENOENT ? 0 : r;
	return spool_dir_names(d, is_txid, NULL, v, n);
}

/* spool_txn_dirs_free - release what spool_txn_dirs returned */
void
spool_txn_dirs_free(char **v, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		free(v[i]);
	free(v);
}
