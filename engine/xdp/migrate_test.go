package xdp

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/cilium/ebpf"

	"gvs/bpf"
	"gvs/bpffs"
)

// An older gvsd's rconns (value: the connection's key alone) is carried
// over to the extended layout on upgrade: its entries keep their key,
// the new fields zero; an entry the new program made first is kept; the
// old program's later entries come with the second pass, which removes
// the old pin. A pin of the current layout is left alone.
func TestGrownMapCarriedOver(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root for BPF maps and pins")
	}
	dir := testPinDir(t)

	old, err := ebpf.NewMap(&ebpf.MapSpec{Type: ebpf.Hash, KeySize: 40, ValueSize: 40, MaxEntries: 64})
	if err != nil {
		t.Fatal(err)
	}
	defer old.Close()
	if err := old.Pin(filepath.Join(dir, "rconns")); err != nil {
		t.Fatal(err)
	}
	key := func(i int) bpf.ConnKey {
		return bpf.ConnKey{Caddr: [4]uint32{uint32(i)}, Cport: uint16(i), Proto: 17, Af: 4}
	}
	for i := 1; i <= 3; i++ {
		fk := key(100 + i)
		if err := old.Put(key(i), fk); err != nil {
			t.Fatal(err)
		}
	}

	full, err := bpf.LoadSpec()
	if err != nil {
		t.Fatal(err)
	}
	ms := full.Maps["rconns"].Copy()
	ms.MaxEntries, ms.Pinning = 64, ebpf.PinByName
	spec := &ebpf.CollectionSpec{Maps: map[string]*ebpf.MapSpec{"rconns": ms}}
	if err := setAsideGrown(dir, spec); err != nil {
		t.Fatal(err)
	}
	nm, err := ebpf.NewMapWithOptions(ms, ebpf.MapOptions{PinPath: dir})
	if err != nil {
		t.Fatalf("loading over the set-aside pin: %v", err)
	}
	defer nm.Close()
	mine := bpf.Reply{Fk: key(999), Fast: 1}
	if err := nm.Put(key(1), &mine); err != nil { // made by the new program first
		t.Fatal(err)
	}
	grown := map[string]*ebpf.Map{"rconns": nm}
	if n, err := carryOver(dir, grown, false); err != nil || n != 2 {
		t.Fatalf("first pass: %d entries, %v", n, err)
	}
	if err := old.Put(key(4), key(104)); err != nil { // the old program, before the attach
		t.Fatal(err)
	}
	if n, err := carryOver(dir, grown, true); err != nil || n != 1 {
		t.Fatalf("second pass: %d entries, %v", n, err)
	}
	if _, err := os.Stat(filepath.Join(dir, "rconns"+oldSuffix)); !os.IsNotExist(err) {
		t.Fatalf("old pin left: %v", err)
	}
	for i := 1; i <= 4; i++ {
		var r bpf.Reply
		if err := nm.Lookup(key(i), &r); err != nil {
			t.Fatalf("entry %d: %v", i, err)
		}
		want := bpf.Reply{Fk: key(100 + i)}
		if i == 1 {
			want = mine
		}
		if r != want {
			t.Fatalf("entry %d: %+v, want %+v", i, r, want)
		}
	}
	// Now current: nothing set aside.
	if err := setAsideGrown(dir, spec); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "rconns")); err != nil {
		t.Fatalf("current pin moved: %v", err)
	}
}

// testPinDir is a pin directory of the test's own on the BPF filesystem
// (mounted if need be), removed when it ends.
func testPinDir(t *testing.T) string {
	dir := filepath.Join("/sys/fs/bpf", fmt.Sprintf("gvst-%s-%d", t.Name(), os.Getpid()))
	if err := bpffs.EnsurePinDir(dir, "test", t.Logf); err != nil {
		t.Skip("no BPF filesystem:", err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}
