package stats

// The expected values below are worked out by hand from the kernel's
// estimator (net/netfilter/ipvs/ip_vs_est.c):
//
//	ip_vs_chain_estimation (estimation_timer before 6.2), every 2 s:
//	    rate = (kstats.conns - e->last_conns) << 9;   /* 2^10 scale, halved for 2 s */
//	    e->cps += ((s64)rate - (s64)e->cps) >> 2;     /* EWMA, W = 1/4 */
//	    (inpps, outpps the same; inbps, outbps with << 4, i.e. 2^5 scale halved)
//	ip_vs_read_estimator:
//	    cps = (e->cps + 0x1FF) >> 10;  bps = (e->inbps + 0xF) >> 5;
//	ip_vs_zero_estimator: last_* = current counters, averages = 0
//	ip_vs_zero_stats (ip_vs_ctl.c): kstats0 = kstats, then ip_vs_zero_estimator
//	ip_vs_copy_stats (ip_vs_ctl.c): shown counter = kstats - kstats0
//
// The ">> 2" is an arithmetic shift of a signed value, so a falling average
// rounds toward minus infinity and decays to exactly 0.

import (
	"testing"
	"time"
)

// period is the traffic of one 2-second estimator period.
type period struct {
	conns   int
	inPkts  int
	inSize  int // bytes of each inbound packet, IP level
	outPkts int
	outSize int
}

func (p period) apply(s *Stats) {
	for range p.conns {
		s.Conn()
	}
	for range p.inPkts {
		s.In(p.inSize)
	}
	for range p.outPkts {
		s.Out(p.outSize)
	}
}

func repeat(p period, n int) []period {
	out := make([]period, n)
	for i := range out {
		out[i] = p
	}
	return out
}

func TestEstimatorPeriod(t *testing.T) {
	if EstimatorPeriod != 2*time.Second {
		t.Fatalf("EstimatorPeriod = %v, kernel estimates every 2*HZ", EstimatorPeriod)
	}
}

// TestEstimatorSequences drives Stats period by period and checks the rates
// ipvsadm --rate would print after each period.
func TestEstimatorSequences(t *testing.T) {
	// 100 new connections every 2 s is 50 cps. Hand computation of e->cps
	// (rate = 100<<9 = 51200; avg += (51200-avg)>>2):
	//   12800, 22400, 29600, 35000, 39050, 42087, 44365, 46073, 47354,
	//   48315, 49036, 49577, ... fixed point 51197 ((51200-51197)>>2 == 0).
	// Read as (avg+511)>>10:
	const100 := []uint64{12, 22, 29, 34, 38, 41, 43, 45, 46, 47, 48, 48, 49, 49, 49, 49, 50, 50, 50, 50, 50, 50, 50, 50}

	// 1000 connections in one period, then nothing. e->cps:
	//   128000, 96000, 72000, 54000, 40500, 30375, 22781, 17085, 12813,
	//   9609, 7206, 5404, 4053, 3039, 2279, 1709, 1281, 960, 720, 540, 405...
	// (e.g. 30375 + (-30375>>2 = -7594) = 22781). Read as (avg+511)>>10;
	// 405 + 511 < 1024 reads 0.
	burst := []uint64{125, 94, 70, 53, 40, 30, 22, 17, 13, 9, 7, 5, 4, 3, 2, 2, 1, 1, 1, 1, 0, 0, 0}

	// The "hello word" UDP datagram of the notes: 20 (IP) + 8 (UDP) + 11
	// bytes = 39 bytes at IP level. 100 of them per period is 3900 bytes
	// per 2 s, 1950 B/s. e->inbps (rate = 3900<<4 = 62400):
	//   15600, 27300, 36075, 42656, 47592, 51294, 54070, 56152
	// read as (avg+15)>>5:
	hello := []uint64{487, 853, 1127, 1333, 1487, 1603, 1690, 1755}

	tests := []struct {
		name    string
		periods []period
		want    []Rates // after each period
	}{
		{
			name:    "constant 100 conns per 2s converges to 50 cps",
			periods: repeat(period{conns: 100}, len(const100)),
			want:    ratesOf(const100, func(r *Rates, v uint64) { r.CPS = v }),
		},
		{
			name:    "burst of 1000 conns then silence decays to 0",
			periods: append([]period{{conns: 1000}}, repeat(period{}, len(burst)-1)...),
			want:    ratesOf(burst, func(r *Rates, v uint64) { r.CPS = v }),
		},
		{
			name:    "100 hello-word datagrams in per 2s",
			periods: repeat(period{inPkts: 100, inSize: 39}, len(hello)),
			want: zipRates(len(hello), func(i int, r *Rates) {
				r.InPPS = const100[i] // 100 packets per period, same sequence as the conns
				r.InBPS = hello[i]
			}),
		},
		{
			name:    "100 hello-word datagrams out per 2s",
			periods: repeat(period{outPkts: 100, outSize: 39}, len(hello)),
			want: zipRates(len(hello), func(i int, r *Rates) {
				r.OutPPS = const100[i]
				r.OutBPS = hello[i]
			}),
		},
		{
			// One empty UDP datagram (20+8 = 28 bytes): e->inbps = (28<<4)>>2
			// = 112 = 3.5 B/s scaled by 32; (112+15)>>5 = 3. The kernel adds
			// 0xF, not 0x10, so an exact half rounds down.
			name:    "bytes: exact half rounds down (28 bytes)",
			periods: []period{{inPkts: 1, inSize: 28}},
			want:    []Rates{{InBPS: 3}},
		},
		{
			// 29 bytes: 116 -> (116+15)>>5 = 131>>5 = 4.
			name:    "bytes: above half rounds up (29 bytes)",
			periods: []period{{inPkts: 1, inSize: 29}},
			want:    []Rates{{InBPS: 4}},
		},
		{
			// 39 bytes: 156 = 4.875 -> (156+15)>>5 = 5.
			name:    "bytes: one hello-word datagram",
			periods: []period{{inPkts: 1, inSize: 39}, {}},
			// second period: 156 + (-156>>2 = -39) = 117 -> (117+15)>>5 = 4
			want: []Rates{{InBPS: 5}, {InBPS: 4}},
		},
		{
			// 4 packets: e->inpps = (4<<9)>>2 = 512 = exactly 0.5 pps;
			// (512+0x1FF)>>10 = 1023>>10 = 0.
			name:    "packets: exactly half a packet per second reads 0",
			periods: []period{{inPkts: 4, inSize: 28}},
			// InPPS 0; bytes 112: (112<<4)>>2 = 448 -> (448+15)>>5 = 14
			want: []Rates{{InBPS: 14}},
		},
		{
			// 5 packets: e->inpps = 640 -> (640+511)>>10 = 1151>>10 = 1.
			name:    "packets: 5 in one period reads 1 pps",
			periods: []period{{inPkts: 5, inSize: 28, outPkts: 5, outSize: 28}},
			// bytes 140: (140<<4)>>2 = 560 -> (560+15)>>5 = 17
			want: []Rates{{InPPS: 1, OutPPS: 1, InBPS: 17, OutBPS: 17}},
		},
		{
			name:    "one connection is below the read threshold",
			periods: []period{{conns: 1}, {conns: 2}, {conns: 3}},
			// 128 -> 0; 128+(1024-128)>>2 = 352 -> 0; 352+(1536-352)>>2 = 648 -> 1
			want: []Rates{{}, {}, {CPS: 1}},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if len(tc.periods) != len(tc.want) {
				t.Fatalf("bad table: %d periods, %d expectations", len(tc.periods), len(tc.want))
			}
			var s Stats
			for i, p := range tc.periods {
				p.apply(&s)
				s.Estimate()
				if got := s.Rates(); got != tc.want[i] {
					t.Errorf("after period %d: rates = %+v, want %+v", i+1, got, tc.want[i])
				}
			}
		})
	}
}

func ratesOf(vals []uint64, set func(*Rates, uint64)) []Rates {
	out := make([]Rates, len(vals))
	for i, v := range vals {
		set(&out[i], v)
	}
	return out
}

func zipRates(n int, set func(int, *Rates)) []Rates {
	out := make([]Rates, n)
	for i := range out {
		set(i, &out[i])
	}
	return out
}

// TestEstimatorScaledAverages checks the stored averages themselves, in the
// kernel's fixed point (pps and cps scaled by 2^10, bps by 2^5).
func TestEstimatorScaledAverages(t *testing.T) {
	tests := []struct {
		name  string
		delta Counters // per period
		field func(*Estimator) int64
		want  []int64
	}{
		{
			name:  "cps for 100 conns per period",
			delta: Counters{Conns: 100},
			field: func(e *Estimator) int64 { return e.cps },
			want:  []int64{12800, 22400, 29600, 35000, 39050, 42087, 44365, 46073, 47354, 48315, 49036, 49577},
		},
		{
			name:  "outpps for 100 packets per period",
			delta: Counters{OutPkts: 100},
			field: func(e *Estimator) int64 { return e.outpps },
			want:  []int64{12800, 22400, 29600, 35000, 39050, 42087, 44365, 46073},
		},
		{
			name:  "inbps for 3900 bytes per period",
			delta: Counters{InBytes: 3900},
			field: func(e *Estimator) int64 { return e.inbps },
			want:  []int64{15600, 27300, 36075, 42656, 47592, 51294, 54070, 56152},
		},
		{
			name:  "outbps for 3900 bytes per period",
			delta: Counters{OutBytes: 3900},
			field: func(e *Estimator) int64 { return e.outbps },
			want:  []int64{15600, 27300, 36075, 42656, 47592, 51294, 54070, 56152},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var e Estimator
			var c Counters
			for i, want := range tc.want {
				c = c.Add(tc.delta)
				e.Sample(c)
				if got := tc.field(&e); got != want {
					t.Fatalf("after period %d: average = %d, want %d", i+1, got, want)
				}
			}
		})
	}
}

// TestEstimatorFixedPoint: a constant 100 per period settles at 51197
// (2^10 scale), which reads 50, and stays there.
func TestEstimatorFixedPoint(t *testing.T) {
	var e Estimator
	var c Counters
	for i := 0; i < 200; i++ {
		c.Conns += 100
		e.Sample(c)
	}
	if e.cps != 51197 {
		t.Errorf("cps average = %d, want the fixed point 51197", e.cps)
	}
	if r := e.Rates(); r.CPS != 50 {
		t.Errorf("CPS = %d, want 50", r.CPS)
	}
}

// TestEstimatorDecaysToZero: after a burst the average reaches exactly 0
// (the arithmetic shift of -1 is -1), 39 silent periods after 1000 conns.
func TestEstimatorDecaysToZero(t *testing.T) {
	var e Estimator
	e.Sample(Counters{Conns: 1000})
	for i := 1; i <= 39; i++ {
		if e.cps == 0 {
			t.Fatalf("average reached 0 after %d silent periods, want 39", i-1)
		}
		e.Sample(Counters{Conns: 1000})
	}
	if e.cps != 0 {
		t.Fatalf("average after 39 silent periods = %d, want 0", e.cps)
	}
}

// TestCountersIPLevel: counters are IP-level, as the kernel's
// ip_vs_in_stats/ip_vs_out_stats add skb->len of the whole datagram.
func TestCountersIPLevel(t *testing.T) {
	const ipHdr, udpHdr = 20, 8
	hello := ipHdr + udpHdr + len("hello word\n") // the notes' example: 39 bytes
	if hello != 39 {
		t.Fatalf("hello word datagram is %d bytes, want 39", hello)
	}
	tests := []struct {
		name string
		do   func(*Stats)
		want Counters
	}{
		{"nothing", func(*Stats) {}, Counters{}},
		{"In(39) is one packet of 39 bytes", func(s *Stats) { s.In(hello) }, Counters{InPkts: 1, InBytes: 39}},
		{"Out(39) is one packet of 39 bytes", func(s *Stats) { s.Out(hello) }, Counters{OutPkts: 1, OutBytes: 39}},
		{"Conn counts a connection only", func(s *Stats) { s.Conn() }, Counters{Conns: 1}},
		{
			"request and reply",
			func(s *Stats) { s.Conn(); s.In(hello); s.Out(hello + 5) },
			Counters{Conns: 1, InPkts: 1, InBytes: 39, OutPkts: 1, OutBytes: 44},
		},
		{
			"a TCP handshake's SYN (IP 20 + TCP 40 with options)",
			func(s *Stats) { s.Conn(); s.In(60) },
			Counters{Conns: 1, InPkts: 1, InBytes: 60},
		},
		{
			"AddCounters adds field by field",
			func(s *Stats) {
				s.In(39)
				s.AddCounters(Counters{Conns: 2, InPkts: 3, OutPkts: 4, InBytes: 5, OutBytes: 6})
			},
			Counters{Conns: 2, InPkts: 4, OutPkts: 4, InBytes: 44, OutBytes: 6},
		},
		{
			"Set replaces the totals",
			func(s *Stats) {
				s.In(39)
				s.Set(Counters{Conns: 7, InPkts: 8, OutPkts: 9, InBytes: 10, OutBytes: 11})
			},
			Counters{Conns: 7, InPkts: 8, OutPkts: 9, InBytes: 10, OutBytes: 11},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var s Stats
			tc.do(&s)
			if got := s.Counters(); got != tc.want {
				t.Errorf("Counters() = %+v, want %+v", got, tc.want)
			}
			if got := s.Raw(); got != tc.want {
				t.Errorf("Raw() = %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestCountersAddSub(t *testing.T) {
	a := Counters{Conns: 10, InPkts: 20, OutPkts: 30, InBytes: 40, OutBytes: 50}
	b := Counters{Conns: 1, InPkts: 2, OutPkts: 3, InBytes: 4, OutBytes: 5}
	if got, want := a.Add(b), (Counters{11, 22, 33, 44, 55}); got != want {
		t.Errorf("Add = %+v, want %+v", got, want)
	}
	if got, want := a.Sub(b), (Counters{9, 18, 27, 36, 45}); got != want {
		t.Errorf("Sub = %+v, want %+v", got, want)
	}
	if got := a.Add(b).Sub(b); got != a {
		t.Errorf("Add then Sub = %+v, want %+v", got, a)
	}
}

// TestZero follows ipvsadm -Z: ip_vs_zero_stats takes the current counters
// as the zero point (kstats0) and ip_vs_zero_estimator zeroes the averages
// and rebases last_*; the running counters are untouched.
func TestZero(t *testing.T) {
	var s Stats
	for range 3 {
		period{conns: 100, inPkts: 100, inSize: 39, outPkts: 50, outSize: 100}.apply(&s)
		s.Estimate()
	}
	before := s.Raw()
	wantBefore := Counters{Conns: 300, InPkts: 300, InBytes: 300 * 39, OutPkts: 150, OutBytes: 150 * 100}
	if before != wantBefore {
		t.Fatalf("Raw() before Zero = %+v, want %+v", before, wantBefore)
	}
	// 3 periods: cps 29600 -> 29; outpps (50 per period) 14800 -> 14;
	// inbps (3900 B) 36075 -> 1127; outbps (5000 B) 46250 -> 1445.
	if got, want := s.Rates(), (Rates{CPS: 29, InPPS: 29, OutPPS: 14, InBPS: 1127, OutBPS: 1445}); got != want {
		t.Fatalf("rates before Zero = %+v, want %+v", got, want)
	}

	s.Zero()

	steps := []struct {
		name      string
		traffic   period
		estimate  bool
		wantCount Counters // Counters(): relative to the zero point
		wantRaw   Counters // Raw(): keeps running
		wantRates Rates
	}{
		{
			name:      "right after Zero",
			wantCount: Counters{},
			wantRaw:   wantBefore,
			wantRates: Rates{},
		},
		{
			name:      "traffic after Zero counts from the zero point",
			traffic:   period{conns: 10, inPkts: 10, inSize: 39},
			wantCount: Counters{Conns: 10, InPkts: 10, InBytes: 390},
			wantRaw:   wantBefore.Add(Counters{Conns: 10, InPkts: 10, InBytes: 390}),
			wantRates: Rates{}, // not estimated yet
		},
		{
			// The first period after Zero sees only the 10 conns since Zero:
			// (10<<9)>>2 = 1280 -> (1280+511)>>10 = 1; bytes (390<<4)>>2 =
			// 1560 -> (1560+15)>>5 = 49. Had last_* not been rebased, the
			// delta would include the 300 earlier conns.
			name:      "first estimate after Zero uses only the post-Zero delta",
			estimate:  true,
			wantCount: Counters{Conns: 10, InPkts: 10, InBytes: 390},
			wantRaw:   wantBefore.Add(Counters{Conns: 10, InPkts: 10, InBytes: 390}),
			wantRates: Rates{CPS: 1, InPPS: 1, InBPS: 49},
		},
		{
			// 1280 + (0-1280)>>2 = 960 -> (960+511)>>10 = 1 (0.94 rounds
			// up); bytes 1560 - 390 = 1170 -> (1170+15)>>5 = 37.
			name:      "silent period after that",
			estimate:  true,
			wantCount: Counters{Conns: 10, InPkts: 10, InBytes: 390},
			wantRaw:   wantBefore.Add(Counters{Conns: 10, InPkts: 10, InBytes: 390}),
			wantRates: Rates{CPS: 1, InPPS: 1, InBPS: 37},
		},
	}
	for _, st := range steps {
		st.traffic.apply(&s)
		if st.estimate {
			s.Estimate()
		}
		if got := s.Counters(); got != st.wantCount {
			t.Errorf("%s: Counters() = %+v, want %+v", st.name, got, st.wantCount)
		}
		if got := s.Raw(); got != st.wantRaw {
			t.Errorf("%s: Raw() = %+v, want %+v", st.name, got, st.wantRaw)
		}
		if got := s.Rates(); got != st.wantRates {
			t.Errorf("%s: Rates() = %+v, want %+v", st.name, got, st.wantRates)
		}
	}

	// A second Zero moves the zero point again.
	s.Zero()
	s.Conn()
	if got := s.Counters(); got != (Counters{Conns: 1}) {
		t.Errorf("after second Zero and one Conn: Counters() = %+v, want {Conns:1}", got)
	}
}

// TestZeroWithSet: with a data plane that keeps its own monotonic counters
// (Set), Zero still only moves the zero point.
func TestZeroWithSet(t *testing.T) {
	var s Stats
	s.Set(Counters{Conns: 1000, InPkts: 5000, InBytes: 5000 * 39})
	s.Zero()
	s.Set(Counters{Conns: 1100, InPkts: 5100, InBytes: 5100 * 39})
	if got, want := s.Counters(), (Counters{Conns: 100, InPkts: 100, InBytes: 3900}); got != want {
		t.Errorf("Counters() = %+v, want %+v", got, want)
	}
	if got, want := s.Raw(), (Counters{Conns: 1100, InPkts: 5100, InBytes: 5100 * 39}); got != want {
		t.Errorf("Raw() = %+v, want %+v", got, want)
	}
	s.Estimate()
	// Delta since Zero: 100 conns, 100 pkts, 3900 bytes.
	if got, want := s.Rates(), (Rates{CPS: 12, InPPS: 12, InBPS: 487}); got != want {
		t.Errorf("Rates() = %+v, want %+v", got, want)
	}
}

// TestEstimatorReset is ip_vs_zero_estimator on its own.
func TestEstimatorReset(t *testing.T) {
	var e Estimator
	e.Sample(Counters{Conns: 100, InBytes: 3900})
	if e.Rates() == (Rates{}) {
		t.Fatal("rates are zero before Reset")
	}
	base := Counters{Conns: 100, InBytes: 3900}
	e.Reset(base)
	if got := e.Rates(); got != (Rates{}) {
		t.Errorf("rates after Reset = %+v, want zero", got)
	}
	// Unchanged counters: the next period's delta is 0.
	e.Sample(base)
	if got := e.Rates(); got != (Rates{}) {
		t.Errorf("rates after a silent period = %+v, want zero", got)
	}
	e.Sample(base.Add(Counters{Conns: 100}))
	if got := e.Rates(); got != (Rates{CPS: 12}) {
		t.Errorf("rates = %+v, want {CPS:12}", got)
	}
}

// TestEstimatorCountersGoBack: not a kernel case (its per-CPU sums never
// decrease), but Set may be fed by a data plane that restarted. The signed
// average then goes negative and Rates reads it as 0 rather than as the
// huge value the kernel's u64 (e->cps + 0x1FF) >> 10 would give.
func TestEstimatorCountersGoBack(t *testing.T) {
	var s Stats
	s.Set(Counters{Conns: 1000})
	s.Estimate()
	s.Set(Counters{Conns: 0})
	for range 5 {
		s.Estimate() // delta is -1000 once, then 0
	}
	if got := s.Rates(); got != (Rates{}) {
		t.Errorf("Rates() = %+v, want zero", got)
	}
	s.Set(Counters{Conns: 100})
	s.Estimate()
	if got := s.Rates(); got.CPS > 50 {
		t.Errorf("CPS = %d after the counters went back, want a sane value", got.CPS)
	}
}
