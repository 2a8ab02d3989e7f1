/*
 * dedup.h - what dedup.c, dedup_ids.c and dedup_rebuild.c share: the
 * send ID marker's format and place; not part of the public interface
 */

#ifndef SPOOL_DEDUP_H
#define SPOOL_DEDUP_H

#include <stddef.h>
#include <stdint.h>

/* a pending marker: "pending", the time, one start a partition */
#define MARKER_MAX	(64 + 21 * SPOOL_PART_MAX)

struct spool_topic;

int	 spool_dedup_parse(char *text, int64_t *ts, uint64_t *starts,
	    size_t *nstarts);
void	 spool_dedup_marker_name(char *buf, const void *id, size_t len);
int	 spool_dedup_open_ids(struct spool_topic *, int create);

#endif
