package lbaas

import (
	"crypto/rand"
	"encoding/json"
	"fmt"
	"net/netip"
	"time"
)

// Octavia's statuses.
const (
	statusActive        = "ACTIVE"
	statusPendingCreate = "PENDING_CREATE"
	statusPendingUpdate = "PENDING_UPDATE"
	statusPendingDelete = "PENDING_DELETE"
	statusError         = "ERROR"

	opOnline    = "ONLINE"
	opOffline   = "OFFLINE"
	opDegraded  = "DEGRADED"
	opError     = "ERROR"
	opNoMonitor = "NO_MONITOR"
	opDraining  = "DRAINING"
)

func pending(s string) bool {
	return s == statusPendingCreate || s == statusPendingUpdate || s == statusPendingDelete
}

// common are the fields every resource has.
type common struct {
	ID                 string    `json:"id"`
	Name               string    `json:"name"`
	Description        string    `json:"description,omitempty"`
	ProjectID          string    `json:"project_id"`
	AdminUp            bool      `json:"admin_state_up"`
	Tags               []string  `json:"tags,omitempty"`
	ProvisioningStatus string    `json:"provisioning_status"`
	OperatingStatus    string    `json:"operating_status"`
	CreatedAt          time.Time `json:"created_at"`
	UpdatedAt          time.Time `json:"updated_at,omitzero"`
}

// loadBalancer is a load balancer with its whole tree, as stored.
type loadBalancer struct {
	common
	VIPAddress   netip.Addr  `json:"vip_address"`
	VIPNetworkID string      `json:"vip_network_id"`
	VIPSubnetID  string      `json:"vip_subnet_id"`
	VIPPortID    string      `json:"vip_port_id"`
	Provider     string      `json:"provider"`
	Listeners    []*listener `json:"listeners,omitempty"`
	Pools        []*pool     `json:"pools,omitempty"`
	// Failover asks the worker to tear the load balancer down before
	// applying it again.
	Failover bool `json:"failover,omitempty"`
	// gen counts changes; the worker finalises statuses only when none
	// came while it applied.
	gen uint64
}

type listener struct {
	common
	Protocol             string `json:"protocol"`
	ProtocolPort         int    `json:"protocol_port"`
	ConnectionLimit      int    `json:"connection_limit"`
	DefaultPoolID        string `json:"default_pool_id,omitempty"`
	TimeoutClientData    int    `json:"timeout_client_data"`
	TimeoutMemberConnect int    `json:"timeout_member_connect"`
	TimeoutMemberData    int    `json:"timeout_member_data"`
	TimeoutTCPInspect    int    `json:"timeout_tcp_inspect"`
}

type pool struct {
	common
	Protocol           string              `json:"protocol"`
	LBAlgorithm        string              `json:"lb_algorithm"`
	SessionPersistence *SessionPersistence `json:"session_persistence,omitempty"`
	Members            []*member           `json:"members,omitempty"`
	HealthMonitor      *healthMonitor      `json:"healthmonitor,omitempty"`
}

type member struct {
	common
	Address        netip.Addr `json:"address"`
	ProtocolPort   int        `json:"protocol_port"`
	Weight         int        `json:"weight"`
	Backup         bool       `json:"backup"`
	SubnetID       string     `json:"subnet_id,omitempty"`
	MonitorAddress netip.Addr `json:"monitor_address,omitzero"`
	MonitorPort    int        `json:"monitor_port,omitempty"`
}

type healthMonitor struct {
	common
	Type           string `json:"type"`
	Delay          int    `json:"delay"`
	Timeout        int    `json:"timeout"`
	MaxRetries     int    `json:"max_retries"`
	MaxRetriesDown int    `json:"max_retries_down"`
	HTTPMethod     string `json:"http_method,omitempty"`
	URLPath        string `json:"url_path,omitempty"`
	ExpectedCodes  string `json:"expected_codes,omitempty"`
	HTTPVersion    string `json:"http_version,omitempty"` // "1.0", "1.1"
	DomainName     string `json:"domain_name,omitempty"`
}

func newID() string {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err)
	}
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

func now() time.Time { return time.Now().UTC() }

// clone is a deep copy of lb (the request handlers change a copy and
// swap it in only once it is stored).
func (lb *loadBalancer) clone() *loadBalancer {
	b, err := json.Marshal(lb)
	if err != nil {
		panic(err)
	}
	c := new(loadBalancer)
	if err := json.Unmarshal(b, c); err != nil {
		panic(err)
	}
	c.gen = lb.gen
	return c
}

func (lb *loadBalancer) listener(id string) *listener {
	for _, l := range lb.Listeners {
		if l.ID == id {
			return l
		}
	}
	return nil
}

func (lb *loadBalancer) pool(id string) *pool {
	for _, p := range lb.Pools {
		if p.ID == id {
			return p
		}
	}
	return nil
}

func (p *pool) member(id string) *member {
	for _, m := range p.Members {
		if m.ID == id {
			return m
		}
	}
	return nil
}

// listenersOf are the listeners whose default pool is p.
func (lb *loadBalancer) listenersOf(poolID string) []*listener {
	var ls []*listener
	for _, l := range lb.Listeners {
		if l.DefaultPoolID == poolID {
			ls = append(ls, l)
		}
	}
	return ls
}

// each calls f with the common part of every resource in lb's tree, lb
// included.
func (lb *loadBalancer) each(f func(*common)) {
	f(&lb.common)
	for _, l := range lb.Listeners {
		f(&l.common)
	}
	for _, p := range lb.Pools {
		f(&p.common)
		for _, m := range p.Members {
			f(&m.common)
		}
		if p.HealthMonitor != nil {
			f(&p.HealthMonitor.common)
		}
	}
}

// spec is what the agent must realise: lb without what is being deleted.
func (s *Server) spec(lb *loadBalancer) *Spec {
	sp := &Spec{ID: lb.ID, VIP: lb.VIPAddress, AdminUp: lb.AdminUp,
		Listeners: []ListenerSpec{}, Pools: []PoolSpec{}}
	if n, sub := s.cfg.subnet(lb.VIPSubnetID); sub != nil {
		sp.Network = NetworkRef{NetworkID: n.ID, SubnetID: sub.ID, Bridge: n.Bridge,
			CIDR: sub.CIDR, Gateway: sub.Gateway}
	}
	for _, l := range lb.Listeners {
		if l.ProvisioningStatus == statusPendingDelete {
			continue
		}
		ls := ListenerSpec{ID: l.ID, Protocol: l.Protocol, ProtocolPort: uint16(l.ProtocolPort),
			AdminUp: l.AdminUp, ConnectionLimit: l.ConnectionLimit, DefaultPoolID: l.DefaultPoolID}
		if p := lb.pool(l.DefaultPoolID); p == nil || p.ProvisioningStatus == statusPendingDelete {
			ls.DefaultPoolID = ""
		}
		sp.Listeners = append(sp.Listeners, ls)
	}
	for _, p := range lb.Pools {
		if p.ProvisioningStatus == statusPendingDelete {
			continue
		}
		ps := PoolSpec{ID: p.ID, Protocol: p.Protocol, LBAlgorithm: p.LBAlgorithm, AdminUp: p.AdminUp,
			Members: []MemberSpec{}}
		if p.SessionPersistence != nil {
			sp := *p.SessionPersistence
			ps.SessionPersistence = &sp
		}
		for _, m := range p.Members {
			if m.ProvisioningStatus == statusPendingDelete {
				continue
			}
			ps.Members = append(ps.Members, MemberSpec{ID: m.ID, Address: m.Address,
				ProtocolPort: uint16(m.ProtocolPort), Weight: m.Weight, AdminUp: m.AdminUp,
				Backup: m.Backup, SubnetID: m.SubnetID, MonitorAddress: m.MonitorAddress,
				MonitorPort: uint16(m.MonitorPort)})
		}
		if h := p.HealthMonitor; h != nil && h.ProvisioningStatus != statusPendingDelete {
			ps.HealthMonitor = &HealthMonitorSpec{ID: h.ID, Type: h.Type, Delay: h.Delay,
				Timeout: h.Timeout, MaxRetries: h.MaxRetries, MaxRetriesDown: h.MaxRetriesDown,
				HTTPMethod: h.HTTPMethod, URLPath: h.URLPath, ExpectedCodes: h.ExpectedCodes,
				HTTPVersion: h.HTTPVersion, DomainName: h.DomainName, AdminUp: h.AdminUp}
		}
		sp.Pools = append(sp.Pools, ps)
	}
	return sp
}
