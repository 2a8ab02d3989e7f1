/*
 * send.h - what the files of mq-send share: the options as parsed
 * (send_opts.c), the writer's side (send_write.c), the messages from
 * arguments or stdin (send_input.c) and --commit/--abort (send_txn.c).
 * Nothing here is used outside mq-send.
 */

#ifndef SEND_H
#define SEND_H

#include <stddef.h>
#include <stdint.h>

#include "cli.h"

#define MAX_HEADERS	64

/* the command line, checked: what main and the writer go by */
struct send_opts {
	struct spool_writer_opts wo;	/* -p, -z, --no-sync, --at, ... */
	const char	*spool;		/* -s */
	const char	*topic;
	const char	*key;		/* -k */
	const char	*id;		/* --id */
	char		*delim;		/* -0, -D */
	char		*dbuf;		/* -D's unescaped bytes (owned) */
	char		*kdelim;	/* -K, unescaped (owned) */
	size_t		 dlen, kdlen;
	int64_t		 interval;	/* --sync-interval */
	int64_t		 started;	/* when this send began (-v) */
	int64_t		 rtimeout;	/* --timeout of --replicas */
	const char	*rtstr;		/* ...as given */
	int64_t		 txtimeout;	/* --txn-timeout */
	const char	*commit;	/* --commit */
	const char	*abort_;	/* --abort */
	const char	*check;		/* --check */
	uint64_t	 txid;		/* --prepare: the transaction begun */
	struct spool_header headers[MAX_HEADERS];	/* -H */
	size_t		 nheaders;
	int		 argc;		/* the operands: topic [message ...] */
	char		**argv;
	int		 nocreate, whole, json, replicas, prepare, progress;
};

/* mq-send.c */
void	 usage(int) __attribute__((noreturn));

/* send_opts.c */
void	 send_options(int, char *[], struct send_opts *);

/* send_txn.c */
int	 resolve_txn(const char *spool, const char *txstr, int commit);

/* send_write.c: the topic, the writer, and what is stored */
extern unsigned long long nstored, bstored;
extern int print_offsets;
void	 print_stored(void *, uint32_t part, uint64_t off);
void	 acks(void);
void	 send_cut(struct spool_writer *);
void	 add(struct spool *, struct spool_writer *, const char *topic,
	    struct spool_msg *);
void	 add_recs(struct spool *, struct spool_writer *, const char *topic,
	    const struct spool_msg *base, const struct spool_rec *, size_t n);
void	 send_open(struct send_opts *, struct spool **, struct spool_topic **,
	    struct spool_writer **);
int	 send_id(struct send_opts *, struct spool *, struct spool_topic *,
	    struct spool_writer *, struct spool_msg *base);
void	 send_done(struct send_opts *, struct spool *, struct spool_topic *,
	    struct spool_writer *);

/* send_input.c: the messages, from the arguments or stdin */
void	 send_args(struct send_opts *, struct spool *, struct spool_writer *,
	    const struct spool_msg *base);
void	 send_stdin(struct send_opts *, struct spool *, struct spool_topic *,
	    struct spool_writer *, const struct spool_msg *base, int closed);

#endif
