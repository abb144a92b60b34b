// Package apiserver is gvsd's control API: HTTP/JSON on a unix socket, a
// thin adapter over the control core. The API is described in
// docs/openapi.yaml.
package apiserver

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"syscall"
	"time"

	"gvs/api"
	"gvs/control"
	"gvs/engine"
	"gvs/ipvsadm"
	"gvs/model"
	"gvs/vrrp"
)

// timeouts of the API's connections (tests shorten them). Requests are
// small and local; a listing renews its write deadline as it goes, and
// POST /v1/ops once its batch is applied, so neither is cut off for
// being long, only for a peer that stops reading.
var timeouts = struct{ header, read, write, idle time.Duration }{
	header: 10 * time.Second,
	read:   time.Minute, // a batch of ops may be 256 MiB
	write:  time.Minute,
	idle:   2 * time.Minute,
}

// Server serves the API of one core.
type Server struct {
	core *control.Core
	info api.Info
	log  *slog.Logger
	http *http.Server
	path string // the socket, removed by Close
	// health reports the health checks (nil: none run).
	health func() api.Health
	// vrrp reports the VRRP instances (nil: none run).
	vrrp func() []vrrp.Status
	// bgp reports the BGP speaker, maint puts the director in
	// maintenance (nil: no speaker).
	bgp   func() api.BGP
	maint func(on bool, drain time.Duration) error
}

// SetBGP gives the server the BGP speaker's status and its maintenance
// switch, for GET /v1/bgp and POST /v1/bgp/maintenance. Call it before
// Listen.
func (s *Server) SetBGP(status func() api.BGP, maintenance func(on bool, drain time.Duration) error) {
	s.bgp, s.maint = status, maintenance
}

// SetVRRP gives the server the VRRP instances' status, for GET /v1/vrrp.
// Call it before Listen.
func (s *Server) SetVRRP(f func() []vrrp.Status) { s.vrrp = f }

// SetHealth gives the server the health checks' status, for GET
// /v1/checks. Call it before Listen.
func (s *Server) SetHealth(f func() api.Health) { s.health = f }

// New returns the API server of core.
func New(core *control.Core, info api.Info, log *slog.Logger) *Server {
	s := &Server{core: core, info: info, log: log}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/info", s.getInfo)
	mux.HandleFunc("GET /v1/services", s.getServices)
	mux.HandleFunc("GET /v1/conns", s.getConns)
	mux.HandleFunc("GET /v1/events", s.getEvents)
	mux.HandleFunc("GET /v1/timeouts", s.getTimeouts)
	mux.HandleFunc("GET /v1/sysctls", s.getSysctls)
	mux.HandleFunc("GET /v1/checks", s.getChecks)
	mux.HandleFunc("GET /v1/daemons", s.getDaemons)
	mux.HandleFunc("GET /v1/vrrp", s.getVRRP)
	mux.HandleFunc("GET /v1/bgp", s.getBGP)
	mux.HandleFunc("POST /v1/bgp/maintenance", s.postMaintenance)
	mux.HandleFunc("POST /v1/ops", s.postOps)
	mux.HandleFunc("POST /v1/restore", s.postRestore)
	s.http = &http.Server{Handler: mux, ReadHeaderTimeout: timeouts.header, ReadTimeout: timeouts.read,
		WriteTimeout: timeouts.write, IdleTimeout: timeouts.idle}
	return s
}

// Listen opens the unix socket at path with the given mode (0600: the
// owner only; 0660 with gid >= 0: that group too) and serves until Close.
// The socket's directory is checked first (see socketDir).
func (s *Server) Listen(path string, mode os.FileMode, gid int) error {
	if err := socketDir(filepath.Dir(path), gid, s.log); err != nil {
		return err
	}
	if c, err := net.Dial("unix", path); err == nil {
		c.Close()
		return errors.New("another gvsd is serving " + path)
	}
	ln, err := listenUnix(path, mode, gid)
	if err != nil {
		return err
	}
	s.path = path
	go func() {
		if err := s.http.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Error("api", "err", err)
		}
	}()
	return nil
}

// socketDir creates the socket's directory if it is missing (0700, or
// 0710 in group gid so the group can reach a 0660 socket), and refuses
// one where someone else could replace the socket or plant their own:
// not a directory (a symbolic link), owned by a user other than gvsd's
// and root, or writable by group or others.
func socketDir(dir string, gid int, log *slog.Logger) error {
	perm := os.FileMode(0o700)
	if gid >= 0 {
		perm = 0o710
	}
	if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
		return err
	}
	err := os.Mkdir(dir, perm)
	if err == nil {
		// Mkdir's mode went through the umask, and the group is ours.
		if gid >= 0 {
			err = os.Chown(dir, -1, gid)
		}
		if err == nil {
			err = os.Chmod(dir, perm)
		}
		if err != nil {
			return err
		}
	} else if !errors.Is(err, fs.ErrExist) {
		return err
	}
	fi, err := os.Lstat(dir)
	if err != nil {
		return err
	}
	st, _ := fi.Sys().(*syscall.Stat_t)
	switch {
	case !fi.IsDir():
		return fmt.Errorf("socket directory %s is not a directory", dir)
	case st != nil && int(st.Uid) != os.Geteuid() && st.Uid != 0:
		return fmt.Errorf("socket directory %s is owned by uid %d, not by gvsd's user (%d) or root: remove it, or choose another --socket", dir, st.Uid, os.Geteuid())
	case fi.Mode().Perm()&0o022 != 0:
		return fmt.Errorf("socket directory %s is writable by group or others (mode %04o): chmod go-w it, or choose another --socket", dir, fi.Mode().Perm())
	}
	if gid >= 0 && st != nil && fi.Mode().Perm()&0o001 == 0 && (int(st.Gid) != gid || fi.Mode().Perm()&0o010 == 0) {
		log.Warn("the --socket-group cannot reach the socket through its directory", "dir", dir, "mode", fmt.Sprintf("%04o", fi.Mode().Perm()))
	}
	return nil
}

// listenUnix binds the socket in a new 0700 directory beside path, gives
// it its mode and group there, out of anyone else's reach, and renames it
// into place: it never exists at path with the umask's wider mode, and
// no one can swap it between bind and chmod. (Narrowing the umask around
// bind instead would narrow, process-wide, the files other goroutines
// create meanwhile.)
func listenUnix(path string, mode os.FileMode, gid int) (*net.UnixListener, error) {
	tmp, err := os.MkdirTemp(filepath.Dir(path), ".gvs")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	tpath := filepath.Join(tmp, "s")
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: tpath, Net: "unix"})
	if err != nil {
		return nil, err
	}
	ln.SetUnlinkOnClose(false) // its name will be path, which Close removes
	err = os.Chmod(tpath, mode)
	if err == nil && gid >= 0 {
		err = os.Chown(tpath, -1, gid)
	}
	if err == nil {
		err = os.Rename(tpath, path)
	}
	if err != nil {
		ln.Close()
		return nil, err
	}
	return ln, nil
}

// Close stops serving, letting requests in progress finish (5 s at most).
func (s *Server) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := s.http.Shutdown(ctx)
	if s.path != "" {
		os.Remove(s.path)
	}
	return err
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(v)
}

func (s *Server) getInfo(w http.ResponseWriter, _ *http.Request) { writeJSON(w, 200, s.info) }

// getServices lists what the engine serves (gvsadm -L), or with
// ?configured=1 the configured rules without counters (gvsadm -S): they
// differ while health checks keep a server out or change its weight.
func (s *Server) getServices(w http.ResponseWriter, r *http.Request) {
	if r.URL.Query().Get("configured") == "1" {
		snap := api.Snapshot{Info: s.info, Services: []api.Service{}}
		for _, sr := range s.core.Rules().Services {
			as := api.Service{Service: sr.Service, LocalAddrs: sr.LocalAddrs, Allow: sr.Allow, Dests: []api.Dest{}}
			for _, d := range sr.Dests {
				as.Dests = append(as.Dests, api.Dest{Dest: d})
			}
			snap.Services = append(snap.Services, as)
		}
		writeJSON(w, 200, snap)
		return
	}
	eng := s.core.Engine()
	snap := api.Snapshot{Info: s.info, Services: eng.Services()}
	snap.Total, snap.Rates = eng.Totals()
	if snap.Services == nil {
		snap.Services = []api.Service{}
	}
	writeJSON(w, 200, snap)
}

// getConns streams the connection table as a JSON array, entries encoded
// as the engine yields them, so neither gvsd's memory nor the engine's
// locks depend on how fast the client reads.
func (s *Server) getConns(w http.ResponseWriter, _ *http.Request) {
	sw := &streamWriter{w: w, rc: http.NewResponseController(w)}
	enc := json.NewEncoder(sw)
	sep := "["
	err := s.core.Engine().Conns(func(c api.Conn) bool {
		sw.WriteString(sep)
		sep = ","
		return enc.Encode(c) == nil
	})
	if err == nil && sw.err == nil {
		if sep == "[" {
			sw.WriteString("[")
		}
		sw.WriteString("]\n")
		sw.flush()
		return
	}
	if err != nil && !sw.wrote {
		writeJSON(w, http.StatusInternalServerError, api.Error{Message: "listing the connections: " + err.Error(), Errno: 5})
		return
	}
	if err != nil {
		s.log.Warn("listing the connections", "err", err)
	}
	// Half an array is sent: break the response so the client sees an
	// error, not a shorter table.
	panic(http.ErrAbortHandler)
}

// streamFlush is how much of a streamed response is buffered per write.
const streamFlush = 64 << 10

// streamWriter buffers a streamed response and writes it a piece at a
// time, renewing the write deadline before each: a long response is not
// cut off, a reader that stops reading is. Nothing is sent (wrote is
// false) until the first piece, so an early error can still be a 500.
type streamWriter struct {
	w     http.ResponseWriter
	rc    *http.ResponseController
	buf   []byte
	wrote bool
	err   error
}

func (s *streamWriter) Write(p []byte) (int, error) {
	s.buf = append(s.buf, p...)
	if len(s.buf) >= streamFlush {
		s.flush()
	}
	return len(p), s.err
}

func (s *streamWriter) WriteString(p string) { s.Write([]byte(p)) }

func (s *streamWriter) flush() {
	if s.err != nil || len(s.buf) == 0 {
		return
	}
	if !s.wrote {
		s.w.Header().Set("Content-Type", "application/json")
		s.wrote = true
	}
	s.rc.SetWriteDeadline(time.Now().Add(timeouts.write))
	if _, s.err = s.w.Write(s.buf); s.err == nil {
		s.err = s.rc.Flush()
	}
	s.buf = s.buf[:0]
}

// getEvents lists the engine's event counters (none for an engine that
// keeps none).
func (s *Server) getEvents(w http.ResponseWriter, _ *http.Request) {
	ev := api.Events{Engine: s.info.Engine, Counters: map[string]uint64{}}
	if e, ok := s.core.Engine().(engine.Eventer); ok {
		maps.Copy(ev.Counters, e.Events())
	}
	writeJSON(w, 200, ev)
}

func (s *Server) getChecks(w http.ResponseWriter, _ *http.Request) {
	h := api.Health{Services: []api.ServiceHealth{}}
	if s.health != nil {
		h = s.health()
	}
	writeJSON(w, 200, h)
}

func (s *Server) getVRRP(w http.ResponseWriter, _ *http.Request) {
	st := []vrrp.Status{}
	if s.vrrp != nil {
		st = s.vrrp()
	}
	writeJSON(w, 200, st)
}

func (s *Server) getBGP(w http.ResponseWriter, _ *http.Request) {
	st := api.BGP{Peers: []api.BGPPeer{}, VIPs: []api.BGPVIP{}}
	if s.bgp != nil {
		st = s.bgp()
	}
	writeJSON(w, 200, st)
}

func (s *Server) postMaintenance(w http.ResponseWriter, r *http.Request) {
	var m api.Maintenance
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<16))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&m); err != nil {
		writeJSON(w, http.StatusBadRequest, api.Error{Message: "bad request: " + err.Error(), Errno: 22})
		return
	}
	err := errors.New("bgp is not configured (no bgp: section in the config)")
	if s.maint != nil {
		err = s.maint(m.On, time.Duration(m.Drain)*time.Second)
	}
	if err != nil {
		writeJSON(w, http.StatusConflict, api.Error{Message: err.Error(), Errno: 95 /* EOPNOTSUPP */})
		return
	}
	s.log.Info("maintenance", "on", m.On, "drain_s", m.Drain)
	writeJSON(w, 200, struct{}{})
}

func (s *Server) getDaemons(w http.ResponseWriter, _ *http.Request) {
	d := s.core.Daemons()
	if d == nil {
		d = []model.SyncDaemon{}
	}
	writeJSON(w, 200, d)
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
	s.apply(w, body.Ops, nil)
}

// postRestore applies ipvsadm-save lines (the body, as text) as one
// batch, what gvsadm -R sends: the daemon parses them, which costs less
// than a JSON batch both ends encode and decode (docs/BENCHMARKS.md). The
// query's program is the name error messages give the command.
func (s *Server) postRestore(w http.ResponseWriter, r *http.Request) {
	p := ipvsadm.Parser{Program: r.URL.Query().Get("program")}
	cmds, err := p.ParseRestore(http.MaxBytesReader(w, r.Body, 256<<20))
	var ops []api.Op
	var cmdIndex []int
	if err == nil {
		ops, cmdIndex, err = ipvsadm.RestoreOps(cmds)
	}
	if err != nil {
		e := api.Error{Message: err.Error(), Errno: 22, Exit: 1}
		var ec interface{ ExitCode() int }
		if errors.As(err, &ec) {
			e.Exit = ec.ExitCode()
		}
		writeJSON(w, http.StatusBadRequest, e)
		return
	}
	s.apply(w, ops, cmdIndex)
}

// apply runs a batch and answers; cmdIndex maps an operation to its
// restore command (nil: no restore).
func (s *Server) apply(w http.ResponseWriter, ops []api.Op, cmdIndex []int) {
	err := s.core.Do(ops)
	// The deadline is for writing the answer, not for applying the batch.
	http.NewResponseController(w).SetWriteDeadline(time.Now().Add(timeouts.write))
	if err == nil {
		if slices.ContainsFunc(ops, func(o api.Op) bool { return o.Op != api.Zero }) {
			s.log.Info("rules changed", "ops", len(ops))
		}
		writeJSON(w, 200, struct{}{})
		return
	}
	e := api.Error{Message: err.Error()}
	var be *control.BatchError
	if errors.As(err, &be) {
		e.Index = be.Index
		if be.Index >= 0 && be.Index < len(cmdIndex) {
			e.Command = cmdIndex[be.Index] + 1
		}
	}
	var me *model.Error
	code := http.StatusInternalServerError
	if errors.As(err, &me) {
		e.Errno = int(me.Errno)
		code = http.StatusUnprocessableEntity
	}
	writeJSON(w, code, e)
}
