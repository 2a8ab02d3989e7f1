/*
 * dedup_search.h - a send with an ID under way, and the search for what
 * an earlier attempt at it stored (dedup_search.c), shared with dedup.c
 * and dedup_rebuild.c; not part of the public interface
 */

#ifndef SPOOL_DEDUP_SEARCH_H
#define SPOOL_DEDUP_SEARCH_H

#include <stddef.h>
#include <stdint.h>

struct spool_msg;
struct spool_pos;
struct spool_topic;

/* a send with an ID under way (spool_dedup_begin to _end) */
struct spool_dedup {
	struct spool_topic *t;
	int		 lockfd;
	char		 name[2 * SPOOL_ID_MAX + 1];
	uint64_t	*found;		/* hashes of stored records, sorted */
	unsigned char	*used;		/* found[i] matched a message already */
	size_t		 nfound;
	size_t		 cap;
};

uint64_t spool_dedup_hash(const struct spool_msg *);
int	 spool_dedup_search(struct spool_dedup *, const void *id, size_t len,
	    int64_t from, const uint64_t *starts, size_t nstarts,
	    int64_t since);
int	 spool_dedup_each(struct spool_topic *, uint32_t part,
	    const struct spool_pos *start, uint64_t until,
	    int (*)(uint32_t, const struct spool_msg *, void *), void *);

#endif
