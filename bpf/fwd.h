/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Forwarding: direct routing (MAC rewrite), IP-in-IP tunnelling, and the
 * ICMP errors IPVS answers with (port unreachable when no server may take
 * a connection, fragmentation needed when a packet with DF does not fit
 * the way to the server).
 */
#ifndef GVS_FWD_H
#define GVS_FWD_H

#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/in.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>
#include "gvs.h"
#include "maps.h"
#include "parse.h"
#include "csum.h"

#ifndef AF_INET
#define AF_INET 2
#endif

#define ICMP_DEST_UNREACH 3
#define ICMP_PORT_UNREACH 3
#define ICMP_FRAG_NEEDED  4

/* linux/icmp.h would drag in libc headers. */
struct gvs_icmphdr {
	__u8   type;
	__u8   code;
	__u16  checksum;
	__be16 unused;
	__be16 mtu;
};

#define ICMP_QUOTE 28

/* icmp_reply's argument: type, code and next-hop MTU in one word. */
#define ICMP_ARG(type, code, mtu) (((__u32)(type) << 24) | ((__u32)(code) << 16) | (__u16)(mtu)) /* the original IPv4 header (20) and 8 bytes of it */

/* icmp_global_allow-like: 1000 per second and per CPU, burst 50. */
static __always_inline int icmp_allow(__u64 now)
{
	__u32 zero = 0;
	struct gvs_icmp_rate *r = bpf_map_lookup_elem(&icmp_rate, &zero);

	if (!r)
		return 1;
	__u64 delta = now - r->last;
	if (delta >= 1000000) {
		__u64 t = r->tokens + delta / 1000000;
		r->tokens = t > 50 ? 50 : t;
		r->last = now;
	}
	if (r->tokens == 0)
		return 0;
	r->tokens -= 1;
	return 1;
}

/* Addresses icmp_send never answers. */
static __always_inline int icmp_source_ok(__u32 saddr)
{
	__u32 a = bpf_ntohl(saddr);

	return a != 0 && a != 0xffffffff && (a >> 28) != 0xe && (a >> 24) != 127;
}

/* Build the reply in a frame grown by ICMP_QUOTE at the front: the
 * original IPv4 header and its first 8 payload bytes then sit exactly
 * where the reply quotes them, after [eth][vlan?][ip 20][icmp 8]. l3off is
 * a constant (14 or 18) at each call. */
static __always_inline int icmp_build(struct xdp_md *ctx, const struct gvs_pkt *p,
				      __u32 l3off, __u32 arg, __u32 src)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	__u8 mac[2 * ETH_ALEN];
	__u32 vlan = 0;
	__u8 type = arg >> 24, code = arg >> 16;
	__u16 mtu = arg;

	if (data + ICMP_QUOTE + l3off + 20 + 8 + ICMP_QUOTE > data_end)
		return -1; /* cannot happen: the frame had l3off+28 bytes */
	/* The old Ethernet header, now ICMP_QUOTE bytes in. */
	__builtin_memcpy(mac, data + ICMP_QUOTE, 2 * ETH_ALEN);
	if (l3off == 18)
		vlan = *(__u32 *)(data + ICMP_QUOTE + 14);

	struct iphdr *ip = data + l3off;
	struct gvs_icmphdr *ic = (void *)(ip + 1);
	struct iphdr h = {};

	h.version = 4;
	h.ihl = 5;
	h.tos = (p->tos & 0x1e) | 0xc0; /* RT_TOS | IPTOS_PREC_INTERNETCONTROL */
	h.tot_len = bpf_htons(20 + 8 + ICMP_QUOTE);
	h.ttl = 64;
	h.protocol = IPPROTO_ICMP;
	h.saddr = src;
	h.daddr = p->saddr;
	h.check = csum_fold32(csum_words((__u16 *)&h, 10));

	__builtin_memcpy(data, mac + ETH_ALEN, ETH_ALEN); /* to the sender */
	__builtin_memcpy(data + ETH_ALEN, mac, ETH_ALEN);
	if (l3off == 18) {
		*(__be16 *)(data + 12) = ETH_P_8021Q_BE;
		*(__u32 *)(data + 14) = vlan;
	}
	*(__be16 *)(data + l3off - 2) = bpf_htons(ETH_P_IP);
	__builtin_memcpy(ip, &h, sizeof(h));
	ic->type = type;
	ic->code = code;
	ic->checksum = 0;
	ic->unused = 0;
	ic->mtu = bpf_htons(mtu);
	ic->checksum = csum_fold32(csum_words((__u16 *)ic, (8 + ICMP_QUOTE) / 2));

	long extra = (data_end - data) - (long)(l3off + 20 + 8 + ICMP_QUOTE);
	if (extra > 0 && bpf_xdp_adjust_tail(ctx, -(int)extra))
		return -1;
	return 0;
}

/* Turn the packet into an ICMP error to its sender, from src (an address
 * of the director), sent back out of the interface it came in on, to the
 * MAC it came from (icmp_send). Returns 0 when the packet is now the
 * reply (XDP_TX it); otherwise the packet was left as it was. Quotes the
 * IPv4 header (no options) and 8 bytes. */
__gvs_subprog int icmp_reply(struct xdp_md *ctx, const struct gvs_pkt *p, __u32 arg, __u32 src,
			     __u64 now)
{
	if (p->ihl != 20 || !icmp_source_ok(p->saddr) || !icmp_allow(now))
		return -1;
	if (bpf_xdp_adjust_head(ctx, -ICMP_QUOTE))
		return -1;
	int r = p->l3off == 18 ? icmp_build(ctx, p, 18, arg, src)
			       : icmp_build(ctx, p, 14, arg, src);
	if (r)
		bpf_xdp_adjust_head(ctx, ICMP_QUOTE); /* give the room back */
	return r;
}

/* A packet too big for the way to the server (ensure_mtu_is_adequate):
 * with DF, answer fragmentation needed with the MTU left for it; without,
 * the kernel would fragment, which XDP cannot: pass it to the stack. */
static __always_inline int too_big(struct xdp_md *ctx, const struct gvs_pkt *p, __u32 mtu,
				   __u32 overhead, __u64 now)
{
	if (p->frag_off & IP_DF_BE) {
		__u32 m = mtu > overhead ? mtu - overhead : 0;
		ev_inc(GVS_EV_FRAG_NEEDED);
		if (icmp_reply(ctx, p, ICMP_ARG(ICMP_DEST_UNREACH, ICMP_FRAG_NEEDED, m), p->daddr, now) == 0)
			return XDP_TX;
		return XDP_DROP;
	}
	ev_inc(GVS_EV_TOO_BIG);
	return XDP_PASS;
}

/* Whether len bytes, grown by delta, do not fit the way out of ifindex:
 * by the MTU gvsd keeps in ifmacs (m), else by the kernel's
 * bpf_check_mtu. When they do not, *mtu is the interface's MTU. */
static __always_inline int egress_too_big(struct xdp_md *ctx, const struct gvs_ifmac *m,
					  __u32 ifindex, __u32 len, __u32 delta, __u32 *mtu)
{
	if (m && m->mtu) {
		*mtu = m->mtu;
		return len + delta > m->mtu;
	}
	*mtu = len;
	return bpf_check_mtu(ctx, ifindex, mtu, delta, 0) == BPF_MTU_CHK_RET_FRAG_NEEDED;
}

/* Direct routing: the frame goes to the server's MAC unchanged above L2
 * (VLAN tag included); IPVS does not touch the IP header either. */
__gvs_subprog int fwd_dr(struct xdp_md *ctx, const struct gvs_pkt *p,
				  const struct gvs_dest *d, __u64 now)
{
	__u32 ifindex = d->ifindex;
	struct gvs_ifmac *src = ifmac_get(ifindex);

	if (!src) {
		ev_inc(GVS_EV_NO_ROUTE);
		return XDP_PASS;
	}
	__u32 mtu;
	if (ifindex != ctx->ingress_ifindex && egress_too_big(ctx, src, ifindex, p->tot_len, 0, &mtu))
		return too_big(ctx, p, mtu, 0, now);
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;

	if ((void *)(eth + 1) > data_end)
		return XDP_PASS;
	__builtin_memcpy(eth->h_dest, d->mac, ETH_ALEN);
	__builtin_memcpy(eth->h_source, src->mac, ETH_ALEN);
	ev_inc(GVS_EV_FORWARD);
	if (ifindex == ctx->ingress_ifindex)
		return XDP_TX;
	return bpf_redirect(ifindex, 0);
}

/* The way to tunnel server d: the next hop gvsd resolved for it (its MAC
 * on its interface, whose ifmacs entry is hmac), else the IPv4 FIB's for
 * an outer packet of tot_len bytes from src. BPF_FIB_LKUP_RET_SUCCESS
 * with fib's ifindex and MACs set, FRAG_NEEDED with fib->mtu_result, or
 * another failure. Shared by the tunnels with an IPv4 outer header (v6.h's
 * tun_hop6 for IPv6 ones). */
static __always_inline long tun_hop4(struct xdp_md *ctx, struct bpf_fib_lookup *fib,
				     const struct gvs_dest *d, const struct gvs_ifmac *hmac,
				     __u32 src, __u8 proto, __u8 tos, __u16 tot_len)
{
	if (hmac) {
		fib->ifindex = d->ifindex;
		__builtin_memcpy(fib->dmac, d->mac, ETH_ALEN);
		__builtin_memcpy(fib->smac, hmac->mac, ETH_ALEN);
		return BPF_FIB_LKUP_RET_SUCCESS;
	}
	fib->family = AF_INET;
	fib->tos = tos;
	fib->l4_protocol = proto;
	fib->tot_len = tot_len;
	fib->ifindex = ctx->ingress_ifindex;
	fib->ipv4_src = src;
	fib->ipv4_dst = d->addr[0];
	return bpf_fib_lookup(ctx, fib, sizeof(*fib), 0);
}

/* Room for a tunnel's outer header of hlen bytes in place of the frame's
 * link layer (and VLAN tag), behind an Ethernet header to fib's next hop
 * of type h_proto: where the outer header goes, or NULL with the frame
 * as it was (counted no_route). */
static __always_inline void *tun_push(struct xdp_md *ctx, __u16 l3off, int hlen,
				      const struct bpf_fib_lookup *fib, __u16 h_proto)
{
	int grow = hlen - ((int)l3off - (int)sizeof(struct ethhdr));

	if (bpf_xdp_adjust_head(ctx, -grow)) {
		ev_inc(GVS_EV_NO_ROUTE);
		return 0;
	}
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;

	if ((void *)(eth + 1) + hlen > data_end)
		return 0; /* cannot happen: the frame just grew */
	__builtin_memcpy(eth->h_dest, fib->dmac, ETH_ALEN);
	__builtin_memcpy(eth->h_source, fib->smac, ETH_ALEN);
	eth->h_proto = bpf_htons(h_proto);
	return eth + 1;
}

/* IPv4 in IPv6, to a server of the other family (tun46.h). */
__gvs_subprog int fwd_tun4in6(struct xdp_md *ctx, const struct gvs_pkt *p, const struct gvs_dest *d,
			      __u64 now);

/* IP-in-IP (ip_vs_tunnel_xmit): an outer IPv4 header from the director's
 * tun_src to the server, routed by the FIB. A VLAN tag of the incoming
 * frame is not kept: the FIB chooses the way out. */
__gvs_subprog int fwd_tun(struct xdp_md *ctx, const struct gvs_pkt *p,
				   const struct gvs_dest *d, const struct gvs_config *cfg, __u64 now)
{
	struct bpf_fib_lookup fib = {};
	__u32 src = cfg->tun_src;
	struct gvs_ifmac *hmac = ifmac_get(d->ifindex);

	if (!src) {
		ev_inc(GVS_EV_NO_ROUTE);
		return XDP_PASS;
	}
	long rc = tun_hop4(ctx, &fib, d, hmac, src, IPPROTO_IPIP, p->tos, p->tot_len + sizeof(struct iphdr));
	if (rc == BPF_FIB_LKUP_RET_FRAG_NEEDED)
		return too_big(ctx, p, fib.mtu_result, sizeof(struct iphdr), now);
	if (rc != BPF_FIB_LKUP_RET_SUCCESS) {
		ev_inc(GVS_EV_NO_ROUTE);
		return XDP_PASS;
	}
	__u32 mtu;
	if (egress_too_big(ctx, hmac, fib.ifindex, p->tot_len, sizeof(struct iphdr), &mtu))
		return too_big(ctx, p, mtu, sizeof(struct iphdr), now);

	struct iphdr o = {};
	o.version = 4;
	o.ihl = 5;
	o.tos = p->tos;
	o.tot_len = bpf_htons(p->tot_len + sizeof(struct iphdr));
	o.id = 0;
	o.frag_off = p->frag_off & IP_DF_BE;
	o.ttl = 64;
	o.protocol = IPPROTO_IPIP;
	o.saddr = src;
	o.daddr = d->addr[0];
	o.check = csum_fold32(csum_words((__u16 *)&o, sizeof(o) / 2));

	/* [eth][vlan?][ip] -> [eth][outer ip][ip] */
	struct iphdr *ip = tun_push(ctx, p->l3off, sizeof(*ip), &fib, ETH_P_IP);
	if (!ip)
		return XDP_PASS;
	*ip = o;
	ev_inc(GVS_EV_FORWARD);
	if (fib.ifindex == ctx->ingress_ifindex)
		return XDP_TX;
	return bpf_redirect(fib.ifindex, 0);
}

/* TUN by the server's family: IPv4 in IPv4, or in IPv6. */
static __always_inline int fwd_tun_any(struct xdp_md *ctx, const struct gvs_pkt *p,
				       const struct gvs_dest *d, const struct gvs_config *cfg, __u64 now)
{
	if (d->af == 6)
		return fwd_tun4in6(ctx, p, d, now);
	if (d->af != 4) {
		ev_inc(GVS_EV_FAMILY);
		return XDP_PASS;
	}
	return fwd_tun(ctx, p, d, cfg, now);
}

#endif
