package lbaas

import (
	"encoding/json"
	"net/http"
	"net/netip"
	"slices"
	"strconv"
)

var (
	lbAlgorithms      = []string{"ROUND_ROBIN", "LEAST_CONNECTIONS", "SOURCE_IP", "SOURCE_IP_PORT"}
	persistenceTypes  = []string{"SOURCE_IP", "HTTP_COOKIE", "APP_COOKIE"}
	poolFields        = []string{"name", "description", "admin_state_up", "project_id", "tenant_id", "tags", "protocol", "lb_algorithm", "loadbalancer_id", "listener_id", "session_persistence", "members", "healthmonitor", "tls_enabled", "tls_container_ref", "ca_tls_container_ref", "crl_container_ref", "tls_ciphers", "tls_versions", "alpn_protocols"}
	poolTLSFields     = []string{"tls_enabled", "tls_container_ref", "ca_tls_container_ref", "crl_container_ref", "tls_ciphers", "tls_versions", "alpn_protocols"}
	persistenceFields = []string{"type", "cookie_name", "persistence_timeout", "persistence_granularity"}
)

// readPersistence reads session_persistence for a pool of protocol; a
// null gives nil.
func (s *Server) readPersistence(o *object) *SessionPersistence {
	raw, ok := o.fields["session_persistence"]
	if !ok || isNull(raw) || o.err != nil {
		return nil
	}
	so, e := parseObject("session_persistence", raw, persistenceFields)
	if e != nil {
		o.fail(e)
		return nil
	}
	sp := &SessionPersistence{}
	sp.Type, _ = so.enum("type", true, persistenceTypes...)
	if cookie, ok := so.str("cookie_name", false); ok && cookie != "" && so.err == nil {
		so.fail(validation("Cookie names are not supported for %s pools.", "TCP/UDP/SCTP"))
	}
	if n, ok := so.integer("persistence_timeout", false, 0, 1<<31-1); ok {
		sp.PersistenceTimeout = n
	}
	if g, ok := so.addr("persistence_granularity", false); ok {
		if !g.Is4() || !isNetmask(g.As4()) {
			so.fail(invalidInput("persistence_granularity", g, "Value should be a netmask"))
		} else {
			sp.PersistenceGranularity = g.String()
		}
	}
	if so.err != nil {
		o.fail(so.err)
		return nil
	}
	return sp
}

func isNetmask(b [4]byte) bool {
	n := uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
	return n == 0 || (^n)&(^n+1) == 0
}

func (s *Server) checkPersistence(sp *SessionPersistence, protocol string) *apiError {
	if sp != nil && sp.Type != "SOURCE_IP" {
		return validation("Session persistence of type %s is not supported for %s protocol pools.", sp.Type, protocol)
	}
	return nil
}

func (s *Server) createPool(w http.ResponseWriter, r *http.Request) *apiError {
	o, e := readObject(r, "pool", poolFields...)
	if e != nil {
		return e
	}
	p := &pool{common: s.readCommon(o, true)}
	p.LBAlgorithm, _ = o.enum("lb_algorithm", true, lbAlgorithms...)
	p.Protocol, _ = o.enum("protocol", true, poolProtocols...)
	lbID, haveLB := o.uuid("loadbalancer_id", false)
	listenerID, haveListener := o.uuid("listener_id", false)
	p.SessionPersistence = s.readPersistence(o)
	if o.err != nil {
		return o.err
	}
	if !slices.Contains(l4Protocols, p.Protocol) {
		return s.unsupported("%s pools (an L4 LVS provider: TCP, UDP and SCTP only)", p.Protocol)
	}
	o.emptyOrUnsupported(s, poolTLSFields...)
	if o.err != nil {
		return o.err
	}
	if e := s.checkPersistence(p.SessionPersistence, p.Protocol); e != nil {
		return e
	}
	if !haveLB && !haveListener {
		return validation("Must provide at least one of: loadbalancer_id, listener_id")
	}
	// Members and a health monitor created with the pool.
	if raw, ok := o.fields["members"]; ok && !isNull(raw) {
		var objs []json.RawMessage
		if err := json.Unmarshal(raw, &objs); err != nil {
			return invalidInput("members", shown(raw), "Value should be a list")
		}
		for _, m := range objs {
			mo, e := parseObject("members", m, memberFields)
			if e != nil {
				return e
			}
			mm := s.readMember(mo)
			if mo.err != nil {
				return mo.err
			}
			if e := dupMember(p, mm, ""); e != nil {
				return e
			}
			p.Members = append(p.Members, mm)
		}
	}
	if raw, ok := o.fields["healthmonitor"]; ok && !isNull(raw) {
		ho, e := parseObject("healthmonitor", raw, hmFields)
		if e != nil {
			return e
		}
		h := s.readHM(ho, p.Protocol)
		if ho.err != nil {
			return ho.err
		}
		p.HealthMonitor = h
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	var lb *loadBalancer
	if haveListener {
		var l *listener
		lb, l, e = s.findListener(listenerID)
		if e != nil {
			return e
		}
		if haveLB && lbID != lb.ID {
			return validation("Listener %s is not on load balancer %s.", listenerID, lbID)
		}
		if l.DefaultPoolID != "" {
			return errorf(http.StatusConflict, "This listener already has a default pool")
		}
		if l.Protocol != p.Protocol {
			return validation("The pool protocol '%s' is invalid while the listener protocol is '%s'.", p.Protocol, l.Protocol)
		}
	} else if lb, e = s.findLB(lbID); e != nil {
		return e
	}
	for _, m := range p.Members {
		if e := s.checkSubnet(m.SubnetID); e != nil {
			return e
		}
	}
	if e := mutable(lb); e != nil {
		return e
	}
	c := lb.clone()
	c.ProvisioningStatus = statusPendingUpdate
	c.Pools = append(c.Pools, p)
	if haveListener {
		cl := c.listener(listenerID)
		cl.DefaultPoolID = p.ID
		cl.ProvisioningStatus = statusPendingUpdate
	}
	if e := s.commit(c); e != nil {
		return e
	}
	writeJSON(w, http.StatusCreated, view{"pool": p.view(c)})
	return nil
}

func (s *Server) listPools(w http.ResponseWriter, r *http.Request) *apiError {
	s.mu.Lock()
	var items []view
	for _, id := range s.order {
		lb := s.lbs[id]
		for _, p := range lb.Pools {
			items = append(items, p.view(lb))
		}
	}
	s.mu.Unlock()
	return list(w, r, "pools", items)
}

func (s *Server) showPool(w http.ResponseWriter, r *http.Request) *apiError {
	s.mu.Lock()
	defer s.mu.Unlock()
	lb, p, e := s.findPool(r.PathValue("id"))
	if e != nil {
		return e
	}
	writeJSON(w, http.StatusOK, view{"pool": selectFields(r, p.view(lb))})
	return nil
}

func (s *Server) updatePool(w http.ResponseWriter, r *http.Request) *apiError {
	o, e := readObject(r, "pool", "name", "description", "admin_state_up", "tags", "lb_algorithm",
		"session_persistence", "tls_enabled", "tls_container_ref", "ca_tls_container_ref",
		"crl_container_ref", "tls_ciphers", "tls_versions", "alpn_protocols")
	if e != nil {
		return e
	}
	o.emptyOrUnsupported(s, poolTLSFields...)
	s.mu.Lock()
	defer s.mu.Unlock()
	lb, p, e := s.findPool(r.PathValue("id"))
	if e != nil {
		return e
	}
	c := lb.clone()
	cp := c.pool(p.ID)
	updateCommon(o, &cp.common, true)
	if a, ok := o.enum("lb_algorithm", false, lbAlgorithms...); ok {
		cp.LBAlgorithm = a
	}
	if o.null("session_persistence") {
		cp.SessionPersistence = nil
	} else if o.has("session_persistence") {
		if sp := s.readPersistence(o); sp != nil {
			cp.SessionPersistence = sp
		}
	}
	if o.err != nil {
		return o.err
	}
	if e := s.checkPersistence(cp.SessionPersistence, cp.Protocol); e != nil {
		return e
	}
	if e := mutable(lb); e != nil {
		return e
	}
	c.ProvisioningStatus = statusPendingUpdate
	cp.ProvisioningStatus = statusPendingUpdate
	if e := s.commit(c); e != nil {
		return e
	}
	writeJSON(w, http.StatusOK, view{"pool": cp.view(c)})
	return nil
}

func (s *Server) deletePool(w http.ResponseWriter, r *http.Request) *apiError {
	s.mu.Lock()
	defer s.mu.Unlock()
	lb, p, e := s.findPool(r.PathValue("id"))
	if e != nil {
		return e
	}
	if e := mutable(lb); e != nil {
		return e
	}
	c := lb.clone()
	c.ProvisioningStatus = statusPendingUpdate
	cp := c.pool(p.ID)
	cp.ProvisioningStatus = statusPendingDelete
	for _, m := range cp.Members {
		m.ProvisioningStatus = statusPendingDelete
	}
	if cp.HealthMonitor != nil {
		cp.HealthMonitor.ProvisioningStatus = statusPendingDelete
	}
	if e := s.commit(c); e != nil {
		return e
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// Members.

var memberFields = []string{"name", "admin_state_up", "project_id", "tenant_id", "tags", "address",
	"protocol_port", "weight", "backup", "subnet_id", "monitor_address", "monitor_port",
	"vnic_type", "request_sriov"}

// readMember reads a new member.
func (s *Server) readMember(o *object) *member {
	m := &member{common: s.readCommon(o, false), Weight: 1}
	m.Address, _ = o.addr("address", true)
	m.ProtocolPort, _ = o.integer("protocol_port", true, 1, 65535)
	if n, ok := o.integer("weight", false, 0, 256); ok {
		m.Weight = n
	}
	m.Backup, _ = o.boolean("backup")
	m.SubnetID, _ = o.uuid("subnet_id", false)
	m.MonitorAddress, _ = o.addr("monitor_address", false)
	m.MonitorPort, _ = o.integer("monitor_port", false, 1, 65535)
	if v, ok := o.enum("vnic_type", false, "normal", "direct"); ok && v != "normal" {
		o.fail(s.unsupported("vnic_type %s", v))
	}
	o.emptyOrUnsupported(s, "request_sriov")
	return m
}

// dupMember refuses a second member on address:port in p (except the
// member skip).
func dupMember(p *pool, m *member, skip string) *apiError {
	for _, x := range p.Members {
		if x.ID != skip && x.Address == m.Address && x.ProtocolPort == m.ProtocolPort &&
			x.ProvisioningStatus != statusPendingDelete {
			return errorf(http.StatusConflict, "Another member on this pool is already using ip %s on protocol_port %d", m.Address, m.ProtocolPort)
		}
	}
	return nil
}

func (s *Server) checkSubnet(id string) *apiError {
	if id == "" {
		return nil
	}
	if _, sub := s.cfg.subnet(id); sub == nil {
		return notFound("Subnet", id)
	}
	return nil
}

// memberChange checks that members of p (on lb) may change now.
func memberChange(lb *loadBalancer, p *pool) *apiError {
	if pending(p.ProvisioningStatus) {
		return immutable(resPool, p.ID)
	}
	return mutable(lb)
}

func (s *Server) createMember(w http.ResponseWriter, r *http.Request) *apiError {
	o, e := readObject(r, "member", memberFields...)
	if e != nil {
		return e
	}
	m := s.readMember(o)
	if o.err != nil {
		return o.err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	lb, p, e := s.findPool(r.PathValue("id"))
	if e != nil {
		return e
	}
	if e := s.checkSubnet(m.SubnetID); e != nil {
		return e
	}
	if e := dupMember(p, m, ""); e != nil {
		return e
	}
	if e := memberChange(lb, p); e != nil {
		return e
	}
	c := lb.clone()
	c.ProvisioningStatus = statusPendingUpdate
	cp := c.pool(p.ID)
	cp.ProvisioningStatus = statusPendingUpdate
	cp.Members = append(cp.Members, m)
	if e := s.commit(c); e != nil {
		return e
	}
	writeJSON(w, http.StatusCreated, view{"member": m.view()})
	return nil
}

func (s *Server) listMembers(w http.ResponseWriter, r *http.Request) *apiError {
	s.mu.Lock()
	_, p, e := s.findPool(r.PathValue("id"))
	if e != nil {
		s.mu.Unlock()
		return e
	}
	var items []view
	for _, m := range p.Members {
		items = append(items, m.view())
	}
	s.mu.Unlock()
	return list(w, r, "members", items)
}

func (s *Server) findMember(r *http.Request) (*loadBalancer, *pool, *member, *apiError) {
	lb, p, e := s.findPool(r.PathValue("id"))
	if e != nil {
		return nil, nil, nil, e
	}
	m := p.member(r.PathValue("mid"))
	if m == nil {
		return nil, nil, nil, notFound(resMember, r.PathValue("mid"))
	}
	return lb, p, m, nil
}

func (s *Server) showMember(w http.ResponseWriter, r *http.Request) *apiError {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, _, m, e := s.findMember(r)
	if e != nil {
		return e
	}
	writeJSON(w, http.StatusOK, view{"member": selectFields(r, m.view())})
	return nil
}

// updateMemberFields applies an update's attributes to m.
func (s *Server) updateMemberFields(o *object, m *member) {
	updateCommon(o, &m.common, false)
	if n, ok := o.integer("weight", false, 0, 256); ok {
		m.Weight = n
	}
	if b, ok := o.boolean("backup"); ok {
		m.Backup = b
	}
	if o.null("monitor_address") {
		m.MonitorAddress = netip.Addr{}
	} else if a, ok := o.addr("monitor_address", false); ok {
		m.MonitorAddress = a
	}
	if o.null("monitor_port") {
		m.MonitorPort = 0
	} else if n, ok := o.integer("monitor_port", false, 1, 65535); ok {
		m.MonitorPort = n
	}
}

func (s *Server) updateMember(w http.ResponseWriter, r *http.Request) *apiError {
	o, e := readObject(r, "member", "name", "admin_state_up", "tags", "weight", "backup", "monitor_address", "monitor_port")
	if e != nil {
		return e
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	lb, p, m, e := s.findMember(r)
	if e != nil {
		return e
	}
	c := lb.clone()
	cp := c.pool(p.ID)
	cm := cp.member(m.ID)
	s.updateMemberFields(o, cm)
	if o.err != nil {
		return o.err
	}
	if e := memberChange(lb, p); e != nil {
		return e
	}
	c.ProvisioningStatus = statusPendingUpdate
	cp.ProvisioningStatus = statusPendingUpdate
	cm.ProvisioningStatus = statusPendingUpdate
	if e := s.commit(c); e != nil {
		return e
	}
	writeJSON(w, http.StatusOK, view{"member": cm.view()})
	return nil
}

func (s *Server) deleteMember(w http.ResponseWriter, r *http.Request) *apiError {
	s.mu.Lock()
	defer s.mu.Unlock()
	lb, p, m, e := s.findMember(r)
	if e != nil {
		return e
	}
	if e := memberChange(lb, p); e != nil {
		return e
	}
	c := lb.clone()
	c.ProvisioningStatus = statusPendingUpdate
	cp := c.pool(p.ID)
	cp.ProvisioningStatus = statusPendingUpdate
	cp.member(m.ID).ProvisioningStatus = statusPendingDelete
	if e := s.commit(c); e != nil {
		return e
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// batchMembers is PUT /pools/{id}/members: the pool's members become
// the list given (matched by address and protocol_port): new ones are
// created, the others updated, and those not listed deleted (kept with
// ?additive_only=true).
func (s *Server) batchMembers(w http.ResponseWriter, r *http.Request) *apiError {
	additive := false
	if v := r.URL.Query().Get("additive_only"); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return invalidInput("additive_only", v, "Value should be a boolean")
		}
		additive = b
	}
	var env struct {
		Members *[]json.RawMessage `json:"members"`
	}
	body := http.MaxBytesReader(w, r.Body, 4<<20)
	if err := json.NewDecoder(body).Decode(&env); err != nil {
		return errorf(http.StatusBadRequest, "The request body is not valid JSON: %v", err)
	}
	if env.Members == nil {
		return invalidInput("members", "None", "Mandatory field missing.")
	}
	var given []*member
	var objs []*object
	seen := map[string]bool{}
	for _, raw := range *env.Members {
		mo, e := parseObject("members", raw, memberFields)
		if e != nil {
			return e
		}
		m := s.readMember(mo)
		if mo.err != nil {
			return mo.err
		}
		key := m.Address.String() + "/" + strconv.Itoa(m.ProtocolPort)
		if seen[key] {
			return validation("Member must be updated only once in the same request.")
		}
		seen[key] = true
		given = append(given, m)
		objs = append(objs, mo)
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	lb, p, e := s.findPool(r.PathValue("id"))
	if e != nil {
		return e
	}
	for _, m := range given {
		if e := s.checkSubnet(m.SubnetID); e != nil {
			return e
		}
	}
	if e := memberChange(lb, p); e != nil {
		return e
	}
	c := lb.clone()
	cp := c.pool(p.ID)
	kept := map[string]bool{}
	for i, m := range given {
		idx := slices.IndexFunc(cp.Members, func(x *member) bool {
			return x.Address == m.Address && x.ProtocolPort == m.ProtocolPort
		})
		if idx < 0 {
			cp.Members = append(cp.Members, m)
			kept[m.ID] = true
			continue
		}
		cm := cp.Members[idx]
		kept[cm.ID] = true
		o := objs[i]
		o.err = nil
		s.updateMemberFields(o, cm)
		if o.has("subnet_id") {
			cm.SubnetID = m.SubnetID
		}
		cm.ProvisioningStatus = statusPendingUpdate
	}
	if !additive {
		for _, m := range cp.Members {
			if !kept[m.ID] {
				m.ProvisioningStatus = statusPendingDelete
			}
		}
	}
	c.ProvisioningStatus = statusPendingUpdate
	cp.ProvisioningStatus = statusPendingUpdate
	if e := s.commit(c); e != nil {
		return e
	}
	w.WriteHeader(http.StatusAccepted)
	return nil
}
