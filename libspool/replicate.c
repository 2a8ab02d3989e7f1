/*
 * replicate.c - one mq-replicate session, and the spool's roles
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
 * SPOOL/diverged/.
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

#include "proto.h"
#include "replicate.h"

#define ID_NAME		"id"
#define EPOCH_NAME	"epoch"
#define REPLICA_NAME	"replica"
#define ACKS_DIR	"replicas"
#define ASIDE_DIR	"diverged"
#define CHUNK		(1u << 20)	/* bytes read and sent at a time */
#define LCHUNK		(1u << 20)	/* bytes read at a time from a local source */
#define WRITEBACK	(8u << 20)	/* bytes appended before write-out starts */
#define PROBE_MAX	4096		/* batches in one probe frame */
#define HEARTBEAT_MS	10000		/* a following sender's silence */
#define CONFIG_TEXT	8192

/* PLAN kinds */
enum { PLAN_APPEND, PLAN_DIVERGED, PLAN_RESTART, PLAN_SKIP, PLAN_GAP };

/* PSTATE flags */
#define PS_DRY		0x01
#define PS_RESTART_OK	0x02
#define PS_HASLAST	0x04

struct ack {
	char		*topic;
	uint32_t	 part;
	uint64_t	 next;
};

/* what a --follow sender's inotify watch is on (W_*) */
enum { W_TOPICS, W_TOPIC, W_PART, W_GROUPS, W_GROUP, W_SCHED, W_BUCKET };

struct wmap {
	int		 wd;
	int		 kind;
	char		*topic;
	uint32_t	 part;
};

/* a change a sender reports: a partition, or one of these */
#define CH_GROUPS	0xffffffffu	/* the topic's group offsets */
#define CH_SCHED	0xfffffffeu	/* the topic's scheduled files */
#define CH_MAX		1024		/* more: a whole pass instead */

/* PROTO_CHANGED kinds */
enum { CHG_NONE, CHG_ALL, CHG_LIST };

struct change {
	char		 topic[SPOOL_NAME_MAX + 1];
	uint32_t	 part;
};

struct sess {
	struct spool	*sp;
	struct spool_repl_opts *o;
	struct proto	 pr;
	const char	*path;
	unsigned	 flags;		/* the client's */
	char		 id[SPOOL_ID_LEN + 1];
	char		 peer_id[SPOOL_ID_LEN + 1];
	uint32_t	 epoch, peer_epoch;
	char		**topics;	/* -t */
	size_t		 ntopics;
	int		 sync;
	int		 peer_failed;	/* the peer sent ERROR */
	/* sender */
	int		 ifd;		/* inotify, --follow */
	struct wmap	*wm;		/* what each watch is on */
	size_t		 nwm;
	struct ack	*acks;
	size_t		 nacks;
	/* receiver */
	off_t		 wbfrom;	/* the head's bytes not yet being written out */
	int		 srcfd;		/* a local source's directory, or -1 */
	unsigned char	*lbuf;		/*  and what is read from it */
	size_t		 lcap;
	char		 drytmp[PATH_MAX];	/* a dry run's stand-in */
	char		**src_topics;
	size_t		 nsrc;
};

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
static int
set_epoch(struct spool *sp, uint32_t epoch)
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
static int
mark_replica(struct spool *sp, const char *src)
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
	if ((r = set_epoch(sp, ++*epoch)) < 0)
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

	if (create && mkdirat(sp->dirfd, ACKS_DIR, 0775) == 0)
		(void)spool_fsync_dir(sp->dirfd);
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
static int
id_name(const char *s)
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
		if (!id_name(de->d_name))
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
		if (!id_name(de->d_name))
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
static int
acks_load(struct sess *s)
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
static int
acks_set(struct sess *s, const char *topic, uint32_t part, uint64_t next)
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

/* ---- session plumbing ------------------------------------------------ */

/* fail - record why the session ends; returns r */
static int
fail(struct sess *s, int r, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(s->o->errmsg, sizeof(s->o->errmsg), fmt, ap);
	va_end(ap);
	return r;
}

/* report - tell the caller something (verbose: only with -v) */
static void
report(struct sess *s, int verbose, const char *fmt, ...)
{
	char buf[1024];
	va_list ap;

	if (s->o->report == NULL)
		return;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	s->o->report(s->o->arg, verbose, buf);
}

/* err_kind - the PROTO_ERROR kind of an -errno */
static int
err_kind(int r)
{
	switch (-r) {
	case SPOOL_EROLE:
		return PROTO_E_ROLE;
	case EBADMSG:
	case EPROTO:
		return PROTO_E_DATA;
	case ENOENT:
	case ENOTDIR:
		return PROTO_E_NOENT;
	case EACCES:
	case EPERM:
	case EROFS:
		return PROTO_E_PERM;
	case EINVAL:
		return PROTO_E_USAGE;
	default:
		return PROTO_E_IO;
	}
}

/* kind_err - the -errno of a PROTO_ERROR kind */
static int
kind_err(int kind)
{
	switch (kind) {
	case PROTO_E_ROLE:
		return -SPOOL_EROLE;
	case PROTO_E_DATA:
		return -EBADMSG;
	case PROTO_E_NOENT:
		return -ENOENT;
	case PROTO_E_PERM:
		return -EACCES;
	case PROTO_E_USAGE:
		return -EINVAL;
	default:
		return -EIO;
	}
}

/* send_error - tell the peer we give up, and why (best effort) */
static void
send_error(struct sess *s, int r)
{
	proto_begin(&s->pr, PROTO_ERROR);
	proto_u8(&s->pr, (uint8_t)err_kind(r));
	proto_str(&s->pr, s->o->errmsg[0] ? s->o->errmsg : strerror(-r));
	(void)proto_send(&s->pr);
}

/*
 * expect - receive a frame of type want; a PROTO_ERROR from the peer
 * ends the session with the peer's words
 */
static int
expect(struct sess *s, int want)
{
	char msg[PROTO_STR_MAX + 1];
	int type, r, kind;

	if ((r = proto_recv(&s->pr, &type)) < 0) {
		if (r == -ECONNRESET)
			return fail(s, r, "the other end closed the connection");
		if (r == -ETIMEDOUT)
			return fail(s, r, "the other end said nothing for %d s",
			    s->o->timeout_ms / 1000);
		if (r == -EBADMSG)
			return fail(s, r, "malformed frame from the other end");
		return fail(s, r, "%s", strerror(-r));
	}
	if (type == PROTO_ERROR) {
		kind = proto_get8(&s->pr);
		proto_getstr(&s->pr, msg, sizeof(msg));
		/* the peer gave up: it needs no error frame back */
		s->peer_failed = 1;
		return fail(s, kind_err(kind), "remote: %s", msg);
	}
	if (want != 0 && type != want)
		return fail(s, -EBADMSG, "protocol: frame type %d where %d was "
		    "expected", type, want);
	return type;
}

/* want_topic - whether -t lets topic through */
static int
want_topic(struct sess *s, const char *name)
{
	size_t i;

	if (s->ntopics == 0)
		return 1;
	for (i = 0; i < s->ntopics; i++)
		if (strcmp(s->topics[i], name) == 0)
			return 1;
	return 0;
}

/* ---- the handshake --------------------------------------------------- */

/* send_hello - our HELLO: who we are, and (client) what we want */
static int
send_hello(struct sess *s)
{
	size_t i;

	proto_begin(&s->pr, PROTO_HELLO);
	proto_bytes(&s->pr, PROTO_MAGIC, 4);
	proto_u32(&s->pr, PROTO_VERSION);
	proto_u8(&s->pr, (uint8_t)s->o->role);
	proto_u32(&s->pr, s->flags);
	proto_str(&s->pr, s->id);
	proto_u32(&s->pr, s->epoch);
	proto_str(&s->pr, s->o->server ? s->path :
	    (s->o->peer_path ? s->o->peer_path : ""));
	proto_u32(&s->pr, (uint32_t)s->ntopics);
	for (i = 0; i < s->ntopics; i++)
		proto_str(&s->pr, s->topics[i]);
	return proto_send(&s->pr);
}

/* recv_hello - the peer's HELLO, checked */
static int
recv_hello(struct sess *s)
{
	char path[PROTO_STR_MAX + 1], name[SPOOL_NAME_MAX + 1];
	const unsigned char *m;
	uint32_t version, n, i, flags;
	size_t len;
	int r, role;

	if ((r = expect(s, 0)) < 0)
		return r;
	m = s->pr.buf + s->pr.pos;
	if (r != PROTO_HELLO || s->pr.len - s->pr.pos < 8 ||
	    memcmp(m, PROTO_MAGIC, 4) != 0)
		return fail(s, -EBADMSG, "the other end does not speak the "
		    "mq-replicate protocol");
	s->pr.pos += 4;
	if ((version = proto_get32(&s->pr)) != PROTO_VERSION)
		return fail(s, -EPROTO, "the other end speaks protocol "
		    "version %" PRIu32 ", this mq-replicate version %d",
		    version, PROTO_VERSION);
	role = proto_get8(&s->pr);
	flags = proto_get32(&s->pr);
	proto_getstr(&s->pr, s->peer_id, sizeof(s->peer_id));
	s->peer_epoch = proto_get32(&s->pr);
	proto_getstr(&s->pr, path, sizeof(path));
	n = proto_get32(&s->pr);
	if (s->o->server && n > 0 && proto_done(&s->pr) == 0) {
		if (n > 65536)
			return fail(s, -EBADMSG, "protocol: %" PRIu32
			    " topics", n);
		if ((s->topics = calloc(n, sizeof(*s->topics))) == NULL)
			return -ENOMEM;
		for (i = 0; i < n; i++) {
			if (proto_getstr(&s->pr, name, sizeof(name)) < 0)
				break;
			if (!spool_topic_name_ok(name))
				return fail(s, -EINVAL, "%s: not a topic name",
				    name);
			if ((s->topics[i] = strdup(name)) == NULL)
				return -ENOMEM;
			s->ntopics++;
		}
	}
	(void)proto_rest(&s->pr, &len);
	if (proto_done(&s->pr) < 0)
		return fail(s, -EBADMSG, "malformed HELLO");
	if (s->peer_id[0] != '\0' && !id_name(s->peer_id))
		return fail(s, -EBADMSG, "malformed identity in HELLO");
	if (s->o->server && (s->o->flags & SPOOL_REPL_READONLY) &&
	    role == SPOOL_REPL_SENDER)
		return fail(s, -EACCES, "%s: read-only: this server serves "
		    "pulls only", s->path);
	if (role == s->o->role)
		return fail(s, -EINVAL, "both ends would %s",
		    role == SPOOL_REPL_SENDER ? "send" : "receive");
	if (s->o->server) {
		s->flags = flags & ~SPOOL_REPL_READONLY;
		if (strcmp(path, s->path) != 0)
			return fail(s, -EACCES, "%s: this server serves %s "
			    "only", path, s->path);
	}
	return 0;
}

/* ---- the sender ------------------------------------------------------ */

/* watch - add an inotify watch on SPOOL/rel (--follow), noting what it is */
static void
watch(struct sess *s, const char *rel, uint32_t mask, int kind,
    const char *topic, uint32_t part)
{
	char path[PATH_MAX], *t;
	struct wmap *nw;
	size_t i;
	int wd;

	if (snprintf(path, sizeof(path), "%s/%s", s->sp->path, rel) >=
	    (int)sizeof(path) ||
	    (wd = inotify_add_watch(s->ifd, path, mask | IN_ONLYDIR)) < 0)
		return;
	for (i = 0; i < s->nwm && s->wm[i].wd != wd; i++)
		;
	if (i == s->nwm) {
		if ((nw = realloc(s->wm, (s->nwm + 1) * sizeof(*nw))) == NULL)
			return;	/* its events will ask for a whole pass */
		s->wm = nw;
		s->wm[s->nwm++].topic = NULL;
	}
	t = topic != NULL ? strdup(topic) : NULL;
	free(s->wm[i].topic);
	s->wm[i].wd = wd;
	s->wm[i].kind = kind;
	s->wm[i].topic = t;
	s->wm[i].part = part;
}

#define W_DIRS	(IN_CREATE | IN_DELETE | IN_MOVED_TO | IN_MOVED_FROM)

/* watch_sched - a topic's scheduled/ and its buckets */
static void
watch_sched(struct sess *s, const char *topic)
{
	char rel[SPOOL_NAME_MAX + 64];
	struct dirent *de;
	DIR *d;
	int fd;

	snprintf(rel, sizeof(rel), "topics/%s/scheduled", topic);
	watch(s, rel, W_DIRS, W_SCHED, topic, 0);
	if ((fd = openat(s->sp->topicsfd, rel + 7, O_RDONLY | O_DIRECTORY |
	    O_NOFOLLOW | O_CLOEXEC)) == -1)
		return;
	if ((d = fdopendir(fd)) == NULL) {
		close(fd);
		return;
	}
	while ((de = readdir(d)) != NULL)
		if (de->d_name[0] != '.' && strspn(de->d_name,
		    "0123456789") == strlen(de->d_name)) {
			snprintf(rel, sizeof(rel), "topics/%s/scheduled/%s",
			    topic, de->d_name);
			watch(s, rel, W_DIRS, W_BUCKET, topic, 0);
		}
	closedir(d);
}

/* watch_groups - a topic's groups/ and each group's directory */
static void
watch_groups(struct sess *s, struct spool_topic *t)
{
	char rel[2 * SPOOL_NAME_MAX + 64], **groups;
	size_t k, ng;

	snprintf(rel, sizeof(rel), "topics/%s/groups", t->name);
	watch(s, rel, W_DIRS, W_GROUPS, t->name, 0);
	if (spool_group_list(t, &groups, &ng) < 0)
		return;
	for (k = 0; k < ng; k++) {
		snprintf(rel, sizeof(rel), "topics/%s/groups/%s", t->name,
		    groups[k]);
		watch(s, rel, W_DIRS | IN_MODIFY, W_GROUP, t->name, 0);
		free(groups[k]);
	}
	free(groups);
}

/* watch_all - watch every directory whose change is worth a pass */
static void
watch_all(struct sess *s, char **names, size_t n)
{
	char rel[SPOOL_NAME_MAX + 64];
	struct spool_topic *t;
	size_t i;
	uint32_t p;

	watch(s, "topics", W_DIRS, W_TOPICS, NULL, 0);
	for (i = 0; i < n; i++) {
		snprintf(rel, sizeof(rel), "topics/%s", names[i]);
		watch(s, rel, W_DIRS, W_TOPIC, names[i], 0);
		if (spool_topic_open(s->sp, names[i], &t) < 0)
			continue;
		for (p = 0; p < t->cfg.partitions; p++) {
			snprintf(rel, sizeof(rel), "topics/%s/%" PRIu32,
			    names[i], p);
			watch(s, rel, W_DIRS | IN_MODIFY, W_PART, names[i], p);
		}
		watch_groups(s, t);
		watch_sched(s, names[i]);
		spool_topic_close(t);
	}
}

/* drain - forget the inotify events queued so far */
static void
drain(struct sess *s)
{
	char ev[4096];

	while (s->ifd >= 0 && read(s->ifd, ev, sizeof(ev)) > 0)
		;
}

/* s_list - LIST: every topic (that -t lets through) with its config */
static int
s_list(struct sess *s)
{
	struct spool_topic *t;
	char **names, text[CONFIG_TEXT];
	size_t n, i;
	int r, len;

	if ((r = spool_topic_list(s->sp, &names, &n)) < 0)
		return fail(s, r, "%s: topics: %s", s->path, strerror(-r));
	if ((s->flags & SPOOL_REPL_FOLLOW) && s->ifd < 0)
		s->ifd = inotify_init1(IN_CLOEXEC | IN_NONBLOCK);
	if (s->ifd >= 0) {
		/* watches first, then the listing: nothing falls between */
		watch_all(s, names, n);
		drain(s);
	}
	for (i = 0; i < n && r == 0; i++) {
		if (!want_topic(s, names[i]))
			continue;
		/*
		 * Deleted meanwhile: skip it.  Any other failure (a damaged
		 * config, EACCES) fails the listing, or a receiver with
		 * --delete would take the topic for deleted and drop its copy
		 */
		if ((r = spool_topic_open(s->sp, names[i], &t)) == -ENOENT) {
			r = 0;
			continue;
		}
		if (r < 0)
			break;
		if ((len = spool_config_format(&t->cfg, text,
		    sizeof(text))) >= 0) {
			proto_begin(&s->pr, PROTO_TOPIC);
			proto_str(&s->pr, names[i]);
			proto_str(&s->pr, text);
			r = proto_send(&s->pr);
		} else
			r = len;	/* not a topic left out: an error */
		spool_topic_close(t);
	}
	for (i = 0; i < n; i++)
		free(names[i]);
	free(names);
	if (r < 0)
		return r;
	proto_begin(&s->pr, PROTO_LIST_END);
	return proto_send(&s->pr);
}

/* seg_open - a source segment for reading, and its size */
static int
seg_open(int pfd, uint64_t base, off_t *size)
{
	char name[SPOOL_SEGNAME_LEN + 16];
	struct stat st;
	int fd;

	spool_seg_name(name, base, SPOOL_LOG_SUFFIX);
	if ((fd = openat(pfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)) == -1)
		return -errno;
	if (fstat(fd, &st) == -1) {
		close(fd);
		return -errno;
	}
	*size = st.st_size;
	return fd;
}

/* has_batch - whether the source holds the batch at base/pos */
static int
has_batch(struct sess *s, int pfd, uint64_t base, off_t pos, uint32_t crc,
    uint64_t off)
{
	unsigned char hdr[SPOOL_HDR_SIZE];
	struct spool_bhdr h;
	off_t size;
	int fd, ok;

	if ((fd = seg_open(pfd, base, &size)) < 0)
		return 0;
	ok = pos >= 0 && pos <= size - SPOOL_HDR_SIZE &&
	    pread(fd, hdr, sizeof(hdr), pos) == SPOOL_HDR_SIZE &&
	    spool_bhdr_unpack(hdr, &h) == 0 && get32(hdr + 4) == crc &&
	    h.base_offset == off &&
	    (off_t)h.body_len <= size - pos - SPOOL_HDR_SIZE;
	close(fd);
	return ok;
}

/*
 * stream_seg - send the whole batches of a segment from pos; stops at a
 * torn or unwritten tail.  Returns the offset after the last batch sent
 * in *next.
 */
static int
stream_seg(struct sess *s, int pfd, uint64_t base, off_t pos,
    unsigned char **buf, size_t *cap, uint64_t *next, uint64_t *sent)
{
	struct spool_bhdr h;
	off_t size;
	size_t n, q, blen;
	ssize_t got;
	int fd, r = 0;

	if ((fd = seg_open(pfd, base, &size)) < 0)
		return fd;
	while (pos < size) {
		n = (size_t)(size - pos) < *cap ? (size_t)(size - pos) : *cap;
		if ((got = pread(fd, *buf, n, pos)) < 0) {
			r = -errno;
			break;
		}
		n = (size_t)got;
		for (q = 0; q + SPOOL_HDR_SIZE <= n; q += blen) {
			if (spool_bhdr_unpack(*buf + q, &h) < 0)
				break;
			blen = SPOOL_HDR_SIZE + (size_t)h.body_len;
			if (q + blen > n)
				break;
			*next = h.base_offset + h.count;
		}
		if (q == 0) {
			/* one batch larger than the buffer, or the tail */
			if (n >= SPOOL_HDR_SIZE && spool_bhdr_unpack(*buf,
			    &h) == 0 && SPOOL_HDR_SIZE + (off_t)h.body_len <=
			    size - pos && SPOOL_HDR_SIZE + (size_t)h.body_len <
			    PROTO_FRAME_MAX && SPOOL_HDR_SIZE + h.body_len > *cap) {
				unsigned char *nb;
				size_t ncap = SPOOL_HDR_SIZE + h.body_len;

				if ((nb = realloc(*buf, ncap)) == NULL) {
					r = -ENOMEM;
					break;
				}
				*buf = nb;
				*cap = ncap;
				continue;
			}
			break;	/* torn, being written, or damaged */
		}
		if ((r = proto_send_data(&s->pr, PROTO_DATA, *buf, q)) < 0)
			break;
		*sent += q;
		if (s->o->progress != NULL)
			s->o->progress(s->o->arg, NULL, q, 0);
		pos += (off_t)q;
	}
	close(fd);
	return r;
}

/*
 * local_seg - LOCAL: a receiver on this machine reads the segment from
 * pos to its present size itself (whole batches, as stream_seg sends)
 */
static int
local_seg(struct sess *s, int pfd, uint64_t base, off_t pos, uint64_t *sent)
{
	off_t size;
	int fd;

	if ((fd = seg_open(pfd, base, &size)) < 0)
		return fd;
	close(fd);
	if (size <= pos)
		return 0;
	proto_begin(&s->pr, PROTO_LOCAL);
	proto_u64(&s->pr, base);
	proto_u64(&s->pr, (uint64_t)pos);
	proto_u64(&s->pr, (uint64_t)size);
	*sent += (uint64_t)(size - pos);
	return proto_send(&s->pr);
}

/* send_plan - PLAN: what the receiver is about to get */
static int
send_plan(struct sess *s, int kind, uint64_t bytes)
{
	proto_begin(&s->pr, PROTO_PLAN);
	proto_u8(&s->pr, (uint8_t)kind);
	proto_u64(&s->pr, bytes);
	return proto_send(&s->pr);
}

/* s_pstate - PSTATE: check the replica's newest batch, send what follows */
static int
s_pstate(struct sess *s, unsigned char **buf, size_t *cap)
{
	char topic[SPOOL_NAME_MAX + 1];
	struct spool_topic *t = NULL;
	struct spool_seglist l = { NULL, 0 };
	uint64_t rnext, lastseg, lastoff, headbase, headsize, bytes = 0;
	uint64_t next, sent = 0, startseg;
	uint32_t part, lastcrc;
	off_t lastpos, size, startpos;
	size_t i;
	int flags, pfd = -1, r, fd, kind = PLAN_APPEND, seghdr = 0;

	proto_getstr(&s->pr, topic, sizeof(topic));
	part = proto_get32(&s->pr);
	flags = proto_get8(&s->pr);
	rnext = proto_get64(&s->pr);
	lastseg = proto_get64(&s->pr);
	lastpos = (off_t)(proto_get64(&s->pr) & INT64_MAX);
	lastcrc = proto_get32(&s->pr);
	lastoff = proto_get64(&s->pr);
	headbase = proto_get64(&s->pr);
	headsize = proto_get64(&s->pr);
	if (proto_done(&s->pr) < 0 || !spool_topic_name_ok(topic))
		return fail(s, -EBADMSG, "protocol: malformed PSTATE");
	if (spool_topic_open(s->sp, topic, &t) < 0 ||
	    (pfd = spool_part_open(t, part)) < 0 ||
	    spool_seg_list(pfd, &l) < 0 || l.n == 0) {
		r = send_plan(s, PLAN_SKIP, 0);
		goto out;
	}
	next = l.base[0];
	if (!(flags & PS_HASLAST)) {
		/* the replica holds nothing: from the first segment */
		startseg = l.base[0];
		startpos = 0;
		seghdr = 1;
	} else if (has_batch(s, pfd, lastseg, lastpos, lastcrc, lastoff)) {
		/* a prefix of ours: go on from the replica's head */
		startseg = headbase;
		startpos = (off_t)(headsize & INT64_MAX);
		if (spool_seg_find(&l, startseg) < 0 ||
		    l.base[spool_seg_find(&l, startseg)] != startseg)
			kind = PLAN_DIVERGED;
	} else if (lastseg < l.base[0] && rnext >= l.base[0]) {
		/* retention took the batch to compare with: go on after */
		i = 0;
		while (i < l.n && l.base[i] < headbase)
			i++;
		if (i < l.n && l.base[i] == headbase) {
			startseg = headbase;
			startpos = (off_t)(headsize & INT64_MAX);
		} else
			kind = PLAN_DIVERGED;
	} else if (lastseg < l.base[0]) {
		/* the replica ends below what we still hold */
		kind = (flags & PS_RESTART_OK) ? PLAN_RESTART : PLAN_GAP;
		startseg = l.base[0];
		startpos = 0;
		seghdr = 1;
	} else
		kind = PLAN_DIVERGED;
	if (kind == PLAN_DIVERGED || kind == PLAN_GAP) {
		r = send_plan(s, kind, l.base[0]);
		goto out;
	}
	for (i = 0; i < l.n; i++) {
		if (l.base[i] < startseg)
			continue;
		if ((fd = seg_open(pfd, l.base[i], &size)) >= 0) {
			close(fd);
			bytes += (uint64_t)size - (l.base[i] == startseg ?
			    (uint64_t)startpos : 0);
		}
	}
	if ((r = send_plan(s, kind, bytes)) < 0)
		goto out;
	if (s->o->progress != NULL && !(flags & PS_DRY) && bytes > 0)
		s->o->progress(s->o->arg, topic, 0, bytes);
	if (!(flags & PS_DRY)) {
		next = rnext;
		for (i = 0; i < l.n && r == 0; i++) {
			if (l.base[i] < startseg)
				continue;
			if (l.base[i] != startseg || seghdr) {
				proto_begin(&s->pr, PROTO_SEG);
				proto_u64(&s->pr, l.base[i]);
				if ((r = proto_send(&s->pr)) < 0)
					break;
			}
			if (s->flags & SPOOL_REPL_LOCAL)
				r = local_seg(s, pfd, l.base[i], l.base[i] ==
				    startseg ? startpos : 0, &sent);
			else
				r = stream_seg(s, pfd, l.base[i], l.base[i] ==
				    startseg ? startpos : 0, buf, cap, &next,
				    &sent);
		}
		if (r < 0)
			goto out;
	}
	proto_begin(&s->pr, PROTO_PEND);
	proto_u64(&s->pr, l.base[0]);
	proto_u64(&s->pr, next);
	r = proto_send(&s->pr);
	if (sent > 0)
		report(s, 1, "%s/%" PRIu32 ": sent %" PRIu64 " bytes", topic,
		    part, sent);
out:
	spool_seg_free(&l);
	if (pfd >= 0)
		close(pfd);
	spool_topic_close(t);
	return r;
}

/* s_probe - PROBE: the newest of the replica's batches we hold too */
static int
s_probe(struct sess *s)
{
	char topic[SPOOL_NAME_MAX + 1];
	struct spool_topic *t = NULL;
	uint64_t segbase, off;
	uint32_t part, n, i, crc;
	off_t pos;
	int pfd = -1, found = -1;

	proto_getstr(&s->pr, topic, sizeof(topic));
	part = proto_get32(&s->pr);
	segbase = proto_get64(&s->pr);
	n = proto_get32(&s->pr);
	if (proto_done(&s->pr) < 0 || !spool_topic_name_ok(topic) ||
	    n > PROBE_MAX)
		return fail(s, -EBADMSG, "protocol: malformed PROBE");
	if (spool_topic_open(s->sp, topic, &t) == 0)
		pfd = spool_part_open(t, part);
	for (i = 0; i < n; i++) {
		pos = (off_t)(proto_get64(&s->pr) & INT64_MAX);
		off = proto_get64(&s->pr);
		crc = proto_get32(&s->pr);
		if (proto_done(&s->pr) < 0)
			break;
		if (found < 0 && pfd >= 0 &&
		    has_batch(s, pfd, segbase, pos, crc, off))
			found = (int)i;
	}
	if (pfd >= 0)
		close(pfd);
	spool_topic_close(t);
	if (proto_done(&s->pr) < 0)
		return fail(s, -EBADMSG, "protocol: malformed PROBE");
	proto_begin(&s->pr, PROTO_PROBE_R);
	proto_u32(&s->pr, (uint32_t)found);
	return proto_send(&s->pr);
}

/* s_groups - GROUPS_REQ: the committed offsets of a topic's groups */
static int
s_groups(struct sess *s)
{
	char topic[SPOOL_NAME_MAX + 1], **groups = NULL;
	struct spool_topic *t = NULL;
	size_t ng = 0, k;
	uint64_t off;
	uint32_t p, count = 0;
	size_t countpos;
	int held;

	proto_getstr(&s->pr, topic, sizeof(topic));
	if (proto_done(&s->pr) < 0 || !spool_topic_name_ok(topic))
		return fail(s, -EBADMSG, "protocol: malformed GROUPS_REQ");
	proto_begin(&s->pr, PROTO_GROUPS);
	countpos = s->pr.len;
	proto_u32(&s->pr, 0);
	if (spool_topic_open(s->sp, topic, &t) == 0 &&
	    spool_group_list(t, &groups, &ng) == 0) {
		for (k = 0; k < ng; k++) {
			for (p = 0; p < t->cfg.partitions; p++) {
				if (spool_group_info(t, groups[k], p, &off,
				    &held) < 0)
					continue;
				proto_str(&s->pr, groups[k]);
				proto_u32(&s->pr, p);
				proto_u64(&s->pr, off);
				count++;
			}
			free(groups[k]);
		}
		free(groups);
	}
	spool_topic_close(t);
	if (!s->pr.bad)
		put32(s->pr.buf + countpos, count);
	return proto_send(&s->pr);
}

/* s_ack - ACK: the replica holds topic/part durably up to next */
static int
s_ack(struct sess *s)
{
	char topic[SPOOL_NAME_MAX + 1];
	struct spool_topic *t;
	struct spool_part_info pi;
	uint32_t part;
	uint64_t next;
	int r;

	proto_getstr(&s->pr, topic, sizeof(topic));
	part = proto_get32(&s->pr);
	next = proto_get64(&s->pr);
	if (proto_done(&s->pr) < 0 || !spool_topic_name_ok(topic) ||
	    part >= SPOOL_PART_MAX)
		return fail(s, -EBADMSG, "protocol: malformed ACK");
	/*
	 * A replica cannot hold more than this spool has: an ACK past the
	 * partition's end (a confused or forging peer) counts only up to it,
	 * so mq-send --replicas never takes it for data that was not sent
	 */
	if (spool_topic_open(s->sp, topic, &t) < 0)
		return 0;	/* deleted meanwhile: nothing to acknowledge */
	r = part < t->cfg.partitions ? spool_part_bounds(t, part, &pi) :
	    -ENOENT;
	spool_topic_close(t);
	if (r < 0)
		return 0;
	if (next > pi.next)
		next = pi.next;
	if ((r = acks_set(s, topic, part, next)) < 0)
		report(s, 0, "replicas/%s: %s", s->peer_id, strerror(-r));
	return 0;
}

/* add_change - note a change of topic/part once; 0 when the list is full */
static int
add_change(struct change *ch, size_t *n, const char *topic, uint32_t part)
{
	size_t i;

	for (i = 0; i < *n; i++)
		if (ch[i].part == part && strcmp(ch[i].topic, topic) == 0)
			return 1;
	if (*n == CH_MAX)
		return 0;
	snprintf(ch[*n].topic, sizeof(ch[*n].topic), "%s", topic);
	ch[(*n)++].part = part;
	return 1;
}

/*
 * event - what one inotify event changed: a partition, a topic's groups
 * or scheduled files (noted in ch), or something only a whole pass
 * takes in (returns 1: a topic made or deleted, a config, a partition
 * added, a lost event)
 */
static int
event(struct sess *s, const struct inotify_event *ev, struct change *ch,
    size_t *n)
{
	char rel[2 * SPOOL_NAME_MAX + 64];
	const char *name = ev->len > 0 ? ev->name : "";
	struct wmap *w = NULL;
	size_t i;

	if (ev->mask & IN_Q_OVERFLOW)
		return 1;
	for (i = 0; i < s->nwm; i++)
		if (s->wm[i].wd == ev->wd) {
			w = &s->wm[i];
			break;
		}
	if (ev->mask & IN_IGNORED) {
		if (w != NULL)
			w->wd = -1;	/* gone with its directory */
		return 0;
	}
	if (w == NULL || w->kind == W_TOPICS)
		return 1;
	if (!want_topic(s, w->topic))
		return 0;
	switch (w->kind) {
	case W_PART:
		return !add_change(ch, n, w->topic, w->part);
	case W_TOPIC:
		if (strncmp(name, ".scheduled.", 11) == 0)
			return !add_change(ch, n, w->topic, CH_SCHED);
		if (strcmp(name, "scheduled") == 0) {
			watch_sched(s, w->topic);
			return !add_change(ch, n, w->topic, CH_SCHED);
		}
		if (strcmp(name, "groups") == 0) {
			snprintf(rel, sizeof(rel), "topics/%s/groups",
			    w->topic);
			watch(s, rel, W_DIRS, W_GROUPS, w->topic, 0);
			return !add_change(ch, n, w->topic, CH_GROUPS);
		}
		/* a config, a partition: a whole pass; other files: none */
		return strncmp(name, "config", 6) == 0 ||
		    (name[0] != '\0' && strspn(name, "0123456789") ==
		    strlen(name));
	case W_GROUPS:
		if ((ev->mask & (IN_CREATE | IN_MOVED_TO)) && name[0] != '.') {
			snprintf(rel, sizeof(rel), "topics/%s/groups/%.255s",
			    w->topic, name);
			watch(s, rel, W_DIRS | IN_MODIFY, W_GROUP, w->topic, 0);
		}
		return !add_change(ch, n, w->topic, CH_GROUPS);
	case W_GROUP:
		return !add_change(ch, n, w->topic, CH_GROUPS);
	case W_SCHED:
		if (name[0] == '\0' || strspn(name, "0123456789") !=
		    strlen(name))
			return 0;	/* the lock, a mover's marker */
		if (ev->mask & (IN_CREATE | IN_MOVED_TO)) {
			snprintf(rel, sizeof(rel), "topics/%s/scheduled/%.255s",
			    w->topic, name);
			watch(s, rel, W_DIRS, W_BUCKET, w->topic, 0);
		}
		return !add_change(ch, n, w->topic, CH_SCHED);
	case W_BUCKET:
		if (ev->len > 4 && strcmp(name + strlen(name) - 4, ".tmp") == 0)
			return 0;	/* its rename follows */
		return !add_change(ch, n, w->topic, CH_SCHED);
	}
	return 1;
}

/*
 * s_wait - WAIT: answer when the spool changes, saying what changed
 * when the events tell it, or with a heartbeat
 */
static int
s_wait(struct sess *s)
{
	char ev[16384] __attribute__((aligned(__alignof__(struct inotify_event))));
	const struct inotify_event *e;
	struct change *ch = NULL;
	struct pollfd pf[2];
	size_t nch = 0, i;
	ssize_t len, k;
	int n, kind, r;

	pf[0].fd = s->ifd;
	pf[0].events = POLLIN;
	pf[0].revents = 0;
	/* the receiver going away ends the wait too */
	pf[1].fd = s->pr.rfd;
	pf[1].events = POLLIN;
	pf[1].revents = 0;
	/* without inotify (none to be had): a look every second */
	n = s->ifd >= 0 ? poll(pf, 2, HEARTBEAT_MS) : poll(pf + 1, 1, 1000);
	if (n > 0 && (pf[1].revents & (POLLIN | POLLHUP | POLLERR)) &&
	    !(pf[0].revents & POLLIN))
		return 0;	/* the next frame says what */
	kind = s->ifd < 0 ? CHG_ALL : n > 0 ? CHG_LIST : CHG_NONE;
	if (kind == CHG_LIST && (ch = calloc(CH_MAX, sizeof(*ch))) == NULL)
		kind = CHG_ALL;
	/* every event queued now: those of one write come together */
	while (kind == CHG_LIST && (len = read(s->ifd, ev, sizeof(ev))) > 0)
		for (k = 0; k < len && kind == CHG_LIST;
		    k += sizeof(*e) + e->len) {
			e = (const struct inotify_event *)(ev + k);
			if (event(s, e, ch, &nch))
				kind = CHG_ALL;
		}
	if (kind == CHG_LIST && nch == 0)
		kind = CHG_NONE;	/* nothing we copy */
	proto_begin(&s->pr, PROTO_CHANGED);
	proto_u8(&s->pr, (uint8_t)kind);
	if (kind == CHG_LIST) {
		proto_u32(&s->pr, (uint32_t)nch);
		for (i = 0; i < nch; i++) {
			proto_str(&s->pr, ch[i].topic);
			proto_u32(&s->pr, ch[i].part);
		}
	}
	free(ch);
	r = proto_send(&s->pr);
	return r;
}

/*
 * s_sched - SCHED_REQ: the topic's scheduled files, between two readings
 * of each partition's next offset (schedule.c says what the replica
 * does with them)
 */
static int
s_sched(struct sess *s)
{
	char topic[SPOOL_NAME_MAX + 1], **names = NULL;
	struct spool_topic *t = NULL;
	struct spool_part_info pi;
	uint64_t *before = NULL;
	size_t n = 0, i;
	uint32_t p, np = 0;
	int r = 0;

	proto_getstr(&s->pr, topic, sizeof(topic));
	if (proto_done(&s->pr) < 0 || !spool_topic_name_ok(topic))
		return fail(s, -EBADMSG, "protocol: malformed SCHED_REQ");
	if (spool_topic_open(s->sp, topic, &t) == 0) {
		np = t->cfg.partitions;
		if ((before = calloc(np, sizeof(*before))) == NULL)
			r = -ENOMEM;
		for (p = 0; p < np && r == 0; p++)
			if (spool_part_bounds(t, p, &pi) == 0)
				before[p] = pi.next;
		if (r == 0 && (r = spool_sched_names(t, &names, &n)) < 0)
			r = fail(s, r, "%s/scheduled: %s", topic, strerror(-r));
	}
	if (r == 0) {
		proto_begin(&s->pr, PROTO_SCHED);
		proto_u32(&s->pr, np);
		for (p = 0; p < np; p++) {
			proto_u64(&s->pr, before[p]);
			/* after the listing: a file not listed was moved below */
			if (spool_part_bounds(t, p, &pi) < 0)
				pi.next = 0;
			proto_u64(&s->pr, pi.next);
		}
		proto_u32(&s->pr, (uint32_t)n);
		for (i = 0; i < n; i++)
			proto_str(&s->pr, names[i]);
		r = proto_send(&s->pr);
	}
	for (i = 0; i < n; i++)
		free(names[i]);
	free(names);
	free(before);
	spool_topic_close(t);
	return r;
}

/* s_sched_get - SCHED_GET: one scheduled file, or nothing if gone */
static int
s_sched_get(struct sess *s)
{
	char topic[SPOOL_NAME_MAX + 1], name[SPOOL_NAME_MAX + 1];
	struct spool_topic *t;
	unsigned char *buf = NULL;
	size_t len = 0;
	int r;

	proto_getstr(&s->pr, topic, sizeof(topic));
	proto_getstr(&s->pr, name, sizeof(name));
	if (proto_done(&s->pr) < 0 || !spool_topic_name_ok(topic))
		return fail(s, -EBADMSG, "protocol: malformed SCHED_GET");
	if (spool_topic_open(s->sp, topic, &t) == 0) {
		if ((r = spool_sched_get(t, name, &buf, &len)) < 0 &&
		    r != -ENOENT) {
			spool_topic_close(t);
			return fail(s, r, "%s/scheduled/%s: %s", topic, name,
			    r == -EBADMSG ? spool_errmsg(s->sp) :
			    strerror(-r));
		}
		spool_topic_close(t);
	}
	r = proto_send_data(&s->pr, PROTO_SCHED_FILE, buf, len);
	free(buf);
	return r;
}

/* sender - serve the receiver's requests until BYE */
static int
sender(struct sess *s)
{
	unsigned char *buf;
	size_t cap = CHUNK;
	int type, r;

	if ((buf = malloc(cap)) == NULL)
		return -ENOMEM;
	(void)acks_load(s);
	for (;;) {
		if ((type = expect(s, 0)) < 0) {
			r = type;
			break;
		}
		switch (type) {
		case PROTO_LIST:
			r = s_list(s);
			break;
		case PROTO_PSTATE:
			r = s_pstate(s, &buf, &cap);
			break;
		case PROTO_PROBE:
			r = s_probe(s);
			break;
		case PROTO_GROUPS_REQ:
			r = s_groups(s);
			break;
		case PROTO_ACK:
			r = s_ack(s);
			break;
		case PROTO_SCHED_REQ:
			r = s_sched(s);
			break;
		case PROTO_SCHED_GET:
			r = s_sched_get(s);
			break;
		case PROTO_WAIT:
			r = s_wait(s);
			s->o->passes++;
			break;
		case PROTO_BYE:
			s->o->passes++;
			free(buf);
			return 0;
		default:
			r = fail(s, -EBADMSG, "protocol: frame type %d from "
			    "the receiver", type);
		}
		if (r < 0)
			break;
	}
	free(buf);
	return r;
}

/* ---- the receiver ---------------------------------------------------- */

/* holds_data - whether any partition of the spool holds a batch */
static int
holds_data(struct spool *sp)
{
	struct spool_topic *t;
	struct spool_part_info pi;
	char **names;
	size_t n, i;
	uint32_t p;
	int r, found = 0;

	if ((r = spool_topic_list(sp, &names, &n)) < 0)
		return r;
	for (i = 0; i < n; i++) {
		if (!found && spool_topic_open(sp, names[i], &t) == 0) {
			for (p = 0; p < t->cfg.partitions && !found; p++)
				if (spool_part_bounds(t, p, &pi) == 0 &&
				    (pi.bytes > 0 || pi.segments > 1))
					found = 1;
			spool_topic_close(t);
		}
		free(names[i]);
	}
	free(names);
	return found;
}

/*
 * check_role - may this spool receive from the sender?  A replica of it,
 * or an empty spool, yes; a primary holding data only with --demote.
 */
static int
check_role(struct sess *s)
{
	char src[64];
	int r, demote = (s->flags & SPOOL_REPL_DEMOTE) != 0;

	if (s->peer_id[0] != '\0' && strcmp(s->peer_id, s->id) == 0)
		return fail(s, -SPOOL_EROLE, "%s: source and destination are "
		    "the same spool", s->path);
	if ((r = spool_replica_of(s->sp, src, sizeof(src))) < 0)
		return fail(s, r, "%s/replica: %s", s->path, strerror(-r));
	if (r == 1 && strcmp(src, s->peer_id) == 0)
		return 0;
	if (r == 1 && !demote)
		return fail(s, -SPOOL_EROLE, "%s is a replica of another spool "
		    "(%s); --demote makes it a replica of this source",
		    s->path, src);
	if (r == 0 && !demote) {
		if ((r = holds_data(s->sp)) < 0)
			return fail(s, r, "%s: %s", s->path, strerror(-r));
		if (r)
			return fail(s, -SPOOL_EROLE, "%s is a primary holding "
			    "data: refusing to replicate over it (are SRC and "
			    "DST swapped?); --demote makes it a replica",
			    s->path);
	}
	if (s->flags & SPOOL_REPL_DRYRUN)
		return 0;
	if ((r = mark_replica(s->sp, s->peer_id)) < 0)
		return fail(s, r, "%s/replica: %s", s->path, strerror(-r));
	report(s, 1, "%s: now a replica of %s", s->path, s->peer_id);
	return 0;
}

/* config_apply - make topic t's config the source's text (growing only) */
static int
config_apply(struct sess *s, struct spool_topic *t, const char *text)
{
	char mine[CONFIG_TEXT], copy[CONFIG_TEXT], *kv[32], *line, *save = NULL;
	size_t n = 0;
	int r;

	if (spool_config_format(&t->cfg, mine, sizeof(mine)) < 0 ||
	    strcmp(mine, text) == 0)
		return 0;
	snprintf(copy, sizeof(copy), "%s", text);
	for (line = strtok_r(copy, "\n", &save); line != NULL && n < 32;
	    line = strtok_r(NULL, "\n", &save))
		if (strchr(line, '=') != NULL)
			kv[n++] = line;
	if ((r = spool_topic_config_update(t, (const char *const *)kv,
	    n)) < 0)
		return fail(s, r, "%s: config from the source: %s", t->name,
		    spool_errmsg(s->sp));
	report(s, 1, "%s: config updated", t->name);
	return 0;
}

/* aside_open - a new file under SPOOL/diverged/ for cut-off messages */
static int
aside_open(struct sess *s, const char *topic, uint32_t part, uint64_t off,
    char *name, size_t len)
{
	int dfd, fd;

	if (mkdirat(s->sp->dirfd, ASIDE_DIR, 0775) == 0)
		(void)spool_fsync_dir(s->sp->dirfd);
	dfd = openat(s->sp->dirfd, ASIDE_DIR, O_RDONLY | O_DIRECTORY |
	    O_NOFOLLOW | O_CLOEXEC);
	if (dfd == -1)
		return -errno;
	snprintf(name, len, "%s.%" PRIu32 ".%" PRIu64 ".%" PRId64 ".json",
	    topic, part, off, spool_now_ms());
	fd = openat(dfd, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW |
	    O_CLOEXEC, 0664);
	if (fd == -1) {
		fd = -errno;
		close(dfd);
		return fd;
	}
	/* the file's name must survive before anything is cut */
	if (spool_fsync_dir(dfd) < 0) {
		close(fd);
		fd = -errno;
	}
	close(dfd);
	return fd;
}

/*
 * r_diverged - find the newest batch both hold, segment by segment from
 * the newest, and cut the replica back to it (the rest kept aside)
 */
static int
r_diverged(struct sess *s, struct spool_mirror *m)
{
	struct spool_seglist l;
	struct spool_mbatch *b;
	char name[SPOOL_NAME_MAX + 96], path[PATH_MAX];
	uint64_t cutseg, nmsgs, cutoff;
	uint32_t k, chunk;
	off_t cutpos;
	size_t nb, i, j;
	int r, found = 0, afd, idx;

	if ((r = spool_mirror_segs(m, &l)) < 0)
		return r;
	cutseg = l.n > 0 ? l.base[0] : 0;
	cutpos = 0;
	cutoff = cutseg;
	for (i = l.n; i > 0 && !found; i--) {
		if ((r = spool_mirror_batches(m, l.base[i - 1], &b, &nb)) < 0)
			break;
		for (j = nb; j > 0 && !found; j -= chunk) {
			chunk = j > PROBE_MAX ? PROBE_MAX : (uint32_t)j;
			proto_begin(&s->pr, PROTO_PROBE);
			proto_str(&s->pr, m->t->name);
			proto_u32(&s->pr, m->part);
			proto_u64(&s->pr, l.base[i - 1]);
			proto_u32(&s->pr, chunk);
			for (k = 0; k < chunk; k++) {
				proto_u64(&s->pr, (uint64_t)b[j - 1 - k].pos);
				proto_u64(&s->pr, b[j - 1 - k].off);
				proto_u32(&s->pr, b[j - 1 - k].crc);
			}
			if ((r = proto_send(&s->pr)) < 0 ||
			    (r = expect(s, PROTO_PROBE_R)) < 0)
				break;
			idx = (int)proto_get32(&s->pr);
			if (proto_done(&s->pr) < 0 || idx >= (int)chunk)
				r = fail(s, -EBADMSG, "protocol: malformed "
				    "PROBE_R");
			if (r < 0)
				break;
			if (idx >= 0) {
				found = 1;
				cutseg = l.base[i - 1];
				cutpos = b[j - 1 - idx].pos +
				    b[j - 1 - idx].len;
				cutoff = b[j - 1 - idx].off +
				    b[j - 1 - idx].count;
			}
		}
		free(b);
		if (r < 0)
			break;
	}
	spool_seg_free(&l);
	if (r < 0)
		return r;
	if (s->flags & SPOOL_REPL_DRYRUN) {
		report(s, 0, "%s/%" PRIu32 ": diverged from the source: would "
		    "cut back to offset %" PRIu64, m->t->name, m->part, cutoff);
		return 1;
	}
	if ((afd = aside_open(s, m->t->name, m->part, cutoff, name,
	    sizeof(name))) < 0)
		return fail(s, afd, "%s/%s: %s", s->path, ASIDE_DIR,
		    strerror(-afd));
	r = spool_mirror_cut(m, cutseg, cutpos, afd, &nmsgs, s->sync);
	close(afd);
	snprintf(path, sizeof(path), "%s/%s/%s", s->path, ASIDE_DIR, name);
	if (r < 0)
		return fail(s, r, "%s/%" PRIu32 ": cutting back to offset %"
		    PRIu64 ": %s", m->t->name, m->part, cutoff, strerror(-r));
	if (nmsgs == 0)
		(void)unlinkat(s->sp->dirfd, path + strlen(s->path) + 1, 0);
	report(s, 0, "%s/%" PRIu32 ": diverged from the source: cut back to "
	    "offset %" PRIu64 "; %" PRIu64 " message%s kept in %s",
	    m->t->name, m->part, cutoff, nmsgs, nmsgs == 1 ? "" : "s",
	    nmsgs ? path : "(none)");
	return 0;
}

/*
 * writeback - start writing out what was appended, every WRITEBACK bytes,
 * so that the sync before the acknowledgement finds little left to do
 * and the disk works while we read on (sync_file_range without WAIT
 * syncs nothing: the fdatasync stays the only guarantee)
 */
static void
writeback(struct sess *s, struct spool_mirror *m)
{
	if (!s->sync || m->logfd < 0)
		return;
	if (s->wbfrom > m->end)
		s->wbfrom = 0;	/* another partition's head, or a new one */
	if (m->end - s->wbfrom < (off_t)WRITEBACK)
		return;
	(void)sync_file_range(m->logfd, s->wbfrom, m->end - s->wbfrom,
	    SYNC_FILE_RANGE_WRITE);
	s->wbfrom = m->end;
}

/*
 * r_local - LOCAL: append the whole batches of the source's segment base
 * from pos to size, read here (a local source), checked as DATA is
 */
static int
r_local(struct sess *s, struct spool_mirror *m, uint64_t base, off_t pos,
    off_t size)
{
	char rel[SPOOL_NAME_MAX + SPOOL_SEGNAME_LEN + 48];
	struct spool_bhdr h;
	size_t n, q, blen, nb = 0;
	ssize_t got;
	int fd, r = 0;

	if (s->srcfd < 0 || !(s->flags & SPOOL_REPL_LOCAL) || pos < 0 ||
	    size < pos)
		return fail(s, -EBADMSG, "protocol: LOCAL unasked for");
	n = snprintf(rel, sizeof(rel), "topics/%s/%" PRIu32 "/", m->t->name,
	    m->part);
	spool_seg_name(rel + n, base, SPOOL_LOG_SUFFIX);
	if ((fd = openat(s->srcfd, rel, O_RDONLY | O_NOFOLLOW |
	    O_CLOEXEC)) == -1)
		return fail(s, -errno, "%s: %s", rel, strerror(errno));
	if (s->lbuf == NULL && (s->lbuf = malloc(s->lcap = LCHUNK)) == NULL)
		r = -ENOMEM;
	while (r == 0 && pos < size) {
		n = (size_t)(size - pos) < s->lcap ? (size_t)(size - pos) :
		    s->lcap;
		if ((got = pread(fd, s->lbuf, n, pos)) <= 0) {
			r = got < 0 ? -errno : 0;
			break;
		}
		n = (size_t)got;
		for (q = 0; q + SPOOL_HDR_SIZE <= n; q += blen) {
			if (spool_bhdr_unpack(s->lbuf + q, &h) < 0)
				break;
			blen = SPOOL_HDR_SIZE + (size_t)h.body_len;
			if (q + blen > n)
				break;
		}
		if (q == 0) {
			/* one batch larger than the buffer, or the tail */
			unsigned char *nb2;

			if (n < SPOOL_HDR_SIZE || spool_bhdr_unpack(s->lbuf,
			    &h) < 0 || SPOOL_HDR_SIZE + (off_t)h.body_len >
			    size - pos || SPOOL_HDR_SIZE + (size_t)h.body_len <=
			    s->lcap || SPOOL_HDR_SIZE + (size_t)h.body_len >=
			    PROTO_FRAME_MAX)
				break;	/* torn, being written, or damaged */
			if ((nb2 = realloc(s->lbuf, SPOOL_HDR_SIZE +
			    h.body_len)) == NULL) {
				r = -ENOMEM;
				break;
			}
			s->lbuf = nb2;
			s->lcap = SPOOL_HDR_SIZE + h.body_len;
			continue;
		}
		if ((r = spool_mirror_append(m, s->lbuf, q, &nb)) < 0)
			break;
		writeback(s, m);
		if (s->o->progress != NULL)
			s->o->progress(s->o->arg, m->t->name, q, 0);
		pos += (off_t)q;
	}
	close(fd);
	return r;
}

/* r_stream - receive SEG/DATA frames until PEND */
static int
r_stream(struct sess *s, struct spool_mirror *m, uint64_t *srcfirst)
{
	const unsigned char *d;
	size_t len, nb = 0;
	int type, r;

	for (;;) {
		if ((type = expect(s, 0)) < 0)
			return type;
		/* a dry run asked for no data: a sender that sends some errs */
		if ((type == PROTO_SEG || type == PROTO_DATA ||
		    type == PROTO_LOCAL) &&
		    (s->flags & SPOOL_REPL_DRYRUN))
			return fail(s, -EBADMSG, "protocol: data in a dry run");
		switch (type) {
		case PROTO_SEG:
			r = spool_mirror_segment(m, proto_get64(&s->pr),
			    s->sync);
			if (proto_done(&s->pr) < 0)
				return fail(s, -EBADMSG, "protocol: bad SEG");
			break;
		case PROTO_DATA:
			d = proto_rest(&s->pr, &len);
			r = spool_mirror_append(m, d, len, &nb);
			if (r == 0)
				writeback(s, m);
			if (r == 0 && s->o->progress != NULL)
				s->o->progress(s->o->arg, m->t->name, len, 0);
			break;
		case PROTO_LOCAL: {
			uint64_t base = proto_get64(&s->pr);
			uint64_t from = proto_get64(&s->pr);
			uint64_t to = proto_get64(&s->pr);

			if (proto_done(&s->pr) < 0 || from > INT64_MAX ||
			    to > INT64_MAX)
				return fail(s, -EBADMSG, "protocol: bad LOCAL");
			if ((r = r_local(s, m, base, (off_t)from,
			    (off_t)to)) < 0 && s->o->errmsg[0] != '\0')
				return r;
			break;
		}
		case PROTO_PEND:
			*srcfirst = proto_get64(&s->pr);
			(void)proto_get64(&s->pr);
			return proto_done(&s->pr) < 0 ? fail(s, -EBADMSG,
			    "protocol: bad PEND") : 0;
		default:
			return fail(s, -EBADMSG, "protocol: frame type %d in "
			    "a partition's stream", type);
		}
		if (r < 0)
			return fail(s, r, "%s/%" PRIu32 ": %s", m->t->name,
			    m->part, r == -EBADMSG ? spool_errmsg(s->sp) :
			    strerror(-r));
	}
}

/* r_part - bring one partition up to date */
static int
r_part(struct sess *s, struct spool_topic *t, uint32_t part)
{
	struct spool_mirror m;
	uint64_t srcfirst, bytes, before;
	int r, kind, round, dry = (s->flags & SPOOL_REPL_DRYRUN) != 0;

	if (t == NULL) {	/* a dry run, the topic not here yet */
		memset(&m, 0, sizeof(m));
		m.partfd = m.lockfd = m.logfd = m.idxfd = -1;
	} else if ((r = spool_mirror_open(t, part, !dry, &m)) < 0)
		return fail(s, r, "%s/%" PRIu32 ": %s", t->name, part,
		    r == -EBADMSG ? spool_errmsg(s->sp) : strerror(-r));
	before = m.next;
	for (round = 0; round < 3; round++) {
		proto_begin(&s->pr, PROTO_PSTATE);
		proto_str(&s->pr, t ? t->name : s->src_topics[s->nsrc - 1]);
		proto_u32(&s->pr, part);
		proto_u8(&s->pr, (uint8_t)((dry ? PS_DRY : 0) |
		    (m.haslast ? PS_HASLAST : 0) |
		    (!spool_mirror_holds(&m) ||
		    (s->flags & SPOOL_REPL_DELETE) ? PS_RESTART_OK : 0)));
		proto_u64(&s->pr, m.next);
		proto_u64(&s->pr, m.lastseg);
		proto_u64(&s->pr, (uint64_t)m.lastpos);
		proto_u32(&s->pr, m.lastcrc);
		proto_u64(&s->pr, m.lastoff);
		proto_u64(&s->pr, m.logfd >= 0 ? m.segbase : 0);
		proto_u64(&s->pr, (uint64_t)m.end);
		if ((r = proto_send(&s->pr)) < 0 ||
		    (r = expect(s, PROTO_PLAN)) < 0)
			break;
		kind = proto_get8(&s->pr);
		bytes = proto_get64(&s->pr);
		if ((r = proto_done(&s->pr)) < 0) {
			r = fail(s, r, "protocol: bad PLAN");
			break;
		}
		if (kind == PLAN_SKIP)
			break;
		if (kind == PLAN_GAP) {
			report(s, 0, "%s/%" PRIu32 ": the source no longer "
			    "holds offsets %" PRIu64 " to %" PRIu64 " "
			    "(retention); --delete drops the replica's older "
			    "segments and goes on", t->name, part, m.next,
			    bytes - 1);
			break;
		}
		if (kind == PLAN_DIVERGED) {
			if ((r = r_diverged(s, &m)) != 0)
				break;
			continue;
		}
		if (dry) {
			if (bytes > 0)
				report(s, 0, "%s/%" PRIu32 ": would copy %"
				    PRIu64 " bytes from offset %" PRIu64,
				    t ? t->name : s->src_topics[s->nsrc - 1],
				    part, bytes, m.next);
			r = r_stream(s, &m, &srcfirst);
			break;
		}
		if (kind == PLAN_RESTART) {
			report(s, 0, "%s/%" PRIu32 ": the source starts at a "
			    "later segment: the replica's segments go",
			    t->name, part);
			if ((r = spool_mirror_drop(&m, UINT64_MAX, s->sync)) < 0) {
				r = fail(s, r, "%s/%" PRIu32 ": %s", t->name,
				    part, strerror(-r));
				break;
			}
		} else if (kind != PLAN_APPEND) {
			r = fail(s, -EBADMSG, "protocol: PLAN kind %d", kind);
			break;
		}
		if (s->o->progress != NULL && bytes > 0)
			s->o->progress(s->o->arg, t->name, 0, bytes);
		if ((r = r_stream(s, &m, &srcfirst)) < 0)
			break;
		if ((s->flags & SPOOL_REPL_DELETE) && srcfirst > m.first &&
		    (r = spool_mirror_drop(&m, srcfirst, s->sync)) < 0) {
			r = fail(s, r, "%s/%" PRIu32 ": %s", t->name, part,
			    strerror(-r));
			break;
		}
		/* durable before acknowledged */
		if (s->sync && (r = spool_mirror_sync(&m)) < 0) {
			r = fail(s, r, "%s/%" PRIu32 ": %s", t->name, part,
			    strerror(-r));
			break;
		}
		proto_begin(&s->pr, PROTO_ACK);
		proto_str(&s->pr, t->name);
		proto_u32(&s->pr, part);
		proto_u64(&s->pr, m.next);
		r = proto_send(&s->pr);
		if (m.next != before)
			report(s, 1, "%s/%" PRIu32 ": %" PRIu64 " to %" PRIu64,
			    t->name, part, before, m.next);
		break;
	}
	if (round == 3)
		r = fail(s, -EBADMSG, "%s/%" PRIu32 ": no common prefix "
		    "after cutting back", t->name, part);
	spool_mirror_close(&m);
	return r < 0 ? r : 0;
}

/* r_groups - carry a topic's group offsets, never past what we hold */
static int
r_groups(struct sess *s, struct spool_topic *t)
{
	char group[SPOOL_NAME_MAX + 1];
	struct spool_part_info pi;
	uint32_t n, i, part;
	uint64_t off;
	int r;

	proto_begin(&s->pr, PROTO_GROUPS_REQ);
	proto_str(&s->pr, t->name);
	if ((r = proto_send(&s->pr)) < 0 || (r = expect(s, PROTO_GROUPS)) < 0)
		return r;
	n = proto_get32(&s->pr);
	for (i = 0; i < n && proto_done(&s->pr) == 0; i++) {
		proto_getstr(&s->pr, group, sizeof(group));
		part = proto_get32(&s->pr);
		off = proto_get64(&s->pr);
		if (proto_done(&s->pr) < 0)
			break;
		if (!spool_topic_name_ok(group))
			return fail(s, -EBADMSG, "protocol: group name");
		if (part >= t->cfg.partitions ||
		    spool_part_bounds(t, part, &pi) < 0)
			continue;
		if (off > pi.next)
			off = pi.next;
		if ((r = spool_group_store(t, group, part, off)) < 0)
			return fail(s, r, "%s: group %s: %s", t->name, group,
			    strerror(-r));
	}
	if (proto_done(&s->pr) < 0)
		return fail(s, -EBADMSG, "protocol: malformed GROUPS");
	return 0;
}

/* name_cmp - strcmp for bsearch over sorted names */
static int
name_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* sched_fetch - copy one scheduled file of the source, durably */
static int
sched_fetch(struct sess *s, struct spool_topic *t, const char *name)
{
	const unsigned char *d;
	size_t len;
	int r;

	proto_begin(&s->pr, PROTO_SCHED_GET);
	proto_str(&s->pr, t->name);
	proto_str(&s->pr, name);
	if ((r = proto_send(&s->pr)) < 0 ||
	    (r = expect(s, PROTO_SCHED_FILE)) < 0)
		return r;
	d = proto_rest(&s->pr, &len);
	if (len == 0)
		return 0;	/* moved or cancelled meanwhile */
	if ((r = spool_sched_put(t, name, d, len, s->sync)) < 0)
		return fail(s, r, "%s/scheduled/%s: %s", t->name, name,
		    r == -EBADMSG ? spool_errmsg(s->sp) : strerror(-r));
	return 0;
}

/*
 * r_sched - make the replica's scheduled files the source's: the new
 * ones copied, the partitions brought up to where the source was when it
 * listed them, then the ones it no longer has removed (their batches are
 * here by then).  The replica never moves them; a promotion does.
 */
static int
r_sched(struct sess *s, struct spool_topic *t)
{
	char name[SPOOL_NAME_MAX + 1], **src = NULL, **mine = NULL;
	struct spool_part_info pi;
	uint64_t *before = NULL, *after = NULL;
	uint32_t np, n = 0, i, p;
	size_t nmine = 0, k;
	int r = 0, behind = 0;

	proto_begin(&s->pr, PROTO_SCHED_REQ);
	proto_str(&s->pr, t->name);
	if ((r = proto_send(&s->pr)) < 0 || (r = expect(s, PROTO_SCHED)) < 0)
		return r;
	np = proto_get32(&s->pr);
	if (np > SPOOL_PART_MAX)
		return fail(s, -EBADMSG, "protocol: malformed SCHED");
	if ((before = calloc(np + 1, sizeof(*before))) == NULL ||
	    (after = calloc(np + 1, sizeof(*after))) == NULL) {
		r = -ENOMEM;
		goto out;
	}
	for (p = 0; p < np; p++) {
		before[p] = proto_get64(&s->pr);
		after[p] = proto_get64(&s->pr);
	}
	n = proto_get32(&s->pr);
	if (proto_done(&s->pr) < 0 || n > s->pr.len ||
	    (src = calloc(n + 1, sizeof(*src))) == NULL) {
		r = proto_done(&s->pr) < 0 || n > s->pr.len ? fail(s, -EBADMSG,
		    "protocol: malformed SCHED") : -ENOMEM;
		goto out;
	}
	for (i = 0; i < n; i++) {
		proto_getstr(&s->pr, name, sizeof(name));
		if (proto_done(&s->pr) < 0) {
			r = fail(s, -EBADMSG, "protocol: malformed SCHED");
			n = i;
			goto out;
		}
		if ((src[i] = strdup(name)) == NULL) {
			r = -ENOMEM;
			n = i;
			goto out;
		}
	}
	if (n > 0)
		qsort(src, n, sizeof(*src), name_cmp);
	if ((r = spool_sched_names(t, &mine, &nmine)) < 0) {
		r = fail(s, r, "%s/scheduled: %s", t->name, strerror(-r));
		goto out;
	}
	if (nmine > 0)
		qsort(mine, nmine, sizeof(*mine), name_cmp);
	/* the frames below reuse the buffer: src holds copies */
	for (i = 0; i < n && r == 0; i++)
		if (nmine == 0 || bsearch(&src[i], mine, nmine, sizeof(*mine),
		    name_cmp) == NULL)
			r = sched_fetch(s, t, src[i]);
	/* every file it moved before listing is in its log below after */
	for (p = 0; p < np && p < t->cfg.partitions && r == 0; p++) {
		if (spool_part_bounds(t, p, &pi) == 0 && pi.next < after[p])
			r = r_part(s, t, p);
		if (r == 0 && (spool_part_bounds(t, p, &pi) < 0 ||
		    pi.next < after[p]))
			behind = 1;	/* a gap: keep what we have */
	}
	for (k = 0; k < nmine && r == 0 && !behind; k++)
		if ((n == 0 || bsearch(&mine[k], src, n, sizeof(*src),
		    name_cmp) == NULL) && (r = spool_sched_drop(t, mine[k], s->sync)) < 0)
			r = fail(s, r, "%s/scheduled/%s: %s", t->name,
			    mine[k], strerror(-r));
	if (r == 0 && (n > 0 || nmine > 0) &&
	    (r = spool_sched_setfrom(t, before, np, s->sync)) < 0)
		r = fail(s, r, "%s/scheduled: %s", t->name, strerror(-r));
out:
	for (i = 0; src != NULL && i < n; i++)
		free(src[i]);
	free(src);
	for (k = 0; k < nmine; k++)
		free(mine[k]);
	free(mine);
	free(before);
	free(after);
	return r;
}

/* free_src - forget the source's topic list */
static void
free_src(struct sess *s)
{
	while (s->nsrc > 0)
		free(s->src_topics[--s->nsrc]);
	free(s->src_topics);
	s->src_topics = NULL;
}

/* r_topic - one topic of the source: created or updated, then its data */
static int
r_topic(struct sess *s, const char *name, const char *text)
{
	struct spool_config cfg;
	struct spool_topic *t = NULL;
	char copy[CONFIG_TEXT];
	uint32_t p;
	int r, dry = (s->flags & SPOOL_REPL_DRYRUN) != 0;

	snprintf(copy, sizeof(copy), "%s", text);
	spool_config_default(&cfg);
	if (spool_config_parse(&cfg, copy) < 0 || cfg.partitions == 0 ||
	    cfg.partitions > SPOOL_PART_MAX)
		return fail(s, -EBADMSG, "%s: a config from the source that "
		    "does not parse", name);
	r = spool_topic_open(s->sp, name, &t);
	if (r == -ENOENT && !dry) {
		report(s, 1, "%s: new topic", name);
		r = spool_topic_create(s->sp, name, &cfg);
		if (r == 0 || r == -EEXIST)
			r = spool_topic_open(s->sp, name, &t);
	} else if (r == -ENOENT) {
		report(s, 0, "%s: would create the topic", name);
		t = NULL;
		r = 0;
	}
	if (r < 0)
		return fail(s, r, "%s: %s", name, r == -EBADMSG ?
		    spool_errmsg(s->sp) : strerror(-r));
	if (t != NULL && !dry && (r = config_apply(s, t, text)) < 0)
		goto out;
	for (p = 0; p < cfg.partitions; p++) {
		if (t != NULL && p >= t->cfg.partitions)
			break;
		if ((r = r_part(s, t, p)) < 0)
			goto out;
	}
	if (t != NULL && !dry && (r = r_sched(s, t)) == 0)
		r = r_groups(s, t);
out:
	spool_topic_close(t);
	return r;
}

/* r_pass - one pass over every topic of the source */
static int
r_pass(struct sess *s)
{
	char name[SPOOL_NAME_MAX + 1], text[CONFIG_TEXT], **mine, **nv;
	char (*cfgs)[CONFIG_TEXT] = NULL, (*nc)[CONFIG_TEXT];
	size_t n, i, k;
	int type, r = 0, have;

	free_src(s);
	proto_begin(&s->pr, PROTO_LIST);
	if ((r = proto_send(&s->pr)) < 0)
		return r;
	for (;;) {
		/* every way out of the listing frees cfgs (at out) */
		if ((type = expect(s, 0)) < 0) {
			r = type;
			goto out;
		}
		if (type == PROTO_LIST_END)
			break;
		if (type != PROTO_TOPIC) {
			r = fail(s, -EBADMSG, "protocol: frame type %d in "
			    "the topic list", type);
			goto out;
		}
		proto_getstr(&s->pr, name, sizeof(name));
		proto_getstr(&s->pr, text, sizeof(text));
		if (proto_done(&s->pr) < 0 || !spool_topic_name_ok(name)) {
			r = fail(s, -EBADMSG, "protocol: malformed TOPIC");
			goto out;
		}
		if (s->nsrc >= 1000000) {
			r = fail(s, -EBADMSG, "protocol: too many topics");
			goto out;
		}
		if ((nv = realloc(s->src_topics, (s->nsrc + 1) *
		    sizeof(*nv))) == NULL ||
		    (s->src_topics = nv, (nc = realloc(cfgs, (s->nsrc + 1) *
		    sizeof(*nc))) == NULL)) {
			r = -ENOMEM;
			goto out;
		}
		cfgs = nc;
		snprintf(cfgs[s->nsrc], CONFIG_TEXT, "%s", text);
		if ((s->src_topics[s->nsrc] = strdup(name)) == NULL) {
			r = -ENOMEM;
			goto out;
		}
		s->nsrc++;
	}
	/* --delete: topics the source no longer has go here too */
	if ((s->flags & SPOOL_REPL_DELETE) &&
	    spool_topic_list(s->sp, &mine, &n) == 0) {
		for (i = 0; i < n; i++) {
			for (have = 0, k = 0; k < s->nsrc && !have; k++)
				have = strcmp(mine[i], s->src_topics[k]) == 0;
			if (!have && want_topic(s, mine[i])) {
				if (s->flags & SPOOL_REPL_DRYRUN)
					report(s, 0, "%s: would delete the "
					    "topic", mine[i]);
				else if (spool_topic_delete(s->sp,
				    mine[i]) == 0)
					report(s, 0, "%s: deleted (gone from "
					    "the source)", mine[i]);
			}
			free(mine[i]);
		}
		free(mine);
	}
	for (i = 0; i < s->nsrc && r == 0; i++) {
		size_t keep = s->nsrc;

		/* r_part names a topic not made yet by src_topics[nsrc-1] */
		s->nsrc = i + 1;
		r = r_topic(s, s->src_topics[i], cfgs[i]);
		s->nsrc = keep;
	}
out:
	free(cfgs);
	return r;
}

/*
 * r_changes - CHANGED's list: bring up to date only what it names;
 * CHG_ALL when it names what only a whole pass takes in (a topic or a
 * partition the replica does not have yet), else CHG_LIST
 */
static int
r_changes(struct sess *s)
{
	struct spool_topic *t = NULL;
	struct change *ch;
	uint32_t n, i;
	int r = CHG_LIST;

	n = proto_get32(&s->pr);
	if (proto_done(&s->pr) < 0 || n > CH_MAX)
		return fail(s, -EBADMSG, "protocol: malformed CHANGED");
	if (s->flags & SPOOL_REPL_DRYRUN)
		return CHG_ALL;
	if ((ch = calloc(n + 1, sizeof(*ch))) == NULL)
		return -ENOMEM;
	/* the frames below reuse the buffer: the list is copied first */
	for (i = 0; i < n; i++) {
		proto_getstr(&s->pr, ch[i].topic, sizeof(ch[i].topic));
		ch[i].part = proto_get32(&s->pr);
		if (proto_done(&s->pr) == 0 &&
		    !spool_topic_name_ok(ch[i].topic))
			s->pr.bad = -EBADMSG;
	}
	if (proto_done(&s->pr) < 0) {
		free(ch);
		return fail(s, -EBADMSG, "protocol: malformed CHANGED");
	}
	for (i = 0; i < n && r == CHG_LIST; i++) {
		if (t == NULL || strcmp(t->name, ch[i].topic) != 0) {
			spool_topic_close(t);
			t = NULL;
			if (!want_topic(s, ch[i].topic) ||
			    spool_topic_open(s->sp, ch[i].topic, &t) < 0) {
				r = CHG_ALL;
				break;
			}
		}
		if (ch[i].part == CH_GROUPS)
			r = r_groups(s, t);
		else if (ch[i].part == CH_SCHED)
			r = r_sched(s, t);
		else if (ch[i].part >= t->cfg.partitions)
			r = CHG_ALL;
		else
			r = r_part(s, t, ch[i].part);
		if (r == 0)
			r = CHG_LIST;
	}
	spool_topic_close(t);
	free(ch);
	return r;
}

/* receiver - passes until done, or, following, until the pipe breaks */
static int
receiver(struct sess *s)
{
	int r;

	if ((r = check_role(s)) < 0)
		return r;
	if (!(s->flags & SPOOL_REPL_DRYRUN) && s->peer_epoch != s->epoch) {
		/* the replica's epoch is its source's, for a promotion */
		if ((r = set_epoch(s->sp, s->peer_epoch)) < 0)
			return fail(s, r, "%s/epoch: %s", s->path,
			    strerror(-r));
		s->epoch = s->peer_epoch;
	}
	for (;;) {
		if ((r = r_pass(s)) < 0)
			return r;
		s->o->passes++;
		if (!(s->flags & SPOOL_REPL_FOLLOW))
			break;
		/* what changed, until something only a whole pass takes in */
		do {
			proto_begin(&s->pr, PROTO_WAIT);
			if ((r = proto_send(&s->pr)) < 0 ||
			    (r = expect(s, PROTO_CHANGED)) < 0)
				return r;
			r = proto_get8(&s->pr);
			if (r == CHG_LIST && (r = r_changes(s)) < 0)
				return r;
			if (r == CHG_LIST)
				s->o->passes++;
		} while (r == CHG_NONE || r == CHG_LIST);
	}
	proto_begin(&s->pr, PROTO_BYE);
	return proto_send(&s->pr);
}

/* ---- the session ----------------------------------------------------- */

/* not_a_spool - whether path is a directory with entries but no topics/ */
static int
not_a_spool(const char *path)
{
	struct dirent *de;
	DIR *d;
	int other = 0, topics = 0;

	if ((d = opendir(path)) == NULL)
		return 0;
	while ((de = readdir(d)) != NULL) {
		if (strcmp(de->d_name, ".") == 0 ||
		    strcmp(de->d_name, "..") == 0)
			continue;
		if (strcmp(de->d_name, "topics") == 0)
			topics = 1;
		else
			other = 1;
	}
	closedir(d);
	return other && !topics;
}

/* open_spool - the session's spool: a source must exist */
static int
open_spool(struct sess *s)
{
	int r, flags = 0;

	if (s->o->role == SPOOL_REPL_RECEIVER) {
		if (not_a_spool(s->path))
			return fail(s, -SPOOL_EROLE, "%s: a directory that is "
			    "not empty and not a spool: refusing to use it",
			    s->path);
		if (!(s->flags & SPOOL_REPL_DRYRUN))
			flags = SPOOL_CREATE;
	}
	r = spool_open(&s->sp, s->path, flags);
	if (r == -ENOENT && s->o->role == SPOOL_REPL_RECEIVER) {
		/* a dry run into nothing: as into an empty spool */
		snprintf(s->drytmp, sizeof(s->drytmp), "%s/mq-dry.XXXXXX",
		    getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
		if (mkdtemp(s->drytmp) == NULL) {
			s->drytmp[0] = '\0';
			return fail(s, -errno, "mkdtemp: %s", strerror(errno));
		}
		r = spool_open(&s->sp, s->drytmp, 0);
	}
	if (r < 0)
		return fail(s, r, "%s: %s", s->path, r == -ENOENT ?
		    "No such spool" : strerror(-r));
	if (s->sp->topicsfd < 0 && s->o->role == SPOOL_REPL_SENDER)
		return fail(s, -ENOENT, "%s: No such spool", s->path);
	r = spool_id(s->sp, s->o->role == SPOOL_REPL_RECEIVER ?
	    !(s->flags & SPOOL_REPL_DRYRUN) : 1, s->id);
	if (r == -ENOENT || (r < 0 && s->o->role == SPOOL_REPL_SENDER)) {
		s->id[0] = '\0';	/* a source we may not write to */
		r = 0;
	}
	if (r < 0)
		return fail(s, r, "%s/id: %s", s->path, strerror(-r));
	if ((r = spool_epoch(s->sp, &s->epoch)) < 0)
		return fail(s, r, "%s/epoch: %s", s->path, spool_errmsg(s->sp));
	return 0;
}

/*
 * spool_replicate - run one session on the spool at path over the pipe
 * in o; 0 when done (following: never, short of an error).  o->errmsg
 * says why it failed; -SPOOL_EROLE is a refusal of the destination's
 * role, -EBADMSG a malformed stream or batch.
 */
int
spool_replicate(const char *path, struct spool_repl_opts *o)
{
	struct sess s;
	size_t i;
	int r;

	memset(&s, 0, sizeof(s));
	s.o = o;
	s.path = path;
	s.ifd = -1;
	s.srcfd = -1;
	s.sync = !(o->flags & SPOOL_REPL_NOSYNC);
	o->errmsg[0] = '\0';
	proto_init(&s.pr, o->rfd, o->wfd, o->timeout_ms);
	if (!o->server) {
		s.flags = o->flags & ~(SPOOL_REPL_READONLY | SPOOL_REPL_LOCAL);
		/* a source on this machine: its files are read here */
		if (o->role == SPOOL_REPL_RECEIVER && o->local_src != NULL &&
		    (s.srcfd = open(o->local_src, O_RDONLY | O_DIRECTORY |
		    O_CLOEXEC)) >= 0)
			s.flags |= SPOOL_REPL_LOCAL;
		if (o->ntopics > 0 && (s.topics = calloc(o->ntopics,
		    sizeof(*s.topics))) == NULL)
			return -ENOMEM;
		for (i = 0; i < o->ntopics; i++)
			if ((s.topics[s.ntopics++] = strdup(o->topics[i])) ==
			    NULL)
				return -ENOMEM;
	}
	if (o->server) {
		/* the client's options come first: dry runs create nothing */
		if ((r = recv_hello(&s)) < 0)
			goto out;
		if ((r = open_spool(&s)) < 0)
			goto out;
		if ((r = send_hello(&s)) < 0)
			goto out;
	} else {
		if ((r = open_spool(&s)) < 0)
			goto out;
		if ((r = send_hello(&s)) < 0 || (r = recv_hello(&s)) < 0)
			goto out;
	}
	r = o->role == SPOOL_REPL_SENDER ? sender(&s) : receiver(&s);
out:
	if (r < 0 && !s.peer_failed && r != -ECONNRESET && r != -EPIPE) {
		if (o->errmsg[0] == '\0')
			fail(&s, r, "%s", strerror(-r));
		send_error(&s, r);
	}
	o->bytes_in = s.pr.bytes_in;
	o->bytes_out = s.pr.bytes_out;
	proto_free(&s.pr);
	free_src(&s);
	for (i = 0; i < s.ntopics; i++)
		free(s.topics[i]);
	free(s.topics);
	for (i = 0; i < s.nacks; i++)
		free(s.acks[i].topic);
	free(s.acks);
	if (s.ifd >= 0)
		close(s.ifd);
	if (s.srcfd >= 0)
		close(s.srcfd);
	free(s.lbuf);
	for (i = 0; i < s.nwm; i++)
		free(s.wm[i].topic);
	free(s.wm);
	spool_close(s.sp);
	if (s.drytmp[0] != '\0')
		(void)rmdir(s.drytmp);
	return r;
}
