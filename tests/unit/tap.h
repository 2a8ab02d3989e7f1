/*
 * tap.h - the smallest TAP producer: ok()/not ok lines and a plan
 */
#ifndef TAP_H
#define TAP_H

#include <stdio.h>
#include <stdlib.h>

static int tap_n, tap_fail;

#define ok(cond, ...) do {						\
	int tap_ok = (cond);						\
	tap_n++;							\
	if (tap_ok)							\
		printf("ok %d - ", tap_n);				\
	else {								\
		printf("not ok %d - ", tap_n);				\
		tap_fail++;						\
	}								\
	printf(__VA_ARGS__);						\
	printf("%s\n", tap_ok ? "" : "  (" #cond ")");			\
} while (0)

#define tap_done() (printf("1..%d\n", tap_n), tap_fail ? 1 : 0)

#endif
