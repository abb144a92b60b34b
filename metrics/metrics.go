// Package metrics exports gvsd's state to Prometheus and serves the live
// status page. Nothing is counted twice: a scrape reads the engine's
// counters (the running ones, which ipvsadm -Z does not reset), the
// health manager, VRRP and the sync daemons, and turns them into const
// metrics (prometheus.Collector), as node_exporter's collectors do.
//
// Labels: services have proto ("tcp", "udp", "sctp", or "fwm" for a
// firewall-mark service), vip (the address, or the mark in decimal for
// "fwm") and vport (0 for "fwm"); servers add rip and rport.
package metrics

import (
	"net/netip"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"gvs/api"
	"gvs/control"
	"gvs/engine"
	"gvs/health"
	"gvs/ipvssync"
	"gvs/model"
	"gvs/stats"
	"gvs/vrrp"
)

// Engine is what the metrics read from the data plane (engine.Engine has
// it). An engine that is also an engine.RawStats is read through it (so
// -Z changes no metric), an engine.ConnStater gives gvs_connections and
// gvs_connection_table_capacity, an engine.Eventer
// gvs_datapath_events_total.
type Engine interface {
	Name() string
	Services() []api.Service
	Totals() (stats.Counters, stats.Rates)
}

// Health is the health manager's side (health.Manager has it).
type Health interface {
	Status() api.Health
	Metrics() health.Metrics
}

// SyncStats gives the sync daemons' counters: one Stats per state
// ("master", "backup") that has run, each monotonic (counts of stopped
// daemons kept).
type SyncStats interface {
	SyncStats() []ipvssync.Stats
}

// Sources are what gvsd's metrics and status page read. Every field but
// Engine may be nil.
type Sources struct {
	Engine Engine
	// Rules gives the configured rules (control.Core.Rules): the
	// configured weights.
	Rules func() *control.Rules
	// Daemons gives the configured sync daemons (control.Core.Daemons).
	Daemons func() []model.SyncDaemon
	Health  Health
	VRRP    func() []vrrp.Status
	// BGP gives the BGP speaker's sessions and announcements.
	BGP  func() api.BGP
	Sync SyncStats
	Info api.Info
}

var (
	svcLabels  = []string{"proto", "vip", "vport"}
	destLabels = []string{"proto", "vip", "vport", "rip", "rport"}
)

func desc(name, help string, labels []string) *prometheus.Desc {
	return prometheus.NewDesc(name, help, labels, nil)
}

// counterDescs are the five IPVS counters of a service or a server.
type counterDescs struct{ conns, inPkts, outPkts, inBytes, outBytes *prometheus.Desc }

func newCounterDescs(prefix, of string, labels []string) counterDescs {
	return counterDescs{
		conns:    desc(prefix+"connections_total", "Connections scheduled to the "+of+" (ipvsadm's Conns, not reset by -Z).", labels),
		inPkts:   desc(prefix+"packets_in_total", "Packets from clients to the "+of+" (ipvsadm's InPkts, not reset by -Z).", labels),
		outPkts:  desc(prefix+"packets_out_total", "Packets from the "+of+" to clients (ipvsadm's OutPkts, not reset by -Z).", labels),
		inBytes:  desc(prefix+"bytes_in_total", "Bytes from clients to the "+of+", IP level (ipvsadm's InBytes, not reset by -Z).", labels),
		outBytes: desc(prefix+"bytes_out_total", "Bytes from the "+of+" to clients, IP level (ipvsadm's OutBytes, not reset by -Z).", labels),
	}
}

func (d counterDescs) describe(ch chan<- *prometheus.Desc) {
	ch <- d.conns
	ch <- d.inPkts
	ch <- d.outPkts
	ch <- d.inBytes
	ch <- d.outBytes
}

func (d counterDescs) collect(b *batch, c stats.Counters, lp []*dto.LabelPair) {
	b.add(d.conns, true, float64(c.Conns), lp)
	b.add(d.inPkts, true, float64(c.InPkts), lp)
	b.add(d.outPkts, true, float64(c.OutPkts), lp)
	b.add(d.inBytes, true, float64(c.InBytes), lp)
	b.add(d.outBytes, true, float64(c.OutBytes), lp)
}

// Collector is the prometheus.Collector of gvsd's metrics.
type Collector struct {
	src Sources

	// mu serialises scrapes; labels holds the label pairs of every
	// service and server seen at the last scrape, shared by their series
	// (read-only once made).
	mu     sync.Mutex
	labels map[destKey][]*dto.LabelPair

	svc, dest                             counterDescs
	active, inactive, weight, cfgWeight   *prometheus.Desc
	up, quorum, conns, capacity, events   *prometheus.Desc
	vrrpState, syncMsgs, syncConns        *prometheus.Desc
	bgpSession, bgpUpdates, bgpAnnounced  *prometheus.Desc
	checkDuration, transitions, buildInfo *prometheus.Desc
}

// NewCollector returns the collector of src.
func NewCollector(src Sources) *Collector {
	return &Collector{
		src:          src,
		svc:          newCounterDescs("gvs_service_", "virtual service", svcLabels),
		dest:         newCounterDescs("gvs_server_", "real server", destLabels),
		active:       desc("gvs_server_active_connections", "Active connections of the real server (ipvsadm's ActiveConn).", destLabels),
		inactive:     desc("gvs_server_inactive_connections", "Inactive connections of the real server (ipvsadm's InActConn).", destLabels),
		weight:       desc("gvs_server_weight", "Effective weight of the real server: what the data path schedules with (health checks applied).", destLabels),
		cfgWeight:    desc("gvs_server_configured_weight", "Configured weight of the real server (gvsadm -S), before health checks.", destLabels),
		up:           desc("gvs_server_up", "1 if the real server's health checks pass, 0 if not; absent for a server without health checks.", destLabels),
		quorum:       desc("gvs_service_quorum_up", "1 if the health-checked service has its quorum (keepalived's quorum), 0 if not; absent for a service without health checks.", svcLabels),
		conns:        desc("gvs_connections", "Entries of the connection table by state as ipvsadm -Lc names it; persistence templates as state TEMPLATE.", []string{"state"}),
		capacity:     desc("gvs_connection_table_capacity", "Most connections the table holds (xdp engine: --max-conns); absent when unbounded (proxy engine).", nil),
		events:       desc("gvs_datapath_events_total", "Data-path events by name: drops and passes and their reasons (GET /v1/events).", []string{"event"}),
		vrrpState:    desc("gvs_vrrp_state", "State of the VRRP instance: 0 INIT, 1 BACKUP, 2 MASTER, 3 FAULT, 4 STOP (keepalived's numbering).", []string{"instance"}),
		bgpSession:   desc("gvs_bgp_session_established", "1 while the BGP session with the peer is established, 0 otherwise.", []string{"peer", "peer_asn"}),
		bgpUpdates:   desc("gvs_bgp_updates_total", "BGP UPDATE messages exchanged with the peer.", []string{"peer", "direction"}),
		bgpAnnounced: desc("gvs_bgp_vip_announced", "1 while the VIP is announced over BGP, 0 while withdrawn; reason: up, down, maintenance, draining.", []string{"prefix", "reason"}),
		syncMsgs: desc("gvs_sync_messages_total", "Connection sync messages: direction out (master) with result sent or error, "+
			"direction in (backup) with result accepted, other_syncid (another sync id) or error (receive errors).", []string{"direction", "result"}),
		syncConns: desc("gvs_sync_connections_total", "Connection entries synced: direction out with result sent, direction in with result installed or not_installed.",
			[]string{"direction", "result"}),
		checkDuration: desc("gvs_health_check_duration_seconds", "Duration of health checks, by checker kind (TCP_CHECK, HTTP_GET, ...).", []string{"kind"}),
		transitions: desc("gvs_health_check_transitions_total", "Transitions of a health-checked real server's verdict, to up or down.",
			append(append([]string{}, destLabels...), "to")),
		buildInfo: desc("gvs_build_info", "Always 1: gvsd's version, its IPVS version, the engine and the Go version.", []string{"version", "ipvs_version", "engine", "goversion"}),
	}
}

// Describe implements prometheus.Collector.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	c.svc.describe(ch)
	c.dest.describe(ch)
	for _, d := range []*prometheus.Desc{c.active, c.inactive, c.weight, c.cfgWeight, c.up, c.quorum, c.conns, c.capacity,
		c.events, c.vrrpState, c.syncMsgs, c.syncConns, c.checkDuration, c.transitions, c.buildInfo,
		c.bgpSession, c.bgpUpdates, c.bgpAnnounced} {
		ch <- d
	}
}

// ServiceLabels returns the proto, vip and vport labels of k.
func ServiceLabels(k model.ServiceKey) (proto, vip, vport string) {
	if k.IsFWMark() {
		return "fwm", strconv.FormatUint(uint64(k.FWMark), 10), "0"
	}
	switch k.Protocol {
	case model.ProtoTCP:
		proto = "tcp"
	case model.ProtoUDP:
		proto = "udp"
	case model.ProtoSCTP:
		proto = "sctp"
	default:
		proto = strconv.Itoa(int(k.Protocol))
	}
	return proto, k.Addr.String(), strconv.Itoa(int(k.Port))
}

type destKey struct {
	svc  model.ServiceKey
	dest netip.AddrPort
}

// Collect implements prometheus.Collector: everything is read now.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	c.mu.Lock()
	defer c.mu.Unlock()
	src := c.src
	ch <- prometheus.MustNewConstMetric(c.buildInfo, prometheus.GaugeValue, 1, src.Info.GVSVersion, src.Info.Version, src.Engine.Name(), runtime.Version())

	var svcs []api.Service
	if r, ok := src.Engine.(engine.RawStats); ok {
		svcs = r.RawServices()
	} else {
		svcs = src.Engine.Services()
	}
	configured := map[destKey]int32{}
	var rules *control.Rules
	if src.Rules != nil {
		rules = src.Rules()
		for _, s := range rules.Services {
			for _, d := range s.Dests {
				configured[destKey{s.Service.ServiceKey, d.AddrPort()}] = d.Weight
			}
		}
	}
	var hs api.Health
	up := map[destKey]bool{}
	if src.Health != nil {
		hs = src.Health.Status()
		for _, s := range hs.Services {
			for _, srv := range s.Servers {
				up[destKey{s.Service, srv.Server}] = srv.Up
			}
		}
	}
	// The services' and servers' series, the bulk of a scrape, are
	// made in one batch with shared label pairs (see batch), in the
	// order of their label values: the registry sorts each family by
	// them, which then takes one pass.
	type entry struct {
		lp []*dto.LabelPair
		st *stats.Counters
		d  *api.Dest
		k  destKey
	}
	var svcE, destE []entry
	for i := range svcs {
		destE = slices.Grow(destE, len(svcs[i].Dests))
	}
	labels := make(map[destKey][]*dto.LabelPair, len(c.labels))
	svcLP := func(k model.ServiceKey) []*dto.LabelPair {
		sk := destKey{svc: k}
		lp := labels[sk]
		if lp == nil {
			if lp = c.labels[sk]; lp == nil {
				proto, vip, vport := ServiceLabels(k)
				lp = labelPairs("proto", proto, "vip", vip, "vport", vport)
			}
			labels[sk] = lp
		}
		return lp
	}
	// seen: the servers with an entry.
	seen := make(map[destKey]bool, len(configured))
	destLP := func(dk destKey) []*dto.LabelPair {
		lp := c.labels[dk]
		if lp == nil {
			// proto, rip, rport, vip, vport: sorted by name.
			slp := svcLP(dk.svc)
			lp = []*dto.LabelPair{slp[0], labelPair("rip", dk.dest.Addr().String()), labelPair("rport", strconv.Itoa(int(dk.dest.Port()))), slp[1], slp[2]}
		}
		labels[dk] = lp
		seen[dk] = true
		return lp
	}
	for i := range svcs {
		s := &svcs[i]
		k := s.Service.ServiceKey
		svcE = append(svcE, entry{lp: svcLP(k), st: &s.Stats})
		for j := range s.Dests {
			d := &s.Dests[j]
			dk := destKey{k, d.AddrPort()}
			destE = append(destE, entry{lp: destLP(dk), st: &d.Stats, d: d, k: dk})
		}
	}
	// Servers the health checks took out of the engine (no
	// inhibit_on_failure) still have their configured weight and
	// gvs_server_up.
	if rules != nil {
		for _, s := range rules.Services {
			for _, d := range s.Dests {
				if dk := (destKey{s.Service.ServiceKey, d.AddrPort()}); !seen[dk] {
					destE = append(destE, entry{lp: destLP(dk), k: dk})
				}
			}
		}
	}
	for _, s := range hs.Services {
		for _, srv := range s.Servers {
			if dk := (destKey{s.Service, srv.Server}); !seen[dk] {
				destE = append(destE, entry{lp: destLP(dk), k: dk})
			}
		}
	}
	byLabels := func(a, b entry) int {
		for i := range a.lp {
			if c := strings.Compare(a.lp[i].GetValue(), b.lp[i].GetValue()); c != 0 {
				return c
			}
		}
		return 0
	}
	slices.SortFunc(svcE, byLabels)
	slices.SortFunc(destE, byLabels)
	b := &batch{samples: make([]sample, 0, 5*len(svcE)+10*len(destE))}
	for _, e := range svcE {
		c.svc.collect(b, *e.st, e.lp)
	}
	for _, e := range destE {
		d, lp := e.d, e.lp
		if d != nil {
			c.dest.collect(b, d.Stats, lp)
			b.add(c.active, false, float64(d.ActiveConns), lp)
			b.add(c.inactive, false, float64(d.InactConns), lp)
			b.add(c.weight, false, float64(d.Weight), lp)
		}
		// A server the health checks replaced (a sorry server) is not
		// configured: it has no configured weight.
		if w, ok := configured[e.k]; ok {
			b.add(c.cfgWeight, false, float64(w), lp)
		}
		if u, ok := up[e.k]; ok {
			b.add(c.up, false, b2f(u), lp)
		}
	}
	c.labels = labels
	for i := range b.samples {
		ch <- &b.samples[i]
	}
	for _, s := range hs.Services {
		proto, vip, vport := ServiceLabels(s.Service)
		ch <- prometheus.MustNewConstMetric(c.quorum, prometheus.GaugeValue, b2f(s.QuorumUp), proto, vip, vport)
	}

	if cs, ok := src.Engine.(engine.ConnStater); ok {
		st := cs.ConnStates()
		for state, n := range st.ByState {
			ch <- prometheus.MustNewConstMetric(c.conns, prometheus.GaugeValue, float64(n), state)
		}
		ch <- prometheus.MustNewConstMetric(c.conns, prometheus.GaugeValue, float64(st.Templates), "TEMPLATE")
		if st.Capacity > 0 {
			ch <- prometheus.MustNewConstMetric(c.capacity, prometheus.GaugeValue, float64(st.Capacity))
		}
	}
	if ev, ok := src.Engine.(engine.Eventer); ok {
		for name, n := range ev.Events() {
			ch <- prometheus.MustNewConstMetric(c.events, prometheus.CounterValue, float64(n), name)
		}
	}
	if src.VRRP != nil {
		for _, s := range src.VRRP() {
			ch <- prometheus.MustNewConstMetric(c.vrrpState, prometheus.GaugeValue, float64(s.State), s.Instance)
		}
	}
	if src.BGP != nil {
		if b := src.BGP(); b.Running {
			for _, p := range b.Peers {
				ch <- prometheus.MustNewConstMetric(c.bgpSession, prometheus.GaugeValue, b2f(p.State == "established"), p.Address, strconv.FormatUint(uint64(p.ASN), 10))
				ch <- prometheus.MustNewConstMetric(c.bgpUpdates, prometheus.CounterValue, float64(p.ReceivedUpdates), p.Address, "in")
				ch <- prometheus.MustNewConstMetric(c.bgpUpdates, prometheus.CounterValue, float64(p.SentUpdates), p.Address, "out")
			}
			for _, v := range b.VIPs {
				ch <- prometheus.MustNewConstMetric(c.bgpAnnounced, prometheus.GaugeValue, b2f(v.Announced), v.Prefix.String(), v.Reason)
			}
		}
	}
	if src.Sync != nil {
		var st ipvssync.Stats
		for _, s := range src.Sync.SyncStats() {
			st = st.Add(s)
		}
		for _, m := range []struct {
			d           *prometheus.Desc
			dir, result string
			n           uint64
		}{
			{c.syncMsgs, "out", "sent", st.Sent},
			{c.syncMsgs, "out", "error", st.SendErrors},
			{c.syncMsgs, "in", "accepted", st.Received - st.OtherSyncID},
			{c.syncMsgs, "in", "other_syncid", st.OtherSyncID},
			{c.syncMsgs, "in", "error", st.ReceiveErrors},
			{c.syncConns, "out", "sent", st.SentConns},
			{c.syncConns, "in", "installed", st.Installed},
			{c.syncConns, "in", "not_installed", st.NotInstalled},
		} {
			ch <- prometheus.MustNewConstMetric(m.d, prometheus.CounterValue, float64(m.n), m.dir, m.result)
		}
	}
	if src.Health != nil {
		hm := src.Health.Metrics()
		for _, h := range hm.Durations {
			b := make(map[float64]uint64, len(h.Buckets))
			for i, n := range h.Buckets {
				b[health.DurationBuckets[i]] = n
			}
			ch <- prometheus.MustNewConstHistogram(c.checkDuration, h.Count, h.Sum, b, h.Kind)
		}
		for _, t := range hm.Transitions {
			proto, vip, vport := ServiceLabels(t.Service)
			rip, rport := t.Server.Addr().String(), strconv.Itoa(int(t.Server.Port()))
			ch <- prometheus.MustNewConstMetric(c.transitions, prometheus.CounterValue, float64(t.Up), proto, vip, vport, rip, rport, "up")
			ch <- prometheus.MustNewConstMetric(c.transitions, prometheus.CounterValue, float64(t.Down), proto, vip, vport, rip, rport, "down")
		}
	}
}

// sample is one series of a batch: a prometheus.Metric whose label pairs
// are shared with the other series of its service or server. Made with
// prometheus.MustNewConstMetric, 110,000 series (10,000 servers) took
// 2.3 million allocations per scrape, a third of them label pairs.
type sample struct {
	desc    *prometheus.Desc
	labels  []*dto.LabelPair
	counter bool
	value   float64
}

// Desc implements prometheus.Metric.
func (s *sample) Desc() *prometheus.Desc { return s.desc }

// Write implements prometheus.Metric.
func (s *sample) Write(m *dto.Metric) error {
	m.Label = s.labels
	if s.counter {
		m.Counter = &dto.Counter{Value: &s.value}
	} else {
		m.Gauge = &dto.Gauge{Value: &s.value}
	}
	return nil
}

// batch holds a scrape's samples in one allocation.
type batch struct{ samples []sample }

func (b *batch) add(d *prometheus.Desc, counter bool, v float64, lp []*dto.LabelPair) {
	b.samples = append(b.samples, sample{desc: d, labels: lp, counter: counter, value: v})
}

func labelPair(name, value string) *dto.LabelPair { return &dto.LabelPair{Name: &name, Value: &value} }

// labelPairs makes pairs of name, value, ... given sorted by name.
func labelPairs(nv ...string) []*dto.LabelPair {
	out := make([]*dto.LabelPair, 0, len(nv)/2)
	for i := 0; i < len(nv); i += 2 {
		out = append(out, labelPair(nv[i], nv[i+1]))
	}
	return out
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
