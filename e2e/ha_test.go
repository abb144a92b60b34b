package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// haTopo is two directors running gvsd's xdp engine side by side on one
// segment with a client and two DR real servers: VRRP (from the config
// file) decides which one has the VIP, and connection sync gives the
// backup the master's connections.
type haTopo struct {
	*topo
	d map[string]*daemon
}

const haVIP = "198.18.0.100"

// haConfig is the keepalived.conf of a director: priority decides the
// master; the sync daemon follows the VRRP instance. For NAT the real
// servers are on 198.18.1.0/24 behind the directors, whose VRRP instance
// also moves their gateway, 198.18.1.1.
func haConfig(priority int, persistent, nat bool) string {
	persist := ""
	if persistent {
		persist = "    persistence_timeout 120\n"
	}
	kind, rs1, rs2, port, gw := "DR", "198.18.0.11", "198.18.0.12", "80", ""
	if nat {
		kind, rs1, rs2, port, gw = "NAT", "198.18.1.11", "198.18.1.12", "8080", "\n        198.18.1.1/24 dev eth0"
	}
	vs := func(proto string) string {
		return `virtual_server ` + haVIP + ` 80 {
    lb_algo rr
    lb_kind ` + kind + `
    protocol ` + proto + `
` + persist + `    real_server ` + rs1 + ` ` + port + ` {
        weight 1
    }
    real_server ` + rs2 + ` ` + port + ` {
        weight 1
    }
}
`
	}
	return fmt.Sprintf(`global_defs {
    router_id gvs-e2e
    lvs_sync_daemon eth0 VI_1 id 7
}
vrrp_instance VI_1 {
    state BACKUP
    interface eth0
    virtual_router_id 51
    priority %d
    advert_int 1
    virtual_ipaddress {
        %s/32 dev eth0%s
    }
}
`, priority, haVIP, gw) + vs("TCP") + vs("UDP")
}

func newHATopo(t *testing.T, persistent, nat bool) *haTopo {
	t.Helper()
	needRoot(t)
	bin := binaries(t)
	tp := &haTopo{topo: newTopo(t), d: map[string]*daemon{}}
	tp.host("client", "198.18.0.1/24")
	for i, name := range []string{"rs1", "rs2"} {
		if nat {
			ns := tp.host(name, fmt.Sprintf("198.18.1.1%d/24", i+1))
			tp.mustRun(ns, "ip", "route", "add", "default", "via", "198.18.1.1")
			tp.serve(ns, "0.0.0.0:8080", name)
			continue
		}
		ns := tp.host(name, fmt.Sprintf("198.18.0.1%d/24", i+1))
		tp.mustRun("", append(nsenter(ns), filepath.Join(bin, "gvs-realserver"), "up", "-q", "--vip", haVIP, "--state-dir", t.TempDir())...)
		tp.serve(ns, haVIP+":80", name)
	}
	for i, name := range []string{"d1", "d2"} {
		ns := tp.host(name, fmt.Sprintf("198.18.0.%d/24", i+2))
		tp.napiPeer(name)
		// No ICMP redirects for what the stack forwards between the two
		// subnets (NAT).
		tp.mustRun(ns, "sysctl", "-qw", "net.ipv4.conf.eth0.forwarding=1", "net.ipv4.conf.all.forwarding=1",
			"net.ipv4.conf.all.send_redirects=0", "net.ipv4.conf.eth0.send_redirects=0")
		if nat {
			// Each director's own address on the servers' subnet, as LVS-NAT
			// pairs have: routes and next hops are ready on the backup.
			tp.mustRun(ns, "ip", "addr", "add", fmt.Sprintf("198.18.1.%d/24", i+2), "dev", "eth0")
		}
		cfg := filepath.Join(t.TempDir(), "keepalived.conf")
		if err := os.WriteFile(cfg, []byte(haConfig(150-50*i, persistent, nat)), 0o600); err != nil {
			t.Fatal(err)
		}
		pinDir := "/sys/fs/bpf/" + tp.prefix + "-" + name
		d := startWrapped(t, t.TempDir(), nsenter(ns), "--engine", "xdp", "--interface", "eth0",
			"--bpf-pin-dir", pinDir, "--max-conns", "65536", "--config", cfg)
		t.Cleanup(func() {
			d.stop()
			tp.run("", append(nsenter(ns), filepath.Join(bin, "gvsd"), "--cleanup", "--bpf-pin-dir", pinDir)...)
			os.RemoveAll(pinDir)
		})
		tp.d[name] = d
	}
	if nat {
		// Traffic to and from the servers crosses the directors' XDP
		// programs: no GRO on the other hosts' switch ports (a real NIC
		// runs XDP before GRO).
		for _, name := range []string{"client", "rs1", "rs2"} {
			tp.mustRun(tp.prefix+"-sw", "ethtool", "-K", "p-"+name, "gro", "off")
		}
	}
	return tp
}

// hasVIP says whether director name has the VIP on eth0.
func (tp *haTopo) hasVIP(name string) bool {
	out, _ := tp.run(tp.ns(name), "ip", "-4", "addr", "show", "dev", "eth0")
	return strings.Contains(out, haVIP+"/32")
}

// Two directors with VRRP and connection sync, DR and NAT: a long TCP
// transfer and a stream of UDP datagrams (persistent service) run through
// the master; the master's gvsd is killed and its link goes down; the
// backup takes the VIP (and, for NAT, the servers' gateway) within the
// master-down interval and already knows the connections, so the
// transfer completes byte-exact and the datagrams keep their server.
func TestHAFailoverDR(t *testing.T) { testFailover(t, false) }

func TestHAFailoverNAT(t *testing.T) { testFailover(t, true) }

func testFailover(t *testing.T, nat bool) {
	tp := newHATopo(t, true, nat)
	waitFor(t, 10*time.Second, "d1 master with the VIP", func() (bool, string) {
		return tp.hasVIP("d1") && !tp.hasVIP("d2"), tp.d["d1"].log.String() + tp.d["d2"].log.String()
	})
	waitFor(t, 5*time.Second, "sync daemons follow VRRP", func() (bool, string) {
		a, b := tp.d["d1"].must("-L", "--daemon"), tp.d["d2"].must("-L", "--daemon")
		return strings.HasPrefix(a, "master sync daemon (mcast=eth0, syncid=7") &&
			strings.HasPrefix(b, "backup sync daemon (mcast=eth0, syncid=7"), a + b
	})
	client := tp.ns("client")
	// 12 MB at 1.5 MB/s: about 8 s, the failover in the middle.
	transfer := make(chan string, 1)
	go func() {
		out, err := tp.role(client, "paced", haVIP+":80", "12000000", "1500000")
		transfer <- fmt.Sprint(strings.TrimSpace(out), " ", err)
	}()
	udp := make(chan string, 1)
	go func() {
		out, err := tp.role(client, "udpstream", haVIP+":80", "60", "200ms")
		udp <- fmt.Sprint(strings.TrimSpace(out), " ", err)
	}()
	// The backup learns the connections from the master.
	waitFor(t, 5*time.Second, "d2 knows the connections", func() (bool, string) {
		c := tp.d["d2"].must("-L", "-n", "-c")
		return strings.Contains(c, "ESTABLISHED") && strings.Contains(c, "UDP"), c + "\nd1:\n" + tp.d["d1"].must("-L", "-n", "-c") +
			"\nd2 log:\n" + tp.d["d2"].log.String()
	})
	time.Sleep(time.Second)
	before := tp.d["d1"].must("-L", "-n", "--stats")
	tp.d["d1"].kill()
	tp.mustRun(tp.ns("d1"), "ip", "link", "set", "eth0", "down")
	killed := time.Now()
	took := waitFor(t, 10*time.Second, "d2 takes the VIP", func() (bool, string) { return tp.hasVIP("d2"), tp.d["d2"].log.String() })
	t.Logf("d2 took the VIP %v after d1 died", took)
	// Master down interval: 3 x advert_int + skew ((256-100)/256 s).
	if took > 3*time.Second+700*time.Millisecond+500*time.Millisecond {
		t.Errorf("takeover after %v, want within the master-down interval (3.6 s)", time.Since(killed))
	}
	select {
	case got := <-transfer:
		if got != "12000000 <nil>" {
			t.Fatalf("transfer: %s\nd2 log:\n%s", got, tp.d["d2"].log)
		}
	case <-time.After(60 * time.Second):
		t.Fatal("the transfer did not finish")
	}
	got := <-udp
	f := strings.Fields(got)
	if len(f) < 3 || f[0] != "answered" {
		t.Fatalf("udp stream: %s", got)
	}
	names := f[2 : len(f)-1]
	for _, n := range names {
		if n != names[0] {
			t.Fatalf("persistence broken across the failover: %s", got)
		}
	}
	if len(names) < 40 {
		t.Errorf("only %d of 60 datagrams answered: %s\nd2:\n%s\n%v", len(names), got, tp.d["d2"].must("-L", "-n", "-c"), tp.d["d2"].events())
	}
	// A new connection from the client still goes to the same server
	// (the persistence template was synced), and d2 counts it.
	if hello := tp.hellos(tp.d["d2"], client, haVIP+":80", 1); len(hello) != 1 || hello[0] != names[0] {
		t.Errorf("new connection after failover went to %v, want %s (persistence)", hello, names[0])
	}
	after := tp.d["d2"].must("-L", "-n", "--stats")
	t.Logf("d1 before:\n%s\nd2 after:\n%s", before, after)
}
