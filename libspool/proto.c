/*
 * proto.c - framing and field codec of the mq-replicate protocol
 *
 * Owns reading and writing whole frames on a pair of descriptors, with a
 * timeout on every wait, and the bounds-checked decoding of the fields
 * of the frame just read.  It knows nothing of spools: repl_*.c give
 * the frames their meaning.  A decode past the end of a frame sets a
 * sticky flag and yields zeros; proto_done() then says -EBADMSG, so
 * callers check once per frame, not once per field.
 */

#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

#include "format.h"
#include "proto.h"

/* proto_init - a codec on rfd (frames in) and wfd (frames out) */
void
proto_init(struct proto *p, int rfd, int wfd, int timeout_ms)
{
	memset(p, 0, sizeof(*p));
	p->rfd = rfd;
	p->wfd = wfd;
	p->timeout_ms = timeout_ms;
}

/* proto_free - release the frame buffer */
void
proto_free(struct proto *p)
{
	free(p->buf);
	p->buf = NULL;
	p->cap = p->len = p->pos = 0;
}

/* room - make the buffer hold n bytes; sets bad when it cannot */
static int
room(struct proto *p, size_t n)
{
	unsigned char *nb;
	size_t ncap;

	if (n <= p->cap)
		return 1;
	ncap = p->cap ? p->cap : 4096;
	while (ncap < n)
		ncap *= 2;
	if ((nb = realloc(p->buf, ncap)) == NULL) {
		p->bad = -ENOMEM;
		return 0;
	}
	p->buf = nb;
	p->cap = ncap;
	return 1;
}

/* wait_fd - poll one descriptor for events within the timeout */
static int
wait_fd(struct proto *p, int fd, short ev)
{
	struct pollfd pf = { .fd = fd, .events = ev };
	int n;

	for (;;) {
		n = poll(&pf, 1, p->timeout_ms);
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1)
			return -errno;
		if (n == 0)
			return -ETIMEDOUT;
		return 0;
	}
}

/* write_all - write iov whole, waiting at most the timeout each time */
static int
write_all(struct proto *p, struct iovec *iov, int n)
{
	ssize_t w;
	int r;

	while (n > 0) {
		if ((r = wait_fd(p, p->wfd, POLLOUT)) < 0)
			return r;
		w = writev(p->wfd, iov, n);
		if (w == -1 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (w == -1)
			return -errno;
		p->bytes_out += (uint64_t)w;
		while (n > 0 && (size_t)w >= iov->iov_len) {
			w -= iov->iov_len;
			iov++;
			n--;
		}
		if (n > 0) {
			iov->iov_base = (char *)iov->iov_base + w;
			iov->iov_len -= w;
		}
	}
	return 0;
}

/* read_all - read exactly len bytes; the peer going away is -ECONNRESET */
static int
read_all(struct proto *p, void *buf, size_t len)
{
	ssize_t n;
	int r;

	while (len > 0) {
		if ((r = wait_fd(p, p->rfd, POLLIN)) < 0)
			return r;
		n = read(p->rfd, buf, len);
		if (n == -1 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (n == -1)
			return -errno;
		if (n == 0)
			return -ECONNRESET;
		p->bytes_in += (uint64_t)n;
		buf = (char *)buf + n;
		len -= n;
	}
	return 0;
}

/* proto_begin - start a frame of type; the length is filled in at send */
void
proto_begin(struct proto *p, int type)
{
	p->len = 0;
	p->bad = 0;
	if (room(p, 5)) {
		p->buf[4] = (unsigned char)type;
		p->len = 5;
	}
}

/* proto_bytes - append raw bytes to the frame */
void
proto_bytes(struct proto *p, const void *b, size_t n)
{
	if (p->bad || !room(p, p->len + n))
		return;
	if (n > 0)
		memcpy(p->buf + p->len, b, n);
	p->len += n;
}

/* proto_u8 - append a byte */
void
proto_u8(struct proto *p, uint8_t v)
{
	proto_bytes(p, &v, 1);
}

/* proto_u32 - append a little-endian u32 */
void
proto_u32(struct proto *p, uint32_t v)
{
	unsigned char b[4];

	put32(b, v);
	proto_bytes(p, b, 4);
}

/* proto_u64 - append a little-endian u64 */
void
proto_u64(struct proto *p, uint64_t v)
{
	unsigned char b[8];

	put64(b, v);
	proto_bytes(p, b, 8);
}

/* proto_str - append a string: u16 length, bytes (at most PROTO_STR_MAX) */
void
proto_str(struct proto *p, const char *s)
{
	size_t n = strlen(s);
	unsigned char b[2];

	if (n > PROTO_STR_MAX) {
		p->bad = -ENAMETOOLONG;
		return;
	}
	put16(b, (uint16_t)n);
	proto_bytes(p, b, 2);
	proto_bytes(p, s, n);
}

/* proto_send - send the frame built since proto_begin */
int
proto_send(struct proto *p)
{
	struct iovec iov;

	if (p->bad)
		return p->bad;
	put32(p->buf, (uint32_t)(p->len - 4));
	iov.iov_base = p->buf;
	iov.iov_len = p->len;
	return write_all(p, &iov, 1);
}

/* proto_send_data - send a frame of type whose payload is buf, uncopied */
int
proto_send_data(struct proto *p, int type, const void *buf, size_t len)
{
	unsigned char h[5];
	struct iovec iov[2];

	if (len + 1 > PROTO_FRAME_MAX)
		return -EMSGSIZE;
	put32(h, (uint32_t)(len + 1));
	h[4] = (unsigned char)type;
	iov[0].iov_base = h;
	iov[0].iov_len = 5;
	iov[1].iov_base = (void *)buf;
	iov[1].iov_len = len;
	return write_all(p, iov, len > 0 ? 2 : 1);
}

/*
 * proto_recv - read the next frame; *type is its type, the fields are
 * then read with proto_get*.  -EBADMSG: a length no peer of ours sends.
 */
int
proto_recv(struct proto *p, int *type)
{
	unsigned char h[4];
	uint32_t n;
	int r;

	p->len = p->pos = 0;
	p->bad = 0;
	if ((r = read_all(p, h, 4)) < 0)
		return r;
	n = get32(h);
	if (n == 0 || n > PROTO_FRAME_MAX)
		return -EBADMSG;
	if (!room(p, n))
		return -ENOMEM;
	if ((r = read_all(p, p->buf, n)) < 0)
		return r == -ECONNRESET ? -EBADMSG : r;
	p->len = n;
	p->pos = 1;
	*type = p->buf[0];
	if (*type == 0 || *type >= PROTO_TYPE_MAX)
		return -EBADMSG;
	return 0;
}

/* proto_decode - decode a frame (type byte first) already in memory */
int
proto_decode(struct proto *p, const void *frame, size_t len, int *type)
{
	p->len = p->pos = 0;
	p->bad = 0;
	if (len == 0 || len > PROTO_FRAME_MAX)
		return -EBADMSG;
	if (!room(p, len))
		return -ENOMEM;
	memcpy(p->buf, frame, len);
	p->len = len;
	p->pos = 1;
	*type = p->buf[0];
	if (*type == 0 || *type >= PROTO_TYPE_MAX)
		return -EBADMSG;
	return 0;
}

/* take - the next n bytes of the frame, or NULL (and bad) past its end */
static const unsigned char *
take(struct proto *p, size_t n)
{
	const unsigned char *s;

	if (p->bad || n > p->len - p->pos) {
		p->bad = -EBADMSG;
		return NULL;
	}
	s = p->buf + p->pos;
	p->pos += n;
	return s;
}

/* proto_get8 - the next byte (0 past the end) */
uint8_t
proto_get8(struct proto *p)
{
	const unsigned char *s = take(p, 1);

	return s ? s[0] : 0;
}

/* proto_get32 - the next u32 */
uint32_t
proto_get32(struct proto *p)
{
	const unsigned char *s = take(p, 4);

	return s ? get32(s) : 0;
}

/* proto_get64 - the next u64 */
uint64_t
proto_get64(struct proto *p)
{
	const unsigned char *s = take(p, 8);

	return s ? get64(s) : 0;
}

/*
 * proto_getstr - the next string into buf (NUL-terminated); a string
 * that does not fit or holds a NUL makes the frame bad
 */
int
proto_getstr(struct proto *p, char *buf, size_t cap)
{
	const unsigned char *s = take(p, 2);
	const unsigned char *b;
	size_t n;

	buf[0] = '\0';
	if (s == NULL)
		return p->bad;
	n = get16(s);
	if (n >= cap) {
		p->bad = -EBADMSG;
		return p->bad;
	}
	if ((b = take(p, n)) == NULL)
		return p->bad;
	if (memchr(b, '\0', n) != NULL) {
		p->bad = -EBADMSG;
		return p->bad;
	}
	memcpy(buf, b, n);
	buf[n] = '\0';
	return 0;
}

/* proto_rest - the rest of the frame, consumed */
const unsigned char *
proto_rest(struct proto *p, size_t *len)
{
	const unsigned char *s;

	*len = p->bad ? 0 : p->len - p->pos;
	s = p->bad ? NULL : p->buf + p->pos;
	p->pos = p->len;
	return s;
}

/* proto_done - 0 when every field read was in the frame, else -EBADMSG */
int
proto_done(struct proto *p)
{
	return p->bad ? -EBADMSG : 0;
}
