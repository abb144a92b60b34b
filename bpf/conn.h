/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Connection tracking: the TCP state table (conn/conn.go), the server
 * counts and overload hysteresis (model/server.go Bind/Unbind), and entry
 * removal.
 *
 * Who owns an entry's counts: whoever deletes it. BPF removes an entry
 * (an expired one it meets, a TIME_WAIT/CLOSE one a new SYN reopens, one
 * whose server is gone with expire_nodest_conn, an expired template
 * controlling nothing) with bpf_map_delete_elem and unbinds it only when
 * that delete returned 0. gvsd's sweep must do the same: take an entry with
 * BPF_MAP_LOOKUP_AND_DELETE_ELEM and unbind what it got back; if the value
 * it got is no longer expired (a packet refreshed it meanwhile), put it
 * back with BPF_NOEXIST, and unbind it only if that fails. Counts in
 * `dests` are changed with atomic adds (BPF: __sync_fetch_and_add; gvsd:
 * atomics on the mmapped array), never by rewriting the whole value.
 *
 * A controlled connection (GVS_CONN_F_CONTROLLED) finds its template by
 * key: masked client address, cport 0, the virtual address, and vport (0
 * for port-zero services), of the service conn.svc.
 */
#ifndef GVS_CONN_H
#define GVS_CONN_H

#include <linux/bpf.h>
#include <linux/in.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>
#include "gvs.h"
#include "maps.h"
#include "parse.h"
#include "sched.h"

#define sNO GVS_S_NONE
#define sES GVS_S_ESTABLISHED
#define sSS GVS_S_SYN_SENT
#define sSR GVS_S_SYN_RECV
#define sFW GVS_S_FIN_WAIT
#define sTW GVS_S_TIME_WAIT
#define sCL GVS_S_CLOSE
#define sCW GVS_S_CLOSE_WAIT
#define sLA GVS_S_LAST_ACK
#define sLI GVS_S_LISTEN
#define sSA GVS_S_SYNACK

/* tcp_states: INPUT, OUTPUT, INPUT-ONLY; rows syn, fin, ack, rst. */
static const __u8 gvs_tcp_table[3][4][GVS_S_TCP_LAST] = {
	{ /* INPUT */
		{sSR, sES, sES, sSR, sSR, sSR, sSR, sSR, sSR, sSR, sSR},
		{sCL, sCW, sSS, sTW, sTW, sTW, sCL, sCW, sLA, sLI, sTW},
		{sES, sES, sSS, sES, sFW, sTW, sCL, sCW, sCL, sLI, sES},
		{sCL, sCL, sCL, sSR, sCL, sCL, sCL, sCL, sLA, sLI, sSR},
	},
	{ /* OUTPUT */
		{sSS, sES, sSS, sSR, sSS, sSS, sSS, sSS, sSS, sLI, sSR},
		{sTW, sFW, sSS, sTW, sFW, sTW, sCL, sTW, sLA, sLI, sTW},
		{sES, sES, sSS, sES, sFW, sTW, sCL, sCW, sLA, sES, sES},
		{sCL, sCL, sSS, sCL, sCL, sTW, sCL, sCL, sCL, sCL, sCL},
	},
	{ /* INPUT-ONLY */
		{sSR, sES, sES, sSR, sSR, sSR, sSR, sSR, sSR, sSR, sSR},
		{sCL, sFW, sSS, sTW, sFW, sTW, sCL, sCW, sLA, sLI, sTW},
		{sES, sES, sSS, sES, sFW, sTW, sCL, sCW, sCL, sLI, sES},
		{sCL, sCL, sCL, sSR, sCL, sCL, sCL, sCL, sLA, sLI, sCL},
	},
};

/* tcp_state_idx: RST wins over SYN, SYN over FIN, FIN over ACK. */
static __always_inline int tcp_event(__u8 f)
{
	if (f & TCPF_RST)
		return 3;
	if (f & TCPF_SYN)
		return 0;
	if (f & TCPF_FIN)
		return 1;
	if (f & TCPF_ACK)
		return 2;
	return -1;
}

/* Rows of gvs_tcp_table. */
#define TCP_DIR_INPUT      0
#define TCP_DIR_OUTPUT     1
#define TCP_DIR_INPUT_ONLY 2

/* conn.NextTCP. */
static __always_inline __u8 tcp_next(__u8 cur, int dir, __u8 flags)
{
	int ev = tcp_event(flags);

	if (ev < 0 || cur >= GVS_S_TCP_LAST)
		return GVS_S_CLOSE;
	__u32 idx = (dir * 4 + ev) * GVS_S_TCP_LAST + cur;

	barrier_var(idx);
	if (idx >= sizeof(gvs_tcp_table))
		return GVS_S_CLOSE;
	return ((const __u8 *)gvs_tcp_table)[idx];
}

/* The next state of a TCP or SCTP connection (ev: the TCP flags, or the
 * SCTP event). A global function, verified once: the callers' unrolled
 * compare-and-swap loops then branch on nothing about the protocol. */
__attribute__((noinline)) __u32 gvs_state_next(__u32 cur, __u32 dir, __u32 proto, __u32 ev)
{
	if (dir > TCP_DIR_INPUT_ONLY)
		dir = TCP_DIR_INPUT;
	if (proto == IPPROTO_SCTP)
		return sctp_next(cur, dir, ev);
	return tcp_next(cur, dir, ev);
}

/* conn.State.Active (SCTP: ESTABLISHED only). */
static __always_inline int state_active(__u8 s)
{
	return s == GVS_S_ESTABLISHED || s == GVS_S_SYN_SENT ||
	       s == GVS_S_SYN_RECV || s == GVS_S_SYNACK || s == GVS_S_SCTP_ESTABLISHED;
}

static __always_inline __u32 state_timeout(const struct gvs_timeouts *to, __u8 proto, __u8 s)
{
	__u32 i = s;

	barrier_var(i);
	if (proto == IPPROTO_TCP && i < GVS_S_TCP_LAST)
		return to->tcp[i];
	if (proto == IPPROTO_SCTP)
		return gvs_sctp_timeout(s);
	return to->udp;
}

#define BIND_TEMPLATE 0
#define BIND_INACTIVE 1
#define BIND_ACTIVE   2

/* model.Server.Bind. */
static __always_inline void dest_bind(struct gvs_dest *d, int kind)
{
	if (kind == BIND_TEMPLATE)
		__sync_fetch_and_add(&d->persistconns, 1);
	else if (kind == BIND_INACTIVE)
		__sync_fetch_and_add(&d->inactconns, 1);
	else
		__sync_fetch_and_add(&d->activeconns, 1);
	__u32 u = RD(d->u_threshold);
	if (u && (__s64)RD(d->activeconns) + (__s64)RD(d->inactconns) >= (__s64)u)
		__sync_fetch_and_or(&d->flags, GVS_DEST_F_OVERLOAD);
}

/* model.Server.Unbind. */
static __always_inline void dest_unbind(struct gvs_dest *d, int kind)
{
	if (kind == BIND_TEMPLATE)
		__sync_fetch_and_add(&d->persistconns, -1);
	else if (kind == BIND_INACTIVE)
		__sync_fetch_and_add(&d->inactconns, -1);
	else
		__sync_fetch_and_add(&d->activeconns, -1);
	__s64 total = (__s64)RD(d->activeconns) + (__s64)RD(d->inactconns);
	__u32 l = RD(d->l_threshold), u = RD(d->u_threshold);
	int clear;

	if (l)
		clear = total < (__s64)l;
	else if (u)
		clear = total * 4 < (__s64)u * 3;
	else
		clear = 1;
	if (clear && (RD(d->flags) & GVS_DEST_F_OVERLOAD))
		__sync_fetch_and_and(&d->flags, ~GVS_DEST_F_OVERLOAD);
}

/* model.Server.SetActive. */
static __always_inline void dest_set_active(struct gvs_dest *d, int active)
{
	if (active) {
		__sync_fetch_and_add(&d->inactconns, -1);
		__sync_fetch_and_add(&d->activeconns, 1);
	} else {
		__sync_fetch_and_add(&d->activeconns, -1);
		__sync_fetch_and_add(&d->inactconns, 1);
	}
}

/* The 32-bit word of gvs_conn holding state and flags, changed with one
 * compare-and-swap so concurrent packets of a flow move a count once. */
union conn_sf {
	__u32 w;
	struct {
		__u8 state;
		__u8 flags;
		__u16 pad;
	};
};

int reply_slow(struct gvs_conn *c, const struct gvs_dest *d, __u32 proto);

/* IPVS set_tcp_state (set_sctp_state for SCTP), then the state's
 * timeout. output: a packet from the server (NAT/FULLNAT), which also
 * ends input-only tracking. A NAT connection whose state moves takes its
 * replies off the fast path (reply_slow). */
static __always_inline void conn_set_state(struct gvs_conn *c, struct gvs_dest *d,
					   const struct gvs_pkt *p, const struct gvs_timeouts *to,
					   int output)
{
	if (p->proto != IPPROTO_TCP && p->proto != IPPROTO_SCTP) {
		c->timeout = to->udp;
		return;
	}
	__u32 *word = (__u32 *)&c->state;
	union conn_sf o, n;
	__u32 ev = p->proto == IPPROTO_SCTP ? sctp_event(p) : p->tcpflags;

#pragma unroll
	for (int tries = 0; tries < 4; tries++) {
		o.w = RD(*word);
		if (o.flags & GVS_CONN_F_DYING)
			break; /* its remover undoes the counts as they are */
		n.w = o.w;
		int dir = TCP_DIR_INPUT;
		if (output)
			dir = TCP_DIR_OUTPUT;
		else if (o.flags & GVS_CONN_F_NOOUTPUT)
			dir = TCP_DIR_INPUT_ONLY;
		if (output)
			n.flags &= ~GVS_CONN_F_NOOUTPUT;
		n.state = gvs_state_next(o.state, dir, p->proto, ev);
		int move = 0;
		if (n.state != o.state) {
			if (!(o.flags & GVS_CONN_F_INACTIVE) && !state_active(n.state)) {
				n.flags |= GVS_CONN_F_INACTIVE;
				move = -1;
			} else if ((o.flags & GVS_CONN_F_INACTIVE) && state_active(n.state)) {
				n.flags &= ~GVS_CONN_F_INACTIVE;
				move = 1;
			}
		}
		if (n.w == o.w || __sync_val_compare_and_swap(word, o.w, n.w) == o.w) {
			if (move && d)
				dest_set_active(d, move > 0);
			if (n.state != o.state && (o.flags & GVS_CONN_F_NAT))
				reply_slow(c, d, p->proto);
			break;
		}
	}
	c->timeout = state_timeout(to, p->proto, RD(c->state));
}

/* Template key of ip_vs_sched_persist. exact: the packet's port is the
 * service's (else a port-zero service: vport 0). A firewall-mark
 * service's (mark nonzero) is IPPROTO_IP, the mark as the virtual address
 * and port 0, so one template covers every port the mark takes in. */
static __always_inline void tmpl_key(struct gvs_conn_key *tk, const struct gvs_conn_key *k,
				     __u32 netmask, int exact, __u32 mark)
{
	__u32 caddr = k->caddr[0], vaddr = k->vaddr[0];
	__u16 vport = k->vport;
	__u8 proto = k->proto;

	__builtin_memset(tk, 0, sizeof(*tk));
	tk->caddr[0] = bpf_htonl(bpf_ntohl(caddr) & netmask);
	tk->vaddr[0] = mark ? bpf_htonl(mark) : vaddr;
	tk->cport = 0;
	tk->vport = exact && !mark ? vport : 0;
	tk->proto = mark ? 0 : proto;
	tk->af = 4;
}

/* IPv6 template key: the client's address masked to the service's
 * prefix length (gvs_svc.netmask, 1..128); a firewall-mark service's
 * (mark nonzero) is IPPROTO_IP, the mark in the first address word (as
 * IPVS's union nf_inet_addr with .ip set) and port 0. */
static __always_inline void tmpl_key6(struct gvs_conn_key *tk, const struct gvs_conn_key *k,
				      __u32 plen, int exact, __u32 mark)
{
	__builtin_memset(tk, 0, sizeof(*tk));
#pragma unroll
	for (int i = 0; i < 4; i++) {
		__s32 b = (__s32)plen - 32 * i;
		__u32 m = b <= 0 ? 0 : b >= 32 ? 0xffffffffu : ~(0xffffffffu >> b);
		tk->caddr[i] = k->caddr[i] & bpf_htonl(m);
		tk->vaddr[i] = k->vaddr[i];
	}
	tk->vport = exact && !mark ? k->vport : 0;
	tk->proto = mark ? 0 : k->proto;
	tk->af = 6;
	if (mark) {
		tk->vaddr[0] = bpf_htonl(mark);
		tk->vaddr[1] = tk->vaddr[2] = tk->vaddr[3] = 0;
	}
}

/* The service a connection was made for: the one of its virtual address
 * and port, else the port-zero one, else its firewall-mark one, whichever
 * has id svc. exact says which of the first two; *mark is the third's
 * mark (else 0). */
static __always_inline struct gvs_svc *svc_by_id(const struct gvs_conn_key *k, __u32 id, int *exact,
						 __u32 *mark)
{
	struct gvs_svc_key sk = {};
	struct gvs_svc *s;

	*mark = 0;
	sk.addr[0] = k->vaddr[0];
	if (k->af == 6) {
		sk.addr[1] = k->vaddr[1];
		sk.addr[2] = k->vaddr[2];
		sk.addr[3] = k->vaddr[3];
	}
	sk.port = k->vport;
	sk.proto = k->proto;
	sk.af = k->af;
	s = bpf_map_lookup_elem(&services, &sk);
	if (s && s->id == id) {
		*exact = 1;
		return s;
	}
	sk.port = 0;
	s = bpf_map_lookup_elem(&services, &sk);
	if (s && s->id == id) {
		*exact = k->vport == 0;
		return s;
	}
	__u32 *m = bpf_map_lookup_elem(&svc_fwmark, &id);
	if (!m || !*m)
		return 0;
	__builtin_memset(&sk, 0, sizeof(sk));
	sk.addr[0] = *m;
	sk.af = k->af;
	s = bpf_map_lookup_elem(&services, &sk);
	if (s && s->id == id) {
		*exact = 1;
		*mark = sk.addr[0];
		return s;
	}
	return 0;
}

/* Remove a template (ownership by delete, see above). */
static __always_inline void tmpl_remove(struct gvs_conn_key *tk, struct gvs_template *t)
{
	__u32 dest = RD(t->dest);

	if (bpf_map_delete_elem(&templates, tk) != 0)
		return;
	struct gvs_dest *d = dest_get(dest);
	if (d)
		dest_unbind(d, BIND_TEMPLATE);
}

/* n_control of a template being removed for want of holders: a holder
 * that finds it negative lets go and does without it (the remover won).
 * Far below zero, so late releases cannot bring it back up. */
#define TMPL_DEAD (-(1 << 30))

/* Remove a template nothing holds, unless a connection took a hold on
 * it first. */
static __always_inline void tmpl_kill(struct gvs_conn_key *tk, struct gvs_template *t)
{
	if (__sync_val_compare_and_swap(&t->n_control, 0, TMPL_DEAD) == 0)
		tmpl_remove(tk, t);
}

/* A new connection's hold on its template, taken before the connection
 * can be seen (and so released by whoever removes it): 0 when the
 * template is gone or going. */
static __always_inline int tmpl_hold(struct gvs_conn_key *tk)
{
	struct gvs_template *t = bpf_map_lookup_elem(&templates, tk);

	if (!t)
		return 0;
	if (__sync_fetch_and_add(&t->n_control, 1) < 0) {
		__sync_fetch_and_add(&t->n_control, -1);
		return 0;
	}
	return 1;
}

static __always_inline void tmpl_unhold(struct gvs_conn_key *tk)
{
	struct gvs_template *t = bpf_map_lookup_elem(&templates, tk);

	if (t)
		__sync_fetch_and_add(&t->n_control, -1);
}

/* The reply key of a NAT/FULLNAT connection of server d. */
static __always_inline void reply_key(struct gvs_conn_key *rk, __u32 raddr, __u32 laddr,
				      __u16 rport, __u16 lport, __u8 proto)
{
	__builtin_memset(rk, 0, sizeof(*rk));
	rk->caddr[0] = raddr;
	rk->vaddr[0] = laddr;
	rk->cport = rport;
	rk->vport = lport;
	rk->proto = proto;
	rk->af = 4;
}

/* reply_key of an IPv6 connection. */
static __always_inline void reply_key6(struct gvs_conn_key *rk, const __u32 *raddr, const __u32 *laddr,
				       __u16 rport, __u16 lport, __u8 proto)
{
	__builtin_memset(rk, 0, sizeof(*rk));
	__builtin_memcpy(rk->caddr, raddr, 16);
	__builtin_memcpy(rk->vaddr, laddr, 16);
	rk->cport = rport;
	rk->vport = lport;
	rk->proto = proto;
	rk->af = 6;
}

/* Drop a connection's reply entry if it is still the connection's (a
 * later NAT connection may have taken the same reply tuple) of server d.
 * laddr is 4 words (an IPv4 address in the first). The reply key has the
 * server's family (a NAT64 connection's key is IPv6, its replies IPv4). */
/* 16 bytes of address, for a global function's pointer argument (its
 * size is the pointee's). */
struct gvs_a16 {
	__u32 a[4];
};

/* A global function: verified once, not at every place a connection is
 * removed (the IPv4 program is near the verifier's limit). */
__attribute__((noinline)) int reply_remove(const struct gvs_conn_key *key, const struct gvs_dest *d,
					   const struct gvs_a16 *la, __u16 rport, __u16 lport)
{
	struct gvs_conn_key rk;

	if (!key || !d || !la)
		return 0;
	const __u32 *raddr = d->addr, *laddr = la->a;

	if (d->af == 6) /* the server's family: NAT64's replies are IPv4 */
		reply_key6(&rk, raddr, laddr, rport, lport, key->proto);
	else
		reply_key(&rk, raddr[0], laddr[0], rport, lport, key->proto);
	struct gvs_reply *r = bpf_map_lookup_elem(&rconns, &rk);
	const struct gvs_conn_key *v = r ? &r->fk : 0;
	if (v && v->caddr[0] == key->caddr[0] && v->vaddr[0] == key->vaddr[0] &&
	    v->caddr[1] == key->caddr[1] && v->vaddr[1] == key->vaddr[1] &&
	    v->caddr[2] == key->caddr[2] && v->vaddr[2] == key->vaddr[2] &&
	    v->caddr[3] == key->caddr[3] && v->vaddr[3] == key->vaddr[3] &&
	    v->cport == key->cport && v->vport == key->vport)
		bpf_map_delete_elem(&rconns, &rk);
	return 0;
}

static __always_inline int conn_key_eq(const struct gvs_conn_key *a, const struct gvs_conn_key *b)
{
	const __u64 *x = (const __u64 *)a, *y = (const __u64 *)b;

	return x[0] == y[0] && x[1] == y[1] && x[2] == y[2] && x[3] == y[3] && x[4] == y[4];
}

/* The reply entry of IPv4 NAT/FULLNAT connection c of server d, or 0. */
static __always_inline struct gvs_reply *reply_of(const struct gvs_conn *c, const struct gvs_dest *d,
						  __u8 proto)
{
	struct gvs_conn_key rk;

	reply_key(&rk, d->addr[0], c->laddr[0], c->rport, c->lport, proto);
	return bpf_map_lookup_elem(&rconns, &rk);
}

/* Connection c's state moved: its replies take the slow path (out_conn)
 * again until it arms them anew, and the connection's own deadline
 * catches up with the one they kept. Global: verified once. */
__attribute__((noinline)) int reply_slow(struct gvs_conn *c, const struct gvs_dest *d, __u32 proto)
{
	if (!c || !d || d->af != 4)
		return 0;
	struct gvs_reply *r = reply_of(c, d, proto);
	if (!r || !RD(r->fast))
		return 0;
	r->fast = 0;
	__u64 e = RD(r->expires);
	if (RD(r->dest) == RD(c->dest) && e > RD(c->expires))
		c->expires = e;
	return 0;
}

/* Whether IPv4 NAT/FULLNAT connection c (key), past its own deadline, is
 * kept alive by its replies (reply_fast refreshes only the reply entry's):
 * then its deadline catches up. Global: verified once. */
__attribute__((noinline)) int reply_alive(const struct gvs_conn_key *key, struct gvs_conn *c, __u64 now)
{
	if (!key || !c || key->af != 4 || !(RD(c->flags) & GVS_CONN_F_NAT))
		return 0;
	struct gvs_dest *d = dest_get(RD(c->dest));
	if (!d || d->af != 4)
		return 0;
	struct gvs_reply *r = reply_of(c, d, key->proto);
	if (!r || !RD(r->fast))
		return 0;
	__u64 e = RD(r->expires);
	if (e <= now || !conn_key_eq(&r->fk, key))
		return 0;
	c->expires = e;
	return 1;
}

/* A removed controlled connection lets go of its template (found by
 * key, see above); with drop_idle, a template it was the last to hold
 * goes too. A call of its own: the template key's stack is not the
 * caller's. */
__attribute__((noinline)) int tmpl_release(const struct gvs_conn_key *key, __u32 svc, int drop_idle)
{
	int exact = 0;

	if (!key)
		return 0;
	__u32 mark;
	struct gvs_svc *s = svc_by_id(key, svc, &exact, &mark);

	if (!s)
		return 0;
	struct gvs_conn_key tk;
	if (key->af == 6)
		tmpl_key6(&tk, key, s->netmask, exact, mark);
	else
		tmpl_key(&tk, key, s->netmask, exact, mark);
	struct gvs_template *t = bpf_map_lookup_elem(&templates, &tk);
	if (t && __sync_fetch_and_add(&t->n_control, -1) == 1 && drop_idle)
		tmpl_kill(&tk, t);
	return 0;
}

static __always_inline void conn_remove_ex(struct gvs_conn_key *key, struct gvs_conn *c, int drop_idle_tmpl);

/* ip_vs_conn_expire / remove for a connection the packet path drops. */
static __always_inline void conn_remove(struct gvs_conn_key *key, struct gvs_conn *c)
{
	conn_remove_ex(key, c, 0);
}

/* conn_remove; with drop_idle_tmpl, a persistence template the
 * connection was the last to hold goes too (an evicted handshake's: a
 * flood's templates must not outlive its half-open entries and fill
 * their table). */
static __always_inline void conn_remove_ex(struct gvs_conn_key *key, struct gvs_conn *c, int drop_idle_tmpl)
{
	__u32 dest = RD(c->dest), svc = RD(c->svc);
	/* Copied before the delete: the entry's memory may be reused. */
	struct gvs_a16 laddr = { { c->laddr[0], c->laddr[1], c->laddr[2], c->laddr[3] } };
	__u16 lport = c->lport, rport = c->rport;
	/* Claimed first: conn_set_state moves no count of a DYING entry, so
	 * the flags read with the claim are the ones to undo (a packet of
	 * the flow on another CPU may be moving it to active this instant).
	 * One claimed already is someone else's to remove. */
	__u32 *word = (__u32 *)&c->state;
	union conn_sf o, n;
	int claimed = 0;

	o.w = 0;
#pragma unroll
	for (int tries = 0; tries < 4; tries++) {
		o.w = RD(*word);
		if (o.flags & GVS_CONN_F_DYING)
			return;
		n.w = o.w;
		n.flags |= GVS_CONN_F_DYING;
		if (__sync_val_compare_and_swap(word, o.w, n.w) == o.w) {
			claimed = 1;
			break;
		}
	}
	if (!claimed)
		return;
	__u8 flags = o.flags;

	if (bpf_map_delete_elem(&conns, key) != 0)
		return; /* gvsd's sweep took it: its snapshot has these flags */
	struct gvs_dest *d = dest_get(dest);
	if (d)
		dest_unbind(d, (flags & GVS_CONN_F_INACTIVE) ? BIND_INACTIVE : BIND_ACTIVE);
	if (d && (flags & GVS_CONN_F_NAT))
		reply_remove(key, d, &laddr, rport, lport);
	if (flags & GVS_CONN_F_CONTROLLED)
		tmpl_release(key, svc, drop_idle_tmpl);
}

/* Whether a live entry may be evicted to make room for a new one: a
 * handshake that has not completed, a finished connection, or a UDP flow
 * no reply has confirmed. Never an established or closing TCP connection
 * (its data is still flowing), nor an entry being created. */
static __always_inline int conn_evictable(const struct gvs_conn *c)
{
	__u8 s = RD(c->state);

	if (RD(c->dest) == GVS_DEST_NONE)
		return 0;
	if (s == GVS_S_UDP)
		return !(RD(c->flags) & GVS_CONN_F_REPLIED);
	return s != GVS_S_ESTABLISHED && s != GVS_S_FIN_WAIT &&
	       s != GVS_S_CLOSE_WAIT && s != GVS_S_LAST_ACK && !sctp_live(s);
}

/* An IPv4 NAT handshake's record, and its reply tuple (evicted_rk). A
 * call of its own: the reply key is not on the eviction walk's frame. */
__attribute__((noinline)) int conn_remember_nat(const struct gvs_conn_key *k, const struct gvs_conn *c)
{
	struct gvs_conn_key rk;

	if (!k || !c)
		return 0;
	struct gvs_dest *d = dest_get(RD(c->dest));
	if (!d || d->af != 4)
		return 0;
	reply_key(&rk, d->addr[0], c->laddr[0], c->rport, c->lport, k->proto);
	if (!bpf_map_update_elem(&evicted, k, c, BPF_ANY))
		bpf_map_update_elem(&evicted_rk, &rk, k, BPF_ANY);
	return 0;
}

/* An evicted handshake of a service without persistence goes into the
 * evicted map (see there): its first fields are the record. DR, TUN and
 * IPv4 NAT; not FULLNAT (its local port goes back to the pool), nor a
 * template's holder (its template may go with it). */
static __always_inline void conn_remember(const struct gvs_conn_key *k, const struct gvs_conn *c)
{
	__u8 f = RD(c->flags);

	if (k->proto != IPPROTO_TCP || RD(c->state) != GVS_S_SYN_RECV || (f & GVS_CONN_F_CONTROLLED))
		return;
	if (!(f & GVS_CONN_F_NAT))
		bpf_map_update_elem(&evicted, k, c, BPF_ANY);
	else if (k->af == 4 && RD(c->method) == GVS_FWD_MASQ)
		conn_remember_nat(k, c);
}

/* Slots of conn_ring a hand looks at per new connection: for a free slot
 * (the ring is twice the table, so one is near), and, when the table is
 * full, for an entry to evict (in this CPU's part, then in another's). */
#define RING_FREE_TRIES  8
#define RING_OFF (-2) /* ring_step: no ring configured */
#define RING_EVICT_TRIES 64

/* Making room, NAT handshakes the server has not answered yet are passed
 * over for up to this many slots: their clients may be waiting on a
 * server slowed by the flood, while an answered one a real client
 * completes within a round trip. */
#define RING_UNANSWERED_SKIP 8

/* A ring slot's key, copied before use: another CPU may write the slot
 * meanwhile, and a key read twice could name two connections (the
 * lookup's and the delete's). Per CPU, off the 512-byte stack. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct gvs_conn_key);
} ring_key SEC(".maps");

static __always_inline struct gvs_conn_key *ring_key_copy(const struct gvs_conn_key *slot)
{
	__u32 zero = 0;
	struct gvs_conn_key *k = bpf_map_lookup_elem(&ring_key, &zero);

	if (k)
		*k = *slot;
	return k;
}

struct ring_walk {
	__u64 now;
	__u32 cpu;    /* whose part and hand */
	__u32 base;   /* that part's first slot */
	__u32 part;
	__s32 slot;   /* the slot found, or -1 (rings are under 2^31) */
	__s32 cand;   /* the first unanswered NAT handshake passed over */
	__u16 evict;
	__u16 skipped;
};

/* A NAT/FULLNAT handshake whose server has not answered. */
static __always_inline int conn_unanswered(const struct gvs_conn *c)
{
	__u8 f = RD(c->flags);

	return RD(c->state) != GVS_S_UDP && (f & GVS_CONN_F_NAT) && !(f & GVS_CONN_F_REPLIED);
}

/* One slot at the hand. Keys are written in the hand's order, so an
 * empty slot is the part's frontier: nothing past it was ever used. For
 * a free slot (evict 0) any slot whose key names no live entry will do,
 * an expired entry being reclaimed on the way; to make room (evict 1)
 * only a slot whose entry is removed (expired, or evictable) counts, and
 * at the frontier the hand goes back to the part's start, the oldest. */
static long ring_visit(__u64 i, void *vw)
{
	struct ring_walk *w = vw;
	__u32 zero = 0;
	__u32 *hand = bpf_map_lookup_percpu_elem(&ring_hand, &zero, w->cpu);

	if (!hand || !w->part)
		return 1;
	/* Atomic: another CPU making room may walk this part too. */
	__u32 slot = w->base + (__sync_fetch_and_add(hand, 1) % w->part);
	struct gvs_conn_key *sk = bpf_map_lookup_elem(&conn_ring, &slot);
	if (!sk)
		return 1;
	struct gvs_conn_key *k = ring_key_copy(sk);
	if (!k)
		return 1;
	if (!k->proto) {
		if (!w->evict) {
			w->slot = slot;
			return 1;
		}
		*hand = 0;
		return 0;
	}
	struct gvs_conn *c = bpf_map_lookup_elem(&conns, k);
	if (!c) {
		if (w->evict)
			return 0; /* a stale key frees nothing */
		w->slot = slot;
		return 1;
	}
	if (RD(c->expires) <= w->now && RD(c->dest) != GVS_DEST_NONE && !reply_alive(k, c, w->now)) {
		conn_remove(k, c);
		ev_inc(GVS_EV_RECLAIMED);
		w->slot = slot;
		return 1;
	}
	if (w->evict && conn_evictable(c)) {
		if (conn_unanswered(c) && w->skipped < RING_UNANSWERED_SKIP) {
			if (w->cand < 0)
				w->cand = slot;
			w->skipped++;
			return 0;
		}
		__u8 st = RD(c->state);
		conn_remember(k, c);
		/* A handshake's template goes with it if nothing else holds
		 * it; a finished connection's or a UDP flow's stays (its
		 * persistence is the client's). */
		conn_remove_ex(k, c, st == GVS_S_SYN_RECV || st == GVS_S_SYN_SENT ||
				     st == GVS_S_SYNACK || st == GVS_S_NONE || sctp_setup(st));
		ev_inc(GVS_EV_EVICTED);
		w->slot = slot;
		return 1;
	}
	return 0;
}

/* Evict the entry at ring slot s (an unanswered handshake passed over),
 * if it is still there and evictable: the slot, or -1. */
__gvs_subprog __s64 ring_evict_at(__s64 s)
{
	__u32 slot = s;
	struct gvs_conn_key *sk = bpf_map_lookup_elem(&conn_ring, &slot);
	if (!sk)
		return -1;
	struct gvs_conn_key *k = ring_key_copy(sk);
	if (!k || !k->proto)
		return -1;
	struct gvs_conn *c = bpf_map_lookup_elem(&conns, k);
	if (!c || !conn_evictable(c))
		return -1;
	conn_remove_ex(k, c, 1);
	ev_inc(GVS_EV_EVICTED);
	return slot;
}

/* Walk a part of conn_ring from its hand (see maps.h): the slot for a
 * new connection's key, or -1 (none found in the tries, or no ring
 * configured). Making room, a part that has nothing to give up is
 * followed by another CPU's (the table is shared: its entries may all
 * have come in on other CPUs). */
__gvs_subprog __s64 ring_step(__u64 now, int evict)
{
	__u32 zero = 0;
	struct gvs_config *cfg = bpf_map_lookup_elem(&config, &zero);

	if (!cfg || !cfg->ring_part || !cfg->ring_cpus)
		return RING_OFF;
	__u32 cpus = cfg->ring_cpus;
	struct ring_walk w = {
		.now = now,
		.cpu = bpf_get_smp_processor_id() % cpus,
		.part = cfg->ring_part,
		.evict = evict,
		.slot = -1,
	};
	w.base = w.cpu * w.part;
	w.cand = -1;
	bpf_loop(evict ? RING_EVICT_TRIES : RING_FREE_TRIES, ring_visit, &w, 0);
	if (w.slot >= 0)
		return w.slot;
	if (!evict) {
		/* This part is dense (a CPU that takes more than its share
		 * of new flows): index the connection in another's. */
		if (cpus < 2)
			return -1;
		w.cpu = (w.cpu + 1 + bpf_get_prandom_u32() % (cpus - 1)) % cpus;
		w.base = w.cpu * w.part;
		bpf_loop(RING_FREE_TRIES, ring_visit, &w, 0);
		return w.slot;
	}
	if (w.cand < 0 && cpus > 1) {
		w.cpu = (w.cpu + 1 + bpf_get_prandom_u32() % (cpus - 1)) % cpus;
		w.base = w.cpu * w.part;
		bpf_loop(RING_EVICT_TRIES, ring_visit, &w, 0);
		if (w.slot >= 0)
			return w.slot;
	}
	if (w.cand >= 0)
		return ring_evict_at(w.cand);
	return -1;
}

/* How long a one-packet datagram's entry waits for its later fragments
 * (seconds): they come within moments, and the flow's next datagram
 * removes it anyway. */
#define ONEPKT_FRAG_TIMEOUT 2

/* An entry the packet does not continue: a one-packet (-o) datagram's,
 * met by anything but one of its later fragments (each datagram is
 * scheduled on its own). */
static __always_inline int conn_onepkt_done(const struct gvs_conn *c, const struct gvs_pkt *p)
{
	return (RD(c->flags) & GVS_CONN_F_ONEPKT) && p->frag != GVS_FRAG_LATER;
}

/* reopens (conn_reuse_mode, is_new_conn_expected): a bare SYN on a
 * finished, uncontrolled TCP connection starts a new one; with bit 2 of
 * the mode also on a DR/TUN one in FIN_WAIT; an INIT on a CLOSED SCTP
 * association. 0: never. */
static __always_inline int conn_reopens(const struct gvs_conn *c, const struct gvs_pkt *p,
					const struct gvs_config *cfg)
{
	__u32 mode = cfg->conn_reuse_mode;

	/* SCTP: an INIT on a CLOSED association (is_new_conn_expected). */
	if (mode && p->proto == IPPROTO_SCTP)
		return sctp_event(p) == SCTP_EV_INIT && RD(c->state) == GVS_S_SCTP_CLOSED &&
		       !(RD(c->flags) & GVS_CONN_F_CONTROLLED);
	if (!mode || p->proto != IPPROTO_TCP ||
	    (p->tcpflags & (TCPF_SYN | TCPF_ACK | TCPF_RST)) != TCPF_SYN ||
	    (RD(c->flags) & GVS_CONN_F_CONTROLLED))
		return 0;
	__u8 s = RD(c->state);
	return s == GVS_S_TIME_WAIT || s == GVS_S_CLOSE ||
	       ((mode & 2) && s == GVS_S_FIN_WAIT && (RD(c->flags) & GVS_CONN_F_NOOUTPUT));
}

static __always_inline void stats_out(__u32 svc, __u32 dest, __u32 len)
{
	struct gvs_stats *s = bpf_map_lookup_elem(&svc_stats, &svc);

	if (s) {
		s->outpkts += 1;
		s->outbytes += len;
	}
	s = bpf_map_lookup_elem(&dest_stats, &dest);
	if (s) {
		s->outpkts += 1;
		s->outbytes += len;
	}
}

static __always_inline void stats_in(__u32 svc, __u32 dest, __u32 len, int newconn)
{
	struct gvs_stats *s = bpf_map_lookup_elem(&svc_stats, &svc);

	if (s) {
		s->conns += newconn;
		s->inpkts += 1;
		s->inbytes += len;
	}
	s = bpf_map_lookup_elem(&dest_stats, &dest);
	if (s) {
		s->conns += newconn;
		s->inpkts += 1;
		s->inbytes += len;
	}
}

#endif
