/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The 14 IPVS schedulers, each a port of its counterpart in sched/ (which
 * is in turn the kernel's ip_vs_<name>.c): same list walk, same weight-0
 * and overload rules, same tie-breaking, same hashes and tables.
 *
 * Lists are walked with bpf_loop (one callback verified once, whatever
 * the list length up to GVS_SVC_DESTS). Arithmetic that wraps in Go
 * (int64 products, twos' int32 sums) wraps here too: it is done unsigned
 * and reinterpreted, since signed overflow is undefined in C.
 */
#ifndef GVS_SCHED_H
#define GVS_SCHED_H

#include <linux/bpf.h>
#include <linux/in.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>
#include "gvs.h"
#include "maps.h"
#include "parse.h"

#define NS_PER_SEC   1000000000ULL
#define RD(x)        (*(volatile typeof(x) *)&(x))

static __always_inline __s64 mul64(__s64 a, __s64 b)
{
	return (__s64)((__u64)a * (__u64)b);
}

static __always_inline __s32 mul32(__s32 a, __s32 b)
{
	return (__s32)((__u32)a * (__u32)b);
}

static __always_inline int dest_overloaded(const struct gvs_dest *d)
{
	return RD(d->flags) & GVS_DEST_F_OVERLOAD;
}

/* model.Server.Usable: weight > 0 and not overloaded. */
static __always_inline int dest_usable(const struct gvs_dest *d)
{
	return RD(d->weight) > 0 && !dest_overloaded(d);
}

/* model.Server.Overhead: active*256 + inactive. */
static __always_inline __s64 dest_overhead(const struct gvs_dest *d)
{
	return (__s64)RD(d->activeconns) * 256 + (__s64)RD(d->inactconns);
}

/* A walk over a service's server list (gvs.h: the first GVS_SVC_INLINE
 * ids in the value, the rest in svc_chunks). A walk's context has the
 * fields svc, chunk (the chunk last looked up, or NULL) and at (the list
 * index of its first id, GVS_SVC_DESTS before any): a walk over n servers costs n / GVS_CHUNK_IDS
 * lookups, not n. Fields, not a struct of them, so that at fills a hole
 * of the context (the lblcr chain, lblcr, weighted least and its
 * callback, is at the 512-byte stack limit).
 *
 * A pointer that a callback writes into its caller's stack makes states
 * that differ by it: in wrr_cb's state machine that tripled the
 * verifier's work on xdp_gvs (213k instructions before lists, 600k), so
 * wrr_cb looks its chunk up at each step (list_dest_id_once; it usually
 * stops within a few steps), and xdp_gvs takes 233k. Tried and dropped:
 * a per-CPU copy of the chunk instead of its pointer (over the 1M limit:
 * the 448-byte copy in every callback). */
#define SVC_LIST(s) .svc = (s), .at = GVS_SVC_DESTS /* past every index: none */
#define svc_dest_id(c, i) list_dest_id((c)->svc, &(c)->chunk, &(c)->at, (i))

/* at is the list index of the kept chunk's first id: an id of that chunk
 * costs a subtraction, and only a new chunk a division (the JIT's div:
 * two per id made wlc over 1,024 servers 30% slower). */
static __always_inline __u32 list_dest_id(const struct gvs_svc *svc, const struct gvs_chunk **chunk,
					  __u32 *at, __u64 i)
{
	/* A 64-bit bound the verifier sees (it loses the zero upper half
	 * of a 32-bit modulo). */
	barrier_var(i);
	if (i >= GVS_SVC_DESTS)
		return GVS_DEST_NONE;
	__u64 j = (__u32)i - *at;
	const struct gvs_chunk *c = *chunk;

	/* The kept chunk first: most ids of a long walk are there. */
	if (c && j < GVS_CHUNK_IDS)
		return c->ids[j];
	if (i < GVS_SVC_INLINE)
		return svc->dests[i];
	__u32 n = ((__u32)i - GVS_SVC_INLINE) / GVS_CHUNK_IDS;
	struct gvs_chunk_key k = { .list = svc->list, .chunk = n };

	c = bpf_map_lookup_elem(&svc_chunks, &k);
	if (!c)
		return GVS_DEST_NONE; /* a list being replaced: no server */
	/* Only a chunk found is kept (fewer states to verify). */
	*chunk = c;
	*at = GVS_SVC_INLINE + n * GVS_CHUNK_IDS;
	j = (__u32)i - *at;
	barrier_var(j);
	if (j >= GVS_CHUNK_IDS)
		return GVS_DEST_NONE;
	return c->ids[j];
}

/* svc_dest_id without the cache: a lookup per id past the inline ones. */
static __always_inline __u32 list_dest_id_once(const struct gvs_svc *svc, __u64 i)
{
	barrier_var(i);
	if (i >= GVS_SVC_DESTS)
		return GVS_DEST_NONE;
	if (i < GVS_SVC_INLINE)
		return svc->dests[i];
	i -= GVS_SVC_INLINE;
	struct gvs_chunk_key k = { .list = svc->list, .chunk = (__u32)i / GVS_CHUNK_IDS };
	__u64 j = (__u32)i % GVS_CHUNK_IDS;
	const struct gvs_chunk *c = bpf_map_lookup_elem(&svc_chunks, &k);

	barrier_var(j);
	if (!c || j >= GVS_CHUNK_IDS)
		return GVS_DEST_NONE;
	return c->ids[j];
}

static __always_inline __u32 svc_ndests(const struct gvs_svc *svc)
{
	__u32 n = svc->ndests;
	return n > GVS_SVC_DESTS ? GVS_SVC_DESTS : n;
}

/* ---- lc, wlc, sed (and the wlc step of lblc, lblcr), nq, fo, ovf ---- */

#define OH_CONN 0 /* active*256 + inactive */
#define OH_SED  1 /* active + 1 */

struct walk_ctx {
	const struct gvs_svc *svc;
	const struct gvs_chunk *chunk;
	__s64 boh;     /* overhead of the best so far */
	__s32 bw;      /* weight of the best so far */
	__u32 best;    /* dest id, GVS_DEST_NONE: none yet */
	__u32 mode;    /* OH_* */
	__u32 at;
};

static __always_inline __s64 walk_overhead(const struct gvs_dest *d, __u32 mode)
{
	if (mode == OH_SED)
		return (__s64)RD(d->activeconns) + 1;
	return dest_overhead(d);
}

/* weightedLeast: the first usable server, then any later one not
 * overloaded with overhead/weight strictly lower. */
static long wl_cb(__u64 i, void *vc)
{
	struct walk_ctx *c = vc;
	__u32 id = svc_dest_id(c, i);
	struct gvs_dest *d = dest_get(id);

	if (!d)
		return 0;
	if (c->best == GVS_DEST_NONE) {
		if (dest_usable(d)) {
			c->best = id;
			c->boh = walk_overhead(d, c->mode);
			c->bw = RD(d->weight);
		}
		return 0;
	}
	if (dest_overloaded(d))
		return 0;
	__s64 doh = walk_overhead(d, c->mode);
	__s32 w = RD(d->weight);
	if (mul64(c->boh, w) > mul64(doh, c->bw)) {
		c->best = id;
		c->boh = doh;
		c->bw = w;
	}
	return 0;
}

__gvs_subprog __u32 sched_weighted_least(const struct gvs_svc *svc, __u32 mode)
{
	struct walk_ctx c = { SVC_LIST(svc), .best = GVS_DEST_NONE, .mode = mode };

	bpf_loop(svc_ndests(svc), wl_cb, &c, 0);
	return c.best;
}

static long lc_cb(__u64 i, void *vc)
{
	struct walk_ctx *c = vc;
	__u32 id = svc_dest_id(c, i);
	struct gvs_dest *d = dest_get(id);

	if (!d || !dest_usable(d))
		return 0;
	__s64 doh = dest_overhead(d);
	if (c->best == GVS_DEST_NONE || doh < c->boh) {
		c->best = id;
		c->boh = doh;
	}
	return 0;
}

static long nq_cb(__u64 i, void *vc)
{
	struct walk_ctx *c = vc;
	__u32 id = svc_dest_id(c, i);
	struct gvs_dest *d = dest_get(id);

	if (!d || !dest_usable(d))
		return 0;
	__s32 act = RD(d->activeconns);
	__s64 doh = (__s64)act + 1;
	__s32 w = RD(d->weight);
	if (act == 0) {
		c->best = id;
		return 1;
	}
	if (c->best == GVS_DEST_NONE || mul64(c->boh, w) > mul64(doh, c->bw)) {
		c->best = id;
		c->boh = doh;
		c->bw = w;
	}
	return 0;
}

static long fo_cb(__u64 i, void *vc)
{
	struct walk_ctx *c = vc;
	__u32 id = svc_dest_id(c, i);
	struct gvs_dest *d = dest_get(id);

	if (!d)
		return 0;
	__s32 w = RD(d->weight);
	if (!dest_overloaded(d) && w > c->bw) {
		c->best = id;
		c->bw = w;
	}
	return 0;
}

static long ovf_cb(__u64 i, void *vc)
{
	struct walk_ctx *c = vc;
	__u32 id = svc_dest_id(c, i);
	struct gvs_dest *d = dest_get(id);

	if (!d)
		return 0;
	__s32 w = RD(d->weight);
	if (dest_overloaded(d) || (__s64)RD(d->activeconns) > (__s64)w || w == 0)
		return 0;
	if (c->best == GVS_DEST_NONE || w > c->bw) {
		c->best = id;
		c->bw = w;
	}
	return 0;
}

#define SCHED_WALK(name, cb)                                            \
__gvs_subprog __u32 name(const struct gvs_svc *svc)                     \
{                                                                       \
	struct walk_ctx c = { SVC_LIST(svc), .best = GVS_DEST_NONE };      \
									\
	bpf_loop(svc_ndests(svc), cb, &c, 0);                           \
	return c.best;                                                  \
}

SCHED_WALK(sched_lc, lc_cb)
SCHED_WALK(sched_nq, nq_cb)
SCHED_WALK(sched_fo, fo_cb)
SCHED_WALK(sched_ovf, ovf_cb)

/* ---- twos ---- */

struct twos_ctx {
	const struct gvs_svc *svc;
	const struct gvs_chunk *chunk;
	__u32 total;      /* int32 in the model, wrapping: kept unsigned */
	__u32 choice1;
	__u32 choice2;
	__s32 r1, r2;
	__s32 w1, w2;
	__s32 oh1, oh2;
	__u32 at;
};

static long twos_sum_cb(__u64 i, void *vc)
{
	struct twos_ctx *c = vc;
	__u32 id = svc_dest_id(c, i);
	struct gvs_dest *d = dest_get(id);

	if (d && dest_usable(d)) {
		c->total += (__u32)RD(d->weight);
		c->choice1 = id;
	}
	return 0;
}

static long twos_pick_cb(__u64 i, void *vc)
{
	struct twos_ctx *c = vc;
	__u32 id = svc_dest_id(c, i);
	struct gvs_dest *d = dest_get(id);

	if (!d || !dest_usable(d))
		return 0;
	__s32 w = RD(d->weight);
	c->r1 = (__s32)((__u32)c->r1 - (__u32)w);
	c->r2 = (__s32)((__u32)c->r2 - (__u32)w);
	if (c->r1 <= 0 && c->w1 == -1) {
		c->choice1 = id;
		c->w1 = w;
		c->oh1 = (__s32)dest_overhead(d);
	}
	if (c->r2 <= 0 && c->w2 == -1) {
		c->choice2 = id;
		c->w2 = w;
		c->oh2 = (__s32)dest_overhead(d);
	}
	if (c->w1 != -1 && c->w2 != -1)
		return 1;
	return 0;
}

__gvs_subprog __u32 sched_twos(const struct gvs_svc *svc)
{
	struct twos_ctx c = {
		SVC_LIST(svc), .choice1 = GVS_DEST_NONE, .choice2 = GVS_DEST_NONE,
		.w1 = -1, .w2 = -1,
	};
	__u32 n = svc_ndests(svc);

	bpf_loop(n, twos_sum_cb, &c, 0);
	if (c.choice1 == GVS_DEST_NONE)
		return GVS_DEST_NONE;
	c.total += 1;
	if (c.total == 0)
		return GVS_DEST_NONE; /* the model would divide by zero */
	c.r1 = (__s32)(bpf_get_prandom_u32() % c.total);
	c.r2 = (__s32)(bpf_get_prandom_u32() % c.total);
	bpf_loop(n, twos_pick_cb, &c, 0);
	if (c.choice2 != GVS_DEST_NONE && mul32(c.w2, c.oh1) > mul32(c.w1, c.oh2))
		return c.choice2;
	return c.choice1;
}

/* ---- rr ---- */

struct rr_ctx {
	const struct gvs_svc *svc;
	const struct gvs_chunk *chunk;
	__u32 n;
	__u32 start;
	__s32 idx;
	__u32 best;
	__u32 at;
};

static long rr_cb(__u64 k, void *vc)
{
	struct rr_ctx *c = vc;

	if (c->n == 0)
		return 1;
	__u32 i = (c->start + (__u32)k) % c->n;
	__u32 id = svc_dest_id(c, i);
	struct gvs_dest *d = dest_get(id);

	if (d && dest_usable(d)) {
		c->idx = i;
		c->best = id;
		return 1;
	}
	return 0;
}

/* rr and wrr look their state up themselves: a key on gvs_schedule's
 * stack would put the lblcr chain over 512 bytes. */
__gvs_subprog __u32 sched_rr(const struct gvs_svc *svc)
{
	__u32 sid = svc->id;
	struct gvs_sched_state *st = bpf_map_lookup_elem(&sched_state, &sid);

	if (!st)
		return GVS_DEST_NONE;
	__s32 last = RD(st->rr_last);
	struct rr_ctx c = {
		SVC_LIST(svc), .n = svc_ndests(svc),
		.start = last < -1 ? 0 : (__u32)(last + 1),
		.idx = -1, .best = GVS_DEST_NONE,
	};

	bpf_loop(c.n, rr_cb, &c, 0);
	if (c.best != GVS_DEST_NONE)
		st->rr_last = c.idx;
	return c.best;
}

/* ---- wrr ----
 * sched/rr.go's weightedRoundRobin.Schedule as a state machine: one
 * callback step examines one list index, or ends a pass. Passes that
 * cannot choose anything (cw above the largest weight of a server that is
 * not overloaded, no stop index pending, no wrap) only lower cw by di; they
 * are skipped in one step, which bounds the walk to a few passes whatever
 * the weights, and leaves cl/cw exactly where the model's loop would. */

struct wrr_ctx {
	const struct gvs_svc *svc;
	const struct gvs_chunk *chunk;
	__s64 n;
	__s64 start;   /* position of the first step: cl + 1 */
	__s64 last;
	__s64 stop;
	__s32 cw, mw, di, maxw;
	__s32 cl;
	__u32 best;
	__u32 done;
	__u8 last_pass;
	__u8 restarted;
	__u8 pad[2];
	__u32 at;
};

static long wrr_max_cb(__u64 i, void *vc)
{
	struct wrr_ctx *c = vc;
	struct gvs_dest *d = dest_get(svc_dest_id(c, i));

	if (d && !dest_overloaded(d) && RD(d->weight) > c->maxw)
		c->maxw = RD(d->weight);
	return 0;
}

static __always_inline void wrr_after_pass(struct wrr_ctx *c)
{
	c->last_pass = c->cw <= c->di;
	if (c->last_pass && c->restarted && c->last != -1)
		c->stop = c->last;
}

static long wrr_cb(__u64 k, void *vc)
{
	struct wrr_ctx *c = vc;

	/* Step k is position (start + k) mod (n + 1) of the cyclic walk, n
	 * being the end of a pass. Deriving the index from k (not from a
	 * counter in *c) keeps the verifier from tracking every value. */
	if (c->n <= 0)
		return 1;
	__u64 i = ((__u64)c->start + k) % ((__u64)c->n + 1);
	if (i < (__u64)c->n) {
		__u32 id = list_dest_id_once(c->svc, i);
		struct gvs_dest *d = dest_get(id);

		if (d && !dest_overloaded(d) && RD(d->weight) >= c->cw) {
			c->cl = i;
			c->best = id;
			c->done = 1;
			return 1;
		}
		if ((__s64)i == c->stop) {
			c->cl = i;
			c->done = 1;
			return 1;
		}
		return 0;
	}
	/* End of a pass. */
	c->cw -= c->di;
	if (c->cw <= 0) {
		c->cw = c->mw;
		if (c->last_pass || c->last == -1) {
			c->cl = -1;
			c->done = 1;
			return 1;
		}
		c->restarted = 1;
	}
	wrr_after_pass(c);
	/* Skip the passes that can only lower cw. */
	if (c->stop == -2 && c->cw > c->maxw) {
		__u64 cw = c->cw, di = c->di, mx = c->maxw;
		__u64 t1 = (cw - mx - 1) / di + 1;
		__u64 t2 = (cw - 1) / di;
		__u64 t = t1 < t2 ? t1 : t2;

		if (t >= 1) {
			c->cw = (__s32)(cw - t * di);
			wrr_after_pass(c);
		}
	}
	return 0;
}

__gvs_subprog __u32 sched_wrr(const struct gvs_svc *svc)
{
	__u32 sid = svc->id;
	struct gvs_sched_state *st = bpf_map_lookup_elem(&sched_state, &sid);

	if (!st)
		return GVS_DEST_NONE;
	struct wrr_ctx c = {
		SVC_LIST(svc), .n = svc_ndests(svc), .stop = -2,
		.cw = RD(st->wrr_cw), .mw = RD(st->wrr_mw), .di = RD(st->wrr_di),
		.cl = RD(st->wrr_cl), .best = GVS_DEST_NONE,
	};

	if (c.mw == 0)
		return GVS_DEST_NONE;
	if (c.di < 1)
		c.di = 1; /* userspace always sets di >= 1, as Update does */
	c.last = c.cl;
	c.start = c.cl < -1 ? 0 : (__s64)c.cl + 1;
	if (c.start > c.n)
		c.start = c.n; /* a stale position: the first pass is empty */
	bpf_loop(c.n, wrr_max_cb, &c, 0);
	bpf_loop(6 * (c.n + 1) + 8, wrr_cb, &c, 0);
	st->wrr_cl = c.cl;
	st->wrr_cw = c.cw;
	return c.best;
}

/* ---- dh, sh: 256-bucket tables, hash_32 of the folded address ---- */

static __always_inline __u32 hash32(__u32 v, int nbits)
{
	return (v * 0x61C88647u) >> (32 - nbits);
}

static __always_inline __u32 table_get(void *map, __u32 idx)
{
	__u32 *v = bpf_map_lookup_elem(map, &idx);

	return v ? *v : GVS_DEST_NONE;
}

__gvs_subprog __u32 sched_dh(const struct gvs_svc *svc, const struct gvs_pkt *p)
{
	__u32 slot = svc->table_slot;

	if (slot >= GVS_HASH_SLOTS)
		return GVS_DEST_NONE;
	__u32 id = table_get(&hash_tables, slot * GVS_HASH_TABLE +
				 hash32(bpf_ntohl(p->daddr), 8));
	struct gvs_dest *d = dest_get(id);

	if (!d || !(RD(d->flags) & GVS_DEST_F_AVAILABLE) || !dest_usable(d))
		return GVS_DEST_NONE;
	return id;
}

/* sh/mh hash the source port with SCHED2 for TCP, UDP (and SCTP). */
static __always_inline __u32 hash_port(const struct gvs_svc *svc, const struct gvs_pkt *p)
{
	if ((svc->flags & GVS_SVC_F_SCHED2) &&
	    (p->proto == IPPROTO_TCP || p->proto == IPPROTO_UDP))
		return bpf_ntohs(p->sport);
	return 0;
}

struct fb_ctx {
	__u32 row;    /* first table index of the service's row */
	__u32 ihash;  /* the original bucket */
	__u32 h;      /* sh: hash without offset; mh: port + folded address */
	__u32 size;
	__u32 best;
	__u32 pad;
};

/* sh fallback: walk from the original bucket, hashing again with the walk
 * position as offset (the offset counts twice, as in the kernel). */
static long sh_fb_cb(__u64 off, void *vc)
{
	struct fb_ctx *c = vc;
	__u32 roffset = ((__u32)off + c->ihash) % GVS_HASH_TABLE;
	__u32 id = table_get(&hash_tables, c->row + (roffset + c->h) % GVS_HASH_TABLE);

	if (id == GVS_DEST_NONE)
		return 1;
	struct gvs_dest *d = dest_get(id);
	if (d && dest_usable(d)) {
		c->best = id;
		return 1;
	}
	return 0;
}

__gvs_subprog __u32 sched_sh(const struct gvs_svc *svc, const struct gvs_pkt *p)
{
	__u32 slot = svc->table_slot;

	if (slot >= GVS_HASH_SLOTS)
		return GVS_DEST_NONE;
	struct fb_ctx c = { .row = slot * GVS_HASH_TABLE, .best = GVS_DEST_NONE };
	c.h = hash32(hash_port(svc, p) + bpf_ntohl(p->saddr), 8);
	c.ihash = c.h % GVS_HASH_TABLE;
	__u32 id = table_get(&hash_tables, c.row + c.ihash);
	struct gvs_dest *d = dest_get(id);

	if (!(svc->flags & GVS_SVC_F_SCHED1))
		return d && dest_usable(d) ? id : GVS_DEST_NONE;
	if (id == GVS_DEST_NONE)
		return GVS_DEST_NONE;
	if (d && dest_usable(d))
		return id;
	bpf_loop(GVS_HASH_TABLE, sh_fb_cb, &c, 0);
	return c.best;
}

/* ---- mh: Maglev table, hsiphash (SipHash-1-3 on 64-bit kernels) ---- */

static __always_inline __u64 rol64(__u64 w, int s)
{
	return (w << s) | (w >> (64 - s));
}

#define SIPROUND                                                        \
	do {                                                            \
		v0 += v1; v1 = rol64(v1, 13); v1 ^= v0; v0 = rol64(v0, 32); \
		v2 += v3; v3 = rol64(v3, 16); v3 ^= v2;                 \
		v0 += v3; v3 = rol64(v3, 21); v3 ^= v0;                 \
		v2 += v1; v1 = rol64(v1, 17); v1 ^= v2; v2 = rol64(v2, 32); \
	} while (0)

/* hsiphash() of one 4-byte value with the key (k, k), as sched/hash.go. */
static __always_inline __u32 hsiphash32(__u32 v, __u64 k)
{
	__u64 v0 = 0x736f6d6570736575ULL ^ k;
	__u64 v1 = 0x646f72616e646f6dULL ^ k;
	__u64 v2 = 0x6c7967656e657261ULL ^ k;
	__u64 v3 = 0x7465646279746573ULL ^ k;
	__u64 b = (4ULL << 56) | v;

	v3 ^= b;
	SIPROUND;
	v0 ^= b;
	v2 ^= 0xff;
	SIPROUND;
	SIPROUND;
	SIPROUND;
	return (__u32)((v0 ^ v1) ^ (v2 ^ v3));
}

#define MH_KEY1 2654435761ULL

static long mh_fb_cb(__u64 off, void *vc)
{
	struct fb_ctx *c = vc;
	__u32 roffset = ((__u32)off + c->ihash) % GVS_MH_TABLE;
	__u32 id = table_get(&mh_tables, c->row + hsiphash32(roffset + c->h, MH_KEY1) % GVS_MH_TABLE);

	if (id == GVS_DEST_NONE)
		return 1;
	struct gvs_dest *d = dest_get(id);
	if (d && dest_usable(d)) {
		c->best = id;
		return 1;
	}
	return 0;
}

__gvs_subprog __u32 sched_mh(const struct gvs_svc *svc, const struct gvs_pkt *p)
{
	__u32 slot = svc->table_slot;

	if (slot >= GVS_MH_SLOTS)
		return GVS_DEST_NONE;
	struct fb_ctx c = { .row = slot * GVS_MH_TABLE, .best = GVS_DEST_NONE };
	c.h = hash_port(svc, p) + bpf_ntohl(p->saddr);
	c.ihash = hsiphash32(c.h, MH_KEY1) % GVS_MH_TABLE;
	__u32 id = table_get(&mh_tables, c.row + c.ihash);
	struct gvs_dest *d = dest_get(id);

	if (!(svc->flags & GVS_SVC_F_SCHED1))
		return d && dest_usable(d) ? id : GVS_DEST_NONE;
	if (id == GVS_DEST_NONE)
		return GVS_DEST_NONE;
	if (d && dest_usable(d))
		return id;
	bpf_loop(GVS_MH_TABLE, mh_fb_cb, &c, 0);
	return c.best;
}

/* ---- lblc, lblcr ---- */

struct ovl_ctx {
	const struct gvs_svc *svc;
	const struct gvs_chunk *chunk;
	__u32 found;
	__u32 at;
};

static long lblc_ovl_cb(__u64 i, void *vc)
{
	struct ovl_ctx *c = vc;
	struct gvs_dest *o = dest_get(svc_dest_id(c, i));

	if (o && (__s64)RD(o->activeconns) * 2 < (__s64)RD(o->weight)) {
		c->found = 1;
		return 1;
	}
	return 0;
}

/* is_overloaded of ip_vs_lblc.c: more active connections than weight,
 * while some server of the service is below half its weight. */
static __always_inline int lblc_overloaded(const struct gvs_svc *svc, const struct gvs_dest *d)
{
	if ((__s64)RD(d->activeconns) <= (__s64)RD(d->weight))
		return 0;
	struct ovl_ctx c = { SVC_LIST(svc) };
	bpf_loop(svc_ndests(svc), lblc_ovl_cb, &c, 0);
	return c.found;
}

/* The destination of the IPv6 packet being scheduled, written by
 * xdp_gvs6 (v6.h): its IPv4-shaped gvs_pkt (ihl 0) carries only the
 * address's fold, and lblc and lblcr key IPv6 entries by the whole
 * address, as the kernel does. */
struct gvs_daddr6 {
	__u32 a[4];
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct gvs_daddr6);
} sched_daddr6 SEC(".maps");

static __always_inline void lblc_key_init(struct gvs_lblc_key *k, __u32 svc, const struct gvs_pkt *p)
{
	__u32 zero = 0;

	__builtin_memset(k, 0, sizeof(*k));
	k->svc = svc;
	k->addr[0] = p->daddr;
	if (p->ihl)
		return; /* IPv4 */
	struct gvs_daddr6 *d = bpf_map_lookup_elem(&sched_daddr6, &zero);
	if (d) {
		k->addr[0] = d->a[0];
		k->addr[1] = d->a[1];
		k->addr[2] = d->a[2];
		k->addr[3] = d->a[3];
	}
}

__gvs_subprog __u32 sched_lblc(const struct gvs_svc *svc, const struct gvs_pkt *p, __u64 now)
{
	struct gvs_lblc_key k;
	lblc_key_init(&k, svc->id, p);
	struct gvs_lblc *en = bpf_map_lookup_elem(&lblc, &k);

	if (en) {
		en->lastuse = now;
		__u32 id = RD(en->dest);
		struct gvs_dest *d = dest_get(id);
		if (d && (RD(d->flags) & GVS_DEST_F_AVAILABLE) && RD(d->weight) > 0 &&
		    !lblc_overloaded(svc, d))
			return id;
	}
	__u32 id = sched_weighted_least(svc, OH_CONN);
	if (id == GVS_DEST_NONE)
		return id;
	if (en && RD(en->dest) == id)
		return id;
	struct gvs_lblc nv = { .lastuse = now, .dest = id };
	bpf_map_update_elem(&lblc, &k, &nv, BPF_ANY);
	return id;
}

/* ip_vs_dest_set_min: least overhead/weight among usable, available members. */
static __always_inline __u32 lblcr_set_min(struct gvs_lblcr *en)
{
	__u32 n = RD(en->n), least = GVS_DEST_NONE;
	__s64 loh = 0;
	__s32 lw = 0;

#pragma unroll
	for (int j = 0; j < GVS_LBLCR_SET; j++) {
		if (j >= n)
			break;
		__u32 id = en->dests[j];
		struct gvs_dest *d = dest_get(id);
		if (!d)
			continue;
		__u32 fl = RD(d->flags);
		__s32 w = RD(d->weight);
		if (least == GVS_DEST_NONE) {
			if (!(fl & GVS_DEST_F_OVERLOAD) && w > 0 && (fl & GVS_DEST_F_AVAILABLE)) {
				least = id;
				loh = dest_overhead(d);
				lw = w;
			}
			continue;
		}
		if (fl & GVS_DEST_F_OVERLOAD)
			continue;
		__s64 doh = dest_overhead(d);
		if (mul64(loh, w) > mul64(doh, lw) && (fl & GVS_DEST_F_AVAILABLE)) {
			least = id;
			loh = doh;
			lw = w;
		}
	}
	return least;
}

/* ip_vs_dest_set_max: most overhead/weight among members with weight > 0. */
static __always_inline __u32 lblcr_set_max(struct gvs_lblcr *en)
{
	__u32 n = RD(en->n), most = GVS_DEST_NONE;
	__s64 moh = 0;
	__s32 mw = 0;

#pragma unroll
	for (int j = 0; j < GVS_LBLCR_SET; j++) {
		if (j >= n)
			break;
		__u32 id = en->dests[j];
		struct gvs_dest *d = dest_get(id);
		if (!d)
			continue;
		__s32 w = RD(d->weight);
		if (most == GVS_DEST_NONE) {
			if (w > 0) {
				most = id;
				moh = dest_overhead(d);
				mw = w;
			}
			continue;
		}
		__s64 doh = dest_overhead(d);
		if (mul64(moh, w) < mul64(doh, mw) && w > 0) {
			most = id;
			moh = doh;
			mw = w;
		}
	}
	return most;
}

static __always_inline void lblcr_erase(struct gvs_lblcr *en, __u32 id, __u64 now)
{
	__u32 n = RD(en->n);
	int found = 0;

	if (n > GVS_LBLCR_SET)
		n = GVS_LBLCR_SET;
#pragma unroll
	for (int j = 0; j < GVS_LBLCR_SET; j++) {
		if (j >= n)
			break;
		if (!found && en->dests[j] == id)
			found = 1;
		if (found && j + 1 < GVS_LBLCR_SET)
			en->dests[j] = en->dests[j + 1];
	}
	if (found) {
		en->n = n - 1;
		en->lastmod = now;
	}
}

/* Insert at the head (newest first). The kernel's set is unbounded; here
 * it holds GVS_LBLCR_SET members and a full set drops its oldest. */
static __always_inline void lblcr_insert(struct gvs_lblcr *en, __u32 id, __u64 now)
{
	__u32 n = RD(en->n);

	if (n > GVS_LBLCR_SET)
		n = GVS_LBLCR_SET;
#pragma unroll
	for (int j = 0; j < GVS_LBLCR_SET; j++) {
		if (j >= n)
			break;
		if (en->dests[j] == id)
			return;
	}
#pragma unroll
	for (int j = GVS_LBLCR_SET - 1; j > 0; j--)
		en->dests[j] = en->dests[j - 1];
	en->dests[0] = id;
	en->n = n < GVS_LBLCR_SET ? n + 1 : GVS_LBLCR_SET;
	en->lastmod = now;
}

__gvs_subprog __u32 sched_lblcr(const struct gvs_svc *svc, const struct gvs_pkt *p,
					 __u64 now, const struct gvs_config *cfg)
{
	struct gvs_lblc_key k;
	lblc_key_init(&k, svc->id, p);
	struct gvs_lblcr *en = bpf_map_lookup_elem(&lblcr, &k);
	__u64 exp = cfg->lblcr_expiration ? (__u64)cfg->lblcr_expiration * NS_PER_SEC
					  : 24ULL * 3600 * NS_PER_SEC;

	if (en) {
		en->lastuse = now;
		__u32 id = lblcr_set_min(en);
		if (RD(en->n) > 1 && now > RD(en->lastmod) + exp) {
			__u32 m = lblcr_set_max(en);
			if (m != GVS_DEST_NONE)
				lblcr_erase(en, m, now);
		}
		if (id != GVS_DEST_NONE) {
			struct gvs_dest *d = dest_get(id);
			if (d && !lblc_overloaded(svc, d))
				return id;
		}
		id = sched_weighted_least(svc, OH_CONN);
		if (id == GVS_DEST_NONE)
			return id;
		lblcr_insert(en, id, now);
		return id;
	}
	__u32 id = sched_weighted_least(svc, OH_CONN);
	if (id == GVS_DEST_NONE)
		return id;
	struct gvs_lblcr nv = { .lastuse = now, .lastmod = now, .n = 1, .dests = { id } };
	bpf_map_update_elem(&lblcr, &k, &nv, BPF_ANY);
	return id;
}

/* ---- dispatch ---- */

/* gvs_schedule picks a server for a new connection of svc, or returns
 * GVS_DEST_NONE. A global function: the verifier checks it once, not at
 * each of its three call sites. */
__attribute__((noinline)) __u32 gvs_schedule(const struct gvs_svc *svc, const struct gvs_pkt *p,
					     __u64 now, const struct gvs_config *cfg)
{
	if (!svc || !p || !cfg)
		return GVS_DEST_NONE;
	switch (svc->sched) {
	case GVS_SCHED_RR:
		return sched_rr(svc);
	case GVS_SCHED_WRR:
		return sched_wrr(svc);
	case GVS_SCHED_LC:
		return sched_lc(svc);
	case GVS_SCHED_WLC:
		return sched_weighted_least(svc, OH_CONN);
	case GVS_SCHED_SED:
		return sched_weighted_least(svc, OH_SED);
	case GVS_SCHED_NQ:
		return sched_nq(svc);
	case GVS_SCHED_FO:
		return sched_fo(svc);
	case GVS_SCHED_OVF:
		return sched_ovf(svc);
	case GVS_SCHED_TWOS:
		return sched_twos(svc);
	case GVS_SCHED_DH:
		return sched_dh(svc, p);
	case GVS_SCHED_SH:
		return sched_sh(svc, p);
	case GVS_SCHED_MH:
		return sched_mh(svc, p);
	case GVS_SCHED_LBLC:
		return sched_lblc(svc, p, now);
	case GVS_SCHED_LBLCR:
		return sched_lblcr(svc, p, now, cfg);
	}
	return GVS_DEST_NONE;
}

#endif
