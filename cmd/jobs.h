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
	void		*payload;
	char		*key;
	struct spool_header *hdrs;
};

void	 jobs_init(const char *cmd, const char *topic, int max, int retries);
int	 jobs_free_slots(void);
int	 jobs_count(void);
struct job *jobs_start(const struct spool_msg *);
struct job *jobs_wait(int block);
void	 jobs_end(struct job *);
void	 jobs_kill_wait(void);

#endif
