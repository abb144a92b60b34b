package xdp

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/cilium/ebpf"

	"gvs/bpf"
)

// grownMaps are the pinned maps whose value a newer gvs extended by
// appending fields whose zero means "not set": an older gvsd's pin is
// carried over instead of refused as incompatible (which would need
// gvsd --cleanup and drop every connection). rconns grew from the
// connection's key alone to struct gvs_reply (the fast path's fields).
var grownMaps = []string{"rconns"}

// grownObjects are the loaded maps of grownMaps, by name.
func grownObjects(o *bpf.Objects) map[string]*ebpf.Map {
	return map[string]*ebpf.Map{"rconns": o.Rconns}
}

// oldSuffix marks a grown map's previous pin while its entries move (the
// BPF filesystem refuses dots in names).
const oldSuffix = "_old"

// setAsideGrown renames the pin of every grown map whose pinned value is
// shorter than spec's, so that loading makes a new one; carryOver then
// copies the entries. A pin set aside by an interrupted start is kept.
func setAsideGrown(dir string, spec *ebpf.CollectionSpec) error {
	for _, name := range grownMaps {
		ms, ok := spec.Maps[name]
		if !ok {
			continue
		}
		pin := filepath.Join(dir, name)
		m, err := ebpf.LoadPinnedMap(pin, nil)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return fmt.Errorf("opening the pinned %s: %w", name, err)
		}
		short := m.KeySize() == ms.KeySize && m.ValueSize() < ms.ValueSize && m.Type() == ms.Type
		m.Close()
		if !short {
			continue // the same layout, or one loading will refuse
		}
		if _, err := os.Stat(pin + oldSuffix); err == nil {
			return fmt.Errorf("%s is pinned too: run gvsd --cleanup", pin+oldSuffix)
		}
		if err := os.Rename(pin, pin+oldSuffix); err != nil {
			return fmt.Errorf("setting the pinned %s aside: %w", name, err)
		}
	}
	return nil
}

// carryOver copies the entries of every grown map set aside into the
// loaded one, each value padded with zeros, without replacing an entry
// the new program made meanwhile. With done, the old pin goes: call it
// again with done after the new program is attached, for what the old
// one added in between.
func carryOver(dir string, maps map[string]*ebpf.Map, done bool) (int, error) {
	n := 0
	for _, name := range grownMaps {
		pin := filepath.Join(dir, name) + oldSuffix
		old, err := ebpf.LoadPinnedMap(pin, nil)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return n, fmt.Errorf("opening %s: %w", pin, err)
		}
		m := maps[name]
		if m == nil || old.KeySize() != m.KeySize() || old.ValueSize() > m.ValueSize() {
			old.Close()
			return n, fmt.Errorf("%s does not fit the loaded %s: run gvsd --cleanup", pin, name)
		}
		k := make([]byte, old.KeySize())
		v := make([]byte, old.ValueSize())
		nv := make([]byte, m.ValueSize())
		it := old.Iterate()
		for it.Next(k, v) {
			copy(nv, v)
			clear(nv[len(v):])
			err := m.Update(k, nv, ebpf.UpdateNoExist)
			if err == nil {
				n++
			} else if !errors.Is(err, ebpf.ErrKeyExist) {
				old.Close()
				return n, fmt.Errorf("carrying %s over: %w", name, err)
			}
		}
		err = it.Err()
		old.Close()
		if err != nil {
			return n, fmt.Errorf("reading %s: %w", pin, err)
		}
		if done {
			if err := os.Remove(pin); err != nil {
				return n, err
			}
		}
	}
	return n, nil
}
