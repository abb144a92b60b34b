package proxy

import (
	"log/slog"
	"sync"
	"sync/atomic"
	"time"
)

// Names of the proxy engine's event counters (GET /v1/events).
const (
	// EvAcceptError counts failed TCP accepts (EMFILE, ENFILE, ...), each
	// retried after a back-off.
	EvAcceptError = "accept_error"
	// EvUDPFlowLimit counts datagrams dropped because opening their flow
	// would pass the UDP flow limit (WithMaxUDPFlows).
	EvUDPFlowLimit = "udp_flow_limit"
	// EvUDPUpstreamError counts datagrams dropped because their flow's
	// socket toward the real server could not be opened.
	EvUDPUpstreamError = "udp_upstream_error"
	// EvDenied counts TCP connections closed and UDP datagrams dropped
	// because their source is not in their service's allow list (new
	// connections and flows only), as the xdp engine's "denied".
	EvDenied = "denied"
)

type events struct {
	acceptError, udpFlowLimit, udpUpstreamError, denied atomic.Uint64
}

// Events implements engine.Eventer.
func (e *Engine) Events() map[string]uint64 {
	return map[string]uint64{
		EvAcceptError:      e.ev.acceptError.Load(),
		EvUDPFlowLimit:     e.ev.udpFlowLimit.Load(),
		EvUDPUpstreamError: e.ev.udpUpstreamError.Load(),
		EvDenied:           e.ev.denied.Load(),
	}
}

// logEvery is how often a repeated warning is logged at most.
const logEvery = 5 * time.Second

// sparseLog logs a warning at most once per logEvery, saying how many
// were left out since: a condition that repeats per packet or per accept
// must not flood the log.
type sparseLog struct {
	mu      sync.Mutex
	next    time.Time
	dropped int
}

func (l *sparseLog) warn(log *slog.Logger, msg string, args ...any) {
	l.mu.Lock()
	now := time.Now()
	if now.Before(l.next) {
		l.dropped++
		l.mu.Unlock()
		return
	}
	l.next = now.Add(logEvery)
	n := l.dropped
	l.dropped = 0
	l.mu.Unlock()
	if n > 0 {
		args = append(args, "suppressed", n)
	}
	log.Warn(msg, args...)
}
