/*
 * compact_keys.c - compaction's key map: which messages go
 *
 * Owns the map key hash -> newest offset that a pass builds over a
 * partition (spool_compact_keys_map, bounded by compaction.map.bytes: a
 * full map ends the pass, and another one follows from there) and the
 * rule of mq-spool(5), Compaction, that decides from it whether one
 * message goes (spool_compact_keys_drop): a newer message of its key is
 * in the map, or it is a tombstone older than delete.retention.ms.  It
 * notes the oldest tombstone that stays.
 *
 * Keys are told apart by a 128-bit hash (MurmurHash3 x64-128): two keys
 * of K share one with probability about K^2 / 2^129 (1e-27 for a
 * million keys), and only then could a message be lost.
 *
 * It reads messages through a reader and writes nothing: the segments
 * are rewritten by compact_seg.c and compact_install.c.
 */

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "spool_impl.h"
#include "compact.h"

#define MAP_START	4096		/* slots a map starts with */

/* one slot of the key map; h[1] is never 0 in a used slot */
struct kslot {
	uint64_t	 h[2];
	uint64_t	 off;
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

/* spool_compact_keys_init - an empty map bounded by bytes */
void
spool_compact_keys_init(struct kmap *m, int64_t bytes)
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

/*
 * spool_compact_keys_expired - whether a tombstone of time ts is past
 * delete.retention.ms
 */
int
spool_compact_keys_expired(const struct spool_topic *t, int64_t now,
    int64_t ts)
{
	return ts < now - t->cfg.delete_retention_ms;
}

/* spool_compact_keys_drop - whether message m goes (mq-spool(5), Compaction) */
int
spool_compact_keys_drop(struct cctx *c, const struct spool_msg *m)
{
	uint64_t h[2], newest;

	if (m->key == NULL || m->offset >= c->protect)
		return 0;
	hash128(m->key, m->keylen, h);
	if (kmap_get(&c->map, h, &newest) && newest > m->offset)
		return 1;
	/* the newest of its key, or the only one left below the map */
	if (tombstone(m) && spool_compact_keys_expired(c->t, c->now, m->ts))
		return 1;
	if (tombstone(m))
		tomb_note(c, m);
	return 0;
}

/*
 * spool_compact_keys_map - map the keys of the partition from offset from
 * on, until the map is full (*stop: the first offset not mapped) or the
 * end (*stop UINT64_MAX); notes the first message within the lag
 */
int
spool_compact_keys_map(struct cctx *c, uint64_t from, uint64_t *stop)
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
		    m.offset < c->lag_at &&
		    !spool_compact_keys_expired(c->t, c->now, m.ts))
			tomb_note(c, &m);
	}
	spool_reader_close(r);
	return s < 0 ? s : 0;
}
