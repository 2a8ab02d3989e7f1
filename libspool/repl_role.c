/*
 * repl_role.c - a spool's replication role: its identity, epoch and
 * replica marker, promotion, and the acknowledgement records
 *
 * The contract of replication (all repl_*.c files):
 *
 * A session runs over one pipe between a sender (the source spool) and
 * a receiver (the replica), whichever end started it: the client sends
 * HELLO, the server answers with its own (proto.h; mq-spool(5) has the
 * exchange).  Then the receiver drives: it asks for the topic list, and
 * for each partition says what it holds (its newest batch: segment,
 * position, header checksum, offset); the sender checks that batch
 * against its own log by reading one header, and streams only what
 * follows, whole batches as stored, segment by segment.  The receiver
 * appends them through mirror.c, syncs, and acknowledges; the sender
 * records the acknowledgement in SPOOL/replicas/ID for mq-send
 * --replicas.  A replica whose newest batch the source does not have has
 * diverged: the two find their newest common batch (by header checksum
 * and offset, so epochs count, as in Kafka's KIP-101) and the replica is
 * cut back to it, its cut-off messages first kept aside in
 * SPOOL/diverged/.  Compaction rewrites sealed segments: when the
 * source's compaction generation (compact.c) is not the one the replica
 * recorded, and the replica's newest batch is the source's or one whose
 * epoch the source's log goes on in, the replica lists its segments
 * (SEGS) and the sender sends whole each sealed one that differs, which
 * mirror.c installs as gc installs one; that is not divergence.
 *
 * Roles live in small files of the spool directory: id (a stable random
 * identity), epoch (the replication epoch writers stamp into batches),
 * replica (present on a replica: the identity of its source).
 *
 * Nothing here trusts the peer: names are checked as everywhere else,
 * partitions against the topic, every batch before it is written; a
 * malformed frame is -EBADMSG.  It never prints (opts.report does).
 */

#include <sys/file.h>
#include <sys/inotify.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/types.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "repl.h"

/* ---- small files of the spool directory ---------------------------- */

/* spool_id - the spool's identity (32 hex digits), made if create */
int
spool_id(struct spool *sp, int create, char id[SPOOL_ID_LEN + 1])
{
	unsigned char rnd[SPOOL_ID_LEN / 2];
	char buf[64];
	size_t i;
	int r;

	if ((r = spool_read_file(sp->dirfd, ID_NAME, buf, sizeof(buf))) >= 0) {
		if (r >= SPOOL_ID_LEN && strspn(buf, "0123456789abcdef") >=
		    SPOOL_ID_LEN) {
			memcpy(id, buf, SPOOL_ID_LEN);
			id[SPOOL_ID_LEN] = '\0';
			return 0;
		}
		spool_seterr(sp, "%s: not an identity", ID_NAME);
		return -EBADMSG;
	}
	if (r != -ENOENT || !create)
		return r;
	if (getrandom(rnd, sizeof(rnd), 0) != (ssize_t)sizeof(rnd))
		return -EIO;
	for (i = 0; i < sizeof(rnd); i++)
		snprintf(id + 2 * i, 3, "%02x", rnd[i]);
	snprintf(buf, sizeof(buf), "%s\n", id);
	/* an identity that changed after a crash would orphan its acks */
	if ((r = spool_write_file(sp->dirfd, ID_NAME, buf, strlen(buf),
	    1)) < 0)
		return r;
	return 0;
}

/* spool_epoch - the spool's replication epoch (0 when never promoted) */
int
spool_epoch(struct spool *sp, uint32_t *epoch)
{
	char buf[32], *end;
	unsigned long v;
	int r;

	*epoch = 0;
	if ((r = spool_read_file(sp->dirfd, EPOCH_NAME, buf, sizeof(buf))) < 0)
		return r == -ENOENT ? 0 : r;
	errno = 0;
	v = strtoul(buf, &end, 10);
	if (errno != 0 || end == buf || (*end != '\n' && *end != '\0') ||
	    v > UINT32_MAX) {
		spool_seterr(sp, "%s: not an epoch", EPOCH_NAME);
		return -EBADMSG;
	}
	*epoch = (uint32_t)v;
	return 0;
}

/* set_epoch - replace the epoch file, durably */
int
repl_set_epoch(struct spool *sp, uint32_t epoch)
{
	char buf[32];

	snprintf(buf, sizeof(buf), "%" PRIu32 "\n", epoch);
	return spool_write_file(sp->dirfd, EPOCH_NAME, buf, strlen(buf), 1);
}

/*
 * spool_replica_of - 1 and the source's identity in src if the spool is
 * a replica, 0 if it is a primary
 */
int
spool_replica_of(struct spool *sp, char *src, size_t len)
{
	char buf[128];
	int r;

	if ((r = spool_read_file(sp->dirfd, REPLICA_NAME, buf,
	    sizeof(buf))) < 0)
		return r == -ENOENT ? 0 : r;
	buf[strcspn(buf, "\n")] = '\0';
	if (strncmp(buf, "source ", 7) == 0)
		snprintf(src, len, "%s", buf + 7);
	else
		snprintf(src, len, "?");
	return 1;
}

/* mark_replica - record that the spool is a replica of src, durably */
int
repl_mark_replica(struct spool *sp, const char *src)
{
	char buf[128];

	snprintf(buf, sizeof(buf), "source %s\n", src);
	return spool_write_file(sp->dirfd, REPLICA_NAME, buf, strlen(buf), 1);
}

/*
 * promote_sched - before the marker goes, drop the scheduled files
 * whose batches the source moved after the last listing copied
 * (schedule.c): the new primary moves each of the others once
 */
static int
promote_sched(struct spool *sp)
{
	struct spool_topic *t;
	char **names;
	size_t n, i;
	int r;

	if (sp->topicsfd < 0)
		return 0;
	if ((r = spool_topic_list(sp, &names, &n)) < 0)
		return r;
	for (i = 0; i < n; i++) {
		if (r >= 0 && spool_topic_open(sp, names[i], &t) == 0) {
			r = spool_sched_reconcile(t);
			spool_topic_close(t);
		}
		free(names[i]);
	}
	free(names);
	return r < 0 ? r : 0;
}

/*
 * spool_promote - make a replica a primary: a new epoch first (so that
 * no batch of the new primary carries an old one), then the marker goes;
 * -EALREADY if it is a primary
 */
int
spool_promote(struct spool *sp, uint32_t *epoch)
{
	char src[64];
	int r;

	if ((r = spool_replica_of(sp, src, sizeof(src))) < 0)
		return r;
	if (r == 0)
		return -EALREADY;
	if ((r = spool_epoch(sp, epoch)) < 0)
		return r;
	if (*epoch == UINT32_MAX)
		return -EOVERFLOW;
	if ((r = repl_set_epoch(sp, ++*epoch)) < 0)
		return r;
	if ((r = promote_sched(sp)) < 0)
		return r;
	if (unlinkat(sp->dirfd, REPLICA_NAME, 0) == -1)
		return -errno;
	/* the marker's removal is the promotion: it must stick */
	return spool_fsync_dir(sp->dirfd);
}

/* ---- acknowledgement records: SPOOL/replicas/ID --------------------- */

/* acks_dir - SPOOL/replicas, made if asked */
static int
acks_dir(struct spool *sp, int create)
{
	int fd;

	/* the new directory must survive a crash with the records in it */
	if (create && mkdirat(sp->dirfd, ACKS_DIR, 0775) == 0 &&
	    (fd = spool_sync_dir(sp, sp->dirfd)) < 0)
		return fd;
	fd = openat(sp->dirfd, ACKS_DIR, O_RDONLY | O_DIRECTORY | O_NOFOLLOW |
	    O_CLOEXEC);
	return fd == -1 ? -errno : fd;
}

/*
 * acks_find - the acknowledged next offset of topic/part in an ack file's
 * text; 0 if it has none
 */
static uint64_t
acks_find(char *text, const char *topic, uint32_t part)
{
	char *line, *save = NULL, name[SPOOL_NAME_MAX + 1];
	unsigned long long next;
	unsigned p;

	for (line = strtok_r(text, "\n", &save); line != NULL;
	    line = strtok_r(NULL, "\n", &save)) {
		if (sscanf(line, "%249s %u %llu", name, &p, &next) != 3)
			continue;
		if (p == part && strcmp(name, topic) == 0)
			return next;
	}
	return 0;
}

/* id_name - whether a file name in replicas/ is an identity */
int
repl_id_name(const char *s)
{
	return strlen(s) == SPOOL_ID_LEN &&
	    strspn(s, "0123456789abcdef") == SPOOL_ID_LEN;
}

/*
 * spool_replica_acked - each replica's acknowledged next offset of
 * topic/part: up to max, ids and next filled; the count is returned
 */
int
spool_replica_acked(struct spool *sp, const char *topic, uint32_t part,
    char (*ids)[SPOOL_ID_LEN + 1], uint64_t *next, int max)
{
	struct dirent *de;
	DIR *d;
	char *text;
	int fd, n = 0;

	if ((fd = acks_dir(sp, 0)) < 0)
		return fd == -ENOENT ? 0 : fd;
	if ((d = fdopendir(fd)) == NULL) {
		close(fd);
		return -errno;
	}
	if ((text = malloc(1u << 20)) == NULL) {
		closedir(d);
		return -ENOMEM;
	}
	while ((de = readdir(d)) != NULL && n < max) {
		if (!repl_id_name(de->d_name))
			continue;
		if (spool_read_file(dirfd(d), de->d_name, text, 1u << 20) < 0)
			continue;
		memcpy(ids[n], de->d_name, SPOOL_ID_LEN + 1);
		next[n] = acks_find(text, topic, part);
		n++;
	}
	free(text);
	closedir(d);
	return n;
}

/* count_have - replicas that acknowledged every need[p] of topic */
static int
count_have(struct spool *sp, const char *topic, const uint64_t *need,
    uint32_t nparts)
{
	struct dirent *de;
	DIR *d;
	char *text, *copy;
	uint32_t p;
	int fd, n = 0, ok, len;

	if ((fd = acks_dir(sp, 0)) < 0)
		return fd == -ENOENT ? 0 : fd;
	if ((d = fdopendir(fd)) == NULL) {
		close(fd);
		return -errno;
	}
	text = malloc(1u << 20);
	copy = malloc(1u << 20);
	if (text == NULL || copy == NULL) {
		free(text);
		free(copy);
		closedir(d);
		return -ENOMEM;
	}
	while ((de = readdir(d)) != NULL) {
		if (!repl_id_name(de->d_name))
			continue;
		if ((len = spool_read_file(dirfd(d), de->d_name, text,
		    1u << 20)) < 0)
			continue;
		for (ok = 1, p = 0; p < nparts && ok; p++) {
			if (need[p] == 0)
				continue;
			memcpy(copy, text, len + 1);
			ok = acks_find(copy, topic, p) >= need[p];
		}
		n += ok;
	}
	free(text);
	free(copy);
	closedir(d);
	return n;
}

/*
 * spool_replica_wait - wait until want replicas acknowledged need[p]
 * (the next offset) of every partition p of topic, watching replicas/
 * with inotify; -ETIMEDOUT after timeout_ms, *have saying how many did
 */
int
spool_replica_wait(struct spool *sp, const char *topic, const uint64_t *need,
    uint32_t nparts, int want, int timeout_ms, int *have)
{
	struct timespec t0, t1;
	struct pollfd pf;
	char path[PATH_MAX], ev[4096];
	int ifd, fd, r, left;

	*have = 0;
	if ((fd = acks_dir(sp, 1)) < 0)
		return fd;
	close(fd);
	if ((ifd = inotify_init1(IN_CLOEXEC | IN_NONBLOCK)) == -1)
		return -errno;
	snprintf(path, sizeof(path), "%s/%s", sp->path, ACKS_DIR);
	if (inotify_add_watch(ifd, path, IN_MOVED_TO | IN_CLOSE_WRITE |
	    IN_CREATE) == -1) {
		r = -errno;
		close(ifd);
		return r;
	}
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (;;) {
		/* read after the watch is set: no change slips between */
		if ((r = count_have(sp, topic, need, nparts)) < 0)
			break;
		*have = r;
		if (r >= want) {
			r = 0;
			break;
		}
		clock_gettime(CLOCK_MONOTONIC, &t1);
		left = timeout_ms - (int)((t1.tv_sec - t0.tv_sec) * 1000 +
		    (t1.tv_nsec - t0.tv_nsec) / 1000000);
		if (left <= 0) {
			r = -ETIMEDOUT;
			break;
		}
		pf.fd = ifd;
		pf.events = POLLIN;
		if (poll(&pf, 1, left) == -1 && errno != EINTR) {
			r = -errno;
			break;
		}
		while (read(ifd, ev, sizeof(ev)) > 0)
			;
	}
	close(ifd);
	return r;
}

/*
 * acks_merge - take in what SPOOL/replicas/ID says now (another session
 * of the same replica may have written it): the larger offset wins
 */
static void
acks_merge(struct sess *s, int dfd)
{
	char *text, *line, *save = NULL, name[SPOOL_NAME_MAX + 1];
	unsigned long long next;
	unsigned p;
	struct ack *na;
	size_t i;

	if ((text = malloc(1u << 20)) == NULL)
		return;
	if (spool_read_file(dfd, s->peer_id, text, 1u << 20) < 0)
		*text = '\0';
	for (line = strtok_r(text, "\n", &save); line != NULL;
	    line = strtok_r(NULL, "\n", &save)) {
		if (sscanf(line, "%249s %u %llu", name, &p, &next) != 3 ||
		    !spool_topic_name_ok(name))
			continue;
		for (i = 0; i < s->nacks; i++)
			if (s->acks[i].part == p &&
			    strcmp(s->acks[i].topic, name) == 0)
				break;
		if (i < s->nacks) {
			if (next > s->acks[i].next)
				s->acks[i].next = next;
			continue;
		}
		if ((na = realloc(s->acks, (s->nacks + 1) *
		    sizeof(*na))) == NULL)
			break;
		s->acks = na;
		if ((na[s->nacks].topic = strdup(name)) == NULL)
			break;
		na[s->nacks].part = p;
		na[s->nacks].next = next;
		s->nacks++;
	}
	free(text);
}

/* acks_load - what SPOOL/replicas/ID says this replica acknowledged */
int
repl_acks_load(struct sess *s)
{
	int fd;

	if (s->peer_id[0] == '\0' || (fd = acks_dir(s->sp, 0)) < 0)
		return 0;
	acks_merge(s, fd);
	close(fd);
	return 0;
}

/*
 * acks_save - replace SPOOL/replicas/ID with the table, merged with what
 * the file holds, under the directory's lock: two sessions for one
 * replica (say -t a and -t b) never drop each other's acknowledgements
 */
static int
acks_save(struct sess *s)
{
	char tmp[96], line[SPOOL_NAME_MAX + 64];
	FILE *f;
	size_t i;
	int dfd, fd, lfd, r = 0;

	if ((dfd = acks_dir(s->sp, 1)) < 0)
		return dfd;
	lfd = openat(dfd, ".lock", O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC,
	    0664);
	while (lfd >= 0 && flock(lfd, LOCK_EX) == -1 && errno == EINTR)
		;
	acks_merge(s, dfd);
	/* a name of our own: two sessions for one replica may overlap */
	snprintf(tmp, sizeof(tmp), ".%s.%ld", s->peer_id, (long)getpid());
	fd = openat(dfd, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW |
	    O_CLOEXEC, 0664);
	if (fd == -1 || (f = fdopen(fd, "w")) == NULL) {
		r = -errno;
		if (fd >= 0)
			close(fd);
		if (lfd >= 0)
			close(lfd);
		close(dfd);
		return r;
	}
	for (i = 0; i < s->nacks; i++) {
		snprintf(line, sizeof(line), "%s %" PRIu32 " %" PRIu64 "\n",
		    s->acks[i].topic, s->acks[i].part, s->acks[i].next);
		fputs(line, f);
	}
	if (fclose(f) == EOF)
		r = -errno;
	/*
	 * No fsync: the record is a hint for mq-send --replicas; lost in a
	 * crash, it is written again at the replica's next acknowledgement.
	 */
	if (r == 0 && renameat(dfd, tmp, dfd, s->peer_id) == -1)
		r = -errno;
	if (r < 0)
		(void)unlinkat(dfd, tmp, 0);
	if (lfd >= 0)
		close(lfd);	/* and with it the lock */
	close(dfd);
	return r;
}

/* acks_set - record an acknowledgement; saved when it changed */
int
repl_acks_set(struct sess *s, const char *topic, uint32_t part, uint64_t next)
{
	struct ack *na;
	size_t i;

	if (s->peer_id[0] == '\0')
		return 0;
	for (i = 0; i < s->nacks; i++)
		if (s->acks[i].part == part && strcmp(s->acks[i].topic,
		    topic) == 0)
			break;
	if (i < s->nacks && s->acks[i].next == next)
		return 0;
	if (i == s->nacks) {
		if ((na = realloc(s->acks, (s->nacks + 1) *
		    sizeof(*na))) == NULL)
			return -ENOMEM;
		s->acks = na;
		if ((na[i].topic = strdup(topic)) == NULL)
			return -ENOMEM;
		na[i].part = part;
		s->nacks++;
	}
	s->acks[i].next = next;
	return acks_save(s);
}
