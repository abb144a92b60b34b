package e2e

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// IPv6 SCTP through the xdp engine, as sctp_test.go for IPv4: the kernel
// has no SCTP, so hosts send SCTP packets they build (CRC32c from
// hash/crc32) from raw IPv6 sockets of protocol IPPROTO_SCTP, and record
// every SCTP packet that reaches one of their addresses with another.

// sctp6Role plays:
//
//	sctp6-send DST HEX...: each HEX an SCTP packet, sent to DST (an IPv6
//	address) from a raw socket, 50 ms apart;
//	sctp6-capture FILE: append "SRC DST HEX" per SCTP packet received to
//	FILE (created once the socket is open), until killed.
func sctp6Role(args []string) error {
	fd, err := unix.Socket(unix.AF_INET6, unix.SOCK_RAW, unix.IPPROTO_SCTP)
	if err != nil {
		return fmt.Errorf("raw SCTP socket: %w", err)
	}
	defer unix.Close(fd)
	switch args[0] {
	case "sctp6-send":
		dst := netip.MustParseAddr(args[1])
		for _, h := range args[2:] {
			b, err := hex.DecodeString(h)
			if err != nil {
				return err
			}
			if err := unix.Sendto(fd, b, 0, &unix.SockaddrInet6{Addr: dst.As16()}); err != nil {
				return err
			}
			time.Sleep(50 * time.Millisecond)
		}
		return nil
	case "sctp6-capture":
		// The destination address comes with each packet (a raw IPv6
		// socket gets the payload only).
		if err := unix.SetsockoptInt(fd, unix.IPPROTO_IPV6, unix.IPV6_RECVPKTINFO, 1); err != nil {
			return err
		}
		f, err := os.OpenFile(args[1], os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
		if err != nil {
			return err
		}
		buf, oob := make([]byte, 65536), make([]byte, 256)
		for {
			n, oobn, _, from, err := unix.Recvmsg(fd, buf, oob, 0)
			if err != nil {
				return err
			}
			sa, ok := from.(*unix.SockaddrInet6)
			if !ok {
				continue
			}
			dst := "?"
			cms, _ := unix.ParseSocketControlMessage(oob[:oobn])
			for _, m := range cms {
				if m.Header.Level == unix.IPPROTO_IPV6 && m.Header.Type == unix.IPV6_PKTINFO && len(m.Data) >= 16 {
					dst = netip.AddrFrom16([16]byte(m.Data[:16])).String()
				}
			}
			fmt.Fprintf(f, "%s %s %x\n", netip.AddrFrom16(sa.Addr), dst, buf[:n])
			f.Sync()
		}
	}
	return errors.New("sctp6 role")
}

// An IPv6 SCTP DR service and an IPv6 SCTP NAT service on the xdp
// engine, one segment (2001:db8::/64; the NAT server on 2001:db8:1::/64,
// its default route the director). DR: two associations spread rr over
// two servers (the VIP on their lo), each packet arriving unchanged
// (CRC32c included) at its server and no other; gvsadm -L -n -c lists
// them in the kernel's state names as the input-only table moves them
// (INIT, ESTABLISHED, S-RECEIVED, CLOSED); counters; a DATA without an
// association makes none. NAT: the server gets each packet with its port
// in place of the service's and a CRC32c that verifies, its answers reach
// the client from the VIP with theirs right, and the association walks
// the full table to ESTABLISHED.
func TestXDPSCTP6(t *testing.T) {
	needRoot(t)
	if _, err := exec.LookPath("nsenter"); err != nil {
		t.Skip("needs nsenter (util-linux)")
	}
	tp := newTopo(t)
	addr6 := func(ns, cidr, dev string) {
		tp.mustRun(ns, "ip", "-6", "addr", "add", cidr, "dev", dev, "nodad")
	}
	noDAD := func(ns string) {
		tp.mustRun(ns, "sysctl", "-qw", "net.ipv6.conf.all.accept_dad=0", "net.ipv6.conf.default.accept_dad=0",
			"net.ipv6.conf.eth0.accept_dad=0")
	}
	client := tp.host("client", "198.18.0.1/24")
	noDAD(client)
	addr6(client, "2001:db8::10/64", "eth0")
	dir := tp.host("director", "198.18.0.2/24")
	noDAD(dir)
	tp.napiPeer("director")
	addr6(dir, "2001:db8::2/64", "eth0")
	addr6(dir, vip6+"/128", "eth0")
	addr6(dir, "2001:db8:1::1/64", "eth0")
	tp.mustRun(dir, "sysctl", "-qw", "net.ipv6.conf.all.forwarding=1", "net.ipv6.conf.eth0.forwarding=1")
	for i, name := range []string{"rs1", "rs2"} {
		ns := tp.host(name, "198.18.0.1"+string(rune('1'+i))+"/24")
		noDAD(ns)
		addr6(ns, "2001:db8::1"+string(rune('1'+i))+"/64", "eth0")
		addr6(ns, vip6+"/128", "lo") // DR
	}
	rs3 := tp.host("rs3", "198.18.0.23/24")
	noDAD(rs3)
	addr6(rs3, "2001:db8:1::13/64", "eth0")
	tp.mustRun(rs3, "ip", "-6", "route", "add", "default", "via", "2001:db8:1::1")
	d, _ := tp.startXDPDirector(dir)
	for name := range tp.hosts {
		if name != "director" {
			tp.mustRun(tp.prefix+"-sw", "ethtool", "-K", "p-"+name, "gro", "off")
		}
	}
	time.Sleep(300 * time.Millisecond)

	v := "[" + vip6 + "]"
	dr, nat := v+":3868", v+":3869"
	d.must("-A", "--sctp-service", dr, "-s", "rr")
	d.must("-a", "--sctp-service", dr, "-r", "[2001:db8::11]:3868", "-g")
	d.must("-a", "--sctp-service", dr, "-r", "[2001:db8::12]:3868", "-g")
	d.must("-A", "--sctp-service", nat, "-s", "rr")
	d.must("-a", "--sctp-service", nat, "-r", "[2001:db8:1::13]:8080", "-m")
	if l := d.must("-L", "-n"); !strings.Contains(l, "\nSCTP "+dr+" rr\n") ||
		!strings.Contains(l, "  -> [2001:db8::12]:3868") || !strings.Contains(l, "  -> [2001:db8:1::13]:8080") {
		t.Errorf("gvsadm -L -n:\n%s", l)
	}

	exe, _ := os.Executable()
	capture := map[string]string{}
	for _, h := range []string{"client", "rs1", "rs2", "rs3"} {
		capture[h] = filepath.Join(t.TempDir(), h)
		cmd := exec.Command("nsenter", "--net=/run/netns/"+tp.ns(h), "env", "GVS_E2E_ROLE=sctp6-capture "+capture[h], exe)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	}
	waitCapture(t, capture["client"], capture["rs1"], capture["rs2"], capture["rs3"])
	send := func(host, dst string, pkts ...[]byte) {
		t.Helper()
		args := []string{"sctp6-send", dst}
		for _, p := range pkts {
			args = append(args, hex.EncodeToString(p))
		}
		out, err := exec.Command("nsenter", "--net=/run/netns/"+tp.ns(host), "env",
			"GVS_E2E_ROLE="+strings.Join(args, " "), exe).CombinedOutput()
		if err != nil {
			t.Fatalf("sending from %s: %v %s", host, err, out)
		}
	}
	const cl = "2001:db8::10"

	// DR: association A (port 5001) then B (5002); rr starts at the
	// newest server, rs2.
	const tagA, tagB = 0xa1a1a1a1, 0xb2b2b2b2
	data := sctpChunk(0, append([]byte{0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0}, "hello over sctp6"...))
	cookie := sctpChunk(10, bytes.Repeat([]byte{0xc0}, 24))
	aPkts := [][]byte{sctpPkt(5001, 3868, 0, sctpInit(tagA))}
	bPkts := [][]byte{sctpPkt(5002, 3868, 0, sctpInit(tagB))}
	send("client", vip6, aPkts[0], bPkts[0])
	aPkts = append(aPkts, sctpPkt(5001, 3868, 0x5e5e0001, cookie), sctpPkt(5001, 3868, 0x5e5e0001, data))
	bPkts = append(bPkts, sctpPkt(5002, 3868, 0, sctpInit(tagB))) // retransmitted INIT
	send("client", vip6, aPkts[1], bPkts[1], aPkts[2])
	// No association, not an INIT: passed to the director's stack.
	send("client", vip6, sctpPkt(5003, 3868, 1, data))
	for rs, pkts := range map[string][][]byte{"rs2": aPkts, "rs1": bPkts} {
		lines := captured(t, capture[rs], len(pkts))
		if len(lines) != len(pkts) {
			b, _ := os.ReadFile(capture[rs])
			t.Fatalf("%s received %d SCTP packets, want %d:\n%s\n%s", rs, len(lines), len(pkts), b, d.log)
		}
		for i, p := range pkts {
			if w := cl + " " + vip6 + " " + hex.EncodeToString(p); lines[i] != w {
				t.Errorf("%s packet %d:\n%s\nwant\n%s", rs, i, lines[i], w)
			}
		}
	}
	c := "[" + cl + "]"
	conns := d.must("-L", "-n", "-c")
	for _, w := range []string{
		"SCTP " + c + ":5001 " + dr + " [2001:db8::12]:3868 ESTABLISHED",
		"SCTP " + c + ":5002 " + dr + " [2001:db8::11]:3868 INIT",
	} {
		if !hasConn(conns, w) {
			t.Errorf("no %q in\n%s", w, conns)
		}
	}
	if strings.Contains(conns, ":5003") {
		t.Errorf("a DATA made an association:\n%s", conns)
	}
	list := fields(d.must("-L", "-n"))
	for _, w := range []string{"-> [2001:db8::12]:3868 Route 1 1 0", "-> [2001:db8::11]:3868 Route 1 0 1"} {
		if !strings.Contains(list, w) {
			t.Errorf("no %q in %s", w, list)
		}
	}
	var inBytes int
	for _, p := range append(aPkts, bPkts...) {
		inBytes += 40 + len(p)
	}
	if w := fmt.Sprintf("SCTP %s 2 5 0 %d 0", dr, inBytes); !strings.Contains(fields(d.must("-L", "-n", "--stats", "--exact")), w) {
		t.Errorf("no %q in %s", w, fields(d.must("-L", "-n", "--stats", "--exact")))
	}
	send("client", vip6, sctpPkt(5001, 3868, 0x5e5e0001, sctpChunk(7, []byte{0, 0, 0, 1})))
	if conns := d.must("-L", "-n", "-c"); !hasConn(conns, "SCTP "+c+":5001 "+dr+" [2001:db8::12]:3868 S-RECEIVED") {
		t.Errorf("after SHUTDOWN:\n%s", conns)
	}
	send("client", vip6, sctpPkt(5001, 3868, 0x5e5e0001, sctpChunk(14, nil)))
	if conns := d.must("-L", "-n", "-c"); !hasConn(conns, "SCTP "+c+":5001 "+dr+" [2001:db8::12]:3868 CLOSED") {
		t.Errorf("after SHUTDOWN COMPLETE:\n%s", conns)
	}

	// NAT: client to server, server to client (as its SCTP stack would
	// send, by its default route, the director).
	const vtagC, vtagS = 0x0c0c0c0c, 0x05050505
	ncookie := sctpChunk(10, bytes.Repeat([]byte{0xc0}, 37))
	ndata := sctpChunk(0, append([]byte{0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0}, "through the director"...))
	steps := []struct {
		fromClient bool
		vtag       uint32
		chunks     [][]byte
		state      string
	}{
		{true, 0, [][]byte{sctpInit(vtagC)}, "INIT1"},
		{false, vtagC, [][]byte{sctpChunk(2, sctpInit(vtagS)[4:])}, "C-SENT"}, // INIT ACK
		{true, vtagS, [][]byte{ncookie, ndata}, "C-REPLIED"},
		{false, vtagC, [][]byte{sctpChunk(11, nil)}, "ESTABLISHED"}, // COOKIE ACK
		{true, vtagS, [][]byte{ndata}, "ESTABLISHED"},
		{false, vtagC, [][]byte{sctpChunk(3, make([]byte, 12))}, "ESTABLISHED"}, // SACK
	}
	nClient, nServer := 0, 0
	for i, s := range steps {
		if s.fromClient {
			send("client", vip6, sctpPkt(6001, 3869, s.vtag, s.chunks...))
			nServer++
			lines := captured(t, capture["rs3"], nServer)
			want := cl + " 2001:db8:1::13 " + hex.EncodeToString(sctpPkt(6001, 8080, s.vtag, s.chunks...))
			if len(lines) != nServer || lines[nServer-1] != want {
				t.Fatalf("NAT step %d at rs3:\n%q\nwant\n%s\n%s", i, lines, want, d.log)
			}
		} else {
			send("rs3", cl, sctpPkt(8080, 6001, s.vtag, s.chunks...))
			nClient++
			lines := captured(t, capture["client"], nClient)
			want := vip6 + " " + cl + " " + hex.EncodeToString(sctpPkt(3869, 6001, s.vtag, s.chunks...))
			if len(lines) != nClient || lines[nClient-1] != want {
				t.Fatalf("NAT step %d at the client:\n%q\nwant\n%s\n%s", i, lines, want, d.log)
			}
		}
		if conns := d.must("-L", "-n", "-c"); !hasConn(conns, "SCTP "+c+":6001 "+nat+" [2001:db8:1::13]:8080 "+s.state) {
			t.Errorf("NAT step %d: no %s in\n%s", i, s.state, conns)
		}
	}
	if st := fields(d.must("-L", "-n", "--stats")); !strings.Contains(st, "SCTP "+nat+" 1 3 3 ") {
		t.Errorf("NAT stats: %s", st)
	}
}
