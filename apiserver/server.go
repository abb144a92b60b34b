// Package apiserver is gvsd's control API: HTTP/JSON on a unix socket, a
// thin adapter over the control core. The API is described in
// docs/openapi.yaml.
package apiserver

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"time"

	"gvs/api"
	"gvs/control"
	"gvs/model"
)

// Server serves the API of one core.
type Server struct {
	core *control.Core
	info api.Info
	log  *slog.Logger
	http *http.Server
}

// New returns the API server of core.
func New(core *control.Core, info api.Info, log *slog.Logger) *Server {
	s := &Server{core: core, info: info, log: log}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/info", s.getInfo)
	mux.HandleFunc("GET /v1/services", s.getServices)
	mux.HandleFunc("GET /v1/conns", s.getConns)
	mux.HandleFunc("GET /v1/timeouts", s.getTimeouts)
	mux.HandleFunc("GET /v1/sysctls", s.getSysctls)
	mux.HandleFunc("POST /v1/ops", s.postOps)
	s.http = &http.Server{Handler: mux}
	return s
}

// Listen opens the unix socket at path with the given mode (0600: root
// only; 0660 with group set: that group too) and serves until Close.
func (s *Server) Listen(path string, mode os.FileMode, gid int) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	if c, err := net.Dial("unix", path); err == nil {
		c.Close()
		return errors.New("another gvsd is serving " + path)
	}
	os.Remove(path)
	ln, err := net.Listen("unix", path)
	if err != nil {
		return err
	}
	if err := os.Chmod(path, mode); err != nil {
		ln.Close()
		return err
	}
	if gid >= 0 {
		if err := os.Chown(path, -1, gid); err != nil {
			ln.Close()
			return err
		}
	}
	go func() {
		if err := s.http.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Error("api", "err", err)
		}
	}()
	return nil
}

// Close stops serving, letting requests in progress finish (5 s at most).
func (s *Server) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return s.http.Shutdown(ctx)
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(v)
}

func (s *Server) getInfo(w http.ResponseWriter, _ *http.Request) { writeJSON(w, 200, s.info) }

func (s *Server) getServices(w http.ResponseWriter, _ *http.Request) {
	eng := s.core.Engine()
	snap := api.Snapshot{Info: s.info, Services: eng.Services()}
	snap.Total, snap.Rates = eng.Totals()
	if snap.Services == nil {
		snap.Services = []api.Service{}
	}
	writeJSON(w, 200, snap)
}

func (s *Server) getConns(w http.ResponseWriter, _ *http.Request) {
	conns := s.core.Engine().Conns()
	if conns == nil {
		conns = []api.Conn{}
	}
	writeJSON(w, 200, conns)
}

func (s *Server) getTimeouts(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, 200, s.core.Engine().Timeouts())
}

func (s *Server) postOps(w http.ResponseWriter, r *http.Request) {
	var body api.Ops
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 256<<20))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&body); err != nil {
		writeJSON(w, http.StatusBadRequest, api.Error{Message: "bad request: " + err.Error(), Errno: 22})
		return
	}
	err := s.core.Do(body.Ops)
	if err == nil {
		if slices.ContainsFunc(body.Ops, func(o api.Op) bool { return o.Op != api.Zero }) {
			s.log.Info("rules changed", "ops", len(body.Ops))
		}
		writeJSON(w, 200, struct{}{})
		return
	}
	e := api.Error{Message: err.Error()}
	var be *control.BatchError
	if errors.As(err, &be) {
		e.Index = be.Index
	}
	var me *model.Error
	code := http.StatusInternalServerError
	if errors.As(err, &me) {
		e.Errno = int(me.Errno)
		code = http.StatusUnprocessableEntity
	}
	writeJSON(w, code, e)
}
