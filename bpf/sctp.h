/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * SCTP (IPVS's ip_vs_proto_sctp.c semantics; conn/sctp.go is the Go
 * statement, tested against the kernel's table): the event a packet's
 * chunks make, the state table for the INPUT, OUTPUT and INPUT-ONLY
 * directions, and the per-state timeouts.
 *
 * States are stored in gvs_conn.state as conn.State numbers: the kernel's
 * IP_VS_SCTP_S_* value plus GVS_S_SCTP_NONE, so they never collide with
 * TCP's (0-10) or UDP's (100). Only ESTABLISHED is active.
 *
 * An SCTP packet's event travels in gvs_pkt.tcpflags (sctp_event()): the
 * field is TCP's otherwise, and reusing it leaves the layout of the
 * per-CPU work map as it was.
 *
 * DR and TUN carry the packet unchanged, so its CRC32c stays right; NAT
 * and FULLNAT would have to recompute it over the whole packet after the
 * port rewrite, which this data path does not do (gvsd refuses those
 * servers for SCTP services, and in_new refuses them too).
 *
 * parse.h includes this file after struct gvs_pkt, for parse_sctp.
 */
#ifndef GVS_SCTP_H
#define GVS_SCTP_H

#include <linux/bpf.h>
#include <linux/in.h>
#include <bpf/bpf_helpers.h>
#include "gvs.h"

#ifndef IPPROTO_SCTP
#define IPPROTO_SCTP 132
#endif

/* SCTP states: conn.SCTPNone... (IP_VS_SCTP_S_* + 20). */
#define GVS_S_SCTP_NONE        20
#define GVS_S_SCTP_INIT1       21
#define GVS_S_SCTP_INIT        22
#define GVS_S_SCTP_COOKIE_SENT 23
#define GVS_S_SCTP_COOKIE_REPL 24
#define GVS_S_SCTP_COOKIE_WAIT 25
#define GVS_S_SCTP_COOKIE      26
#define GVS_S_SCTP_COOKIE_ECHO 27
#define GVS_S_SCTP_ESTABLISHED 28
#define GVS_S_SCTP_SHUT_SENT   29
#define GVS_S_SCTP_SHUT_RECV   30
#define GVS_S_SCTP_SHUT_ACK    31
#define GVS_S_SCTP_REJECTED    32
#define GVS_S_SCTP_CLOSED      33
#define GVS_SCTP_STATES        14

/* Events (ipvs_sctp_event_t), rows of the table. */
#define SCTP_EV_DATA      0 /* DATA, SACK, HEARTBEAT(-ACK), ECNE, CWR, unknown */
#define SCTP_EV_INIT      1
#define SCTP_EV_INIT_ACK  2
#define SCTP_EV_COOKIE_ECHO 3
#define SCTP_EV_COOKIE_ACK  4
#define SCTP_EV_SHUTDOWN  5
#define SCTP_EV_SHUTDOWN_ACK 6
#define SCTP_EV_SHUTDOWN_COMPLETE 7
#define SCTP_EV_ERROR     8
#define SCTP_EV_ABORT     9
#define SCTP_EVENTS       10

/* Chunk types (RFC 9260 3.2). */
#define SCTP_CID_INIT         1
#define SCTP_CID_ABORT        6
#define SCTP_CID_COOKIE_ECHO  10
#define SCTP_CID_COOKIE_ACK   11

/* Timeouts in seconds by IP_VS_SCTP_S_* (the sctp_timeouts map; gvsd
 * writes the kernel's defaults, conn.SCTPTimeouts). */
struct gvs_sctp_timeouts {
	__u32 s[GVS_SCTP_STATES];
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct gvs_sctp_timeouts);
} sctp_timeouts SEC(".maps");

/* sctp_events: chunk type -> event; types past SHUTDOWN COMPLETE are
 * DATA's. */
static const __u8 gvs_sctp_events[15] = {
	SCTP_EV_DATA, SCTP_EV_INIT, SCTP_EV_INIT_ACK, SCTP_EV_DATA /* SACK */,
	SCTP_EV_DATA /* HEARTBEAT */, SCTP_EV_DATA /* HEARTBEAT ACK */, SCTP_EV_ABORT,
	SCTP_EV_SHUTDOWN, SCTP_EV_SHUTDOWN_ACK, SCTP_EV_ERROR, SCTP_EV_COOKIE_ECHO,
	SCTP_EV_COOKIE_ACK, SCTP_EV_DATA /* ECNE */, SCTP_EV_DATA /* CWR */,
	SCTP_EV_SHUTDOWN_COMPLETE,
};

static __always_inline __u8 sctp_chunk_event(__u8 type)
{
	__u32 t = type;

	barrier_var(t);
	if (t < sizeof(gvs_sctp_events))
		return gvs_sctp_events[t];
	return SCTP_EV_DATA;
}

/* The packet's event (parse_sctp put it in tcpflags). */
static __always_inline __u8 sctp_event(const struct gvs_pkt *p)
{
	return p->tcpflags;
}

#define zNO GVS_S_SCTP_NONE
#define zI1 GVS_S_SCTP_INIT1
#define zIN GVS_S_SCTP_INIT
#define zCS GVS_S_SCTP_COOKIE_SENT
#define zCR GVS_S_SCTP_COOKIE_REPL
#define zCW GVS_S_SCTP_COOKIE_WAIT
#define zCO GVS_S_SCTP_COOKIE
#define zCE GVS_S_SCTP_COOKIE_ECHO
#define zES GVS_S_SCTP_ESTABLISHED
#define zSS GVS_S_SCTP_SHUT_SENT
#define zSR GVS_S_SCTP_SHUT_RECV
#define zSA GVS_S_SCTP_SHUT_ACK
#define zRJ GVS_S_SCTP_REJECTED
#define zCL GVS_S_SCTP_CLOSED

/* sctp_states: INPUT, OUTPUT, INPUT-ONLY; rows data, init, init_ack,
 * cookie_echo, cookie_ack, shutdown, shutdown_ack, shutdown_complete,
 * error, abort; columns NONE..CLOSED. */
static const __u8 gvs_sctp_table[3][SCTP_EVENTS][GVS_SCTP_STATES] = {
	{ /* INPUT */
		{zES, zI1, zIN, zCS, zCR, zCW, zCO, zCE, zES, zSS, zSR, zSA, zRJ, zCL},
		{zI1, zIN, zIN, zCS, zCR, zCW, zCO, zCE, zES, zSS, zSR, zSA, zIN, zIN},
		{zCW, zCW, zCW, zCS, zCR, zCO, zCO, zCE, zES, zSS, zSR, zSA, zRJ, zCL},
		{zCR, zIN, zIN, zCR, zCR, zCW, zCO, zCE, zES, zSS, zSR, zSA, zRJ, zCL},
		{zES, zI1, zIN, zCS, zCR, zCW, zCO, zES, zES, zSS, zSR, zSA, zRJ, zCL},
		{zSR, zI1, zIN, zCS, zCR, zCW, zCO, zCE, zSR, zSS, zSR, zSA, zRJ, zCL},
		{zCL, zIN, zIN, zCS, zCR, zCW, zCO, zCE, zES, zCL, zSR, zCL, zRJ, zCL},
		{zCL, zCL, zCL, zCS, zCR, zCW, zCO, zCE, zES, zSS, zSR, zCL, zRJ, zCL},
		{zCL, zI1, zIN, zCS, zCR, zCW, zCO, zCL, zES, zSS, zSR, zSA, zRJ, zCL},
		{zCL, zCL, zCL, zCL, zCL, zRJ, zCL, zCL, zCL, zCL, zCL, zCL, zCL, zCL},
	},
	{ /* OUTPUT */
		{zES, zI1, zIN, zCS, zCR, zCW, zCO, zCE, zES, zSS, zSR, zSA, zRJ, zCL},
		{zCW, zCW, zCW, zCW, zCW, zCW, zCW, zCW, zES, zCW, zCW, zCW, zCW, zCW},
		{zCS, zCS, zCS, zCS, zCR, zCW, zCO, zCE, zES, zSS, zSR, zSA, zRJ, zCL},
		{zCE, zCE, zCE, zCE, zCE, zCE, zCE, zCE, zES, zSS, zSR, zSA, zRJ, zCL},
		{zES, zES, zES, zES, zES, zES, zES, zES, zES, zSS, zSR, zSA, zRJ, zCL},
		{zSS, zSS, zSS, zSS, zSS, zSS, zSS, zSS, zSS, zSS, zSR, zSA, zRJ, zCL},
		{zSA, zSA, zSA, zSA, zSA, zCW, zCO, zCE, zES, zSA, zSA, zSA, zRJ, zCL},
		{zCL, zI1, zIN, zCS, zCR, zCW, zCO, zCE, zES, zSS, zSR, zSA, zRJ, zCL},
		{zCL, zCL, zCL, zCL, zCL, zCW, zCO, zCE, zES, zSS, zSR, zSA, zRJ, zCL},
		{zCL, zRJ, zCL, zCL, zCL, zCL, zCL, zCL, zCL, zCL, zCL, zCL, zCL, zCL},
	},
	{ /* INPUT-ONLY */
		{zES, zI1, zIN, zCS, zCR, zES, zCO, zCE, zES, zSS, zSR, zSA, zRJ, zCL},
		{zI1, zIN, zIN, zIN, zIN, zIN, zCO, zCE, zES, zSS, zSR, zSA, zIN, zIN},
		{zCE, zCE, zCE, zCE, zCE, zCE, zCO, zCE, zES, zSS, zSR, zSA, zRJ, zCL},
		{zES, zES, zES, zES, zES, zES, zCO, zCE, zES, zSS, zSR, zSA, zRJ, zCL},
		{zES, zI1, zIN, zES, zES, zCW, zES, zES, zES, zSS, zSR, zSA, zRJ, zCL},
		{zSR, zI1, zIN, zCS, zCR, zCW, zCO, zCE, zSR, zSS, zSR, zSA, zRJ, zCL},
		{zCL, zIN, zIN, zCS, zCR, zCW, zCO, zCE, zCL, zCL, zSR, zCL, zRJ, zCL},
		{zCL, zCL, zCL, zCL, zCL, zCW, zCO, zCE, zES, zSS, zCL, zCL, zRJ, zCL},
		{zCL, zI1, zIN, zCS, zCR, zCW, zCO, zCE, zES, zSS, zSR, zSA, zRJ, zCL},
		{zCL, zCL, zCL, zCL, zCL, zRJ, zCL, zCL, zCL, zCL, zCL, zCL, zCL, zCL},
	},
};

/* conn.NextSCTP: dir is TCP_DIR_INPUT, _OUTPUT or _INPUT_ONLY (conn.h's
 * rows, the same three); a state that is not SCTP's counts as NONE. */
static __always_inline __u8 sctp_next(__u8 cur, int dir, __u8 ev)
{
	__u32 s = cur - GVS_S_SCTP_NONE;

	if (cur < GVS_S_SCTP_NONE || s >= GVS_SCTP_STATES)
		s = 0;
	if (ev >= SCTP_EVENTS)
		ev = SCTP_EV_DATA;
	__u32 idx = ((__u32)dir * SCTP_EVENTS + ev) * GVS_SCTP_STATES + s;

	barrier_var(idx);
	if (idx >= sizeof(gvs_sctp_table))
		return GVS_S_SCTP_CLOSED;
	return ((const __u8 *)gvs_sctp_table)[idx];
}

/* The timeout of SCTP state s, seconds (61, IP_VS_SCTP_MAX_RTO, without
 * the map). A global function: verified once, and its stack is not its
 * callers' (in_new's chain is at the 512-byte limit). */
__attribute__((noinline)) __u32 gvs_sctp_timeout(__u32 s)
{
	__u32 zero = 0, i = s - GVS_S_SCTP_NONE;
	struct gvs_sctp_timeouts *to = bpf_map_lookup_elem(&sctp_timeouts, &zero);

	if (s < GVS_S_SCTP_NONE || i >= GVS_SCTP_STATES)
		i = 0;
	barrier_var(i);
	if (!to || i >= GVS_SCTP_STATES)
		return 61;
	return to->s[i];
}

/* An association still carrying data, or closing: not evicted. */
static __always_inline int sctp_live(__u8 s)
{
	return s == GVS_S_SCTP_ESTABLISHED || s == GVS_S_SCTP_SHUT_SENT ||
	       s == GVS_S_SCTP_SHUT_RECV || s == GVS_S_SCTP_SHUT_ACK;
}

/* An association being set up (its template goes with it on eviction). */
static __always_inline int sctp_setup(__u8 s)
{
	return s >= GVS_S_SCTP_NONE && s <= GVS_S_SCTP_COOKIE_ECHO;
}

/* The SCTP header: the common header (ports at TCP's and UDP's offsets,
 * verification tag, CRC32c) and the first chunk's header; the event goes
 * in p->tcpflags. A COOKIE ECHO or COOKIE ACK with an ABORT bundled after
 * it is the ABORT (set_sctp_state). A packet without a whole chunk header
 * is malformed. */
static __always_inline int parse_sctp(struct gvs_pkt *p, void *l4, void *data_end, __u32 len)
{
	__u8 *h = l4;

	if ((void *)(h + 16) > data_end || len < 16)
		return PARSE_MALFORMED;
	p->sport = *(__u16 *)h;
	p->dport = *(__u16 *)(h + 2);
	__u8 type = h[12];
	if (type == SCTP_CID_COOKIE_ECHO || type == SCTP_CID_COOKIE_ACK) {
		__u32 clen = ((__u32)h[14] << 8 | h[15]);

		/* A frame is far shorter than 0x8000 bytes; the bound lets
		 * the verifier take the variable offset. */
		if (clen >= 4 && clen < 0x8000) {
			barrier_var(clen);
			__u32 next = 12 + ((clen + 3) & 0x7ffc);
			__u8 *n = h + next;

			barrier_var(n);
			if (next + 4 <= len && (void *)(n + 4) <= data_end && *n == SCTP_CID_ABORT)
				type = SCTP_CID_ABORT;
		}
	}
	p->tcpflags = sctp_chunk_event(type);
	return PARSE_OK;
}

#endif
