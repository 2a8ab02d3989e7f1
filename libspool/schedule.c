/*
 * schedule.c - delayed messages: stored now, appended when due
 *
 * A scheduled message (mq-send --delay / --at) is kept outside the
 * partition logs, in topics/T/scheduled/, until its time.  There a
 * directory a minute of due time (BUCKET, the due ms / 60000, 20
 * digits) holds one file a sealed batch, named
 *
 *	DUE-SEQ-PID-PART-COUNT
 *
 * (due ms, 20 digits; the sender's clock in ns, 16 hex digits; its pid,
 * 8 hex digits; the partition the batch goes to; its record count).
 * Names sort by due time, so the earliest is found by listing the
 * buckets and then the first bucket alone, never every file.  The
 * batch is a normal batch (mq-spool(5)) with base_offset 0: the key,
 * headers and ID of each record are in it, the offset comes when it is
 * moved.
 *
 * This file owns that directory's names and listing (shared with the
 * other sched_*.c through schedule.h), storing a batch and counting the
 * scheduled messages.  sched_move.c moves due batches into the
 * partitions; sched_cancel.c cancels them by ID; sched_repl.c is what a
 * replica does instead.  A stored batch is durable when
 * spool_sched_store returns 0 (if sync).
 *
 * What this does not do: it moves nothing (sched_move.c) and wakes no
 * one but followers (spool_sched_kick); it does not look into a batch.
 */

#include <sys/file.h>
#include <sys/stat.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "spool_impl.h"
#include "schedule.h"

/* spool_sched_parse - split a scheduled file's name; -1 if it is not one */
int
spool_sched_parse(const char *name, struct sfile *f)
{
	uint64_t seq;
	unsigned pid, part, count;
	int n = -1;

	if (strlen(name) >= SCHED_NAME_MAX ||
	    sscanf(name, "%20" SCNd64 "-%16" SCNx64 "-%8x-%u-%u%n", &f->due,
	    &seq, &pid, &part, &count, &n) != 5 || n < 0 || name[n] != '\0')
		return -1;
	f->seq = seq;
	f->part = part;
	f->count = count;
	memcpy(f->name, name, strlen(name) + 1);
	return 0;
}

/* spool_sched_bucket - the directory a due time is kept in */
void
spool_sched_bucket(char *buf, size_t len, int64_t due)
{
	snprintf(buf, len, "%020" PRId64, due / BUCKET_MS);
}

/*
 * spool_sched_opendir - a directory under dirfd; created (and synced)
 * when asked
 */
int
spool_sched_opendir(const struct spool *sp, int dirfd, const char *name,
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

/* cmp_name - qsort by name: by due time, then send order */
static int
cmp_name(const void *a, const void *b)
{
	return strcmp(((const struct sfile *)a)->name,
	    ((const struct sfile *)b)->name);
}

/* what file_parse needs: the bucket, and whether to sweep it */
struct sweep {
	int	bfd;
	int	sweep;
};

/* file_parse - spool_dir_list's parse: a scheduled file; a NAME.tmp swept */
static int
file_parse(const struct dirent *de, void *elem, void *arg)
{
	const struct sweep *sw = arg;
	size_t len;

	if (spool_sched_parse(de->d_name, elem) == 0)
		return 1;
	len = strlen(de->d_name);
	if (sw->sweep && len > 4 && strcmp(de->d_name + len - 4, ".tmp") == 0)
		(void)unlinkat(sw->bfd, de->d_name, 0);
	return 0;
}

/*
 * spool_sched_files - the scheduled files of one bucket, sorted; with sweep,
 * a bucket of a past minute, the NAME.tmp a killed sender left go too
 * (a sender still writing one sees its rename fail and writes again)
 */
int
spool_sched_files(int bfd, int sweep, struct sfile **out, size_t *np)
{
	struct sweep sw = { bfd, sweep };
	void *v;
	DIR *d;
	int fd, r;

	*out = NULL;
	*np = 0;
	if ((fd = dup(bfd)) == -1)
		return -errno;
	if ((d = fdopendir(fd)) == NULL) {
		close(fd);
		return -errno;
	}
	rewinddir(d);
	if ((r = spool_dir_list(d, sizeof(**out), file_parse, &sw, cmp_name,
	    NULL, &v, np)) == 0)
		*out = v;
	return r;
}

/* bucket_entry - a name of a bucket: 20 digits, the due minute */
static int
bucket_entry(const struct dirent *de, void *arg)
{
	return strlen(de->d_name) == 20 &&
	    strspn(de->d_name, "0123456789") == 20;
}

/* spool_sched_free - release what spool_sched_buckets returned */
void
spool_sched_free(char **v, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

/* what spool_sched_due keeps, and the smallest later bucket it passed */
struct due_scan {
	const char	*upto;
	const char	*floor;
	char		*later;
};

/* due_entry - a bucket at or before upto is kept; a later one noted */
static int
due_entry(const struct dirent *de, void *arg)
{
	struct due_scan *ds = arg;

	if (!bucket_entry(de, NULL))
		return 0;
	if (strcmp(de->d_name, ds->upto) <= 0)
		return 1;
	if (ds->later != NULL && strcmp(de->d_name, ds->floor) > 0 &&
	    (ds->later[0] == '\0' || strcmp(de->d_name, ds->later) < 0))
		memcpy(ds->later, de->d_name, 21);
	return 0;
}

/*
 * spool_sched_due - the buckets of scheduled/ at or before the minute upto,
 * sorted, and in later (when not NULL) the smallest bucket name above
 * the larger of upto and floor ("" when there is none).  One pass over
 * the names, no sort of the later ones: a sender or reader of a topic
 * with a million messages scheduled over the next day pays for reading
 * about 1440 names, not for sorting them.
 */
int
spool_sched_due(int sfd, const char *upto, const char *floor, char ***out,
    size_t *np, char *later)
{
	struct due_scan ds = { upto, floor, later };
	DIR *d;
	int fd;

	*out = NULL;
	*np = 0;
	if (later != NULL)
		later[0] = '\0';
	if ((fd = dup(sfd)) == -1)
		return -errno;
	if ((d = fdopendir(fd)) == NULL) {
		close(fd);
		return -errno;
	}
	rewinddir(d);
	return spool_dir_names(d, due_entry, &ds, out, np);
}

/* spool_sched_buckets - every bucket directory of scheduled/, sorted */
int
spool_sched_buckets(int sfd, char ***out, size_t *np)
{
	/* "~" sorts after every name of digits */
	return spool_sched_due(sfd, "~", "", out, np, NULL);
}

/*
 * spool_sched_each - call fn with each bucket of scheduled/ (sfd) in due
 * order, open (bfd), and its files, sorted; a bucket moved away meanwhile
 * is passed over.  Stops at fn's first -errno, which it returns.
 */
int
spool_sched_each(int sfd, int (*fn)(int bfd, const struct sfile *, size_t,
    void *), void *arg)
{
	struct sfile *files;
	char **buckets;
	size_t nb, nf, i;
	int bfd, r;

	if ((r = spool_sched_buckets(sfd, &buckets, &nb)) < 0)
		return r;
	for (i = 0; i < nb && r >= 0; i++) {
		if ((bfd = openat(sfd, buckets[i], O_RDONLY | O_DIRECTORY |
		    O_NOFOLLOW | O_CLOEXEC)) == -1)
			continue;
		if ((r = spool_sched_files(bfd, 0, &files, &nf)) == 0) {
			r = fn(bfd, files, nf, arg);
			free(files);
		}
		close(bfd);
	}
	spool_sched_free(buckets, nb);
	return r < 0 ? r : 0;
}

/*
 * spool_sched_store - keep one sealed batch for partition part until
 * due; durable when this returns 0 if sync
 */
int
spool_sched_store(struct spool_topic *t, uint32_t part, int64_t due,
    unsigned char *buf, size_t len, uint32_t count, int sync)
{
	char bucket[32], name[SCHED_NAME_MAX];
	struct timespec ts;
	int sfd, bfd, r, tries;

	spool_batch_stamp(buf, 0);
	if ((sfd = spool_sched_opendir(t->sp, t->dirfd, SCHED_DIR, 1)) < 0)
		return sfd;
	spool_sched_bucket(bucket, sizeof(bucket), due);
	clock_gettime(CLOCK_REALTIME, &ts);
	/* a mover may remove an empty bucket at any time: make it again */
	for (tries = 0; tries < 100; tries++) {
		if ((bfd = spool_sched_opendir(t->sp, sfd, bucket, 1)) < 0) {
			if (bfd == -ENOENT)
				continue;
			close(sfd);
			return bfd;
		}
		do {
			snprintf(name, sizeof(name), "%020" PRId64 "-%016" PRIx64
			    "-%08x-%u-%u", due, (uint64_t)ts.tv_sec *
			    1000000000u + (uint64_t)ts.tv_nsec,
			    (unsigned)getpid(), part, count);
			ts.tv_nsec++;	/* never over a file of our own */
		} while (faccessat(bfd, name, F_OK, AT_SYMLINK_NOFOLLOW) == 0);
		r = spool_write_file(bfd, name, buf, len, sync);
		close(bfd);
		if (r != -ENOENT)
			break;
	}
	close(sfd);
	return r;
}

/*
 * spool_sched_kick - wake followers of the topic, so that they learn the
 * new next due time: a name made and removed in the topic directory
 * (watched by followers of every partition) and each partition's lock
 * closed after writing (watched by followers of one partition)
 */
void
spool_sched_kick(struct spool_topic *t)
{
	char name[64];
	uint32_t i;
	int fd, pfd;

	snprintf(name, sizeof(name), ".scheduled.%u", (unsigned)getpid());
	fd = openat(t->dirfd, name, O_WRONLY | O_CREAT | O_NOFOLLOW |
	    O_CLOEXEC, 0664);
	if (fd >= 0) {
		close(fd);
		(void)unlinkat(t->dirfd, name, 0);
	}
	for (i = 0; i < t->cfg.partitions; i++) {
		if ((pfd = spool_part_open(t, i)) < 0)
			continue;
		fd = openat(pfd, SPOOL_LOCK_NAME, O_WRONLY | O_NOFOLLOW |
		    O_CLOEXEC);
		if (fd >= 0)
			close(fd);
		close(pfd);
	}
}

/* what spool_sched_info adds up */
struct info {
	uint64_t	*count;
	int64_t		*next;
};

/* info_add - spool_sched_each's fn for spool_sched_info */
static int
info_add(int bfd, const struct sfile *files, size_t nf, void *arg)
{
	struct info *in = arg;
	size_t j;

	for (j = 0; j < nf; j++) {
		*in->count += files[j].count;
		if (*in->next < 0 || files[j].due < *in->next)
			*in->next = files[j].due;
	}
	return 0;
}

/*
 * spool_sched_info - how many messages are scheduled and the earliest
 * due time (-1: none); counts from the file names, reads no batch
 */
int
spool_sched_info(struct spool_topic *t, uint64_t *count, int64_t *next)
{
	struct info in = { count, next };
	int sfd, r;

	*count = 0;
	*next = -1;
	if ((sfd = spool_sched_opendir(t->sp, t->dirfd, SCHED_DIR, 0)) < 0)
		return sfd == -ENOENT ? 0 : sfd;
	r = spool_sched_each(sfd, info_add, &in);
	close(sfd);
	return r;
}
