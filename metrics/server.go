package metrics

import (
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"gvs/api"
	"gvs/engine"
	"gvs/ipvssync"
	"gvs/model"
	"gvs/vrrp"
)

//go:embed status.html
var statusPage []byte

// Status is the status page's JSON feed (GET /status.json), made of the
// control API's documents.
type Status struct {
	Time time.Time `json:"time"`
	// Snapshot is GET /v1/services with the running counters (not
	// reset by -Z, so the page's rates never jump back).
	Snapshot api.Snapshot `json:"snapshot"`
	// Configured is GET /v1/services?configured=1: the configured
	// rules, whose servers the health checks may have taken out.
	Configured []api.Service      `json:"configured"`
	Health     api.Health         `json:"health"`
	VRRP       []vrrp.Status      `json:"vrrp"`
	Daemons    []model.SyncDaemon `json:"daemons"`
	Sync       []ipvssync.Stats   `json:"sync"`
	Events     map[string]uint64  `json:"events,omitempty"`
	Conns      *ConnStates        `json:"conns,omitempty"`
}

// ConnStates is engine.ConnStates in JSON.
type ConnStates struct {
	ByState   map[string]uint64 `json:"by_state"`
	Templates uint64            `json:"templates"`
	Capacity  uint64            `json:"capacity,omitempty"`
}

// StatusOf reads src now.
func StatusOf(src Sources) Status {
	st := Status{Time: time.Now(), Snapshot: api.Snapshot{Info: src.Info}, Configured: []api.Service{},
		Health: api.Health{Services: []api.ServiceHealth{}}, VRRP: []vrrp.Status{}, Daemons: []model.SyncDaemon{}, Sync: []ipvssync.Stats{}}
	if r, ok := src.Engine.(engine.RawStats); ok {
		st.Snapshot.Services = r.RawServices()
		st.Snapshot.Total = r.RawTotals()
		_, st.Snapshot.Rates = src.Engine.Totals()
	} else {
		st.Snapshot.Services = src.Engine.Services()
		st.Snapshot.Total, st.Snapshot.Rates = src.Engine.Totals()
	}
	if st.Snapshot.Services == nil {
		st.Snapshot.Services = []api.Service{}
	}
	if src.Rules != nil {
		for _, sr := range src.Rules().Services {
			as := api.Service{Service: sr.Service, LocalAddrs: sr.LocalAddrs, Allow: sr.Allow, Dests: []api.Dest{}}
			for _, d := range sr.Dests {
				as.Dests = append(as.Dests, api.Dest{Dest: d})
			}
			st.Configured = append(st.Configured, as)
		}
	}
	if src.Health != nil {
		st.Health = src.Health.Status()
	}
	if src.VRRP != nil {
		if v := src.VRRP(); v != nil {
			st.VRRP = v
		}
	}
	if src.Daemons != nil {
		if d := src.Daemons(); d != nil {
			st.Daemons = d
		}
	}
	if src.Sync != nil {
		if s := src.Sync.SyncStats(); s != nil {
			st.Sync = s
		}
	}
	if ev, ok := src.Engine.(engine.Eventer); ok {
		st.Events = ev.Events()
	}
	if cs, ok := src.Engine.(engine.ConnStater); ok {
		c := cs.ConnStates()
		st.Conns = &ConnStates{ByState: c.ByState, Templates: c.Templates, Capacity: c.Capacity}
	}
	return st
}

// Handler serves /metrics (Prometheus, with the Go runtime's and the
// process's collectors besides gvsd's), /status.json (Status) and / (the
// status page).
func Handler(src Sources, log *slog.Logger) http.Handler {
	reg := prometheus.NewRegistry()
	reg.MustRegister(NewCollector(src), collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn)}))
	mux.HandleFunc("GET /status.json", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		json.NewEncoder(w).Encode(StatusOf(src))
	})
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Write(statusPage)
	})
	return mux
}

// Server is the metrics and status page listener.
type Server struct {
	srv *http.Server
	ln  net.Listener
}

// Listen serves Handler(src) on addr (host:port) until Close.
func Listen(addr string, src Sources, log *slog.Logger) (*Server, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	s := &Server{ln: ln, srv: &http.Server{Handler: Handler(src, log), ReadHeaderTimeout: 10 * time.Second}}
	go func() {
		if err := s.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("metrics listener", "err", err)
		}
	}()
	return s, nil
}

// Addr is the address listened on.
func (s *Server) Addr() net.Addr { return s.ln.Addr() }

// Close stops serving, letting requests under way finish for a second.
func (s *Server) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	return s.srv.Shutdown(ctx)
}
