/*
 * compact.c - compaction: keep the newest message of each key
 *
 * For a topic with cleanup.policy=compact (or compact,delete), gc
 * (spool_topic_gc, which holds the partition's gc lock) calls
 * spool_compact_part for each partition.  It owns the rewriting of
 * sealed segments and the small state file "compaction" beside them.
 * It never touches the newest (active) segment, which writers append
 * to, and takes no writer lock: sealed segments do not change under it.
 *
 * A pass maps key hash -> newest offset over the partition from the
 * clean point (where the last complete compaction's map began to be
 * needed) to its end, as long as the map fits compaction.map.bytes;
 * then every sealed segment in which something goes is rewritten, oldest
 * first, keeping a message unless (mq-spool(5), Compaction) a newer
 * message of its key is in the map, or it is a tombstone (key, empty
 * payload) older than delete.retention.ms.  Messages from the first one
 * younger than min.compaction.lag.ms on, and from where the map filled
 * on, stay; a full map means another pass from there.  Kept records keep
 * their offsets, times, keys, IDs and headers; a run of them is one new
 * batch, flagged SPOOL_BF_COMPACTED when offsets were removed before it.
 * A batch that loses nothing is copied byte for byte.
 *
 * A rewritten segment goes to NAME.log.compacting, is synced, and is
 * renamed over NAME.log (its index likewise, the old index removed
 * first), then the directory is synced: a reader that has the old file
 * open reads on in it, a new one gets the new file, and a crash leaves
 * one or the other, never both.  The segment keeps its name and END
 * batch, so segments still meet without a gap; those left with the END
 * batch alone are deleted while no older segment holds a message (the
 * gap below the first segment is legal, as after retention).  Segments
 * are done oldest first, so that a crash never leaves a tombstone
 * removed while an older message of its key stays.  What a killed gc left (*.compacting) goes
 * at the next gc of the partition.  The state file's generation
 * changes before the first rename of a run and again at its end (or,
 * the run killed, at the next one's): mq-replicate compares a replica's
 * segments whenever it is not the one the replica recorded.
 *
 * Keys are told apart by a 128-bit hash (MurmurHash3 x64-128): two keys
 * of K share one with probability about K^2 / 2^129 (1e-27 for a
 * million keys), and only then could a message be lost.
 */

#include <sys/random.h>
#include <sys/stat.h>
#include <sys/types.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "spool_impl.h"

#define STATE_NAME	"compaction"
#define TMP_SUFFIX	".compacting"
#define OUT_FLUSH	(1u << 20)	/* bytes of output buffered */
#define MAP_START	4096		/* slots a map starts with */

/* one slot of the key map; h[1] is never 0 in a used slot */
struct kslot {
	uint64_t	 h[2];
	uint64_t	 off;
};

struct kmap {
	struct kslot	*s;
	size_t		 cap;		/* slots, a power of two */
	size_t		 maxcap;	/* the most compaction.map.bytes allows */
	size_t		 n;
};

/* what compaction remembers of a partition between runs */
struct cstate {
	uint64_t	 clean;		/* below: at most one message a key */
	uint64_t	 bytes;		/* the partition's bytes after the run */
	int64_t		 last;		/* when it ran, ms */
	uint64_t	 removed;	/* messages it removed */
	int64_t		 tomb_ts;	/* the oldest kept tombstone's time */
	uint64_t	 gen;		/* changes around segments replaced */
	int		 pending;	/* a run replacing them did not end */
	uint64_t	 tail;		/* bytes from clean on after the run */
	int		 hastail;	/*  (older state files lack it) */
};

struct cctx {
	struct spool_topic *t;
	struct spool_io	*io;
	uint32_t	 part;
	int		 pfd;
	int64_t		 now;
	struct kmap	 map;
	uint64_t	 protect;	/* from here on everything stays */
	uint64_t	 lag_at;	/* the first message within the lag */
	uint64_t	 active;	/* the newest segment's base */
	struct cstate	*st;		/* saved with a new gen before a rename */
	int		 newgen;	/*  which this run has done */
	int64_t		 tomb_ts;
	uint64_t	 removed;
	/* input */
	unsigned char	*in;
	size_t		 incap;
	unsigned char	*keep;
	size_t		 keepcap;
	struct spool_body body;
	/* output */
	int		 ofd;
	unsigned char	*out;
	size_t		 outlen, outcap;
	off_t		 opos;		/* file position of out[0] */
	off_t		 lastidx;
	unsigned char	*ix;
	size_t		 ixlen, ixcap;
	uint64_t	 seg;		/* the segment being written */
	uint64_t	 written;	/* offset after the last batch written */
	struct spool_batch b;
};

/* rotl - rotate left */
static inline uint64_t
rotl(uint64_t x, int r)
{
	return (x << r) | (x >> (64 - r));
}

/* fmix - MurmurHash3's finalizer */
static inline uint64_t
fmix(uint64_t k)
{
	k ^= k >> 33;
	k *= 0xff51afd7ed558ccdULL;
	k ^= k >> 33;
	k *= 0xc4ceb9fe1a85ec53ULL;
	k ^= k >> 33;
	return k;
}

/* hash128 - MurmurHash3 x64-128 of a key (public domain, A. Appleby) */
static void
hash128(const void *key, size_t len, uint64_t out[2])
{
	const unsigned char *p = key, *tail;
	const uint64_t c1 = 0x87c37b91114253d5ULL, c2 = 0x4cf5ad432745937fULL;
	uint64_t h1 = 0x6d71, h2 = 0x6d71, k1, k2;
	size_t i, nblocks = len / 16;

	for (i = 0; i < nblocks; i++) {
		k1 = get64(p + i * 16);
		k2 = get64(p + i * 16 + 8);
		k1 *= c1; k1 = rotl(k1, 31); k1 *= c2; h1 ^= k1;
		h1 = rotl(h1, 27); h1 += h2; h1 = h1 * 5 + 0x52dce729;
		k2 *= c2; k2 = rotl(k2, 33); k2 *= c1; h2 ^= k2;
		h2 = rotl(h2, 31); h2 += h1; h2 = h2 * 5 + 0x38495ab5;
	}
	tail = p + nblocks * 16;
	k1 = k2 = 0;
	switch (len & 15) {
	case 15: k2 ^= (uint64_t)tail[14] << 48;	/* FALLTHROUGH */
	case 14: k2 ^= (uint64_t)tail[13] << 40;	/* FALLTHROUGH */
	case 13: k2 ^= (uint64_t)tail[12] << 32;	/* FALLTHROUGH */
	case 12: k2 ^= (uint64_t)tail[11] << 24;	/* FALLTHROUGH */
	case 11: k2 ^= (uint64_t)tail[10] << 16;	/* FALLTHROUGH */
	case 10: k2 ^= (uint64_t)tail[9] << 8;		/* FALLTHROUGH */
	case 9:
		k2 ^= (uint64_t)tail[8];
		k2 *= c2; k2 = rotl(k2, 33); k2 *= c1; h2 ^= k2;
		/* FALLTHROUGH */
	case 8: k1 ^= (uint64_t)tail[7] << 56;		/* FALLTHROUGH */
	case 7: k1 ^= (uint64_t)tail[6] << 48;		/* FALLTHROUGH */
	case 6: k1 ^= (uint64_t)tail[5] << 40;		/* FALLTHROUGH */
	case 5: k1 ^= (uint64_t)tail[4] << 32;		/* FALLTHROUGH */
	case 4: k1 ^= (uint64_t)tail[3] << 24;		/* FALLTHROUGH */
	case 3: k1 ^= (uint64_t)tail[2] << 16;		/* FALLTHROUGH */
	case 2: k1 ^= (uint64_t)tail[1] << 8;		/* FALLTHROUGH */
	case 1:
		k1 ^= (uint64_t)tail[0];
		k1 *= c1; k1 = rotl(k1, 31); k1 *= c2; h1 ^= k1;
	}
	h1 ^= len; h2 ^= len;
	h1 += h2; h2 += h1;
	h1 = fmix(h1); h2 = fmix(h2);
	h1 += h2; h2 += h1;
	out[0] = h1;
	out[1] = h2 | 1;	/* never 0: that marks a free slot */
}

/* kmap_init - an empty map bounded by bytes */
static void
kmap_init(struct kmap *m, int64_t bytes)
{
	memset(m, 0, sizeof(*m));
	m->maxcap = 16;
	while (m->maxcap * 2 * sizeof(struct kslot) <= (uint64_t)bytes)
		m->maxcap *= 2;
}

/* kmap_clear - forget every key, keeping the memory */
static void
kmap_clear(struct kmap *m)
{
	if (m->s != NULL)
		memset(m->s, 0, m->cap * sizeof(*m->s));
	m->n = 0;
}

/* kmap_slot - the slot of h, or the free slot where it would go */
static struct kslot *
kmap_slot(const struct kmap *m, const uint64_t h[2])
{
	size_t i = h[0] & (m->cap - 1);

	while (m->s[i].h[1] != 0 &&
	    (m->s[i].h[0] != h[0] || m->s[i].h[1] != h[1]))
		i = (i + 1) & (m->cap - 1);
	return &m->s[i];
}

/* kmap_grow - double the slots */
static int
kmap_grow(struct kmap *m)
{
	struct kslot *old = m->s, *s;
	size_t i, ocap = m->cap;

	m->cap = ocap ? ocap * 2 : (MAP_START < m->maxcap ? MAP_START :
	    m->maxcap);
	if ((m->s = calloc(m->cap, sizeof(*m->s))) == NULL) {
		m->s = old;
		m->cap = ocap;
		return -ENOMEM;
	}
	for (i = 0; i < ocap; i++)
		if (old[i].h[1] != 0) {
			s = kmap_slot(m, old[i].h);
			*s = old[i];
		}
	free(old);
	return 0;
}

/* kmap_put - note off as h's newest: 1, or 0 when the map is full */
static int
kmap_put(struct kmap *m, const uint64_t h[2], uint64_t off)
{
	struct kslot *s;
	int r;

	if (m->cap == 0 && (r = kmap_grow(m)) < 0)
		return r;
	s = kmap_slot(m, h);
	if (s->h[1] == 0) {
		/* a load of 3/4 at most: probes stay short */
		if ((m->n + 1) * 4 > m->cap * 3) {
			if (m->cap >= m->maxcap)
				return 0;
			/* no memory for more: full, another pass follows */
			if (kmap_grow(m) < 0)
				return 0;
			s = kmap_slot(m, h);
		}
		s->h[0] = h[0];
		s->h[1] = h[1];
		m->n++;
	}
	s->off = off;
	return 1;
}

/* kmap_get - h's newest offset: 1 and *off, or 0 */
static int
kmap_get(const struct kmap *m, const uint64_t h[2], uint64_t *off)
{
	const struct kslot *s;

	if (m->cap == 0)
		return 0;
	s = kmap_slot(m, h);
	if (s->h[1] == 0)
		return 0;
	*off = s->off;
	return 1;
}

/* state_load - the partition's compaction state; zeros when it has none */
static void
state_load(int pfd, struct cstate *st)
{
	char text[512], *line, *save = NULL;
	unsigned long long v;
	long long sv;

	memset(st, 0, sizeof(*st));
	if (spool_read_file(pfd, STATE_NAME, text, sizeof(text)) < 0)
		return;
	/* a hint: a damaged file costs one full compaction, nothing more */
	for (line = strtok_r(text, "\n", &save); line != NULL;
	    line = strtok_r(NULL, "\n", &save)) {
		if (sscanf(line, "clean=%llu", &v) == 1)
			st->clean = v;
		else if (sscanf(line, "bytes=%llu", &v) == 1)
			st->bytes = v;
		else if (sscanf(line, "last=%lld", &sv) == 1)
			st->last = sv;
		else if (sscanf(line, "removed=%llu", &v) == 1)
			st->removed = v;
		else if (sscanf(line, "tombstone=%lld", &sv) == 1)
			st->tomb_ts = sv;
		else if (sscanf(line, "generation=%llu", &v) == 1)
			st->gen = v;
		else if (sscanf(line, "pending=%llu", &v) == 1)
			st->pending = v != 0;
		else if (sscanf(line, "tail=%llu", &v) == 1) {
			st->tail = v;
			st->hastail = 1;
		}
	}
}

/* state_save - replace the state file */
static int
state_save(struct spool_topic *t, int pfd, const struct cstate *st)
{
	char text[512];
	int n;

	n = snprintf(text, sizeof(text), "clean=%" PRIu64 "\nbytes=%" PRIu64
	    "\nlast=%" PRId64 "\nremoved=%" PRIu64 "\ntombstone=%" PRId64
	    "\ngeneration=%" PRIu64 "\npending=%d\ntail=%" PRIu64 "\n",
	    st->clean, st->bytes, st->last, st->removed, st->tomb_ts, st->gen,
	    st->pending, st->tail);
	return spool_write_file(pfd, STATE_NAME, text, n, !t->sp->nosync);
}

/*
 * tail_bytes - the bytes of the segments that hold offsets from clean on
 * (the segment clean is in, and every later one)
 */
static uint64_t
tail_bytes(int pfd, uint64_t clean)
{
	char name[SPOOL_SEGNAME_LEN + 16];
	struct spool_seglist l;
	struct stat st;
	uint64_t sum = 0;
	size_t i;

	if (spool_seg_list(pfd, &l) < 0)
		return 0;
	for (i = 0; i < l.n; i++) {
		if (i + 1 < l.n && l.base[i + 1] <= clean)
			continue;
		spool_seg_name(name, l.base[i], SPOOL_LOG_SUFFIX);
		if (fstatat(pfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0)
			sum += (uint64_t)st.st_size;
	}
	spool_seg_free(&l);
	return sum;
}

/*
 * dirty_bytes - the bytes written since the last compaction: what the
 * segments from its clean point on grew by.  Not the partition's growth,
 * which retention (compact,delete) cancels out at its cap.
 */
static uint64_t
dirty_bytes(int pfd, const struct spool_part_info *pi,
    const struct cstate *st)
{
	uint64_t tail;

	if (!st->hastail)	/* a state file of an older mq */
		return pi->bytes > st->bytes ? pi->bytes - st->bytes : 0;
	if (st->clean < pi->first || st->clean > pi->next)
		return pi->bytes;	/* retention went past it: all new */
	tail = tail_bytes(pfd, st->clean);
	return tail > st->tail ? tail - st->tail : 0;
}

/* tombstone - a keyed message with an empty payload */
static int
tombstone(const struct spool_msg *m)
{
	return m->key != NULL && m->len == 0;
}

/* tomb_note - a tombstone that stays: remember the oldest one's time */
static void
tomb_note(struct cctx *c, const struct spool_msg *m)
{
	if (m->ts > 0 && (c->tomb_ts == 0 || m->ts < c->tomb_ts))
		c->tomb_ts = m->ts;
}

/* expired - whether a tombstone of time ts is past delete.retention.ms */
static int
expired(const struct spool_topic *t, int64_t now, int64_t ts)
{
	return ts < now - t->cfg.delete_retention_ms;
}

/* drop - whether message m goes (mq-spool(5), Compaction) */
static int
drop(struct cctx *c, const struct spool_msg *m)
{
	uint64_t h[2], newest;

	if (m->key == NULL || m->offset >= c->protect)
		return 0;
	hash128(m->key, m->keylen, h);
	if (kmap_get(&c->map, h, &newest) && newest > m->offset)
		return 1;
	/* the newest of its key, or the only one left below the map */
	if (tombstone(m) && expired(c->t, c->now, m->ts))
		return 1;
	if (tombstone(m))
		tomb_note(c, m);
	return 0;
}

/*
 * map_pass - map the keys of the partition from offset from on, until
 * the map is full (*stop: the first offset not mapped) or the end
 * (*stop UINT64_MAX); notes the first message within the lag
 */
static int
map_pass(struct cctx *c, uint64_t from, uint64_t *stop)
{
	struct spool_reader_opts o;
	struct spool_reader *r;
	struct spool_msg m;
	uint64_t h[2];
	int64_t lag = c->t->cfg.min_compaction_lag_ms;
	int s;

	kmap_clear(&c->map);
	*stop = UINT64_MAX;
	memset(&o, 0, sizeof(o));
	o.partition = (int)c->part;
	o.start.kind = SPOOL_POS_OFFSET;
	o.start.value = (int64_t)from;
	o.until.kind = SPOOL_POS_END;
	if ((s = spool_reader_open(c->t, &o, &r)) < 0)
		return s;
	while ((s = spool_reader_next(r, &m)) == 1) {
		if (lag > 0 && c->lag_at == UINT64_MAX && m.ts > c->now - lag)
			c->lag_at = m.offset;
		if (m.key == NULL)
			continue;
		hash128(m.key, m.keylen, h);
		if ((s = kmap_put(&c->map, h, m.offset)) < 0)
			break;
		if (s == 0) {
			*stop = m.offset;
			break;
		}
		if (tombstone(&m) && m.offset < c->active &&
		    m.offset < c->lag_at && !expired(c->t, c->now, m.ts))
			tomb_note(c, &m);
	}
	spool_reader_close(r);
	return s < 0 ? s : 0;
}

/* out_flush - write the buffered output */
static int
out_flush(struct cctx *c)
{
	size_t done = 0;
	ssize_t n;

	while (done < c->outlen) {
		n = pwrite(c->ofd, c->out + done, c->outlen - done,
		    c->opos + done);
		if (n == -1 && errno == EINTR)
			continue;
		if (n <= 0)
			return n == 0 ? -EIO : -errno;
		done += n;
	}
	c->opos += c->outlen;
	c->outlen = 0;
	return 0;
}

/* grow - room for need bytes in a buffer */
static int
grow(unsigned char **buf, size_t *cap, size_t need)
{
	unsigned char *p;
	size_t ncap = *cap ? *cap : 65536;

	if (need <= *cap)
		return 0;
	while (ncap < need)
		ncap *= 2;
	if ((p = realloc(*buf, ncap)) == NULL)
		return -ENOMEM;
	*buf = p;
	*cap = ncap;
	return 0;
}

/*
 * emit - append one finished batch (header packed, offsets base..+count)
 * to the output: flagged compacted, and stamped again, when offsets
 * before it were removed; indexed as a writer indexes
 */
static int
emit(struct cctx *c, unsigned char *batch, size_t len, uint64_t base,
    uint32_t count)
{
	off_t at = c->opos + c->outlen;
	int r;

	if (base > c->written && !(batch[51] & SPOOL_BF_COMPACTED)) {
		batch[51] |= SPOOL_BF_COMPACTED;
		spool_batch_stamp(batch, base);
	}
	if (get16(batch + 48) == SPOOL_TYPE_DATA &&
	    at - c->lastidx >= SPOOL_IDX_INTERVAL &&
	    base - c->seg <= UINT32_MAX && at <= UINT32_MAX) {
		if ((r = grow(&c->ix, &c->ixcap, c->ixlen + 8)) < 0)
			return r;
		put32(c->ix + c->ixlen, (uint32_t)(base - c->seg));
		put32(c->ix + c->ixlen + 4, (uint32_t)at);
		c->ixlen += 8;
		c->lastidx = at;
	}
	if ((r = grow(&c->out, &c->outcap, c->outlen + len)) < 0)
		return r;
	memcpy(c->out + c->outlen, batch, len);
	c->outlen += len;
	if (get16(batch + 48) != SPOOL_TYPE_END)
		c->written = base + count;
	return c->outlen >= OUT_FLUSH ? out_flush(c) : 0;
}

/* run_emit - seal the records gathered in c->b as one batch and emit it */
static int
run_emit(struct cctx *c, const struct spool_bhdr *h, uint64_t base)
{
	const unsigned char *sealed;
	unsigned char *hdr;
	size_t len;
	uint32_t count = c->b.count;
	int r, level;

	if (count == 0)
		return 0;
	level = h->codec == c->t->cfg.codec ? c->t->cfg.level : -1;
	if ((r = spool_batch_seal(&c->b, h->codec, level, &sealed, &len)) < 0)
		return r;
	hdr = (unsigned char *)sealed;
	/* a transaction's records stay its (txn.c counts its batches) */
	hdr[51] = h->flags & (SPOOL_BF_HINTS | SPOOL_BF_COMPACTED |
	    SPOOL_BF_TXN);
	if (base > h->base_offset)
		hdr[51] |= SPOOL_BF_COMPACTED;
	put32(hdr + 52, h->epoch);
	put64(hdr + 56, h->txid);
	spool_batch_stamp(hdr, base);
	r = emit(c, hdr, len, base, count);
	spool_batch_reset(&c->b);
	return r;
}

/* cdamage - a sealed segment that does not read as one: -EBADMSG */
static int
cdamage(struct cctx *c, uint64_t seg, off_t at, const char *why)
{
	spool_seterr(c->t->sp, "%s/%" PRIu32 "/%020" PRIu64 ".log: byte %lld: "
	    "%s; not compacted (see mq-topic verify)", c->t->name, c->part,
	    seg, (long long)at, why);
	return -EBADMSG;
}

/*
 * seg_pass - walk sealed segment seg (fd, size bytes), deciding for each
 * message whether it stays; with write set, write what stays to c->ofd.
 * Returns the number of messages that go, or -errno.
 */
static int64_t
seg_pass(struct cctx *c, int fd, uint64_t seg, off_t size, int write)
{
	struct spool_bhdr h;
	struct spool_msg m;
	unsigned char end[SPOOL_HDR_SIZE];
	char why[128];
	uint64_t expect = seg, endoff = UINT64_MAX, runbase = 0;
	int64_t endts = c->now, gone = 0;
	off_t pos = 0;
	uint32_t i, nd;
	int r, u;

	c->written = seg;
	while (pos < size) {
		if (size - pos < SPOOL_HDR_SIZE ||
		    spool_io_pread(c->io, fd, end, SPOOL_HDR_SIZE, pos) !=
		    SPOOL_HDR_SIZE)
			return cdamage(c, seg, pos, "incomplete batch");
		if ((u = spool_bhdr_unpack(end, &h)) == -EPROTO) {
			spool_bhdr_newer(end, why, sizeof(why));
			spool_seterr(c->t->sp, "%s/%" PRIu32 "/%020" PRIu64
			    ".log: byte %lld: %s; not compacted", c->t->name,
			    c->part, seg, (long long)pos, why);
			return -EPROTO;
		}
		if (u < 0)
			return cdamage(c, seg, pos, "bad batch header");
		if (h.base_offset < expect || (h.base_offset > expect &&
		    !(h.flags & SPOOL_BF_COMPACTED)))
			return cdamage(c, seg, pos, "offsets out of order");
		if (h.type == SPOOL_TYPE_END) {
			endoff = h.base_offset;
			endts = h.base_ts;
			break;
		}
		if ((off_t)h.body_len > size - pos - SPOOL_HDR_SIZE)
			return cdamage(c, seg, pos, "incomplete batch");
		if ((r = grow(&c->in, &c->incap, SPOOL_HDR_SIZE +
		    h.body_len)) < 0)
			return r;
		if (spool_io_pread(c->io, fd, c->in, SPOOL_HDR_SIZE +
		    h.body_len, pos) != (ssize_t)(SPOOL_HDR_SIZE + h.body_len))
			return cdamage(c, seg, pos, "short read");
		pos += SPOOL_HDR_SIZE + h.body_len;
		expect = h.base_offset + h.count;
		if (h.type >= SPOOL_TYPE_SKIP) {
			/* not ours to read: copied as it is */
			if (write && (r = emit(c, c->in, SPOOL_HDR_SIZE +
			    h.body_len, h.base_offset, h.count)) < 0)
				return r;
			continue;
		}
		if ((r = grow(&c->keep, &c->keepcap, h.count)) < 0)
			return r;
		if ((r = spool_body_open(&c->body, &h, c->in + SPOOL_HDR_SIZE,
		    why, sizeof(why))) < 0)
			return r == -ENOMEM ? r : cdamage(c, seg,
			    pos - SPOOL_HDR_SIZE - h.body_len, why);
		for (i = nd = 0; (r = spool_body_next(&c->body, &m)) == 1; i++)
			if (i < h.count && !(c->keep[i] = !drop(c, &m)))
				nd++;
		if (r < 0 || i != h.count)
			return r == -EPROTO ? r : cdamage(c, seg, pos -
			    SPOOL_HDR_SIZE - h.body_len, "records do not match "
			    "the batch header");
		gone += nd;
		if (!write)
			continue;
		if (nd == 0) {
			if ((r = emit(c, c->in, SPOOL_HDR_SIZE + h.body_len,
			    h.base_offset, h.count)) < 0)
				return r;
			continue;
		}
		/* runs of kept records, each one new batch */
		if ((r = spool_body_open(&c->body, &h, c->in + SPOOL_HDR_SIZE,
		    why, sizeof(why))) < 0)
			return r;
		spool_batch_reset(&c->b);
		for (i = 0; spool_body_next(&c->body, &m) == 1; i++) {
			if (!c->keep[i]) {
				if ((r = run_emit(c, &h, runbase)) < 0)
					return r;
				continue;
			}
			if (c->b.count == 0)
				runbase = m.offset;
			if ((r = spool_batch_add(&c->b, &m, m.ts)) < 0)
				return r;
		}
		if ((r = run_emit(c, &h, runbase)) < 0)
			return r;
	}
	if (endoff == UINT64_MAX)
		endoff = expect;	/* sealed by its successor alone */
	if (write) {
		/* the segment still ends where its successor begins */
		spool_batch_end(end, endoff, endts);
		if ((r = emit(c, end, SPOOL_HDR_SIZE, endoff, 0)) < 0 ||
		    (r = out_flush(c)) < 0)
			return r;
	}
	return gone;
}

/* rand_gen - a new generation: random, never 0 */
static uint64_t
rand_gen(void)
{
	uint64_t g = 0;

	if (getrandom(&g, sizeof(g), GRND_NONBLOCK) != sizeof(g))
		g = (uint64_t)spool_now_ms() * 2654435761u ^ (uint64_t)getpid();
	return g ? g : 1;
}

/*
 * new_gen - before the first segment of a run is replaced: a new
 * generation, and the run marked pending until its end gives another
 */
static int
new_gen(struct cctx *c)
{
	c->st->gen = rand_gen();
	c->st->pending = 1;
	c->newgen = 1;
	return state_save(c->t, c->pfd, c->st);
}

/* open_tmp - create NAME.compacting afresh */
static int
open_tmp(struct cctx *c, const char *name)
{
	char tmp[SPOOL_SEGNAME_LEN + 32];
	int fd;

	snprintf(tmp, sizeof(tmp), "%s%s", name, TMP_SUFFIX);
	(void)unlinkat(c->pfd, tmp, 0);
	fd = openat(c->pfd, tmp, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW |
	    O_CLOEXEC, 0664);
	return fd == -1 ? -errno : fd;
}

/* put_tmp - rename NAME.compacting over NAME */
static int
put_tmp(struct cctx *c, const char *name)
{
	char tmp[SPOOL_SEGNAME_LEN + 32];

	snprintf(tmp, sizeof(tmp), "%s%s", name, TMP_SUFFIX);
	return renameat(c->pfd, tmp, c->pfd, name) == -1 ? -errno : 0;
}

/*
 * rewrite - compact sealed segment seg: the new file and index beside
 * the old ones, synced, then renamed over them; returns the number of
 * messages removed (0: none, and nothing was replaced)
 */
static int
rewrite(struct cctx *c, int fd, uint64_t seg, off_t size)
{
	char log[SPOOL_SEGNAME_LEN + 16], idx[SPOOL_SEGNAME_LEN + 16];
	int64_t n;
	int ifd = -1, r, sync = !c->t->sp->nosync;

	spool_seg_name(log, seg, SPOOL_LOG_SUFFIX);
	spool_seg_name(idx, seg, SPOOL_IDX_SUFFIX);
	if ((c->ofd = open_tmp(c, log)) < 0)
		return c->ofd;
	c->outlen = 0;
	c->opos = 0;
	c->ixlen = 0;
	c->lastidx = -SPOOL_IDX_INTERVAL;
	c->seg = seg;
	spool_batch_reset(&c->b);
	if ((n = seg_pass(c, fd, seg, size, 1)) <= 0) {
		r = (int)n;	/* an error, or nothing goes: the copy goes */
		goto out;
	}
	/* the new segment is on disk before its name points at it */
	if (sync && fsync(c->ofd) == -1) {
		r = -errno;
		goto out;
	}
	if ((ifd = open_tmp(c, idx)) < 0) {
		r = ifd;
		goto out;
	}
	r = 0;
	if (c->ixlen > 0 && pwrite(ifd, c->ix, c->ixlen, 0) !=
	    (ssize_t)c->ixlen)
		r = errno ? -errno : -EIO;
	/* and so is its index: verify trusts an index it finds */
	if (r == 0 && sync && fsync(ifd) == -1)
		r = -errno;
	if (r < 0)
		goto out;
	/*
	 * the generation changes before the first segment of a run is
	 * replaced and again at its end (or, killed, at the next run's):
	 * a replica that saw any other compares its segments again
	 * (mq-replicate), and one that saw the last one saw them all
	 */
	if (!c->newgen && (r = new_gen(c)) < 0)
		goto out;
	/* no moment where the new log has the old index */
	if (unlinkat(c->pfd, idx, 0) == -1 && errno != ENOENT) {
		r = -errno;
		goto out;
	}
	if ((r = put_tmp(c, log)) < 0 || (r = put_tmp(c, idx)) < 0)
		goto out;
	/* the renames must survive a crash before the next one is made */
	if (sync && (r = spool_fsync_dir(c->pfd)) < 0)
		goto out;
	r = n > INT32_MAX ? INT32_MAX : (int)n;
out:
	if (ifd >= 0)
		close(ifd);
	close(c->ofd);
	c->ofd = -1;
	if (r <= 0) {
		char tmp[SPOOL_SEGNAME_LEN + 32];

		snprintf(tmp, sizeof(tmp), "%s%s", log, TMP_SUFFIX);
		(void)unlinkat(c->pfd, tmp, 0);
		snprintf(tmp, sizeof(tmp), "%s%s", idx, TMP_SUFFIX);
		(void)unlinkat(c->pfd, tmp, 0);
	}
	return r;
}

/* clean_tmp - remove what a killed compaction left */
static void
clean_tmp(int pfd)
{
	struct dirent *de;
	size_t len, sl = strlen(TMP_SUFFIX);
	DIR *d;
	int dfd;

	if ((dfd = dup(pfd)) == -1)
		return;
	if ((d = fdopendir(dfd)) == NULL) {
		close(dfd);
		return;
	}
	rewinddir(d);
	while ((de = readdir(d)) != NULL) {
		len = strlen(de->d_name);
		if (len > sl && strcmp(de->d_name + len - sl, TMP_SUFFIX) == 0)
			(void)unlinkat(pfd, de->d_name, 0);
	}
	closedir(d);
}

/*
 * sealed - compact the sealed segments below c->protect: how many.  A
 * segment below the clean point is looked at first and left alone when
 * it loses nothing; one above it has new messages, and nearly always
 * loses some, so it is written at once (and the copy dropped if not).
 */
static int
sealed(struct cctx *c, const struct spool_seglist *l, uint64_t clean)
{
	char name[SPOOL_SEGNAME_LEN + 16];
	struct stat st;
	int64_t n;
	size_t i;
	int fd, r = 0, done = 0;

	for (i = 0; i + 1 < l->n && l->base[i] < c->protect; i++) {
		spool_seg_name(name, l->base[i], SPOOL_LOG_SUFFIX);
		fd = openat(c->pfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
		if (fd == -1) {
			if (errno == ENOENT)
				continue;
			return -errno;
		}
		if (fstat(fd, &st) == -1)
			r = -errno;
		else if (i + 1 < l->n && l->base[i + 1] <= clean &&
		    (n = seg_pass(c, fd, l->base[i], st.st_size, 0)) <= 0)
			r = (int)n;	/* clean, and stays so: not written */
		else if ((n = rewrite(c, fd, l->base[i], st.st_size)) > 0) {
			c->removed += n;
			done++;
		} else
			r = (int)n;
		close(fd);
		if (r < 0)
			return r;
	}
	return done;
}

/*
 * drop_empty - remove the oldest sealed segments compaction left with
 * their END batch alone: the gap below the first segment is legal
 * (mq-spool(5), Gaps), as after retention.  One in the middle stays: the
 * segment before it must end where the next one begins.  Returns how
 * many went.
 */
static int
drop_empty(struct cctx *c, void (*report)(void *, const char *), void *arg)
{
	unsigned char hdr[SPOOL_HDR_SIZE];
	char name[SPOOL_SEGNAME_LEN + 16], msg[256];
	struct spool_seglist l;
	struct spool_bhdr h;
	struct stat st;
	size_t i;
	int fd, r = 0, n = 0, empty;

	if ((r = spool_seg_list(c->pfd, &l)) < 0)
		return r;
	for (i = 0; i + 1 < l.n; i++) {
		spool_seg_name(name, l.base[i], SPOOL_LOG_SUFFIX);
		if ((fd = openat(c->pfd, name, O_RDONLY | O_NOFOLLOW |
		    O_CLOEXEC)) == -1)
			break;
		empty = fstat(fd, &st) == 0 && st.st_size == SPOOL_HDR_SIZE &&
		    pread(fd, hdr, sizeof(hdr), 0) == SPOOL_HDR_SIZE &&
		    spool_bhdr_unpack(hdr, &h) == 0 &&
		    h.type == SPOOL_TYPE_END && h.base_offset == l.base[i + 1];
		close(fd);
		if (!empty)
			break;
		/* the log first: an index without its log is ignored */
		if (unlinkat(c->pfd, name, 0) == -1) {
			r = -errno;
			break;
		}
		spool_seg_name(name, l.base[i], SPOOL_IDX_SUFFIX);
		(void)unlinkat(c->pfd, name, 0);
		n++;
		if (report != NULL) {
			snprintf(msg, sizeof(msg), "%s/%" PRIu32 "/%020" PRIu64
			    ".log: deleted (emptied by compaction)",
			    c->t->name, c->part, l.base[i]);
			report(arg, msg);
		}
	}
	spool_seg_free(&l);
	/* the removals must not come back after a crash */
	if (r == 0 && n > 0 && spool_sync_dir(c->t->sp, c->pfd) < 0)
		r = -errno;
	return r < 0 ? r : n;
}

/*
 * spool_compact_part - compact partition part (directory pfd, whose gc
 * lock the caller holds) if enough was written since the last time:
 * the number of segments rewritten, or -errno (-EBADMSG: damage, which
 * is left for verify)
 */
int
spool_compact_part(struct spool_topic *t, uint32_t part, int pfd,
    int64_t now, void (*report)(void *, const char *), void *arg)
{
	struct spool_part_info pi;
	struct spool_seglist l;
	struct cstate st;
	struct cctx c;
	char msg[256];
	uint64_t from, stop, dirty, pending;
	int r, n, passes = 0, done = 0;

	clean_tmp(pfd);
	if ((r = spool_part_bounds(t, part, &pi)) < 0)
		return r;
	state_load(pfd, &st);
	dirty = dirty_bytes(pfd, &pi, &st);
	/* cheap: nothing read but the state and the newest segment's tail */
	if (pi.segments < 2 || (!st.pending && (dirty == 0 ||
	    (double)dirty < (double)pi.bytes *
	    t->cfg.min_cleanable_dirty_ratio) &&
	    t->cfg.min_cleanable_dirty_ratio > 0 &&
	    (st.tomb_ts == 0 || !expired(t, now, st.tomb_ts))))
		return 0;
	if ((r = spool_seg_list(pfd, &l)) < 0)
		return r;
	memset(&c, 0, sizeof(c));
	c.t = t;
	c.part = part;
	c.pfd = pfd;
	c.ofd = -1;
	c.now = now;
	c.lag_at = UINT64_MAX;
	c.st = &st;
	c.active = l.n > 0 ? l.base[l.n - 1] : 0;
	spool_batch_init(&c.b);
	kmap_init(&c.map, t->cfg.compaction_map_bytes);
	if ((c.io = spool_get_io(t->sp)) == NULL) {
		r = -ENOMEM;
		goto out;
	}
	/* a pending send's retry looks for its records from its start on */
	if ((r = spool_dedup_pending_from(t, part, &pending)) < 0)
		goto out;
	/* below the clean point each key has one message at most */
	from = st.clean >= pi.first && st.clean <= pi.next ? st.clean :
	    pi.first;
	for (;;) {
		passes++;
		if ((r = map_pass(&c, from, &stop)) < 0)
			goto out;
		c.protect = stop < c.lag_at ? stop : c.lag_at;
		if (pending < c.protect)
			c.protect = pending;
		if ((r = n = sealed(&c, &l, st.clean)) < 0)
			goto out;
		done += n;
		if (stop == UINT64_MAX)
			break;
		from = stop;	/* the map was full: go on from there */
	}
	spool_seg_free(&l);
	if ((r = drop_empty(&c, report, arg)) < 0)
		goto out;
	if ((r = spool_part_bounds(t, part, &pi)) < 0)
		goto out;
	st.clean = c.active < c.lag_at ? c.active : c.lag_at;
	if (pending < st.clean)
		st.clean = pending;	/* what it kept is looked at again */
	st.bytes = pi.bytes;
	st.last = now;
	st.removed = c.removed;
	st.tomb_ts = c.tomb_ts;
	if (c.newgen || st.pending)
		st.gen = rand_gen();	/* every replacement of it is done */
	st.pending = 0;
	st.tail = tail_bytes(pfd, st.clean);
	st.hastail = 1;
	if ((r = state_save(t, pfd, &st)) < 0)
		goto out;
	if (report != NULL) {
		snprintf(msg, sizeof(msg), "%s/%" PRIu32 ": compacted: %" PRIu64
		    " messages removed, %d segments rewritten, %d pass%s",
		    t->name, part, c.removed, done, passes,
		    passes == 1 ? "" : "es");
		report(arg, msg);
	}
	r = done;
out:
	spool_seg_free(&l);
	spool_batch_free(&c.b);
	spool_body_free(&c.body);
	free(c.map.s);
	free(c.in);
	free(c.keep);
	free(c.out);
	free(c.ix);
	return r;
}

/*
 * spool_compact_gen - the partition's compaction generation: a random
 * value that changes before any segment of it is rewritten (0: never)
 */
uint64_t
spool_compact_gen(int pfd)
{
	struct cstate st;

	state_load(pfd, &st);
	return st.gen;
}

/*
 * spool_compact_info - what describe says of a partition's compaction:
 * bytes written since it last ran and their share, when it ran
 */
int
spool_compact_info(struct spool_topic *t, uint32_t part,
    struct spool_compact_info *ci)
{
	struct spool_part_info pi;
	struct cstate st;
	int pfd, r;

	memset(ci, 0, sizeof(*ci));
	if ((pfd = spool_part_open(t, part)) < 0)
		return pfd;
	r = spool_part_bounds(t, part, &pi);
	state_load(pfd, &st);
	if (r == 0)
		ci->dirty_bytes = dirty_bytes(pfd, &pi, &st);
	close(pfd);
	if (r < 0)
		return r;
	ci->dirty_ratio = pi.bytes ? (double)ci->dirty_bytes / pi.bytes : 0;
	ci->last_ms = st.last;
	ci->removed = st.removed;
	return 0;
}
