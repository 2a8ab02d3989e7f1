/*
 * position.c - where a reader starts and stops in a partition: turning
 * a position (beginning, end, offset, from the end, time) into an
 * offset, and setting a partition of a reader (reader.c) at it
 *
 * A time is found by walking the batch headers with the batch cursor
 * and decoding only batches that may hold it.  An offset no longer
 * retained is said (a warning) and the first retained one taken.  This
 * module reads, never writes or locks.
 */

#include <sys/stat.h>
#include <sys/types.h>

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "spool_impl.h"

/*
 * time_offset - the offset of the first message of partition p with a
 * time at or after ts (the partition's next offset if none)
 */
static int
time_offset(struct spool_reader *r, struct spool_rpart *p, int64_t ts,
    uint64_t next, uint64_t *off)
{
	struct spool_cursor c;
	struct spool_body b;
	struct spool_msg m;
	uint64_t seen = 0;
	char why[64];
	int s;

	*off = next;
	memset(&b, 0, sizeof(b));
	if ((s = spool_cursor_open(&c, r->io, p->partfd)) < 0)
		return s;
	/*
	 * damage, holes and newer batches are the read's to report; past
	 * a bad header the lookup goes on where the read will
	 */
	while ((s = spool_cursor_next(&c)) > 0 || s == -EPROTO) {
		if (s == SPOOL_CUR_BAD) {
			if ((s = spool_cursor_resync(&c, seen)) < 0)
				break;
			continue;
		}
		if (s == SPOOL_CUR_BATCH && c.h.type != SPOOL_TYPE_END)
			seen = c.h.base_offset + c.h.count;
		if (s != SPOOL_CUR_BATCH || c.h.type != SPOOL_TYPE_DATA ||
		    c.h.max_ts < ts)
			continue;	/* skippable, or too early */
		if ((s = spool_cursor_body(&c)) < 0 && s != -EBADMSG)
			break;
		if (s != 1 || spool_body_open(&b, &c.h, c.body, why,
		    sizeof(why)) < 0)
			continue;
		while (spool_body_next(&b, &m) == 1)
			if (m.ts >= ts) {
				*off = m.offset;
				s = 0;
				goto out;
			}
	}
out:
	spool_body_free(&b);
	spool_cursor_close(&c);
	return s;
}

/* resolve - turn a position into an offset of partition p */
static int
resolve(struct spool_reader *r, struct spool_rpart *p, const struct spool_pos *pos,
    const struct spool_part_info *pi, int start, uint64_t *off)
{
	uint64_t v = (uint64_t)pos->value;

	switch (pos->kind) {
	case SPOOL_POS_BEGIN:
		*off = pi->first;
		break;
	case SPOOL_POS_END:
		*off = pi->next;
		break;
	case SPOOL_POS_OFFSET:
		*off = v;
		if (start && v < pi->first) {
			spool_damage_warn(r, "partition %" PRIu32 ": offset %" PRIu64
			    " is no longer retained; starting at %" PRIu64,
			    p->id, v, pi->first);
			*off = pi->first;
		}
		break;
	case SPOOL_POS_FROM_END:
		*off = pi->next > v ? pi->next - v : 0;
		if (*off < pi->first)
			*off = pi->first;
		break;
	case SPOOL_POS_TIME:
		return time_offset(r, p, pos->value, pi->next, off);
	case SPOOL_POS_NONE:
		*off = UINT64_MAX;
		break;
	}
	return 0;
}

/* spool_position_start - set up partition p at position start */
int
spool_position_start(struct spool_reader *r, struct spool_rpart *p,
    const struct spool_pos *start)
{
	struct spool_part_info pi;
	struct spool_seglist l;
	struct stat st;
	char name[SPOOL_SEGNAME_LEN + 16];
	uint64_t off, expect = SPOOL_EXPECT_ANY;
	off_t pos = 0;
	int s, i, idx;

	/* one listing for the bounds and the start */
	if ((s = spool_seg_list(p->partfd, &l)) < 0)
		return s;
	memset(&pi, 0, sizeof(pi));
	if ((s = spool_part_ends(r->io, p->partfd, &l, &pi)) < 0 ||
	    (s = resolve(r, p, start, &pi, 1, &off)) < 0) {
		spool_seg_free(&l);
		return s;
	}
	p->until = UINT64_MAX;
	p->until_ts = INT64_MAX;
	if (r->o.until.kind == SPOOL_POS_TIME)
		p->until_ts = r->o.until.value;
	else if ((s = resolve(r, p, &r->o.until, &pi, 0, &p->until)) < 0) {
		spool_seg_free(&l);
		return s;
	}
	if (off >= p->until)
		p->done = 1;
	if (l.n == 0) {
		spool_seg_free(&l);
		return -ENOENT;
	}
	if ((i = spool_seg_find(&l, off)) < 0)
		i = 0;
	spool_seg_name(name, l.base[i], SPOOL_IDX_SUFFIX);
	idx = openat(p->partfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	s = spool_walk_seg(r, p, l.base[i], 0);
	if (s == 0 && fstat(p->logfd, &st) == 0)
		s = spool_cursor_find(r->io, p->logfd, idx, l.base[i], off,
		    st.st_size, &pos, &expect);
	if (idx >= 0)
		close(idx);
	spool_seg_free(&l);
	if (s < 0)
		return s;
	spool_walk_reset(r, p, pos);
	p->next = off;
	p->expect = expect;
	return 0;
}
