/*
 * json_fast.c - mq-send -J's fast path: mq's own JSON lines, decoded by
 * hand at a million a second
 *
 * The lines mq-recv -J writes (libspool/json.c) are one flat object:
 * strings, small integers, null, and "headers" as an array of two- or
 * three-string arrays.  This decoder takes exactly that shape, read as
 * jansson reads it (UTF-8 checked, control characters refused, escapes
 * decoded, whitespace where JSON allows it), and declines anything
 * else: nested or unknown shapes, a number that is not a small integer,
 * true or false, a surrogate escape, an escaped member name, a member
 * it uses given twice, a value jansson would refuse.  It never says a
 * line is wrong: json_in.c gives every declined line to jansson, so what
 * is accepted and every error message are jansson's.  fuzz_json checks
 * on every input that this path either declines or decodes the message
 * jansson's path decodes.
 *
 * A line exactly as mq-recv -J writes most messages (members in its
 * order, no whitespace, no headers or ID) is matched end to end first
 * (shape); any other is walked member by member (json_fast_decode).
 *
 * What a decoded message points into is the line itself (strings with
 * no escape and no base64) or the arena in struct json_fast, which the
 * caller frees with json_fast_free; json_unesc.c keeps the arena and
 * decodes escapes into it.
 */

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "json_in.h"
#include "jsonscan.h"

/* a string as it stands in the line, between its quotes */
struct jstr {
	const char	*p;
	size_t		 n;
	int		 esc;	/* holds a backslash */
};

/* the parse: where it is, and where decoded bytes go */
struct jp {
	const unsigned char *p, *e;
	struct json_fast *f;
	size_t		 linelen;
};

/* ws - skip JSON whitespace */
static inline void
ws(struct jp *j)
{
	if (j->p < j->e && *j->p > ' ')
		return;		/* mq-recv -J writes none */
	while (j->p < j->e && (*j->p == ' ' || *j->p == '\t' ||
	    *j->p == '\n' || *j->p == '\r'))
		j->p++;
}

/* tok - after whitespace, the character c: 1 and past it, or 0 */
static inline int
tok(struct jp *j, int c)
{
	ws(j);
	if (j->p >= j->e || *j->p != c)
		return 0;
	j->p++;
	return 1;
}

/* str - the string at j->p (after whitespace); 0 to decline */
static int
str(struct jp *j, struct jstr *s)
{
	const unsigned char *p;
	long v;
	int n;

	ws(j);
	if (j->p >= j->e || *j->p != '"')
		return 0;
	p = j->p + 1;
	s->esc = 0;
	for (;;) {
		/* the common case: plain ASCII, 16 bytes at a time */
		p += jsonscan_plain(p, (size_t)(j->e - p));
		if (p >= j->e)
			return 0;
		if (*p == '"')
			break;
		if (*p == '\\') {
			s->esc = 1;
			if (++p >= j->e)
				return 0;
			if (*p == 'u') {
				/* surrogates, paired or lone, are jansson's */
				if (j->e - p < 5 ||
				    (v = jsonscan_hex4(p + 1)) < 0 ||
				    (v >= 0xd800 && v <= 0xdfff))
					return 0;
				p += 5;
			} else if (*p != '\0' && strchr("\"\\/bfnrt",
			    *p) != NULL)
				p++;
			else
				return 0;
			continue;
		}
		if (*p < 0x20 || (n = jsonscan_utf8(p, j->e)) == 0)
			return 0;
		p += n;
	}
	s->p = (const char *)j->p + 1;
	s->n = (size_t)(p - (j->p + 1));
	j->p = p + 1;
	return 1;
}

/* text - a string's bytes, escapes decoded; 0 to decline, -ENOMEM */
static int
text(struct jp *j, const struct jstr *s, const char **out, size_t *len)
{
	if (!s->esc) {
		*out = s->p;
		*len = s->n;
		return 1;
	}
	return json_unesc(j->f, j->linelen, s->p, s->n, out, len);
}

/* bytes - a string member's value, base64 decoded when b64 */
static int
bytes(struct jp *j, const struct jstr *s, int b64, const void **out,
    size_t *len)
{
	const char *t;
	unsigned char *d;
	size_t n;
	int r;

	if ((r = text(j, s, &t, &n)) <= 0)
		return r;
	if (!b64) {
		*out = t;
		*len = n;
		return 1;
	}
	if ((d = (unsigned char *)json_fast_arena(j->f, j->linelen,
	    n / 4 * 3 + 1)) == NULL)
		return -ENOMEM;
	if (json_unb64(t, n, d, len) < 0)
		return 0;
	*out = d;
	return 1;
}

/* is_base64 - whether a flag string says "base64"; -1 if it holds a NUL */
static int
is_base64(struct jp *j, const struct jstr *s)
{
	const char *t;
	size_t n;

	/* jansson's path compares as C strings: leave NULs to it */
	if (text(j, s, &t, &n) <= 0 || memchr(t, '\0', n) != NULL)
		return -1;
	return n == 6 && memcmp(t, "base64", 6) == 0;
}

/*
 * integer - a non-negative integer of at most 18 digits at j->p: 1 and
 * past it (what follows is the caller's to check), 0 to decline.  Eight
 * bytes at a time where the line has them.
 */
static int
integer(struct jp *j, int64_t *v)
{
	static const uint64_t pow10[] = { 1, 10, 100, 1000, 10000, 100000,
	    1000000, 10000000, 100000000 };
	const unsigned char *p = j->p, *lim;
	uint64_t x = 0, w;
	unsigned n;

	if (p >= j->e || *p < '0' || *p > '9')
		return 0;
	if (*p == '0')
		p++;
	else {
		/* in a local: a store through v could change *p (char) */
		lim = j->e - p > 18 ? p + 18 : j->e;
		while (j->e - p >= 8) {
			memcpy(&w, p, 8);
			if ((n = jsonscan_digits(w)) > (size_t)(lim - p))
				n = (unsigned)(lim - p);
			if (n == 0)
				break;
			x = x * pow10[n] + jsonscan_number8(w, n);
			p += n;
			if (n < 8)
				break;
		}
		/* the last bytes of the line */
		if (j->e - p < 8)
			for (; p < lim && *p >= '0' && *p <= '9'; p++)
				x = x * 10 + (unsigned)(*p - '0');
	}
	*v = (int64_t)x;
	j->p = p;
	return 1;
}

/* skip - a value this decoder does not use: a string, integer or null */
static int
skip(struct jp *j)
{
	struct jstr s;
	const unsigned char *p = j->p;
	int64_t v;

	if (p < j->e && *p == '"')
		return str(j, &s);
	if (j->e - p >= 4 && memcmp(p, "null", 4) == 0) {
		j->p += 4;
		return 1;
	}
	if (p < j->e && *p == '-')
		j->p++;
	return integer(j, &v);
}

/* headers - "headers": [[name, value], [name, value, "base64"], ...] */
static int
headers(struct jp *j, struct spool_msg *m)
{
	struct spool_header *h;
	struct jstr name, value, flag;
	const void *nm;
	int b64, r;

	if (!tok(j, '['))
		return 0;
	if (tok(j, ']'))
		return 1;
	do {
		if (m->nheaders == JSON_FAST_HDRS || !tok(j, '[') ||
		    !str(j, &name) || !tok(j, ',') || !str(j, &value))
			return 0;
		b64 = 0;
		if (tok(j, ',') && (!str(j, &flag) ||
		    (b64 = is_base64(j, &flag)) != 1))
			return 0;
		if (!tok(j, ']'))
			return 0;
		h = &j->f->hdrs[m->nheaders++];
		if ((r = bytes(j, &name, b64, &nm, &h->namelen)) <= 0)
			return r;
		h->name = nm;
		if ((r = bytes(j, &value, b64, &h->value, &h->valuelen)) <= 0)
			return r;
	} while (tok(j, ','));
	if (!tok(j, ']'))
		return 0;
	m->headers = j->f->hdrs;
	return 1;
}

/* the members this decoder reads; each at most once */
enum { M_PAYLOAD, M_PENC, M_KEY, M_KENC, M_ID, M_TS, M_HEADERS, M_OTHER };

/* member - which member a name is */
static int
member(const struct jstr *k)
{
#define IS(name) (memcmp(k->p, name, sizeof(name) - 1) == 0)
	switch (k->n) {
	case 2:
		return IS("id") ? M_ID : IS("ts") ? M_TS : M_OTHER;
	case 3:
		return IS("key") ? M_KEY : M_OTHER;
	case 7:
		return IS("payload") ? M_PAYLOAD : IS("headers") ? M_HEADERS :
		    M_OTHER;
	case 12:
		return IS("key_encoding") ? M_KENC : M_OTHER;
	case 16:
		return IS("payload_encoding") ? M_PENC : M_OTHER;
	}
	return M_OTHER;
#undef IS
}

/*
 * named - a member name as mq-recv -J writes it, with its colon and no
 * space: the member, past the colon; -1 to read the name the long way
 * (str, member, tok).  Only spelled-out names of mq's members match, so
 * what it takes is what the long way takes.
 */
static int
named(struct jp *j)
{
	size_t left = (size_t)(j->e - j->p);

#define IS(lit) (left >= sizeof(lit) - 1 && \
	    memcmp(j->p, lit, sizeof(lit) - 1) == 0 && \
	    (j->p += sizeof(lit) - 1, 1))
	if (left < 5 || j->p[0] != '"')
		return -1;
	switch (j->p[1]) {
	case 't':
		return IS("\"topic\":") ? M_OTHER : IS("\"ts\":") ? M_TS : -1;
	case 'p':
		return IS("\"partition\":") ? M_OTHER :
		    IS("\"payload\":") ? M_PAYLOAD :
		    IS("\"payload_encoding\":") ? M_PENC : -1;
	case 'o':
		return IS("\"offset\":") ? M_OTHER : -1;
	case 'k':
		return IS("\"key\":") ? M_KEY :
		    IS("\"key_encoding\":") ? M_KENC : -1;
	case 'h':
		return IS("\"headers\":") ? M_HEADERS : -1;
	case 'i':
		return IS("\"id\":") ? M_ID : -1;
	}
	return -1;
#undef IS
}

/* value - one member's value into what the object holds */
static int
value(struct jp *j, int which, struct jstr *v, int *null,
    struct spool_msg *m)
{
	int64_t ts;

	*null = j->e - j->p >= 4 && memcmp(j->p, "null", 4) == 0;
	if (*null && which != M_PAYLOAD && which != M_PENC &&
	    which != M_KENC) {
		j->p += 4;
		return 1;
	}
	switch (which) {
	case M_OTHER:
		return skip(j);
	case M_TS:
		if (!integer(j, &ts))
			return 0;
		m->ts = ts;
		m->ts_given = 1;
		return 1;
	case M_HEADERS:
		return j->p < j->e && *j->p == '[' ? headers(j, m) : 0;
	default:
		return str(j, v);
	}
}

/* lit - the bytes s (n of them) at j->p: 1 and past them, or 0 */
static inline int
lit(struct jp *j, const char *s, size_t n)
{
	if ((size_t)(j->e - j->p) < n || memcmp(j->p, s, n) != 0)
		return 0;
	j->p += n;
	return 1;
}

#define LIT(j, s)	lit((j), (s), sizeof(s) - 1)

#define NOT_SHAPE	2	/* shape: the walk's to decode */

/*
 * shape - the line exactly as mq-recv -J writes a message with a text
 * key or none, and no headers or ID (its members, order and spacing):
 * NOT_SHAPE for any other line, which json_fast_decode then walks from
 * the start.  Else as json_fast_decode: the members are checked by the
 * walk's own scanners, so each is accepted or declined as the walk
 * would.
 */
static int
shape(struct jp *j, struct spool_msg *m)
{
	struct jstr s, k;
	int64_t v, ts;
	int key, r;

	if (!LIT(j, "{\"topic\":") || !str(j, &s) ||
	    !LIT(j, ",\"partition\":") || !integer(j, &v) ||
	    !LIT(j, ",\"offset\":") || !integer(j, &v) ||
	    !LIT(j, ",\"ts\":") || !integer(j, &ts) ||
	    !LIT(j, ",\"key\":"))
		return NOT_SHAPE;
	key = !LIT(j, "null");
	if (key && !str(j, &k))
		return NOT_SHAPE;
	if (!LIT(j, ",\"headers\":[],\"payload\":") || !str(j, &s) ||
	    j->e - j->p != 1 || *j->p != '}')
		return NOT_SHAPE;
	m->ts = ts;
	m->ts_given = 1;
	if ((r = bytes(j, &s, 0, &m->payload, &m->len)) <= 0 || !key)
		return r;
	return bytes(j, &k, 0, &m->key, &m->keylen);
}

/*
 * json_fast_decode - one line of mq's JSON into m: 1 decoded, 0 declined
 * (hand it to jansson), -ENOMEM
 */
int
json_fast_decode(const char *line, size_t len, struct spool_msg *m,
    struct json_fast *f)
{
	struct jp j = { (const unsigned char *)line,
	    (const unsigned char *)line + len, f, len };
	struct jstr k, v[M_OTHER];
	int seen = 0, which, null, r, b64;

	f->used = 0;	/* the arena is the line's (json_in_decode keeps it) */
	if ((r = shape(&j, m)) != NOT_SHAPE)
		return r;
	j.p = (const unsigned char *)line;
	if (!tok(&j, '{'))
		return 0;
	do {
		ws(&j);
		if ((which = named(&j)) < 0) {
			if (!str(&j, &k) || k.esc)
				return 0;
			which = member(&k);
			if (!tok(&j, ':'))
				return 0;
		}
		if (which != M_OTHER && (seen & 1 << which))
			return 0;	/* the last would win: jansson's */
		ws(&j);
		if ((r = value(&j, which, &v[which < M_OTHER ? which : 0],
		    &null, m)) <= 0)
			return r;
		if (which != M_OTHER && !null)
			seen |= 1 << which;
	} while (tok(&j, ','));
	if (!tok(&j, '}'))
		return 0;
	ws(&j);
	if (j.p != j.e || !(seen & 1 << M_PAYLOAD))
		return 0;
	b64 = (seen & 1 << M_PENC) ? is_base64(&j, &v[M_PENC]) : 0;
	if (b64 < 0 || (r = bytes(&j, &v[M_PAYLOAD], b64, &m->payload,
	    &m->len)) <= 0)
		return b64 < 0 ? 0 : r;
	if (seen & 1 << M_KEY) {
		b64 = (seen & 1 << M_KENC) ? is_base64(&j, &v[M_KENC]) : 0;
		if (b64 < 0 || (r = bytes(&j, &v[M_KEY], b64, &m->key,
		    &m->keylen)) <= 0)
			return b64 < 0 ? 0 : r;
	}
	if (seen & 1 << M_ID) {
		if ((r = bytes(&j, &v[M_ID], 0, &m->id, &m->idlen)) <= 0)
			return r;
		if (m->idlen == 0 || m->idlen > SPOOL_ID_MAX)
			return 0;
	}
	return 1;
}

/* json_fast_free - release what json_fast_decode kept */
void
json_fast_free(struct json_fast *f)
{
	free(f->buf);
	f->buf = NULL;
	f->cap = f->used = 0;
}
