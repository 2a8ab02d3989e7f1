/*
 * consumer.c - a consumer group member that reads: group.c's membership
 * and offsets tied to a reader of the partitions the member owns
 *
 * What it guarantees is group.c's: one member at a time reads a
 * partition, a partition changes hands only after its owner committed,
 * delivery is at least once.  What it adds is the loop: between
 * messages, at most every SPOOL_GROUP_REFRESH_MS, it looks at who is
 * live and gives up or takes partitions.  It does not deliver: the
 * program acknowledges (spool_consumer_ack) what it has written out, and
 * only that is committed.
 */

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "spool_impl.h"

/*
 * The consumer: a group member and a reader of the partitions it owns.
 * It rebalances between messages, at most every SPOOL_GROUP_REFRESH_MS: partitions
 * it should give up are committed (after the caller's release callback
 * has flushed what it delivered) and dropped; partitions it should take
 * are read from their committed offset, or from the start position for
 * a group that never committed there.
 */
struct spool_consumer {
	struct spool_topic *t;
	struct spool_group *g;
	struct spool_reader *r;
	struct spool_consumer_opts o;
	uint64_t	*acked;		/* per partition: next offset, to commit */
	uint32_t	 nacked;
	int64_t		 refreshed;	/* coarse_ms() of the last rebalance */
};

/* coarse_ms - a monotonic clock good to a few ms, and cheap */
static int64_t
coarse_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* spool_consumer_open - join a group and get ready to read */
int
spool_consumer_open(struct spool_topic *t, const struct spool_consumer_opts *o,
    struct spool_consumer **cp)
{
	struct spool_reader_opts ro;
	struct spool_consumer *c;
	int r;

	if ((c = calloc(1, sizeof(*c))) == NULL)
		return -ENOMEM;
	c->t = t;
	c->o = *o;
	if ((r = spool_group_open(t, o->group, &c->g)) < 0) {
		free(c);
		return r;
	}
	memset(&ro, 0, sizeof(ro));
	ro.partition = SPOOL_PART_NONE;
	ro.start.kind = SPOOL_POS_BEGIN;
	ro.until = o->until;
	ro.follow = o->follow;
	ro.skip_damage = o->skip_damage;
	ro.warn = o->warn;
	ro.arg = o->arg;
	if ((r = spool_reader_open(t, &ro, &c->r)) < 0) {
		spool_consumer_close(c);
		return r;
	}
	c->refreshed = coarse_ms() - SPOOL_GROUP_REFRESH_MS;
	*cp = c;
	return 0;
}

/* acked_grow - room for partition part in the acked array */
static int
acked_grow(struct spool_consumer *c, uint32_t n)
{
	uint64_t *na;
	uint32_t i;

	if (n <= c->nacked)
		return 0;
	if ((na = realloc(c->acked, n * sizeof(*na))) == NULL)
		return -ENOMEM;
	for (i = c->nacked; i < n; i++)
		na[i] = UINT64_MAX;
	c->acked = na;
	c->nacked = n;
	return 0;
}

/* spool_consumer_ack - part is delivered up to off (inclusive) */
int
spool_consumer_ack(struct spool_consumer *c, uint32_t part, uint64_t off)
{
	int r;

	if (part >= c->nacked && (r = acked_grow(c, part + 1)) < 0)
		return r;
	c->acked[part] = off + 1;
	return 0;
}

/* spool_consumer_commit - commit what was acked */
int
spool_consumer_commit(struct spool_consumer *c)
{
	uint32_t i;
	int r;

	for (i = 0; i < c->nacked; i++) {
		if (c->acked[i] == UINT64_MAX)
			continue;
		if ((r = spool_group_commit(c->g, i, c->acked[i])) < 0)
			return r;
		c->acked[i] = UINT64_MAX;
	}
	return 0;
}

/* say_restart - warn that a damaged offset file restarts partition p */
static void
say_restart(struct spool_consumer *c, uint32_t p, uint64_t off)
{
	char msg[SPOOL_ERRMSG_MAX + 96];

	if (c->o.warn == NULL)
		return;
	snprintf(msg, sizeof(msg), "%s; partition %" PRIu32 " starts again "
	    "at offset %" PRIu64 " (the group's start position)",
	    spool_errmsg(c->t->sp), p, off);
	c->o.warn(c->o.arg, msg);
}

/* rebalance - give up and take partitions as membership says */
static int
rebalance(struct spool_consumer *c)
{
	struct spool_pos start;
	uint64_t off;
	uint32_t p;
	int r, flushed = 0, damaged;

	if ((r = spool_group_refresh(c->g)) < 0)
		return r;
	for (p = 0; p < spool_group_nparts(c->g); p++) {
		int want = spool_group_wants(c->g, p);
		int has = spool_group_holds(c->g, p);

		if (has && !want) {
			/* what was delivered is committed before letting go */
			if (!flushed && c->o.release != NULL)
				c->o.release(c->o.arg);
			flushed = 1;
			if ((r = spool_consumer_commit(c)) < 0)
				return r;
			(void)spool_reader_drop(c->r, p);
			spool_group_give(c->g, p);
		} else if (!has && want) {
			if ((r = spool_group_take(c->g, p)) == -EAGAIN)
				continue;	/* its owner is finishing */
			if (r < 0)
				return r;
			r = spool_group_committed(c->g, p, &off);
			damaged = r == -EBADMSG;
			if (r == 0) {
				start.kind = SPOOL_POS_OFFSET;
				start.value = (int64_t)off;
			} else if (r == -ENOENT || damaged)
				start = c->o.start;
			else
				return r;
			if ((r = spool_reader_add(c->r, p, &start)) < 0)
				return r;
			/* at least once allows redelivery, never silence */
			if (damaged && (r = spool_reader_position(c->r, p,
			    &off)) == 0)
				say_restart(c, p, off);
			/*
			 * A group new to the partition keeps the place it
			 * started at (-o end stays the end it was), even if
			 * nothing comes before it exits.
			 */
			if (start.kind != SPOOL_POS_OFFSET &&
			    (r = spool_reader_position(c->r, p, &off)) == 0)
				r = spool_group_commit(c->g, p, off);
			if (r < 0)
				return r;
		}
	}
	return 0;
}

/*
 * spool_consumer_next - the next message of the partitions this member
 * owns: 1, 0 when there is nothing now, -EBADMSG after skipping damage
 */
int
spool_consumer_next(struct spool_consumer *c, struct spool_msg *m)
{
	int64_t now;
	int r;

	/* the coarse clock: a few nanoseconds, for every message */
	if ((now = coarse_ms()) - c->refreshed >= SPOOL_GROUP_REFRESH_MS) {
		c->refreshed = now;
		if ((r = rebalance(c)) < 0)
			return r;
	}
	return spool_reader_next(c->r, m);
}

/*
 * spool_consumer_copy - spool_reader_copy for a member: the rest of the
 * batch spool_consumer_next's last message came from
 */
size_t
spool_consumer_copy(struct spool_consumer *c, void *out, size_t cap,
    const void *delim, size_t dlen, size_t big, size_t max, size_t *n,
    struct spool_msg *last)
{
	return spool_reader_copy(c->r, out, cap, delim, dlen, big, max, n,
	    last);
}

/*
 * spool_consumer_wait - wait for new messages or a rebalance, up to
 * timeout_ms (<0: no limit): 0, -ETIMEDOUT, -EINTR
 */
int
spool_consumer_wait(struct spool_consumer *c, int timeout_ms)
{
	int64_t until = timeout_ms < 0 ? INT64_MAX :
	    spool_now_ms() + timeout_ms;
	int64_t left;
	int r;

	for (;;) {
		left = until - spool_now_ms();
		if (left <= 0)
			return -ETIMEDOUT;
		r = spool_reader_wait(c->r, left < SPOOL_GROUP_REFRESH_MS ? (int)left :
		    SPOOL_GROUP_REFRESH_MS);
		if (r != -ETIMEDOUT)
			return r;
		/* no event: membership may still have changed */
		if (coarse_ms() - c->refreshed >= SPOOL_GROUP_REFRESH_MS)
			return 0;
	}
}

/* spool_consumer_done - the --until position is reached everywhere */
int
spool_consumer_done(const struct spool_consumer *c)
{
	return spool_reader_done(c->r);
}

/* spool_consumer_pause - hold a partition back while its message runs */
int
spool_consumer_pause(struct spool_consumer *c, uint32_t part, int on)
{
	return spool_reader_pause(c->r, part, on);
}

/*
 * spool_consumer_sync - commit what was acked and make the commits
 * durable (unless SPOOL_NOSYNC): a clean exit calls it before closing
 */
int
spool_consumer_sync(struct spool_consumer *c)
{
	int r;

	if ((r = spool_consumer_commit(c)) < 0)
		return r;
	return spool_group_sync(c->g);
}

/* spool_consumer_close - leave the group; see spool_consumer_sync */
void
spool_consumer_close(struct spool_consumer *c)
{
	if (c == NULL)
		return;
	spool_reader_close(c->r);
	spool_group_close(c->g);
	free(c->acked);
	free(c);
}
