/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * gvs XDP data path: the structures and maps shared with Go.
 *
 * Every struct here is mirrored in engine/xdp/types.go (same field order,
 * sizes and padding); change both together. Addresses are in network byte
 * order in __u32[4] (IPv4 in word 0, the rest zero); ports in network byte
 * order; everything else in host order.
 *
 * Kernel objects (maps, programs) are pinned under /sys/fs/bpf/gvs/ so a
 * restarted gvsd finds its connections again.
 */
#ifndef GVS_H
#define GVS_H

#include <linux/types.h>
#include <bpf/bpf_helpers.h>

/* Service and destination ids: indexes into sched_state, dests and the
 * per-CPU svc_stats and dest_stats (40 bytes per id and CPU each). At
 * 131072 ids the two per-CPU arrays cost 2 x 5 MiB = 10 MiB per possible
 * CPU (640 MiB on a 64-CPU director), the dests array 8 MiB and
 * sched_state 3 MiB once. gvsd reuses ids once nothing refers to them.
 * The services hash allocates per service: a gvs_svc holds its first
 * GVS_SVC_INLINE server ids and takes a 256-byte slab object (48 bytes of
 * hash element, the 24-byte key, the 176-byte value, 8 of allocator: one
 * more word and it takes 512); the rest of its list is in svc_chunks,
 * GVS_CHUNK_IDS ids to a 512-byte object. It held all GVS_SVC_DESTS
 * inline before, an 8 KiB object each: 800 MiB at 100,000 services. */
#define GVS_MAX_SERVICES    131072
#define GVS_MAX_DESTS       131072   /* destination ids, global */
#define GVS_SVC_DESTS       1024     /* destinations per service */
#define GVS_SVC_INLINE      19       /* of them in the service's value */
#define GVS_CHUNK_IDS       112      /* of them in a svc_chunks value */
#define GVS_MAX_CHUNKS      65536    /* svc_chunks entries */
#define GVS_MAX_CONNS       (1 << 20) /* default; gvsd --max-conns */
#define GVS_EVICTED_MAX     (1 << 16) /* handshakes remembered after eviction */
#define GVS_MAX_TEMPLATES   (1 << 20)
#define GVS_HASH_SLOTS      256      /* services with a dh/sh table */
#define GVS_HASH_TABLE      256      /* dh/sh buckets */
#define GVS_MH_SLOTS        64       /* services with an mh table */
#define GVS_MH_TABLE        4093     /* mh default table size */
#define GVS_LBLC_ENTRIES    (1 << 16)
#define GVS_LBLCR_SET       8        /* members of an lblcr set */
#define GVS_MAX_IFINDEX     65536    /* ifmacs entries (interface index) */
#define GVS_SVC_LADDRS      16       /* FULLNAT local addresses per service */
#define GVS_SVC_LADDRS6     4        /* the same words as IPv6 addresses */

/* An empty dh/sh/mh table bucket (the model's nil server). */
#define GVS_DEST_NONE       0xffffffffu

/* Schedulers, in model.Schedulers order. */
enum gvs_sched {
	GVS_SCHED_RR = 0,
	GVS_SCHED_WRR,
	GVS_SCHED_LC,
	GVS_SCHED_WLC,
	GVS_SCHED_LBLC,
	GVS_SCHED_LBLCR,
	GVS_SCHED_DH,
	GVS_SCHED_SH,
	GVS_SCHED_SED,
	GVS_SCHED_NQ,
	GVS_SCHED_FO,
	GVS_SCHED_OVF,
	GVS_SCHED_MH,
	GVS_SCHED_TWOS,
};

/* Service flags: the kernel's IP_VS_SVC_F_* values. */
#define GVS_SVC_F_PERSISTENT  0x0001
#define GVS_SVC_F_ONEPACKET   0x0004
#define GVS_SVC_F_SCHED1      0x0008 /* sh/mh fallback */
#define GVS_SVC_F_SCHED2      0x0010 /* sh/mh port */
/* gvs's own: new connections only from the service's allow list (the
 * allow map), for what INPUT/FORWARD rules did before XDP ran first. */
#define GVS_SVC_F_ALLOWLIST   0x1000
/* gvs's own: a TCP connection may start on any packet but a RST (sloppy_tcp
 * for this service): the engine sets it for mh services unless the
 * service says sloppy: false, so a flow that ECMP moves from another
 * director keeps its server. */
#define GVS_SVC_F_SLOPPY      0x2000

/* Forwarding methods: model.Method values. */
#define GVS_FWD_MASQ     0
#define GVS_FWD_TUNNEL   2
#define GVS_FWD_ROUTE    3
#define GVS_FWD_FULLNAT  5

/* Destination flags. */
#define GVS_DEST_F_AVAILABLE 0x1
#define GVS_DEST_F_OVERLOAD  0x2

/* Connection flags. */
#define GVS_CONN_F_INACTIVE   0x1 /* counted in inactconns */
#define GVS_CONN_F_NOOUTPUT   0x2 /* DR/TUN: input-only TCP table */
#define GVS_CONN_F_CONTROLLED 0x4 /* has a persistence template */
#define GVS_CONN_F_NAT        0x8 /* NAT/FULLNAT: has a reply entry in rconns */
#define GVS_CONN_F_REPLIED    0x10 /* a reply was seen (NAT/FULLNAT): a UDP
				    * flow the server answered is kept under
				    * pressure like an established TCP one;
				    * an answered TCP handshake is evicted
				    * before an unanswered one */
#define GVS_CONN_F_SYNCED     0x20 /* learnt from a sync master (ipvssync) */
#define GVS_CONN_F_DYING      0x40 /* claimed by its remover (conn_remove_ex):
				    * no count moves any more */
#define GVS_CONN_F_ONEPKT     0x80 /* a one-packet (-o) UDP datagram in
				    * fragments: kept for its later fragments
				    * only, gone at the flow's next datagram */

/* TCP states: conn.State values (IP_VS_TCP_S_*); UDP uses GVS_S_UDP. */
#define GVS_S_NONE        0
#define GVS_S_ESTABLISHED 1
#define GVS_S_SYN_SENT    2
#define GVS_S_SYN_RECV    3
#define GVS_S_FIN_WAIT    4
#define GVS_S_TIME_WAIT   5
#define GVS_S_CLOSE       6
#define GVS_S_CLOSE_WAIT  7
#define GVS_S_LAST_ACK    8
#define GVS_S_LISTEN      9
#define GVS_S_SYNACK      10
#define GVS_S_TCP_LAST    11
#define GVS_S_UDP         100

/* Service lookup key: protocol, virtual address and port. A firewall-mark
 * service's key is its mark in addr[0] (host order), port 0, proto 0. */
struct gvs_svc_key {
	__u32 addr[4];
	__u16 port;   /* network order */
	__u8  proto;  /* IPPROTO_TCP / IPPROTO_UDP */
	__u8  af;     /* 4 or 6 */
};

/* A service. The destination list is in kernel order (newest first). */
struct gvs_svc {
	__u32 id;         /* index into svc_stats and the sched state maps */
	__u32 flags;      /* GVS_SVC_F_* */
	__u32 sched;      /* enum gvs_sched */
	__u32 timeout;    /* persistence timeout, seconds */
	__u32 netmask;    /* IPv4 mask (host order) or IPv6 prefix length */
	__u32 table_slot; /* row of the dh/sh or mh table maps */
	__u32 ndests;
	__u32 nladdrs;    /* FULLNAT pool size; 0: the route's source */
	/* FULLNAT pool, network order: IPv4, one word each (up to 16); an
	 * IPv6 service's, four words each (up to GVS_SVC_LADDRS6). */
	__u32 laddrs[GVS_SVC_LADDRS];
	/* Destination ids: the first GVS_SVC_INLINE here, the rest in
	 * svc_chunks under {list, 0}, {list, 1}... A changed list is written
	 * under a fresh list id before the value naming it, and the old
	 * list's chunks go only after (gvsd: the next tick), so a reader sees
	 * one list whole; a missing chunk reads as GVS_DEST_NONE. */
	__u32 list;
	__u32 dests[GVS_SVC_INLINE];
};

struct gvs_chunk_key {
	__u32 list;
	__u32 chunk;
};

struct gvs_chunk {
	__u32 ids[GVS_CHUNK_IDS];
};

/* Per-service scheduler state (rr/wrr position), written by BPF. One
 * global position per service, as IPVS has; concurrent CPUs may race on it
 * (IPVS takes a lock; here the worst case is a server chosen twice).
 * used is gvsd's: nonzero while the service id is taken (by a service, or
 * by a deleted one that entries may still name), so a restarted gvsd knows
 * which ids are free; BPF leaves it alone. */
struct gvs_sched_state {
	__s32 rr_last;  /* index in dests of the last choice, -1: list head */
	__s32 wrr_cl;   /* index of the current server, -1: list head */
	__s32 wrr_cw;
	__s32 wrr_mw;
	__s32 wrr_di;
	__u32 used;
};

/* A destination. Counts are updated by BPF (new connections, state
 * changes) and by gvsd's expiry sweep, with atomic adds. */
struct gvs_dest {
	__u32 addr[4];
	__u16 port;          /* network order */
	__u8  method;        /* GVS_FWD_* */
	__u8  af;
	__s32 weight;
	__u32 u_threshold;
	__u32 l_threshold;
	__u32 flags;         /* GVS_DEST_F_* */
	__s32 activeconns;
	__s32 inactconns;
	__s32 persistconns;
	/* The next hop gvsd resolved: DR, the server itself; TUN, NAT and
	 * FULLNAT, the server or its gateway (0: TUN/NAT ask the FIB). */
	__u32 ifindex;
	__u8  mac[6];
	__u8  pad[2];
};

/* Connection key: the client-to-virtual 5-tuple. Templates use the same
 * key with cport 0 (and vport 0 for port-zero services). rconns uses the
 * same layout for a reply as it arrives from the server: caddr:cport is
 * the server, vaddr:vport where it sends (the client for NAT, the
 * director's local address for FULLNAT). */
struct gvs_conn_key {
	__u32 caddr[4];
	__u32 vaddr[4];
	__u16 cport;
	__u16 vport;
	__u8  proto;
	__u8  af;
	__u16 pad;
};

struct gvs_conn {
	__u64 expires;   /* bpf_ktime_get_coarse_ns() deadline */
	__u32 dest;      /* destination id; GVS_DEST_NONE while the entry
			  * is reserved and its packet is being scheduled */
	__u32 svc;       /* service id */
	__u8  state;     /* GVS_S_* */
	__u8  flags;     /* GVS_CONN_F_* */
	__u8  method;    /* GVS_FWD_*, fixed at creation as IPVS's cp->flags:
			  * editing the server's method moves new
			  * connections only */
	__u8  sync_state; /* the state last sent to sync backups (cp->old_state) */
	__u32 timeout;   /* seconds, of the current state (for listing) */
	/* NAT/FULLNAT: the server leg's client side, as the server sees it
	 * (the client for NAT, the local address and port for FULLNAT), and
	 * the server's port. Its reply key is {dest addr, laddr, rport,
	 * lport}. */
	__u32 laddr[4];
	__u16 lport;     /* network order */
	__u16 rport;     /* network order */
	/* NAT/FULLNAT: the next hop of the replies toward the client, as the
	 * FIB gave it for config.hop_gen (another generation: ask again). */
	__u32 hop_gen;
	__u32 hop_ifindex;
	__u8  hop_mac[6];
	__u16 sync_pkts; /* the client's packets, counted while a sync
			  * master runs (cp->in_pkts; wraps) */
};

/* A reply entry (maps.h, rconns): the connection's key, and what its
 * IPv4 replies need to go out without it, so that most replies cost one
 * lookup (reply_fast in xdp_gvs.c). out_conn fills the rest and sets fast
 * once a reply can no longer move the connection's state (UDP, TCP
 * ESTABLISHED); any state change clears it (conn_set_state). While fast
 * is set, the connection lives until the later of its own expires and
 * this one: replies refresh only this one. */
struct gvs_reply {
	struct gvs_conn_key fk;
	__u64 expires;
	__u32 svc;
	__u32 dest;
	__u32 timeout;     /* seconds, the connection's when fast was set */
	/* The reply tuple's own fields: a reused entry is told apart. */
	__u32 laddr;
	__u16 lport;
	__u16 rport;
	/* The connection's next hop toward the client, for config.hop_gen. */
	__u32 hop_gen;
	__u32 hop_ifindex;
	__u8  hop_mac[6];
	__u8  fast;
	__u8  pad;
};

/* An evicted handshake, remembered (maps.h, evicted): gvs_conn's first
 * fields, copied from the entry as it goes. */
struct gvs_evicted {
	__u64 expires;
	__u32 dest;
	__u32 svc;
	__u8  state;
	__u8  flags;
	__u8  method;
	__u8  sync_state;
	__u32 timeout;
};

/* Persistence template: key is gvs_conn_key with the masked client
 * address, cport 0. */
struct gvs_template {
	__u64 expires;
	__u32 dest;
	__u32 svc;
	__s32 n_control; /* connections it controls (atomic) */
	__u32 timeout;   /* seconds */
};

/* Counters, per CPU, per service and per destination. */
struct gvs_stats {
	__u64 conns;
	__u64 inpkts;
	__u64 outpkts;
	__u64 inbytes;
	__u64 outbytes;
};

/* Timeouts in seconds: the TCP states, then UDP. */
struct gvs_timeouts {
	__u32 tcp[GVS_S_TCP_LAST];
	__u32 udp;
};

/* Global settings. */
struct gvs_config {
	__u32 expire_nodest_conn;
	__u32 expire_quiescent_template;
	__u32 lblc_expiration;  /* seconds */
	__u32 lblcr_expiration; /* seconds */
	__u32 tun_src;          /* TUN: outer source address (network order) */
	__u16 lport_min;        /* FULLNAT source ports, host order; */
	__u16 lport_max;        /* 0, 0: 1024-32767 */
	__u32 hop_gen;          /* next hops cached in connections are good
				 * while this is theirs; gvsd moves it on
				 * when it re-reads routes (0: no caching) */
	/* IPVS sysctls (/proc/sys/net/ipv4/vs/ names), set by gvsd. */
	__u32 conn_reuse_mode;  /* kernel default 1 */
	__u8  sloppy_tcp;       /* a connection may start on any TCP packet */
	__u8  sloppy_udp;
	__u8  schedule_icmp;    /* an ICMP error with no connection is scheduled */
	__u8  nat_icmp_send;    /* NAT: ICMP error for a reply with no connection */
	__u8  snat_reroute;     /* kernel default 1; replies are always routed
				 * from their translated source (as with 1) */
	/* Connection sync (ipvssync): while sync_master is set, the data
	 * path reports connections to sync in sync_events, as the kernel's
	 * ip_vs_sync_conn with sync_threshold and sync_period. */
	__u8  sync_master;
	__u8  sync_threshold;   /* kernel default 3 */
	__u8  sync_period;      /* kernel default 50 */
	/* conn_ring: slots per CPU (the ring has ring_cpus * ring_part). */
	__u32 ring_part;
	__u32 ring_cpus;
};

/* allow: a service's allowed source prefixes, an LPM trie key: the
 * service id, then the address (prefixlen = 32 + the prefix's length). */
struct gvs_allow_key {
	__u32 prefixlen;
	__u32 svc;
	__u32 addr[4];
};

/* ifmacs: interface index -> that interface's MAC (the source MAC of
 * what the data path sends out of it) and MTU (0: ask the kernel). */
struct gvs_ifmac {
	__u8  mac[6];
	__u16 pad;
	__u32 mtu;
};

/* lblc: destination address -> server; lblcr: -> set of servers. */
struct gvs_lblc_key {
	__u32 svc;
	__u32 addr[4];
};

struct gvs_lblc {
	__u64 lastuse;
	__u32 dest;
	__u32 pad;
};

struct gvs_lblcr {
	__u64 lastuse;
	__u64 lastmod;
	__u32 n;
	__u32 dests[GVS_LBLCR_SET]; /* newest first */
	__u32 pad;
};

/* nat_srcs: a 65536-bit filter of the NAT/FULLNAT servers' addresses. A
 * packet from an address whose bit is clear cannot be a reply, and skips
 * the reply table (a miss there costs a cache miss per new flow). gvsd
 * sets the bit of every NAT server; stray bits only cost a lookup. */
#define GVS_NATSRC_BITS 65536

struct gvs_natsrc {
	__u64 bits[GVS_NATSRC_BITS / 64];
};

/* The filter's bit for an IPv4 address as stored (network order word). */
static __always_inline __u32 gvs_natsrc_bit(__u32 addr)
{
	return (addr * 2654435761u) >> 16;
}

/* v6_config: the IPv6 data path's settings (its own map, so gvs_config's
 * pinned layout stays as it was). */
struct gvs_config6 {
	__u32 tun_src[4];  /* TUN: outer IPv6 source (0: no IPv6 tunnels) */
	__u32 spare[12];   /* room for settings to come, zero */
};

/* Events counted per CPU (index = enum gvs_event). */
enum gvs_event {
	GVS_EV_PASS = 0,       /* not for a service */
	GVS_EV_FORWARD,
	GVS_EV_DROP_NODEST,    /* connection to a deleted server */
	GVS_EV_NO_DEST,        /* no server could take a new connection */
	GVS_EV_CONN_TABLE_FULL,/* no room even after evicting: dropped */
	GVS_EV_FRAG_NEEDED,    /* TUN: answered with ICMP fragmentation needed */
	GVS_EV_NO_ROUTE,       /* TUN: fib lookup failed */
	GVS_EV_MALFORMED,
	GVS_EV_TOO_BIG,        /* too big for the egress MTU without DF: passed */
	GVS_EV_FWD_UNSUPPORTED,/* a method XDP does not forward: passed */
	GVS_EV_REPLY,          /* NAT/FULLNAT reply translated and forwarded */
	GVS_EV_NO_LPORT,       /* FULLNAT: no free local port, refused */
	GVS_EV_ICMP,           /* ICMP error about a connection forwarded */
	GVS_EV_TTL,            /* reply with TTL <= 1: passed to the stack */
	GVS_EV_EVICTED,        /* a half-open TCP or unanswered UDP entry
				* removed to make room for a new one */
	GVS_EV_RECLAIMED,      /* an expired entry removed by the data path
				* to make room (gvsd's sweep had not yet) */
	GVS_EV_UNINDEXED,      /* a connection the ring could not index: only
				* its own packets or gvsd's sweep remove it */
	GVS_EV_BUSY,           /* a packet of a connection another CPU was
				* creating at that instant: dropped */
	GVS_EV_FAMILY,         /* a server of another address family than the
				* data path forwards to: passed */
	GVS_EV_TEMPLATE_FULL,  /* persistence template table full: refused */
	GVS_EV_FRAG,           /* a later fragment sent as its first was */
	GVS_EV_FRAG_UNKNOWN,   /* a later fragment whose first was not seen:
				* dropped if it may be a NAT server's (it
				* would leave untranslated), else passed */
	GVS_EV_DENIED,         /* a new connection from a source the
				* service's allow list does not have: dropped */
	GVS_EV_SYNC_LOST,      /* a connection to sync that sync_events had
				* no room for (the periodic refresh sends
				* it later) */
	GVS_EV_NAT_ICMP_SEND,  /* nat_icmp_send: a packet from a NAT server
				* (nat_servers) with no connection, not a
				* TCP RST, that the director would forward:
				* dropped, answered with port unreachable
				* (not when rate limited, nor for a later
				* fragment) */
	GVS_EV_FWM_UNTAGGED,   /* a frame on the fwmark interface without
				* the tag its tc program writes: dropped */
	GVS_EV_FWM_PASS,       /* a marked packet no fwmark service took
				* (no service, not a SYN, no server):
				* dropped, as it came from netfilter */
	GVS_EV_V6_EXT,         /* an IPv6 packet whose extension headers go
				* beyond the walk's bound (GVS_V6_EXT_MAX
				* headers, GVS_V6_EXT_BYTES bytes) or are of
				* a kind it does not walk (AH, ESP, mobility,
				* HIP, shim6, experimental): passed */
	GVS_EV_V6_FRAG,        /* an IPv6 fragment (not an atomic one):
				* passed to the stack */
	GVS_EV_REVIVED,        /* a handshake evicted for room, completed
				* by its client: made again to its server
				* (the evicted map) */
	GVS_EV_NAT64_UNSUPPORTED, /* a packet of a NAT64 connection the
				* translator does not carry (an IPv6
				* fragment or extension header, IPv4
				* fragment or options, UDP without a
				* checksum from the server): dropped */
	GVS_EV_NAT64_ICMP,     /* an ICMP error about a NAT64 connection
				* (not translated): dropped */
	GVS_EV_TMPL_RECLAIMED, /* an expired template nothing held, removed
				* by the data path to make room in a full
				* template table */
	GVS_EV_LATE_REPLY,     /* a NAT server's answer to a handshake
				* evicted for room, translated from the
				* evicted record (nat_late_reply) */
	GVS_EV_MAX,
};

/* The events map's size (maps.h): room for more events than there are. */
#define GVS_EV_SLOTS 64

/* Firewall-mark services (engine/xdp/fwmark.go): netfilter duplicates a
 * packet carrying a service's mark (skb->mark) to the gvs-fwm0 veth, whose
 * tc egress program gvs_fwm_tag undoes what nf_dup changed and writes the
 * mark into the source MAC: GVS_FWM_TAG0, GVS_FWM_TAG1, then the mark in
 * network order. xdp_gvs, attached to the peer gvs-fwm1 (fwm_if), reads
 * it there. The duplicate's destination MAC says whether the original
 * had DF (nf_dup_ipv4 sets it): last byte GVS_FWM_DF_CLEAR or not. */
#define GVS_FWM_TAG0     0x02
#define GVS_FWM_TAG1     0x47
#define GVS_FWM_DF_CLEAR 0x00

/* sync_events: a connection to send to sync backups, as it was when a
 * packet made it due (ip_vs_sync_conn_needed). */
struct gvs_sync_rec {
	struct gvs_conn_key key;
	struct gvs_conn conn;
};

/* gvs_sync_install's context: an entry learnt from a sync master, with
 * its service and server resolved by gvsd. */
struct gvs_sync_in {
	struct gvs_conn_key key; /* a template's: masked client, cport 0 */
	__u64 now;       /* bpf_ktime_get_coarse_ns's clock (a syscall
			  * program cannot read it) */
	__u32 dest;
	__u32 svc;
	__u32 timeout;   /* seconds */
	__u32 laddr[4];  /* FULLNAT: the local address (NAT: the client) */
	__u16 lport;     /* network order */
	__u16 rport;     /* the server's port, network order */
	__u8  state;     /* GVS_S_* */
	__u8  flags;     /* GVS_CONN_F_INACTIVE, GVS_CONN_F_NOOUTPUT */
	__u8  method;    /* GVS_FWD_* */
	__u8  tmpl;      /* a persistence template */
};

#endif
