/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * gvs XDP data path: the maps. Names are the contract with the Go engine,
 * which opens them by name and pins them under /sys/fs/bpf/gvs/ (pinning
 * is set from Go, not here, so tests can load the program unpinned).
 */
#ifndef GVS_MAPS_H
#define GVS_MAPS_H

#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include "gvs.h"

/* Services by (proto, vaddr, vport); port-zero services have vport 0. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, GVS_MAX_SERVICES);
	__type(key, struct gvs_svc_key);
	__type(value, struct gvs_svc);
} services SEC(".maps");

/* The server ids of a service past its GVS_SVC_INLINE first, by
 * {gvs_svc.list, chunk number} (gvs.h). */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, GVS_MAX_CHUNKS);
	__type(key, struct gvs_chunk_key);
	__type(value, struct gvs_chunk);
} svc_chunks SEC(".maps");

/* rr/wrr position per service id. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, GVS_MAX_SERVICES);
	__type(key, __u32);
	__type(value, struct gvs_sched_state);
} sched_state SEC(".maps");

/* Destinations by id. Mmapable so gvsd's sweep can decrement the counts
 * with atomic instructions on the mapped memory (ebpf.Map.Memory), the
 * same words BPF updates with __sync_fetch_and_add. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(map_flags, BPF_F_MMAPABLE);
	__uint(max_entries, GVS_MAX_DESTS);
	__type(key, __u32);
	__type(value, struct gvs_dest);
} dests SEC(".maps");

/* Connections. Preallocated: an insert takes an element from a per-CPU
 * free list instead of allocating (and charging) memory per new
 * connection, which on this path costs more than everything else
 * together. gvsd sizes it (--max-conns); GVS_MAX_CONNS is the default. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, GVS_MAX_CONNS);
	__type(key, struct gvs_conn_key);
	__type(value, struct gvs_conn);
} conns SEC(".maps");

/* NAT/FULLNAT replies: the reply 5-tuple (see gvs_conn_key) -> the
 * connection's key, and what its fast path needs (gvs_reply). The entry is made with the connection and removed
 * by whoever removes the connection. For FULLNAT, inserting it with
 * BPF_NOEXIST is what allocates the local port. Preallocated and sized
 * as conns. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, GVS_MAX_CONNS);
	__type(key, struct gvs_conn_key);
	__type(value, struct gvs_reply);
} rconns SEC(".maps");

/* A new reply entry's value: the connection, nothing for the fast path
 * yet. */
static __always_inline void reply_init(struct gvs_reply *r, const struct gvs_conn_key *fk)
{
	__builtin_memset(r, 0, sizeof(*r));
	r->fk = *fk;
}

/* The connection index: every connection's key in a ring, so the data
 * path can find entries to reclaim without gvsd. Each CPU owns a
 * partition of config.ring_part slots and a hand (ring_hand) that walks
 * it: a new connection takes the first slot at the hand whose entry is
 * gone or expired (removing an expired one on the way), and when the
 * table is full, the first whose entry is half-open or an unanswered
 * UDP flow (evicted, oldest first). Established connections are never
 * evicted. Twice the table's size (SizeConns), so a free slot is near. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 2 * GVS_MAX_CONNS);
	__type(key, __u32);
	__type(value, struct gvs_conn_key);
} conn_ring SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
} ring_hand SEC(".maps");

/* Handshakes evicted to make room (DR, TUN and IPv4 NAT, not persistent), by
 * connection key: their server and deadline, so a client whose ACK comes
 * after a flood's SYNs pushed its entry out still reaches the server
 * that answered its SYN; without it the director's stack, which holds
 * the VIP, resets it. 24 bytes a handshake (64 with the key) instead of
 * a connection entry's 312: a flood turns this LRU over too, but about
 * sixteen times slower than a 4,096-entry table. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, GVS_EVICTED_MAX);
	__type(key, struct gvs_conn_key);
	__type(value, struct gvs_evicted);
} evicted SEC(".maps");

/* An evicted NAT handshake's reply tuple, to its connection key: the
 * server's SYN-ACK that comes after a flood pushed the entry out finds
 * its record (in evicted) and is translated from it (nat_late_reply),
 * instead of leaving untranslated; the client's ACK makes the connection
 * again. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, GVS_EVICTED_MAX);
	__type(key, struct gvs_conn_key);
	__type(value, struct gvs_conn_key);
} evicted_rk SEC(".maps");

/* Fragments: the first fragment's ports by (source, destination, IP id,
 * protocol), so the later ones (no L4 header) find the connection the
 * first went by, as Cilium's fragment map does. LRU: a datagram's
 * fragments arrive within moments. */
struct gvs_frag_key {
	__u32 saddr;
	__u32 daddr;
	__u16 id;
	__u8  proto;
	__u8  pad;
};

struct gvs_frag {
	__u16 sport;
	__u16 dport;
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, struct gvs_frag_key);
	__type(value, struct gvs_frag);
} frags SEC(".maps");

/* IPv4 next hops a translated packet found without a neighbour entry
 * (bpf_fib_lookup's NO_NEIGH), with when: gvsd has the kernel resolve
 * them (a datagram to the discard port) and deletes them. Without it, a
 * client whose entry is gone (a VRRP backup that took over never saw the
 * client's ARP for the VIP; an entry that aged out) would stay
 * unreachable for replies. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 4096);
	__type(key, __u32);
	__type(value, __u64);
} neigh_miss SEC(".maps");

/* Allow lists of the services flagged GVS_SVC_F_ALLOWLIST (gvs_allow_key;
 * the value is unused). */
struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, 65536);
	__type(key, struct gvs_allow_key);
	__type(value, __u8);
} allow SEC(".maps");

/* Per CPU: until when (ktime) this CPU is under table pressure (it had to
 * evict): new handshakes then count as inactive until they complete, as
 * IPVS's secure_tcp makes a flood of SYNs weigh nothing in lc/wlc. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} pressure SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, GVS_MAX_TEMPLATES);
	__type(key, struct gvs_conn_key);
	__type(value, struct gvs_template);
} templates SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, GVS_MAX_SERVICES);
	__type(key, __u32);
	__type(value, struct gvs_stats);
} svc_stats SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, GVS_MAX_DESTS);
	__type(key, __u32);
	__type(value, struct gvs_stats);
} dest_stats SEC(".maps");

/* dh/sh tables: row svc.table_slot, GVS_HASH_TABLE dest ids (or
 * GVS_DEST_NONE) per row. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, GVS_HASH_SLOTS * GVS_HASH_TABLE);
	__type(key, __u32);
	__type(value, __u32);
} hash_tables SEC(".maps");

/* mh tables: row svc.table_slot, GVS_MH_TABLE dest ids per row. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, GVS_MH_SLOTS * GVS_MH_TABLE);
	__type(key, __u32);
	__type(value, __u32);
} mh_tables SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, GVS_LBLC_ENTRIES);
	__type(key, struct gvs_lblc_key);
	__type(value, struct gvs_lblc);
} lblc SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, GVS_LBLC_ENTRIES);
	__type(key, struct gvs_lblc_key);
	__type(value, struct gvs_lblcr);
} lblcr SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct gvs_timeouts);
} timeouts SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct gvs_config);
} config SEC(".maps");

/* Sized with room to spare (GVS_EV_SLOTS), not to GVS_EV_MAX: a new
 * event then leaves the pinned map compatible, and an upgrade keeps
 * its connections (a map of another size needs gvsd --cleanup). */
_Static_assert(GVS_EV_MAX <= GVS_EV_SLOTS, "more events than GVS_EV_SLOTS");
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, GVS_EV_SLOTS);
	__type(key, __u32);
	__type(value, __u64);
} events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct gvs_natsrc);
} nat_srcs SEC(".maps");

/* Whether addr may be a NAT/FULLNAT server (see gvs_natsrc). */
static __always_inline int nat_src_maybe(__u32 addr)
{
	__u32 zero = 0;
	struct gvs_natsrc *f = bpf_map_lookup_elem(&nat_srcs, &zero);
	__u32 bit = gvs_natsrc_bit(addr);

	return f && (f->bits[(bit >> 6) & (GVS_NATSRC_BITS / 64 - 1)] >> (bit & 63)) & 1;
}

/* nat_servers: the NAT (masq) servers as ip_vs_has_real_service knows
 * them, for nat_icmp_send: key {server address, server port, the
 * protocol of a service listing it (masq), af}, value the number of such
 * services (gvsd's; BPF only asks whether the key is there). */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, GVS_MAX_DESTS);
	__type(key, struct gvs_svc_key);
	__type(value, __u32);
} nat_servers SEC(".maps");

/* The MAC of each interface the data path sends from (DR). */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, GVS_MAX_IFINDEX);
	__type(key, __u32);
	__type(value, struct gvs_ifmac);
} ifmacs SEC(".maps");

/* Per-CPU token bucket for the ICMP errors the data path sends, like the
 * kernel's icmp_global_allow (icmp_msgs_per_sec 1000, burst 50). BPF-only
 * state; gvsd need not touch it. */
struct gvs_icmp_rate {
	__u64 last;   /* ktime of the last refill */
	__u64 tokens;
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct gvs_icmp_rate);
} icmp_rate SEC(".maps");

/* Connections due to be sent to sync backups (gvs_sync_rec), written
 * while config.sync_master is set (sync.h) and read by gvsd's master. */
struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 1 << 20);
} sync_events SEC(".maps");

/* Firewall-mark services: key 0 holds the ifindex of the interface
 * marked packets come back on (gvs-fwm1; 0: none). */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
} fwm_if SEC(".maps");

/* A service id's firewall mark (0: an address service), so a connection,
 * whose key has the packet's address, finds its service's template. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, GVS_MAX_SERVICES);
	__type(key, __u32);
	__type(value, __u32);
} svc_fwmark SEC(".maps");

static __always_inline void ev_add(__u32 ev, __u64 n)
{
	__u64 *v = bpf_map_lookup_elem(&events, &ev);
	if (v)
		*v += n;
}

static __always_inline void ev_inc(__u32 ev)
{
	ev_add(ev, 1);
}

/* An interface's MAC and MTU, if gvsd wrote them: an ARRAY lookup never
 * fails in range, so an interface gvsd does not know reads as zeros. */
static __always_inline struct gvs_ifmac *ifmac_get(__u32 ifindex)
{
	struct gvs_ifmac *m = ifindex ? bpf_map_lookup_elem(&ifmacs, &ifindex) : 0;

	if (!m || !(m->mac[0] | m->mac[1] | m->mac[2] | m->mac[3] | m->mac[4] | m->mac[5]))
		return 0;
	return m;
}

static __always_inline struct gvs_dest *dest_get(__u32 id)
{
	return bpf_map_lookup_elem(&dests, &id);
}

#endif
