#!/usr/bin/env python3
"""Independent reference ("oracle") for the non-hashing IPVS schedulers.

It reads the scenario tables of sched/sched_test.go (only the op column),
replays each one against a model of the Linux kernel written from the kernel
sources alone (no Go code of this repository was consulted), and checks the
"want" and "state" columns of every row.

    python3 sched/testdata/oracle/ipvs_sched_oracle.py            # check
    python3 sched/testdata/oracle/ipvs_sched_oracle.py --print    # show rows
    python3 sched/testdata/oracle/ipvs_sched_oracle.py --rewrite  # fill in

Only the Python 3 standard library is used.

Sources read (torvalds/linux and the recent mirror Kingxukai/linux):
  net/netfilter/ipvs/ip_vs_rr.c     ip_vs_rr_schedule, ip_vs_rr_del_dest
  net/netfilter/ipvs/ip_vs_wrr.c    ip_vs_wrr_schedule, ip_vs_wrr_dest_changed,
                                    ip_vs_wrr_gcd_weight, ip_vs_wrr_max_weight
  net/netfilter/ipvs/ip_vs_lc.c     ip_vs_lc_schedule
  net/netfilter/ipvs/ip_vs_wlc.c    ip_vs_wlc_schedule
  net/netfilter/ipvs/ip_vs_sed.c    ip_vs_sed_schedule, ip_vs_sed_dest_overhead
  net/netfilter/ipvs/ip_vs_nq.c     ip_vs_nq_schedule
  net/netfilter/ipvs/ip_vs_fo.c     ip_vs_fo_schedule
  net/netfilter/ipvs/ip_vs_ovf.c    ip_vs_ovf_schedule
  net/netfilter/ipvs/ip_vs_twos.c   ip_vs_twos_schedule (the prandom_u32() %
                                    total_weight form; recent kernels call
                                    get_random_u32_below(total_weight))
  net/netfilter/ipvs/ip_vs_lblc.c   ip_vs_lblc_schedule, is_overloaded,
                                    __ip_vs_lblc_schedule, ip_vs_lblc_new,
                                    ip_vs_lblc_check_expire, _full_check
  net/netfilter/ipvs/ip_vs_lblcr.c  ip_vs_lblcr_schedule, ip_vs_dest_set_min,
                                    ip_vs_dest_set_max, ip_vs_dest_set_insert,
                                    ip_vs_dest_set_erase, ip_vs_lblcr_new,
                                    ip_vs_lblcr_check_expire, _full_check
  net/netfilter/ipvs/ip_vs_ctl.c    __ip_vs_update_dest (list_add_rcu at the
                                    head, add_dest/upd_dest), __ip_vs_unlink_dest
                                    (clears IP_VS_DEST_F_AVAILABLE, list_del_rcu,
                                    then del_dest)
  net/netfilter/ipvs/ip_vs_conn.c   ip_vs_bind_dest, ip_vs_unbind_dest
  include/net/ip_vs.h               ip_vs_dest_conn_overhead = active<<8 + inact
  include/linux/hash.h              hash_32 (lblc/lblcr bucket of an address)
  include/linux/list.h              list_add_rcu, list_del_rcu (entry->next is
                                    kept, entry->prev poisoned)

The destination list is modelled as a real circular doubly linked list with a
head sentinel, so rr's "sched_data = p->next->prev" after list_del_rcu and
wrr's "cl" pointer behave exactly as in C.
"""

import re
import sys

# ---------------------------------------------------------------- list.h


class Node:
    def __init__(self):
        self.next = self
        self.prev = self


POISON = object()


def list_add_rcu(new, head):  # insert right after head
    new.next = head.next
    new.prev = head
    head.next.prev = new
    head.next = new


def list_del_rcu(entry):
    entry.next.prev = entry.prev
    entry.prev.next = entry.next
    entry.prev = POISON  # entry.next stays valid


def entries(head):
    n = head.next
    while n is not head:
        yield n
        n = n.next


# ---------------------------------------------------------------- dests


class Dest(Node):
    def __init__(self, name, weight, uthr=0, lthr=0):
        super().__init__()
        self.name = name
        self.weight = weight
        self.last_weight = weight
        self.active = 0
        self.inact = 0
        self.overload = False
        self.available = True
        self.u_threshold = uthr
        self.l_threshold = lthr

    def overhead(self):  # ip_vs_dest_conn_overhead
        return (self.active << 8) + self.inact

    def totalconns(self):
        return self.active + self.inact


def bind_dest(d, inactive):  # ip_vs_bind_dest, a normal connection
    if not inactive:
        d.active += 1
    else:
        d.inact += 1
    if d.u_threshold != 0 and d.totalconns() >= d.u_threshold:
        d.overload = True


def unbind_dest(d, inactive):  # ip_vs_unbind_dest
    if not inactive:
        d.active -= 1
    else:
        d.inact -= 1
    if d.l_threshold != 0:
        if d.totalconns() < d.l_threshold:
            d.overload = False
    elif d.u_threshold != 0:
        if d.totalconns() * 4 < d.u_threshold * 3:
            d.overload = False
    else:
        d.overload = False


def usable(d):
    return not d.overload and d.weight > 0


# ---------------------------------------------------------------- schedulers


class Sched:
    def __init__(self, svc, opts):
        self.svc = svc

    def add_dest(self, d):
        pass

    def del_dest(self, d):
        pass

    def upd_dest(self, d):
        pass


class RR(Sched):
    def __init__(self, svc, opts):
        self.svc = svc
        self.sched_data = svc.head  # ip_vs_rr_init_svc

    def del_dest(self, d):
        p = self.sched_data
        if p is d:
            self.sched_data = p.next.prev

    def schedule(self, pkt):
        head = self.svc.head
        p = self.sched_data
        last = dest = p
        pas = 0
        while True:
            dest = dest.next  # list_for_each_entry_continue_rcu
            while dest is not head:
                if not dest.overload and dest.weight > 0:
                    self.sched_data = dest
                    return dest
                if dest is last:
                    return None
                dest = dest.next
            pas += 1
            if not (pas < 2 and p is not head):
                return None


def gcd(a, b):
    while b:
        a, b = b, a % b
    return a


class WRR(Sched):
    def __init__(self, svc, opts):
        self.svc = svc
        self.cl = svc.head
        self.di = self.gcd_weight()
        self.mw = self.max_weight() - (self.di - 1)
        self.cw = self.mw

    def gcd_weight(self):
        g = 0
        for d in entries(self.svc.head):
            if d.weight > 0:
                g = gcd(d.weight, g) if g > 0 else d.weight
        return g if g else 1

    def max_weight(self):
        w = 0
        for d in entries(self.svc.head):
            if d.weight > w:
                w = d.weight
        return w

    def dest_changed(self, _d):
        self.cl = self.svc.head
        self.di = self.gcd_weight()
        self.mw = self.max_weight() - (self.di - 1)
        if self.cw > self.mw or not self.cw:
            self.cw = self.mw
        elif self.di > 1:
            self.cw = (int(self.cw / self.di)) * self.di + 1

    add_dest = del_dest = upd_dest = dest_changed

    def schedule(self, pkt):
        head = self.svc.head
        dest = self.cl
        stop = None
        last_pass = restarted = False
        if self.mw == 0:
            return None
        last = dest
        while True:
            dest = dest.next
            while dest is not head:
                if not dest.overload and dest.weight >= self.cw:
                    self.cl = dest
                    return dest
                if dest is stop:
                    self.cl = dest
                    return None
                dest = dest.next
            # dest is the head here
            self.cw -= self.di
            if self.cw <= 0:
                self.cw = self.mw
                if last_pass or last is head:
                    self.cl = dest
                    return None
                restarted = True
            last_pass = self.cw <= self.di
            if last_pass and restarted and last is not head:
                stop = last


class LC(Sched):
    def schedule(self, pkt):
        least, loh = None, 0
        for d in entries(self.svc.head):
            if d.overload or d.weight == 0:
                continue
            doh = d.overhead()
            if least is None or doh < loh:
                least, loh = d, doh
        return least


def wlc_walk(head, overhead):
    """The two-stage walk of wlc, sed, __ip_vs_lblc(r)_schedule."""
    it = entries(head)
    least = None
    for d in it:
        if not d.overload and d.weight > 0:
            least = d
            loh = overhead(d)
            break
    if least is None:
        return None
    for d in it:  # list_for_each_entry_continue
        if d.overload:
            continue
        doh = overhead(d)
        if loh * d.weight > doh * least.weight:
            least, loh = d, doh
    return least


class WLC(Sched):
    def schedule(self, pkt):
        return wlc_walk(self.svc.head, Dest.overhead)


def sed_overhead(d):
    return d.active + 1


class SED(Sched):
    def schedule(self, pkt):
        return wlc_walk(self.svc.head, sed_overhead)


class NQ(Sched):
    def schedule(self, pkt):
        least, loh = None, 0
        for d in entries(self.svc.head):
            if d.overload or not d.weight:
                continue
            doh = sed_overhead(d)
            if d.active == 0:
                return d
            if least is None or loh * d.weight > doh * least.weight:
                least, loh = d, doh
        return least


class FO(Sched):
    def schedule(self, pkt):
        hweight, hw = None, 0
        for d in entries(self.svc.head):
            if not d.overload and d.weight > hw:
                hweight, hw = d, d.weight
        return hweight


class OVF(Sched):
    def schedule(self, pkt):
        h, hw = None, 0
        for d in entries(self.svc.head):
            w = d.weight
            if d.overload or d.active > w or w == 0:
                continue
            if h is None or w > hw:
                h, hw = d, w
        return h


def s32(x):
    """C int arithmetic: the kernel is built with -fno-strict-overflow, so
    signed overflow wraps around (two's complement)."""
    x &= 0xFFFFFFFF
    return x - (1 << 32) if x >= 1 << 31 else x


class TWOS(Sched):
    # All the locals of ip_vs_twos_schedule are int: sums and products wrap.
    def schedule(self, pkt):
        choice1 = choice2 = None
        weight1 = weight2 = -1
        overhead1 = overhead2 = 0
        total = 0
        for d in entries(self.svc.head):
            if not d.overload and d.weight > 0:
                total = s32(total + d.weight)
                choice1 = d
        if choice1 is None:
            return None
        total = s32(total + 1)
        r = pkt["rand"]
        # prandom_u32() % total_weight: u32 % int converts the int to
        # unsigned; the result is stored in an int.
        rweight1 = s32((r.pop(0) & 0xFFFFFFFF) % (total & 0xFFFFFFFF))
        rweight2 = s32((r.pop(0) & 0xFFFFFFFF) % (total & 0xFFFFFFFF))
        for d in entries(self.svc.head):
            if d.overload:
                continue
            w = d.weight
            if w <= 0:
                continue
            rweight1 = s32(rweight1 - w)
            rweight2 = s32(rweight2 - w)
            if rweight1 <= 0 and weight1 == -1:
                choice1, weight1, overhead1 = d, w, s32(d.overhead())
            if rweight2 <= 0 and weight2 == -1:
                choice2, weight2, overhead2 = d, w, s32(d.overhead())
            if weight1 != -1 and weight2 != -1:
                break
        if choice2 is not None and s32(weight2 * overhead1) > s32(weight1 * overhead2):
            choice1 = choice2
        return choice1


# ------------------------------------------------------------ lblc / lblcr

TAB_BITS = 10
TAB_SIZE = 1 << TAB_BITS
TAB_MASK = TAB_SIZE - 1
MAX_SIZE = TAB_SIZE * 16
ENTRY_TIMEOUT = 6 * 60
COUNT_FOR_FULL_EXPIRATION = 30
DEFAULT_EXPIRATION = 24 * 60 * 60


def hash_32(val, bits):
    return ((val * 0x61C88647) & 0xFFFFFFFF) >> (32 - bits)


def addr_hash(addr):  # IPv4 only here: hash_32(ntohl(addr), 10)
    a, b, c, d = (int(x) for x in addr.split("."))
    return hash_32((a << 24) | (b << 16) | (c << 8) | d, TAB_BITS)


def is_overloaded(dest, head):
    if dest.active > dest.weight:
        for d in entries(head):
            if d.active * 2 < d.weight:
                return True
    return False


class Table:
    """Hash table + ip_vs_lblc(r)_check_expire, shared shape."""

    def __init__(self, expiration):
        self.bucket = [[] for _ in range(TAB_SIZE)]  # index 0 = list head
        self.rover = 0
        self.counter = 1
        self.expiration = expiration

    def get(self, addr):
        for en in self.bucket[addr_hash(addr)]:
            if en.addr == addr:
                return en
        return None

    def hash(self, en):  # hlist_add_head_rcu
        self.bucket[addr_hash(en.addr)].insert(0, en)

    def delete(self, en):
        self.bucket[addr_hash(en.addr)].remove(en)

    def count(self):
        return sum(len(b) for b in self.bucket)

    def full_check(self, now):
        j = self.rover
        for _ in range(TAB_SIZE):
            j = (j + 1) & TAB_MASK
            for en in list(self.bucket[j]):
                if now < en.lastuse + self.expiration:  # time_before
                    continue
                self.bucket[j].remove(en)
        self.rover = j

    def check_expire(self, now):
        if self.counter % COUNT_FOR_FULL_EXPIRATION == 0:
            self.full_check(now)
            self.counter = 1
            return
        if self.count() <= MAX_SIZE:
            self.counter += 1
            return
        goal = (self.count() - MAX_SIZE) * 4 // 3
        if goal > MAX_SIZE // 2:
            goal = MAX_SIZE // 2
        j = self.rover
        for _ in range(TAB_SIZE):
            j = (j + 1) & TAB_MASK
            for en in list(self.bucket[j]):
                if now < en.lastuse + ENTRY_TIMEOUT:
                    continue
                self.bucket[j].remove(en)
                goal -= 1
            if goal <= 0:
                break
        self.rover = j


class LBLCEntry:
    def __init__(self, addr, dest, now):
        self.addr, self.dest, self.lastuse = addr, dest, now


class LBLC(Sched):
    def __init__(self, svc, opts):
        self.svc = svc
        self.tbl = Table(opts.get("exp", DEFAULT_EXPIRATION))

    def schedule(self, pkt):
        head, now, daddr = self.svc.head, pkt["now"], pkt["dst"]
        en = self.tbl.get(daddr)
        if en:
            en.lastuse = now
            dest = en.dest
            if dest.available and dest.weight > 0 and not is_overloaded(dest, head):
                return dest
        dest = wlc_walk(head, Dest.overhead)
        if dest is None:
            return None
        # ip_vs_lblc_new
        en = self.tbl.get(daddr)
        if en:
            if en.dest is dest:
                return dest
            self.tbl.delete(en)
        self.tbl.hash(LBLCEntry(daddr, dest, now))
        return dest

    def collect(self, now):
        self.tbl.check_expire(now)


class LBLCREntry:
    def __init__(self, addr, now):
        self.addr, self.lastuse = addr, now
        self.set = []  # newest first (list_add_rcu)
        self.lastmod = now


def set_insert(en, dest, check, now):
    if check and any(d is dest for d in en.set):
        return
    en.set.insert(0, dest)
    en.lastmod = now


def set_erase(en, dest, now):
    for i, d in enumerate(en.set):
        if d is dest:
            del en.set[i]
            en.lastmod = now
            return


def set_min(en):
    it = iter(en.set)
    least = None
    for d in it:
        if d.overload:
            continue
        if d.weight > 0 and d.available:
            least, loh = d, d.overhead()
            break
    if least is None:
        return None
    for d in it:
        if d.overload:
            continue
        doh = d.overhead()
        if loh * d.weight > doh * least.weight and d.available:
            least, loh = d, doh
    return least


def set_max(en):
    it = iter(en.set)
    most = None
    for d in it:
        if d.weight > 0:
            most, moh = d, d.overhead()
            break
    if most is None:
        return None
    for d in it:
        doh = d.overhead()
        if moh * d.weight < doh * most.weight and d.weight > 0:
            most, moh = d, doh
    return most


class LBLCR(Sched):
    def __init__(self, svc, opts):
        self.svc = svc
        self.tbl = Table(opts.get("exp", DEFAULT_EXPIRATION))

    def schedule(self, pkt):
        head, now, daddr = self.svc.head, pkt["now"], pkt["dst"]
        en = self.tbl.get(daddr)
        if en:
            en.lastuse = now
            dest = set_min(en)
            if len(en.set) > 1 and now > en.lastmod + self.tbl.expiration:
                m = set_max(en)
                if m:
                    set_erase(en, m, now)
            if dest and not is_overloaded(dest, head):
                return dest
            dest = wlc_walk(head, Dest.overhead)
            if dest is None:
                return None
            set_insert(en, dest, True, now)
            return dest
        dest = wlc_walk(head, Dest.overhead)
        if dest is None:
            return None
        en = LBLCREntry(daddr, now)
        set_insert(en, dest, False, now)
        self.tbl.hash(en)
        return dest

    def collect(self, now):
        self.tbl.check_expire(now)


SCHEDS = {"rr": RR, "wrr": WRR, "lc": LC, "wlc": WLC, "sed": SED, "nq": NQ,
          "fo": FO, "ovf": OVF, "twos": TWOS, "lblc": LBLC, "lblcr": LBLCR}

# ---------------------------------------------------------------- the DSL


class Svc:
    def __init__(self):
        self.head = Node()


def parse_dur(s):
    m = re.fullmatch(r"(\d+)(s|m|h)", s)
    return int(m.group(1)) * {"s": 1, "m": 60, "h": 3600}[m.group(2)]


def parse_dest(spec):
    """name/weight[/uN[/lN]]"""
    parts = spec.split("/")
    name, w = parts[0], int(parts[1])
    u = l = 0
    for p in parts[2:]:
        if p[0] == "u":
            u = int(p[1:])
        elif p[0] == "l":
            l = int(p[1:])
    return name, w, u, l


def state(svc):
    out = []
    for d in entries(svc.head):
        s = "%s/%d=%d" % (d.name, d.weight, d.active)
        if d.inact:
            s += "+%d" % d.inact
        if d.overload:
            s += "!"
        out.append(s)
    return " ".join(out)


DEFAULT_DST = "10.9.9.9"


def run(table):
    svc = Svc()
    byname = {}
    specs = table["servers"].split()
    # servers are listed head first: add them in reverse (the first listed
    # was added last, list_add_rcu puts it at the head)
    for spec in reversed(specs):
        name, w, u, l = parse_dest(spec)
        d = Dest(name, w, u, l)
        byname[name] = d
        list_add_rcu(d, svc.head)
    opts = {}
    for o in table["opts"].split():
        k, v = o.split("=")
        opts[k] = parse_dur(v)
    sch = SCHEDS[table["sched"]](svc, opts)
    now = 1000  # any start time; only differences matter
    results = []
    for op in table["ops"]:
        words = op.split()
        verb, args = words[0], words[1:]
        want = ""
        if verb == "conn":
            pkt = {"dst": DEFAULT_DST, "now": now, "rand": []}
            inactive = False
            for a in args:
                if a.startswith("dst="):
                    pkt["dst"] = a[4:]
                elif a.startswith("rand="):
                    pkt["rand"] = [int(x) for x in a[5:].split(",")]
                elif a == "inact":
                    inactive = True
                else:
                    raise ValueError(op)
            d = sch.schedule(pkt)
            if d is None:
                want = "-"
            else:
                want = d.name
                bind_dest(d, inactive)
        elif verb == "add":
            name, w, u, l = parse_dest(args[0])
            d = byname.get(name)
            if d is not None:  # re-added from the trash: same dest
                d.weight = w
                d.last_weight = w
                d.available = True
                if u == 0 or u > d.u_threshold:
                    d.overload = False
                d.u_threshold, d.l_threshold = u, l
            else:
                d = Dest(name, w, u, l)
                byname[name] = d
            list_add_rcu(d, svc.head)
            sch.add_dest(d)
        elif verb == "del":
            d = byname[args[0]]
            d.available = False
            list_del_rcu(d)
            sch.del_dest(d)
        elif verb == "edit":
            name, w, u, l = parse_dest(args[0])
            d = byname[name]
            d.weight = w
            if w != 0:
                d.last_weight = w
            if u == 0 or u > d.u_threshold:
                d.overload = False
            d.u_threshold, d.l_threshold = u, l
            sch.upd_dest(d)
        elif verb in ("over", "under"):
            for n in args[0].split(","):
                byname[n].overload = verb == "over"
        elif verb == "end":
            unbind_dest(byname[args[0]], len(args) > 1 and args[1] == "inact")
        elif verb == "idle":  # active -> inactive (e.g. TCP FIN)
            d = byname[args[0]]
            d.active -= 1
            d.inact += 1
        elif verb == "busy":
            d = byname[args[0]]
            d.inact -= 1
            d.active += 1
        elif verb == "load":  # set the counts directly: load n A[+I]
            d = byname[args[0]]
            a, _, i = args[1].partition("+")
            d.active, d.inact = int(a), int(i or 0)
        elif verb == "advance":
            now += parse_dur(args[0])
        elif verb == "collect":
            n = int(args[0][1:]) if args else 1
            for _ in range(n):
                now += 60
                sch.collect(now)
        elif verb == "entries":
            want = str(sch.tbl.count())
        elif verb == "set":
            en = sch.tbl.get(args[0][4:])
            want = ",".join(d.name for d in en.set) if en else "-"
        elif verb == "fill":
            # n new connections (not bound) to distinct destination
            # addresses 10.200.0.0 + i
            n = int(args[0])
            for i in range(n):
                dst = "10.%d.%d.%d" % (200 + (i >> 16), (i >> 8) & 255, i & 255)
                sch.schedule({"dst": dst, "now": now, "rand": []})
        else:
            raise ValueError("unknown op " + op)
        results.append((want, state(svc)))
    return results


# ------------------------------------------------------ Go file handling

ROW = re.compile(r'^(\s*)\{"([^"]*)", "([^"]*)", "([^"]*)"\},(.*)$')


def parse_go(lines):
    tables, cur = [], None
    for i, line in enumerate(lines):
        m = re.search(r'\bsched:\s*"(\w+)"', line)
        if m:
            cur = {"sched": m.group(1), "servers": "", "opts": "", "ops": [],
                   "rows": [], "line": i + 1}
            tables.append(cur)
            continue
        if cur is None:
            continue
        m = re.search(r'\bservers:\s*"([^"]*)"', line)
        if m:
            cur["servers"] = m.group(1)
            continue
        m = re.search(r'\bopts:\s*"([^"]*)"', line)
        if m:
            cur["opts"] = m.group(1)
            continue
        m = ROW.match(line)
        if m:
            cur["ops"].append(m.group(2))
            cur["rows"].append((i, m))
    return tables


def main():
    path = "sched/sched_test.go"
    mode = "check"
    for a in sys.argv[1:]:
        if a in ("--print", "--rewrite"):
            mode = a[2:]
        else:
            path = a
    with open(path) as f:
        lines = f.read().split("\n")
    bad = nrows = 0
    for t in parse_go(lines):
        nrows += len(t["rows"])
        res = run(t)
        if mode == "print":
            print("== %s (line %d) servers %r" % (t["sched"], t["line"], t["servers"]))
        for (i, m), (want, st) in zip(t["rows"], res):
            if mode == "print":
                print('%-34s %-4s %s' % (m.group(2), want, st))
            elif mode == "rewrite":
                lines[i] = '%s{"%s", "%s", "%s"},%s' % (m.group(1), m.group(2), want, st, m.group(5))
            elif (m.group(3), m.group(4)) != (want, st):
                bad += 1
                print("%s:%d: %s %r: kernel gives %r %r, table has %r %r" % (
                    path, i + 1, t["sched"], m.group(2), want, st, m.group(3), m.group(4)))
    if mode == "rewrite":
        with open(path, "w") as f:
            f.write("\n".join(lines))
    if mode == "check":
        print("%d rows checked, %d mismatches" % (nrows, bad))
        sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
