/*
 * fuzz_json.c - json_in_decode over arbitrary bytes (mq-send -J)
 *
 * A line that decodes is encoded again (what mq-recv -J prints) and
 * decoded once more: payload, key (and whether there is one), headers
 * and time must come back identical, or the target aborts.  The
 * encoding must also be one line ending in a newline.
 */

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json_in.h"
#include "spool_impl.h"

static int
same(const void *a, size_t alen, const void *b, size_t blen)
{
	return alen == blen && (alen == 0 || memcmp(a, b, alen) == 0);
}

static void
fail(const char *what, const char *enc, size_t len)
{
	fprintf(stderr, "fuzz_json: round trip: %s differs\nencoded: %.*s\n",
	    what, (int)len, enc);
	abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct spool_msg m, m2;
	void *st = NULL, *st2 = NULL;
	char *buf = NULL, *copy;
	size_t cap = 0, len = 0, i;

	/* an exactly sized copy, so that a read past the line is caught */
	if ((copy = malloc(size ? size : 1)) == NULL)
		return 0;
	memcpy(copy, data, size);
	if (json_in_decode(copy, size, &m, &st) == 0) {
		m.partition = 3;
		m.offset = 42;
		if (spool_json_encode("t", &m, &buf, &cap, &len) != 0)
			abort();
		if (len == 0 || buf[len - 1] != '\n' ||
		    memchr(buf, '\n', len - 1) != NULL)
			fail("line framing", buf, len);
		if (json_in_decode(buf, len, &m2, &st2) != 0)
			fail("decoding", buf, len);
		if (!same(m.payload, m.len, m2.payload, m2.len))
			fail("payload", buf, len);
		if ((m.key == NULL) != (m2.key == NULL) ||
		    (m.key != NULL && !same(m.key, m.keylen, m2.key,
		    m2.keylen)))
			fail("key", buf, len);
		if (m.ts != m2.ts)
			fail("ts", buf, len);
		if (m.nheaders != m2.nheaders)
			fail("header count", buf, len);
		for (i = 0; i < m.nheaders; i++)
			if (!same(m.headers[i].name, m.headers[i].namelen,
			    m2.headers[i].name, m2.headers[i].namelen) ||
			    !same(m.headers[i].value, m.headers[i].valuelen,
			    m2.headers[i].value, m2.headers[i].valuelen))
				fail("header", buf, len);
	}
	json_in_free(st);
	json_in_free(st2);
	free(buf);
	free(copy);
	return 0;
}
