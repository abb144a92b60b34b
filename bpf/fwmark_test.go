package bpf

import (
	"bytes"
	"encoding/binary"
	"math/bits"
	"net/netip"
	"testing"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"
)

const svcPersistent = 0x1

// fwmService sets up a persistent rr firewall-mark service (mark, id 9)
// over rs1 (id 1) and rs2 (id 2), DR through ifindex 2, and makes the
// test run's ingress (loopback, ifindex 1) the fwmark interface.
func fwmService(t *testing.T, o *Objects, mark uint32) {
	t.Helper()
	putDest(t, o, 1, drDest(rs1, 0, 1, 2, 1))
	putDest(t, o, 2, drDest(rs2, 0, 1, 2, 2))
	must(t, o.Ifmacs.Put(uint32(2), &IfMAC{Mac: ifMAC}))
	k := SvcKey{Af: 4}
	k.Addr[0] = mark
	v := Svc{Id: 9, Flags: svcPersistent, Sched: schedRR, Timeout: 300, Netmask: 0xffffffff, Ndests: 2}
	copy(v.Dests[:], []uint32{2, 1})
	must(t, o.Services.Put(&k, &v))
	must(t, o.SchedState.Put(uint32(9), &SchedState{RrLast: -1, WrrCl: -1}))
	must(t, o.SvcFwmark.Put(uint32(9), mark))
	must(t, o.FwmIf.Put(uint32(0), uint32(1)))
}

// tagged is p as gvs_fwm_tag hands it over: the mark in the source MAC.
func tagged(p pkt, mark uint32) pkt {
	p.srcMAC = [6]byte{0x02, 0x47}
	binary.BigEndian.PutUint32(p.srcMAC[2:], mark)
	return p
}

// fwmTemplate is the template key IPVS gives a fwmark service: IPPROTO_IP,
// the mark as the virtual address, ports 0.
func fwmTemplate(c netip.Addr, mark uint32) ConnKey {
	k := ConnKey{Af: 4}
	k.Caddr[0] = ip4(c)
	k.Vaddr[0] = bits.ReverseBytes32(mark) // htonl, as stored
	return k
}

func TestFwmarkServicePersistsAcrossPorts(t *testing.T) {
	o := loadObjects(t)
	fwmService(t, o, 1)

	var first [6]byte
	for i, port := range []uint16{80, 443} {
		in := tagged(syn(client, port), 1).build()
		act, out := run(t, o, in)
		if act != xdpRedirect {
			t.Fatalf("port %d: action %s, want REDIRECT", port, actionNames[act])
		}
		// DR: only the MACs change.
		if !bytes.Equal(out[12:len(in)], in[12:]) || !bytes.Equal(out[6:12], ifMAC[:]) {
			t.Fatalf("port %d: output\n%x\nfrom\n%x", port, out[:len(in)], in)
		}
		var dm [6]byte
		copy(dm[:], out[0:6])
		if i == 0 {
			first = dm
			if dm != destMAC(2) {
				t.Fatalf("first connection went to %x, want rr's head rs2", dm)
			}
		} else if dm != first {
			t.Fatalf("port 443 went to %x, port 80 to %x: persistence must span the mark's ports", dm, first)
		}
		var c Conn
		if err := o.Conns.Lookup(connKey(unix.IPPROTO_TCP, client, netip.AddrPortFrom(vip, port)), &c); err != nil {
			t.Fatalf("port %d: no connection under the packet's own 5-tuple: %v", port, err)
		}
		if c.Svc != 9 || c.Dest != 2 {
			t.Fatalf("port %d: connection svc %d dest %d", port, c.Svc, c.Dest)
		}
	}
	var tv Template
	tk := fwmTemplate(client.Addr(), 1)
	if err := o.Templates.Lookup(&tk, &tv); err != nil {
		t.Fatalf("no template keyed by the mark: %v", err)
	}
	if tv.Dest != 2 || tv.N_control != 2 {
		t.Fatalf("template dest %d n_control %d, want 2 and 2", tv.Dest, tv.N_control)
	}

	// The rest of the flow arrives untagged on another interface: the
	// connection carries it.
	must(t, o.FwmIf.Put(uint32(0), uint32(77)))
	ack := syn(client, 80)
	ack.flags = tcpACK
	if act, out := run(t, o, ack.build()); act != xdpRedirect || !bytes.Equal(out[0:6], first[:]) {
		t.Fatalf("ACK of the connection: %s to %x", actionNames[act], out[0:6])
	}
	// A new flow there finds no address service: the stack's (netfilter
	// marks it and it comes back tagged).
	if act, _ := run(t, o, syn(ap("198.18.5.2:1000"), 80).build()); act != xdpPass {
		t.Fatalf("untagged SYN: %s, want PASS", actionNames[act])
	}

	// An expired connection removed by the packet path lets go of the
	// fwmark template (svc_fwmark finds it).
	k80 := connKey(unix.IPPROTO_TCP, client, netip.AddrPortFrom(vip, 80))
	var c Conn
	must(t, o.Conns.Lookup(&k80, &c))
	c.Expires = 1
	must(t, o.Conns.Put(&k80, &c))
	run(t, o, ack.build())
	must(t, o.Templates.Lookup(&tk, &tv))
	if tv.N_control != 1 {
		t.Fatalf("template n_control %d after one of its connections went, want 1", tv.N_control)
	}
}

func TestFwmarkDropsWhatItCannotForward(t *testing.T) {
	o := loadObjects(t)
	fwmService(t, o, 1)

	// Untagged on the fwmark interface: not from gvs_fwm_tag.
	if act, _ := run(t, o, syn(client, 80).build()); act != xdpDrop {
		t.Fatalf("untagged frame: %s, want DROP", actionNames[act])
	}
	// A mark no service has, and a non-SYN: dropped, never passed (the
	// stack would hand it to netfilter again).
	if act, _ := run(t, o, tagged(syn(client, 80), 2).build()); act != xdpDrop {
		t.Fatalf("unknown mark: %s, want DROP", actionNames[act])
	}
	ack := tagged(syn(client, 80), 1)
	ack.flags = tcpACK
	if act, _ := run(t, o, ack.build()); act != xdpDrop {
		t.Fatalf("ACK without a connection: %s, want DROP", actionNames[act])
	}
	// No server: dropped without an ICMP sent back into the veth.
	for id := uint32(1); id <= 2; id++ {
		d := getDest(t, o, id)
		d.Weight = 0 // quiesced: rr takes neither
		putDest(t, o, id, d)
	}
	if act, _ := run(t, o, tagged(syn(client, 81), 1).build()); act != xdpDrop {
		t.Fatalf("no server: %s, want DROP", actionNames[act])
	}
	ev := events(t, o)
	if ev[evFwmUntagged] != 1 || ev[evFwmPass] != 2 || ev[evNoDest] != 1 || ev[evForward] != 0 {
		t.Fatalf("events untagged %d fwm_pass %d no_dest %d forward %d, want 1 2 1 0",
			ev[evFwmUntagged], ev[evFwmPass], ev[evNoDest], ev[evForward])
	}
}

// skbCtx is a struct __sk_buff for BPF_PROG_TEST_RUN with only mark set
// (offset 8); the kernel refuses other fields a test may not set.
func skbCtx(mark uint32) []byte {
	b := make([]byte, 192)
	binary.NativeEndian.PutUint32(b[8:], mark)
	return b
}

func runTag(t *testing.T, o *Objects, frame []byte, mark uint32) (uint32, []byte) {
	t.Helper()
	out := make([]byte, len(frame)+64)
	opts := ebpf.RunOptions{Data: frame, DataOut: out, Context: skbCtx(mark)}
	ret, err := o.GvsFwmTag.Run(&opts)
	if err != nil {
		t.Fatalf("running gvs_fwm_tag: %v", err)
	}
	return ret, opts.DataOut
}

// TestFwmarkTag: the tc program undoes nf_dup's TTL decrement and DF,
// and writes the mark into the source MAC.
func TestFwmarkTag(t *testing.T) {
	o := loadObjects(t)
	const tcOK, tcShot = 0, 2

	for _, c := range []struct {
		name       string
		dfWas      bool
		wantDF     bool
		dupDstLast byte
	}{
		{"DF was clear", false, false, 0x00},
		{"DF was set", true, true, 0x01},
	} {
		orig := syn(client, 443)
		orig.df = c.dfWas
		orig.ttl = 61
		want := orig.build()
		copy(want[6:12], []byte{0x02, 0x47, 0x12, 0x34, 0x56, 0x78})

		dup := orig
		dup.df = true // nf_dup_ipv4 sets it
		dup.ttl = 60  // and takes one off at PREROUTING
		dup.dstMAC = [6]byte{0x02, 0x47, 0x76, 0x73, 0, c.dupDstLast}
		copy(want[0:6], dup.dstMAC[:])
		act, out := runTag(t, o, dup.build(), 0x12345678)
		if act != tcOK {
			t.Fatalf("%s: verdict %d", c.name, act)
		}
		if !bytes.Equal(out[:len(want)], want) {
			t.Fatalf("%s: output\n%x\nwant\n%x", c.name, out[:len(want)], want)
		}
	}
	if act, _ := runTag(t, o, syn(client, 80).build(), 0); act != tcShot {
		t.Fatalf("unmarked frame: verdict %d, want SHOT", act)
	}

	// IPv6: the hop limit back up by one.
	v6 := make([]byte, 14+40+20)
	v6[12], v6[13] = 0x86, 0xdd
	v6[14] = 0x60
	binary.BigEndian.PutUint16(v6[18:], 20)
	v6[20], v6[21] = unix.IPPROTO_TCP, 63
	act, out := runTag(t, o, v6, 7)
	if act != tcOK || out[21] != 64 || !bytes.Equal(out[6:12], []byte{0x02, 0x47, 0, 0, 0, 7}) {
		t.Fatalf("IPv6: verdict %d hop limit %d source %x", act, out[21], out[6:12])
	}
}
