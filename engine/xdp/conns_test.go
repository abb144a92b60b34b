package xdp

import (
	"net/netip"
	"os"
	"testing"
	"time"

	"github.com/cilium/ebpf"

	"gvs/api"
	"gvs/bpf"
	"gvs/model"
)

// The listing reads every entry, a batch at a time, with the server's
// address from dests, and yields without e.mu: the sweep and rule
// changes, which take it, go on while a slow client reads.
func TestConnsListingUnlocked(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to load BPF maps")
	}
	var objs bpf.Objects
	if err := bpf.LoadObjectsSized(&objs, 1<<14); err != nil {
		t.Skipf("BPF: %v", err)
	}
	defer objs.Close()
	e := &Engine{objs: objs}
	dest := bpf.Dest{Addr: addrWords(netip.MustParseAddr("198.18.1.1")), Port: htons(8080), Af: 4, Method: uint8(model.Masq)}
	if err := objs.Dests.Put(uint32(7), &dest); err != nil {
		t.Fatal(err)
	}
	const n = 3*countersChunk + 5
	vaddr := addrWords(netip.MustParseAddr("198.18.0.1"))
	exp := now() + uint64(time.Minute)
	keys := make([]bpf.ConnKey, n)
	vals := make([]bpf.Conn, n)
	for i := range n {
		keys[i] = bpf.ConnKey{Caddr: addrWords(netip.AddrFrom4([4]byte{198, 19, byte(i >> 8), byte(i)})), Vaddr: vaddr,
			Cport: htons(1000), Vport: htons(80), Proto: uint8(model.ProtoTCP), Af: 4}
		vals[i] = bpf.Conn{Dest: 7, Expires: exp, Rport: htons(8080), State: 1}
	}
	if _, err := objs.Conns.BatchUpdate(keys, vals, &ebpf.BatchOptions{}); err != nil {
		t.Fatal(err)
	}
	seen := map[netip.AddrPort]bool{}
	err := e.Conns(func(c api.Conn) bool {
		if c.Dest != netip.MustParseAddrPort("198.18.1.1:8080") || c.Virtual != netip.MustParseAddrPort("198.18.0.1:80") || c.ExpireMS <= 0 {
			t.Fatalf("entry %+v", c)
		}
		seen[c.Client] = true
		if len(seen) == 1 {
			locked := make(chan struct{})
			go func() { e.mu.Lock(); close(locked); e.mu.Unlock() }()
			select {
			case <-locked:
			case <-time.After(5 * time.Second):
				t.Fatal("e.mu is held while the listing's reader runs")
			}
		}
		return true
	})
	if err != nil || len(seen) != n {
		t.Fatalf("listed %d of %d entries, err %v", len(seen), n, err)
	}
	m := 0
	if err := e.Conns(func(api.Conn) bool { m++; return m < 3 }); err != nil || m != 3 {
		t.Fatalf("stopped after %d entries (err %v), want 3", m, err)
	}
}
