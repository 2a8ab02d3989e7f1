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
 * Commit, under txn/lock (exclusive): state -> committing (durable);
 * each batch appended to its partition with flags SPOOL_BF_TXN and the
 * header's txid set (synced); state -> committed (one rename: the
 * visibility point); the batch files go and the directory moves to
 * txn/done/.  A reader that meets a TXN batch whose transaction is
 * committing waits for txn/lock and, when the committer died, rolls the
 * commit forward itself (spool_txn_settle); so does anyone who calls
 * spool_txn_tick.  Rolling forward is idempotent: a partition that
 * already holds k batches of this txid at or after its "from" offset
 * has had its first k batch files appended, and gets only the rest.
 *
 * Offsets are given at commit, so they stay dense and in the order
 * messages become visible, and a reader never waits on a prepared
 * transaction, only (briefly) on one being committed.
 *
 * What this does not do: it runs no --check command (the caller does,
 * from spool_txn_list), and it does not wake followers by itself (they
 * see the appends).
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

#define TXN_DIR		"txn"
#define TXN_DONE	"done"
#define TXN_STATE	"state"
#define TXN_STATE_MAX	(192u << 10)	/* 4096 partitions of "from" */
#define TXN_KEEP_MS	(24 * 3600 * 1000LL)	/* resolved ones remembered */
#define TXN_NAME_MAX	64

enum { ST_NONE, ST_PREPARED, ST_COMMITTING, ST_COMMITTED, ST_ABORTED };

static const char *const stnames[] = { "none", "prepared", "committing",
	"committed", "aborted" };

struct tstate {
	int		 st;
	int64_t		 created, deadline, resolved;
	char		*check;		/* in buf */
	char		*from;		/* in buf */
	char		*buf;
};

struct tfile {
	char		 name[TXN_NAME_MAX];
	uint32_t	 seq, part, count;
};

/* hexname - the directory name of a txid */
static void
hexname(char *buf, size_t len, uint64_t txid)
{
	snprintf(buf, len, "%016" PRIx64, txid);
}

/* open_dir - a directory under dirfd; created (and synced) when asked */
static int
open_dir(const struct spool *sp, int dirfd, const char *name, int create)
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

/* state_free - release what read_state filled in */
static void
state_free(struct tstate *s)
{
	free(s->buf);
	memset(s, 0, sizeof(*s));
}

/* read_state - parse dfd/state; ST_NONE when there is none */
static int
read_state(struct spool *sp, int dfd, const char *id, struct tstate *s)
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
		state_free(s);
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

/* write_state - replace dfd/state durably (the rename is the switch) */
static int
write_state(struct spool *sp, int dfd, int st, const struct tstate *s,
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

/* parse_file - split a batch file's name; -1 if it is not one */
static int
parse_file(const char *name, struct tfile *f)
{
	int n = -1;

	if (strlen(name) >= TXN_NAME_MAX ||
	    sscanf(name, "%8x-%u-%u%n", &f->seq, &f->part, &f->count, &n) !=
	    3 || n < 0 || name[n] != '\0')
		return -1;
	memcpy(f->name, name, strlen(name) + 1);
	return 0;
}

/* cmp_file - qsort batch files by send order */
static int
cmp_file(const void *a, const void *b)
{
	uint32_t x = ((const struct tfile *)a)->seq;
	uint32_t y = ((const struct tfile *)b)->seq;

	return x < y ? -1 : x > y;
}

/* list_files - the batch files of a transaction, in send order */
static int
list_files(int dfd, struct tfile **out, size_t *np)
{
	struct tfile *v = NULL, *nv, f;
	struct dirent *de;
	size_t n = 0, cap = 0;
	DIR *d;
	int r;

	*out = NULL;
	*np = 0;
	if ((r = spool_opendir(dfd, ".", &d)) < 0)
		return r;
	while ((de = readdir(d)) != NULL) {
		if (parse_file(de->d_name, &f) < 0)
			continue;
		if (n == cap) {
			cap = cap ? 2 * cap : 16;
			if ((nv = realloc(v, cap * sizeof(*v))) == NULL) {
				free(v);
				closedir(d);
				return -ENOMEM;
			}
			v = nv;
		}
		v[n++] = f;
	}
	closedir(d);
	if (n > 0)
		qsort(v, n, sizeof(*v), cmp_file);
	*out = v;
	*np = n;
	return 0;
}

/* take_lock - txn/lock, exclusive (LOCK_EX) or shared; returns the fd */
static int
take_lock(int xfd, int how)
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

	if ((xfd = open_dir(t->sp, t->dirfd, TXN_DIR, 1)) < 0)
		return xfd;
	for (tries = 0; tries < 100; tries++) {
		if (getrandom(txid, sizeof(*txid), 0) != sizeof(*txid)) {
			close(xfd);
			return -errno;
		}
		if (*txid == 0)
			continue;
		hexname(name, sizeof(name), *txid);
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

/* txn_open - txn/ID of a txid, or -ENOENT; *xfd gets txn/ */
static int
txn_open(struct spool_topic *t, uint64_t txid, int *xfd, char *name,
    size_t len)
{
	int dfd;

	hexname(name, len, txid);
	if ((*xfd = open_dir(t->sp, t->dirfd, TXN_DIR, 0)) < 0)
		return *xfd;
	if ((dfd = open_dir(t->sp, *xfd, name, 0)) < 0) {
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
	if ((dfd = txn_open(t, txid, &xfd, dir, sizeof(dir))) < 0)
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

	if ((dfd = txn_open(t, txid, &xfd, name, sizeof(name))) < 0)
		return dfd;
	memset(&s, 0, sizeof(s));
	s.created = spool_now_ms();
	s.deadline = s.created + timeout_ms;
	s.check = (char *)check;
	r = write_state(t->sp, dfd, ST_PREPARED, &s, NULL);
	/* the transaction's own entry in txn/, made when it began */
	if (r == 0 && !t->sp->nosync && spool_fsync_dir(xfd) < 0)
		r = -errno;
	close(dfd);
	close(xfd);
	return r;
}

/*
 * count_txn - how many batches of txid partition part holds at offset
 * from or later
 */
static int
count_txn(struct spool_topic *t, uint32_t part, uint64_t from, uint64_t txid)
{
	struct spool_io *io = spool_get_io(t->sp);
	struct spool_cursor c;
	int pfd, s, found = 0;

	if (io == NULL)
		return -ENOMEM;
	if ((pfd = spool_part_open(t, part)) < 0)
		return pfd;
	if ((s = spool_cursor_open(&c, io, pfd)) == 0 &&
	    (s = spool_cursor_seek(&c, from)) == 0)
		/* a torn last batch is no append: it is cut */
		while ((s = spool_cursor_next(&c)) > 0 || s == -EPROTO)
			if (s == SPOOL_CUR_BATCH && c.h.base_offset >= from &&
			    (c.h.flags & SPOOL_BF_TXN) && c.h.txid == txid)
				found++;
	spool_cursor_close(&c);
	close(pfd);
	return s < 0 ? s : found;
}

/* from_of - partition part's offset in a "from P:N ..." line */
static int
from_of(const char *from, uint32_t part, uint64_t *off)
{
	unsigned p;
	uint64_t n;
	int used;

	while (from != NULL && sscanf(from, " %u:%" SCNu64 "%n", &p, &n,
	    &used) == 2) {
		if (p == part) {
			*off = n;
			return 0;
		}
		from += used;
	}
	return -1;
}

/* finish - the batch files go and the directory moves to done/ */
static void
finish(struct spool_topic *t, int xfd, int dfd, const char *name)
{
	struct tfile *files;
	size_t n, i;
	int done;

	if (list_files(dfd, &files, &n) == 0) {
		for (i = 0; i < n; i++)
			(void)unlinkat(dfd, files[i].name, 0);
		free(files);
	}
	if ((done = open_dir(t->sp, xfd, TXN_DONE, 1)) < 0)
		return;
	/* a crash before this leaves it in txn/: the next tick moves it */
	if (renameat(xfd, name, done, name) == -1 && errno == ENOTEMPTY)
		(void)spool_rmtree(xfd, name);
	close(done);
}

/*
 * roll - append what a committing transaction has not yet appended,
 * then mark it committed (under txn/lock)
 */
static int
roll(struct spool_topic *t, int xfd, int dfd, const char *name,
    uint64_t txid, struct tstate *s)
{
	struct spool_writer_opts wo = { .sync = !t->sp->nosync, .codec = -1,
	    .partition = -1 };
	struct spool_writer *w = NULL;
	struct spool_bhdr h;
	struct tfile *files;
	unsigned char *buf = NULL;
	uint64_t from;
	uint32_t *skip = NULL, *seen = NULL, np = t->cfg.partitions;
	size_t n, i, len = 0;
	int r, c;

	if ((r = list_files(dfd, &files, &n)) < 0)
		return r;
	if ((skip = calloc(np, sizeof(*skip))) == NULL ||
	    (seen = calloc(np, sizeof(*seen))) == NULL) {
		r = -ENOMEM;
		goto out;
	}
	/* what an earlier committer appended before it died */
	for (i = 0; i < n; i++) {
		if (files[i].part >= np) {
			spool_seterr(t->sp, "%s: txn/%s/%s: no partition %u",
			    t->name, name, files[i].name, files[i].part);
			r = -EBADMSG;
			goto out;
		}
		if (seen[files[i].part]++ > 0)
			continue;
		if (from_of(s->from, files[i].part, &from) < 0) {
			spool_seterr(t->sp, "%s: txn/%s/state: no offset for "
			    "partition %u", t->name, name, files[i].part);
			r = -EBADMSG;
			goto out;
		}
		if ((r = count_txn(t, files[i].part, from, txid)) < 0)
			goto out;
		skip[files[i].part] = (uint32_t)r;
	}
	for (i = 0; i < n; i++) {
		if (skip[files[i].part] > 0) {
			skip[files[i].part]--;
			continue;
		}
		if ((r = spool_batch_read_file(t->sp, "txn batch ", dfd,
		    files[i].name, &buf, &len, &h)) < 0)
			goto out;
		buf[51] |= SPOOL_BF_TXN;	/* format.h: flags */
		put64(buf + 56, txid);		/* format.h: txid */
		if (w == NULL && (r = spool_writer_open(t, &wo, &w)) < 0) {
			free(buf);
			goto out;
		}
		r = spool_writer_put_batch(w, files[i].part, buf, len, h.count);
		free(buf);
		if (r < 0)
			goto out;
	}
	/* every batch on stable storage before the state says committed */
	if (w != NULL) {
		r = spool_writer_close(w);
		w = NULL;
		if (r < 0)
			goto out;
	}
	if ((r = write_state(t->sp, dfd, ST_COMMITTED, s, NULL)) < 0)
		goto out;
	finish(t, xfd, dfd, name);
	/* followers held at it (mq-replicate --follow) look again */
	spool_sched_kick(t);
out:
	if (w != NULL && (c = spool_writer_close(w)) < 0 && r >= 0)
		r = c;
	free(skip);
	free(seen);
	free(files);
	return r;
}

/* begin_commit - prepared -> committing, with each partition's offset */
static int
begin_commit(struct spool_topic *t, int dfd, struct tstate *s)
{
	struct spool_part_info pi;
	struct tfile *files;
	char *from = NULL, *nf;
	unsigned char *seen;
	size_t n, i, len = 0, cap = 256;
	int r;

	if ((r = list_files(dfd, &files, &n)) < 0)
		return r;
	if ((seen = calloc(t->cfg.partitions, 1)) == NULL ||
	    (from = malloc(cap)) == NULL) {
		r = -ENOMEM;
		goto out;
	}
	from[0] = '\0';
	/* every batch whole before the point of no return */
	for (i = 0; i < n; i++) {
		struct spool_bhdr h;
		unsigned char *buf;
		size_t blen;

		if (files[i].part >= t->cfg.partitions) {
			spool_seterr(t->sp, "%s: transaction batch %s: no "
			    "partition %u", t->name, files[i].name,
			    files[i].part);
			r = -EBADMSG;
			goto out;
		}
		if ((r = spool_batch_read_file(t->sp, "txn batch ", dfd,
		    files[i].name, &buf, &blen, &h)) < 0)
			goto out;
		free(buf);
	}
	for (i = 0; i < n; i++) {
		if (seen[files[i].part])
			continue;
		seen[files[i].part] = 1;
		if (len + 32 > cap) {
			cap *= 2;
			if ((nf = realloc(from, cap)) == NULL) {
				r = -ENOMEM;
				goto out;
			}
			from = nf;
		}
		if ((r = spool_part_bounds(t, files[i].part, &pi)) < 0)
			goto out;
		len += snprintf(from + len, cap - len, "%s%u:%" PRIu64,
		    len ? " " : "", files[i].part, pi.next);
	}
	/* durable before the first append: recovery looks from here */
	r = write_state(t->sp, dfd, ST_COMMITTING, s, from);
	if (r == 0) {
		state_free(s);
		r = read_state(t->sp, dfd, "", s);
	}
out:
	free(seen);
	free(from);
	free(files);
	return r;
}

/* do_abort - prepared -> aborted; its batches go (under txn/lock) */
static int
do_abort(struct spool_topic *t, int xfd, int dfd, const char *name,
    struct tstate *s)
{
	int r;

	if ((r = write_state(t->sp, dfd, ST_ABORTED, s, NULL)) < 0)
		return r;
	finish(t, xfd, dfd, name);
	return 0;
}

/*
 * resolve - commit (want ST_COMMITTED) or abort a transaction: 0 done
 * (or already so), -ENOENT unknown, -ECANCELED resolved the other way
 */
static int
resolve(struct spool_topic *t, uint64_t txid, int want)
{
	struct tstate s;
	char name[32];
	int xfd, dfd, lfd, r, done;

	hexname(name, sizeof(name), txid);
	if ((xfd = open_dir(t->sp, t->dirfd, TXN_DIR, 0)) < 0)
		return xfd;
	if ((lfd = take_lock(xfd, LOCK_EX)) < 0) {
		close(xfd);
		return lfd;
	}
	if ((dfd = open_dir(t->sp, xfd, name, 0)) == -ENOENT) {
		/* resolved earlier: remembered in done/ for a day */
		if ((done = open_dir(t->sp, xfd, TXN_DONE, 0)) >= 0) {
			dfd = open_dir(t->sp, done, name, 0);
			close(done);
		}
		if (dfd < 0) {
			r = dfd;
			goto out;
		}
	} else if (dfd < 0) {
		r = dfd;
		goto out;
	}
	if ((r = read_state(t->sp, dfd, name, &s)) < 0)
		goto out;
	switch (s.st) {
	case ST_NONE:
		r = -ENOENT;		/* its prepare never finished */
		break;
	case ST_COMMITTED:
	case ST_ABORTED:
		r = s.st == want ? 0 : -ECANCELED;
		break;
	case ST_COMMITTING:
		/* past the point of no return: it is completed */
		r = roll(t, xfd, dfd, name, txid, &s);
		if (r == 0 && want != ST_COMMITTED)
			r = -ECANCELED;
		break;
	case ST_PREPARED:
		if (want == ST_COMMITTED && s.check == NULL &&
		    spool_now_ms() >= s.deadline) {
			/* too late: it is aborted, as the next tick would */
			if ((r = do_abort(t, xfd, dfd, name, &s)) == 0)
				r = -ECANCELED;
			spool_seterr(t->sp, "%s: transaction timed out",
			    t->name);
		} else if (want == ST_COMMITTED) {
			if ((r = begin_commit(t, dfd, &s)) == 0)
				r = roll(t, xfd, dfd, name, txid, &s);
		} else
			r = do_abort(t, xfd, dfd, name, &s);
		break;
	}
	state_free(&s);
out:
	if (dfd >= 0)
		close(dfd);
	close(lfd);
	close(xfd);
	return r;
}

/* spool_txn_commit - make a prepared transaction visible, all at once */
int
spool_txn_commit(struct spool_topic *t, uint64_t txid)
{
	return resolve(t, txid, ST_COMMITTED);
}

/* spool_txn_abort - discard a prepared transaction */
int
spool_txn_abort(struct spool_topic *t, uint64_t txid)
{
	return resolve(t, txid, ST_ABORTED);
}

/*
 * spool_txn_settle - a reader met a batch of txid: return once it is
 * visible, that is once its transaction is not committing (a live
 * committer is waited for, a dead one's commit is completed)
 */
int
spool_txn_settle(struct spool_topic *t, uint64_t txid)
{
	struct tstate s;
	char name[32];
	int xfd, dfd, lfd, r, st;

	if ((dfd = txn_open(t, txid, &xfd, name, sizeof(name))) < 0)
		return dfd == -ENOENT ? 0 : dfd;	/* resolved long ago */
	if ((r = read_state(t->sp, dfd, name, &s)) < 0)
		goto out;
	st = s.st;
	state_free(&s);
	if (st != ST_COMMITTING)
		goto out;
	/* the committer holds the lock until it is done (none: no one) */
	if ((lfd = take_lock(xfd, LOCK_SH)) < 0 && lfd != -ENOENT) {
		r = lfd;
		goto out;
	}
	if (lfd >= 0)
		close(lfd);
	r = read_state(t->sp, dfd, name, &s);
	if (r == -ENOENT)
		r = 0;
	if (r < 0)
		goto out;
	st = s.st;
	state_free(&s);
	if (st == ST_COMMITTING) {
		/* the committer died: finish its work */
		r = resolve(t, txid, ST_COMMITTED);
	}
out:
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

/* list_dir - the transaction directories under dfd/name, sorted */
static int
list_dir(int dfd, const char *name, char ***v, size_t *n)
{
	DIR *d;
	int r;

	*v = NULL;
	*n = 0;
	if ((r = spool_opendir(dfd, name, &d)) < 0)
		return r == -ENOENT ? 0 : r;
	return spool_dir_names(d, is_txid, NULL, v, n);
}

/* free_names - release what list_dir returned */
static void
free_names(char **v, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

/*
 * spool_txn_tick - what anyone touching the topic does: complete
 * commits whose committer died, abort prepared transactions past their
 * timeout that have no check command, and (gc) forget resolved ones
 * older than a day and prepares abandoned for a day.  Returns how many
 * it resolved.
 */
int
spool_txn_tick(struct spool_topic *t, int64_t now, int gc)
{
	struct tstate s;
	struct stat st;
	char **v;
	size_t n, i;
	uint64_t txid;
	int xfd, dfd, lfd, done, r = 0, count = 0, act;

	if ((xfd = open_dir(t->sp, t->dirfd, TXN_DIR, 0)) < 0)
		return xfd == -ENOENT ? 0 : xfd;
	if ((r = list_dir(xfd, ".", &v, &n)) < 0)
		goto out;
	for (i = 0; i < n && r >= 0; i++) {
		if ((dfd = open_dir(t->sp, xfd, v[i], 0)) < 0)
			continue;
		act = ST_NONE;
		if ((r = read_state(t->sp, dfd, v[i], &s)) == -EBADMSG)
			r = 0;	/* verify says so; the others go on */
		else if (r < 0)
			;
		else if (s.st == ST_NONE) {
			/* a prepare killed before its state, long ago */
			if (gc && fstat(dfd, &st) == 0 &&
			    now - (int64_t)st.st_mtime * 1000 > TXN_KEEP_MS)
				(void)spool_rmtree(xfd, v[i]);
		} else if (s.st == ST_COMMITTING)
			act = ST_COMMITTED;	/* its committer may be dead */
		else if (s.st == ST_PREPARED && s.check == NULL &&
		    now >= s.deadline)
			act = ST_ABORTED;	/* timed out */
		else if (s.st == ST_COMMITTED || s.st == ST_ABORTED) {
			/* resolved, but not yet moved aside */
			if ((lfd = take_lock(xfd, LOCK_EX)) >= 0) {
				finish(t, xfd, dfd, v[i]);
				close(lfd);
			}
		}
		state_free(&s);
		close(dfd);
		if (act == ST_NONE)
			continue;
		txid = strtoull(v[i], NULL, 16);
		r = resolve(t, txid, act);
		if (r == -ECANCELED || r == -ENOENT)
			r = 0;	/* someone else resolved it meanwhile */
		else if (r == 0)
			count++;
	}
	free_names(v, n);
	if (r < 0 || !gc)
		goto out;
	/* forget what was resolved more than a day ago */
	if ((r = list_dir(xfd, TXN_DONE, &v, &n)) < 0)
		goto out;
	if ((done = open_dir(t->sp, xfd, TXN_DONE, 0)) >= 0) {
		for (i = 0; i < n; i++) {
			if ((dfd = open_dir(t->sp, done, v[i], 0)) < 0)
				continue;
			if (read_state(t->sp, dfd, v[i], &s) == 0 &&
			    (s.st == ST_NONE || now - s.resolved > TXN_KEEP_MS))
				(void)spool_rmtree(done, v[i]);
			state_free(&s);
			close(dfd);
		}
		close(done);
	}
	free_names(v, n);
out:
	close(xfd);
	return r < 0 ? r : count;
}

/*
 * spool_txn_verify - check the state file of every transaction and the
 * batch files of the open ones, reporting each damaged one; returns how
 * many, or -errno.  Reads only.
 */
int
spool_txn_verify(struct spool_topic *t, void (*report)(void *, const char *),
    void *arg)
{
	struct spool_bhdr h;
	struct tstate s;
	struct tfile *files;
	unsigned char *buf;
	char **v, msg[SPOOL_ERRMSG_MAX + 64];
	size_t n, i, j, nf, blen;
	int xfd, dfd, r = 0, bad = 0;

	if ((xfd = open_dir(t->sp, t->dirfd, TXN_DIR, 0)) < 0)
		return xfd == -ENOENT ? 0 : xfd;
	if ((r = list_dir(xfd, ".", &v, &n)) < 0) {
		close(xfd);
		return r;
	}
	for (i = 0; i < n && r >= 0; i++) {
		if ((dfd = open_dir(t->sp, xfd, v[i], 0)) < 0)
			continue;
		if ((r = read_state(t->sp, dfd, v[i], &s)) == -EBADMSG) {
			snprintf(msg, sizeof(msg), "%s", spool_errmsg(t->sp));
			if (report != NULL)
				report(arg, msg);
			bad++;
			r = 0;
		}
		if (r == 0 && (s.st == ST_PREPARED || s.st == ST_COMMITTING) &&
		    (r = list_files(dfd, &files, &nf)) == 0) {
			for (j = 0; j < nf && r >= 0; j++) {
				r = spool_batch_read_file(t->sp, "txn batch ",
				    dfd, files[j].name, &buf, &blen, &h);
				if (r == 0)
					free(buf);
				else if (r == -EBADMSG || r == -EPROTO) {
					snprintf(msg, sizeof(msg), "%s/txn/%s/"
					    "%s: %s", t->name, v[i],
					    files[j].name, r == -EPROTO ?
					    "written by a newer version of mq" :
					    "checksum mismatch");
					if (report != NULL)
						report(arg, msg);
					bad++;
					r = 0;
				} else if (r == -ENOENT)
					r = 0;	/* resolved meanwhile */
			}
			free(files);
		}
		state_free(&s);
		close(dfd);
	}
	free_names(v, n);
	close(xfd);
	return r < 0 ? r : bad;
}

/* cmp_created - qsort open transactions oldest first */
static int
cmp_created(const void *a, const void *b)
{
	int64_t x = ((const struct spool_txn_info *)a)->created;
	int64_t y = ((const struct spool_txn_info *)b)->created;

	return x < y ? -1 : x > y;
}

/*
 * spool_txn_list - the open (prepared or committing) transactions of a
 * topic, oldest first; free with spool_txn_list_free
 */
int
spool_txn_list(struct spool_topic *t, struct spool_txn_info **out, size_t *np)
{
	struct spool_txn_info *v = NULL, *nv;
	struct tstate s;
	struct tfile *files;
	char **names;
	size_t n, i, j, nf, k = 0;
	int xfd, dfd, r;

	*out = NULL;
	*np = 0;
	if ((xfd = open_dir(t->sp, t->dirfd, TXN_DIR, 0)) < 0)
		return xfd == -ENOENT ? 0 : xfd;
	if ((r = list_dir(xfd, ".", &names, &n)) < 0) {
		close(xfd);
		return r;
	}
	for (i = 0; i < n && r >= 0; i++) {
		if ((dfd = open_dir(t->sp, xfd, names[i], 0)) < 0)
			continue;
		if ((r = read_state(t->sp, dfd, names[i], &s)) < 0 ||
		    (s.st != ST_PREPARED && s.st != ST_COMMITTING)) {
			state_free(&s);
			close(dfd);
			if (r == -EBADMSG)
				r = 0;
			continue;
		}
		if ((nv = realloc(v, (k + 1) * sizeof(*v))) == NULL) {
			r = -ENOMEM;
			state_free(&s);
			close(dfd);
			break;
		}
		v = nv;
		memset(&v[k], 0, sizeof(v[k]));
		v[k].txid = strtoull(names[i], NULL, 16);
		v[k].committing = s.st == ST_COMMITTING;
		v[k].created = s.created;
		v[k].deadline = s.deadline;
		if (s.check != NULL && (v[k].check = strdup(s.check)) == NULL)
			r = -ENOMEM;
		k++;
		if (r == 0 && (r = list_files(dfd, &files, &nf)) == 0) {
			for (j = 0; j < nf; j++)
				v[k - 1].messages += files[j].count;
			free(files);
		}
		state_free(&s);
		close(dfd);
	}
	free_names(names, n);
	close(xfd);
	if (r < 0) {
		spool_txn_list_free(v, k);
		return r;
	}
	if (k > 1)
		qsort(v, k, sizeof(*v), cmp_created);
	*out = v;
	*np = k;
	return 0;
}

/* spool_txn_list_free - release what spool_txn_list returned */
void
spool_txn_list_free(struct spool_txn_info *v, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		free(v[i].check);
	free(v);
}

/*
 * spool_txn_committing - is txid being committed right now (its batches
 * may be half appended): 1 yes, 0 no (mq-replicate holds such a batch
 * back)
 */
int
spool_txn_committing(struct spool_topic *t, uint64_t txid)
{
	struct tstate s;
	char name[32];
	int xfd, dfd, r;

	if ((dfd = txn_open(t, txid, &xfd, name, sizeof(name))) < 0)
		return dfd == -ENOENT ? 0 : dfd;
	r = read_state(t->sp, dfd, name, &s);
	if (r == 0)
		r = s.st == ST_COMMITTING;
	state_free(&s);
	close(dfd);
	close(xfd);
	return r;
}

/*
 * spool_txn_any_unsettled - whether a batch of t may be one a replica
 * must not get yet (spool_txn_unsettled of any transaction): 1 maybe,
 * 0 no.  A transaction resolved since moved to done/, so a done/
 * changed at or after since counts too.
 */
int
spool_txn_any_unsettled(struct spool_topic *t, int64_t since)
{
	struct stat st;
	char **names;
	size_t n, i;
	int xfd, r = 0;

	if ((xfd = open_dir(t->sp, t->dirfd, TXN_DIR, 0)) < 0)
		return xfd == -ENOENT ? 0 : 1;
	if (fstatat(xfd, TXN_DONE, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
	    (int64_t)st.st_mtim.tv_sec * 1000 + st.st_mtim.tv_nsec / 1000000 >=
	    since)
		r = 1;
	if (r == 0 && list_dir(xfd, ".", &names, &n) == 0) {
		for (i = 0; i < n && r == 0; i++)
			r = spool_txn_unsettled(t, strtoull(names[i], NULL, 16),
			    since);
		free_names(names, n);
	} else if (r == 0)
		r = 1;
	close(xfd);
	return r;
}

/*
 * spool_txn_unsettled - must a replica not get txid's batches yet: 1
 * when its commit is under way, or ended at or after since (a copy
 * that began before the commit may have passed a partition before the
 * commit reached it, and would else send the others' part alone); 0
 * no; an unreadable state counts as 1 (the next pass retries)
 */
int
spool_txn_unsettled(struct spool_topic *t, uint64_t txid, int64_t since)
{
	struct tstate st;
	char name[32];
	int xfd, ddfd, dfd, r;

	memset(&st, 0, sizeof(st));
	hexname(name, sizeof(name), txid);
	if ((xfd = open_dir(t->sp, t->dirfd, TXN_DIR, 0)) < 0)
		return xfd == -ENOENT ? 0 : 1;
	/* resolved, its state is under done/ for a day */
	if ((dfd = open_dir(t->sp, xfd, name, 0)) == -ENOENT &&
	    (ddfd = open_dir(t->sp, xfd, TXN_DONE, 0)) >= 0) {
		dfd = open_dir(t->sp, ddfd, name, 0);
		close(ddfd);
	}
	close(xfd);
	if (dfd < 0)
		return dfd == -ENOENT ? 0 : 1;
	r = read_state(t->sp, dfd, name, &st);
	close(dfd);
	if (r < 0)
		return r == -ENOENT ? 0 : 1;
	r = st.st == ST_COMMITTING ||
	    (st.st == ST_COMMITTED && st.resolved >= since);
	state_free(&st);
	return r;
}
