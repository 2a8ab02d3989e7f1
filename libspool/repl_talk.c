/*
 * repl_talk.c - what a replication session says, and to whom: why it
 * ends (repl_fail), what the user is told (repl_report), the ERROR
 * frame the peer gets when this end gives up (repl_send_error), the
 * frame this end expects next, with the peer's own ERROR turned into
 * an -errno and its words (repl_expect), and which topics the session
 * is about (-t, repl_want_topic).
 *
 * Every repl_*.c file uses these; they call nothing of those files.
 * The contract of replication is at the top of repl_send.c.  It
 * never prints (opts.report does).
 */

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
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
