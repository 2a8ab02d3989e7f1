/*
 * jsonscan.h - scans over JSON text, eight or more bytes a step: how
 * far a run of plain ASCII goes and how long a valid UTF-8 sequence is
 * (the writer, libspool/json.c, and mq-send -J's decoder,
 * cmd/json_fast.c, share them), how many digits lead, what number
 * they spell and what four hex digits say (the decoder's).  Inline, so
 * that none becomes a library function; not part of the public
 * interface.
 *
 * "Plain" means a byte that a JSON string holds as it is and that is
 * ASCII: not a quote, a backslash, a control character or a byte of
 * 0x80 and up.  Both callers spend most of their time here, so it goes
 * sixteen bytes at a time with SSE2 (every x86-64), else eight.
 */

#ifndef SPOOL_JSONSCAN_H
#define SPOOL_JSONSCAN_H

#include <endian.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#ifdef __SSE2__
#include <emmintrin.h>
#endif

#if BYTE_ORDER != LITTLE_ENDIAN
#error "jsonscan.h: jsonscan_plain reads eight bytes as a little-endian word"
#endif
#define JSONSCAN_ONES	0x0101010101010101ULL
#define JSONSCAN_HIGHS	0x8080808080808080ULL

/*
 * jsonscan_special8 - the bytes of x (eight, little-endian) that are not
 * plain, as their high bits.  The "has a zero byte" and "has a byte less
 * than n" tricks: the lowest bit set is exact (a borrow only marks bytes
 * above a true one), which is all jsonscan_plain needs.
 */
static inline uint64_t
jsonscan_special8(uint64_t x)
{
	uint64_t q = x ^ (JSONSCAN_ONES * '"'), b = x ^ (JSONSCAN_ONES * '\\');

	return (((x - JSONSCAN_ONES * 0x20) & ~x) |
	    ((q - JSONSCAN_ONES) & ~q) | ((b - JSONSCAN_ONES) & ~b) | x) &
	    JSONSCAN_HIGHS;
}

/* jsonscan_plain - how many of the n bytes from s on are plain */
static inline size_t
jsonscan_plain(const unsigned char *s, size_t n)
{
	size_t i = 0;
	uint64_t x, m;

#ifdef __SSE2__
	const __m128i q = _mm_set1_epi8('"'), b = _mm_set1_epi8('\\');
	const __m128i sp = _mm_set1_epi8(0x20);
	__m128i v;
	int k;

	for (; n - i >= 16; i += 16) {
		v = _mm_loadu_si128((const __m128i *)(s + i));
		/* as signed bytes, 0x80 and up are below 0x20 too */
		k = _mm_movemask_epi8(_mm_or_si128(_mm_cmplt_epi8(v, sp),
		    _mm_or_si128(_mm_cmpeq_epi8(v, q), _mm_cmpeq_epi8(v, b))));
		if (k != 0)
			return i + (size_t)__builtin_ctz((unsigned)k);
	}
#endif
	for (; n - i >= 8; i += 8) {
		memcpy(&x, s + i, 8);
		if ((m = jsonscan_special8(x)) != 0)
			return i + (size_t)(__builtin_ctzll(m) >> 3);
	}
	for (; i < n && s[i] >= 0x20 && s[i] < 0x80 && s[i] != '"' &&
	    s[i] != '\\'; i++)
		;
	return i;
}

/*
 * jsonscan_utf8 - the length of the valid UTF-8 sequence of two to four
 * bytes at p, before e; 0 if there is none.  Overlong forms, surrogates
 * and code points beyond Unicode are not valid (as jansson holds).
 */
static inline int
jsonscan_utf8(const unsigned char *p, const unsigned char *e)
{
	uint32_t v;
	int i, n;

	if (p[0] >= 0xc2 && p[0] <= 0xdf)
		n = 2;
	else if (p[0] >= 0xe0 && p[0] <= 0xef)
		n = 3;
	else if (p[0] >= 0xf0 && p[0] <= 0xf4)
		n = 4;
	else
		return 0;
	if (e - p < n)
		return 0;
	v = p[0] & (0x3f >> (n - 1));
	for (i = 1; i < n; i++) {
		if ((p[i] & 0xc0) != 0x80)
			return 0;
		v = v << 6 | (p[i] & 0x3f);
	}
	if ((n == 3 && v < 0x800) || (n == 4 && v < 0x10000) ||
	    v > 0x10ffff || (v >= 0xd800 && v <= 0xdfff))
		return 0;
	return n;
}

/*
 * jsonscan_digits - how many of the eight bytes x (little-endian, so
 * the first is the lowest) lead as ASCII digits, 0 to 8: a digit's high
 * nibble is 3, and it stays 3 when 6 is added.  A carry out of a byte
 * that is no digit can only disturb the bytes after it, not counted.
 */
static inline unsigned
jsonscan_digits(uint64_t x)
{
	uint64_t ne;

	ne = ((x & 0xf0f0f0f0f0f0f0f0ULL) ^ 0x3030303030303030ULL) |
	    (((x + 0x0606060606060606ULL) & 0xf0f0f0f0f0f0f0f0ULL) ^
	    0x3030303030303030ULL);
	return ne == 0 ? 8 : (unsigned)__builtin_ctzll(ne) >> 3;
}

/*
 * jsonscan_number8 - the number the first n (1 to 8) bytes of x spell,
 * all digits: shifted so that they are the last of eight, with zeros
 * before them, then pairs, fours and eights combined with three
 * multiplications (as simdjson parses eight digits)
 */
static inline uint64_t
jsonscan_number8(uint64_t x, unsigned n)
{
	x = (x - 0x3030303030303030ULL) << (8 * (8 - n));
	x = x * 10 + (x >> 8);
	return ((x & 0x000000ff000000ffULL) * (100 + (1000000ULL << 32)) +
	    ((x >> 16) & 0x000000ff000000ffULL) * (1 + (10000ULL << 32))) >>
	    32;
}

/* jsonscan_hex4 - the value of four hex digits at p, -1 if they are not */
static inline long
jsonscan_hex4(const unsigned char *p)
{
	long v = 0;
	int i;

	for (i = 0; i < 4; i++) {
		v <<= 4;
		if (p[i] >= '0' && p[i] <= '9')
			v |= p[i] - '0';
		else if ((p[i] | 0x20) >= 'a' && (p[i] | 0x20) <= 'f')
			v |= (p[i] | 0x20) - 'a' + 10;
		else
			return -1;
	}
	return v;
}

#endif
