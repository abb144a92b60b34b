package lbaas

import (
	"net/http"
	"slices"
)

// Octavia's protocols; this provider runs the L4 ones.
var (
	listenerProtocols = []string{"HTTP", "HTTPS", "TCP", "TERMINATED_HTTPS", "UDP", "SCTP", "PROMETHEUS"}
	poolProtocols     = []string{"HTTP", "HTTPS", "PROXY", "PROXYV2", "TCP", "UDP", "SCTP"}
	l4Protocols       = []string{"TCP", "UDP", "SCTP"}
)

const maxTimeout = 24 * 60 * 60 * 1000 // Octavia's MAX_TIMEOUT (ms)

var listenerFields = []string{"name", "description", "admin_state_up", "project_id", "tags", "tenant_id",
	"protocol", "protocol_port", "loadbalancer_id", "connection_limit", "default_pool_id", "default_pool",
	"default_tls_container_ref", "sni_container_refs", "l7policies", "insert_headers",
	"timeout_client_data", "timeout_member_connect", "timeout_member_data", "timeout_tcp_inspect",
	"allowed_cidrs", "tls_ciphers", "tls_versions", "alpn_protocols", "client_authentication",
	"client_ca_tls_container_ref", "client_crl_container_ref", "hsts_include_subdomains",
	"hsts_max_age", "hsts_preload"}

// listener attributes only an L7/TLS provider has use for
var listenerL7Fields = []string{"default_pool", "default_tls_container_ref", "sni_container_refs", "l7policies",
	"insert_headers", "allowed_cidrs", "tls_ciphers", "tls_versions", "alpn_protocols",
	"client_ca_tls_container_ref", "client_crl_container_ref", "hsts_include_subdomains",
	"hsts_max_age", "hsts_preload"}

func (s *Server) readTimeouts(o *object, l *listener) {
	for _, t := range []struct {
		name string
		v    *int
	}{{"timeout_client_data", &l.TimeoutClientData}, {"timeout_member_connect", &l.TimeoutMemberConnect},
		{"timeout_member_data", &l.TimeoutMemberData}, {"timeout_tcp_inspect", &l.TimeoutTCPInspect}} {
		if n, ok := o.integer(t.name, false, 0, maxTimeout); ok {
			*t.v = n
		}
	}
}

// poolForListener checks that pool id of lb can be the default pool of
// a listener of protocol.
func poolForListener(lb *loadBalancer, id, protocol string) *apiError {
	p := lb.pool(id)
	if p == nil {
		return notFound(resPool, id)
	}
	if p.Protocol != protocol {
		return validation("The pool protocol '%s' is invalid while the listener protocol is '%s'.", p.Protocol, protocol)
	}
	return nil
}

func (s *Server) createListener(w http.ResponseWriter, r *http.Request) *apiError {
	o, e := readObject(r, "listener", listenerFields...)
	if e != nil {
		return e
	}
	c := s.readCommon(o, true)
	l := &listener{common: c, ConnectionLimit: -1, TimeoutClientData: 50000,
		TimeoutMemberConnect: 5000, TimeoutMemberData: 50000}
	l.Protocol, _ = o.enum("protocol", true, listenerProtocols...)
	l.ProtocolPort, _ = o.integer("protocol_port", true, 1, 65535)
	lbID, _ := o.uuid("loadbalancer_id", true)
	if n, ok := o.integer("connection_limit", false, -1, 1<<31-1); ok {
		l.ConnectionLimit = n
	}
	l.DefaultPoolID, _ = o.uuid("default_pool_id", false)
	s.readTimeouts(o, l)
	if ca, ok := o.enum("client_authentication", false, "NONE", "OPTIONAL", "MANDATORY"); ok && ca != "NONE" {
		o.fail(s.unsupported("client_authentication %s (an L4 LVS provider)", ca))
	}
	if o.err != nil {
		return o.err
	}
	if !slices.Contains(l4Protocols, l.Protocol) {
		return s.unsupported("%s listeners (an L4 LVS provider: TCP, UDP and SCTP only)", l.Protocol)
	}
	o.emptyOrUnsupported(s, listenerL7Fields...)
	if o.err != nil {
		return o.err
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	lb, e := s.findLB(lbID)
	if e != nil {
		return e
	}
	if l.DefaultPoolID != "" {
		if e := poolForListener(lb, l.DefaultPoolID, l.Protocol); e != nil {
			return e
		}
	}
	for _, x := range lb.Listeners {
		if x.Protocol == l.Protocol && x.ProtocolPort == l.ProtocolPort {
			return errorf(http.StatusConflict, "Another Listener on this Load Balancer is already using protocol %s and protocol_port %d", l.Protocol, l.ProtocolPort)
		}
	}
	if e := mutable(lb); e != nil {
		return e
	}
	c2 := lb.clone()
	c2.ProvisioningStatus = statusPendingUpdate
	c2.Listeners = append(c2.Listeners, l)
	if e := s.commit(c2); e != nil {
		return e
	}
	writeJSON(w, http.StatusCreated, view{"listener": l.view(c2)})
	return nil
}

func (s *Server) listListeners(w http.ResponseWriter, r *http.Request) *apiError {
	s.mu.Lock()
	var items []view
	for _, id := range s.order {
		lb := s.lbs[id]
		for _, l := range lb.Listeners {
			items = append(items, l.view(lb))
		}
	}
	s.mu.Unlock()
	return list(w, r, "listeners", items)
}

func (s *Server) showListener(w http.ResponseWriter, r *http.Request) *apiError {
	s.mu.Lock()
	defer s.mu.Unlock()
	lb, l, e := s.findListener(r.PathValue("id"))
	if e != nil {
		return e
	}
	writeJSON(w, http.StatusOK, view{"listener": selectFields(r, l.view(lb))})
	return nil
}

func (s *Server) updateListener(w http.ResponseWriter, r *http.Request) *apiError {
	o, e := readObject(r, "listener", listenerFields...)
	if e != nil {
		return e
	}
	for _, f := range []string{"protocol", "protocol_port", "loadbalancer_id", "project_id", "tenant_id", "default_pool"} {
		if o.has(f) {
			return errorf(http.StatusBadRequest, "Unknown attribute for argument listener: %s", f)
		}
	}
	o.emptyOrUnsupported(s, listenerL7Fields...)
	s.mu.Lock()
	defer s.mu.Unlock()
	lb, l, e := s.findListener(r.PathValue("id"))
	if e != nil {
		return e
	}
	c := lb.clone()
	cl := c.listener(l.ID)
	updateCommon(o, &cl.common, true)
	if n, ok := o.integer("connection_limit", false, -1, 1<<31-1); ok {
		cl.ConnectionLimit = n
	} else if o.null("connection_limit") {
		cl.ConnectionLimit = -1
	}
	s.readTimeouts(o, cl)
	if o.null("default_pool_id") {
		cl.DefaultPoolID = ""
	} else if id, ok := o.uuid("default_pool_id", false); ok {
		if o.err == nil {
			if e := poolForListener(lb, id, l.Protocol); e != nil {
				return e
			}
		}
		cl.DefaultPoolID = id
	}
	if o.err != nil {
		return o.err
	}
	if e := mutable(lb); e != nil {
		return e
	}
	c.ProvisioningStatus = statusPendingUpdate
	cl.ProvisioningStatus = statusPendingUpdate
	if e := s.commit(c); e != nil {
		return e
	}
	writeJSON(w, http.StatusOK, view{"listener": cl.view(c)})
	return nil
}

func (s *Server) deleteListener(w http.ResponseWriter, r *http.Request) *apiError {
	s.mu.Lock()
	defer s.mu.Unlock()
	lb, l, e := s.findListener(r.PathValue("id"))
	if e != nil {
		return e
	}
	if e := mutable(lb); e != nil {
		return e
	}
	c := lb.clone()
	c.ProvisioningStatus = statusPendingUpdate
	c.listener(l.ID).ProvisioningStatus = statusPendingDelete
	if e := s.commit(c); e != nil {
		return e
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) listenerStats(w http.ResponseWriter, r *http.Request) *apiError {
	s.mu.Lock()
	defer s.mu.Unlock()
	lb, l, e := s.findListener(r.PathValue("id"))
	if e != nil {
		return e
	}
	var st ListenerStats
	if obs := s.observed[lb.ID]; obs != nil {
		st = obs.Listeners[l.ID]
	}
	writeJSON(w, http.StatusOK, view{"stats": statsView(st)})
	return nil
}
