package config

import (
	"fmt"
	"slices"

	"gvs/health"
	"gvs/model"
)

// checkViaVIP refuses via_vip checkers of servers that are not DR or TUN
// servers of an IPv4 virtual address in the file's rules (the engine is
// gvsd's to check: health.Manager.Validate).
func checkViaVIP(c *Config) error {
	if c == nil || c.Health == nil {
		return nil
	}
	for _, hs := range c.Health.Services {
		for _, srv := range hs.Servers {
			for _, spec := range srv.Checks {
				if !spec.ViaVIP {
					continue
				}
				why := ""
				switch d, ok := configuredDest(c, hs.Key, srv); {
				case !hs.Key.Addr.IsValid():
					why = "a fwmark service has no VIP"
				case !hs.Key.Addr.Unmap().Is4() || !srv.Addr.Addr().Unmap().Is4():
					why = "IPv4 only"
				case !ok:
					why = "the server is not in the rules"
				case d.Method != model.Route && d.Method != model.Tunnel:
					why = "the server's method is " + methodName(d.Method)
				default:
					continue
				}
				return fmt.Errorf("%s: real server %s: %s: %w (%s)", hs.Key, srv.Addr, spec.Kind, health.ErrViaVIP, why)
			}
		}
	}
	return nil
}

func configuredDest(c *Config, key model.ServiceKey, srv health.Server) (model.Dest, bool) {
	if c.Rules == nil {
		return model.Dest{}, false
	}
	for _, s := range c.Rules.Services {
		if s.Service.ServiceKey != key {
			continue
		}
		if i := slices.IndexFunc(s.Dests, func(d model.Dest) bool { return d.AddrPort() == srv.Addr }); i >= 0 {
			return s.Dests[i], true
		}
	}
	return model.Dest{}, false
}

func methodName(m model.Method) string {
	switch m {
	case model.Masq:
		return "masq (NAT)"
	case model.FullNAT:
		return "fullnat"
	}
	return m.String()
}
