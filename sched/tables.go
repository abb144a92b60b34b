package sched

import "gvs/model"

// BucketTable returns the lookup table of a dh, sh or mh scheduler, one
// server (or nil) per bucket, and nil for the others. The XDP engine copies
// it into its maps, so BPF looks up exactly the model's table.
func BucketTable(s Scheduler) []*model.Server {
	switch t := s.(type) {
	case *destHash:
		return t.table[:]
	case *sourceHash:
		return t.table[:]
	case *maglev:
		return t.table
	}
	return nil
}

// WRRUpdate is ip_vs_wrr_dest_changed for a scheduler whose state lives
// elsewhere (the XDP engine's map): from the current weight cw and the new
// list it returns the greatest common divisor di, the maximum mw and the
// new cw; the position goes back to the list head.
func WRRUpdate(cw int32, servers []*model.Server) (newCW, mw, di int32) {
	w := weightedRoundRobin{cw: cw}
	w.Update(&Service{Servers: servers}, Change{})
	return w.cw, w.mw, w.di
}
