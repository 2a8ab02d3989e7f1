/*
 * json_in.h - mq-send -J's decoder of JSON lines (cmd/json_in.c, with
 * its fast path for mq's own lines in cmd/json_fast.c and
 * cmd/json_unesc.c)
 */

#ifndef JSON_IN_H
#define JSON_IN_H

#include <stddef.h>

#include "spool.h"

/* the fast path's arena and headers (json_fast.c), kept by a decode */
#define JSON_FAST_HDRS	8
struct json_fast {
	char		*buf;
	size_t		 cap, used;
	struct spool_header hdrs[JSON_FAST_HDRS];
};

int	 json_fast_decode(const char *line, size_t len, struct spool_msg *,
	    struct json_fast *);
void	 json_fast_free(struct json_fast *);

/* json_unesc.c: the fast path's arena, and escapes decoded into it */
char	*json_fast_arena(struct json_fast *, size_t linelen, size_t n);
int	 json_unesc(struct json_fast *, size_t linelen, const char *p,
	    size_t n, const char **out, size_t *len);

/* json_b64.c: the base64 decoder both paths use */
int	 json_unb64(const char *s, size_t n, unsigned char *d, size_t *len);

/* json_in.c: the jansson path, and the fast one first */
int	 json_in_decode(const char *line, size_t len, struct spool_msg *,
	    void **state);
void	 json_in_free(void *state);
const char *json_in_why(const void *state);
int	 json_in_decode_full(const char *line, size_t len, struct spool_msg *,
	    void **state);

#endif
