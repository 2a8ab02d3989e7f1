/*
 * test_cli.c - the parsers of command-line values (cmd/cli.c) and of
 * topic configs (libspool/config.c), which bats reaches only through
 * whole programs and fuzzing only for crashes: here, exact values
 */

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "tap.h"

/* dur - cli_duration's value for s, or -1 when it refuses s */
static int64_t
dur(const char *s)
{
	int64_t ms;

	return cli_duration(s, &ms) < 0 ? -1 : ms;
}

/* when - cli_time's value for s, or INT64_MIN when it refuses s */
static int64_t
when(const char *s)
{
	int64_t ms;

	return cli_time(s, &ms) < 0 ? INT64_MIN : ms;
}

static void
durations(void)
{
	ok(dur("200ms") == 200, "200ms");
	ok(dur("1.5s") == 1500, "1.5s");
	ok(dur("2") == 2000, "a bare number is seconds");
	ok(dur("2m") == 120000, "2m");
	ok(dur("1h") == 3600000, "1h");
	ok(dur("1d") == 86400000, "1d");
	ok(dur(".5s") == 500, ".5s");
	ok(dur("0") == 0, "0");
	ok(dur("") == -1, "empty refused");
	ok(dur("-1s") == -1, "negative refused");
	ok(dur("5x") == -1, "unknown unit refused");
	ok(dur("1e300d") == -1, "overflow refused");
	ok(dur(" 5s") == -1, "leading blank refused");
}

static void
times(void)
{
	ok(when("0") == 0, "epoch ms 0");
	ok(when("1795000000000") == 1795000000000LL, "epoch ms");
	ok(when("2026-11-25") == 1795564800000LL, "a date is midnight UTC");
	ok(when("2026-11-25T15:00:00Z") == 1795618800000LL, "Z");
	ok(when("2026-11-25T15:00:00") == 1795618800000LL, "no zone is UTC");
	ok(when("2026-11-25 15:00") == 1795618800000LL, "blank, no seconds");
	ok(when("2026-11-25T15:00:00.123Z") == 1795618800123LL, "ms");
	ok(when("2026-11-25T16:00:00+01:00") == 1795618800000LL, "+01:00");
	ok(when("2026-11-25T14:00:00-0100") == 1795618800000LL, "-0100");
	ok(when("2026-13-01") == INT64_MIN, "month 13 refused");
	ok(when("2026-11-25T25:00") == INT64_MIN, "hour 25 refused");
	ok(when("yesterday") == INT64_MIN, "words refused");
	ok(when("2026-11-25T15:00:00.Z") == INT64_MIN, "empty fraction refused");
}

static void
positions(void)
{
	struct spool_pos p;

	ok(cli_pos("beginning", &p) == 0 && p.kind == SPOOL_POS_BEGIN,
	    "beginning");
	ok(cli_pos("end", &p) == 0 && p.kind == SPOOL_POS_END, "end");
	ok(cli_pos("42", &p) == 0 && p.kind == SPOOL_POS_OFFSET &&
	    p.value == 42, "42");
	ok(cli_pos("-10", &p) == 0 && p.kind == SPOOL_POS_FROM_END &&
	    p.value == 10, "-10");
	ok(cli_pos("@2026-11-25", &p) == 0 && p.kind == SPOOL_POS_TIME &&
	    p.value == 1795564800000LL, "@date");
	ok(cli_pos("@nonsense", &p) < 0, "@nonsense refused");
	ok(cli_pos("4x", &p) < 0, "4x refused");
	ok(cli_pos("-9223372036854775808", &p) < 0, "INT64_MIN refused");
}

static void
escapes(void)
{
	char *u;
	size_t n;

	u = cli_unescape("a\\tb\\n\\0\\\\\\x41", &n);
	ok(u != NULL && n == 7 && memcmp(u, "a\tb\n\0\\A", 7) == 0,
	    "\\t \\n \\0 \\\\ \\x41");
	free(u);
	u = cli_unescape("\\x4", &n);
	ok(u != NULL && n == 1 && u[0] == 4, "\\x with one digit");
	free(u);
	ok(cli_unescape("\\q", &n) == NULL, "unknown escape refused");
	ok(cli_unescape("\\x", &n) == NULL, "\\x without digits refused");
	ok(cli_format_ok("%s %S %R %k %K %t %p %o %T %h %%", 32) == 0,
	    "every -F token");
	ok(cli_format_ok("%z", 2) < 0, "%%z refused");
	ok(cli_format_ok("50%", 3) < 0, "a lone %% at the end refused");
}

static void
configs(void)
{
	struct spool_config c;
	char buf[1024];

	spool_config_default(&c);
	ok(c.partitions == 1 && c.retention_ms == 604800000LL &&
	    c.max_message_bytes == 16777216 && c.dedup_window_ms == 3600000,
	    "defaults");
	ok(spool_config_set(&c, "partitions", "8") == 0 && c.partitions == 8,
	    "partitions=8");
	ok(spool_config_set(&c, "partitions", "0") < 0, "partitions=0 refused");
	ok(spool_config_set(&c, "compression", "zlib:9") == 0 &&
	    c.codec == 1 && c.level == 9, "compression=zlib:9");
	ok(spool_config_set(&c, "compression", "lz4") < 0, "lz4 refused");
	ok(spool_config_set(&c, "retention.ms", "-1") == 0 &&
	    c.retention_ms == -1, "retention.ms=-1");
	ok(spool_config_set(&c, "cleanup.policy", "compact,delete") == 0,
	    "cleanup.policy=compact,delete");
	ok(spool_config_set(&c, "nosuch", "1") == -ENOENT, "unknown key");
	ok(spool_config_set(&c, "segment.bytes", "12x") < 0, "12x refused");
	ok(spool_config_format(&c, buf, sizeof(buf)) > 0 &&
	    strstr(buf, "partitions=8\n") != NULL &&
	    strstr(buf, "compression=zlib:9\n") != NULL, "format");
}

/* accepts - whether spool_config_set takes key=v (a number) */
static int
accepts(const char *key, long long v)
{
	struct spool_config c;
	char val[32];

	spool_config_default(&c);
	snprintf(val, sizeof(val), "%lld", v);
	return spool_config_set(&c, key, val) == 0;
}

/*
 * rules - every key has a rule in words (spool_config_rule), and every
 * bound a rule names is the one spool_config_set keeps
 */
static void
rules(void)
{
	struct spool_config c;
	char buf[1024], *line, *eq, *save = NULL;
	const char *rule;
	long long lo, hi;
	int n = 0, good = 1;

	spool_config_default(&c);
	ok(spool_config_format(&c, buf, sizeof(buf)) > 0, "format for rules");
	for (line = strtok_r(buf, "\n", &save); line != NULL;
	    line = strtok_r(NULL, "\n", &save)) {
		if ((eq = strchr(line, '=')) == NULL)
			continue;
		*eq = '\0';
		n++;
		if ((rule = spool_config_rule(line)) == NULL) {
			printf("# %s: no rule\n", line);
			good = 0;
		} else if (sscanf(rule, "an integer from %lld to %lld", &lo,
		    &hi) == 2) {
			if (!accepts(line, lo) || accepts(line, lo - 1) ||
			    !accepts(line, hi) || accepts(line, hi + 1)) {
				printf("# %s: %s: bounds differ\n", line, rule);
				good = 0;
			}
		} else if (sscanf(rule, "an integer from %lld", &lo) == 1) {
			if (!accepts(line, lo) || accepts(line, lo - 1) ||
			    !accepts(line, INT64_MAX)) {
				printf("# %s: %s: bounds differ\n", line, rule);
				good = 0;
			}
		}
	}
	ok(good && n == 12, "a rule for each of the %d keys, bounds as set", n);
	ok(spool_config_rule("nosuch") == NULL, "no rule for an unknown key");
	ok(spool_config_set(&c, "min.cleanable.dirty.ratio", "1") == 0 &&
	    spool_config_set(&c, "min.cleanable.dirty.ratio", "1.01") < 0 &&
	    strcmp(spool_config_rule("min.cleanable.dirty.ratio"),
	    "a decimal from 0 to 1") == 0, "the ratio's rule");
	ok(spool_config_set(&c, "compression", "zlib:0") == 0 &&
	    spool_config_set(&c, "compression", "zlib:10") < 0 &&
	    strstr(spool_config_rule("compression"), "zlib:0 to zlib:9") !=
	    NULL, "compression's rule");
}

int
main(void)
{
	durations();
	times();
	positions();
	escapes();
	configs();
	rules();
	return tap_done();
}
