/*
 * repl.h - what the repl_*.c files (one mq-replicate session and the
 * spool's roles) share: the session, constants and their functions of
 * each other; not part of the public interface (spool.h)
 */

#ifndef SPOOL_REPL_H
#define SPOOL_REPL_H

#include <sys/types.h>

#include <stddef.h>
#include <stdint.h>

#include "proto.h"
#include "replicate.h"

#define ID_NAME		"id"
#define EPOCH_NAME	"epoch"
#define REPLICA_NAME	"replica"
#define ACKS_DIR	"replicas"
#define ASIDE_DIR	"diverged"
#define CHUNK		(1u << 20)	/* bytes read and sent at a time */
#define LCHUNK		(1u << 20)	/* read at a time from a local source */
#define WRITEBACK	(8u << 20)	/* appended before write-out starts */
#define PROBE_MAX	4096		/* batches in one probe frame */
#define HEARTBEAT_MS	10000		/* a following sender's silence */
#define CONFIG_TEXT	8192

/* PLAN kinds */
enum { PLAN_APPEND, PLAN_DIVERGED, PLAN_RESTART, PLAN_SKIP, PLAN_GAP,
    PLAN_COMPACTED };

/* PSTATE flags */
#define PS_DRY		0x01
#define PS_RESTART_OK	0x02
#define PS_HASLAST	0x04
#define PS_NOCOMPACT	0x08	/* segments compared already this time */
#define SEGS_MAX	(1u << 20)	/* segments in one SEGS frame */

struct ack {
	char		*topic;
	uint32_t	 part;
	uint64_t	 next;
};

/* what a --follow sender's inotify watch is on (W_*) */
enum { W_TOPICS, W_TOPIC, W_PART, W_GROUPS, W_GROUP, W_SCHED, W_BUCKET };

struct wmap {
	int		 wd;
	int		 kind;
	char		*topic;
	uint32_t	 part;
};

/* a change a sender reports: a partition, or one of these */
#define CH_GROUPS	0xffffffffu	/* the topic's group offsets */
#define CH_SCHED	0xfffffffeu	/* the topic's scheduled files */
#define CH_MAX		1024		/* more: a whole pass instead */

/* PROTO_CHANGED kinds */
enum { CHG_NONE, CHG_ALL, CHG_LIST };

struct change {
	char		 topic[SPOOL_NAME_MAX + 1];
	uint32_t	 part;
};

struct sess {
	struct spool	*sp;
	struct spool_repl_opts *o;
	struct proto	 pr;
	const char	*path;
	unsigned	 flags;		/* the client's */
	char		 id[SPOOL_ID_LEN + 1];
	char		 peer_id[SPOOL_ID_LEN + 1];
	uint32_t	 epoch, peer_epoch;
	char		**topics;	/* -t */
	size_t		 ntopics;
	int		 sync;
	int		 peer_failed;	/* the peer sent ERROR */
	/* sender */
	int		 ifd;		/* inotify, --follow */
	struct wmap	*wm;		/* what each watch is on */
	size_t		 nwm;
	struct ack	*acks;
	size_t		 nacks;
	int64_t		 pass_ms;	/* when this pass began (LIST, CHANGED) */
	struct spool_mheld held;	/* the transaction last found settled */
	/* receiver */
	off_t		 wbfrom;	/* where write-out has not started */
	int		 srcfd;		/* a local source's directory, or -1 */
	unsigned char	*lbuf;		/*  and what is read from it */
	size_t		 lcap;
	char		 drytmp[PATH_MAX];	/* a dry run's stand-in */
	int		 made;		/* this session made the destination */
	char		**src_topics;
	size_t		 nsrc;
	struct change	*stops;		/* partitions stopped at damage */
					/*  or behind the source's oldest */
	size_t		 nstops;
	int		 stop_err;	/*  and the first one's -errno */
	size_t		 nbehind;	/*  of them, left behind by retention */
	size_t		 holes;		/* holes of the source's, copied */
};

/* repl_role.c */
int	 repl_set_epoch(struct spool *sp, uint32_t epoch);
int	 repl_mark_replica(struct spool *sp, const char *src);
int	 repl_mark_promoting(struct spool *sp);

/* repl_acks.c */
int	 repl_id_name(const char *s);
int	 repl_acks_load(struct sess *s);
int	 repl_acks_set(struct sess *s, const char *topic, uint32_t part,
	    uint64_t next);

/* repl_talk.c */
int	 repl_fail(struct sess *s, int r, const char *fmt, ...);
void	 repl_report(struct sess *s, int verbose, const char *fmt, ...);
void	 repl_send_error(struct sess *s, int r);
int	 repl_expect(struct sess *s, int want);
int	 repl_want_topic(struct sess *s, const char *name);
int	 repl_damaged(struct sess *s, struct spool_mirror *m, int r);
int	 repl_behind(struct sess *s, const char *topic, uint32_t part,
	    uint64_t next, uint64_t first);
int	 repl_stopped(const struct sess *s, const char *topic, uint32_t part);
int	 repl_stops(struct sess *s);

/* repl_watch.c */
void	 repl_watch_all(struct sess *s, char **names, size_t n);
void	 repl_drain(struct sess *s);
int	 repl_s_wait(struct sess *s);

/* repl_send.c */
int	 repl_sender(struct sess *s);

/* repl_srcseg.c */
int	 repl_seg_bad(int pfd, int fd, const unsigned char *hdr, off_t pos,
	    off_t size);
int	 repl_has_batch(struct sess *s, int pfd, uint64_t base, off_t pos,
	    uint32_t crc, uint64_t off);

/* repl_stream.c */
int	 repl_s_pstate(struct sess *s, unsigned char **buf, size_t *cap);

/* repl_segs.c */
int	 repl_s_segs(struct sess *s, unsigned char **buf, size_t *cap);
int	 repl_r_compacted(struct sess *s, struct spool_mirror *m);

/* repl_diverge.c */
int	 repl_s_probe(struct sess *s);
int	 repl_r_diverged(struct sess *s, struct spool_mirror *m);

/* repl_admit.c */
int	 repl_check_role(struct sess *s);
int	 repl_still_replica(struct sess *s);
int	 repl_hold(struct sess *s, int *fd);
void	 repl_let_go(int fd);
int	 repl_config_apply(struct sess *s, struct spool_topic *t,
	    const char *text);

/* repl_recv.c */
int	 repl_r_part(struct sess *s, struct spool_topic *t, uint32_t part);

/* repl_state.c */
int	 repl_r_groups(struct sess *s, struct spool_topic *t);
int	 repl_r_sched(struct sess *s, struct spool_topic *t);

/* repl_pass.c */
void	 repl_free_src(struct sess *s);
int	 repl_receiver(struct sess *s);

#endif
