/*
 * json_unesc.c - mq-send -J's fast path (json_fast.c), its slower half:
 * the arena a line's decoded bytes go into, and a string's escapes
 * decoded there
 *
 * json_fast.c has checked every escape before one reaches here (str:
 * only \" \\ \/ \b \f \n \r \t and \u of four hex digits outside the
 * surrogates), so this decodes and never declines.  A string with no
 * escape is never copied: json_fast.c points into the line instead.
 */

#include <errno.h>
#include <stdlib.h>

#include "json_in.h"
#include "jsonscan.h"

/*
 * json_fast_arena - room for n decoded bytes of a line of linelen
 * bytes; NULL when out of memory.  What one line decodes into fits in
 * 1.75 times its length (each string decoded once, and once more from
 * base64), so the first call of a line sizes it whole.
 */
char *
json_fast_arena(struct json_fast *f, size_t linelen, size_t n)
{
	char *d;

	if (f->used == 0 && f->cap < 2 * linelen + 16) {
		/* a line decodes into at most twice its length */
		free(f->buf);
		f->cap = 0;
		if ((f->buf = malloc(2 * linelen + 16)) == NULL)
			return NULL;
		f->cap = 2 * linelen + 16;
	}
	if (f->cap - f->used < n)
		return NULL;
	d = f->buf + f->used;
	f->used += n;
	return d;
}

/*
 * json_unesc - the n bytes of string at p (between its quotes, escapes
 * checked) with the escapes decoded, into the arena: 1, or -ENOMEM
 */
int
json_unesc(struct json_fast *f, size_t linelen, const char *p, size_t n,
    const char **out, size_t *len)
{
	const char *e = p + n;
	char *d, *d0;
	long v;

	if ((d0 = d = json_fast_arena(f, linelen, n)) == NULL)
		return -ENOMEM;
	while (p < e) {
		if (*p != '\\') {
			*d++ = *p++;
			continue;
		}
		switch (p[1]) {
		case 'b': *d++ = '\b'; break;
		case 'f': *d++ = '\f'; break;
		case 'n': *d++ = '\n'; break;
		case 'r': *d++ = '\r'; break;
		case 't': *d++ = '\t'; break;
		case 'u':
			v = jsonscan_hex4((const unsigned char *)p + 2);
			if (v < 0x80)
				*d++ = (char)v;
			else if (v < 0x800) {
				*d++ = (char)(0xc0 | v >> 6);
				*d++ = (char)(0x80 | (v & 0x3f));
			} else {
				*d++ = (char)(0xe0 | v >> 12);
				*d++ = (char)(0x80 | (v >> 6 & 0x3f));
				*d++ = (char)(0x80 | (v & 0x3f));
			}
			p += 6;
			continue;
		default: *d++ = p[1]; break;	/* " \ / */
		}
		p += 2;
	}
	*out = d0;
	*len = (size_t)(d - d0);
	return 1;
}
