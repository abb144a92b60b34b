package main

import (
	"log/slog"

	"gvs/api"
	"gvs/control"
	"gvs/health"
	"gvs/metrics"
	"gvs/vrrp"
)

// startMetrics serves --metrics-addr: Prometheus metrics and the status
// page, read from the engine, the checks, VRRP and the sync daemons.
func startMetrics(log *slog.Logger, addr string, core *control.Core, checks *health.Manager, vm *vrrp.Manager, sr *syncRunner, bgpStatus func() api.BGP, info api.Info) (*metrics.Server, error) {
	src := metrics.Sources{Engine: core.Engine(), Rules: core.Rules, Daemons: core.Daemons, Health: checks, VRRP: vm.Status, BGP: bgpStatus, Info: info}
	if sr != nil {
		src.Sync = sr
	}
	ms, err := metrics.Listen(addr, src, log)
	if err != nil {
		return nil, err
	}
	log.Info("metrics and status page", "addr", "http://"+ms.Addr().String()+"/")
	return ms, nil
}
