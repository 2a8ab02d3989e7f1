/*
 * recv.h - what the files of mq-recv share: the options as parsed
 * (recv_opts.c), the output buffer (recv_out.c), the source of messages
 * (recv_src.c), the loop (recv_loop.c), and -x's settling of finished
 * commands (recv_exec.c).  Nothing here is used outside mq-recv.
 */

#ifndef RECV_H
#define RECV_H

#include <signal.h>
#include <stddef.h>
#include <stdint.h>

#include "cli.h"
#include "jobs.h"

#define MAX_FILTERS	32

/* the command line, checked: what main and the loop go by */
struct recv_opts {
	struct spool_reader_opts ro;	/* -p, -o, -u */
	struct jobs_opts jo;		/* -x and what goes with it */
	const char	*spool;		/* -s */
	const char	*group;		/* -g */
	const char	*xcmd;		/* -x */
	const char	*dlt;		/* --dead-letter */
	char		*delim;		/* -0, -D */
	char		*dbuf;		/* -D's unescaped bytes (owned) */
	char		*fmt;		/* -F, unescaped (owned) */
	size_t		 dlen, flen;
	long long	 count;		/* -c; -1: no limit */
	int64_t		 timeout;	/* --timeout; -1: none */
	int64_t		 rate_ns;	/* --rate: a message every rate_ns */
	const char	*filters[MAX_FILTERS];	/* --filter */
	int		 nfilters;
	int		 json, follow, njobs, wait_topic, skip;
};

/* mq-recv.c */
void	 usage(int) __attribute__((noreturn));

/* recv_opts.c */
void	 recv_options(int, char *[], struct recv_opts *);

/* recv_out.c: the output buffer, written when full, caught up, at exit */
void	 out_init(void);
void	 out_free(void);
void	 flush(void);
void	 print_msg(const struct recv_opts *, const struct spool_msg *);
long long print_run(const struct recv_opts *, long long max);

/* recv_src.c: the source of messages, and what every file shares */
extern struct spool *recv_sp;
extern const char *recv_topic;
extern struct spool_reader *recv_rd;
extern struct spool_consumer *recv_cons;	/* -g */
extern volatile sig_atomic_t recv_stop;	/* SIGINT, SIGTERM */
extern int recv_stopfd;		/* readable once they came */
extern int rval;
void	 src_warn(void *, const char *);
int	 src_next(struct spool_msg *);
size_t	 src_copy(void *, size_t, const void *, size_t, size_t, size_t,
	    size_t *, struct spool_msg *);
int	 src_wait(int ms);
void	 stop_init(void);
void	 stop_now(void);
int	 src_done(void);
void	 src_pause(uint32_t part, int on);
void	 ack(uint32_t part, uint64_t off, int now);
void	 commit(void);

/* recv_loop.c: opening the source, and the loop over it */
int	 recv_open(struct recv_opts *, struct spool_topic **);
int	 recv_loop(struct recv_opts *, struct spool_topic *);
void	 recv_close(struct recv_opts *, struct spool_topic *);

/* recv_exec.c: -x, what becomes of a message whose command is done */
void	 exec_setup(const char *dead_letter_topic);
void	 job_finish(struct job *);
void	 drain(void);
void	 hand_over(void *);
void	 dead_letter_close(void);

#endif
