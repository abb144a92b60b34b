package xdp

import (
	"errors"
	"slices"
	"testing"
)

// idStep is one thing done to a pool: get an id (want it, or ok false
// when the pool is full), count traffic on an id (what BPF does to a
// live id's counters), retire or revive an id, or end a sweep pass that
// saw the case's referenced ids (want the ids it frees).
type idStep struct {
	do   string // get, count, retire, revive, sweep
	id   uint32
	pass uint64
	want []uint32
	full bool // get: the pool has no id left
}

func TestIDPool(t *testing.T) {
	tests := []struct {
		name       string
		size       uint32
		live       []uint32 // recover: in use by a previous gvsd
		retired    []uint32 // recover: given up by it
		referenced []uint32 // named by the connections every pass sees
		failClean  []uint32
		steps      []idStep
	}{{
		name: "ids are handed out in order until none is left",
		size: 3,
		steps: []idStep{
			{do: "get", want: []uint32{0}}, {do: "get", want: []uint32{1}},
			{do: "get", want: []uint32{2}}, {do: "get", full: true},
		},
	}, {
		name: "a retired id is freed a full pass after its retirement, not the pass right after",
		size: 2,
		steps: []idStep{
			{do: "get", want: []uint32{0}}, {do: "get", want: []uint32{1}},
			{do: "retire", id: 0, pass: 5},
			{do: "sweep", pass: 6, want: nil},
			{do: "get", full: true},
			{do: "sweep", pass: 7, want: []uint32{0}},
			{do: "get", want: []uint32{0}},
		},
	}, {
		name:       "an id that connections still name is kept",
		size:       2,
		referenced: []uint32{0},
		steps: []idStep{
			{do: "get", want: []uint32{0}}, {do: "get", want: []uint32{1}},
			{do: "retire", id: 0}, {do: "retire", id: 1},
			{do: "sweep", pass: 10, want: []uint32{1}},
			{do: "get", want: []uint32{1}},
			{do: "get", full: true},
		},
	}, {
		name: "a reused id starts with zero counters",
		size: 1,
		steps: []idStep{
			{do: "get", want: []uint32{0}},
			{do: "count", id: 0},
			{do: "retire", id: 0},
			{do: "sweep", pass: 2, want: []uint32{0}},
			{do: "get", want: []uint32{0}}, // the harness checks it is clean
		},
	}, {
		name: "a revived id is not freed",
		size: 2,
		steps: []idStep{
			{do: "get", want: []uint32{0}},
			{do: "retire", id: 0}, {do: "revive", id: 0},
			{do: "sweep", pass: 5, want: nil},
			{do: "get", want: []uint32{1}},
		},
	}, {
		name: "retired again, an id keeps its first retirement",
		size: 1,
		steps: []idStep{
			{do: "get", want: []uint32{0}},
			{do: "retire", id: 0, pass: 1}, {do: "retire", id: 0, pass: 3},
			{do: "sweep", pass: 3, want: []uint32{0}},
		},
	}, {
		name:      "an id that cannot be cleaned stays retired",
		size:      2,
		failClean: []uint32{0},
		steps: []idStep{
			{do: "get", want: []uint32{0}},
			{do: "retire", id: 0},
			{do: "sweep", pass: 2, want: nil},
			{do: "get", want: []uint32{1}},
			{do: "get", full: true},
		},
	}, {
		name:    "after a restart: live and retired ids are kept, the gaps are free, lowest first",
		size:    8,
		live:    []uint32{0, 2, 5},
		retired: []uint32{3, 6},
		steps: []idStep{
			{do: "get", want: []uint32{1}}, {do: "get", want: []uint32{4}},
			{do: "get", want: []uint32{7}}, {do: "get", full: true},
			{do: "sweep", pass: 1, want: nil},
			{do: "sweep", pass: 2, want: []uint32{3, 6}},
		},
	}, {
		name:       "after a restart: a retired id with connections waits for them",
		size:       4,
		live:       []uint32{0},
		retired:    []uint32{1, 2},
		referenced: []uint32{1},
		steps: []idStep{
			{do: "sweep", pass: 2, want: []uint32{2}},
			{do: "get", want: []uint32{2}}, {do: "get", want: []uint32{3}},
			{do: "get", full: true},
		},
	}}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			counters := map[uint32]int{} // a BPF array's entries
			p := newIDPool(tc.size, func(id uint32) error {
				if slices.Contains(tc.failClean, id) {
					return errors.New("cannot clean")
				}
				delete(counters, id)
				return nil
			})
			if tc.live != nil || tc.retired != nil {
				for _, id := range append(slices.Clone(tc.live), tc.retired...) {
					counters[id] = 1
				}
				p.recover(tc.live, tc.retired, 0)
			}
			referenced := func(id uint32) bool { return slices.Contains(tc.referenced, id) }
			for i, s := range tc.steps {
				switch s.do {
				case "get":
					id, ok := p.get()
					if ok == s.full || ok && id != s.want[0] {
						t.Fatalf("step %d: get = %d, %v; want %v (full %v)", i, id, ok, s.want, s.full)
					}
					if ok && counters[id] != 0 {
						t.Fatalf("step %d: id %d handed out with counters %d", i, id, counters[id])
					}
				case "count":
					counters[s.id]++
				case "retire":
					p.retire(s.id, s.pass)
				case "revive":
					p.revive(s.id)
				case "sweep":
					got := p.release(p.due(s.pass, referenced))
					slices.Sort(got)
					if !slices.Equal(got, s.want) {
						t.Fatalf("step %d: pass %d freed %v, want %v", i, s.pass, got, s.want)
					}
				default:
					t.Fatalf("step %d: unknown %q", i, s.do)
				}
			}
		})
	}
}

func TestIDPoolHigh(t *testing.T) {
	p := newIDPool(4, func(uint32) error { return nil })
	p.recover([]uint32{1}, []uint32{2}, 0)
	if p.high() != 3 {
		t.Errorf("high after recovering ids 1 and 2 = %d, want 3", p.high())
	}
	if id, _ := p.get(); id != 0 || p.high() != 3 {
		t.Errorf("get = %d, high %d; want the gap 0, high 3", id, p.high())
	}
	if id, _ := p.get(); id != 3 || p.high() != 4 {
		t.Errorf("get = %d, high %d; want 3, 4", id, p.high())
	}
}
