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
 * Encoding is done by hand (it is on the hot path of mq-recv -J);
 * decoding uses jansson.
 */

#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "spool_impl.h"

static const char b64[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

struct out {
	char	**buf;
	size_t	*cap;
	size_t	*len;
	int	 err;
};

/* reserve - room for n more bytes */
static char *
reserve(struct out *o, size_t n)
{
	char *nb;
	size_t ncap;

	if (*o->len + n > *o->cap) {
		ncap = *o->cap ? *o->cap : 4096;
		while (ncap < *o->len + n)
			ncap *= 2;
		if ((nb = realloc(*o->buf, ncap)) == NULL) {
			o->err = -ENOMEM;
			return NULL;
		}
		*o->buf = nb;
		*o->cap = ncap;
	}
	return *o->buf + *o->len;
}

static void
put(struct out *o, const char *s, size_t n)
{
	char *p;

	if ((p = reserve(o, n)) == NULL)
		return;
	memcpy(p, s, n);
	*o->len += n;
}

static void
puts_(struct out *o, const char *s)
{
	put(o, s, strlen(s));
}

/* utf8_ok - whether p holds valid UTF-8 (no overlongs or surrogates) */
static int
utf8_ok(const unsigned char *p, size_t n)
{
	const unsigned char *end = p + n;
	uint32_t c;
	int k;

	while (p < end) {
		if (*p < 0x80) {
			p++;
			continue;
		}
		if (*p >= 0xc2 && *p <= 0xdf) {
			k = 1;
			c = *p & 0x1f;
		} else if (*p >= 0xe0 && *p <= 0xef) {
			k = 2;
			c = *p & 0x0f;
		} else if (*p >= 0xf0 && *p <= 0xf4) {
			k = 3;
			c = *p & 0x07;
		} else
			return 0;
		if (end - p <= k)
			return 0;
		for (int i = 1; i <= k; i++) {
			if ((p[i] & 0xc0) != 0x80)
				return 0;
			c = c << 6 | (p[i] & 0x3f);
		}
		if ((k == 2 && (c < 0x800 || (c >= 0xd800 && c <= 0xdfff))) ||
		    (k == 3 && (c < 0x10000 || c > 0x10ffff)))
			return 0;
		p += k + 1;
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
		for (run = s; s < end && *s >= 0x20 && *s != '"' && *s != '\\';
		    s++)
			;
		put(o, (const char *)run, s - run);
		if (s == end)
			break;
		if ((p = reserve(o, 6)) == NULL)
			return;
		switch (*s) {
		case '"':  memcpy(p, "\\\"", 2); *o->len += 2; break;
		case '\\': memcpy(p, "\\\\", 2); *o->len += 2; break;
		case '\n': memcpy(p, "\\n", 2); *o->len += 2; break;
		case '\t': memcpy(p, "\\t", 2); *o->len += 2; break;
		case '\r': memcpy(p, "\\r", 2); *o->len += 2; break;
		default:
			memcpy(p, "\\u00", 4);
			p[4] = hex[*s >> 4];
			p[5] = hex[*s & 15];
			*o->len += 6;
		}
		s++;
	}
	put(o, "\"", 1);
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
	*o->len = p - *o->buf;
}

/*
 * spool_json_encode - append m as one JSON object line (with "\n") to
 * the growable buffer *buf
 */
int
spool_json_encode(const char *topic, const struct spool_msg *m, char **buf,
    size_t *cap, size_t *len)
{
	struct out o = { buf, cap, len, 0 };
	char num[96];
	size_t i;
	int kb = 0, pb;

	puts_(&o, "{\"topic\":");
	put_str(&o, (const unsigned char *)topic, strlen(topic));
	snprintf(num, sizeof(num), ",\"partition\":%" PRIu32 ",\"offset\":%"
	    PRIu64 ",\"ts\":%" PRId64 ",\"key\":", m->partition, m->offset,
	    m->ts);
	puts_(&o, num);
	if (m->key == NULL)
		puts_(&o, "null");
	else if (utf8_ok(m->key, m->keylen))
		put_str(&o, m->key, m->keylen);
	else {
		put_b64(&o, m->key, m->keylen);
		kb = 1;
	}
	puts_(&o, ",\"headers\":[");
	for (i = 0; i < m->nheaders; i++) {
		const struct spool_header *h = &m->headers[i];
		int hb = !utf8_ok((const unsigned char *)h->name, h->namelen) ||
		    !utf8_ok(h->value, h->valuelen);

		puts_(&o, i ? ",[" : "[");
		if (hb) {
			put_b64(&o, (const unsigned char *)h->name, h->namelen);
			puts_(&o, ",");
			put_b64(&o, h->value, h->valuelen);
			puts_(&o, ",\"base64\"]");
		} else {
			put_str(&o, (const unsigned char *)h->name, h->namelen);
			puts_(&o, ",");
			put_str(&o, h->value, h->valuelen);
			puts_(&o, "]");
		}
	}
	puts_(&o, "],\"payload\":");
	if ((pb = !utf8_ok(m->payload, m->len)))
		put_b64(&o, m->payload, m->len);
	else
		put_str(&o, m->payload, m->len);
	if (m->id != NULL && utf8_ok(m->id, m->idlen)) {
		puts_(&o, ",\"id\":");
		put_str(&o, m->id, m->idlen);
	}
	if (kb)
		puts_(&o, ",\"key_encoding\":\"base64\"");
	if (pb)
		puts_(&o, ",\"payload_encoding\":\"base64\"");
	puts_(&o, "}\n");
	return o.err;
}

/* decoding state: what the message's pointers point into */
struct jstate {
	json_t		*root;
	struct spool_header *hdrs;
	unsigned char	*bufs[64];
	int		 nbufs;
	char		 why[160];	/* what is wrong with the line */
};

/* bad - say why the line is no message; -EINVAL (or r, when ENOMEM) */
static int
bad(struct jstate *st, int r, const char *fmt, ...)
{
	va_list ap;

	if (r == -ENOMEM)
		return r;
	va_start(ap, fmt);
	vsnprintf(st->why, sizeof(st->why), fmt, ap);
	va_end(ap);
	return -EINVAL;
}

/* unb64 - decode base64 into a new buffer kept in st */
static int
unb64(struct jstate *st, const char *s, size_t n, const void **out,
    size_t *outlen)
{
	unsigned char *d;
	uint32_t acc = 0;
	size_t i, k = 0;
	int bits = 0, pad = 0;

	if (n % 4 != 0 || st->nbufs == 64)
		return -EINVAL;
	if ((d = malloc(n / 4 * 3 + 1)) == NULL)
		return -ENOMEM;
	st->bufs[st->nbufs++] = d;
	for (i = 0; i < n; i++) {
		const char *c;
		int v;

		if (s[i] == '=') {
			if (i < n - 2 || ++pad > 2)
				return -EINVAL;
			continue;
		}
		if (pad || s[i] == '\0' || (c = strchr(b64, s[i])) == NULL)
			return -EINVAL;
		v = (int)(c - b64);
		acc = acc << 6 | v;
		if ((bits += 6) >= 8) {
			bits -= 8;
			d[k++] = (unsigned char)(acc >> bits);
		}
	}
	*out = d;
	*outlen = k;
	return 0;
}

/* field - a string member, decoded per its encoding flag */
static int
field(struct jstate *st, json_t *v, int base64, const void **out, size_t *len)
{
	if (!json_is_string(v))
		return -EINVAL;
	if (base64)
		return unb64(st, json_string_value(v), json_string_length(v),
		    out, len);
	*out = json_string_value(v);
	*len = json_string_length(v);
	return 0;
}

/* is_b64 - whether member name of o says "base64" */
static int
is_b64(json_t *o, const char *name)
{
	json_t *v = json_object_get(o, name);

	return json_is_string(v) && strcmp(json_string_value(v), "base64") == 0;
}

/*
 * header_pairs - "headers": [[name, value], [name, value, "base64"]...],
 * mq-recv -J's form
 */
static int
header_pairs(struct jstate *st, json_t *v, struct spool_msg *m)
{
	const void *name;
	json_t *h;
	size_t i;
	int hb, r;

	for (i = 0; i < m->nheaders; i++) {
		h = json_array_get(v, i);
		if (!json_is_array(h) || json_array_size(h) < 2 ||
		    json_array_size(h) > 3)
			return bad(st, -EINVAL, "\"headers\"[%zu]: expected "
			    "[name, value]", i);
		hb = json_array_size(h) == 3 &&
		    json_is_string(json_array_get(h, 2)) &&
		    strcmp(json_string_value(json_array_get(h, 2)),
		    "base64") == 0;
		if (json_array_size(h) == 3 && !hb)
			return bad(st, -EINVAL, "\"headers\"[%zu]: a third "
			    "element must be \"base64\"", i);
		if ((r = field(st, json_array_get(h, 0), hb, &name,
		    &st->hdrs[i].namelen)) < 0 ||
		    (r = field(st, json_array_get(h, 1), hb,
		    &st->hdrs[i].value, &st->hdrs[i].valuelen)) < 0)
			return bad(st, r, "\"headers\"[%zu]: expected %s", i,
			    hb ? "base64 strings" : "strings");
		st->hdrs[i].name = name;
	}
	return 0;
}

/* header_object - "headers": {"name": "value", ...}, kcat's -J form */
static int
header_object(struct jstate *st, json_t *v, struct spool_msg *m)
{
	const char *name;
	json_t *val;
	size_t i = 0;

	json_object_foreach(v, name, val) {
		if (!json_is_string(val))
			return bad(st, -EINVAL, "\"headers\".\"%s\": expected "
			    "a string", name);
		st->hdrs[i].name = name;
		st->hdrs[i].namelen = strlen(name);
		st->hdrs[i].value = json_string_value(val);
		st->hdrs[i].valuelen = json_string_length(val);
		i++;
	}
	return 0;
}

/*
 * spool_json_decode - read one object line into m; *state owns what m
 * points into (free it with spool_json_free).  -EINVAL: not a message,
 * and spool_json_why says why.
 */
int
spool_json_decode(const char *line, size_t len, struct spool_msg *m,
    void **state)
{
	struct jstate *st;
	json_error_t jerr;
	json_t *v;
	int r;

	*state = NULL;
	memset(m, 0, sizeof(*m));
	if ((st = calloc(1, sizeof(*st))) == NULL)
		return -ENOMEM;
	*state = st;
	st->root = json_loadb(line, len, JSON_ALLOW_NUL, &jerr);
	if (st->root == NULL)
		return bad(st, -EINVAL, "column %d: %s", jerr.column,
		    jerr.text);
	if (!json_is_object(st->root))
		return bad(st, -EINVAL, "expected a JSON object");
	v = json_object_get(st->root, "payload");
	if (v == NULL)
		return bad(st, -EINVAL, "no \"payload\"");
	if ((r = field(st, v, is_b64(st->root, "payload_encoding"),
	    &m->payload, &m->len)) < 0)
		return bad(st, r, "\"payload\": expected a %sstring",
		    is_b64(st->root, "payload_encoding") ? "base64 " : "");
	v = json_object_get(st->root, "key");
	if (v != NULL && !json_is_null(v) && (r = field(st, v,
	    is_b64(st->root, "key_encoding"), &m->key, &m->keylen)) < 0)
		return bad(st, r, "\"key\": expected a %sstring or null",
		    is_b64(st->root, "key_encoding") ? "base64 " : "");
	v = json_object_get(st->root, "id");
	if (v != NULL && !json_is_null(v) && ((r = field(st, v, 0, &m->id,
	    &m->idlen)) < 0 || m->idlen == 0 || m->idlen > SPOOL_ID_MAX))
		return bad(st, r, "\"id\": expected a string of 1 to %d "
		    "bytes", SPOOL_ID_MAX);
	v = json_object_get(st->root, "ts");
	if (v != NULL && !json_is_null(v)) {
		if (!json_is_integer(v) || json_integer_value(v) < 0)
			return bad(st, -EINVAL, "\"ts\": expected an integer "
			    "(ms since the epoch)");
		/* given is kept, 0 too: only an absent ts means now */
		m->ts = json_integer_value(v);
		m->ts_given = 1;
	}
	v = json_object_get(st->root, "headers");
	if (v != NULL && !json_is_null(v)) {
		if (!json_is_array(v) && !json_is_object(v))
			return bad(st, -EINVAL, "\"headers\": expected an "
			    "array of [name, value] or an object");
		m->nheaders = json_is_array(v) ? json_array_size(v) :
		    json_object_size(v);
		if (m->nheaders > 0 && (st->hdrs = calloc(m->nheaders,
		    sizeof(*st->hdrs))) == NULL)
			return -ENOMEM;
		if ((r = json_is_array(v) ? header_pairs(st, v, m) :
		    header_object(st, v, m)) < 0)
			return r;
		m->headers = st->hdrs;
	}
	return 0;
}

/* spool_json_why - why the last spool_json_decode said -EINVAL */
const char *
spool_json_why(const void *state)
{
	const struct jstate *st = state;

	return st != NULL && *st->why != '\0' ? st->why : "not a message";
}

/* spool_json_free - release what spool_json_decode kept */
void
spool_json_free(void *state)
{
	struct jstate *st = state;
	int i;

	if (st == NULL)
		return;
	json_decref(st->root);
	free(st->hdrs);
	for (i = 0; i < st->nbufs; i++)
		free(st->bufs[i]);
	free(st);
}
