package lbagent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"strings"
	"time"

	"gvs/api"
	"gvs/client"
	"gvs/lbaas"
	"gvs/model"
)

// lastSpec reads the Spec last applied to load balancer id.
func (a *Agent) lastSpec(id string) (*lbaas.Spec, error) {
	b, err := os.ReadFile(a.specPath(id))
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("%s: %w", id, ErrUnknown)
	}
	if err != nil {
		return nil, err
	}
	var s lbaas.Spec
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, fmt.Errorf("%s: %w", a.specPath(id), err)
	}
	return &s, nil
}

func protocol(p string) model.Protocol {
	switch strings.ToUpper(p) {
	case "TCP":
		return model.ProtoTCP
	case "UDP":
		return model.ProtoUDP
	case "SCTP":
		return model.ProtoSCTP
	}
	return model.ProtoNone
}

// Observe reads the director's counters and checks: each listener's
// service's bytes and connections (active ones summed over its
// servers), and each checked member's health. A listener without a
// service (admin down) is reported with zeros.
func (a *Agent) Observe(ctx context.Context, id string) (*lbaas.Observed, error) {
	if err := checkID(id); err != nil {
		return nil, err
	}
	spec, err := a.lastSpec(id)
	if err != nil {
		return nil, err
	}
	c := client.New(a.socket(id))
	snap, err := call(ctx, c.Services)
	if err != nil {
		return nil, fmt.Errorf("gvsd of %s: %w", id, err)
	}
	health, err := call(ctx, c.Checks)
	if err != nil {
		return nil, fmt.Errorf("gvsd of %s: %w", id, err)
	}
	return observed(spec, snap, health), nil
}

// observed is Observe's arithmetic, apart for tests.
func observed(spec *lbaas.Spec, snap api.Snapshot, health api.Health) *lbaas.Observed {
	o := &lbaas.Observed{Listeners: map[string]lbaas.ListenerStats{}, Members: map[string]lbaas.MemberHealth{}, At: time.Now()}
	vip := spec.VIP.Unmap()
	key := func(proto string, port uint16) model.ServiceKey {
		return model.ServiceKey{Protocol: protocol(proto), Addr: vip, Port: port, Family: model.FamilyOf(vip)}
	}
	svcs := map[model.ServiceKey]api.Service{}
	for _, s := range snap.Services {
		svcs[s.ServiceKey] = s
	}
	checked := map[model.ServiceKey]api.ServiceHealth{}
	for _, h := range health.Services {
		checked[h.Service] = h
	}
	pools := map[string]*lbaas.PoolSpec{}
	for i := range spec.Pools {
		pools[spec.Pools[i].ID] = &spec.Pools[i]
	}
	for _, l := range spec.Listeners {
		k := key(l.Protocol, l.ProtocolPort)
		var st lbaas.ListenerStats
		if s, ok := svcs[k]; ok {
			st.BytesIn, st.BytesOut, st.TotalConnections = s.Stats.InBytes, s.Stats.OutBytes, s.Stats.Conns
			for _, d := range s.Dests {
				st.ActiveConnections += uint64(d.ActiveConns)
			}
		}
		o.Listeners[l.ID] = st
		p := pools[l.DefaultPoolID]
		h, ok := checked[k]
		if p == nil || !ok {
			continue
		}
		servers := map[netip.AddrPort]api.ServerHealth{}
		for _, s := range h.Servers {
			servers[s.Server] = s
		}
		for _, m := range p.Members {
			s, ok := servers[netip.AddrPortFrom(m.Address.Unmap(), m.ProtocolPort)]
			if !ok {
				continue
			}
			mh, known := memberHealth(s)
			if !known {
				continue
			}
			// A member of several listeners' pool is up when it is up for
			// each.
			if prev, ok := o.Members[m.ID]; ok && !prev.Up {
				continue
			}
			o.Members[m.ID] = mh
		}
	}
	return o
}

// memberHealth is a server's state; not known before every checker has
// a first result.
func memberHealth(s api.ServerHealth) (lbaas.MemberHealth, bool) {
	mh := lbaas.MemberHealth{Up: s.Up}
	for _, c := range s.Checks {
		if c.LastResult == "" && s.Up {
			return mh, false
		}
		if !c.Up && mh.Reason == "" {
			mh.Reason = fmt.Sprintf("%s %s: %s", c.Kind, c.Target, c.LastReason)
		}
	}
	return mh, true
}
