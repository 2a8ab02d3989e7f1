/*
 * repl_talk.c - what a replication session says, and to whom: why it
 * ends (repl_fail), what the user is told (repl_report), the ERROR
 * frame the peer gets when this end gives up (repl_send_error), the
 * frame this end expects next, with the peer's own ERROR turned into
 * an -errno and its words (repl_expect), the partitions a receiver
 * stopped at damage on the source (repl_damaged, repl_stopped,
 * repl_stops), and which topics the session is about (-t,
 * repl_want_topic).
 *
 * Every repl_*.c file uses these; they call nothing of those files.
 * The contract of replication is at the top of repl_send.c.  It
 * never prints (opts.report does).
 */

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "repl.h"

/* repl_fail - record why the session ends; returns r */
int
repl_fail(struct sess *s, int r, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(s->o->errmsg, sizeof(s->o->errmsg), fmt, ap);
	va_end(ap);
	return r;
}

/* repl_report - tell the caller something (verbose: only with -v) */
void
repl_report(struct sess *s, int verbose, const char *fmt, ...)
{
	char buf[1024];
	va_list ap;

	if (s->o->report == NULL)
		return;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	s->o->report(s->o->arg, verbose, buf);
}

/* err_kind - the PROTO_ERROR kind of an -errno */
static int
err_kind(int r)
{
	switch (-r) {
	case SPOOL_EROLE:
		return PROTO_E_ROLE;
	case EBADMSG:
	case EPROTO:
		return PROTO_E_DATA;
	case ENOENT:
	case ENOTDIR:
		return PROTO_E_NOENT;
	case EACCES:
	case EPERM:
	case EROFS:
		return PROTO_E_PERM;
	case EINVAL:
		return PROTO_E_USAGE;
	default:
		return PROTO_E_IO;
	}
}

/* kind_err - the -errno of a PROTO_ERROR kind */
static int
kind_err(int kind)
{
	switch (kind) {
	case PROTO_E_ROLE:
		return -SPOOL_EROLE;
	case PROTO_E_DATA:
		return -EBADMSG;
	case PROTO_E_NOENT:
		return -ENOENT;
	case PROTO_E_PERM:
		return -EACCES;
	case PROTO_E_USAGE:
		return -EINVAL;
	default:
		return -EIO;
	}
}

/* repl_send_error - tell the peer we give up, and why (best effort) */
void
repl_send_error(struct sess *s, int r)
{
	proto_begin(&s->pr, PROTO_ERROR);
	proto_u8(&s->pr, (uint8_t)err_kind(r));
	proto_str(&s->pr, s->o->errmsg[0] ? s->o->errmsg : strerror(-r));
	(void)proto_send(&s->pr);
}

/*
 * repl_expect - receive a frame of type want; a PROTO_ERROR from the peer
 * ends the session with the peer's words
 */
int
repl_expect(struct sess *s, int want)
{
	char msg[PROTO_STR_MAX + 1];
	int type, r, kind;

	if ((r = proto_recv(&s->pr, &type)) < 0) {
		if (r == -ECONNRESET)
			return repl_fail(s, r,
			    "the other end closed the connection");
		if (r == -ETIMEDOUT)
			return repl_fail(s, r, "the other end said nothing for "
			    "%d s", s->o->timeout_ms / 1000);
		if (r == -EBADMSG)
			return repl_fail(s, r,
			    "malformed frame from the other end");
		return repl_fail(s, r, "%s", strerror(-r));
	}
	if (type == PROTO_ERROR) {
		kind = proto_get8(&s->pr);
		proto_getstr(&s->pr, msg, sizeof(msg));
		/* the peer gave up: it needs no error frame back */
		s->peer_failed = 1;
		/* named by its part: both ends may be on this machine */
		return repl_fail(s, kind_err(kind), "%s: %s",
		    s->o->role == SPOOL_REPL_SENDER ? "replica" : "source",
		    msg);
	}
	if (want != 0 && type != want)
		return repl_fail(s, -EBADMSG, "protocol: frame type %d where "
		    "%d was expected", type, want);
	return type;
}

/* add_stop - remember that topic/part stopped this session */
static int
add_stop(struct sess *s, const char *topic, uint32_t part)
{
	struct change *nv;

	if ((nv = realloc(s->stops, (s->nstops + 1) * sizeof(*nv))) == NULL)
		return -ENOMEM;
	s->stops = nv;
	snprintf(nv[s->nstops].topic, sizeof(nv->topic), "%s", topic);
	nv[s->nstops++].part = part;
	return 0;
}

/*
 * repl_damaged - the receiver's partition m stopped at a batch not to
 * keep (r: -EBADMSG damage, -EPROTO a batch a newer mq wrote; the
 * detail in spool_errmsg): say so, and remember it, so that a follower
 * does not ask for it again and the session ends in r (repl_stops);
 * 0, or -ENOMEM
 */
int
repl_damaged(struct sess *s, struct spool_mirror *m, int r)
{
	repl_report(s, 0, "%s; not copied past offset %" PRIu64 " (mq-topic "
	    "verify %s, on the source, says where)", spool_errmsg(s->sp),
	    m->next, m->t->name);
	if (s->stop_err == 0)
		s->stop_err = r;
	return add_stop(s, m->t->name, m->part);
}

/*
 * repl_behind - the receiver's partition ends at next, below first, the
 * source's oldest offset (retention took those between; PLAN_GAP): say
 * so once, and remember it as a stop (the session ends in 65,
 * repl_stops); 0, or -ENOMEM
 */
int
repl_behind(struct sess *s, const char *topic, uint32_t part, uint64_t next,
    uint64_t first)
{
	repl_report(s, 0, "%s/%" PRIu32 ": the source no longer holds offsets "
	    "%" PRIu64 " to %" PRIu64 " (retention); --delete drops the "
	    "replica's older segments and goes on", topic, part, next,
	    first - 1);
	s->nbehind++;
	return add_stop(s, topic, part);
}

/* repl_stopped - whether topic/part stopped this session (repl_damaged) */
int
repl_stopped(const struct sess *s, const char *topic, uint32_t part)
{
	size_t i;

	for (i = 0; i < s->nstops; i++)
		if (s->stops[i].part == part &&
		    strcmp(s->stops[i].topic, topic) == 0)
			return 1;
	return 0;
}

/*
 * repl_stops - the end of a session in which partitions stopped at
 * damage, were left behind by the source's retention, or holes of the
 * source's were copied: the error of the first, naming a few
 * partitions (0 if none of these)
 */
int
repl_stops(struct sess *s)
{
	char names[3 * (SPOOL_NAME_MAX + 16)];
	size_t i, n = 0;

	if (s->nstops == s->nbehind && s->nbehind > 0)
		return repl_fail(s, -EBADMSG, "%zu partition%s behind what the "
		    "source still holds (said above); everything else is "
		    "copied", s->nbehind, s->nbehind == 1 ? "" : "s");
	if (s->nstops == 0 && s->holes > 0)
		return repl_fail(s, -EBADMSG, "%zu hole%s in the source's "
		    "logs (said above), copied as holes; everything else is "
		    "copied", s->holes, s->holes == 1 ? "" : "s");
	if (s->nstops == 0)
		return 0;
	names[0] = '\0';
	for (i = 0; i < s->nstops && i < 3; i++) {
		snprintf(names + n, sizeof(names) - n, "%s%s/%" PRIu32,
		    i > 0 ? ", " : "", s->stops[i].topic, s->stops[i].part);
		n = strlen(names);
	}
	return repl_fail(s, s->stop_err, "%zu partition%s stopped at damage "
	    "or a newer mq's batch on the source%s (%s%s); everything else is "
	    "copied", s->nstops, s->nstops == 1 ? "" : "s", s->nbehind > 0 ?
	    ", or behind what it still holds" : "", names,
	    s->nstops > 3 ? ", ..." : "");
}

/* repl_want_topic - whether -t lets topic through */
int
repl_want_topic(struct sess *s, const char *name)
{
	size_t i;

	if (s->ntopics == 0)
		return 1;
	for (i = 0; i < s->ntopics; i++)
		if (strcmp(s->topics[i], name) == 0)
			return 1;
	return 0;
}
