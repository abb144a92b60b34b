// Package conn holds the IPVS connection state machines and timeouts:
// TCP (ip_vs_proto_tcp.c, with the full table for NAT and the input-only
// table for DR and TUN, where the director never sees replies), SCTP
// (ip_vs_proto_sctp.c, sctp.go, the same three directions) and UDP
// (ip_vs_proto_udp.c: one state, refreshed by every packet).
package conn

import (
	"time"

	"gvs/model"
)

// State is a connection state. TCP uses the first eleven, SCTP SCTPNone
// to SCTPClosed (sctp.go); UDP connections are always in StateUDP.
type State uint8

// States, in the kernel's IP_VS_TCP_S_* order.
const (
	None State = iota
	Established
	SynSent
	SynRecv
	FinWait
	TimeWait
	Close
	CloseWait
	LastAck
	Listen
	SynAck
	numTCPStates
	StateUDP State = 100
)

var stateNames = [...]string{"NONE", "ESTABLISHED", "SYN_SENT", "SYN_RECV", "FIN_WAIT",
	"TIME_WAIT", "CLOSE", "CLOSE_WAIT", "LAST_ACK", "LISTEN", "SYNACK"}

// String is the state as ipvsadm -Lc prints it.
func (s State) String() string {
	if s == StateUDP {
		return "UDP"
	}
	if s < numTCPStates {
		return stateNames[s]
	}
	if s.IsSCTP() {
		return sctpNames[s-SCTPBase]
	}
	return "ERR!"
}

// Active reports whether a connection in this state counts in ActiveConn
// (tcp_state_active_table: the handshake states and ESTABLISHED; for
// SCTP, set_sctp_state: ESTABLISHED only); every other state, and UDP,
// counts in InActConn.
func (s State) Active() bool {
	switch s {
	case Established, SynSent, SynRecv, SynAck, SCTPEstablished:
		return true
	}
	return false
}

// Dir is the direction of a packet relative to the connection.
type Dir uint8

// Directions.
const (
	Input  Dir = iota // client to real server
	Output            // real server to client (seen only with NAT/FULLNAT)
)

// TCPFlags are the TCP header flags that drive the state machine.
type TCPFlags uint8

// TCP flags, with their header bit values.
const (
	FIN TCPFlags = 0x01
	SYN TCPFlags = 0x02
	RST TCPFlags = 0x04
	ACK TCPFlags = 0x10
)

// Event index in the transition table (tcp_state_idx): RST wins over SYN,
// SYN over FIN, FIN over ACK.
func event(f TCPFlags) int {
	switch {
	case f&RST != 0:
		return 3
	case f&SYN != 0:
		return 0
	case f&FIN != 0:
		return 1
	case f&ACK != 0:
		return 2
	}
	return -1
}

const (
	sNO = None
	sES = Established
	sSS = SynSent
	sSR = SynRecv
	sFW = FinWait
	sTW = TimeWait
	sCL = Close
	sCW = CloseWait
	sLA = LastAck
	sLI = Listen
	sSA = SynAck
)

// tcpTable is the kernel's tcp_states table (not the secure_tcp variant):
// rows syn, fin, ack, rst for the INPUT, OUTPUT and INPUT-ONLY directions;
// columns are the current state.
var tcpTable = [3][4][numTCPStates]State{
	{ // INPUT
		{sSR, sES, sES, sSR, sSR, sSR, sSR, sSR, sSR, sSR, sSR},
		{sCL, sCW, sSS, sTW, sTW, sTW, sCL, sCW, sLA, sLI, sTW},
		{sES, sES, sSS, sES, sFW, sTW, sCL, sCW, sCL, sLI, sES},
		{sCL, sCL, sCL, sSR, sCL, sCL, sCL, sCL, sLA, sLI, sSR},
	},
	{ // OUTPUT
		{sSS, sES, sSS, sSR, sSS, sSS, sSS, sSS, sSS, sLI, sSR},
		{sTW, sFW, sSS, sTW, sFW, sTW, sCL, sTW, sLA, sLI, sTW},
		{sES, sES, sSS, sES, sFW, sTW, sCL, sCW, sLA, sES, sES},
		{sCL, sCL, sSS, sCL, sCL, sTW, sCL, sCL, sCL, sCL, sCL},
	},
	{ // INPUT-ONLY
		{sSR, sES, sES, sSR, sSR, sSR, sSR, sSR, sSR, sSR, sSR},
		{sCL, sFW, sSS, sTW, sFW, sTW, sCL, sCW, sLA, sLI, sTW},
		{sES, sES, sSS, sES, sFW, sTW, sCL, sCW, sCL, sLI, sES},
		{sCL, sCL, sCL, sSR, sCL, sCL, sCL, sCL, sLA, sLI, sCL},
	},
}

// NextTCP is set_tcp_state: the state after a packet with flags f in
// direction d. inputOnly selects the INPUT-ONLY table (DR and TUN
// connections that have never shown an output packet). A packet with none
// of SYN, FIN, ACK, RST moves the connection to CLOSE, as in the kernel.
func NextTCP(cur State, d Dir, inputOnly bool, f TCPFlags) State {
	ev := event(f)
	if ev < 0 || cur >= numTCPStates {
		return Close
	}
	table := int(d)
	if d == Input && inputOnly {
		table = 2
	}
	return tcpTable[table][ev][cur]
}

// Timeouts are the per-state timeouts of each protocol.
type Timeouts struct {
	TCP  [numTCPStates]time.Duration
	UDP  time.Duration
	SCTP [numSCTPStates]time.Duration // by KernelSCTP
}

// NewTimeouts returns the kernel's default timeout table (tcp_timeouts,
// udp_timeouts) with ipvsadm --set values applied: tcp sets ESTABLISHED,
// tcpfin sets FIN_WAIT, udp the UDP timeout.
func NewTimeouts(t model.Timeouts) Timeouts {
	var to Timeouts
	to.TCP = [numTCPStates]time.Duration{
		None:        2 * time.Second,
		Established: 15 * time.Minute,
		SynSent:     2 * time.Minute,
		SynRecv:     1 * time.Minute,
		FinWait:     2 * time.Minute,
		TimeWait:    2 * time.Minute,
		Close:       10 * time.Second,
		CloseWait:   60 * time.Second,
		LastAck:     30 * time.Second,
		Listen:      2 * time.Minute,
		SynAck:      120 * time.Second,
	}
	to.UDP = 5 * time.Minute
	to.SCTP = defaultSCTPTimeouts
	if t.TCP != 0 {
		to.TCP[Established] = time.Duration(t.TCP) * time.Second
	}
	if t.TCPFin != 0 {
		to.TCP[FinWait] = time.Duration(t.TCPFin) * time.Second
	}
	if t.UDP != 0 {
		to.UDP = time.Duration(t.UDP) * time.Second
	}
	return to
}

// Of returns the timeout of a connection of protocol p in state s.
func (t *Timeouts) Of(p model.Protocol, s State) time.Duration {
	if p == model.ProtoTCP && s < numTCPStates {
		return t.TCP[s]
	}
	if p == model.ProtoSCTP {
		if !s.IsSCTP() {
			s = SCTPNone
		}
		return t.SCTP[s-SCTPBase]
	}
	return t.UDP
}

// Model returns the three values ipvsadm --timeout shows.
func (t *Timeouts) Model() model.Timeouts {
	return model.Timeouts{
		TCP:    uint32(t.TCP[Established] / time.Second),
		TCPFin: uint32(t.TCP[FinWait] / time.Second),
		UDP:    uint32(t.UDP / time.Second),
	}
}
