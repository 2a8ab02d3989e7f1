/*
 * sched_move.c - the mover: due scheduled batches into their partitions,
 * each exactly once
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
 * It owns scheduled/moving and what scheduled/lock guards (cancel and
 * a send ID retry's search, through sched_cancel.c, take the lock too
 * and first call spool_sched_recover).
 * On a replica nothing is moved (see sched_repl.c).
 *
 * What this does not do: it does not wake on its own; the caller
 * decides when to move (mq-recv -f waits until the next due time).  It
 * does not compare the body bytes of a found batch, only its checksum.
 */

#include <sys/file.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "spool_impl.h"
#include "schedule.h"

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
		if (spool_sched_parse(de->d_name, &f) == 0) {
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
		if ((r = spool_sched_due(sfd, upto, "", &v, &n, later)) < 0)
			return r;
		spool_sched_free(v, n);
	}
	while (later[0] != '\0') {
		if ((r = first_due(sfd, later, next)) != -ENOENT)
			return r;
		memcpy(floor, later, sizeof(floor));
		if ((r = spool_sched_due(sfd, upto, floor, &v, &n, later)) < 0)
			return r;
		spool_sched_free(v, n);
	}
	return 0;
}

/* same_batch - do two headers describe the same batch, offsets apart */
static int
same_batch(const struct spool_bhdr *a, const void *arg)
{
	const struct spool_bhdr *b = arg;

	return a->count == b->count && a->body_len == b->body_len &&
	    a->body_crc == b->body_crc && a->raw_len == b->raw_len &&
	    a->base_ts == b->base_ts && a->max_ts == b->max_ts &&
	    a->type == b->type && a->codec == b->codec;
}

/*
 * spool_sched_moved - is a batch like h in partition part at offset from or
 * later: 1 yes, 0 no
 */
int
spool_sched_moved(struct spool_topic *t, uint32_t part, uint64_t from,
    const struct spool_bhdr *want)
{
	return spool_part_count(t, part, from, same_batch, want, 1);
}

/* spool_sched_recover - finish the move a killed mover left half done */
int
spool_sched_recover(struct spool_topic *t, int sfd)
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
	    spool_sched_parse(slash + 1, &f) < 0)
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
	if ((r = spool_sched_moved(t, f.part, from, &h)) < 0) {
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
	if ((sfd = spool_sched_opendir(t->sp, t->dirfd, SCHED_DIR, 0)) < 0)
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
	spool_sched_bucket(nowb, sizeof(nowb), now);
	if ((r = spool_sched_recover(t, sfd)) < 0 ||
	    (r = spool_sched_due(sfd, nowb, "", &buckets, &nb,
	    next != NULL ? later : NULL)) < 0)
		goto out;
	for (i = 0; i < nb && !stop && r >= 0; i++) {
		if ((bfd = openat(sfd, buckets[i], O_RDONLY | O_DIRECTORY |
		    O_NOFOLLOW | O_CLOEXEC)) == -1)
			continue;
		if ((r = spool_sched_files(bfd, strcmp(buckets[i], nowb) < 0,
		    &files, &nf)) < 0) {
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
	spool_sched_free(buckets, nb);
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
