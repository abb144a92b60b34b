package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// IPv6 failover between two xdp directors: the VRRP instance is IPv4's
// (haVIP), the IPv6 VIP moves with it (virtual_ipaddress_excluded), and
// connection sync carries the IPv6 connections and their /64 templates.

func haConfig6(priority int) string {
	vs := func(proto string) string {
		return `virtual_server ` + vip6 + ` 80 {
    lb_algo rr
    lb_kind DR
    protocol ` + proto + `
    persistence_timeout 120
    persistence_granularity 64
    real_server 2001:db8::11 80 {
        weight 1
    }
    real_server 2001:db8::12 80 {
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
        %s/32 dev eth0
    }
    virtual_ipaddress_excluded {
        %s/128 dev eth0
    }
}
`, priority, haVIP, vip6) + vs("TCP") + vs("UDP")
}

func TestHAFailoverIPv6(t *testing.T) {
	needRoot(t)
	bin := binaries(t)
	tp := &haTopo{topo: newTopo(t), d: map[string]*daemon{}}
	addr6 := func(ns, cidr string) {
		tp.mustRun(ns, "sysctl", "-qw", "net.ipv6.conf.all.accept_dad=0", "net.ipv6.conf.eth0.accept_dad=0")
		tp.mustRun(ns, "ip", "-6", "addr", "add", cidr, "dev", "eth0", "nodad")
	}
	client := tp.host("client", "198.18.0.1/24")
	addr6(client, "2001:db8::10/64")
	for i, name := range []string{"rs1", "rs2"} {
		ns := tp.host(name, fmt.Sprintf("198.18.0.1%d/24", i+1))
		addr6(ns, fmt.Sprintf("2001:db8::1%d/64", i+1))
		tp.mustRun("", append(nsenter(ns), filepath.Join(bin, "gvs-realserver"), "up", "-q", "--vip", vip6, "--state-dir", t.TempDir())...)
		tp.serve(ns, "["+vip6+"]:80", name)
	}
	for i, name := range []string{"d1", "d2"} {
		ns := tp.host(name, fmt.Sprintf("198.18.0.%d/24", i+2))
		addr6(ns, fmt.Sprintf("2001:db8::%d/64", i+2))
		tp.napiPeer(name)
		cfg := filepath.Join(t.TempDir(), "keepalived.conf")
		if err := os.WriteFile(cfg, []byte(haConfig6(150-50*i)), 0o600); err != nil {
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
	has6 := func(name string) bool {
		out, _ := tp.run(tp.ns(name), "ip", "-6", "addr", "show", "dev", "eth0")
		return strings.Contains(out, vip6+"/128")
	}
	waitFor(t, 10*time.Second, "d1 master with the VIPs", func() (bool, string) {
		return has6("d1") && !has6("d2"), tp.d["d1"].log.String() + tp.d["d2"].log.String()
	})
	waitFor(t, 5*time.Second, "sync daemons follow VRRP", func() (bool, string) {
		a, b := tp.d["d1"].must("-L", "--daemon"), tp.d["d2"].must("-L", "--daemon")
		return strings.HasPrefix(a, "master sync daemon") && strings.HasPrefix(b, "backup sync daemon"), a + b
	})
	v := "[" + vip6 + "]:80"
	transfer := make(chan string, 1)
	go func() {
		out, err := tp.role(client, "paced", v, "12000000", "1500000")
		transfer <- fmt.Sprint(strings.TrimSpace(out), " ", err)
	}()
	udp := make(chan string, 1)
	go func() {
		out, err := tp.role(client, "udpstream", v, "60", "200ms")
		udp <- fmt.Sprint(strings.TrimSpace(out), " ", err)
	}()
	waitFor(t, 5*time.Second, "d2 knows the IPv6 connections", func() (bool, string) {
		c := tp.d["d2"].must("-L", "-n", "-c")
		return strings.Contains(c, "ESTABLISHED") && strings.Contains(c, "UDP") && strings.Contains(c, "[2001:db8::10]"),
			c + "\nd1:\n" + tp.d["d1"].must("-L", "-n", "-c") + "\nd2 log:\n" + tp.d["d2"].log.String()
	})
	time.Sleep(time.Second)
	tp.d["d1"].kill()
	tp.mustRun(tp.ns("d1"), "ip", "link", "set", "eth0", "down")
	took := waitFor(t, 10*time.Second, "d2 takes the VIPs", func() (bool, string) { return has6("d2"), tp.d["d2"].log.String() })
	t.Logf("d2 took the VIPs %v after d1 died", took)
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
		t.Errorf("only %d of 60 datagrams answered: %s", len(names), got)
	}
	// The /64 template was synced: a new connection keeps the server.
	if hello := tp.hellos(tp.d["d2"], client, v, 1); len(hello) != 1 || hello[0] != names[0] {
		t.Errorf("new connection after failover went to %v, want %s (persistence)", hello, names[0])
	}
}
