/*
 * compact.h - what the files of compaction share (compact.c,
 * compact_keys.c, compact_seg.c, compact_install.c, compact_state.c);
 * private to them, not the library's interface (that is spool_impl.h)
 */

#ifndef COMPACT_H
#define COMPACT_H

#include <sys/types.h>

#include <stddef.h>
#include <stdint.h>

struct kslot;

/* the key map: key hash -> newest offset (compact_keys.c) */
struct kmap {
	struct kslot	*s;
	size_t		 cap;		/* slots, a power of two */
	size_t		 maxcap;	/* the most compaction.map.bytes allows */
	size_t		 n;
};

/* what compaction remembers of a partition between runs */
struct cstate {
	uint64_t	 clean;		/* below: at most one message a key */
	uint64_t	 bytes;		/* the partition's bytes after the run */
	int64_t		 last;		/* when it ran, ms */
	uint64_t	 removed;	/* messages it removed */
	int64_t		 tomb_ts;	/* the oldest kept tombstone's time */
	uint64_t	 gen;		/* changes around segments replaced */
	int		 pending;	/* a run replacing them did not end */
	uint64_t	 tail;		/* bytes from clean on after the run */
	int		 hastail;	/*  (older state files lack it) */
};

/* one run over one partition */
struct cctx {
	struct spool_topic *t;
	struct spool_io	*io;
	uint32_t	 part;
	int		 pfd;
	int64_t		 now;
	struct kmap	 map;
	uint64_t	 protect;	/* from here on everything stays */
	uint64_t	 lag_at;	/* the first message within the lag */
	uint64_t	 active;	/* the newest segment's base */
	struct cstate	*st;		/* saved with a new gen before a rename */
	int		 newgen;	/*  which this run has done */
	int64_t		 tomb_ts;
	uint64_t	 removed;
	/* input */
	unsigned char	*in;
	size_t		 incap;
	unsigned char	*keep;
	size_t		 keepcap;
	struct spool_body body;
	/* output */
	int		 ofd;
	unsigned char	*out;
	size_t		 outlen, outcap;
	off_t		 opos;		/* file position of out[0] */
	off_t		 lastidx;
	unsigned char	*ix;
	size_t		 ixlen, ixcap;
	uint64_t	 seg;		/* the segment being written */
	uint64_t	 written;	/* offset after the last batch written */
	struct spool_batch b;
};

/* compact_keys.c: which messages go */
void	 spool_compact_keys_init(struct kmap *, int64_t bytes);
int	 spool_compact_keys_map(struct cctx *, uint64_t from, uint64_t *stop);
int	 spool_compact_keys_drop(struct cctx *, const struct spool_msg *);
int	 spool_compact_keys_expired(const struct spool_topic *, int64_t now,
	    int64_t ts);

/* compact_seg.c: the pass over one sealed segment */
int64_t	 spool_compact_seg_pass(struct cctx *, int fd, uint64_t seg,
	    off_t size, int write);

/* compact_install.c: putting the results in place */
int	 spool_compact_install_rewrite(struct cctx *, int fd, uint64_t seg,
	    off_t size);
void	 spool_compact_install_clean(int pfd);
int	 spool_compact_install_drop_empty(struct cctx *,
	    void (*report)(void *, const char *), void *arg);

/* compact_state.c: the state file "compaction" and its generation */
void	 spool_compact_state_load(int pfd, struct cstate *);
uint64_t spool_compact_state_dirty(int pfd, const struct spool_part_info *,
	    const struct cstate *);
int	 spool_compact_state_newgen(struct cctx *);
int	 spool_compact_state_done(struct cctx *, uint64_t pending);

#endif
