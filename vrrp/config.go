// Package vrrp runs VRRP instances (RFC 5798 VRRPv3 and RFC 3768
// VRRPv2, keepalived's default being v2) interoperable with keepalived:
// the state machine with skew time, master-down interval, preemption and
// priority 0 on shutdown; raw IP protocol 112 sockets (multicast
// 224.0.0.18 / ff02::12, or unicast peers); the virtual addresses added
// on becoming master with gratuitous ARPs and unsolicited neighbour
// advertisements on keepalived's schedule; tracking of interfaces,
// scripts and gvs services; sync groups; keepalived's notify scripts.
package vrrp

import (
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"gvs/model"
)

// Config is the VRRP part of the config file.
type Config struct {
	// Version is global_defs vrrp_version: the default of the instances
	// (0: 2, as keepalived).
	Version int `json:"version,omitempty"`
	// GARP is global_defs vrrp_garp_*: the default of the instances.
	GARP       GARP          `json:"garp"`
	Scripts    []CheckScript `json:"scripts,omitempty"`
	Instances  []Instance    `json:"instances"`
	SyncGroups []SyncGroup   `json:"sync_groups,omitempty"`
}

// GARP is when gratuitous ARPs (IPv4) and unsolicited neighbour
// advertisements (IPv6) are sent for the virtual addresses: a burst of
// MasterRepeat on becoming master, another MasterDelay later, and
// RefreshRepeat every MasterRefresh (0: never); Interval and NAInterval
// apart within a burst. Zero values take keepalived's defaults (use
// DefaultGARP).
type GARP struct {
	MasterDelay   time.Duration `json:"master_delay"`
	MasterRepeat  int           `json:"master_repeat"`
	MasterRefresh time.Duration `json:"master_refresh,omitempty"`
	RefreshRepeat int           `json:"refresh_repeat"`
	Interval      time.Duration `json:"interval,omitempty"`
	NAInterval    time.Duration `json:"na_interval,omitempty"`
}

// DefaultGARP is keepalived's: vrrp_garp_master_delay 5,
// vrrp_garp_master_repeat 5, vrrp_garp_master_refresh 0 (with repeat
// 1), vrrp_garp_interval and vrrp_gna_interval 0.
func DefaultGARP() GARP {
	return GARP{MasterDelay: 5 * time.Second, MasterRepeat: 5, RefreshRepeat: 1}
}

// Instance is a vrrp_instance.
type Instance struct {
	Name string `json:"name"`
	// InitMaster is "state MASTER": with priority 255 the instance starts
	// as master, otherwise it waits one advertisement interval (instead
	// of the master-down interval) before taking over.
	InitMaster bool   `json:"init_master,omitempty"`
	Interface  string `json:"interface"`
	VRID       uint8  `json:"virtual_router_id"`
	// Priority is 1..255 (default 100); 255 is the address owner.
	Priority uint8 `json:"priority"`
	// AdvertInterval defaults to 1 s; v2 takes whole seconds.
	AdvertInterval time.Duration `json:"advert_int"`
	// Version is 2 or 3 (0: the global one); IPv6 is always 3.
	Version      int           `json:"version,omitempty"`
	NoPreempt    bool          `json:"nopreempt,omitempty"`
	PreemptDelay time.Duration `json:"preempt_delay,omitempty"`
	// VIPs are sent in adverts and added on becoming master; Excluded
	// are added too but not advertised.
	VIPs     []VIP `json:"virtual_ipaddress"`
	Excluded []VIP `json:"virtual_ipaddress_excluded,omitempty"`
	// AuthPass is v2's PASS authentication (the first 8 bytes are used).
	AuthPass string `json:"auth_pass,omitempty"`
	// UnicastSrc is the source of the adverts (default the interface's
	// first address of the family); UnicastPeers, when given, are where
	// adverts are sent instead of the multicast group, and the only
	// sources accepted.
	UnicastSrc      netip.Addr       `json:"unicast_src_ip,omitzero"`
	UnicastPeers    []netip.Addr     `json:"unicast_peer,omitempty"`
	TrackInterfaces []TrackInterface `json:"track_interface,omitempty"`
	TrackScripts    []TrackScript    `json:"track_script,omitempty"`
	TrackServices   []TrackService   `json:"track_service,omitempty"`
	Notify          Notify           `json:"notify,omitzero"`
	// GARP overrides the global schedule when set.
	GARP *GARP `json:"garp,omitempty"`
}

// VIP is a virtual address: ADDR[/LEN] [dev DEV] [label LABEL].
type VIP struct {
	Prefix netip.Prefix `json:"address"`
	Dev    string       `json:"dev,omitempty"` // default the instance's interface
	Label  string       `json:"label,omitempty"`
}

// TrackInterface tracks a link: down means FAULT with weight 0,
// priority + Weight otherwise (Reverse: up does).
type TrackInterface struct {
	Name    string `json:"name"`
	Weight  int    `json:"weight,omitempty"`
	Reverse bool   `json:"reverse,omitempty"`
}

// TrackScript tracks a vrrp_script by name; Weight, when set, replaces
// the script's.
type TrackScript struct {
	Name    string `json:"name"`
	Weight  *int   `json:"weight,omitempty"`
	Reverse bool   `json:"reverse,omitempty"`
}

// TrackService tracks a gvs virtual service's quorum (a gvs
// extension): lost means FAULT with weight 0, priority + Weight
// otherwise.
type TrackService struct {
	Service model.ServiceKey `json:"service"`
	Weight  int              `json:"weight,omitempty"`
}

// CheckScript is a vrrp_script: run every Interval (default 1 s), killed
// after Timeout (default Interval); Rise successes in a row make it up,
// Fall failures down. Weight > 0 adds to the priority while it is up,
// < 0 while it is down, 0 puts the instance in FAULT while it is down.
type CheckScript struct {
	Name     string        `json:"name"`
	Script   Script        `json:"script"`
	Interval time.Duration `json:"interval"`
	Timeout  time.Duration `json:"timeout"`
	Weight   int           `json:"weight,omitempty"`
	Reverse  bool          `json:"reverse,omitempty"`
	Rise     int           `json:"rise"`
	Fall     int           `json:"fall"`
	// InitFail starts it down instead of waiting for its first result.
	InitFail bool `json:"init_fail,omitempty"`
}

// Script is a command line (keepalived's quoting) run without a shell,
// as User:Group when given.
type Script struct {
	Command string        `json:"command"`
	User    string        `json:"user,omitempty"`
	Group   string        `json:"group,omitempty"`
	Timeout time.Duration `json:"timeout,omitempty"`
}

// Notify are the scripts run on a transition: the one of the new state
// with no arguments, Notify with keepalived's four ("INSTANCE"|"GROUP",
// name, state, priority).
type Notify struct {
	Master *Script `json:"master,omitempty"`
	Backup *Script `json:"backup,omitempty"`
	Fault  *Script `json:"fault,omitempty"`
	Stop   *Script `json:"stop,omitempty"`
	Notify *Script `json:"notify,omitempty"`
}

// SyncGroup is a vrrp_sync_group: its instances change state together
// (one becomes master: all do; one goes back to backup: all do; one is
// in fault: all are).
type SyncGroup struct {
	Name      string   `json:"name"`
	Instances []string `json:"group"`
	Notify    Notify   `json:"notify,omitzero"`
}

// withDefaults fills what the instance leaves to keepalived's defaults.
func (c *Config) withDefaults(in Instance) Instance {
	if in.Priority == 0 {
		in.Priority = 100
	}
	if in.AdvertInterval == 0 {
		in.AdvertInterval = time.Second
	}
	if in.Version == 0 {
		in.Version = c.Version
	}
	if in.Version == 0 {
		in.Version = 2
	}
	if in.family6() {
		in.Version = 3
	}
	if in.Priority == OwnerPriority {
		in.InitMaster = true
	}
	g := c.GARP
	if in.GARP != nil {
		g = *in.GARP
	}
	if g == (GARP{}) {
		g = DefaultGARP()
	}
	in.GARP = &g
	return in
}

func (in Instance) family6() bool {
	return len(in.VIPs) > 0 && in.VIPs[0].Prefix.Addr().Is6()
}

// Validate checks what keepalived would refuse.
func (c *Config) Validate() error {
	if c == nil {
		return nil
	}
	if c.Version != 0 && c.Version != 2 && c.Version != 3 {
		return fmt.Errorf("vrrp_version %d: want 2 or 3", c.Version)
	}
	scripts := map[string]bool{}
	for _, s := range c.Scripts {
		if s.Name == "" || s.Script.Command == "" {
			return fmt.Errorf("vrrp_script %q: a name and a script are needed", s.Name)
		}
		if scripts[s.Name] {
			return fmt.Errorf("vrrp_script %s: defined twice", s.Name)
		}
		if s.Weight < -253 || s.Weight > 253 {
			return fmt.Errorf("vrrp_script %s: weight %d: want -253..253", s.Name, s.Weight)
		}
		scripts[s.Name] = true
	}
	names := map[string]bool{}
	vrids := map[string]string{}
	for _, raw := range c.Instances {
		in := c.withDefaults(raw)
		if in.Name == "" {
			return errors.New("vrrp_instance without a name")
		}
		if names[in.Name] {
			return fmt.Errorf("vrrp_instance %s: defined twice", in.Name)
		}
		names[in.Name] = true
		if in.Interface == "" && len(in.UnicastPeers) == 0 {
			return fmt.Errorf("vrrp_instance %s: no interface", in.Name)
		}
		if in.Interface == "" {
			return fmt.Errorf("vrrp_instance %s: no interface (gvs needs one for unicast too)", in.Name)
		}
		if in.VRID == 0 {
			return fmt.Errorf("vrrp_instance %s: virtual_router_id 1..255 is needed", in.Name)
		}
		if in.Version != 2 && in.Version != 3 {
			return fmt.Errorf("vrrp_instance %s: version %d: want 2 or 3", in.Name, in.Version)
		}
		if len(in.VIPs) == 0 {
			return fmt.Errorf("vrrp_instance %s: no virtual_ipaddress", in.Name)
		}
		six := in.family6()
		for _, v := range in.VIPs {
			if v.Prefix.Addr().Is6() != six {
				return fmt.Errorf("vrrp_instance %s: %s: the virtual addresses must be of one family (put others in virtual_ipaddress_excluded)", in.Name, v.Prefix)
			}
		}
		if len(in.VIPs) > 255 {
			return fmt.Errorf("vrrp_instance %s: more than 255 virtual addresses", in.Name)
		}
		if in.Version == 2 {
			if in.AdvertInterval%time.Second != 0 || in.AdvertInterval > 255*time.Second {
				return fmt.Errorf("vrrp_instance %s: advert_int %v: VRRPv2 takes whole seconds 1..255", in.Name, in.AdvertInterval)
			}
		} else if in.AdvertInterval < 10*time.Millisecond || in.AdvertInterval > 40950*time.Millisecond || in.AdvertInterval%(10*time.Millisecond) != 0 {
			return fmt.Errorf("vrrp_instance %s: advert_int %v: VRRPv3 takes 0.01..40.95 s in centiseconds", in.Name, in.AdvertInterval)
		}
		if in.AuthPass != "" && in.Version != 2 {
			return fmt.Errorf("vrrp_instance %s: authentication is VRRPv2 only", in.Name)
		}
		if in.NoPreempt && in.PreemptDelay > 0 {
			return fmt.Errorf("vrrp_instance %s: preempt_delay and nopreempt are exclusive", in.Name)
		}
		if in.PreemptDelay > 1000*time.Second {
			return fmt.Errorf("vrrp_instance %s: preempt_delay %v: at most 1000 s", in.Name, in.PreemptDelay)
		}
		if in.UnicastSrc.IsValid() && in.UnicastSrc.Is6() != six {
			return fmt.Errorf("vrrp_instance %s: unicast_src_ip %s is not of the virtual addresses' family", in.Name, in.UnicastSrc)
		}
		for _, p := range in.UnicastPeers {
			if p.Is6() != six {
				return fmt.Errorf("vrrp_instance %s: unicast_peer %s is not of the virtual addresses' family", in.Name, p)
			}
		}
		key := fmt.Sprintf("%s/%d/%v", in.Interface, in.VRID, six)
		if other, ok := vrids[key]; ok && len(in.UnicastPeers) == 0 {
			return fmt.Errorf("vrrp_instance %s: virtual_router_id %d on %s is instance %s's too", in.Name, in.VRID, in.Interface, other)
		}
		vrids[key] = in.Name
		for _, t := range in.TrackScripts {
			if !scripts[t.Name] {
				return fmt.Errorf("vrrp_instance %s: track_script %s: no such vrrp_script", in.Name, t.Name)
			}
		}
		for _, t := range in.TrackInterfaces {
			if t.Weight < -253 || t.Weight > 253 {
				return fmt.Errorf("vrrp_instance %s: track_interface %s: weight %d: want -253..253", in.Name, t.Name, t.Weight)
			}
		}
		for _, t := range in.TrackServices {
			if t.Weight < -253 || t.Weight > 253 {
				return fmt.Errorf("vrrp_instance %s: track_service %s: weight %d: want -253..253", in.Name, t.Service, t.Weight)
			}
		}
	}
	inGroup := map[string]string{}
	for _, g := range c.SyncGroups {
		for _, n := range g.Instances {
			if !names[n] {
				return fmt.Errorf("vrrp_sync_group %s: no vrrp_instance %s", g.Name, n)
			}
			if other, ok := inGroup[n]; ok {
				return fmt.Errorf("vrrp_sync_group %s: %s is in vrrp_sync_group %s already", g.Name, n, other)
			}
			inGroup[n] = g.Name
		}
	}
	return nil
}

// ParseService reads a tracked service as the config files write it:
// "tcp ADDR:PORT", "udp ADDR:PORT", "sctp ADDR:PORT" or "fwmark N"
// ("fwmark N ipv6" for an IPv6 mark service).
func ParseService(s string) (model.ServiceKey, error) {
	var k model.ServiceKey
	f := strings.Fields(s)
	if len(f) < 2 {
		return k, fmt.Errorf("service %q: want PROTO ADDR:PORT or fwmark N", s)
	}
	switch strings.ToLower(f[0]) {
	case "tcp", "udp", "sctp":
		if len(f) != 2 {
			return k, fmt.Errorf("service %q: want PROTO ADDR:PORT", s)
		}
		ap, err := netip.ParseAddrPort(f[1])
		if err != nil {
			return k, fmt.Errorf("service %q: want PROTO ADDR:PORT", s)
		}
		k.Protocol = map[string]model.Protocol{"tcp": model.ProtoTCP, "udp": model.ProtoUDP, "sctp": model.ProtoSCTP}[strings.ToLower(f[0])]
		k.Addr, k.Port = ap.Addr().Unmap(), ap.Port()
		k.Family = model.FamilyOf(k.Addr)
	case "fwmark":
		n, err := strconv.ParseUint(f[1], 0, 32)
		if err != nil || n == 0 || len(f) > 3 || (len(f) == 3 && f[2] != "ipv6") {
			return k, fmt.Errorf("service %q: want fwmark N [ipv6]", s)
		}
		k.FWMark, k.Family = uint32(n), model.IPv4
		if len(f) == 3 {
			k.Family = model.IPv6
		}
	default:
		return k, fmt.Errorf("service %q: want tcp, udp, sctp or fwmark", s)
	}
	return k, nil
}
