/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Tunnels between the families (IPVS takes a server of the other family
 * for tunnelling only): IPv4 in IPv6 (next header 4, as
 * ip_vs_tunnel_xmit_v6 sends an IPv4 connection to an IPv6 server) for
 * xdp_gvs, IPv6 in IPv4 (protocol 41, ip_vs_tunnel_xmit with an IPv6
 * connection) for xdp_gvs6. The outer header is the server's family, from
 * that family's tunnel source; the MTU left for the inner packet is the
 * way out's less the outer header, and an inner packet that does not fit
 * gets the inner family's error from the virtual address (too_big,
 * too_big6), as the same-family tunnels do.
 *
 * Included at the end of xdp_gvs.c, after v6.h (it needs v6_config and
 * too_big6); fwd.h and v6.h declare the two functions.
 */
#ifndef GVS_TUN46_H
#define GVS_TUN46_H

#define GVS_IPPROTO_IPV6 41

/* IPv4 in IPv6: the outer header from v6_config's tun_src to the server,
 * next header 4, traffic class the inner TOS, flow label 0, hop limit 64
 * (as IPv6-in-IPv6 here). */
__gvs_subprog int fwd_tun4in6(struct xdp_md *ctx, const struct gvs_pkt *p, const struct gvs_dest *d,
			      __u64 now)
{
	struct bpf_fib_lookup fib = {};
	__u32 zero = 0;
	struct gvs_config6 *c6 = bpf_map_lookup_elem(&v6_config, &zero);
	struct gvs_ifmac *hmac = ifmac_get(d->ifindex);

	if (!c6 || !(c6->tun_src[0] | c6->tun_src[1] | c6->tun_src[2] | c6->tun_src[3])) {
		ev_inc(GVS_EV_NO_ROUTE);
		return XDP_PASS;
	}
	long rc = tun_hop6(ctx, &fib, d, hmac, c6->tun_src, IPPROTO_IPIP, p->tot_len + 40);
	if (rc == BPF_FIB_LKUP_RET_FRAG_NEEDED)
		return too_big(ctx, p, fib.mtu_result, 40, now);
	if (rc != BPF_FIB_LKUP_RET_SUCCESS) {
		ev_inc(GVS_EV_NO_ROUTE);
		return XDP_PASS;
	}
	__u32 mtu;
	if (egress_too_big(ctx, hmac, fib.ifindex, p->tot_len, 40, &mtu))
		return too_big(ctx, p, mtu, 40, now);

	__u8 tos = p->tos;
	__u16 len = p->tot_len;
	/* [eth][vlan?][ip] -> [eth][ipv6][ip] */
	struct gvs_ip6hdr *o = tun_push(ctx, p->l3off, sizeof(*o), &fib, ETH_P_IPV6);
	if (!o)
		return XDP_PASS;
	o->vtc = 0x60 | (tos >> 4);
	o->tcfl = tos << 4;
	o->flow = 0;
	o->plen = bpf_htons(len);
	o->nexthdr = IPPROTO_IPIP;
	o->hlim = 64;
	addr6_cp(o->saddr, c6->tun_src);
	addr6_cp(o->daddr, d->addr);
	ev_inc(GVS_EV_FORWARD);
	if (fib.ifindex == ctx->ingress_ifindex)
		return XDP_TX;
	return bpf_redirect(fib.ifindex, 0);
}

/* IPv6 in IPv4: the outer header from config's tun_src to the server,
 * protocol 41, TOS the inner traffic class, TTL 64 (as IP-in-IP here),
 * DF clear and a fresh id (ip_vs_prepare_tunneled_skb gives an IPv6
 * inner packet df 0; the kernel's ip_select_ident: the outer packet may
 * be fragmented on the way, so ids must differ). */
__gvs_subprog int fwd_tun6in4(struct xdp_md *ctx, const struct gvs_pkt6 *p, const struct gvs_dest *d,
			      __u64 now)
{
	struct bpf_fib_lookup fib = {};
	__u32 zero = 0;
	struct gvs_config *cfg = bpf_map_lookup_elem(&config, &zero);
	struct gvs_ifmac *hmac = ifmac_get(d->ifindex);

	if (!cfg || !cfg->tun_src) {
		ev_inc(GVS_EV_NO_ROUTE);
		return XDP_PASS;
	}
	long rc = tun_hop4(ctx, &fib, d, hmac, cfg->tun_src, GVS_IPPROTO_IPV6, p->tclass, p->tot_len + 20);
	if (rc == BPF_FIB_LKUP_RET_FRAG_NEEDED)
		return too_big6(ctx, p, fib.mtu_result, 20, now);
	if (rc != BPF_FIB_LKUP_RET_SUCCESS) {
		ev_inc(GVS_EV_NO_ROUTE);
		return XDP_PASS;
	}
	__u32 mtu;
	if (egress_too_big(ctx, hmac, fib.ifindex, p->tot_len, 20, &mtu))
		return too_big6(ctx, p, mtu, 20, now);

	__u8 tclass = p->tclass;
	__u16 len = p->tot_len + 20;
	__u32 src = cfg->tun_src;
	/* [eth][vlan?][ipv6] -> [eth][ip][ipv6] */
	struct iphdr *o = tun_push(ctx, p->l3off, sizeof(*o), &fib, ETH_P_IP);
	if (!o)
		return XDP_PASS;
	o->version = 4;
	o->ihl = 5;
	o->tos = tclass;
	o->tot_len = bpf_htons(len);
	o->id = (__u16)bpf_get_prandom_u32();
	o->frag_off = 0;
	o->ttl = 64;
	o->protocol = GVS_IPPROTO_IPV6;
	o->check = 0;
	o->saddr = src;
	o->daddr = d->addr[0];
	o->check = csum_fold32(csum_words((__u16 *)o, sizeof(*o) / 2));
	ev_inc(GVS_EV_FORWARD);
	if (fib.ifindex == ctx->ingress_ifindex)
		return XDP_TX;
	return bpf_redirect(fib.ifindex, 0);
}

#endif
