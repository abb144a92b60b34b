/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Packet parsing: Ethernet (with at most one 802.1Q tag), IPv4 (options
 * allowed, header checksum verified as ip_rcv does), TCP/UDP headers, and
 * SCTP's common header and first chunks (sctp.h).
 */
#ifndef GVS_PARSE_H
#define GVS_PARSE_H

#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/in.h>
#include <linux/tcp.h>
#include <linux/udp.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>
#include "csum.h"

#ifndef barrier_var
#define barrier_var(var) asm volatile("" : "+r"(var))
#endif

#define ETH_P_8021Q_BE  bpf_htons(0x8100)
#define ETH_P_8021AD_BE bpf_htons(0x88a8)
#define IP_DF_BE        bpf_htons(0x4000)
#define IP_FRAG_BE      bpf_htons(0x3fff) /* MF | fragment offset */

#define TCPF_FIN 0x01
#define TCPF_SYN 0x02
#define TCPF_RST 0x04
#define TCPF_ACK 0x10

enum parse_result {
	PARSE_OK = 0,
	PARSE_NOT_OURS,  /* well formed, but nothing gvs handles: pass */
	PARSE_MALFORMED, /* truncated or inconsistent: pass, counted */
	PARSE_FRAG,      /* a TCP/UDP fragment after the first: its ports
			  * are the first fragment's (frags map) */
	PARSE_V6,        /* IPv6: the xdp_gvs6 program's (tail call) */
};

/* gvs_pkt.frag */
#define GVS_FRAG_NONE  0
#define GVS_FRAG_FIRST 1 /* offset 0, more fragments: has the L4 header */
#define GVS_FRAG_LATER 2 /* no L4 header: ports from the first */

struct vlan_hdr_gvs {
	__be16 tci;
	__be16 proto;
};

/* What the data path reads from a packet. Offsets are from ctx->data. */
struct gvs_pkt {
	__u32 saddr;     /* network order */
	__u32 daddr;     /* network order */
	__u16 sport;     /* network order */
	__u16 dport;     /* network order */
	__u16 tot_len;   /* IPv4 total length: what IPVS counts in bytes */
	__u16 l3off;     /* 14, or 18 with a VLAN tag */
	__u16 frag_off;  /* network order, as in the header */
	__u8  ihl;       /* IPv4 header length in bytes */
	__u8  proto;
	__u8  tcpflags;  /* TCP; SCTP: its event (sctp.h, sctp_event) */
	__u8  tos;
	__u8  ttl;
	__u8  icmp_type; /* proto IPPROTO_ICMP: an error about in_* */
	/* ICMP errors: the quoted packet's IPv4 addresses and ports (a TCP,
	 * UDP or SCTP packet without options, first fragment). */
	__u32 in_saddr;
	__u32 in_daddr;
	__u16 in_sport;
	__u16 in_dport;
	__u8  in_proto;
	__u8  frag;      /* GVS_FRAG_* */
	__u16 ip_id;     /* fragments: the IP identification */
};

#define ICMP_TYPE_DEST_UNREACH  3
#define ICMP_TYPE_SOURCE_QUENCH 4
#define ICMP_TYPE_TIME_EXCEEDED 11

/* The ICMP errors IPVS relates to a connection (ip_vs_in_icmp): the
 * quoted header follows the 8-byte ICMP header. Anything else about
 * ICMP is the stack's. */
static __always_inline int parse_icmp(struct gvs_pkt *p, void *l4, void *data_end, __u32 len)
{
	__u8 *ic = l4;
	struct iphdr *in = l4 + 8;

	if ((void *)(in + 1) + 4 > data_end || len < 8 + sizeof(*in) + 4)
		return PARSE_NOT_OURS;
	if (ic[0] != ICMP_TYPE_DEST_UNREACH && ic[0] != ICMP_TYPE_SOURCE_QUENCH &&
	    ic[0] != ICMP_TYPE_TIME_EXCEEDED)
		return PARSE_NOT_OURS;
	if (in->version != 4 || in->ihl != 5 ||
	    (in->protocol != IPPROTO_TCP && in->protocol != IPPROTO_UDP &&
	     in->protocol != IPPROTO_SCTP) ||
	    (in->frag_off & bpf_htons(0x1fff)))
		return PARSE_NOT_OURS;
	__u16 *ports = (void *)(in + 1);
	p->icmp_type = ic[0];
	p->in_saddr = in->saddr;
	p->in_daddr = in->daddr;
	p->in_sport = ports[0];
	p->in_dport = ports[1];
	p->in_proto = in->protocol;
	return PARSE_OK;
}

#include "sctp.h"

__gvs_subprog int parse_pkt(struct xdp_md *ctx, struct gvs_pkt *p)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	__u32 off = sizeof(*eth);
	__be16 h_proto;

	if ((void *)(eth + 1) > data_end)
		return PARSE_MALFORMED;
	h_proto = eth->h_proto;
	if (h_proto == ETH_P_8021Q_BE) {
		struct vlan_hdr_gvs *vh = (void *)(eth + 1);

		if ((void *)(vh + 1) > data_end)
			return PARSE_MALFORMED;
		h_proto = vh->proto;
		off += sizeof(*vh);
		if (h_proto == ETH_P_8021Q_BE || h_proto == ETH_P_8021AD_BE)
			return PARSE_NOT_OURS; /* stacked tags: not handled */
	}
	if (h_proto != bpf_htons(ETH_P_IP))
		return h_proto == bpf_htons(ETH_P_IPV6) ? PARSE_V6 : PARSE_NOT_OURS;

	struct iphdr *ip = data + off;

	if ((void *)(ip + 1) > data_end)
		return PARSE_MALFORMED;
	if (ip->version != 4 || ip->ihl < 5)
		return PARSE_MALFORMED;
	__u32 hl = ip->ihl * 4;
	__u32 tot = bpf_ntohs(ip->tot_len);

	void *ip_end = (void *)ip + tot;

	barrier_var(ip_end);
	if (tot < hl || ip_end > data_end)
		return PARSE_MALFORMED;

	/* Header checksum over hl bytes (20..60): ip_rcv drops bad ones. */
	{
		__u16 *w = (void *)ip;
		__u32 s = csum_words(w, 10);

		for (int i = 10; i < 30; i++) {
			if (i >= hl / 2)
				break;
			void *q = (void *)(w + i + 1);

			barrier_var(q);
			if (q > data_end)
				return PARSE_MALFORMED;
			s += w[i];
		}
		if (csum_fold32(s) != 0)
			return PARSE_MALFORMED;
	}

	p->saddr = ip->saddr;
	p->daddr = ip->daddr;
	p->tot_len = tot;
	p->l3off = off;
	p->frag_off = ip->frag_off;
	p->ihl = hl;
	p->proto = ip->protocol;
	p->tos = ip->tos;
	p->ttl = ip->ttl;

	if (ip->frag_off & IP_FRAG_BE) {
		/* Fragments of TCP/UDP follow their first fragment's
		 * decision (frags map); the rest is the stack's. */
		if (ip->protocol != IPPROTO_TCP && ip->protocol != IPPROTO_UDP)
			return PARSE_NOT_OURS;
		p->ip_id = ip->id;
		if (ip->frag_off & bpf_htons(0x1fff)) {
			p->frag = GVS_FRAG_LATER;
			return PARSE_FRAG;
		}
		p->frag = GVS_FRAG_FIRST;
	}

	void *l4 = (void *)ip + hl;

	if (ip->protocol == IPPROTO_TCP) {
		struct tcphdr *th = l4;

		if ((void *)(th + 1) > data_end || hl + sizeof(*th) > tot)
			return PARSE_MALFORMED;
		if (th->doff < 5 || hl + th->doff * 4 > tot)
			return PARSE_MALFORMED;
		p->sport = th->source;
		p->dport = th->dest;
		p->tcpflags = ((__u8 *)th)[13];
		return PARSE_OK;
	}
	if (ip->protocol == IPPROTO_UDP) {
		struct udphdr *uh = l4;

		if ((void *)(uh + 1) > data_end || hl + sizeof(*uh) > tot)
			return PARSE_MALFORMED;
		__u32 ulen = bpf_ntohs(uh->len);
		/* A first fragment carries only part of the datagram. */
		if (ulen < sizeof(*uh) || (hl + ulen > tot && p->frag != GVS_FRAG_FIRST))
			return PARSE_MALFORMED;
		p->sport = uh->source;
		p->dport = uh->dest;
		return PARSE_OK;
	}
	if (ip->protocol == IPPROTO_SCTP)
		return parse_sctp(p, l4, data_end, tot - hl);
	if (ip->protocol == IPPROTO_ICMP)
		return parse_icmp(p, l4, data_end, tot - hl);
	return PARSE_NOT_OURS;
}

#endif
