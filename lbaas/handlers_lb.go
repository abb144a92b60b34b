package lbaas

import (
	"net/http"
	"strconv"
)

const (
	resLB       = "Load Balancer"
	resListener = "Listener"
	resPool     = "Pool"
	resMember   = "Member"
	resHM       = "Health Monitor"
)

// lookups; s.mu is held.

func (s *Server) findLB(id string) (*loadBalancer, *apiError) {
	if lb := s.lbs[id]; lb != nil {
		return lb, nil
	}
	return nil, notFound(resLB, id)
}

func (s *Server) findListener(id string) (*loadBalancer, *listener, *apiError) {
	for _, lbID := range s.order {
		lb := s.lbs[lbID]
		if l := lb.listener(id); l != nil {
			return lb, l, nil
		}
	}
	return nil, nil, notFound(resListener, id)
}

func (s *Server) findPool(id string) (*loadBalancer, *pool, *apiError) {
	for _, lbID := range s.order {
		lb := s.lbs[lbID]
		if p := lb.pool(id); p != nil {
			return lb, p, nil
		}
	}
	return nil, nil, notFound(resPool, id)
}

func (s *Server) findHM(id string) (*loadBalancer, *pool, *apiError) {
	for _, lbID := range s.order {
		lb := s.lbs[lbID]
		for _, p := range lb.Pools {
			if p.HealthMonitor != nil && p.HealthMonitor.ID == id {
				return lb, p, nil
			}
		}
	}
	return nil, nil, notFound(resHM, id)
}

// invalidState is Octavia's answer to a change of a load balancer itself
// (update, delete, failover) in a state that does not allow it.
func invalidState(lb *loadBalancer) *apiError {
	return errorf(http.StatusConflict, "Invalid state %s of loadbalancer resource %s", lb.ProvisioningStatus, lb.ID)
}

// mutable refuses changes under a load balancer that is not ACTIVE.
func mutable(lb *loadBalancer) *apiError {
	if lb.ProvisioningStatus != statusActive {
		return immutable(resLB, lb.ID)
	}
	return nil
}

// readCommon reads name, description, admin_state_up, tags and
// project_id of a new resource.
func (s *Server) readCommon(o *object, withDescription bool) common {
	c := common{ID: newID(), AdminUp: true, ProjectID: s.cfg.ProjectID,
		ProvisioningStatus: statusPendingCreate, OperatingStatus: opOffline, CreatedAt: now()}
	c.Name, _ = o.str("name", false)
	if withDescription {
		c.Description, _ = o.str("description", false)
	}
	if b, ok := o.boolean("admin_state_up"); ok {
		c.AdminUp = b
	}
	if p, ok := o.str("project_id", false); ok && p != "" {
		c.ProjectID = p
	}
	c.Tags, _ = o.tags("tags")
	return c
}

// updateCommon applies name, description, admin_state_up and tags of an
// update to c.
func updateCommon(o *object, c *common, withDescription bool) {
	if o.null("name") {
		c.Name = ""
	} else if v, ok := o.str("name", false); ok {
		c.Name = v
	}
	if withDescription {
		if o.null("description") {
			c.Description = ""
		} else if v, ok := o.str("description", false); ok {
			c.Description = v
		}
	}
	if b, ok := o.boolean("admin_state_up"); ok {
		c.AdminUp = b
	}
	if t, ok := o.tags("tags"); ok {
		c.Tags = t
	}
	c.UpdatedAt = now()
}

var lbFields = []string{"name", "description", "admin_state_up", "project_id", "tags",
	"vip_address", "vip_subnet_id", "vip_network_id", "vip_port_id", "vip_qos_policy_id",
	"provider", "flavor_id", "availability_zone", "listeners", "pools", "additional_vips",
	"vip_sg_ids", "vip_vnic_type", "tenant_id"}

func (s *Server) createLoadBalancer(w http.ResponseWriter, r *http.Request) *apiError {
	o, e := readObject(r, "loadbalancer", lbFields...)
	if e != nil {
		return e
	}
	c := s.readCommon(o, true)
	vipAddr, haveAddr := o.addr("vip_address", false)
	subnetID, haveSubnet := o.uuid("vip_subnet_id", false)
	networkID, haveNetwork := o.uuid("vip_network_id", false)
	_, havePort := o.uuid("vip_port_id", false)
	provider, _ := o.str("provider", false)
	o.emptyOrUnsupported(s, "vip_qos_policy_id", "flavor_id", "availability_zone",
		"listeners", "pools", "additional_vips", "vip_sg_ids")
	if o.err != nil {
		return o.err
	}
	if provider != "" && provider != s.cfg.Provider {
		return errorf(http.StatusBadRequest, "Provider '%s' is not enabled.", provider)
	}
	if havePort {
		return s.unsupported("vip_port_id (there is no port service here: give vip_subnet_id or vip_network_id)")
	}
	if !haveSubnet && !haveNetwork {
		return validation("VIP must contain one of: vip_port_id, vip_network_id, vip_subnet_id.")
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	var net *Network
	var sub *Subnet
	switch {
	case haveSubnet:
		net, sub = s.cfg.subnet(subnetID)
		if sub == nil {
			return validation("Subnet %s not found.", subnetID)
		}
		if haveNetwork && net.ID != networkID {
			return validation("Subnet %s is not on network %s.", subnetID, networkID)
		}
	default:
		net = s.cfg.network(networkID)
		if net == nil {
			return validation("Network %s not found.", networkID)
		}
		sub = &net.Subnets[0]
		if haveAddr {
			sub = nil
			for i := range net.Subnets {
				if net.Subnets[i].CIDR.Contains(vipAddr) {
					sub = &net.Subnets[i]
					break
				}
			}
			if sub == nil {
				return validation("Supplied network does not contain a subnet for VIP address specified.")
			}
		}
	}
	used := s.vipsInUse(sub.ID)
	if haveAddr {
		if !sub.usable(vipAddr) {
			return validation("IP address %s is not a valid IP for the specified subnet.", vipAddr)
		}
		if used[vipAddr] {
			return errorf(http.StatusConflict, "IP address %s already allocated in subnet %s.", vipAddr, sub.ID)
		}
	} else {
		a, ok := sub.allocate(used)
		if !ok {
			return errorf(http.StatusConflict, "No more IP addresses available on network %s.", net.ID)
		}
		vipAddr = a
	}
	lb := &loadBalancer{common: c, VIPAddress: vipAddr, VIPNetworkID: net.ID, VIPSubnetID: sub.ID,
		VIPPortID: newID(), Provider: s.cfg.Provider}
	if e := s.commit(lb); e != nil {
		return e
	}
	s.log.Info("lbaas: creating load balancer", "id", lb.ID, "vip", vipAddr)
	writeJSON(w, http.StatusCreated, view{"loadbalancer": lb.view()})
	return nil
}

func (s *Server) listLoadBalancers(w http.ResponseWriter, r *http.Request) *apiError {
	s.mu.Lock()
	var items []view
	for _, id := range s.order {
		items = append(items, s.lbs[id].view())
	}
	s.mu.Unlock()
	return list(w, r, "loadbalancers", items)
}

func (s *Server) showLoadBalancer(w http.ResponseWriter, r *http.Request) *apiError {
	s.mu.Lock()
	defer s.mu.Unlock()
	lb, e := s.findLB(r.PathValue("id"))
	if e != nil {
		return e
	}
	writeJSON(w, http.StatusOK, view{"loadbalancer": selectFields(r, lb.view())})
	return nil
}

// selectFields applies ?fields= to one resource.
func selectFields(r *http.Request, v view) view {
	fs := fieldList(r.URL.Query())
	if len(fs) == 0 {
		return v
	}
	sel := view{}
	for _, f := range fs {
		if x, ok := v[f]; ok {
			sel[f] = x
		}
	}
	return sel
}

func (s *Server) updateLoadBalancer(w http.ResponseWriter, r *http.Request) *apiError {
	o, e := readObject(r, "loadbalancer", "name", "description", "admin_state_up", "tags", "vip_qos_policy_id", "vip_sg_ids")
	if e != nil {
		return e
	}
	o.emptyOrUnsupported(s, "vip_qos_policy_id", "vip_sg_ids")
	s.mu.Lock()
	defer s.mu.Unlock()
	lb, e := s.findLB(r.PathValue("id"))
	if e != nil {
		return e
	}
	c := lb.clone()
	updateCommon(o, &c.common, true)
	if o.err != nil {
		return o.err
	}
	if lb.ProvisioningStatus != statusActive {
		return invalidState(lb)
	}
	c.ProvisioningStatus = statusPendingUpdate
	if e := s.commit(c); e != nil {
		return e
	}
	writeJSON(w, http.StatusOK, view{"loadbalancer": c.view()})
	return nil
}

func (s *Server) deleteLoadBalancer(w http.ResponseWriter, r *http.Request) *apiError {
	cascade := false
	if v := r.URL.Query().Get("cascade"); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return invalidInput("cascade", v, "Value should be a boolean")
		}
		cascade = b
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	lb, e := s.findLB(r.PathValue("id"))
	if e != nil {
		return e
	}
	if (len(lb.Listeners) > 0 || len(lb.Pools) > 0) && !cascade {
		return validation("Cannot delete Load Balancer %s - it has children", lb.ID)
	}
	if lb.ProvisioningStatus != statusActive && lb.ProvisioningStatus != statusError {
		return invalidState(lb)
	}
	c := lb.clone()
	c.each(func(x *common) { x.ProvisioningStatus = statusPendingDelete })
	c.UpdatedAt = now()
	if e := s.commit(c); e != nil {
		return e
	}
	s.log.Info("lbaas: deleting load balancer", "id", lb.ID, "cascade", cascade)
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) failoverLoadBalancer(w http.ResponseWriter, r *http.Request) *apiError {
	s.mu.Lock()
	defer s.mu.Unlock()
	lb, e := s.findLB(r.PathValue("id"))
	if e != nil {
		return e
	}
	if lb.ProvisioningStatus != statusActive && lb.ProvisioningStatus != statusError {
		return invalidState(lb)
	}
	c := lb.clone()
	c.ProvisioningStatus = statusPendingUpdate
	c.Failover = true
	c.UpdatedAt = now()
	if e := s.commit(c); e != nil {
		return e
	}
	s.log.Info("lbaas: failing over load balancer", "id", lb.ID)
	w.WriteHeader(http.StatusAccepted)
	return nil
}

func (s *Server) loadBalancerStats(w http.ResponseWriter, r *http.Request) *apiError {
	s.mu.Lock()
	defer s.mu.Unlock()
	lb, e := s.findLB(r.PathValue("id"))
	if e != nil {
		return e
	}
	var sum ListenerStats
	if obs := s.observed[lb.ID]; obs != nil {
		for _, l := range lb.Listeners {
			st := obs.Listeners[l.ID]
			sum.ActiveConnections += st.ActiveConnections
			sum.BytesIn += st.BytesIn
			sum.BytesOut += st.BytesOut
			sum.RequestErrors += st.RequestErrors
			sum.TotalConnections += st.TotalConnections
		}
	}
	writeJSON(w, http.StatusOK, view{"stats": statsView(sum)})
	return nil
}

func (s *Server) loadBalancerStatus(w http.ResponseWriter, r *http.Request) *apiError {
	s.mu.Lock()
	defer s.mu.Unlock()
	lb, e := s.findLB(r.PathValue("id"))
	if e != nil {
		return e
	}
	writeJSON(w, http.StatusOK, view{"statuses": view{"loadbalancer": lb.statusTree()}})
	return nil
}
