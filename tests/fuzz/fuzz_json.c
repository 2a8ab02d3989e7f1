/*
 * fuzz_json.c - json_in_decode over arbitrary bytes (mq-send -J)
 *
 * Differential first: the decoder with its fast path (cmd/json_fast.c)
 * and jansson alone (json_in_decode_full) must accept and refuse the
 * same lines and decode the same message, or the target aborts.
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

/* same_msg - whether two decoded messages are the same */
static const char *
same_msg(const struct spool_msg *a, const struct spool_msg *b)
{
	size_t i;

	if (!same(a->payload, a->len, b->payload, b->len))
		return "payload";
	if ((a->key == NULL) != (b->key == NULL) || (a->key != NULL &&
	    !same(a->key, a->keylen, b->key, b->keylen)))
		return "key";
	if ((a->id == NULL) != (b->id == NULL) || (a->id != NULL &&
	    !same(a->id, a->idlen, b->id, b->idlen)))
		return "id";
	if (a->ts != b->ts || a->ts_given != b->ts_given)
		return "ts";
	if (a->nheaders != b->nheaders)
		return "header count";
	for (i = 0; i < a->nheaders; i++)
		if (!same(a->headers[i].name, a->headers[i].namelen,
		    b->headers[i].name, b->headers[i].namelen) ||
		    !same(a->headers[i].value, a->headers[i].valuelen,
		    b->headers[i].value, b->headers[i].valuelen))
			return "header";
	return NULL;
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
	{
		struct spool_msg mf;
		void *sf = NULL;
		int a = json_in_decode(copy, size, &m, &st);
		int b = json_in_decode_full(copy, size, &mf, &sf);
		const char *what;

		if ((a == 0) != (b == 0)) {
			fprintf(stderr, "fuzz_json: fast path %s, jansson %s: "
			    "%.*s\n", a == 0 ? "accepts" : "refuses",
			    b == 0 ? "accepts" : "refuses", (int)size, copy);
			abort();
		}
		if (a == 0 && (what = same_msg(&m, &mf)) != NULL) {
			fprintf(stderr, "fuzz_json: fast path and jansson "
			    "decode %s differently: %.*s\n", what,
			    (int)size, copy);
			abort();
		}
		json_in_free(sf);
		json_in_free(st);
		st = NULL;
	}
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
