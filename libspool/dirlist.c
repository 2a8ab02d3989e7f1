/*
 * dirlist.c - listing a directory, the one way the library does it
 *
 * spool_dir_list reads a directory stream into a sorted array of
 * elements that a callback makes of the entries it wants; spool_dir_names
 * is the common case, a sorted array of names.  Topics, groups,
 * scheduled buckets and files, transactions and their batch files are
 * all listed through here.  It opens nothing itself (the caller hands it
 * the stream, and it closes it) and keeps nothing between calls.
 */

#include <sys/types.h>

#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "spool_impl.h"

/* cmp_name - qsort by name */
static int
cmp_name(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/*
 * spool_dir_list - the entries of d that parse turns into an element of
 * size bytes (parse: 1 kept, 0 passed over, -errno to stop), sorted by
 * cmp, in a malloc'd array (*np of them); on an error, drop (when not
 * NULL) releases what each element kept holds.  d is closed whatever
 * happens.  The one directory listing of the library: topics, groups,
 * scheduled buckets and files, transactions and their files.
 */
int
spool_dir_list(DIR *d, size_t size,
    int (*parse)(const struct dirent *, void *elem, void *arg), void *arg,
    int (*cmp)(const void *, const void *), void (*drop)(void *elem),
    void **out, size_t *np)
{
	struct dirent *de;
	char *v = NULL, *nv;
	size_t n = 0, cap = 0;
	int r = 0;

	*out = NULL;
	*np = 0;
	while ((de = readdir(d)) != NULL) {
		if (n == cap) {
			cap = cap ? cap * 2 : 16;
			if ((nv = realloc(v, cap * size)) == NULL) {
				r = -ENOMEM;
				break;
			}
			v = nv;
		}
		if ((r = parse(de, v + n * size, arg)) < 0)
			break;
		n += (size_t)r;
		r = 0;
	}
	closedir(d);
	if (r < 0) {
		while (drop != NULL && n > 0)
			drop(v + --n * size);
		free(v);
		return r;
	}
	if (n > 1)
		qsort(v, n, size, cmp);
	*out = v;
	*np = n;
	return 0;
}

/* what spool_dir_names asks of a name, and of whom */
struct keep_names {
	int	(*keep)(const struct dirent *, void *);
	void	*arg;
};

/* name_parse - spool_dir_list's parse for spool_dir_names: a copy */
static int
name_parse(const struct dirent *de, void *elem, void *arg)
{
	const struct keep_names *k = arg;

	if (!k->keep(de, k->arg))
		return 0;
	if ((*(char **)elem = strdup(de->d_name)) == NULL)
		return -ENOMEM;
	return 1;
}

/* name_drop - spool_dir_list's drop for spool_dir_names */
static void
name_drop(void *elem)
{
	free(*(char **)elem);
}

/*
 * spool_dir_names - the names of d's entries that keep accepts, sorted,
 * in a malloc'd array of malloc'd strings (*np of them); d is closed
 * whatever happens
 */
int
spool_dir_names(DIR *d, int (*keep)(const struct dirent *, void *), void *arg,
    char ***out, size_t *np)
{
	struct keep_names k = { keep, arg };
	void *v;
	int r;

	*out = NULL;
	if ((r = spool_dir_list(d, sizeof(char *), name_parse, &k, cmp_name,
	    name_drop, &v, np)) == 0)
		*out = v;
	return r;
}
