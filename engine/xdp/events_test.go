package xdp

import (
	"testing"
	"time"
)

func TestEventWarnerRateLimited(t *testing.T) {
	var w eventWarner
	t0 := time.Unix(1000, 0)
	if d := w.check(map[string]uint64{"evicted": 5}, t0); d != nil {
		t.Fatalf("first read reported %v: counts from before this gvsd are not news", d)
	}
	if d := w.check(map[string]uint64{"evicted": 9, "forward": 100}, t0.Add(time.Second)); d["evicted"] != 4 || len(d) != 1 {
		t.Fatalf("got %v, want evicted 4 only", d)
	}
	if d := w.check(map[string]uint64{"evicted": 20}, t0.Add(5*time.Second)); d != nil {
		t.Fatalf("warned again within %v: %v", warnInterval, d)
	}
	if d := w.check(map[string]uint64{"evicted": 20, "conn_table_full": 3}, t0.Add(12*time.Second)); d["evicted"] != 11 || d["conn_table_full"] != 3 {
		t.Fatalf("got %v, want what accumulated since the last warning", d)
	}
	if d := w.check(map[string]uint64{"evicted": 20, "conn_table_full": 3}, t0.Add(30*time.Second)); d != nil {
		t.Fatalf("nothing new, got %v", d)
	}
}

func TestCountCPUList(t *testing.T) {
	for in, want := range map[string]int{"0-1\n": 2, "0": 1, "0-3,8,10-11": 7, "": 0, "x": 0, "3-1": 0} {
		n, ok := countCPUList(in)
		if ok != (want > 0) || n != want {
			t.Errorf("%q: %d %v, want %d", in, n, ok, want)
		}
	}
}
