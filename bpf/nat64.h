/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * NAT64 FULLNAT: an IPv6 service's IPv4 FULLNAT servers (DPVS's nat64).
 *
 * The connection is an IPv6 one (af 6 key: client and virtual address);
 * its server leg is IPv4: the local address (conn.laddr word 0, from the
 * service's IPv4 pool in laddrs4, or the route's source toward the
 * server) and port, to the server. Its reply entry is an IPv4 one (af 4
 * key, as the reply arrives), whose value is the IPv6 connection's key.
 *
 *   client -> server (xdp_gvs6, fwd6):  nat64_xmit, IPv6 -> IPv4, the
 *     header 20 bytes shorter (RFC 7915 5.1: TOS from traffic class,
 *     TTL from hop limit, DF set, id 0, protocol from next header);
 *   server -> client (xdp_gvs, the rconns hit): nat64_reply, IPv4 ->
 *     IPv6, 20 bytes longer (RFC 7915 4.1: traffic class from TOS, flow
 *     label 0, hop limit TTL - 1, from the VIP to the client).
 *
 * TCP and UDP checksums are updated for the pseudo-header's change: the
 * upper-layer length and protocol sum the same in both pseudo-headers,
 * so only the addresses (and ports) differ. Not translated, dropped and
 * counted nat64_unsupported: IPv6 fragments and extension headers, IPv4
 * fragments and options, a UDP datagram without a checksum from the
 * server (RFC 7915 4.5's default for a stateless translator). ICMP
 * errors about these connections, either way, are dropped and counted
 * nat64_icmp.
 *
 * Included at the end of v6.h's users (after v6.h): it uses both
 * programs' helpers.
 */
#ifndef GVS_NAT64_H
#define GVS_NAT64_H

/* laddrs4: an IPv6 service's IPv4 FULLNAT local addresses (its gvs_svc
 * laddrs hold the IPv6 ones), by service id. No entry, or n 0: the
 * route's source toward the server. */
struct gvs_laddrs4 {
	__u32 n;
	__u32 addrs[GVS_SVC_LADDRS]; /* network order */
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, __u32);
	__type(value, struct gvs_laddrs4);
} laddrs4 SEC(".maps");

#define IP_DF_NAT64 bpf_htons(0x4000)

/* The local address and port of a new NAT64 connection (lport_alloc's
 * search over the IPv4 pool, the reply key an IPv4 one whose value is
 * the IPv6 connection's key fk); a one-packet connection takes the first
 * address and the client's port. Sets w's new connection's laddr (word
 * 0) and lport; its rport is the server's port. Returns 0, or -1: no
 * free port. */
__gvs_subprog int nat64_laddr(struct xdp_md *ctx, struct gvs_work6 *w, __u32 svc,
			      const struct gvs_dest *d, int one)
{
	const struct gvs_conn_key *fk = &w->w.key;
	struct gvs_conn *nc = &w->w.nc;
	struct gvs_config *cfg = bpf_map_lookup_elem(&config, &(__u32){0});
	struct gvs_laddrs4 *pool = bpf_map_lookup_elem(&laddrs4, &svc);
	__u32 zero = 0;
	struct lport_search *s = bpf_map_lookup_elem(&lport_scratch, &zero);
	__u32 n = pool ? pool->n : 0;
	__u32 route = 0;

	if (!cfg || !s)
		return -1;
	if (n > GVS_SVC_LADDRS)
		n = GVS_SVC_LADDRS;
	if (!n)
		route = route_src(ctx, d->addr[0]);
	__builtin_memset(nc->laddr, 0, sizeof(nc->laddr));
	if (one) {
		nc->laddr[0] = n && pool ? pool->addrs[0] : route;
		return nc->laddr[0] ? 0 : -1;
	}
	__u32 lo = cfg->lport_min, hi = cfg->lport_max;
	if (!lo || hi < lo) {
		lo = LPORT_MIN;
		hi = LPORT_MAX;
	}
	__builtin_memset(&s->rk, 0, sizeof(s->rk));
	reply_init(&s->rv, fk);
	s->rk.caddr[0] = d->addr[0];
	s->rk.cport = nc->rport;
	s->rk.proto = fk->proto;
	s->rk.af = 4;
	s->min = lo;
	s->span = hi - lo + 1;
	__u32 first = n ? bpf_get_prandom_u32() % n : 0;
	__u32 tries = n ? LPORT_PROBES / n : LPORT_PROBES;
	if (tries < 4)
		tries = 4;
	if (s->span <= LPORT_PROBES)
		tries = s->span;

	for (int j = 0; j < GVS_SVC_LADDRS; j++) {
		__u32 a;
		if (n) {
			if (j >= n || !pool)
				break;
			__u32 idx = (first + j) % n;
			barrier_var(idx);
			a = pool->addrs[idx & (GVS_SVC_LADDRS - 1)];
		} else {
			if (j > 0)
				break;
			a = route;
		}
		if (!a)
			continue;
		s->rk.vaddr[0] = a;
		s->start = bpf_get_prandom_u32() % s->span;
		s->found = 0;
		bpf_loop(tries, lport_try, 0, 0);
		if (s->found == 1) {
			nc->laddr[0] = a;
			nc->lport = s->rk.vport;
			return 0;
		}
		if (s->found < 0)
			return -1;
	}
	return -1;
}

/* A packet the translator does not carry (see the top). */
static __always_inline int nat64_unsupported(void)
{
	ev_inc(GVS_EV_NAT64_UNSUPPORTED);
	return XDP_DROP;
}

/* An ICMP error about a NAT64 connection: not translated. */
static __always_inline int nat64_icmp_drop(void)
{
	ev_inc(GVS_EV_NAT64_ICMP);
	return XDP_DROP;
}

/* The IPv4 header of a translated packet, its checksum computed. */
static __always_inline void nat64_ip4(struct iphdr *ip, __u8 tos, __u16 len, __u8 ttl, __u8 proto,
				      __u32 saddr, __u32 daddr)
{
	struct iphdr h = {};

	h.version = 4;
	h.ihl = 5;
	h.tos = tos;
	h.tot_len = bpf_htons(len);
	h.frag_off = IP_DF_NAT64;
	h.ttl = ttl;
	h.protocol = proto;
	h.saddr = saddr;
	h.daddr = daddr;
	h.check = csum_fold32(csum_words((__u16 *)&h, 10));
	__builtin_memcpy(ip, &h, sizeof(h));
}

/* The L4 checksum and ports of a translated TCP or UDP packet at l4:
 * diff is the pseudo-header addresses' change. */
static __always_inline int nat64_l4(void *l4, void *data_end, __u8 proto, __u32 diff,
				    __u16 sport, __u16 dport)
{
	if (proto == IPPROTO_TCP) {
		struct tcphdr *th = l4;
		if ((void *)(th + 1) > data_end)
			return -1;
		diff += csum_diff16(th->source, sport) + csum_diff16(th->dest, dport);
		th->check = csum_replace(th->check, diff);
		th->source = sport;
		th->dest = dport;
		return 0;
	}
	struct udphdr *uh = l4;
	if ((void *)(uh + 1) > data_end)
		return -1;
	diff += csum_diff16(uh->source, sport) + csum_diff16(uh->dest, dport);
	__u16 c = csum_replace(uh->check, diff);
	uh->check = c ? c : 0xffff; /* 0 is no checksum in IPv4, invalid in IPv6 */
	uh->source = sport;
	uh->dest = dport;
	return 0;
}

/* Client -> server of NAT64 connection c (fwd6): the IPv6 packet becomes
 * an IPv4 one from the local address and port to server d. One too big
 * for the way to the server once translated is answered with packet too
 * big from the virtual address, its MTU that of the IPv6 packet that
 * would fit (the IPv4 MTU + 20). */
__gvs_subprog int nat64_xmit(struct xdp_md *ctx, const struct gvs_pkt6 *p, const struct gvs_dest *d,
			     const struct gvs_conn *c, __u64 now)
{
	struct bpf_fib_lookup fib = {};
	__u32 hop = d->ifindex;
	struct gvs_ifmac *src = ifmac_get(hop);
	__u32 saddr = c->laddr[0], daddr = d->addr[0];
	__u16 sport = c->lport, dport = c->rport;
	__u32 l3 = p->l3off == 18 ? 18 : 14;
	long rc;

	/* Extension headers (an atomic fragment's too) are not carried. */
	if (p->frag || p->l4off != l3 + 40 || (p->proto != IPPROTO_TCP && p->proto != IPPROTO_UDP))
		return nat64_unsupported();
	__u32 len = p->tot_len - 20;
	if (src) {
		__u32 mtu;
		fib.ifindex = hop;
		__builtin_memcpy(fib.dmac, d->mac, ETH_ALEN);
		__builtin_memcpy(fib.smac, src->mac, ETH_ALEN);
		rc = BPF_FIB_LKUP_RET_SUCCESS;
		if (egress_too_big(ctx, src, hop, len, 0, &mtu)) {
			rc = BPF_FIB_LKUP_RET_FRAG_NEEDED;
			fib.mtu_result = mtu;
		}
	} else {
		fib.family = AF_INET;
		fib.tos = p->tclass;
		fib.l4_protocol = p->proto;
		fib.tot_len = len;
		fib.ifindex = ctx->ingress_ifindex;
		fib.ipv4_src = saddr;
		fib.ipv4_dst = daddr;
		rc = bpf_fib_lookup(ctx, &fib, sizeof(fib), 0);
	}
	if (rc == BPF_FIB_LKUP_RET_FRAG_NEEDED) {
		ev_inc(GVS_EV_FRAG_NEEDED);
		if (icmp6_reply(ctx, p, ICMP_ARG(ICMPV6_PKT_TOOBIG_T, 0, fib.mtu_result + 20),
				(const struct gvs_addr6 *)p->daddr, now) == 0)
			return XDP_TX;
		return XDP_DROP;
	}
	if (rc != BPF_FIB_LKUP_RET_SUCCESS) {
		if (rc == BPF_FIB_LKUP_RET_NO_NEIGH) {
			__u32 nh = fib.ipv4_dst;
			bpf_map_update_elem(&neigh_miss, &nh, &now, BPF_ANY);
		}
		ev_inc(GVS_EV_NO_ROUTE);
		return XDP_DROP;
	}

	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct gvs_ip6hdr *ip6 = data + l3;
	if ((void *)(ip6 + 1) > data_end)
		return XDP_DROP;
	__u32 a4[4] = { saddr, 0, 0, 0 };
	__u32 diff = csum_diff128(ip6->saddr, a4);
	a4[0] = daddr;
	diff += csum_diff128(ip6->daddr, a4);
	if (nat64_l4((void *)(ip6 + 1), data_end, p->proto, diff, sport, dport))
		return XDP_DROP;
	/* [eth][vlan?][ipv6 40] -> [eth][ipv4 20]: the FIB chose the way
	 * out (no tag). */
	if (bpf_xdp_adjust_head(ctx, (int)l3 + 20 - 14))
		return XDP_DROP;
	data = (void *)(long)ctx->data;
	data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip = (void *)(eth + 1);
	if ((void *)(ip + 1) > data_end)
		return XDP_DROP;
	__builtin_memcpy(eth->h_dest, fib.dmac, ETH_ALEN);
	__builtin_memcpy(eth->h_source, fib.smac, ETH_ALEN);
	eth->h_proto = bpf_htons(ETH_P_IP);
	nat64_ip4(ip, p->tclass, len, p->hlim, p->proto, saddr, daddr);
	ev_inc(GVS_EV_FORWARD);
	if (fib.ifindex == ctx->ingress_ifindex)
		return XDP_TX;
	return bpf_redirect(fib.ifindex, 0);
}

/* nat64_reply's translation, once routed: the IPv4 header at l3 becomes
 * an IPv6 one from fk's virtual address and port to its client. */
__gvs_subprog int nat64_reply_xmit(struct xdp_md *ctx, const struct gvs_pkt *p,
				   const struct gvs_conn_key *fk, const struct bpf_fib_lookup *fib)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	__u32 l3 = p->l3off == 18 ? 18 : 14;
	struct iphdr *ip = data + l3;

	if ((void *)(ip + 1) > data_end)
		return XDP_DROP;
	__u8 tos = ip->tos, hlim = ip->ttl - 1, proto = ip->protocol;
	__u16 plen = bpf_ntohs(ip->tot_len) - 20;
	__u32 a4[4] = { ip->saddr, 0, 0, 0 };
	__u32 diff = csum_diff128(a4, fk->vaddr);
	a4[0] = ip->daddr;
	diff += csum_diff128(a4, fk->caddr);
	if (nat64_l4((void *)(ip + 1), data_end, proto, diff, fk->vport, fk->cport))
		return XDP_DROP;
	/* [eth][vlan?][ipv4 20] -> [eth][ipv6 40]: the FIB chose the way
	 * out (no tag). */
	if (bpf_xdp_adjust_head(ctx, (int)l3 + 20 - 54))
		return XDP_DROP;
	data = (void *)(long)ctx->data;
	data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct gvs_ip6hdr *ip6 = (void *)(eth + 1);
	if ((void *)(ip6 + 1) > data_end)
		return XDP_DROP;
	__builtin_memcpy(eth->h_dest, fib->dmac, ETH_ALEN);
	__builtin_memcpy(eth->h_source, fib->smac, ETH_ALEN);
	eth->h_proto = bpf_htons(ETH_P_IPV6);
	ip6->vtc = 0x60 | (tos >> 4);
	ip6->tcfl = tos << 4;
	ip6->flow = 0;
	ip6->plen = bpf_htons(plen);
	ip6->nexthdr = proto;
	ip6->hlim = hlim;
	addr6_cp(ip6->saddr, fk->vaddr);
	addr6_cp(ip6->daddr, fk->caddr);
	ev_inc(GVS_EV_REPLY);
	if (fib->ifindex == ctx->ingress_ifindex)
		return XDP_TX;
	return bpf_redirect(fib->ifindex, 0);
}

/* Server -> client: an IPv4 packet that matched a NAT64 connection's
 * reply entry (w->tk, the connection's key; xdp_gvs) becomes an IPv6 one
 * from the virtual address and port to the client, its hop limit the TTL
 * less one. Too big for the way to the client once translated: with DF,
 * fragmentation needed (the MTU less 20) to the server from the local
 * address; without, dropped (too_big: XDP cannot fragment). */
__gvs_subprog int nat64_reply(struct xdp_md *ctx, struct gvs_work *w, __u64 now)
{
	__u32 zero = 0;
	struct gvs_timeouts *to = bpf_map_lookup_elem(&timeouts, &zero);
	struct gvs_config *cfg = bpf_map_lookup_elem(&config, &zero);
	const struct gvs_pkt *p = &w->p;
	const struct gvs_conn_key *fk = &w->tk;
	struct bpf_fib_lookup fib = {};
	long rc;

	if (!to || !cfg)
		return XDP_PASS;
	struct gvs_conn *c = bpf_map_lookup_elem(&conns, fk);
	if (!c || RD(c->expires) <= now)
		goto pass;
	/* As out_conn: the connection must still own this reply tuple. */
	__u32 did = RD(c->dest);
	struct gvs_dest *d = dest_get(did);
	if (!d || d->af != 4 || !(RD(c->flags) & GVS_CONN_F_NAT) || d->addr[0] != p->saddr ||
	    c->rport != p->sport || c->laddr[0] != p->daddr || c->lport != p->dport ||
	    fk->proto != p->proto || fk->af != 6)
		goto pass;
	if (reply_ttl_expired(p))
		return XDP_PASS;
	if (p->frag || p->ihl != 20)
		return nat64_unsupported();
	__u32 l3 = p->l3off == 18 ? 18 : 14;
	if (p->proto == IPPROTO_UDP) {
		struct udphdr *uh = (void *)(long)ctx->data + l3 + 20;
		if ((void *)(uh + 1) > (void *)(long)ctx->data_end)
			return XDP_DROP;
		if (!uh->check)
			return nat64_unsupported();
	}
	stats_out(RD(c->svc), did, p->tot_len);
	if (!(RD(c->flags) & GVS_CONN_F_REPLIED))
		__sync_fetch_and_or((__u32 *)&c->state, (__u32)GVS_CONN_F_REPLIED << 8);
	conn_set_state(c, d, p, to, 1);
	c->expires = now + (__u64)RD(c->timeout) * NS_PER_SEC;

	__u32 len = p->tot_len + 20;
	if (cfg->hop_gen && RD(c->hop_gen) == cfg->hop_gen) {
		struct gvs_ifmac *src = ifmac_get(c->hop_ifindex);
		if (src) {
			__u32 mtu;
			fib.ifindex = c->hop_ifindex;
			__builtin_memcpy(fib.dmac, c->hop_mac, ETH_ALEN);
			__builtin_memcpy(fib.smac, src->mac, ETH_ALEN);
			rc = BPF_FIB_LKUP_RET_SUCCESS;
			if (egress_too_big(ctx, src, fib.ifindex, len, 0, &mtu)) {
				rc = BPF_FIB_LKUP_RET_FRAG_NEEDED;
				fib.mtu_result = mtu;
			}
			goto routed;
		}
	}
	fib.family = AF_INET6;
	fib.l4_protocol = p->proto;
	fib.tot_len = len;
	fib.ifindex = ctx->ingress_ifindex;
	addr6_cp(fib.ipv6_src, fk->vaddr);
	addr6_cp(fib.ipv6_dst, fk->caddr);
	rc = bpf_fib_lookup(ctx, &fib, sizeof(fib), 0);
	if (rc == BPF_FIB_LKUP_RET_SUCCESS && cfg->hop_gen) {
		c->hop_ifindex = fib.ifindex;
		__builtin_memcpy(c->hop_mac, fib.dmac, ETH_ALEN);
		c->hop_gen = cfg->hop_gen;
	}
routed:
	if (rc == BPF_FIB_LKUP_RET_FRAG_NEEDED) {
		__u32 m = fib.mtu_result > 20 ? fib.mtu_result - 20 : 0;
		if (p->frag_off & IP_DF_BE) {
			ev_inc(GVS_EV_FRAG_NEEDED);
			if (icmp_reply(ctx, p, ICMP_ARG(ICMP_DEST_UNREACH, ICMP_FRAG_NEEDED, m), p->daddr, now) == 0)
				return XDP_TX;
			return XDP_DROP;
		}
		ev_inc(GVS_EV_TOO_BIG);
		return XDP_DROP;
	}
	if (rc != BPF_FIB_LKUP_RET_SUCCESS) {
		if (rc == BPF_FIB_LKUP_RET_NO_NEIGH) {
			struct gvs_addr6 nh;
			addr6_cp(nh.a, fib.ipv6_dst);
			bpf_map_update_elem(&neigh_miss6, &nh, &now, BPF_ANY);
		}
		ev_inc(GVS_EV_NO_ROUTE);
		return XDP_DROP;
	}
	return nat64_reply_xmit(ctx, p, fk, &fib);
pass:
	ev_inc(GVS_EV_PASS);
	return XDP_PASS;
}

#endif
