/*
 * json_in.h - mq-send -J's decoder of JSON lines (cmd/json_in.c)
 */

#ifndef JSON_IN_H
#define JSON_IN_H

#include <stddef.h>

#include "spool.h"

int	 json_in_decode(const char *line, size_t len, struct spool_msg *,
	    void **state);
void	 json_in_free(void *state);
const char *json_in_why(const void *state);

#endif
