/*
 * crc.c - the checksum of batch headers and bodies
 *
 * CRC-32 with the IEEE polynomial, exactly zlib's crc32() (and gzip's),
 * so that any language with a zlib binding can check a spool.  It is
 * computed with ISA-L's crc32_gzip_refl, which gives the same value with
 * PCLMULQDQ folding where the CPU has it: measured with callgrind, zlib's
 * crc32 was half of all instructions mq-send and mq-recv executed (about
 * 4 instructions a byte); ISA-L's is a small fraction of that.  ISA-L
 * picks its code for the CPU at run time and has a portable fallback.
 */

#include <stddef.h>
#include <stdint.h>

#include <isa-l/crc.h>

#include "spool_impl.h"

/* spool_crc - continue crc over len bytes of p (start with 0) */
uint32_t
spool_crc(uint32_t crc, const void *p, size_t len)
{
	return crc32_gzip_refl(crc, p, len);
}
