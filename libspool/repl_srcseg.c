/*
 * repl_srcseg.c - the source's segment files as the sender reads them:
 * whether a header there stops a walk for good, whether the source holds
 * a batch the replica names
 *
 * Each takes the partition's directory fd and reads only; none takes a
 * lock (repl_seg_bad's recheck takes the partition's shared lock through
 * spool_damage_confirm).  Nothing here trusts the peer: a position the
 * replica gives is checked against the file before it is read.
 */

#include <errno.h>
#include <unistd.h>

#include "repl.h"

/*
 * repl_seg_bad - whether the header hdr, read at pos of a source
 * segment, stops a walk there for good: a batch a newer mq wrote, or a
 * header that does not check out, is not zeros to the end of the file
 * (space allocated, not yet written) and still does not with the
 * source's writers held off; 1 if so, 0 if not (a header that checks
 * out: its batch is torn or being written)
 */
int
repl_seg_bad(int pfd, int fd, const unsigned char *hdr, off_t pos,
    off_t size)
{
	struct spool_bhdr h;
	int u;

	if ((u = spool_bhdr_unpack(hdr, &h)) != -EBADMSG)
		return u == -EPROTO;
	return !spool_seg_zero_tail(NULL, fd, pos, size) &&
	    spool_damage_confirm(NULL, pfd, fd, pos);
}

/* repl_has_batch - whether the source holds the batch at base/pos */
int
repl_has_batch(struct sess *s, int pfd, uint64_t base, off_t pos,
    uint32_t crc, uint64_t off)
{
	unsigned char hdr[SPOOL_HDR_SIZE];
	struct spool_bhdr h;
	off_t size;
	int fd, ok;

	if ((fd = spool_seg_open_ro(pfd, base, &size)) < 0)
		return 0;
	ok = pos >= 0 && pos <= size - SPOOL_HDR_SIZE &&
	    pread(fd, hdr, sizeof(hdr), pos) == SPOOL_HDR_SIZE &&
	    spool_bhdr_unpack(hdr, &h) == 0 && get32(hdr + 4) == crc &&
	    h.base_offset == off &&
	    (off_t)h.body_len <= size - pos - SPOOL_HDR_SIZE;
	close(fd);
	return ok;
}
