/*
 * topic_admin.c - mq-topic create, delete and config: the commands that
 * make, remove and change a topic (and print its config, as key=value
 * lines or JSON)
 */

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "topic.h"

/*
 * json_config - a config as one JSON object: numbers as numbers, the
 * rest (compression, cleanup.policy) as strings; keys as in key=value
 */
void
json_config(struct spool *sp, const struct spool_config *cfg)
{
	char text[4096], *line, *eq, *end;
	int r, first = 1;

	if ((r = spool_config_format(cfg, text, sizeof(text))) < 0)
		cli_die(r, sp, "config");
	putchar('{');
	for (line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
		if ((eq = strchr(line, '=')) == NULL)
			continue;
		*eq++ = '\0';
		(void)strtod(eq, &end);
		/* values hold no quote or backslash: none is valid */
		printf(*end == '\0' && end != eq ? "%s\"%s\":%s" :
		    "%s\"%s\":\"%s\"", first ? "" : ",", line, eq);
		first = 0;
	}
	putchar('}');
}

/* config_kv - apply one --config key=value to cfg, or exit 64 */
static void
config_kv(struct spool_config *cfg, char *kv)
{
	const char *rule;
	char *eq;
	int r;

	if ((eq = strchr(kv, '=')) == NULL)
		cli_usage_die("--config %s: expected key=value", kv);
	*eq = '\0';
	r = spool_config_set(cfg, kv, eq + 1);
	rule = spool_config_rule(kv);
	*eq = '=';
	if (r == -ENOENT)
		cli_usage_die("--config %s: unknown key", kv);
	if (r < 0)
		cli_usage_die("--config %s: invalid value (%s)", kv, rule);
}

#define MAX_CONFIG	64	/* --config options to one create */

/*
 * same_config - --if-not-exists: whether the existing topic has what
 * this create asks for (the partitions and keys given; the rest is
 * free); if not, diff says how they differ ("partitions=4, not 2")
 */
static int
same_config(struct spool *sp, const char *name, uint32_t parts,
    char **kv, size_t nkv, char *diff, size_t difflen)
{
	struct spool_topic *t = open_topic(sp, name);
	struct spool_config want = *spool_topic_config(t);
	char wbuf[1024], hbuf[1024], *w, *h, *wn, *hn;
	size_t i, len = 0;

	if (parts > 0)
		want.partitions = parts;
	for (i = 0; i < nkv; i++)
		config_kv(&want, kv[i]);
	if (spool_config_format(&want, wbuf, sizeof(wbuf)) < 0 ||
	    spool_config_format(spool_topic_config(t), hbuf, sizeof(hbuf)) < 0)
		cli_die(-ENOMEM, sp, "%s", name);
	(void)cli_close(t);
	*diff = '\0';
	/* both are the same keys, sorted, one "key=value\n" a line */
	for (w = wbuf, h = hbuf; *w != '\0' && *h != '\0'; w = wn, h = hn) {
		wn = strchr(w, '\n');
		hn = strchr(h, '\n');
		if (wn == NULL || hn == NULL)
			break;
		*wn++ = '\0';
		*hn++ = '\0';
		if (strcmp(w, h) != 0 && len < difflen)
			len += snprintf(diff + len, difflen - len, "%s%s, not %s",
			    len ? "; " : "", h, strchr(w, '=') + 1);
	}
	return *diff == '\0';
}

/*
 * cmd_create - create [-P partitions] [--config key=value]...
 * [--if-not-exists] topic
 */
int
cmd_create(int argc, char *argv[])
{
	static const struct option lo[] = {
		{ "partitions",		required_argument, NULL, 'P' },
		{ "config",		required_argument, NULL, OPT_CONFIG },
		{ "if-not-exists",	no_argument,	   NULL, OPT_IF_NOT_EXISTS },
		{ NULL, 0, NULL, 0 }
	};
	struct spool_config cfg;
	struct spool *sp;
	char *kv[MAX_CONFIG], diff[1024];
	const char *ptext = NULL;
	size_t nkv = 0, i;
	uint32_t parts = 0;
	int ch, r, ifne = 0;

	spool_config_default(&cfg);
	while ((ch = getopt_long(argc, argv, "P:", lo, NULL)) != -1) {
		switch (ch) {
		case 'P':
			parts = (uint32_t)cli_number(optarg,
			    "partition count", 1, 4096);
			ptext = optarg;
			break;
		case OPT_CONFIG:
			if (nkv == MAX_CONFIG)
				cli_usage_die("--config: at most %d",
				    MAX_CONFIG);
			config_kv(&cfg, optarg);
			kv[nkv++] = optarg;
			break;
		case OPT_IF_NOT_EXISTS:
			ifne = 1;
			break;
		default:
			usage(EX_USAGE);
		}
	}
	if (argc - optind != 1)
		usage(EX_USAGE);
	/* -P and --config partitions= say one thing, or nothing is made */
	for (i = 0; parts != 0 && i < nkv; i++)
		if (strncmp(kv[i], "partitions=", 11) == 0 &&
		    strtoul(kv[i] + 11, NULL, 10) != parts)
			cli_usage_die("-P %s and --config %s disagree",
			    ptext, kv[i]);
	if (parts != 0)
		cfg.partitions = parts;
	cli_check_topic(argv[optind]);
	sp = cli_open_spool(spool_opt, SPOOL_CREATE);
	cli_check_primary(sp, cli_spool_path(spool_opt));
	r = spool_topic_create(sp, argv[optind], &cfg);
	if (r == -EEXIST && ifne) {
		if (!same_config(sp, argv[optind], parts, kv, nkv, diff,
		    sizeof(diff)))
			cli_fail(r, "%s: exists with other settings: %s",
			    argv[optind], diff);
		r = 0;
	}
	if (r < 0) {
		if (r == -EEXIST)
			cli_fail(r, "%s: Topic exists", argv[optind]);
		cli_die(r, sp, "%s", argv[optind]);
	}
	(void)cli_close(sp);
	return EX_OK;
}

/*
 * live_group - the first group of a topic with a live member, or NULL;
 * the name is owned (cli_close)
 */
static char *
live_group(struct spool *sp, struct spool_topic *t)
{
	char **names, *g = NULL;
	size_t n, i;
	int r;

	if ((r = spool_group_list(t, &names, &n)) < 0)
		cli_die(r, sp, "groups");
	cli_own_names(names, n);
	for (i = 0; i < n && g == NULL; i++) {
		if ((r = spool_group_live(t, names[i])) < 0)
			cli_die(r, sp, "group %s", names[i]);
		if (r > 0 && (g = strdup(names[i])) == NULL)
			cli_die(-ENOMEM, sp, "groups");
	}
	(void)cli_close(names);
	cli_own(CLI_MEM, g);
	return g;
}

/* cmd_delete - delete [--force] topic */
int
cmd_delete(int argc, char *argv[])
{
	static const struct option lo[] = {
		{ "force",	no_argument, NULL, OPT_FORCE },
		{ NULL, 0, NULL, 0 }
	};
	struct spool *sp;
	struct spool_topic *t;
	char *g;
	int ch, r, force = 0;

	while ((ch = getopt_long(argc, argv, "", lo, NULL)) != -1) {
		if (ch != OPT_FORCE)
			usage(EX_USAGE);
		force = 1;
	}
	if (argc - optind != 1)
		usage(EX_USAGE);
	cli_check_topic(argv[optind]);
	sp = cli_open_spool(spool_opt, 0);
	cli_check_primary(sp, cli_spool_path(spool_opt));
	/* a directory with no config is no topic, but delete removes it */
	if ((r = spool_topic_open(sp, argv[optind], &t)) == 0)
		spool_topic_close(t);
	else if (r == -ENOENT && spool_topic_exists(sp, argv[optind]) > 0)
		force = 1;	/* it has no groups to wait for */
	if (!force) {
		/* consumers at work are not cut off by surprise */
		t = open_topic(sp, argv[optind]);
		if ((g = live_group(sp, t)) != NULL)
			cli_fail(-EAGAIN, "%s: group %s has a live member; "
			    "stop it, or delete with --force", argv[optind], g);
		(void)cli_close(t);
	}
	if ((r = spool_topic_delete(sp, argv[optind])) < 0) {
		if (r == -ENOENT)
			cli_fail(r, "%s: No such topic", argv[optind]);
		cli_die(r, sp, "%s", argv[optind]);
	}
	(void)cli_close(sp);
	return EX_OK;
}

/* cmd_config - config topic [key=value ...] */
int
cmd_config(int argc, char *argv[])
{
	struct spool *sp;
	struct spool_topic *t;
	char text[4096];
	int r, json;

	json = json_opt(argc, argv);
	if (argc - optind < 1)
		usage(EX_USAGE);
	argc -= optind - 1;
	argv += optind - 1;
	t = topic_cmd_open(argv[1], argc > 2, &sp);
	if (argc > 2 && (r = spool_topic_config_update(t,
	    (const char *const *)argv + 2, argc - 2)) < 0) {
		if (r == -EINVAL)
			cli_usage_die("%s: %s", argv[1], spool_errmsg(sp));
		cli_die(r, sp, "%s", argv[1]);
	}
	if (json) {
		json_config(sp, spool_topic_config(t));
		putchar('\n');
	} else if (argc == 2) {
		if ((r = spool_config_format(spool_topic_config(t), text,
		    sizeof(text))) < 0)
			cli_die(r, sp, "%s", argv[1]);
		fputs(text, stdout);
	}
	return topic_cmd_done(sp, t);
}
