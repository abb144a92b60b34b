//go:build ignore

// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * The benchmark's own XDP programs (bench/xdpbench): traffic generators
 * for BPF_PROG_RUN live frames (IPv4 and IPv6), a counting sink, and the minimal
 * forwarder that is the floor of what a director can cost.
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/in.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

char _license[] SEC("license") = "Dual BSD/GPL";

#define GEN_FRAME 60 /* a 64-byte frame without its FCS */

/* gen's settings. Each frame is the template, but for the field a flow
 * index changes. The template is copied in every time: live frames are
 * recycled with whatever the path they took wrote into them (a director
 * that encapsulates or translates). */
struct gen_cfg {
	__u32 nflows;  /* fixed set: flow = packet number % nflows */
	__u32 mode;    /* GEN_FIXED_* or GEN_NEW */
	__u32 saddr;   /* GEN_NEW: first source address (network order) */
	__u16 port;    /* first port of the varied field (host order) */
	__u16 pad;
	__u8  frame[GEN_FRAME];
};

#define GEN_FIXED_SPORT 0 /* a fixed set of flows, by source port */
#define GEN_FIXED_DPORT 1 /* a fixed set, by destination port (replies) */
#define GEN_NEW         2 /* every packet a new flow: source address and port */

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct gen_cfg);
} gen_config SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} gen_seq SEC(".maps");

/* IPv4 header without options at offset 14, ports right after it. */
SEC("xdp")
int gen(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct iphdr *ip = data + sizeof(struct ethhdr);
	__u16 *ports = (void *)(ip + 1);
	__u32 zero = 0;

	if (data + GEN_FRAME > data_end || (void *)(ports + 2) > data_end)
		return XDP_ABORTED;
	struct gen_cfg *cfg = bpf_map_lookup_elem(&gen_config, &zero);
	__u64 *seq = bpf_map_lookup_elem(&gen_seq, &zero);
	if (!cfg || !seq)
		return XDP_ABORTED;
	__builtin_memcpy(data, cfg->frame, GEN_FRAME);
	__u64 n = (*seq)++;

	if (cfg->mode == GEN_NEW) {
		ip->saddr = bpf_htonl(bpf_ntohl(cfg->saddr) + (__u32)(n >> 15));
		ports[0] = bpf_htons(cfg->port + (__u16)(n & 0x7fff));
	} else {
		__u16 p = cfg->port + (__u16)(cfg->nflows ? n % cfg->nflows : 0);
		if (cfg->mode == GEN_FIXED_DPORT)
			ports[1] = bpf_htons(p);
		else
			ports[0] = bpf_htons(p);
	}
	/* The header checksum, over again (the L4 checksum is left as the
	 * template has it: UDP frames carry none, nothing on the way checks
	 * TCP's). */
	ip->check = 0;
	__u32 s = 0;
	__u16 *w = (__u16 *)ip;
#pragma unroll
	for (int i = 0; i < 10; i++)
		s += w[i];
	s = (s & 0xffff) + (s >> 16);
	s = (s & 0xffff) + (s >> 16);
	ip->check = (__u16)~s;
	return XDP_TX;
}

/* gen6: gen for IPv6. The same 26-byte TCP or UDP segment behind a
 * 40-byte IPv6 header: 80-byte frames. IPv6 has no header checksum, but
 * the UDP checksum is mandatory (gvs passes a UDP checksum of 0 as
 * malformed), so the template's L4 checksum is updated for the words a
 * flow index changes (RFC 1624). */
#define GEN6_FRAME 80

struct gen6_cfg {
	__u32 nflows;
	__u32 mode;
	__u32 saddr_lo; /* GEN_NEW: last word of the first source address (network order) */
	__u16 port;
	__u16 pad;
	__u8  frame[GEN6_FRAME];
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct gen6_cfg);
} gen6_config SEC(".maps");

static __always_inline __u32 csum_replace16(__u32 s, __u16 from, __u16 to)
{
	return s + (__u16)~from + to;
}

SEC("xdp")
int gen6(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ipv6hdr *ip6 = data + sizeof(struct ethhdr);
	__u16 *ports = (void *)(ip6 + 1);
	__u32 zero = 0;

	if (data + GEN6_FRAME > data_end || (void *)(ports + 9) > data_end)
		return XDP_ABORTED;
	struct gen6_cfg *cfg = bpf_map_lookup_elem(&gen6_config, &zero);
	__u64 *seq = bpf_map_lookup_elem(&gen_seq, &zero);
	if (!cfg || !seq)
		return XDP_ABORTED;
	__builtin_memcpy(data, cfg->frame, GEN6_FRAME);
	__u64 n = (*seq)++;

	/* The checksum's place: UDP's 4th word, TCP's 9th. */
	__u16 *csum = ip6->nexthdr == IPPROTO_TCP ? &ports[8] : &ports[3];
	__u32 d = 0;
	if (cfg->mode == GEN_NEW) {
		__u16 *lo = (__u16 *)&ip6->saddr.in6_u.u6_addr32[3];
		__u32 a = bpf_htonl(bpf_ntohl(cfg->saddr_lo) + (__u32)(n >> 15));
		__u16 *na = (__u16 *)&a;
		d = csum_replace16(d, lo[0], na[0]);
		d = csum_replace16(d, lo[1], na[1]);
		ip6->saddr.in6_u.u6_addr32[3] = a;
		__u16 p = bpf_htons(cfg->port + (__u16)(n & 0x7fff));
		d = csum_replace16(d, ports[0], p);
		ports[0] = p;
	} else {
		__u16 p = bpf_htons(cfg->port + (__u16)(cfg->nflows ? n % cfg->nflows : 0));
		int i = cfg->mode == GEN_FIXED_DPORT;
		d = csum_replace16(d, ports[i], p);
		ports[i] = p;
	}
	__u32 s = (__u16)~*csum + d;
	s = (s & 0xffff) + (s >> 16);
	s = (s & 0xffff) + (s >> 16);
	__u16 c = (__u16)~s;
	if (!c && ip6->nexthdr == IPPROTO_UDP)
		c = 0xffff;
	*csum = c;
	return XDP_TX;
}

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} sink_count SEC(".maps");

/* Count and drop IPv4, and IPv6 TCP, UDP and IPv6-in-IPv6 (the TUN
 * rows); everything else (ARP, neighbour discovery) goes to the stack,
 * so the sink's addresses resolve. */
SEC("xdp")
int sink(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	__u32 zero = 0;

	if ((void *)(eth + 1) > data_end)
		return XDP_PASS;
	if (eth->h_proto == bpf_htons(ETH_P_IPV6)) {
		struct ipv6hdr *ip6 = (void *)(eth + 1);
		if ((void *)(ip6 + 1) > data_end)
			return XDP_PASS;
		if (ip6->nexthdr != IPPROTO_TCP && ip6->nexthdr != IPPROTO_UDP && ip6->nexthdr != IPPROTO_IPV6)
			return XDP_PASS;
	} else if (eth->h_proto != bpf_htons(ETH_P_IP)) {
		return XDP_PASS;
	}
	__u64 *c = bpf_map_lookup_elem(&sink_count, &zero);
	if (c)
		*c += 1;
	return XDP_DROP;
}

/* The minimal forwarder: new MAC addresses, out of another interface. */
struct fwd_cfg {
	__u32 ifindex;
	__u8  dst[ETH_ALEN];
	__u8  src[ETH_ALEN];
	__u16 pad;
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct fwd_cfg);
} fwd_config SEC(".maps");

SEC("xdp")
int fwd(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	__u32 zero = 0;

	if ((void *)(eth + 1) > data_end)
		return XDP_PASS;
	struct fwd_cfg *cfg = bpf_map_lookup_elem(&fwd_config, &zero);
	if (!cfg)
		return XDP_PASS;
	__builtin_memcpy(eth->h_dest, cfg->dst, ETH_ALEN);
	__builtin_memcpy(eth->h_source, cfg->src, ETH_ALEN);
	return bpf_redirect(cfg->ifindex, 0);
}
