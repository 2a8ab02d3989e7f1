/*
 * replicate.h - declarations shared by mirror*.c and repl_*.c, not part
 * of the public interface (spool.h)
 */

#ifndef SPOOL_REPLICATE_H
#define SPOOL_REPLICATE_H

#include <sys/types.h>

#include <stdint.h>

#include "spool_impl.h"

/* one partition of a replica, held under its partition lock */
struct spool_mirror {
	struct spool_topic *t;
	struct spool_io	*io;
	uint32_t	 part;
	int		 partfd;
	int		 lockfd;
	int		 logfd;		/* the head segment, -1: none */
	int		 idxfd;
	uint64_t	 segbase;
	off_t		 end;		/* bytes of the head */
	off_t		 lastidx;
	uint64_t	 next;		/* offset of the next message */
	uint64_t	 first;		/* base of the oldest segment */
	size_t		 nseg;
	int		 closed;	/* the head ends with an END batch */
	int		 dirty;
	int		 haslast;	/* the newest batch held: */
	uint64_t	 lastseg;	/*  its segment */
	off_t		 lastpos;	/*  its position there */
	uint32_t	 lastcrc;	/*  its header checksum */
	uint64_t	 lastoff;	/*  its base offset */
	uint32_t	 lastlen;	/*  its length with the header */
	uint64_t	 lastdoff;	/* the newest batch but END: offset */
	uint32_t	 lastepoch;	/*  and epoch */
};

/* a segment compacted on the source, being installed whole (temp files) */
struct spool_minstall {
	int		 fd;		/* NAME.log.compacting */
	int		 ifd;		/* NAME.index.compacting */
	uint64_t	 base;
	off_t		 size;		/* bytes announced */
	off_t		 pos;		/* bytes written */
	off_t		 lastidx;
	uint64_t	 next;		/* offset after the last batch */
	int		 closed;	/* an END batch came */
};

/*
 * the transaction spool_mirror_held last found settled, so that the
 * rest of its batches cost no lookup: settled for every pass that began
 * at since or later (a commit's end only moves into the past)
 */
struct spool_mheld {
	char		 topic[SPOOL_NAME_MAX + 1];
	uint64_t	 txid;		/* 0: none (no transaction has 0) */
	int64_t		 since;
};

/* a batch of a segment, for the divergence probe */
struct spool_mbatch {
	off_t		 pos;
	uint64_t	 off;
	uint32_t	 crc;
	uint32_t	 len;		/* header and body */
	uint32_t	 count;
};

int	 spool_mirror_open(struct spool_topic *, uint32_t part, int lock,
	    struct spool_mirror *);
void	 spool_mirror_close(struct spool_mirror *);
int	 spool_mirror_holds(const struct spool_mirror *);
int	 spool_mirror_segment(struct spool_mirror *, uint64_t base, int sync);
int	 spool_mirror_append(struct spool_mirror *, const unsigned char *,
	    size_t, size_t *nbatches);
int	 spool_mirror_sync(struct spool_mirror *);
int	 spool_mirror_drop(struct spool_mirror *, uint64_t below, int sync);
int	 spool_mirror_droppable(struct spool_mirror *, uint64_t below);
int	 spool_mirror_batches(struct spool_mirror *, uint64_t segbase,
	    struct spool_mbatch **, size_t *n);
int	 spool_mirror_aside(struct spool_mirror *, uint64_t segbase, off_t pos,
	    int afd, uint64_t *nmsgs);
int	 spool_mirror_cut(struct spool_mirror *, uint64_t segbase, off_t pos,
	    int sync);
int	 spool_mirror_segs(struct spool_mirror *, struct spool_seglist *);
int	 spool_mirror_ident(struct spool_io *, int partfd, uint64_t base,
	    off_t *size, uint32_t *crc);
int	 spool_mirror_install_begin(struct spool_mirror *, uint64_t base,
	    off_t size, struct spool_minstall *);
int	 spool_mirror_install_data(struct spool_mirror *,
	    struct spool_minstall *, const unsigned char *, size_t);
int	 spool_mirror_install_end(struct spool_mirror *,
	    struct spool_minstall *, int sync);
void	 spool_mirror_install_abort(struct spool_mirror *,
	    struct spool_minstall *);
int	 spool_mirror_reload(struct spool_mirror *);
uint64_t spool_mirror_gen(struct spool_mirror *);
int	 spool_mirror_set_gen(struct spool_mirror *, uint64_t gen, int sync);
int	 spool_mirror_held(struct spool_topic *, const struct spool_bhdr *,
	    int64_t since, struct spool_mheld *);

/* mirror.c, for mirror_append.c, mirror_cut.c and mirror_install.c */
int	 spool_mirror_load(struct spool_mirror *);
void	 spool_mirror_close_head(struct spool_mirror *);
int	 spool_mirror_walk_last(struct spool_mirror *, int logfd, int idxfd,
	    uint64_t base, uint64_t next, off_t size);
int	 spool_mirror_unlink_seg(int partfd, uint64_t base);

#endif
