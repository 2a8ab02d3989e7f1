/*
 * test_batch.c - the batch codec: round trips, every corruption caught,
 * and the forward-compatibility rule (mq-spool(5), Compatibility)
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

/* header - a header with a good checksum: type, flags, version digit */
static void
header(unsigned char *p, unsigned type, unsigned flags, char digit)
{
	struct spool_bhdr h;

	memset(&h, 0, sizeof(h));
	h.type = (uint16_t)type;
	h.flags = (uint8_t)flags;
	if (type != SPOOL_TYPE_END) {
		h.count = 1;
		h.body_len = h.raw_len = 4;
	}
	spool_bhdr_pack(p, &h);
	p[3] = digit;
	spool_batch_stamp(p, 10);
}

/* unpack - what spool_bhdr_unpack makes of such a header */
static int
unpack(unsigned type, unsigned flags, char digit)
{
	unsigned char p[SPOOL_HDR_SIZE];
	struct spool_bhdr h;

	header(p, type, flags, digit);
	return spool_bhdr_unpack(p, &h);
}

/* newer_says - whether spool_bhdr_newer names what is newer */
static int
newer_says(unsigned type, unsigned flags, char digit, const char *want)
{
	unsigned char p[SPOOL_HDR_SIZE];
	char buf[64];

	header(p, type, flags, digit);
	spool_bhdr_newer(p, buf, sizeof(buf));
	return strcmp(buf, want) == 0;
}

/* attrs_bit - a one-record batch whose record sets attrs bit, sealed */
static int
attrs_bit(int bit)
{
	struct spool_batch b;
	struct spool_body body;
	struct spool_bhdr h;
	struct spool_msg m;
	unsigned char *buf;
	char why[64];
	size_t len;
	int r;

	if ((len = build(&b, 1, 0, &buf)) == 0)
		return -1;
	buf[SPOOL_HDR_SIZE + 1] |= 1 << bit;	/* after a one-byte len */
	put32(buf + 24, spool_crc(0, buf + SPOOL_HDR_SIZE,
	    len - SPOOL_HDR_SIZE));
	spool_batch_stamp(buf, 1000);
	memset(&body, 0, sizeof(body));
	r = spool_bhdr_unpack(buf, &h);
	if (r == 0)
		r = spool_body_open(&body, &h, buf + SPOOL_HDR_SIZE, why,
		    sizeof(why));
	if (r == 0)
		r = spool_body_next(&body, &m);
	spool_body_free(&body);
	spool_batch_free(&b);
	free(buf);
	return r;
}

/* compat - the three classes of value, each with a good checksum */
static void
compat(void)
{
	static const unsigned newer_types[] = { 2, 3, 7, 64, 127 };
	static const unsigned skip_types[] = { 128, 200, 4096, 65535 };
	unsigned char p[SPOOL_HDR_SIZE];
	struct spool_bhdr h;
	size_t i;
	int bit;

	ok(unpack(SPOOL_TYPE_DATA, 0, '1') == 0, "version 1 data: read");
	ok(unpack(SPOOL_TYPE_END, 0, '1') == 0, "version 1 END: read");
	ok(unpack(SPOOL_TYPE_DATA, 0, '2') == -EPROTO &&
	    unpack(SPOOL_TYPE_DATA, 0, '9') == -EPROTO,
	    "a newer version digit (2, 9): -EPROTO");
	ok(unpack(SPOOL_TYPE_DATA, 0, '0') == -EBADMSG &&
	    unpack(SPOOL_TYPE_DATA, 0, 'x') == -EBADMSG,
	    "version 0 or a non-digit: -EBADMSG");
	header(p, SPOOL_TYPE_DATA, 0, '2');
	p[20] ^= 1;
	ok(spool_bhdr_unpack(p, &h) == -EBADMSG,
	    "a newer version with a bad checksum: -EBADMSG");
	for (i = 0; i < sizeof(newer_types) / sizeof(*newer_types); i++)
		ok(unpack(newer_types[i], 0, '1') == -EPROTO,
		    "type %u: -EPROTO", newer_types[i]);
	ok(unpack(SPOOL_TYPE_TXN, 0, '1') == -EPROTO,
	    "type 2 (transactions, not known yet): -EPROTO");
	for (i = 0; i < sizeof(skip_types) / sizeof(*skip_types); i++)
		ok(unpack(skip_types[i], 0, '1') == 0,
		    "type %u: skippable, read", skip_types[i]);
	header(p, 200, 0, '1');
	p[50] = 9;	/* a codec of its own */
	spool_batch_stamp(p, 10);
	ok(spool_bhdr_unpack(p, &h) == 0 && h.type == 200 && h.count == 1 &&
	    h.base_offset == 10, "a skippable type keeps its own codec");
	ok(unpack(SPOOL_TYPE_DATA, SPOOL_BF_TXN, '1') == 0,
	    "flags bit 0 (txn records): read");
	ok(unpack(SPOOL_TYPE_DATA, SPOOL_BF_TXN | 0x04, '1') == -EPROTO,
	    "flags bit 0 with bit 2: -EPROTO");
	ok(unpack(SPOOL_TYPE_DATA, SPOOL_BF_COMPACTED, '1') == 0 &&
	    unpack(SPOOL_TYPE_END, SPOOL_BF_COMPACTED, '1') == 0,
	    "flags bit 1 (compacted): read");
	ok(unpack(SPOOL_TYPE_DATA, 0x04, '1') == -EPROTO &&
	    unpack(SPOOL_TYPE_DATA, 0x08, '1') == -EPROTO &&
	    unpack(200, 0x04, '1') == -EPROTO,
	    "flags bits 2, 3: -EPROTO, on any type");
	for (bit = 4; bit < 8; bit++)
		ok(unpack(SPOOL_TYPE_DATA, 1u << bit, '1') == 0,
		    "flags bit %d: an ignorable hint", bit);
	ok(unpack(SPOOL_TYPE_DATA, SPOOL_BF_HINTS | SPOOL_BF_COMPACTED,
	    '1') == 0, "every hint and compacted at once: read");
	ok(newer_says(7, 0, '1', "batch type 7"), "says: batch type 7");
	ok(newer_says(0, 0, '3', "batch format version 3"),
	    "says: batch format version 3");
	ok(newer_says(0, 0x04, '1', "batch flags 0x04"),
	    "says: batch flags 0x04");
	for (bit = 2; bit < 8; bit++)
		ok(attrs_bit(bit) == -EPROTO, "attrs bit %d: -EPROTO", bit);
}

/*
 * add_recs - spool_batch_add_recs writes the bytes spool_batch_add
 * writes for the same records (one- and two-byte lengths, one- and
 * three-byte times), and stops before a record over max and once the
 * body reaches full
 */
static void
add_recs(void)
{
	struct spool_batch a, b;
	struct spool_rec v[300];
	struct spool_msg m;
	static char pay[300];
	int64_t ts[2] = { 1700000000000, 1700000100000 };
	size_t i, half = 150;
	ssize_t k1, k2;

	memset(pay, 'p', sizeof(pay));
	spool_batch_init(&a);
	spool_batch_init(&b);
	for (i = 0; i < 300; i++) {
		v[i].p = pay;
		v[i].len = (i * 7) % 300;
		memset(&m, 0, sizeof(m));
		m.payload = pay;
		m.len = v[i].len;
		(void)spool_batch_add(&a, &m, ts[i >= half]);
	}
	k1 = spool_batch_add_recs(&b, v, half, ts[0], SIZE_MAX, SIZE_MAX);
	k2 = spool_batch_add_recs(&b, v + half, 300 - half, ts[1], SIZE_MAX,
	    SIZE_MAX);
	ok(k1 == (ssize_t)half && k2 == (ssize_t)(300 - half) &&
	    a.count == b.count && a.len == b.len && a.base_ts == b.base_ts &&
	    a.max_ts == b.max_ts && memcmp(a.buf + SPOOL_HDR_SIZE,
	    b.buf + SPOOL_HDR_SIZE, a.len - SPOOL_HDR_SIZE) == 0,
	    "add_recs: the bytes spool_batch_add writes");
	spool_batch_reset(&b);
	ok(spool_batch_add_recs(&b, v, 300, ts[0], 200, SIZE_MAX) == 29 &&
	    b.count == 29, "add_recs: stops before the first over max");
	spool_batch_reset(&b);
	k1 = spool_batch_add_recs(&b, v, 300, ts[0], SIZE_MAX, 1000);
	ok(k1 > 0 && k1 < 300 && b.len - SPOOL_HDR_SIZE >= 1000 &&
	    b.len - SPOOL_HDR_SIZE - (v[k1 - 1].len + 4) < 1000,
	    "add_recs: stops once the body reaches full (%zd)", k1);
	spool_batch_free(&a);
	spool_batch_free(&b);
}

/*
 * copy_limits - spool_body_copy against the records as they were added,
 * at every time limit around the batch's own (its run of common records
 * ends where a record's time can reach until_ts), from and until inside
 * it, and either delimiter; each record a call stops before is taken as
 * the reader takes it, with spool_body_next
 */
static void
copy_limits(void)
{
	static const int64_t T = 1764000000000LL;
	static const unsigned char crlf[] = "\r\n";
	struct spool_batch b;
	struct spool_bhdr h;
	struct spool_body body;
	struct spool_body_range rg;
	struct spool_msg m;
	const unsigned char *sealed;
	unsigned char *batch, *want, *got;
	const unsigned char *delim;
	static char pay[200];
	int64_t ts[400];
	size_t len[400], i, wlen, glen, n, dlen, bad = 0, walks = 0;
	uint64_t last;
	int64_t d;
	int v, r;
	char why[64];

	memset(pay, 'q', sizeof(pay));
	spool_batch_init(&b);
	for (i = 0; i < 400; i++) {
		memset(&m, 0, sizeof(m));
		/* times -64..63 ms from the first; lengths 0..129 */
		ts[i] = i == 0 ? T : T + (int64_t)((i * 37) % 128) - 64;
		len[i] = i % 130;
		m.payload = pay;
		m.len = len[i];
		if (i % 50 == 49) {
			m.key = "k";
			m.keylen = 1;
		}
		(void)spool_batch_add(&b, &m, ts[i]);
	}
	if (spool_batch_seal(&b, SPOOL_CODEC_NONE, 0, &sealed, &wlen) < 0)
		abort();
	batch = malloc(wlen);
	memcpy(batch, sealed, wlen);
	spool_batch_stamp(batch, 0);
	if (spool_bhdr_unpack(batch, &h) < 0)
		abort();
	want = malloc(400 * 202);
	got = malloc(400 * 202);
	for (d = -66; d <= 66; d++)
		for (v = 0; v < 8; v++) {
			rg.until_ts = T + d;
			rg.from = v & 1 ? 7 : 0;
			rg.until = v & 2 ? 350 : UINT64_MAX;
			rg.big = SIZE_MAX;
			dlen = v & 4 ? 2 : 1;
			delim = crlf + 2 - dlen;
			for (i = wlen = 0; i < 400; i++) {
				if (i >= rg.until || ts[i] >= rg.until_ts)
					break;
				if (i < rg.from)
					continue;
				memcpy(want + wlen, pay, len[i]);
				wlen += len[i];
				memcpy(want + wlen, delim, dlen);
				wlen += dlen;
			}
			memset(&body, 0, sizeof(body));
			if (spool_body_open(&body, &h, batch + SPOOL_HDR_SIZE,
			    why, sizeof(why)) < 0)
				break;
			for (glen = 0;;) {
				glen += spool_body_copy(&body, got + glen,
				    400 * 202 - glen, delim, dlen, SIZE_MAX, &rg,
				    &n, &last);
				if (n > 0)
					continue;
				if ((r = spool_body_next(&body, &m)) != 1 ||
				    m.offset >= rg.until || m.ts >= rg.until_ts)
					break;
				if (m.offset < rg.from)
					continue;
				memcpy(got + glen, m.payload, m.len);
				glen += m.len;
				memcpy(got + glen, delim, dlen);
				glen += dlen;
			}
			bad += glen != wlen || memcmp(got, want, wlen) != 0;
			walks++;
			spool_body_free(&body);
		}
	ok(walks == 133 * 8 && bad == 0, "copy: at every time limit around "
	    "the batch's, from and until, either delimiter (%zu of %zu walks "
	    "wrong)", bad, walks);
	free(batch);
	free(want);
	free(got);
	spool_batch_free(&b);
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
	ok(spool_bhdr_unpack(end, &h) == -EPROTO, "a newer magic: -EPROTO");
	memcpy(end, "mqX1", 4);
	ok(spool_bhdr_unpack(end, &h) == -EBADMSG, "unknown magic refused");
	compat();
	add_recs();
	copy_limits();
	return tap_done();
}
