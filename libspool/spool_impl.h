/*
 * spool_impl.h - declarations shared by the modules of libspool, not
 * part of the public interface (spool.h)
 */

#ifndef SPOOL_IMPL_H
#define SPOOL_IMPL_H

#include <sys/types.h>

#include <dirent.h>
#include <stdarg.h>
#include <stdint.h>

#include "format.h"
#include "spool.h"

#define SPOOL_ERRMSG_MAX	512
#define SPOOL_LOCK_NAME		"lock"
#define SPOOL_CONFIG_NAME	"config"
#define SPOOL_LOG_SUFFIX	".log"
#define SPOOL_IDX_SUFFIX	".index"
#define SPOOL_SEGNAME_LEN	20
#define SPOOL_PART_MAX		4096	/* partitions a topic may have */

struct spool_io;

struct spool {
	int		 dirfd;		/* the spool directory */
	int		 topicsfd;	/* DIR/topics, -1 if absent */
	char		*path;
	enum spool_io_mode iomode;
	int		 nosync;	/* SPOOL_NOSYNC */
	struct spool_io	*io;		/* opened on first use */
	int		 stopfd;	/* spool_set_stopfd, -1 if none */
	char		 errmsg[SPOOL_ERRMSG_MAX];
};

struct spool_topic {
	struct spool	*sp;
	char		*name;
	int		 dirfd;
	struct spool_config cfg;
};

/* spool.c */
void	 spool_seterr(struct spool *, const char *fmt, ...)
	    __attribute__((format(printf, 2, 3)));
int	 spool_fsync_dir(int dirfd);
int	 spool_wait_fd(const struct spool *, int fd, int timeout_ms);
int	 spool_sync_dir(const struct spool *, int dirfd);
int	 spool_write_file(int dirfd, const char *name, const void *buf,
	    size_t len, int sync);
int	 spool_read_file(int dirfd, const char *name, char *buf, size_t cap);
int	 spool_rmtree(int dirfd, const char *name);
int	 spool_opendir(int dirfd, const char *name, DIR **);
int	 spool_lock_file(int dirfd, int how);
int	 spool_touch(int dirfd, const char *name);
/* dirlist.c: the one directory listing */
int	 spool_dir_list(DIR *, size_t, int (*)(const struct dirent *, void *,
	    void *), void *, int (*)(const void *, const void *),
	    void (*)(void *), void **, size_t *);
int	 spool_dir_names(DIR *, int (*keep)(const struct dirent *, void *), void *,
	    char ***, size_t *);
struct spool_io *spool_get_io(struct spool *);
int	 spool_topics_dir(struct spool *, int create);
int	 spool_watch(int ifd, int dirfd, uint32_t mask);

/* io.c */
int	 spool_io_open(struct spool_io **, enum spool_io_mode);
void	 spool_io_close(struct spool_io *);
const char *spool_io_kind(struct spool_io *);
ssize_t	 spool_io_pread(struct spool_io *, int fd, void *, size_t, off_t);
int	 spool_io_pwrite(struct spool_io *, int fd, const void *, size_t, off_t,
	    int datasync);
int	 spool_io_fdatasync(struct spool_io *, int fd);
/* a read-ahead in flight: owned by the caller, zeroed before first use */
struct spool_io_req {
	int		 pending;	/* started, not yet collected */
	int		 done;		/* its completion has arrived */
	ssize_t		 res;
	int		 fd;		/* the sync engine's deferred read */
	void		*buf;
	size_t		 len;
	off_t		 off;
};
int	 spool_io_read_start(struct spool_io *, struct spool_io_req *, int fd,
	    void *, size_t, off_t);
ssize_t	 spool_io_read_wait(struct spool_io *, struct spool_io_req *,
	    int timeout_ms);

/* crc.c */
uint32_t spool_crc(uint32_t, const void *, size_t);

/* batch.c: building one batch in memory */
struct spool_batch {
	unsigned char	*buf;		/* header room + records */
	size_t		 len;
	size_t		 cap;
	unsigned char	*zbuf;		/* compressed body */
	size_t		 zcap;
	uint32_t	 count;
	int64_t		 base_ts;
	int64_t		 max_ts;
};
void	 spool_batch_init(struct spool_batch *);
void	 spool_batch_free(struct spool_batch *);
void	 spool_batch_reset(struct spool_batch *);
size_t	 spool_batch_recsize(const struct spool_msg *);
int	 spool_batch_add(struct spool_batch *, const struct spool_msg *, int64_t ts);
ssize_t	 spool_batch_add_recs(struct spool_batch *, const struct spool_rec *,
	    size_t n, int64_t ts, size_t max, size_t full);
int	 spool_batch_seal(struct spool_batch *, int codec, int level,
	    const unsigned char **out, size_t *outlen);
void	 spool_batch_stamp(unsigned char *hdr, uint64_t base_offset);
void	 spool_bhdr_pack(unsigned char *, const struct spool_bhdr *);
int	 spool_bhdr_unpack(const unsigned char *, struct spool_bhdr *);
void	 spool_bhdr_newer(const unsigned char *, char *buf, size_t len);
void	 spool_batch_end(unsigned char *hdr, uint64_t next, int64_t ts);
int	 spool_batch_read_file(struct spool *, const char *what, int dfd,
	    const char *name, unsigned char **, size_t *, struct spool_bhdr *);
int	 spool_batch_grow(unsigned char **, size_t *cap, size_t need);

/* decoding a batch body */
struct spool_body {
	const unsigned char *p;
	const unsigned char *end;
	uint32_t	 left;
	uint64_t	 offset;
	int64_t		 base_ts;
	struct spool_header *hdrs;
	size_t		 hcap;
	unsigned char	*zbuf;
	size_t		 zcap;
};
int	 spool_body_open(struct spool_body *, const struct spool_bhdr *,
	    const unsigned char *body, char *why, size_t whylen);
int	 spool_body_next(struct spool_body *, struct spool_msg *);
struct spool_body_range {		/* what spool_body_copy takes */
	uint64_t	 from, until;	/* offsets */
	int64_t		 until_ts;
	size_t		 big;		/* payloads this long are not copied */
};
size_t	 spool_body_copy(struct spool_body *, unsigned char *out, size_t cap,
	    const unsigned char *delim, size_t dlen, size_t max,
	    const struct spool_body_range *, size_t *n, uint64_t *last);
void	 spool_body_free(struct spool_body *);

/* seglist.c: a partition's segments, by name */
struct spool_seglist {
	uint64_t	*base;
	size_t		 n;
};
int	 spool_seg_list(int partfd, struct spool_seglist *);
void	 spool_seg_free(struct spool_seglist *);
void	 spool_seg_name(char *buf, uint64_t base, const char *suffix);
int	 spool_seg_find(const struct spool_seglist *, uint64_t offset);
int	 spool_seg_open_ro(int partfd, uint64_t base, off_t *size);

/* segment.c: one segment file's batches: its good end, recovery */

enum spool_scan { SCAN_OK, SCAN_TORN, SCAN_BADHDR, SCAN_BADBODY };
struct spool_scanpos {
	off_t		 pos;		/* where scanning stopped */
	uint64_t	 next;		/* offset after the last good batch */
	int		 end;		/* an END batch was seen */
	int64_t		 max_ts;
	off_t		 indexed;	/* spool_seg_end: where the last good
					   index entry points (0: none) */
};
int	 spool_seg_scan(struct spool_io *, int fd, off_t from,
	    off_t size, int bodies, struct spool_scanpos *, char *why,
	    size_t whylen);
int	 spool_seg_end(struct spool_io *, int logfd, int idxfd, uint64_t base,
	    off_t size, struct spool_scanpos *, ssize_t *keep, char *why,
	    size_t whylen);
int	 spool_seg_zero_tail(struct spool_io *, int fd, off_t pos, off_t size);
int	 spool_seg_bound(struct spool_io *, int fd, off_t pos, off_t size,
	    uint64_t expect, off_t *endpos, uint64_t *next);
int	 spool_seg_recover(struct spool *, uint64_t base,
	    int logfd, int idxfd, struct spool_scanpos *);
int	 spool_seg_reindex(struct spool_io *, int pfd, int logfd, uint64_t base,
	    off_t size);

/* idx.c: a segment's sparse index */
ssize_t	 spool_idx_best(struct spool_io *, int logfd, int idxfd, uint64_t base,
	    uint64_t offset, off_t size, off_t *pos, uint64_t *at);
int	 spool_idx_append(int idxfd, uint64_t base, uint64_t offset, off_t pos);
int	 spool_idx_trim(int idxfd, ssize_t keep);
int	 spool_idx_put(unsigned char *e, uint64_t base, uint64_t offset,
	    off_t pos);
int	 spool_idx_check(struct spool_io *, int pfd, int logfd, uint64_t base,
	    off_t size);

/* cursor.c: the verified batch headers of one partition, in order */
enum spool_cur {
	SPOOL_CUR_DONE,		/* no segment has more (for now) */
	SPOOL_CUR_BATCH,	/* c->h at c->pos, whole in the file */
	SPOOL_CUR_TORN,		/* the segment ends in part of a batch */
	SPOOL_CUR_BAD,		/* a header that does not check out */
	SPOOL_CUR_HOLE		/* offsets spool_damage_jump (c->why) */
};
struct spool_cursor {
	struct spool_io	*io;
	int		 partfd;	/* -1: one segment only */
	struct spool_seglist segs;	/* as listed when opened */
	size_t		 seg;		/* segs.base[seg] is open */
	int		 logfd;
	int		 ownfd;		/* logfd is the cursor's to close */
	uint64_t	 base;		/* the open segment's first offset */
	off_t		 size;		/* its size when opened */
	off_t		 at;		/* where the next header is read */
	uint64_t	 expect;	/* where the next batch should start */
	int		 held;		/* the batch at pos comes next */
	/* what spool_cursor_next stopped at */
	off_t		 pos;		/* byte of its header */
	struct spool_bhdr h;
	unsigned char	 hdr[SPOOL_HDR_SIZE];	/* as read */
	int		 gap;		/* a legal gap before it (compacted) */
	unsigned char	*body;		/* spool_cursor_body's */
	size_t		 bcap;
	/* read-ahead while batches are small: bytes rpos.. of the segment */
	unsigned char	*rbuf;
	size_t		 rlen;
	off_t		 rpos;
	int		 ahead;		/* the last batch was small */
	char		 why[192];
};
int	 spool_cursor_open(struct spool_cursor *, struct spool_io *, int partfd);
void	 spool_cursor_fd(struct spool_cursor *, struct spool_io *, int fd,
	    uint64_t base, off_t size, off_t at, uint64_t expect);
int	 spool_cursor_seek(struct spool_cursor *, uint64_t offset);
int	 spool_cursor_next(struct spool_cursor *);
int	 spool_cursor_resync_fd(struct spool_io *, int fd, off_t from,
	    off_t size, uint64_t minoff, off_t *found);
int	 spool_cursor_resync(struct spool_cursor *, uint64_t minoff);
int	 spool_cursor_body(struct spool_cursor *);
void	 spool_cursor_close(struct spool_cursor *);
int	 spool_cursor_follows(const struct spool_bhdr *, uint64_t expect);
int	 spool_cursor_find(struct spool_io *, int logfd, int idxfd, uint64_t base,
	    uint64_t offset, off_t size, off_t *pos, uint64_t *expect);

int	 spool_config_parse(struct spool_config *, char *text);

/* partition bounds, used by reader and topic info */
int	 spool_part_bounds(struct spool_topic *, uint32_t part,
	    struct spool_part_info *);
int	 spool_part_ends(struct spool_io *, int pfd,
	    const struct spool_seglist *, struct spool_part_info *);
int	 spool_part_make(const struct spool *, int tfd, uint32_t n);
int	 spool_part_open(struct spool_topic *, uint32_t part);
int	 spool_part_count(struct spool_topic *, uint32_t part, uint64_t from,
	    int (*)(const struct spool_bhdr *, const void *), const void *,
	    int);
int	 spool_topic_reload(struct spool_topic *);
/* topic.c and topic_config.c */
#define SPOOL_CONFIG_MAX	8192	/* bytes of a config file */
int	 spool_topic_config_load(struct spool_topic *);

/* group.c: one member of a consumer group (consumer.c reads for it) */
#define SPOOL_GROUP_REFRESH_MS 200	/* how often members look at each other */
struct spool_group;
int	 spool_group_open(struct spool_topic *, const char *, struct spool_group **);
int	 spool_group_refresh(struct spool_group *);
int	 spool_group_wants(const struct spool_group *, uint32_t part);
int	 spool_group_holds(const struct spool_group *, uint32_t part);
uint32_t spool_group_nparts(const struct spool_group *);
int	 spool_group_take(struct spool_group *, uint32_t part);
void	 spool_group_give(struct spool_group *, uint32_t part);
int	 spool_group_committed(struct spool_group *, uint32_t part, uint64_t *);
int	 spool_group_commit(struct spool_group *, uint32_t part, uint64_t off);
int	 spool_group_sync(struct spool_group *);
int	 spool_group_topdir(struct spool_topic *, int create);
int	 spool_group_dir(struct spool_topic *, const char *, int create);
int	 spool_group_lockat(int dirfd, const char *name, int how);
int	 spool_group_held(int dirfd, const char *name);
int	 spool_group_verify(struct spool_topic *,
	    void (*report)(void *, const char *), void *arg);
uint64_t spool_group_max(struct spool_topic *, uint32_t part);

/* offset.c: a group's offset file */
int	 spool_offset_read(int gfd, uint32_t part, uint64_t *off, uint64_t *seq);
int	 spool_offset_write(const struct spool *, int gfd, int *fdp,
	    uint32_t part, uint64_t *seq, uint64_t off);
int	 spool_offset_damaged(struct spool_topic *, const char *group,
	    uint32_t part);

/* dedup.c */
int	 spool_dedup_pending_from(struct spool_topic *, uint32_t part,
	    uint64_t *off);
int	 spool_dedup_verify(struct spool_topic *,
	    void (*report)(void *, const char *), void *arg);
int	 spool_dedup_rebuild(struct spool_topic *, size_t *wrote);
void	 spool_group_close(struct spool_group *);

/* compact.c: called by gc with the partition's gc lock held */
uint64_t spool_compact_gen(int pfd);
int	 spool_compact_part(struct spool_topic *, uint32_t part, int pfd,
	    int64_t now, void (*report)(void *, const char *), void *arg);

/* schedule.c and writer.c: scheduled batches */
int	 spool_sched_store(struct spool_topic *, uint32_t part, int64_t due,
	    unsigned char *buf, size_t len, uint32_t count, int sync);
int	 spool_txn_store(struct spool_topic *, uint64_t txid, uint32_t seq,
	    uint32_t part, unsigned char *buf, size_t len, uint32_t count,
	    int sync);
int	 spool_txn_settle(struct spool_topic *, uint64_t txid);
int	 spool_txn_committing(struct spool_topic *, uint64_t txid);
int	 spool_txn_any_unsettled(struct spool_topic *, int64_t since);
int	 spool_txn_unsettled(struct spool_topic *, uint64_t txid, int64_t since);
int	 spool_txn_verify(struct spool_topic *,
	    void (*report)(void *, const char *), void *arg);
int	 spool_writer_put_batch(struct spool_writer *, uint32_t part,
	    unsigned char *buf, size_t len, uint32_t count);

/* head.c: the head segment of a partition, appended to under its lock */
struct spool_head {
	struct spool_topic *t;
	struct spool_io	*io;
	uint32_t	 part;
	int		 sync;		/* durable entries and END batches */
	int		 partfd;
	int		 lockfd;
	int		 logfd;
	int		 idxfd;
	uint64_t	 segbase;
	off_t		 end;		/* where the next batch goes */
	off_t		 lastidx;	/* log position of the last entry */
	uint64_t	 next;		/* offset of the next message */
	int		 dirty;		/* written since the last sync */
};
void	 spool_head_init(struct spool_head *, struct spool_topic *,
	    struct spool_io *, uint32_t part, int sync);
int	 spool_head_append(struct spool_head *, uint32_t epoch,
	    unsigned char *buf, size_t len, uint32_t count, uint64_t *base);
int	 spool_head_sync(struct spool_head *);
void	 spool_head_close(struct spool_head *);

/* sched_repl.c for repl_*.c: the scheduled store of a replica */
int	 spool_sched_names(struct spool_topic *, char ***, size_t *);
int	 spool_sched_get(struct spool_topic *, const char *name,
	    unsigned char **, size_t *);
int	 spool_sched_put(struct spool_topic *, const char *name,
	    const unsigned char *, size_t, int sync);
int	 spool_sched_drop(struct spool_topic *, const char *name, int sync);
int	 spool_sched_setfrom(struct spool_topic *, const uint64_t *from,
	    uint32_t n, int sync);
int	 spool_sched_reconcile(struct spool_topic *);

/* reader.c and position.c: a reader and the partitions it reads */
#define SPOOL_EXPECT_ANY	UINT64_MAX	/* after skipped damage: any offset */

struct spool_rpart {
	uint32_t	 id;
	int		 partfd;
	int		 logfd;
	int		 wd;
	uint64_t	 segbase;
	off_t		 filepos;	/* file position of buf[0] */
	unsigned char	*buf;
	size_t		 cap;
	size_t		 have;		/* bytes in buf */
	size_t		 at;		/* next batch starts at buf[at] */
	int		 ring;		/* buf is mapped twice (rbuf.c) */
	int		 noring;	/* ...and cannot be: do not ask again */
	uint64_t	 next;		/* next offset to hand out */
	uint64_t	 expect;	/* where the next batch should start */
	off_t		 bpos;		/* file position of the open body */
	uint64_t	 until;
	int64_t		 until_ts;
	int		 done;
	int		 paused;
	int		 inbody;
	uint64_t	 txok;		/* a txid last found visible */
	struct spool_body body;
	struct spool_seglist segs;	/* as last listed */
	int		 listed;	/* segs holds all: no file came since */
	int		 tail;		/* the last read was short: at the end */
	int		 drained;	/* ...and no wake since: read no more */
};

struct spool_reader {
	struct spool_topic *t;
	struct spool_io	*io;
	struct spool_reader_opts o;
	struct spool_rpart	*parts;
	uint32_t	 n;
	uint32_t	 cur;
	uint32_t	 idle;
	struct spool_rpart	*ahead;		/* owner of the read-ahead */
	struct spool_io_req rd;		/* the read-ahead itself */
	int		 ifd;
	int		 twd;
};

int	 spool_reader_add_parts(struct spool_reader *, uint32_t count,
	    const struct spool_pos *start);
int	 spool_position_start(struct spool_reader *, struct spool_rpart *,
	    const struct spool_pos *);

/* walk.c: the batches of one partition of a reader */
void	 spool_walk_reset(struct spool_reader *, struct spool_rpart *,
	    off_t pos);
int	 spool_walk_seg(struct spool_reader *, struct spool_rpart *,
	    uint64_t base, off_t pos);
void	 spool_walk_collect(struct spool_reader *);

/* rbuf.c: a reader partition's buffer, a ring mapped twice */
#define SPOOL_RBUF_CHUNK	(1u << 20)	/* its size, and a read's */
void	 spool_rbuf_free(struct spool_rpart *);
void	 spool_rbuf_norm(struct spool_rpart *, size_t *keep);
size_t	 spool_rbuf_room(const struct spool_rpart *, size_t keep);
int	 spool_rbuf_make(struct spool_rpart *, size_t need);
int	 spool_walk_next(struct spool_reader *, struct spool_rpart *);

/* damage.c: damage, holes and newer batches met by a reader's walk */
void	 spool_damage_warn(struct spool_reader *, const char *fmt, ...)
	    __attribute__((format(printf, 2, 3)));
int	 spool_damage_skip(struct spool_reader *, struct spool_rpart *, off_t at,
	    const char *why);
int	 spool_damage_newer(struct spool_reader *, struct spool_rpart *, off_t at,
	    const char *what);
int	 spool_damage_confirm(struct spool_io *, int partfd, int logfd,
	    off_t pos);
int	 spool_damage_seg_gap(struct spool_reader *, struct spool_rpart *,
	    uint64_t want, uint64_t base);
int	 spool_damage_jump(struct spool_reader *, struct spool_rpart *,
	    const struct spool_bhdr *, off_t pos);

#endif
