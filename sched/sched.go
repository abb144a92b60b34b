// Package sched implements the IPVS schedulers, each choosing exactly as
// the Linux kernel's net/netfilter/ipvs/ip_vs_<name>.c does: the same walk
// of the destination list (kernel order: the newest destination first), the
// same treatment of weight 0 and overloaded servers, the same tie-breaking,
// and for dh, sh and mh the same tables and hashes.
//
// A scheduler only picks a server for a new connection; connection
// tracking and persistence live in package ipvs.
package sched

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"time"

	"gvs/model"
)

// Packet is what a scheduler may look at in the first packet of a new
// connection.
type Packet struct {
	Src, Dst         netip.Addr
	SrcPort, DstPort uint16
	Protocol         model.Protocol
}

// Service is what a scheduler sees of its service: the flags (sh and mh read
// theirs on every packet, as the kernel does) and the destination list in
// kernel order.
type Service struct {
	Flags   model.ServiceFlags
	Servers []*model.Server
}

// Scheduler chooses a server for a new connection.
type Scheduler interface {
	// Name is the ipvsadm name of the scheduler.
	Name() string
	// Schedule returns the server for a new connection, or nil when no
	// server may take it.
	Schedule(svc *Service, p Packet, now time.Time) *model.Server
	// Update tells the scheduler the destination list or a destination's
	// weight changed (the kernel's add_dest, del_dest and upd_dest).
	Update(svc *Service, c Change)
}

// ChangeKind says what changed in a service's destination list.
type ChangeKind uint8

// Change kinds.
const (
	Added ChangeKind = iota
	Removed
	Edited
)

// Change describes one change of a destination list.
type Change struct {
	Kind   ChangeKind
	Server *model.Server
	// Index is the position the server had before it was removed.
	Index int
}

// Collector is implemented by schedulers that keep per-address state
// (lblc, lblcr) and expire it; call Collect every CollectInterval.
type Collector interface {
	Collect(now time.Time)
}

// CollectInterval is the period of the lblc/lblcr garbage collection timer.
const CollectInterval = 60 * time.Second

// Options are the kernel's compile-time and sysctl knobs that shape
// scheduling.
type Options struct {
	// MHTableIndex is CONFIG_IP_VS_MH_TAB_INDEX (8..17): the Maglev table
	// size is the (index-8)th of 251, 509, 1021, 2039, 4093, 8191, 16381,
	// 32749, 65521, 131071. 0 means the kernel default 12 (4093 entries).
	MHTableIndex int
	// LBLCExpiration and LBLCRExpiration are the sysctls lblc_expiration
	// and lblcr_expiration; 0 means the default, 24 hours.
	LBLCExpiration  time.Duration
	LBLCRExpiration time.Duration
	// Rand is twos' random source; nil means math/rand/v2.
	Rand func() uint32
}

// New returns scheduler name for a service whose current list is svc.
func New(name string, svc *Service, o Options) (Scheduler, error) {
	var s Scheduler
	switch name {
	case "rr":
		s = &roundRobin{}
	case "wrr":
		s = &weightedRoundRobin{}
	case "lc":
		s = leastConn{}
	case "wlc":
		s = weightedLeastConn{}
	case "sed":
		s = shortestExpectedDelay{}
	case "nq":
		s = neverQueue{}
	case "fo":
		s = failover{}
	case "ovf":
		s = overflow{}
	case "twos":
		r := o.Rand
		if r == nil {
			r = rand.Uint32
		}
		s = &twoChoices{rand: r}
	case "dh":
		s = &destHash{}
	case "sh":
		s = &sourceHash{}
	case "mh":
		idx := o.MHTableIndex
		if idx == 0 {
			idx = 12
		}
		if idx < 8 || idx > 17 {
			return nil, fmt.Errorf("mh table index %d out of range 8..17", idx)
		}
		s = newMaglev(idx)
	case "lblc":
		s = newLBLC(orDefault(o.LBLCExpiration))
	case "lblcr":
		s = newLBLCR(orDefault(o.LBLCRExpiration))
	default:
		return nil, model.ErrSchedulerNotFound
	}
	if in, ok := s.(interface{ init(*Service) }); ok {
		in.init(svc)
	}
	return s, nil
}

func orDefault(d time.Duration) time.Duration {
	if d == 0 {
		return 24 * time.Hour
	}
	return d
}

// noUpdate is embedded by schedulers that keep no per-list state.
type noUpdate struct{}

func (noUpdate) Update(*Service, Change) {}
