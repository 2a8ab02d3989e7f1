/*
 * json_in.c - mq-send -J: one JSON line back into a message, the
 * inverse of spool_json_encode (libspool/json.c, which documents the
 * object).  A "ts" is kept as given, 0 (the epoch) too; only an absent
 * or null "ts" means the time of the send.  Strings flagged "base64"
 * ("key_encoding", "payload_encoding", a header's third element) are
 * decoded to bytes, so mq-recv -J | mq-send -J keeps every byte; both
 * this path and the fast one (json_fast.c) decode them with json_unb64
 * (json_b64.c).
 *
 * Here and not in libspool: it uses jansson, which libspool users need
 * not link.  What a decoded message points into is owned by a state
 * the caller frees with json_in_free.
 */

#include <errno.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json_in.h"

/* decoding state: what the message's pointers point into */
struct jstate {
	json_t		*root;
	struct json_fast fast;		/* the fast path's (json_fast.c) */
	struct spool_header *hdrs;
	unsigned char	*bufs[64];
	int		 nbufs;
	char		 why[160];	/* what is wrong with the line */
};

/*
 * state_new - an empty decoding state; malloc, not calloc: a line costs
 * about a microsecond, and calloc would clear a kilobyte of it each time
 */
static struct jstate *
state_new(void)
{
	struct jstate *st;

	if ((st = malloc(sizeof(*st))) == NULL)
		return NULL;
	st->root = NULL;
	st->fast.buf = NULL;
	st->fast.cap = st->fast.used = 0;
	st->hdrs = NULL;
	st->nbufs = 0;
	st->why[0] = '\0';
	return st;
}

/*
 * state_reset - let go of what the last line decoded into, keeping the
 * state and the fast path's arena for the next line
 */
static void
state_reset(struct jstate *st)
{
	int i;

	json_decref(st->root);
	st->root = NULL;
	free(st->hdrs);
	st->hdrs = NULL;
	for (i = 0; i < st->nbufs; i++)
		free(st->bufs[i]);
	st->nbufs = 0;
	st->why[0] = '\0';
}

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

	if (n % 4 != 0 || st->nbufs == 64)
		return -EINVAL;
	if ((d = malloc(n / 4 * 3 + 1)) == NULL)
		return -ENOMEM;
	st->bufs[st->nbufs++] = d;
	*out = d;
	return json_unb64(s, n, d, outlen);
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

/* full - decode the line with jansson */
static int
full(struct jstate *st, const char *line, size_t len, struct spool_msg *m)
{
	json_error_t jerr;
	json_t *v;
	int r;

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

/*
 * json_in_decode - read one object line into m; *state owns what m
 * points into (free it with json_in_free).  A *state that is not NULL
 * is used again: what the line before decoded into goes, and no line
 * pays for a state of its own.  -EINVAL: not a message, and json_in_why
 * says why.  mq's own lines take the fast path (json_fast.c);
 * everything else, and every error, is jansson's.
 */
int
json_in_decode(const char *line, size_t len, struct spool_msg *m,
    void **state)
{
	struct jstate *st = *state;
	int r;

	memset(m, 0, sizeof(*m));
	if (st != NULL)
		state_reset(st);
	else if ((st = state_new()) == NULL)
		return -ENOMEM;
	*state = st;
	if ((r = json_fast_decode(line, len, m, &st->fast)) != 0)
		return r < 0 ? r : 0;
	memset(m, 0, sizeof(*m));
	return full(st, line, len, m);
}

/* json_in_decode_full - json_in_decode by jansson alone (for fuzz_json) */
int
json_in_decode_full(const char *line, size_t len, struct spool_msg *m,
    void **state)
{
	struct jstate *st;

	*state = NULL;
	memset(m, 0, sizeof(*m));
	if ((st = state_new()) == NULL)
		return -ENOMEM;
	*state = st;
	return full(st, line, len, m);
}

/* json_in_why - why the last json_in_decode said -EINVAL */
const char *
json_in_why(const void *state)
{
	const struct jstate *st = state;

	return st != NULL && *st->why != '\0' ? st->why : "not a message";
}

/* json_in_free - release what json_in_decode kept */
void
json_in_free(void *state)
{
	struct jstate *st = state;
	int i;

	if (st == NULL)
		return;
	json_decref(st->root);
	json_fast_free(&st->fast);
	free(st->hdrs);
	for (i = 0; i < st->nbufs; i++)
		free(st->bufs[i]);
	free(st);
}
