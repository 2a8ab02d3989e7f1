/*
 * crc.c - the checksum of batch headers and bodies
 *
 * CRC-32 with the IEEE polynomial, exactly zlib's crc32(), so that any
 * language with a zlib binding can check a spool.  Kept behind one
 * function so that a faster implementation of the same CRC can replace
 * it when one is measured to matter.
 */

#include <stddef.h>
#include <stdint.h>
#include <zlib.h>

#include "spool_impl.h"

/* spool_crc - continue crc over len bytes of p (start with 0) */
uint32_t
spool_crc(uint32_t crc, const void *p, size_t len)
{
	const unsigned char *b = p;

	/* zlib takes a uInt length: feed it in pieces below 4 GiB */
	while (len > 0) {
		uInt n = len > (1u << 30) ? (1u << 30) : (uInt)len;

		crc = (uint32_t)crc32(crc, b, n);
		b += n;
		len -= n;
	}
	return crc;
}
