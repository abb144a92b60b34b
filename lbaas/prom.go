package lbaas

import (
	"errors"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// MetricsCollector exports gvs-lbaas's load balancers: their statuses, the
// listeners' counters as last observed from their directors, and the
// members' operating status. Labels: loadbalancer (the id), listener,
// protocol, port; pool, member, address, port for members.
type MetricsCollector struct {
	src func() []LBMetrics

	info, bytesIn, bytesOut, conns, active, member *prometheus.Desc
}

// NewMetricsCollector reads src (Server.Metrics) at each scrape.
func NewMetricsCollector(src func() []LBMetrics) *MetricsCollector {
	ll := []string{"loadbalancer", "listener", "protocol", "port"}
	return &MetricsCollector{src: src,
		info: prometheus.NewDesc("gvs_lbaas_loadbalancer_info", "A load balancer, with its statuses as the API shows them (value 1).",
			[]string{"loadbalancer", "name", "vip", "provisioning_status", "operating_status"}, nil),
		bytesIn:  prometheus.NewDesc("gvs_lbaas_listener_bytes_in_total", "Bytes from clients of a listener (its director's service InBytes).", ll, nil),
		bytesOut: prometheus.NewDesc("gvs_lbaas_listener_bytes_out_total", "Bytes to clients of a listener (its director's service OutBytes).", ll, nil),
		conns:    prometheus.NewDesc("gvs_lbaas_listener_connections_total", "Connections a listener took.", ll, nil),
		active:   prometheus.NewDesc("gvs_lbaas_listener_active_connections", "Active connections of a listener.", ll, nil),
		member: prometheus.NewDesc("gvs_lbaas_member_online", "1 while a member's operating status is ONLINE (or NO_MONITOR), 0 otherwise (ERROR, OFFLINE, DRAINING); the status is a label.",
			[]string{"loadbalancer", "pool", "member", "address", "port", "operating_status"}, nil),
	}
}

// Describe implements prometheus.Collector.
func (c *MetricsCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.info, c.bytesIn, c.bytesOut, c.conns, c.active, c.member} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (c *MetricsCollector) Collect(ch chan<- prometheus.Metric) {
	for _, lb := range c.src() {
		ch <- prometheus.MustNewConstMetric(c.info, prometheus.GaugeValue, 1, lb.ID, lb.Name, lb.VIP, lb.ProvisioningStatus, lb.OperatingStatus)
		for _, l := range lb.Listeners {
			lv := []string{lb.ID, l.ID, l.Protocol, strconv.Itoa(l.Port)}
			ch <- prometheus.MustNewConstMetric(c.bytesIn, prometheus.CounterValue, float64(l.Stats.BytesIn), lv...)
			ch <- prometheus.MustNewConstMetric(c.bytesOut, prometheus.CounterValue, float64(l.Stats.BytesOut), lv...)
			ch <- prometheus.MustNewConstMetric(c.conns, prometheus.CounterValue, float64(l.Stats.TotalConnections), lv...)
			ch <- prometheus.MustNewConstMetric(c.active, prometheus.GaugeValue, float64(l.Stats.ActiveConnections), lv...)
		}
		for _, m := range lb.Members {
			on := m.OperatingStatus == "ONLINE" || m.OperatingStatus == "NO_MONITOR"
			online := 0.0
			if on {
				online = 1
			}
			ch <- prometheus.MustNewConstMetric(c.member, prometheus.GaugeValue, online,
				lb.ID, m.PoolID, m.ID, m.Address, strconv.Itoa(m.Port), m.OperatingStatus)
		}
	}
}

// ListenMetrics serves gvs-lbaas's /metrics on addr: its load balancers
// (src), the build info and the process's own.
func ListenMetrics(addr string, src func() []LBMetrics, version string, log *slog.Logger) (net.Listener, error) {
	reg := prometheus.NewRegistry()
	reg.MustRegister(NewMetricsCollector(src), collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "gvs_build_info", Help: "gvs-lbaas's version (value 1).",
			ConstLabels: prometheus.Labels{"version": version, "program": "gvs-lbaas"}}, func() float64 { return 1 }))
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) && !errors.Is(err, net.ErrClosed) {
			log.Error("metrics listener", "err", err)
		}
	}()
	return ln, nil
}
