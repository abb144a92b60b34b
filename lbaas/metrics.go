package lbaas

// LBMetrics is what gvs-lbaas's metrics show of a load balancer: its
// statuses, its listeners' counters as last observed, and its members'
// operating status.
type LBMetrics struct {
	ID, Name, VIP                       string
	ProvisioningStatus, OperatingStatus string
	Listeners                           []ListenerMetrics
	Members                             []MemberMetrics
}

// ListenerMetrics is a listener and its counters (zero before the first
// observation).
type ListenerMetrics struct {
	ID, Protocol string
	Port         int
	Stats        ListenerStats
}

// MemberMetrics is a member and its operating status.
type MemberMetrics struct {
	ID, PoolID, Address string
	Port                int
	OperatingStatus     string
}

// Metrics returns every load balancer, in creation order.
func (s *Server) Metrics() []LBMetrics {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []LBMetrics
	for _, id := range s.order {
		lb := s.lbs[id]
		if lb == nil {
			continue
		}
		m := LBMetrics{ID: lb.ID, Name: lb.Name, VIP: lb.VIPAddress.String(),
			ProvisioningStatus: lb.ProvisioningStatus, OperatingStatus: lb.OperatingStatus}
		obs := s.observed[id]
		for _, l := range lb.Listeners {
			lm := ListenerMetrics{ID: l.ID, Protocol: l.Protocol, Port: l.ProtocolPort}
			if obs != nil {
				lm.Stats = obs.Listeners[l.ID]
			}
			m.Listeners = append(m.Listeners, lm)
		}
		for _, p := range lb.Pools {
			for _, mb := range p.Members {
				m.Members = append(m.Members, MemberMetrics{ID: mb.ID, PoolID: p.ID, Address: mb.Address.String(),
					Port: mb.ProtocolPort, OperatingStatus: mb.OperatingStatus})
			}
		}
		out = append(out, m)
	}
	return out
}
