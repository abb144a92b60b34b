/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * NAT and FULLNAT: address and port translation in both directions, with
 * incremental checksums, the FULLNAT local port allocator, and the ICMP
 * errors about a translated flow (inner header translated too).
 *
 * Both directions are routed by the FIB from the ingress device, which,
 * as for TUN, answers only with forwarding on for that device (LVS-NAT
 * needs ip_forward anyway). A next hop without a neighbour entry drops
 * the packet (GVS_EV_NO_ROUTE): gvsd has the kernel resolve the servers
 * ahead, and any next hop a packet found unresolved (neigh_miss: a client
 * whose entry aged out, or that a VRRP backup never heard from) within a
 * second.
 */
#ifndef GVS_NAT_H
#define GVS_NAT_H

#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/in.h>
#include <linux/tcp.h>
#include <linux/udp.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>
#include "gvs.h"
#include "maps.h"
#include "parse.h"
#include "csum.h"
#include "fwd.h"

#define LPORT_MIN 1024
#define LPORT_MAX 32767

/* A translation: the packet's new addresses and ports. For an ICMP error
 * the quoted packet's (in_*) change too; output is a reply toward the
 * client, forwarded as the kernel forwards (TTL decremented). */
struct nat_xlate {
	__u32 saddr;
	__u32 daddr;
	__u16 sport;
	__u16 dport;
	__u32 in_saddr;
	__u32 in_daddr;
	__u16 in_sport;
	__u16 in_dport;
	__u32 icmp_src; /* source of our own ICMP errors (a director address) */
	__u8  output;
	__u8  pad[3];
	/* The next hop gvsd resolved for the server (its dest entry), 0:
	 * ask the FIB. */
	__u32 hop_ifindex;
	__u8  hop_mac[6];
	__u16 pad2;
	__u32 hop_gen;  /* with nat_xmit's learn: the generation to cache under */
};

/* Rewrite the IPv4 header and the TCP/UDP/SCTP or ICMP-error payload. */
static __always_inline int nat_rewrite(struct xdp_md *ctx, const struct gvs_pkt *p,
				       const struct nat_xlate *x)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	/* Bounded offsets, so the verifier can follow the packet checks. */
	__u32 l3 = p->l3off == 18 ? 18 : 14;
	__u32 hl = p->ihl & 0x3c;
	struct iphdr *ip = data + l3;

	if ((void *)(ip + 1) > data_end)
		return -1;
	__u32 l4diff = csum_diff32(ip->saddr, x->saddr) + csum_diff32(ip->daddr, x->daddr);
	__u32 ipdiff = l4diff;

	if (x->output) {
		__u16 old = *(__u16 *)&ip->ttl;
		ip->ttl -= 1;
		ipdiff += csum_diff16(old, *(__u16 *)&ip->ttl);
	}
	ip->check = csum_replace(ip->check, ipdiff);
	ip->saddr = x->saddr;
	ip->daddr = x->daddr;
	if (p->frag == GVS_FRAG_LATER)
		return 0; /* no L4 header: the first fragment's checksum
			   * took the pseudo-header's change */

	void *l4 = (void *)ip + hl;
	if (p->proto == IPPROTO_TCP) {
		struct tcphdr *th = l4;
		if ((void *)(th + 1) > data_end)
			return -1;
		l4diff += csum_diff16(th->source, x->sport) + csum_diff16(th->dest, x->dport);
		th->check = csum_replace(th->check, l4diff);
		th->source = x->sport;
		th->dest = x->dport;
		return 0;
	}
	if (p->proto == IPPROTO_UDP) {
		struct udphdr *uh = l4;
		if ((void *)(uh + 1) > data_end)
			return -1;
		if (uh->check) { /* 0: sent without a checksum */
			l4diff += csum_diff16(uh->source, x->sport) + csum_diff16(uh->dest, x->dport);
			__u16 c = csum_replace(uh->check, l4diff);
			uh->check = c ? c : 0xffff;
		}
		uh->source = x->sport;
		uh->dest = x->dport;
		return 0;
	}
	if (p->proto == IPPROTO_SCTP) /* sctp.h: ports and CRC32c */
		return sctp_nat_ports(l4, data_end, x->sport, x->dport, p->tot_len - hl);
	/* An ICMP error: the quoted IPv4 header and ports change; its
	 * checksum, over the whole message, by the same differences. The
	 * quoted transport checksum is left alone, as the kernel does. */
	__u16 *ic = l4;
	struct iphdr *in = l4 + 8;
	__u16 *ports = (void *)(in + 1);
	if ((void *)(ports + 2) > data_end)
		return -1;
	__u32 indiff = csum_diff32(in->saddr, x->in_saddr) + csum_diff32(in->daddr, x->in_daddr);
	__u16 incheck = csum_replace(in->check, indiff);
	__u32 icdiff = indiff + csum_diff16(in->check, incheck) +
		       csum_diff16(ports[0], x->in_sport) + csum_diff16(ports[1], x->in_dport);
	in->check = incheck;
	in->saddr = x->in_saddr;
	in->daddr = x->in_daddr;
	ports[0] = x->in_sport;
	ports[1] = x->in_dport;
	ic[1] = csum_replace(ic[1], icdiff);
	return 0;
}

/* Toward server d: by the next hop gvsd resolved for it. */
static __always_inline void xlate_hop(struct nat_xlate *x, const struct gvs_dest *d)
{
	x->hop_ifindex = d->ifindex;
	__builtin_memcpy(x->hop_mac, d->mac, sizeof(x->hop_mac));
}

/* A reply the kernel's ip_forward would not forward (TTL expiring):
 * IPVS never sees it, and the stack sends the time exceeded. */
static __always_inline int reply_ttl_expired(const struct gvs_pkt *p)
{
	if (p->ttl > 1)
		return 0;
	ev_inc(GVS_EV_TTL);
	return 1;
}

/* Translate the packet and send it toward x->daddr: by the next hop gvsd
 * resolved for a server (or a connection learnt), else where the FIB
 * says; with learn, the FIB's answer is kept in that connection. */
__gvs_subprog int nat_xmit(struct xdp_md *ctx, const struct gvs_pkt *p,
			   const struct nat_xlate *x, __u64 now, struct gvs_conn *learn)
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
		fib.family = AF_INET;
		fib.tos = p->tos;
		fib.l4_protocol = p->proto;
		fib.tot_len = p->tot_len;
		fib.ifindex = ctx->ingress_ifindex;
		fib.ipv4_src = x->saddr;
		fib.ipv4_dst = x->daddr;
		rc = bpf_fib_lookup(ctx, &fib, sizeof(fib), 0);
		if (rc == BPF_FIB_LKUP_RET_SUCCESS && learn && x->hop_gen) {
			learn->hop_ifindex = fib.ifindex;
			__builtin_memcpy(learn->hop_mac, fib.dmac, ETH_ALEN);
			learn->hop_gen = x->hop_gen;
		}
	}
	if (rc == BPF_FIB_LKUP_RET_FRAG_NEEDED) {
		if (p->frag_off & IP_DF_BE) {
			ev_inc(GVS_EV_FRAG_NEEDED);
			if (p->proto != IPPROTO_ICMP &&
			    icmp_reply(ctx, p, ICMP_ARG(ICMP_DEST_UNREACH, ICMP_FRAG_NEEDED, fib.mtu_result),
				       x->icmp_src, now) == 0)
				return XDP_TX;
			return XDP_DROP;
		}
		/* The kernel would fragment; XDP cannot, and the stack
		 * would send it untranslated. */
		ev_inc(GVS_EV_TOO_BIG);
		return XDP_DROP;
	}
	if (rc != BPF_FIB_LKUP_RET_SUCCESS) {
		if (rc == BPF_FIB_LKUP_RET_NO_NEIGH) {
			/* fib.ipv4_dst is the next hop now: ask gvsd to
			 * have it resolved. */
			__u32 nh = fib.ipv4_dst;
			bpf_map_update_elem(&neigh_miss, &nh, &now, BPF_ANY);
		}
		ev_inc(GVS_EV_NO_ROUTE);
		return XDP_DROP;
	}
	if (nat_rewrite(ctx, p, x))
		return XDP_DROP;

	/* [eth][vlan?][ip] -> [eth][ip]: the FIB chose the way out. */
	__u32 shrink = p->l3off == 18 ? 4 : 0;
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data + shrink;
	if ((void *)(eth + 1) > data_end)
		return XDP_DROP;
	__builtin_memcpy(eth->h_dest, fib.dmac, ETH_ALEN);
	__builtin_memcpy(eth->h_source, fib.smac, ETH_ALEN);
	eth->h_proto = bpf_htons(ETH_P_IP);
	if (shrink && bpf_xdp_adjust_head(ctx, shrink))
		return XDP_DROP;
	ev_inc(x->output ? GVS_EV_REPLY : GVS_EV_FORWARD);
	if (fib.ifindex == ctx->ingress_ifindex)
		return XDP_TX;
	return bpf_redirect(fib.ifindex, 0);
}

/* The FULLNAT local port search: from a random port, the first one whose
 * reply tuple {server, local address, server port, port} is free; the
 * NOEXIST insert that finds it is the reservation. A port is thus unique
 * per server and local address, as the kernel's connect() makes it. The
 * search state lives in a per-CPU map: the packet path's stack is full. */
struct lport_search {
	struct gvs_conn_key rk; /* the reply key tried; vport the port */
	struct gvs_reply rv;    /* its value: the connection's key */
	__u32 min;
	__u32 span;
	__u32 start;
	__s32 found;            /* 1: rk.vport is ours; -1: rconns full */
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct lport_search);
} lport_scratch SEC(".maps");

/* Probes per new connection, over all pool addresses: a refusal costs
 * at most this many inserts. With a range three quarters taken, 64
 * random probes all miss with probability 0.75^64 = 1e-8. */
#define LPORT_PROBES 64

static long lport_try(__u64 i, void *unused)
{
	__u32 zero = 0;
	struct lport_search *s = bpf_map_lookup_elem(&lport_scratch, &zero);

	if (!s)
		return 1;
	/* A range of at most LPORT_PROBES ports is scanned from start; a
	 * larger one probed at random: a nearly full range costs a few
	 * inserts, not tens of thousands. */
	__u32 off = s->start + (__u32)i;
	if (i && s->span > LPORT_PROBES)
		off = bpf_get_prandom_u32();
	__u32 port = s->min + off % s->span;

	s->rk.vport = bpf_htons(port);
	long err = bpf_map_update_elem(&rconns, &s->rk, &s->rv, BPF_NOEXIST);
	if (err == 0) {
		s->found = 1;
		return 1;
	}
	if (err != -17 /* EEXIST */) {
		s->found = -1;
		return 1;
	}
	return 0;
}

/* What the allocator needs: the connection, its server and the local
 * address candidates. */
struct lport_req {
	const struct gvs_conn_key *fk;
	const struct gvs_svc *svc;
	const struct gvs_config *cfg;
	__u32 raddr;
	__u16 rport;
	__u16 pad;
	__u32 route_src; /* the route's source toward the server */
};

/* Reserve a local address and port for a FULLNAT connection: each pool
 * address in turn from a random one (or the route's source without a
 * pool), random ports of the range, LPORT_PROBES in all (at least 4 per
 * address). Returns 0 and sets *laddr, *lport (network order); -1 when
 * none was free. */
__gvs_subprog int lport_alloc(const struct lport_req *r, __u32 *laddr, __u16 *lport)
{
	__u32 zero = 0;
	struct lport_search *s = bpf_map_lookup_elem(&lport_scratch, &zero);
	__u32 n = r->svc->nladdrs;

	if (!s)
		return -1;
	__u32 lo = r->cfg->lport_min, hi = r->cfg->lport_max;

	if (!lo || hi < lo) {
		lo = LPORT_MIN;
		hi = LPORT_MAX;
	}
	__builtin_memset(&s->rk, 0, sizeof(s->rk));
	reply_init(&s->rv, r->fk);
	s->rk.caddr[0] = r->raddr;
	s->rk.cport = r->rport;
	s->rk.proto = r->fk->proto;
	s->rk.af = 4;
	s->min = lo;
	s->span = hi - lo + 1;
	if (n > GVS_SVC_LADDRS)
		n = GVS_SVC_LADDRS;
	__u32 first = n ? bpf_get_prandom_u32() % n : 0;
	__u32 tries = n ? LPORT_PROBES / n : LPORT_PROBES;

	if (tries < 4)
		tries = 4;
	if (s->span <= LPORT_PROBES)
		tries = s->span;

	for (int j = 0; j < GVS_SVC_LADDRS; j++) {
		__u32 a;
		if (n) {
			if (j >= n)
				break;
			__u32 idx = (first + j) % n;
			barrier_var(idx);
			a = r->svc->laddrs[idx & (GVS_SVC_LADDRS - 1)];
		} else {
			if (j > 0)
				break;
			a = r->route_src;
		}
		if (!a)
			continue;
		s->rk.vaddr[0] = a;
		s->start = bpf_get_prandom_u32() % s->span;
		s->found = 0;
		bpf_loop(tries, lport_try, 0, 0);
		if (s->found == 1) {
			*laddr = a;
			*lport = s->rk.vport;
			return 0;
		}
		if (s->found < 0)
			return -1;
	}
	return -1;
}

/* The route's source address toward a server: FULLNAT's default local
 * address (the director's address on the interface toward it). */
__gvs_subprog __u32 route_src(struct xdp_md *ctx, __u32 daddr)
{
	struct bpf_fib_lookup fib = {};

	fib.family = AF_INET;
	fib.ifindex = ctx->ingress_ifindex;
	fib.ipv4_dst = daddr;
	long rc = bpf_fib_lookup(ctx, &fib, sizeof(fib), BPF_FIB_LOOKUP_SRC | BPF_FIB_LOOKUP_SKIP_NEIGH);
	if (rc != BPF_FIB_LKUP_RET_SUCCESS)
		return 0;
	return fib.ipv4_src;
}

#endif
