/*
 * shim.c - LD_PRELOAD model of a power failure: only what was fsync'd
 * survives
 *
 * Every fsync(2) and fdatasync(2) of the program under test is passed to
 * the kernel and also recorded in a shadow directory ($MQ_SHADOW): for a
 * regular file, a copy of its whole content at that moment (an fsync
 * writes every dirty page of the file, whoever wrote it); for a
 * directory, its listing of names and inode numbers (an fsync of a
 * directory makes its entries durable).  rebuild.py then assembles the
 * spool a machine would find after losing power at the moment the
 * program was killed: directories hold only the entries of their last
 * fsync, files only the content of theirs.  That is the POSIX minimum;
 * real file systems keep more, which can only hide a missing fsync, so
 * the model is the strict one.
 *
 * Use with MQ_IO=sync: io_uring's fsync does not go through libc.
 */

#define _GNU_SOURCE
#include <sys/file.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/types.h>

#include <dirent.h>
#include <dlfcn.h>
#include <linux/fs.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/*
 * gen - the inode's generation: inode numbers are reused once a file is
 * gone (a config replaced by rename frees the old one), and without it
 * a new file would inherit what an old one had synced
 */
static unsigned long
gen(int fd)
{
	long g = 0;

	if (ioctl(fd, FS_IOC_GETVERSION, &g) == -1)
		return 0;
	return (unsigned long)g;
}

/* record - copy what fd holds now into the shadow, under its lock */
static void
record(int fd)
{
	const char *shadow = getenv("MQ_SHADOW");
	char path[4096], tmp[4400], dst[4200], buf[65536];
	struct dirent *de;
	struct stat st;
	FILE *f;
	DIR *d;
	ssize_t n;
	int lock, in, out, e = errno;

	if (shadow == NULL || fstat(fd, &st) == -1)
		goto out;
	snprintf(path, sizeof(path), "%s/lock", shadow);
	if ((lock = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600)) == -1)
		goto out;
	flock(lock, LOCK_EX);
	snprintf(dst, sizeof(dst), "%s/%s/%llu-%llu-%lu", shadow,
	    S_ISDIR(st.st_mode) ? "dirs" : "files",
	    (unsigned long long)st.st_dev, (unsigned long long)st.st_ino,
	    gen(fd));
	snprintf(tmp, sizeof(tmp), "%s.tmp", dst);
	if (S_ISDIR(st.st_mode)) {
		if ((in = openat(fd, ".", O_RDONLY | O_DIRECTORY)) == -1 ||
		    (d = fdopendir(in)) == NULL || (f = fopen(tmp, "w")) == NULL)
			goto unlock;
		while ((de = readdir(d)) != NULL) {
			struct stat es;

			if (strcmp(de->d_name, ".") == 0 ||
			    strcmp(de->d_name, "..") == 0)
				continue;
			int efd;
			unsigned long eg = 0;

			if (fstatat(in, de->d_name, &es, AT_SYMLINK_NOFOLLOW))
				continue;
			efd = openat(in, de->d_name, O_RDONLY | O_NOFOLLOW |
			    O_CLOEXEC | O_NONBLOCK);
			if (efd >= 0) {
				eg = gen(efd);
				close(efd);
			}
			fprintf(f, "%s\t%llu-%llu-%lu\t%c\n", de->d_name,
			    (unsigned long long)es.st_dev,
			    (unsigned long long)es.st_ino, eg,
			    S_ISDIR(es.st_mode) ? 'd' : 'f');
		}
		closedir(d);
		fclose(f);
	} else if (S_ISREG(st.st_mode)) {
		snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
		if ((in = open(path, O_RDONLY | O_CLOEXEC)) == -1)
			goto unlock;
		if ((out = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0600)) == -1) {
			close(in);
			goto unlock;
		}
		while ((n = read(in, buf, sizeof(buf))) > 0)
			if (write(out, buf, n) != n)
				break;
		close(in);
		close(out);
	} else
		goto unlock;
	rename(tmp, dst);
unlock:
	close(lock);
out:
	errno = e;
}

int
fsync(int fd)
{
	static int (*real)(int);
	int r;

	if (real == NULL)
		real = (int (*)(int))dlsym(RTLD_NEXT, "fsync");
	if ((r = real(fd)) == 0)
		record(fd);
	return r;
}

int
fdatasync(int fd)
{
	static int (*real)(int);
	int r;

	if (real == NULL)
		real = (int (*)(int))dlsym(RTLD_NEXT, "fdatasync");
	if ((r = real(fd)) == 0)
		record(fd);
	return r;
}
