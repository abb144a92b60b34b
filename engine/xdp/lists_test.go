package xdp

import (
	"net/netip"
	"slices"
	"testing"

	"gvs/bpf"
	"gvs/ipvs"
	"gvs/model"
)

// svcListOf reads service k's list back from the maps as the data path
// sees it, and its list id.
func svcListOf(t *testing.T, e *Engine, k model.ServiceKey) ([]uint32, uint32) {
	t.Helper()
	var sv bpf.Svc
	must(t, e.objs.Services.Lookup(svcKey(k), &sv))
	ids, err := sv.DestIDs(e.objs.SvcChunks)
	must(t, err)
	return ids, sv.List
}

// modelList is service k's list as the model has it, by dest id.
func modelList(e *Engine, k model.ServiceKey) []uint32 {
	var ids []uint32
	e.Do(func(v *ipvs.IPVS) {
		for _, s := range v.Service(k).Servers() {
			ids = append(ids, e.destIDs[k][s.AddrPort()])
		}
	})
	return ids
}

func chunkCount(t *testing.T, e *Engine) int {
	t.Helper()
	var k bpf.ChunkKey
	var v bpf.Chunk
	n := 0
	it := e.objs.SvcChunks.Iterate()
	for it.Next(&k, &v) {
		n++
	}
	must(t, it.Err())
	return n
}

// A list past the ids a value holds goes on in svc_chunks: written
// under a new list id on each change (the old one freed at the next
// tick), kept when only the inline part or nothing in the list changed,
// recovered by a restarted gvsd (which deletes chunks no service names),
// and freed with its service.
func TestServerLists(t *testing.T) {
	e := mapEngine(t)
	k := tcpSvc("198.18.0.100:80")
	dest := func(i int) model.Dest {
		return model.Dest{Addr: netip.AddrFrom4([4]byte{198, 18, byte(1 + i/200), byte(1 + i%200)}), Port: 80, Method: model.Route, Weight: 1}
	}
	tick := func() { e.ticks++; e.freeLists() }
	const n = 300
	must(t, e.Batch(func() error {
		if err := e.AddService(model.Service{ServiceKey: k, Scheduler: "wlc"}); err != nil {
			return err
		}
		for i := range n {
			if err := e.AddDest(k, dest(i)); err != nil {
				return err
			}
		}
		return nil
	}))
	ids, list := svcListOf(t, e, k)
	if want := modelList(e, k); !slices.Equal(ids, want) || list == 0 {
		t.Fatalf("list %d: %v\nwant %v", list, ids, want)
	}
	tick()
	if c := chunkCount(t, e); c != bpf.Chunks(n) {
		t.Fatalf("%d chunks, want %d", c, bpf.Chunks(n))
	}

	// A weight: the same list. A server added at the head shifts the
	// tail: a new list, the old one there until the next tick.
	d := dest(7)
	d.Weight = 5
	must(t, e.EditDest(k, d))
	if _, l := svcListOf(t, e, k); l != list {
		t.Fatalf("a weight changed the list id %d -> %d", list, l)
	}
	must(t, e.AddDest(k, dest(n)))
	ids, l2 := svcListOf(t, e, k)
	if want := modelList(e, k); !slices.Equal(ids, want) || l2 == list {
		t.Fatalf("after an add: list %d (was %d): %v\nwant %v", l2, list, ids, want)
	}
	if c := chunkCount(t, e); c != 2*bpf.Chunks(n) { // 301 ids: as many chunks as 300
		t.Fatalf("%d chunks before the tick, want %d", c, 2*bpf.Chunks(n))
	}
	tick()
	if c := chunkCount(t, e); c != bpf.Chunks(n+1) {
		t.Fatalf("%d chunks after the tick, want %d", c, bpf.Chunks(n+1))
	}

	// A restarted gvsd: the same lists; a stray chunk goes.
	stray := bpf.ChunkKey{List: 999, Chunk: 0}
	must(t, e.objs.SvcChunks.Put(&stray, &bpf.Chunk{}))
	e2 := newEngine(e.log, Options{})
	e2.objs = e.objs
	restartEngine(t, e2)
	if c := chunkCount(t, e2); c != bpf.Chunks(n+1) {
		t.Fatalf("%d chunks after recovery, want %d", c, bpf.Chunks(n+1))
	}
	if e2.lists.of[e.svcIDs[k]].id != l2 || e2.lists.next <= 999 {
		t.Fatalf("recovered lists %+v", e2.lists)
	}
	ops, err := e2.Pinned()
	must(t, err)
	if got := len(ops); got != 1+n+1 {
		t.Fatalf("adopted %d ops, want the service and its %d servers", got, n+1)
	}

	// Down to the inline part, then gone.
	must(t, e.Batch(func() error {
		for i := range n - 5 {
			if err := e.DelDest(k, dest(i).AddrPort()); err != nil {
				return err
			}
		}
		return nil
	}))
	if ids, l := svcListOf(t, e, k); l != 0 || !slices.Equal(ids, modelList(e, k)) {
		t.Fatalf("6 servers: list %d, %v", l, ids)
	}
	tick()
	if c := chunkCount(t, e); c != 0 {
		t.Fatalf("%d chunks for a short list", c)
	}
	for i := range 40 {
		must(t, e.AddDest(k, dest(1000+i)))
	}
	must(t, e.DelService(k))
	tick()
	if c := chunkCount(t, e); c != 0 {
		t.Fatalf("%d chunks after the service went", c)
	}
}
