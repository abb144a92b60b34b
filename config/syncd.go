package config

import (
	"fmt"
	"net/netip"
	"slices"

	"gvs/control"
	"gvs/model"
	"gvs/vrrp"
)

// SyncDaemon is the YAML form of keepalived's lvs_sync_daemon: the
// connection sync daemons the file runs, both of them, or the one a VRRP
// instance's state says (master while it is MASTER, backup otherwise).
type SyncDaemon struct {
	Interface string  `yaml:"interface"`
	Instance  string  `yaml:"instance"`
	SyncID    *uint8  `yaml:"syncid"` // default: the instance's virtual_router_id, or 0
	MaxLen    uint16  `yaml:"maxlen"`
	Port      uint16  `yaml:"port"`
	TTL       uint8   `yaml:"ttl"`
	Group     *string `yaml:"group"`
}

func (s SyncDaemon) follow(vc *vrrp.Config) (*control.SyncFollow, error) {
	if s.Interface == "" || len(s.Interface) > 15 {
		return nil, fmt.Errorf("interface %q: want an interface name of 1 to 15 characters", s.Interface)
	}
	f := &control.SyncFollow{Daemon: model.SyncDaemon{McastIfn: s.Interface, SyncMaxLen: s.MaxLen, McastPort: s.Port, McastTTL: s.TTL},
		Instance: s.Instance}
	if s.MaxLen > 65507 {
		return nil, fmt.Errorf("maxlen %d: want 1..65507", s.MaxLen)
	}
	if s.Group != nil {
		g, err := netip.ParseAddr(*s.Group)
		if err != nil || !g.IsMulticast() {
			return nil, fmt.Errorf("group %q: not a multicast address", *s.Group)
		}
		f.Daemon.McastGroup = g
	}
	if s.SyncID != nil {
		f.Daemon.SyncID, f.SyncIDSet = *s.SyncID, true
	}
	if s.Instance != "" {
		i := -1
		if vc != nil {
			i = slices.IndexFunc(vc.Instances, func(in vrrp.Instance) bool { return in.Name == s.Instance })
		}
		if i < 0 {
			return nil, fmt.Errorf("instance %q: no such VRRP instance", s.Instance)
		}
		if !f.SyncIDSet {
			f.Daemon.SyncID = vc.Instances[i].VRID
		}
	}
	return f, nil
}
