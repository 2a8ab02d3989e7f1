/*
 * reader.c - reading a topic: the partitions read, and their messages
 *
 * A reader walks each partition from a start position (position.c),
 * a batch at a time (walk.c), taking the partitions in turn, and hands
 * out one message per spool_reader_next call (pointers valid until the
 * next call); spool_reader_copy then copies the payloads of the rest of
 * that message's batch at once, for a reader that prints nothing else.
 * It takes no lock and changes nothing on disk (but see walk.c on
 * transactions).  It owns the reader object: the partitions it reads,
 * added and dropped as a consumer group member takes and gives them,
 * paused, and their inotify watches.
 *
 * Following uses inotify on the partition directories (appends, new
 * segments) and the topic directory (a config rename may add
 * partitions), never polling; follow.c waits on them.  Watches are set
 * up before the first read, so nothing written after a read can be
 * missed.
 *
 * It does not read or check batches (walk.c) or resolve positions
 * (position.c).
 */

#include <sys/file.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <sys/types.h>

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "spool_impl.h"

/*
 * part_next - the next message of one partition: 1, 0 when there is
 * none now, TURN when a batch ended (the next partition's turn), <0
 */
#define TURN	2
static int
part_next(struct spool_reader *r, struct spool_rpart *p, struct spool_msg *m)
{
	int s;

	while (!p->done && !p->paused) {
		if (p->next >= p->until) {
			p->done = 1;	/* everything before --until given out */
			break;
		}
		if (!p->inbody) {
			if ((s = spool_walk_next(r, p)) <= 0)
				return s;
		}
		s = spool_body_next(&p->body, m);
		if (s == 0) {
			p->inbody = 0;
			return TURN;
		}
		if (s == -EPROTO) {
			p->inbody = 0;
			return spool_damage_newer(r, p, p->bpos, "record attributes of a "
			    "newer format");
		}
		if (s < 0) {
			p->inbody = 0;
			return spool_damage_skip(r, p, p->filepos + p->at,
			    "records do not match the batch header");
		}
		if (m->offset < p->next)
			continue;
		if (m->offset >= p->until || m->ts >= p->until_ts) {
			p->done = 1;
			p->inbody = 0;
			return 0;
		}
		p->next = m->offset + 1;
		m->partition = p->id;
		return 1;
	}
	return 0;
}

/*
 * spool_reader_next - the next message: 1 and *m, 0 when every
 * partition is read to its end (for now), -EBADMSG after damage was
 * skipped or where a partition stopped at a hole, -EPROTO where a
 * partition stopped at a batch of a newer format (spool_errmsg says
 * where; call again to go on with the rest), other -errno
 */
int
spool_reader_next(struct spool_reader *r, struct spool_msg *m)
{
	struct spool_rpart *p;
	int s;

	if (r->n == 0)
		return 0;
	while (r->idle < r->n) {
		p = &r->parts[r->cur];
		s = part_next(r, p, m);
		if (s == 1) {
			r->idle = 0;
			return 1;
		}
		if (s < 0 && s != -EBADMSG)
			return s;	/* -EPROTO too: its partition stopped */
		/* a batch ended, or nothing there (or held back): the next */
		r->cur = (r->cur + 1) % r->n;
		if (s == 0)
			r->idle++;
		else
			r->idle = 0;
		if (s == -EBADMSG)
			return s;
	}
	r->idle = 0;
	return 0;
}

/*
 * spool_reader_copy - after spool_reader_next gave a message, the
 * payloads of those after it in the same batch, each followed by delim,
 * copied into out (at most cap bytes, at most max messages, none of big
 * bytes or more): the bulk path of a reader whose output is payloads
 * alone.  Returns the bytes written, *n messages, the last of them at
 * *last; with none, the next message is spool_reader_next's.
 */
size_t
spool_reader_copy(struct spool_reader *r, void *out, size_t cap,
    const void *delim, size_t dlen, size_t big, size_t max, size_t *n,
    struct spool_msg *last)
{
	struct spool_body_range rg;
	struct spool_rpart *p;
	size_t len;

	*n = 0;
	if (r->n == 0)
		return 0;
	p = &r->parts[r->cur];
	if (!p->inbody || p->done || p->paused)
		return 0;
	rg.from = p->next;
	rg.until = p->until;
	rg.until_ts = p->until_ts;
	rg.big = big;
	len = spool_body_copy(&p->body, out, cap, delim, dlen, max, &rg, n,
	    &last->offset);
	if (*n > 0) {
		p->next = last->offset + 1;
		last->partition = p->id;
	}
	return len;
}

#define PART_EVENTS	(IN_MODIFY | IN_CREATE | IN_MOVED_TO | IN_CLOSE_WRITE)

/* part_free - what one partition of a reader holds */
static void
part_free(struct spool_rpart *p)
{
	if (p->logfd >= 0)
		close(p->logfd);
	if (p->partfd >= 0)
		close(p->partfd);
	spool_rbuf_free(p);
	spool_body_free(&p->body);
	spool_seg_free(&p->segs);
}

/* add_one - open partition id, watch it, and start it at start */
static int
add_one(struct spool_reader *r, uint32_t id, const struct spool_pos *start)
{
	struct spool_rpart *np, *p;
	int i, s = 0;

	/* the read-ahead points into a partition: settle it first */
	spool_walk_collect(r);
	if ((np = realloc(r->parts, (r->n + 1) * sizeof(*np))) == NULL)
		return -ENOMEM;
	r->parts = np;
	p = &r->parts[r->n];
	memset(p, 0, sizeof(*p));
	p->logfd = p->wd = -1;
	p->id = id;
	if ((p->partfd = spool_part_open(r->t, id)) < 0)
		return p->partfd;
	r->n++;
	if (r->ifd >= 0 &&
	    (p->wd = spool_watch(r->ifd, p->partfd, PART_EVENTS)) == -1)
		return -errno;
	/* a segment may go (gc) between listing and opening: try again */
	for (i = 0; i < 3; i++)
		if ((s = spool_position_start(r, p, start)) != -ENOENT)
			break;
	return s;
}

/*
 * spool_reader_add_parts - open partitions [r->n, count) from their
 * start position
 */
int
spool_reader_add_parts(struct spool_reader *r, uint32_t count,
    const struct spool_pos *start)
{
	uint32_t i;
	int s;

	for (i = r->n; i < count; i++)
		if ((s = add_one(r, r->o.partition >= 0 ?
		    (uint32_t)r->o.partition : i, start)) < 0)
			return s;
	return 0;
}

/* find - the index of partition id among the reader's, or -1 */
static int
find(const struct spool_reader *r, uint32_t id)
{
	uint32_t i;

	for (i = 0; i < r->n; i++)
		if (r->parts[i].id == id)
			return (int)i;
	return -1;
}

/*
 * spool_reader_add - read partition part too, from start (a consumer
 * group member taking a partition over)
 */
int
spool_reader_add(struct spool_reader *r, uint32_t part,
    const struct spool_pos *start)
{
	if (find(r, part) >= 0)
		return -EEXIST;
	if (part >= r->t->cfg.partitions)
		return -ENOENT;
	return add_one(r, part, start);
}

/* spool_reader_drop - stop reading partition part */
int
spool_reader_drop(struct spool_reader *r, uint32_t part)
{
	struct spool_rpart *p;
	int i;

	if ((i = find(r, part)) < 0)
		return -ENOENT;
	spool_walk_collect(r);
	p = &r->parts[i];
	if (p->wd >= 0)
		(void)inotify_rm_watch(r->ifd, p->wd);
	part_free(p);
	r->parts[i] = r->parts[--r->n];
	if (r->cur >= r->n)
		r->cur = 0;
	r->idle = 0;
	return 0;
}

/* spool_reader_pause - hold a partition back (1) or let it go on (0) */
int
spool_reader_pause(struct spool_reader *r, uint32_t part, int on)
{
	int i;

	if ((i = find(r, part)) < 0)
		return -ENOENT;
	r->parts[i].paused = on;
	return 0;
}

/* spool_reader_position - the next offset the reader gives out of part */
int
spool_reader_position(const struct spool_reader *r, uint32_t part,
    uint64_t *off)
{
	int i;

	if ((i = find(r, part)) < 0)
		return -ENOENT;
	*off = r->parts[i].next;
	return 0;
}

/* spool_reader_open - a reader over topic t */
int
spool_reader_open(struct spool_topic *t, const struct spool_reader_opts *o,
    struct spool_reader **rp)
{
	struct spool_reader *r;
	int s;

	if (o->partition >= 0 && (uint32_t)o->partition >= t->cfg.partitions)
		return -ENOENT;
	if (o->partition < SPOOL_PART_NONE)
		return -EINVAL;
	if ((r = calloc(1, sizeof(*r))) == NULL)
		return -ENOMEM;
	r->t = t;
	r->o = *o;
	r->ifd = r->twd = -1;
	if ((r->io = spool_get_io(t->sp)) == NULL) {
		free(r);
		return -ENOMEM;
	}
	if (o->follow) {
		/*
		 * The topic directory: new partitions, and its own end (a
		 * delete renames it into tmp/, then removes it)
		 */
		r->ifd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
		if (r->ifd == -1 || (r->twd = spool_watch(r->ifd, t->dirfd,
		    IN_MOVED_TO | IN_CREATE | IN_MOVE_SELF | IN_DELETE_SELF)) ==
		    -1) {
			s = -errno;
			spool_reader_close(r);
			return s;
		}
	}
	s = o->partition == SPOOL_PART_NONE ? 0 : spool_reader_add_parts(r,
	    o->partition >= 0 ? 1 : t->cfg.partitions, &o->start);
	if (s < 0) {
		spool_reader_close(r);
		return s;
	}
	*rp = r;
	return 0;
}

/* spool_reader_done - every partition reached its --until position */
int
spool_reader_done(const struct spool_reader *r)
{
	uint32_t i;

	if (r->n == 0)
		return 0;
	for (i = 0; i < r->n; i++)
		if (!r->parts[i].done)
			return 0;
	return 1;
}

/* spool_reader_close - release a reader */
void
spool_reader_close(struct spool_reader *r)
{
	uint32_t i;

	if (r == NULL)
		return;
	spool_walk_collect(r);
	for (i = 0; i < r->n; i++)
		part_free(&r->parts[i]);
	if (r->ifd >= 0)
		close(r->ifd);
	free(r->parts);
	free(r);
}
