package proxy

import (
	"io"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"sync"
	"testing"
	"time"

	"gvs/model"
)

// freePort returns a port nothing listens on at 127.0.0.1 for proto.
func freePort(t *testing.T, proto model.Protocol) uint16 {
	t.Helper()
	var c io.Closer
	var ap netip.AddrPort
	if proto == model.ProtoUDP {
		pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		c, ap = pc, pc.LocalAddr().(*net.UDPAddr).AddrPort()
	} else {
		ln, err := net.Listen("tcp4", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		c, ap = ln, ln.Addr().(*net.TCPAddr).AddrPort()
	}
	c.Close()
	return ap.Port()
}

// sources records the source address of what a real server receives.
type sources struct {
	mu   sync.Mutex
	seen []string
}

func (s *sources) add(a netip.Addr) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.seen = append(s.seen, a.Unmap().String())
}

func (s *sources) take() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := s.seen
	s.seen = nil
	return out
}

// tcpServer accepts, notes the peer, and closes.
func tcpServer(t *testing.T, src *sources) netip.AddrPort {
	return serveTCPWith(t, func(c *net.TCPConn) {
		src.add(c.RemoteAddr().(*net.TCPAddr).AddrPort().Addr())
		c.Close()
	})
}

// udpServer notes the source of each datagram and echoes it.
func udpServer(t *testing.T, src *sources) netip.AddrPort {
	pc, err := net.ListenUDP("udp4", net.UDPAddrFromAddrPort(netip.MustParseAddrPort("127.0.0.1:0")))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	go func() {
		buf := make([]byte, 1500)
		for {
			n, from, err := pc.ReadFromUDPAddrPort(buf)
			if err != nil {
				return
			}
			src.add(from.Addr())
			pc.WriteToUDPAddrPort(buf[:n], from)
		}
	}()
	return pc.LocalAddr().(*net.UDPAddr).AddrPort()
}

// exchange opens one connection (TCP) or flow (UDP) through the service
// and waits until the real server has answered.
func exchange(t *testing.T, proto model.Protocol, vip netip.AddrPort) {
	t.Helper()
	network := "tcp4"
	if proto == model.ProtoUDP {
		network = "udp4"
	}
	c, err := net.DialTimeout(network, vip.String(), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if proto == model.ProtoUDP {
		if _, err := c.Write([]byte("x")); err != nil {
			t.Fatal(err)
		}
		if _, err := c.Read(make([]byte, 16)); err != nil {
			t.Fatal(err)
		}
		return
	}
	if _, err := io.ReadAll(c); err != nil {
		t.Fatal(err)
	}
}

// FULLNAT connections leave from the service's pool in round robin; NAT
// ones, and services without a pool, from the director's own address.
// The whole of 127.0.0.0/8 is the host's, so the pool needs no setup.
func TestLocalAddrPool(t *testing.T) {
	e := New(slog.New(slog.NewTextHandler(io.Discard, nil)))
	defer e.Close()
	pool := []netip.Addr{netip.MustParseAddr("127.0.0.2"), netip.MustParseAddr("127.0.0.3")}
	for _, proto := range []model.Protocol{model.ProtoTCP, model.ProtoUDP} {
		t.Run(proto.String(), func(t *testing.T) {
			var src sources
			server := tcpServer(t, &src)
			if proto == model.ProtoUDP {
				server = udpServer(t, &src)
			}
			for _, tc := range []struct {
				name   string
				method model.Method
				pool   []netip.Addr
				want   []string
			}{
				{"fullnat pool", model.FullNAT, pool, []string{"127.0.0.2", "127.0.0.3", "127.0.0.2"}},
				{"masq ignores the pool", model.Masq, pool, []string{"127.0.0.1", "127.0.0.1"}},
				{"fullnat no pool", model.FullNAT, nil, []string{"127.0.0.1", "127.0.0.1"}},
			} {
				t.Run(tc.name, func(t *testing.T) {
					k := model.ServiceKey{Protocol: proto, Addr: netip.MustParseAddr("127.0.0.1"), Port: freePort(t, proto), Family: model.IPv4}
					if err := e.AddService(model.Service{ServiceKey: k, Scheduler: "rr"}); err != nil {
						t.Fatal(err)
					}
					defer e.DelService(k)
					if err := e.AddDest(k, model.Dest{Addr: server.Addr(), Port: server.Port(), Method: tc.method, Weight: 1}); err != nil {
						t.Fatal(err)
					}
					for _, a := range tc.pool {
						if err := e.AddLocalAddr(k, a); err != nil {
							t.Fatal(err)
						}
					}
					for range tc.want {
						exchange(t, proto, netip.AddrPortFrom(k.Addr, k.Port))
					}
					if got := src.take(); !slices.Equal(got, tc.want) {
						t.Errorf("real server saw %v, want %v", got, tc.want)
					}
				})
			}
		})
	}
}
