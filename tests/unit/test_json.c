/*
 * test_json.c - the numbers of mq-recv -J's lines (libspool/json.c,
 * put_num) against printf's, at every power of ten and of two and on
 * either side of them, and at random
 */

#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "spool_impl.h"
#include "tap.h"

/* one - whether the line with v as offset, partition and time is printf's */
static int
one(uint64_t v, char **buf, size_t *cap)
{
	struct spool_msg m;
	char want[160];
	size_t len = 0;
	int n;

	memset(&m, 0, sizeof(m));
	m.partition = (uint32_t)v;
	m.offset = v;
	m.ts = (int64_t)v;
	m.payload = "x";
	m.len = 1;
	if (spool_json_encode("t", &m, buf, cap, &len) != 0)
		return 0;
	n = snprintf(want, sizeof(want), "{\"topic\":\"t\",\"partition\":%"
	    PRIu32 ",\"offset\":%" PRIu64 ",\"ts\":%" PRId64 ",\"key\":null,"
	    "\"headers\":[],\"payload\":\"x\"}\n", (uint32_t)v, v, (int64_t)v);
	return (size_t)n == len && memcmp(*buf, want, len) == 0;
}

int
main(void)
{
	char *buf = NULL;
	size_t cap = 0, bad = 0, tried = 0;
	uint64_t p, x = 88172645463325252ULL;
	int i, d;

	/* 0, every 10^k and 2^k, and one either side */
	for (p = 1, i = 0; i < 20; i++, p *= 10)
		for (d = -1; d <= 1; d++, tried++)
			bad += !one(p + (uint64_t)d, &buf, &cap);
	for (i = 0; i < 64; i++)
		for (d = -1; d <= 1; d++, tried++)
			bad += !one((1ULL << i) + (uint64_t)d, &buf, &cap);
	bad += !one(UINT64_MAX, &buf, &cap);
	tried++;
	ok(bad == 0, "numbers at the powers of ten and two (%zu of %zu wrong)",
	    bad, tried);
	/* any number of digits: xorshift, shifted down by 0 to 63 bits */
	for (bad = tried = 0; tried < 200000; tried++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		bad += !one(x >> (x % 64), &buf, &cap);
	}
	ok(bad == 0, "numbers of every length at random (%zu of %zu wrong)",
	    bad, tried);
	free(buf);
	return tap_done();
}
