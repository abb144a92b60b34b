package conn

import "time"

// SCTP states (ip_vs_proto_sctp.c, IP_VS_SCTP_S_*), as gvs numbers them:
// the kernel's value plus SCTPBase, so one State byte names a state of any
// protocol (TCP 0-10, SCTP 20-33, UDP 100) and the BPF data path stores it
// as it is. KernelSCTP and FromKernelSCTP convert at the sync protocol's
// boundary, where the kernel's numbers travel.
const (
	SCTPBase State = 20

	SCTPNone          State = SCTPBase + iota - 1 // first INIT not yet seen
	SCTPInit1                                     // first client INIT, waiting for the INIT ACK
	SCTPInit                                      // a later client INIT
	SCTPCookieSent                                // the server's INIT ACK sent
	SCTPCookieReplied                             // the client's COOKIE ECHO sent
	SCTPCookieWait                                // the server's INIT sent
	SCTPCookie                                    // the client's INIT ACK sent
	SCTPCookieEchoed                              // the server's COOKIE ECHO sent
	SCTPEstablished
	SCTPShutdownSent
	SCTPShutdownReceived
	SCTPShutdownAckSent
	SCTPRejected // the INIT was answered with an ABORT
	SCTPClosed
	sctpLast
)

const numSCTPStates = int(sctpLast - SCTPBase)

// sctpNames are what /proc/net/ip_vs_conn (sctp_state_name_table) prints.
var sctpNames = [numSCTPStates]string{"NONE", "INIT1", "INIT", "C-SENT", "C-REPLIED", "C-WAIT",
	"COOKIE", "C-ECHOED", "ESTABLISHED", "S-SENT", "S-RECEIVED", "S-ACK-SENT", "REJECTED", "CLOSED"}

// IsSCTP reports whether s is an SCTP state.
func (s State) IsSCTP() bool { return s >= SCTPBase && s < sctpLast }

// KernelSCTP is an SCTP state's IP_VS_SCTP_S_* value.
func (s State) KernelSCTP() uint16 { return uint16(s - SCTPBase) }

// FromKernelSCTP is the State of IP_VS_SCTP_S_* value k; ok is false out
// of range.
func FromKernelSCTP(k uint16) (State, bool) {
	if int(k) >= numSCTPStates {
		return 0, false
	}
	return SCTPBase + State(k), true
}

// SCTPEvent is an event of the SCTP state table (ipvs_sctp_event_t),
// derived from a packet's chunk types.
type SCTPEvent uint8

// Events, in the kernel's order (rows of sctp_states).
const (
	EvData SCTPEvent = iota // DATA, SACK, HEARTBEAT(-ACK), ECNE, CWR, and unknown chunk types
	EvInit
	EvInitAck
	EvCookieEcho
	EvCookieAck
	EvShutdown
	EvShutdownAck
	EvShutdownComplete
	EvError
	EvAbort
	NumSCTPEvents
)

// SCTP chunk types (RFC 9260 section 3.2) the event table names.
const (
	ChunkData             = 0
	ChunkInit             = 1
	ChunkInitAck          = 2
	ChunkSack             = 3
	ChunkHeartbeat        = 4
	ChunkHeartbeatAck     = 5
	ChunkAbort            = 6
	ChunkShutdown         = 7
	ChunkShutdownAck      = 8
	ChunkError            = 9
	ChunkCookieEcho       = 10
	ChunkCookieAck        = 11
	ChunkECNE             = 12
	ChunkCWR              = 13
	ChunkShutdownComplete = 14
)

var chunkEvents = [...]SCTPEvent{
	ChunkData: EvData, ChunkInit: EvInit, ChunkInitAck: EvInitAck, ChunkSack: EvData,
	ChunkHeartbeat: EvData, ChunkHeartbeatAck: EvData, ChunkAbort: EvAbort,
	ChunkShutdown: EvShutdown, ChunkShutdownAck: EvShutdownAck, ChunkError: EvError,
	ChunkCookieEcho: EvCookieEcho, ChunkCookieAck: EvCookieAck, ChunkECNE: EvData,
	ChunkCWR: EvData, ChunkShutdownComplete: EvShutdownComplete,
}

// SCTPChunkEvent is set_sctp_state's event for a packet whose first chunk
// has type first; second is the type of the chunk after it (-1: none, or
// not read). A COOKIE ECHO or COOKIE ACK followed by an ABORT is the
// ABORT; any other bundle is its first chunk, and a type beyond SHUTDOWN
// COMPLETE counts as DATA.
func SCTPChunkEvent(first uint8, second int) SCTPEvent {
	t := first
	if (first == ChunkCookieEcho || first == ChunkCookieAck) && second == ChunkAbort {
		t = ChunkAbort
	}
	if int(t) < len(chunkEvents) {
		return chunkEvents[t]
	}
	return EvData
}

const (
	zNO = SCTPNone
	zI1 = SCTPInit1
	zIN = SCTPInit
	zCS = SCTPCookieSent
	zCR = SCTPCookieReplied
	zCW = SCTPCookieWait
	zCO = SCTPCookie
	zCE = SCTPCookieEchoed
	zES = SCTPEstablished
	zSS = SCTPShutdownSent
	zSR = SCTPShutdownReceived
	zSA = SCTPShutdownAckSent
	zRJ = SCTPRejected
	zCL = SCTPClosed
)

// sctpTable is the kernel's sctp_states: for the INPUT, OUTPUT and
// INPUT-ONLY directions, one row per event (data, init, init_ack,
// cookie_echo, cookie_ack, shutdown, shutdown_ack, shutdown_complete,
// error, abort); columns are the current state, NONE to CLOSED.
var sctpTable = [3][NumSCTPEvents][numSCTPStates]State{
	{ // INPUT
		{zES, zI1, zIN, zCS, zCR, zCW, zCO, zCE, zES, zSS, zSR, zSA, zRJ, zCL},
		{zI1, zIN, zIN, zCS, zCR, zCW, zCO, zCE, zES, zSS, zSR, zSA, zIN, zIN},
		{zCW, zCW, zCW, zCS, zCR, zCO, zCO, zCE, zES, zSS, zSR, zSA, zRJ, zCL},
		{zCR, zIN, zIN, zCR, zCR, zCW, zCO, zCE, zES, zSS, zSR, zSA, zRJ, zCL},
		{zES, zI1, zIN, zCS, zCR, zCW, zCO, zES, zES, zSS, zSR, zSA, zRJ, zCL},
		{zSR, zI1, zIN, zCS, zCR, zCW, zCO, zCE, zSR, zSS, zSR, zSA, zRJ, zCL},
		{zCL, zIN, zIN, zCS, zCR, zCW, zCO, zCE, zES, zCL, zSR, zCL, zRJ, zCL},
		{zCL, zCL, zCL, zCS, zCR, zCW, zCO, zCE, zES, zSS, zSR, zCL, zRJ, zCL},
		{zCL, zI1, zIN, zCS, zCR, zCW, zCO, zCL, zES, zSS, zSR, zSA, zRJ, zCL},
		{zCL, zCL, zCL, zCL, zCL, zRJ, zCL, zCL, zCL, zCL, zCL, zCL, zCL, zCL},
	},
	{ // OUTPUT
		{zES, zI1, zIN, zCS, zCR, zCW, zCO, zCE, zES, zSS, zSR, zSA, zRJ, zCL},
		{zCW, zCW, zCW, zCW, zCW, zCW, zCW, zCW, zES, zCW, zCW, zCW, zCW, zCW},
		{zCS, zCS, zCS, zCS, zCR, zCW, zCO, zCE, zES, zSS, zSR, zSA, zRJ, zCL},
		{zCE, zCE, zCE, zCE, zCE, zCE, zCE, zCE, zES, zSS, zSR, zSA, zRJ, zCL},
		{zES, zES, zES, zES, zES, zES, zES, zES, zES, zSS, zSR, zSA, zRJ, zCL},
		{zSS, zSS, zSS, zSS, zSS, zSS, zSS, zSS, zSS, zSS, zSR, zSA, zRJ, zCL},
		{zSA, zSA, zSA, zSA, zSA, zCW, zCO, zCE, zES, zSA, zSA, zSA, zRJ, zCL},
		{zCL, zI1, zIN, zCS, zCR, zCW, zCO, zCE, zES, zSS, zSR, zSA, zRJ, zCL},
		{zCL, zCL, zCL, zCL, zCL, zCW, zCO, zCE, zES, zSS, zSR, zSA, zRJ, zCL},
		{zCL, zRJ, zCL, zCL, zCL, zCL, zCL, zCL, zCL, zCL, zCL, zCL, zCL, zCL},
	},
	{ // INPUT-ONLY
		{zES, zI1, zIN, zCS, zCR, zES, zCO, zCE, zES, zSS, zSR, zSA, zRJ, zCL},
		{zI1, zIN, zIN, zIN, zIN, zIN, zCO, zCE, zES, zSS, zSR, zSA, zIN, zIN},
		{zCE, zCE, zCE, zCE, zCE, zCE, zCO, zCE, zES, zSS, zSR, zSA, zRJ, zCL},
		{zES, zES, zES, zES, zES, zES, zCO, zCE, zES, zSS, zSR, zSA, zRJ, zCL},
		{zES, zI1, zIN, zES, zES, zCW, zES, zES, zES, zSS, zSR, zSA, zRJ, zCL},
		{zSR, zI1, zIN, zCS, zCR, zCW, zCO, zCE, zSR, zSS, zSR, zSA, zRJ, zCL},
		{zCL, zIN, zIN, zCS, zCR, zCW, zCO, zCE, zCL, zCL, zSR, zCL, zRJ, zCL},
		{zCL, zCL, zCL, zCL, zCL, zCW, zCO, zCE, zES, zSS, zCL, zCL, zRJ, zCL},
		{zCL, zI1, zIN, zCS, zCR, zCW, zCO, zCE, zES, zSS, zSR, zSA, zRJ, zCL},
		{zCL, zCL, zCL, zCL, zCL, zRJ, zCL, zCL, zCL, zCL, zCL, zCL, zCL, zCL},
	},
}

// NextSCTP is set_sctp_state: the state after a packet of event ev in
// direction d; inputOnly selects the INPUT-ONLY table (DR and TUN, whose
// replies bypass the director, until an output packet is seen). A state
// that is not SCTP's is taken as NONE.
func NextSCTP(cur State, d Dir, inputOnly bool, ev SCTPEvent) State {
	if !cur.IsSCTP() {
		cur = SCTPNone
	}
	if ev >= NumSCTPEvents {
		ev = EvData
	}
	table := int(d)
	if d == Input && inputOnly {
		table = 2
	}
	return sctpTable[table][ev][cur-SCTPBase]
}

// sctpMaxRTO is IP_VS_SCTP_MAX_RTO: 61 seconds.
const sctpMaxRTO = 61 * time.Second

// defaultSCTPTimeouts is the kernel's sctp_timeouts. ipvsadm --set does
// not change them.
var defaultSCTPTimeouts = [numSCTPStates]time.Duration{
	2 * time.Second, // NONE
	4 * time.Second, // INIT1
	sctpMaxRTO,      // INIT
	sctpMaxRTO,      // COOKIE_SENT
	sctpMaxRTO,      // COOKIE_REPLIED
	sctpMaxRTO,      // COOKIE_WAIT
	sctpMaxRTO,      // COOKIE
	sctpMaxRTO,      // COOKIE_ECHOED
	15 * time.Minute,
	sctpMaxRTO,      // SHUTDOWN_SENT
	sctpMaxRTO,      // SHUTDOWN_RECEIVED
	sctpMaxRTO,      // SHUTDOWN_ACK_SENT
	4 * time.Second, // REJECTED
	sctpMaxRTO,      // CLOSED
}

// SCTPTimeouts returns the kernel's default SCTP timeout of every state,
// indexed by KernelSCTP.
func SCTPTimeouts() [numSCTPStates]time.Duration { return defaultSCTPTimeouts }

// NumSCTPStates is the number of SCTP states (IP_VS_SCTP_S_LAST).
const NumSCTPStates = numSCTPStates
