package bpf

import (
	"encoding/binary"
	"errors"
	"github.com/cilium/ebpf/ringbuf"
	"os"
	"testing"
	"time"
)

// With sync_master set, the data path reports a connection as the
// kernel's ip_vs_sync_conn_needed (threshold 3, period 50): an
// established TCP connection at its 3rd, 53rd... client packet, a move
// to FIN_WAIT at once. Off, nothing.
func TestSyncEvents(t *testing.T) {
	o := loadObjects(t)
	drService(t, o)
	rd, err := ringbuf.NewReader(o.SyncEvents)
	if err != nil {
		t.Fatal(err)
	}
	defer rd.Close()
	records := func() []SyncRec {
		var out []SyncRec
		for {
			rd.SetDeadline(time.Now().Add(50 * time.Millisecond))
			r, err := rd.Read()
			if errors.Is(err, os.ErrDeadlineExceeded) {
				return out
			}
			if err != nil {
				t.Fatal(err)
			}
			var rec SyncRec
			if _, err := binary.Decode(r.RawSample, binary.LittleEndian, &rec); err != nil {
				t.Fatal(err)
			}
			out = append(out, rec)
		}
	}
	send := func(flags uint8, n int) {
		for range n {
			p := syn(client, 80)
			p.flags = flags
			if act, _ := run(t, o, p.build()); act != xdpTX {
				t.Fatalf("action %s", actionNames[act])
			}
		}
	}
	other := client
	client = ap("198.18.5.2:40000")
	defer func() { client = other }()
	send(tcpSYN, 1)
	send(tcpACK, 5)
	if r := records(); len(r) != 0 {
		t.Fatalf("%d records with sync off", len(r))
	}
	client = other
	must(t, o.Config.Put(uint32(0), conf(Config{SyncMaster: 1, SyncThreshold: 3, SyncPeriod: 50})))
	send(tcpSYN, 1)
	send(tcpACK, 1) // ESTABLISHED, packet 2: not yet
	if r := records(); len(r) != 0 {
		t.Fatalf("%d records before packet 3", len(r))
	}
	send(tcpACK, 1)
	if r := records(); len(r) != 1 || r[0].Conn.SyncPkts != 3 || r[0].Conn.State != 1 {
		t.Fatalf("packet 3: %+v", r)
	}
	send(tcpACK, 49)
	if r := records(); len(r) != 0 {
		t.Fatalf("%d records before packet 53", len(r))
	}
	send(tcpACK, 1)
	r := records()
	if len(r) != 1 || r[0].Key.Cport != htons(client.Port()) || r[0].Conn.State != 1 || r[0].Conn.SyncPkts != 53 {
		t.Fatalf("records %+v", r)
	}
	send(tcpFIN|tcpACK, 1)
	if r := records(); len(r) != 1 || r[0].Conn.State != 4 || r[0].Conn.SyncState != 4 {
		t.Fatalf("after FIN: %+v", r)
	}
	send(tcpACK, 1) // still FIN_WAIT, packet 55: not due
	if r := records(); len(r) != 0 {
		t.Fatalf("%d records", len(r))
	}
}
