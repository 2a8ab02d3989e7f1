/*
 * config.c - topic configuration: defaults, parsing, printing
 *
 * A topic's config file is key=value lines ('#' starts a comment), with
 * Kafka's names where Kafka has one.  This module turns text into a
 * struct spool_config and back, and checks every value; it does no file
 * I/O (topic.c reads and replaces the file).  Unknown keys in a file are
 * ignored, so that an older mq can read a spool a newer one configured;
 * unknown keys from a user are -EINVAL.
 */

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "spool_impl.h"

/* spool_config_default - the defaults of a new topic */
void
spool_config_default(struct spool_config *c)
{
	memset(c, 0, sizeof(*c));
	c->partitions = 1;
	c->retention_ms = 604800000;		/* 7 days */
	c->retention_bytes = -1;
	c->segment_bytes = 1073741824;		/* 1 GiB */
	c->max_message_bytes = 16777216;	/* 16 MiB */
	c->codec = SPOOL_CODEC_NONE;
	c->level = -1;
	c->dedup_window_ms = 3600000;		/* 1 hour */
	c->compact = 0;
	c->delete_retention_ms = 86400000;	/* 1 day */
	c->min_compaction_lag_ms = 0;
	c->min_cleanable_dirty_ratio = 0.5;
	c->compaction_map_bytes = 134217728;	/* 128 MiB */
}

/* ratio - a decimal fraction in [0, 1], nothing else */
static int
ratio(const char *s, double *v)
{
	char *end;
	double d;

	if (*s < '0' || *s > '9')
		return -EINVAL;
	errno = 0;
	d = strtod(s, &end);
	if (errno != 0 || *end != '\0' || !(d >= 0 && d <= 1))
		return -EINVAL;
	*v = d;
	return 0;
}

/* num - a decimal integer in [lo, hi], nothing else */
static int
num(const char *s, int64_t lo, int64_t hi, int64_t *v)
{
	char *end;
	long long n;

	if (*s == '\0' || *s == ' ' || *s == '+')
		return -EINVAL;
	errno = 0;
	n = strtoll(s, &end, 10);
	if (errno != 0 || *end != '\0' || n < lo || n > hi)
		return -EINVAL;
	*v = n;
	return 0;
}

/*
 * The values each key takes, in words, for the message that refuses one
 * (spool_config_rule); test_cli checks every bound named here against
 * spool_config_set, so the two cannot drift apart.  Sorted by key.
 */
static const struct {
	const char	*key;
	const char	*rule;
} rules[] = {
	{ "cleanup.policy", "delete, compact or compact,delete" },
	{ "compaction.map.bytes", "an integer from 1024 up" },
	{ "compression", "none, zlib or zlib:0 to zlib:9" },
	{ "dedup.window.ms", "an integer from 0 up" },
	{ "delete.retention.ms", "an integer from 0 up" },
	{ "max.message.bytes", "an integer from 0 to 268435456" },
	{ "min.cleanable.dirty.ratio", "a decimal from 0 to 1" },
	{ "min.compaction.lag.ms", "an integer from 0 up" },
	{ "partitions", "an integer from 1 to 4096" },
	{ "retention.bytes", "an integer from -1 (no limit) up" },
	{ "retention.ms", "an integer from -1 (no limit) up" },
	{ "segment.bytes", "an integer from 1024 to 2147483647" },
};

/* spool_config_rule - the values key takes, in words; NULL if unknown */
const char *
spool_config_rule(const char *key)
{
	size_t i;

	for (i = 0; i < sizeof(rules) / sizeof(rules[0]); i++)
		if (strcmp(rules[i].key, key) == 0)
			return rules[i].rule;
	return NULL;
}

/* spool_config_set - set one key from its text form */
int
spool_config_set(struct spool_config *c, const char *key, const char *val)
{
	int64_t v;

	if (strcmp(key, "partitions") == 0) {
		if (num(val, 1, SPOOL_PART_MAX, &v) < 0)
			return -EINVAL;
		c->partitions = (uint32_t)v;
	} else if (strcmp(key, "retention.ms") == 0) {
		if (num(val, -1, INT64_MAX, &v) < 0)
			return -EINVAL;
		c->retention_ms = v;
	} else if (strcmp(key, "retention.bytes") == 0) {
		if (num(val, -1, INT64_MAX, &v) < 0)
			return -EINVAL;
		c->retention_bytes = v;
	} else if (strcmp(key, "segment.bytes") == 0) {
		if (num(val, 1024, INT32_MAX, &v) < 0)
			return -EINVAL;
		c->segment_bytes = v;
	} else if (strcmp(key, "max.message.bytes") == 0) {
		if (num(val, 0, 256 << 20, &v) < 0)
			return -EINVAL;
		c->max_message_bytes = v;
	} else if (strcmp(key, "compression") == 0) {
		if (strcmp(val, "none") == 0) {
			c->codec = SPOOL_CODEC_NONE;
			c->level = -1;
		} else if (strcmp(val, "zlib") == 0) {
			c->codec = SPOOL_CODEC_ZLIB;
			c->level = -1;
		} else if (strncmp(val, "zlib:", 5) == 0 &&
		    num(val + 5, 0, 9, &v) == 0) {
			c->codec = SPOOL_CODEC_ZLIB;
			c->level = (int)v;
		} else
			return -EINVAL;
	} else if (strcmp(key, "dedup.window.ms") == 0) {
		if (num(val, 0, INT64_MAX, &v) < 0)
			return -EINVAL;
		c->dedup_window_ms = v;
	} else if (strcmp(key, "cleanup.policy") == 0) {
		/* SPOOL_CLEANUP_*: compaction alone, or with retention */
		if (strcmp(val, "delete") == 0)
			c->compact = SPOOL_CLEANUP_DELETE;
		else if (strcmp(val, "compact") == 0)
			c->compact = SPOOL_CLEANUP_COMPACT;
		else if (strcmp(val, "compact,delete") == 0 ||
		    strcmp(val, "delete,compact") == 0)
			c->compact = SPOOL_CLEANUP_BOTH;
		else
			return -EINVAL;
	} else if (strcmp(key, "delete.retention.ms") == 0) {
		if (num(val, 0, INT64_MAX, &v) < 0)
			return -EINVAL;
		c->delete_retention_ms = v;
	} else if (strcmp(key, "min.compaction.lag.ms") == 0) {
		if (num(val, 0, INT64_MAX, &v) < 0)
			return -EINVAL;
		c->min_compaction_lag_ms = v;
	} else if (strcmp(key, "min.cleanable.dirty.ratio") == 0) {
		if (ratio(val, &c->min_cleanable_dirty_ratio) < 0)
			return -EINVAL;
	} else if (strcmp(key, "compaction.map.bytes") == 0) {
		if (num(val, 1024, INT64_MAX, &v) < 0)
			return -EINVAL;
		c->compaction_map_bytes = v;
	} else
		return -ENOENT;
	return 0;
}

/*
 * spool_config_parse - read config text into c (which holds defaults);
 * -EBADMSG on a line that is not key=value or a known key's bad value
 */
int
spool_config_parse(struct spool_config *c, char *text)
{
	char *line, *eq, *save = NULL;
	int r;

	for (line = strtok_r(text, "\n", &save); line != NULL;
	    line = strtok_r(NULL, "\n", &save)) {
		if (*line == '#' || *line == '\0')
			continue;
		if ((eq = strchr(line, '=')) == NULL)
			return -EBADMSG;
		*eq = '\0';
		r = spool_config_set(c, line, eq + 1);
		if (r == -EINVAL)
			return -EBADMSG;
	}
	return 0;
}

/* spool_config_format - the config as sorted key=value lines */
int
spool_config_format(const struct spool_config *c, char *buf, size_t len)
{
	char comp[16];
	int n;

	if (c->codec == SPOOL_CODEC_ZLIB && c->level >= 0)
		snprintf(comp, sizeof(comp), "zlib:%d", c->level);
	else
		snprintf(comp, sizeof(comp), "%s",
		    c->codec == SPOOL_CODEC_ZLIB ? "zlib" : "none");
	n = snprintf(buf, len,
	    "cleanup.policy=%s\n"
	    "compaction.map.bytes=%" PRId64 "\n"
	    "compression=%s\n"
	    "dedup.window.ms=%" PRId64 "\n"
	    "delete.retention.ms=%" PRId64 "\n"
	    "max.message.bytes=%" PRId64 "\n"
	    "min.cleanable.dirty.ratio=%g\n"
	    "min.compaction.lag.ms=%" PRId64 "\n"
	    "partitions=%" PRIu32 "\n"
	    "retention.bytes=%" PRId64 "\n"
	    "retention.ms=%" PRId64 "\n"
	    "segment.bytes=%" PRId64 "\n",
	    c->compact == SPOOL_CLEANUP_BOTH ? "compact,delete" :
	    c->compact == SPOOL_CLEANUP_COMPACT ? "compact" : "delete",
	    c->compaction_map_bytes, comp, c->dedup_window_ms,
	    c->delete_retention_ms, c->max_message_bytes,
	    c->min_cleanable_dirty_ratio, c->min_compaction_lag_ms,
	    c->partitions, c->retention_bytes,
	    c->retention_ms, c->segment_bytes);
	if (n < 0 || (size_t)n >= len)
		return -ENOSPC;
	return n;
}
