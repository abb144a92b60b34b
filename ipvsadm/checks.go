package ipvsadm

import (
	"fmt"
	"io"
	"strings"
	"time"

	"gvs/api"
	"gvs/model"
)

// ListChecks writes gvsadm --list-checks (a gvs extension; ipvsadm has no
// health checks): for each checked service its quorum state, live weight
// and sorry server; under it each real server's state, and under that
// each checker's target, state, last result, failures in a row, time
// since its last transition and the reason of its last result. With k it
// lists that service only, or returns model.ErrServiceNotDefined. now is
// the time the "Since" column counts from.
func ListChecks(w io.Writer, h api.Health, k *model.ServiceKey, f Format, now time.Time) error {
	ew := &errWriter{w: w}
	line := func(format string, a ...any) { ew.printf("%s\n", strings.TrimRight(fmt.Sprintf(format, a...), " ")) }
	found := false
	for _, s := range h.Services {
		if k != nil && !sameService(s.Service, *k) {
			continue
		}
		if !found {
			line("%-4s %-30s %-9s %-13s %s", "Prot", "LocalAddress:Port", "Quorum", "Weight/Quorum", "Sorry")
			line("  -> %-30s %-9s", "RemoteAddress:Port", "State")
			line("     %-11s %-25s %-5s %-6s %-5s %-8s %s", "Checker", "Target", "State", "Last", "Fails", "Since", "Reason")
		}
		found = true
		name := serviceName(s.Service, f)
		quorum := "up"
		if !s.QuorumUp {
			quorum = "LOST"
		}
		sorry := "-"
		if s.Sorry != nil {
			sorry = addrPort(s.Sorry.Addr(), s.Sorry.Port(), s.Service.Protocol, f)
			if s.SorryActive {
				sorry += " (serving)"
			}
		}
		q := fmt.Sprintf("%d/%d", s.LiveWeight, s.Quorum)
		if s.Hysteresis > 0 {
			q += fmt.Sprintf("+-%d", s.Hysteresis)
		}
		line("%-4s %-30s %-9s %-13s %s", checkProto(s.Service), name, quorum, q, sorry)
		for _, srv := range s.Servers {
			state := "up"
			if !srv.Up {
				state = "DOWN"
				if srv.Inhibit {
					state = "DOWN (w0)"
				}
			}
			line("  -> %-30s %-9s", addrPort(srv.Server.Addr(), srv.Server.Port(), s.Service.Protocol, f), state)
			for _, c := range srv.Checks {
				st := "up"
				if !c.Up {
					st = "down"
				}
				last := c.LastResult
				if last == "" {
					last = "-"
				}
				since := "-"
				if !c.LastTransition.IsZero() {
					since = shortDuration(now.Sub(c.LastTransition))
				}
				reason := c.LastReason
				if c.Weight != nil {
					reason = fmt.Sprintf("weight %d; %s", *c.Weight, reason)
				}
				line("     %-11s %-25s %-5s %-6s %-5d %-8s %s", c.Kind, c.Target, st, last, c.ConsecutiveFailures, since, reason)
			}
		}
	}
	if k != nil && !found {
		return model.ErrServiceNotDefined
	}
	return ew.err
}

// serviceName is a service as the first column of -L names it.
func serviceName(k model.ServiceKey, f Format) string {
	if k.IsFWMark() {
		if k.Family == model.IPv6 {
			return fmt.Sprintf("%d IPv6", int32(k.FWMark))
		}
		return fmt.Sprintf("%d", int32(k.FWMark))
	}
	return addrPort(k.Addr, k.Port, k.Protocol, f)
}

func checkProto(k model.ServiceKey) string {
	if k.IsFWMark() {
		return "FWM"
	}
	return protoListName(k.Protocol)
}

// shortDuration is d in its two largest units: 45s, 3m10s, 5h2m, 3d4h.
func shortDuration(d time.Duration) string {
	s := int64(d / time.Second)
	switch {
	case s < 0:
		return "0s"
	case s < 60:
		return fmt.Sprintf("%ds", s)
	case s < 3600:
		return fmt.Sprintf("%dm%ds", s/60, s%60)
	case s < 86400:
		return fmt.Sprintf("%dh%dm", s/3600, s%3600/60)
	}
	return fmt.Sprintf("%dd%dh", s/86400, s%86400/3600)
}
