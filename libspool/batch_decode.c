/*
 * batch_decode.c - the record batch decoder
 *
 * Takes apart what batch.c builds (format.h, mq-spool(5)): checks and
 * decodes a 64-byte batch header (spool_bhdr_unpack), checks a body
 * against it and walks its records (spool_body_open, spool_body_next,
 * or spool_body_copy for a reader that wants payloads alone), and reads
 * a file holding one whole batch (spool_batch_read_file).  It knows
 * nothing of offsets on disk or locks: the reader hands it bytes it
 * read.
 *
 * Decoding treats every byte as hostile: each length is checked against
 * what is left before it is used, and any disagreement is -EBADMSG with
 * a reason in the caller's buffer.  Nothing is returned from a batch
 * whose checksum fails.  A checked header or record carrying what only
 * a newer format has (format.h, mq-spool(5), Compatibility) is -EPROTO,
 * never -EBADMSG: it is not damage.
 */

#include <sys/stat.h>

#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#include "spool_impl.h"

/* get_varint - read one varint below end; 0 on malformed input */
static inline int
get_varint(const unsigned char **pp, const unsigned char *end, uint64_t *v)
{
	const unsigned char *p = *pp;
	uint64_t r = 0;
	int shift = 0;

	if (p < end && *p < 0x80) {	/* the common one-byte case */
		*v = *p;
		*pp = p + 1;
		return 1;
	}
	while (p < end && shift < 64) {
		r |= (uint64_t)(*p & 0x7f) << shift;
		if ((*p++ & 0x80) == 0) {
			*v = r;
			*pp = p;
			return 1;
		}
		shift += 7;
	}
	return 0;
}

static inline int64_t
unzigzag(uint64_t v)
{
	return (int64_t)(v >> 1) ^ -(int64_t)(v & 1);
}

/* a record's head: what comes before its header count (mq-spool(5)) */
struct rec_head {
	const unsigned char *end;	/* the record's last byte + 1 */
	int64_t		 ts;
	const unsigned char *key, *id;
	uint64_t	 keylen, idlen;
};

/*
 * rec_head - take apart the head of the record at *pp (below be): its
 * length, attrs, time, key and ID; *pp is left at its header count.
 * 0, -EBADMSG for bytes that do not add up, -EPROTO for attrs bits of a
 * newer format.  spool_body_next and spool_body_copy's general path
 * share it.
 */
static inline int
rec_head(const unsigned char **pp, const unsigned char *be, int64_t base_ts,
    struct rec_head *rh)
{
	const unsigned char *p = *pp, *end;
	uint64_t len, v;
	unsigned attrs;

	if (!get_varint(&p, be, &len) || len > (uint64_t)(be - p) || len < 3)
		return -EBADMSG;
	end = p + len;
	attrs = *p++;
	if (attrs & ~(unsigned)SPOOL_REC_KNOWN)
		return -EPROTO;	/* the checksum held: written so */
	if (!get_varint(&p, end, &v))
		return -EBADMSG;
	/* hostile times wrap rather than overflow */
	rh->ts = (int64_t)((uint64_t)base_ts + (uint64_t)unzigzag(v));
	rh->key = rh->id = NULL;
	rh->keylen = rh->idlen = 0;
	if (attrs & SPOOL_REC_KEY) {
		if (!get_varint(&p, end, &v) || v > (uint64_t)(end - p))
			return -EBADMSG;
		rh->key = p;
		rh->keylen = v;
		p += v;
	}
	if (attrs & SPOOL_REC_ID) {
		if (!get_varint(&p, end, &v) || v > (uint64_t)(end - p))
			return -EBADMSG;
		rh->id = p;
		rh->idlen = v;
		p += v;
	}
	rh->end = end;
	*pp = p;
	return 0;
}

/*
 * spool_bhdr_unpack - check and decode a header: 0 for one this version
 * reads (data, END or a skippable type), -EPROTO for one written by a
 * newer mq (the checksum holds; spool_bhdr_newer says what is newer),
 * -EBADMSG unless the magic and checksum match and every field is in
 * range
 */
int
spool_bhdr_unpack(const unsigned char *p, struct spool_bhdr *h)
{
	if (memcmp(p, SPOOL_MAGIC, 3) != 0)
		return -EBADMSG;
	if (get32(p + 4) != spool_crc(0, p + 8, SPOOL_HDR_SIZE - 8))
		return -EBADMSG;
	/* the layout after the checksum is the version's: read no more */
	if (p[3] != SPOOL_VERSION_DIGIT)
		return p[3] > SPOOL_VERSION_DIGIT && p[3] <= '9' ? -EPROTO :
		    -EBADMSG;
	h->base_offset = get64(p + 8);
	h->count = get32(p + 16);
	h->body_len = get32(p + 20);
	h->body_crc = get32(p + 24);
	h->raw_len = get32(p + 28);
	h->base_ts = (int64_t)get64(p + 32);
	h->max_ts = (int64_t)get64(p + 40);
	h->type = get16(p + 48);
	h->codec = p[50];
	h->flags = p[51];
	h->epoch = get32(p + 52);
	h->txid = get64(p + 56);
	if (h->body_len > SPOOL_BODY_MAX || h->raw_len > SPOOL_BODY_MAX)
		return -EBADMSG;
	if (h->base_offset > INT64_MAX - (uint64_t)h->count)
		return -EBADMSG;
	/* bits 4-7 are hints, ignored; bits 0-3 must be understood */
	if (h->flags & SPOOL_BF_MUST & ~SPOOL_BF_KNOWN)
		return -EPROTO;
	if (h->type >= SPOOL_TYPE_SKIP)
		return 0;	/* passed over whole: its fields are its own */
	switch (h->type) {
	case SPOOL_TYPE_DATA:
		if (h->count == 0)
			return -EBADMSG;
		break;
	case SPOOL_TYPE_END:
		if (h->count != 0 || h->body_len != 0)
			return -EBADMSG;
		break;
	default:
		return -EPROTO;
	}
	if (h->codec > SPOOL_CODEC_ZLIB)
		return -EBADMSG;
	if (h->codec == SPOOL_CODEC_NONE && h->raw_len != h->body_len)
		return -EBADMSG;
	/* each record takes at least four bytes */
	if ((uint64_t)h->count * 4 > h->raw_len && h->type == SPOOL_TYPE_DATA)
		return -EBADMSG;
	return 0;
}

/*
 * spool_bhdr_newer - what in a header spool_bhdr_unpack refused with
 * -EPROTO is newer than this version, as "batch type 7"
 */
void
spool_bhdr_newer(const unsigned char *p, char *buf, size_t len)
{
	if (p[3] != SPOOL_VERSION_DIGIT)
		snprintf(buf, len, "batch format version %c", p[3]);
	else if (p[51] & SPOOL_BF_MUST & ~SPOOL_BF_KNOWN)
		snprintf(buf, len, "batch flags 0x%02x", p[51]);
	else
		snprintf(buf, len, "batch type %u", get16(p + 48));
}

/*
 * spool_body_open - check a body against its header and get ready to
 * walk its records; body must hold h->body_len bytes.  -EBADMSG: the
 * checksum fails; -EILSEQ: the checksum holds but the body does not
 * decode (damage written as it is, not a write caught halfway);
 * -EINVAL: a skippable batch, which has no records to read.
 */
int
spool_body_open(struct spool_body *b, const struct spool_bhdr *h,
    const unsigned char *body, char *why, size_t whylen)
{
	uLongf zlen;
	int r;

	/* a skippable batch's body is not ours to read, nor its lengths */
	if (h->type >= SPOOL_TYPE_SKIP) {
		snprintf(why, whylen, "batch type %u is passed over, not read",
		    h->type);
		return -EINVAL;
	}
	if (spool_crc(0, body, h->body_len) != h->body_crc) {
		snprintf(why, whylen, "body checksum mismatch");
		return -EBADMSG;
	}
	if (h->codec == SPOOL_CODEC_ZLIB) {
		/* deflate shrinks by 1032:1 at best; claim no more than that */
		if ((uint64_t)h->raw_len > (uint64_t)h->body_len * 1032 + 64) {
			snprintf(why, whylen, "zlib body too small for its size");
			return -EILSEQ;
		}
		if ((r = spool_batch_grow(&b->zbuf, &b->zcap,
		    (size_t)h->raw_len + 1)) < 0)
			return r;
		zlen = h->raw_len;
		if (uncompress(b->zbuf, &zlen, body, h->body_len) != Z_OK ||
		    zlen != h->raw_len) {
			/* the checksum held: this is no write in progress */
			snprintf(why, whylen, "bad zlib body");
			return -EILSEQ;
		}
		body = b->zbuf;
	}
	b->p = body;
	b->end = body + h->raw_len;
	b->left = h->count;
	b->offset = h->base_offset;
	b->base_ts = h->base_ts;
	return 0;
}

/*
 * spool_body_next - the next record: 1 and *m filled, 0 at the end,
 * -EBADMSG when the records do not add up to the header's count,
 * -EPROTO for a record with attrs bits of a newer format
 */
int
spool_body_next(struct spool_body *b, struct spool_msg *m)
{
	const unsigned char *p = b->p, *end;
	struct rec_head rh;
	uint64_t v, nh, i;
	int s;

	if (b->left == 0)
		return b->p == b->end ? 0 : -EBADMSG;
	if ((s = rec_head(&p, b->end, b->base_ts, &rh)) < 0)
		return s;
	end = rh.end;
	m->ts = rh.ts;
	m->ts_given = 0;
	m->key = rh.key;
	m->keylen = rh.keylen;
	m->id = rh.id;
	m->idlen = rh.idlen;
	if (!get_varint(&p, end, &nh) || nh > (uint64_t)(end - p) / 2)
		return -EBADMSG;
	if (nh > b->hcap) {
		struct spool_header *nhd;

		if ((nhd = realloc(b->hdrs, nh * sizeof(*nhd))) == NULL)
			return -ENOMEM;
		b->hdrs = nhd;
		b->hcap = nh;
	}
	for (i = 0; i < nh; i++) {
		if (!get_varint(&p, end, &v) || v > (uint64_t)(end - p))
			return -EBADMSG;
		b->hdrs[i].name = (const char *)p;
		b->hdrs[i].namelen = v;
		p += v;
		if (!get_varint(&p, end, &v) || v > (uint64_t)(end - p))
			return -EBADMSG;
		b->hdrs[i].value = p;
		b->hdrs[i].valuelen = v;
		p += v;
	}
	m->headers = nh ? b->hdrs : NULL;
	m->nheaders = nh;
	m->payload = p;
	m->len = end - p;
	m->offset = b->offset++;
	b->left--;
	b->p = end;
	return 1;
}

/*
 * copy_run - the fast part of spool_body_copy: at most todo records of
 * the common shape (a one-byte length, a time within 64 ms of the
 * batch's, no key, ID or headers), each payload followed by the one
 * byte d0, from *bp (below be) into *op (below oe), both moved past
 * what it took; the caller has made sure that no offset, time or size
 * limit can stop one of them.  It stops at any other record, and
 * spool_body_copy's own loop takes that one.  Returns the records taken.
 */
static inline size_t
copy_run(const unsigned char **bp, const unsigned char *be,
    unsigned char **op, const unsigned char *oe, unsigned char d0,
    size_t todo)
{
	const unsigned char *p = *bp;
	unsigned char *o = *op;
	uint32_t w, r;
	size_t k;

	for (k = 0; k < todo && be - p >= 4; k++) {
		/* length < 0x80 and >= 3, attrs 0, time < 0x80, no headers */
		memcpy(&w, p, 4);
		w = le32toh(w);
		r = w & 0xff;
		if ((w & 0xff80ff80) != 0 || r < 3 || r >= (size_t)(be - p))
			break;
		/*
		 * A payload is at most 124 bytes here: where both buffers
		 * have the room, copy a fixed 128 (a few vector moves, no
		 * call); the bytes past it are overwritten next.
		 */
		if (be - p >= 4 + 128 && oe - o >= 128)
			memcpy(o, p + 4, 128);
		else if ((size_t)(oe - o) > r - 3)
			memcpy(o, p + 4, r - 3);
		else
			break;
		o[r - 3] = d0;
		o += r - 2;
		p += r + 1;
	}
	*bp = p;
	*op = o;
	return k;
}

/*
 * spool_body_copy - spool_body_next for a plain reader, many records at
 * a time: the payloads of the next records, each followed by delim,
 * into out (at most cap bytes), at most max of them, while a record's
 * offset is below until, its time below until_ts, its payload shorter
 * than big and it has no headers; records below from are passed over.
 * It stops before a record it does not take, and spool_body_next then
 * says what that one is (damage, a newer format, beyond the range, too
 * large for out).  Returns the bytes written; *n records, the last *last.
 */
size_t
spool_body_copy(struct spool_body *b, unsigned char *out, size_t cap,
    const unsigned char *delim, size_t dlen, size_t max,
    const struct spool_body_range *rg, size_t *n, uint64_t *last)
{
	/* locals, so that the copies into out need not reload them */
	const unsigned char *p, *end, *bp = b->p, *be = b->end;
	unsigned char *o = out, *oe = out + cap, d0 = dlen > 0 ? *delim : 0;
	uint64_t len, off = b->offset, from = rg->from, until = rg->until;
	int64_t ts, base_ts = b->base_ts, until_ts = rg->until_ts;
	uint32_t left = b->left;
	size_t k = 0, big = rg->big, todo, t;
	struct rec_head rh;
	int run;

	/* no limit can stop a common record: copy_run can go first */
	run = dlen == 1 && big > 124 && base_ts > INT64_MIN + 64 &&
	    until_ts > INT64_MIN + 128 && base_ts < until_ts - 64;
	while (left > 0 && k < max) {
		if (run && off >= from && off < until) {
			todo = left;
			if (todo > until - off)
				todo = until - off;
			if (todo > max - k)
				todo = max - k;
			t = copy_run(&bp, be, &o, oe, d0, todo);
			k += t;
			off += t;
			left -= t;
			if (left == 0 || k >= max)
				break;
		}
		p = bp;
		if (be - p >= 4 && p[0] >= 3 && p[0] < 0x80 && p[1] == 0 &&
		    p[2] < 0x80 && p[3] == 0) {
			/* the common record: short, no key, ID or headers */
			if (p[0] > be - p - 1)
				break;
			end = p + 1 + p[0];
			ts = (int64_t)((uint64_t)base_ts +
			    (uint64_t)unzigzag(p[2]));
			p += 4;
		} else {
			/* damage, a newer format: spool_body_next's to say */
			if (rec_head(&p, be, base_ts, &rh) < 0)
				break;
			end = rh.end;
			ts = rh.ts;
			/* headers (or damage) are spool_body_next's */
			if (p >= end || *p++ != 0)
				break;
		}
		if (off >= until || ts >= until_ts)
			break;
		len = end - p;
		if (len >= big)
			break;
		if (off >= from) {
			if ((uint64_t)(oe - o) < len + dlen)
				break;
			memcpy(o, p, len);
			o += len;
			if (dlen == 1)
				*o++ = d0;
			else {
				memcpy(o, delim, dlen);
				o += dlen;
			}
			k++;
		}
		off++;
		left--;
		bp = end;
	}
	if (k > 0)
		*last = off - 1;
	b->offset = off;
	b->left = left;
	b->p = bp;
	*n = k;
	return o - out;
}

/* spool_body_free - release a decoder's buffers */
void
spool_body_free(struct spool_body *b)
{
	free(b->hdrs);
	free(b->zbuf);
	memset(b, 0, sizeof(*b));
}

/*
 * spool_batch_read_file - a file holding one whole batch (a scheduled
 * or prepared one), read and checked: 0 with *bufp (malloc'd), *lenp
 * and *h; -EBADMSG when it is no batch or its checksums fail (the
 * message names it as what, name), -EPROTO for a newer mq's, -errno
 */
int
spool_batch_read_file(struct spool *sp, const char *what, int dfd,
    const char *name, unsigned char **bufp, size_t *lenp,
    struct spool_bhdr *h)
{
	struct stat st;
	unsigned char *buf;
	ssize_t n;
	int fd, r = 0;

	if ((fd = openat(dfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)) == -1)
		return -errno;
	if (fstat(fd, &st) == -1) {
		r = -errno;
		close(fd);
		return r;
	}
	if (st.st_size < SPOOL_HDR_SIZE ||
	    st.st_size > SPOOL_HDR_SIZE + (off_t)SPOOL_BODY_MAX) {
		close(fd);
		spool_seterr(sp, "%s%s: not a batch", what, name);
		return -EBADMSG;
	}
	if ((buf = malloc(st.st_size)) == NULL) {
		close(fd);
		return -ENOMEM;
	}
	n = pread(fd, buf, st.st_size, 0);
	close(fd);
	if (n != st.st_size)
		r = n < 0 ? -errno : -EIO;
	else if ((r = spool_bhdr_unpack(buf, h)) < 0 ||
	    (size_t)h->body_len != (size_t)st.st_size - SPOOL_HDR_SIZE ||
	    spool_crc(0, buf + SPOOL_HDR_SIZE, h->body_len) != h->body_crc) {
		spool_seterr(sp, "%s%s: checksum mismatch", what, name);
		r = r == -EPROTO ? r : -EBADMSG;
	}
	if (r < 0) {
		free(buf);
		return r;
	}
	*bufp = buf;
	*lenp = st.st_size;
	return 0;
}
