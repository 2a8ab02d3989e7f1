/*
 * follow.c - a reader that follows a topic: waiting until something may
 * have been written (mq-recv --follow)
 *
 * The reader (reader.c) watches with inotify the partition directories
 * (appends, new segments) and the topic directory (a config rename may
 * add partitions; a delete moves the topic away); this module waits on
 * those watches, never polling, and adds the partitions a topic grew.
 * Watches are set up before the first read, so nothing written after a
 * read can be missed.
 */

#include <sys/inotify.h>
#include <sys/types.h>

#include <errno.h>
#include <limits.h>
#include <unistd.h>

#include "spool_impl.h"

/*
 * files - a file came into a partition directory (or events were
 * lost): its segment list is out of date; appends (IN_MODIFY) leave it
 * be, so that a follower at the end of the newest segment does not list
 * the directory again after every append (reader.c, successor)
 */
static void
files(struct spool_reader *r, const struct inotify_event *ev)
{
	uint32_t i;

	if (!(ev->mask & (IN_CREATE | IN_MOVED_TO | IN_Q_OVERFLOW)))
		return;
	for (i = 0; i < r->n; i++)
		if (ev->wd == r->parts[i].wd || (ev->mask & IN_Q_OVERFLOW))
			r->parts[i].listed = 0;
}

/*
 * spool_reader_wait - block until something may have been written
 * (0), timeout_ms passed (-ETIMEDOUT; <0 waits for ever), a signal
 * came or the spool's stop descriptor is readable (-EINTR), or the
 * topic was deleted (-ENOENT: nothing more will
 * ever be written to what this reader has open)
 */
int
spool_reader_wait(struct spool_reader *r, int timeout_ms)
{
	char buf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
	const struct inotify_event *ev;
	ssize_t n, i;
	int topic = 0, gone = 0, s;

	if (r->ifd < 0)
		return -EINVAL;
	if ((s = spool_wait_fd(r->t->sp, r->ifd, timeout_ms)) < 0)
		return s;
	if (s == 0)
		return -ETIMEDOUT;
	/* something may have been written: what came back short, read again */
	for (i = 0; i < (ssize_t)r->n; i++)
		r->parts[i].drained = 0;
	do {
		if ((n = read(r->ifd, buf, sizeof(buf))) <= 0)
			break;
		for (i = 0; i < n; i += sizeof(*ev) + ev->len) {
			ev = (const struct inotify_event *)(buf + i);
			if (ev->wd != r->twd) {
				files(r, ev);
				continue;
			}
			topic = 1;
			if (ev->mask & (IN_MOVE_SELF | IN_DELETE_SELF |
			    IN_IGNORED))
				gone = 1;
		}
		/* a read with room for one more event took all there was */
	} while ((size_t)n > sizeof(buf) - sizeof(*ev) - NAME_MAX - 1);
	if (gone) {
		spool_seterr(r->t->sp, "%s: the topic was deleted",
		    r->t->name);
		return -ENOENT;
	}
	if (topic && r->o.partition == -1) {
		/* partitions may have grown: read them from their start */
		if ((s = spool_topic_reload(r->t)) < 0)
			return s;
		if (r->t->cfg.partitions > r->n) {
			struct spool_pos begin = { SPOOL_POS_BEGIN, 0 };

			if ((s = spool_reader_add_parts(r, r->t->cfg.partitions,
			    &begin)) < 0)
				return s;
		}
	}
	return 0;
}
