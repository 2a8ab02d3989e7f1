/*
 * compact_state.c - the state file "compaction" of a partition
 *
 * Owns what compaction remembers of a partition between runs: its clean
 * point, the bytes from there on (what was written since is the dirty
 * share that decides when gc compacts again), when it ran, what it
 * removed, the oldest tombstone it kept, and the generation.  The
 * generation changes before the first segment of a run is replaced and
 * again at its end (or, the run killed, at the next one's):
 * mq-replicate compares a replica's segments whenever it is not the one
 * the replica recorded.  The file is a hint: a damaged one costs one
 * full compaction, nothing more.
 */

#include <sys/random.h>
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

#define STATE_NAME	"compaction"

/*
 * spool_compact_state_load - the partition's compaction state; zeros
 * when it has none
 */
void
spool_compact_state_load(int pfd, struct cstate *st)
{
	char text[512], *line, *save = NULL;
	unsigned long long v;
	long long sv;

	memset(st, 0, sizeof(*st));
	if (spool_read_file(pfd, STATE_NAME, text, sizeof(text)) < 0)
		return;
	/* a hint: a damaged file costs one full compaction, nothing more */
	for (line = strtok_r(text, "\n", &save); line != NULL;
	    line = strtok_r(NULL, "\n", &save)) {
		if (sscanf(line, "clean=%llu", &v) == 1)
			st->clean = v;
		else if (sscanf(line, "bytes=%llu", &v) == 1)
			st->bytes = v;
		else if (sscanf(line, "last=%lld", &sv) == 1)
			st->last = sv;
		else if (sscanf(line, "removed=%llu", &v) == 1)
			st->removed = v;
		else if (sscanf(line, "tombstone=%lld", &sv) == 1)
			st->tomb_ts = sv;
		else if (sscanf(line, "generation=%llu", &v) == 1)
			st->gen = v;
		else if (sscanf(line, "pending=%llu", &v) == 1)
			st->pending = v != 0;
		else if (sscanf(line, "tail=%llu", &v) == 1) {
			st->tail = v;
			st->hastail = 1;
		}
	}
}

/* state_save - replace the state file */
static int
state_save(struct spool_topic *t, int pfd, const struct cstate *st)
{
	char text[512];
	int n;

	n = snprintf(text, sizeof(text), "clean=%" PRIu64 "\nbytes=%" PRIu64
	    "\nlast=%" PRId64 "\nremoved=%" PRIu64 "\ntombstone=%" PRId64
	    "\ngeneration=%" PRIu64 "\npending=%d\ntail=%" PRIu64 "\n",
	    st->clean, st->bytes, st->last, st->removed, st->tomb_ts, st->gen,
	    st->pending, st->tail);
	return spool_write_file(pfd, STATE_NAME, text, n, !t->sp->nosync);
}

/*
 * tail_bytes - the bytes of the segments that hold offsets from clean on
 * (the segment clean is in, and every later one)
 */
static uint64_t
tail_bytes(int pfd, uint64_t clean)
{
	char name[SPOOL_SEGNAME_LEN + 16];
	struct spool_seglist l;
	struct stat st;
	uint64_t sum = 0;
	size_t i;

	if (spool_seg_list(pfd, &l) < 0)
		return 0;
	for (i = 0; i < l.n; i++) {
		if (i + 1 < l.n && l.base[i + 1] <= clean)
			continue;
		spool_seg_name(name, l.base[i], SPOOL_LOG_SUFFIX);
		if (fstatat(pfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0)
			sum += (uint64_t)st.st_size;
	}
	spool_seg_free(&l);
	return sum;
}

/*
 * spool_compact_state_dirty - the bytes written since the last compaction:
 * what the segments from its clean point on grew by.  Not the partition's
 * growth, which retention (compact,delete) cancels out at its cap.
 */
uint64_t
spool_compact_state_dirty(int pfd, const struct spool_part_info *pi,
    const struct cstate *st)
{
	uint64_t tail;

	if (!st->hastail)	/* a state file of an older mq */
		return pi->bytes > st->bytes ? pi->bytes - st->bytes : 0;
	if (st->clean < pi->first || st->clean > pi->next)
		return pi->bytes;	/* retention went past it: all new */
	tail = tail_bytes(pfd, st->clean);
	return tail > st->tail ? tail - st->tail : 0;
}

/* rand_gen - a new generation: random, never 0 */
static uint64_t
rand_gen(void)
{
	uint64_t g = 0;

	if (getrandom(&g, sizeof(g), GRND_NONBLOCK) != sizeof(g))
		g = (uint64_t)spool_now_ms() * 2654435761u ^ (uint64_t)getpid();
	return g ? g : 1;
}

/*
 * spool_compact_state_newgen - before the first segment of a run is
 * replaced: a new generation, and the run marked pending until its end
 * gives another
 */
int
spool_compact_state_newgen(struct cctx *c)
{
	c->st->gen = rand_gen();
	c->st->pending = 1;
	c->newgen = 1;
	return state_save(c->t, c->pfd, c->st);
}

/*
 * spool_compact_state_done - record the end of a run: its clean point
 * (not past pending, whose records are looked at again), the partition's
 * bytes, what it removed, and a new generation if it replaced segments
 */
int
spool_compact_state_done(struct cctx *c, uint64_t pending)
{
	struct spool_part_info pi;
	struct cstate *st = c->st;
	int r;

	if ((r = spool_part_bounds(c->t, c->part, &pi)) < 0)
		return r;
	st->clean = c->active < c->lag_at ? c->active : c->lag_at;
	if (pending < st->clean)
		st->clean = pending;	/* what it kept is looked at again */
	st->bytes = pi.bytes;
	st->last = c->now;
	st->removed = c->removed;
	st->tomb_ts = c->tomb_ts;
	if (c->newgen || st->pending)
		st->gen = rand_gen();	/* every replacement of it is done */
	st->pending = 0;
	st->tail = tail_bytes(c->pfd, st->clean);
	st->hastail = 1;
	if ((r = state_save(c->t, c->pfd, st)) < 0)
		return r;
	return 0;
}
