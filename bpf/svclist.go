package bpf

import (
	"errors"
	"fmt"

	"github.com/cilium/ebpf"
)

// Sizes of a service's server list (gvs.h).
const (
	SvcDests  = 1024  // GVS_SVC_DESTS: servers per service
	SvcInline = 19    // GVS_SVC_INLINE: of them in the service's value
	ChunkIDs  = 112   // GVS_CHUNK_IDS: of them per svc_chunks value
	MaxChunks = 65536 // GVS_MAX_CHUNKS
	// DestNone is GVS_DEST_NONE: no server.
	DestNone = 0xffffffff
)

// Chunks is how many svc_chunks entries a list of n servers takes.
func Chunks(n int) int {
	if n <= SvcInline {
		return 0
	}
	return (n - SvcInline + ChunkIDs - 1) / ChunkIDs
}

// SetDests puts ids (at most SvcDests) in sv: Ndests, the first
// SvcInline inline, and list as sv.List when there are more (0
// otherwise). It returns the svc_chunks entries that hold the rest, to be
// written before sv is.
func (sv *Svc) SetDests(ids []uint32, list uint32) ([]ChunkKey, []Chunk) {
	sv.Ndests = uint32(len(ids))
	sv.Dests = [SvcInline]uint32{}
	n := copy(sv.Dests[:], ids)
	sv.List = 0
	if n == len(ids) {
		return nil, nil
	}
	sv.List = list
	keys := make([]ChunkKey, Chunks(len(ids)))
	vals := make([]Chunk, len(keys))
	for c := range keys {
		keys[c] = ChunkKey{List: list, Chunk: uint32(c)}
		rest := copy(vals[c].Ids[:], ids[n:])
		for i := rest; i < ChunkIDs; i++ {
			vals[c].Ids[i] = DestNone
		}
		n += rest
	}
	return keys, vals
}

// DestIDs reads sv's server list, its chunks from chunks (svc_chunks); a
// missing chunk reads as GVS_DEST_NONE, as the data path reads it.
func (sv *Svc) DestIDs(chunks *ebpf.Map) ([]uint32, error) {
	n := int(min(sv.Ndests, SvcDests))
	ids := make([]uint32, n)
	copy(ids, sv.Dests[:])
	var ch Chunk
	for c := range Chunks(n) {
		err := chunks.Lookup(&ChunkKey{List: sv.List, Chunk: uint32(c)}, &ch)
		if errors.Is(err, ebpf.ErrKeyNotExist) {
			ch = Chunk{}
			for i := range ch.Ids {
				ch.Ids[i] = DestNone
			}
		} else if err != nil {
			return nil, fmt.Errorf("svc_chunks: %w", err)
		}
		copy(ids[SvcInline+c*ChunkIDs:], ch.Ids[:])
	}
	return ids, nil
}
