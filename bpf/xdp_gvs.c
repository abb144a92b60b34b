//go:build ignore

// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * gvs XDP data path, part 1: IPv4, TCP and UDP, direct routing and
 * IP-in-IP tunnelling. What happens to a packet is ipvs/packet.go's In:
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

char _license[] SEC("license") = "Dual BSD/GPL";

#define GVS_NEW_RACE (-1) /* another CPU created the connection first */

/* What a template lookup decided (ip_vs_sched_persist). */
enum {
	SP_OK = 0,
	SP_REJECT,      /* no server */
	SP_FULL,        /* template table full */
	SP_UNSUPPORTED, /* the server is Masq/FULLNAT */
};

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
			conn_remove(key, c, p);
		ev_inc(GVS_EV_DROP_NODEST);
		return XDP_DROP;
	}
	stats_in(RD(c->svc), did, p->tot_len, 0);
	conn_set_state(c, d, p, to);
	c->expires = now + (__u64)RD(c->timeout) * NS_PER_SEC;
	return fwd(ctx, p, d, cfg, now);
}

/* The first packet of a connection: ip_vs_schedule and ip_vs_conn_new. */
static __always_inline int in_new(struct xdp_md *ctx, const struct gvs_pkt *p,
				  struct gvs_conn_key *key, __u64 now,
				  const struct gvs_timeouts *to, const struct gvs_config *cfg)
{
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
	struct gvs_conn_key tk;
	int persistent = svc->flags & GVS_SVC_F_PERSISTENT;

	if (persistent) {
		tmpl_key(&tk, p, svc->netmask, exact);
		int r = sched_persist(svc, p, &tk, now, cfg, &did);
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
	struct gvs_conn nc = {
		.dest = did,
		.svc = svc->id,
		.state = p->proto == IPPROTO_TCP ? GVS_S_NONE : GVS_S_UDP,
		.flags = GVS_CONN_F_INACTIVE | GVS_CONN_F_NOOUTPUT |
			 (persistent ? GVS_CONN_F_CONTROLLED : 0),
	};
	int active = 0;
	if (p->proto == IPPROTO_TCP) {
		__u8 next = tcp_next(GVS_S_NONE, 1, p->tcpflags);
		if (next != GVS_S_NONE && state_active(next)) {
			nc.flags &= ~GVS_CONN_F_INACTIVE;
			active = 1;
		}
		nc.state = next;
	}
	nc.timeout = state_timeout(to, p->proto, nc.state);
	nc.expires = now + (__u64)nc.timeout * NS_PER_SEC;

	int one = (svc->flags & GVS_SVC_F_ONEPACKET) && p->proto == IPPROTO_UDP;
	if (!one) {
		long err = bpf_map_update_elem(&conns, key, &nc, BPF_NOEXIST);
		if (err == -17 /* EEXIST */)
			return GVS_NEW_RACE;
		if (err) {
			ev_inc(GVS_EV_CONN_TABLE_FULL);
			return XDP_PASS;
		}
	}
	/* ip_vs_bind_dest, then set_tcp_state's move to active. */
	dest_bind(d, BIND_INACTIVE);
	if (active)
		dest_set_active(d, 1);
	stats_in(svc->id, did, p->tot_len, 1);
	if (persistent) {
		struct gvs_template *t = bpf_map_lookup_elem(&templates, &tk);
		if (t) {
			if (!one)
				__sync_fetch_and_add(&t->n_control, 1);
			t->expires = now + (__u64)RD(t->timeout) * NS_PER_SEC;
		}
	}
	if (one) /* one-packet scheduling: gone after this datagram */
		dest_unbind(d, BIND_INACTIVE);
	return fwd(ctx, p, d, cfg, now);

reject:
	/* ip_vs_leave: ICMP port unreachable, and the packet dropped. */
	ev_inc(GVS_EV_NO_DEST);
	if (icmp_reply(ctx, p, ICMP_ARG(ICMP_DEST_UNREACH, ICMP_PORT_UNREACH, 0), now) == 0)
		return XDP_TX;
	return XDP_DROP;
pass:
	ev_inc(GVS_EV_PASS);
	return XDP_PASS;
}

SEC("xdp")
int xdp_gvs(struct xdp_md *ctx)
{
	struct gvs_pkt p = {};
	int r = parse_pkt(ctx, &p);

	if (r != PARSE_OK) {
		ev_inc(r == PARSE_MALFORMED ? GVS_EV_MALFORMED : GVS_EV_PASS);
		return XDP_PASS;
	}

	__u32 zero = 0;
	struct gvs_timeouts *to = bpf_map_lookup_elem(&timeouts, &zero);
	struct gvs_config *cfg = bpf_map_lookup_elem(&config, &zero);
	if (!to || !cfg)
		return XDP_PASS;
	__u64 now = bpf_ktime_get_ns();

	struct gvs_conn_key key = {};
	key.caddr[0] = p.saddr;
	key.vaddr[0] = p.daddr;
	key.cport = p.sport;
	key.vport = p.dport;
	key.proto = p.proto;
	key.af = 4;

	struct gvs_conn *c = bpf_map_lookup_elem(&conns, &key);
	if (c && (RD(c->expires) <= now || conn_reopens(c, &p))) {
		/* Expired (its timer would have fired) or reopened by a SYN. */
		conn_remove(&key, c, &p);
		c = 0;
	}
	if (!c) {
		int v = in_new(ctx, &p, &key, now, to, cfg);
		if (v != GVS_NEW_RACE)
			return v;
		c = bpf_map_lookup_elem(&conns, &key);
		if (!c)
			return XDP_PASS;
	}
	return in_conn(ctx, &p, &key, c, now, to, cfg);
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
