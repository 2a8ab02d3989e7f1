/*
 * repl_pass.c - the receiver's passes: topics and configs, group
 * offsets, scheduled files, the changes a follower hears of
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


#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "repl.h"

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
	if ((r = proto_send(&s->pr)) < 0 ||
	    (r = repl_expect(s, PROTO_GROUPS)) < 0)
		return r;
	n = proto_get32(&s->pr);
	for (i = 0; i < n && proto_done(&s->pr) == 0; i++) {
		proto_getstr(&s->pr, group, sizeof(group));
		part = proto_get32(&s->pr);
		off = proto_get64(&s->pr);
		if (proto_done(&s->pr) < 0)
			break;
		if (!spool_topic_name_ok(group))
			return repl_fail(s, -EBADMSG, "protocol: group name");
		if (part >= t->cfg.partitions ||
		    spool_part_bounds(t, part, &pi) < 0)
			continue;
		if (off > pi.next)
			off = pi.next;
		if ((r = spool_group_store(t, group, part, off)) < 0)
			return repl_fail(s, r, "%s: group %s: %s", t->name,
			    group, strerror(-r));
	}
	if (proto_done(&s->pr) < 0)
		return repl_fail(s, -EBADMSG, "protocol: malformed GROUPS");
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
	    (r = repl_expect(s, PROTO_SCHED_FILE)) < 0)
		return r;
	d = proto_rest(&s->pr, &len);
	if (len == 0)
		return 0;	/* moved or cancelled meanwhile */
	if ((r = spool_sched_put(t, name, d, len, s->sync)) < 0)
		return repl_fail(s, r, "%s/scheduled/%s: %s", t->name, name,
		    r == -EBADMSG ? spool_errmsg(s->sp) : strerror(-r));
	return 0;
}

/*
 * sched_names - the names that end a SCHED frame, copied (the frames
 * that follow reuse the buffer) and sorted; *out to free with *np names
 * even on error
 */
static int
sched_names(struct sess *s, char ***out, uint32_t *np)
{
	char name[SPOOL_NAME_MAX + 1], **src;
	uint32_t n, i;

	*out = NULL;
	*np = 0;
	n = proto_get32(&s->pr);
	if (proto_done(&s->pr) < 0 || n > s->pr.len)
		return repl_fail(s, -EBADMSG, "protocol: malformed SCHED");
	if ((src = calloc(n + 1, sizeof(*src))) == NULL)
		return -ENOMEM;
	*out = src;
	for (i = 0; i < n; i++) {
		proto_getstr(&s->pr, name, sizeof(name));
		if (proto_done(&s->pr) < 0)
			return repl_fail(s, -EBADMSG, "protocol: malformed "
			    "SCHED");
		if ((src[i] = strdup(name)) == NULL)
			return -ENOMEM;
		*np = i + 1;
	}
	if (n > 0)
		qsort(src, n, sizeof(*src), name_cmp);
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
	char **src = NULL, **mine = NULL;
	struct spool_part_info pi;
	uint64_t *before = NULL, *after = NULL;
	uint32_t np, n = 0, i, p;
	size_t nmine = 0, k;
	int r = 0, behind = 0;

	proto_begin(&s->pr, PROTO_SCHED_REQ);
	proto_str(&s->pr, t->name);
	if ((r = proto_send(&s->pr)) < 0 ||
	    (r = repl_expect(s, PROTO_SCHED)) < 0)
		return r;
	np = proto_get32(&s->pr);
	if (np > SPOOL_PART_MAX)
		return repl_fail(s, -EBADMSG, "protocol: malformed SCHED");
	if ((before = calloc(np + 1, sizeof(*before))) == NULL ||
	    (after = calloc(np + 1, sizeof(*after))) == NULL) {
		r = -ENOMEM;
		goto out;
	}
	for (p = 0; p < np; p++) {
		before[p] = proto_get64(&s->pr);
		after[p] = proto_get64(&s->pr);
	}
	if ((r = sched_names(s, &src, &n)) < 0)
		goto out;
	if ((r = spool_sched_names(t, &mine, &nmine)) < 0) {
		r = repl_fail(s, r, "%s/scheduled: %s", t->name, strerror(-r));
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
			r = repl_r_part(s, t, p);
		if (r == 0 && (spool_part_bounds(t, p, &pi) < 0 ||
		    pi.next < after[p]))
			behind = 1;	/* a gap: keep what we have */
	}
	for (k = 0; k < nmine && r == 0 && !behind; k++)
		if ((n == 0 || bsearch(&mine[k], src, n, sizeof(*src),
		    name_cmp) == NULL) &&
		    (r = spool_sched_drop(t, mine[k], s->sync)) < 0)
			r = repl_fail(s, r, "%s/scheduled/%s: %s", t->name,
			    mine[k], strerror(-r));
	if (r == 0 && (n > 0 || nmine > 0) &&
	    (r = spool_sched_setfrom(t, before, np, s->sync)) < 0)
		r = repl_fail(s, r, "%s/scheduled: %s", t->name, strerror(-r));
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
void
repl_free_src(struct sess *s)
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
		return repl_fail(s, -EBADMSG, "%s: a config from the source "
		    "that does not parse", name);
	r = spool_topic_open(s->sp, name, &t);
	if (r == -ENOENT && !dry) {
		repl_report(s, 1, "%s: new topic", name);
		r = spool_topic_create(s->sp, name, &cfg);
		if (r == 0 || r == -EEXIST)
			r = spool_topic_open(s->sp, name, &t);
	} else if (r == -ENOENT) {
		repl_report(s, 0, "%s: would create the topic", name);
		t = NULL;
		r = 0;
	}
	if (r < 0)
		return repl_fail(s, r, "%s: %s", name, r == -EBADMSG ?
		    spool_errmsg(s->sp) : strerror(-r));
	/* each write of a topic's own files asks again: still a replica? */
	if (t != NULL && !dry && ((r = repl_still_replica(s)) < 0 ||
	    (r = repl_config_apply(s, t, text)) < 0))
		goto out;
	for (p = 0; p < cfg.partitions; p++) {
		if (t != NULL && p >= t->cfg.partitions)
			break;
		if ((r = repl_r_part(s, t, p)) < 0)
			goto out;
	}
	if (t != NULL && !dry && (r = repl_still_replica(s)) == 0 &&
	    (r = r_sched(s, t)) == 0 && (r = repl_still_replica(s)) == 0)
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

	repl_free_src(s);
	proto_begin(&s->pr, PROTO_LIST);
	if ((r = proto_send(&s->pr)) < 0)
		return r;
	for (;;) {
		/* every way out of the listing frees cfgs (at out) */
		if ((type = repl_expect(s, 0)) < 0) {
			r = type;
			goto out;
		}
		if (type == PROTO_LIST_END)
			break;
		if (type != PROTO_TOPIC) {
			r = repl_fail(s, -EBADMSG, "protocol: frame type %d in "
			    "the topic list", type);
			goto out;
		}
		proto_getstr(&s->pr, name, sizeof(name));
		proto_getstr(&s->pr, text, sizeof(text));
		if (proto_done(&s->pr) < 0 || !spool_topic_name_ok(name)) {
			r = repl_fail(s, -EBADMSG, "protocol: malformed TOPIC");
			goto out;
		}
		if (s->nsrc >= 1000000) {
			r = repl_fail(s, -EBADMSG, "protocol: too many topics");
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
	/* deletions, configs, groups and scheduled files: a replica's only */
	if ((r = repl_still_replica(s)) < 0)
		goto out;
	/* --delete: topics the source no longer has go here too */
	if ((s->flags & SPOOL_REPL_DELETE) &&
	    spool_topic_list(s->sp, &mine, &n) == 0) {
		for (i = 0; i < n; i++) {
			for (have = 0, k = 0; k < s->nsrc && !have; k++)
				have = strcmp(mine[i], s->src_topics[k]) == 0;
			if (!have && repl_want_topic(s, mine[i])) {
				if (s->flags & SPOOL_REPL_DRYRUN)
					repl_report(s, 0, "%s: would delete "
					    "the topic", mine[i]);
				else if (spool_topic_delete(s->sp,
				    mine[i]) == 0)
					repl_report(s, 0, "%s: deleted (gone "
					    "from the source)", mine[i]);
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
		return repl_fail(s, -EBADMSG, "protocol: malformed CHANGED");
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
		return repl_fail(s, -EBADMSG, "protocol: malformed CHANGED");
	}
	if ((r = repl_still_replica(s)) < 0) {
		free(ch);
		return r;
	}
	r = CHG_LIST;
	for (i = 0; i < n && r == CHG_LIST; i++) {
		if (t == NULL || strcmp(t->name, ch[i].topic) != 0) {
			spool_topic_close(t);
			t = NULL;
			if (!repl_want_topic(s, ch[i].topic) ||
			    spool_topic_open(s->sp, ch[i].topic, &t) < 0) {
				r = CHG_ALL;
				break;
			}
		}
		if ((ch[i].part == CH_GROUPS || ch[i].part == CH_SCHED) &&
		    (r = repl_still_replica(s)) < 0)
			break;
		if (ch[i].part == CH_GROUPS)
			r = r_groups(s, t);
		else if (ch[i].part == CH_SCHED)
			r = r_sched(s, t);
		else if (ch[i].part >= t->cfg.partitions)
			r = CHG_ALL;
		else
			r = repl_r_part(s, t, ch[i].part);
		if (r == 0)
			r = CHG_LIST;
	}
	spool_topic_close(t);
	free(ch);
	return r;
}

/*
 * r_missing - -t names a topic the source does not have: said after the
 * first pass (following: copied once it is made); a run ends in -ENOENT
 */
static int
r_missing(struct sess *s)
{
	size_t i, k, n = 0;
	int have, follow = (s->flags & SPOOL_REPL_FOLLOW) != 0;
	const char *first = NULL;

	for (i = 0; i < s->ntopics; i++) {
		for (have = 0, k = 0; k < s->nsrc && !have; k++)
			have = strcmp(s->topics[i], s->src_topics[k]) == 0;
		if (have)
			continue;
		if (follow)
			repl_report(s, 0, "%s: no such topic on the source "
			    "yet; copied once it is made", s->topics[i]);
		else if (n++ == 0)
			first = s->topics[i];
		else
			repl_report(s, 0, "%s: no such topic on the source",
			    s->topics[i]);
	}
	if (first == NULL)
		return 0;
	return repl_fail(s, -ENOENT, "%s: no such topic on the source%s",
	    first, n > 1 ? " (nor the others said above)" : "");
}

/* receiver - passes until done, or, following, until the pipe breaks */
int
repl_receiver(struct sess *s)
{
	int r;

	if ((r = repl_check_role(s)) < 0)
		return r;
	if (!(s->flags & SPOOL_REPL_DRYRUN) && s->peer_epoch != s->epoch) {
		/* the replica's epoch is its source's, for a promotion */
		if ((r = repl_set_epoch(s->sp, s->peer_epoch)) < 0)
			return repl_fail(s, r, "%s/epoch: %s", s->path,
			    strerror(-r));
		s->epoch = s->peer_epoch;
	}
	for (;;) {
		if ((r = r_pass(s)) < 0)
			return r;
		if (s->o->passes++ == 0 && (s->flags & SPOOL_REPL_FOLLOW))
			(void)r_missing(s);
		if (!(s->flags & SPOOL_REPL_FOLLOW)) {
			/* partitions stopped at damage: the session's end */
			if ((r = repl_stops(s)) < 0 || (r = r_missing(s)) < 0)
				return r;
			break;
		}
		/* what changed, until something only a whole pass takes in */
		do {
			proto_begin(&s->pr, PROTO_WAIT);
			if ((r = proto_send(&s->pr)) < 0 ||
			    (r = repl_expect(s, PROTO_CHANGED)) < 0)
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
