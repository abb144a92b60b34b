package xdp

import (
	"fmt"
	"slices"

	"gvs/bpf"
)

// A service's server list: the first bpf.SvcInline ids in its value, the
// rest in svc_chunks under a list id (bpf/gvs.h). A changed list is
// written under a fresh list id, then the value naming it; the old list's
// chunks go at the next tick, when no program run can be reading them.

// svcList is the list a service's value names.
type svcList struct {
	id   uint32   // 0: no chunks
	tail []uint32 // the ids in its chunks
}

// retiredList is a list no value names since tick at.
type retiredList struct {
	id, chunks uint32
	at         int
}

// lists is the engine's bookkeeping of svc_chunks (under e.mu).
type lists struct {
	of      map[uint32]svcList // by service id
	retired []retiredList
	inUse   map[uint32]bool // named by a service or retired
	next    uint32
}

func newLists() lists { return lists{of: map[uint32]svcList{}, inUse: map[uint32]bool{}, next: 1} }

// newID hands out a list id not in use (0 is "no list").
func (l *lists) newID() uint32 {
	for l.next == 0 || l.inUse[l.next] {
		l.next++
	}
	id := l.next
	l.next++
	l.inUse[id] = true
	return id
}

// writeList puts ids into sv: the list the service svc already has if
// its chunked part is the same, else a new one whose chunks it writes now
// (before the value). fresh says a new list was written: commitList or
// dropList must follow once the value is written or not.
func (e *Engine) writeList(svc uint32, sv *bpf.Svc, ids []uint32) (fresh bool, err error) {
	if len(ids) <= bpf.SvcInline {
		sv.SetDests(ids, 0)
		return false, nil
	}
	if cur, ok := e.lists.of[svc]; ok && cur.id != 0 && slices.Equal(cur.tail, ids[bpf.SvcInline:]) {
		sv.SetDests(ids, cur.id)
		return false, nil
	}
	id := e.lists.newID()
	keys, vals := sv.SetDests(ids, id)
	if err := batchPut(e.objs.SvcChunks, keys, vals); err != nil {
		e.retireList(id, uint32(len(keys)))
		return false, fmt.Errorf("svc_chunks: %w", err)
	}
	return true, nil
}

// commitList records that service svc's value now names list (0: none)
// with ids, and retires the list it named before.
func (e *Engine) commitList(svc, list uint32, ids []uint32) {
	cur, ok := e.lists.of[svc]
	if ok && cur.id == list {
		return
	}
	if ok {
		e.retireList(cur.id, uint32(bpf.Chunks(bpf.SvcInline+len(cur.tail))))
	}
	if list == 0 {
		delete(e.lists.of, svc)
		return
	}
	e.lists.of[svc] = svcList{id: list, tail: slices.Clone(ids[bpf.SvcInline:])}
}

// dropList retires a list written for a value that was not written.
func (e *Engine) dropList(list uint32, n int) { e.retireList(list, uint32(bpf.Chunks(n))) }

// retireList lets the chunks of list id go at the next tick.
func (e *Engine) retireList(id, chunks uint32) {
	if id != 0 {
		e.lists.retired = append(e.lists.retired, retiredList{id: id, chunks: chunks, at: e.ticks})
	}
}

// dropSvcList retires the list of deleted service svc (after its value).
func (e *Engine) dropSvcList(svc uint32) {
	if cur, ok := e.lists.of[svc]; ok {
		e.retireList(cur.id, uint32(bpf.Chunks(bpf.SvcInline+len(cur.tail))))
		delete(e.lists.of, svc)
	}
}

// freeLists deletes the chunks of the lists retired before this tick.
func (e *Engine) freeLists() {
	e.mu.Lock()
	defer e.mu.Unlock()
	keep := e.lists.retired[:0]
	for _, r := range e.lists.retired {
		if r.at >= e.ticks {
			keep = append(keep, r)
			continue
		}
		failed := false
		for c := range r.chunks {
			if err := e.objs.SvcChunks.Delete(&bpf.ChunkKey{List: r.id, Chunk: c}); err != nil && !isNotExist(err) {
				failed = true
			}
		}
		if failed {
			keep = append(keep, r)
			continue
		}
		delete(e.lists.inUse, r.id)
	}
	e.lists.retired = keep
}

// recoverLists, after the services' lists are in e.lists: deletes the
// chunks no service names (a previous gvsd stopped between writing a list
// and its value, or before freeing a retired one) and sets the next list
// id past every one seen.
func (e *Engine) recoverLists() error {
	var k bpf.ChunkKey
	var v bpf.Chunk
	var gone []bpf.ChunkKey
	high := uint32(0)
	it := e.objs.SvcChunks.Iterate()
	for it.Next(&k, &v) {
		high = max(high, k.List)
		if !e.lists.inUse[k.List] {
			gone = append(gone, k)
		}
	}
	if err := it.Err(); err != nil {
		return fmt.Errorf("svc_chunks: %w", err)
	}
	for i := range gone {
		if err := e.objs.SvcChunks.Delete(&gone[i]); err != nil && !isNotExist(err) {
			return fmt.Errorf("svc_chunks: %w", err)
		}
	}
	for id := range e.lists.inUse {
		high = max(high, id)
	}
	e.lists.next = high + 1
	return nil
}
