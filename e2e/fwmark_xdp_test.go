package e2e

import (
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestFwmarkXDP: a persistent firewall-mark service on the xdp engine,
// the operator's own nftables rule marking TCP to the VIP's ports 80 and
// 443. One client's connections to both ports go to one server (the
// template is the mark's), bytes arrive intact, the rest of a flow is
// forwarded without netfilter, gvsd restarts under a transfer, and
// deleting the service removes what gvsd created.
func TestFwmarkXDP(t *testing.T) {
	if _, err := exec.LookPath("nft"); err != nil {
		t.Skip("needs nft")
	}
	tp := newDRTopo(t, false)
	d := tp.d
	dir, client := tp.ns("director"), tp.ns("client")
	for _, rs := range []string{"rs1", "rs2"} {
		tp.serve(tp.ns(rs), vip+":443", rs)
	}
	tp.mustRun(dir, "nft", "add", "table", "inet", "op")
	tp.mustRun(dir, "nft", "add", "chain", "inet", "op", "pre", "{ type filter hook prerouting priority mangle; }")
	tp.mustRun(dir, "nft", "add", "rule", "inet", "op", "pre", "ip", "daddr", vip, "tcp", "dport", "{ 80, 443 }", "counter", "meta", "mark", "set", "1")

	d.must("-A", "-f", "1", "-s", "rr", "-p", "300")
	d.must("-a", "-f", "1", "-r", "198.18.0.11", "-g")
	d.must("-a", "-f", "1", "-r", "198.18.0.12", "-g")

	first := tp.hellos(d, client, vip+":80", 1)[0]
	for _, port := range []string{"443", "80", "443"} {
		if got := tp.hellos(d, client, vip+":"+port, 1)[0]; got != first {
			t.Fatalf("port %s went to %s, port 80 to %s: persistence must span the mark's ports\n%s", port, got, first, d.log)
		}
	}
	list := fields(d.must("-L", "-n"))
	if !strings.Contains(list, "FWM 1 rr persistent 300") || !strings.Contains(list, "198.18.0.12:0 Route 1 0 4") {
		t.Errorf("listing:\n%s", d.must("-L", "-n"))
	}
	conns := d.must("-L", "-n", "-c")
	if strings.Count(conns, "\nTCP ") != 4 || !strings.Contains(conns, vip+":443") {
		t.Errorf("connection table:\n%s", conns)
	}
	tables := tp.mustRun(dir, "nft", "list", "table", "ip", "gvs")
	if !strings.Contains(tables, "dup to 169.254.71.1 device \"gvs-fwm0\"") {
		t.Errorf("gvs's table:\n%s", tables)
	}

	// A long transfer: its first packet goes through netfilter, the rest
	// straight through XDP on eth0 (the operator's counter sees the SYN
	// only), across a gvsd restart.
	counter := func() int {
		out := tp.mustRun(dir, "nft", "list", "chain", "inet", "op", "pre")
		i := strings.Index(out, "counter packets ")
		n, _ := strconv.Atoi(strings.Fields(out[i:])[2])
		return n
	}
	before := counter()
	const size = "200000000"
	bulk := tp.bulk(client, vip+":443", size)
	time.Sleep(300 * time.Millisecond)
	d.stop()
	time.Sleep(300 * time.Millisecond)
	d.start()
	if out, err := bulk(); err != nil || strings.TrimSpace(out) != size {
		t.Fatalf("transfer across the restart: %q %v\n%s", out, err, d.log)
	}
	if after := counter(); after-before != 1 {
		t.Errorf("netfilter saw %d packets of the transfer: only its SYN should pass there", after-before)
	}
	if got := tp.hellos(d, client, vip+":80", 1)[0]; got != first {
		t.Errorf("after the restart: port 80 went to %s, want %s", got, first)
	}
	stats := fields(d.must("-L", "-n", "--stats"))
	if !strings.Contains(stats, "FWM 1 6 ") {
		t.Errorf("stats:\n%s", stats)
	}

	d.must("-D", "-f", "1")
	if out, err := tp.run(dir, "ip", "link", "show", "gvs-fwm0"); err == nil {
		t.Errorf("gvs-fwm0 left after the last fwmark service went:\n%s", out)
	}
	if out, err := tp.run(dir, "nft", "list", "table", "ip", "gvs"); err == nil {
		t.Errorf("table ip gvs left:\n%s", out)
	}
}
