package xdp

import (
	"testing"

	"gvs/bpf"
)

// The sweep's period grows with the table's capacity past 1,048,576
// entries, and sync refreshes keep their minute.
func TestSweepPeriod(t *testing.T) {
	for _, c := range []struct {
		capacity uint32
		want     int
	}{{1 << 14, 1}, {1 << 20, 1}, {1<<21 + 5, 2}, {1 << 22, 4}, {1 << 23, 8}} {
		if got := sweepPeriod(c.capacity); got != c.want {
			t.Errorf("sweepPeriod(%d) = %d, want %d", c.capacity, got, c.want)
		}
	}
	k := bpf.ConnKey{Caddr: [4]uint32{7}, Cport: 9, Proto: 17, Af: 4}
	for _, every := range []int{1, 4} {
		n := 0
		for pass := range uint64(600 / every) { // ten minutes of passes
			if syncDue(&k, pass, every) {
				n++
			}
		}
		if n != 10 {
			t.Errorf("every %d s: refreshed %d times in ten minutes, want 10", every, n)
		}
	}
}
