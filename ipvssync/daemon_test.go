package ipvssync

import (
	"context"
	"net/netip"
	"os"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"gvs/conn"
	"gvs/engine"
	"gvs/model"
)

// fakeEngine exports what the test feeds it and records what it is
// given to install.
type fakeEngine struct {
	changes chan []engine.SyncConn
	mu      sync.Mutex
	got     [][]engine.SyncConn
	at      []time.Time
}

func (f *fakeEngine) SyncChanges(ctx context.Context) (<-chan []engine.SyncConn, error) {
	out := make(chan []engine.SyncConn)
	go func() {
		defer close(out)
		for {
			select {
			case b := <-f.changes:
				out <- b
			case <-ctx.Done():
				return
			}
		}
	}()
	return out, nil
}

func (f *fakeEngine) InstallSynced(c []engine.SyncConn) (int, error) {
	if c == nil {
		return 0, nil
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.got = append(f.got, append([]engine.SyncConn(nil), c...))
	f.at = append(f.at, time.Now())
	return len(c), nil
}

func (f *fakeEngine) messages() ([][]engine.SyncConn, []time.Time) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([][]engine.SyncConn(nil), f.got...), append([]time.Time(nil), f.at...)
}

// inNetns runs fn on a thread of its own in a new network namespace
// whose loopback is up and takes multicast; the thread dies after.
func inNetns(t *testing.T, fn func()) {
	if os.Geteuid() != 0 {
		t.Skip("needs root for a network namespace")
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		runtime.LockOSThread() // never unlocked: the thread goes with the goroutine
		if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
			t.Errorf("unshare: %v", err)
			return
		}
		lo, err := netlink.LinkByName("lo")
		if err == nil {
			err = netlink.LinkSetMulticastOn(lo)
		}
		if err == nil {
			err = netlink.LinkSetUp(lo)
		}
		if err != nil {
			t.Errorf("lo: %v", err)
			return
		}
		fn()
	}()
	<-done
}

func sc(i int) engine.SyncConn {
	return engine.SyncConn{Protocol: model.ProtoTCP, Client: netip.AddrPortFrom(netip.MustParseAddr("10.0.0.1"), uint16(1000+i)),
		Virtual: ap("10.0.0.100:80"), Dest: ap("10.0.1.1:80"), Method: model.Route, State: conn.Established, Timeout: 900, NoOutput: true}
}

// A master and two backups on one host (loopback): the master batches
// into messages of at most MaxLen, sends a partial one 2 s after its
// first entry, and a backup of another sync id ignores them all.
func TestDaemons(t *testing.T) {
	inNetns(t, func() {
		ctx := context.Background()
		me := &fakeEngine{changes: make(chan []engine.SyncConn)}
		be, other := &fakeEngine{}, &fakeEngine{}
		cfg := DaemonConfig{Iface: "lo", SyncID: 7, Loopback: true, Port: 18848}
		bcfg := cfg
		bcfg.State = "backup"
		b, err := Start(ctx, bcfg, be, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer b.Stop()
		bcfg.SyncID = 8
		b2, err := Start(ctx, bcfg, other, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer b2.Stop()
		mcfg := cfg
		mcfg.State = "master"
		m, err := Start(ctx, mcfg, me, nil)
		if err != nil {
			t.Fatal(err)
		}
		if m.Config().MaxLen != 1472 {
			t.Fatalf("default maxlen %d", m.Config().MaxLen)
		}
		// 100 entries: two full messages of 40 at once, the last 20
		// after FlushTime.
		var batch []engine.SyncConn
		for i := range 100 {
			batch = append(batch, sc(i))
		}
		sent := time.Now()
		me.changes <- batch
		deadline := time.Now().Add(5 * time.Second)
		for time.Now().Before(deadline) {
			if got, _ := be.messages(); len(got) == 3 {
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
		got, at := be.messages()
		if len(got) != 3 || len(got[0]) != 40 || len(got[1]) != 40 || len(got[2]) != 20 {
			t.Fatalf("backup got %d messages: %v", len(got), lens(got))
		}
		if d := at[1].Sub(sent); d > 500*time.Millisecond {
			t.Fatalf("full messages after %v", d)
		}
		if d := at[2].Sub(sent); d < FlushTime-100*time.Millisecond || d > FlushTime+500*time.Millisecond {
			t.Fatalf("the partial message after %v, want %v", d, FlushTime)
		}
		if got[0][0] != sc(0) || got[2][19] != sc(99) {
			t.Fatalf("entries %+v %+v", got[0][0], got[2][19])
		}
		// Stop sends what is pending at once.
		me.changes <- []engine.SyncConn{sc(200)}
		m.Stop()
		time.Sleep(200 * time.Millisecond)
		if got, _ := be.messages(); len(got) != 4 || got[3][0] != sc(200) {
			t.Fatalf("after Stop: %v", lens(got))
		}
		if s := m.Stats(); s.Sent != 4 || s.SentConns != 101 {
			t.Fatalf("master stats %+v", s)
		}
		if s := b.Stats(); s.Received != 4 || s.Installed != 101 || s.Decode.Conns != 101 {
			t.Fatalf("backup stats %+v", s)
		}
		if got, _ := other.messages(); len(got) != 0 || b2.Stats().OtherSyncID != 4 {
			t.Fatalf("sync id 8 backup installed %v (stats %+v)", lens(got), b2.Stats())
		}
	})
}

func lens(m [][]engine.SyncConn) []int {
	var n []int
	for _, b := range m {
		n = append(n, len(b))
	}
	return n
}

// Entries convert to the wire and back.
func TestWireConversion(t *testing.T) {
	for _, c := range []engine.SyncConn{
		sc(1),
		{Protocol: model.ProtoUDP, Client: ap("10.0.0.1:53"), Virtual: ap("10.0.0.100:53"), Dest: ap("10.0.1.1:53"), Method: model.Masq, State: conn.StateUDP, Timeout: 300, Inactive: true},
		{Protocol: model.ProtoTCP, Client: ap("10.0.0.0:0"), Virtual: ap("10.0.0.100:0"), Dest: ap("10.0.1.1:0"), Method: model.Tunnel, Template: true, State: conn.None, Timeout: 360},
		{Protocol: model.ProtoTCP, Client: ap("10.0.0.1:999"), Virtual: ap("10.0.0.100:80"), Dest: ap("10.0.1.1:80"), Local: ap("10.9.0.1:2000"), Method: model.FullNAT, State: conn.FinWait, Timeout: 120},
	} {
		w := ToWire(&c)
		b, err := Encode(1, []Conn{w})
		if err != nil {
			t.Fatal(err)
		}
		m, err := Decode(b, nil)
		if err != nil || len(m.Conns) != 1 {
			t.Fatal(err)
		}
		back, ok := FromWire(&m.Conns[0])
		if !ok || back != c {
			t.Fatalf("%+v\nback %+v", c, back)
		}
	}
}

func TestStartRefuses(t *testing.T) {
	for _, c := range []DaemonConfig{{State: "slave", Iface: "lo"}, {State: "master"}, {State: "backup", Iface: "lo", Group: netip.MustParseAddr("10.0.0.1")}} {
		if _, err := Start(context.Background(), c, &fakeEngine{}, nil); err == nil {
			t.Fatalf("%+v started", c)
		}
	}
}
