package sched

import (
	"maps"
	"net/netip"
	"slices"
	"time"

	"gvs/model"
)

// Constants of ip_vs_lblc.c and ip_vs_lblcr.c.
const (
	lblcTableBits        = 10                 // IP_VS_LBLC_TAB_BITS
	lblcTableSize        = 1 << lblcTableBits // IP_VS_LBLC_TAB_SIZE
	lblcMaxEntries       = lblcTableSize * 16 // tbl->max_size
	lblcEntryTimeout     = 6 * time.Minute    // ENTRY_TIMEOUT
	lblcFullCheckPeriods = 30                 // COUNT_FOR_FULL_EXPIRATION
)

// lblcOverloaded is the lblc/lblcr is_overloaded: a server with more active
// connections than its weight counts as overloaded only while some server
// of the service is below half its weight.
func lblcOverloaded(d *model.Server, list []*model.Server) bool {
	if int64(d.ActiveConns) > int64(d.Weight) {
		for _, o := range list {
			if int64(o.ActiveConns)*2 < int64(o.Weight) {
				return true
			}
		}
	}
	return false
}

// expiry is the collection logic shared by lblc and lblcr
// (ip_vs_lblc_check_expire), run every CollectInterval. Entries live in
// 1024 hash buckets (hash_32 of the address); each run walks the buckets
// from where the last one stopped (the rover). Every 30th run drops every
// entry unused for the expiration time; in between, only when the table
// holds more than its maximum, whole buckets are cleared of entries unused
// for 6 minutes until the excess (times 4/3, at most half the maximum) is
// gone.
type expiry struct {
	expiration time.Duration
	counter    int
	rover      uint32
}

func (e *expiry) collect(now time.Time, addrs []netip.Addr, lastUse func(netip.Addr) time.Time, del func(netip.Addr)) {
	full := e.counter%lblcFullCheckPeriods == 0
	if !full && len(addrs) <= lblcMaxEntries {
		e.counter++
		return
	}
	var buckets [lblcTableSize][]netip.Addr
	for _, a := range addrs {
		b := hash32(foldAddr(a), lblcTableBits)
		buckets[b] = append(buckets[b], a)
	}
	timeout, goal := e.expiration, 0
	if !full {
		timeout = lblcEntryTimeout
		goal = min((len(addrs)-lblcMaxEntries)*4/3, lblcMaxEntries/2)
	}
	j := e.rover
	for range lblcTableSize {
		j = (j + 1) & (lblcTableSize - 1)
		for _, a := range buckets[j] {
			if now.Before(lastUse(a).Add(timeout)) {
				continue
			}
			del(a)
			goal--
		}
		if !full && goal <= 0 {
			break
		}
	}
	e.rover = j
	if full {
		e.counter = 1
	}
}

// lblc is ip_vs_lblc.c: locality-based least connection. Each destination
// address (a cache server's target) sticks to one server, chosen with the
// wlc rule, until that server is unavailable, quiesced or lblc-overloaded.
type lblc struct {
	noUpdate
	entries map[netip.Addr]*lblcEntry
	exp     expiry
}

type lblcEntry struct {
	dest    *model.Server
	lastUse time.Time
}

func newLBLC(expiration time.Duration) *lblc {
	return &lblc{entries: map[netip.Addr]*lblcEntry{}, exp: expiry{expiration: expiration, counter: 1}}
}

func (*lblc) Name() string { return "lblc" }

func (l *lblc) Schedule(svc *Service, p Packet, now time.Time) *model.Server {
	en := l.entries[p.Dst]
	if en != nil {
		en.lastUse = now
		d := en.dest
		if d.Available && d.Weight > 0 && !lblcOverloaded(d, svc.Servers) {
			return d
		}
	}
	d := weightedLeast(svc.Servers, (*model.Server).Overhead)
	if d == nil {
		return nil
	}
	if en != nil && en.dest == d {
		return d
	}
	l.entries[p.Dst] = &lblcEntry{dest: d, lastUse: now}
	return d
}

// Collect expires entries; see expiry.
func (l *lblc) Collect(now time.Time) {
	l.exp.collect(now, slices.Collect(maps.Keys(l.entries)),
		func(a netip.Addr) time.Time { return l.entries[a].lastUse },
		func(a netip.Addr) { delete(l.entries, a) })
}

// lblcr is ip_vs_lblcr.c: like lblc, but each destination address maps to
// a set of servers. The set grows (newest first) when its least loaded
// member is lblc-overloaded, and sheds its most loaded member once it has
// not changed for the expiration time.
type lblcr struct {
	noUpdate
	entries    map[netip.Addr]*lblcrEntry
	expiration time.Duration
	exp        expiry
}

type lblcrEntry struct {
	set     []*model.Server // newest first
	lastMod time.Time
	lastUse time.Time
}

func newLBLCR(expiration time.Duration) *lblcr {
	return &lblcr{entries: map[netip.Addr]*lblcrEntry{}, expiration: expiration,
		exp: expiry{expiration: expiration, counter: 1}}
}

func (*lblcr) Name() string { return "lblcr" }

// setMin is ip_vs_dest_set_min: the member with the least overhead/weight
// among usable, available ones.
func setMin(set []*model.Server) *model.Server {
	i := 0
	for ; i < len(set); i++ {
		d := set[i]
		if !d.Overloaded && d.Weight > 0 && d.Available {
			break
		}
	}
	if i == len(set) {
		return nil
	}
	least := set[i]
	loh := least.Overhead()
	for _, d := range set[i+1:] {
		if d.Overloaded {
			continue
		}
		doh := d.Overhead()
		if loh*int64(d.Weight) > doh*int64(least.Weight) && d.Available {
			least, loh = d, doh
		}
	}
	return least
}

// setMax is ip_vs_dest_set_max: the member with the most overhead/weight
// among those with weight > 0.
func setMax(set []*model.Server) *model.Server {
	i := 0
	for ; i < len(set); i++ {
		if set[i].Weight > 0 {
			break
		}
	}
	if i == len(set) {
		return nil
	}
	most := set[i]
	moh := most.Overhead()
	for _, d := range set[i+1:] {
		doh := d.Overhead()
		if moh*int64(d.Weight) < doh*int64(most.Weight) && d.Weight > 0 {
			most, moh = d, doh
		}
	}
	return most
}

func (e *lblcrEntry) insert(d *model.Server, now time.Time) {
	for _, s := range e.set {
		if s == d {
			return
		}
	}
	e.set = append([]*model.Server{d}, e.set...)
	e.lastMod = now
}

func (e *lblcrEntry) erase(d *model.Server, now time.Time) {
	for i, s := range e.set {
		if s == d {
			e.set = append(e.set[:i:i], e.set[i+1:]...)
			e.lastMod = now
			return
		}
	}
}

func (l *lblcr) Schedule(svc *Service, p Packet, now time.Time) *model.Server {
	en := l.entries[p.Dst]
	if en != nil {
		en.lastUse = now
		d := setMin(en.set)
		if len(en.set) > 1 && now.After(en.lastMod.Add(l.expiration)) {
			if m := setMax(en.set); m != nil {
				en.erase(m, now)
			}
		}
		if d != nil && !lblcOverloaded(d, svc.Servers) {
			return d
		}
		d = weightedLeast(svc.Servers, (*model.Server).Overhead)
		if d == nil {
			return nil
		}
		en.insert(d, now)
		return d
	}
	d := weightedLeast(svc.Servers, (*model.Server).Overhead)
	if d == nil {
		return nil
	}
	l.entries[p.Dst] = &lblcrEntry{set: []*model.Server{d}, lastMod: now, lastUse: now}
	return d
}

// Collect expires entries; see expiry.
func (l *lblcr) Collect(now time.Time) {
	l.exp.collect(now, slices.Collect(maps.Keys(l.entries)),
		func(a netip.Addr) time.Time { return l.entries[a].lastUse },
		func(a netip.Addr) { delete(l.entries, a) })
}
