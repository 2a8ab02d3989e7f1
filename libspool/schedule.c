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
 * Moving: whoever touches the topic calls spool_sched_move, which takes
 * scheduled/lock (so two movers never move one batch) and, for each due
 * file in name order: writes the marker scheduled/moving (the file's
 * name, its partition and that partition's next offset, synced), appends
 * the batch with the writer (under the partition lock, synced), unlinks
 * the file (directory synced) and then the marker.  A mover that starts
 * and finds a marker whose file is still there looks in the partition
 * from the recorded offset on for a batch with the same header fields
 * (count, lengths, body checksum, times, codec): found, the append was
 * done and only the unlink is; not found, the file is moved as usual.
 * So a batch is appended exactly once whatever point a mover dies at.
 *
 * On a replica nothing is moved: see the replication part at the end.
 *
 * What this does not do: it does not wake on its own; the caller
 * decides when to move (mq-recv -f waits until the next due time).  It
 * does not compare the body bytes of a found batch, only its checksum.
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

#define SCHED_DIR	"scheduled"
#define SCHED_MARKER	"moving"
#define BUCKET_MS	60000
#define SCHED_NAME_MAX	96

struct sfile {
	char		 name[SCHED_NAME_MAX];
	int64_t		 due;
	uint32_t	 part;
	uint32_t	 count;
};

/* parse_name - split a scheduled file's name; -1 if it is not one */
static int
parse_name(const char *name, struct sfile *f)
{
	uint64_t seq;
	unsigned pid, part, count;
	int n = -1;

	if (strlen(name) >= SCHED_NAME_MAX ||
	    sscanf(name, "%20" SCNd64 "-%16" SCNx64 "-%8x-%u-%u%n", &f->due,
	    &seq, &pid, &part, &count, &n) != 5 || n < 0 || name[n] != '\0')
		return -1;
	f->part = part;
	f->count = count;
	memcpy(f->name, name, strlen(name) + 1);
	return 0;
}

/* bucket_name - the directory a due time is kept in */
static void
bucket_name(char *buf, size_t len, int64_t due)
{
	snprintf(buf, len, "%020" PRId64, due / BUCKET_MS);
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

/* cmp_name - qsort by name: by due time, then send order */
static int
cmp_name(const void *a, const void *b)
{
	return strcmp(((const struct sfile *)a)->name,
	    ((const struct sfile *)b)->name);
}

/*
 * list_files - the scheduled files of one bucket, sorted; with sweep,
 * a bucket of a past minute, the NAME.tmp a killed sender left go too
 * (a sender still writing one sees its rename fail and writes again)
 */
static int
list_files(int bfd, int sweep, struct sfile **out, size_t *np)
{
	size_t len;
	struct sfile *v = NULL, *nv, f;
	struct dirent *de;
	size_t n = 0, cap = 0;
	DIR *d;
	int fd;

	*out = NULL;
	*np = 0;
	if ((fd = dup(bfd)) == -1)
		return -errno;
	if ((d = fdopendir(fd)) == NULL) {
		close(fd);
		return -errno;
	}
	rewinddir(d);
	while ((de = readdir(d)) != NULL) {
		if (parse_name(de->d_name, &f) < 0) {
			len = strlen(de->d_name);
			if (sweep && len > 4 &&
			    strcmp(de->d_name + len - 4, ".tmp") == 0)
				(void)unlinkat(bfd, de->d_name, 0);
			continue;
		}
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
		qsort(v, n, sizeof(*v), cmp_name);
	*out = v;
	*np = n;
	return 0;
}

/* bucket_entry - a name of a bucket: 20 digits, the due minute */
static int
bucket_entry(const struct dirent *de, void *arg)
{
	return strlen(de->d_name) == 20 &&
	    strspn(de->d_name, "0123456789") == 20;
}

/* free_buckets - release what list_buckets returned */
static void
free_buckets(char **v, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

/* what due_buckets keeps, and the smallest later bucket it passed */
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
 * due_buckets - the buckets of scheduled/ at or before the minute upto,
 * sorted, and in later (when not NULL) the smallest bucket name above
 * the larger of upto and floor ("" when there is none).  One pass over
 * the names, no sort of the later ones: a sender or reader of a topic
 * with a million messages scheduled over the next day pays for reading
 * about 1440 names, not for sorting them.
 */
static int
due_buckets(int sfd, const char *upto, const char *floor, char ***out,
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

/* list_buckets - every bucket directory of scheduled/, sorted */
static int
list_buckets(int sfd, char ***out, size_t *np)
{
	/* "~" sorts after every name of digits */
	return due_buckets(sfd, "~", "", out, np, NULL);
}

/*
 * first_due - the earliest due time in bucket name (-ENOENT: it holds
 * no scheduled file); names sort by due time, so only a name smaller
 * than the smallest so far is parsed
 */
static int
first_due(int sfd, const char *name, int64_t *due)
{
	struct sfile f, best;
	struct dirent *de;
	DIR *d;
	int fd, found = 0;

	fd = openat(sfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW |
	    O_CLOEXEC);
	if (fd == -1)
		return errno == ENOENT ? -ENOENT : -errno;
	if ((d = fdopendir(fd)) == NULL) {
		close(fd);
		return -errno;
	}
	while ((de = readdir(d)) != NULL) {
		if (found && strcmp(de->d_name, best.name) >= 0)
			continue;
		if (parse_name(de->d_name, &f) == 0) {
			best = f;
			found = 1;
		}
	}
	closedir(d);
	if (!found)
		return -ENOENT;
	*due = best.due;
	return 0;
}

/*
 * next_due - the earliest due time after bucket upto: the first file of
 * the smallest later bucket that holds one (one a cancel or a move
 * emptied is passed); later is that bucket's name when the caller has
 * it already, else ""
 */
static int
next_due(int sfd, const char *upto, char *later, int64_t *next)
{
	char **v, floor[32];
	size_t n;
	int r;

	*next = -1;
	if (later[0] == '\0') {
		if ((r = due_buckets(sfd, upto, "", &v, &n, later)) < 0)
			return r;
		free_buckets(v, n);
	}
	while (later[0] != '\0') {
		if ((r = first_due(sfd, later, next)) != -ENOENT)
			return r;
		memcpy(floor, later, sizeof(floor));
		if ((r = due_buckets(sfd, upto, floor, &v, &n, later)) < 0)
			return r;
		free_buckets(v, n);
	}
	return 0;
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
	if ((sfd = open_dir(t->sp, t->dirfd, SCHED_DIR, 1)) < 0)
		return sfd;
	bucket_name(bucket, sizeof(bucket), due);
	clock_gettime(CLOCK_REALTIME, &ts);
	/* a mover may remove an empty bucket at any time: make it again */
	for (tries = 0; tries < 100; tries++) {
		if ((bfd = open_dir(t->sp, sfd, bucket, 1)) < 0) {
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

/* same_batch - do two headers describe the same batch, offsets apart */
static int
same_batch(const struct spool_bhdr *a, const struct spool_bhdr *b)
{
	return a->count == b->count && a->body_len == b->body_len &&
	    a->body_crc == b->body_crc && a->raw_len == b->raw_len &&
	    a->base_ts == b->base_ts && a->max_ts == b->max_ts &&
	    a->type == b->type && a->codec == b->codec;
}

/*
 * find_batch - is a batch like h in partition part at offset from or
 * later: 1 yes, 0 no
 */
static int
find_batch(struct spool_topic *t, uint32_t part, uint64_t from,
    const struct spool_bhdr *want)
{
	struct spool_io *io = spool_get_io(t->sp);
	struct spool_cursor c;
	int pfd, s, found = 0;

	if (io == NULL)
		return -ENOMEM;
	if ((pfd = spool_part_open(t, part)) < 0)
		return pfd;
	/* a torn last batch is not there: the next writer cuts it */
	if ((s = spool_cursor_open(&c, io, pfd)) == 0 &&
	    (s = spool_cursor_seek(&c, from)) == 0)
		while ((s = spool_cursor_next(&c)) > 0 || s == -EPROTO)
			if (s == SPOOL_CUR_BATCH && c.h.base_offset >= from &&
			    same_batch(&c.h, want)) {
				found = 1;
				break;
			}
	spool_cursor_close(&c);
	close(pfd);
	return s < 0 ? s : found;
}

/* recover - finish the move a killed mover left half done */
static int
recover(struct spool_topic *t, int sfd)
{
	char text[256], path[128], bucket[32], *slash;
	struct spool_bhdr h;
	struct sfile f;
	unsigned char *buf;
	size_t len;
	uint64_t from;
	unsigned part;
	int r, bfd;

	r = spool_read_file(sfd, SCHED_MARKER, text, sizeof(text));
	if (r == -ENOENT)
		return 0;
	if (r < 0)
		return r;
	if (sscanf(text, "%127s %u %" SCNu64, path, &part, &from) != 3 ||
	    (slash = strchr(path, '/')) == NULL ||
	    (size_t)(slash - path) >= sizeof(bucket) ||
	    parse_name(slash + 1, &f) < 0)
		goto done;		/* a marker torn before its sync */
	memcpy(bucket, path, slash - path);
	bucket[slash - path] = '\0';
	if ((bfd = openat(sfd, bucket, O_RDONLY | O_DIRECTORY | O_NOFOLLOW |
	    O_CLOEXEC)) == -1)
		goto done;
	r = spool_batch_read_file(t->sp, "scheduled/", bfd, f.name, &buf, &len,
	    &h);
	if (r == -ENOENT) {
		close(bfd);
		goto done;		/* moved and unlinked */
	}
	if (r < 0) {
		close(bfd);
		return r;
	}
	free(buf);
	if ((r = find_batch(t, f.part, from, &h)) < 0) {
		close(bfd);
		return r;
	}
	if (r == 1) {
		/* appended before the mover died: only the unlink is left */
		if (unlinkat(bfd, f.name, 0) == -1 && errno != ENOENT) {
			r = -errno;
			close(bfd);
			return r;
		}
		/* the file must stay gone, or it is appended twice */
		if (!t->sp->nosync && spool_fsync_dir(bfd) < 0) {
			r = -errno;
			close(bfd);
			return r;
		}
	}
	close(bfd);
done:
	if (unlinkat(sfd, SCHED_MARKER, 0) == -1 && errno != ENOENT)
		return -errno;
	return 0;
}

/* move_one - append one due file to its partition, exactly once */
static int
move_one(struct spool_topic *t, int sfd, int bfd, const char *bucket,
    const struct sfile *f, struct spool_writer **wp)
{
	struct spool_writer_opts wo = { .sync = !t->sp->nosync, .codec = -1,
	    .partition = -1 };
	struct spool_part_info pi;
	struct spool_bhdr h;
	unsigned char *buf;
	char text[256];
	size_t len;
	int r, n;

	if (f->part >= t->cfg.partitions) {
		spool_seterr(t->sp, "scheduled/%s/%s: no partition %u", bucket,
		    f->name, f->part);
		return -EBADMSG;
	}
	if ((r = spool_batch_read_file(t->sp, "scheduled/", bfd, f->name, &buf,
	    &len, &h)) < 0)
		return r == -ENOENT ? 0 : r;
	if ((r = spool_part_bounds(t, f->part, &pi)) < 0)
		goto out;
	/* write-ahead: where to look for it, should this mover die */
	n = snprintf(text, sizeof(text), "%s/%s %u %" PRIu64 "\n", bucket,
	    f->name, f->part, pi.next);
	if ((r = spool_write_file(sfd, SCHED_MARKER, text, n,
	    !t->sp->nosync)) < 0)
		goto out;
	if (*wp == NULL && (r = spool_writer_open(t, &wo, wp)) < 0)
		goto out;
	if ((r = spool_writer_put_batch(*wp, f->part, buf, len, h.count)) < 0 ||
	    (r = spool_writer_sync(*wp)) < 0)
		goto out;
	if (unlinkat(bfd, f->name, 0) == -1) {
		r = -errno;
		goto out;
	}
	/* gone for good before the marker goes, or recovery is blind */
	if (!t->sp->nosync && spool_fsync_dir(bfd) < 0) {
		r = -errno;
		goto out;
	}
	if (unlinkat(sfd, SCHED_MARKER, 0) == -1)
		r = -errno;
	else
		r = 1;
out:
	free(buf);
	return r;
}

/*
 * spool_sched_move - append every scheduled batch due at now, in due
 * order; *next is the next due time after that (-1: none; next NULL:
 * not wanted, and buckets of later minutes are not listed).  Returns
 * the number of batches moved or -errno.
 */
int
spool_sched_move(struct spool_topic *t, int64_t now, int64_t *next)
{
	struct spool_writer *w = NULL;
	struct sfile *files;
	char **buckets, nowb[32], later[32];
	size_t nb, nf, i, j;
	int sfd, lfd, bfd, r, moved = 0, stop = 0;

	if (next != NULL)
		*next = -1;
	if ((sfd = open_dir(t->sp, t->dirfd, SCHED_DIR, 0)) < 0)
		return sfd == -ENOENT ? 0 : sfd;
	/*
	 * A replica moves nothing: the source's moves arrive as appends.
	 * A follower still wakes when one falls due, and once a second
	 * while any is overdue, so that after a promotion (which makes
	 * them ours to move) they come without another send.
	 */
	if ((r = spool_replica_of(t->sp, NULL, 0)) != 0) {
		if (r > 0 && next != NULL) {
			later[0] = '\0';
			r = next_due(sfd, "", later, next);
			if (r >= 0 && *next >= 0 && *next <= now)
				*next = now + 1000;
		}
		close(sfd);
		return r < 0 ? r : 0;
	}
	if ((lfd = spool_lock_file(sfd, LOCK_EX)) < 0) {
		close(sfd);
		return lfd;
	}
	bucket_name(nowb, sizeof(nowb), now);
	if ((r = recover(t, sfd)) < 0 ||
	    (r = due_buckets(sfd, nowb, "", &buckets, &nb,
	    next != NULL ? later : NULL)) < 0)
		goto out;
	for (i = 0; i < nb && !stop && r >= 0; i++) {
		if ((bfd = openat(sfd, buckets[i], O_RDONLY | O_DIRECTORY |
		    O_NOFOLLOW | O_CLOEXEC)) == -1)
			continue;
		if ((r = list_files(bfd, strcmp(buckets[i], nowb) < 0, &files,
		    &nf)) < 0) {
			close(bfd);
			break;
		}
		for (j = 0; j < nf; j++) {
			if (files[j].due > now) {
				if (next != NULL)
					*next = files[j].due;
				stop = 1;
				break;
			}
			if ((r = move_one(t, sfd, bfd, buckets[i],
			    &files[j], &w)) < 0)
				break;
			moved += r;
		}
		free(files);
		close(bfd);
		/* an empty past bucket goes; a sender makes it again */
		if (r >= 0 && j == nf && strcmp(buckets[i], nowb) < 0)
			(void)unlinkat(sfd, buckets[i], AT_REMOVEDIR);
	}
	free_buckets(buckets, nb);
	if (r >= 0 && !stop && next != NULL && later[0] != '\0')
		r = next_due(sfd, nowb, later, next);
out:
	if (w != NULL) {
		int c = spool_writer_close(w);

		if (r >= 0 && c < 0)
			r = c;
	}
	close(lfd);
	close(sfd);
	return r < 0 ? r : moved;
}

/*
 * spool_sched_info - how many messages are scheduled and the earliest
 * due time (-1: none); counts from the file names, reads no batch
 */
int
spool_sched_info(struct spool_topic *t, uint64_t *count, int64_t *next)
{
	struct sfile *files;
	char **buckets;
	size_t nb, nf, i, j;
	int sfd, bfd, r;

	*count = 0;
	*next = -1;
	if ((sfd = open_dir(t->sp, t->dirfd, SCHED_DIR, 0)) < 0)
		return sfd == -ENOENT ? 0 : sfd;
	if ((r = list_buckets(sfd, &buckets, &nb)) < 0) {
		close(sfd);
		return r;
	}
	for (i = 0; i < nb && r >= 0; i++) {
		if ((bfd = openat(sfd, buckets[i], O_RDONLY | O_DIRECTORY |
		    O_NOFOLLOW | O_CLOEXEC)) == -1)
			continue;
		r = list_files(bfd, 0, &files, &nf);
		close(bfd);
		if (r < 0)
			break;
		for (j = 0; j < nf; j++) {
			*count += files[j].count;
			if (*next < 0 || files[j].due < *next)
				*next = files[j].due;
		}
		free(files);
	}
	free_buckets(buckets, nb);
	close(sfd);
	return r;
}

/* has_id - does any record of a scheduled batch carry this ID */
static int
has_id(struct spool *sp, int bfd, const char *name, const void *id,
    size_t idlen)
{
	struct spool_body body;
	struct spool_bhdr h;
	struct spool_msg m;
	unsigned char *buf;
	char why[128];
	size_t len;
	int r, found = 0;

	if ((r = spool_batch_read_file(sp, "scheduled/", bfd, name, &buf, &len,
	    &h)) < 0)
		return r == -ENOENT ? 0 : r;
	memset(&body, 0, sizeof(body));
	if ((r = spool_body_open(&body, &h, buf + SPOOL_HDR_SIZE, why,
	    sizeof(why))) < 0) {
		free(buf);
		return r;
	}
	while ((r = spool_body_next(&body, &m)) > 0)
		if (m.id != NULL && m.idlen == idlen &&
		    memcmp(m.id, id, idlen) == 0) {
			found = 1;
			break;
		}
	spool_body_free(&body);
	free(buf);
	return r < 0 ? r : found;
}

/*
 * spool_sched_cancel - remove the scheduled batches not yet due whose
 * records carry id; returns how many messages went (0: none)
 */
int
spool_sched_cancel(struct spool_topic *t, const void *id, size_t idlen)
{
	struct sfile *files;
	char **buckets;
	size_t nb, nf, i, j;
	int sfd, lfd, bfd, r, n = 0;

	if ((sfd = open_dir(t->sp, t->dirfd, SCHED_DIR, 0)) < 0)
		return sfd == -ENOENT ? 0 : sfd;
	/* not while a mover is moving it */
	if ((lfd = spool_lock_file(sfd, LOCK_EX)) < 0) {
		close(sfd);
		return lfd;
	}
	if ((r = recover(t, sfd)) < 0 ||
	    (r = list_buckets(sfd, &buckets, &nb)) < 0)
		goto out;
	for (i = 0; i < nb && r >= 0; i++) {
		if ((bfd = openat(sfd, buckets[i], O_RDONLY | O_DIRECTORY |
		    O_NOFOLLOW | O_CLOEXEC)) == -1)
			continue;
		if ((r = list_files(bfd, 0, &files, &nf)) < 0) {
			close(bfd);
			break;
		}
		for (j = 0; j < nf; j++) {
			if ((r = has_id(t->sp, bfd, files[j].name, id,
			    idlen)) < 0)
				break;
			if (r == 0)
				continue;
			if (unlinkat(bfd, files[j].name, 0) == -1) {
				r = -errno;
				break;
			}
			n += files[j].count;
		}
		free(files);
		/* a cancelled message must not come back after a crash */
		if (r >= 0 && n > 0 && !t->sp->nosync &&
		    spool_fsync_dir(bfd) < 0)
			r = -errno;
		close(bfd);
	}
	free_buckets(buckets, nb);
out:
	close(lfd);
	close(sfd);
	return r < 0 ? r : n;
}

/*
 * ---- replication (repl_pass.c) ----------------------------------------
 *
 * A replica holds a copy of its source's scheduled files and never moves
 * them itself (spool_sched_move does nothing on a replica): the source's
 * moves reach it as log appends, and mq-replicate removes the files the
 * source no longer has.  SCHED_FROM records, per partition, the source's
 * next offset taken just before the last listing it copied: a file held
 * then and moved later has its batch at or after that offset, so on
 * promotion spool_sched_reconcile drops the files whose batch the
 * replica already holds there, and the new primary moves each of the
 * others once.
 */

#define SCHED_FROM	"replicated"

/* spool_sched_names - every scheduled file's name, in due order */
int
spool_sched_names(struct spool_topic *t, char ***out, size_t *np)
{
	struct sfile *files;
	char **buckets, **v = NULL, **nv;
	size_t nb, nf, i, j, n = 0;
	int sfd, bfd, r;

	*out = NULL;
	*np = 0;
	if ((sfd = open_dir(t->sp, t->dirfd, SCHED_DIR, 0)) < 0)
		return sfd == -ENOENT ? 0 : sfd;
	if ((r = list_buckets(sfd, &buckets, &nb)) < 0) {
		close(sfd);
		return r;
	}
	for (i = 0; i < nb && r == 0; i++) {
		if ((bfd = openat(sfd, buckets[i], O_RDONLY | O_DIRECTORY |
		    O_NOFOLLOW | O_CLOEXEC)) == -1)
			continue;
		r = list_files(bfd, 0, &files, &nf);
		close(bfd);
		if (r < 0)
			break;
		if (nf > 0 && (nv = realloc(v, (n + nf) * sizeof(*v))) == NULL)
			r = -ENOMEM;
		else if (nf > 0)
			v = nv;
		for (j = 0; j < nf && r == 0; j++)
			if ((v[n] = strdup(files[j].name)) == NULL)
				r = -ENOMEM;
			else
				n++;
		free(files);
	}
	free_buckets(buckets, nb);
	close(sfd);
	if (r < 0) {
		free_buckets(v, n);
		return r;
	}
	*out = v;
	*np = n;
	return 0;
}

/* bucket_of - the open bucket directory of a scheduled file's name */
static int
bucket_of(struct spool_topic *t, const char *name, int create, int *sfdp)
{
	char bucket[32];
	struct sfile f;
	int sfd, bfd;

	if (parse_name(name, &f) < 0) {
		spool_seterr(t->sp, "scheduled/%s: not a scheduled file", name);
		return -EBADMSG;
	}
	if ((sfd = open_dir(t->sp, t->dirfd, SCHED_DIR, create)) < 0)
		return sfd;
	bucket_name(bucket, sizeof(bucket), f.due);
	if ((bfd = open_dir(t->sp, sfd, bucket, create)) < 0) {
		close(sfd);
		return bfd;
	}
	*sfdp = sfd;
	return bfd;
}

/* spool_sched_get - a scheduled file's batch, checked (*buf to free) */
int
spool_sched_get(struct spool_topic *t, const char *name, unsigned char **buf,
    size_t *len)
{
	struct spool_bhdr h;
	int sfd, bfd, r;

	if ((bfd = bucket_of(t, name, 0, &sfd)) < 0)
		return bfd;
	r = spool_batch_read_file(t->sp, "scheduled/", bfd, name, buf, len,
	    &h);
	close(bfd);
	close(sfd);
	return r;
}

/*
 * spool_sched_put - keep the source's scheduled batch under its name
 * (a replica); checked as a mover would read it; durable if sync
 */
int
spool_sched_put(struct spool_topic *t, const char *name,
    const unsigned char *buf, size_t len, int sync)
{
	struct spool_bhdr h;
	struct sfile f;
	int sfd, bfd, r;

	if (parse_name(name, &f) < 0 || f.part >= t->cfg.partitions ||
	    len < SPOOL_HDR_SIZE || spool_bhdr_unpack(buf, &h) < 0 ||
	    (size_t)h.body_len != len - SPOOL_HDR_SIZE || h.count != f.count ||
	    spool_crc(0, buf + SPOOL_HDR_SIZE, h.body_len) != h.body_crc) {
		spool_seterr(t->sp, "scheduled/%s: not a scheduled batch of "
		    "this topic", name);
		return -EBADMSG;
	}
	if ((bfd = bucket_of(t, name, 1, &sfd)) < 0)
		return bfd;
	r = spool_write_file(bfd, name, buf, len, sync);
	close(bfd);
	close(sfd);
	return r;
}

/* spool_sched_drop - remove a scheduled file (gone from the source) */
int
spool_sched_drop(struct spool_topic *t, const char *name, int sync)
{
	int sfd, bfd, r = 0;

	if ((bfd = bucket_of(t, name, 0, &sfd)) < 0)
		return bfd == -ENOENT ? 0 : bfd;
	if (unlinkat(bfd, name, 0) == -1)
		r = errno == ENOENT ? 0 : -errno;
	/* gone for good: a promoted replica would deliver it again */
	else if (sync && spool_fsync_dir(bfd) < 0)
		r = -errno;
	close(bfd);
	close(sfd);
	return r;
}

/*
 * spool_sched_setfrom - record where the batches of the files held now
 * can be, should the source move them (see above); durable if sync
 */
int
spool_sched_setfrom(struct spool_topic *t, const uint64_t *from, uint32_t n,
    int sync)
{
	char *text;
	size_t len = 0, cap = (size_t)n * 21 + 1;
	uint32_t i;
	int sfd, r;

	if ((text = malloc(cap)) == NULL)
		return -ENOMEM;
	for (i = 0; i < n; i++)
		len += snprintf(text + len, cap - len, "%" PRIu64 "\n",
		    from[i]);
	if ((sfd = open_dir(t->sp, t->dirfd, SCHED_DIR, 1)) < 0) {
		free(text);
		return sfd;
	}
	r = spool_write_file(sfd, SCHED_FROM, text, len, sync);
	close(sfd);
	free(text);
	return r;
}

/*
 * spool_sched_reconcile - on promotion: drop the scheduled files whose
 * batch the replica already holds (moved on the source after the last
 * listing copied); the rest stay for the new primary to move
 */
int
spool_sched_reconcile(struct spool_topic *t)
{
	const size_t cap = SPOOL_PART_MAX * 21 + 1;
	char *text, *p, *end, **names;
	uint64_t *from;
	struct spool_bhdr h;
	struct sfile f;
	unsigned char *buf;
	size_t n, i, len, nfrom = 0;
	int sfd, r, dropped = 0;

	if ((sfd = open_dir(t->sp, t->dirfd, SCHED_DIR, 0)) < 0)
		return sfd == -ENOENT ? 0 : sfd;
	if ((text = malloc(cap)) == NULL ||
	    (from = calloc(SPOOL_PART_MAX, sizeof(*from))) == NULL) {
		free(text);
		close(sfd);
		return -ENOMEM;
	}
	r = spool_read_file(sfd, SCHED_FROM, text, cap);
	close(sfd);
	for (p = text; r >= 0 && nfrom < SPOOL_PART_MAX && *p != '\0';
	    p = end + 1) {
		from[nfrom++] = strtoull(p, &end, 10);
		if (*end != '\n')
			break;
	}
	free(text);
	if (r >= 0)
		r = spool_sched_names(t, &names, &n);
	if (r < 0) {
		free(from);
		/* never copied a listing: nothing to drop */
		return r == -ENOENT ? 0 : r;
	}
	for (i = 0; i < n && r >= 0; i++) {
		(void)parse_name(names[i], &f);
		if (f.part >= nfrom ||
		    spool_sched_get(t, names[i], &buf, &len) < 0)
			continue;	/* a mover reports what is wrong */
		(void)spool_bhdr_unpack(buf, &h);	/* checked by _get */
		free(buf);
		if ((r = find_batch(t, f.part, from[f.part], &h)) == 1 &&
		    (r = spool_sched_drop(t, names[i], !t->sp->nosync)) == 0)
			dropped++;
	}
	free_buckets(names, n);
	free(from);
	return r < 0 ? r : dropped;
}
