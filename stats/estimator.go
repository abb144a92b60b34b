package stats

import "time"

// EstimatorPeriod is how often the kernel samples the counters.
const EstimatorPeriod = 2 * time.Second

// Estimator is the kernel's IPVS rate estimator (net/netfilter/ipvs/ip_vs_est.c):
// every 2 seconds it takes the counter deltas, scales them (packets and
// connections by 2^10, bytes by 2^5, halved for the 2-second period) and
// smooths with an exponentially weighted moving average of weight 1/4.
// Readings round to the nearest unit.
type Estimator struct {
	last               Counters
	cps, inpps, outpps int64 // scaled by 2^10
	inbps, outbps      int64 // scaled by 2^5
}

// Sample folds one 2-second period ending with counters c into the averages.
func (e *Estimator) Sample(c Counters) {
	ewma := func(avg *int64, cur, last uint64, shift uint) {
		rate := int64(cur-last) << shift
		*avg += (rate - *avg) >> 2
	}
	ewma(&e.cps, c.Conns, e.last.Conns, 9)
	ewma(&e.inpps, c.InPkts, e.last.InPkts, 9)
	ewma(&e.outpps, c.OutPkts, e.last.OutPkts, 9)
	ewma(&e.inbps, c.InBytes, e.last.InBytes, 4)
	ewma(&e.outbps, c.OutBytes, e.last.OutBytes, 4)
	e.last = c
}

// Reset zeroes the rates and takes c as the base of the next period.
func (e *Estimator) Reset(c Counters) { *e = Estimator{last: c} }

// Rates reads the averages, rounded as the kernel's ip_vs_read_estimator does.
func (e *Estimator) Rates() Rates {
	read := func(v int64, half int64, shift uint) uint64 {
		if v < 0 {
			return 0
		}
		return uint64((v + half) >> shift)
	}
	return Rates{
		CPS:    read(e.cps, 0x1FF, 10),
		InPPS:  read(e.inpps, 0x1FF, 10),
		OutPPS: read(e.outpps, 0x1FF, 10),
		InBPS:  read(e.inbps, 0xF, 5),
		OutBPS: read(e.outbps, 0xF, 5),
	}
}
