package xdp

import (
	"errors"

	"github.com/cilium/ebpf"

	"gvs/bpf"
	"gvs/stats"
)

// countersChunk is how many ids one batch lookup reads.
const countersChunk = 4096

// readCounters sums the per-CPU counters of ids 0 to n-1 of svc_stats or
// dest_stats, reading thousands of ids per syscall: the tick reads every
// service and server each second with the table locked, and one lookup
// per id would take most of that second at 100,000 services.
func readCounters(m *ebpf.Map, n int) ([]stats.Counters, error) {
	out := make([]stats.Counters, n)
	ncpu := ebpfCPUs()
	keys := make([]uint32, min(countersChunk, n))
	vals := make([]bpf.Stats, len(keys)*ncpu)
	var cursor ebpf.MapBatchCursor
	for done := 0; done < n; {
		c := min(len(keys), n-done)
		got, err := m.BatchLookup(&cursor, keys[:c], vals[:c*ncpu], nil)
		for i := range got {
			if id := keys[i]; int(id) < n {
				out[id] = sum(vals[i*ncpu : (i+1)*ncpu])
			}
		}
		done += got
		if errors.Is(err, ebpf.ErrKeyNotExist) || got == 0 {
			break
		}
		if err != nil {
			return nil, err
		}
	}
	return out, nil
}
