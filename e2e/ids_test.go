package e2e

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math/bits"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/cilium/ebpf"

	"gvs/bpf"
)

// svcAddr is the address of the i-th of many services: 50,000 ports on
// each of a few virtual addresses.
func svcAddr(i int) string {
	return fmt.Sprintf("198.19.0.%d:%d", 1+i/50000, 1000+i%50000)
}

// restoreLines is -R input that deletes services del to from (exclusive)
// and adds services from to to, each with one DR server.
func restoreLines(del, from, to int) string {
	var b strings.Builder
	for i := del; i < from; i++ {
		fmt.Fprintf(&b, "-D -t %s\n", svcAddr(i))
	}
	for i := from; i < to; i++ {
		fmt.Fprintf(&b, "-A -t %s -s rr\n-a -t %s -r 198.18.0.11:80 -g -w 1\n", svcAddr(i), svcAddr(i))
	}
	return b.String()
}

// svcIDs is what the pinned services map says of the ids: the highest
// service and server ids, and the services holding service id 0 and
// server id 0 ("" when none does).
type svcIDs struct {
	maxSvc, maxDest     uint32
	withSvc0, withDest0 string
}

func readSvcIDs(t *testing.T, pinDir string) svcIDs {
	t.Helper()
	m, err := ebpf.LoadPinnedMap(pinDir+"/services", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	chunks, err := ebpf.LoadPinnedMap(pinDir+"/svc_chunks", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer chunks.Close()
	var r svcIDs
	var k bpf.SvcKey
	var v bpf.Svc
	it := m.Iterate()
	for it.Next(&k, &v) {
		var a [4]byte
		binary.LittleEndian.PutUint32(a[:], k.Addr[0])
		addr := netip.AddrPortFrom(netip.AddrFrom4(a), bits.ReverseBytes16(k.Port)).String()
		r.maxSvc = max(r.maxSvc, v.Id)
		if v.Id == 0 {
			r.withSvc0 = addr
		}
		ids, err := v.DestIDs(chunks)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range ids {
			r.maxDest = max(r.maxDest, d)
			if d == 0 {
				r.withDest0 = addr
			}
		}
	}
	if err := it.Err(); err != nil {
		t.Fatal(err)
	}
	return r
}

// readArray reads a pinned BPF array whole.
func readArray[T any](t *testing.T, path string) []T {
	t.Helper()
	m, err := ebpf.LoadPinnedMap(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	keys := make([]uint32, m.MaxEntries())
	vals := make([]T, m.MaxEntries())
	var cursor ebpf.MapBatchCursor
	for done := 0; done < len(keys); {
		n, err := m.BatchLookup(&cursor, keys[done:], vals[done:], nil)
		done += n
		if errors.Is(err, ebpf.ErrKeyNotExist) || n == 0 {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	return vals
}

// takenIDs counts the service and server ids the engine holds (in use,
// or retired and not yet free), by the marks it leaves in the pinned
// arrays: sched_state's used and a server's address family.
func takenIDs(t *testing.T, pinDir string) (svcs, dests int) {
	t.Helper()
	for _, s := range readArray[bpf.SchedState](t, pinDir+"/sched_state") {
		if s.Used != 0 {
			svcs++
		}
	}
	for _, d := range readArray[bpf.Dest](t, pinDir+"/dests") {
		if d.Af != 0 {
			dests++
		}
	}
	return svcs, dests
}

// zeroStats fails unless every service and server listed shows zero
// counters.
func zeroStats(t *testing.T, list string) {
	t.Helper()
	for _, l := range strings.Split(list, "\n") {
		f := strings.Fields(l)
		if len(f) < 7 || f[0] != "TCP" && f[0] != "->" {
			continue
		}
		if strings.Join(f[2:7], " ") != "0 0 0 0 0" {
			t.Fatalf("counters a new service or server did not earn: %q", l)
		}
	}
}

// 70,000 services, each with a server, added and deleted in batches of
// gvsadm -R (each deleting the services of the one before): more than the
// 65,536 ids gvsd once had. The ids of the deleted services and servers
// come back within seconds, so the highest id in use stays below two
// batches. A reused id starts with zero counters: the first service's
// earned some before it was deleted.
func TestXDPServiceIDsReused(t *testing.T) {
	tp := newDRTopo(t, false)
	d := tp.d
	d.must("--set", "1", "1", "1")
	d.must("-A", "-t", vip+":80", "-s", "rr")
	d.must("-a", "-t", vip+":80", "-r", "198.18.0.11", "-g")
	for range 3 {
		if out, err := tp.role(tp.ns("client"), "hello", vip+":80"); err != nil || strings.TrimSpace(out) != "rs1" {
			t.Fatalf("through the director: %q %v", out, err)
		}
	}
	d.must("-D", "-t", vip+":80")

	const total, batch = 70000, 14000
	start := time.Now()
	var maxSvc, maxDest uint32
	var reused []string
	for from := 0; from < total; from += batch {
		in := restoreLines(max(0, from-batch), from, from+batch)
		if _, errs, code := d.adm(in, "-R"); code != 0 {
			t.Fatalf("gvsadm -R adding services %d to %d: exit %d: %s", from, from+batch, code, errs)
		}
		ids := readSvcIDs(t, tp.pinDir)
		maxSvc, maxDest = max(maxSvc, ids.maxSvc), max(maxDest, ids.maxDest)
		for _, a := range []string{ids.withSvc0, ids.withDest0} {
			if a != "" {
				zeroStats(t, d.must("-L", "-n", "--stats", "--exact", "-t", a))
				reused = append(reused, a)
			}
		}
		// The ids of the services just deleted come back two sweep
		// passes later.
		for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(200 * time.Millisecond) {
			svcs, dests := takenIDs(t, tp.pinDir)
			if svcs == batch && dests == batch {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("after adding services %d to %d: %d service ids and %d server ids taken, want %d each",
					from, from+batch, svcs, dests, batch)
			}
		}
	}
	t.Logf("%d services with a server added and deleted in %v; highest ids in use: service %d, server %d",
		total, time.Since(start), maxSvc, maxDest)
	if len(reused) == 0 {
		t.Errorf("the first service's ids were never reused")
	}
	if maxSvc >= 2*batch || maxDest >= 2*batch {
		t.Errorf("highest ids in use: service %d, server %d; want them reused, below %d", maxSvc, maxDest, 2*batch)
	}
	if _, errs, code := d.adm(restoreLines(total-batch, total, total), "-R"); code != 0 {
		t.Fatalf("deleting the last batch: exit %d: %s", code, errs)
	}
	if rules := d.must("-S", "-n"); strings.Contains(rules, "-A") {
		t.Fatalf("rules left:\n%.500s", rules)
	}
}

// One gvsadm -R of 100,000 services with a server each: it fits the xdp
// engine's id spaces, and the time it takes is reported (not asserted).
func TestXDPRestore100kServices(t *testing.T) {
	tp := newDRTopo(t, false)
	const n = 100000
	in := restoreLines(0, 0, n)
	start := time.Now()
	if _, errs, code := tp.d.adm(in, "-R"); code != 0 {
		t.Fatalf("gvsadm -R of %d services: exit %d: %s", n, code, errs)
	}
	t.Logf("gvsadm -R of %d services with one server each: %v", n, time.Since(start))
	list := tp.d.must("-S", "-n")
	if got := strings.Count(list, "-A -t "); got != n {
		t.Fatalf("%d services listed, want %d", got, n)
	}
	if got := strings.Count(list, "-a -t "); got != n {
		t.Fatalf("%d servers listed, want %d", got, n)
	}
}

// A gvsd restart keeps the ids of a deleted service and its server out of
// the free list while a connection names them: a service added after the
// restart gets other ids, and the old connection is still listed.
func TestXDPRestartKeepsRetiredIDs(t *testing.T) {
	tp := newDRTopo(t, false)
	d := tp.d
	d.must("-A", "-t", vip+":80", "-s", "rr")
	d.must("-a", "-t", vip+":80", "-r", "198.18.0.11", "-g")
	if out, err := tp.role(tp.ns("client"), "hello", vip+":80"); err != nil || strings.TrimSpace(out) != "rs1" {
		t.Fatalf("through the director: %q %v", out, err)
	}
	before := readSvcIDs(t, tp.pinDir)
	if before.withSvc0 != vip+":80" || before.withDest0 != vip+":80" {
		t.Fatalf("the first service does not have ids 0: %+v", before)
	}
	d.must("-D", "-t", vip+":80")
	d.stop()
	d.start()
	d.must("-A", "-t", "198.19.0.1:80", "-s", "rr")
	d.must("-a", "-t", "198.19.0.1:80", "-r", "198.18.0.12", "-g")
	time.Sleep(3 * time.Second) // sweeps that would free unreferenced ids
	d.must("-A", "-t", "198.19.0.2:80", "-s", "rr")
	d.must("-a", "-t", "198.19.0.2:80", "-r", "198.18.0.12", "-g")
	if after := readSvcIDs(t, tp.pinDir); after.withSvc0 != "" || after.withDest0 != "" {
		t.Errorf("ids 0 reused while a connection names them: %+v", after)
	}
	if conns := d.must("-L", "-n", "-c"); !strings.Contains(conns, "198.18.0.11:80") {
		t.Errorf("the deleted service's connection is not listed:\n%s", conns)
	}
}
