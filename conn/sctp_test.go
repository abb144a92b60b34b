package conn

import (
	"strings"
	"testing"
	"time"

	"gvs/model"
)

// kernelSCTP is ip_vs_proto_sctp.c's sctp_states as the kernel source
// prints it (its abbreviations, its row and column order), transcribed
// apart from sctp.go's table so that a slip in either shows.
const kernelSCTP = `
INPUT
d   sES sI1 sIN sCS sCR sCW sCO sCE sES sSS sSR sSA sRJ sCL
i   sI1 sIN sIN sCS sCR sCW sCO sCE sES sSS sSR sSA sIN sIN
i_a sCW sCW sCW sCS sCR sCO sCO sCE sES sSS sSR sSA sRJ sCL
c_e sCR sIN sIN sCR sCR sCW sCO sCE sES sSS sSR sSA sRJ sCL
c_a sES sI1 sIN sCS sCR sCW sCO sES sES sSS sSR sSA sRJ sCL
s   sSR sI1 sIN sCS sCR sCW sCO sCE sSR sSS sSR sSA sRJ sCL
s_a sCL sIN sIN sCS sCR sCW sCO sCE sES sCL sSR sCL sRJ sCL
s_c sCL sCL sCL sCS sCR sCW sCO sCE sES sSS sSR sCL sRJ sCL
err sCL sI1 sIN sCS sCR sCW sCO sCL sES sSS sSR sSA sRJ sCL
ab  sCL sCL sCL sCL sCL sRJ sCL sCL sCL sCL sCL sCL sCL sCL
OUTPUT
d   sES sI1 sIN sCS sCR sCW sCO sCE sES sSS sSR sSA sRJ sCL
i   sCW sCW sCW sCW sCW sCW sCW sCW sES sCW sCW sCW sCW sCW
i_a sCS sCS sCS sCS sCR sCW sCO sCE sES sSS sSR sSA sRJ sCL
c_e sCE sCE sCE sCE sCE sCE sCE sCE sES sSS sSR sSA sRJ sCL
c_a sES sES sES sES sES sES sES sES sES sSS sSR sSA sRJ sCL
s   sSS sSS sSS sSS sSS sSS sSS sSS sSS sSS sSR sSA sRJ sCL
s_a sSA sSA sSA sSA sSA sCW sCO sCE sES sSA sSA sSA sRJ sCL
s_c sCL sI1 sIN sCS sCR sCW sCO sCE sES sSS sSR sSA sRJ sCL
err sCL sCL sCL sCL sCL sCW sCO sCE sES sSS sSR sSA sRJ sCL
ab  sCL sRJ sCL sCL sCL sCL sCL sCL sCL sCL sCL sCL sCL sCL
INPUT-ONLY
d   sES sI1 sIN sCS sCR sES sCO sCE sES sSS sSR sSA sRJ sCL
i   sI1 sIN sIN sIN sIN sIN sCO sCE sES sSS sSR sSA sIN sIN
i_a sCE sCE sCE sCE sCE sCE sCO sCE sES sSS sSR sSA sRJ sCL
c_e sES sES sES sES sES sES sCO sCE sES sSS sSR sSA sRJ sCL
c_a sES sI1 sIN sES sES sCW sES sES sES sSS sSR sSA sRJ sCL
s   sSR sI1 sIN sCS sCR sCW sCO sCE sSR sSS sSR sSA sRJ sCL
s_a sCL sIN sIN sCS sCR sCW sCO sCE sCL sCL sSR sCL sRJ sCL
s_c sCL sCL sCL sCL sCL sCW sCO sCE sES sSS sCL sCL sRJ sCL
err sCL sI1 sIN sCS sCR sCW sCO sCE sES sSS sSR sSA sRJ sCL
ab  sCL sCL sCL sCL sCL sRJ sCL sCL sCL sCL sCL sCL sCL sCL
`

// The kernel's abbreviations, in IP_VS_SCTP_S_* order.
var kernelAbbrev = []string{"sNO", "sI1", "sIN", "sCS", "sCR", "sCW", "sCO", "sCE", "sES", "sSS", "sSR", "sSA", "sRJ", "sCL"}

// kernelSCTPTable is the kernel's table as (direction, event, state) ->
// next state in IP_VS_SCTP_S_* numbers.
func kernelSCTPTable(t *testing.T) [3][NumSCTPEvents][NumSCTPStates]int {
	t.Helper()
	abbrev := map[string]int{}
	for i, a := range kernelAbbrev {
		abbrev[a] = i
	}
	var out [3][NumSCTPEvents][NumSCTPStates]int
	dir, row := -1, 0
	for _, line := range strings.Split(strings.TrimSpace(kernelSCTP), "\n") {
		f := strings.Fields(line)
		if len(f) == 1 {
			dir++
			row = 0
			continue
		}
		if len(f) != 1+NumSCTPStates {
			t.Fatalf("line %q", line)
		}
		for i, a := range f[1:] {
			v, ok := abbrev[a]
			if !ok {
				t.Fatalf("abbreviation %q", a)
			}
			out[dir][row][i] = v
		}
		row++
	}
	if dir != 2 || row != int(NumSCTPEvents) {
		t.Fatalf("table shape: %d directions, last has %d rows", dir+1, row)
	}
	return out
}

func TestNextSCTPKernelTable(t *testing.T) {
	kt := kernelSCTPTable(t)
	n := 0
	for dir := range 3 {
		d, inputOnly := Dir(dir), false
		if dir == 2 {
			d, inputOnly = Input, true
		}
		for ev := range NumSCTPEvents {
			for k := range NumSCTPStates {
				cur, _ := FromKernelSCTP(uint16(k))
				got := NextSCTP(cur, d, inputOnly, ev)
				if got.KernelSCTP() != uint16(kt[dir][ev][k]) {
					t.Errorf("dir %d event %d state %s: %s, want %s", dir, ev, cur, got, kernelAbbrev[kt[dir][ev][k]])
				}
				n++
			}
		}
	}
	if n != 3*10*14 {
		t.Fatalf("%d cells", n)
	}
	// An output packet is OUTPUT whatever inputOnly says (set_sctp_state
	// clears NOOUTPUT on it).
	if NextSCTP(SCTPInit1, Output, true, EvInitAck) != SCTPCookieSent {
		t.Error("output with inputOnly")
	}
	// Not an SCTP state: taken as NONE.
	if NextSCTP(Established, Input, false, EvInit) != SCTPInit1 {
		t.Error("foreign state")
	}
}

// The association walks of the kernel's comment, client C, server S.
func TestSCTPWalks(t *testing.T) {
	type step struct {
		d  Dir
		ch uint8
		st State
	}
	walk := func(name string, inputOnly bool, steps []step) {
		s := SCTPNone
		for i, x := range steps {
			s = NextSCTP(s, x.d, inputOnly && x.d == Input, SCTPChunkEvent(x.ch, -1))
			if x.d == Output {
				inputOnly = false
			}
			if s != x.st {
				t.Fatalf("%s step %d: %s, want %s", name, i, s, x.st)
			}
		}
	}
	walk("NAT setup and shutdown", false, []step{
		{Input, ChunkInit, SCTPInit1},
		{Output, ChunkInitAck, SCTPCookieSent},
		{Input, ChunkCookieEcho, SCTPCookieReplied},
		{Output, ChunkCookieAck, SCTPEstablished},
		{Input, ChunkData, SCTPEstablished},
		{Output, ChunkSack, SCTPEstablished},
		{Input, ChunkShutdown, SCTPShutdownReceived},
		{Output, ChunkShutdownAck, SCTPShutdownAckSent},
		{Input, ChunkShutdownComplete, SCTPClosed},
	})
	walk("DR, input only", true, []step{
		{Input, ChunkInit, SCTPInit1},
		{Input, ChunkInit, SCTPInit}, // retransmitted
		{Input, ChunkCookieEcho, SCTPEstablished},
		{Input, ChunkData, SCTPEstablished},
		{Input, ChunkHeartbeatAck, SCTPEstablished},
		{Input, ChunkShutdown, SCTPShutdownReceived},
		{Input, ChunkShutdownComplete, SCTPClosed},
		{Input, ChunkInit, SCTPInit},
	})
	walk("DR abort", true, []step{
		{Input, ChunkInit, SCTPInit1},
		{Input, ChunkAbort, SCTPClosed},
	})
	walk("server-initiated", false, []step{
		{Output, ChunkInit, SCTPCookieWait},
		{Input, ChunkInitAck, SCTPCookie},
		{Output, ChunkCookieEcho, SCTPCookieEchoed},
		{Input, ChunkCookieAck, SCTPEstablished},
	})
	walk("INIT rejected", false, []step{
		{Output, ChunkInit, SCTPCookieWait},
		{Input, ChunkAbort, SCTPRejected},
		{Input, ChunkInit, SCTPInit},
	})
}

func TestSCTPChunkEvent(t *testing.T) {
	for _, tc := range []struct {
		first  uint8
		second int
		want   SCTPEvent
	}{
		{ChunkData, -1, EvData}, {ChunkSack, -1, EvData}, {ChunkHeartbeat, -1, EvData},
		{ChunkHeartbeatAck, -1, EvData}, {ChunkECNE, -1, EvData}, {ChunkCWR, -1, EvData},
		{ChunkInit, -1, EvInit}, {ChunkInitAck, -1, EvInitAck}, {ChunkAbort, -1, EvAbort},
		{ChunkShutdown, -1, EvShutdown}, {ChunkShutdownAck, -1, EvShutdownAck},
		{ChunkError, -1, EvError}, {ChunkCookieEcho, -1, EvCookieEcho}, {ChunkCookieAck, -1, EvCookieAck},
		{ChunkShutdownComplete, -1, EvShutdownComplete},
		{15, -1, EvData}, {0x80, -1, EvData}, {0xc1, -1, EvData}, // ASCONF, FORWARD-TSN: DATA
		{ChunkCookieEcho, ChunkAbort, EvAbort}, {ChunkCookieAck, ChunkAbort, EvAbort},
		{ChunkCookieEcho, ChunkData, EvCookieEcho},
		{ChunkData, ChunkAbort, EvData}, // only after COOKIE ECHO/ACK
		{ChunkSack, ChunkAbort, EvData},
	} {
		if got := SCTPChunkEvent(tc.first, tc.second); got != tc.want {
			t.Errorf("chunks %d, %d: event %d, want %d", tc.first, tc.second, got, tc.want)
		}
	}
}

func TestSCTPNamesActiveTimeouts(t *testing.T) {
	// sctp_state_name_table.
	want := []string{"NONE", "INIT1", "INIT", "C-SENT", "C-REPLIED", "C-WAIT", "COOKIE", "C-ECHOED",
		"ESTABLISHED", "S-SENT", "S-RECEIVED", "S-ACK-SENT", "REJECTED", "CLOSED"}
	to := NewTimeouts(model.Timeouts{TCP: 5, TCPFin: 6, UDP: 7}) // --set leaves SCTP alone
	secs := []int{2, 4, 61, 61, 61, 61, 61, 61, 900, 61, 61, 61, 4, 61}
	for k, name := range want {
		s, ok := FromKernelSCTP(uint16(k))
		if !ok || s.String() != name || s.KernelSCTP() != uint16(k) {
			t.Errorf("state %d: %q", k, s)
		}
		if s.Active() != (s == SCTPEstablished) {
			t.Errorf("%s active %v", s, s.Active())
		}
		if got := to.Of(model.ProtoSCTP, s); got != time.Duration(secs[k])*time.Second {
			t.Errorf("%s timeout %v, want %ds", s, got, secs[k])
		}
	}
	if _, ok := FromKernelSCTP(14); ok {
		t.Error("state 14")
	}
	if State(SCTPBase+14).String() != "ERR!" || SCTPClosed.IsSCTP() == false || Close.IsSCTP() {
		t.Error("range")
	}
}
