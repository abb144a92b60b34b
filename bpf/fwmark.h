/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Firewall-mark services. XDP runs before netfilter, so it cannot see the
 * mark an operator's mangle rule sets. gvsd's nftables rule (after
 * mangle) duplicates a packet carrying a service's mark out of the veth
 * gvs-fwm0 and drops the original; gvs_fwm_tag, at gvs-fwm0's tc egress,
 * puts the packet back as it arrived and writes the mark into the source
 * MAC; xdp_gvs on the peer gvs-fwm1 reads it (fwm_mark) and schedules on
 * the fwmark service. Only a flow's first packet takes this way: its
 * connection entry has the real 5-tuple, so the rest of the flow is
 * forwarded on the interface it arrives on, as any connection.
 */
#ifndef GVS_FWMARK_H
#define GVS_FWMARK_H

#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>
#include "gvs.h"
#include "maps.h"
#include "csum.h"

/* What nf_dup_ipv4/ipv6 changed in a duplicate taken at PREROUTING:
 * TTL (hop limit) one lower, and DF set on IPv4. The original's DF is
 * told by the gateway the rule duplicated to (its neighbour entry's MAC,
 * the duplicate's destination MAC). The IPv4 header checksum is fixed
 * incrementally. */
static __always_inline int fwm_undo_dup(struct ethhdr *eth, void *data_end)
{
	if (eth->h_proto == bpf_htons(ETH_P_IP)) {
		struct iphdr *ip = (void *)(eth + 1);

		if ((void *)(ip + 1) > data_end)
			return -1;
		__u16 *w = (__u16 *)ip;
		__u16 old_ttl = w[4], old_frag = w[3];

		if (ip->ttl == 255)
			return -1;
		ip->ttl++;
		if (eth->h_dest[5] == GVS_FWM_DF_CLEAR)
			ip->frag_off &= ~bpf_htons(0x4000);
		ip->check = csum_replace(ip->check, csum_diff16(old_ttl, w[4]) +
						    csum_diff16(old_frag, w[3]));
		return 0;
	}
	if (eth->h_proto == bpf_htons(ETH_P_IPV6)) {
		struct ipv6hdr *ip6 = (void *)(eth + 1);

		if ((void *)(ip6 + 1) > data_end || ip6->hop_limit == 255)
			return -1;
		ip6->hop_limit++;
		return 0;
	}
	return -1;
}

SEC("tc")
int gvs_fwm_tag(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	struct ethhdr *eth = data;
	__u32 mark = skb->mark;

	/* Only nf_dup's duplicates leave here; nothing else may reach
	 * xdp_gvs on the peer (the kernel's own neighbour or router
	 * solicitations, say). */
	if (!mark || (void *)(eth + 1) > data_end)
		return TC_ACT_SHOT;
	__u32 want = sizeof(*eth) + sizeof(struct ipv6hdr);
	if (bpf_skb_pull_data(skb, skb->len < want ? skb->len : want))
		return TC_ACT_SHOT;
	data = (void *)(long)skb->data;
	data_end = (void *)(long)skb->data_end;
	eth = data;
	if ((void *)(eth + 1) > data_end || fwm_undo_dup(eth, data_end))
		return TC_ACT_SHOT;
	eth->h_source[0] = GVS_FWM_TAG0;
	eth->h_source[1] = GVS_FWM_TAG1;
	eth->h_source[2] = mark >> 24;
	eth->h_source[3] = mark >> 16;
	eth->h_source[4] = mark >> 8;
	eth->h_source[5] = mark;
	return TC_ACT_OK;
}

/* 1 if the frame came in on the fwmark interface (its mark, from the
 * tag, in *mark; 0 when untagged), else 0. A call of its own: its frame
 * is not on the stack of the packet path's deepest calls. */
__gvs_subprog int fwm_frame(struct xdp_md *ctx, __u32 *mark)
{
	__u32 zero = 0;
	__u32 *ifx = bpf_map_lookup_elem(&fwm_if, &zero);

	*mark = 0;
	if (!ifx || !*ifx || *ifx != ctx->ingress_ifindex)
		return 0;
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;

	if ((void *)(eth + 1) > data_end || eth->h_source[0] != GVS_FWM_TAG0 ||
	    eth->h_source[1] != GVS_FWM_TAG1)
		return 1;
	*mark = (__u32)eth->h_source[2] << 24 | (__u32)eth->h_source[3] << 16 |
		(__u32)eth->h_source[4] << 8 | eth->h_source[5];
	return 1;
}

#endif
