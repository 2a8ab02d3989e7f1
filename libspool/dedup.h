/*
 * dedup.h - what dedup.c and dedup_ids.c share: the send ID marker's
 * format; not part of the public interface
 */

#ifndef SPOOL_DEDUP_H
#define SPOOL_DEDUP_H

#include <stddef.h>
#include <stdint.h>

/* a pending marker: "pending", the time, one start a partition */
#define MARKER_MAX	(64 + 21 * SPOOL_PART_MAX)

int	 spool_dedup_parse(char *text, int64_t *ts, uint64_t *starts,
	    size_t *nstarts);

#endif
