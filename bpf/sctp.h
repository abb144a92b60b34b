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
 * and FULLNAT rewrite ports, and update the CRC32c for the change
 * (sctp_nat_ports: constant time, whatever the packet's length).
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

/*
 * NAT's CRC32c update. SCTP's CRC32c (RFC 9260 appendix B: reflected
 * polynomial 0x82F63B78, initial value and final XOR all ones, stored
 * least significant byte first) is affine in the message: for messages of
 * one length L, crc(M ^ D) = crc(M) ^ raw(D), raw being the register
 * without initial value or final XOR. A port rewrite changes only the
 * first four bytes, so raw(D) is those four bytes' difference d, shifted
 * through the L - 4 bytes after them together with the 32 bit steps of
 * its own: d * x^(8L) mod P in the reflected representation. The update
 * costs three carry-less multiplications whatever the packet's length,
 * and a packet whose CRC was wrong stays wrong by the same error (the
 * kernel recomputes it and so hides the corruption).
 *
 * x^(8L) = gvs_crc32c_x8lo[L & 255] * gvs_crc32c_x8hi[L >> 8]: x^(8i)
 * and x^(2048i) mod P for i < 256, reflected (bit 31 is x^0), computed
 * once by a script; the bpf package's tests check the result against Go's
 * hash/crc32 over packets of many lengths.
 */
static const __u32 gvs_crc32c_x8lo[256] = {
	0x80000000, 0x00800000, 0x00008000, 0x00000080, 0x82f63b78, 0xfbc3faf9,
	0x8b277743, 0x52a0c93f, 0x6ea2d55c, 0x1c08b7d6, 0xf56e0ef4, 0x34019664,
	0xa66805eb, 0x7a1f6b24, 0xe75d06aa, 0xc94ec098, 0x18b8ea18, 0x9a9f274a,
	0x2a03aaa3, 0xb13145f8, 0x790606ff, 0xad045557, 0x8542ba6d, 0xde6b9d0b,
	0x9957c0a6, 0x8473058e, 0x2e0af75a, 0x3ae9f81c, 0x5d27e147, 0x95ec5eb6,
	0x9421797f, 0x2f1f4950, 0x510ac59a, 0xf91bdeea, 0x882b9bfc, 0xbea58b3e,
	0x9c25531d, 0xafeaaeef, 0xbd8c7e90, 0x92157069, 0x19e65dde, 0x7fb2b8d1,
	0x21c7d010, 0x107f00bf, 0xec1631ed, 0x5cf4f2f8, 0x79ebc348, 0xcbdbaeb0,
	0xb2dea967, 0xb5be2920, 0x200830f7, 0x278403ae, 0x0e148e82, 0x63c35f01,
	0xf208405c, 0x1c941d43, 0x52377a55, 0x6486f9b5, 0x8780e02c, 0x6d79c1ee,
	0x4f256efc, 0xbe6285cb, 0x5abaef7a, 0x1a20c6da, 0xb82be955, 0x646ce526,
	0x067805d3, 0xc0856a5a, 0x3a077781, 0x70a7bf0c, 0x4d33686f, 0x3f989c2e,
	0x8cfaa965, 0x54bb7dd7, 0x074d3e3d, 0x8fcc485c, 0x1ce9d94b, 0xd8ee5f5e,
	0xfd858bab, 0x3b3f9b16, 0x36c41f1c, 0x5d2bcca0, 0xa2169e6a, 0x0a86adc4,
	0x041d3776, 0x573daed2, 0x32bfacf2, 0x1267a02e, 0x8cd75659, 0x291bd649,
	0x39e0dda6, 0x84d3b293, 0x817cdc51, 0xa3cf250c, 0x4de000f5, 0xc6d29b69,
	0x19b29a35, 0x050bef37, 0xe42c26b5, 0x87004af3, 0xe0b99ccb, 0x5ae43463,
	0x72cc84a2, 0x430209d5, 0xe661f7be, 0x1e8bac19, 0x68f2970f, 0x5e7bceb3,
	0xa11bfaf3, 0xe09f877b, 0xe8f160b1, 0x409600aa, 0xc9e90b9e, 0x3e19aa3b,
	0xa954fb20, 0x2014da25, 0x156c8e18, 0x9a92f32e, 0x8c5fa30a, 0x6b6e779b,
	0x0b4a395b, 0xc8a73bd1, 0x2170c593, 0x81d97f26, 0x069db049, 0x39cf5bc0,
	0xc3b4e99f, 0xcc7874da, 0xb8fdb1e7, 0x37423140, 0x414c5f8d, 0x3d9f3bf4,
	0x34c96751, 0xa37a90b7, 0x667c6cb2, 0x53487e52, 0xb04de25a, 0x3a77bf09,
	0x7888ac73, 0x62b02f55, 0x64b67ee0, 0xe3541e64, 0xa6bf5063, 0x7230dfc6,
	0xe55ef1f3, 0xe0dbc270, 0x71788fcf, 0x9def626f, 0x3f484024, 0xe7185181,
	0x707aa02a, 0x4b2fdc46, 0x6791d588, 0x0848f262, 0x80f5ab67, 0xb58c0222,
	0xc133722b, 0xb9f51697, 0x46db6dea, 0x88945b4f, 0x1fe0b5c3, 0xd0c23585,
	0xb7d7ed51, 0xa3f98e3d, 0x8f68fcec, 0xaefc0f36, 0x16ec5256, 0x7792d169,
	0x1903da7f, 0x2f926bf3, 0xe0110eea, 0x8832912c, 0x6d76739f, 0xccd6b640,
	0x41b7cb0a, 0x6ba39ff3, 0xe0553f1e, 0xbcc62d77, 0xa5eef6cb, 0x5aa16309,
	0x78e87aaf, 0xfc2061f8, 0x794b17db, 0x4a230187, 0x56767c92, 0x73c5fa9c,
	0xdf98f63d, 0x8f149d94, 0x55bd7f95, 0xa70c5574, 0xb6a5cf47, 0x9507dc98,
	0x18e4a304, 0xc78273bc, 0xff913f6a, 0x0adb2a65, 0x543d5c54, 0x96eb7090,
	0x923e1767, 0xb59ec99e, 0x3e65ddf9, 0x8be2d164, 0xa6d7e6ac, 0xefaead90,
	0x924752ba, 0xd9651da3, 0xb1c2234f, 0x1fd9e3bb, 0x2b830011, 0xe21ec76c,
	0x2c674275, 0x44452753, 0x42316c00, 0x0042316c, 0x2c851e83, 0x918a4d92,
	0x730206ad, 0x1d10fb73, 0x62d5b702, 0xe159a540, 0x419a4419, 0x68ad86e7,
	0x37926177, 0xa565a287, 0x56993a31, 0xc2de5388, 0x08edbde4, 0x24a2d2b8,
	0x38e888d4, 0x14719e3c, 0x7db4f7ff, 0xad00e7a6, 0x844752a9, 0xda7d2938,
	0xbae06c57, 0x85555e54, 0x963a1892, 0x7305b6f8, 0x79c4320c, 0x4d3a0be2,
	0x0246e2e6, 0xc5930910, 0x109b5466, 0x4777efde, 0x7fec2963, 0x72e98cbf,
	0xec74a761, 0x934164c6, 0xe5bf8048, 0xcb47faf3, 0xe0f5db7b, 0xe8f10aed,
	0x5cf015c3, 0xd0812525, 0x159c1be7, 0x37ef50ea,
};
static const __u32 gvs_crc32c_x8hi[256] = {
	0x80000000, 0x88e56f72, 0x74c360a4, 0x631bb273, 0xe4172b16, 0x71892b1b,
	0x835305c9, 0x196b1eae, 0x0d65762a, 0xafc81338, 0xb5a50ab7, 0xf373c3ac,
	0x5f60970f, 0xd46d3063, 0x3a5275ea, 0x02331c01, 0x35d73a62, 0x2600ffa6,
	0xf65e86d6, 0x68e46ea2, 0x8eeafe04, 0xaca289d5, 0x84e3f8c8, 0xda17456b,
	0x481bee08, 0xa8b4118b, 0x59f4852c, 0x717a8910, 0xefcf4f49, 0xecbbe106,
	0xda1c4087, 0xdc2ced79, 0x28461564, 0xeccb4578, 0x6d8f49d8, 0x9b7ad6c5,
	0xce2c905d, 0xa32be27a, 0xde8a8e12, 0x8c117538, 0x8778fbde, 0xd8c96934,
	0x9b9e9037, 0xafc0eb67, 0x8a898a05, 0x6e971abe, 0x186d1391, 0xc2d95be8,
	0x43eefc9f, 0xb8868422, 0xde5a3422, 0x2082707c, 0x456ea1c5, 0x3ed57030,
	0x3b1d89ea, 0xb158055f, 0xba8dd573, 0xbd9b04e0, 0x86162060, 0xc9f6cbf5,
	0x9714afd1, 0xe45901d7, 0x5282b1be, 0xd847ebfd, 0xbf455269, 0xb031d46e,
	0x1409a35b, 0x9dfd8341, 0xa335d306, 0x68e38fb7, 0x2144743e, 0xbcf65005,
	0x57ac1403, 0x0cfe7f1c, 0x0f121b5e, 0xecb4c29e, 0x80295058, 0x20f3da38,
	0xb6afd2ff, 0x778fcc50, 0x5edcdeb9, 0x187953cc, 0x7479c4c7, 0xed137dd7,
	0x087ff103, 0xa3b2a824, 0xa6b9d5fb, 0xfb260ce6, 0x0cebb5b1, 0x35045674,
	0x209c6e45, 0x2e7b0cec, 0x22c5adcc, 0x88c913f0, 0x208e2ea9, 0x4bd8d801,
	0x65059450, 0xb76e2d72, 0xb9e80571, 0x0788eab5, 0x78d4b491, 0xd578ef9e,
	0x50a06c86, 0x8d34099a, 0x0d69c0ac, 0x16e43bc4, 0x36c9680c, 0xb06470d4,
	0xa22ceb86, 0x1137a0bd, 0xb041c5a6, 0x8d92f930, 0x4e6f41a4, 0x8ee01bfc,
	0xa71bd31a, 0x088ca01f, 0xd3e49f36, 0xcc9e356a, 0x3644c1b4, 0xa03f4f11,
	0x2e7776e1, 0xa2fdc76c, 0x346f98da, 0xf40277fe, 0x6381067f, 0x80ed08da,
	0xec3fda46, 0x1a8124d4, 0xe2ea32dc, 0x8f5302d6, 0x1c2f57d2, 0xbb78612e,
	0x05f6b022, 0x88317045, 0xe426ba19, 0xadd38f2b, 0x504a4b48, 0x3a0b2256,
	0xf67036b8, 0xb2a1474b, 0x3829b75e, 0x4746bb56, 0x2364630b, 0xd0394222,
	0xf5b95b32, 0x29e89c99, 0xbf0c695a, 0xbd1488dc, 0x7de96c1b, 0x6964405e,
	0x20766722, 0x02b36975, 0xbd0d968d, 0x22a0cd12, 0x0839f3ed, 0xd73e4ac8,
	0x85b7f30f, 0x9f3722be, 0xa20285ee, 0xfe7530cd, 0x695a4c87, 0x448e7bda,
	0x96b1761e, 0x9447b8ff, 0x0385a49d, 0xc71e1e96, 0xfbfa074f, 0xa2ccde30,
	0xa74fc7bd, 0x0212ecfe, 0x94923908, 0x01d9badb, 0x9548f5f8, 0x6bf1bbe5,
	0x5d91d42c, 0x7c7016b8, 0xf204502c, 0x31911140, 0x68645de4, 0x0a2cf292,
	0x323e42ec, 0x67c226c5, 0x5b575c57, 0x1ceb6eb0, 0x4cccbb63, 0x86be4c0b,
	0xc6b7c3bc, 0x9c6e7cf1, 0xc534a11c, 0xad653be3, 0x275ebea9, 0xab3620bc,
	0x9a4f01b6, 0xf8cd9b71, 0xc3c0ad48, 0x737faaf8, 0xfb51cf31, 0x7db26281,
	0xda347829, 0xcf21e0b7, 0xc73054ad, 0xab23597f, 0x0320b658, 0x774b30fe,
	0xa66a47c4, 0x6f2a1385, 0x3c884fa0, 0x9441fdfb, 0x941a0916, 0xf8e7d20a,
	0x951e116b, 0x9c5c8fdb, 0xde0a51de, 0x46760adc, 0x33764417, 0xd44c2980,
	0x4b4eec48, 0xa4d0f239, 0xccd68c23, 0xf244c119, 0xe29278a3, 0xb7a8320b,
	0xe2b3b949, 0xea7f1c7b, 0x4303cb97, 0x168d4703, 0xb8d9ec73, 0xa29ef54f,
	0x9a80cc59, 0x2604c3ea, 0x8b662cc9, 0xd5453e55, 0xa98112a7, 0x5f369ea5,
	0xee7d1674, 0xa4f34d2d, 0xa41aaa68, 0x089d6d00, 0x66ac1f55, 0x6d98601a,
	0x4c3d3d65, 0xd860d327, 0xb3091735, 0x4610220e, 0x13c6ed5f, 0xee604a48,
	0x4a39e877, 0xc2850474, 0x9049aab7, 0xa7a82bae, 0xfa2b26d8, 0x9ad84164,
	0x4d227ac3, 0x9d5073df, 0x05f3f11e, 0x73411e5c,
};

#define GVS_CRC32C_POLY 0x82f63b78u

/* a * b mod P, reflected (bit 31 is x^0); branch-free. */
static __always_inline __u32 crc32c_mulmod(__u32 a, __u32 b)
{
	__u32 p = 0;

#pragma nounroll
	for (int i = 31; i >= 0; i--) {
		p ^= b & -((a >> i) & 1);
		b = (b >> 1) ^ (GVS_CRC32C_POLY & -(b & 1));
	}
	return p;
}

/* The change of the CRC32c of an SCTP packet of len bytes whose first
 * four bytes (the ports, read as a little-endian word) change by d. A
 * global function: verified once. */
__attribute__((noinline)) __u32 gvs_sctp_crc_delta(__u32 d, __u32 len)
{
	__u32 lo = len & 255, hi = (len >> 8) & 255;

	barrier_var(lo);
	barrier_var(hi);
	if (lo > 255 || hi > 255)
		return 0;
	return crc32c_mulmod(crc32c_mulmod(gvs_crc32c_x8lo[lo], gvs_crc32c_x8hi[hi]), d);
}

/* Rewrite an SCTP packet's ports (network order) and update its CRC32c
 * (len: the SCTP packet's length, IP total length less the header). The
 * data path is built for little-endian BPF (bpfel): a word read from the
 * packet is its bytes least significant first, as the CRC is stored. */
static __always_inline int sctp_nat_ports(void *l4, void *data_end, __u16 sport, __u16 dport, __u32 len)
{
	__u32 *w = l4;

	if ((void *)(w + 3) > data_end)
		return -1;
	__u32 nw = (__u32)sport | (__u32)dport << 16;
	__u32 d = w[0] ^ nw;

	if (d) {
		w[2] ^= gvs_sctp_crc_delta(d, len);
		w[0] = nw;
	}
	return 0;
}

/* The event of the SCTP packet at h (len bytes): the first chunk's type;
 * a COOKIE ECHO or COOKIE ACK with an ABORT bundled after it is the ABORT
 * (set_sctp_state). -1 without the common header and a whole chunk
 * header. Shared by IPv4 (parse_sctp) and IPv6 (parse6). */
static __always_inline int sctp_hdr_event(__u8 *h, void *data_end, __u32 len)
{
	if ((void *)(h + 16) > data_end || len < 16)
		return -1;
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
	return sctp_chunk_event(type);
}

/* The SCTP header: the common header (ports at TCP's and UDP's offsets,
 * verification tag, CRC32c) and the first chunk's header; the event goes
 * in p->tcpflags. A packet without a whole chunk header is malformed. */
static __always_inline int parse_sctp(struct gvs_pkt *p, void *l4, void *data_end, __u32 len)
{
	__u8 *h = l4;
	int ev = sctp_hdr_event(h, data_end, len);

	if (ev < 0)
		return PARSE_MALFORMED;
	p->sport = *(__u16 *)h;
	p->dport = *(__u16 *)(h + 2);
	p->tcpflags = ev;
	return PARSE_OK;
}

#endif
