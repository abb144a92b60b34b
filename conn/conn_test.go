package conn

import (
	"testing"
	"time"

	"gvs/model"
)

// Transitions read off the kernel's tcp_states table (ip_vs_proto_tcp.c).
func TestNextTCP(t *testing.T) {
	for _, tc := range []struct {
		cur       State
		dir       Dir
		inputOnly bool
		flags     TCPFlags
		want      State
	}{
		{None, Input, false, SYN, SynRecv},
		{SynRecv, Output, false, SYN | ACK, SynRecv}, // SYN outranks ACK
		{SynRecv, Input, false, ACK, Established},
		{Established, Input, false, FIN | ACK, CloseWait},
		{Established, Input, true, FIN | ACK, FinWait}, // INPUT-ONLY differs
		{CloseWait, Output, false, FIN, TimeWait},
		{Established, Output, false, FIN, FinWait},
		{FinWait, Input, false, FIN, TimeWait},
		{Established, Input, false, RST | ACK, Close}, // RST outranks all
		{SynRecv, Input, false, RST, SynRecv},
		{SynAck, Input, true, RST, Close},
		{LastAck, Input, false, ACK, Close},
		{None, Input, false, ACK, Established},
		{Established, Input, false, 0, Close}, // no flag at all
		{Listen, Output, false, ACK, Established},
		{None, Output, false, SYN, SynSent},
	} {
		if got := NextTCP(tc.cur, tc.dir, tc.inputOnly, tc.flags); got != tc.want {
			t.Errorf("%s dir %d inputOnly %v flags %#x: %s, want %s", tc.cur, tc.dir, tc.inputOnly, tc.flags, got, tc.want)
		}
	}
}

func TestActiveAndNames(t *testing.T) {
	active := map[State]bool{Established: true, SynSent: true, SynRecv: true, SynAck: true}
	for s := None; s < numTCPStates; s++ {
		if s.Active() != active[s] {
			t.Errorf("%s active %v", s, s.Active())
		}
	}
	if StateUDP.Active() || StateUDP.String() != "UDP" || TimeWait.String() != "TIME_WAIT" || State(50).String() != "ERR!" {
		t.Error("names")
	}
}

func TestTimeouts(t *testing.T) {
	to := NewTimeouts(model.Timeouts{})
	if to.Of(model.ProtoTCP, Established) != 900*time.Second || to.Of(model.ProtoTCP, FinWait) != 120*time.Second ||
		to.Of(model.ProtoUDP, StateUDP) != 300*time.Second || to.Of(model.ProtoTCP, Close) != 10*time.Second ||
		to.Of(model.ProtoTCP, SynRecv) != 60*time.Second || to.Of(model.ProtoTCP, TimeWait) != 120*time.Second {
		t.Errorf("defaults %+v", to)
	}
	to = NewTimeouts(model.Timeouts{TCP: 60, UDP: 5})
	if to.Model() != (model.Timeouts{TCP: 60, TCPFin: 120, UDP: 5}) || to.Of(model.ProtoTCP, TimeWait) != 120*time.Second {
		t.Errorf("--set: %+v", to.Model())
	}
}
