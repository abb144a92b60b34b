package lbaas

import (
	"context"
	"log/slog"
	"net/http"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"
)

// Server is the Octavia v2 API over a Store and an Agent.
type Server struct {
	cfg   *Config
	store *Store
	agent Agent
	log   *slog.Logger

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu sync.Mutex
	// lbs by id; order keeps creation order.
	lbs   map[string]*loadBalancer
	order []string
	// workers by load balancer id: a kick makes the worker apply (or
	// delete) the load balancer as it is then.
	workers map[string]chan struct{}
	// observed is the last Observe of each load balancer.
	observed map[string]*Observed
}

// New serves the API for cfg, keeping state in store and realising load
// balancers with agent. It loads the stored load balancers and applies
// each again (deletes those that were being deleted), so a restarted
// service converges to its store. store may be nil: then nothing is kept.
func New(cfg *Config, store *Store, agent Agent, log *slog.Logger) *Server {
	if log == nil {
		log = slog.Default()
	}
	if cfg == nil {
		cfg = &Config{}
	}
	if cfg.Provider == "" || cfg.ObserveInterval == 0 || cfg.ApplyTimeout == 0 || cfg.UDPConnectMinDelay == nil {
		c := *cfg
		if err := c.check(); err != nil {
			log.Error("lbaas: config", "err", err)
		}
		cfg = &c
	}
	s := &Server{cfg: cfg, store: store, agent: agent, log: log,
		lbs: map[string]*loadBalancer{}, workers: map[string]chan struct{}{},
		observed: map[string]*Observed{}}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	if store != nil {
		lbs, err := store.load()
		if err != nil {
			log.Error("lbaas: loading the stored load balancers", "err", err)
		}
		slices.SortFunc(lbs, func(a, b *loadBalancer) int { return a.CreatedAt.Compare(b.CreatedAt) })
		s.mu.Lock()
		for _, lb := range lbs {
			s.lbs[lb.ID] = lb
			s.order = append(s.order, lb.ID)
			lb.each(func(c *common) { c.OperatingStatus = opOffline })
			log.Info("lbaas: restored load balancer", "id", lb.ID, "provisioning_status", lb.ProvisioningStatus)
			s.kick(lb.ID)
		}
		s.mu.Unlock()
	}
	s.wg.Add(1)
	go s.observeLoop()
	return s
}

// Close stops the workers and the observer (an Apply under way is
// cancelled); the store stays open.
func (s *Server) Close() {
	s.cancel()
	s.wg.Wait()
}

// kick makes id's worker run; s.mu is held.
func (s *Server) kick(id string) {
	ch, ok := s.workers[id]
	if !ok {
		ch = make(chan struct{}, 1)
		s.workers[id] = ch
		s.wg.Add(1)
		go s.worker(id, ch)
	}
	select {
	case ch <- struct{}{}:
	default:
	}
}

// worker serialises what is done to one load balancer: each kick applies
// the load balancer as it is then, or deletes it.
func (s *Server) worker(id string, ch chan struct{}) {
	defer s.wg.Done()
	for {
		select {
		case <-s.ctx.Done():
			return
		case <-ch:
		}
		if done := s.run(id); done {
			return
		}
	}
}

// run does one round of id's worker; it reports whether the load balancer
// is gone (the worker ends).
func (s *Server) run(id string) bool {
	s.mu.Lock()
	lb := s.lbs[id]
	if lb == nil {
		delete(s.workers, id)
		s.mu.Unlock()
		return true
	}
	gen := lb.gen
	deleting := lb.ProvisioningStatus == statusPendingDelete
	failover := lb.Failover
	spec := s.spec(lb)
	s.mu.Unlock()

	ctx, cancel := context.WithTimeout(s.ctx, s.cfg.ApplyTimeout)
	defer cancel()
	var err error
	switch {
	case deleting:
		err = s.agent.Delete(ctx, id)
	case failover:
		if err = s.agent.Delete(ctx, id); err == nil {
			err = s.agent.Apply(ctx, spec)
		}
	default:
		err = s.agent.Apply(ctx, spec)
	}
	if s.ctx.Err() != nil {
		return true // closing: the store still says what is pending
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	lb = s.lbs[id]
	if lb == nil {
		delete(s.workers, id)
		return true
	}
	if lb.gen != gen {
		return false // changed meanwhile: a kick is queued
	}
	c := lb.clone()
	c.Failover = false
	if deleting && err == nil {
		if s.store != nil {
			if err := s.store.delete(id); err != nil {
				s.log.Error("lbaas: removing a deleted load balancer from the store", "id", id, "err", err)
			}
		}
		delete(s.lbs, id)
		s.order = slices.DeleteFunc(s.order, func(x string) bool { return x == id })
		delete(s.observed, id)
		delete(s.workers, id)
		s.log.Info("lbaas: load balancer deleted", "id", id)
		return true
	}
	if err != nil {
		s.log.Error("lbaas: the agent failed", "id", id, "provisioning_status", lb.ProvisioningStatus, "err", err)
		finish(c, err)
	} else {
		finish(c, nil)
		s.log.Info("lbaas: load balancer applied", "id", id)
	}
	if e := s.save(c); e != nil {
		s.log.Error("lbaas: storing a load balancer's status", "id", id, "err", e)
	}
	return false
}

// finish settles c's statuses after the agent answered: what was
// pending becomes ACTIVE (or goes away, for deletes), or ERROR.
func finish(c *loadBalancer, err error) {
	if err != nil {
		// The load balancer itself turns ERROR when it was being
		// created, deleted or failed over; a change to a child marks
		// that child ERROR and leaves the load balancer usable (as
		// Octavia's reverts do).
		lbPending := c.ProvisioningStatus
		childPending := false
		c.each(func(x *common) {
			if x != &c.common && pending(x.ProvisioningStatus) {
				x.ProvisioningStatus = statusError
				childPending = true
			}
		})
		if lbPending == statusPendingCreate || lbPending == statusPendingDelete || !childPending {
			c.ProvisioningStatus = statusError
			c.OperatingStatus = opError
		} else {
			c.ProvisioningStatus = statusActive
		}
		return
	}
	for _, l := range c.Listeners {
		if l.ProvisioningStatus == statusPendingDelete {
			l.ProvisioningStatus = "DELETED"
		}
	}
	c.Listeners = slices.DeleteFunc(c.Listeners, func(l *listener) bool { return l.ProvisioningStatus == "DELETED" })
	gone := map[string]bool{}
	for _, p := range c.Pools {
		if p.ProvisioningStatus == statusPendingDelete {
			gone[p.ID] = true
			continue
		}
		p.Members = slices.DeleteFunc(p.Members, func(m *member) bool { return m.ProvisioningStatus == statusPendingDelete })
		if p.HealthMonitor != nil && p.HealthMonitor.ProvisioningStatus == statusPendingDelete {
			p.HealthMonitor = nil
		}
	}
	c.Pools = slices.DeleteFunc(c.Pools, func(p *pool) bool { return gone[p.ID] })
	for _, l := range c.Listeners {
		if gone[l.DefaultPoolID] {
			l.DefaultPoolID = ""
		}
	}
	c.each(func(x *common) {
		if pending(x.ProvisioningStatus) {
			x.ProvisioningStatus = statusActive
		}
	})
	if c.OperatingStatus == opError {
		c.OperatingStatus = opOffline
	}
}

// save stores c and makes it the load balancer's state; s.mu is held.
func (s *Server) save(c *loadBalancer) error {
	if s.store != nil {
		if err := s.store.put(c); err != nil {
			return err
		}
	}
	if _, ok := s.lbs[c.ID]; !ok {
		s.order = append(s.order, c.ID)
	}
	c.gen++
	s.lbs[c.ID] = c
	return nil
}

// commit stores a change made by a request and hands it to the worker;
// s.mu is held.
func (s *Server) commit(c *loadBalancer) *apiError {
	if err := s.save(c); err != nil {
		s.log.Error("lbaas: storing a change", "id", c.ID, "err", err)
		return errorf(http.StatusInternalServerError, "storing the change failed: %v", err)
	}
	s.kick(c.ID)
	return nil
}

// observeLoop observes every ACTIVE load balancer each ObserveInterval.
func (s *Server) observeLoop() {
	defer s.wg.Done()
	t := time.NewTicker(s.cfg.ObserveInterval)
	defer t.Stop()
	for {
		select {
		case <-s.ctx.Done():
			return
		case <-t.C:
		}
		s.ObserveNow()
	}
}

// ObserveNow observes every ACTIVE load balancer once, at once, and
// derives operating statuses (the observer does it every
// ObserveInterval).
func (s *Server) ObserveNow() {
	s.mu.Lock()
	var ids []string
	for _, id := range s.order {
		if lb := s.lbs[id]; lb != nil && lb.ProvisioningStatus == statusActive {
			ids = append(ids, id)
		}
	}
	s.mu.Unlock()
	for _, id := range ids {
		ctx, cancel := context.WithTimeout(s.ctx, s.cfg.ObserveInterval+5*time.Second)
		obs, err := s.agent.Observe(ctx, id)
		cancel()
		if s.ctx.Err() != nil {
			return
		}
		s.mu.Lock()
		if lb := s.lbs[id]; lb != nil && lb.ProvisioningStatus == statusActive {
			if err != nil {
				if lb.OperatingStatus != opError {
					s.log.Warn("lbaas: observing a load balancer failed", "id", id, "err", err)
				}
				obs = nil
			}
			s.observed[id] = obs
			derive(lb, obs, err)
		}
		s.mu.Unlock()
	}
}

// derive sets the operating statuses of lb's tree from what the agent
// observed, as Octavia's health manager derives them from amphora
// heartbeats: a member whose checks fail is ERROR, and makes its pool
// DEGRADED (ERROR when no member is up) and the load balancer DEGRADED
// (ERROR when a pool is ERROR).
func derive(lb *loadBalancer, obs *Observed, obsErr error) {
	if obsErr != nil {
		lb.each(func(c *common) { c.OperatingStatus = opOffline })
		lb.OperatingStatus = opError
		return
	}
	if obs == nil {
		obs = &Observed{}
	}
	lbStatus := opOnline
	if !lb.AdminUp {
		lbStatus = opOffline
	}
	for _, l := range lb.Listeners {
		st, seen := obs.Listeners[l.ID]
		switch {
		case !l.AdminUp || !lb.AdminUp:
			l.OperatingStatus = opOffline
		case obs.Listeners != nil && !seen:
			l.OperatingStatus = opError
		case l.ConnectionLimit > 0 && st.ActiveConnections >= uint64(l.ConnectionLimit):
			l.OperatingStatus = opDegraded
			if lbStatus == opOnline {
				lbStatus = opDegraded
			}
		default:
			l.OperatingStatus = opOnline
		}
	}
	for _, p := range lb.Pools {
		hm := p.HealthMonitor
		monitored := hm != nil && hm.AdminUp && hm.ProvisioningStatus != statusPendingDelete
		if hm != nil {
			hm.OperatingStatus = opOffline
			if monitored {
				hm.OperatingStatus = opOnline
			}
		}
		up, down := 0, 0
		for _, m := range p.Members {
			h, known := obs.Members[m.ID]
			switch {
			case !m.AdminUp:
				m.OperatingStatus = opOffline
			case monitored && known && !h.Up:
				m.OperatingStatus = opError
				down++
			case m.Weight == 0:
				m.OperatingStatus = opDraining
			case !monitored:
				m.OperatingStatus = opNoMonitor
			case !known:
				m.OperatingStatus = opOffline
			default:
				m.OperatingStatus = opOnline
				up++
			}
		}
		switch {
		case !p.AdminUp || !lb.AdminUp:
			p.OperatingStatus = opOffline
		case down > 0 && up == 0:
			p.OperatingStatus = opError
			lbStatus = opError
		case down > 0:
			p.OperatingStatus = opDegraded
			if lbStatus == opOnline {
				lbStatus = opDegraded
			}
		default:
			p.OperatingStatus = opOnline
		}
	}
	lb.OperatingStatus = lbStatus
}

// vipsInUse are the addresses of the load balancers on subnet; s.mu is
// held.
func (s *Server) vipsInUse(subnet string) map[netip.Addr]bool {
	used := map[netip.Addr]bool{}
	for _, lb := range s.lbs {
		if lb.VIPSubnetID == subnet {
			used[lb.VIPAddress] = true
		}
	}
	return used
}

// Handler is the API: /v2 and /v2.0, and version discovery at /.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", s.versions)
	for _, v := range []string{"/v2", "/v2.0"} {
		s.routes(mux, v)
	}
	s.neutronRoutes(mux)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, errorf(http.StatusNotFound, "The resource could not be found."))
	})
	// Clients differ on trailing slashes (/v2/lbaas/loadbalancers/):
	// resources are served either way.
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if p := r.URL.Path; len(p) > 1 && strings.HasSuffix(p, "/") && strings.Count(p, "/") > 2 {
			r2 := r.Clone(r.Context())
			r2.URL.Path = strings.TrimRight(p, "/")
			r2.URL.RawPath = ""
			r = r2
		}
		mux.ServeHTTP(w, r)
	})
}

func (s *Server) routes(mux *http.ServeMux, v string) {
	h := func(pattern string, f func(w http.ResponseWriter, r *http.Request) *apiError) {
		method, path, _ := cut(pattern)
		mux.HandleFunc(method+" "+v+path, func(w http.ResponseWriter, r *http.Request) {
			if e := f(w, r); e != nil {
				writeError(w, e)
			}
		})
	}
	mux.HandleFunc("GET "+v+"/{$}", s.versionV2)
	mux.HandleFunc("GET "+v+"", s.versionV2)

	h("GET /lbaas/loadbalancers", s.listLoadBalancers)
	h("POST /lbaas/loadbalancers", s.createLoadBalancer)
	h("GET /lbaas/loadbalancers/{id}", s.showLoadBalancer)
	h("PUT /lbaas/loadbalancers/{id}", s.updateLoadBalancer)
	h("DELETE /lbaas/loadbalancers/{id}", s.deleteLoadBalancer)
	h("GET /lbaas/loadbalancers/{id}/stats", s.loadBalancerStats)
	h("GET /lbaas/loadbalancers/{id}/status", s.loadBalancerStatus)
	h("PUT /lbaas/loadbalancers/{id}/failover", s.failoverLoadBalancer)

	h("GET /lbaas/listeners", s.listListeners)
	h("POST /lbaas/listeners", s.createListener)
	h("GET /lbaas/listeners/{id}", s.showListener)
	h("PUT /lbaas/listeners/{id}", s.updateListener)
	h("DELETE /lbaas/listeners/{id}", s.deleteListener)
	h("GET /lbaas/listeners/{id}/stats", s.listenerStats)

	h("GET /lbaas/pools", s.listPools)
	h("POST /lbaas/pools", s.createPool)
	h("GET /lbaas/pools/{id}", s.showPool)
	h("PUT /lbaas/pools/{id}", s.updatePool)
	h("DELETE /lbaas/pools/{id}", s.deletePool)

	h("GET /lbaas/pools/{id}/members", s.listMembers)
	h("POST /lbaas/pools/{id}/members", s.createMember)
	h("PUT /lbaas/pools/{id}/members", s.batchMembers)
	h("GET /lbaas/pools/{id}/members/{mid}", s.showMember)
	h("PUT /lbaas/pools/{id}/members/{mid}", s.updateMember)
	h("DELETE /lbaas/pools/{id}/members/{mid}", s.deleteMember)

	h("GET /lbaas/healthmonitors", s.listHealthMonitors)
	h("POST /lbaas/healthmonitors", s.createHealthMonitor)
	h("GET /lbaas/healthmonitors/{id}", s.showHealthMonitor)
	h("PUT /lbaas/healthmonitors/{id}", s.updateHealthMonitor)
	h("DELETE /lbaas/healthmonitors/{id}", s.deleteHealthMonitor)

	h("GET /lbaas/providers", s.listProviders)
}

func cut(pattern string) (method, path string, ok bool) {
	for i := range pattern {
		if pattern[i] == ' ' {
			return pattern[:i], pattern[i+1:], true
		}
	}
	return "", pattern, false
}

// baseURL is the scheme and host the client reached us by.
func baseURL(r *http.Request) string {
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	if p := r.Header.Get("X-Forwarded-Proto"); p != "" {
		scheme = p
	}
	return scheme + "://" + r.Host
}

// Octavia's API versions, as its root lists them (all served at /v2).
var apiVersions = []struct{ id, updated string }{
	{"v2.0", "2016-12-11T00:00:00Z"}, {"v2.1", "2018-04-20T00:00:00Z"},
	{"v2.2", "2018-07-31T00:00:00Z"}, {"v2.3", "2018-12-18T00:00:00Z"},
	{"v2.4", "2018-12-19T00:00:00Z"}, {"v2.5", "2019-01-21T00:00:00Z"},
	{"v2.6", "2019-01-25T00:00:00Z"}, {"v2.7", "2018-01-25T12:00:00Z"},
	{"v2.8", "2019-02-12T00:00:00Z"}, {"v2.9", "2019-03-04T00:00:00Z"},
	{"v2.10", "2019-03-05T00:00:00Z"}, {"v2.11", "2019-06-24T00:00:00Z"},
	{"v2.12", "2019-09-11T00:00:00Z"}, {"v2.13", "2019-09-13T00:00:00Z"},
	{"v2.14", "2019-11-10T00:00:00Z"}, {"v2.15", "2020-03-10T00:00:00Z"},
	{"v2.16", "2020-03-15T00:00:00Z"}, {"v2.17", "2020-04-29T00:00:00Z"},
	{"v2.18", "2020-04-29T01:00:00Z"}, {"v2.19", "2020-05-12T00:00:00Z"},
	{"v2.20", "2020-08-02T00:00:00Z"}, {"v2.21", "2020-09-03T00:00:00Z"},
	{"v2.22", "2020-09-04T00:00:00Z"}, {"v2.23", "2020-09-07T00:00:00Z"},
	{"v2.24", "2020-10-15T00:00:00Z"}, {"v2.25", "2021-10-02T00:00:00Z"},
	{"v2.26", "2022-08-29T00:00:00Z"}, {"v2.27", "2023-05-05T00:00:00Z"},
}

func versionList(base string) []map[string]any {
	var vs []map[string]any
	for i, v := range apiVersions {
		status := "SUPPORTED"
		if i == len(apiVersions)-1 {
			status = "CURRENT"
		}
		vs = append(vs, map[string]any{"id": v.id, "status": status, "updated": v.updated,
			"links": []map[string]string{{"href": base + "/v2", "rel": "self"}}})
	}
	return vs
}

func (s *Server) versions(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]any{"versions": versionList(baseURL(r))})
}

func (s *Server) versionV2(w http.ResponseWriter, r *http.Request) {
	vs := versionList(baseURL(r))
	writeJSON(w, http.StatusOK, map[string]any{"version": vs[len(vs)-1]})
}

func (s *Server) listProviders(w http.ResponseWriter, r *http.Request) *apiError {
	writeJSON(w, http.StatusOK, map[string]any{"providers": []map[string]string{{
		"name": s.cfg.Provider, "description": "gvs: Linux Virtual Server rebuilt in Go, one director per load balancer in namespace lvs-<id> (L4: TCP, UDP, SCTP)",
	}}})
	return nil
}
