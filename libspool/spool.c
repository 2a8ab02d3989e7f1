/*
 * spool.c - the spool directory handle and the file primitives under it
 *
 * A spool is a directory holding topics/ (one directory a topic) and
 * tmp/ (staging for topic creation and deletion, on the same file system
 * so that rename is atomic).  This module opens and creates it, keeps the
 * detail of the last error for spool_errmsg(), and owns the few file
 * primitives everything else uses: atomic replacement of a small file,
 * directory fsync, recursive removal, lock files (listings: dirlist.c).
 *
 * All access is relative to directory descriptors, with O_NOFOLLOW on the
 * final component: a symbolic link planted in a spool is never followed
 * for writing.  Readers never create anything: a missing spool is
 * -ENOENT unless SPOOL_CREATE is given.
 */

#include <sys/file.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <sys/types.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "spool_impl.h"

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "format.h get32/get64 assume a little-endian host"
#endif

/*
 * sync_parent - fsync the directory holding path (".", "/" or a prefix of
 * path; path may be relative and hold no slash at all)
 */
static int
sync_parent(char *path)
{
	char *slash = strrchr(path, '/');
	const char *parent = path;
	int fd, r;

	if (slash == NULL)
		parent = ".";
	else if (slash == path)
		parent = "/";
	else
		*slash = '\0';
	fd = open(parent, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	r = fd == -1 ? -errno : 0;
	if (slash != NULL && slash != path)
		*slash = '/';
	if (r < 0)
		return r;
	r = spool_fsync_dir(fd);
	close(fd);
	return r;
}

/*
 * mkdir_p - create dir and its missing parents, syncing each new entry
 * into its parent (a failed sync fails the whole: the spool would not
 * survive a power cut)
 */
static int
mkdir_p(const char *dir, int nosync)
{
	char *p, *s;
	int last, r = 0;

	if ((s = strdup(dir)) == NULL)
		return -ENOMEM;
	for (p = s + 1;; p++) {
		if (*p != '/' && *p != '\0')
			continue;
		last = *p == '\0';
		*p = '\0';
		if (mkdir(s, 0775) == 0) {
			/* the new entry is durable only once its parent is */
			if (!nosync && (r = sync_parent(s)) < 0)
				break;
		} else if (errno != EEXIST) {
			r = -errno;
			break;
		}
		if (last)
			break;
		*p = '/';
	}
	free(s);
	return r;
}

/* spool_open - open (or with SPOOL_CREATE, make) the spool at dir */
int
spool_open(struct spool **spp, const char *dir, int flags)
{
	struct spool *sp;
	struct stat st;
	int r;

	if (dir == NULL || *dir == '\0')
		return -EINVAL;
	if ((sp = calloc(1, sizeof(*sp))) == NULL)
		return -ENOMEM;
	sp->topicsfd = -1;
	sp->dirfd = -1;
	sp->stopfd = -1;
	sp->nosync = (flags & SPOOL_NOSYNC) != 0;
	if ((sp->path = strdup(dir)) == NULL) {
		r = -ENOMEM;
		goto fail;
	}
	if ((flags & SPOOL_CREATE) && stat(dir, &st) == -1 &&
	    errno == ENOENT && (r = mkdir_p(dir, flags & SPOOL_NOSYNC)) < 0)
		goto fail;
	if ((sp->dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) == -1) {
		r = -errno;
		goto fail;
	}
	if ((r = spool_topics_dir(sp, flags & SPOOL_CREATE)) < 0 &&
	    r != -ENOENT)
		goto fail;
	*spp = sp;
	return 0;
fail:
	spool_close(sp);
	return r;
}

/*
 * spool_topics_dir - open DIR/topics, creating it and DIR/tmp when
 * create is set
 */
int
spool_topics_dir(struct spool *sp, int create)
{
	int fd, r, made = 0;

	if (sp->topicsfd >= 0)
		return 0;
	if (create) {
		if (mkdirat(sp->dirfd, "topics", 0775) == 0)
			made = 1;
		else if (errno != EEXIST)
			return -errno;
		if (mkdirat(sp->dirfd, "tmp", 0775) == 0)
			made = 1;
		else if (errno != EEXIST)
			return -errno;
		/* make the new entries durable before anything goes in */
		if (made && (r = spool_sync_dir(sp, sp->dirfd)) < 0)
			return r;
	}
	fd = openat(sp->dirfd, "topics",
	    O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd == -1)
		return -errno;
	sp->topicsfd = fd;
	return 0;
}

/* spool_close - release the spool handle */
void
spool_close(struct spool *sp)
{
	if (sp == NULL)
		return;
	spool_io_close(sp->io);
	if (sp->topicsfd >= 0)
		close(sp->topicsfd);
	if (sp->dirfd >= 0)
		close(sp->dirfd);
	free(sp->path);
	free(sp);
}

/* spool_errmsg - detail of the last -EBADMSG (or ""), for messages */
const char *
spool_errmsg(const struct spool *sp)
{
	return sp->errmsg;
}

/* spool_seterr - record the detail of an error */
void
spool_seterr(struct spool *sp, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(sp->errmsg, sizeof(sp->errmsg), fmt, ap);
	va_end(ap);
}

/* spool_io_mode_parse - "uring", "sync" or "auto" (or empty) */
int
spool_io_mode_parse(const char *s, enum spool_io_mode *m)
{
	if (s == NULL || *s == '\0' || strcmp(s, "auto") == 0)
		*m = SPOOL_IO_AUTO;
	else if (strcmp(s, "uring") == 0)
		*m = SPOOL_IO_URING;
	else if (strcmp(s, "sync") == 0)
		*m = SPOOL_IO_SYNC;
	else
		return -EINVAL;
	return 0;
}

/* spool_set_io - choose the I/O engine now; forcing uring may fail */
int
spool_set_io(struct spool *sp, enum spool_io_mode m)
{
	struct spool_io *io;
	int r;

	if ((r = spool_io_open(&io, m)) < 0)
		return r;
	spool_io_close(sp->io);
	sp->io = io;
	sp->iomode = m;
	return 0;
}

/* spool_set_stopfd - a descriptor that ends every wait (spool.h) */
void
spool_set_stopfd(struct spool *sp, int fd)
{
	sp->stopfd = fd;
}

/*
 * spool_wait_fd - wait until fd is readable (1) or timeout_ms passes
 * (0; <0 waits for ever); -EINTR when a signal or the spool's stop
 * descriptor ends the wait
 */
int
spool_wait_fd(const struct spool *sp, int fd, int timeout_ms)
{
	struct pollfd pfd[2];
	nfds_t n = 1;
	int r;

	pfd[0].fd = fd;
	pfd[0].events = POLLIN;
	pfd[1].fd = sp->stopfd;
	pfd[1].events = POLLIN;
	pfd[1].revents = 0;
	if (sp->stopfd >= 0)
		n = 2;
	if ((r = poll(pfd, n, timeout_ms)) == -1)
		return -errno;
	if (pfd[1].revents != 0)
		return -EINTR;
	return r > 0;
}

/* spool_get_io - the spool's engine, opened on first use */
struct spool_io *
spool_get_io(struct spool *sp)
{
	if (sp->io == NULL && spool_io_open(&sp->io, sp->iomode) < 0)
		sp->io = NULL;
	return sp->io;
}

/* spool_io_name - which engine is in use */
const char *
spool_io_name(const struct spool *sp)
{
	return sp->io ? spool_io_kind(sp->io) : "none";
}

/* spool_fsync_dir - make the entries of a directory durable */
int
spool_fsync_dir(int dirfd)
{
	return fsync(dirfd) == -1 ? -errno : 0;
}

/* spool_sync_dir - the same, unless the spool was opened SPOOL_NOSYNC */
int
spool_sync_dir(const struct spool *sp, int dirfd)
{
	return sp->nosync ? 0 : spool_fsync_dir(dirfd);
}

/*
 * spool_write_file - replace dirfd/name with buf: written to name.tmp,
 * synced, renamed over name, then the directory synced, so that a crash
 * leaves either the old file or the new one, never a mix
 */
int
spool_write_file(int dirfd, const char *name, const void *buf, size_t len,
    int sync)
{
	char tmp[NAME_MAX + 1];
	ssize_t n;
	int fd, r = 0;

	if (snprintf(tmp, sizeof(tmp), "%s.tmp", name) >= (int)sizeof(tmp))
		return -ENAMETOOLONG;
	fd = openat(dirfd, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW |
	    O_CLOEXEC, 0664);
	if (fd == -1)
		return -errno;
	while (len > 0) {
		if ((n = write(fd, buf, len)) == -1) {
			if (errno == EINTR)
				continue;
			r = -errno;
			break;
		}
		buf = (const char *)buf + n;
		len -= n;
	}
	/* the data must be on disk before the name points at it */
	if (r == 0 && sync && fsync(fd) == -1)
		r = -errno;
	if (close(fd) == -1 && r == 0)
		r = -errno;
	if (r == 0 && renameat(dirfd, tmp, dirfd, name) == -1)
		r = -errno;
	if (r < 0) {
		(void)unlinkat(dirfd, tmp, 0);
		return r;
	}
	/* and the rename itself must survive a crash */
	return sync ? spool_fsync_dir(dirfd) : 0;
}

/* spool_read_file - read a small file whole, NUL-terminated */
int
spool_read_file(int dirfd, const char *name, char *buf, size_t cap)
{
	size_t len = 0;
	ssize_t n;
	int fd;

	fd = openat(dirfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd == -1)
		return -errno;
	while (len + 1 < cap) {
		n = read(fd, buf + len, cap - 1 - len);
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1) {
			n = -errno;
			close(fd);
			return n;
		}
		if (n == 0)
			break;
		len += n;
	}
	close(fd);
	if (len + 1 >= cap)
		return -EFBIG;
	buf[len] = '\0';
	return (int)len;
}

/*
 * spool_opendir - a directory stream on dirfd/name (name "." for dirfd
 * itself, read from its start whatever dirfd's offset); 0 or -errno
 */
int
spool_opendir(int dirfd, const char *name, DIR **dp)
{
	int fd, e;

	fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW |
	    O_CLOEXEC);
	if (fd == -1)
		return -errno;
	if ((*dp = fdopendir(fd)) == NULL) {
		e = -errno;
		close(fd);
		return e;
	}
	return 0;
}

/* spool_rmtree - remove dfd/name and everything below it */
int
spool_rmtree(int dfd, const char *name)
{
	struct dirent *de;
	DIR *d;
	int r, e;

	if (unlinkat(dfd, name, 0) == 0)
		return 0;
	if (errno == ENOENT)
		return 0;
	if (errno != EISDIR && errno != EPERM)
		return -errno;
	if ((r = spool_opendir(dfd, name, &d)) < 0)
		return r;
	while ((de = readdir(d)) != NULL) {
		if (strcmp(de->d_name, ".") == 0 ||
		    strcmp(de->d_name, "..") == 0)
			continue;
		if ((e = spool_rmtree(dirfd(d), de->d_name)) < 0 && r == 0)
			r = e;
	}
	closedir(d);
	if (unlinkat(dfd, name, AT_REMOVEDIR) == -1 && r == 0)
		r = -errno;
	return r;
}

/* spool_now_ms - the wall clock in ms since the epoch */
int64_t
spool_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/*
 * spool_watch - add an inotify watch on a directory descriptor (by its
 * /proc/self/fd name: the spool is reached through descriptors only)
 */
int
spool_watch(int ifd, int dirfd, uint32_t mask)
{
	char path[64];

	snprintf(path, sizeof(path), "/proc/self/fd/%d", dirfd);
	return inotify_add_watch(ifd, path, mask);
}

/* spool_touch - create an empty file in dirfd (kept if it is there) */
int
spool_touch(int dirfd, const char *name)
{
	int fd;

	fd = openat(dirfd, name, O_WRONLY | O_CREAT | O_NOFOLLOW | O_CLOEXEC,
	    0664);
	if (fd == -1)
		return -errno;
	close(fd);
	return 0;
}

/*
 * spool_lock_file - open and flock a lock file in dirfd; a shared lock
 * opens it read-only, so that a user who may only read can verify
 */
int
spool_lock_file(int dirfd, int how)
{
	int fd = -1;

	if (how == LOCK_SH)
		fd = openat(dirfd, SPOOL_LOCK_NAME, O_RDONLY | O_NOFOLLOW |
		    O_CLOEXEC);
	if (fd == -1)
		fd = openat(dirfd, SPOOL_LOCK_NAME, O_RDWR | O_CREAT |
		    O_NOFOLLOW | O_CLOEXEC, 0664);
	if (fd == -1)
		return -errno;
	while (flock(fd, how) == -1) {
		if (errno != EINTR) {
			int e = -errno;

			close(fd);
			return e;
		}
	}
	return fd;
}
