//go:build ignore

// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * gvs XDP data path: IPv4, TCP and UDP, forwarded by direct routing,
 * IP-in-IP tunnelling, NAT and FULLNAT; SCTP too (sctp.h). What happens to a packet from a
 * client is ipvs/packet.go's In:
 *
 *   known connection  -> dropped if its server is gone, else counted, its
 *                        TCP state moved (input-only table), its timer
 *                        refreshed, forwarded;
 *   new connection    -> for a virtual service only (else passed untouched),
 *                        TCP only on SYN without RST, SCTP only on an
 *                        INIT (sctp_conn_schedule); scheduled with
 *                        persistence and the service's scheduler; no
 *                        server: ICMP port unreachable (ip_vs_leave);
 *                        else the connection is created and forwarded.
 *
 * A packet from a NAT/FULLNAT server that matches a connection's reply
 * entry is Out: counted, its TCP state moved (output table), translated
 * back to the virtual service and routed to the client. ICMP errors about
 * a connection, either way, are translated (inner header too) and follow
 * it.
 *
 * Nothing is dropped that the kernel would not drop: malformed, truncated,
 * fragmented and foreign packets pass to the stack. gvsd fills the
 * services, servers, scheduler tables and settings, and sweeps expired
 * entries (see conn.h for who owns an entry's counts).
 */
#include <linux/bpf.h>
#include <linux/in.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#include "gvs.h"
#include "maps.h"
#include "parse.h"
#include "csum.h"
#include "sched.h"
#include "conn.h"
#include "fwd.h"
#include "nat.h"
#include "sync.h"
#include "fwmark.h"
#include "progs.h"

char _license[] SEC("license") = "Dual BSD/GPL";

#define GVS_NEW_RACE (-1) /* another CPU created the connection first */
#define GVS_NEW_ICMP (-3) /* schedule_icmp: connection made, error not sent */
#define ICMP_IN      (-4) /* icmp_conn: an error about a reply, see w->key */
#define ICMP_CONN_TIMEOUT 3 /* s: a connection schedule_icmp made */

/* A packet's working state. It lives in a per-CPU map, not on the stack:
 * the deepest call chain (new connection, scheduler, its bpf_loop
 * callback) must fit the 512 bytes BPF gives all frames together. An XDP
 * program runs to completion on its CPU before the next starts. */
struct gvs_work {
	struct gvs_pkt p;
	struct gvs_conn_key key; /* the packet's 5-tuple */
	struct gvs_conn_key tk;  /* its persistence template's key */
	struct gvs_conn_key rk;  /* a new NAT connection's reply key */
	struct gvs_reply rv;     /* and its value */
	struct gvs_conn nc;      /* a new connection */
	struct gvs_sched_state ss; /* rr/wrr position before scheduling */
	__u32 mark;              /* a frame from netfilter: its fwmark */
	/* schedule_icmp: in_new runs on the error's quote turned around (a
	 * client's packet to the virtual service) while the packet as
	 * parsed waits here. */
	struct gvs_pkt orig;
	__u8 icmp;
	__u8 exact; /* svc_find: the service has the packet's port */
	__u8 revive; /* in_new: an evicted handshake made again, to: */
	__u8 revive_state; /* from this state */
	__u32 revive_dest;
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct gvs_work);
} work SEC(".maps");

/* What a template lookup decided (ip_vs_sched_persist). */
enum {
	SP_OK = 0,
	SP_REJECT,      /* no server */
	SP_FULL,        /* template table full */
	SP_UNSUPPORTED, /* the server is of a method or family not forwarded */
	SP_BUSY,        /* another CPU is making the template */
};

/* Whether the data path forwards to d: servers of the service's family
 * (a stale or foreign entry must not send IPv4 packets to the first word
 * of an IPv6 address), or of the other one by TUN (tun46.h), or an IPv6
 * service's IPv4 FULLNAT ones (nat64.h), by a method it implements. */
static __always_inline int fwd_supported_af(const struct gvs_dest *d, __u8 af)
{
	if (d->af != af) {
		/* TUN between the families; NAT64: an IPv6 service's IPv4
		 * FULLNAT server. */
		if (d->method == GVS_FWD_TUNNEL)
			return d->af == 4 || d->af == 6;
		return af == 6 && d->af == 4 && d->method == GVS_FWD_FULLNAT;
	}
	return d->method == GVS_FWD_ROUTE || d->method == GVS_FWD_TUNNEL ||
	       d->method == GVS_FWD_MASQ || d->method == GVS_FWD_FULLNAT;
}

static __always_inline int fwd_supported(const struct gvs_dest *d)
{
	return fwd_supported_af(d, 4);
}

static __always_inline int is_nat_method(__u8 m)
{
	return m == GVS_FWD_MASQ || m == GVS_FWD_FULLNAT;
}

static __always_inline int is_nat(const struct gvs_dest *d)
{
	return is_nat_method(d->method);
}

/* Forward a client's packet of connection c to server d, by the method c
 * was created with. */
static __always_inline int fwd(struct xdp_md *ctx, const struct gvs_pkt *p,
			       const struct gvs_dest *d, const struct gvs_conn *c,
			       const struct gvs_config *cfg, __u64 now)
{
	__u8 m = RD(c->method);

	if (m == GVS_FWD_TUNNEL)
		return fwd_tun_any(ctx, p, d, cfg, now);
	if (d->af != 4) {
		ev_inc(GVS_EV_FAMILY);
		return XDP_PASS;
	}
	if (m == GVS_FWD_ROUTE)
		return fwd_dr(ctx, p, d, now);
	if (!is_nat_method(m)) {
		ev_inc(GVS_EV_FWD_UNSUPPORTED);
		return XDP_PASS;
	}
	struct nat_xlate x = {
		.saddr = p->saddr,
		.daddr = d->addr[0],
		.sport = p->sport,
		.dport = c->rport,
		.icmp_src = p->daddr,
	};
	if (m == GVS_FWD_FULLNAT) {
		x.saddr = c->laddr[0];
		x.sport = c->lport;
	}
	xlate_hop(&x, d);
	return nat_xmit(ctx, p, &x, now, 0);
}

/* How long a reservation (an entry whose dest is GVS_DEST_NONE) may live:
 * the program that made it fills it within its run, so one still there
 * after this was abandoned (gvsd's sweep took the entry meanwhile and put
 * a copy back) and is removed, unbound, by whoever meets it. */
#define RESERVATION_NS (10 * NS_PER_SEC)

static __always_inline int persist_check(__u32 id, __u32 *did, __u8 af)
{
	struct gvs_dest *d = dest_get(id);

	if (!d)
		return SP_REJECT;
	if (!fwd_supported_af(d, af))
		return SP_UNSUPPORTED;
	*did = id;
	return SP_OK;
}

/* Making room in a full template table: without gvsd's sweep, nothing
 * else removes the templates of clients that do not come back. A bounded
 * walk of the table (in its hash order, which a removal reshuffles
 * little) removes the expired ones nothing holds. */
#define TMPL_SCAN_MAX  256
#define TMPL_SCAN_FREE 4

struct tmpl_scan {
	__u64 now;
	__u32 visited;
	__u32 freed;
};

/* The walk's state, in a map: on the stack the verifier would follow its
 * count through every step of the walk (the callback gets a pointer to
 * it, as its context must be on the stack). */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct tmpl_scan);
} tmpl_scratch SEC(".maps");

static long tmpl_visit(void *map, struct gvs_conn_key *k, struct gvs_template *t,
		       struct tmpl_scan **sp)
{
	struct tmpl_scan *s = *sp;

	if (RD(t->expires) <= s->now) {
		if (RD(t->dest) == GVS_DEST_NONE) {
			/* An abandoned reservation bound nothing. */
			if (!bpf_map_delete_elem(&templates, k))
				s->freed++;
		} else if (RD(t->n_control) == 0 &&
			   __sync_val_compare_and_swap(&t->n_control, 0, TMPL_DEAD) == 0) {
			tmpl_remove(k, t);
			s->freed++;
		}
	}
	return ++s->visited >= TMPL_SCAN_MAX || s->freed >= TMPL_SCAN_FREE;
}

/* The templates freed (counted as reclaimed). */
__gvs_subprog int tmpl_reclaim(__u64 now)
{
	__u32 zero = 0;
	struct tmpl_scan *s = bpf_map_lookup_elem(&tmpl_scratch, &zero);

	if (!s)
		return 0;
	s->now = now;
	s->visited = 0;
	s->freed = 0;
	bpf_for_each_map_elem(&templates, tmpl_visit, &s, 0);
	__u32 freed = s->freed;
	if (freed)
		ev_add(GVS_EV_TMPL_RECLAIMED, freed);
	return freed;
}

static __always_inline int sched_persist(const struct gvs_svc *svc, const struct gvs_pkt *p,
					 struct gvs_conn_key *tk, __u64 now,
					 const struct gvs_config *cfg, __u32 *did, int *created, __u8 af)
{
	struct gvs_template *t = bpf_map_lookup_elem(&templates, tk);

	if (t && RD(t->dest) == GVS_DEST_NONE) {
		if (RD(t->expires) > now)
			return SP_BUSY;
		bpf_map_delete_elem(&templates, tk); /* abandoned: bound nothing */
		t = 0;
	}
	if (t && RD(t->expires) <= now) {
		if (RD(t->n_control) > 0) {
			/* ip_vs_conn_expire: still controls connections,
			 * 60 more seconds. */
			t->timeout = 60;
			t->expires = now + 60 * NS_PER_SEC;
		} else {
			tmpl_kill(tk, t);
			t = 0;
		}
	}
	if (t) {
		__u32 old = RD(t->dest);
		struct gvs_dest *od = dest_get(old);

		if (od && (RD(od->flags) & GVS_DEST_F_AVAILABLE) &&
		    !(cfg->expire_quiescent_template && RD(od->weight) == 0))
			return persist_check(old, did, af);
		/* ip_vs_check_template failed: a new template replaces it.
		 * It is rewritten in place (its n_control, the connections
		 * still controlled by key, carries over). */
		__u32 id = gvs_schedule(svc, p, now, cfg);
		struct gvs_dest *nd = dest_get(id);
		if (!nd)
			return SP_REJECT;
		if (!fwd_supported_af(nd, af))
			return SP_UNSUPPORTED;
		if (__sync_val_compare_and_swap(&t->dest, old, id) == old) {
			if (od)
				dest_unbind(od, BIND_TEMPLATE);
			dest_bind(nd, BIND_TEMPLATE);
			t->svc = svc->id;
			t->timeout = svc->timeout;
			*did = id;
			return SP_OK;
		}
		return persist_check(RD(t->dest), did, af);
	}

	/* No template: its entry goes in first, so a full table refuses
	 * the packet before the scheduler moves; it is published (dest set)
	 * once a server is chosen. */
	struct gvs_template nt = {
		.expires = now + RESERVATION_NS,
		.dest = GVS_DEST_NONE,
		.svc = svc->id,
		.n_control = 0,
		.timeout = svc->timeout,
	};
	long err = bpf_map_update_elem(&templates, tk, &nt, BPF_NOEXIST);
	if (err && err != -17 && tmpl_reclaim(now))
		err = bpf_map_update_elem(&templates, tk, &nt, BPF_NOEXIST);
	if (err == -17 /* EEXIST */) {
		t = bpf_map_lookup_elem(&templates, tk);
		if (t && RD(t->dest) != GVS_DEST_NONE)
			return persist_check(RD(t->dest), did, af);
		return SP_BUSY;
	}
	if (err)
		return SP_FULL;
	t = bpf_map_lookup_elem(&templates, tk);
	if (!t)
		return SP_BUSY;
	__u32 id = gvs_schedule(svc, p, now, cfg);
	struct gvs_dest *nd = dest_get(id);
	if (!nd || !fwd_supported_af(nd, af)) {
		bpf_map_delete_elem(&templates, tk);
		return nd ? SP_UNSUPPORTED : SP_REJECT;
	}
	dest_bind(nd, BIND_TEMPLATE);
	t->expires = now + (__u64)svc->timeout * NS_PER_SEC;
	__sync_val_compare_and_swap(&t->dest, GVS_DEST_NONE, id);
	*did = id;
	*created = 1;
	return SP_OK;
}

/* A packet of a known connection. */
static __always_inline int in_conn(struct xdp_md *ctx, const struct gvs_pkt *p,
				   struct gvs_conn_key *key, struct gvs_conn *c, __u64 now,
				   const struct gvs_timeouts *to, const struct gvs_config *cfg)
{
	__u32 did = RD(c->dest);
	struct gvs_dest *d = dest_get(did);

	if (!d || !(RD(d->flags) & GVS_DEST_F_AVAILABLE)) {
		if (cfg->expire_nodest_conn)
			conn_remove(key, c);
		ev_inc(GVS_EV_DROP_NODEST);
		return XDP_DROP;
	}
	stats_in(RD(c->svc), did, p->tot_len, 0);
	if (p->frag != GVS_FRAG_LATER) /* no TCP flags to move the state by */
		conn_set_state(c, d, p, to, 0);
	c->expires = now + (__u64)RD(c->timeout) * NS_PER_SEC;
	if (cfg->sync_master)
		sync_note(key, c, cfg);
	return fwd(ctx, p, d, c, cfg, now);
}

/* Arm reply entry r of connection c (key fk, server d) for reply_fast,
 * once nothing a reply brings can move the connection's state: UDP, or
 * TCP ESTABLISHED (whose replies' plain ACKs leave it there; SYN, FIN and
 * RST still come by out_conn). IPv4 only; a connection another CPU is
 * removing, a one-packet datagram's, or one whose next hop is not learnt
 * for this generation stays slow. A state change racing this can arm a
 * connection that just left ESTABLISHED: its replies then refresh it by
 * the old state's timeout until its next state change clears it. */
static __always_inline void reply_arm(struct gvs_reply *r, const struct gvs_conn_key *fk,
				      struct gvs_conn *c, __u32 did, const struct gvs_dest *d,
				      const struct gvs_pkt *p, const struct gvs_config *cfg)
{
	__u8 fl = RD(c->flags);

	if (RD(r->fast) || fk->af != 4 || d->af != 4 ||
	    (fl & (GVS_CONN_F_DYING | GVS_CONN_F_ONEPKT)) || !(fl & GVS_CONN_F_REPLIED))
		return;
	if (!(p->proto == IPPROTO_UDP ||
	      (p->proto == IPPROTO_TCP && RD(c->state) == GVS_S_ESTABLISHED)))
		return;
	if (cfg->hop_gen && RD(c->hop_gen) != cfg->hop_gen)
		return;
	if (!conn_key_eq(&r->fk, fk)) /* the entry is another connection's now */
		return;
	r->svc = RD(c->svc);
	r->dest = did;
	r->timeout = RD(c->timeout);
	r->laddr = c->laddr[0];
	r->lport = c->lport;
	r->rport = c->rport;
	r->hop_gen = RD(c->hop_gen);
	r->hop_ifindex = RD(c->hop_ifindex);
	__builtin_memcpy(r->hop_mac, c->hop_mac, sizeof(r->hop_mac));
	r->expires = RD(c->expires);
	barrier();
	r->fast = 1;
}

/* A packet from a NAT/FULLNAT server on connection fk (ip_vs_out and
 * handle_response): back to the client from the virtual service. r is
 * the reply entry fk was read from. -1: no live connection owns this
 * reply tuple (gone, expired, or the entry reused): the packet is an
 * unknown flow's. A call of its own, off the new connection's stack. */
__gvs_subprog int out_conn(struct xdp_md *ctx, struct gvs_work *w, struct gvs_reply *r, __u64 now)
{
	const struct gvs_pkt *p = &w->p;
	const struct gvs_conn_key *fk = &w->tk;
	__u32 zero = 0;
	struct gvs_timeouts *to = bpf_map_lookup_elem(&timeouts, &zero);
	struct gvs_config *cfg = bpf_map_lookup_elem(&config, &zero);
	if (!to || !cfg)
		return -1;
	struct gvs_conn *c = bpf_map_lookup_elem(&conns, fk);

	/* An armed reply entry may hold a later deadline than the
	 * connection's (reply_fast refreshes only its own). */
	if (!c || (RD(c->expires) <= now && !(RD(r->fast) && RD(r->expires) > now)))
		return -1;
	/* The reply entry was read before this lookup: with preallocated
	 * maps another CPU may have removed both and reused the memory for
	 * another connection meanwhile. Only a connection whose own reply
	 * tuple is this packet's is translated. */
	__u32 did = RD(c->dest);
	struct gvs_dest *d = dest_get(did);
	if (!d || !(RD(c->flags) & GVS_CONN_F_NAT) || d->addr[0] != p->saddr ||
	    c->rport != p->sport || c->laddr[0] != p->daddr || c->lport != p->dport ||
	    fk->proto != p->proto)
		return -1;
	if (reply_ttl_expired(p))
		return XDP_PASS;
	stats_out(RD(c->svc), did, p->tot_len);
	if (!(RD(c->flags) & GVS_CONN_F_REPLIED))
		__sync_fetch_and_or((__u32 *)&c->state, (__u32)GVS_CONN_F_REPLIED << 8);
	if (p->frag != GVS_FRAG_LATER)
		conn_set_state(c, d, p, to, 1);
	c->expires = now + (__u64)RD(c->timeout) * NS_PER_SEC;
	struct nat_xlate x = {
		.saddr = fk->vaddr[0],
		.daddr = fk->caddr[0],
		.sport = fk->vport,
		.dport = fk->cport,
		.icmp_src = fk->vaddr[0],
		.output = 1,
		.hop_gen = cfg->hop_gen,
	};
	if (cfg->hop_gen && RD(c->hop_gen) == cfg->hop_gen) {
		x.hop_ifindex = c->hop_ifindex;
		__builtin_memcpy(x.hop_mac, c->hop_mac, sizeof(x.hop_mac));
	}
	int v = nat_xmit(ctx, p, &x, now, c);
	if (v == XDP_TX || v == XDP_REDIRECT)
		reply_arm(r, fk, c, did, d, p, cfg);
	return v;
}

/* A reply on an armed entry (reply_arm): translated from the entry alone,
 * without the connection's lookup, when it cannot move the connection's
 * state (UDP; TCP without SYN, FIN or RST). Counted, and the entry's
 * deadline refreshed, as out_conn does the connection's. -1: not for the
 * fast path. A call of its own: its stack is not on the new connection's
 * path. */
__gvs_subprog int reply_fast(struct xdp_md *ctx, const struct gvs_pkt *p, struct gvs_reply *r,
			     __u64 now, const struct gvs_config *cfg)
{
	if (!RD(r->fast))
		return -1;
	if (p->proto == IPPROTO_TCP) {
		if (p->tcpflags & (TCPF_SYN | TCPF_FIN | TCPF_RST))
			return -1;
	} else if (p->proto != IPPROTO_UDP) {
		return -1;
	}
	if (RD(r->expires) <= now || (cfg->hop_gen && RD(r->hop_gen) != cfg->hop_gen))
		return -1;
	__u32 did = RD(r->dest);
	struct gvs_dest *d = dest_get(did);
	/* As out_conn: only an entry that is still this tuple's (its memory
	 * may have been reused since the lookup). */
	if (!d || d->addr[0] != p->saddr || r->rport != p->sport || r->laddr != p->daddr ||
	    r->lport != p->dport || r->fk.proto != p->proto || r->fk.af != 4)
		return -1;
	if (reply_ttl_expired(p))
		return XDP_PASS;
	stats_out(RD(r->svc), did, p->tot_len);
	r->expires = now + (__u64)RD(r->timeout) * NS_PER_SEC;
	struct nat_xlate x = {
		.saddr = r->fk.vaddr[0],
		.daddr = r->fk.caddr[0],
		.sport = r->fk.vport,
		.dport = r->fk.cport,
		.icmp_src = r->fk.vaddr[0],
		.output = 1,
	};
	if (cfg->hop_gen) {
		x.hop_ifindex = RD(r->hop_ifindex);
		__builtin_memcpy(x.hop_mac, r->hop_mac, sizeof(x.hop_mac));
	}
	return nat_xmit(ctx, p, &x, now, 0);
}

/* nat_icmp_send (ip_vs_out): a TCP, UDP or SCTP packet from a NAT server's
 * address and port (nat_servers, for its protocol) that matched no
 * connection is dropped, and unless it is a TCP RST or an SCTP ABORT the server is told
 * with an ICMP port unreachable, from the director's address toward it
 * (the FIB's source, as icmp_send picks for a forwarded packet). Only a
 * packet the director would forward: the kernel also answers those sent
 * to the director itself, which would break its own connections to the
 * servers (a health check's SYN-ACK answered so aborts the server's
 * handshake); FULLNAT replies, sent to the director's addresses, go to
 * its stack, which answers as for any closed port. Returns the verdict,
 * or -1 when the sysctl does not apply. */
__gvs_subprog int nat_icmp(struct xdp_md *ctx, const struct gvs_pkt *p, __u64 now)
{
	struct gvs_svc_key k = {};
	struct bpf_fib_lookup fib = {};

	if (p->proto == IPPROTO_TCP && (p->tcpflags & TCPF_RST))
		return -1;
	if (p->proto == IPPROTO_SCTP && sctp_event(p) == SCTP_EV_ABORT)
		return -1; /* is_sctp_abort */
	k.addr[0] = p->saddr;
	k.port = p->sport;
	k.proto = p->proto;
	k.af = 4;
	if (!bpf_map_lookup_elem(&nat_servers, &k))
		return -1;
	fib.family = AF_INET;
	fib.ifindex = ctx->ingress_ifindex;
	fib.ipv4_src = p->saddr;
	fib.ipv4_dst = p->daddr;
	if (bpf_fib_lookup(ctx, &fib, sizeof(fib), BPF_FIB_LOOKUP_SKIP_NEIGH) != BPF_FIB_LKUP_RET_SUCCESS)
		return -1; /* for the director (or not routable): the stack's */
	ev_inc(GVS_EV_NAT_ICMP_SEND);
	if (p->frag == GVS_FRAG_LATER)
		return XDP_DROP; /* its datagram was answered with its first */
	__u32 src = route_src(ctx, p->saddr);
	if (src && icmp_reply(ctx, p, ICMP_ARG(ICMP_DEST_UNREACH, ICMP_PORT_UNREACH, 0), src, now) == 0)
		return XDP_TX;
	return XDP_DROP;
}

/* An ICMP error about a connection (ip_vs_out_icmp, ip_vs_in_icmp): from
 * the server side about a packet we sent it, it goes to the client as if
 * from the virtual service (here); from the client side about a reply
 * (sent to the VIP), ICMP_IN with the connection's key in w->key, for
 * icmp_in. */
__gvs_subprog int icmp_conn(struct xdp_md *ctx, struct gvs_work *w, __u64 now)
{
	const struct gvs_pkt *p = &w->p;
	struct gvs_conn_key k = {};
	struct nat_xlate x = {};

	/* The quoted packet went to a server: its reply tuple is the quote
	 * turned around. */
	k.caddr[0] = p->in_daddr;
	k.vaddr[0] = p->in_saddr;
	k.cport = p->in_dport;
	k.vport = p->in_sport;
	k.proto = p->in_proto;
	k.af = 4;
	struct gvs_reply *r = nat_src_maybe(p->in_daddr) ? bpf_map_lookup_elem(&rconns, &k) : 0;
	if (r) {
		struct gvs_conn_key f = r->fk;
		if (f.af == 6) { /* a NAT64 connection's: not translated */
			ev_inc(GVS_EV_NAT64_ICMP);
			return XDP_DROP;
		}
		struct gvs_conn *c = bpf_map_lookup_elem(&conns, &f);
		/* As in out_conn: the connection must still own this tuple. */
		if (!c || (RD(c->expires) <= now && !(RD(r->fast) && RD(r->expires) > now)) ||
		    !(RD(c->flags) & GVS_CONN_F_NAT) ||
		    c->laddr[0] != k.vaddr[0] || c->lport != k.vport || c->rport != k.cport ||
		    f.proto != k.proto)
			goto pass;
		struct gvs_dest *sd = dest_get(RD(c->dest));
		if (!sd || sd->addr[0] != k.caddr[0])
			goto pass;
		if (reply_ttl_expired(p))
			return XDP_PASS;
		stats_out(RD(c->svc), RD(c->dest), p->tot_len);
		x.saddr = f.vaddr[0];
		x.daddr = f.caddr[0];
		x.in_saddr = f.caddr[0];
		x.in_daddr = f.vaddr[0];
		x.in_sport = f.cport;
		x.in_dport = f.vport;
		x.icmp_src = f.vaddr[0];
		x.output = 1;
		ev_inc(GVS_EV_ICMP);
		return nat_xmit(ctx, p, &x, now, 0);
	}

	/* The quoted packet came from the virtual service: a reply to the
	 * client, whose connection key is the quote turned around. */
	if (p->daddr == p->in_saddr) {
		w->key = k;
		return ICMP_IN;
	}
pass:
	ev_inc(GVS_EV_PASS);
	return XDP_PASS;
}

/* An ICMP error about a reply of connection c goes to its server,
 * translated as the connection's packets are (DR and TUN forward it as
 * it is). count: the packet is not yet in the counters (a connection
 * schedule_icmp just made counted it). */
__gvs_subprog int icmp_in(struct xdp_md *ctx, const struct gvs_pkt *p, const struct gvs_conn *c,
			  __u64 now, int count)
{
	struct nat_xlate x = {};
	__u32 zero = 0;
	struct gvs_config *cfg = bpf_map_lookup_elem(&config, &zero);
	if (!cfg)
		return XDP_PASS;
	__u32 did = RD(c->dest);
	struct gvs_dest *d = dest_get(did);
	__u8 m = RD(c->method);
	if (!d || !(RD(d->flags) & GVS_DEST_F_AVAILABLE) || (d->af != 4 && m != GVS_FWD_TUNNEL)) {
		ev_inc(GVS_EV_PASS);
		return XDP_PASS;
	}
	if (count)
		stats_in(RD(c->svc), did, p->tot_len, 0);
	ev_inc(GVS_EV_ICMP);
	if (m == GVS_FWD_ROUTE)
		return fwd_dr(ctx, p, d, now);
	if (m == GVS_FWD_TUNNEL)
		return fwd_tun_any(ctx, p, d, cfg, now);
	if (!is_nat_method(m)) {
		ev_inc(GVS_EV_PASS);
		return XDP_PASS;
	}
	x.saddr = p->saddr;
	x.daddr = d->addr[0];
	x.in_saddr = d->addr[0];
	x.in_sport = c->rport;
	x.in_daddr = p->in_daddr;
	x.in_dport = p->in_dport;
	if (m == GVS_FWD_FULLNAT) {
		x.saddr = c->laddr[0];
		x.in_daddr = c->laddr[0];
		x.in_dport = c->lport;
	}
	x.icmp_src = p->daddr;
	xlate_hop(&x, d);
	return nat_xmit(ctx, p, &x, now, 0);
}

/* Make room for a new connection's entry before anything is scheduled:
 * the entry goes in as a reservation (dest GVS_DEST_NONE), taking its key
 * a slot of conn_ring. A full table first gives up its expired entries,
 * then its oldest half-open and unanswered ones (conn_ring); established
 * connections keep theirs. Returns 0, GVS_NEW_RACE, or RESERVE_FULL
 * (counted). */
#define RESERVE_FULL (-2)

static __always_inline int conn_reserve(struct gvs_work *w, __u64 now, __u32 svc)
{
	struct gvs_conn *nc = &w->nc;
	__u32 zero = 0;

	__builtin_memset(nc, 0, sizeof(*nc));
	nc->dest = GVS_DEST_NONE;
	nc->svc = svc;
	nc->expires = now + RESERVATION_NS; /* replaced within this run */
	__u32 *hand = bpf_map_lookup_elem(&ring_hand, &zero);
	__u32 h0 = hand ? RD(*hand) : 0;
	__s64 slot = ring_step(now, 0);
	long err = bpf_map_update_elem(&conns, &w->key, nc, BPF_NOEXIST);
	if (err && err != -17 /* EEXIST */) {
		__u64 *until = bpf_map_lookup_elem(&pressure, &zero);
		if (until)
			*until = now + 2 * NS_PER_SEC;
		/* Evict from where the search began: the oldest first, so a
		 * handshake lives as long as a table of SYNs takes to
		 * arrive, whatever the free search skipped. */
		if (hand)
			*hand = h0;
		slot = ring_step(now, 1);
		if (slot >= 0)
			err = bpf_map_update_elem(&conns, &w->key, nc, BPF_NOEXIST);
	}
	if (err && err != -17) {
		ev_inc(GVS_EV_CONN_TABLE_FULL);
		return RESERVE_FULL;
	}
	/* The slot taken is written even when another CPU made the entry
	 * first (a second index of a key is harmless; an unwritten slot
	 * would be a hole that ends the eviction walk there). */
	if (slot >= 0) {
		__u32 s = slot;
		struct gvs_conn_key *rk = bpf_map_lookup_elem(&conn_ring, &s);
		if (rk)
			*rk = w->key;
	} else if (slot != RING_OFF && !err) {
		ev_inc(GVS_EV_UNINDEXED);
	}
	return err ? GVS_NEW_RACE : 0;
}

/* Whether this CPU evicted recently (see the pressure map). */
static __always_inline int under_pressure(__u64 now)
{
	__u32 zero = 0;
	__u64 *until = bpf_map_lookup_elem(&pressure, &zero);

	return until && now < *until;
}

/* Put the rr/wrr position back as it was before a refused packet moved
 * it. Another CPU's choice made in between is undone too (its server
 * then comes up once more): the position is shared without a lock, as
 * sched_state says. */
static __always_inline void sched_undo(const struct gvs_svc *svc, const struct gvs_sched_state *before)
{
	__u32 sid = svc->id;

	if (svc->sched != GVS_SCHED_RR && svc->sched != GVS_SCHED_WRR)
		return;
	struct gvs_sched_state *st = bpf_map_lookup_elem(&sched_state, &sid);
	if (!st)
		return;
	st->rr_last = before->rr_last;
	st->wrr_cl = before->wrr_cl;
	st->wrr_cw = before->wrr_cw;
}

/* A new connection may start with this TCP packet: a SYN, or with
 * sloppy_tcp (or the service's GVS_SVC_F_SLOPPY) any packet; never a RST
 * (tcp_conn_schedule). */
static __always_inline int tcp_may_start(const struct gvs_pkt *p, const struct gvs_config *cfg,
					 const struct gvs_svc *svc)
{
	if (p->tcpflags & TCPF_RST)
		return 0;
	return (p->tcpflags & TCPF_SYN) || cfg->sloppy_tcp || (svc->flags & GVS_SVC_F_SLOPPY);
}

/* Whether the service's allow list has the source. */
static __always_inline int allowed(__u32 svc, __u32 saddr)
{
	struct gvs_allow_key k = { .prefixlen = 64, .svc = svc };

	k.addr[0] = saddr;
	return bpf_map_lookup_elem(&allow, &k) != 0;
}

/* The service of a new connection's first packet (ip_vs_service_find):
 * its virtual address and port's, else the port-zero one (w->exact 0
 * then, unless the packet's port is 0); a frame from netfilter, its
 * mark's alone. A call of its own: the key is not on in_new's frame,
 * which is on the 512-byte path to the schedulers. */
__gvs_subprog struct gvs_svc *svc_find(struct gvs_work *w)
{
	const struct gvs_pkt *p = &w->p;
	struct gvs_svc_key sk = {};
	struct gvs_svc *svc;

	if (w->mark) {
		/* From netfilter (fwmark.h): the mark's service only. */
		sk.addr[0] = w->mark;
		sk.af = 4;
		return bpf_map_lookup_elem(&services, &sk);
	}
	sk.addr[0] = p->daddr;
	sk.port = p->dport;
	sk.proto = p->proto;
	sk.af = 4;
	svc = bpf_map_lookup_elem(&services, &sk);
	if (!svc) {
		sk.port = 0;
		svc = bpf_map_lookup_elem(&services, &sk);
		w->exact = p->dport == 0;
	}
	return svc;
}

/* Make the reserved entry the new connection w->nc (to server d). What
 * removing a connection undoes, its server's count and its template's
 * hold, is done before it can be seen: from then on another CPU may
 * evict or expire it. Then it is filled and published by its dest, and a
 * NAT one gets its reply entry. 0, or the event of a failure (undone).
 * Shared by in_new6. */
__gvs_subprog int conn_publish(struct gvs_work *w, struct gvs_dest *d, int controlled)
{
	struct gvs_conn *nc = &w->nc;
	__u32 did = nc->dest;
	int bind = (nc->flags & GVS_CONN_F_INACTIVE) ? BIND_INACTIVE : BIND_ACTIVE;

	dest_bind(d, bind);
	if (controlled && !tmpl_hold(&w->tk))
		nc->flags &= ~GVS_CONN_F_CONTROLLED; /* its template went meanwhile */
	struct gvs_conn *c = bpf_map_lookup_elem(&conns, &w->key);
	if (!c) {
		if (d->method == GVS_FWD_FULLNAT)
			bpf_map_delete_elem(&rconns, &w->rk);
		goto undo;
	}
	nc->dest = GVS_DEST_NONE;
	*c = *nc;
	nc->dest = did;
	__sync_val_compare_and_swap(&c->dest, GVS_DEST_NONE, did);
	if (d->method != GVS_FWD_MASQ)
		return 0;
	reply_init(&w->rv, &w->key);
	if (!bpf_map_update_elem(&rconns, &w->rk, &w->rv, BPF_ANY))
		return 0;
	/* Whoever deletes it undoes. */
	if (bpf_map_delete_elem(&conns, &w->key) == 0) {
		dest_unbind(d, bind);
		if (nc->flags & GVS_CONN_F_CONTROLLED)
			tmpl_unhold(&w->tk);
	}
	return GVS_EV_CONN_TABLE_FULL;
undo:
	dest_unbind(d, bind);
	if (nc->flags & GVS_CONN_F_CONTROLLED)
		tmpl_unhold(&w->tk);
	return GVS_EV_BUSY;
}

/* A TCP packet that cannot start a connection (not a SYN) of a handshake
 * evicted for room (conn_remember) whose time is not up: its connection
 * is made again, to the server that had its SYN, not scheduled (and not
 * counted as a new one). Shared by in_new6. */
static __always_inline int conn_revivable(struct gvs_work *w, const struct gvs_svc *svc, __u64 now)
{
	if ((w->p.tcpflags & TCPF_RST) || (svc->flags & GVS_SVC_F_PERSISTENT))
		return 0;
	struct gvs_evicted *e = bpf_map_lookup_elem(&evicted, &w->key);
	if (!e || e->svc != svc->id || e->expires <= now)
		return 0;
	w->revive_dest = e->dest;
	w->revive_state = e->state;
	w->revive = 1;
	return 1;
}

/* A NAT server's packet that matches no connection, of a handshake
 * evicted for room (conn_remember_nat): its late SYN-ACK is translated as
 * the connection's would be, from the record, without making the
 * connection again (a flood's handshakes are answered too, and never
 * complete: each made again would take another's room); the client's ACK
 * makes it (conn_revivable). The verdict, or -1. A global function, as
 * in_new. */
__attribute__((noinline)) int nat_late_reply(struct xdp_md *ctx, struct gvs_work *w, __u64 now)
{
	if (!ctx || !w)
		return -1;
	const struct gvs_pkt *p = &w->p;
	struct gvs_conn_key *ck = bpf_map_lookup_elem(&evicted_rk, &w->key);
	if (!ck)
		return -1;
	w->tk = *ck;
	struct gvs_evicted *e = bpf_map_lookup_elem(&evicted, &w->tk);
	if (!e || e->expires <= now || w->tk.af != 4 || w->tk.caddr[0] != p->daddr ||
	    w->tk.cport != p->dport)
		return -1;
	__u32 did = e->dest, sid = e->svc;
	struct gvs_dest *d = dest_get(did);
	if (!d || !(RD(d->flags) & GVS_DEST_F_AVAILABLE) || d->method != GVS_FWD_MASQ ||
	    d->af != 4 || d->addr[0] != p->saddr)
		return -1;
	if (reply_ttl_expired(p))
		return XDP_PASS;
	stats_out(sid, did, p->tot_len);
	ev_inc(GVS_EV_LATE_REPLY);
	struct nat_xlate x = {
		.saddr = w->tk.vaddr[0],
		.daddr = w->tk.caddr[0],
		.sport = w->tk.vport,
		.dport = w->tk.cport,
		.icmp_src = w->tk.vaddr[0],
		.output = 1,
	};
	return nat_xmit(ctx, p, &x, now, 0);
}

/* The first packet of a connection: ip_vs_schedule and ip_vs_conn_new.
 * The entry (and a new persistence template) is reserved before the
 * scheduler runs, so a packet refused for want of room changes no
 * scheduler state, template or count, only its drop counter.
 * A global function: the verifier checks it once, on its own, instead of
 * once for each way a packet reaches it (xdp_gvs: 629k instructions
 * processed before, 230k after). */
__attribute__((noinline)) int in_new(struct xdp_md *ctx, struct gvs_work *w, __u64 now)
{
	if (!w) /* global: its pointer arguments may be NULL */
		return XDP_PASS;
	const struct gvs_pkt *p = &w->p;
	struct gvs_conn_key *key = &w->key;
	struct gvs_conn_key *tk = &w->tk;
	struct gvs_conn_key *rk = &w->rk;
	struct gvs_conn *nc = &w->nc;
	/* A call of its own (a frame of its own): this path's locals and
	 * the established path's never share the stack. */
	__u32 zero = 0;
	struct gvs_timeouts *to = bpf_map_lookup_elem(&timeouts, &zero);
	struct gvs_config *cfg = bpf_map_lookup_elem(&config, &zero);
	if (!to || !cfg)
		return XDP_PASS;

	w->exact = 1; /* off the stack, which is full here */
	struct gvs_svc *svc = svc_find(w);
	int exact = w->exact;

	if (!svc)
		goto pass;
	w->revive = 0;
	if (p->proto == IPPROTO_TCP && !w->icmp && !tcp_may_start(p, cfg, svc) &&
	    !conn_revivable(w, svc, now))
		goto pass;
	if ((svc->flags & GVS_SVC_F_ALLOWLIST) && !allowed(svc->id, p->saddr)) {
		ev_inc(GVS_EV_DENIED);
		return XDP_DROP;
	}

	__u32 did = GVS_DEST_NONE;
	int persistent = svc->flags & GVS_SVC_F_PERSISTENT;
	/* One-packet scheduling: no entry, unless the datagram comes in
	 * fragments, whose later ones need one to follow (ONEPKT). */
	int one = (svc->flags & GVS_SVC_F_ONEPACKET) && p->proto == IPPROTO_UDP &&
		  p->frag != GVS_FRAG_FIRST;
	int created = 0; /* this packet made the template */
	int verdict = XDP_PASS;

	if (!persistent && !exact)
		goto pass; /* port-zero services need persistence */
	if (!one) {
		int r = conn_reserve(w, now, svc->id);
		if (r == GVS_NEW_RACE)
			return r;
		if (r)
			return XDP_DROP;
	}
	{
		__u32 sid = svc->id;
		struct gvs_sched_state *st = bpf_map_lookup_elem(&sched_state, &sid);
		if (st)
			w->ss = *st;
	}
	if (w->revive) {
		did = w->revive_dest;
	} else if (persistent) {
		tmpl_key(tk, key, svc->netmask, exact, w->mark);
		int r = sched_persist(svc, p, tk, now, cfg, &did, &created, 4);
		if (r == SP_REJECT)
			goto reject;
		if (r == SP_FULL) {
			ev_inc(GVS_EV_TEMPLATE_FULL);
			verdict = XDP_DROP;
			goto unreserve;
		}
		if (r == SP_BUSY) {
			ev_inc(GVS_EV_BUSY);
			verdict = XDP_DROP;
			goto unreserve;
		}
		if (r == SP_UNSUPPORTED) {
			struct gvs_dest *ud = dest_get(did);
			ev_inc(ud && ud->af != 4 ? GVS_EV_FAMILY : GVS_EV_FWD_UNSUPPORTED);
			goto unreserve;
		}
	} else {
		did = gvs_schedule(svc, p, now, cfg);
		if (did == GVS_DEST_NONE)
			goto reject;
	}
	struct gvs_dest *d = dest_get(did);
	if (!d)
		goto reject;
	if (w->revive && !(RD(d->flags) & GVS_DEST_F_AVAILABLE)) {
		verdict = XDP_PASS;
		goto unreserve; /* its server is gone: the stack resets it */
	}
	if (!fwd_supported(d)) {
		ev_inc(d->af != 4 ? GVS_EV_FAMILY : GVS_EV_FWD_UNSUPPORTED);
		goto unreserve;
	}

	/* The connection as it is after this packet: created inactive and
	 * input-only, then the packet's transition (a SYN: SYN_RECV). Under
	 * table pressure a handshake stays inactive until it completes. */
	__builtin_memset(nc, 0, sizeof(*nc));
	nc->dest = did;
	nc->svc = svc->id;
	nc->method = d->method;
	/* SCTP: only an INIT gets here, NONE -> INIT1 (inactive) in the
	 * INPUT and INPUT-ONLY tables alike. */
	nc->state = p->proto == IPPROTO_TCP ? GVS_S_NONE :
		    p->proto == IPPROTO_SCTP ? GVS_S_SCTP_INIT1 : GVS_S_UDP;
	nc->flags = GVS_CONN_F_INACTIVE | GVS_CONN_F_NOOUTPUT |
		    (persistent ? GVS_CONN_F_CONTROLLED : 0);
	if (w->icmp) {
		/* Made by an ICMP error: no state change, and
		 * ip_vs_conn_new's first timeout (3 s). */
		if (p->proto == IPPROTO_SCTP)
			nc->state = GVS_S_SCTP_NONE;
	} else if (p->proto == IPPROTO_TCP) {
		/* A revived handshake goes on from the state it was in. */
		__u8 next = tcp_next(w->revive ? w->revive_state : GVS_S_NONE,
				     is_nat(d) ? TCP_DIR_INPUT : TCP_DIR_INPUT_ONLY, p->tcpflags);
		if (next != GVS_S_NONE && state_active(next) &&
		    (next == GVS_S_ESTABLISHED || !under_pressure(now))) {
			nc->flags &= ~GVS_CONN_F_INACTIVE;
		}
		nc->state = next;
	}
	if ((svc->flags & GVS_SVC_F_ONEPACKET) && p->proto == IPPROTO_UDP)
		nc->flags |= GVS_CONN_F_ONEPKT; /* kept in the table for a first fragment only (one 0) */
	nc->timeout = w->icmp ? ICMP_CONN_TIMEOUT :
		      (nc->flags & GVS_CONN_F_ONEPKT) ? ONEPKT_FRAG_TIMEOUT :
		      state_timeout(to, p->proto, nc->state);
	nc->expires = now + (__u64)nc->timeout * NS_PER_SEC;
	nc->sync_pkts = 1; /* this packet (sync.h) */

	int nat = is_nat(d);
	if (nat) {
		/* The server leg: NAT keeps the client's address and port,
		 * FULLNAT takes a local address and port. A port-zero
		 * server keeps the packet's port. */
		nc->flags &= ~GVS_CONN_F_NOOUTPUT;
		nc->rport = d->port ? d->port : p->dport;
		nc->laddr[0] = p->saddr;
		nc->lport = p->sport;
		if (!one)
			nc->flags |= GVS_CONN_F_NAT;
		if (d->method == GVS_FWD_FULLNAT) {
			struct lport_req req = {
				.fk = key, .svc = svc, .cfg = cfg,
				.raddr = d->addr[0], .rport = nc->rport,
			};
			if (!svc->nladdrs)
				req.route_src = route_src(ctx, d->addr[0]);
			if (one) {
				/* No reply is matched: no port to hold. */
				nc->laddr[0] = svc->nladdrs ? svc->laddrs[0] : req.route_src;
			} else if (lport_alloc(&req, &nc->laddr[0], &nc->lport)) {
				/* Refused after all: undo what choosing moved. */
				ev_inc(GVS_EV_NO_LPORT);
				sched_undo(svc, &w->ss);
				if (created) {
					struct gvs_template *t = bpf_map_lookup_elem(&templates, tk);
					if (t)
						tmpl_kill(tk, t);
				}
				verdict = XDP_DROP;
				goto unreserve;
			}
		}
	}
	/* The reply entry: FULLNAT's was made by the port allocation. */
	reply_key(rk, d->addr[0], nc->laddr[0], nc->rport, nc->lport, p->proto);
	if (!one) {
		int ev = conn_publish(w, d, persistent);
		if (ev) {
			ev_inc(ev);
			return XDP_DROP;
		}
	} else {
		dest_bind(d, BIND_INACTIVE); /* ip_vs_bind_dest, for a moment */
	}
	stats_in(svc->id, did, p->tot_len, !w->revive);
	if (w->revive) {
		bpf_map_delete_elem(&evicted, key);
		ev_inc(GVS_EV_REVIVED);
	}
	if (persistent) {
		struct gvs_template *t = bpf_map_lookup_elem(&templates, tk);
		if (t)
			t->expires = now + (__u64)RD(t->timeout) * NS_PER_SEC;
	}
	if (one) /* one-packet scheduling: gone after this datagram */
		dest_unbind(d, BIND_INACTIVE);
	if (w->icmp)
		return GVS_NEW_ICMP; /* the error is sent by icmp_in */
	return fwd(ctx, p, d, nc, cfg, now);

reject:
	/* ip_vs_leave: ICMP port unreachable, and the packet dropped; never
	 * an error about an error. */
	if (!one)
		bpf_map_delete_elem(&conns, key);
	ev_inc(GVS_EV_NO_DEST);
	/* A frame from netfilter would take XDP_TX back into gvs-fwm0. */
	if (!w->mark && !w->icmp &&
	    icmp_reply(ctx, p, ICMP_ARG(ICMP_DEST_UNREACH, ICMP_PORT_UNREACH, 0), p->daddr, now) == 0)
		return XDP_TX;
	return XDP_DROP;
unreserve:
	if (!one)
		bpf_map_delete_elem(&conns, key);
	return verdict;
pass:
	ev_inc(GVS_EV_PASS);
	return XDP_PASS;
}

static __always_inline void frag_key(struct gvs_frag_key *k, const struct gvs_pkt *p)
{
	k->saddr = p->saddr;
	k->daddr = p->daddr;
	k->id = p->ip_id;
	k->proto = p->proto;
	k->pad = 0;
}

/* A first fragment: note its ports for the rest of its datagram. */
static __always_inline void frag_note(const struct gvs_pkt *p)
{
	struct gvs_frag_key k;
	struct gvs_frag v = { .sport = p->sport, .dport = p->dport };

	frag_key(&k, p);
	bpf_map_update_elem(&frags, &k, &v, BPF_ANY);
}

#define FRAG_DROP (-1)

/* A later fragment: its first's ports, so it goes where the first went
 * (PARSE_OK). Without them it passes to the stack, unless it may be a
 * NAT server's reply, which the stack would forward untranslated,
 * leaking the server's address: that is dropped. */
static __always_inline int frag_ports(struct gvs_pkt *p)
{
	struct gvs_frag_key k;

	frag_key(&k, p);
	struct gvs_frag *v = bpf_map_lookup_elem(&frags, &k);
	if (v) {
		p->sport = v->sport;
		p->dport = v->dport;
		ev_inc(GVS_EV_FRAG);
		return PARSE_OK;
	}
	ev_inc(GVS_EV_FRAG_UNKNOWN);
	return nat_src_maybe(p->saddr) ? FRAG_DROP : PARSE_NOT_OURS;
}

/* schedule_icmp (ip_vs_in_icmp): an ICMP error about a reply no
 * connection knows is scheduled as its quote turned around would be (the
 * client's packet to the virtual service, no TCP flags: any may start
 * it), and goes to the server chosen. Inline: in_new's calls must fit the
 * stack from this frame as from the packet path's. */
static __always_inline int icmp_schedule(struct xdp_md *ctx, struct gvs_work *w, __u64 now)
{
	struct gvs_pkt *p = &w->p;

	w->orig = *p;
	p->saddr = w->orig.in_daddr;
	p->daddr = w->orig.in_saddr;
	p->sport = w->orig.in_dport;
	p->dport = w->orig.in_sport;
	p->proto = w->orig.in_proto;
	p->tcpflags = 0;
	p->frag = 0;
	w->icmp = 1;
	int v = in_new(ctx, w, now);
	w->icmp = 0;
	*p = w->orig;
	if (v == GVS_NEW_ICMP)
		return icmp_in(ctx, p, &w->nc, now, 0);
	if (v == GVS_NEW_RACE) {
		struct gvs_conn *c = bpf_map_lookup_elem(&conns, &w->key);
		if (c && RD(c->dest) != GVS_DEST_NONE)
			return icmp_in(ctx, p, c, now, 1);
		ev_inc(GVS_EV_BUSY);
		return XDP_DROP;
	}
	return v;
}

/* A reply of a NAT64 connection (nat64.h, after v6.h). */
__gvs_subprog int nat64_reply(struct xdp_md *ctx, struct gvs_work *w, __u64 now);

static __always_inline int xdp_gvs_pkt(struct xdp_md *ctx, struct gvs_work *w)
{
	__u32 zero = 0;
	struct gvs_pkt *p = &w->p;
	__builtin_memset(p, 0, sizeof(*p));
	int r = parse_pkt(ctx, p);

	if (r == PARSE_FRAG)
		r = frag_ports(p);
	else if (r == PARSE_OK && p->frag == GVS_FRAG_FIRST)
		frag_note(p);
	if (r == FRAG_DROP)
		return XDP_DROP;
	if (r == PARSE_V6) {
		/* IPv6 is a program of its own (v6.h): IPv4's stays as it
		 * was, and each is verified within its own limits. */
		bpf_tail_call(ctx, &progs, GVS_PROG_V6);
		r = PARSE_NOT_OURS; /* no IPv6 program loaded */
	}
	if (r != PARSE_OK) {
		ev_inc(r == PARSE_MALFORMED ? GVS_EV_MALFORMED : GVS_EV_PASS);
		return XDP_PASS;
	}

	struct gvs_timeouts *to = bpf_map_lookup_elem(&timeouts, &zero);
	struct gvs_config *cfg = bpf_map_lookup_elem(&config, &zero);
	if (!to || !cfg)
		return XDP_PASS;
	/* The coarse clock (CLOCK_MONOTONIC_COARSE, a tick behind at most)
	 * is plenty for second-grained timeouts and half the price. */
	__u64 now = bpf_ktime_get_coarse_ns();

	if (p->proto == IPPROTO_ICMP) {
		int v = icmp_conn(ctx, w, now);
		if (v != ICMP_IN)
			return v;
		struct gvs_conn *ic = bpf_map_lookup_elem(&conns, &w->key);
		if (ic && RD(ic->dest) != GVS_DEST_NONE)
			return icmp_in(ctx, p, ic, now, 1);
		if (!ic && cfg->schedule_icmp)
			return icmp_schedule(ctx, w, now);
		ev_inc(GVS_EV_PASS);
		return XDP_PASS;
	}

	struct gvs_conn_key *key = &w->key;
	__builtin_memset(key, 0, sizeof(*key));
	key->caddr[0] = p->saddr;
	key->vaddr[0] = p->daddr;
	key->cport = p->sport;
	key->vport = p->dport;
	key->proto = p->proto;
	key->af = 4;

	/* A server's reply: most go out from their reply entry alone, one
	 * lookup (reply_fast); the others by their connection (out_conn).
	 * A 5-tuple from a server is its reply or its own connection to a
	 * virtual service, never both, so the reply entry is asked first.
	 * (The entry's memory stays valid for this run even if another CPU
	 * deletes it: RCU.) */
	if (nat_src_maybe(p->saddr)) {
		struct gvs_reply *rv = bpf_map_lookup_elem(&rconns, key);
		if (rv) {
			int v = reply_fast(ctx, p, rv, now, cfg);
			if (v >= 0)
				return v;
			/* A copy: the entry may be reused under us. */
			w->tk = rv->fk;
			if (w->tk.af == 6) /* NAT64 (nat64.h) */
				return nat64_reply(ctx, w, now);
			v = out_conn(ctx, w, rv, now);
			if (v >= 0)
				return v;
			/* No live connection owns it: an unknown flow's. */
		}
	}

	struct gvs_conn *c = bpf_map_lookup_elem(&conns, key);
	if (c && RD(c->dest) == GVS_DEST_NONE) {
		if (RD(c->expires) > now) {
			/* Another CPU is creating it this instant. */
			ev_inc(GVS_EV_BUSY);
			return XDP_DROP;
		}
		bpf_map_delete_elem(&conns, key); /* abandoned: bound nothing */
		c = 0;
	}
	if (c && ((RD(c->expires) <= now && !reply_alive(key, c, now)) || conn_reopens(c, p, cfg) ||
		  conn_onepkt_done(c, p))) {
		/* Expired (its timer would have fired) or reopened by a SYN. */
		conn_remove(key, c);
		c = 0;
	}
	if (!c) {
		/* From a NAT server, on no connection. */
		if (nat_src_maybe(p->saddr)) {
			/* A late SYN-ACK of a handshake evicted for room. */
			if (p->proto == IPPROTO_TCP) {
				int v = nat_late_reply(ctx, w, now);
				if (v >= 0)
					return v;
			}
			if (cfg->nat_icmp_send) {
				int v = nat_icmp(ctx, p, now);
				if (v >= 0)
					return v;
			}
		}
		/* Its first fragment made no connection; an SCTP
		 * association starts with an INIT only (sctp_conn_schedule). */
		if (p->frag == GVS_FRAG_LATER ||
		    (p->proto == IPPROTO_SCTP && sctp_event(p) != SCTP_EV_INIT)) {
			ev_inc(GVS_EV_PASS);
			return XDP_PASS;
		}
		int v = in_new(ctx, w, now);
		if (v != GVS_NEW_RACE)
			return v;
		c = bpf_map_lookup_elem(&conns, key);
		if (!c)
			return XDP_PASS;
		if (RD(c->dest) == GVS_DEST_NONE) {
			ev_inc(GVS_EV_BUSY);
			return XDP_DROP;
		}
	}
	return in_conn(ctx, p, key, c, now, to, cfg);
}

SEC("xdp")
int xdp_gvs(struct xdp_md *ctx)
{
	__u32 zero = 0;
	struct gvs_work *w = bpf_map_lookup_elem(&work, &zero);
	if (!w)
		return XDP_PASS;
	int fwm = fwm_frame(ctx, &w->mark);
	if (fwm && !w->mark) {
		ev_inc(GVS_EV_FWM_UNTAGGED);
		return XDP_DROP;
	}
	int v = xdp_gvs_pkt(ctx, w);
	/* A marked packet netfilter handed over: what is not forwarded is
	 * dropped (the original was; passed, it would loop). */
	if (fwm && v == XDP_PASS) {
		ev_inc(GVS_EV_FWM_PASS);
		return XDP_DROP;
	}
	return v;
}

#include "v6.h"
#include "tun46.h"

/*
 * gvsd's sweep drops a removed connection's hold on its template here,
 * with the same atomic add BPF uses, instead of rewriting the template
 * (which could undo a concurrent in-place rewrite by the packet path).
 * Run with BPF_PROG_RUN; the context is the template's key. Returns 0, or
 * 1 when there is no such template.
 */
SEC("syscall")
int gvs_release_template(struct gvs_conn_key *key)
{
	struct gvs_conn_key k = *key;
	struct gvs_template *t = bpf_map_lookup_elem(&templates, &k);

	if (!t)
		return 1;
	__sync_fetch_and_add(&t->n_control, -1);
	return 0;
}
