package lbaas

import (
	"net/http"
	"regexp"
	"strings"
)

var (
	hmTypes       = []string{"HTTP", "HTTPS", "PING", "TCP", "TLS-HELLO", "UDP-CONNECT", "SCTP"}
	hmHTTPMethods = []string{"CONNECT", "DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT", "TRACE"}
	hmFields      = []string{"name", "admin_state_up", "project_id", "tenant_id", "tags", "pool_id", "type",
		"delay", "timeout", "max_retries", "max_retries_down", "http_method", "url_path",
		"expected_codes", "http_version", "domain_name"}
	expectedCodesRE = regexp.MustCompile(`^(\d{3}(\s*,\s*\d{3})*)$|^(\d{3}-\d{3})$`)
	domainNameRE    = regexp.MustCompile(`^(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?\.)*[a-zA-Z0-9](?:[a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?\.?$`)
)

func httpType(t string) bool { return t == "HTTP" || t == "HTTPS" }

// readHTTPFields reads the attributes of HTTP(S) monitors into h (whose
// Type is set), refusing them for other types.
func readHTTPFields(o *object, h *healthMonitor) {
	if !httpType(h.Type) {
		for _, f := range []string{"http_method", "url_path", "expected_codes"} {
			if o.has(f) && !o.null(f) {
				o.fail(invalidOption(f, "health monitors of type "+h.Type))
			}
		}
	} else {
		if v, ok := o.enum("http_method", false, hmHTTPMethods...); ok {
			h.HTTPMethod = v
		}
		if v, ok := o.str("url_path", false); ok {
			if !strings.HasPrefix(v, "/") || strings.ContainsAny(v, " \t\r\n") {
				o.fail(invalidInput("url_path", v, "Value should be a valid URL path"))
			}
			h.URLPath = v
		}
		if v, ok := o.str("expected_codes", false); ok {
			if !expectedCodesRE.MatchString(v) {
				o.fail(invalidInput("expected_codes", v, "Value should match the pattern "+expectedCodesRE.String()))
			}
			h.ExpectedCodes = v
		}
	}
	if raw, ok := o.fields["http_version"]; ok && !isNull(raw) && o.err == nil {
		var f float64
		if !o.get("http_version", &f, "float", false) {
			return
		}
		switch f {
		case 1.0:
			h.HTTPVersion = "1.0"
		case 1.1:
			h.HTTPVersion = "1.1"
		default:
			o.fail(invalidInput("http_version", shown(raw), "Value should be one of: 1.0, 1.1"))
		}
	}
	if o.null("domain_name") {
		h.DomainName = ""
	} else if v, ok := o.str("domain_name", false); ok {
		if v == "" || !domainNameRE.MatchString(v) {
			o.fail(invalidInput("domain_name", v, "Value should match the pattern "+domainNameRE.String()))
		}
		h.DomainName = v
	}
}

// checkHM checks h against the pool's protocol and itself (after a
// create or an update).
func (s *Server) checkHM(h *healthMonitor, poolProtocol string) *apiError {
	switch poolProtocol {
	case "UDP", "SCTP":
		switch h.Type {
		case "UDP-CONNECT", "SCTP", "TCP", "HTTP":
		default:
			return validation("The associated pool protocol is %s, so only a UDP-CONNECT/SCTP/TCP/HTTP health monitor is supported.", poolProtocol)
		}
		if h.Type == "UDP-CONNECT" && h.Delay < *s.cfg.UDPConnectMinDelay {
			return validation("The request delay value %d should be larger than %d for UDP-CONNECT health monitor type.", h.Delay, *s.cfg.UDPConnectMinDelay)
		}
	default:
		if h.Type == "UDP-CONNECT" || h.Type == "SCTP" {
			return validation("The %s type is only supported for pools of type UDP/SCTP.", h.Type)
		}
	}
	if h.Timeout > h.Delay {
		return validation("timeout (%d) must not exceed delay (%d): a check must end before the next one starts.", h.Timeout, h.Delay)
	}
	if h.DomainName != "" && h.HTTPVersion == "" {
		return validation("'http_version' must be specified when 'domain_name' is provided.")
	}
	if h.DomainName != "" && h.HTTPVersion != "1.1" {
		return invalidOption("http_version "+h.HTTPVersion, "health monitors HTTP 1.1 domain name health check")
	}
	return nil
}

// readHM reads a new health monitor for a pool of poolProtocol.
func (s *Server) readHM(o *object, poolProtocol string) *healthMonitor {
	h := &healthMonitor{common: s.readCommon(o, false), MaxRetriesDown: 3}
	h.Type, _ = o.enum("type", true, hmTypes...)
	h.Delay, _ = o.integer("delay", true, 0, 1<<31-1)
	h.Timeout, _ = o.integer("timeout", true, 0, 1<<31-1)
	h.MaxRetries, _ = o.integer("max_retries", true, 1, 10)
	if n, ok := o.integer("max_retries_down", false, 1, 10); ok {
		h.MaxRetriesDown = n
	}
	if o.err != nil {
		return h
	}
	readHTTPFields(o, h)
	if httpType(h.Type) {
		if h.HTTPMethod == "" {
			h.HTTPMethod = "GET"
		}
		if h.URLPath == "" {
			h.URLPath = "/"
		}
		if h.ExpectedCodes == "" {
			h.ExpectedCodes = "200"
		}
	}
	if o.err == nil {
		if e := s.checkHM(h, poolProtocol); e != nil {
			o.fail(e)
		}
	}
	return h
}

func (s *Server) createHealthMonitor(w http.ResponseWriter, r *http.Request) *apiError {
	o, e := readObject(r, "healthmonitor", hmFields...)
	if e != nil {
		return e
	}
	poolID, _ := o.uuid("pool_id", true)
	if o.err != nil {
		return o.err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	lb, p, e := s.findPool(poolID)
	if e != nil {
		return e
	}
	h := s.readHM(o, p.Protocol)
	if o.err != nil {
		return o.err
	}
	if p.HealthMonitor != nil {
		return errorf(http.StatusConflict, "This pool already has a health monitor")
	}
	if e := memberChange(lb, p); e != nil {
		return e
	}
	c := lb.clone()
	c.ProvisioningStatus = statusPendingUpdate
	cp := c.pool(p.ID)
	cp.ProvisioningStatus = statusPendingUpdate
	cp.HealthMonitor = h
	if e := s.commit(c); e != nil {
		return e
	}
	writeJSON(w, http.StatusCreated, view{"healthmonitor": h.view(cp)})
	return nil
}

func (s *Server) listHealthMonitors(w http.ResponseWriter, r *http.Request) *apiError {
	s.mu.Lock()
	var items []view
	for _, id := range s.order {
		for _, p := range s.lbs[id].Pools {
			if p.HealthMonitor != nil {
				items = append(items, p.HealthMonitor.view(p))
			}
		}
	}
	s.mu.Unlock()
	return list(w, r, "healthmonitors", items)
}

func (s *Server) showHealthMonitor(w http.ResponseWriter, r *http.Request) *apiError {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, p, e := s.findHM(r.PathValue("id"))
	if e != nil {
		return e
	}
	writeJSON(w, http.StatusOK, view{"healthmonitor": selectFields(r, p.HealthMonitor.view(p))})
	return nil
}

func (s *Server) updateHealthMonitor(w http.ResponseWriter, r *http.Request) *apiError {
	o, e := readObject(r, "healthmonitor", "name", "admin_state_up", "tags", "delay", "timeout",
		"max_retries", "max_retries_down", "http_method", "url_path", "expected_codes",
		"http_version", "domain_name")
	if e != nil {
		return e
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	lb, p, e := s.findHM(r.PathValue("id"))
	if e != nil {
		return e
	}
	c := lb.clone()
	cp := c.pool(p.ID)
	h := cp.HealthMonitor
	updateCommon(o, &h.common, false)
	for _, f := range []struct {
		name   string
		v      *int
		lo, hi int
	}{{"delay", &h.Delay, 0, 1<<31 - 1}, {"timeout", &h.Timeout, 0, 1<<31 - 1},
		{"max_retries", &h.MaxRetries, 1, 10}, {"max_retries_down", &h.MaxRetriesDown, 1, 10}} {
		if o.null(f.name) && o.err == nil {
			o.fail(invalidOption("None", f.name))
		}
		if n, ok := o.integer(f.name, false, f.lo, f.hi); ok {
			*f.v = n
		}
	}
	if o.err == nil {
		readHTTPFields(o, h)
	}
	if o.err != nil {
		return o.err
	}
	if e := s.checkHM(h, cp.Protocol); e != nil {
		return e
	}
	if e := memberChange(lb, p); e != nil {
		return e
	}
	c.ProvisioningStatus = statusPendingUpdate
	cp.ProvisioningStatus = statusPendingUpdate
	h.ProvisioningStatus = statusPendingUpdate
	if e := s.commit(c); e != nil {
		return e
	}
	writeJSON(w, http.StatusOK, view{"healthmonitor": h.view(cp)})
	return nil
}

func (s *Server) deleteHealthMonitor(w http.ResponseWriter, r *http.Request) *apiError {
	s.mu.Lock()
	defer s.mu.Unlock()
	lb, p, e := s.findHM(r.PathValue("id"))
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
	cp.HealthMonitor.ProvisioningStatus = statusPendingDelete
	if e := s.commit(c); e != nil {
		return e
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}
