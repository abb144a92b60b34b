package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"gvs/client"
)

type logBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuf) Write(p []byte) (int, error) { l.mu.Lock(); defer l.mu.Unlock(); return l.b.Write(p) }
func (l *logBuf) String() string              { l.mu.Lock(); defer l.mu.Unlock(); return l.b.String() }

// gvsd is a run in progress.
type gvsd struct {
	t    *testing.T
	sig  chan os.Signal
	done chan struct{} // closed when run has returned err
	err  error
	log  *logBuf
	api  *client.Client
	sock string
}

func startRun(t *testing.T, o options) *gvsd {
	t.Helper()
	g := &gvsd{t: t, sig: make(chan os.Signal, 1), done: make(chan struct{}), log: &logBuf{}, sock: o.socket}
	go func() {
		defer close(g.done)
		g.err = run(slog.New(slog.NewTextHandler(g.log, nil)), o, g.sig)
	}()
	t.Cleanup(func() {
		select {
		case <-g.done:
		default:
			g.sig <- syscall.SIGTERM
			<-g.done
		}
	})
	g.api = client.New(o.socket)
	g.until("the API answers", func() bool { _, err := g.api.Info(); return err == nil })
	return g
}

// until polls cond for 10 s; run ending meanwhile fails the test.
func (g *gvsd) until(what string, cond func() bool) {
	g.t.Helper()
	for end := time.Now().Add(10 * time.Second); time.Now().Before(end); time.Sleep(20 * time.Millisecond) {
		select {
		case <-g.done:
			g.t.Fatalf("gvsd ended (%v) before %s; log:\n%s", g.err, what, g.log)
		default:
		}
		if cond() {
			return
		}
	}
	g.t.Fatalf("timed out waiting until %s; log:\n%s", what, g.log)
}

func (g *gvsd) services() int {
	g.t.Helper()
	s, err := g.api.Services()
	if err != nil {
		g.t.Fatal(err)
	}
	return len(s.Services)
}

func (g *gvsd) sysctls() map[string]int {
	g.t.Helper()
	hc := http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", g.sock)
	}}}
	resp, err := hc.Get("http://gvsd/v1/sysctls")
	if err != nil {
		g.t.Fatal(err)
	}
	defer resp.Body.Close()
	var m map[string]int
	if err := json.NewDecoder(resp.Body).Decode(&m); err != nil {
		g.t.Fatal(err)
	}
	return m
}

func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

func write(t *testing.T, path, text string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
}

// Corrupt saved rules and an invalid config at start do not stop gvsd: it
// serves the API, the bad rules file is kept aside, and SIGHUP retries the
// config. A config emptied by accident then changes nothing; services: []
// does clear.
func TestRunSurvivesBadRulesAndConfig(t *testing.T) {
	dir := t.TempDir()
	state := filepath.Join(dir, "state")
	if err := os.Mkdir(state, 0o700); err != nil {
		t.Fatal(err)
	}
	write(t, filepath.Join(state, "rules.json"), `{"version": 1, "services": [{"service": `)
	cfg := filepath.Join(dir, "gvs.yaml")
	write(t, cfg, "services:\n  - tcp: nope\n")
	g := startRun(t, options{engine: "proxy", socket: filepath.Join(dir, "gvsd.sock"), stateDir: state, configFile: cfg,
		sysctls: map[string]int{"expire_nodest_conn": 1}})

	if n := g.services(); n != 0 {
		t.Fatalf("%d services", n)
	}
	bad, _ := filepath.Glob(filepath.Join(state, "rules.json.bad-*"))
	if len(bad) != 1 {
		t.Fatalf("set-aside files %v", bad)
	}
	for _, want := range []string{"saved rules NOT restored", bad[0], "config NOT applied", "want ADDR:PORT"} {
		if !strings.Contains(g.log.String(), want) {
			t.Errorf("log lacks %q:\n%s", want, g.log)
		}
	}
	if m := g.sysctls(); m["expire_nodest_conn"] != 1 || m["conn_reuse_mode"] != 1 || len(m) != 8 {
		t.Errorf("sysctls %v", m)
	}

	write(t, cfg, fmt.Sprintf("sysctls: {sloppy_tcp: 1}\nservices:\n  - tcp: 127.0.0.1:%d\n    servers: [{address: \"127.0.0.1:%d\", method: masq}]\n", freePort(t), freePort(t)))
	g.sig <- syscall.SIGHUP
	g.until("the repaired config is applied", func() bool { return g.services() == 1 })
	if m := g.sysctls(); m["expire_nodest_conn"] != 1 || m["sloppy_tcp"] != 1 {
		t.Errorf("sysctls %v", m)
	}
	if _, err := os.Stat(filepath.Join(state, "rules.json")); err != nil {
		t.Errorf("rules not saved: %v", err)
	}

	for i, empty := range []string{"", "# emptied\n", "services:\n"} {
		write(t, cfg, empty)
		g.sig <- syscall.SIGHUP
		g.until("the empty config is refused", func() bool {
			return strings.Count(g.log.String(), "would delete all 1 running services") == i+1
		})
		if n := g.services(); n != 1 {
			t.Fatalf("config %q: %d services", empty, n)
		}
	}
	write(t, cfg, "services: []\n")
	g.sig <- syscall.SIGHUP
	g.until("services: [] clears", func() bool { return g.services() == 0 })

	g.sig <- syscall.SIGTERM
	<-g.done
	if g.err != nil {
		t.Fatal(g.err)
	}
}

// An unsafe state directory stops gvsd before it starts an engine.
func TestRunRefusesUnsafeStateDir(t *testing.T) {
	dir := t.TempDir()
	state := filepath.Join(dir, "state")
	if err := os.Mkdir(state, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(state, 0o777); err != nil {
		t.Fatal(err)
	}
	sig := make(chan os.Signal, 1)
	sig <- syscall.SIGTERM
	err := run(slog.New(slog.NewTextHandler(&logBuf{}, nil)), options{engine: "proxy", socket: filepath.Join(dir, "gvsd.sock"), stateDir: state}, sig)
	if err == nil || !strings.Contains(err.Error(), "writable by others") {
		t.Fatalf("run: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "gvsd.sock")); err == nil {
		t.Fatal("the API was served")
	}
}
