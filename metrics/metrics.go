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
	"strconv"

	"github.com/prometheus/client_golang/prometheus"

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
	Sync    SyncStats
	Info    api.Info
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

func (d counterDescs) collect(ch chan<- prometheus.Metric, c stats.Counters, lv ...string) {
	ch <- prometheus.MustNewConstMetric(d.conns, prometheus.CounterValue, float64(c.Conns), lv...)
	ch <- prometheus.MustNewConstMetric(d.inPkts, prometheus.CounterValue, float64(c.InPkts), lv...)
	ch <- prometheus.MustNewConstMetric(d.outPkts, prometheus.CounterValue, float64(c.OutPkts), lv...)
	ch <- prometheus.MustNewConstMetric(d.inBytes, prometheus.CounterValue, float64(c.InBytes), lv...)
	ch <- prometheus.MustNewConstMetric(d.outBytes, prometheus.CounterValue, float64(c.OutBytes), lv...)
}

// Collector is the prometheus.Collector of gvsd's metrics.
type Collector struct {
	src Sources

	svc, dest                             counterDescs
	active, inactive, weight, cfgWeight   *prometheus.Desc
	up, quorum, conns, capacity, events   *prometheus.Desc
	vrrpState, syncMsgs, syncConns        *prometheus.Desc
	checkDuration, transitions, buildInfo *prometheus.Desc
}

// NewCollector returns the collector of src.
func NewCollector(src Sources) *Collector {
	return &Collector{
		src:       src,
		svc:       newCounterDescs("gvs_service_", "virtual service", svcLabels),
		dest:      newCounterDescs("gvs_server_", "real server", destLabels),
		active:    desc("gvs_server_active_connections", "Active connections of the real server (ipvsadm's ActiveConn).", destLabels),
		inactive:  desc("gvs_server_inactive_connections", "Inactive connections of the real server (ipvsadm's InActConn).", destLabels),
		weight:    desc("gvs_server_weight", "Effective weight of the real server: what the data path schedules with (health checks applied).", destLabels),
		cfgWeight: desc("gvs_server_configured_weight", "Configured weight of the real server (gvsadm -S), before health checks.", destLabels),
		up:        desc("gvs_server_up", "1 if the real server's health checks pass, 0 if not; absent for a server without health checks.", destLabels),
		quorum:    desc("gvs_service_quorum_up", "1 if the health-checked service has its quorum (keepalived's quorum), 0 if not; absent for a service without health checks.", svcLabels),
		conns:     desc("gvs_connections", "Entries of the connection table by state as ipvsadm -Lc names it; persistence templates as state TEMPLATE.", []string{"state"}),
		capacity:  desc("gvs_connection_table_capacity", "Most connections the table holds (xdp engine: --max-conns); absent when unbounded (proxy engine).", nil),
		events:    desc("gvs_datapath_events_total", "Data-path events by name: drops and passes and their reasons (GET /v1/events).", []string{"event"}),
		vrrpState: desc("gvs_vrrp_state", "State of the VRRP instance: 0 INIT, 1 BACKUP, 2 MASTER, 3 FAULT, 4 STOP (keepalived's numbering).", []string{"instance"}),
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
		c.events, c.vrrpState, c.syncMsgs, c.syncConns, c.checkDuration, c.transitions, c.buildInfo} {
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
	src := c.src
	ch <- prometheus.MustNewConstMetric(c.buildInfo, prometheus.GaugeValue, 1, src.Info.GVSVersion, src.Info.Version, src.Engine.Name(), runtime.Version())

	var svcs []api.Service
	if r, ok := src.Engine.(engine.RawStats); ok {
		svcs = r.RawServices()
	} else {
		svcs = src.Engine.Services()
	}
	configured := map[destKey]int32{}
	if src.Rules != nil {
		for _, s := range src.Rules().Services {
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
	for i := range svcs {
		s := &svcs[i]
		k := s.Service.ServiceKey
		proto, vip, vport := ServiceLabels(k)
		c.svc.collect(ch, s.Stats, proto, vip, vport)
		for j := range s.Dests {
			d := &s.Dests[j]
			ap := d.AddrPort()
			rip, rport := d.Addr.String(), strconv.Itoa(int(d.Port))
			lv := []string{proto, vip, vport, rip, rport}
			c.dest.collect(ch, d.Stats, lv...)
			ch <- prometheus.MustNewConstMetric(c.active, prometheus.GaugeValue, float64(d.ActiveConns), lv...)
			ch <- prometheus.MustNewConstMetric(c.inactive, prometheus.GaugeValue, float64(d.InactConns), lv...)
			ch <- prometheus.MustNewConstMetric(c.weight, prometheus.GaugeValue, float64(d.Weight), lv...)
			// A server the health checks replaced (a sorry server) is
			// not configured: it has no configured weight.
			if w, ok := configured[destKey{k, ap}]; ok {
				ch <- prometheus.MustNewConstMetric(c.cfgWeight, prometheus.GaugeValue, float64(w), lv...)
			}
			if u, ok := up[destKey{k, ap}]; ok {
				ch <- prometheus.MustNewConstMetric(c.up, prometheus.GaugeValue, b2f(u), lv...)
			}
		}
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
	if src.Sync != nil {
		var st ipvssync.Stats
		for _, s := range src.Sync.SyncStats() {
			st = addSync(st, s)
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

// AddSync adds two sync daemons' counters.
func addSync(a, b ipvssync.Stats) ipvssync.Stats {
	a.Sent += b.Sent
	a.SentConns += b.SentConns
	a.SendErrors += b.SendErrors
	a.Received += b.Received
	a.Installed += b.Installed
	a.NotInstalled += b.NotInstalled
	a.OtherSyncID += b.OtherSyncID
	a.ReceiveErrors += b.ReceiveErrors
	return a
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
