/*
 * repl_role.c - a spool's replication role: its identity, epoch and
 * replica marker (promotion is repl_promote.c's, the acknowledgement
 * records repl_acks.c's)
 *
 * The contract of replication (all repl_*.c files) is at the top of
 * repl_send.c.  Nothing here trusts the peer; it never prints
 * (opts.report does).
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
 * a replica (or one that a promotion has begun to make a primary: it
 * names no source), 0 if it is a primary
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
	else if (strcmp(buf, "promoting") == 0)
		snprintf(src, len, "no source (a promotion under way or "
		    "cut short)");
	else
		snprintf(src, len, "?");
	return 1;
}

/*
 * repl_mark_promoting - the replica marker names no source: a promotion
 * is under way, and no follower writes again (repl_still_replica)
 */
int
repl_mark_promoting(struct spool *sp)
{
	/* durable: a follower after a crash must still see it */
	return spool_write_file(sp->dirfd, REPLICA_NAME, "promoting\n", 10,
	    1);
}

/* mark_replica - record that the spool is a replica of src, durably */
int
repl_mark_replica(struct spool *sp, const char *src)
{
	char buf[128];

	snprintf(buf, sizeof(buf), "source %s\n", src);
	return spool_write_file(sp->dirfd, REPLICA_NAME, buf, strlen(buf), 1);
}
