package xdp

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/cilium/ebpf"

	"gvs/bpf"
)

// oldSvcSize is the services value of a gvs before svc_chunks: 8 words,
// the 16 words of the FULLNAT pool, then all 1,024 server ids inline.
const oldSvcSize = 4192

// migrateServices converts a services map pinned by such a gvsd into this
// layout, so an upgrade keeps its services and connections without gvsd
// --cleanup: every value is written, with its chunks in svc_chunks
// (created and pinned if missing), into a new map, which then replaces
// the pin (a rename, atomic). The program still attached goes on with the
// old map until this gvsd attaches its own, which names the new one. A
// pin of any other layout is left for the load to refuse. It reports
// whether it converted the map.
func migrateServices(pinDir string, spec *ebpf.CollectionSpec) (bool, error) {
	path := filepath.Join(pinDir, "services")
	old, err := ebpf.LoadPinnedMap(path, nil)
	if errors.Is(err, os.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("services: %w", err)
	}
	defer old.Close()
	ms, cs := spec.Maps["services"], spec.Maps["svc_chunks"]
	if ms == nil || cs == nil || old.ValueSize() != oldSvcSize || old.KeySize() != ms.KeySize {
		return false, nil
	}
	cs = cs.Copy()
	cs.Pinning = ebpf.PinByName
	chunks, err := ebpf.NewMapWithOptions(cs, ebpf.MapOptions{PinPath: pinDir})
	if err != nil {
		return false, fmt.Errorf("svc_chunks: %w", err)
	}
	defer chunks.Close()
	ns := ms.Copy()
	ns.Pinning = ebpf.PinNone
	nm, err := ebpf.NewMap(ns)
	if err != nil {
		return false, fmt.Errorf("services: %w", err)
	}
	defer nm.Close()

	key := make([]byte, old.KeySize())
	val := make([]byte, oldSvcSize)
	var w [oldSvcSize / 4]uint32
	list := uint32(1)
	it := old.Iterate()
	for it.Next(&key, &val) {
		for i := range w {
			w[i] = binary.NativeEndian.Uint32(val[4*i:])
		}
		sv := bpf.Svc{Id: w[0], Flags: w[1], Sched: w[2], Timeout: w[3], Netmask: w[4], TableSlot: w[5], Nladdrs: w[7]}
		copy(sv.Laddrs[:], w[8:24])
		ids := w[24 : 24+min(w[6], bpf.SvcDests)]
		keys, vals := sv.SetDests(ids, list)
		if len(keys) > 0 {
			list++
		}
		if err := batchPut(chunks, keys, vals); err != nil {
			return false, fmt.Errorf("svc_chunks: %w", err)
		}
		if err := nm.Put(key, &sv); err != nil {
			return false, fmt.Errorf("services: %w", err)
		}
	}
	if err := it.Err(); err != nil {
		return false, fmt.Errorf("services: %w", err)
	}
	tmp := path + "_new" // bpffs refuses names with a dot
	_ = os.Remove(tmp)
	if err := nm.Pin(tmp); err != nil {
		return false, fmt.Errorf("services: pin: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		_ = os.Remove(tmp)
		return false, fmt.Errorf("services: rename: %w", err)
	}
	return true, nil
}
