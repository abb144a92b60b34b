/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Connection synchronization (gvs/ipvssync), the data path's part.
 *
 * Master: while config.sync_master is set, each client packet of a
 * connection counts in sync_pkts (a connection's first packet counts
 * always; the others only while a master runs: the kernel's in_pkts
 * counts always), and a connection due to be sent, as
 * the kernel's ip_vs_sync_conn_needed decides with sync_refresh_period 0,
 * is written to sync_events:
 *   - TCP only in ESTABLISHED, FIN_WAIT, CLOSE_WAIT, TIME_WAIT, CLOSE:
 *     at once when the state is not the one last sent (sync_state) and
 *     not ESTABLISHED; otherwise
 *   - when sync_pkts % sync_period == sync_threshold (sync_period 0:
 *     once, at sync_threshold).
 * SCTP associations are not sent (yet).
 * gvsd sends the template of a controlled connection with it, and
 * refreshes long-lived entries from the table itself.
 *
 * Backup: gvsd installs what it learns through gvs_sync_install
 * (BPF_PROG_RUN), which follows the ownership rules of conn.h: the
 * connection is indexed in conn_ring, bound to its server's counts,
 * given its reply entry (NAT/FULLNAT) and its hold on its template.
 */
#ifndef GVS_SYNC_H
#define GVS_SYNC_H

#include <linux/bpf.h>
#include <linux/in.h>
#include <bpf/bpf_helpers.h>
#include "gvs.h"
#include "maps.h"
#include "conn.h"

/* Fill a record (a call of its own: its prototype puts struct
 * gvs_sync_rec in the object's BTF for the Go side). */
__gvs_subprog void sync_fill(struct gvs_sync_rec *r, const struct gvs_conn_key *key,
			     const struct gvs_conn *c)
{
	__builtin_memcpy(&r->key, key, sizeof(r->key));
	__builtin_memcpy(&r->conn, c, sizeof(r->conn));
}

/* A client packet of connection c while a sync master runs. */
__gvs_subprog void sync_note(const struct gvs_conn_key *key, struct gvs_conn *c,
			     const struct gvs_config *cfg)
{
	__u32 pkts = (__u16)(RD(c->sync_pkts) + 1);
	__u32 period = cfg->sync_period, thr = cfg->sync_threshold;
	__u8 s = RD(c->state);
	int due;

	c->sync_pkts = pkts; /* racy across CPUs: a count, as in_pkts */
	if (period)
		due = pkts % period == thr;
	else
		due = pkts == thr;
	if (key->proto == IPPROTO_SCTP)
		return; /* not synced yet (docs/sctp.md) */
	if (key->proto == IPPROTO_TCP) {
		if (s != GVS_S_ESTABLISHED && s != GVS_S_FIN_WAIT && s != GVS_S_CLOSE &&
		    s != GVS_S_CLOSE_WAIT && s != GVS_S_TIME_WAIT)
			return;
		if (s != RD(c->sync_state) && s != GVS_S_ESTABLISHED)
			due = 1;
	}
	if (!due)
		return;
	c->sync_state = s;
	struct gvs_sync_rec *r = bpf_ringbuf_reserve(&sync_events, sizeof(*r), 0);
	if (!r) {
		ev_inc(GVS_EV_SYNC_LOST);
		return;
	}
	sync_fill(r, key, c);
	bpf_ringbuf_submit(r, 0);
}

/* gvs_sync_install's new entry and its reply entry, built off the
 * stack. */
struct sync_work {
	struct gvs_conn c;
	struct gvs_reply r;
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct sync_work);
} sync_scratch SEC(".maps");

/* gvs_sync_install's results. */
#define SYNC_NEW      0
#define SYNC_UPDATED  1
#define SYNC_STALE    2 /* an inactive entry for a connection replaced since */
#define SYNC_FULL     (-1)
#define SYNC_BUSY     (-2) /* the data path is creating that entry */
#define SYNC_NODEST   (-3)

static __always_inline int sync_template(const struct gvs_sync_in *a, __u64 now)
{
	struct gvs_conn_key k = a->key;
	struct gvs_template *t = bpf_map_lookup_elem(&templates, &k);
	__u64 exp = now + (__u64)a->timeout * NS_PER_SEC;

	if (t) {
		/* ip_vs_proc_conn on a template it has: the timeout. */
		if (RD(t->dest) == GVS_DEST_NONE)
			return SYNC_BUSY;
		t->timeout = a->timeout;
		t->expires = exp;
		return SYNC_UPDATED;
	}
	struct gvs_dest *d = dest_get(a->dest);
	if (!d)
		return SYNC_NODEST;
	struct gvs_template nt = {
		.expires = exp,
		.dest = a->dest,
		.svc = a->svc,
		.timeout = a->timeout,
	};
	long err = bpf_map_update_elem(&templates, &k, &nt, BPF_NOEXIST);
	if (err == -17 /* EEXIST */)
		return SYNC_BUSY;
	if (err)
		return SYNC_FULL;
	dest_bind(d, BIND_TEMPLATE);
	return SYNC_NEW;
}

/* An existing connection: state, the inactive flag (moving the count)
 * and the timeout, as ip_vs_proc_conn updates one. */
static __always_inline int sync_update(const struct gvs_sync_in *a, struct gvs_conn *c, __u64 now)
{
	struct gvs_dest *d = dest_get(RD(c->dest));
	__u32 *word = (__u32 *)&c->state;
	union conn_sf o, n;

	for (int tries = 0; tries < 4; tries++) {
		o.w = RD(*word);
		if (o.flags & GVS_CONN_F_DYING)
			break; /* being removed (conn_remove_ex) */
		n.w = o.w;
		n.state = a->state;
		n.flags = (o.flags & ~GVS_CONN_F_INACTIVE) | (a->flags & GVS_CONN_F_INACTIVE);
		if (n.w == o.w || __sync_val_compare_and_swap(word, o.w, n.w) == o.w) {
			if (d && ((o.flags ^ n.flags) & GVS_CONN_F_INACTIVE))
				dest_set_active(d, !(n.flags & GVS_CONN_F_INACTIVE));
			break;
		}
	}
	c->sync_state = a->state;
	c->timeout = a->timeout;
	c->expires = now + (__u64)a->timeout * NS_PER_SEC;
	return SYNC_UPDATED;
}

/*
 * Install or update an entry learnt from a sync master (ip_vs_proc_conn).
 * Run with BPF_PROG_RUN; the context is a struct gvs_sync_in. Returns
 * SYNC_*.
 */
SEC("syscall")
int gvs_sync_install(struct gvs_sync_in *ctx)
{
	struct gvs_sync_in a = *ctx;
	__u64 now = a.now;

	if (a.tmpl)
		return sync_template(&a, now);

	struct gvs_conn_key k = a.key;
	struct gvs_conn *c = bpf_map_lookup_elem(&conns, &k);
	if (c && RD(c->dest) == GVS_DEST_NONE)
		return SYNC_BUSY;
	if (c && RD(c->expires) <= now && !reply_alive(&k, c, now)) {
		conn_remove(&k, c);
		c = 0;
	}
	if (c && RD(c->dest) != a.dest) {
		/* Another server: a newer connection replaced it on the
		 * master, unless this is the old one's last word. */
		if (a.flags & GVS_CONN_F_INACTIVE)
			return SYNC_STALE;
		conn_remove(&k, c);
		c = 0;
	}
	if (c)
		return sync_update(&a, c, now);

	struct gvs_dest *d = dest_get(a.dest);
	if (!d)
		return SYNC_NODEST;
	/* The new entry is built in sync_scratch, not on the stack: the
	 * deepest chain from here (ring_step's eviction walk) is at 512. */
	__u32 zero = 0;
	struct sync_work *sw = bpf_map_lookup_elem(&sync_scratch, &zero);
	if (!sw)
		return SYNC_FULL;
	struct gvs_conn *ncp = &sw->c;
	__builtin_memset(ncp, 0, sizeof(*ncp));
	ncp->expires = now + (__u64)a.timeout * NS_PER_SEC;
	ncp->dest = a.dest;
	ncp->svc = a.svc;
	ncp->state = a.state;
	ncp->flags = (a.flags & (GVS_CONN_F_INACTIVE | GVS_CONN_F_NOOUTPUT)) | GVS_CONN_F_SYNCED;
	ncp->method = a.method;
	ncp->sync_state = a.state;
	ncp->timeout = a.timeout;
	ncp->lport = a.lport;
	ncp->rport = a.rport;
	__builtin_memcpy(ncp->laddr, a.laddr, sizeof(ncp->laddr));
	int nat = a.method == GVS_FWD_MASQ || a.method == GVS_FWD_FULLNAT;
	if (nat)
		ncp->flags |= GVS_CONN_F_NAT;

	/* Its hold on its template, if the master sent that first. */
	int exact = 0;
	__u32 mark;
	struct gvs_template *t = 0;
	struct gvs_conn_key tk;
	struct gvs_svc *s = svc_by_id(&k, a.svc, &exact, &mark);
	if (s && (s->flags & GVS_SVC_F_PERSISTENT)) {
		if (k.af == 6)
			tmpl_key6(&tk, &k, s->netmask, exact, mark);
		else
			tmpl_key(&tk, &k, s->netmask, exact, mark);
		t = bpf_map_lookup_elem(&templates, &tk);
		if (t && RD(t->dest) != GVS_DEST_NONE)
			ncp->flags |= GVS_CONN_F_CONTROLLED;
		else
			t = 0;
	}

	__s64 slot = ring_step(now, 0);
	long err = bpf_map_update_elem(&conns, &k, ncp, BPF_NOEXIST);
	if (err && err != -17) {
		slot = ring_step(now, 1);
		if (slot >= 0)
			err = bpf_map_update_elem(&conns, &k, ncp, BPF_NOEXIST);
	}
	/* The slot taken is written even when the data path made the
	 * entry first (as conn_reserve does: an unwritten slot would be a
	 * hole that ends the eviction walk there). */
	if (slot >= 0 && (!err || err == -17)) {
		__u32 sl = slot;
		struct gvs_conn_key *rk = bpf_map_lookup_elem(&conn_ring, &sl);
		if (rk)
			*rk = k;
	}
	if (err)
		return err == -17 ? SYNC_BUSY : SYNC_FULL;
	dest_bind(d, (ncp->flags & GVS_CONN_F_INACTIVE) ? BIND_INACTIVE : BIND_ACTIVE);
	if (nat) {
		struct gvs_conn_key rk;
		if (d->af == 6) /* the server's family: NAT64's replies are IPv4 */
			reply_key6(&rk, d->addr, a.laddr, a.rport, a.lport, k.proto);
		else
			reply_key(&rk, d->addr[0], a.laddr[0], a.rport, a.lport, k.proto);
		reply_init(&sw->r, &k);
		/* FULLNAT: the port stays another connection's if taken. */
		bpf_map_update_elem(&rconns, &rk, &sw->r, a.method == GVS_FWD_FULLNAT ? BPF_NOEXIST : BPF_ANY);
	}
	if (t)
		__sync_fetch_and_add(&t->n_control, 1);
	return SYNC_NEW;
}

#endif
