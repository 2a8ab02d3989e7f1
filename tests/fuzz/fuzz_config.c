/*
 * fuzz_config.c - spool_config_parse over arbitrary text
 *
 * The text is NUL-terminated at the first NUL (as spool_read_file hands
 * it over).  A config that parses is formatted, parsed again from the
 * defaults and must give the same struct, or the target aborts.
 */

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "spool_impl.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct spool_config c, c2;
	char *text, out[8192];
	int n;

	if ((text = malloc(size + 1)) == NULL)
		return 0;
	memcpy(text, data, size);
	text[size] = '\0';
	spool_config_default(&c);
	if (spool_config_parse(&c, text) == 0) {
		n = spool_config_format(&c, out, sizeof(out));
		if (n < 0)
			abort();
		spool_config_default(&c2);
		if (spool_config_parse(&c2, out) != 0 ||
		    memcmp(&c, &c2, sizeof(c)) != 0)
			abort();
	}
	free(text);
	return 0;
}
