package lbaas

import (
	"encoding/json"
	"strconv"
	"time"
)

// stamp is a time as Octavia writes it: UTC, seconds, no zone
// ("2017-02-28T00:41:44"); the zero time is null.
type stamp time.Time

func (t stamp) MarshalJSON() ([]byte, error) {
	if time.Time(t).IsZero() {
		return []byte("null"), nil
	}
	return json.Marshal(time.Time(t).UTC().Format("2006-01-02T15:04:05"))
}

func (t stamp) String() string {
	if time.Time(t).IsZero() {
		return ""
	}
	return time.Time(t).UTC().Format("2006-01-02T15:04:05")
}

// object is a resource as the API shows it.
type view = map[string]any

func nullable(s string) any {
	if s == "" {
		return nil
	}
	return s
}

func ids[T any](xs []T, id func(T) string) []view {
	out := []view{}
	for _, x := range xs {
		out = append(out, view{"id": id(x)})
	}
	return out
}

func tagsOf(t []string) []string {
	if t == nil {
		return []string{}
	}
	return t
}

func (c *common) view() view {
	return view{
		"id": c.ID, "name": c.Name, "description": c.Description, "project_id": c.ProjectID,
		"admin_state_up": c.AdminUp, "tags": tagsOf(c.Tags),
		"provisioning_status": c.ProvisioningStatus, "operating_status": c.OperatingStatus,
		"created_at": stamp(c.CreatedAt), "updated_at": stamp(c.UpdatedAt),
	}
}

func (lb *loadBalancer) view() view {
	v := lb.common.view()
	v["vip_address"] = lb.VIPAddress.String()
	v["vip_network_id"] = lb.VIPNetworkID
	v["vip_subnet_id"] = lb.VIPSubnetID
	v["vip_port_id"] = lb.VIPPortID
	v["vip_qos_policy_id"] = nil
	v["vip_vnic_type"] = "normal"
	v["vip_sg_ids"] = nil
	v["additional_vips"] = []view{}
	v["provider"] = lb.Provider
	v["flavor_id"] = nil
	v["availability_zone"] = nil
	v["listeners"] = ids(lb.Listeners, func(l *listener) string { return l.ID })
	v["pools"] = ids(lb.Pools, func(p *pool) string { return p.ID })
	return v
}

func (l *listener) view(lb *loadBalancer) view {
	v := l.common.view()
	v["protocol"] = l.Protocol
	v["protocol_port"] = l.ProtocolPort
	v["connection_limit"] = l.ConnectionLimit
	v["default_pool_id"] = nullable(l.DefaultPoolID)
	v["loadbalancers"] = []view{{"id": lb.ID}}
	v["l7policies"] = []view{}
	v["sni_container_refs"] = []string{}
	v["default_tls_container_ref"] = nil
	v["insert_headers"] = view{}
	v["timeout_client_data"] = l.TimeoutClientData
	v["timeout_member_connect"] = l.TimeoutMemberConnect
	v["timeout_member_data"] = l.TimeoutMemberData
	v["timeout_tcp_inspect"] = l.TimeoutTCPInspect
	v["allowed_cidrs"] = nil
	v["tls_ciphers"] = nil
	v["tls_versions"] = nil
	v["alpn_protocols"] = nil
	v["client_authentication"] = "NONE"
	v["client_ca_tls_container_ref"] = nil
	v["client_crl_container_ref"] = nil
	v["hsts_include_subdomains"] = false
	v["hsts_max_age"] = nil
	v["hsts_preload"] = false
	return v
}

func (p *pool) view(lb *loadBalancer) view {
	v := p.common.view()
	v["protocol"] = p.Protocol
	v["lb_algorithm"] = p.LBAlgorithm
	if sp := p.SessionPersistence; sp != nil {
		spv := view{"type": sp.Type, "cookie_name": nil}
		if sp.PersistenceTimeout != 0 {
			spv["persistence_timeout"] = sp.PersistenceTimeout
		}
		if sp.PersistenceGranularity != "" {
			spv["persistence_granularity"] = sp.PersistenceGranularity
		}
		v["session_persistence"] = spv
	} else {
		v["session_persistence"] = nil
	}
	v["loadbalancers"] = []view{{"id": lb.ID}}
	v["listeners"] = ids(lb.listenersOf(p.ID), func(l *listener) string { return l.ID })
	v["members"] = ids(p.Members, func(m *member) string { return m.ID })
	if p.HealthMonitor != nil {
		v["healthmonitor_id"] = p.HealthMonitor.ID
	} else {
		v["healthmonitor_id"] = nil
	}
	v["tls_enabled"] = false
	v["tls_container_ref"] = nil
	v["ca_tls_container_ref"] = nil
	v["crl_container_ref"] = nil
	v["tls_ciphers"] = nil
	v["tls_versions"] = nil
	v["alpn_protocols"] = nil
	return v
}

func (m *member) view() view {
	v := m.common.view()
	delete(v, "description")
	v["address"] = m.Address.String()
	v["protocol_port"] = m.ProtocolPort
	v["weight"] = m.Weight
	v["backup"] = m.Backup
	v["subnet_id"] = nullable(m.SubnetID)
	v["monitor_address"] = nil
	if m.MonitorAddress.IsValid() {
		v["monitor_address"] = m.MonitorAddress.String()
	}
	v["monitor_port"] = nil
	if m.MonitorPort != 0 {
		v["monitor_port"] = m.MonitorPort
	}
	v["vnic_type"] = "normal"
	return v
}

func (h *healthMonitor) view(p *pool) view {
	v := h.common.view()
	delete(v, "description")
	v["type"] = h.Type
	v["delay"] = h.Delay
	v["timeout"] = h.Timeout
	v["max_retries"] = h.MaxRetries
	v["max_retries_down"] = h.MaxRetriesDown
	v["http_method"] = nullable(h.HTTPMethod)
	v["url_path"] = nullable(h.URLPath)
	v["expected_codes"] = nullable(h.ExpectedCodes)
	v["http_version"] = nil
	if h.HTTPVersion != "" {
		f, _ := strconv.ParseFloat(h.HTTPVersion, 64)
		v["http_version"] = json.Number(strconv.FormatFloat(f, 'f', 1, 64))
	}
	v["domain_name"] = nullable(h.DomainName)
	v["pools"] = []view{{"id": p.ID}}
	return v
}

// statusTree is a load balancer's /status.
func (lb *loadBalancer) statusTree() view {
	poolTree := func(p *pool) view {
		pv := view{"id": p.ID, "name": p.Name, "provisioning_status": p.ProvisioningStatus,
			"operating_status": p.OperatingStatus, "healthmonitor": view{}}
		if h := p.HealthMonitor; h != nil {
			pv["healthmonitor"] = view{"id": h.ID, "name": h.Name, "type": h.Type,
				"provisioning_status": h.ProvisioningStatus}
		}
		ms := []view{}
		for _, m := range p.Members {
			ms = append(ms, view{"id": m.ID, "name": m.Name, "operating_status": m.OperatingStatus,
				"provisioning_status": m.ProvisioningStatus, "address": m.Address.String(),
				"protocol_port": m.ProtocolPort})
		}
		pv["members"] = ms
		return pv
	}
	ls := []view{}
	for _, l := range lb.Listeners {
		pools := []view{}
		if p := lb.pool(l.DefaultPoolID); p != nil {
			pools = append(pools, poolTree(p))
		}
		ls = append(ls, view{"id": l.ID, "name": l.Name, "operating_status": l.OperatingStatus,
			"provisioning_status": l.ProvisioningStatus, "pools": pools, "l7policies": []view{}})
	}
	ps := []view{}
	for _, p := range lb.Pools {
		ps = append(ps, poolTree(p))
	}
	return view{"id": lb.ID, "name": lb.Name, "operating_status": lb.OperatingStatus,
		"provisioning_status": lb.ProvisioningStatus, "listeners": ls, "pools": ps}
}

func statsView(st ListenerStats) view {
	return view{"active_connections": st.ActiveConnections, "bytes_in": st.BytesIn,
		"bytes_out": st.BytesOut, "request_errors": st.RequestErrors,
		"total_connections": st.TotalConnections}
}
