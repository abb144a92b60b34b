// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
//go:build ignore

/*
 * gvsd's health check forwarding: checks of DR and TUN real servers that
 * reach the server as a client's packet does (destination VIP:vport),
 * although the director owns the VIP and a socket to it would stay local.
 *
 * The checker's socket carries a mark from the reserved range
 * HC_MARK_BASE | id (SO_MARK) and connects to the server's own address
 * RIP:rport, so routing and the neighbour entry deliver it to the server's
 * MAC (DR) or to the next hop towards RIP (TUN). On the way out
 * (hcfwd_egress, tc egress) the mark's target in hc_targets says what the
 * server must see:
 *   DR:  the destination rewritten to VIP:vport;
 *   TUN: the same, then an outer IPv4 header (protocol 4) from the
 *        packet's source to RIP.
 * Each flow is remembered in hc_flows (LRU) under the tuple its replies
 * carry: the server answers from VIP:vport, straight to the checker's
 * address. On the way in (hcfwd_ingress, tc ingress) those replies, and
 * ICMP errors quoting such a flow (port unreachable for UDP), get RIP:rport
 * back in place of VIP:vport, so the checker's socket accepts them.
 *
 * IPv4, TCP and UDP only; IP options and fragments are not rewritten (a
 * marked packet of a known target that cannot be rewritten is dropped
 * rather than sent to RIP, which would check the wrong thing).
 *
 * Verdicts: TC_ACT_UNSPEC ("carry on": the next program, or the stack),
 * TC_ACT_SHOT for the drops above.
 *
 * Shared with Go (hcfwd/hcfwd.go): struct hc_target, struct hc_flow_key,
 * struct hc_flow, HC_MARK_BASE / HC_MARK_MASK.
 */
#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/in.h>
#include <linux/tcp.h>
#include <linux/udp.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

/* linux/icmp.h pulls in libc headers; the little of it needed here. */
#define ICMP_DEST_UNREACH 3
#define ICMP_TIME_EXCEEDED 11
struct icmphdr {
	__u8 type;
	__u8 code;
	__sum16 checksum;
	__be32 rest;
};

#define HC_MARK_BASE 0x47560000 /* "GV" */
#define HC_MARK_MASK 0xffff0000
#define HC_MAX_TARGETS 65536
#define HC_MAX_FLOWS 65536

#define HC_PASS TC_ACT_UNSPEC

#define IP_DF     0x4000
#define IP_MF     0x2000
#define IP_OFFSET 0x1fff

/* Ethernet, IPv4, and TCP's 20 bytes; ICMP: 8 + a quoted IPv4 header and 8
 * bytes. */
#define HC_PULL (14 + 20 + 8 + 20 + 8)

/* A mark's target: where the server must see the check go (vip, vport),
 * and the address and port the checker's socket connects to (rip, rport).
 * Addresses and ports in network order. */
struct hc_target {
	__be32 vip;
	__be32 rip;
	__be16 vport;
	__be16 rport;
	__u8 tunnel;
	__u8 pad[3];
};

/* A flow as its replies carry it: from vip:vport to laddr:lport. */
struct hc_flow_key {
	__be32 laddr;
	__be32 vip;
	__be16 lport;
	__be16 vport;
	__u8 proto;
	__u8 pad[3];
};

/* What the replies' source becomes. */
struct hc_flow {
	__be32 rip;
	__be16 rport;
	__u16 pad;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, HC_MAX_TARGETS);
	__type(key, __u32); /* the mark */
	__type(value, struct hc_target);
} hc_targets SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, HC_MAX_FLOWS);
	__type(key, struct hc_flow_key);
	__type(value, struct hc_flow);
} hc_flows SEC(".maps");

#define ETH_LEN 14
#define IP_CSUM_OFF (ETH_LEN + offsetof(struct iphdr, check))
#define IP_DADDR_OFF (ETH_LEN + offsetof(struct iphdr, daddr))
#define IP_SADDR_OFF (ETH_LEN + offsetof(struct iphdr, saddr))
#define L4_OFF (ETH_LEN + sizeof(struct iphdr))

static __always_inline void pull(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data;
	void *end = (void *)(long)skb->data_end;

	if (data + HC_PULL > end && skb->len > (__u32)(end - data))
		bpf_skb_pull_data(skb, skb->len < HC_PULL ? skb->len : HC_PULL);
}

/* l4_csum_off returns the offset of the TCP or UDP checksum from the
 * transport header, or 0. */
static __always_inline __u32 l4_csum_off(__u8 proto)
{
	if (proto == IPPROTO_TCP)
		return offsetof(struct tcphdr, check);
	if (proto == IPPROTO_UDP)
		return offsetof(struct udphdr, check);
	return 0;
}

/* The flags of a TCP or UDP checksum update: UDP's 0 means "none" and
 * must stay so, and a result of 0 must become 0xffff. */
static __always_inline __u64 l4_flags(__u8 proto)
{
	return proto == IPPROTO_UDP ? BPF_F_MARK_MANGLED_0 : 0;
}

static __always_inline __u16 csum_fold(__u32 sum)
{
	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	return (__u16)~sum;
}

SEC("tc")
int hcfwd_egress(struct __sk_buff *skb)
{
	__u32 mark = skb->mark;

	if ((mark & HC_MARK_MASK) != HC_MARK_BASE)
		return HC_PASS;
	struct hc_target *tp = bpf_map_lookup_elem(&hc_targets, &mark);
	if (!tp)
		return HC_PASS;
	struct hc_target t = *tp;

	pull(skb);
	void *data = (void *)(long)skb->data;
	void *end = (void *)(long)skb->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip = (void *)(eth + 1);

	if ((void *)(ip + 1) > end || eth->h_proto != bpf_htons(ETH_P_IP))
		return HC_PASS;
	if (ip->daddr != t.rip)
		return HC_PASS; /* not the check's packet (the mark is reused by hand?) */
	if (ip->version != 4 || ip->ihl != 5 || (ip->frag_off & bpf_htons(IP_MF | IP_OFFSET)))
		return TC_ACT_SHOT;
	__u8 proto = ip->protocol;
	__u32 coff = l4_csum_off(proto);
	if (!coff)
		return TC_ACT_SHOT;
	/* The ports: the same place in TCP and UDP. */
	__be16 *ports = (void *)(ip + 1);
	if ((void *)(ports + 2) > end)
		return TC_ACT_SHOT;
	if (ports[1] != t.rport)
		return HC_PASS;

	struct hc_flow_key k = {
		.laddr = ip->saddr,
		.vip = t.vip,
		.lport = ports[0],
		.vport = t.vport,
		.proto = proto,
	};
	struct hc_flow f = { .rip = t.rip, .rport = t.rport };
	__u8 tos = ip->tos;
	__be16 frag = ip->frag_off & bpf_htons(IP_DF);
	__u16 tot = bpf_ntohs(ip->tot_len);
	__be32 saddr = ip->saddr;

	/* The latest flow on a tuple wins: see "limits" in docs/health.md. */
	bpf_map_update_elem(&hc_flows, &k, &f, BPF_ANY);

	/* Destination RIP:rport -> VIP:vport. */
	__u64 lf = l4_flags(proto);
	if (t.vip != t.rip) {
		if (bpf_l4_csum_replace(skb, L4_OFF + coff, t.rip, t.vip, lf | BPF_F_PSEUDO_HDR | 4) ||
		    bpf_l3_csum_replace(skb, IP_CSUM_OFF, t.rip, t.vip, 4) ||
		    bpf_skb_store_bytes(skb, IP_DADDR_OFF, &t.vip, 4, 0))
			return TC_ACT_SHOT;
	}
	if (t.vport != t.rport) {
		if (bpf_l4_csum_replace(skb, L4_OFF + coff, t.rport, t.vport, lf | 2) ||
		    bpf_skb_store_bytes(skb, L4_OFF + 2, &t.vport, 2, 0))
			return TC_ACT_SHOT;
	}
	if (!t.tunnel)
		return HC_PASS;

	/* TUN: IP-in-IP to RIP, the outer source the packet's own. The
	 * ENCAP flag sets the inner headers (checksum and GSO offloads of
	 * the inner packet keep working). */
	if (bpf_skb_adjust_room(skb, sizeof(struct iphdr), BPF_ADJ_ROOM_MAC, BPF_F_ADJ_ROOM_ENCAP_L3_IPV4))
		return TC_ACT_SHOT;
	struct iphdr o = {
		.version = 4,
		.ihl = 5,
		.tos = tos,
		.tot_len = bpf_htons(tot + sizeof(struct iphdr)),
		.frag_off = frag,
		.ttl = 64,
		.protocol = IPPROTO_IPIP,
		.saddr = saddr,
		.daddr = t.rip,
	};
	const __u16 *w = (const __u16 *)&o;
	__u32 sum = 0;
#pragma unroll
	for (int i = 0; i < (int)(sizeof(o) / 2); i++)
		sum += w[i];
	o.check = csum_fold(sum);
	if (bpf_skb_store_bytes(skb, ETH_LEN, &o, sizeof(o), 0))
		return TC_ACT_SHOT;
	return HC_PASS;
}

/* reply rewrites a TCP or UDP reply of a known flow: source VIP:vport ->
 * RIP:rport. */
static __always_inline int reply(struct __sk_buff *skb, struct iphdr *ip, void *end)
{
	__u8 proto = ip->protocol;
	__u32 coff = l4_csum_off(proto);
	__be16 *ports = (void *)(ip + 1);

	if ((void *)(ports + 2) > end)
		return HC_PASS;
	struct hc_flow_key k = {
		.laddr = ip->daddr,
		.vip = ip->saddr,
		.lport = ports[1],
		.vport = ports[0],
		.proto = proto,
	};
	struct hc_flow *fp = bpf_map_lookup_elem(&hc_flows, &k);
	if (!fp)
		return HC_PASS;
	struct hc_flow f = *fp;
	__u64 lf = l4_flags(proto);

	if (f.rip != k.vip) {
		if (bpf_l4_csum_replace(skb, L4_OFF + coff, k.vip, f.rip, lf | BPF_F_PSEUDO_HDR | 4) ||
		    bpf_l3_csum_replace(skb, IP_CSUM_OFF, k.vip, f.rip, 4) ||
		    bpf_skb_store_bytes(skb, IP_SADDR_OFF, &f.rip, 4, 0))
			return TC_ACT_SHOT;
	}
	if (f.rport != k.vport) {
		if (bpf_l4_csum_replace(skb, L4_OFF + coff, k.vport, f.rport, lf | 2) ||
		    bpf_skb_store_bytes(skb, L4_OFF, &f.rport, 2, 0))
			return TC_ACT_SHOT;
	}
	return HC_PASS;
}

/* icmp_error rewrites an ICMP error quoting a known flow: the quoted
 * destination VIP:vport -> RIP:rport (the quoted IP header's checksum and
 * the ICMP checksum follow; the quoted transport checksum is left, as the
 * kernel leaves it), and the source VIP -> RIP if the error came from it. */
static __always_inline int icmp_error(struct __sk_buff *skb, struct iphdr *ip, void *end)
{
	struct icmphdr *ic = (void *)(ip + 1);
	struct iphdr *in = (void *)(ic + 1);
	__be16 *ports = (void *)(in + 1);

	if ((void *)(ports + 2) > end)
		return HC_PASS;
	if (ic->type != ICMP_DEST_UNREACH && ic->type != ICMP_TIME_EXCEEDED)
		return HC_PASS;
	if (in->version != 4 || in->ihl != 5 || !l4_csum_off(in->protocol))
		return HC_PASS;
	struct hc_flow_key k = {
		.laddr = in->saddr,
		.vip = in->daddr,
		.lport = ports[0],
		.vport = ports[1],
		.proto = in->protocol,
	};
	struct hc_flow *fp = bpf_map_lookup_elem(&hc_flows, &k);
	if (!fp)
		return HC_PASS;
	struct hc_flow f = *fp;
	__be32 outer_src = ip->saddr;
	__be16 old_check = in->check;

	const __u32 icsum = L4_OFF + offsetof(struct icmphdr, checksum);
	const __u32 in_off = L4_OFF + sizeof(struct icmphdr);
	const __u32 in_check = in_off + offsetof(struct iphdr, check);
	const __u32 in_daddr = in_off + offsetof(struct iphdr, daddr);
	const __u32 in_dport = in_off + sizeof(struct iphdr) + 2;

	if (f.rip != k.vip) {
		/* The quoted header's own checksum. */
		if (bpf_l3_csum_replace(skb, in_check, k.vip, f.rip, 4) ||
		    bpf_skb_store_bytes(skb, in_daddr, &f.rip, 4, 0))
			return TC_ACT_SHOT;
		void *data = (void *)(long)skb->data;
		void *dend = (void *)(long)skb->data_end;
		__be16 *nc = data + in_check;
		if ((void *)(nc + 1) > dend)
			return TC_ACT_SHOT;
		__be16 new_check = *nc;
		/* The ICMP checksum covers the quote: address and header
		 * checksum changed. */
		if (bpf_l4_csum_replace(skb, icsum, k.vip, f.rip, 4) ||
		    bpf_l4_csum_replace(skb, icsum, old_check, new_check, 2))
			return TC_ACT_SHOT;
	}
	if (f.rport != k.vport) {
		if (bpf_l4_csum_replace(skb, icsum, k.vport, f.rport, 2) ||
		    bpf_skb_store_bytes(skb, in_dport, &f.rport, 2, 0))
			return TC_ACT_SHOT;
	}
	if (outer_src == k.vip && f.rip != k.vip) {
		if (bpf_l3_csum_replace(skb, IP_CSUM_OFF, k.vip, f.rip, 4) ||
		    bpf_skb_store_bytes(skb, IP_SADDR_OFF, &f.rip, 4, 0))
			return TC_ACT_SHOT;
	}
	return HC_PASS;
}

SEC("tc")
int hcfwd_ingress(struct __sk_buff *skb)
{
	pull(skb);
	void *data = (void *)(long)skb->data;
	void *end = (void *)(long)skb->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip = (void *)(eth + 1);

	if ((void *)(ip + 1) > end || eth->h_proto != bpf_htons(ETH_P_IP))
		return HC_PASS;
	if (ip->version != 4 || ip->ihl != 5 || (ip->frag_off & bpf_htons(IP_MF | IP_OFFSET)))
		return HC_PASS;
	if (ip->protocol == IPPROTO_TCP || ip->protocol == IPPROTO_UDP)
		return reply(skb, ip, end);
	if (ip->protocol == IPPROTO_ICMP)
		return icmp_error(skb, ip, end);
	return HC_PASS;
}

char __license[] SEC("license") = "Dual BSD/GPL";
