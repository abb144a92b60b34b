package e2e

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// tcpServer answers each connection with its name and echoes what it gets.
func tcpServer(t *testing.T, addr, name string) {
	t.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				fmt.Fprintf(c, "%s\n", name)
				io.Copy(c, c)
			}()
		}
	}()
}

// udpServer answers each datagram with its name.
func udpServer(t *testing.T, addr, name string) {
	t.Helper()
	pc, err := net.ListenPacket("udp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	go func() {
		buf := make([]byte, 2048)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			pc.WriteTo([]byte(name+":"+string(buf[:n])), from)
		}
	}()
}

func askTCP(t *testing.T, addr string) string {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 3*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(3 * time.Second))
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		t.Fatalf("%s: %v", addr, err)
	}
	return strings.TrimSpace(line)
}

func askUDP(t *testing.T, addr, msg string) string {
	t.Helper()
	c, err := net.Dial("udp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(3 * time.Second))
	c.Write([]byte(msg))
	buf := make([]byte, 2048)
	n, err := c.Read(buf)
	if err != nil {
		t.Fatalf("%s: %v", addr, err)
	}
	return string(buf[:n])
}

// The proxy engine end to end, without privileges: rules through gvsadm,
// traffic through gvsd, the spread and the counters in ipvsadm's formats.
func TestProxyTCPAndUDP(t *testing.T) {
	tcpServer(t, "127.0.10.1:18001", "rs1")
	tcpServer(t, "127.0.10.2:18001", "rs2")
	udpServer(t, "127.0.10.1:18053", "rs1")
	udpServer(t, "127.0.10.2:18053", "rs2")
	d := startDaemon(t, t.TempDir(), "--engine", "proxy")

	d.must("-A", "-t", "127.0.9.1:80", "-s", "wrr")
	d.must("-a", "-t", "127.0.9.1:80", "-r", "127.0.10.1:18001", "-m", "-w", "1")
	d.must("-a", "-t", "127.0.9.1:80", "-r", "127.0.10.2:18001", "-m", "-w", "2")
	d.must("-A", "-u", "127.0.9.1:53", "-s", "rr")
	d.must("-a", "-u", "127.0.9.1:53", "-r", "127.0.10.1:18053", "-m")
	d.must("-a", "-u", "127.0.9.1:53", "-r", "127.0.10.2:18053", "-m")

	// wrr with weights rs1:1, rs2:2; the list is rs2, rs1 (newest first).
	// Adding rs1 set cw to 1 and adding rs2 kept it (ip_vs_wrr_dest_changed),
	// so the first pass takes every server with weight >= 1, then the
	// cycles are cw 2 (rs2), cw 1 (rs2, rs1).
	var got []string
	for range 6 {
		got = append(got, askTCP(t, "127.0.9.1:80"))
	}
	if want := "rs2 rs1 rs2 rs2 rs1 rs2"; strings.Join(got, " ") != want {
		t.Errorf("wrr spread %q, want %q", strings.Join(got, " "), want)
	}
	// rr over UDP from different source ports: alternate, newest first.
	got = got[:0]
	for i := range 4 {
		got = append(got, askUDP(t, "127.0.9.1:53", fmt.Sprint(i)))
	}
	if want := "rs2:0 rs1:1 rs2:2 rs1:3"; strings.Join(got, " ") != want {
		t.Errorf("rr spread %q, want %q", strings.Join(got, " "), want)
	}

	// Give the proxy a moment to account the closed TCP connections.
	time.Sleep(300 * time.Millisecond)
	out := d.must("-L", "-n", "--stats", "--exact")
	lines := strings.Split(out, "\n")
	var udpSvc, tcpSvc []string
	for _, l := range lines {
		f := strings.Fields(l)
		if len(f) > 0 && f[0] == "UDP" {
			udpSvc = f
		}
		if len(f) > 0 && f[0] == "TCP" {
			tcpSvc = f
		}
	}
	// UDP: 4 connections, 4 datagrams in of 1 byte (+8+20), 4 out of
	// "rsN:i" 5 bytes (+28).
	if strings.Join(udpSvc, " ") != "UDP 127.0.9.1:53 4 4 4 116 132" {
		t.Errorf("UDP stats %q\n%s", udpSvc, out)
	}
	if len(tcpSvc) != 7 || tcpSvc[2] != "6" {
		t.Errorf("TCP stats %q\n%s", tcpSvc, out)
	}
	conns := d.must("-L", "-n", "-c")
	if strings.Count(conns, "TIME_WAIT") != 6 || strings.Count(conns, "\nUDP ") != 4 {
		t.Errorf("connection table:\n%s", conns)
	}
	// Zeroing.
	d.must("-Z")
	if out := d.must("-L", "-n", "--stats"); !strings.Contains(strings.Join(strings.Fields(out), " "), "UDP 127.0.9.1:53 0 0 0 0 0") {
		t.Errorf("after -Z:\n%s", out)
	}
}

// Rules survive a clean restart and a crash; save, clear and restore give
// the same rules back; bad input changes nothing.
func TestRulesPersistAndRestore(t *testing.T) {
	state := t.TempDir()
	d := startDaemon(t, state, "--engine", "proxy")
	d.must("-A", "-t", "127.0.9.2:8080", "-s", "sh", "-p", "120", "-M", "255.255.255.0")
	d.must("-a", "-t", "127.0.9.2:8080", "-r", "127.0.10.1:18080", "-m", "-w", "3", "-x", "100", "-y", "10")
	d.must("-a", "-t", "127.0.9.2:8080", "-r", "127.0.10.2:18080", "--fullnat", "-w", "0")
	d.must("-A", "-u", "127.0.9.2:5353", "-s", "mh", "-b", "mh-port,mh-fallback")
	d.must("--set", "100", "20", "30")
	before := d.must("-L", "-n")
	save := d.must("-S", "-n")

	for _, bad := range []struct {
		args []string
		msg  string
		code int
	}{
		{[]string{"-A", "-t", "127.0.9.2:8080"}, "Service already exists", 255},
		{[]string{"-A", "-t", "127.0.9.3:80", "-s", "nosuch"}, "Scheduler or persistence engine not found", 255},
		{[]string{"-a", "-t", "127.0.9.9:80", "-r", "127.0.10.1", "-m"}, "Service not defined", 255},
		{[]string{"-d", "-t", "127.0.9.2:8080", "-r", "127.0.10.9:1"}, "No such destination", 255},
		{[]string{"-A", "-t", "127.0.9.300:80"}, "illegal virtual server address[:port] specified", 2},
		{[]string{"-A", "-t", "127.0.9.3:0"}, "Zero port specified for non-persistent service", 2},
		{[]string{"-a", "-t", "127.0.9.2:8080", "-r", "127.0.10.3"}, "direct routing (-g, the default method) needs the xdp engine", 255},
	} {
		_, errs, code := d.adm("", bad.args...)
		if !strings.Contains(errs, bad.msg) || code != bad.code {
			t.Errorf("gvsadm %v: exit %d %q, want %d %q", bad.args, code, errs, bad.code, bad.msg)
		}
	}
	// A malformed -R file: nothing applied.
	_, errs, code := d.adm("-A -t 127.0.9.5:80 -s rr\n-a -t 127.0.9.5:80 -r 127.0.10.1:80 -m\n-A -t 127.0.9.5:80 -s rr\n", "-R")
	if code == 0 || !strings.Contains(errs, "Service already exists") {
		t.Errorf("bad restore: exit %d %q", code, errs)
	}
	if after := d.must("-L", "-n"); after != before {
		t.Fatalf("refused commands changed the rules:\n%s\nwas:\n%s", after, before)
	}

	// Save, clear, restore.
	d.must("-C")
	if out := d.must("-L", "-n"); strings.Contains(out, "127.0.9.2") {
		t.Fatalf("-C left rules:\n%s", out)
	}
	if _, errs, code := d.adm(save, "-R"); code != 0 {
		t.Fatalf("restore: %d %s", code, errs)
	}
	restored := d.must("-S", "-n")
	if restored != save {
		t.Errorf("save after restore:\n%s\nwant:\n%s", restored, save)
	}

	// Clean restart, then a crash: the rules are back each time.
	d.stop()
	d.start()
	if got := d.must("-S", "-n"); got != save {
		t.Errorf("after restart:\n%s\nwant:\n%s", got, save)
	}
	if got := d.must("-L", "--timeout"); got != "Timeout (tcp tcpfin udp): 100 20 30\n" {
		t.Errorf("timeouts after restart: %q", got)
	}
	d.kill()
	d.start()
	if got := d.must("-S", "-n"); got != save {
		t.Errorf("after crash:\n%s\nwant:\n%s", got, save)
	}
}

// gvsadm says clearly when gvsd is not running.
func TestNoDaemon(t *testing.T) {
	binaries(t)
	d := &daemon{t: t, socket: t.TempDir() + "/none.sock"}
	_, errs, code := d.adm("", "-L", "-n")
	if code != 1 || !strings.Contains(errs, "gvsd is not running") {
		t.Errorf("exit %d %q", code, errs)
	}
}

// Edits are live: quiescing or deleting one server leaves the other
// servers' established connections alone.
func TestLiveEdits(t *testing.T) {
	tcpServer(t, "127.0.10.1:18101", "rs1")
	tcpServer(t, "127.0.10.2:18101", "rs2")
	d := startDaemon(t, t.TempDir(), "--engine", "proxy")
	d.must("-A", "-t", "127.0.9.4:80", "-s", "rr")
	d.must("-a", "-t", "127.0.9.4:80", "-r", "127.0.10.1:18101", "-m")
	d.must("-a", "-t", "127.0.9.4:80", "-r", "127.0.10.2:18101", "-m")

	var mu sync.Mutex
	open := map[string]net.Conn{}
	for range 2 {
		c, err := net.Dial("tcp", "127.0.9.4:80")
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(5 * time.Second))
		name, _ := bufio.NewReader(c).ReadString('\n')
		mu.Lock()
		open[strings.TrimSpace(name)] = c
		mu.Unlock()
	}
	if len(open) != 2 {
		t.Fatalf("connections reached %v", open)
	}
	d.must("-e", "-t", "127.0.9.4:80", "-r", "127.0.10.1:18101", "-m", "-w", "0")
	d.must("-d", "-t", "127.0.9.4:80", "-r", "127.0.10.1:18101")
	// New connections go to rs2 only; rs2's open connection still echoes.
	for range 3 {
		if got := askTCP(t, "127.0.9.4:80"); got != "rs2" {
			t.Fatalf("after deleting rs1, a new connection reached %s", got)
		}
	}
	c := open["rs2"]
	c.Write([]byte("still here\n"))
	buf := make([]byte, 64)
	n, err := c.Read(buf)
	if err != nil || string(buf[:n]) != "still here\n" {
		t.Fatalf("rs2's connection broke: %q %v", buf[:n], err)
	}
	// Deleting the service closes its listener.
	d.must("-D", "-t", "127.0.9.4:80")
	if c, err := net.DialTimeout("tcp", "127.0.9.4:80", time.Second); err == nil {
		c.Close()
		t.Fatal("listener still open after -D")
	}
}

// --config at start and on SIGHUP: the rules converge to the file; a bad
// file changes nothing.
func TestConfigReload(t *testing.T) {
	dir := t.TempDir()
	cfg := dir + "/rules.yaml"
	write := func(s string) {
		if err := os.WriteFile(cfg, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("services:\n  - tcp: 127.0.9.6:80\n    scheduler: rr\n    servers:\n      - {address: 127.0.10.1:18001, method: masq}\n")
	d := startDaemon(t, t.TempDir(), "--engine", "proxy", "--config", cfg)
	want := "-A -t 127.0.9.6:80 -s rr\n-a -t 127.0.9.6:80 -r 127.0.10.1:18001 -m -w 1\n"
	if got := d.must("-S", "-n"); got != want {
		t.Fatalf("after start:\n%s\nwant:\n%s", got, want)
	}
	reload := func() {
		d.cmd.Process.Signal(syscall.SIGHUP)
		time.Sleep(300 * time.Millisecond)
	}
	// ipvsadm-save lines are accepted too.
	write("-A -t 127.0.9.6:80 -s wrr\n-a -t 127.0.9.6:80 -r 127.0.10.2:18001 -m -w 3\n-A -u 127.0.9.6:53 -s sh\n")
	reload()
	want = "-A -t 127.0.9.6:80 -s wrr\n-a -t 127.0.9.6:80 -r 127.0.10.2:18001 -m -w 3\n-A -u 127.0.9.6:53 -s sh\n"
	if got := d.must("-S", "-n"); got != want {
		t.Fatalf("after SIGHUP:\n%s\nwant:\n%s", got, want)
	}
	write("services:\n  - tcp: 127.0.9.6:80\n    scheduler: bogus\n")
	reload()
	if got := d.must("-S", "-n"); got != want {
		t.Fatalf("a bad file changed the rules:\n%s", got)
	}
	if !strings.Contains(d.log.String(), "config reload refused") {
		t.Errorf("no log line for the refused reload:\n%s", d.log)
	}
}
