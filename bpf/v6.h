/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The IPv6 data path: program xdp_gvs6, which xdp_gvs tail-calls for
 * every IPv6 frame (progs.h). It shares the maps (services, dests,
 * conns with af 6 keys, rconns, templates, counters) and the scheduler
 * and connection-state code with IPv4; what differs is here: the parser
 * (extension headers walked within a fixed bound), DR, IPv6-in-IPv6
 * tunnelling, NAT and FULLNAT of IPv6 on both sides, ICMPv6 errors sent
 * (packet too big, port unreachable) and ICMPv6 errors about a
 * connection translated. Fragments (other than atomic ones) pass to the
 * stack, counted.
 *
 * Included at the end of xdp_gvs.c: it uses its helpers (conn_reserve,
 * sched_persist, in-path conventions) as they are.
 */
#ifndef GVS_V6_H
#define GVS_V6_H

#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/tcp.h>
#include <linux/udp.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#ifndef AF_INET6
#define AF_INET6 10
#endif

#define IPPROTO_ICMPV6_GVS 58
#define NEXTHDR_HOP      0
#define NEXTHDR_ROUTING  43
#define NEXTHDR_FRAGMENT 44
#define NEXTHDR_DEST     60

/* The walk's bound: at most this many extension headers, ending within
 * this many bytes after the fixed header. */
#define GVS_V6_EXT_MAX   6
#define GVS_V6_EXT_BYTES 512

#define ICMPV6_DEST_UNREACH_T 1
#define ICMPV6_PKT_TOOBIG_T   2
#define ICMPV6_TIME_EXCEED_T  3
#define ICMPV6_PORT_UNREACH_C 4

#define PARSE_V6_EXT  10 /* walk bound or an unwalked extension: pass */
#define PARSE_V6_FRAG 11 /* a fragment not handled: pass */

struct gvs_ip6hdr {
	__u8   vtc;       /* version, traffic class high bits */
	__u8   tcfl;
	__u16  flow;
	__be16 plen;
	__u8   nexthdr;
	__u8   hlim;
	__u32  saddr[4];
	__u32  daddr[4];
};

/* What the IPv6 path reads from a packet. */
struct gvs_pkt6 {
	__u32 saddr[4];
	__u32 daddr[4];
	__u32 in_saddr[4];  /* ICMPv6 errors: the quoted packet's */
	__u32 in_daddr[4];
	__u16 sport;
	__u16 dport;
	__u16 in_sport;
	__u16 in_dport;
	__u16 tot_len;      /* 40 + payload length: what IPVS counts */
	__u16 l3off;        /* 14 or 18 */
	__u16 l4off;        /* from ctx->data, after the extension headers */
	__u8  proto;
	__u8  tcpflags;
	__u8  tclass;
	__u8  hlim;
	__u8  icmp_type;
	__u8  in_proto;
	__u8  frag;         /* GVS_FRAG_* */
	__u8  pad[3];
	__u32 frag_id;      /* fragments: the fragment header's id */
};

/* The IPv6 path's working state: the IPv4 one (whose gvs_pkt holds the
 * packet with folded addresses, what the schedulers and the state code
 * read), the IPv6 packet, and a translation. */
struct nat_xlate6 {
	__u32 saddr[4];
	__u32 daddr[4];
	__u32 in_saddr[4];
	__u32 in_daddr[4];
	__u32 icmp_src[4];
	__u16 sport;
	__u16 dport;
	__u16 in_sport;
	__u16 in_dport;
	__u8  output;
	__u8  pad[3];
	__u32 hop_ifindex;
	__u8  hop_mac[6];
	__u16 pad2;
	__u32 hop_gen;
};

struct gvs_work6 {
	struct gvs_work w;
	struct gvs_pkt6 p6;
	struct gvs_pkt6 orig6;   /* schedule_icmp: the error, while its quote is scheduled */
	struct nat_xlate6 x;
	struct gvs_conn_key fk;
	struct gvs_svc_key sk;
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct gvs_work6);
} work6 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct gvs_config6);
} v6_config SEC(".maps");

/* neigh_miss for IPv6 next hops (key: the address, value: when). */
struct gvs_addr6 {
	__u32 a[4];
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 4096);
	__type(key, struct gvs_addr6);
	__type(value, __u64);
} neigh_miss6 SEC(".maps");

/* frags for IPv6: a first fragment's ports by (source, destination,
 * fragment id, protocol). */
struct gvs_frag6_key {
	__u32 saddr[4];
	__u32 daddr[4];
	__u32 id;
	__u8  proto;
	__u8  pad[3];
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, struct gvs_frag6_key);
	__type(value, struct gvs_frag);
} frags6 SEC(".maps");

_Static_assert(sizeof(struct gvs_frag6_key) <= sizeof(struct gvs_conn_key),
	       "frags6's key is built in gvs_work6.fk");

/* The kernel's addr_fold: what sh, dh, mh and lblc hash an IPv6 address
 * by (and the nat_srcs filter's bit). */
static __always_inline __u32 fold6(const __u32 *a)
{
	return a[0] ^ a[1] ^ a[2] ^ a[3];
}

static __always_inline int addr6_eq(const __u32 *a, const __u32 *b)
{
	return a[0] == b[0] && a[1] == b[1] && a[2] == b[2] && a[3] == b[3];
}

static __always_inline void addr6_cp(__u32 *d, const __u32 *s)
{
	d[0] = s[0];
	d[1] = s[1];
	d[2] = s[2];
	d[3] = s[3];
}

static __always_inline int nat_src_maybe6(const __u32 *a)
{
	return nat_src_maybe(fold6(a));
}

/* ---- parsing ---- */

/* ICMPv6 errors IPVS relates to a connection: the quoted IPv6 header
 * (without extension headers) of a TCP, UDP or SCTP packet, and its
 * ports. */
static __always_inline int parse6_icmp(struct gvs_pkt6 *p, void *l4, void *data_end, __u32 len)
{
	__u8 *ic = l4;
	struct gvs_ip6hdr *in = l4 + 8;

	if ((void *)(in + 1) + 4 > data_end || len < 8 + sizeof(*in) + 4)
		return PARSE_NOT_OURS;
	if (ic[0] != ICMPV6_DEST_UNREACH_T && ic[0] != ICMPV6_PKT_TOOBIG_T &&
	    ic[0] != ICMPV6_TIME_EXCEED_T)
		return PARSE_NOT_OURS; /* NDP, echo, ...: the stack's */
	if ((in->vtc >> 4) != 6 || (in->nexthdr != IPPROTO_TCP && in->nexthdr != IPPROTO_UDP &&
				    in->nexthdr != IPPROTO_SCTP))
		return PARSE_NOT_OURS;
	__u16 *ports = (void *)(in + 1);
	p->icmp_type = ic[0];
	addr6_cp(p->in_saddr, in->saddr);
	addr6_cp(p->in_daddr, in->daddr);
	p->in_sport = ports[0];
	p->in_dport = ports[1];
	p->in_proto = in->nexthdr;
	return PARSE_OK;
}

__gvs_subprog int parse6(struct xdp_md *ctx, struct gvs_pkt6 *p)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	__u32 l3 = sizeof(*eth);

	if ((void *)(eth + 1) > data_end)
		return PARSE_MALFORMED;
	if (eth->h_proto == ETH_P_8021Q_BE)
		l3 = 18; /* xdp_gvs checked the tag: one, then IPv6 */

	struct gvs_ip6hdr *ip = data + l3;
	if ((void *)(ip + 1) > data_end)
		return PARSE_MALFORMED;
	if ((ip->vtc >> 4) != 6)
		return PARSE_MALFORMED;
	__u32 plen = bpf_ntohs(ip->plen);
	if (plen == 0)
		return PARSE_NOT_OURS; /* a jumbogram, or nothing */
	void *ip_end = (void *)(ip + 1) + plen;
	barrier_var(ip_end);
	if (ip_end > data_end)
		return PARSE_MALFORMED;

	addr6_cp(p->saddr, ip->saddr);
	addr6_cp(p->daddr, ip->daddr);
	p->tot_len = 40 + plen;
	p->l3off = l3;
	p->tclass = (ip->vtc << 4) | (ip->tcfl >> 4);
	p->hlim = ip->hlim;

	/* Extension headers, within the bound. */
	__u8 nh = ip->nexthdr;
	__u32 off = 0; /* bytes of extension headers */
	int i;
	for (i = 0; i <= GVS_V6_EXT_MAX; i++) {
		if (nh == IPPROTO_TCP || nh == IPPROTO_UDP || nh == IPPROTO_ICMPV6_GVS ||
		    nh == IPPROTO_SCTP)
			break;
		if (i == GVS_V6_EXT_MAX)
			return PARSE_V6_EXT;
		if (nh != NEXTHDR_HOP && nh != NEXTHDR_ROUTING && nh != NEXTHDR_DEST &&
		    nh != NEXTHDR_FRAGMENT) {
			/* AH, ESP, mobility, HIP, shim6, experimental: not
			 * walked; anything else: a protocol not ours. */
			if (nh == 51 || nh == 50 || nh == 135 || nh == 139 || nh == 140 ||
			    nh == 253 || nh == 254)
				return PARSE_V6_EXT;
			return PARSE_NOT_OURS;
		}
		if (off > GVS_V6_EXT_BYTES)
			return PARSE_V6_EXT;
		__u8 *h = (void *)(ip + 1) + off;
		if ((void *)(h + 8) > data_end || off + 8 > plen)
			return PARSE_MALFORMED;
		if (nh == NEXTHDR_FRAGMENT) {
			/* Offset and M flag both zero: an atomic fragment,
			 * a whole packet (RFC 6946). Else TCP and UDP
			 * fragments follow their first one (frags6), as
			 * IPv4's do; a second fragment header is not ours. */
			__u16 fo = *(__u16 *)(h + 2);
			nh = h[0];
			off += 8;
			if (!(fo & bpf_htons(0xfff9)))
				continue;
			if (p->frag || (nh != IPPROTO_TCP && nh != IPPROTO_UDP))
				return PARSE_V6_FRAG;
			p->frag_id = *(__u32 *)(h + 4);
			if (fo & bpf_htons(0xfff8)) {
				p->frag = GVS_FRAG_LATER;
				p->proto = nh;
				return PARSE_FRAG;
			}
			p->frag = GVS_FRAG_FIRST;
			continue;
		}
		nh = h[0];
		off += ((__u32)h[1] + 1) * 8;
	}
	if (off > GVS_V6_EXT_BYTES)
		return PARSE_V6_EXT;
	if (off + 8 > plen)
		return PARSE_MALFORMED;
	__u32 l4len = plen - off;
	__u32 l4off = l3 + 40 + off;
	p->l4off = l4off;
	p->proto = nh;
	void *l4 = data + l4off;

	if (nh == IPPROTO_TCP) {
		struct tcphdr *th = l4;
		if ((void *)(th + 1) > data_end || l4len < sizeof(*th))
			return PARSE_MALFORMED;
		if (th->doff < 5 || th->doff * 4 > l4len)
			return PARSE_MALFORMED;
		p->sport = th->source;
		p->dport = th->dest;
		p->tcpflags = ((__u8 *)th)[13];
		return PARSE_OK;
	}
	if (nh == IPPROTO_UDP) {
		struct udphdr *uh = l4;
		if ((void *)(uh + 1) > data_end)
			return PARSE_MALFORMED;
		__u32 ulen = bpf_ntohs(uh->len);
		/* A zero checksum is invalid in IPv6 (RFC 8200 8.1). A
		 * first fragment carries only part of the datagram. */
		if (ulen < sizeof(*uh) || (ulen > l4len && p->frag != GVS_FRAG_FIRST) || uh->check == 0)
			return PARSE_MALFORMED;
		p->sport = uh->source;
		p->dport = uh->dest;
		return PARSE_OK;
	}
	if (nh == IPPROTO_SCTP) {
		/* sctp.h: the first chunk's event in tcpflags, as IPv4's
		 * (fragments of SCTP were passed above, PARSE_V6_FRAG). */
		int ev = sctp_hdr_event(l4, data_end, l4len);
		if (ev < 0)
			return PARSE_MALFORMED;
		p->sport = *(__u16 *)l4;
		p->dport = *(__u16 *)(l4 + 2);
		p->tcpflags = ev;
		return PARSE_OK;
	}
	return parse6_icmp(p, l4, data_end, l4len);
}

/* ---- ICMPv6 errors sent ---- */

#define ICMP6_GROW  48   /* the new IPv6 header and ICMPv6 header */
#define ICMP6_QUOTE 1232 /* 1280 - 48: the reply fits the minimum MTU */

static __always_inline int icmp6_source_ok(const __u32 *a)
{
	__u8 b0 = a[0] & 0xff;

	if (b0 == 0xff)
		return 0; /* multicast */
	if (!(a[0] | a[1] | a[2]))
		return a[3] != 0 && a[3] != bpf_htonl(1); /* :: and ::1 */
	return 1;
}

static __always_inline __u16 fold64(__u64 s)
{
	s = (s & 0xffffffff) + (s >> 32);
	s = (s & 0xffffffff) + (s >> 32);
	return csum_fold32((__u32)(s & 0xffff) + (__u32)(s >> 16));
}

/* Build the reply in a frame grown by ICMP6_GROW at the front: the
 * original packet then starts where the reply quotes it, after
 * [eth][vlan?][ipv6 40][icmpv6 8]; the quote is cut to q bytes (a
 * multiple of 4). l3off is a constant at each call. */
static __always_inline int icmp6_build(struct xdp_md *ctx, const struct gvs_pkt6 *p, __u32 l3off,
				       __u32 arg, const __u32 *src, __u32 q)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	__u8 mac[2 * ETH_ALEN];
	__u32 vlan = 0;

	if (data + ICMP6_GROW + l3off + 40 > data_end)
		return -1;
	__builtin_memcpy(mac, data + ICMP6_GROW, 2 * ETH_ALEN);
	if (l3off == 18)
		vlan = *(__u32 *)(data + ICMP6_GROW + 14);
	__builtin_memcpy(data, mac + ETH_ALEN, ETH_ALEN);
	__builtin_memcpy(data + ETH_ALEN, mac, ETH_ALEN);
	if (l3off == 18) {
		*(__be16 *)(data + 12) = ETH_P_8021Q_BE;
		*(__u32 *)(data + 14) = vlan;
	}
	*(__be16 *)(data + l3off - 2) = bpf_htons(ETH_P_IPV6);

	struct gvs_ip6hdr *ip = data + l3off;
	__u8 *ic = (void *)(ip + 1);
	ip->vtc = 0x60;
	ip->tcfl = 0;
	ip->flow = 0;
	ip->plen = bpf_htons(8 + q);
	ip->nexthdr = IPPROTO_ICMPV6_GVS;
	ip->hlim = 64;
	addr6_cp(ip->saddr, src);
	addr6_cp(ip->daddr, p->saddr);
	ic[0] = arg >> 24;
	ic[1] = arg >> 16;
	*(__u16 *)(ic + 2) = 0;
	*(__u32 *)(ic + 4) = (arg >> 24) == ICMPV6_PKT_TOOBIG_T ? bpf_htonl(arg & 0xffff) : 0;

	/* The pseudo-header (RFC 8200 8.1) and the ICMPv6 header. */
	__u64 sum = csum_words((__u16 *)ip->saddr, 16);
	sum += bpf_htons(8 + q) + bpf_htons(IPPROTO_ICMPV6_GVS);
	sum += csum_words((__u16 *)ic, 4);

	long extra = (data_end - data) - (long)(l3off + ICMP6_GROW + q);
	if (extra > 0 && bpf_xdp_adjust_tail(ctx, -(int)extra))
		return -1;
	data = (void *)(long)ctx->data;
	data_end = (void *)(long)ctx->data_end;
	__u32 done = 0;
	for (int i = 0; i < ICMP6_QUOTE / 64; i++) {
		if (done + 64 > q)
			break;
		void *c = data + l3off + ICMP6_GROW + done;
		if (c + 64 > data_end)
			return -1;
		sum += (__u32)bpf_csum_diff(0, 0, c, 64, 0);
		done += 64;
	}
	for (int i = 0; i < 16; i++) {
		if (done + 4 > q)
			break;
		__u32 *c = data + l3off + ICMP6_GROW + (done & 0x7ff);
		if ((void *)(c + 1) > data_end)
			return -1;
		sum += (*c & 0xffff) + (*c >> 16);
		done += 4;
	}
	if (data + l3off + 44 > data_end)
		return -1;
	*(__u16 *)(data + l3off + 42) = fold64(sum);
	return 0;
}

/* icmp_reply for IPv6 (icmpv6_send): the packet becomes an ICMPv6 error
 * to its sender from src, quoting as much of it as fits 1280 bytes
 * (cut to 4-byte words), rate limited with IPv4's. arg as ICMP_ARG.
 * Returns 0 when the packet is now the reply (XDP_TX it). */
__attribute__((noinline)) int icmp6_reply(struct xdp_md *ctx, const struct gvs_pkt6 *p, __u32 arg,
					  const struct gvs_addr6 *src6, __u64 now)
{
	/* A global function, verified once rather than at each of its
	 * callers (the IPv6 program is within 20% of the verifier's limit). */
	if (!p || !src6)
		return -1;
	const __u32 *src = src6->a;
	if (!icmp6_source_ok(p->saddr) || !icmp_allow(now))
		return -1;
	__u32 q = p->tot_len;
	if (q > ICMP6_QUOTE)
		q = ICMP6_QUOTE;
	q &= ~3u;
	if (bpf_xdp_adjust_head(ctx, -ICMP6_GROW))
		return -1;
	int r = p->l3off == 18 ? icmp6_build(ctx, p, 18, arg, src, q)
			       : icmp6_build(ctx, p, 14, arg, src, q);
	if (r)
		bpf_xdp_adjust_head(ctx, ICMP6_GROW);
	return r;
}

/* A packet too big for the way to the server: IPv6 is never fragmented
 * on the way, so always packet too big, from the virtual address. */
static __always_inline int too_big6(struct xdp_md *ctx, const struct gvs_pkt6 *p, __u32 mtu,
				    __u32 overhead, __u64 now)
{
	__u32 m = mtu > overhead ? mtu - overhead : 0;

	ev_inc(GVS_EV_FRAG_NEEDED);
	if (p->proto != IPPROTO_ICMPV6_GVS &&
	    icmp6_reply(ctx, p, ICMP_ARG(ICMPV6_PKT_TOOBIG_T, 0, m), (const struct gvs_addr6 *)p->daddr, now) == 0)
		return XDP_TX;
	return XDP_DROP;
}

/* ---- DR, TUN ---- */

__gvs_subprog int fwd_dr6(struct xdp_md *ctx, const struct gvs_pkt6 *p, const struct gvs_dest *d,
			  __u64 now)
{
	__u32 ifindex = d->ifindex;
	struct gvs_ifmac *src = ifmac_get(ifindex);

	if (!src) {
		ev_inc(GVS_EV_NO_ROUTE);
		return XDP_PASS;
	}
	__u32 mtu;
	if (ifindex != ctx->ingress_ifindex && egress_too_big(ctx, src, ifindex, p->tot_len, 0, &mtu))
		return too_big6(ctx, p, mtu, 0, now);
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

/* tun_hop4 (fwd.h) for a tunnel with an IPv6 outer header from src. */
static __always_inline long tun_hop6(struct xdp_md *ctx, struct bpf_fib_lookup *fib,
				     const struct gvs_dest *d, const struct gvs_ifmac *hmac,
				     const __u32 *src, __u8 proto, __u16 tot_len)
{
	if (hmac) {
		fib->ifindex = d->ifindex;
		__builtin_memcpy(fib->dmac, d->mac, ETH_ALEN);
		__builtin_memcpy(fib->smac, hmac->mac, ETH_ALEN);
		return BPF_FIB_LKUP_RET_SUCCESS;
	}
	fib->family = AF_INET6;
	fib->l4_protocol = proto;
	fib->tot_len = tot_len;
	fib->ifindex = ctx->ingress_ifindex;
	addr6_cp(fib->ipv6_src, src);
	addr6_cp(fib->ipv6_dst, d->addr);
	return bpf_fib_lookup(ctx, fib, sizeof(*fib), 0);
}

/* IPv6 in IPv4, to a server of the other family (tun46.h). */
__gvs_subprog int fwd_tun6in4(struct xdp_md *ctx, const struct gvs_pkt6 *p, const struct gvs_dest *d,
			      __u64 now);

/* IPv6-in-IPv6 (ip_vs_tunnel_xmit_v6): an outer header from v6_config's
 * tun_src to the server, next header 41. */
__gvs_subprog int fwd_tun6(struct xdp_md *ctx, const struct gvs_pkt6 *p, const struct gvs_dest *d,
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
	long rc = tun_hop6(ctx, &fib, d, hmac, c6->tun_src, 41, p->tot_len + 40);
	if (rc == BPF_FIB_LKUP_RET_FRAG_NEEDED)
		return too_big6(ctx, p, fib.mtu_result, 40, now);
	if (rc != BPF_FIB_LKUP_RET_SUCCESS) {
		ev_inc(GVS_EV_NO_ROUTE);
		return XDP_PASS;
	}
	__u32 mtu;
	if (egress_too_big(ctx, hmac, fib.ifindex, p->tot_len, 40, &mtu))
		return too_big6(ctx, p, mtu, 40, now);

	struct gvs_ip6hdr o = {};
	o.vtc = 0x60 | (p->tclass >> 4);
	o.tcfl = p->tclass << 4;
	o.plen = bpf_htons(p->tot_len);
	o.nexthdr = 41;
	o.hlim = 64;
	addr6_cp(o.saddr, c6->tun_src);
	addr6_cp(o.daddr, d->addr);

	struct gvs_ip6hdr *ip = tun_push(ctx, p->l3off, sizeof(*ip), &fib, ETH_P_IPV6);
	if (!ip)
		return XDP_PASS;
	__builtin_memcpy(ip, &o, sizeof(o));
	ev_inc(GVS_EV_FORWARD);
	if (fib.ifindex == ctx->ingress_ifindex)
		return XDP_TX;
	return bpf_redirect(fib.ifindex, 0);
}

/* TUN by the server's family: IPv6 in IPv6, or in IPv4. */
static __always_inline int fwd_tun_any6(struct xdp_md *ctx, const struct gvs_pkt6 *p,
					const struct gvs_dest *d, __u64 now)
{
	if (d->af == 4)
		return fwd_tun6in4(ctx, p, d, now);
	if (d->af != 6) {
		ev_inc(GVS_EV_FAMILY);
		return XDP_PASS;
	}
	return fwd_tun6(ctx, p, d, now);
}

/* ---- NAT, FULLNAT ---- */

static __always_inline __u32 csum_diff128(const __u32 *o, const __u32 *n)
{
	return csum_diff32(o[0], n[0]) + csum_diff32(o[1], n[1]) +
	       csum_diff32(o[2], n[2]) + csum_diff32(o[3], n[3]);
}

/* Rewrite the IPv6 header and the TCP/UDP/SCTP or ICMPv6-error payload;
 * the transport checksums by the pseudo-header's change (IPv6 has no
 * header checksum; SCTP's CRC32c covers no pseudo-header). */
__gvs_subprog int nat_rewrite6(struct xdp_md *ctx, const struct gvs_pkt6 *p,
					const struct nat_xlate6 *x)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	__u32 l3 = p->l3off == 18 ? 18 : 14;
	struct gvs_ip6hdr *ip = data + l3;

	if ((void *)(ip + 1) > data_end)
		return -1;
	__u32 diff = csum_diff128(ip->saddr, x->saddr) + csum_diff128(ip->daddr, x->daddr);

	if (x->output)
		ip->hlim -= 1;
	addr6_cp(ip->saddr, x->saddr);
	addr6_cp(ip->daddr, x->daddr);
	if (p->frag == GVS_FRAG_LATER)
		return 0; /* no L4 header: the first fragment's checksum took
			   * the pseudo-header's change */

	void *l4 = data + (p->l4off & 0x3ff);
	if (p->proto == IPPROTO_TCP) {
		struct tcphdr *th = l4;
		if ((void *)(th + 1) > data_end)
			return -1;
		diff += csum_diff16(th->source, x->sport) + csum_diff16(th->dest, x->dport);
		th->check = csum_replace(th->check, diff);
		th->source = x->sport;
		th->dest = x->dport;
		return 0;
	}
	if (p->proto == IPPROTO_UDP) {
		struct udphdr *uh = l4;
		if ((void *)(uh + 1) > data_end)
			return -1;
		diff += csum_diff16(uh->source, x->sport) + csum_diff16(uh->dest, x->dport);
		__u16 c = csum_replace(uh->check, diff);
		uh->check = c ? c : 0xffff; /* 0 would mean none: invalid in IPv6 */
		uh->source = x->sport;
		uh->dest = x->dport;
		return 0;
	}
	if (p->proto == IPPROTO_SCTP) /* sctp.h: no pseudo-header, the CRC32c by the ports' change */
		return sctp_nat_ports(l4, data_end, x->sport, x->dport,
				      p->tot_len - ((p->l4off - p->l3off) & 0x3ff));
	/* An ICMPv6 error: its checksum covers the pseudo-header, so the
	 * outer addresses' change, plus the quoted addresses and ports. The
	 * quoted transport checksum is left alone, as the kernel does. */
	__u16 *ic = l4;
	struct gvs_ip6hdr *in = l4 + 8;
	__u16 *ports = (void *)(in + 1);
	if ((void *)(ports + 2) > data_end)
		return -1;
	diff += csum_diff128(in->saddr, x->in_saddr) + csum_diff128(in->daddr, x->in_daddr) +
		csum_diff16(ports[0], x->in_sport) + csum_diff16(ports[1], x->in_dport);
	addr6_cp(in->saddr, x->in_saddr);
	addr6_cp(in->daddr, x->in_daddr);
	ports[0] = x->in_sport;
	ports[1] = x->in_dport;
	ic[1] = csum_replace(ic[1], diff);
	return 0;
}

static __always_inline void xlate6_hop(struct nat_xlate6 *x, const struct gvs_dest *d)
{
	x->hop_ifindex = d->ifindex;
	__builtin_memcpy(x->hop_mac, d->mac, sizeof(x->hop_mac));
}

/* nat_xmit for IPv6. */
__gvs_subprog int nat_xmit6(struct xdp_md *ctx, const struct gvs_pkt6 *p,
			    const struct nat_xlate6 *x, __u64 now, struct gvs_conn *learn)
{
	struct bpf_fib_lookup fib = {};
	__u32 hop = x->hop_ifindex;
	struct gvs_ifmac *src = ifmac_get(hop);
	long rc;

	if (src) {
		__u32 mtu;
		fib.ifindex = hop;
		__builtin_memcpy(fib.dmac, x->hop_mac, ETH_ALEN);
		__builtin_memcpy(fib.smac, src->mac, ETH_ALEN);
		rc = BPF_FIB_LKUP_RET_SUCCESS;
		if (egress_too_big(ctx, src, hop, p->tot_len, 0, &mtu)) {
			rc = BPF_FIB_LKUP_RET_FRAG_NEEDED;
			fib.mtu_result = mtu;
		}
	} else {
		fib.family = AF_INET6;
		fib.l4_protocol = p->proto;
		fib.tot_len = p->tot_len;
		fib.ifindex = ctx->ingress_ifindex;
		addr6_cp(fib.ipv6_src, x->saddr);
		addr6_cp(fib.ipv6_dst, x->daddr);
		rc = bpf_fib_lookup(ctx, &fib, sizeof(fib), 0);
		if (rc == BPF_FIB_LKUP_RET_SUCCESS && learn && x->hop_gen) {
			learn->hop_ifindex = fib.ifindex;
			__builtin_memcpy(learn->hop_mac, fib.dmac, ETH_ALEN);
			learn->hop_gen = x->hop_gen;
		}
	}
	if (rc == BPF_FIB_LKUP_RET_FRAG_NEEDED) {
		ev_inc(GVS_EV_FRAG_NEEDED);
		if (p->proto != IPPROTO_ICMPV6_GVS &&
		    icmp6_reply(ctx, p, ICMP_ARG(ICMPV6_PKT_TOOBIG_T, 0, fib.mtu_result),
				(const struct gvs_addr6 *)x->icmp_src, now) == 0)
			return XDP_TX;
		return XDP_DROP;
	}
	if (rc != BPF_FIB_LKUP_RET_SUCCESS) {
		if (rc == BPF_FIB_LKUP_RET_NO_NEIGH) {
			/* fib.ipv6_dst is the next hop now: gvsd has it
			 * resolved (as neigh_miss for IPv4). */
			struct gvs_addr6 nh;
			addr6_cp(nh.a, fib.ipv6_dst);
			bpf_map_update_elem(&neigh_miss6, &nh, &now, BPF_ANY);
		}
		ev_inc(GVS_EV_NO_ROUTE);
		return XDP_DROP;
	}
	if (nat_rewrite6(ctx, p, x))
		return XDP_DROP;

	__u32 shrink = p->l3off == 18 ? 4 : 0;
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data + shrink;
	if ((void *)(eth + 1) > data_end)
		return XDP_DROP;
	__builtin_memcpy(eth->h_dest, fib.dmac, ETH_ALEN);
	__builtin_memcpy(eth->h_source, fib.smac, ETH_ALEN);
	eth->h_proto = bpf_htons(ETH_P_IPV6);
	if (shrink && bpf_xdp_adjust_head(ctx, shrink))
		return XDP_DROP;
	ev_inc(x->output ? GVS_EV_REPLY : GVS_EV_FORWARD);
	if (fib.ifindex == ctx->ingress_ifindex)
		return XDP_TX;
	return bpf_redirect(fib.ifindex, 0);
}

/* route_src for IPv6: the director's source address toward a server. */
__gvs_subprog int route_src6(struct xdp_md *ctx, const __u32 *daddr, __u32 *out)
{
	struct bpf_fib_lookup fib = {};

	fib.family = AF_INET6;
	fib.ifindex = ctx->ingress_ifindex;
	addr6_cp(fib.ipv6_dst, daddr);
	long rc = bpf_fib_lookup(ctx, &fib, sizeof(fib), BPF_FIB_LOOKUP_SRC | BPF_FIB_LOOKUP_SKIP_NEIGH);
	if (rc != BPF_FIB_LKUP_RET_SUCCESS)
		return -1;
	addr6_cp(out, fib.ipv6_src);
	return 0;
}

/* lport_alloc for IPv6: the pool is the service's laddrs read as up to
 * GVS_SVC_LADDRS6 IPv6 addresses; without a pool, route (the route's
 * source). */
/* Sets nc's laddr and lport; nc->rport is the server's port. */
__gvs_subprog int lport_alloc6(const struct gvs_conn_key *fk, const struct gvs_svc *svc,
			       const struct gvs_dest *d, const __u32 *route, struct gvs_conn *nc)
{
	struct gvs_config *cfg = bpf_map_lookup_elem(&config, &(__u32){0});
	if (!cfg)
		return -1;
	__u16 rport = nc->rport;
	__u32 zero = 0;
	struct lport_search *s = bpf_map_lookup_elem(&lport_scratch, &zero);
	__u32 n = svc->nladdrs;

	if (!s)
		return -1;
	__u32 lo = cfg->lport_min, hi = cfg->lport_max;
	if (!lo || hi < lo) {
		lo = LPORT_MIN;
		hi = LPORT_MAX;
	}
	__builtin_memset(&s->rk, 0, sizeof(s->rk));
	reply_init(&s->rv, fk);
	addr6_cp(s->rk.caddr, d->addr);
	s->rk.cport = rport;
	s->rk.proto = fk->proto;
	s->rk.af = 6;
	s->min = lo;
	s->span = hi - lo + 1;
	if (n > GVS_SVC_LADDRS6)
		n = GVS_SVC_LADDRS6;
	__u32 first = n ? bpf_get_prandom_u32() % n : 0;
	__u32 tries = n ? LPORT_PROBES / n : LPORT_PROBES;
	if (tries < 4)
		tries = 4;
	if (s->span <= LPORT_PROBES)
		tries = s->span;

	for (int j = 0; j < GVS_SVC_LADDRS6; j++) {
		if (n) {
			if (j >= n)
				break;
			__u32 idx = (first + j) % n;
			barrier_var(idx);
			idx &= GVS_SVC_LADDRS6 - 1;
			addr6_cp(s->rk.vaddr, &svc->laddrs[idx * 4]);
		} else {
			if (j > 0)
				break;
			addr6_cp(s->rk.vaddr, route);
		}
		if (!(s->rk.vaddr[0] | s->rk.vaddr[1] | s->rk.vaddr[2] | s->rk.vaddr[3]))
			continue;
		s->start = bpf_get_prandom_u32() % s->span;
		s->found = 0;
		bpf_loop(tries, lport_try, 0, 0);
		if (s->found == 1) {
			addr6_cp(nc->laddr, s->rk.vaddr);
			nc->lport = s->rk.vport;
			return 0;
		}
		if (s->found < 0)
			return -1;
	}
	return -1;
}

#include "nat64.h"

/* ---- the packet path ---- */

/* The IPv4-shaped view of an IPv6 packet the shared code reads: folded
 * addresses (sh, dh, mh, lblc hash them as the kernel folds), ports,
 * protocol, flags, length, hop limit. */
static __always_inline void pkt_view(struct gvs_pkt *v, const struct gvs_pkt6 *p)
{
	__builtin_memset(v, 0, sizeof(*v));
	v->saddr = fold6(p->saddr);
	v->daddr = fold6(p->daddr);
	v->sport = p->sport;
	v->dport = p->dport;
	v->tot_len = p->tot_len;
	v->l3off = p->l3off;
	v->proto = p->proto;
	v->tcpflags = p->tcpflags;
	v->ttl = p->hlim;
	v->frag = p->frag;
}

__gvs_subprog int fwd6(struct xdp_md *ctx, struct gvs_work6 *w, const struct gvs_dest *d,
		       const struct gvs_conn *c, __u64 now)
{
	const struct gvs_pkt6 *p = &w->p6;
	struct nat_xlate6 *x = &w->x;
	__u8 m = RD(c->method);

	if (m == GVS_FWD_TUNNEL)
		return fwd_tun_any6(ctx, p, d, now);
	if (d->af == 4 && m == GVS_FWD_FULLNAT)
		return nat64_xmit(ctx, p, d, c, now);
	if (d->af != 6) {
		ev_inc(GVS_EV_FAMILY);
		return XDP_PASS;
	}
	if (m == GVS_FWD_ROUTE)
		return fwd_dr6(ctx, p, d, now);
	if (!is_nat_method(m)) {
		ev_inc(GVS_EV_FWD_UNSUPPORTED);
		return XDP_PASS;
	}
	__builtin_memset(x, 0, sizeof(*x));
	addr6_cp(x->saddr, p->saddr);
	addr6_cp(x->daddr, d->addr);
	x->sport = p->sport;
	x->dport = c->rport;
	addr6_cp(x->icmp_src, p->daddr);
	if (m == GVS_FWD_FULLNAT) {
		addr6_cp(x->saddr, c->laddr);
		x->sport = c->lport;
	}
	xlate6_hop(x, d);
	return nat_xmit6(ctx, p, x, now, 0);
}

static __always_inline int in_conn6(struct xdp_md *ctx, struct gvs_work6 *w, struct gvs_conn *c,
				    __u64 now, const struct gvs_timeouts *to,
				    const struct gvs_config *cfg)
{
	__u32 did = RD(c->dest);
	struct gvs_dest *d = dest_get(did);

	if (!d || !(RD(d->flags) & GVS_DEST_F_AVAILABLE)) {
		if (cfg->expire_nodest_conn)
			conn_remove(&w->w.key, c);
		ev_inc(GVS_EV_DROP_NODEST);
		return XDP_DROP;
	}
	stats_in(RD(c->svc), did, w->p6.tot_len, 0);
	if (w->p6.frag != GVS_FRAG_LATER) /* no TCP flags to move the state by */
		conn_set_state(c, d, &w->w.p, to, 0);
	c->expires = now + (__u64)RD(c->timeout) * NS_PER_SEC;
	if (cfg->sync_master)
		sync_note(&w->w.key, c, cfg);
	return fwd6(ctx, w, d, c, now);
}

/* A packet from a NAT/FULLNAT server on connection w->fk. */
__gvs_subprog int out_conn6(struct xdp_md *ctx, struct gvs_work6 *w, __u64 now)
{
	__u32 zero = 0;
	struct gvs_timeouts *to = bpf_map_lookup_elem(&timeouts, &zero);
	struct gvs_config *cfg = bpf_map_lookup_elem(&config, &zero);
	const struct gvs_pkt6 *p = &w->p6;
	const struct gvs_conn_key *fk = &w->fk;
	struct nat_xlate6 *x = &w->x;

	if (!to || !cfg)
		return XDP_PASS;
	struct gvs_conn *c = bpf_map_lookup_elem(&conns, fk);
	if (!c || RD(c->expires) <= now)
		goto pass;
	__u32 did = RD(c->dest);
	struct gvs_dest *d = dest_get(did);
	/* The connection must still own this reply tuple (see out_conn). */
	if (!d || !(RD(c->flags) & GVS_CONN_F_NAT) || !addr6_eq(d->addr, p->saddr) ||
	    c->rport != p->sport || !addr6_eq(c->laddr, p->daddr) || c->lport != p->dport ||
	    fk->proto != p->proto || fk->af != 6)
		goto pass;
	if (reply_ttl_expired(&w->w.p))
		return XDP_PASS;
	stats_out(RD(c->svc), did, p->tot_len);
	if (!(RD(c->flags) & GVS_CONN_F_REPLIED))
		__sync_fetch_and_or((__u32 *)&c->state, (__u32)GVS_CONN_F_REPLIED << 8);
	if (p->frag != GVS_FRAG_LATER)
		conn_set_state(c, d, &w->w.p, to, 1);
	c->expires = now + (__u64)RD(c->timeout) * NS_PER_SEC;
	__builtin_memset(x, 0, sizeof(*x));
	addr6_cp(x->saddr, fk->vaddr);
	addr6_cp(x->daddr, fk->caddr);
	x->sport = fk->vport;
	x->dport = fk->cport;
	addr6_cp(x->icmp_src, fk->vaddr);
	x->output = 1;
	x->hop_gen = cfg->hop_gen;
	if (cfg->hop_gen && RD(c->hop_gen) == cfg->hop_gen) {
		x->hop_ifindex = c->hop_ifindex;
		__builtin_memcpy(x->hop_mac, c->hop_mac, sizeof(x->hop_mac));
	}
	return nat_xmit6(ctx, p, x, now, c);
pass:
	ev_inc(GVS_EV_PASS);
	return XDP_PASS;
}

/* nat_icmp_send for IPv6 (nat_icmp): a TCP, UDP or SCTP packet from a NAT
 * server's address and port with no connection, not a TCP RST or an SCTP
 * ABORT, that the
 * director would forward, is dropped and answered with a port
 * unreachable from the director's address toward the server. Returns the
 * verdict, or -1 when the sysctl does not apply. */
__gvs_subprog int nat_icmp6(struct xdp_md *ctx, struct gvs_work6 *w, __u64 now)
{
	const struct gvs_pkt6 *p = &w->p6;
	struct gvs_svc_key *k = &w->sk;
	struct bpf_fib_lookup fib = {};

	if (p->proto == IPPROTO_TCP && (p->tcpflags & TCPF_RST))
		return -1;
	if (p->proto == IPPROTO_SCTP && p->tcpflags == SCTP_EV_ABORT)
		return -1; /* is_sctp_abort */
	__builtin_memset(k, 0, sizeof(*k));
	addr6_cp(k->addr, p->saddr);
	k->port = p->sport;
	k->proto = p->proto;
	k->af = 6;
	if (!bpf_map_lookup_elem(&nat_servers, k))
		return -1;
	fib.family = AF_INET6;
	fib.ifindex = ctx->ingress_ifindex;
	addr6_cp(fib.ipv6_src, p->saddr);
	addr6_cp(fib.ipv6_dst, p->daddr);
	if (bpf_fib_lookup(ctx, &fib, sizeof(fib), BPF_FIB_LOOKUP_SKIP_NEIGH) != BPF_FIB_LKUP_RET_SUCCESS)
		return -1; /* for the director (or not routable): the stack's */
	ev_inc(GVS_EV_NAT_ICMP_SEND);
	if (p->frag == GVS_FRAG_LATER)
		return XDP_DROP;
	__u32 *src = w->x.icmp_src;
	if (route_src6(ctx, p->saddr, src) == 0 &&
	    icmp6_reply(ctx, p, ICMP_ARG(ICMPV6_DEST_UNREACH_T, ICMPV6_PORT_UNREACH_C, 0), (const struct gvs_addr6 *)src, now) == 0)
		return XDP_TX;
	return XDP_DROP;
}

/* An ICMPv6 error about a connection, either way (icmp_conn). */
__gvs_subprog int icmp6_conn(struct xdp_md *ctx, struct gvs_work6 *w, __u64 now)
{
	const struct gvs_pkt6 *p = &w->p6;
	struct gvs_conn_key *k = &w->w.key;
	struct nat_xlate6 *x = &w->x;

	__builtin_memset(k, 0, sizeof(*k));
	__builtin_memset(x, 0, sizeof(*x));
	addr6_cp(k->caddr, p->in_daddr);
	addr6_cp(k->vaddr, p->in_saddr);
	k->cport = p->in_dport;
	k->vport = p->in_sport;
	k->proto = p->in_proto;
	k->af = 6;
	struct gvs_conn_key *fkp = nat_src_maybe6(p->in_daddr) ? bpf_map_lookup_elem(&rconns, k) : 0;
	if (fkp) {
		/* About a packet we sent the server: to the client. */
		struct gvs_conn_key *f = &w->fk;
		*f = *fkp;
		struct gvs_conn *c = bpf_map_lookup_elem(&conns, f);
		if (!c || RD(c->expires) <= now || !(RD(c->flags) & GVS_CONN_F_NAT) ||
		    !addr6_eq(c->laddr, k->vaddr) || c->lport != k->vport || c->rport != k->cport ||
		    f->proto != k->proto || f->af != 6)
			goto pass;
		struct gvs_dest *sd = dest_get(RD(c->dest));
		if (!sd || !addr6_eq(sd->addr, k->caddr))
			goto pass;
		if (reply_ttl_expired(&w->w.p))
			return XDP_PASS;
		stats_out(RD(c->svc), RD(c->dest), p->tot_len);
		addr6_cp(x->saddr, f->vaddr);
		addr6_cp(x->daddr, f->caddr);
		addr6_cp(x->in_saddr, f->caddr);
		addr6_cp(x->in_daddr, f->vaddr);
		x->in_sport = f->cport;
		x->in_dport = f->vport;
		addr6_cp(x->icmp_src, f->vaddr);
		x->output = 1;
		/* Toward the client: by its cached next hop, if any. */
		struct gvs_config *cfg = bpf_map_lookup_elem(&config, &(__u32){0});
		if (cfg && cfg->hop_gen && RD(c->hop_gen) == cfg->hop_gen) {
			x->hop_ifindex = c->hop_ifindex;
			__builtin_memcpy(x->hop_mac, c->hop_mac, sizeof(x->hop_mac));
		}
		ev_inc(GVS_EV_ICMP);
		return nat_xmit6(ctx, p, x, now, 0);
	}

	/* About a reply (from the virtual service): to the server, by
	 * icmp6_in; k is its connection's key. */
	if (addr6_eq(p->daddr, p->in_saddr))
		return ICMP_IN;
pass:
	ev_inc(GVS_EV_PASS);
	return XDP_PASS;
}

/* icmp_in's steps for IPv6. */
__gvs_subprog int icmp6_in(struct xdp_md *ctx, struct gvs_work6 *w, const struct gvs_conn *c,
			   __u64 now, int count)
{
	const struct gvs_pkt6 *p = &w->p6;
	struct nat_xlate6 *x = &w->x;
	__u32 did = RD(c->dest);
	struct gvs_dest *d = dest_get(did);
	if (d && d->af == 4 && RD(c->method) == GVS_FWD_FULLNAT) {
		ev_inc(GVS_EV_NAT64_ICMP); /* not translated (nat64.h) */
		return XDP_DROP;
	}
	if (!d || !(RD(d->flags) & GVS_DEST_F_AVAILABLE))
		goto pass;
	__u8 m = RD(c->method);
	if (d->af != 6 && m != GVS_FWD_TUNNEL)
		goto pass;
	if (count)
		stats_in(RD(c->svc), did, p->tot_len, 0);
	ev_inc(GVS_EV_ICMP);
	if (m == GVS_FWD_ROUTE)
		return fwd_dr6(ctx, p, d, now);
	if (m == GVS_FWD_TUNNEL)
		return fwd_tun_any6(ctx, p, d, now);
	if (!is_nat_method(m))
		goto pass;
	__builtin_memset(x, 0, sizeof(*x));
	addr6_cp(x->saddr, p->saddr);
	addr6_cp(x->daddr, d->addr);
	addr6_cp(x->in_saddr, d->addr);
	x->in_sport = c->rport;
	addr6_cp(x->in_daddr, p->in_daddr);
	x->in_dport = p->in_dport;
	if (m == GVS_FWD_FULLNAT) {
		addr6_cp(x->saddr, c->laddr);
		addr6_cp(x->in_daddr, c->laddr);
		x->in_dport = c->lport;
	}
	addr6_cp(x->icmp_src, p->daddr);
	xlate6_hop(x, d);
	return nat_xmit6(ctx, p, x, now, 0);
pass:
	ev_inc(GVS_EV_PASS);
	return XDP_PASS;
}

static __always_inline int allowed6(__u32 svc, const __u32 *saddr)
{
	struct gvs_allow_key k = { .prefixlen = 32 + 128, .svc = svc };

	addr6_cp(k.addr, saddr);
	return bpf_map_lookup_elem(&allow, &k) != 0;
}

/* The first packet of an IPv6 connection: in_new's steps. */
__gvs_subprog int in_new6(struct xdp_md *ctx, struct gvs_work6 *w, __u64 now)
{
	const struct gvs_pkt6 *p6 = &w->p6;
	const struct gvs_pkt *p = &w->w.p;
	struct gvs_conn_key *key = &w->w.key;
	struct gvs_conn_key *tk = &w->w.tk;
	struct gvs_conn_key *rk = &w->w.rk;
	struct gvs_conn *nc = &w->w.nc;
	__u32 zero = 0;
	struct gvs_timeouts *to = bpf_map_lookup_elem(&timeouts, &zero);
	struct gvs_config *cfg = bpf_map_lookup_elem(&config, &zero);
	if (!to || !cfg)
		return XDP_PASS;

	struct gvs_svc_key *sk = &w->sk; /* off the stack: five frames deep */
	struct gvs_svc *svc;
	int exact = 1;

	__builtin_memset(sk, 0, sizeof(*sk));
	if (w->w.mark) {
		/* From netfilter (fwmark.h): the mark's service only. */
		sk->addr[0] = w->w.mark;
		sk->af = 6;
		svc = bpf_map_lookup_elem(&services, sk);
		goto found;
	}
	addr6_cp(sk->addr, p6->daddr);
	sk->port = p6->dport;
	sk->proto = p6->proto;
	sk->af = 6;
	svc = bpf_map_lookup_elem(&services, sk);
	if (!svc) {
		sk->port = 0;
		svc = bpf_map_lookup_elem(&services, sk);
		exact = p6->dport == 0;
	}
found:
	if (!svc)
		goto pass;
	w->w.revive = 0;
	if (p6->proto == IPPROTO_TCP && !w->w.icmp && !tcp_may_start(p, cfg, svc) &&
	    !conn_revivable(&w->w, svc, now))
		goto pass;
	if ((svc->flags & GVS_SVC_F_ALLOWLIST) && !allowed6(svc->id, p6->saddr)) {
		ev_inc(GVS_EV_DENIED);
		return XDP_DROP;
	}

	__u32 did = GVS_DEST_NONE;
	int persistent = svc->flags & GVS_SVC_F_PERSISTENT;
	int one = (svc->flags & GVS_SVC_F_ONEPACKET) && p6->proto == IPPROTO_UDP &&
		  p6->frag != GVS_FRAG_FIRST;
	int created = 0;
	int verdict = XDP_PASS;

	if (!persistent && !exact)
		goto pass;
	if (svc->sched == GVS_SCHED_LBLC || svc->sched == GVS_SCHED_LBLCR) {
		struct gvs_daddr6 *sd = bpf_map_lookup_elem(&sched_daddr6, &zero);
		if (sd)
			addr6_cp(sd->a, p6->daddr);
	}
	if (!one) {
		int r = conn_reserve(&w->w, now, svc->id);
		if (r == GVS_NEW_RACE)
			return r;
		if (r)
			return XDP_DROP;
	}
	{
		__u32 sid = svc->id;
		struct gvs_sched_state *st = bpf_map_lookup_elem(&sched_state, &sid);
		if (st)
			w->w.ss = *st;
	}
	if (w->w.revive) {
		did = w->w.revive_dest;
	} else if (persistent) {
		tmpl_key6(tk, key, svc->netmask, exact, w->w.mark);
		int r = sched_persist(svc, p, tk, now, cfg, &did, &created, 6);
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
			ev_inc(ud && ud->af != 6 ? GVS_EV_FAMILY : GVS_EV_FWD_UNSUPPORTED);
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
	if (w->w.revive && !(RD(d->flags) & GVS_DEST_F_AVAILABLE)) {
		verdict = XDP_PASS;
		goto unreserve;
	}
	if (!fwd_supported_af(d, 6)) {
		ev_inc(d->af != 6 ? GVS_EV_FAMILY : GVS_EV_FWD_UNSUPPORTED);
		goto unreserve;
	}

	__builtin_memset(nc, 0, sizeof(*nc));
	nc->dest = did;
	nc->svc = svc->id;
	nc->method = d->method;
	/* SCTP: only an INIT gets here, NONE -> INIT1 (inactive) in the
	 * INPUT and INPUT-ONLY tables alike; made by an ICMPv6 error: NONE. */
	nc->state = p6->proto == IPPROTO_TCP ? GVS_S_NONE :
		    p6->proto != IPPROTO_SCTP ? GVS_S_UDP :
		    w->w.icmp ? GVS_S_SCTP_NONE : GVS_S_SCTP_INIT1;
	nc->flags = GVS_CONN_F_INACTIVE | GVS_CONN_F_NOOUTPUT |
		    (persistent ? GVS_CONN_F_CONTROLLED : 0);
	if (p6->proto == IPPROTO_TCP && !w->w.icmp) {
		__u8 next = tcp_next(w->w.revive ? w->w.revive_state : GVS_S_NONE,
				     is_nat(d) ? TCP_DIR_INPUT : TCP_DIR_INPUT_ONLY, p6->tcpflags);
		if (next != GVS_S_NONE && state_active(next) &&
		    (next == GVS_S_ESTABLISHED || !under_pressure(now))) {
			nc->flags &= ~GVS_CONN_F_INACTIVE;
		}
		nc->state = next;
	}
	if ((svc->flags & GVS_SVC_F_ONEPACKET) && p6->proto == IPPROTO_UDP)
		nc->flags |= GVS_CONN_F_ONEPKT;
	nc->timeout = w->w.icmp ? ICMP_CONN_TIMEOUT :
		      (nc->flags & GVS_CONN_F_ONEPKT) ? ONEPKT_FRAG_TIMEOUT :
		      state_timeout(to, p6->proto, nc->state);
	nc->expires = now + (__u64)nc->timeout * NS_PER_SEC;
	nc->sync_pkts = 1;

	if (is_nat(d)) {
		nc->flags &= ~GVS_CONN_F_NOOUTPUT;
		nc->rport = d->port ? d->port : p6->dport;
		addr6_cp(nc->laddr, p6->saddr);
		nc->lport = p6->sport;
		if (!one)
			nc->flags |= GVS_CONN_F_NAT;
		if (d->method == GVS_FWD_FULLNAT && d->af == 4) {
			/* NAT64: an IPv4 local address and port. */
			if (!nat64_laddr(ctx, w, svc->id, d, one))
				goto allocated;
			goto no_lport;
		}
		if (d->method == GVS_FWD_FULLNAT) {
			/* The route's source without a pool: in x's icmp_src,
			 * free until the packet is translated. */
			__u32 *route = w->x.icmp_src;
			__builtin_memset(route, 0, 16);
			if (!svc->nladdrs)
				route_src6(ctx, d->addr, route);
			if (one) {
				if (svc->nladdrs)
					addr6_cp(nc->laddr, &svc->laddrs[0]);
				else
					addr6_cp(nc->laddr, route);
			} else {
				if (!lport_alloc6(key, svc, d, route, nc))
					goto allocated;
no_lport:
				ev_inc(GVS_EV_NO_LPORT);
				sched_undo(svc, &w->w.ss);
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
allocated:
	if (d->af == 4) /* NAT64: the reply is IPv4 */
		reply_key(rk, d->addr[0], nc->laddr[0], nc->rport, nc->lport, p6->proto);
	else
		reply_key6(rk, d->addr, nc->laddr, nc->rport, nc->lport, p6->proto);
	if (!one) {
		int ev = conn_publish(&w->w, d, persistent);
		if (ev) {
			ev_inc(ev);
			return XDP_DROP;
		}
	} else {
		dest_bind(d, BIND_INACTIVE);
	}
	stats_in(svc->id, did, p6->tot_len, !w->w.revive);
	if (w->w.revive) {
		bpf_map_delete_elem(&evicted, key);
		ev_inc(GVS_EV_REVIVED);
	}
	if (persistent) {
		struct gvs_template *t = bpf_map_lookup_elem(&templates, tk);
		if (t)
			t->expires = now + (__u64)RD(t->timeout) * NS_PER_SEC;
	}
	if (one)
		dest_unbind(d, BIND_INACTIVE);
	if (w->w.icmp)
		return GVS_NEW_ICMP; /* the error is sent by icmp6_in */
	return fwd6(ctx, w, d, nc, now);

reject:
	/* ip_vs_leave: ICMPv6 port unreachable, and the packet dropped. */
	if (!one)
		bpf_map_delete_elem(&conns, key);
	ev_inc(GVS_EV_NO_DEST);
	/* A frame from netfilter would take XDP_TX back into gvs-fwm0. */
	if (!w->w.mark && !w->w.icmp &&
	    icmp6_reply(ctx, p6, ICMP_ARG(ICMPV6_DEST_UNREACH_T, ICMPV6_PORT_UNREACH_C, 0),
			(const struct gvs_addr6 *)p6->daddr, now) == 0)
		return XDP_TX;
	return XDP_DROP;
unreserve:
	if (!one)
		bpf_map_delete_elem(&conns, key);
	if (verdict == XDP_PASS && w->w.mark)
		goto fwm_pass;
	return verdict;
pass:
	if (w->w.mark)
		goto fwm_pass;
	ev_inc(GVS_EV_PASS);
	return XDP_PASS;
fwm_pass:
	/* A marked packet netfilter handed over that no fwmark service
	 * takes: dropped, as IPv4's (xdp_gvs). */
	ev_inc(GVS_EV_FWM_PASS);
	return XDP_DROP;
}

/* schedule_icmp for IPv6 (ip_vs_in_icmp_v6): icmp_schedule's steps. */
static __always_inline int icmp6_schedule(struct xdp_md *ctx, struct gvs_work6 *w, __u64 now)
{
	struct gvs_pkt6 *p6 = &w->p6;

	w->orig6 = *p6;
	addr6_cp(p6->saddr, w->orig6.in_daddr);
	addr6_cp(p6->daddr, w->orig6.in_saddr);
	p6->sport = w->orig6.in_dport;
	p6->dport = w->orig6.in_sport;
	p6->proto = w->orig6.in_proto;
	p6->tcpflags = 0;
	p6->frag = 0;
	pkt_view(&w->w.p, p6);
	w->w.icmp = 1;
	int v = in_new6(ctx, w, now);
	w->w.icmp = 0;
	*p6 = w->orig6;
	pkt_view(&w->w.p, p6);
	if (v == GVS_NEW_ICMP)
		return icmp6_in(ctx, w, &w->w.nc, now, 0);
	if (v == GVS_NEW_RACE) {
		struct gvs_conn *c = bpf_map_lookup_elem(&conns, &w->w.key);
		if (c && RD(c->dest) != GVS_DEST_NONE)
			return icmp6_in(ctx, w, c, now, 1);
		ev_inc(GVS_EV_BUSY);
		return XDP_DROP;
	}
	return v;
}

SEC("xdp")
int xdp_gvs6(struct xdp_md *ctx)
{
	__u32 zero = 0;
	struct gvs_work6 *w = bpf_map_lookup_elem(&work6, &zero);
	if (!w)
		return XDP_PASS;
	/* A frame netfilter marked: its mark, for in_new6 (xdp_gvs dropped
	 * the untagged ones). */
	fwm_frame(ctx, &w->w.mark);
	struct gvs_pkt6 *p6 = &w->p6;
	__builtin_memset(p6, 0, sizeof(*p6));
	int r = parse6(ctx, p6);
	if (r == PARSE_FRAG || (r == PARSE_OK && p6->frag == GVS_FRAG_FIRST)) {
		struct gvs_frag6_key *fk6 = (void *)&w->fk; /* free until the reply lookup */
		__builtin_memset(fk6, 0, sizeof(*fk6));
		addr6_cp(fk6->saddr, p6->saddr);
		addr6_cp(fk6->daddr, p6->daddr);
		fk6->id = p6->frag_id;
		fk6->proto = p6->proto;
		if (r == PARSE_OK) {
			struct gvs_frag v = { .sport = p6->sport, .dport = p6->dport };
			bpf_map_update_elem(&frags6, fk6, &v, BPF_ANY);
		} else {
			struct gvs_frag *v = bpf_map_lookup_elem(&frags6, fk6);
			if (v) {
				p6->sport = v->sport;
				p6->dport = v->dport;
				ev_inc(GVS_EV_FRAG);
				r = PARSE_OK;
			} else {
				/* Its first was not seen: passed, unless it may
				 * be a NAT server's reply, which the stack would
				 * forward untranslated. */
				ev_inc(GVS_EV_FRAG_UNKNOWN);
				return nat_src_maybe6(p6->saddr) ? XDP_DROP : XDP_PASS;
			}
		}
	}
	if (r != PARSE_OK) {
		ev_inc(r == PARSE_MALFORMED ? GVS_EV_MALFORMED :
		       r == PARSE_V6_EXT ? GVS_EV_V6_EXT :
		       r == PARSE_V6_FRAG ? GVS_EV_V6_FRAG : GVS_EV_PASS);
		return XDP_PASS;
	}
	pkt_view(&w->w.p, p6);

	struct gvs_timeouts *to = bpf_map_lookup_elem(&timeouts, &zero);
	struct gvs_config *cfg = bpf_map_lookup_elem(&config, &zero);
	if (!to || !cfg)
		return XDP_PASS;
	__u64 now = bpf_ktime_get_coarse_ns();

	if (p6->proto == IPPROTO_ICMPV6_GVS) {
		int v = icmp6_conn(ctx, w, now);
		if (v != ICMP_IN)
			return v;
		struct gvs_conn *ic = bpf_map_lookup_elem(&conns, &w->w.key);
		if (ic && RD(ic->dest) != GVS_DEST_NONE)
			return icmp6_in(ctx, w, ic, now, 1);
		if (!ic && cfg->schedule_icmp)
			return icmp6_schedule(ctx, w, now);
		ev_inc(GVS_EV_PASS);
		return XDP_PASS;
	}

	struct gvs_conn_key *key = &w->w.key;
	__builtin_memset(key, 0, sizeof(*key));
	addr6_cp(key->caddr, p6->saddr);
	addr6_cp(key->vaddr, p6->daddr);
	key->cport = p6->sport;
	key->vport = p6->dport;
	key->proto = p6->proto;
	key->af = 6;

	struct gvs_conn *c = bpf_map_lookup_elem(&conns, key);
	if (c && RD(c->dest) == GVS_DEST_NONE) {
		if (RD(c->expires) > now) {
			ev_inc(GVS_EV_BUSY);
			return XDP_DROP;
		}
		bpf_map_delete_elem(&conns, key);
		c = 0;
	}
	if (c && (RD(c->expires) <= now || conn_reopens(c, &w->w.p, cfg) || conn_onepkt_done(c, &w->w.p))) {
		conn_remove(key, c);
		c = 0;
	}
	if (!c) {
		if (nat_src_maybe6(p6->saddr)) {
			struct gvs_conn_key *fk = bpf_map_lookup_elem(&rconns, key);
			if (fk) {
				w->fk = *fk;
				return out_conn6(ctx, w, now);
			}
			if (cfg->nat_icmp_send) {
				int v = nat_icmp6(ctx, w, now);
				if (v >= 0)
					return v;
			}
		}
		/* Its first fragment made no connection; an SCTP
		 * association starts with an INIT only (sctp_conn_schedule). */
		if (p6->frag == GVS_FRAG_LATER ||
		    (p6->proto == IPPROTO_SCTP && p6->tcpflags != SCTP_EV_INIT)) {
			ev_inc(GVS_EV_PASS);
			return XDP_PASS;
		}
		int v = in_new6(ctx, w, now);
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
	return in_conn6(ctx, w, c, now, to, cfg);
}

#endif
