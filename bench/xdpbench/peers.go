package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// trafgen sends 64-byte UDP frames (64 flows by source port) out of dev
// of the generator's namespace for d, and returns the rate the sinks
// counted after a 300 ms start-up.
func (b *bench) trafgen(dev, dstMAC, srcMAC, daddr, dport string, d time.Duration) sample {
	src := clientIP
	if dev == "g1" {
		src = "198.18.2.1"
	}
	conf := fmt.Sprintf("{ eth(da=%s, sa=%s), ipv4(saddr=%s, daddr=%s, ttl=64), udp(sport=dinc(10000, %d), dport=%s, csum=0), fill(0x00, 18) }\n",
		dstMAC, srcMAC, src, daddr, 10000+b.o.flows-1, dport)
	f := filepath.Join(os.TempDir(), b.t.prefix+"-trafgen.cfg")
	if err := os.WriteFile(f, []byte(conf), 0o600); err != nil {
		fatal(err)
	}
	defer os.Remove(f)
	args := in(b.t.gen, "trafgen", "-o", dev, "-i", f, "-P", "1", "-q", "-C")
	cmd := exec.Command(args[0], args[1:]...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		fatal(err)
	}
	stop := func() {
		syscall.Kill(-cmd.Process.Pid, syscall.SIGINT)
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-done
		}
	}
	cleanups = append(cleanups, stop)
	time.Sleep(300 * time.Millisecond)
	n0, t0 := b.p.sunk(), time.Now()
	time.Sleep(d)
	n1, t1 := b.p.sunk(), time.Now()
	stop()
	cleanups = cleanups[:len(cleanups)-1]
	if n1 == n0 {
		progress("trafgen on %s: nothing arrived\n%s", dev, out.String())
	}
	return sample{pps: float64(n1-n0) / t1.Sub(t0).Seconds()}
}

// nft loads (or removes) the nftables peer: DNAT of the VIP's UDP port
// 80 to two servers by numgen, the way kube-proxy's nftables mode
// balances (conntrack then keeps each flow on its server).
func (b *bench) nft(on bool) {
	if !on {
		run(in(b.t.dir, "nft", "delete", "table", "ip", "gvsbench")...)
		return
	}
	ruleset := fmt.Sprintf(`table ip gvsbench {
	chain prerouting {
		type nat hook prerouting priority dstnat; policy accept;
		ip daddr %s udp dport 80 dnat to numgen random mod 2 map { 0 : %s, 1 : %s }
	}
}
`, vip, serverAddr(0), serverAddr(1))
	args := in(b.t.dir, "nft", "-f", "-")
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Stdin = strings.NewReader(ruleset)
	if out, err := cmd.CombinedOutput(); err != nil {
		fatal(fmt.Errorf("nft: %v: %s", err, out))
	}
}
