/*
 * test_batch.c - the batch codec: round trips, and every corruption
 * caught
 */

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "spool_impl.h"
#include "tap.h"

/* build - a batch of n messages with keys and headers every so often */
static size_t
build(struct spool_batch *b, int n, int codec, unsigned char **out)
{
	struct spool_header h[2] = {
		{ "trace", 5, "abc", 3 }, { "empty", 5, "", 0 }
	};
	struct spool_msg m;
	const unsigned char *o;
	char payload[64];
	size_t len;
	int i;

	spool_batch_init(b);
	for (i = 0; i < n; i++) {
		memset(&m, 0, sizeof(m));
		m.ts = 1764000000000LL + (i % 7) - 3;
		snprintf(payload, sizeof(payload), "message %d", i);
		m.payload = payload;
		m.len = i % 5 == 0 ? 0 : strlen(payload);
		if (i % 3 == 0) {
			m.key = "key";
			m.keylen = i % 2 ? 3 : 0;
		}
		if (i % 4 == 0) {
			m.headers = h;
			m.nheaders = 2;
		}
		if (spool_batch_add(b, &m, m.ts) < 0)
			return 0;
	}
	if (spool_batch_seal(b, codec, 6, &o, &len) < 0)
		return 0;
	*out = malloc(len);
	memcpy(*out, o, len);
	spool_batch_stamp(*out, 1000);
	return len;
}

/* check - decode a batch made by build and compare every field */
static int
check(const unsigned char *buf, size_t len, int n)
{
	struct spool_bhdr h;
	struct spool_body body;
	struct spool_msg m;
	char why[64], payload[64];
	int i, r, good = 1;

	memset(&body, 0, sizeof(body));
	if (spool_bhdr_unpack(buf, &h) < 0 || h.count != (uint32_t)n ||
	    SPOOL_HDR_SIZE + h.body_len != len)
		return 0;
	if (spool_body_open(&body, &h, buf + SPOOL_HDR_SIZE, why,
	    sizeof(why)) < 0)
		return 0;
	for (i = 0; i < n; i++) {
		if ((r = spool_body_next(&body, &m)) != 1) {
			good = 0;
			break;
		}
		snprintf(payload, sizeof(payload), "message %d", i);
		if (m.offset != 1000u + i ||
		    m.ts != 1764000000000LL + (i % 7) - 3 ||
		    m.len != (i % 5 == 0 ? 0 : strlen(payload)) ||
		    memcmp(m.payload, payload, m.len) != 0 ||
		    (i % 3 == 0) != (m.key != NULL) ||
		    (m.key && m.keylen != (size_t)(i % 2 ? 3 : 0)) ||
		    m.nheaders != (i % 4 == 0 ? 2u : 0u) ||
		    (m.nheaders && (m.headers[0].valuelen != 3 ||
		    memcmp(m.headers[0].value, "abc", 3) != 0)))
			good = 0;
	}
	if (spool_body_next(&body, &m) != 0)
		good = 0;
	spool_body_free(&body);
	return good;
}

/* decodes - whether a (possibly damaged) batch decodes at all */
static int
decodes(const unsigned char *buf)
{
	struct spool_bhdr h;
	struct spool_body body;
	struct spool_msg m;
	char why[64];
	int r;

	memset(&body, 0, sizeof(body));
	if (spool_bhdr_unpack(buf, &h) < 0)
		return 0;
	r = spool_body_open(&body, &h, buf + SPOOL_HDR_SIZE, why, sizeof(why));
	if (r == 0)
		while ((r = spool_body_next(&body, &m)) == 1)
			;
	spool_body_free(&body);
	return r == 0;
}

int
main(void)
{
	struct spool_batch b;
	unsigned char *buf, end[SPOOL_HDR_SIZE];
	struct spool_bhdr h;
	size_t len, i;
	int codec, bit, caught;

	for (codec = 0; codec <= 1; codec++) {
		len = build(&b, 1000, codec, &buf);
		ok(len > 0, "codec %d: 1000 messages sealed", codec);
		ok(check(buf, len, 1000), "codec %d: every field round-trips",
		    codec);
		ok(decodes(buf), "codec %d: the batch as sealed decodes",
		    codec);
		/* every single-bit flip anywhere is caught */
		caught = 0;
		for (i = 0; i < len; i++)
			for (bit = 0; bit < 8; bit++) {
				buf[i] ^= 1 << bit;
				caught += !decodes(buf);
				buf[i] ^= 1 << bit;
			}
		ok((size_t)caught == len * 8, "codec %d: all %zu bit flips "
		    "detected (%d)", codec, len * 8, caught);
		free(buf);
		spool_batch_free(&b);
	}
	len = build(&b, 1, 0, &buf);
	ok(check(buf, len, 1), "a one-message batch");
	free(buf);
	spool_batch_free(&b);

	spool_batch_end(end, 77, 1);
	ok(spool_bhdr_unpack(end, &h) == 0 && h.type == SPOOL_TYPE_END &&
	    h.base_offset == 77 && h.count == 0, "END batch");
	memcpy(end, "mqB2", 4);
	ok(spool_bhdr_unpack(end, &h) == -EBADMSG, "unknown magic refused");
	return tap_done();
}
