/*
 * topic.h - what the files of mq-topic share: the global options, the
 * helpers every command uses (mq-topic.c) and the tables one command
 * borrows from another (describe shows groups and transactions, stats
 * shows groups and replicas).  Nothing here is used outside mq-topic.
 */

#ifndef TOPIC_H
#define TOPIC_H

#include <stddef.h>
#include <stdint.h>

#include "cli.h"

enum { OPT_CONFIG = 256, OPT_FORCE, OPT_IF_NOT_EXISTS, OPT_JSON, OPT_PROMETHEUS, OPT_REPAIR, OPT_TO,
	OPT_VERSION };

/* json_str - a topic or group name as a JSON string (names need no escapes) */
#define JSTR "\"%s\""

/* mq-topic.c */
extern const char *spool_opt;
void	 usage(int) __attribute__((noreturn));
struct spool_topic *open_topic(struct spool *, const char *);
struct spool_topic *listed_open(struct spool *, const char *);
int	 json_opt(int, char *[]);
struct spool_topic *topic_cmd_open(const char *, int, struct spool **);
int	 topic_cmd(int, char *[], const char **, struct spool **,
	    struct spool_topic **);
int	 topic_cmd_done(struct spool *, struct spool_topic *);
const char *iso_time(int64_t);
void	 topic_report(void *, const char *);
char	**topics(struct spool *, int, char *[], size_t *);

/* topic_admin.c: create, delete, config */
int	 cmd_create(int, char *[]);
int	 cmd_delete(int, char *[]);
int	 cmd_config(int, char *[]);
void	 json_config(struct spool *, const struct spool_config *);

/* topic_describe.c: list, describe */
int	 cmd_list(int, char *[]);
int	 cmd_describe(int, char *[]);
void	 replicas(struct spool *, struct spool_topic *, const char *, int mode);

/* topic_groups.c: groups, reset, delete-group */
int	 cmd_groups(int, char *[]);
int	 cmd_reset(int, char *[]);
int	 cmd_delete_group(int, char *[]);
uint64_t group_lag(struct spool *, struct spool_topic *, const char *,
	    uint32_t, const struct spool_part_info *, uint64_t *, int *);
void	 describe_groups(struct spool *, struct spool_topic *);
void	 groups_json(struct spool *, struct spool_topic *, int full);

/* topic_txn.c: cancel, abort, open transactions */
int	 cmd_cancel(int, char *[]);
int	 cmd_abort(int, char *[]);
size_t	 open_txns(struct spool *, struct spool_topic *, const char *);
void	 describe_txns(struct spool *, struct spool_topic *, const char *,
	    int json);
void	 check_txns(struct spool *, struct spool_topic *, const char *);

/* topic_verify.c: verify, gc, dump */
int	 cmd_verify(int, char *[]);
int	 cmd_gc(int, char *[]);
int	 cmd_dump(int, char *[]);

/* topic_stats.c: stats */
int	 cmd_stats(int, char *[]);

#endif
