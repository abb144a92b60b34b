package xdp

// idPool hands out the ids that index the BPF arrays (a service's
// svc_stats and sched_state, a server's dests and dest_stats entries) and
// takes an id back only when nothing in BPF can name it any more.
//
// An id given up (its service deleted, its server removed) is retired: a
// revived id (the same service or server added again, as the kernel takes
// a destination back from its trash) goes on as it was. A retired id is
// due once a sweep pass that began a full pass after the retirement has
// seen nothing refer to it: the pass right after may have begun while a
// packet that read the old service was still being handled, the one after
// begins a second later. A due id is cleaned (its counters and state
// zeroed) before it joins the free list, so a reused id starts clean.
type idPool struct {
	size    uint32
	next    uint32            // ids from next up are free and clean
	free    []uint32          // released and cleaned
	retired map[uint32]uint64 // id -> passes begun when it was retired
	clean   func(id uint32) error
}

func newIDPool(size uint32, clean func(id uint32) error) *idPool {
	return &idPool{size: size, retired: map[uint32]uint64{}, clean: clean}
}

// get hands out an id; false when every id is in use or retired.
func (p *idPool) get() (uint32, bool) {
	if n := len(p.free); n > 0 {
		id := p.free[n-1]
		p.free = p.free[:n-1]
		return id, true
	}
	if p.next >= p.size {
		return 0, false
	}
	p.next++
	return p.next - 1, true
}

// retire marks id given up; passes is how many sweep passes have begun.
// Retiring a retired id again keeps its first retirement.
func (p *idPool) retire(id uint32, passes uint64) {
	if _, ok := p.retired[id]; !ok {
		p.retired[id] = passes
	}
}

// revive takes a retired id back into use.
func (p *idPool) revive(id uint32) { delete(p.retired, id) }

// isRetired says whether id is retired.
func (p *idPool) isRetired(id uint32) bool {
	_, ok := p.retired[id]
	return ok
}

// due lists the retired ids that pass, the number of a sweep pass that
// has just gone over every connection and template, lets go: retired
// before pass-1 began, and not referenced in what the pass saw.
func (p *idPool) due(pass uint64, referenced func(id uint32) bool) []uint32 {
	var ids []uint32
	for id, at := range p.retired {
		if pass >= at+2 && !referenced(id) {
			ids = append(ids, id)
		}
	}
	return ids
}

// release cleans ids (from due) and frees them; an id whose cleaning
// fails stays retired, for the next pass to try again. It returns the ids
// freed.
func (p *idPool) release(ids []uint32) []uint32 {
	var freed []uint32
	for _, id := range ids {
		if _, ok := p.retired[id]; !ok {
			continue
		}
		if p.clean(id) != nil {
			continue
		}
		delete(p.retired, id)
		p.free = append(p.free, id)
		freed = append(freed, id)
	}
	return freed
}

// recover sets the pool from what a previous gvsd left in the maps: the
// live ids in use, the retired ones (given up, but maybe still named by
// connections) waiting for the sweep as if retired at pass passes; every
// other id is free, and clean, since the previous gvsd cleaned ids before
// freeing them.
func (p *idPool) recover(live, retired []uint32, passes uint64) {
	inUse := map[uint32]bool{}
	p.next = 0
	p.retired = map[uint32]uint64{}
	for _, id := range live {
		if id < p.size {
			inUse[id] = true
			p.next = max(p.next, id+1)
		}
	}
	for _, id := range retired {
		if id < p.size && !inUse[id] {
			p.retired[id] = passes
			p.next = max(p.next, id+1)
		}
	}
	p.free = p.free[:0]
	for id := p.next; id > 0; id-- { // lowest on top
		if !inUse[id-1] && !p.isRetired(id-1) {
			p.free = append(p.free, id-1)
		}
	}
}

// high is one more than the highest id ever handed out: the arrays hold
// nothing beyond it.
func (p *idPool) high() uint32 { return p.next }
