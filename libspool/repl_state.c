/*
 * repl_state.c - the receiver's copy of what a topic holds beside its
 * partitions: its consumer groups' offsets and its scheduled files
 *
 * A group offset is carried only as far as the replica's partition
 * goes; a scheduled file the source has is copied, one it no longer has
 * is removed once the batches it became are here (the replica never
 * moves one; a promotion settles them, sched_repl.c).  No partition
 * lock covers these writes, so each is made holding the role lock
 * shared, the spool still the sender's replica (repl_hold): a promotion
 * that comes meanwhile waits for it, and one that came before stops it.
 * It never waits on the peer while it holds the lock.  The contract of
 * replication is at the top of repl_send.c.
 */

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "repl.h"

/*
 * repl_r_groups - carry a topic's group offsets, never past what we
 * hold
 */
int
repl_r_groups(struct sess *s, struct spool_topic *t)
{
	char group[SPOOL_NAME_MAX + 1];
	struct spool_part_info pi;
	uint32_t n, i, part;
	uint64_t off;
	int r, hold;

	proto_begin(&s->pr, PROTO_GROUPS_REQ);
	proto_str(&s->pr, t->name);
	if ((r = proto_send(&s->pr)) < 0 ||
	    (r = repl_expect(s, PROTO_GROUPS)) < 0)
		return r;
	/* the whole frame is here: nothing below waits on the peer */
	if ((r = repl_hold(s, &hold)) < 0)
		return r;
	n = proto_get32(&s->pr);
	for (i = 0; i < n && proto_done(&s->pr) == 0; i++) {
		proto_getstr(&s->pr, group, sizeof(group));
		part = proto_get32(&s->pr);
		off = proto_get64(&s->pr);
		if (proto_done(&s->pr) < 0)
			break;
		if (!spool_topic_name_ok(group)) {
			r = repl_fail(s, -EBADMSG, "protocol: group name");
			goto out;
		}
		if (part >= t->cfg.partitions ||
		    spool_part_bounds(t, part, &pi) < 0)
			continue;
		if (off > pi.next)
			off = pi.next;
		if ((r = spool_group_store(t, group, part, off)) < 0) {
			r = repl_fail(s, r, "%s: group %s: %s", t->name,
			    group, strerror(-r));
			goto out;
		}
	}
	if (proto_done(&s->pr) < 0)
		r = repl_fail(s, -EBADMSG, "protocol: malformed GROUPS");
out:
	repl_let_go(hold);
	return r;
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
	int r, hold;

	proto_begin(&s->pr, PROTO_SCHED_GET);
	proto_str(&s->pr, t->name);
	proto_str(&s->pr, name);
	if ((r = proto_send(&s->pr)) < 0 ||
	    (r = repl_expect(s, PROTO_SCHED_FILE)) < 0)
		return r;
	d = proto_rest(&s->pr, &len);
	if (len == 0)
		return 0;	/* moved or cancelled meanwhile */
	if ((r = repl_hold(s, &hold)) < 0)
		return r;
	if ((r = spool_sched_put(t, name, d, len, s->sync)) < 0)
		r = repl_fail(s, r, "%s/scheduled/%s: %s", t->name, name,
		    r == -EBADMSG ? spool_errmsg(s->sp) : strerror(-r));
	repl_let_go(hold);
	return r;
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
 * repl_r_sched - make the replica's scheduled files the source's: the
 * new ones copied, the partitions brought up to where the source was
 * when it listed them, then the ones it no longer has removed (their
 * batches are here by then).  The replica never moves them; a promotion
 * does.
 */
int
repl_r_sched(struct sess *s, struct spool_topic *t)
{
	char **src = NULL, **mine = NULL;
	struct spool_part_info pi;
	uint64_t *before = NULL, *after = NULL;
	uint32_t np, n = 0, i, p;
	size_t nmine = 0, k;
	int r = 0, behind = 0, hold = -1;

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
	/* the partitions are caught up: no more waiting on the peer */
	if (r == 0)
		r = repl_hold(s, &hold);
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
	repl_let_go(hold);
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
