package metrics

import (
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"gvs/api"
	"gvs/control"
	"gvs/engine"
	"gvs/health"
	"gvs/ipvs"
	"gvs/model"
	"gvs/stats"
	"gvs/vrrp"
)

// table is an engine.Table with a name: the metrics' Engine.
type table struct{ *engine.Table }

func (table) Name() string { return "test" }

func svcKey(i int) model.ServiceKey {
	return model.ServiceKey{Protocol: model.ProtoTCP, Addr: netip.AddrFrom4([4]byte{198, 18, byte(i >> 8), byte(i)}), Port: 80, Family: model.IPv4}
}

func destAddr(i, j int) netip.AddrPort {
	return netip.AddrPortFrom(netip.AddrFrom4([4]byte{198, 19, byte(i), byte(j)}), 8080)
}

// newTable makes nsvc services of ndest servers each, server j of
// service i having counted (i+1)*(j+1) of everything.
func newTable(t testing.TB, nsvc, ndest int) (table, *control.Rules) {
	tb := engine.NewTable(ipvs.Options{})
	rules := &control.Rules{}
	for i := range nsvc {
		k := svcKey(i)
		if err := tb.AddService(model.Service{ServiceKey: k, Scheduler: "wlc", Netmask: 0xffffffff}); err != nil {
			t.Fatal(err)
		}
		sr := control.ServiceRules{Service: model.Service{ServiceKey: k}}
		for j := range ndest {
			a := destAddr(i, j)
			d := model.Dest{Addr: a.Addr(), Port: a.Port(), Method: model.Masq, Weight: int32(j%5 + 1)}
			if err := tb.AddDest(k, d); err != nil {
				t.Fatal(err)
			}
			d.Weight *= 10 // configured differs from effective
			sr.Dests = append(sr.Dests, d)
		}
		rules.Services = append(rules.Services, sr)
	}
	tb.Do(func(v *ipvs.IPVS) {
		for i, s := range v.Services() {
			for _, d := range s.Servers() {
				j := int(d.Addr.As4()[3])
				n := uint64((i + 1) * (j + 1))
				c := stats.Counters{Conns: n, InPkts: 2 * n, OutPkts: 3 * n, InBytes: 100 * n, OutBytes: 200 * n}
				d.Stats.AddCounters(c)
				s.Stats.AddCounters(c)
				v.Total().AddCounters(c)
			}
		}
	})
	return table{tb}, rules
}

type fakeHealth struct {
	st api.Health
	m  health.Metrics
}

func (f fakeHealth) Status() api.Health      { return f.st }
func (f fakeHealth) Metrics() health.Metrics { return f.m }

func gather(t testing.TB, src Sources) map[string]*dto.MetricFamily {
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(NewCollector(src))
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]*dto.MetricFamily{}
	for _, mf := range mfs {
		out[mf.GetName()] = mf
	}
	return out
}

// value finds the sample of name whose labels include want
// ("k=v,k=v"); ok is false if none.
func value(mfs map[string]*dto.MetricFamily, name, want string) (float64, bool) {
	mf := mfs[name]
	if mf == nil {
		return 0, false
	}
next:
	for _, m := range mf.Metric {
		have := map[string]string{}
		for _, l := range m.Label {
			have[l.GetName()] = l.GetValue()
		}
		for _, kv := range strings.Split(want, ",") {
			if kv == "" {
				continue
			}
			k, v, _ := strings.Cut(kv, "=")
			if have[k] != v {
				continue next
			}
		}
		switch {
		case m.Counter != nil:
			return m.Counter.GetValue(), true
		case m.Gauge != nil:
			return m.Gauge.GetValue(), true
		case m.Histogram != nil:
			return float64(m.Histogram.GetSampleCount()), true
		}
	}
	return 0, false
}

func TestCollector(t *testing.T) {
	tb, rules := newTable(t, 2, 3)
	k := svcKey(1)
	down := destAddr(1, 2)
	hs := fakeHealth{
		st: api.Health{Services: []api.ServiceHealth{{Service: k, QuorumUp: false, Servers: []api.ServerHealth{
			{Server: destAddr(1, 0), Up: true}, {Server: down, Up: false}, {Server: destAddr(1, 9), Up: false}}}}},
		m: health.Metrics{
			Durations:   []health.Histogram{{Kind: "TCP_CHECK", Count: 3, Sum: 0.006, Buckets: []uint64{1, 2, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3}}},
			Transitions: []health.Transitions{{Service: k, Server: down, Up: 1, Down: 2}},
		},
	}
	src := Sources{Engine: tb, Rules: func() *control.Rules { return rules }, Health: hs,
		VRRP: func() []vrrp.Status { return []vrrp.Status{{Instance: "VI_1", State: vrrp.StateMaster}} },
		Info: api.Info{Version: api.Version, GVSVersion: "test"}}

	// -Z changes no metric.
	if err := tb.Zero(nil); err != nil {
		t.Fatal(err)
	}
	if s := tb.Services(); s[1].Dests[0].Stats.Conns != 0 {
		t.Fatalf("-Z did not zero the listing: %+v", s[1].Dests[0].Stats)
	}
	mfs := gather(t, src)
	want := []struct {
		name, labels string
		v            float64
	}{
		{"gvs_service_connections_total", "proto=tcp,vip=198.18.0.1,vport=80", 2 * (1 + 2 + 3)},
		{"gvs_service_bytes_out_total", "vip=198.18.0.0", 200 * (1 + 2 + 3)},
		{"gvs_server_packets_in_total", "vip=198.18.0.1,rip=198.19.1.2,rport=8080", 2 * 2 * 3},
		{"gvs_server_packets_out_total", "vip=198.18.0.1,rip=198.19.1.2", 3 * 2 * 3},
		{"gvs_server_bytes_in_total", "vip=198.18.0.0,rip=198.19.0.1", 100 * 1 * 2},
		{"gvs_server_weight", "vip=198.18.0.1,rip=198.19.1.2", 3},
		{"gvs_server_configured_weight", "vip=198.18.0.1,rip=198.19.1.2", 30},
		{"gvs_server_active_connections", "vip=198.18.0.1,rip=198.19.1.2", 0},
		{"gvs_server_up", "vip=198.18.0.1,rip=198.19.1.0", 1},
		{"gvs_server_up", "vip=198.18.0.1,rip=198.19.1.2", 0},
		{"gvs_server_up", "vip=198.18.0.1,rip=198.19.1.9", 0}, // taken out of the engine
		{"gvs_service_quorum_up", "vip=198.18.0.1", 0},
		{"gvs_vrrp_state", "instance=VI_1", 2},
		{"gvs_health_check_duration_seconds", "kind=TCP_CHECK", 3},
		{"gvs_health_check_transitions_total", "rip=198.19.1.2,to=down", 2},
		{"gvs_connections", "state=TEMPLATE", 0},
		{"gvs_build_info", "version=test,engine=test", 1},
	}
	for _, w := range want {
		got, ok := value(mfs, w.name, w.labels)
		if !ok || got != w.v {
			t.Errorf("%s{%s} = %v (present %v), want %v", w.name, w.labels, got, ok, w.v)
		}
	}
	// Unchecked servers have no gvs_server_up; the unbounded table no
	// capacity.
	if _, ok := value(mfs, "gvs_server_up", "vip=198.18.0.0"); ok {
		t.Error("gvs_server_up of an unchecked server")
	}
	if _, ok := value(mfs, "gvs_server_weight", "rip=198.19.1.9"); ok {
		t.Error("gvs_server_weight of a server the engine does not serve")
	}
	if _, ok := mfs["gvs_connection_table_capacity"]; ok {
		t.Error("gvs_connection_table_capacity of an unbounded table")
	}
}

// The page and its feed are served; the page needs nothing from
// elsewhere.
func TestHandler(t *testing.T) {
	tb, rules := newTable(t, 1, 2)
	h := Handler(Sources{Engine: tb, Rules: func() *control.Rules { return rules }, Info: api.Info{GVSVersion: "test"}}, slog.New(slog.DiscardHandler))
	get := func(path string) (int, string, string) {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest("GET", path, nil))
		return w.Code, w.Header().Get("Content-Type"), w.Body.String()
	}
	code, ct, body := get("/")
	if code != 200 || !strings.HasPrefix(ct, "text/html") || !strings.Contains(body, "status.json") {
		t.Errorf("/: %d %s", code, ct)
	}
	for _, ext := range []string{"http://", "https://", "//cdn"} {
		if strings.Contains(body, "src=\""+ext) || strings.Contains(body, "href=\""+ext) {
			t.Errorf("the page loads %s resources", ext)
		}
	}
	code, _, body = get("/status.json")
	if code != 200 || !strings.Contains(body, `"configured"`) || !strings.Contains(body, `"198.19.0.1"`) {
		t.Errorf("/status.json: %d %.300s", code, body)
	}
	code, _, body = get("/metrics")
	if code != 200 || !strings.Contains(body, "gvs_server_connections_total{") || !strings.Contains(body, "go_goroutines") {
		t.Errorf("/metrics: %d %.300s", code, body)
	}
	if code, _, _ = get("/nothing"); code != 404 {
		t.Errorf("/nothing: %d", code)
	}
}

// BenchmarkScrape10k is one scrape of 10,000 servers (100 services of
// 100): the collector's work and the exposition, as Prometheus gets it.
func BenchmarkScrape10k(b *testing.B) {
	tb, rules := newTable(b, 100, 100)
	st := api.Health{}
	for i := range 100 {
		sh := api.ServiceHealth{Service: svcKey(i), QuorumUp: true}
		for j := range 100 {
			sh.Servers = append(sh.Servers, api.ServerHealth{Server: destAddr(i, j), Up: true})
		}
		st.Services = append(st.Services, sh)
	}
	src := Sources{Engine: tb, Rules: func() *control.Rules { return rules }, Health: fakeHealth{st: st}}
	reg := prometheus.NewRegistry()
	reg.MustRegister(NewCollector(src))
	h := Handler(src, slog.New(slog.DiscardHandler))
	b.Run("gather", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := reg.Gather(); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("http", func(b *testing.B) {
		b.ReportAllocs()
		n := 0
		for b.Loop() {
			w := &countWriter{h: http.Header{}}
			h.ServeHTTP(w, httptest.NewRequest("GET", "/metrics", nil))
			n = w.n
		}
		b.ReportMetric(float64(n), "bytes/scrape")
	})
}

type countWriter struct {
	h http.Header
	n int
}

func (w *countWriter) Header() http.Header         { return w.h }
func (w *countWriter) WriteHeader(int)             {}
func (w *countWriter) Write(p []byte) (int, error) { w.n += len(p); return len(p), nil }

func TestBGPMetrics(t *testing.T) {
	eng, rules := newTable(t, 1, 1)
	src := Sources{Engine: eng, Rules: func() *control.Rules { return rules }, BGP: func() api.BGP {
		return api.BGP{Running: true, ASN: 65001,
			Peers: []api.BGPPeer{{Address: "198.18.0.1", ASN: 65000, State: "established", ReceivedUpdates: 3, SentUpdates: 5}},
			VIPs: []api.BGPVIP{{Prefix: netip.MustParsePrefix("198.18.0.100/32"), Announced: true, Reason: "up"},
				{Prefix: netip.MustParsePrefix("198.18.0.101/32"), Reason: "down"}}}
	}}
	mfs := gather(t, src)
	for _, c := range []struct {
		name, labels string
		want         float64
	}{
		{"gvs_bgp_session_established", "peer=198.18.0.1,peer_asn=65000", 1},
		{"gvs_bgp_updates_total", "peer=198.18.0.1,direction=out", 5},
		{"gvs_bgp_vip_announced", "prefix=198.18.0.100/32,reason=up", 1},
		{"gvs_bgp_vip_announced", "prefix=198.18.0.101/32,reason=down", 0},
	} {
		if v, ok := value(mfs, c.name, c.labels); !ok || v != c.want {
			t.Errorf("%s{%s} = %v (found %v), want %v", c.name, c.labels, v, ok, c.want)
		}
	}
}
