/*
 * compact.c - compaction: keep the newest message of each key
 *
 * For a topic with cleanup.policy=compact (or compact,delete), gc
 * (spool_topic_gc, which holds the partition's gc lock) calls
 * spool_compact_part for each partition.  It owns the rewriting of
 * sealed segments and the small state file "compaction" beside them.
 * It never touches the newest (active) segment, which writers append
 * to, and takes no writer lock: sealed segments do not change under it.
 *
 * A pass maps key hash -> newest offset over the partition from the
 * clean point (where the last complete compaction's map began to be
 * needed) to its end, as long as the map fits compaction.map.bytes;
 * then every sealed segment in which something goes is rewritten, oldest
 * first, keeping a message unless (mq-spool(5), Compaction) a newer
 * message of its key is in the map, or it is a tombstone (key, empty
 * payload) older than delete.retention.ms.  Messages from the first one
 * younger than min.compaction.lag.ms on, and from where the map filled
 * on, stay; a full map means another pass from there.  Kept records keep
 * their offsets, times, keys, IDs and headers; a run of them is one new
 * batch, flagged SPOOL_BF_COMPACTED when offsets were removed before it.
 * A batch that loses nothing is copied byte for byte.
 *
 * A rewritten segment goes to NAME.log.compacting, is synced, and is
 * renamed over NAME.log (its index likewise, the old index removed
 * first), then the directory is synced: a reader that has the old file
 * open reads on in it, a new one gets the new file, and a crash leaves
 * one or the other, never both.  The segment keeps its name and END
 * batch, so segments still meet without a gap; those left with the END
 * batch alone are deleted while no older segment holds a message (the
 * gap below the first segment is legal, as after retention).  Segments
 * are done oldest first, so that a crash never leaves a tombstone
 * removed while an older message of its key stays.  What a killed gc left (*.compacting) goes
 * at the next gc of the partition.  The state file's generation
 * changes before the first rename of a run and again at its end (or,
 * the run killed, at the next one's): mq-replicate compares a replica's
 * segments whenever it is not the one the replica recorded.
 *
 * This file drives a run (spool_compact_part: whether one is due, the
 * passes, the segments each one rewrites) and answers describe and
 * mq-replicate (spool_compact_info, spool_compact_gen).  The key map and
 * the rule of what goes are compact_keys.c, the pass over one segment
 * compact_seg.c, putting its result in place compact_install.c, the
 * state file and its generation compact_state.c (compact.h between
 * them).
 */

#include <sys/stat.h>
#include <sys/types.h>

#include <fcntl.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "spool_impl.h"
#include "compact.h"

/*
 * sealed - compact the sealed segments below c->protect: how many.  A
 * segment below the clean point is looked at first and left alone when
 * it loses nothing; one above it has new messages, and nearly always
 * loses some, so it is written at once (and the copy dropped if not).
 */
static int
sealed(struct cctx *c, const struct spool_seglist *l, uint64_t clean)
{
	char name[SPOOL_SEGNAME_LEN + 16];
	struct stat st;
	int64_t n;
	size_t i;
	int fd, r = 0, done = 0;

	for (i = 0; i + 1 < l->n && l->base[i] < c->protect; i++) {
		spool_seg_name(name, l->base[i], SPOOL_LOG_SUFFIX);
		fd = openat(c->pfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
		if (fd == -1) {
			if (errno == ENOENT)
				continue;
			return -errno;
		}
		if (fstat(fd, &st) == -1)
			r = -errno;
		else if (i + 1 < l->n && l->base[i + 1] <= clean &&
		    (n = spool_compact_seg_pass(c, fd, l->base[i], st.st_size,
		    0)) <= 0)
			r = (int)n;	/* clean, and stays so: not written */
		else if ((n = spool_compact_install_rewrite(c, fd, l->base[i],
		    st.st_size)) > 0) {
			c->removed += n;
			done++;
		} else
			r = (int)n;
		close(fd);
		if (r < 0)
			return r;
	}
	return done;
}

/* ctx_init - a context for compacting part, whose segments are l */
static void
ctx_init(struct cctx *c, struct spool_topic *t, uint32_t part, int pfd,
    int64_t now, struct cstate *st, const struct spool_seglist *l)
{
	memset(c, 0, sizeof(*c));
	c->t = t;
	c->part = part;
	c->pfd = pfd;
	c->ofd = -1;
	c->now = now;
	c->lag_at = UINT64_MAX;
	c->st = st;
	c->active = l->n > 0 ? l->base[l->n - 1] : 0;
	spool_batch_init(&c->b);
	spool_compact_keys_init(&c->map, t->cfg.compaction_map_bytes);
}

/* ctx_free - free what a context holds */
static void
ctx_free(struct cctx *c)
{
	spool_batch_free(&c->b);
	spool_body_free(&c->body);
	free(c->map.s);
	free(c->in);
	free(c->keep);
	free(c->out);
	free(c->ix);
}

/*
 * spool_compact_part - compact partition part (directory pfd, whose gc
 * lock the caller holds) if enough was written since the last time:
 * the number of segments rewritten, or -errno (-EBADMSG: damage, which
 * is left for verify)
 */
int
spool_compact_part(struct spool_topic *t, uint32_t part, int pfd,
    int64_t now, void (*report)(void *, const char *), void *arg)
{
	struct spool_part_info pi;
	struct spool_seglist l;
	struct cstate st;
	struct cctx c;
	char msg[256];
	uint64_t from, stop, dirty, pending;
	int r, n, passes = 0, done = 0;

	spool_compact_install_clean(pfd);
	if ((r = spool_part_bounds(t, part, &pi)) < 0)
		return r;
	spool_compact_state_load(pfd, &st);
	dirty = spool_compact_state_dirty(pfd, &pi, &st);
	/* cheap: nothing read but the state and the newest segment's tail */
	if (pi.segments < 2 || (!st.pending && (dirty == 0 ||
	    (double)dirty < (double)pi.bytes *
	    t->cfg.min_cleanable_dirty_ratio) &&
	    t->cfg.min_cleanable_dirty_ratio > 0 &&
	    (st.tomb_ts == 0 ||
	    !spool_compact_keys_expired(t, now, st.tomb_ts))))
		return 0;
	if ((r = spool_seg_list(pfd, &l)) < 0)
		return r;
	ctx_init(&c, t, part, pfd, now, &st, &l);
	if ((c.io = spool_get_io(t->sp)) == NULL) {
		r = -ENOMEM;
		goto out;
	}
	/* a pending send's retry looks for its records from its start on */
	if ((r = spool_dedup_pending_from(t, part, &pending)) < 0)
		goto out;
	/* below the clean point each key has one message at most */
	from = st.clean >= pi.first && st.clean <= pi.next ? st.clean :
	    pi.first;
	for (;;) {
		passes++;
		if ((r = spool_compact_keys_map(&c, from, &stop)) < 0)
			goto out;
		c.protect = stop < c.lag_at ? stop : c.lag_at;
		if (pending < c.protect)
			c.protect = pending;
		if ((r = n = sealed(&c, &l, st.clean)) < 0)
			goto out;
		done += n;
		if (stop == UINT64_MAX)
			break;
		from = stop;	/* the map was full: go on from there */
	}
	spool_seg_free(&l);
	if ((r = spool_compact_install_drop_empty(&c, report, arg)) < 0)
		goto out;
	if ((r = spool_compact_state_done(&c, pending)) < 0)
		goto out;
	if (report != NULL) {
		snprintf(msg, sizeof(msg), "%s/%" PRIu32 ": compacted: %" PRIu64
		    " messages removed, %d segments rewritten, %d pass%s",
		    t->name, part, c.removed, done, passes,
		    passes == 1 ? "" : "es");
		report(arg, msg);
	}
	r = done;
out:
	spool_seg_free(&l);
	ctx_free(&c);
	return r;
}

/*
 * spool_compact_gen - the partition's compaction generation: a random
 * value that changes before any segment of it is rewritten (0: never)
 */
uint64_t
spool_compact_gen(int pfd)
{
	struct cstate st;

	spool_compact_state_load(pfd, &st);
	return st.gen;
}

/*
 * spool_compact_info - what describe says of a partition's compaction:
 * bytes written since it last ran and their share, when it ran
 */
int
spool_compact_info(struct spool_topic *t, uint32_t part,
    struct spool_compact_info *ci)
{
	struct spool_part_info pi;
	struct cstate st;
	int pfd, r;

	memset(ci, 0, sizeof(*ci));
	if ((pfd = spool_part_open(t, part)) < 0)
		return pfd;
	r = spool_part_bounds(t, part, &pi);
	spool_compact_state_load(pfd, &st);
	if (r == 0)
		ci->dirty_bytes = spool_compact_state_dirty(pfd, &pi, &st);
	close(pfd);
	if (r < 0)
		return r;
	ci->dirty_ratio = pi.bytes ? (double)ci->dirty_bytes / pi.bytes : 0;
	ci->last_ms = st.last;
	ci->removed = st.removed;
	return 0;
}
