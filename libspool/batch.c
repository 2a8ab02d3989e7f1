/*
 * batch.c - the record batch codec
 *
 * A batch is the unit of writing, checksumming and compression: a 64-byte
 * header and a body of records (format.h, mq-spool(5)).  This module
 * builds batches in memory: records added one at a time (or a run of
 * plain ones at once, spool_batch_add_recs), sealed
 * (compressed, checksummed) into one buffer, stamped with a base offset,
 * and the END batch that closes a segment.  It knows nothing of files,
 * offsets on disk or locks: the writer stamps the base offset into a
 * sealed batch under the partition lock.  Taking batches apart again
 * is batch_decode.c's.
 */

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "spool_impl.h"

#define VARINT_MAX	10

/* put_varint - unsigned LEB128; returns bytes written */
static inline size_t
put_varint(unsigned char *p, uint64_t v)
{
	size_t n = 0;

	while (v >= 0x80) {
		p[n++] = (unsigned char)(v | 0x80);
		v >>= 7;
	}
	p[n++] = (unsigned char)v;
	return n;
}

/* varint_len - bytes put_varint would write */
static inline size_t
varint_len(uint64_t v)
{
	size_t n = 1;

	while (v >= 0x80) {
		v >>= 7;
		n++;
	}
	return n;
}

static inline uint64_t
zigzag(int64_t v)
{
	return ((uint64_t)v << 1) ^ (v < 0 ? UINT64_MAX : 0);
}

/* spool_batch_init - an empty batch with no memory yet */
void
spool_batch_init(struct spool_batch *b)
{
	memset(b, 0, sizeof(*b));
	b->len = SPOOL_HDR_SIZE;
}

/* spool_batch_free - release a batch's buffers */
void
spool_batch_free(struct spool_batch *b)
{
	free(b->buf);
	free(b->zbuf);
	spool_batch_init(b);
}

/* spool_batch_reset - empty the batch, keeping its buffers */
void
spool_batch_reset(struct spool_batch *b)
{
	b->len = SPOOL_HDR_SIZE;
	b->count = 0;
	b->base_ts = b->max_ts = 0;
}

/* spool_batch_recsize - an upper bound on the bytes one record takes */
size_t
spool_batch_recsize(const struct spool_msg *m)
{
	size_t n, i;

	n = 4 * VARINT_MAX + 1 + m->len;
	if (m->key != NULL)
		n += VARINT_MAX + m->keylen;
	if (m->id != NULL)
		n += VARINT_MAX + m->idlen;
	for (i = 0; i < m->nheaders; i++)
		n += 2 * VARINT_MAX + m->headers[i].namelen +
		    m->headers[i].valuelen;
	return n;
}

/* grow - make room for need more bytes in a buffer */
static int
grow(unsigned char **buf, size_t *cap, size_t need)
{
	unsigned char *p;
	size_t ncap;

	if (need <= *cap)
		return 0;
	ncap = *cap ? *cap : 65536;
	while (ncap < need)
		ncap *= 2;
	if (ncap > need && ncap - need > (64u << 20))
		ncap = need;	/* no doubling past what is asked, when large */
	if ((p = realloc(*buf, ncap)) == NULL)
		return -ENOMEM;
	*buf = p;
	*cap = ncap;
	return 0;
}

/* spool_batch_grow - grow for batch_decode.c */
int
spool_batch_grow(unsigned char **buf, size_t *cap, size_t need)
{
	return grow(buf, cap, need);
}

/* spool_batch_add - append one record with time ts (m->ts is ignored) */
int
spool_batch_add(struct spool_batch *b, const struct spool_msg *m, int64_t ts)
{
	unsigned char *p;
	uint64_t tsd;
	size_t body, i;
	int r;

	if (b->count == 0)
		b->base_ts = b->max_ts = ts;
	if (ts > b->max_ts)
		b->max_ts = ts;
	tsd = zigzag(ts - b->base_ts);
	body = 1 + varint_len(tsd) + varint_len(m->nheaders) + m->len;
	if (m->key != NULL)
		body += varint_len(m->keylen) + m->keylen;
	if (m->id != NULL)
		body += varint_len(m->idlen) + m->idlen;
	for (i = 0; i < m->nheaders; i++)
		body += varint_len(m->headers[i].namelen) +
		    m->headers[i].namelen +
		    varint_len(m->headers[i].valuelen) +
		    m->headers[i].valuelen;
	if ((r = grow(&b->buf, &b->cap, b->len + VARINT_MAX + body)) < 0)
		return r;
	p = b->buf + b->len;
	p += put_varint(p, body);
	*p++ = (m->key != NULL ? SPOOL_REC_KEY : 0) |
	    (m->id != NULL ? SPOOL_REC_ID : 0);
	p += put_varint(p, tsd);
	if (m->key != NULL) {
		p += put_varint(p, m->keylen);
		memcpy(p, m->key, m->keylen);
		p += m->keylen;
	}
	if (m->id != NULL) {
		p += put_varint(p, m->idlen);
		memcpy(p, m->id, m->idlen);
		p += m->idlen;
	}
	p += put_varint(p, m->nheaders);
	for (i = 0; i < m->nheaders; i++) {
		const struct spool_header *h = &m->headers[i];

		p += put_varint(p, h->namelen);
		memcpy(p, h->name, h->namelen);
		p += h->namelen;
		p += put_varint(p, h->valuelen);
		memcpy(p, h->value, h->valuelen);
		p += h->valuelen;
	}
	memcpy(p, m->payload, m->len);
	p += m->len;
	b->len = p - b->buf;
	b->count++;
	return 0;
}

/*
 * spool_batch_add_recs - spool_batch_add of v[0..n) as records with no
 * key, ID or headers, all with time ts (the same bytes), while each is
 * at most max bytes and the body is under full bytes: how many were
 * added, or -errno.  The bulk path (writer.c): one call for a run of
 * lines, the time's encoding worked out once.
 */
ssize_t
spool_batch_add_recs(struct spool_batch *b, const struct spool_rec *v,
    size_t n, int64_t ts, size_t max, size_t full)
{
	unsigned char tsv[VARINT_MAX], *p, *e, *buf;
	size_t i, len, body, tl, at;
	int r;

	if (n == 0)
		return 0;
	if (b->count == 0)
		b->base_ts = b->max_ts = ts;
	if (ts > b->max_ts)
		b->max_ts = ts;
	tl = put_varint(tsv, zigzag(ts - b->base_ts));
	/* locals, so that the copies need not reload b: p writes, e ends */
	if (b->buf == NULL &&
	    (r = grow(&b->buf, &b->cap, b->len + VARINT_MAX)) < 0)
		return r;
	buf = b->buf;
	p = buf + b->len;
	e = buf + b->cap;
	for (i = 0; i < n; i++) {
		len = v[i].len;
		if (len > max || (size_t)(p - buf) - SPOOL_HDR_SIZE >= full)
			break;
		body = 1 + tl + 1 + len;	/* attrs, time, no headers */
		if ((size_t)(e - p) < VARINT_MAX + body) {
			at = p - buf;
			if ((r = grow(&b->buf, &b->cap, at + VARINT_MAX +
			    body)) < 0) {
				b->len = at;
				b->count += i;
				return r;
			}
			buf = b->buf;
			p = buf + at;
			e = buf + b->cap;
		}
		if (body < 0x80)
			*p++ = body;
		else
			p += put_varint(p, body);
		*p++ = 0;
		if (tl == 1)		/* mostly: no call to memcpy */
			*p++ = tsv[0];
		else {
			memcpy(p, tsv, tl);
			p += tl;
		}
		*p++ = 0;
		memcpy(p, v[i].p, len);
		p += len;
	}
	b->len = p - buf;
	b->count += i;
	return i;
}

/* spool_bhdr_pack - write a header's fields, leaving hdr_crc to stamp */
void
spool_bhdr_pack(unsigned char *p, const struct spool_bhdr *h)
{
	memcpy(p, SPOOL_MAGIC, 4);
	put32(p + 4, 0);
	put64(p + 8, h->base_offset);
	put32(p + 16, h->count);
	put32(p + 20, h->body_len);
	put32(p + 24, h->body_crc);
	put32(p + 28, h->raw_len);
	put64(p + 32, (uint64_t)h->base_ts);
	put64(p + 40, (uint64_t)h->max_ts);
	put16(p + 48, h->type);
	p[50] = h->codec;
	p[51] = h->flags;
	put32(p + 52, h->epoch);
	put64(p + 56, h->txid);
}

/*
 * spool_batch_seal - finish the batch: compress the body if asked, fill
 * in the header; the result still needs spool_batch_stamp
 */
int
spool_batch_seal(struct spool_batch *b, int codec, int level,
    const unsigned char **out, size_t *outlen)
{
	struct spool_bhdr h;
	unsigned char *hdr;
	size_t raw = b->len - SPOOL_HDR_SIZE;
	uLongf zlen;
	int r;

	if (raw > SPOOL_BODY_MAX)
		return -EMSGSIZE;
	memset(&h, 0, sizeof(h));
	h.count = b->count;
	h.raw_len = (uint32_t)raw;
	h.base_ts = b->base_ts;
	h.max_ts = b->max_ts;
	h.type = SPOOL_TYPE_DATA;
	if ((r = grow(&b->buf, &b->cap, SPOOL_HDR_SIZE)) < 0)
		return r;
	hdr = b->buf;
	if (codec == SPOOL_CODEC_ZLIB) {
		zlen = compressBound(raw);
		if ((r = grow(&b->zbuf, &b->zcap, SPOOL_HDR_SIZE + zlen)) < 0)
			return r;
		if (compress2(b->zbuf + SPOOL_HDR_SIZE, &zlen,
		    b->buf + SPOOL_HDR_SIZE, raw,
		    level < 0 ? Z_DEFAULT_COMPRESSION : level) != Z_OK)
			return -ENOMEM;
		hdr = b->zbuf;
		h.codec = SPOOL_CODEC_ZLIB;
		h.body_len = (uint32_t)zlen;
	} else
		h.body_len = (uint32_t)raw;
	h.body_crc = spool_crc(0, hdr + SPOOL_HDR_SIZE, h.body_len);
	spool_bhdr_pack(hdr, &h);
	*out = hdr;
	*outlen = SPOOL_HDR_SIZE + h.body_len;
	return 0;
}

/* spool_batch_stamp - set the base offset and the header checksum */
void
spool_batch_stamp(unsigned char *hdr, uint64_t base_offset)
{
	put64(hdr + 8, base_offset);
	put32(hdr + 4, spool_crc(0, hdr + 8, SPOOL_HDR_SIZE - 8));
}

/* spool_batch_end - build the END batch that closes a segment */
void
spool_batch_end(unsigned char *hdr, uint64_t next, int64_t ts)
{
	struct spool_bhdr h;

	memset(&h, 0, sizeof(h));
	h.type = SPOOL_TYPE_END;
	h.body_crc = spool_crc(0, NULL, 0);
	h.base_ts = h.max_ts = ts;
	spool_bhdr_pack(hdr, &h);
	spool_batch_stamp(hdr, next);
}
