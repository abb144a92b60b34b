package config

import (
	"fmt"
	"net/netip"
	"strings"
	"time"

	"gvs/vrrp"
)

// VRRP is the YAML form's vrrp: section, keepalived's VRRP keywords
// by the same names.
type VRRP struct {
	Version    int             `yaml:"version"`
	GARP       *GARP           `yaml:"garp"`
	Scripts    []VRRPScript    `yaml:"scripts"`
	Instances  []VRRPInstance  `yaml:"instances"`
	SyncGroups []VRRPSyncGroup `yaml:"sync_groups"`
}

// GARP is vrrp_garp_*: the gratuitous ARP / NA schedule (absent keys
// keep keepalived's defaults).
type GARP struct {
	MasterDelay   *Duration `yaml:"master_delay"`
	MasterRepeat  *int      `yaml:"master_repeat"`
	MasterRefresh *Duration `yaml:"master_refresh"`
	RefreshRepeat *int      `yaml:"refresh_repeat"`
	Interval      *Duration `yaml:"interval"`
	NAInterval    *Duration `yaml:"na_interval"`
}

// VRRPScript is a vrrp_script.
type VRRPScript struct {
	Name     string   `yaml:"name"`
	Script   Script   `yaml:"script"`
	Interval Duration `yaml:"interval"`
	Timeout  Duration `yaml:"timeout"`
	Weight   int      `yaml:"weight"`
	Reverse  bool     `yaml:"reverse"`
	Rise     int      `yaml:"rise"`
	Fall     int      `yaml:"fall"`
	InitFail bool     `yaml:"init_fail"`
}

// VRRPInstance is a vrrp_instance. Virtual addresses are written as
// keepalived's lines: "ADDR[/LEN] [dev DEV] [label LABEL]".
type VRRPInstance struct {
	Name            string              `yaml:"name"`
	State           string              `yaml:"state"` // MASTER or BACKUP (default)
	Interface       string              `yaml:"interface"`
	VRID            int                 `yaml:"virtual_router_id"`
	Priority        int                 `yaml:"priority"`
	AdvertInt       Duration            `yaml:"advert_int"`
	Version         int                 `yaml:"version"`
	NoPreempt       bool                `yaml:"nopreempt"`
	PreemptDelay    Duration            `yaml:"preempt_delay"`
	VIPs            []string            `yaml:"virtual_ipaddress"`
	Excluded        []string            `yaml:"virtual_ipaddress_excluded"`
	AuthPass        string              `yaml:"auth_pass"`
	UnicastSrc      string              `yaml:"unicast_src_ip"`
	UnicastPeers    []string            `yaml:"unicast_peer"`
	TrackInterfaces []TrackItem         `yaml:"track_interface"`
	TrackScripts    []TrackItem         `yaml:"track_script"`
	TrackServices   []TrackServiceEntry `yaml:"track_service"`
	NotifyMaster    *Script             `yaml:"notify_master"`
	NotifyBackup    *Script             `yaml:"notify_backup"`
	NotifyFault     *Script             `yaml:"notify_fault"`
	NotifyStop      *Script             `yaml:"notify_stop"`
	Notify          *Script             `yaml:"notify"`
	GARP            *GARP               `yaml:"garp"`
}

// TrackItem is a tracked interface or vrrp_script: its name, a weight
// (a script's own when absent) and reverse.
type TrackItem struct {
	Name    string `yaml:"name"`
	Weight  *int   `yaml:"weight"`
	Reverse bool   `yaml:"reverse"`
}

// TrackServiceEntry tracks a gvs service's quorum: "tcp ADDR:PORT",
// "udp ...", "sctp ..." or "fwmark N".
type TrackServiceEntry struct {
	Service string `yaml:"service"`
	Weight  int    `yaml:"weight"`
}

// VRRPSyncGroup is a vrrp_sync_group.
type VRRPSyncGroup struct {
	Name         string   `yaml:"name"`
	Group        []string `yaml:"group"`
	NotifyMaster *Script  `yaml:"notify_master"`
	NotifyBackup *Script  `yaml:"notify_backup"`
	NotifyFault  *Script  `yaml:"notify_fault"`
	NotifyStop   *Script  `yaml:"notify_stop"`
	Notify       *Script  `yaml:"notify"`
}

func (s *Script) vrrp() *vrrp.Script {
	if s == nil {
		return nil
	}
	return &vrrp.Script{Command: s.Command, User: s.User, Group: s.Group}
}

func (g *GARP) apply(base vrrp.GARP) vrrp.GARP {
	if g == nil {
		return base
	}
	set := func(d *Duration, to *time.Duration) {
		if d != nil {
			*to = time.Duration(*d)
		}
	}
	set(g.MasterDelay, &base.MasterDelay)
	set(g.MasterRefresh, &base.MasterRefresh)
	set(g.Interval, &base.Interval)
	set(g.NAInterval, &base.NAInterval)
	if g.MasterRepeat != nil {
		base.MasterRepeat = *g.MasterRepeat
	}
	if g.RefreshRepeat != nil {
		base.RefreshRepeat = *g.RefreshRepeat
	}
	return base
}

// config turns the section into the vrrp package's config, validated.
func (v *VRRP) config() (*vrrp.Config, error) {
	c := &vrrp.Config{Version: v.Version, GARP: v.GARP.apply(vrrp.DefaultGARP())}
	for _, s := range v.Scripts {
		c.Scripts = append(c.Scripts, vrrp.CheckScript{
			Name: s.Name, Script: *s.Script.vrrp(), Interval: time.Duration(s.Interval), Timeout: time.Duration(s.Timeout),
			Weight: s.Weight, Reverse: s.Reverse, Rise: max(s.Rise, 1), Fall: max(s.Fall, 1), InitFail: s.InitFail,
		})
	}
	for i, yi := range v.Instances {
		in, err := yi.instance(c.GARP)
		if err != nil {
			return nil, fmt.Errorf("vrrp instance %d (%s): %w", i+1, yi.Name, err)
		}
		c.Instances = append(c.Instances, in)
	}
	for _, g := range v.SyncGroups {
		c.SyncGroups = append(c.SyncGroups, vrrp.SyncGroup{Name: g.Name, Instances: g.Group, Notify: vrrp.Notify{
			Master: g.NotifyMaster.vrrp(), Backup: g.NotifyBackup.vrrp(), Fault: g.NotifyFault.vrrp(),
			Stop: g.NotifyStop.vrrp(), Notify: g.Notify.vrrp()}})
	}
	if err := c.Validate(); err != nil {
		return nil, err
	}
	return c, nil
}

func (yi VRRPInstance) instance(garp vrrp.GARP) (vrrp.Instance, error) {
	in := vrrp.Instance{Name: yi.Name, Interface: yi.Interface, Version: yi.Version, NoPreempt: yi.NoPreempt,
		AdvertInterval: time.Duration(yi.AdvertInt), PreemptDelay: time.Duration(yi.PreemptDelay), AuthPass: yi.AuthPass,
		Notify: vrrp.Notify{Master: yi.NotifyMaster.vrrp(), Backup: yi.NotifyBackup.vrrp(), Fault: yi.NotifyFault.vrrp(),
			Stop: yi.NotifyStop.vrrp(), Notify: yi.Notify.vrrp()}}
	switch strings.ToUpper(yi.State) {
	case "MASTER":
		in.InitMaster = true
	case "BACKUP", "":
	default:
		return in, fmt.Errorf("state %q: want MASTER or BACKUP", yi.State)
	}
	if yi.VRID < 1 || yi.VRID > 255 {
		return in, fmt.Errorf("virtual_router_id %d: want 1..255", yi.VRID)
	}
	in.VRID = uint8(yi.VRID)
	if yi.Priority < 0 || yi.Priority > 255 {
		return in, fmt.Errorf("priority %d: want 1..255", yi.Priority)
	}
	in.Priority = uint8(yi.Priority)
	var err error
	if in.VIPs, err = vips(yi.VIPs); err != nil {
		return in, err
	}
	if in.Excluded, err = vips(yi.Excluded); err != nil {
		return in, err
	}
	if yi.UnicastSrc != "" {
		if in.UnicastSrc, err = netip.ParseAddr(yi.UnicastSrc); err != nil {
			return in, fmt.Errorf("unicast_src_ip %q: want an address", yi.UnicastSrc)
		}
	}
	for _, p := range yi.UnicastPeers {
		a, err := netip.ParseAddr(p)
		if err != nil {
			return in, fmt.Errorf("unicast_peer %q: want an address", p)
		}
		in.UnicastPeers = append(in.UnicastPeers, a.Unmap())
	}
	for _, t := range yi.TrackInterfaces {
		ti := vrrp.TrackInterface{Name: t.Name, Reverse: t.Reverse}
		if t.Weight != nil {
			ti.Weight = *t.Weight
		}
		in.TrackInterfaces = append(in.TrackInterfaces, ti)
	}
	for _, t := range yi.TrackScripts {
		in.TrackScripts = append(in.TrackScripts, vrrp.TrackScript{Name: t.Name, Weight: t.Weight, Reverse: t.Reverse})
	}
	for _, t := range yi.TrackServices {
		k, err := vrrp.ParseService(t.Service)
		if err != nil {
			return in, fmt.Errorf("track_service: %w", err)
		}
		in.TrackServices = append(in.TrackServices, vrrp.TrackService{Service: k, Weight: t.Weight})
	}
	if yi.GARP != nil {
		g := yi.GARP.apply(garp)
		in.GARP = &g
	}
	return in, nil
}

// vips reads "ADDR[/LEN] [dev DEV] [label LABEL]" lines.
func vips(lines []string) ([]vrrp.VIP, error) {
	var out []vrrp.VIP
	for _, l := range lines {
		f := strings.Fields(l)
		if len(f) == 0 || len(f)%2 != 1 {
			return nil, fmt.Errorf("virtual address %q: want ADDR[/LEN] [dev DEV] [label LABEL]", l)
		}
		var v vrrp.VIP
		if p, err := netip.ParsePrefix(f[0]); err == nil {
			v.Prefix = netip.PrefixFrom(p.Addr().Unmap(), p.Bits())
		} else if a, err := netip.ParseAddr(f[0]); err == nil {
			a = a.Unmap()
			v.Prefix = netip.PrefixFrom(a, a.BitLen())
		} else {
			return nil, fmt.Errorf("virtual address %q: want ADDR[/LEN]", f[0])
		}
		for i := 1; i < len(f); i += 2 {
			switch f[i] {
			case "dev":
				v.Dev = f[i+1]
			case "label":
				v.Label = f[i+1]
			default:
				return nil, fmt.Errorf("virtual address %q: unknown option %q (want dev or label)", l, f[i])
			}
		}
		out = append(out, v)
	}
	return out, nil
}
