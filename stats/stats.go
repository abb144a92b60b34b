// Package stats holds the IPVS traffic counters and the rate estimator.
//
// Counters are counted at the IP level, as IPVS does: a UDP datagram with 11
// bytes of payload is 39 bytes (20 IP + 8 UDP + 11). Zeroing does not reset
// the running counters; it moves a zero point, as the kernel's kstats0 does,
// so the estimator keeps seeing monotonic input.
package stats

// Counters are the five IPVS counters of a service, a destination or the total.
type Counters struct {
	Conns    uint64 `json:"conns"`
	InPkts   uint64 `json:"inpkts"`
	OutPkts  uint64 `json:"outpkts"`
	InBytes  uint64 `json:"inbytes"`
	OutBytes uint64 `json:"outbytes"`
}

// Sub returns c - o, field by field.
func (c Counters) Sub(o Counters) Counters {
	return Counters{
		Conns:    c.Conns - o.Conns,
		InPkts:   c.InPkts - o.InPkts,
		OutPkts:  c.OutPkts - o.OutPkts,
		InBytes:  c.InBytes - o.InBytes,
		OutBytes: c.OutBytes - o.OutBytes,
	}
}

// Add returns c + o, field by field.
func (c Counters) Add(o Counters) Counters {
	return Counters{
		Conns:    c.Conns + o.Conns,
		InPkts:   c.InPkts + o.InPkts,
		OutPkts:  c.OutPkts + o.OutPkts,
		InBytes:  c.InBytes + o.InBytes,
		OutBytes: c.OutBytes + o.OutBytes,
	}
}

// Rates are the estimator's output, in the units ipvsadm --rate prints:
// connections, packets and bytes per second.
type Rates struct {
	CPS    uint64 `json:"cps"`
	InPPS  uint64 `json:"inpps"`
	OutPPS uint64 `json:"outpps"`
	InBPS  uint64 `json:"inbps"`
	OutBPS uint64 `json:"outbps"`
}

// Stats is one set of counters with its zero point and its rate estimator.
// It is not safe for concurrent use; the owner serialises access.
type Stats struct {
	total Counters // since creation, never reset
	zero  Counters // value of total at the last Zero
	est   Estimator
	// seeded is set by the first Set.
	seeded bool
}

// Conn counts one new connection.
func (s *Stats) Conn() { s.total.Conns++ }

// In counts one packet from client to server of n bytes (IP level).
func (s *Stats) In(n int) {
	s.total.InPkts++
	s.total.InBytes += uint64(n)
}

// Out counts one packet from server to client of n bytes (IP level).
func (s *Stats) Out(n int) {
	s.total.OutPkts++
	s.total.OutBytes += uint64(n)
}

// AddCounters adds counters gathered elsewhere (an engine's per-CPU maps, a
// batch from a socket loop).
func (s *Stats) AddCounters(c Counters) { s.total = s.total.Add(c) }

// Set replaces the running totals with absolute values read from a data
// plane that keeps its own monotonic counters. The first Set is the
// estimator's starting point, so counters that ran before (a restarted
// daemon reading its engine's maps) do not show as one burst.
func (s *Stats) Set(c Counters) {
	if !s.seeded {
		s.est.Reset(c)
		s.seeded = true
	}
	s.total = c
}

// Counters returns the counters since the last Zero.
func (s *Stats) Counters() Counters { return s.total.Sub(s.zero) }

// Raw returns the running totals, ignoring Zero.
func (s *Stats) Raw() Counters { return s.total }

// Zero makes the current values the zero point and zeroes the rates, as
// ipvsadm -Z does.
func (s *Stats) Zero() {
	s.zero = s.total
	s.est.Reset(s.total)
}

// Estimate runs one estimator period; call it every EstimatorPeriod.
func (s *Stats) Estimate() { s.est.Sample(s.total) }

// Rates returns the current estimated rates.
func (s *Stats) Rates() Rates { return s.est.Rates() }
