/*
 * repl_acks.c - the acknowledgement records: SPOOL/replicas/ID, the
 * offset each replica has durably acknowledged per partition
 *
 * The sender of a session records, in the source spool, what its
 * replica (ID: the replica's stable identity) acknowledged: one file a
 * replica, lines "TOPIC PART NEXT", replaced whole when a value changed
 * (a temp file renamed over it, under replicas/.lock, merged first with
 * what another session of the same replica wrote; not synced: a hint,
 * written again at the next acknowledgement).  mq-send --replicas N
 * waits, on inotify, until N replicas acknowledged every message of its
 * send (spool_replica_wait); mq-topic describe and stats read them
 * (spool_replica_acked).  An acknowledgement past a partition's end
 * never counts beyond it (repl_send.c).  The contract of replication is
 * at the top of repl_send.c.  It never prints.
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
