/*
 * seglist.c - the segments of a partition directory, by name
 *
 * A segment file is named by its first offset, 20 digits, and ".log"
 * (its index ".index"), so that ls sorts them.  This module makes those
 * names, lists the segments of a partition directory oldest first, and
 * finds the one that would hold an offset, and opens one for reading.
 * It reads no file's contents (segment.c and cursor.c do) and takes no
 * lock: a list is what the directory held when it was read.  Its functions keep the spool_seg_
 * prefix of the segment module they came out of.
 */

#include <sys/stat.h>
#include <sys/types.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "spool_impl.h"

/* spool_seg_name - the file name of a segment or index */
void
spool_seg_name(char *buf, uint64_t base, const char *suffix)
{
	snprintf(buf, SPOOL_SEGNAME_LEN + 16, "%020" PRIu64 "%s", base, suffix);
}

/* segname_parse - base offset of a NNN.log name; 0 if not one */
static int
segname_parse(const char *s, uint64_t *base)
{
	uint64_t v = 0;
	int i;

	for (i = 0; i < SPOOL_SEGNAME_LEN; i++) {
		if (s[i] < '0' || s[i] > '9')
			return 0;
		if (v > (UINT64_MAX - 9) / 10)
			return 0;
		v = v * 10 + (s[i] - '0');
	}
	if (strcmp(s + SPOOL_SEGNAME_LEN, SPOOL_LOG_SUFFIX) != 0)
		return 0;
	*base = v;
	return 1;
}

static int
cmpu64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* spool_seg_list - the segments of a partition, oldest first */
int
spool_seg_list(int partfd, struct spool_seglist *l)
{
	struct dirent *de;
	uint64_t base, *nb;
	size_t cap = 0;
	DIR *d;
	int r;

	l->base = NULL;
	l->n = 0;
	if ((r = spool_opendir(partfd, ".", &d)) < 0)
		return r;
	while ((de = readdir(d)) != NULL) {
		if (!segname_parse(de->d_name, &base))
			continue;
		if (l->n == cap) {
			cap = cap ? cap * 2 : 16;
			if ((nb = realloc(l->base, cap * sizeof(*nb))) == NULL) {
				closedir(d);
				spool_seg_free(l);
				return -ENOMEM;
			}
			l->base = nb;
		}
		l->base[l->n++] = base;
	}
	closedir(d);
	if (l->n > 1)	/* an empty partition has no array to sort */
		qsort(l->base, l->n, sizeof(*l->base), cmpu64);
	return 0;
}

/* spool_seg_free - release a segment list */
void
spool_seg_free(struct spool_seglist *l)
{
	free(l->base);
	l->base = NULL;
	l->n = 0;
}

/* spool_seg_find - index of the segment that would hold offset, or -1 */
int
spool_seg_find(const struct spool_seglist *l, uint64_t offset)
{
	size_t lo = 0, hi = l->n;

	if (l->n == 0 || offset < l->base[0])
		return -1;
	while (hi - lo > 1) {
		size_t mid = (lo + hi) / 2;

		if (l->base[mid] <= offset)
			lo = mid;
		else
			hi = mid;
	}
	return (int)lo;
}

/* spool_seg_open_ro - segment base of partfd opened to read, its size */
int
spool_seg_open_ro(int partfd, uint64_t base, off_t *size)
{
	char name[SPOOL_SEGNAME_LEN + 16];
	struct stat st;
	int fd;

	spool_seg_name(name, base, SPOOL_LOG_SUFFIX);
	fd = openat(partfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd == -1)
		return -errno;
	if (fstat(fd, &st) == -1) {
		close(fd);
		return -errno;
	}
	*size = st.st_size;
	return fd;
}
