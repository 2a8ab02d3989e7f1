/*
 * repl_session.c - one mq-replicate session: the handshake,
 * the spool it serves, and spool_replicate
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

/* ---- the handshake --------------------------------------------------- */

/* send_hello - our HELLO: who we are, and (client) what we want */
static int
send_hello(struct sess *s)
{
	size_t i;

	proto_begin(&s->pr, PROTO_HELLO);
	proto_bytes(&s->pr, PROTO_MAGIC, 4);
	proto_u32(&s->pr, PROTO_VERSION);
	proto_u8(&s->pr, (uint8_t)s->o->role);
	proto_u32(&s->pr, s->flags);
	proto_str(&s->pr, s->id);
	proto_u32(&s->pr, s->epoch);
	proto_str(&s->pr, s->o->server ? s->path :
	    (s->o->peer_path ? s->o->peer_path : ""));
	proto_u32(&s->pr, (uint32_t)s->ntopics);
	for (i = 0; i < s->ntopics; i++)
		proto_str(&s->pr, s->topics[i]);
	return proto_send(&s->pr);
}

/*
 * same_dir - whether the client's path names the directory a server was
 * given: the same words, or the same directory however spelt (a trailing
 * slash, "//", "..": a forced command's path as a user types it; a
 * symbolic link as the last part is not followed)
 */
static int
same_dir(const char *path, const char *mine)
{
	struct stat a, b;

	if (strcmp(path, mine) == 0)
		return 1;
	return lstat(path, &a) == 0 && lstat(mine, &b) == 0 &&
	    S_ISDIR(a.st_mode) && a.st_dev == b.st_dev && a.st_ino == b.st_ino;
}

/* recv_hello - the peer's HELLO, checked */
static int
recv_hello(struct sess *s)
{
	char path[PROTO_STR_MAX + 1], name[SPOOL_NAME_MAX + 1];
	const unsigned char *m;
	uint32_t version, n, i, flags;
	size_t len;
	int r, role;

	if ((r = repl_expect(s, 0)) < 0)
		return r;
	m = s->pr.buf + s->pr.pos;
	if (r != PROTO_HELLO || s->pr.len - s->pr.pos < 8 ||
	    memcmp(m, PROTO_MAGIC, 4) != 0)
		return repl_fail(s, -EBADMSG, "the other end does not speak "
		    "the mq-replicate protocol");
	s->pr.pos += 4;
	if ((version = proto_get32(&s->pr)) != PROTO_VERSION)
		return repl_fail(s, -EPROTO, "the other end speaks protocol "
		    "version %" PRIu32 ", this mq-replicate version %d",
		    version, PROTO_VERSION);
	role = proto_get8(&s->pr);
	flags = proto_get32(&s->pr);
	proto_getstr(&s->pr, s->peer_id, sizeof(s->peer_id));
	s->peer_epoch = proto_get32(&s->pr);
	proto_getstr(&s->pr, path, sizeof(path));
	n = proto_get32(&s->pr);
	if (s->o->server && n > 0 && proto_done(&s->pr) == 0) {
		if (n > 65536)
			return repl_fail(s, -EBADMSG, "protocol: %" PRIu32
			    " topics", n);
		if ((s->topics = calloc(n, sizeof(*s->topics))) == NULL)
			return -ENOMEM;
		for (i = 0; i < n; i++) {
			if (proto_getstr(&s->pr, name, sizeof(name)) < 0)
				break;
			if (!spool_topic_name_ok(name))
				return repl_fail(s, -EINVAL, "%s: not a topic "
				    "name", name);
			if ((s->topics[i] = strdup(name)) == NULL)
				return -ENOMEM;
			s->ntopics++;
		}
	}
	(void)proto_rest(&s->pr, &len);
	if (proto_done(&s->pr) < 0)
		return repl_fail(s, -EBADMSG, "malformed HELLO");
	if (s->peer_id[0] != '\0' && !repl_id_name(s->peer_id))
		return repl_fail(s, -EBADMSG, "malformed identity in HELLO");
	if (s->o->server && (s->o->flags & SPOOL_REPL_READONLY) &&
	    role == SPOOL_REPL_SENDER)
		return repl_fail(s, -EACCES, "%s: read-only: this server "
		    "serves pulls only", s->path);
	if (role == s->o->role)
		return repl_fail(s, -EINVAL, "both ends would %s",
		    role == SPOOL_REPL_SENDER ? "send" : "receive");
	if (s->o->server) {
		s->flags = flags & ~SPOOL_REPL_READONLY;
		if (!same_dir(path, s->path))
			return repl_fail(s, -EACCES, "%s: this server serves "
			    "%s only", path, s->path);
	}
	return 0;
}

/* ---- the session ----------------------------------------------------- */

/* not_a_spool - whether path is a directory with entries but no topics/ */
static int
not_a_spool(const char *path)
{
	struct dirent *de;
	DIR *d;
	int other = 0, topics = 0;

	if ((d = opendir(path)) == NULL)
		return 0;
	while ((de = readdir(d)) != NULL) {
		if (strcmp(de->d_name, ".") == 0 ||
		    strcmp(de->d_name, "..") == 0)
			continue;
		if (strcmp(de->d_name, "topics") == 0)
			topics = 1;
		else
			other = 1;
	}
	closedir(d);
	return other && !topics;
}

/* open_spool - the session's spool: a source must exist */
static int
open_spool(struct sess *s)
{
	int r, flags = 0;

	if (s->o->role == SPOOL_REPL_RECEIVER) {
		struct stat st;

		if (not_a_spool(s->path))
			return repl_fail(s, -SPOOL_EROLE, "%s: a directory "
			    "that is not empty and not a spool: refusing to "
			    "use it", s->path);
		if (!(s->flags & SPOOL_REPL_DRYRUN)) {
			flags = SPOOL_CREATE;
			s->made = lstat(s->path, &st) == -1 && errno == ENOENT;
		}
	}
	r = spool_open(&s->sp, s->path, flags);
	if (r == -ENOENT && s->o->role == SPOOL_REPL_RECEIVER &&
	    (s->flags & SPOOL_REPL_DRYRUN)) {
		/* a dry run into nothing: as into an empty spool */
		snprintf(s->drytmp, sizeof(s->drytmp), "%s/mq-dry.XXXXXX",
		    getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
		if (mkdtemp(s->drytmp) == NULL) {
			s->drytmp[0] = '\0';
			return repl_fail(s, -errno, "mkdtemp: %s",
			    strerror(errno));
		}
		r = spool_open(&s->sp, s->drytmp, 0);
	}
	/* a destination that cannot be made (a dangling link) is no spool */
	if (r < 0)
		return repl_fail(s, r, "%s: %s", s->path, r == -ENOENT &&
		    s->o->role == SPOOL_REPL_SENDER ? "No such spool" :
		    strerror(-r));
	if (s->sp->topicsfd < 0 && s->o->role == SPOOL_REPL_SENDER)
		return repl_fail(s, -ENOENT, "%s: No such spool", s->path);
	/* a dry run writes nothing, on either side: no identity made */
	r = spool_id(s->sp, !(s->flags & SPOOL_REPL_DRYRUN), s->id);
	if (r == -ENOENT || (r < 0 && s->o->role == SPOOL_REPL_SENDER)) {
		s->id[0] = '\0';	/* a source we may not write to */
		r = 0;
	}
	if (r < 0)
		return repl_fail(s, r, "%s/id: %s", s->path, strerror(-r));
	if ((r = spool_epoch(s->sp, &s->epoch)) < 0)
		return repl_fail(s, r, "%s/epoch: %s", s->path,
		    spool_errmsg(s->sp));
	return 0;
}

/*
 * unmake - a destination this session made and never became a replica
 * (the source missing, refusing or silent) goes again, as rsync makes
 * none: an empty spool left there would take mq-send's writes as a
 * primary's and refuse the next run.  Anything more in it stays.
 */
static void
unmake(const char *path)
{
	int fd;

	if ((fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW |
	    O_CLOEXEC)) == -1)
		return;
	if (faccessat(fd, REPLICA_NAME, F_OK, AT_SYMLINK_NOFOLLOW) == 0 ||
	    (unlinkat(fd, "topics", AT_REMOVEDIR) == -1 && errno != ENOENT)) {
		close(fd);
		return;
	}
	(void)unlinkat(fd, "tmp", AT_REMOVEDIR);
	(void)unlinkat(fd, "id", 0);
	close(fd);
	(void)rmdir(path);
}

/*
 * spool_replicate - run one session on the spool at path over the pipe
 * in o; 0 when done (following: never, short of an error).  o->errmsg
 * says why it failed; -SPOOL_EROLE is a refusal of the destination's
 * role, -EBADMSG a malformed stream or batch.
 */
int
spool_replicate(const char *path, struct spool_repl_opts *o)
{
	struct sess s;
	size_t i;
	int r;

	memset(&s, 0, sizeof(s));
	s.o = o;
	s.path = path;
	s.ifd = -1;
	s.srcfd = -1;
	s.sync = !(o->flags & SPOOL_REPL_NOSYNC);
	o->errmsg[0] = '\0';
	proto_init(&s.pr, o->rfd, o->wfd, o->timeout_ms);
	if (!o->server) {
		s.flags = o->flags & ~(SPOOL_REPL_READONLY | SPOOL_REPL_LOCAL);
		/* a source on this machine: its files are read here */
		if (o->role == SPOOL_REPL_RECEIVER && o->local_src != NULL &&
		    (s.srcfd = open(o->local_src, O_RDONLY | O_DIRECTORY |
		    O_CLOEXEC)) >= 0)
			s.flags |= SPOOL_REPL_LOCAL;
		if (o->ntopics > 0 && (s.topics = calloc(o->ntopics,
		    sizeof(*s.topics))) == NULL)
			return -ENOMEM;
		for (i = 0; i < o->ntopics; i++)
			if ((s.topics[s.ntopics++] = strdup(o->topics[i])) ==
			    NULL)
				return -ENOMEM;
	}
	if (o->server) {
		/* the client's options come first: dry runs create nothing */
		if ((r = recv_hello(&s)) < 0)
			goto out;
		if ((r = open_spool(&s)) < 0)
			goto out;
		if ((r = send_hello(&s)) < 0)
			goto out;
	} else {
		if ((r = open_spool(&s)) < 0)
			goto out;
		if ((r = send_hello(&s)) < 0 || (r = recv_hello(&s)) < 0)
			goto out;
	}
	r = o->role == SPOOL_REPL_SENDER ? repl_sender(&s) : repl_receiver(&s);
out:
	/* always a reason: a peer gone before we wrote is EPIPE, not "" */
	if (r < 0 && o->errmsg[0] == '\0') {
		if (r == -EPIPE || r == -ECONNRESET)
			repl_fail(&s, r, "the other end closed the connection");
		else
			repl_fail(&s, r, "%s", strerror(-r));
	}
	if (r < 0 && !s.peer_failed && r != -ECONNRESET && r != -EPIPE)
		repl_send_error(&s, r);
	o->bytes_in = s.pr.bytes_in;
	o->bytes_out = s.pr.bytes_out;
	proto_free(&s.pr);
	repl_free_src(&s);
	for (i = 0; i < s.ntopics; i++)
		free(s.topics[i]);
	free(s.topics);
	free(s.stops);
	for (i = 0; i < s.nacks; i++)
		free(s.acks[i].topic);
	free(s.acks);
	if (s.ifd >= 0)
		close(s.ifd);
	if (s.srcfd >= 0)
		close(s.srcfd);
	free(s.lbuf);
	for (i = 0; i < s.nwm; i++)
		free(s.wm[i].topic);
	free(s.wm);
	spool_close(s.sp);
	if (s.drytmp[0] != '\0')
		(void)rmdir(s.drytmp);
	if (r < 0 && s.made)
		unmake(path);
	return r;
}
