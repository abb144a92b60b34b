package keepalived

import (
	"net/netip"

	"gvs/control"
	"gvs/model"
)

// lvsSyncDaemon reads global_defs' lvs_sync_daemon INTERFACE [[inst]
// VRRP_INSTANCE] [id SYNC_ID] [maxlen LEN] [port PORT] [ttl TTL] [group
// ADDR].
func (p *parser) lvsSyncDaemon(c *node) error {
	a := c.args()
	if len(a) == 0 {
		return c.pos.errorf("lvs_sync_daemon: want INTERFACE [[inst] VRRP_INSTANCE] [id SYNC_ID] [maxlen LEN] [port PORT] [ttl TTL] [group ADDR]")
	}
	if p.sync != nil {
		return c.pos.errorf("lvs_sync_daemon: given twice (first at %s)", p.syncPos)
	}
	f := &control.SyncFollow{Daemon: model.SyncDaemon{McastIfn: a[0]}}
	if len(a[0]) > 15 {
		return c.pos.errorf("lvs_sync_daemon: interface name %q longer than 15 characters", a[0])
	}
	for i := 1; i < len(a); i++ {
		kw := a[i]
		value := func(min, max uint64) (uint64, error) {
			if i+1 >= len(a) {
				return 0, c.pos.errorf("lvs_sync_daemon %s: missing value", kw)
			}
			i++
			v, err := parseUint(a[i], min, max)
			if err != nil {
				return 0, c.pos.errorf("lvs_sync_daemon %s: %v", kw, err)
			}
			return v, nil
		}
		switch kw {
		case "id":
			v, err := value(0, 255)
			if err != nil {
				return err
			}
			f.Daemon.SyncID, f.SyncIDSet = uint8(v), true
		case "maxlen":
			v, err := value(1, 65507)
			if err != nil {
				return err
			}
			f.Daemon.SyncMaxLen = uint16(v)
		case "port":
			v, err := value(1, 65535)
			if err != nil {
				return err
			}
			f.Daemon.McastPort = uint16(v)
		case "ttl":
			v, err := value(1, 255)
			if err != nil {
				return err
			}
			f.Daemon.McastTTL = uint8(v)
		case "group":
			if i+1 >= len(a) {
				return c.pos.errorf("lvs_sync_daemon group: missing value")
			}
			i++
			g, err := netip.ParseAddr(a[i])
			if err != nil || !g.IsMulticast() {
				return c.pos.errorf("lvs_sync_daemon group: %q is not a multicast address", a[i])
			}
			f.Daemon.McastGroup = g
		case "inst":
			if i+1 >= len(a) {
				return c.pos.errorf("lvs_sync_daemon inst: missing value")
			}
			i++
			f.Instance = a[i]
		default:
			// The instance may be given without "inst" (keepalived's
			// older form), right after the interface.
			if i != 1 {
				return c.pos.errorf("lvs_sync_daemon: unknown option %q", kw)
			}
			f.Instance = kw
		}
	}
	p.sync, p.syncPos = f, c.pos
	return nil
}
