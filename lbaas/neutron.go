package lbaas

import (
	"net/http"
)

// The openstack CLI resolves --vip-subnet-id and --vip-network-id (and
// gophercloud's users may) through Neutron, at the same endpoint when
// there is no Keystone catalog (--os-endpoint): a read-only view of the
// config's networks and subnets answers it, in Neutron's v2.0 shapes.

func (s *Server) neutronRoutes(mux *http.ServeMux) {
	mux.HandleFunc("GET /v2.0/subnets", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, 200, map[string]any{"subnets": s.neutronSubnets(r, "")})
	})
	mux.HandleFunc("GET /v2.0/subnets/{id}", func(w http.ResponseWriter, r *http.Request) {
		if l := s.neutronSubnets(r, r.PathValue("id")); len(l) == 1 {
			writeJSON(w, 200, map[string]any{"subnet": l[0]})
			return
		}
		writeError(w, errorf(http.StatusNotFound, "Subnet %s could not be found.", r.PathValue("id")))
	})
	mux.HandleFunc("GET /v2.0/networks", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, 200, map[string]any{"networks": s.neutronNetworks(r, "")})
	})
	mux.HandleFunc("GET /v2.0/networks/{id}", func(w http.ResponseWriter, r *http.Request) {
		if l := s.neutronNetworks(r, r.PathValue("id")); len(l) == 1 {
			writeJSON(w, 200, map[string]any{"network": l[0]})
			return
		}
		writeError(w, errorf(http.StatusNotFound, "Network %s could not be found.", r.PathValue("id")))
	})
}

// queryHas says whether v passes the query's filter on key (absent: any).
func queryHas(r *http.Request, key, v string) bool {
	want, ok := r.URL.Query()[key]
	if !ok {
		return true
	}
	for _, w := range want {
		if w == v {
			return true
		}
	}
	return false
}

func (s *Server) neutronSubnets(r *http.Request, id string) []map[string]any {
	out := []map[string]any{}
	for _, n := range s.cfg.Networks {
		for _, sn := range n.Subnets {
			if id != "" && sn.ID != id || !queryHas(r, "id", sn.ID) || !queryHas(r, "name", sn.Name) || !queryHas(r, "network_id", n.ID) {
				continue
			}
			pools := []map[string]string{}
			for _, p := range sn.AllocationPools {
				pools = append(pools, map[string]string{"start": p.Start.String(), "end": p.End.String()})
			}
			version := 4
			if sn.CIDR.Addr().Is6() {
				version = 6
			}
			var gw any
			if sn.Gateway.IsValid() {
				gw = sn.Gateway.String()
			}
			out = append(out, map[string]any{"id": sn.ID, "name": sn.Name, "network_id": n.ID, "cidr": sn.CIDR.String(),
				"gateway_ip": gw, "ip_version": version, "allocation_pools": pools, "enable_dhcp": false,
				"project_id": s.cfg.ProjectID, "tenant_id": s.cfg.ProjectID})
		}
	}
	return out
}

func (s *Server) neutronNetworks(r *http.Request, id string) []map[string]any {
	out := []map[string]any{}
	for _, n := range s.cfg.Networks {
		if id != "" && n.ID != id || !queryHas(r, "id", n.ID) || !queryHas(r, "name", n.Name) {
			continue
		}
		var subnets []string
		for _, sn := range n.Subnets {
			subnets = append(subnets, sn.ID)
		}
		out = append(out, map[string]any{"id": n.ID, "name": n.Name, "subnets": subnets, "status": "ACTIVE",
			"admin_state_up": true, "project_id": s.cfg.ProjectID, "tenant_id": s.cfg.ProjectID})
	}
	return out
}
