package proxy

import (
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"testing"
	"time"

	"gvs/model"
)

// UDP through a service of either family: every client gets its own
// answers back from the virtual address, in bursts that the readers take
// several at a time, and the counters are exact (one packet per
// datagram, payload + 8 + the IP header).
func TestUDPEcho(t *testing.T) {
	for _, tt := range []struct {
		network, loopback string
		family            model.Family
		ipHdr             int
	}{
		{"udp4", "127.0.0.1", model.IPv4, 20},
		{"udp6", "::1", model.IPv6, 40},
	} {
		t.Run(tt.network, func(t *testing.T) {
			lo := netip.MustParseAddr(tt.loopback)
			echo, err := net.ListenUDP(tt.network, net.UDPAddrFromAddrPort(netip.AddrPortFrom(lo, 0)))
			if err != nil {
				t.Skipf("%s: %v", tt.network, err)
			}
			defer echo.Close()
			go func() {
				buf := make([]byte, 64*1024)
				for {
					n, from, err := echo.ReadFromUDPAddrPort(buf)
					if err != nil {
						return
					}
					echo.WriteToUDPAddrPort(append([]byte("re:"), buf[:n]...), from)
				}
			}()
			rs := echo.LocalAddr().(*net.UDPAddr).AddrPort()
			// A free port for the service.
			probe, err := net.ListenUDP(tt.network, net.UDPAddrFromAddrPort(netip.AddrPortFrom(lo, 0)))
			if err != nil {
				t.Fatal(err)
			}
			vip := probe.LocalAddr().(*net.UDPAddr).AddrPort()
			probe.Close()

			e := New(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})))
			defer e.Close()
			k := model.ServiceKey{Protocol: model.ProtoUDP, Addr: vip.Addr(), Port: vip.Port(), Family: tt.family}
			if err := e.AddService(model.Service{ServiceKey: k, Scheduler: "rr"}); err != nil {
				t.Fatal(err)
			}
			if err := e.AddDest(k, model.Dest{Addr: rs.Addr(), Port: rs.Port(), Method: model.Masq, Weight: 1}); err != nil {
				t.Fatal(err)
			}
			const clients, burst = 3, 20
			var sent, recvd, inBytes, outBytes int
			for i := range clients {
				c, err := net.DialUDP(tt.network, nil, net.UDPAddrFromAddrPort(vip))
				if err != nil {
					t.Fatal(err)
				}
				defer c.Close()
				// A burst, then the answers: the service socket holds
				// several datagrams at once.
				want := map[string]bool{}
				for j := range burst {
					msg := fmt.Sprintf("client %d datagram %d", i, j)
					if _, err := c.Write([]byte(msg)); err != nil {
						t.Fatal(err)
					}
					want["re:"+msg] = true
					sent++
					inBytes += len(msg) + 8 + tt.ipHdr
				}
				buf := make([]byte, 2048)
				for range burst {
					c.SetReadDeadline(time.Now().Add(3 * time.Second))
					n, err := c.Read(buf)
					if err != nil {
						t.Fatalf("client %d: %d answers, then %v", i, len(want), err)
					}
					if !want[string(buf[:n])] {
						t.Fatalf("client %d got %q", i, buf[:n])
					}
					delete(want, string(buf[:n]))
					recvd++
					outBytes += n + 8 + tt.ipHdr
				}
			}
			st := e.Services()[0].Stats
			if st.Conns != clients || st.InPkts != uint64(sent) || st.OutPkts != uint64(recvd) ||
				st.InBytes != uint64(inBytes) || st.OutBytes != uint64(outBytes) {
				t.Errorf("counters %+v, want %d conns, %d/%d packets, %d/%d bytes", st, clients, sent, recvd, inBytes, outBytes)
			}
		})
	}
}
