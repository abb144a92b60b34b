package lbaas_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack/loadbalancer/v2/listeners"
	"github.com/gophercloud/gophercloud/v2/openstack/loadbalancer/v2/loadbalancers"
	"github.com/gophercloud/gophercloud/v2/openstack/loadbalancer/v2/monitors"
	"github.com/gophercloud/gophercloud/v2/openstack/loadbalancer/v2/pools"
	"github.com/gophercloud/gophercloud/v2/pagination"

	"gvs/lbaas"
)

const (
	netID    = "0c3b3a5e-5f5e-4c1e-9a77-6a0f2f1d2c11"
	subnetID = "7d2f8a10-2b7e-4b8e-8f4c-2c6b9d0e4f21"
	// a second subnet, of a second network
	subnet2ID = "9a3b1c2d-0e4f-4a5b-8c6d-7e8f9a0b1c2d"
	unknownID = "11111111-2222-4333-8444-555555555555"
)

const testConfig = `
engine: proxy
observe_interval: 1h
networks:
  - id: ` + netID + `
    bridge: br-lbaas
    subnets:
      - id: ` + subnetID + `
        cidr: 198.18.0.0/24
        gateway: 198.18.0.1
        allocation_pools: [{start: 198.18.0.100, end: 198.18.0.102}]
  - id: 3d4e5f60-7182-4394-a5b6-c7d8e9f00112
    bridge: br-other
    subnets:
      - id: ` + subnet2ID + `
        cidr: 198.19.5.0/24
        gateway: 198.19.5.1
        allocation_pools: [{start: 198.19.5.10, end: 198.19.5.20}]
`

// fakeAgent records what it is asked and answers what the test says.
type fakeAgent struct {
	mu      sync.Mutex
	specs   map[string]*lbaas.Spec
	applies int
	deletes []string
	obs     map[string]*lbaas.Observed
	gate    chan struct{} // when set, Apply waits for it
	fail    error
}

func newFakeAgent() *fakeAgent {
	return &fakeAgent{specs: map[string]*lbaas.Spec{}, obs: map[string]*lbaas.Observed{}}
}

func (a *fakeAgent) Apply(ctx context.Context, spec *lbaas.Spec) error {
	a.mu.Lock()
	gate := a.gate
	a.mu.Unlock()
	if gate != nil {
		select {
		case <-gate:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	a.applies++
	if a.fail != nil {
		return a.fail
	}
	a.specs[spec.ID] = spec
	return nil
}

func (a *fakeAgent) Delete(ctx context.Context, id string) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.deletes = append(a.deletes, id)
	delete(a.specs, id)
	return nil
}

func (a *fakeAgent) Observe(ctx context.Context, id string) (*lbaas.Observed, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if o := a.obs[id]; o != nil {
		return o, nil
	}
	return &lbaas.Observed{At: time.Now()}, nil
}

func (a *fakeAgent) spec(id string) *lbaas.Spec {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.specs[id]
}

type env struct {
	t      *testing.T
	srv    *lbaas.Server
	ts     *httptest.Server
	agent  *fakeAgent
	client *gophercloud.ServiceClient
	dir    string
}

func newEnv(t *testing.T) *env {
	t.Helper()
	e := &env{t: t, agent: newFakeAgent(), dir: t.TempDir()}
	e.start()
	return e
}

func (e *env) start() {
	e.t.Helper()
	cfg, err := lbaas.ParseConfig([]byte(testConfig))
	if err != nil {
		e.t.Fatal(err)
	}
	store, err := lbaas.OpenStore(e.dir)
	if err != nil {
		e.t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	if testing.Verbose() {
		log = slog.New(slog.NewTextHandler(testWriter{e.t}, nil))
	}
	e.srv = lbaas.New(cfg, store, e.agent, log)
	e.ts = httptest.NewServer(e.srv.Handler())
	e.client = &gophercloud.ServiceClient{ProviderClient: &gophercloud.ProviderClient{TokenID: "ignored"},
		Endpoint: e.ts.URL + "/", ResourceBase: e.ts.URL + "/v2.0/"}
	e.t.Cleanup(func() { e.stop(); store.Close() })
}

func (e *env) stop() {
	if e.ts != nil {
		e.ts.Close()
		e.srv.Close()
		e.ts = nil
	}
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(b []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(b)))
	return len(b), nil
}

var ctx = context.Background()

func (e *env) waitActive(lbID string) *loadbalancers.LoadBalancer {
	e.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		lb, err := loadbalancers.Get(ctx, e.client, lbID).Extract()
		if err != nil {
			e.t.Fatalf("get load balancer %s: %v", lbID, err)
		}
		if lb.ProvisioningStatus == "ACTIVE" || lb.ProvisioningStatus == "ERROR" {
			return lb
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("load balancer %s still %s", lbID, lb.ProvisioningStatus)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func (e *env) createLB(name string) *loadbalancers.LoadBalancer {
	e.t.Helper()
	lb, err := loadbalancers.Create(ctx, e.client, loadbalancers.CreateOpts{Name: name, VipSubnetID: subnetID}).Extract()
	if err != nil {
		e.t.Fatalf("create load balancer: %v", err)
	}
	e.waitActive(lb.ID)
	return lb
}

// raw sends a request with a JSON body and returns the status and body.
func (e *env) raw(method, path, body string) (int, map[string]any) {
	e.t.Helper()
	var r io.Reader
	if body != "" {
		r = strings.NewReader(body)
	}
	req, _ := http.NewRequest(method, e.ts.URL+path, r)
	req.Header.Set("X-Auth-Token", "whatever")
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	var m map[string]any
	b, _ := io.ReadAll(resp.Body)
	json.Unmarshal(b, &m)
	return resp.StatusCode, m
}

func TestLifecycle(t *testing.T) {
	e := newEnv(t)
	c := e.client

	lb, err := loadbalancers.Create(ctx, c, loadbalancers.CreateOpts{Name: "web", Description: "d",
		VipSubnetID: subnetID, Tags: []string{"a", "b"}}).Extract()
	if err != nil {
		t.Fatal(err)
	}
	if lb.ProvisioningStatus != "PENDING_CREATE" || lb.OperatingStatus != "OFFLINE" || lb.VipAddress != "198.18.0.100" ||
		lb.VipNetworkID != netID || lb.Provider != "gvs" || !lb.AdminStateUp || lb.CreatedAt.IsZero() {
		t.Fatalf("created: %+v", lb)
	}
	lb = e.waitActive(lb.ID)
	if lb.ProvisioningStatus != "ACTIVE" {
		t.Fatalf("not active: %+v", lb)
	}
	sp := e.agent.spec(lb.ID)
	if sp == nil || sp.VIP != netip.MustParseAddr("198.18.0.100") || sp.Network.Bridge != "br-lbaas" ||
		sp.Network.Gateway != netip.MustParseAddr("198.18.0.1") || sp.Network.CIDR.String() != "198.18.0.0/24" {
		t.Fatalf("spec: %+v", sp)
	}

	l, err := listeners.Create(ctx, c, listeners.CreateOpts{LoadbalancerID: lb.ID, Protocol: listeners.ProtocolTCP,
		ProtocolPort: 80, Name: "l80"}).Extract()
	if err != nil {
		t.Fatal(err)
	}
	if l.ProvisioningStatus != "PENDING_CREATE" || l.ConnLimit != -1 || len(l.Loadbalancers) != 1 || l.Loadbalancers[0].ID != lb.ID {
		t.Fatalf("listener: %+v", l)
	}
	e.waitActive(lb.ID)

	p, err := pools.Create(ctx, c, pools.CreateOpts{ListenerID: l.ID, Protocol: pools.ProtocolTCP,
		LBMethod: pools.LBMethodLeastConnections, Name: "p",
		Persistence: &pools.SessionPersistence{Type: "SOURCE_IP"}}).Extract()
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Listeners) != 1 || p.Listeners[0].ID != l.ID || p.Persistence.Type != "SOURCE_IP" {
		t.Fatalf("pool: %+v", p)
	}
	e.waitActive(lb.ID)
	if l, _ := listeners.Get(ctx, c, l.ID).Extract(); l.DefaultPoolID != p.ID {
		t.Fatalf("listener's default pool: %q", l.DefaultPoolID)
	}

	var members []*pools.Member
	for i, addr := range []string{"198.18.0.11", "198.18.0.12"} {
		w := 10 * (i + 1)
		m, err := pools.CreateMember(ctx, c, p.ID, pools.CreateMemberOpts{Address: addr, ProtocolPort: 8080,
			Weight: &w, Name: "m" + addr}).Extract()
		if err != nil {
			t.Fatal(err)
		}
		if m.ProvisioningStatus != "PENDING_CREATE" || m.Weight != w || m.OperatingStatus != "OFFLINE" {
			t.Fatalf("member: %+v", m)
		}
		members = append(members, m)
		e.waitActive(lb.ID)
	}

	// Without a monitor, members are NO_MONITOR once observed.
	e.srv.ObserveNow()
	if m, _ := pools.GetMember(ctx, c, p.ID, members[0].ID).Extract(); m.OperatingStatus != "NO_MONITOR" {
		t.Fatalf("member without monitor: %s", m.OperatingStatus)
	}

	hm, err := monitors.Create(ctx, c, monitors.CreateOpts{PoolID: p.ID, Type: monitors.TypeTCP, Delay: 5,
		Timeout: 3, MaxRetries: 2}).Extract()
	if err != nil {
		t.Fatal(err)
	}
	if hm.MaxRetriesDown != 3 || len(hm.Pools) != 1 || hm.Pools[0].ID != p.ID || hm.HTTPMethod != "" {
		t.Fatalf("monitor: %+v", hm)
	}
	e.waitActive(lb.ID)

	sp = e.agent.spec(lb.ID)
	if len(sp.Listeners) != 1 || sp.Listeners[0].ProtocolPort != 80 || sp.Listeners[0].DefaultPoolID != p.ID ||
		len(sp.Pools) != 1 || sp.Pools[0].LBAlgorithm != "LEAST_CONNECTIONS" || len(sp.Pools[0].Members) != 2 ||
		sp.Pools[0].Members[1].Weight != 20 || sp.Pools[0].HealthMonitor == nil ||
		sp.Pools[0].HealthMonitor.MaxRetries != 2 || sp.Pools[0].SessionPersistence.Type != "SOURCE_IP" {
		b, _ := json.Marshal(sp)
		t.Fatalf("spec: %s", b)
	}

	// Everything is ACTIVE.
	for _, m := range members {
		if m, _ := pools.GetMember(ctx, c, p.ID, m.ID).Extract(); m.ProvisioningStatus != "ACTIVE" {
			t.Fatalf("member %s: %s", m.ID, m.ProvisioningStatus)
		}
	}

	// Observed: member 0 up, member 1 down.
	e.agent.mu.Lock()
	e.agent.obs[lb.ID] = &lbaas.Observed{
		Listeners: map[string]lbaas.ListenerStats{l.ID: {BytesIn: 100, BytesOut: 2000, ActiveConnections: 3, TotalConnections: 7}},
		Members:   map[string]lbaas.MemberHealth{members[0].ID: {Up: true}, members[1].ID: {Up: false, Reason: "connection refused"}},
	}
	e.agent.mu.Unlock()
	e.srv.ObserveNow()

	st, err := loadbalancers.GetStatuses(ctx, c, lb.ID).Extract()
	if err != nil {
		t.Fatal(err)
	}
	tree := st.Loadbalancer
	if tree.OperatingStatus != "DEGRADED" || len(tree.Listeners) != 1 || tree.Listeners[0].OperatingStatus != "ONLINE" ||
		len(tree.Listeners[0].Pools) != 1 || tree.Listeners[0].Pools[0].OperatingStatus != "DEGRADED" ||
		tree.Listeners[0].Pools[0].Monitor.ID != hm.ID || len(tree.Listeners[0].Pools[0].Members) != 2 {
		t.Fatalf("status tree: %+v", tree)
	}
	for _, m := range tree.Listeners[0].Pools[0].Members {
		want := map[string]string{members[0].ID: "ONLINE", members[1].ID: "ERROR"}[m.ID]
		if m.OperatingStatus != want || m.ProvisioningStatus != "ACTIVE" {
			t.Fatalf("member %s in the tree: %+v, want %s", m.ID, m, want)
		}
	}
	if got, _ := pools.Get(ctx, c, p.ID).Extract(); got.OperatingStatus != "DEGRADED" {
		t.Fatalf("pool: %s", got.OperatingStatus)
	}

	stats, err := loadbalancers.GetStats(ctx, c, lb.ID).Extract()
	if err != nil || stats.BytesIn != 100 || stats.BytesOut != 2000 || stats.ActiveConnections != 3 || stats.TotalConnections != 7 {
		t.Fatalf("stats: %+v %v", stats, err)
	}
	if ls, err := listeners.GetStats(ctx, c, l.ID).Extract(); err != nil || ls.BytesIn != 100 {
		t.Fatalf("listener stats: %+v %v", ls, err)
	}

	// Both down: the pool is ERROR, and so is the load balancer.
	e.agent.mu.Lock()
	e.agent.obs[lb.ID].Members[members[0].ID] = lbaas.MemberHealth{Up: false}
	e.agent.mu.Unlock()
	e.srv.ObserveNow()
	if got, _ := loadbalancers.Get(ctx, c, lb.ID).Extract(); got.OperatingStatus != "ERROR" {
		t.Fatalf("lb with every member down: %s", got.OperatingStatus)
	}
	e.agent.mu.Lock()
	e.agent.obs[lb.ID].Members[members[0].ID] = lbaas.MemberHealth{Up: true}
	e.agent.obs[lb.ID].Members[members[1].ID] = lbaas.MemberHealth{Up: true}
	e.agent.mu.Unlock()

	// Updates.
	name := "web2"
	if got, err := loadbalancers.Update(ctx, c, lb.ID, loadbalancers.UpdateOpts{Name: &name}).Extract(); err != nil ||
		got.Name != "web2" || got.ProvisioningStatus != "PENDING_UPDATE" {
		t.Fatalf("update: %+v %v", got, err)
	}
	e.waitActive(lb.ID)
	zero, down := 0, false
	if _, err := pools.UpdateMember(ctx, c, p.ID, members[0].ID, pools.UpdateMemberOpts{Weight: &zero}).Extract(); err != nil {
		t.Fatal(err)
	}
	e.waitActive(lb.ID)
	if _, err := pools.UpdateMember(ctx, c, p.ID, members[1].ID, pools.UpdateMemberOpts{AdminStateUp: &down}).Extract(); err != nil {
		t.Fatal(err)
	}
	e.waitActive(lb.ID)
	e.srv.ObserveNow()
	m0, _ := pools.GetMember(ctx, c, p.ID, members[0].ID).Extract()
	m1, _ := pools.GetMember(ctx, c, p.ID, members[1].ID).Extract()
	if m0.OperatingStatus != "DRAINING" || m1.OperatingStatus != "OFFLINE" || m0.Weight != 0 || m0.UpdatedAt.IsZero() {
		t.Fatalf("drained and down members: %+v / %+v", m0, m1)
	}
	if sp := e.agent.spec(lb.ID); sp.Pools[0].Members[0].Weight != 0 || sp.Pools[0].Members[1].AdminUp {
		t.Fatalf("spec after member updates: %+v", sp.Pools[0].Members)
	}
	delay := 10
	if got, err := monitors.Update(ctx, c, hm.ID, monitors.UpdateOpts{Delay: delay}).Extract(); err != nil || got.Delay != 10 {
		t.Fatalf("monitor update: %+v %v", got, err)
	}
	e.waitActive(lb.ID)

	// Batch update: member 1 goes, member 0 gets weight 5, a new one comes.
	w5 := 5
	err = pools.BatchUpdateMembers(ctx, c, p.ID, []pools.BatchUpdateMemberOpts{
		{Address: "198.18.0.11", ProtocolPort: 8080, Weight: &w5},
		{Address: "198.18.0.13", ProtocolPort: 8080},
	}).ExtractErr()
	if err != nil {
		t.Fatal(err)
	}
	e.waitActive(lb.ID)
	all, err := pools.ListMembers(c, p.ID, nil).AllPages(ctx)
	if err != nil {
		t.Fatal(err)
	}
	ms, _ := pools.ExtractMembers(all)
	if len(ms) != 2 || ms[0].ID != members[0].ID || ms[0].Weight != 5 || ms[1].Address != "198.18.0.13" || ms[1].Weight != 1 {
		t.Fatalf("members after batch update: %+v", ms)
	}

	// Failover applies again from scratch.
	if err := loadbalancers.Failover(ctx, c, lb.ID).ExtractErr(); err != nil {
		t.Fatal(err)
	}
	if got := e.waitActive(lb.ID); got.ProvisioningStatus != "ACTIVE" {
		t.Fatalf("after failover: %s", got.ProvisioningStatus)
	}

	// Delete without cascade is refused; with it everything goes.
	if err := loadbalancers.Delete(ctx, c, lb.ID, nil).ExtractErr(); !gophercloud.ResponseCodeIs(err, 400) ||
		!strings.Contains(err.Error(), "it has children") {
		t.Fatalf("delete without cascade: %v", err)
	}
	if err := loadbalancers.Delete(ctx, c, lb.ID, loadbalancers.DeleteOpts{Cascade: true}).ExtractErr(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, err := loadbalancers.Get(ctx, c, lb.ID).Extract()
		if gophercloud.ResponseCodeIs(err, 404) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("load balancer not deleted: %v", err)
		}
		time.Sleep(5 * time.Millisecond)
	}
	if _, err := pools.Get(ctx, c, p.ID).Extract(); !gophercloud.ResponseCodeIs(err, 404) {
		t.Fatalf("pool after cascade delete: %v", err)
	}
	e.agent.mu.Lock()
	defer e.agent.mu.Unlock()
	if len(e.agent.deletes) != 2 || e.agent.deletes[1] != lb.ID { // failover, then delete
		t.Fatalf("agent deletes: %v", e.agent.deletes)
	}
}

func TestListFilterPaginate(t *testing.T) {
	e := newEnv(t)
	c := e.client
	var ids []string
	for _, n := range []string{"b", "a", "c"} {
		ids = append(ids, e.createLB(n).ID)
	}
	// The pool of 3 addresses is used up.
	_, err := loadbalancers.Create(ctx, c, loadbalancers.CreateOpts{VipSubnetID: subnetID}).Extract()
	if !gophercloud.ResponseCodeIs(err, 409) {
		t.Fatalf("fourth VIP: %v", err)
	}

	// Pages of 2, followed by gophercloud through the next links.
	var pages, got []string
	err = loadbalancers.List(c, loadbalancers.ListOpts{Limit: 2}).EachPage(ctx, func(_ context.Context, pg pagination.Page) (bool, error) {
		lbs, err := loadbalancers.ExtractLoadBalancers(pg)
		var names []string
		for _, lb := range lbs {
			names = append(names, lb.Name)
			got = append(got, lb.ID)
		}
		pages = append(pages, strings.Join(names, ","))
		return true, err
	})
	if err != nil || strings.Join(pages, "|") != "b,a|c" || strings.Join(got, ",") != strings.Join(ids, ",") {
		t.Fatalf("pages %q, ids %v: %v", pages, got, err)
	}

	// Sorted by name, descending, from a marker.
	all, err := loadbalancers.List(c, loadbalancers.ListOpts{SortKey: "name", SortDir: "desc", Marker: ids[2]}).AllPages(ctx)
	if err != nil {
		t.Fatal(err)
	}
	lbs, _ := loadbalancers.ExtractLoadBalancers(all)
	if len(lbs) != 2 || lbs[0].Name != "b" || lbs[1].Name != "a" {
		t.Fatalf("after marker c, by name desc: %+v", lbs)
	}

	// Filters.
	all, _ = loadbalancers.List(c, loadbalancers.ListOpts{Name: "a"}).AllPages(ctx)
	if lbs, _ := loadbalancers.ExtractLoadBalancers(all); len(lbs) != 1 || lbs[0].ID != ids[1] {
		t.Fatalf("name=a: %+v", lbs)
	}
	all, _ = loadbalancers.List(c, loadbalancers.ListOpts{VipAddress: "198.18.0.102", ProvisioningStatus: "ACTIVE"}).AllPages(ctx)
	if lbs, _ := loadbalancers.ExtractLoadBalancers(all); len(lbs) != 1 || lbs[0].ID != ids[2] {
		t.Fatalf("vip_address filter: %+v", lbs)
	}

	// sort=key:dir, page_reverse and fields through plain HTTP.
	code, body := e.raw("GET", "/v2/lbaas/loadbalancers?sort=name:asc&fields=name&fields=id", "")
	list := body["loadbalancers"].([]any)
	if code != 200 || len(list) != 3 || list[0].(map[string]any)["name"] != "a" || len(list[0].(map[string]any)) != 2 {
		t.Fatalf("sort=name:asc&fields: %d %v", code, body)
	}
	code, body = e.raw("GET", "/v2/lbaas/loadbalancers?limit=1&marker="+ids[2]+"&page_reverse=true", "")
	list = body["loadbalancers"].([]any)
	if code != 200 || len(list) != 1 || list[0].(map[string]any)["id"] != ids[1] {
		t.Fatalf("page_reverse: %d %v", code, body)
	}
	links := body["loadbalancers_links"].([]any)
	if len(links) != 2 {
		t.Fatalf("links of a middle page: %v", links)
	}
	for _, q := range []struct{ query, msg string }{
		{"sort_key=bogus", "Supplied sort key 'bogus' is not valid."},
		{"sort_dir=sideways", "Supplied sort direction 'sideways' is not valid."},
		{"marker=" + unknownID, "Supplied pagination marker '" + unknownID + "' is not valid."},
		{"limit=x", "Supplied pagination limit 'x' is not valid."},
	} {
		code, body := e.raw("GET", "/v2.0/lbaas/loadbalancers?"+q.query, "")
		if code != 400 || body["faultstring"] != q.msg {
			t.Errorf("%s: %d %v", q.query, code, body)
		}
	}

	// Listeners filtered by load balancer; members by port.
	for i, id := range ids[:2] {
		if _, err := listeners.Create(ctx, c, listeners.CreateOpts{LoadbalancerID: id, Protocol: listeners.ProtocolUDP, ProtocolPort: 53 + i}).Extract(); err != nil {
			t.Fatal(err)
		}
		e.waitActive(id)
	}
	all, _ = listeners.List(c, listeners.ListOpts{LoadbalancerID: ids[1]}).AllPages(ctx)
	if ls, _ := listeners.ExtractListeners(all); len(ls) != 1 || ls[0].ProtocolPort != 54 || ls[0].Protocol != "UDP" {
		t.Fatalf("listeners of %s: %+v", ids[1], ls)
	}
}

func TestBadRequests(t *testing.T) {
	e := newEnv(t)
	lb := e.createLB("lb")
	code, body := e.raw("POST", "/v2/lbaas/listeners", `{"listener": {"loadbalancer_id": "`+lb.ID+`", "protocol": "UDP", "protocol_port": 53}}`)
	if code != 201 {
		t.Fatal(code, body)
	}
	lid := body["listener"].(map[string]any)["id"].(string)
	e.waitActive(lb.ID)
	code, body = e.raw("POST", "/v2/lbaas/pools", `{"pool": {"listener_id": "`+lid+`", "protocol": "UDP", "lb_algorithm": "ROUND_ROBIN"}}`)
	if code != 201 {
		t.Fatal(code, body)
	}
	pid := body["pool"].(map[string]any)["id"].(string)
	e.waitActive(lb.ID)
	code, body = e.raw("POST", "/v2/lbaas/pools/"+pid+"/members", `{"member": {"address": "198.18.0.20", "protocol_port": 53}}`)
	if code != 201 {
		t.Fatal(code, body)
	}
	mid := body["member"].(map[string]any)["id"].(string)
	e.waitActive(lb.ID)
	tcpPool := ""
	code, body = e.raw("POST", "/v2/lbaas/pools", `{"pool": {"loadbalancer_id": "`+lb.ID+`", "protocol": "TCP", "lb_algorithm": "SOURCE_IP"}}`)
	if code != 201 {
		t.Fatal(code, body)
	}
	tcpPool = body["pool"].(map[string]any)["id"].(string)
	e.waitActive(lb.ID)

	snapshot := func() string {
		var b strings.Builder
		for _, path := range []string{"/v2/lbaas/loadbalancers", "/v2/lbaas/listeners", "/v2/lbaas/pools",
			"/v2/lbaas/pools/" + pid + "/members", "/v2/lbaas/healthmonitors"} {
			_, body := e.raw("GET", path, "")
			j, _ := json.Marshal(body)
			b.Write(j)
		}
		return b.String()
	}
	before := snapshot()
	applies := e.agent.applies

	lbURL := "/v2/lbaas/loadbalancers"
	for _, tc := range []struct {
		name, method, path, body string
		code                     int
		msg                      string
	}{
		{"lb without vip", "POST", lbURL, `{"loadbalancer": {"name": "x"}}`, 400,
			"Validation failure: VIP must contain one of: vip_port_id, vip_network_id, vip_subnet_id."},
		{"lb unknown subnet", "POST", lbURL, `{"loadbalancer": {"vip_subnet_id": "` + unknownID + `"}}`, 400,
			"Validation failure: Subnet " + unknownID + " not found."},
		{"lb bad uuid", "POST", lbURL, `{"loadbalancer": {"vip_subnet_id": "nope"}}`, 400,
			"Invalid input for field/attribute vip_subnet_id. Value: 'nope'. Value should be UUID format"},
		{"lb vip taken", "POST", lbURL, `{"loadbalancer": {"vip_subnet_id": "` + subnetID + `", "vip_address": "198.18.0.100"}}`, 409,
			"IP address 198.18.0.100 already allocated in subnet " + subnetID + "."},
		{"lb vip outside", "POST", lbURL, `{"loadbalancer": {"vip_subnet_id": "` + subnetID + `", "vip_address": "10.0.0.1"}}`, 400,
			"Validation failure: IP address 10.0.0.1 is not a valid IP for the specified subnet."},
		{"lb network without the vip's subnet", "POST", lbURL, `{"loadbalancer": {"vip_network_id": "` + netID + `", "vip_address": "198.19.5.10"}}`, 400,
			"Validation failure: Supplied network does not contain a subnet for VIP address specified."},
		{"lb unknown attribute", "POST", lbURL, `{"loadbalancer": {"vip_subnet_id": "` + subnetID + `", "colour": "red"}}`, 400,
			"Unknown attribute for argument loadbalancer: colour"},
		{"lb other provider", "POST", lbURL, `{"loadbalancer": {"vip_subnet_id": "` + subnetID + `", "provider": "amphora"}}`, 400,
			"Provider 'amphora' is not enabled."},
		{"lb no body", "POST", lbURL, `{}`, 400, "Invalid input for field/attribute loadbalancer. Value: 'None'. Mandatory field missing."},
		{"lb admin_state_up not bool", "PUT", lbURL + "/" + lb.ID, `{"loadbalancer": {"admin_state_up": "yes"}}`, 400,
			"Invalid input for field/attribute admin_state_up. Value: 'yes'. Wrong type. Expected 'bool', got 'str'"},
		{"lb unknown", "GET", lbURL + "/" + unknownID, "", 404, "Load Balancer " + unknownID + " not found."},
		{"lb update unknown", "PUT", lbURL + "/" + unknownID, `{"loadbalancer": {"name": "x"}}`, 404, "Load Balancer " + unknownID + " not found."},
		{"lb stats unknown", "GET", lbURL + "/" + unknownID + "/stats", "", 404, "Load Balancer " + unknownID + " not found."},

		{"listener missing protocol", "POST", "/v2/lbaas/listeners", `{"listener": {"loadbalancer_id": "` + lb.ID + `", "protocol_port": 80}}`, 400,
			"Invalid input for field/attribute protocol. Value: 'None'. Mandatory field missing."},
		{"listener bad protocol", "POST", "/v2/lbaas/listeners", `{"listener": {"loadbalancer_id": "` + lb.ID + `", "protocol": "FTP", "protocol_port": 21}}`, 400,
			"Invalid input for field/attribute protocol. Value: 'FTP'. Value should be one of: HTTP, HTTPS, TCP, TERMINATED_HTTPS, UDP, SCTP, PROMETHEUS"},
		{"listener HTTP", "POST", "/v2/lbaas/listeners", `{"listener": {"loadbalancer_id": "` + lb.ID + `", "protocol": "HTTP", "protocol_port": 80}}`, 501,
			"Provider 'gvs' does not support a requested option: HTTP listeners (an L4 LVS provider: TCP, UDP and SCTP only)"},
		{"listener port 0", "POST", "/v2/lbaas/listeners", `{"listener": {"loadbalancer_id": "` + lb.ID + `", "protocol": "TCP", "protocol_port": 0}}`, 400,
			"Invalid input for field/attribute protocol_port. Value: '0'. Value should be greater or equal to 1"},
		{"listener port 70000", "POST", "/v2/lbaas/listeners", `{"listener": {"loadbalancer_id": "` + lb.ID + `", "protocol": "TCP", "protocol_port": 70000}}`, 400,
			"Invalid input for field/attribute protocol_port. Value: '70000'. Value should be lower or equal to 65535"},
		{"listener duplicate", "POST", "/v2/lbaas/listeners", `{"listener": {"loadbalancer_id": "` + lb.ID + `", "protocol": "UDP", "protocol_port": 53}}`, 409,
			"Another Listener on this Load Balancer is already using protocol UDP and protocol_port 53"},
		{"listener unknown lb", "POST", "/v2/lbaas/listeners", `{"listener": {"loadbalancer_id": "` + unknownID + `", "protocol": "TCP", "protocol_port": 80}}`, 404,
			"Load Balancer " + unknownID + " not found."},
		{"listener pool of another protocol", "POST", "/v2/lbaas/listeners", `{"listener": {"loadbalancer_id": "` + lb.ID + `", "protocol": "TCP", "protocol_port": 80, "default_pool_id": "` + pid + `"}}`, 400,
			"Validation failure: The pool protocol 'UDP' is invalid while the listener protocol is 'TCP'."},
		{"listener tls", "POST", "/v2/lbaas/listeners", `{"listener": {"loadbalancer_id": "` + lb.ID + `", "protocol": "TCP", "protocol_port": 80, "insert_headers": {"X-Forwarded-For": "true"}}}`, 501,
			"Provider 'gvs' does not support a requested option: insert_headers (an L4 LVS provider)"},
		{"listener update protocol", "PUT", "/v2/lbaas/listeners/" + lid, `{"listener": {"protocol": "TCP"}}`, 400,
			"Unknown attribute for argument listener: protocol"},

		{"pool without lb", "POST", "/v2/lbaas/pools", `{"pool": {"protocol": "TCP", "lb_algorithm": "ROUND_ROBIN"}}`, 400,
			"Validation failure: Must provide at least one of: loadbalancer_id, listener_id"},
		{"pool bad algorithm", "POST", "/v2/lbaas/pools", `{"pool": {"loadbalancer_id": "` + lb.ID + `", "protocol": "TCP", "lb_algorithm": "RANDOM"}}`, 400,
			"Invalid input for field/attribute lb_algorithm. Value: 'RANDOM'. Value should be one of: ROUND_ROBIN, LEAST_CONNECTIONS, SOURCE_IP, SOURCE_IP_PORT"},
		{"pool cookie persistence", "POST", "/v2/lbaas/pools", `{"pool": {"loadbalancer_id": "` + lb.ID + `", "protocol": "TCP", "lb_algorithm": "ROUND_ROBIN", "session_persistence": {"type": "HTTP_COOKIE"}}}`, 400,
			"Validation failure: Session persistence of type HTTP_COOKIE is not supported for TCP protocol pools."},
		{"pool listener has one", "POST", "/v2/lbaas/pools", `{"pool": {"listener_id": "` + lid + `", "protocol": "UDP", "lb_algorithm": "ROUND_ROBIN"}}`, 409,
			"This listener already has a default pool"},
		{"pool HTTP", "POST", "/v2/lbaas/pools", `{"pool": {"loadbalancer_id": "` + lb.ID + `", "protocol": "HTTP", "lb_algorithm": "ROUND_ROBIN"}}`, 501,
			"Provider 'gvs' does not support a requested option: HTTP pools (an L4 LVS provider: TCP, UDP and SCTP only)"},
		{"pool unknown", "PUT", "/v2/lbaas/pools/" + unknownID, `{"pool": {"name": "x"}}`, 404, "Pool " + unknownID + " not found."},

		{"member weight 257", "POST", "/v2/lbaas/pools/" + pid + "/members", `{"member": {"address": "198.18.0.21", "protocol_port": 53, "weight": 257}}`, 400,
			"Invalid input for field/attribute weight. Value: '257'. Value should be lower or equal to 256"},
		{"member missing address", "POST", "/v2/lbaas/pools/" + pid + "/members", `{"member": {"protocol_port": 53}}`, 400,
			"Invalid input for field/attribute address. Value: 'None'. Mandatory field missing."},
		{"member bad address", "POST", "/v2/lbaas/pools/" + pid + "/members", `{"member": {"address": "host.example", "protocol_port": 53}}`, 400,
			"Invalid input for field/attribute address. Value: 'host.example'. Value should be IPv4 or IPv6 format"},
		{"member duplicate", "POST", "/v2/lbaas/pools/" + pid + "/members", `{"member": {"address": "198.18.0.20", "protocol_port": 53}}`, 409,
			"Another member on this pool is already using ip 198.18.0.20 on protocol_port 53"},
		{"member unknown subnet", "POST", "/v2/lbaas/pools/" + pid + "/members", `{"member": {"address": "198.18.0.21", "protocol_port": 53, "subnet_id": "` + unknownID + `"}}`, 404,
			"Subnet " + unknownID + " not found."},
		{"member unknown pool", "POST", "/v2/lbaas/pools/" + unknownID + "/members", `{"member": {"address": "198.18.0.21", "protocol_port": 53}}`, 404,
			"Pool " + unknownID + " not found."},
		{"member unknown", "GET", "/v2/lbaas/pools/" + pid + "/members/" + unknownID, "", 404, "Member " + unknownID + " not found."},
		{"member weight float", "PUT", "/v2/lbaas/pools/" + pid + "/members/" + mid, `{"member": {"weight": 1.5}}`, 400,
			"Invalid input for field/attribute weight. Value: '1.5'. Wrong type. Expected 'int', got 'float'"},
		{"batch twice the same", "PUT", "/v2/lbaas/pools/" + pid + "/members", `{"members": [{"address": "198.18.0.30", "protocol_port": 53}, {"address": "198.18.0.30", "protocol_port": 53}]}`, 400,
			"Validation failure: Member must be updated only once in the same request."},
		{"batch bad weight", "PUT", "/v2/lbaas/pools/" + pid + "/members", `{"members": [{"address": "198.18.0.30", "protocol_port": 53, "weight": -1}]}`, 400,
			"Invalid input for field/attribute weight. Value: '-1'. Value should be greater or equal to 0"},

		{"hm missing delay", "POST", "/v2/lbaas/healthmonitors", `{"healthmonitor": {"pool_id": "` + pid + `", "type": "UDP-CONNECT", "timeout": 3, "max_retries": 3}}`, 400,
			"Invalid input for field/attribute delay. Value: 'None'. Mandatory field missing."},
		{"hm max_retries 11", "POST", "/v2/lbaas/healthmonitors", `{"healthmonitor": {"pool_id": "` + pid + `", "type": "UDP-CONNECT", "delay": 5, "timeout": 3, "max_retries": 11}}`, 400,
			"Invalid input for field/attribute max_retries. Value: '11'. Value should be lower or equal to 10"},
		{"hm max_retries_down 0", "POST", "/v2/lbaas/healthmonitors", `{"healthmonitor": {"pool_id": "` + pid + `", "type": "UDP-CONNECT", "delay": 5, "timeout": 3, "max_retries": 3, "max_retries_down": 0}}`, 400,
			"Invalid input for field/attribute max_retries_down. Value: '0'. Value should be greater or equal to 1"},
		{"hm timeout over delay", "POST", "/v2/lbaas/healthmonitors", `{"healthmonitor": {"pool_id": "` + pid + `", "type": "UDP-CONNECT", "delay": 5, "timeout": 6, "max_retries": 3}}`, 400,
			"Validation failure: timeout (6) must not exceed delay (5): a check must end before the next one starts."},
		{"hm PING on UDP", "POST", "/v2/lbaas/healthmonitors", `{"healthmonitor": {"pool_id": "` + pid + `", "type": "PING", "delay": 5, "timeout": 3, "max_retries": 3}}`, 400,
			"Validation failure: The associated pool protocol is UDP, so only a UDP-CONNECT/SCTP/TCP/HTTP health monitor is supported."},
		{"hm UDP-CONNECT on TCP", "POST", "/v2/lbaas/healthmonitors", `{"healthmonitor": {"pool_id": "` + tcpPool + `", "type": "UDP-CONNECT", "delay": 5, "timeout": 3, "max_retries": 3}}`, 400,
			"Validation failure: The UDP-CONNECT type is only supported for pools of type UDP/SCTP."},
		{"hm UDP-CONNECT delay 1", "POST", "/v2/lbaas/healthmonitors", `{"healthmonitor": {"pool_id": "` + pid + `", "type": "UDP-CONNECT", "delay": 1, "timeout": 1, "max_retries": 3}}`, 400,
			"Validation failure: The request delay value 1 should be larger than 3 for UDP-CONNECT health monitor type."},
		{"hm url_path on TCP", "POST", "/v2/lbaas/healthmonitors", `{"healthmonitor": {"pool_id": "` + tcpPool + `", "type": "TCP", "delay": 5, "timeout": 3, "max_retries": 3, "url_path": "/x"}}`, 400,
			"url_path is not a valid option for health monitors of type TCP"},
		{"hm bad type", "POST", "/v2/lbaas/healthmonitors", `{"healthmonitor": {"pool_id": "` + tcpPool + `", "type": "ICMP", "delay": 5, "timeout": 3, "max_retries": 3}}`, 400,
			"Invalid input for field/attribute type. Value: 'ICMP'. Value should be one of: HTTP, HTTPS, PING, TCP, TLS-HELLO, UDP-CONNECT, SCTP"},
		{"hm bad expected codes", "POST", "/v2/lbaas/healthmonitors", `{"healthmonitor": {"pool_id": "` + tcpPool + `", "type": "HTTP", "delay": 5, "timeout": 3, "max_retries": 3, "expected_codes": "2xx"}}`, 400,
			"Invalid input for field/attribute expected_codes. Value: '2xx'. Value should match the pattern ^(\\d{3}(\\s*,\\s*\\d{3})*)$|^(\\d{3}-\\d{3})$"},
		{"hm unknown pool", "POST", "/v2/lbaas/healthmonitors", `{"healthmonitor": {"pool_id": "` + unknownID + `", "type": "TCP", "delay": 5, "timeout": 3, "max_retries": 3}}`, 404,
			"Pool " + unknownID + " not found."},
		{"hm unknown", "DELETE", "/v2/lbaas/healthmonitors/" + unknownID, "", 404, "Health Monitor " + unknownID + " not found."},
	} {
		code, body := e.raw(tc.method, tc.path, tc.body)
		if code != tc.code || body["faultstring"] != tc.msg {
			t.Errorf("%s: got %d %q, want %d %q", tc.name, code, body["faultstring"], tc.code, tc.msg)
		}
	}
	if after := snapshot(); after != before {
		t.Errorf("bad requests changed something:\n%s\n%s", before, after)
	}
	if e.agent.applies != applies {
		t.Errorf("bad requests made the agent apply")
	}
}

func TestImmutableWhilePending(t *testing.T) {
	e := newEnv(t)
	gate := make(chan struct{})
	e.agent.mu.Lock()
	e.agent.gate = gate
	e.agent.mu.Unlock()
	lb, err := loadbalancers.Create(ctx, e.client, loadbalancers.CreateOpts{VipNetworkID: netID}).Extract()
	if err != nil {
		t.Fatal(err)
	}
	want := "Load Balancer " + lb.ID + " is immutable and cannot be updated."
	_, err = listeners.Create(ctx, e.client, listeners.CreateOpts{LoadbalancerID: lb.ID, Protocol: listeners.ProtocolTCP, ProtocolPort: 80}).Extract()
	if !gophercloud.ResponseCodeIs(err, 409) || !strings.Contains(err.Error(), want) {
		t.Fatalf("listener on a PENDING_CREATE load balancer: %v", err)
	}
	name := "x"
	_, err = loadbalancers.Update(ctx, e.client, lb.ID, loadbalancers.UpdateOpts{Name: &name}).Extract()
	if !gophercloud.ResponseCodeIs(err, 409) || !strings.Contains(err.Error(), "Invalid state PENDING_CREATE of loadbalancer resource "+lb.ID) {
		t.Fatalf("update of a PENDING_CREATE load balancer: %v", err)
	}
	err = loadbalancers.Delete(ctx, e.client, lb.ID, nil).ExtractErr()
	if !gophercloud.ResponseCodeIs(err, 409) || !strings.Contains(err.Error(), "Invalid state PENDING_CREATE of loadbalancer resource "+lb.ID) {
		t.Fatalf("delete of a PENDING_CREATE load balancer: %v", err)
	}
	if got, _ := loadbalancers.Get(ctx, e.client, lb.ID).Extract(); got.Name != "" || len(got.Listeners) != 0 {
		t.Fatalf("refused changes changed it: %+v", got)
	}
	close(gate)
	if got := e.waitActive(lb.ID); got.ProvisioningStatus != "ACTIVE" {
		t.Fatal(got.ProvisioningStatus)
	}
}

func TestApplyFailure(t *testing.T) {
	e := newEnv(t)
	lb := e.createLB("ok")
	e.agent.mu.Lock()
	e.agent.fail = errors.New("namespace trouble")
	e.agent.mu.Unlock()
	l, err := listeners.Create(ctx, e.client, listeners.CreateOpts{LoadbalancerID: lb.ID, Protocol: listeners.ProtocolSCTP, ProtocolPort: 9}).Extract()
	if err != nil {
		t.Fatal(err)
	}
	if got := e.waitActive(lb.ID); got.ProvisioningStatus != "ACTIVE" {
		t.Fatalf("a failed child change leaves the load balancer %s", got.ProvisioningStatus)
	}
	if got, _ := listeners.Get(ctx, e.client, l.ID).Extract(); got.ProvisioningStatus != "ERROR" {
		t.Fatalf("listener the agent failed: %s", got.ProvisioningStatus)
	}
	lb2, err := loadbalancers.Create(ctx, e.client, loadbalancers.CreateOpts{VipSubnetID: subnetID}).Extract()
	if err != nil {
		t.Fatal(err)
	}
	if got := e.waitActive(lb2.ID); got.ProvisioningStatus != "ERROR" || got.OperatingStatus != "ERROR" {
		t.Fatalf("a load balancer the agent failed to create: %s/%s", got.ProvisioningStatus, got.OperatingStatus)
	}
}

func TestRestart(t *testing.T) {
	e := newEnv(t)
	lb := e.createLB("kept")
	if _, err := listeners.Create(ctx, e.client, listeners.CreateOpts{LoadbalancerID: lb.ID, Protocol: listeners.ProtocolTCP, ProtocolPort: 443}).Extract(); err != nil {
		t.Fatal(err)
	}
	e.waitActive(lb.ID)
	e.stop()
	e.agent = newFakeAgent()
	e.start()
	deadline := time.Now().Add(10 * time.Second)
	for e.agent.spec(lb.ID) == nil {
		if time.Now().After(deadline) {
			t.Fatal("the restored load balancer was not applied again")
		}
		time.Sleep(5 * time.Millisecond)
	}
	if sp := e.agent.spec(lb.ID); len(sp.Listeners) != 1 || sp.Listeners[0].ProtocolPort != 443 || sp.VIP.String() != lb.VipAddress {
		t.Fatalf("restored spec: %+v", sp)
	}
	got := e.waitActive(lb.ID)
	if got.Name != "kept" || len(got.Listeners) != 1 {
		t.Fatalf("restored: %+v", got)
	}
	// A new load balancer does not take the restored one's VIP.
	if lb2 := e.createLB("new"); lb2.VipAddress == lb.VipAddress {
		t.Fatalf("VIP %s given twice", lb2.VipAddress)
	}
}

func TestVersionDiscovery(t *testing.T) {
	e := newEnv(t)
	code, body := e.raw("GET", "/", "")
	vs, _ := body["versions"].([]any)
	if code != 200 || len(vs) == 0 {
		t.Fatalf("GET /: %d %v", code, body)
	}
	last := vs[len(vs)-1].(map[string]any)
	links := last["links"].([]any)
	if last["status"] != "CURRENT" || links[0].(map[string]any)["href"] != e.ts.URL+"/v2" {
		t.Fatalf("current version: %v", last)
	}
	for _, p := range []string{"/v2", "/v2/", "/v2.0/lbaas/loadbalancers", "/v2.0/lbaas/loadbalancers/", "/v2/lbaas/providers"} {
		if code, body := e.raw("GET", p, ""); code != 200 {
			t.Errorf("GET %s: %d %v", p, code, body)
		}
	}
}

func TestConfig(t *testing.T) {
	for _, bad := range []string{
		"networks: [{id: n, bridge: b, subnets: [{id: s, cidr: 10.0.0.0/24, allocation_pools: [{start: 10.0.1.1, end: 10.0.1.2}]}]}]",
		"networks: [{id: n, subnets: [{id: s, cidr: 10.0.0.0/24, allocation_pools: [{start: 10.0.0.1, end: 10.0.0.2}]}]}]",
		"engine: dpdk",
		"colour: red",
	} {
		if _, err := lbaas.ParseConfig([]byte(bad)); err == nil {
			t.Errorf("accepted %q", bad)
		}
	}
}

func TestPoolWithMembersAndMonitor(t *testing.T) {
	e := newEnv(t)
	lb := e.createLB("one-call")
	code, body := e.raw("POST", "/v2/lbaas/pools", `{"pool": {"loadbalancer_id": "`+lb.ID+`", "protocol": "UDP",
		"lb_algorithm": "SOURCE_IP_PORT", "session_persistence": {"type": "SOURCE_IP", "persistence_timeout": 60, "persistence_granularity": "255.255.255.0"},
		"members": [{"address": "198.18.0.31", "protocol_port": 53, "backup": true}, {"address": "198.18.0.32", "protocol_port": 53, "monitor_port": 5353}],
		"healthmonitor": {"type": "HTTP", "delay": 5, "timeout": 2, "max_retries": 2, "url_path": "/health", "http_version": 1.1, "domain_name": "dns.example"}}}`)
	if code != 201 {
		t.Fatal(code, body)
	}
	e.waitActive(lb.ID)
	sp := e.agent.spec(lb.ID)
	if len(sp.Pools) != 1 {
		t.Fatalf("spec: %+v", sp)
	}
	p := sp.Pools[0]
	h := p.HealthMonitor
	if p.LBAlgorithm != "SOURCE_IP_PORT" || p.SessionPersistence.PersistenceTimeout != 60 ||
		p.SessionPersistence.PersistenceGranularity != "255.255.255.0" || len(p.Members) != 2 ||
		!p.Members[0].Backup || p.Members[1].MonitorPort != 5353 || h == nil || h.URLPath != "/health" ||
		h.HTTPMethod != "GET" || h.ExpectedCodes != "200" || h.HTTPVersion != "1.1" || h.DomainName != "dns.example" {
		b, _ := json.Marshal(sp)
		t.Fatalf("spec: %s", b)
	}
	got, err := monitors.Get(ctx, e.client, h.ID).Extract()
	if err != nil || got.HTTPVersion != "1.1" || got.URLPath != "/health" || got.ProvisioningStatus != "ACTIVE" {
		t.Fatalf("monitor: %+v %v", got, err)
	}
	all, _ := monitors.List(e.client, monitors.ListOpts{PoolID: p.ID}).AllPages(ctx)
	if hms, _ := monitors.ExtractMonitors(all); len(hms) != 1 || hms[0].ID != h.ID {
		t.Fatalf("monitors of the pool: %+v", hms)
	}
	if err := monitors.Delete(ctx, e.client, h.ID).ExtractErr(); err != nil {
		t.Fatal(err)
	}
	e.waitActive(lb.ID)
	if sp := e.agent.spec(lb.ID); sp.Pools[0].HealthMonitor != nil {
		t.Fatal("the deleted monitor is still applied")
	}
	if err := pools.Delete(ctx, e.client, p.ID).ExtractErr(); err != nil {
		t.Fatal(err)
	}
	e.waitActive(lb.ID)
	if sp := e.agent.spec(lb.ID); len(sp.Pools) != 0 {
		t.Fatal("the deleted pool is still applied")
	}
}
