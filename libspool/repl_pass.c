/*
 * repl_pass.c - the receiver's passes: topics and configs, group
 * offsets, scheduled files, the changes a follower hears of
 *
 * The contract of replication (all repl_*.c files) is at the top of
 * repl_send.c.  Nothing here trusts the peer; it never prints
 * (opts.report does).
 */

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "repl.h"

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
	int r, hold, dry = (s->flags & SPOOL_REPL_DRYRUN) != 0;

	snprintf(copy, sizeof(copy), "%s", text);
	spool_config_default(&cfg);
	if (spool_config_parse(&cfg, copy) < 0 || cfg.partitions == 0 ||
	    cfg.partitions > SPOOL_PART_MAX)
		return repl_fail(s, -EBADMSG, "%s: a config from the source "
		    "that does not parse", name);
	/* the topic and its config: written holding the role lock */
	if ((r = repl_hold(s, &hold)) < 0)
		return r;
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
		r = repl_fail(s, r, "%s: %s", name, r == -EBADMSG ?
		    spool_errmsg(s->sp) : strerror(-r));
	else if (t != NULL && !dry)
		r = repl_config_apply(s, t, text);
	repl_let_go(hold);
	/* each partition's writes are checked under its own lock */
	for (p = 0; r == 0 && p < cfg.partitions; p++) {
		if (t != NULL && p >= t->cfg.partitions)
			break;
		r = repl_r_part(s, t, p);
	}
	if (r == 0 && t != NULL && !dry && (r = repl_r_sched(s, t)) == 0)
		r = repl_r_groups(s, t);
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
	int type, r = 0, have, hold;

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
	if ((r = repl_hold(s, &hold)) < 0)
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
	repl_let_go(hold);
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
		if (ch[i].part == CH_GROUPS)
			r = repl_r_groups(s, t);
		else if (ch[i].part == CH_SCHED)
			r = repl_r_sched(s, t);
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
