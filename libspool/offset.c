/*
 * offset.c - a consumer group's offset file: the committed offset of one
 * partition, kept through a crash in the middle of a commit
 *
 * The file (groups/G/N.offset, laid out in mq-spool(5)) holds two
 * slots, each a whole commit with its own checksum.  Commit number s
 * goes to slot s % 2, so the other slot keeps the previous commit while
 * this one is written: a commit torn by a crash leaves the one before it
 * intact, and the valid slot with the higher sequence is the commit.  A
 * file of zeros is no commit (a first commit whose data a power loss
 * took); anything else valid in neither slot is damage.
 *
 * This file does not lock or sync: group.c owns the partition's lock and
 * decides when commits are made durable.
 */

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "spool_impl.h"

#define OFF_SLOT	32
#define OFF_MAGIC	"mqC1"

/* offslot_read - decode one slot: 1 if it checks out */
static int
offslot_read(const unsigned char *s, uint64_t *seq, uint64_t *off)
{
	if (memcmp(s, OFF_MAGIC, 4) != 0 ||
	    get32(s + 4) != spool_crc(0, s + 8, OFF_SLOT - 8))
		return 0;
	*seq = get64(s + 8);
	*off = get64(s + 16);
	return 1;
}

/*
 * spool_offset_read - the newer good slot of an offset file; -ENOENT if there
 * is no file, or nothing but zeros (a first commit cut by a power loss);
 * -EBADMSG if it holds bytes that are no commit (damage, not a crash)
 */
int
spool_offset_read(int gfd, uint32_t part, uint64_t *off, uint64_t *seq)
{
	static const unsigned char zero[2 * OFF_SLOT];
	unsigned char buf[2 * OFF_SLOT];
	uint64_t s0 = 0, s1 = 0, o0 = 0, o1 = 0;
	char name[32];
	ssize_t n;
	int fd, g0, g1;

	snprintf(name, sizeof(name), "%" PRIu32 ".offset", part);
	fd = openat(gfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd == -1)
		return -errno;
	memset(buf, 0, sizeof(buf));
	n = pread(fd, buf, sizeof(buf), 0);
	close(fd);
	if (n < 0)
		return -errno;
	g0 = offslot_read(buf, &s0, &o0);
	g1 = offslot_read(buf + OFF_SLOT, &s1, &o1);
	if (!g0 && !g1)
		return memcmp(buf, zero, sizeof(buf)) == 0 ? -ENOENT : -EBADMSG;
	if (g0 && (!g1 || s0 > s1)) {
		*off = o0;
		*seq = s0;
	} else {
		*off = o1;
		*seq = s1;
	}
	return 0;
}

/* spool_offset_damaged - -EBADMSG, saying which offset file holds no commit */
int
spool_offset_damaged(struct spool_topic *t, const char *group, uint32_t part)
{
	spool_seterr(t->sp, "%s/topics/%s/groups/%s/%" PRIu32 ".offset: "
	    "damaged: no commit can be read", t->sp->path, t->name, group,
	    part);
	return -EBADMSG;
}

/* spool_offset_write - commit off for part in the slot the last one did not use */
int
spool_offset_write(const struct spool *sp, int gfd, int *fdp, uint32_t part,
    uint64_t *seq, uint64_t off)
{
	unsigned char s[OFF_SLOT];
	char name[32];
	uint64_t cur = 0, old;
	ssize_t n;
	int r;

	if (*fdp < 0) {
		/* another owner may have committed since: go on from there */
		if (spool_offset_read(gfd, part, &old, &cur) == 0 && cur > *seq)
			*seq = cur;
		snprintf(name, sizeof(name), "%" PRIu32 ".offset", part);
		*fdp = openat(gfd, name, O_RDWR | O_CREAT | O_NOFOLLOW |
		    O_CLOEXEC, 0664);
		if (*fdp == -1)
			return -errno;
		/* a new offset file must not vanish with the directory */
		if (cur == 0 && (r = spool_sync_dir(sp, gfd)) < 0)
			return r;
	}
	if (*seq >= INT64_MAX) {
		/* a sequence this high was not counted up to: start over */
		if (ftruncate(*fdp, 0) == -1)
			return -errno;
		*seq = 0;
	}
	(*seq)++;
	memset(s, 0, sizeof(s));
	memcpy(s, OFF_MAGIC, 4);
	put64(s + 8, *seq);
	put64(s + 16, off);
	put64(s + 24, (uint64_t)spool_now_ms());
	put32(s + 4, spool_crc(0, s + 8, OFF_SLOT - 8));
	/* the other slot keeps the previous commit while this one is written */
	while ((n = pwrite(*fdp, s, sizeof(s), (*seq & 1) * OFF_SLOT)) == -1 &&
	    errno == EINTR)
		;
	if (n == -1)
		return -errno;
	return n == sizeof(s) ? 0 : -EIO;
}
