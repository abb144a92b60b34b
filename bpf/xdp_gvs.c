//go:build ignore

// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * gvs XDP data path: IPv4, TCP and UDP, forwarded by direct routing,
 * IP-in-IP tunnelling, NAT and FULLNAT. What happens to a packet from a
 * client is ipvs/packet.go's In:
 *
 *   known connection  -> dropped if its server is gone, else counted, its
 *                        TCP state moved (input-only table), its timer
 *                        refreshed, forwarded;
 *   new connection    -> for a virtual service only (else passed untouched),
 *                        TCP only on SYN without RST; scheduled with
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

char _license[] SEC("license") = "Dual BSD/GPL";

#define GVS_NEW_RACE (-1) /* another CPU created the connection first */

/* A packet's working state. It lives in a per-CPU map, not on the stack:
 * the deepest call chain (new connection, scheduler, its bpf_loop
 * callback) must fit the 512 bytes BPF gives all frames together. An XDP
 * program runs to completion on its CPU before the next starts. */
struct gvs_work {
	struct gvs_pkt p;
	struct gvs_conn_key key; /* the packet's 5-tuple */
	struct gvs_conn_key tk;  /* its persistence template's key */
	struct gvs_conn_key rk;  /* a new NAT connection's reply key */
	struct gvs_conn nc;      /* a new connection */
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
	SP_UNSUPPORTED, /* the server is Masq/FULLNAT */
};

static __always_inline int fwd_supported(const struct gvs_dest *d)
{
	return d->method == GVS_FWD_ROUTE || d->method == GVS_FWD_TUNNEL ||
	       d->method == GVS_FWD_MASQ || d->method == GVS_FWD_FULLNAT;
}

static __always_inline int is_nat(const struct gvs_dest *d)
{
	return d->method == GVS_FWD_MASQ || d->method == GVS_FWD_FULLNAT;
}

/* Forward a client's packet of connection c to server d. */
static __always_inline int fwd(struct xdp_md *ctx, const struct gvs_pkt *p,
			       const struct gvs_dest *d, const struct gvs_conn *c,
			       const struct gvs_config *cfg, __u64 now)
{
	if (d->method == GVS_FWD_ROUTE)
		return fwd_dr(ctx, p, d, now);
	if (d->method == GVS_FWD_TUNNEL)
		return fwd_tun(ctx, p, d, cfg, now);
	if (!is_nat(d)) {
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
	if (d->method == GVS_FWD_FULLNAT) {
		x.saddr = c->laddr[0];
		x.sport = c->lport;
	}
	xlate_hop(&x, d);
	return nat_xmit(ctx, p, &x, now, 0);
}

static __always_inline int persist_check(__u32 id, __u32 *did)
{
	struct gvs_dest *d = dest_get(id);

	if (!d)
		return SP_REJECT;
	if (!fwd_supported(d))
		return SP_UNSUPPORTED;
	*did = id;
	return SP_OK;
}

static __always_inline int sched_persist(const struct gvs_svc *svc, const struct gvs_pkt *p,
					 struct gvs_conn_key *tk, __u64 now,
					 const struct gvs_config *cfg, __u32 *did)
{
	struct gvs_template *t = bpf_map_lookup_elem(&templates, tk);

	if (t && RD(t->expires) <= now) {
		if (RD(t->n_control) > 0) {
			/* ip_vs_conn_expire: still controls connections,
			 * 60 more seconds. */
			t->timeout = 60;
			t->expires = now + 60 * NS_PER_SEC;
		} else {
			tmpl_remove(tk, t);
			t = 0;
		}
	}
	if (t) {
		__u32 old = RD(t->dest);
		struct gvs_dest *od = dest_get(old);

		if (od && (RD(od->flags) & GVS_DEST_F_AVAILABLE) &&
		    !(cfg->expire_quiescent_template && RD(od->weight) == 0))
			return persist_check(old, did);
		/* ip_vs_check_template failed: a new template replaces it.
		 * It is rewritten in place (its n_control, the connections
		 * still controlled by key, carries over). */
		__u32 id = gvs_schedule(svc, p, now, cfg);
		struct gvs_dest *nd = dest_get(id);
		if (!nd)
			return SP_REJECT;
		if (!fwd_supported(nd))
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
		return persist_check(RD(t->dest), did);
	}

	__u32 id = gvs_schedule(svc, p, now, cfg);
	struct gvs_dest *nd = dest_get(id);
	if (!nd)
		return SP_REJECT;
	if (!fwd_supported(nd))
		return SP_UNSUPPORTED;
	struct gvs_template nt = {
		.expires = now + (__u64)svc->timeout * NS_PER_SEC,
		.dest = id,
		.svc = svc->id,
		.n_control = 0,
		.timeout = svc->timeout,
	};
	long err = bpf_map_update_elem(&templates, tk, &nt, BPF_NOEXIST);
	if (err == 0) {
		dest_bind(nd, BIND_TEMPLATE);
		*did = id;
		return SP_OK;
	}
	if (err == -17 /* EEXIST */) {
		t = bpf_map_lookup_elem(&templates, tk);
		if (t)
			return persist_check(RD(t->dest), did);
	}
	return SP_FULL;
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
	conn_set_state(c, d, p, to, 0);
	c->expires = now + (__u64)RD(c->timeout) * NS_PER_SEC;
	return fwd(ctx, p, d, c, cfg, now);
}

/* A packet from a NAT/FULLNAT server on connection fk (ip_vs_out and
 * handle_response): back to the client from the virtual service. An
 * expired connection's replies pass untouched, as an unknown flow's. */
static __always_inline int out_conn(struct xdp_md *ctx, const struct gvs_pkt *p,
				    const struct gvs_conn_key *fk, __u64 now,
				    const struct gvs_timeouts *to, const struct gvs_config *cfg)
{
	struct gvs_conn *c = bpf_map_lookup_elem(&conns, fk);

	if (!c || RD(c->expires) <= now) {
		ev_inc(GVS_EV_PASS);
		return XDP_PASS;
	}
	if (reply_ttl_expired(p))
		return XDP_PASS;
	__u32 did = RD(c->dest);
	stats_out(RD(c->svc), did, p->tot_len);
	conn_set_state(c, dest_get(did), p, to, 1);
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
	return nat_xmit(ctx, p, &x, now, c);
}

/* An ICMP error about a connection (ip_vs_out_icmp, ip_vs_in_icmp): from
 * the server side about a packet we sent it, it goes to the client as if
 * from the virtual service; from the client side about a reply (sent to
 * the VIP), it goes to the server, translated as the connection's
 * packets are (DR and TUN forward it as it is). */
__gvs_subprog int icmp_conn(struct xdp_md *ctx, const struct gvs_pkt *p, __u64 now,
			    const struct gvs_config *cfg)
{
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
	struct gvs_conn_key *fk = nat_src_maybe(p->in_daddr) ? bpf_map_lookup_elem(&rconns, &k) : 0;
	if (fk) {
		struct gvs_conn_key f = *fk;
		struct gvs_conn *c = bpf_map_lookup_elem(&conns, fk);
		if (!c)
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
	if (p->daddr != p->in_saddr)
		goto pass;
	struct gvs_conn *c = bpf_map_lookup_elem(&conns, &k);
	if (!c)
		goto pass;
	__u32 did = RD(c->dest);
	struct gvs_dest *d = dest_get(did);
	if (!d || !(RD(d->flags) & GVS_DEST_F_AVAILABLE))
		goto pass;
	stats_in(RD(c->svc), did, p->tot_len, 0);
	ev_inc(GVS_EV_ICMP);
	if (d->method == GVS_FWD_ROUTE)
		return fwd_dr(ctx, p, d, now);
	if (d->method == GVS_FWD_TUNNEL)
		return fwd_tun(ctx, p, d, cfg, now);
	if (!is_nat(d))
		goto pass;
	x.saddr = p->saddr;
	x.daddr = d->addr[0];
	x.in_saddr = d->addr[0];
	x.in_sport = c->rport;
	x.in_daddr = p->in_daddr;
	x.in_dport = p->in_dport;
	if (d->method == GVS_FWD_FULLNAT) {
		x.saddr = c->laddr[0];
		x.in_daddr = c->laddr[0];
		x.in_dport = c->lport;
	}
	x.icmp_src = p->daddr;
	xlate_hop(&x, d);
	return nat_xmit(ctx, p, &x, now, 0);
pass:
	ev_inc(GVS_EV_PASS);
	return XDP_PASS;
}

/* The first packet of a connection: ip_vs_schedule and ip_vs_conn_new. */
__gvs_subprog int in_new(struct xdp_md *ctx, struct gvs_work *w, __u64 now)
{
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

	struct gvs_svc_key sk = {};
	struct gvs_svc *svc;
	int exact = 1;

	sk.addr[0] = p->daddr;
	sk.port = p->dport;
	sk.proto = p->proto;
	sk.af = 4;
	svc = bpf_map_lookup_elem(&services, &sk);
	if (!svc) {
		sk.port = 0;
		svc = bpf_map_lookup_elem(&services, &sk);
		exact = p->dport == 0;
	}
	if (!svc)
		goto pass;
	if (p->proto == IPPROTO_TCP &&
	    (!(p->tcpflags & TCPF_SYN) || (p->tcpflags & TCPF_RST)))
		goto pass;

	__u32 did = GVS_DEST_NONE;
	int persistent = svc->flags & GVS_SVC_F_PERSISTENT;

	if (persistent) {
		tmpl_key(tk, key, svc->netmask, exact);
		int r = sched_persist(svc, p, tk, now, cfg, &did);
		if (r == SP_REJECT)
			goto reject;
		if (r == SP_FULL) {
			ev_inc(GVS_EV_CONN_TABLE_FULL);
			return XDP_PASS;
		}
		if (r == SP_UNSUPPORTED) {
			ev_inc(GVS_EV_FWD_UNSUPPORTED);
			return XDP_PASS;
		}
	} else {
		if (!exact)
			goto pass; /* port-zero services need persistence */
		did = gvs_schedule(svc, p, now, cfg);
		if (did == GVS_DEST_NONE)
			goto reject;
	}
	struct gvs_dest *d = dest_get(did);
	if (!d)
		goto reject;
	if (!fwd_supported(d)) {
		ev_inc(GVS_EV_FWD_UNSUPPORTED);
		return XDP_PASS;
	}

	/* The connection as it is after this packet: created inactive and
	 * input-only, then the packet's transition (a SYN: SYN_RECV). */
	__builtin_memset(nc, 0, sizeof(*nc));
	nc->dest = did;
	nc->svc = svc->id;
	nc->state = p->proto == IPPROTO_TCP ? GVS_S_NONE : GVS_S_UDP;
	nc->flags = GVS_CONN_F_INACTIVE | GVS_CONN_F_NOOUTPUT |
		    (persistent ? GVS_CONN_F_CONTROLLED : 0);
	int active = 0;
	if (p->proto == IPPROTO_TCP) {
		__u8 next = tcp_next(GVS_S_NONE, is_nat(d) ? TCP_DIR_INPUT : TCP_DIR_INPUT_ONLY, p->tcpflags);
		if (next != GVS_S_NONE && state_active(next)) {
			nc->flags &= ~GVS_CONN_F_INACTIVE;
			active = 1;
		}
		nc->state = next;
	}
	nc->timeout = state_timeout(to, p->proto, nc->state);
	nc->expires = now + (__u64)nc->timeout * NS_PER_SEC;

	int one = (svc->flags & GVS_SVC_F_ONEPACKET) && p->proto == IPPROTO_UDP;
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
				ev_inc(GVS_EV_NO_LPORT);
				return XDP_DROP;
			}
		}
	}
	/* The reply entry: FULLNAT's was made by the port allocation. */
	reply_key(rk, d->addr[0], nc->laddr[0], nc->rport, nc->lport, p->proto);
	if (!one) {
		long err = bpf_map_update_elem(&conns, key, nc, BPF_NOEXIST);
		if (err) {
			if (nat && d->method == GVS_FWD_FULLNAT)
				bpf_map_delete_elem(&rconns, rk);
			if (err == -17 /* EEXIST */)
				return GVS_NEW_RACE;
			ev_inc(GVS_EV_CONN_TABLE_FULL);
			return XDP_PASS;
		}
		if (nat && d->method == GVS_FWD_MASQ &&
		    bpf_map_update_elem(&rconns, rk, key, BPF_ANY)) {
			bpf_map_delete_elem(&conns, key);
			ev_inc(GVS_EV_CONN_TABLE_FULL);
			return XDP_DROP;
		}
	}
	/* ip_vs_bind_dest, then set_tcp_state's move to active. */
	dest_bind(d, BIND_INACTIVE);
	if (active)
		dest_set_active(d, 1);
	stats_in(svc->id, did, p->tot_len, 1);
	if (persistent) {
		struct gvs_template *t = bpf_map_lookup_elem(&templates, tk);
		if (t) {
			if (!one)
				__sync_fetch_and_add(&t->n_control, 1);
			t->expires = now + (__u64)RD(t->timeout) * NS_PER_SEC;
		}
	}
	if (one) /* one-packet scheduling: gone after this datagram */
		dest_unbind(d, BIND_INACTIVE);
	return fwd(ctx, p, d, nc, cfg, now);

reject:
	/* ip_vs_leave: ICMP port unreachable, and the packet dropped. */
	ev_inc(GVS_EV_NO_DEST);
	if (icmp_reply(ctx, p, ICMP_ARG(ICMP_DEST_UNREACH, ICMP_PORT_UNREACH, 0), p->daddr, now) == 0)
		return XDP_TX;
	return XDP_DROP;
pass:
	ev_inc(GVS_EV_PASS);
	return XDP_PASS;
}

SEC("xdp")
int xdp_gvs(struct xdp_md *ctx)
{
	__u32 zero = 0;
	struct gvs_work *w = bpf_map_lookup_elem(&work, &zero);
	if (!w)
		return XDP_PASS;
	struct gvs_pkt *p = &w->p;
	__builtin_memset(p, 0, sizeof(*p));
	int r = parse_pkt(ctx, p);

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

	if (p->proto == IPPROTO_ICMP)
		return icmp_conn(ctx, p, now, cfg);

	struct gvs_conn_key *key = &w->key;
	__builtin_memset(key, 0, sizeof(*key));
	key->caddr[0] = p->saddr;
	key->vaddr[0] = p->daddr;
	key->cport = p->sport;
	key->vport = p->dport;
	key->proto = p->proto;
	key->af = 4;

	struct gvs_conn *c = bpf_map_lookup_elem(&conns, key);
	if (c && (RD(c->expires) <= now || conn_reopens(c, p))) {
		/* Expired (its timer would have fired) or reopened by a SYN. */
		conn_remove(key, c);
		c = 0;
	}
	if (!c) {
		/* A server's reply? (The entry's memory stays valid for this
		 * run even if another CPU deletes it: RCU.) */
		if (nat_src_maybe(p->saddr)) {
			struct gvs_conn_key *fk = bpf_map_lookup_elem(&rconns, key);
			if (fk)
				return out_conn(ctx, p, fk, now, to, cfg);
		}
		int v = in_new(ctx, w, now);
		if (v != GVS_NEW_RACE)
			return v;
		c = bpf_map_lookup_elem(&conns, key);
		if (!c)
			return XDP_PASS;
	}
	return in_conn(ctx, p, key, c, now, to, cfg);
}

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
