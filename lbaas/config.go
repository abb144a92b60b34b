package lbaas

import (
	"bytes"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"time"

	"go.yaml.in/yaml/v3"
)

// Config is gvs-lbaas's configuration file: the networks VIPs are
// allocated from, and the engine every load balancer's gvsd runs.
type Config struct {
	// Engine is the engine of each load balancer's gvsd: xdp or proxy
	// (the agent's business; the API only carries it).
	Engine string `yaml:"engine"`
	// Forwarding is how members are reached (the agent's business):
	// "auto" (default: NAT for members on the VIP's subnet, whose
	// replies come back through the load balancer as their gateway,
	// FULLNAT for the others) or "fullnat" (FULLNAT for all: members
	// that reply straight to clients, e.g. on the clients' segment).
	Forwarding string `yaml:"forwarding"`
	// Provider is the name the API gives its provider (the "provider"
	// field of a load balancer); default "gvs".
	Provider string `yaml:"provider"`
	// ObserveInterval is how often each ACTIVE load balancer is observed
	// (Agent.Observe) for operating_status and stats; default 2s.
	ObserveInterval time.Duration `yaml:"observe_interval"`
	// ApplyTimeout bounds one Agent.Apply or Agent.Delete; default 2m.
	ApplyTimeout time.Duration `yaml:"apply_timeout"`
	// UDPConnectMinDelay is the smallest delay of a UDP-CONNECT health
	// monitor (Octavia's udp_connect_min_interval_health_monitor);
	// default 3.
	UDPConnectMinDelay *int `yaml:"udp_connect_min_delay"`
	// ProjectID is the project_id given to resources created without
	// one (there is no Keystone to say whose they are).
	ProjectID string    `yaml:"project_id"`
	Networks  []Network `yaml:"networks"`
}

// Network is a network VIPs can be plugged into: a Linux bridge.
type Network struct {
	ID      string   `yaml:"id"`
	Name    string   `yaml:"name"`
	Bridge  string   `yaml:"bridge"`
	Subnets []Subnet `yaml:"subnets"`
}

// Subnet is a subnet of a network, with the ranges VIPs are allocated
// from.
type Subnet struct {
	ID              string           `yaml:"id"`
	Name            string           `yaml:"name"`
	CIDR            netip.Prefix     `yaml:"cidr"`
	Gateway         netip.Addr       `yaml:"gateway"`
	AllocationPools []AllocationPool `yaml:"allocation_pools"`
}

// AllocationPool is an inclusive range of addresses.
type AllocationPool struct {
	Start netip.Addr `yaml:"start"`
	End   netip.Addr `yaml:"end"`
}

// LoadConfig reads and checks a configuration file.
func LoadConfig(path string) (*Config, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return ParseConfig(b)
}

// ParseConfig reads and checks a configuration in YAML; unknown keys are
// refused.
func ParseConfig(b []byte) (*Config, error) {
	var c Config
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&c); err != nil {
		return nil, fmt.Errorf("lbaas config: %w", err)
	}
	if err := c.check(); err != nil {
		return nil, fmt.Errorf("lbaas config: %w", err)
	}
	return &c, nil
}

func (c *Config) check() error {
	switch c.Engine {
	case "", "xdp", "proxy", "auto":
	default:
		return fmt.Errorf("engine %q: want xdp, proxy or auto", c.Engine)
	}
	switch c.Forwarding {
	case "":
		c.Forwarding = "auto"
	case "auto", "fullnat":
	default:
		return fmt.Errorf("forwarding %q: want auto or fullnat", c.Forwarding)
	}
	if c.Provider == "" {
		c.Provider = "gvs"
	}
	if c.ObserveInterval == 0 {
		c.ObserveInterval = 2 * time.Second
	}
	if c.ObserveInterval < 0 {
		return errors.New("observe_interval must be positive")
	}
	if c.ApplyTimeout == 0 {
		c.ApplyTimeout = 2 * time.Minute
	}
	if c.UDPConnectMinDelay == nil {
		d := 3
		c.UDPConnectMinDelay = &d
	}
	ids := map[string]bool{}
	for i := range c.Networks {
		n := &c.Networks[i]
		if n.ID == "" {
			return fmt.Errorf("networks[%d]: no id", i)
		}
		if ids[n.ID] {
			return fmt.Errorf("network %s: id used twice", n.ID)
		}
		ids[n.ID] = true
		if n.Bridge == "" {
			return fmt.Errorf("network %s: no bridge", n.ID)
		}
		if len(n.Subnets) == 0 {
			return fmt.Errorf("network %s: no subnets", n.ID)
		}
		for j := range n.Subnets {
			s := &n.Subnets[j]
			if s.ID == "" {
				return fmt.Errorf("network %s: subnets[%d]: no id", n.ID, j)
			}
			if ids[s.ID] {
				return fmt.Errorf("subnet %s: id used twice", s.ID)
			}
			ids[s.ID] = true
			if !s.CIDR.IsValid() {
				return fmt.Errorf("subnet %s: no cidr", s.ID)
			}
			s.CIDR = s.CIDR.Masked()
			if s.Gateway.IsValid() && !s.CIDR.Contains(s.Gateway) {
				return fmt.Errorf("subnet %s: gateway %s is outside %s", s.ID, s.Gateway, s.CIDR)
			}
			if len(s.AllocationPools) == 0 {
				return fmt.Errorf("subnet %s: no allocation_pools", s.ID)
			}
			for _, p := range s.AllocationPools {
				if !s.CIDR.Contains(p.Start) || !s.CIDR.Contains(p.End) || p.End.Less(p.Start) {
					return fmt.Errorf("subnet %s: allocation pool %s-%s is not a range inside %s", s.ID, p.Start, p.End, s.CIDR)
				}
			}
		}
	}
	return nil
}

// subnet finds a subnet by id, with its network.
func (c *Config) subnet(id string) (*Network, *Subnet) {
	for i := range c.Networks {
		n := &c.Networks[i]
		for j := range n.Subnets {
			if n.Subnets[j].ID == id {
				return n, &n.Subnets[j]
			}
		}
	}
	return nil, nil
}

func (c *Config) network(id string) *Network {
	for i := range c.Networks {
		if c.Networks[i].ID == id {
			return &c.Networks[i]
		}
	}
	return nil
}

// usable says whether a can be given to a port on s: inside the CIDR and
// neither its network, broadcast nor gateway address.
func (s *Subnet) usable(a netip.Addr) bool {
	if !s.CIDR.Contains(a) || a == s.Gateway || a == s.CIDR.Addr() {
		return false
	}
	if a.Is4() && s.CIDR.Bits() < 31 {
		last := s.CIDR.Addr().As4()
		host := 32 - s.CIDR.Bits()
		for i := 3; i >= 0 && host > 0; i-- {
			n := min(host, 8)
			last[i] |= byte(1<<n - 1)
			host -= n
		}
		if a == netip.AddrFrom4(last) {
			return false
		}
	}
	return true
}

// allocate returns the first address of s's pools that is usable and not
// in used.
func (s *Subnet) allocate(used map[netip.Addr]bool) (netip.Addr, bool) {
	for _, p := range s.AllocationPools {
		for a := p.Start; a.IsValid() && !p.End.Less(a); a = a.Next() {
			if s.usable(a) && !used[a] {
				return a, true
			}
		}
	}
	return netip.Addr{}, false
}
