package xdp

import (
	"time"

	"gvs/bpf"
)

// Events returns the data path's event counters (enum gvs_event), summed
// over CPUs, by name (bpf.EventNames): every reason the data path passed
// or dropped a packet, and what it did to make room. They count from the
// load of the maps (a restarted gvsd keeps them), never zeroed.
func (e *Engine) Events() map[string]uint64 {
	out := make(map[string]uint64, len(bpf.EventNames))
	var per []uint64
	for i, name := range bpf.EventNames {
		if err := e.objs.Events.Lookup(uint32(i), &per); err != nil {
			continue
		}
		var n uint64
		for _, v := range per {
			n += v
		}
		out[name] = n
	}
	return out
}

// warnEvents are the events an operator must hear about: the table or
// the local ports ran short, or entries were evicted to make room.
var warnEvents = []string{"conn_table_full", "template_full", "evicted", "no_lport", "unindexed", "family"}

// warnInterval bounds the warnings: one line per interval at most, with
// what happened since the last one.
const warnInterval = 10 * time.Second

// eventWarner turns growing warnEvents counters into rate-limited log
// lines.
type eventWarner struct {
	last     map[string]uint64
	lastWarn time.Time
}

// check is called each tick with the current counters; it returns the
// increments to report now, or nil.
func (w *eventWarner) check(cur map[string]uint64, now time.Time) map[string]uint64 {
	if w.last == nil {
		w.last = cur // what a previous gvsd saw is not news
		return nil
	}
	if now.Sub(w.lastWarn) < warnInterval {
		return nil
	}
	var d map[string]uint64
	for _, name := range warnEvents {
		if cur[name] > w.last[name] {
			if d == nil {
				d = map[string]uint64{}
			}
			d[name] = cur[name] - w.last[name]
		}
	}
	if d == nil {
		return nil
	}
	w.last, w.lastWarn = cur, now
	return d
}

// warnOnEvents logs, at most every warnInterval, what the data path
// refused or evicted since the last warning.
func (e *Engine) warnOnEvents() {
	d := e.warner.check(e.Events(), time.Now())
	if d == nil {
		return
	}
	args := []any{"hint", "connection table (gvsd --max-conns) or FULLNAT ports (--fullnat-ports, gvsadm -P) short, or a flood: see GET /v1/events"}
	for _, name := range warnEvents {
		if n, ok := d[name]; ok {
			args = append(args, name, n)
		}
	}
	e.log.Warn("data path under pressure", args...)
}
