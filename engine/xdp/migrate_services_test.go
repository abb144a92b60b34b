package xdp

import (
	"encoding/binary"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/rlimit"

	"gvs/bpf"
)

// TestMigrateServices: a services map pinned in the layout before
// svc_chunks (all 1,024 ids inline) is converted in place: same keys,
// settings, FULLNAT pool and lists, the long ones in svc_chunks.
func TestMigrateServices(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	_ = rlimit.RemoveMemlock()
	dir := testPinDir(t)
	spec, err := bpf.LoadSpec()
	if err != nil {
		t.Fatal(err)
	}
	old, err := ebpf.NewMapWithOptions(&ebpf.MapSpec{Name: "services", Type: ebpf.Hash, KeySize: spec.Maps["services"].KeySize,
		ValueSize: oldSvcSize, MaxEntries: maxServices, Flags: 1 /* BPF_F_NO_PREALLOC */, Pinning: ebpf.PinByName},
		ebpf.MapOptions{PinPath: dir})
	if err != nil {
		t.Fatal(err)
	}
	lists := map[uint32][]uint32{}
	for n, count := range []int{1, 2, bpf.SvcInline, bpf.SvcInline + 1, 300, bpf.SvcDests} {
		var ids []uint32
		for i := range count {
			ids = append(ids, uint32(n*1024+i+1))
		}
		lists[uint32(n)] = ids
		w := make([]uint32, oldSvcSize/4)
		w[0], w[1], w[2], w[6], w[7], w[8] = uint32(n), 0x1, 3, uint32(count), 1, 0x0a000001+uint32(n)
		copy(w[24:], ids)
		v := make([]byte, oldSvcSize)
		for i, x := range w {
			binary.NativeEndian.PutUint32(v[4*i:], x)
		}
		k := bpf.SvcKey{Port: uint16(n + 1), Proto: 6, Af: 4}
		if err := old.Put(&k, v); err != nil {
			t.Fatal(err)
		}
	}
	old.Close()

	if ok, err := migrateServices(dir, spec); err != nil || !ok {
		t.Fatalf("migrate: %v, %v", ok, err)
	}
	if ok, err := migrateServices(dir, spec); err != nil || ok {
		t.Fatalf("second migrate: %v, %v (want nothing to do)", ok, err)
	}
	m, err := ebpf.LoadPinnedMap(filepath.Join(dir, "services"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	chunks, err := ebpf.LoadPinnedMap(filepath.Join(dir, "svc_chunks"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer chunks.Close()
	if m.ValueSize() != spec.Maps["services"].ValueSize {
		t.Fatalf("value size %d", m.ValueSize())
	}
	var k bpf.SvcKey
	var sv bpf.Svc
	seen := 0
	it := m.Iterate()
	for it.Next(&k, &sv) {
		seen++
		ids, err := sv.DestIDs(chunks)
		if err != nil {
			t.Fatal(err)
		}
		want := lists[sv.Id]
		if int(k.Port) != int(sv.Id)+1 || sv.Flags != 1 || sv.Sched != 3 || sv.Nladdrs != 1 || sv.Laddrs[0] != 0x0a000001+sv.Id || !slices.Equal(ids, want) {
			t.Fatalf("service %d: %+v, ids %v; want %d ids", sv.Id, sv, ids, len(want))
		}
	}
	if err := it.Err(); err != nil || seen != len(lists) {
		t.Fatalf("%d services, %v", seen, err)
	}
}
