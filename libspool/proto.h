/*
 * proto.h - the mq-replicate wire protocol: frames and their fields
 *
 * Both ends of mq-replicate speak this over a pipe (a socketpair locally,
 * ssh remotely).  A frame is
 *
 *	u32 len     bytes that follow (type and payload), 1..PROTO_FRAME_MAX
 *	u8  type    PROTO_* below
 *	payload     fields, little-endian; a string is u16 length + bytes
 *
 * The decoder never trusts a length: every field read is checked against
 * the end of the frame, and a short or overlong frame is -EBADMSG.  Reads
 * and writes wait at most the timeout given to proto_init, so a silent
 * peer is -ETIMEDOUT, never a hang.  mq-spool(5) describes the exchange.
 */

#ifndef SPOOL_PROTO_H
#define SPOOL_PROTO_H

#include <stddef.h>
#include <stdint.h>

#define PROTO_MAGIC	"mqRP"
#define PROTO_VERSION	3
/* a batch holding the largest message max.message.bytes allows (256 MiB), with its framing */
#define PROTO_FRAME_MAX	((256u << 20) + (1u << 20))
#define PROTO_STR_MAX	4096

enum {
	PROTO_HELLO = 1,	/* magic, version, role, flags, id, epoch, path, topics */
	PROTO_ERROR,		/* u8 kind, str message: the peer gives up */
	PROTO_LIST,		/* R->S: which topics are there */
	PROTO_TOPIC,		/* S->R: str name, str config */
	PROTO_LIST_END,		/* S->R */
	PROTO_PSTATE,		/* R->S: what the replica holds of a partition */
	PROTO_PLAN,		/* S->R: u8 kind, u64 from, u64 to, u64 bytes */
	PROTO_SEG,		/* S->R: u64 base of a new segment */
	PROTO_DATA,		/* S->R: whole batches, as stored */
	PROTO_PEND,		/* S->R: u64 source first, u64 source next */
	PROTO_ACK,		/* R->S: str topic, u32 part, u64 durable next */
	PROTO_PROBE,		/* R->S: batches of one segment, newest first */
	PROTO_PROBE_R,		/* S->R: i32 index of the newest common one */
	PROTO_GROUPS_REQ,	/* R->S: str topic */
	PROTO_GROUPS,		/* S->R: u32 n, {str group, u32 part, u64 off} */
	PROTO_WAIT,		/* R->S: tell me when something changes */
	PROTO_CHANGED,		/* S->R: u8 1 changed, 0 heartbeat */
	PROTO_BYE,		/* R->S: done */
	PROTO_SCHED_REQ,	/* R->S: str topic */
	PROTO_SCHED,		/* S->R: u32 n, {u64 next before, u64 after}, u32 n, {str name} */
	PROTO_SCHED_GET,	/* R->S: str topic, str name */
	PROTO_SCHED_FILE,	/* S->R: the file's bytes (none: gone) */
	PROTO_LOCAL,		/* S->R: u64 segment, u64 from, u64 to: read it there */
	PROTO_SEGS,		/* R->S: str topic, u32 part, u32 n, {u64 base, u64 size, u32 crc} */
	PROTO_SEGFILE,		/* S->R: u64 base, u64 size: a compacted segment, whole, in DATA */
	PROTO_SEGS_END,		/* S->R: u64 generation (0: not all), u32 segments sent */
	PROTO_TYPE_MAX
};

/* PROTO_ERROR kinds: how the receiving side exits */
enum { PROTO_E_ROLE = 1, PROTO_E_DATA, PROTO_E_IO, PROTO_E_NOENT,
	PROTO_E_PERM, PROTO_E_USAGE };

struct proto {
	int		 rfd;
	int		 wfd;
	int		 timeout_ms;
	unsigned char	*buf;		/* the frame being built or read */
	size_t		 cap;
	size_t		 len;
	size_t		 pos;		/* decode cursor */
	int		 bad;		/* a field ran past the frame */
	uint64_t	 bytes_in;
	uint64_t	 bytes_out;
};

void	 proto_init(struct proto *, int rfd, int wfd, int timeout_ms);
void	 proto_free(struct proto *);

/* building and sending */
void	 proto_begin(struct proto *, int type);
void	 proto_u8(struct proto *, uint8_t);
void	 proto_u32(struct proto *, uint32_t);
void	 proto_u64(struct proto *, uint64_t);
void	 proto_str(struct proto *, const char *);
void	 proto_bytes(struct proto *, const void *, size_t);
int	 proto_send(struct proto *);
int	 proto_send_data(struct proto *, int type, const void *, size_t);

/* receiving and decoding */
int	 proto_recv(struct proto *, int *type);
int	 proto_decode(struct proto *, const void *frame, size_t len, int *type);
uint8_t	 proto_get8(struct proto *);
uint32_t proto_get32(struct proto *);
uint64_t proto_get64(struct proto *);
int	 proto_getstr(struct proto *, char *, size_t cap);
const unsigned char *proto_rest(struct proto *, size_t *len);
int	 proto_done(struct proto *);

#endif
