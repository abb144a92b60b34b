package proxy

import (
	"bytes"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"gvs/api"
	"gvs/model"
)

// serveTCPWith runs handle on every connection a backend accepts.
func serveTCPWith(t *testing.T, handle func(c *net.TCPConn)) netip.AddrPort {
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go handle(c.(*net.TCPConn))
		}
	}()
	return ln.Addr().(*net.TCPAddr).AddrPort()
}

func tcpInfo(t *testing.T, c *net.TCPConn) *unix.TCPInfo {
	t.Helper()
	raw, err := c.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var info *unix.TCPInfo
	raw.Control(func(fd uintptr) { info, err = unix.GetsockoptTCPInfo(int(fd), unix.IPPROTO_TCP, unix.TCP_INFO) })
	if err != nil {
		t.Fatal(err)
	}
	return info
}

// What the proxy relays between a client and a real server, whichever
// side closes first, short or long enough to be spliced, and a reset; the
// counters equal what the client's own socket saw, segment for segment.
func TestTCPRelay(t *testing.T) {
	big := make([]byte, 1<<20+12345) // past spliceAfter: copied, then spliced
	for i := range big {
		big[i] = byte(rand.Uint32())
	}
	for _, tt := range []struct {
		name string
		// server handles the real server's side of a connection.
		server func(c *net.TCPConn)
		// send is what the client writes before its half-close; want what
		// it reads back up to EOF.
		send, want []byte
		// clientFirst: the client half-closes once it has sent, before
		// the EOF (else after).
		clientFirst bool
		reset       bool   // the client sees a reset, not an EOF
		state       string // the entry's state afterwards
		// exact: the counters equal what the client's socket saw (not
		// with segmentation offloads, as in long streams).
		exact bool
	}{
		{name: "server speaks and closes",
			server: func(c *net.TCPConn) { c.Write([]byte("hello\n")); c.Close() },
			want:   []byte("hello\n"), state: "TIME_WAIT", exact: true},
		{name: "server speaks and closes, client half-closed",
			server: func(c *net.TCPConn) { c.Write([]byte("hello\n")); c.Close() },
			want:   []byte("hello\n"), clientFirst: true, state: "TIME_WAIT", exact: true},
		{name: "server speaks, waits, then closes",
			server: func(c *net.TCPConn) {
				c.Write([]byte("hello\n"))
				time.Sleep(50 * time.Millisecond)
				c.Write([]byte("bye\n"))
				c.Close()
			},
			want: []byte("hello\nbye\n"), state: "TIME_WAIT", exact: true},
		{name: "client half-closes first",
			server: func(c *net.TCPConn) {
				b, _ := io.ReadAll(c)
				c.Write(append([]byte("got "), b...))
				c.Close()
			},
			send: []byte("ping"), want: []byte("got ping"), clientFirst: true, state: "TIME_WAIT", exact: true},
		{name: "long streams both ways",
			server: func(c *net.TCPConn) { io.Copy(c, c); c.Close() },
			send:   big, want: big, clientFirst: true, state: "TIME_WAIT"},
		{name: "server resets",
			server: func(c *net.TCPConn) { c.SetLinger(0); c.Close() },
			reset:  true, state: "CLOSE"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			e := New(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})))
			defer e.Close()
			vip := netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), freePort(t, model.ProtoTCP))
			k := model.ServiceKey{Protocol: model.ProtoTCP, Addr: vip.Addr(), Port: vip.Port(), Family: model.IPv4}
			if err := e.AddService(model.Service{ServiceKey: k, Scheduler: "rr"}); err != nil {
				t.Fatal(err)
			}
			rs := serveTCPWith(t, tt.server)
			if err := e.AddDest(k, model.Dest{Addr: rs.Addr(), Port: rs.Port(), Method: model.Masq, Weight: 1}); err != nil {
				t.Fatal(err)
			}
			nc, err := net.DialTimeout("tcp4", vip.String(), 5*time.Second)
			if err != nil {
				if tt.reset {
					return // the reset came before the connect was seen done
				}
				t.Fatal(err)
			}
			c := nc.(*net.TCPConn)
			defer c.Close()
			c.SetDeadline(time.Now().Add(10 * time.Second))
			if tt.clientFirst {
				go func() {
					c.Write(tt.send)
					c.CloseWrite()
				}()
			}
			got, err := io.ReadAll(c)
			if !tt.clientFirst {
				c.CloseWrite()
			}
			if tt.reset {
				if err == nil {
					t.Fatalf("read %q and an EOF, want a reset", got)
				}
			} else if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, tt.want) {
				t.Fatalf("read %d bytes (%.20q), want %d (%.20q)", len(got), got, len(tt.want), tt.want)
			}
			// Both sides closed: the entry's state, then the counters
			// against the client socket's own.
			var state string
			deadline := time.Now().Add(3 * time.Second)
			for time.Now().Before(deadline) {
				e.Conns(func(ac api.Conn) bool { state = ac.State; return true })
				if state == tt.state && len(e.tcpConnsNow()) == 0 {
					break
				}
				time.Sleep(10 * time.Millisecond)
			}
			if state != tt.state {
				t.Fatalf("state %s, want %s", state, tt.state)
			}
			if n := len(e.tcpConnsNow()); n != 0 {
				t.Fatalf("%d connections still open", n)
			}
			st := e.Services()[0].Stats
			if st.Conns != 1 {
				t.Errorf("Conns %d, want 1", st.Conns)
			}
			if tt.reset {
				return
			}
			// What is still queued toward the client when both sides
			// are closed is not counted: OutBytes may fall short.
			if st.InBytes < uint64(len(tt.send)) {
				t.Errorf("InBytes %d: less than the payload", st.InBytes)
			}
			if !tt.exact {
				return
			}
			// The accepted socket counts the client's SYN but not its
			// SYN-ACK (the listener sent it), and a FIN received as a byte.
			info := tcpInfo(t, c)
			hdr := uint64(40)
			if info.Options&tcpiOptTimestamps != 0 {
				hdr += 12
			}
			if st.InPkts != uint64(info.Segs_out) || st.OutPkts != uint64(info.Segs_in)-1 {
				t.Errorf("InPkts %d, OutPkts %d; the client sent %d segments and received %d", st.InPkts, st.OutPkts, info.Segs_out, info.Segs_in)
			}
			if in, want := st.InBytes, info.Bytes_sent+1+uint64(info.Segs_out)*hdr; in != want {
				t.Errorf("InBytes %d, want %d", in, want)
			}
			if out, want := st.OutBytes, info.Bytes_received-1+uint64(info.Segs_in-1)*hdr; out != want {
				t.Errorf("OutBytes %d, want %d", out, want)
			}
		})
	}
}

func (e *Engine) tcpConnsNow() []*tcpConn {
	e.mu.Lock()
	defer e.mu.Unlock()
	var out []*tcpConn
	for c := range e.tcpConns {
		out = append(out, c)
	}
	return out
}
