/*
 * fuzz_common.h - shared by the libFuzzer targets of tests/fuzz/
 *
 * Every batch on disk carries two CRC-32s, so a mutation of a real batch
 * almost always lands on "bad checksum" and never reaches the record
 * decoder.  The custom mutator here mutates as libFuzzer would, then
 * (most of the time) walks the result as a sequence of batches and makes
 * their checksums right again; sometimes it instead inflates one zlib
 * body, mutates the raw records and deflates them back, so that the
 * record decoder is fuzzed behind compression too.  The inputs stay the
 * plain on-disk bytes: a crash file is a segment mq-recv can be run on.
 */

#ifndef FUZZ_COMMON_H
#define FUZZ_COMMON_H

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "spool_impl.h"

size_t	LLVMFuzzerMutate(uint8_t *, size_t, size_t);

/* a small PRNG seeded by libFuzzer, so that runs are reproducible */
static uint32_t
fz_rand(uint32_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 17;
	*s ^= *s << 5;
	return *s;
}

/*
 * fz_fix_crcs - walk data[0, size) as batches and recompute the header
 * and body checksums; lengths that run past the end are left alone (a
 * torn tail is worth fuzzing too).  Also keeps raw_len equal to body_len
 * for uncompressed bodies unless told not to.
 */
static void
fz_fix_crcs(uint8_t *data, size_t size, uint32_t *rs)
{
	size_t pos = 0;

	while (pos + SPOOL_HDR_SIZE <= size) {
		uint8_t *h = data + pos;
		uint32_t blen = get32(h + 20);

		if (fz_rand(rs) % 16 != 0)	/* now and then a wrong magic */
			memcpy(h, SPOOL_MAGIC, 4);
		if (h[50] == SPOOL_CODEC_NONE && fz_rand(rs) % 8 != 0)
			put32(h + 28, blen);
		if (blen <= size - pos - SPOOL_HDR_SIZE) {
			if (fz_rand(rs) % 32 != 0)
				put32(h + 24, spool_crc(0, h + SPOOL_HDR_SIZE,
				    blen));
		}
		if (fz_rand(rs) % 32 != 0)
			put32(h + 4, spool_crc(0, h + 8, SPOOL_HDR_SIZE - 8));
		if (blen > size - pos - SPOOL_HDR_SIZE)
			break;
		pos += SPOOL_HDR_SIZE + blen;
	}
}

/*
 * fz_mutate_zlib - pick a zlib batch, mutate its inflated records and
 * deflate them back in place; 0 if there was none to work on
 */
static size_t
fz_mutate_zlib(uint8_t *data, size_t size, size_t maxsize, uint32_t *rs)
{
	size_t pos = 0, starts[64], n = 0, at, newsize;
	uint8_t *raw, *z;
	uLongf rawlen, zlen;
	uint32_t blen, rlen;
	size_t mlen;

	while (pos + SPOOL_HDR_SIZE <= size && n < 64) {
		blen = get32(data + pos + 20);
		if (blen > size - pos - SPOOL_HDR_SIZE)
			break;
		if (data[pos + 50] == SPOOL_CODEC_ZLIB)
			starts[n++] = pos;
		pos += SPOOL_HDR_SIZE + blen;
	}
	if (n == 0)
		return 0;
	at = starts[fz_rand(rs) % n];
	blen = get32(data + at + 20);
	rlen = get32(data + at + 28);
	if (rlen > 65536)
		return 0;
	mlen = (size_t)rlen + 256;
	if ((raw = malloc(mlen)) == NULL)
		return 0;
	rawlen = rlen;
	if (uncompress(raw, &rawlen, data + at + SPOOL_HDR_SIZE, blen) != Z_OK) {
		free(raw);
		return 0;
	}
	rawlen = LLVMFuzzerMutate(raw, rawlen, mlen);
	zlen = compressBound(rawlen);
	if ((z = malloc(zlen)) == NULL ||
	    compress2(z, &zlen, raw, rawlen, fz_rand(rs) % 10) != Z_OK) {
		free(raw);
		free(z);
		return 0;
	}
	newsize = size - blen + zlen;
	if (newsize > maxsize) {
		free(raw);
		free(z);
		return 0;
	}
	memmove(data + at + SPOOL_HDR_SIZE + zlen,
	    data + at + SPOOL_HDR_SIZE + blen,
	    size - at - SPOOL_HDR_SIZE - blen);
	memcpy(data + at + SPOOL_HDR_SIZE, z, zlen);
	put32(data + at + 20, (uint32_t)zlen);
	put32(data + at + 28, (uint32_t)rawlen);
	free(raw);
	free(z);
	return newsize;
}

/*
 * fz_mutate_batches - the custom mutator for a sequence of batches
 */
static size_t
fz_mutate_batches(uint8_t *data, size_t size, size_t maxsize,
    unsigned int seed)
{
	uint32_t rs = seed | 1;
	size_t n;

	if (fz_rand(&rs) % 4 == 0 && (n = fz_mutate_zlib(data, size, maxsize,
	    &rs)) > 0)
		size = n;
	else
		size = LLVMFuzzerMutate(data, size, maxsize);
	if (fz_rand(&rs) % 8 != 0)
		fz_fix_crcs(data, size, &rs);
	return size;
}

#endif
