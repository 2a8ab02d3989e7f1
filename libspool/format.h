/*
 * format.h - the byte layout of a spool, in one place
 *
 * This header is the C twin of mq-spool(5), which is the normative
 * description.  Everything on disk is little-endian and written with the
 * pack/unpack helpers below, never by copying structs.
 *
 * A segment file (NNNNNNNNNNNNNNNNNNNN.log, named by its first offset) is
 * a plain sequence of record batches, with no file header:
 *
 *	+--------------------+------------------------------+
 *	| batch header (64)  | body (body_len bytes)        |  ...next batch
 *	+--------------------+------------------------------+
 *
 * Batch header:
 *
 *	off size field
 *	  0   4  magic        "mqB1"
 *	  4   4  hdr_crc      CRC-32 (zlib) of header bytes 8..63
 *	  8   8  base_offset  offset of the first record
 *	 16   4  count        records in the batch (0 for an END batch)
 *	 20   4  body_len     bytes of body as stored
 *	 24   4  body_crc     CRC-32 of the stored body bytes
 *	 28   4  raw_len      body length before compression
 *	 32   8  base_ts      ms since the epoch; record times are deltas
 *	 40   8  max_ts       largest record time in the batch
 *	 48   2  type         0 data, 1 end of segment, 2 txn control (later);
 *	                      128..65535 skippable
 *	 50   1  codec        0 none, 1 zlib (RFC 1950 stream)
 *	 51   1  flags        bit 0 txn records, bit 1 compacted;
 *	                      bits 4-7 ignorable hints
 *	 52   4  epoch        replication epoch, 0 until replication
 *	 56   8  txid         transaction id (flags bit 0), else 0
 *
 * Body, after decompression, is count records back to back:
 *
 *	varint  len          bytes of the record after this field
 *	u8      attrs        bit 0: key present, bit 1: id present,
 *	                     bits 2-7: a newer format's
 *	varint  ts_delta     zigzag(ts - base_ts)
 *	[varint keylen, key]         if attrs & 1
 *	[varint idlen, id]           if attrs & 2
 *	varint  nheaders
 *	{varint namelen, name, varint valuelen, value} x nheaders
 *	payload              the rest of the record
 *
 * Varints are unsigned LEB128 (7 bits a byte, low first, at most 10
 * bytes).  A record's offset is base_offset plus its index in the batch.
 *
 * Forward compatibility (mq-spool(5), Compatibility): the digit of the
 * magic is the format version.  A header whose checksum holds but that
 * has a newer version digit, a type in 2..127 this version does not
 * know, or an unknown bit in flags bits 0-3, and a record with an
 * unknown attrs bit, were written by a newer mq: -EPROTO, never damage.
 * Types from SPOOL_TYPE_SKIP on are passed over (their offsets are a
 * legal gap); flags bits 4-7 are hints a reader may ignore.
 *
 * Offsets are contiguous within a partition except (mq-spool(5), Gaps)
 * below the first segment, before a batch flagged SPOOL_BF_COMPACTED,
 * and over skippable batches; every other gap is damage.
 *
 * An index file (NNN.index) holds 8-byte entries: u32 offset relative to
 * the segment's base, u32 byte position of a batch header.  It is a hint:
 * every entry is checked against the log before it is believed, and it
 * is rebuilt from the log when it disagrees.
 */

#ifndef SPOOL_FORMAT_H
#define SPOOL_FORMAT_H

#include <stdint.h>
#include <string.h>

#define SPOOL_MAGIC		"mqB1"
#define SPOOL_HDR_SIZE		64
#define SPOOL_IDX_ENTRY		8
#define SPOOL_IDX_INTERVAL	4096	/* log bytes between index entries */

#define SPOOL_VERSION_DIGIT	'1'	/* the magic's last byte */

#define SPOOL_TYPE_DATA		0
#define SPOOL_TYPE_END		1
#define SPOOL_TYPE_TXN		2	/* assigned; not known to this version */
#define SPOOL_TYPE_SKIP		128	/* from here on: skippable */

#define SPOOL_BF_TXN		0x01	/* records of committed transaction txid */
#define SPOOL_BF_COMPACTED	0x02	/* a legal gap before this batch */
#define SPOOL_BF_MUST		0x0f	/* bits a reader must know */
#define SPOOL_BF_KNOWN		(SPOOL_BF_TXN | SPOOL_BF_COMPACTED)	/* ...and this one does */
#define SPOOL_BF_HINTS		0xf0	/* bits a reader may ignore */

#define SPOOL_CODEC_NONE	0
#define SPOOL_CODEC_ZLIB	1

#define SPOOL_REC_KEY		0x01
#define SPOOL_REC_ID		0x02
#define SPOOL_REC_KNOWN		(SPOOL_REC_KEY | SPOOL_REC_ID)

/* the largest body a batch may declare: a sanity bound for readers */
#define SPOOL_BODY_MAX		(1u << 30)

struct spool_bhdr {
	uint64_t	base_offset;
	uint32_t	count;
	uint32_t	body_len;
	uint32_t	body_crc;
	uint32_t	raw_len;
	int64_t		base_ts;
	int64_t		max_ts;
	uint16_t	type;
	uint8_t		codec;
	uint8_t		flags;
	uint32_t	epoch;
	uint64_t	txid;
};

static inline void
put16(unsigned char *p, uint16_t v)
{
	p[0] = v; p[1] = v >> 8;
}

static inline void
put32(unsigned char *p, uint32_t v)
{
	p[0] = v; p[1] = v >> 8; p[2] = v >> 16; p[3] = v >> 24;
}

static inline void
put64(unsigned char *p, uint64_t v)
{
	put32(p, (uint32_t)v);
	put32(p + 4, (uint32_t)(v >> 32));
}

static inline uint16_t
get16(const unsigned char *p)
{
	return (uint16_t)(p[0] | p[1] << 8);
}

static inline uint32_t
get32(const unsigned char *p)
{
	uint32_t v;

	memcpy(&v, p, 4);	/* little-endian hosts only; see spool.c */
	return v;
}

static inline uint64_t
get64(const unsigned char *p)
{
	uint64_t v;

	memcpy(&v, p, 8);
	return v;
}

#endif
