/*
 * json.c - messages as JSON lines, out (mq-recv -J) and back in (mq-send -J)
 *
 * One message is one object:
 *
 *	{"topic":"t","partition":0,"offset":7,"ts":1764000000000,
 *	 "key":"k","headers":[["name","value"]],"payload":"text"}
 *
 * plus "id" for a message sent with mq-send --id (text IDs only).
 * Read back, a "ts" is kept as given, 0 (the epoch) too; only an absent
 * or null "ts" means the time of the send.
 *
 * JSON strings hold Unicode text, messages hold bytes.  A key or payload
 * that is valid UTF-8 is written as a string (control characters and NUL
 * escaped); one that is not is written in base64 and flagged with
 * "key_encoding":"base64" or "payload_encoding":"base64".  A header whose
 * name or value is not valid UTF-8 is written [name, value, "base64"]
 * with both in base64.  So every message survives the round trip
 * mq-recv -J | mq-send -J byte for byte.
 *
 * Encoding is done by hand (it is on the hot path of mq-recv -J, and
 * mirror_cut.c writes a diverged replica's cut-off messages so), with no
 * library.  Decoding (mq-send -J) is the programs' business and uses
 * jansson: cmd/json_in.c, so that libspool does not link jansson.
 */

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jsonscan.h"
#include "spool_impl.h"

static const char b64[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/* the line being written: p..end is room, *buf the growable buffer */
struct out {
	char	*p, *end;
	char	**buf;
	size_t	*cap;
	size_t	*len;
	int	 err;
};

/* reserve - room for n more bytes at o->p (NULL when out of memory) */
static char *
reserve(struct out *o, size_t n)
{
	size_t used, ncap;
	char *nb;

	/* o->p is NULL only before the first line's buffer exists */
	if (o->p != NULL && (size_t)(o->end - o->p) >= n)
		return o->p;
	used = o->p != NULL ? (size_t)(o->p - *o->buf) : 0;
	ncap = *o->cap ? *o->cap : 4096;
	while (ncap < used + n)
		ncap *= 2;
	if ((nb = realloc(*o->buf, ncap)) == NULL) {
		o->err = -ENOMEM;
		return NULL;
	}
	*o->buf = nb;
	*o->cap = ncap;
	o->p = nb + used;
	o->end = nb + ncap;
	return o->p;
}

/* put - append n bytes */
static inline void
put(struct out *o, const char *s, size_t n)
{
	if ((size_t)(o->end - o->p) < n && reserve(o, n) == NULL)
		return;
	memcpy(o->p, s, n);
	o->p += n;
}

/* PUTS - append a string literal */
#define PUTS(o, lit)	put((o), (lit), sizeof(lit) - 1)

/*
 * ascii8 - x (below 10^8) as eight ASCII digits, leading zeros kept,
 * the first in the lowest byte: split into halves, quarters and single
 * digits by multiplications that work on every lane of the word at
 * once (a lane's quotient never reaches the lane below)
 */
static inline uint64_t
ascii8(uint32_t x)
{
	uint64_t v, q;

	v = x / 10000 | (uint64_t)(x % 10000) << 32;
	q = (v * 10486) >> 20 & 0x0000007f0000007fULL;	/* / 100 */
	v = q | (v - q * 100) << 16;
	q = (v * 103) >> 10 & 0x000f000f000f000fULL;	/* / 10 */
	v = q | (v - q * 10) << 8;
	return v + 0x3030303030303030ULL;
}

/* lead - x (1 to 10^8 - 1) at p without leading zeros; past it */
static inline char *
lead(char *p, uint32_t x)
{
	uint64_t w = ascii8(x);
	unsigned z = (unsigned)__builtin_ctzll(w - 0x3030303030303030ULL) &
	    ~7u;	/* eight bits a leading zero */

	w >>= z;
	memcpy(p, &w, 8);	/* what is past the digits is written over */
	return p + 8 - z / 8;
}

/* put_num - a decimal integer, its sign given apart (printf is slow) */
static void
put_num(struct out *o, uint64_t v, int neg)
{
	uint64_t w;
	char *p;

	/* a sign, 20 digits, and the 8 bytes lead writes at once */
	if ((p = reserve(o, 1 + 20 + 8)) == NULL)
		return;
	if (neg)
		*p++ = '-';
	if (v < 10)
		*p++ = (char)('0' + v);
	else if (v < 100000000)
		p = lead(p, (uint32_t)v);
	else {
		if (v < 10000000000000000ULL)
			p = lead(p, (uint32_t)(v / 100000000));
		else {
			p = lead(p, (uint32_t)(v / 10000000000000000ULL));
			w = ascii8((uint32_t)(v / 100000000 % 100000000));
			memcpy(p, &w, 8);
			p += 8;
		}
		w = ascii8((uint32_t)(v % 100000000));
		memcpy(p, &w, 8);
		p += 8;
	}
	o->p = p;
}

/* utf8_ok - whether p holds valid UTF-8 (no overlongs or surrogates) */
static int
utf8_ok(const unsigned char *p, size_t n)
{
	const unsigned char *end = p + n;
	uint64_t x;
	int k;

	while (p < end) {
		/* ASCII, eight bytes at a time */
		if (end - p >= 8) {
			memcpy(&x, p, 8);
			if ((x & JSONSCAN_HIGHS) == 0) {
				p += 8;
				continue;
			}
		}
		if (*p < 0x80)
			p++;
		else if ((k = jsonscan_utf8(p, end)) == 0)
			return 0;
		else
			p += k;
	}
	return 1;
}

/* put_str - a JSON string of UTF-8 text */
static void
put_str(struct out *o, const unsigned char *s, size_t n)
{
	static const char hex[] = "0123456789abcdef";
	const unsigned char *end = s + n, *run;
	char *p;

	put(o, "\"", 1);
	while (s < end) {
		/* ASCII that needs no escape, and UTF-8 past it, as it is */
		run = s;
		for (;;) {
			s += jsonscan_plain(s, end - s);
			if (s == end || *s < 0x80)
				break;
			s++;
		}
		put(o, (const char *)run, s - run);
		if (s == end)
			break;
		if ((p = reserve(o, 6)) == NULL)
			return;
		switch (*s) {
		case '"':  memcpy(p, "\\\"", 2); o->p += 2; break;
		case '\\': memcpy(p, "\\\\", 2); o->p += 2; break;
		case '\n': memcpy(p, "\\n", 2); o->p += 2; break;
		case '\t': memcpy(p, "\\t", 2); o->p += 2; break;
		case '\r': memcpy(p, "\\r", 2); o->p += 2; break;
		default:
			memcpy(p, "\\u00", 4);
			p[4] = hex[*s >> 4];
			p[5] = hex[*s & 15];
			o->p += 6;
		}
		s++;
	}
	put(o, "\"", 1);
}

/*
 * put_text - s as a JSON string when it is UTF-8 text (1), else nothing
 * (0: the caller writes base64).  Plain ASCII, the usual payload, is
 * found so in one pass and copied at once.
 */
static int
put_text(struct out *o, const unsigned char *s, size_t n)
{
	char *p;

	if (jsonscan_plain(s, n) == n) {
		if ((p = reserve(o, n + 2)) == NULL)
			return 1;
		*p++ = '"';
		memcpy(p, s, n);
		p[n] = '"';
		o->p = p + n + 1;
		return 1;
	}
	if (!utf8_ok(s, n))
		return 0;
	put_str(o, s, n);
	return 1;
}

/* put_b64 - a JSON string of the base64 of s */
static void
put_b64(struct out *o, const unsigned char *s, size_t n)
{
	char *p;
	size_t i;

	if ((p = reserve(o, 2 + (n + 2) / 3 * 4)) == NULL)
		return;
	*p++ = '"';
	for (i = 0; i + 2 < n; i += 3) {
		*p++ = b64[s[i] >> 2];
		*p++ = b64[(s[i] & 3) << 4 | s[i + 1] >> 4];
		*p++ = b64[(s[i + 1] & 15) << 2 | s[i + 2] >> 6];
		*p++ = b64[s[i + 2] & 63];
	}
	if (i < n) {
		*p++ = b64[s[i] >> 2];
		if (i + 1 < n) {
			*p++ = b64[(s[i] & 3) << 4 | s[i + 1] >> 4];
			*p++ = b64[(s[i + 1] & 15) << 2];
		} else {
			*p++ = b64[(s[i] & 3) << 4];
			*p++ = '=';
		}
		*p++ = '=';
	}
	*p++ = '"';
	o->p = p;
}

/*
 * spool_json_encode - append m as one JSON object line (with "\n") to
 * the growable buffer *buf
 */
int
spool_json_encode(const char *topic, const struct spool_msg *m, char **buf,
    size_t *cap, size_t *len)
{
	struct out o = { NULL, NULL, buf, cap, len, 0 };
	size_t i, tlen;
	int kb = 0, pb;

	if (*buf != NULL) {
		o.p = *buf + *len;
		o.end = *buf + *cap;
	} else if (reserve(&o, 4096) == NULL)
		return o.err;

	PUTS(&o, "{\"topic\":");
	/* a name is plain ASCII: put_text's single copy */
	tlen = strlen(topic);
	if (!put_text(&o, (const unsigned char *)topic, tlen))
		put_str(&o, (const unsigned char *)topic, tlen);
	PUTS(&o, ",\"partition\":");
	put_num(&o, m->partition, 0);
	PUTS(&o, ",\"offset\":");
	put_num(&o, m->offset, 0);
	PUTS(&o, ",\"ts\":");
	put_num(&o, m->ts < 0 ? -(uint64_t)m->ts : (uint64_t)m->ts, m->ts < 0);
	PUTS(&o, ",\"key\":");
	if (m->key == NULL)
		PUTS(&o, "null");
	else if (!put_text(&o, m->key, m->keylen)) {
		put_b64(&o, m->key, m->keylen);
		kb = 1;
	}
	PUTS(&o, ",\"headers\":[");
	for (i = 0; i < m->nheaders; i++) {
		const struct spool_header *h = &m->headers[i];
		int hb = !utf8_ok((const unsigned char *)h->name, h->namelen) ||
		    !utf8_ok(h->value, h->valuelen);

		put(&o, i ? ",[" : "[", i ? 2 : 1);
		if (hb) {
			put_b64(&o, (const unsigned char *)h->name, h->namelen);
			PUTS(&o, ",");
			put_b64(&o, h->value, h->valuelen);
			PUTS(&o, ",\"base64\"]");
		} else {
			put_str(&o, (const unsigned char *)h->name, h->namelen);
			PUTS(&o, ",");
			put_str(&o, h->value, h->valuelen);
			PUTS(&o, "]");
		}
	}
	PUTS(&o, "],\"payload\":");
	if ((pb = !put_text(&o, m->payload, m->len)))
		put_b64(&o, m->payload, m->len);
	if (m->id != NULL && utf8_ok(m->id, m->idlen)) {
		PUTS(&o, ",\"id\":");
		put_str(&o, m->id, m->idlen);
	}
	if (kb)
		PUTS(&o, ",\"key_encoding\":\"base64\"");
	if (pb)
		PUTS(&o, ",\"payload_encoding\":\"base64\"");
	PUTS(&o, "}\n");
	*len = (size_t)(o.p - *buf);
	return o.err;
}
