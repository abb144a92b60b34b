package main

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"time"
)

// peer is one thing the load goes through: a proxy in front of the two
// backends, or nothing (the baseline).
type peer struct {
	id, label string
	// Targets of the three tests; echo is the zero value when the peer
	// has no UDP.
	greet, sink, echo netip.AddrPort
	proc              *proc // nil for the baseline
}

// short is the peer's name without its version.
func (p *peer) short() string {
	switch p.id {
	case "direct":
		return "no proxy"
	case "haproxy":
		return "HAProxy"
	}
	return p.id
}

func (p *peer) cpu() time.Duration {
	if p.proc == nil {
		return 0
	}
	return groupCPU(p.proc.pgid())
}

// services are the addresses a proxy listens on, one per test.
type services struct{ greet, sink, echo netip.AddrPort }

func vip(addr string, base uint16) services {
	a := netip.MustParseAddr(addr)
	return services{netip.AddrPortFrom(a, base), netip.AddrPortFrom(a, base+1), netip.AddrPortFrom(a, base+2)}
}

// findBinary looks name up on PATH and in the sbin directories root's PATH
// has but a user's may not.
func findBinary(name string) (string, error) {
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	for _, d := range []string{"/usr/sbin", "/usr/local/sbin", "/sbin"} {
		p := filepath.Join(d, name)
		if st, err := os.Stat(p); err == nil && st.Mode().IsRegular() && st.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", fmt.Errorf("%s not found (scripts/install-deps.sh --bench installs it)", name)
}

// waitReady polls until the proxy forwards a TCP greeting (and a UDP echo
// when it has UDP), or the process exits, or 10 s pass.
func waitReady(p *peer) error {
	deadline := time.Now().Add(10 * time.Second)
	for {
		err := probeTCP(p.greet)
		if err == nil && p.echo.IsValid() {
			err = probeUDP(p.echo)
		}
		if err == nil {
			return nil
		}
		if p.proc != nil && p.proc.exited() {
			return fmt.Errorf("%s exited: %v\n%s", p.proc.name, p.proc.err, p.proc.tail(15))
		}
		if time.Now().After(deadline) {
			msg := ""
			if p.proc != nil {
				msg = "\n" + p.proc.tail(15)
			}
			return fmt.Errorf("%s not forwarding after 10 s: %v%s", p.label, err, msg)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func probeTCP(a netip.AddrPort) error {
	c, err := net.DialTimeout("tcp4", a.String(), time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(time.Second))
	buf := make([]byte, 256)
	n, err := readFull(c, buf)
	if err != nil {
		return err
	}
	if !bytes.Equal(buf[:n], greeting) {
		return fmt.Errorf("greeting through %s: got %q", a, buf[:n])
	}
	return nil
}

func probeUDP(a netip.AddrPort) error {
	c, err := net.DialUDP("udp4", nil, net.UDPAddrFromAddrPort(a))
	if err != nil {
		return err
	}
	defer c.Close()
	c.Write([]byte("probe"))
	c.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
	buf := make([]byte, 64)
	n, err := c.Read(buf)
	if err != nil {
		return fmt.Errorf("udp echo through %s: %w", a, err)
	}
	if string(buf[:n]) != "probe" {
		return fmt.Errorf("udp echo through %s: got %q", a, buf[:n])
	}
	return nil
}

// gvsd runs bin/gvsd with the proxy engine and sets its rules with
// bin/gvsadm: each service rr over the two backends, masquerading.
type gvsdPeer struct {
	gvsd, gvsadm, socket string
}

func startGVSD(binDir, dir string, s services, backends []*backend, extra []string) (*peer, *gvsdPeer, error) {
	g := &gvsdPeer{gvsd: filepath.Join(binDir, "gvsd"), gvsadm: filepath.Join(binDir, "gvsadm"), socket: filepath.Join(dir, "gvsd.sock")}
	for _, b := range []string{g.gvsd, g.gvsadm} {
		if _, err := os.Stat(b); err != nil {
			return nil, nil, fmt.Errorf("%s missing (make build)", b)
		}
	}
	args := append([]string{"--engine", "proxy", "--socket", g.socket, "--state-dir", filepath.Join(dir, "state")}, extra...)
	pr, err := startProc("gvsd", filepath.Join(dir, "gvsd.log"), g.gvsd, args...)
	if err != nil {
		return nil, nil, err
	}
	p := &peer{id: "gvsd", label: "gvsd proxy", greet: s.greet, sink: s.sink, echo: s.echo, proc: pr}
	deadline := time.Now().Add(10 * time.Second)
	for {
		if c, err := net.Dial("unix", g.socket); err == nil {
			c.Close()
			break
		}
		if pr.exited() || time.Now().After(deadline) {
			return p, g, fmt.Errorf("gvsd did not come up: %v\n%s", pr.err, pr.tail(15))
		}
		time.Sleep(20 * time.Millisecond)
	}
	rule := func(proto string, svc netip.AddrPort, dest func(*backend) netip.AddrPort) error {
		if _, err := g.adm("-A", proto, svc.String(), "-s", "rr"); err != nil {
			return err
		}
		for _, b := range backends {
			if _, err := g.adm("-a", proto, svc.String(), "-r", dest(b).String(), "-m"); err != nil {
				return err
			}
		}
		return nil
	}
	if err := errors.Join(
		rule("-t", s.greet, func(b *backend) netip.AddrPort { return b.greet }),
		rule("-t", s.sink, func(b *backend) netip.AddrPort { return b.sink }),
		rule("-u", s.echo, func(b *backend) netip.AddrPort { return b.echo }),
	); err != nil {
		return p, g, err
	}
	return p, g, waitReady(p)
}

func (g *gvsdPeer) adm(args ...string) (string, error) {
	cmd := exec.Command(g.gvsadm, append([]string{"--socket", g.socket}, args...)...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		return out.String(), fmt.Errorf("gvsadm %s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(errb.String()))
	}
	return out.String(), nil
}

// startHAProxy runs HAProxy in the foreground, mode tcp, roundrobin over
// the two backends, for the two TCP services (HAProxy has no UDP).
func startHAProxy(dir string, s services, backends []*backend, threads int) (*peer, error) {
	bin, err := findBinary("haproxy")
	if err != nil {
		return nil, err
	}
	var cfg strings.Builder
	fmt.Fprintf(&cfg, `global
	maxconn 8000
	nbthread %d

defaults
	mode tcp
	timeout connect 5s
	timeout client 30s
	timeout server 30s
`, threads)
	for _, svc := range []struct {
		name string
		vip  netip.AddrPort
		dest func(*backend) netip.AddrPort
	}{
		{"greet", s.greet, func(b *backend) netip.AddrPort { return b.greet }},
		{"sink", s.sink, func(b *backend) netip.AddrPort { return b.sink }},
	} {
		fmt.Fprintf(&cfg, "\nlisten %s\n\tbind %s\n\tbalance roundrobin\n", svc.name, svc.vip)
		for i, b := range backends {
			fmt.Fprintf(&cfg, "\tserver s%d %s\n", i+1, svc.dest(b))
		}
	}
	conf := filepath.Join(dir, "haproxy.cfg")
	if err := os.WriteFile(conf, []byte(cfg.String()), 0o644); err != nil {
		return nil, err
	}
	pr, err := startProc("haproxy", filepath.Join(dir, "haproxy.log"), bin, "-db", "-f", conf)
	if err != nil {
		return nil, err
	}
	p := &peer{id: "haproxy", label: "HAProxy " + version(bin, "-v", `version ([0-9.]+)`), greet: s.greet, sink: s.sink, proc: pr}
	return p, waitReady(p)
}

// nginxStreamModule returns the load_module line nginx needs for the
// stream module, "" when it is built in, or an error when nginx has none.
func nginxStreamModule(bin string) (string, error) {
	for _, m := range []string{"/usr/lib/nginx/modules/ngx_stream_module.so", "/usr/share/nginx/modules/ngx_stream_module.so"} {
		if _, err := os.Stat(m); err == nil {
			return "load_module " + m + ";\n", nil
		}
	}
	out, _ := exec.Command(bin, "-V").CombinedOutput()
	if bytes.Contains(out, []byte("--with-stream ")) || bytes.HasSuffix(bytes.TrimSpace(out), []byte("--with-stream")) {
		return "", nil
	}
	return "", errors.New("nginx has no stream module (Debian: libnginx-mod-stream; scripts/install-deps.sh --bench installs it)")
}

// startNginx runs nginx in the foreground with a stream-only config: the
// two TCP services and the UDP one, each over an upstream of the two
// backends (round robin, nginx's default).
func startNginx(dir string, s services, backends []*backend, workers int) (*peer, error) {
	bin, err := findBinary("nginx")
	if err != nil {
		return nil, err
	}
	mod, err := nginxStreamModule(bin)
	if err != nil {
		return nil, err
	}
	var cfg strings.Builder
	fmt.Fprintf(&cfg, `%sdaemon off;
master_process on;
worker_processes %d;
worker_rlimit_nofile 16384;
pid %s;
error_log %s warn;
events {
	worker_connections 8192;
}
stream {
`, mod, workers, filepath.Join(dir, "nginx.pid"), filepath.Join(dir, "error.log"))
	for _, svc := range []struct {
		name, listen string
		dest         func(*backend) netip.AddrPort
		extra        string
	}{
		{"greet", s.greet.String(), func(b *backend) netip.AddrPort { return b.greet }, ""},
		{"sink", s.sink.String(), func(b *backend) netip.AddrPort { return b.sink }, ""},
		// reuseport: each worker its own UDP socket, a client's datagrams
		// stay with one worker and so one session.
		{"echo", s.echo.String() + " udp reuseport", func(b *backend) netip.AddrPort { return b.echo }, "\t\tproxy_timeout 30s;\n"},
	} {
		fmt.Fprintf(&cfg, "\tupstream %s {\n", svc.name)
		for _, b := range backends {
			fmt.Fprintf(&cfg, "\t\tserver %s;\n", svc.dest(b))
		}
		fmt.Fprintf(&cfg, "\t}\n\tserver {\n\t\tlisten %s;\n\t\tproxy_pass %s;\n%s\t}\n", svc.listen, svc.name, svc.extra)
	}
	cfg.WriteString("}\n")
	conf := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(conf, []byte(cfg.String()), 0o644); err != nil {
		return nil, err
	}
	pr, err := startProc("nginx", filepath.Join(dir, "nginx.log"), bin, "-p", dir, "-e", filepath.Join(dir, "error.log"), "-c", conf)
	if err != nil {
		return nil, err
	}
	p := &peer{id: "nginx", label: "nginx " + version(bin, "-v", `nginx/(\S+)`) + " stream", greet: s.greet, sink: s.sink, echo: s.echo, proc: pr}
	if err := waitReady(p); err != nil {
		b, _ := os.ReadFile(filepath.Join(dir, "error.log"))
		return p, fmt.Errorf("%v\n%s", err, b)
	}
	return p, nil
}

func version(bin, flag, re string) string {
	out, _ := exec.Command(bin, flag).CombinedOutput()
	if m := regexp.MustCompile(re).FindSubmatch(out); m != nil {
		return string(m[1])
	}
	return ""
}
