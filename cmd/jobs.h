/*
 * jobs.h - mq-recv -x: commands run for messages (cmd/jobs.c)
 */
#ifndef JOBS_H
#define JOBS_H

#include <sys/types.h>

#include "spool.h"

struct job {
	struct spool_msg msg;		/* a copy, owned by the job */
	pid_t		 pid;		/* 0: waiting for a retry */
	int		 attempts;
	int		 status;
	int64_t		 due;		/* when the retry starts */
	int64_t		 deadline;	/* --exec-timeout: killed then; 0 none */
	int		 timedout;	/* the last attempt was killed so */
	void		*payload;
	char		*key;
	struct spool_header *hdrs;
};

/* what every command gets besides its message */
struct jobs_opts {
	const char	*cmd;
	const char	*spool;		/* MQ_SPOOL */
	const char	*topic;		/* MQ_TOPIC */
	const char	*group;		/* MQ_GROUP; NULL: none */
	int		 max;		/* -j */
	int		 retries;
	int64_t		 timeout_ms;	/* --exec-timeout; -1: none */
};

void	 jobs_init(const struct jobs_opts *);
int	 jobs_free_slots(void);
int	 jobs_count(void);
struct job *jobs_start(const struct spool_msg *);
struct job *jobs_wait(int block);
void	 jobs_end(struct job *);
void	 jobs_kill_wait(void);

#endif
