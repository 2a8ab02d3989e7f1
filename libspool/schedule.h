/*
 * schedule.h - what the files of delayed messages (schedule.c,
 * sched_move.c, sched_repl.c, sched_cancel.c) and the send ID searches
 * (dedup.c, dedup_rebuild.c) share: the scheduled/ directory's names,
 * its listing, the mover's lookups and the records by ID; not part of
 * the public interface
 */

#ifndef SPOOL_SCHED_H
#define SPOOL_SCHED_H

#include <stddef.h>
#include <stdint.h>

#define SCHED_DIR	"scheduled"
#define SCHED_MARKER	"moving"
#define BUCKET_MS	60000
#define SCHED_NAME_MAX	96

struct sfile {
	char		 name[SCHED_NAME_MAX];
	int64_t		 due;
	uint64_t	 seq;		/* when it was stored: ns, realtime */
	uint32_t	 part;
	uint32_t	 count;
};

/* schedule.c: names, buckets and listing */
int	 spool_sched_parse(const char *name, struct sfile *);
void	 spool_sched_bucket(char *buf, size_t len, int64_t due);
int	 spool_sched_opendir(const struct spool *, int dirfd, const char *name,
	    int create);
int	 spool_sched_files(int bfd, int sweep, struct sfile **, size_t *);
void	 spool_sched_free(char **, size_t);
int	 spool_sched_due(int sfd, const char *upto, const char *floor,
	    char ***, size_t *, char *later);
int	 spool_sched_buckets(int sfd, char ***, size_t *);
int	 spool_sched_each(int sfd, int (*)(int, const struct sfile *, size_t,
	    void *), void *);

/* sched_cancel.c: scheduled records by ID */
struct spool_msg;
int	 spool_sched_lock(struct spool_topic *, int *sfd, int *lfd);
int	 spool_sched_find(struct spool_topic *, int sfd, const void *id,
	    size_t idlen, int64_t from,
	    int (*)(const struct sfile *, const struct spool_msg *, void *),
	    void *);

/* sched_move.c: the mover's recovery and its lookup */
int	 spool_sched_moved(struct spool_topic *, uint32_t part, uint64_t from,
	    const struct spool_bhdr *);
int	 spool_sched_recover(struct spool_topic *, int sfd);

#endif
