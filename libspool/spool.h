/*
 * spool.h - the public interface of libspool
 *
 * A spool is a directory of topics; a topic is a set of partitions; a
 * partition is an append-only log of record batches in segment files.
 * The byte format is described in mq-spool(5) and libspool/format.h.
 *
 * Every fallible function returns 0 (or a count) on success and -errno on
 * failure.  Corrupt data is -EBADMSG; spool_errmsg() then says where.
 * Nothing here prints, exits or keeps global state; a handle may be used
 * by one thread at a time.
 *
 * libspool.so exports exactly the functions declared here (a version
 * script made from this file).  Until mq 1.0 neither the API nor the ABI
 * is stable: build against the version you run.
 */

#ifndef SPOOL_H
#define SPOOL_H

#include <errno.h>
#include <stddef.h>
#include <stdint.h>

#define SPOOL_VERSION	"0.1.0"
#define SPOOL_NAME_MAX	249

struct spool;
struct spool_topic;
struct spool_writer;
struct spool_reader;
struct spool_input;
struct spool_consumer;

/* spool_open flags */
#define SPOOL_CREATE	0x01	/* mkdir -p the spool if missing */
#define SPOOL_NOSYNC	0x02	/* never fsync: the kernel writes when it will */

/* I/O engine, from MQ_IO or forced by the caller */
enum spool_io_mode { SPOOL_IO_AUTO, SPOOL_IO_URING, SPOOL_IO_SYNC };

struct spool_header {
	const char	*name;
	size_t		 namelen;
	const void	*value;
	size_t		 valuelen;
};

/* one message, as handed to a writer or returned by a reader */
struct spool_msg {
	uint32_t	 partition;
	uint64_t	 offset;
	int64_t		 ts;		/* ms since the epoch; 0: now, */
	int		 ts_given;	/* unless this is set (0 is 0 then) */
	const void	*key;		/* NULL: no key */
	size_t		 keylen;
	const struct spool_header *headers;
	size_t		 nheaders;
	const void	*payload;
	size_t		 len;
	const void	*id;		/* mq-send --id; NULL: none */
	size_t		 idlen;
};

/* one record of a stream, in place (spool_input_more) */
struct spool_rec {
	const void	*p;
	size_t		 len;
};

/* topic configuration; spool_config_default() fills the defaults */
struct spool_config {
	uint32_t	 partitions;
	int64_t		 retention_ms;
	int64_t		 retention_bytes;
	int64_t		 segment_bytes;
	int64_t		 max_message_bytes;
	int		 codec;
	int		 level;
	int64_t		 dedup_window_ms;
	int		 compact;	/* cleanup.policy: SPOOL_CLEANUP_* */
	int64_t		 delete_retention_ms;	/* tombstones kept this long */
	int64_t		 min_compaction_lag_ms;	/* messages kept uncompacted */
	double		 min_cleanable_dirty_ratio;	/* when gc compacts */
	int64_t		 compaction_map_bytes;	/* key map bound; passes past it */
};
#define SPOOL_CLEANUP_DELETE	0	/* retention only */
#define SPOOL_CLEANUP_COMPACT	1	/* compaction only (compact.c) */
#define SPOOL_CLEANUP_BOTH	2	/* compact,delete */

struct spool_part_info {
	uint64_t	 first;		/* first retained offset */
	uint64_t	 next;		/* offset the next message gets */
	uint64_t	 bytes;		/* bytes of segment files */
	uint32_t	 segments;
	uint64_t	 missing;	/* offsets known missing between segments */
};

/* spool.c */
int	 spool_open(struct spool **, const char *dir, int flags);
void	 spool_close(struct spool *);
const char *spool_errmsg(const struct spool *);
int	 spool_io_mode_parse(const char *, enum spool_io_mode *);
int	 spool_set_io(struct spool *, enum spool_io_mode);
/*
 * A descriptor the waits (spool_reader_wait, spool_consumer_wait,
 * spool_topic_wait) watch beside their own: once it is readable, each
 * returns -EINTR at once, and it is never read.  A program whose signal
 * handler writes a byte to a pipe whose read end this is never sleeps
 * through a stop signal, whenever it comes (mq-recv does so).  -1, the
 * default: none.
 */
void	 spool_set_stopfd(struct spool *, int fd);
const char *spool_io_name(const struct spool *);
int64_t	 spool_now_ms(void);		/* the clock messages are stamped with */

/* topic.c */
int	 spool_topic_name_ok(const char *);
int	 spool_topic_create(struct spool *, const char *, const struct spool_config *);
int	 spool_topic_delete(struct spool *, const char *);
int	 spool_topic_list(struct spool *, char ***names, size_t *n);
int	 spool_topic_open(struct spool *, const char *, struct spool_topic **);
int	 spool_topic_exists(struct spool *, const char *);
int	 spool_topic_wait(struct spool *, const char *, int timeout_ms,
	    struct spool_topic **);
void	 spool_topic_close(struct spool_topic *);
const struct spool_config *spool_topic_config(const struct spool_topic *);
int	 spool_topic_info(struct spool_topic *, uint32_t part, struct spool_part_info *);
int	 spool_topic_verify(struct spool_topic *, int repair,
	    void (*report)(void *, const char *), void *arg);
int	 spool_topic_gc(struct spool_topic *, int64_t now_ms,
	    void (*report)(void *, const char *), void *arg);
int	 spool_tmp_gc(struct spool *, int64_t now_ms,
	    void (*report)(void *, const char *), void *arg);
int	 spool_topic_verify_state(struct spool_topic *,
	    void (*report)(void *, const char *), void *arg);

/* compact.c: cleanup.policy=compact */
struct spool_compact_info {
	uint64_t	 dirty_bytes;	/* written since the last compaction */
	double		 dirty_ratio;	/* dirty_bytes / bytes */
	int64_t		 last_ms;	/* when it last ran; 0: never */
	uint64_t	 removed;	/* messages it removed then */
};
int	 spool_compact_info(struct spool_topic *, uint32_t part,
	    struct spool_compact_info *);

/* config.c */
void	 spool_config_default(struct spool_config *);
int	 spool_config_set(struct spool_config *, const char *key, const char *value);
/* the values key takes, in words (static); NULL for an unknown key */
const char *spool_config_rule(const char *key);
int	 spool_config_format(const struct spool_config *, char *buf, size_t len);

/* topic.c: set key=value pairs; partitions may grow, never shrink */
int	 spool_topic_config_update(struct spool_topic *, const char *const *kv, size_t n);

/* writer.c */
struct spool_writer_opts {
	int		 sync;		/* fdatasync before a flush returns */
	int		 codec;		/* -1: the topic's */
	int		 level;
	int		 partition;	/* -1: by key, else this one */
	void		(*stored)(void *, uint32_t part, uint64_t off);
	void		*arg;
	int64_t		 due;		/* ms: keep until then (schedule.c); 0: now */
	uint64_t	 txid;		/* keep in this prepared transaction (txn.c) */
};
int	 spool_writer_open(struct spool_topic *, const struct spool_writer_opts *,
	    struct spool_writer **);
int	 spool_writer_add(struct spool_writer *, const struct spool_msg *);
int	 spool_writer_add_recs(struct spool_writer *, const struct spool_msg *base,
	    const struct spool_rec *, size_t n, size_t *added);
void	 spool_writer_expect(struct spool_writer *, uint64_t n);
int	 spool_writer_flush(struct spool_writer *);
int	 spool_writer_sync(struct spool_writer *);
int	 spool_writer_close(struct spool_writer *);

/* reader.c */
enum spool_pos_kind { SPOOL_POS_BEGIN, SPOOL_POS_END, SPOOL_POS_OFFSET,
	SPOOL_POS_FROM_END, SPOOL_POS_TIME, SPOOL_POS_NONE };
struct spool_pos {
	enum spool_pos_kind kind;
	int64_t		 value;
};
#define SPOOL_PART_NONE	(-2)	/* a reader that starts with no partition */
struct spool_reader_opts {
	int		 partition;	/* -1: all, SPOOL_PART_NONE: none yet */
	struct spool_pos start;
	struct spool_pos until;		/* SPOOL_POS_NONE: no limit */
	int		 follow;	/* set up inotify for spool_reader_wait */
	int		 skip_damage;	/* go on past a hole, not stop there */
	void		(*warn)(void *, const char *);
	void		*arg;
};
int	 spool_reader_open(struct spool_topic *, const struct spool_reader_opts *,
	    struct spool_reader **);
int	 spool_reader_next(struct spool_reader *, struct spool_msg *);
size_t	 spool_reader_copy(struct spool_reader *, void *out, size_t cap,
	    const void *delim, size_t dlen, size_t big, size_t max, size_t *n,
	    struct spool_msg *last);
int	 spool_reader_wait(struct spool_reader *, int timeout_ms);
int	 spool_reader_done(const struct spool_reader *);
int	 spool_reader_add(struct spool_reader *, uint32_t part,
	    const struct spool_pos *start);
int	 spool_reader_drop(struct spool_reader *, uint32_t part);
int	 spool_reader_pause(struct spool_reader *, uint32_t part, int on);
int	 spool_reader_position(const struct spool_reader *, uint32_t part,
	    uint64_t *off);
void	 spool_reader_close(struct spool_reader *);

/* group.c: consumer groups */
struct spool_consumer_opts {
	const char	*group;
	struct spool_pos start;		/* where a group with no commit starts */
	struct spool_pos until;
	int		 follow;
	int		 skip_damage;	/* as for spool_reader_opts */
	void		(*release)(void *);	/* flush before a partition goes */
	void		(*warn)(void *, const char *);
	void		*arg;
};
int	 spool_consumer_open(struct spool_topic *, const struct spool_consumer_opts *,
	    struct spool_consumer **);
int	 spool_consumer_next(struct spool_consumer *, struct spool_msg *);
size_t	 spool_consumer_copy(struct spool_consumer *, void *out, size_t cap,
	    const void *delim, size_t dlen, size_t big, size_t max, size_t *n,
	    struct spool_msg *last);
int	 spool_consumer_wait(struct spool_consumer *, int timeout_ms);
int	 spool_consumer_ack(struct spool_consumer *, uint32_t part, uint64_t off);
int	 spool_consumer_commit(struct spool_consumer *);
int	 spool_consumer_sync(struct spool_consumer *);
int	 spool_consumer_pause(struct spool_consumer *, uint32_t part, int on);
int	 spool_consumer_done(const struct spool_consumer *);
void	 spool_consumer_close(struct spool_consumer *);
int	 spool_group_list(struct spool_topic *, char ***names, size_t *n);
int	 spool_group_info(struct spool_topic *, const char *group, uint32_t part,
	    uint64_t *committed, int *held);
int	 spool_group_reset(struct spool_topic *, const char *group,
	    const struct spool_pos *to);
int	 spool_group_delete(struct spool_topic *, const char *group);
int	 spool_group_live(struct spool_topic *, const char *group);
int	 spool_group_store(struct spool_topic *, const char *group,
	    uint32_t part, uint64_t off);

/* dedup.c: idempotent sends (mq-send --id) */
#define SPOOL_ID_MAX	120
struct spool_dedup;
enum { SPOOL_DEDUP_NEW, SPOOL_DEDUP_SEEN, SPOOL_DEDUP_RETRY,
	SPOOL_DEDUP_DAMAGED };
int	 spool_dedup_begin(struct spool_topic *, const void *id, size_t len,
	    struct spool_dedup **, int *state);
int	 spool_dedup_stored(struct spool_dedup *, const struct spool_msg *);
int	 spool_dedup_end(struct spool_dedup *, int stored);
int	 spool_dedup_gc(struct spool_topic *, int64_t now_ms);

/* schedule.c: delayed messages (mq-send --delay, --at) */
int	 spool_sched_move(struct spool_topic *, int64_t now_ms, int64_t *next);
int	 spool_sched_info(struct spool_topic *, uint64_t *count, int64_t *next);
int	 spool_sched_cancel(struct spool_topic *, const void *id, size_t len);
void	 spool_sched_kick(struct spool_topic *);

/* txn.c: transactional messages (mq-send --prepare, --commit, --abort) */
struct spool_txn_info {
	uint64_t	 txid;
	int		 committing;	/* 0: prepared */
	int64_t		 created;	/* ms */
	int64_t		 deadline;	/* ms: aborted (or checked) from then */
	char		*check;		/* --check command, or NULL */
	uint64_t	 messages;
};
int	 spool_txn_begin(struct spool_topic *, uint64_t *txid);
int	 spool_txn_prepare(struct spool_topic *, uint64_t txid,
	    int64_t timeout_ms, const char *check);
int	 spool_txn_commit(struct spool_topic *, uint64_t txid);
int	 spool_txn_abort(struct spool_topic *, uint64_t txid);
int	 spool_txn_tick(struct spool_topic *, int64_t now_ms, int gc);
int	 spool_txn_list(struct spool_topic *, struct spool_txn_info **, size_t *);
void	 spool_txn_list_free(struct spool_txn_info *, size_t);

/*
 * dump.c: every batch header of a partition as it is on disk, and whether
 * its checksums hold (mq-topic dump); the fields are those of
 * mq-spool(5), read as the bytes say even when the header is damaged
 */
enum { SPOOL_DUMP_OK, SPOOL_DUMP_TORN, SPOOL_DUMP_BADHDR,
	SPOOL_DUMP_BADBODY, SPOOL_DUMP_NEWER };
struct spool_dump_batch {
	uint32_t	 partition;
	uint64_t	 segment;	/* the segment's name: its first offset */
	uint64_t	 pos;		/* byte position of the header in it */
	uint64_t	 base_offset;
	uint32_t	 count;
	uint16_t	 type;		/* 0 data, 1 end, 2 txn, ... */
	uint8_t		 codec;		/* 0 none, 1 zlib */
	uint8_t		 flags;
	uint32_t	 epoch;
	uint64_t	 txid;
	uint32_t	 body_len;	/* as stored */
	uint32_t	 raw_len;	/* before compression */
	uint32_t	 hdr_crc;
	uint32_t	 body_crc;
	int64_t		 base_ts;
	int64_t		 max_ts;
	int		 state;		/* SPOOL_DUMP_*; after a torn, damaged
					   or newer header the segment's
					   walk stops */
};
int	 spool_dump(struct spool_topic *, uint32_t part,
	    int (*fn)(void *, const struct spool_dump_batch *), void *arg);

/* input.c: records from a stream; dlen 0 means the stream is one record */
int	 spool_input_open(struct spool *, int fd, const void *delim, size_t dlen,
	    size_t max, struct spool_input **);
int	 spool_input_next(struct spool_input *, const void **rec, size_t *len,
	    int timeout_ms);
size_t	 spool_input_more(struct spool_input *, struct spool_rec *, size_t max);
int	 spool_input_left(struct spool_input *, size_t *n);
void	 spool_input_close(struct spool_input *);

/* json.c: a message as one JSON line (mq-recv -J) */
int	 spool_json_encode(const char *topic, const struct spool_msg *,
	    char **buf, size_t *cap, size_t *len);

/* repl_*.c: roles, epochs, acknowledgements, replication (mq-replicate) */
#define SPOOL_EROLE	EREMCHG		/* a replica, or a primary holding data */
#define SPOOL_ID_LEN	32		/* hex digits of a spool's identity */
int	 spool_id(struct spool *, int create, char id[SPOOL_ID_LEN + 1]);
int	 spool_epoch(struct spool *, uint32_t *);
int	 spool_replica_of(struct spool *, char *src, size_t len);
int	 spool_promote(struct spool *, uint32_t *epoch);
int	 spool_replica_acked(struct spool *, const char *topic, uint32_t part,
	    char (*ids)[SPOOL_ID_LEN + 1], uint64_t *next, int max);
int	 spool_replica_wait(struct spool *, const char *topic,
	    const uint64_t *need, uint32_t nparts, int want, int timeout_ms,
	    int *have);

#define SPOOL_REPORT_ALWAYS	(-1)	/* a report that names kept-aside data */
#define SPOOL_REPL_SENDER	0
#define SPOOL_REPL_RECEIVER	1
#define SPOOL_REPL_FOLLOW	0x01	/* keep streaming (client's flags) */
#define SPOOL_REPL_DELETE	0x02	/* propagate deletion and retention */
#define SPOOL_REPL_DRYRUN	0x04	/* say what would be done */
#define SPOOL_REPL_DEMOTE	0x08	/* a primary destination becomes a replica */
#define SPOOL_REPL_READONLY	0x10	/* a server that only sends */
#define SPOOL_REPL_NOSYNC	0x20	/* the replica never fsyncs (tests) */
#define SPOOL_REPL_LOCAL	0x40	/* the receiver reads the source's files */
struct spool_repl_opts {
	int		 role;		/* SPOOL_REPL_SENDER or _RECEIVER */
	int		 server;	/* the peer speaks first */
	int		 rfd, wfd;	/* the pipe to the peer */
	int		 timeout_ms;	/* on every wait for the peer */
	unsigned	 flags;
	const char	*peer_path;	/* client: the path the server serves */
	const char *const *topics;	/* -t: only these (client) */
	size_t		 ntopics;
	/* verbose: 1 with -v only, 0 unless -q, SPOOL_REPORT_ALWAYS even then */
	void		(*report)(void *, int verbose, const char *);
	/* bytes moved; or, bytes 0, planned bytes about to move */
	void		(*progress)(void *, const char *topic, uint64_t bytes,
			    uint64_t planned);
	void		*arg;
	/* a receiver's source on this machine (a forked server): read there */
	const char	*local_src;
	/* out */
	int		 passes;	/* complete passes made */
	uint64_t	 bytes_in, bytes_out;
	char		 errmsg[512];
};
int	 spool_replicate(const char *path, struct spool_repl_opts *);

#endif
