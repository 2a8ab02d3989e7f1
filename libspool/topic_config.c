/*
 * topic_config.c - a topic's configuration: loading and changing it
 *
 * Owns the topic's config file: reading it into t->cfg (a damaged one
 * is -EBADMSG, named), and changing key=value pairs of it.  Changes are
 * serialized by the topic lock and written by atomic replacement;
 * partitions may grow, never shrink, and growth creates the new
 * partition directories (spool_part_make) before the config names
 * them.
 *
 * It does not parse or format the text (config.c), nor create, open or
 * delete topics (topic.c).
 */

#include <sys/file.h>

#include <errno.h>
#include <inttypes.h>
#include <string.h>
#include <unistd.h>

#include "spool_impl.h"

#define CONFIG_MAX	SPOOL_CONFIG_MAX

/* spool_topic_config_load - read the topic's config file into t->cfg */
int
spool_topic_config_load(struct spool_topic *t)
{
	char text[CONFIG_MAX];
	int r;

	spool_config_default(&t->cfg);
	r = spool_read_file(t->dirfd, SPOOL_CONFIG_NAME, text, sizeof(text));
	if (r < 0 && r != -EFBIG)
		return r;
	/* a NUL would end the parse early and hide the rest */
	if (r == -EFBIG || strlen(text) != (size_t)r ||
	    spool_config_parse(&t->cfg, text) < 0) {
		spool_seterr(t->sp, "%s/topics/%s/config: damaged: %s",
		    t->sp->path, t->name, r == -EFBIG ? "too long" :
		    "not key=value lines of known keys and values");
		return -EBADMSG;
	}
	return 0;
}

/* spool_topic_config - the topic's configuration as loaded */
const struct spool_config *
spool_topic_config(const struct spool_topic *t)
{
	return &t->cfg;
}

/* spool_topic_reload - read the config again (partitions may grow) */
int
spool_topic_reload(struct spool_topic *t)
{
	return spool_topic_config_load(t);
}

/*
 * spool_topic_config_update - set key=value pairs under the topic lock;
 * -EINVAL (detail in spool_errmsg) for a bad key or value or a shrink
 */
int
spool_topic_config_update(struct spool_topic *t, const char *const *kv,
    size_t n)
{
	struct spool_config c;
	char text[CONFIG_MAX], key[128];
	const char *eq;
	uint32_t i, old;
	size_t k;
	int lfd, r, len;

	if ((lfd = spool_lock_file(t->dirfd, LOCK_EX)) < 0)
		return lfd;
	if ((r = spool_topic_config_load(t)) < 0)
		goto out;
	c = t->cfg;
	old = c.partitions;
	for (k = 0; k < n; k++) {
		if ((eq = strchr(kv[k], '=')) == NULL ||
		    (size_t)(eq - kv[k]) >= sizeof(key)) {
			spool_seterr(t->sp, "%s: expected key=value", kv[k]);
			r = -EINVAL;
			goto out;
		}
		memcpy(key, kv[k], eq - kv[k]);
		key[eq - kv[k]] = '\0';
		if ((r = spool_config_set(&c, key, eq + 1)) == -ENOENT)
			spool_seterr(t->sp, "%s: unknown config key", kv[k]);
		else if (r < 0)
			spool_seterr(t->sp, "%s: invalid value (%s)", kv[k],
			    spool_config_rule(key));
		if (r < 0) {
			r = -EINVAL;
			goto out;
		}
	}
	if (c.partitions < old) {
		spool_seterr(t->sp, "partitions=%" PRIu32 ": partitions may "
		    "grow, never shrink (now %" PRIu32 ")", c.partitions, old);
		r = -EINVAL;
		goto out;
	}
	/* new partitions exist before the config names them */
	for (i = old; i < c.partitions; i++)
		if ((r = spool_part_make(t->sp, t->dirfd, i)) < 0)
			goto out;
	if (c.partitions > old && (r = spool_sync_dir(t->sp, t->dirfd)) < 0)
		goto out;
	if ((len = spool_config_format(&c, text, sizeof(text))) < 0) {
		r = len;
		goto out;
	}
	if ((r = spool_write_file(t->dirfd, SPOOL_CONFIG_NAME, text, len,
	    !t->sp->nosync)) < 0)
		goto out;
	t->cfg = c;
out:
	close(lfd);
	return r;
}
