package ipvs

import (
	"net/netip"
	"testing"
	"time"

	"gvs/conn"
	"gvs/model"
)

// FuzzIPVS drives an instance with a random mix of commands, packets and
// timer runs. It checks that nothing panics, that every server's counts
// equal the entries bound to it, and that a new non-persistent connection
// never goes to a quiesced or overloaded server (lblc excepted: like the
// kernel's, its cache keeps a server over its upper threshold, checking
// only availability, weight and its own overload rule).
func FuzzIPVS(f *testing.F) {
	f.Add([]byte{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15})
	f.Add([]byte{0, 0, 16, 16, 32, 33, 34, 35, 48, 48, 48, 64, 80, 96, 112, 128, 144, 160, 176, 192, 208, 224, 240})
	f.Add([]byte("persistent services, thresholds and deletes: a longer seed to walk more paths"))
	f.Fuzz(func(t *testing.T, ops []byte) {
		v := New(Options{})
		now := t0
		vip := func(b byte) model.ServiceKey {
			proto := model.ProtoTCP
			if b&1 != 0 {
				proto = model.ProtoUDP
			}
			return model.ServiceKey{Protocol: proto, Addr: netip.AddrFrom4([4]byte{198, 18, 1, 1 + b>>1&1}), Port: 80, Family: model.IPv4}
		}
		for i := 0; i+1 < len(ops); i += 2 {
			op, arg := ops[i], ops[i+1]
			k := vip(arg)
			rs := netip.AddrFrom4([4]byte{198, 18, 2, 1 + arg>>2&3})
			switch op % 8 {
			case 0:
				var flags model.ServiceFlags
				if arg&0x80 != 0 {
					flags = model.FlagPersistent
				}
				_ = v.AddService(model.Service{ServiceKey: k, Scheduler: model.Schedulers[int(arg>>4)%len(model.Schedulers)], Flags: flags, Timeout: 30, Netmask: 0xffffff00})
			case 1:
				_ = v.AddDest(k, model.Dest{Addr: rs, Port: 80, Method: model.Masq, Weight: int32(arg >> 4 & 3), UThreshold: uint32(arg >> 6)})
			case 2:
				_ = v.EditDest(k, model.Dest{Addr: rs, Port: 80, Method: model.Masq, Weight: int32(arg >> 5)})
			case 3:
				_ = v.DelDest(k, netip.AddrPortFrom(rs, 80))
			case 4:
				if arg&0xf0 == 0 {
					_ = v.DelService(k)
				}
			case 5, 6:
				before := map[*model.Server]bool{}
				for _, s := range v.Services() {
					for _, d := range s.Servers() {
						before[d] = d.Usable() || s.Config.Scheduler == "lblc" && d.Weight > 0
					}
				}
				n := len(v.all)
				src := netip.AddrPortFrom(netip.AddrFrom4([4]byte{198, 19, 0, arg & 7}), 1000+uint16(arg>>3))
				flags := []conn.TCPFlags{conn.SYN, conn.ACK, conn.FIN | conn.ACK, conn.RST}[arg>>6]
				c, verdict := v.In(Packet{Protocol: k.Protocol, Src: src, Dst: netip.AddrPortFrom(k.Addr, 80), TCPFlags: flags, Len: 60}, now)
				if verdict == Forward && len(v.all) > n && c.control == nil && !before[c.Server] {
					t.Fatalf("new connection to a server that was not usable: %+v", c.Server)
				}
			case 7:
				now = now.Add(time.Duration(arg) * time.Second)
				v.Expire(now)
				v.Collect(now)
				v.Estimate()
			}
			checkCounts(t, v)
		}
	})
}

func checkCounts(t *testing.T, v *IPVS) {
	t.Helper()
	type counts struct{ conns, templates int }
	bound := map[*model.Server]*counts{}
	for c := range v.all {
		n := bound[c.Server]
		if n == nil {
			n = &counts{}
			bound[c.Server] = n
		}
		if c.Template {
			n.templates++
		} else {
			n.conns++
		}
	}
	for s, n := range bound {
		if s.ActiveConns+s.InactConns != n.conns || s.PersistConns != n.templates || s.ActiveConns < 0 || s.InactConns < 0 {
			t.Fatalf("server %s: active %d inactive %d persistent %d, entries %d templates %d",
				s.AddrPort(), s.ActiveConns, s.InactConns, s.PersistConns, n.conns, n.templates)
		}
	}
}
