/*
 * fuzz_cli.c - the argument parsers of cmd/cli.c over arbitrary text
 *
 * cli_duration (--timeout, --sync-interval), cli_time and cli_pos (-o,
 * -u: N, -N, @TIME, beginning, end), cli_unescape (-D, -K, -F) and
 * cli_format_ok (-F, on the unescaped format) each get the input, cut at
 * its first NUL as an argv string would be.  Only parsers that return
 * errors are fuzzed: cli_number, cli_usage_die and cli_die exit.  The
 * -F renderer in mq-recv only ever sees formats cli_format_ok passed.
 */

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct spool_pos pos;
	int64_t ms;
	size_t len;
	char *s, *u;

	if ((s = malloc(size + 1)) == NULL)
		return 0;
	memcpy(s, data, size);
	s[size] = '\0';

	if (cli_duration(s, &ms) == 0 && (ms < 0 || ms > 9000000000000000LL))
		abort();
	(void)cli_time(s, &ms);
	memset(&pos, 0, sizeof(pos));
	if (cli_pos(s, &pos) == 0 && (pos.kind == SPOOL_POS_OFFSET ||
	    pos.kind == SPOOL_POS_FROM_END) && pos.value < 0)
		abort();
	if ((u = cli_unescape(s, &len)) != NULL) {
		/* escapes only ever shorten */
		if (len > strlen(s))
			abort();
		/* the -F checker, on what -F would see */
		(void)cli_format_ok(u, len);
		free(u);
	}
	free(s);
	return 0;
}
