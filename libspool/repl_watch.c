/*
 * repl_watch.c - a following sender's inotify watches, and the changes
 * they name (WAIT, CHANGED)
 *
 * The contract of replication (all repl_*.c files) is at the top of
 * repl_send.c.  Nothing here trusts the peer; it never prints
 * (opts.report does).
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

/* watch - add an inotify watch on SPOOL/rel (--follow), noting what it is */
static void
watch(struct sess *s, const char *rel, uint32_t mask, int kind,
    const char *topic, uint32_t part)
{
	char path[PATH_MAX], *t;
	struct wmap *nw;
	size_t i;
	int wd;

	if (snprintf(path, sizeof(path), "%s/%s", s->sp->path, rel) >=
	    (int)sizeof(path) ||
	    (wd = inotify_add_watch(s->ifd, path, mask | IN_ONLYDIR)) < 0)
		return;
	for (i = 0; i < s->nwm && s->wm[i].wd != wd; i++)
		;
	if (i == s->nwm) {
		if ((nw = realloc(s->wm, (s->nwm + 1) * sizeof(*nw))) == NULL)
			return;	/* its events will ask for a whole pass */
		s->wm = nw;
		s->wm[s->nwm++].topic = NULL;
	}
	t = topic != NULL ? strdup(topic) : NULL;
	free(s->wm[i].topic);
	s->wm[i].wd = wd;
	s->wm[i].kind = kind;
	s->wm[i].topic = t;
	s->wm[i].part = part;
}

#define W_DIRS	(IN_CREATE | IN_DELETE | IN_MOVED_TO | IN_MOVED_FROM)

/* watch_sched - a topic's scheduled/ and its buckets */
static void
watch_sched(struct sess *s, const char *topic)
{
	char rel[SPOOL_NAME_MAX + 64];
	struct dirent *de;
	DIR *d;
	int fd;

	snprintf(rel, sizeof(rel), "topics/%s/scheduled", topic);
	watch(s, rel, W_DIRS, W_SCHED, topic, 0);
	if ((fd = openat(s->sp->topicsfd, rel + 7, O_RDONLY | O_DIRECTORY |
	    O_NOFOLLOW | O_CLOEXEC)) == -1)
		return;
	if ((d = fdopendir(fd)) == NULL) {
		close(fd);
		return;
	}
	while ((de = readdir(d)) != NULL)
		if (de->d_name[0] != '.' && strspn(de->d_name,
		    "0123456789") == strlen(de->d_name)) {
			snprintf(rel, sizeof(rel), "topics/%s/scheduled/%s",
			    topic, de->d_name);
			watch(s, rel, W_DIRS, W_BUCKET, topic, 0);
		}
	closedir(d);
}

/* watch_groups - a topic's groups/ and each group's directory */
static void
watch_groups(struct sess *s, struct spool_topic *t)
{
	char rel[2 * SPOOL_NAME_MAX + 64], **groups;
	size_t k, ng;

	snprintf(rel, sizeof(rel), "topics/%s/groups", t->name);
	watch(s, rel, W_DIRS, W_GROUPS, t->name, 0);
	if (spool_group_list(t, &groups, &ng) < 0)
		return;
	for (k = 0; k < ng; k++) {
		snprintf(rel, sizeof(rel), "topics/%s/groups/%s", t->name,
		    groups[k]);
		watch(s, rel, W_DIRS | IN_MODIFY, W_GROUP, t->name, 0);
		free(groups[k]);
	}
	free(groups);
}

/* watch_all - watch every directory whose change is worth a pass */
void
repl_watch_all(struct sess *s, char **names, size_t n)
{
	char rel[SPOOL_NAME_MAX + 64];
	struct spool_topic *t;
	size_t i;
	uint32_t p;

	watch(s, "topics", W_DIRS, W_TOPICS, NULL, 0);
	for (i = 0; i < n; i++) {
		snprintf(rel, sizeof(rel), "topics/%s", names[i]);
		watch(s, rel, W_DIRS, W_TOPIC, names[i], 0);
		if (spool_topic_open(s->sp, names[i], &t) < 0)
			continue;
		for (p = 0; p < t->cfg.partitions; p++) {
			snprintf(rel, sizeof(rel), "topics/%s/%" PRIu32,
			    names[i], p);
			watch(s, rel, W_DIRS | IN_MODIFY, W_PART, names[i], p);
		}
		watch_groups(s, t);
		watch_sched(s, names[i]);
		spool_topic_close(t);
	}
}

/* drain - forget the inotify events queued so far */
void
repl_drain(struct sess *s)
{
	char ev[4096];

	while (s->ifd >= 0 && read(s->ifd, ev, sizeof(ev)) > 0)
		;
}

/* add_change - note a change of topic/part once; 0 when the list is full */
static int
add_change(struct change *ch, size_t *n, const char *topic, uint32_t part)
{
	size_t i;

	for (i = 0; i < *n; i++)
		if (ch[i].part == part && strcmp(ch[i].topic, topic) == 0)
			return 1;
	if (*n == CH_MAX)
		return 0;
	snprintf(ch[*n].topic, sizeof(ch[*n].topic), "%s", topic);
	ch[(*n)++].part = part;
	return 1;
}

/*
 * topic_event - what an event in a topic's directory changed (as event
 * says), name the entry it is about
 */
static int
topic_event(struct sess *s, const char *topic, const char *name,
    struct change *ch, size_t *n)
{
	char rel[SPOOL_NAME_MAX + 64];
	struct spool_topic *t;

	if (strncmp(name, ".scheduled.", 11) == 0)
		return !add_change(ch, n, topic, CH_SCHED);
	if (strcmp(name, "scheduled") == 0) {
		watch_sched(s, topic);
		return !add_change(ch, n, topic, CH_SCHED);
	}
	if (strcmp(name, "groups") == 0) {
		/*
		 * A group made before the watch on groups/ is in
		 * sends no event there: watch the groups it holds
		 * now too, or a commit to one would go unseen.
		 */
		if (spool_topic_open(s->sp, topic, &t) == 0) {
			watch_groups(s, t);
			spool_topic_close(t);
		} else {
			snprintf(rel, sizeof(rel), "topics/%s/groups",
			    topic);
			watch(s, rel, W_DIRS, W_GROUPS, topic, 0);
		}
		return !add_change(ch, n, topic, CH_GROUPS);
	}
	/* a config, a partition: a whole pass; other files: none */
	return strncmp(name, "config", 6) == 0 ||
	    (name[0] != '\0' && strspn(name, "0123456789") ==
	    strlen(name));
}

/*
 * event - what one inotify event changed: a partition, a topic's groups
 * or scheduled files (noted in ch), or something only a whole pass
 * takes in (returns 1: a topic made or deleted, a config, a partition
 * added, a lost event)
 */
static int
event(struct sess *s, const struct inotify_event *ev, struct change *ch,
    size_t *n)
{
	char rel[2 * SPOOL_NAME_MAX + 64], topic[SPOOL_NAME_MAX + 1];
	const char *name = ev->len > 0 ? ev->name : "";
	struct wmap *w = NULL;
	size_t i;

	if (ev->mask & IN_Q_OVERFLOW)
		return 1;
	for (i = 0; i < s->nwm; i++)
		if (s->wm[i].wd == ev->wd) {
			w = &s->wm[i];
			break;
		}
	if (ev->mask & IN_IGNORED) {
		if (w != NULL)
			w->wd = -1;	/* gone with its directory */
		return 0;
	}
	if (w == NULL || w->kind == W_TOPICS)
		return 1;
	if (!repl_want_topic(s, w->topic))
		return 0;
	/* watch() may move s->wm: what is needed of w is taken first */
	snprintf(topic, sizeof(topic), "%s", w->topic);
	switch (w->kind) {
	case W_PART:
		return !add_change(ch, n, topic, w->part);
	case W_TOPIC:
		return topic_event(s, topic, name, ch, n);
	case W_GROUPS:
		if ((ev->mask & (IN_CREATE | IN_MOVED_TO)) && name[0] != '.') {
			snprintf(rel, sizeof(rel), "topics/%s/groups/%.255s",
			    topic, name);
			watch(s, rel, W_DIRS | IN_MODIFY, W_GROUP, topic, 0);
		}
		return !add_change(ch, n, topic, CH_GROUPS);
	case W_GROUP:
		return !add_change(ch, n, topic, CH_GROUPS);
	case W_SCHED:
		if (name[0] == '\0' || strspn(name, "0123456789") !=
		    strlen(name))
			return 0;	/* the lock, a mover's marker */
		if (ev->mask & (IN_CREATE | IN_MOVED_TO)) {
			snprintf(rel, sizeof(rel), "topics/%s/scheduled/%.255s",
			    topic, name);
			watch(s, rel, W_DIRS, W_BUCKET, topic, 0);
		}
		return !add_change(ch, n, topic, CH_SCHED);
	case W_BUCKET:
		if (ev->len > 4 && strcmp(name + strlen(name) - 4, ".tmp") == 0)
			return 0;	/* its rename follows */
		return !add_change(ch, n, topic, CH_SCHED);
	}
	return 1;
}

/*
 * s_wait - WAIT: answer when the spool changes, saying what changed
 * when the events tell it, or with a heartbeat
 */
int
repl_s_wait(struct sess *s)
{
	char ev[16384]
	    __attribute__((aligned(__alignof__(struct inotify_event))));
	const struct inotify_event *e;
	struct change *ch = NULL;
	struct pollfd pf[2];
	size_t nch = 0, i;
	ssize_t len, k;
	int n, kind, r;

	pf[0].fd = s->ifd;
	pf[0].events = POLLIN;
	pf[0].revents = 0;
	/* the receiver going away ends the wait too */
	pf[1].fd = s->pr.rfd;
	pf[1].events = POLLIN;
	pf[1].revents = 0;
	/* without inotify (none to be had): a look every second */
	n = s->ifd >= 0 ? poll(pf, 2, HEARTBEAT_MS) : poll(pf + 1, 1, 1000);
	if (n > 0 && (pf[1].revents & (POLLIN | POLLHUP | POLLERR)) &&
	    !(pf[0].revents & POLLIN))
		return 0;	/* the next frame says what */
	kind = s->ifd < 0 ? CHG_ALL : n > 0 ? CHG_LIST : CHG_NONE;
	if (kind == CHG_LIST && (ch = calloc(CH_MAX, sizeof(*ch))) == NULL)
		kind = CHG_ALL;
	/* every event queued now: those of one write come together */
	while (kind == CHG_LIST && (len = read(s->ifd, ev, sizeof(ev))) > 0)
		for (k = 0; k < len && kind == CHG_LIST;
		    k += sizeof(*e) + e->len) {
			e = (const struct inotify_event *)(ev + k);
			if (event(s, e, ch, &nch))
				kind = CHG_ALL;
		}
	if (kind == CHG_LIST && nch == 0)
		kind = CHG_NONE;	/* nothing we copy */
	/* a pass begins: what is committed from now on waits for the next */
	s->pass_ms = spool_now_ms();
	proto_begin(&s->pr, PROTO_CHANGED);
	proto_u8(&s->pr, (uint8_t)kind);
	if (kind == CHG_LIST) {
		proto_u32(&s->pr, (uint32_t)nch);
		for (i = 0; i < nch; i++) {
			proto_str(&s->pr, ch[i].topic);
			proto_u32(&s->pr, ch[i].part);
		}
	}
	free(ch);
	r = proto_send(&s->pr);
	return r;
}
