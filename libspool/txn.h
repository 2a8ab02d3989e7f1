/*
 * txn.h - what the files of transactional messages (txn.c,
 * txn_commit.c, txn_settle.c, txn_list.c) share: txn/'s layout, the
 * state file and the batch files; not part of the public interface
 */

#ifndef SPOOL_TXN_H
#define SPOOL_TXN_H

#include <stddef.h>
#include <stdint.h>

#define TXN_DIR		"txn"
#define TXN_DONE	"done"
#define TXN_STATE	"state"
#define TXN_STATE_MAX	(192u << 10)	/* 4096 partitions of "from" */
#define TXN_KEEP_MS	(24 * 3600 * 1000LL)	/* resolved ones remembered */
#define TXN_NAME_MAX	64

enum { ST_NONE, ST_PREPARED, ST_COMMITTING, ST_COMMITTED, ST_ABORTED };

struct tstate {
	int		 st;
	int64_t		 created, deadline, resolved;
	char		*check;		/* in buf */
	char		*from;		/* in buf */
	char		*buf;
};

struct tfile {
	char		 name[TXN_NAME_MAX];
	uint32_t	 seq, part, count;
};

/* txn.c: names, state file, batch files, lock */
void	 spool_txn_hexname(char *buf, size_t len, uint64_t txid);
int	 spool_txn_opendir(const struct spool *, int dirfd, const char *name,
	    int create);
void	 spool_txn_state_free(struct tstate *);
int	 spool_txn_state_read(struct spool *, int dfd, const char *id,
	    struct tstate *);
int	 spool_txn_state_write(struct spool *, int dfd, int st,
	    const struct tstate *, const char *from);
int	 spool_txn_files(int dfd, struct tfile **, size_t *);
int	 spool_txn_lock(int xfd, int how);
int	 spool_txn_open(struct spool_topic *, uint64_t txid, int *xfd,
	    char *name, size_t len);
int	 spool_txn_dirs(int dfd, const char *name, char ***, size_t *);
void	 spool_txn_dirs_free(char **, size_t);

#endif
