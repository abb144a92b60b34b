// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
//go:build ignore

/*
 * gvs-realserver tunnel decapsulation: a tc ingress program (TCX, or a
 * clsact direct-action filter on kernels before 6.6) that strips the outer
 * IP header from the IP-in-IP packets an LVS director sends in TUN mode
 * (ipvsadm -i), so the inner packet, addressed to a VIP on lo, continues
 * up the stack as if it had arrived unencapsulated. No ipip/ip6_tunnel
 * module or tunl0 device is needed.
 *
 * Decapsulated: outer IPv4 (no options, not fragmented) with protocol 4
 * (IPv4 inside) or 41 (IPv6 inside), and outer IPv6 (no extension headers)
 * with next header 4 or 41, whose inner destination is in the vips map.
 * Everything else, truncated or malformed packets included, is passed on
 * untouched for the kernel to deal with as it would without this program.
 *
 * The verdict is TC_ACT_UNSPEC, decapsulated or not: "carry on". With
 * nothing attached after this program the packet goes up the stack; a
 * program attached after it (a firewall, an agent) still sees the packet,
 * the inner one if it was decapsulated. TC_ACT_OK would end the chain there.
 *
 * The vips map is shared with Go (realserver/decap.go): the key is the
 * 16-byte address, IPv6 as is and IPv4 as ::ffff:a.b.c.d, the value unused.
 */
#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/in.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

/* Kernel 6.3 uapi; the libc headers this is built with may predate it. */
#ifndef BPF_F_ADJ_ROOM_DECAP_L3_IPV4
#define BPF_F_ADJ_ROOM_DECAP_L3_IPV4 (1ULL << 7)
#define BPF_F_ADJ_ROOM_DECAP_L3_IPV6 (1ULL << 8)
#endif

#define IP_MF     0x2000
#define IP_OFFSET 0x1fff

#define GVS_RS_MAX_VIPS 4096
#define GVS_RS_PASS TC_ACT_UNSPEC

/* Headers that must be in the linear area: Ethernet, outer, inner IPv6. */
#define GVS_RS_PULL (14 + 40 + 40)

/* Mirrored by vipKey in realserver/decap.go. */
struct vip_key {
	__u8 addr[16];
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, GVS_RS_MAX_VIPS);
	__type(key, struct vip_key);
	__type(value, __u8);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} gvs_rs_vips SEC(".maps");

static __always_inline int ipv4_csum_ok(const struct iphdr *ip)
{
	const __u16 *w = (const __u16 *)ip;
	__u32 sum = 0;

#pragma unroll
	for (int i = 0; i < (int)(sizeof(*ip) / 2); i++)
		sum += w[i];
	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	return sum == 0xffff;
}

SEC("tc")
int gvs_rs_decap(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data;
	void *end = (void *)(long)skb->data_end;
	struct ethhdr *eth = data;
	struct vip_key key = {};
	__u8 outer_v6, inner_proto;
	__u32 olen, plen;
	void *inner;

	if (data + GVS_RS_PULL > end && skb->len > (__u32)(end - data)) {
		/* Headers in paged data (some drivers): pull them in. */
		bpf_skb_pull_data(skb, skb->len < GVS_RS_PULL ? skb->len : GVS_RS_PULL);
		data = (void *)(long)skb->data;
		end = (void *)(long)skb->data_end;
		eth = data;
	}
	if ((void *)(eth + 1) > end)
		return GVS_RS_PASS;

	if (eth->h_proto == bpf_htons(ETH_P_IP)) {
		struct iphdr *ip = (void *)(eth + 1);

		if ((void *)(ip + 1) > end)
			return GVS_RS_PASS;
		if (ip->version != 4 || ip->ihl != 5)
			return GVS_RS_PASS;
		if (ip->protocol != IPPROTO_IPIP && ip->protocol != IPPROTO_IPV6)
			return GVS_RS_PASS;
		if (ip->frag_off & bpf_htons(IP_MF | IP_OFFSET))
			return GVS_RS_PASS; /* the kernel reassembles; we do not */
		plen = bpf_ntohs(ip->tot_len);
		if (plen < sizeof(*ip) || plen > skb->len - sizeof(*eth))
			return GVS_RS_PASS;
		if (!ipv4_csum_ok(ip))
			return GVS_RS_PASS;
		outer_v6 = 0;
		inner_proto = ip->protocol;
		olen = sizeof(*ip);
		inner = ip + 1;
	} else if (eth->h_proto == bpf_htons(ETH_P_IPV6)) {
		struct ipv6hdr *ip6 = (void *)(eth + 1);

		if ((void *)(ip6 + 1) > end)
			return GVS_RS_PASS;
		if (ip6->version != 6)
			return GVS_RS_PASS;
		if (ip6->nexthdr != IPPROTO_IPIP && ip6->nexthdr != IPPROTO_IPV6)
			return GVS_RS_PASS;
		plen = bpf_ntohs(ip6->payload_len);
		if (plen > skb->len - sizeof(*eth) - sizeof(*ip6))
			return GVS_RS_PASS;
		outer_v6 = 1;
		inner_proto = ip6->nexthdr;
		olen = sizeof(*ip6);
		inner = ip6 + 1;
	} else {
		return GVS_RS_PASS;
	}

	if (inner_proto == IPPROTO_IPIP) {
		struct iphdr *in4 = inner;

		if ((void *)(in4 + 1) > end || in4->version != 4)
			return GVS_RS_PASS;
		key.addr[10] = 0xff;
		key.addr[11] = 0xff;
		__builtin_memcpy(&key.addr[12], &in4->daddr, 4);
	} else {
		struct ipv6hdr *in6 = inner;

		if ((void *)(in6 + 1) > end || in6->version != 6)
			return GVS_RS_PASS;
		__builtin_memcpy(key.addr, &in6->daddr, 16);
	}

	if (!bpf_map_lookup_elem(&gvs_rs_vips, &key))
		return GVS_RS_PASS;

	/*
	 * Remove the outer header, keeping the Ethernet header. FIXED_GSO: the
	 * segments of a GRO-merged packet keep their payload size. The DECAP
	 * flag (kernel 6.3) only where the family changes, so that same-family
	 * tunnels also work on older kernels.
	 */
	__u64 flags = BPF_F_ADJ_ROOM_FIXED_GSO;
	__u8 inner_v6 = inner_proto == IPPROTO_IPV6;

	if (inner_v6 != outer_v6)
		flags |= inner_v6 ? BPF_F_ADJ_ROOM_DECAP_L3_IPV6 : BPF_F_ADJ_ROOM_DECAP_L3_IPV4;
	if (bpf_skb_adjust_room(skb, -(__s32)olen, BPF_ADJ_ROOM_MAC, flags))
		return TC_ACT_SHOT; /* for a VIP, yet undeliverable: drop, as ipip would */

	if (inner_v6 != outer_v6) {
		__be16 proto = inner_v6 ? bpf_htons(ETH_P_IPV6) : bpf_htons(ETH_P_IP);

		if (bpf_skb_store_bytes(skb, offsetof(struct ethhdr, h_proto), &proto, sizeof(proto), 0))
			return TC_ACT_SHOT;
	}
	return GVS_RS_PASS;
}

char __license[] SEC("license") = "Dual BSD/GPL";
