//go:build ignore

// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * The flood generator of bench/pktgen for BPF_PROG_RUN live frames:
 * every run writes one spoofed frame (a TCP SYN or a UDP datagram) from
 * a source address and port drawn in a prefix, with its checksums right,
 * and sends it back out of the ingress device (XDP_TX). And a capture
 * program that keeps the first frames it sees and counts all of them
 * (pktgen's tests, and a sink that counts).
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/in.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

char _license[] SEC("license") = "Dual BSD/GPL";

#define FLOOD_FRAME 60 /* a 64-byte frame without its FCS */

/* The template is the frame with every varied field zero (source
 * address, IP id, source port, TCP sequence number) and its checksums
 * computed so: the program adds the fields' 16-bit words to them. */
struct flood_cfg {
	__u32 saddr;    /* the prefix's first address, host order */
	__u32 hostmask; /* its host bits, host order */
	__u8  proto;    /* IPPROTO_TCP or IPPROTO_UDP */
	__u8  sequential; /* addresses in order, then ports; else random */
	__u16 pad;
	__u8  frame[FLOOD_FRAME];
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct flood_cfg);
} flood_config SEC(".maps");

/* Frames written so far (one generator runs a loaded copy at a time). */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} flood_seq SEC(".maps");

static __always_inline __u16 fold(__u32 s)
{
	s = (s & 0xffff) + (s >> 16);
	s = (s & 0xffff) + (s >> 16);
	return (__u16)s;
}

#define FIRST_PORT 1024
#define NPORTS     (65536 - FIRST_PORT)

SEC("xdp")
int flood(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct iphdr *ip = data + sizeof(struct ethhdr);
	__u16 *l4 = (void *)(ip + 1);
	__u32 zero = 0;

	if (data + FLOOD_FRAME > data_end)
		return XDP_ABORTED;
	struct flood_cfg *cfg = bpf_map_lookup_elem(&flood_config, &zero);
	__u64 *seq = bpf_map_lookup_elem(&flood_seq, &zero);
	if (!cfg || !seq)
		return XDP_ABORTED;
	/* A live frame comes back with what the last run (and whoever
	 * received it) wrote in it: the whole template every time. */
	__builtin_memcpy(data, cfg->frame, FLOOD_FRAME);

	__u32 addr, port;
	__u64 n = (*seq)++;
	if (cfg->sequential) {
		__u64 hosts = (__u64)cfg->hostmask + 1;
		addr = cfg->saddr + (__u32)(n % hosts);
		port = FIRST_PORT + (__u32)((n / hosts) % NPORTS);
	} else {
		addr = cfg->saddr | (bpf_get_prandom_u32() & cfg->hostmask);
		port = FIRST_PORT + bpf_get_prandom_u32() % NPORTS;
	}
	__u32 r = bpf_get_prandom_u32();
	ip->saddr = bpf_htonl(addr);
	ip->id = (__u16)r;
	l4[0] = bpf_htons((__u16)port);

	/* One's complement sums of the words as they lie in the frame. */
	__u32 sa = (ip->saddr >> 16) + (ip->saddr & 0xffff);
	ip->check = ~fold((__u16)~ip->check + sa + ip->id);
	if (cfg->proto == IPPROTO_TCP) {
		__u32 isn = bpf_get_prandom_u32();
		__u32 *seqno = (__u32 *)&l4[2];
		*seqno = isn;
		__u16 *check = &l4[8];
		*check = ~fold((__u16)~*check + sa + l4[0] + (isn >> 16) + (isn & 0xffff));
	} else {
		__u16 *check = &l4[3];
		__u16 c = ~fold((__u16)~*check + sa + l4[0]);
		*check = c ? c : 0xffff;
	}
	return XDP_TX;
}

/* capture: count every frame, keep the first CAP_SLOTS, drop them all
 * (ARP and everything else included: put it where only a generator
 * sends). */
#define CAP_SLOTS 64
#define CAP_BYTES 64

struct cap_slot {
	__u32 len;
	__u8  data[CAP_BYTES];
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, CAP_SLOTS);
	__type(key, __u32);
	__type(value, struct cap_slot);
} cap_frames SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} cap_count SEC(".maps");

SEC("xdp")
int capture(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	__u32 zero = 0;

	__u64 *count = bpf_map_lookup_elem(&cap_count, &zero);
	if (!count)
		return XDP_DROP;
	__u32 i = (__u32)__sync_fetch_and_add(count, 1);
	if (i >= CAP_SLOTS)
		return XDP_DROP;
	struct cap_slot *slot = bpf_map_lookup_elem(&cap_frames, &i);
	if (!slot)
		return XDP_DROP;
	__u32 len = data_end - data;
	slot->len = len;
	/* Constant lengths, for the verifier: 64 bytes, or the 60 of a
	 * minimal frame, or the Ethernet header. */
	if (len >= CAP_BYTES)
		bpf_xdp_load_bytes(ctx, 0, slot->data, CAP_BYTES);
	else if (len >= 60)
		bpf_xdp_load_bytes(ctx, 0, slot->data, 60);
	else if (len >= 14)
		bpf_xdp_load_bytes(ctx, 0, slot->data, 14);
	return XDP_DROP;
}
