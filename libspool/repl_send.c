/*
 * repl_send.c - the sender's loop: it answers LIST, GROUPS_REQ, ACK,
 * SCHED_REQ and SCHED_GET here, PSTATE in repl_stream.c, SEGS in
 * repl_segs.c, PROBE in repl_diverge.c, WAIT in repl_watch.c
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
 * appends them through mirror_append.c, syncs, and acknowledges; the
 * sender records the acknowledgement in SPOOL/replicas/ID for mq-send
 * --replicas.  A replica whose newest batch the source does not have has
 * diverged: the two find their newest common batch (by header checksum
 * and offset, so epochs count, as in Kafka's KIP-101) and the replica is
 * cut back to it, its cut-off messages first kept aside in
 * SPOOL/diverged/.  Compaction rewrites sealed segments: when the
 * source's compaction generation (compact.c) is not the one the replica
 * recorded, and the replica's newest batch is the source's or one whose
 * epoch the source's log goes on in, the replica lists its segments
 * (SEGS) and the sender sends whole each sealed one that differs, which
 * mirror_install.c installs as gc installs one; that is not divergence.
 *
 * Roles live in small files of the spool directory: id (a stable random
 * identity), epoch (the replication epoch writers stamp into batches),
 * replica (present on a replica: the identity of its source), lock (the
 * role lock: a follower holds it shared while it writes outside the
 * partitions, a promotion takes it exclusive once; repl_promote.c).
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

/* ---- the sender ------------------------------------------------------ */

/* s_list - LIST: every topic (that -t lets through) with its config */
static int
s_list(struct sess *s)
{
	struct spool_topic *t;
	char **names, text[CONFIG_TEXT];
	size_t n, i;
	int r, len;

	s->pass_ms = spool_now_ms();	/* a pass begins (spool_mirror_held) */
	if ((s->flags & SPOOL_REPL_FOLLOW) && s->ifd < 0)
		s->ifd = inotify_init1(IN_CLOEXEC | IN_NONBLOCK);
	if (s->ifd >= 0) {
		/*
		 * Watches first, then the listing: a topic made after the
		 * listing sends an event the drain did not take (listed
		 * first, a topic made between the listing and the drain was
		 * in neither, and went unseen until some other topic came)
		 */
		if ((r = spool_topic_list(s->sp, &names, &n)) < 0)
			return repl_fail(s, r, "%s: topics: %s", s->path,
			    strerror(-r));
		repl_watch_all(s, names, n);
		repl_drain(s);
		for (i = 0; i < n; i++)
			free(names[i]);
		free(names);
	}
	if ((r = spool_topic_list(s->sp, &names, &n)) < 0)
		return repl_fail(s, r, "%s: topics: %s", s->path, strerror(-r));
	/* a topic made between the two listings: its watches too */
	if (s->ifd >= 0)
		repl_watch_all(s, names, n);
	for (i = 0; i < n && r == 0; i++) {
		if (!repl_want_topic(s, names[i]))
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
		return repl_fail(s, -EBADMSG, "protocol: malformed GROUPS_REQ");
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
		return repl_fail(s, -EBADMSG, "protocol: malformed ACK");
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
	if ((r = repl_acks_set(s, topic, part, next)) < 0)
		repl_report(s, 0, "replicas/%s: %s", s->peer_id, strerror(-r));
	return 0;
}

/*
 * s_sched - SCHED_REQ: the topic's scheduled files, between two readings
 * of each partition's next offset (sched_repl.c says what the replica
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
		return repl_fail(s, -EBADMSG, "protocol: malformed SCHED_REQ");
	if (spool_topic_open(s->sp, topic, &t) == 0) {
		np = t->cfg.partitions;
		if ((before = calloc(np, sizeof(*before))) == NULL)
			r = -ENOMEM;
		for (p = 0; p < np && r == 0; p++)
			if (spool_part_bounds(t, p, &pi) == 0)
				before[p] = pi.next;
		if (r == 0 && (r = spool_sched_names(t, &names, &n)) < 0)
			r = repl_fail(s, r, "%s/scheduled: %s", topic,
			    strerror(-r));
	}
	if (r == 0) {
		proto_begin(&s->pr, PROTO_SCHED);
		proto_u32(&s->pr, np);
		for (p = 0; p < np; p++) {
			proto_u64(&s->pr, before[p]);
			/* after listing: a file not listed was moved below */
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
		return repl_fail(s, -EBADMSG, "protocol: malformed SCHED_GET");
	if (spool_topic_open(s->sp, topic, &t) == 0) {
		if ((r = spool_sched_get(t, name, &buf, &len)) < 0 &&
		    r != -ENOENT) {
			spool_topic_close(t);
			return repl_fail(s, r, "%s/scheduled/%s: %s", topic,
			    name, r == -EBADMSG ? spool_errmsg(s->sp) :
			    strerror(-r));
		}
		spool_topic_close(t);
	}
	r = proto_send_data(&s->pr, PROTO_SCHED_FILE, buf, len);
	free(buf);
	return r;
}

/* sender - serve the receiver's requests until BYE */
int
repl_sender(struct sess *s)
{
	unsigned char *buf;
	size_t cap = CHUNK;
	int type, r;

	if ((buf = malloc(cap)) == NULL)
		return -ENOMEM;
	(void)repl_acks_load(s);
	for (;;) {
		if ((type = repl_expect(s, 0)) < 0) {
			r = type;
			break;
		}
		switch (type) {
		case PROTO_LIST:
			r = s_list(s);
			break;
		case PROTO_PSTATE:
			r = repl_s_pstate(s, &buf, &cap);
			break;
		case PROTO_PROBE:
			r = repl_s_probe(s);
			break;
		case PROTO_SEGS:
			r = repl_s_segs(s, &buf, &cap);
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
			r = repl_s_wait(s);
			s->o->passes++;
			break;
		case PROTO_BYE:
			s->o->passes++;
			free(buf);
			return 0;
		default:
			r = repl_fail(s, -EBADMSG, "protocol: frame type %d "
			    "from the receiver", type);
		}
		if (r < 0)
			break;
	}
	free(buf);
	return r;
}
