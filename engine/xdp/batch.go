package xdp

import (
	"errors"

	"github.com/cilium/ebpf"
)

// eachEntry calls f for every entry of a hash map, thousands per
// BPF_MAP_LOOKUP_BATCH syscall instead of two syscalls per entry (the
// sweep reads the whole connection table every second). Entries that BPF
// adds or removes meanwhile may be seen or not, as with key iteration.
func eachEntry[K, V any](m *ebpf.Map, f func(k *K, v *V)) error {
	keys := make([]K, countersChunk)
	vals := make([]V, countersChunk)
	var cursor ebpf.MapBatchCursor
	for {
		n, err := m.BatchLookup(&cursor, keys, vals, nil)
		for i := range n {
			f(&keys[i], &vals[i])
		}
		if errors.Is(err, ebpf.ErrKeyNotExist) || err == nil && n == 0 {
			return nil
		}
		if err != nil {
			return err
		}
	}
}
