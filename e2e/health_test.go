package e2e

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// succeeded says whether gvsd's log has a check of server succeeding.
func succeeded(log, server string) bool {
	for _, line := range strings.Split(log, "\n") {
		if strings.Contains(line, `msg="check succeeded"`) && strings.Contains(line, "server="+server) {
			return true
		}
	}
	return false
}

// switchable is a server on a fixed address that the test stops and
// starts again, as an operator stops a real server's daemon.
type switchable struct {
	t     *testing.T
	addr  string
	serve func(net.Listener)
	mu    sync.Mutex
	ln    net.Listener
}

func newSwitchable(t *testing.T, addr string, serve func(net.Listener)) *switchable {
	s := &switchable{t: t, addr: addr, serve: serve}
	s.start()
	t.Cleanup(s.stop)
	return s
}

func (s *switchable) start() {
	s.t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	ln, err := net.Listen("tcp", s.addr)
	if err != nil {
		s.t.Fatal(err)
	}
	s.ln = ln
	go s.serve(ln)
}

func (s *switchable) stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ln != nil {
		s.ln.Close()
		s.ln = nil
	}
}

// nameServer answers each connection with its name (as tcpServer).
func nameServer(name string) func(net.Listener) {
	return func(ln net.Listener) {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				fmt.Fprintf(c, "%s\n", name)
				io.Copy(io.Discard, c)
			}()
		}
	}
}

// healthServer answers GET /health with 200.
func healthServer(ln net.Listener) {
	mux := http.NewServeMux()
	mux.HandleFunc("/health", func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "ok\n") })
	(&http.Server{Handler: mux, ReadHeaderTimeout: time.Second}).Serve(ln)
}

// waitFor polls cond every 50 ms until it holds or limit passes; it
// returns how long it took, or fails the test with what last.
func waitFor(t *testing.T, limit time.Duration, what string, cond func() (bool, string)) time.Duration {
	t.Helper()
	start := time.Now()
	for {
		ok, last := cond()
		if ok {
			return time.Since(start)
		}
		if time.Since(start) > limit {
			t.Fatalf("%s: not within %v; last:\n%s", what, limit, last)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// spread asks addr n times and returns the answers joined, sorted into
// counts, e.g. "rs1=3 rs2=3".
func spread(t *testing.T, addr string, n int) string {
	t.Helper()
	count := map[string]int{}
	var names []string
	for range n {
		name := askTCP(t, addr)
		if count[name] == 0 {
			names = append(names, name)
		}
		count[name]++
	}
	slices.Sort(names)
	var out []string
	for _, nm := range names {
		out = append(out, fmt.Sprintf("%s=%d", nm, count[nm]))
	}
	return strings.Join(out, " ")
}

// A keepalived.conf as operators write it (global_defs, an include, two
// virtual servers, TCP_CHECK, HTTP_GET on a health port, MISC_CHECK with
// misc_dynamic, inhibit_on_failure, a sorry server, alpha) run by gvsd
// with the proxy engine on loopback: servers that stop are taken out
// within delay_loop x (retry + 1) + connect_timeout and come back when
// they start again; the quorum brings the sorry server in and out;
// gvsadm -S keeps the configured weights; a malformed file is refused
// with its file and line and changes nothing.
func TestHealthChecksProxy(t *testing.T) {
	dir := t.TempDir()
	rs1 := newSwitchable(t, "127.0.10.1:18201", nameServer("rs1"))
	rs2 := newSwitchable(t, "127.0.10.2:18201", nameServer("rs2"))
	rs2health := newSwitchable(t, "127.0.10.2:18202", healthServer)
	newSwitchable(t, "127.0.10.3:18201", nameServer("rs3"))
	newSwitchable(t, "127.0.10.9:18201", nameServer("sorry"))

	status := filepath.Join(dir, "status")
	write := func(path, s string) {
		t.Helper()
		if err := os.WriteFile(path, []byte(s), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	write(status, "7\n")
	write(filepath.Join(dir, "check.sh"), "#!/bin/sh\nexit $(cat "+status+")\n")
	write(filepath.Join(dir, "extra.conf"), `
virtual_server 127.0.9.11 80 {
    delay_loop 1
    lb_algo wrr
    lb_kind NAT
    alpha
    real_server 127.0.10.3 18201 {
        weight 2
        MISC_CHECK {
            misc_path "`+dir+`/check.sh"
            misc_timeout 1
            misc_dynamic
        }
    }
}
`)
	cfg := filepath.Join(dir, "keepalived.conf")
	good := `! Configuration File for keepalived
global_defs {
    router_id LVS_TEST
}
include extra.conf

virtual_server 127.0.9.10 80 {
    delay_loop 1
    lb_algo rr
    lb_kind NAT
    protocol TCP
    sorry_server 127.0.10.9 18201

    real_server 127.0.10.1 18201 {
        weight 1
        TCP_CHECK {
            connect_timeout 1
            retry 1
            delay_before_retry 0.5
        }
    }
    real_server 127.0.10.2 18201 {
        weight 1
        inhibit_on_failure
        HTTP_GET {
            url {
                path /health
                status_code 200
            }
            connect_port 18202
            connect_timeout 1
            retry 1
            delay_before_retry 0.5
        }
    }
}
`
	write(cfg, good)
	d := startDaemon(t, t.TempDir(), "--engine", "proxy", "--config", cfg)
	list := func() string { return d.must("-L", "-n") }
	has := func(s string) func() (bool, string) {
		return func() (bool, string) { l := list(); return strings.Contains(l, s), l }
	}
	hasNot := func(s string) func() (bool, string) {
		return func() (bool, string) { l := list(); return !strings.Contains(l, s), l }
	}
	// weight: the server addr listed with weight w.
	weight := func(addr, w string) func() (bool, string) {
		return func() (bool, string) {
			l := list()
			for _, line := range strings.Split(l, "\n") {
				if f := strings.Fields(line); len(f) >= 4 && f[0] == "->" && f[1] == addr && f[3] == w {
					return true, l
				}
			}
			return false, l
		}
	}
	if !strings.Contains(d.log.String(), "global_defs") {
		t.Errorf("no notice about the ignored global_defs:\n%s", d.log)
	}

	// alpha: rs3 is served only after its first check succeeded (logged
	// before the engine is told), with the weight misc_dynamic asks for
	// (exit 7: weight 5). A listing taken before the log is read cannot
	// show it without the log having the success.
	waitFor(t, 5*time.Second, "rs3 up with weight 5", func() (bool, string) {
		l := list()
		if strings.Contains(l, "127.0.10.3:18201") && !succeeded(d.log.String(), "127.0.10.3:18201") {
			t.Fatalf("alpha server served before its first check succeeded:\n%s\n%s", l, d.log)
		}
		return weight("127.0.10.3:18201", "5")()
	})
	if got := spread(t, "127.0.9.10:80", 4); got != "rs1=2 rs2=2" {
		t.Fatalf("both up: %s", got)
	}

	// rs1 stops: out within delay_loop x (retry+1) + connect_timeout = 3 s.
	rs1.stop()
	took := waitFor(t, 5*time.Second, "rs1 removed", hasNot("127.0.10.1:18201"))
	if took > 3*time.Second+500*time.Millisecond {
		t.Errorf("rs1 removed after %v, want within 3 s", took)
	}
	t.Logf("rs1 removed %v after it stopped", took)
	if got := spread(t, "127.0.9.10:80", 4); got != "rs2=4" {
		t.Fatalf("rs1 down: %s", got)
	}

	// rs2's health port stops: inhibited (weight 0), and with no live
	// weight left the quorum is lost: the sorry server serves.
	rs2health.stop()
	waitFor(t, 5*time.Second, "sorry server in", has("127.0.10.9:18201"))
	waitFor(t, 2*time.Second, "rs2 at weight 0", weight("127.0.10.2:18201", "0"))
	if got := spread(t, "127.0.9.10:80", 3); got != "sorry=3" {
		t.Fatalf("quorum lost: %s", got)
	}
	// The configured weights stay as the operator gave them.
	save := d.must("-S", "-n")
	for _, want := range []string{"-a -t 127.0.9.10:80 -r 127.0.10.1:18201 -m -w 1", "-a -t 127.0.9.10:80 -r 127.0.10.2:18201 -m -w 1",
		"-a -t 127.0.9.11:80 -r 127.0.10.3:18201 -m -w 2"} {
		if !strings.Contains(save, want) {
			t.Errorf("-S lacks %q:\n%s", want, save)
		}
	}
	if strings.Contains(save, "127.0.10.9") {
		t.Errorf("-S shows the sorry server:\n%s", save)
	}
	checks := d.must("--list-checks", "-n")
	for _, want := range []string{"LOST", "127.0.10.9:18201 (serving)", "DOWN (w0)", "HTTP_GET", "connection refused"} {
		if !strings.Contains(checks, want) {
			t.Errorf("--list-checks lacks %q:\n%s", want, checks)
		}
	}

	// rs1 comes back: the quorum is back, the sorry server goes.
	rs1.start()
	waitFor(t, 5*time.Second, "sorry server out", hasNot("127.0.10.9:18201"))
	if got := spread(t, "127.0.9.10:80", 3); got != "rs1=3" {
		t.Fatalf("rs1 back, rs2 at 0: %s", got)
	}
	rs2health.start()
	waitFor(t, 5*time.Second, "rs2 back at weight 1", weight("127.0.10.2:18201", "1"))
	_ = rs2

	// The operator changes rs1's weight by hand: the configured weight
	// changes and is served.
	d.must("-e", "-t", "127.0.9.10:80", "-r", "127.0.10.1:18201", "-m", "-w", "3")
	if ok, l := weight("127.0.10.1:18201", "3")(); !ok {
		t.Fatalf("-e -w by hand:\n%s", l)
	}

	// MISC_CHECK exits 1: rs3 goes.
	write(status, "1\n")
	waitFor(t, 4*time.Second, "rs3 down", hasNot("127.0.10.3:18201"))

	// A malformed file is refused with file and line, and changes nothing.
	before := d.must("-S", "-n")
	write(cfg, strings.Replace(good, "lb_algo rr", "lb_algo rr\n    bogus_keyword 1", 1))
	d.cmd.Process.Signal(syscall.SIGHUP)
	waitFor(t, 3*time.Second, "reload refused", func() (bool, string) {
		l := d.log.String()
		return strings.Contains(l, "config reload refused") && strings.Contains(l, "keepalived.conf:10"), l
	})
	if after := d.must("-S", "-n"); after != before {
		t.Errorf("a refused file changed the rules:\n%s\nwas:\n%s", after, before)
	}
}

// Health checks with the xdp engine in namespaces: a DR service from a
// YAML config with a TCP_CHECK on each real server's own address; a
// server whose daemon stops gets no new connection within delay_loop x
// (retry + 1) + connect_timeout, and is back when it starts again.
func TestHealthChecksXDP(t *testing.T) {
	cfg := filepath.Join(t.TempDir(), "gvs.yaml")
	if err := os.WriteFile(cfg, []byte(`services:
  - tcp: `+vip+`:8080
    scheduler: rr
    delay_loop: 1
    check:
      - type: TCP_CHECK
        connect_timeout: 1
        retry: 1
        delay_before_retry: 0.5
    servers:
      - {address: 198.18.0.11:8080, method: route}
      - {address: 198.18.0.12:8080, method: route}
`), 0o600); err != nil {
		t.Fatal(err)
	}
	tp := newDRTopoArgs(t, false, "--config", cfg)
	exe, _ := os.Executable()
	daemons := map[string]*exec.Cmd{}
	serve := func(name string) {
		daemons[name] = tp.start(tp.ns(name), "env", "GVS_E2E_ROLE=serve 0.0.0.0:8080 "+name, exe)
	}
	serve("rs1")
	serve("rs2")
	d := tp.d
	list := func() (bool, string) { l := d.must("-L", "-n"); return strings.Contains(l, "198.18.0.11:8080"), l }
	waitFor(t, 5*time.Second, "both servers checked up", func() (bool, string) {
		h := d.must("--list-checks", "-n")
		return strings.Count(h, " ok ") == 2, h
	})
	client := tp.ns("client")
	// rr alternates; which server comes first depends on the order the
	// servers came up in (gvsd starts before they listen, so each is
	// checked down, then up again: re-added at the head of the list).
	if got := tp.hellos(d, client, vip+":8080", 4); got[0] == got[1] || got[0] != got[2] || got[1] != got[3] {
		t.Fatalf("both up: %s", strings.Join(got, " "))
	}

	daemons["rs1"].Process.Kill()
	daemons["rs1"].Wait()
	took := waitFor(t, 5*time.Second, "rs1 removed", func() (bool, string) { ok, l := list(); return !ok, l })
	t.Logf("rs1 removed %v after its daemon died", took)
	if took > 3*time.Second+500*time.Millisecond {
		t.Errorf("rs1 removed after %v, want within 3 s", took)
	}
	if got := strings.Join(tp.hellos(d, client, vip+":8080", 3), " "); got != "rs2 rs2 rs2" {
		t.Fatalf("rs1 down: %s", got)
	}
	serve("rs1")
	waitFor(t, 5*time.Second, "rs1 back", list)
	if got := strings.Join(tp.hellos(d, client, vip+":8080", 2), " "); !strings.Contains(got, "rs1") {
		t.Fatalf("rs1 back: %s", got)
	}
}
