package model

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// Sysctls are the IPVS sysctls gvs honours, named as in
// /proc/sys/net/ipv4/vs/ (the kernel's Documentation/networking/
// ipvs-sysctl.rst says what each does).
type Sysctls struct {
	ExpireNodestConn        int
	ExpireQuiescentTemplate int
	// ConnReuseMode is a bitmap: 1 reschedules a reused port whose old
	// connection is in TIME_WAIT, 2 in FIN_WAIT too.
	ConnReuseMode int
	SloppyTCP     int
	SloppyUDP     int
	ScheduleICMP  int
	NATICMPSend   int
	SNATReroute   int
}

// DefaultSysctls are the kernel's: conn_reuse_mode 1, snat_reroute 1, the
// others 0.
func DefaultSysctls() Sysctls { return Sysctls{ConnReuseMode: 1, SNATReroute: 1} }

type sysctlField struct {
	name string
	max  int
	get  func(*Sysctls) *int
}

// sysctlFields are sorted by name.
var sysctlFields = []sysctlField{
	{"conn_reuse_mode", 3, func(s *Sysctls) *int { return &s.ConnReuseMode }},
	{"expire_nodest_conn", 1, func(s *Sysctls) *int { return &s.ExpireNodestConn }},
	{"expire_quiescent_template", 1, func(s *Sysctls) *int { return &s.ExpireQuiescentTemplate }},
	{"nat_icmp_send", 1, func(s *Sysctls) *int { return &s.NATICMPSend }},
	{"schedule_icmp", 1, func(s *Sysctls) *int { return &s.ScheduleICMP }},
	{"sloppy_tcp", 1, func(s *Sysctls) *int { return &s.SloppyTCP }},
	{"sloppy_udp", 1, func(s *Sysctls) *int { return &s.SloppyUDP }},
	{"snat_reroute", 1, func(s *Sysctls) *int { return &s.SNATReroute }},
}

// SysctlNames lists the names Set takes, sorted.
func SysctlNames() []string {
	var n []string
	for _, f := range sysctlFields {
		n = append(n, f.name)
	}
	return n
}

func sysctlByName(name string) (sysctlField, error) {
	for _, f := range sysctlFields {
		if f.name == name {
			return f, nil
		}
	}
	return sysctlField{}, fmt.Errorf("unknown sysctl %q (known: %s)", name, strings.Join(SysctlNames(), ", "))
}

// Set sets the sysctl name to v, checking its range.
func (s *Sysctls) Set(name string, v int) error {
	f, err := sysctlByName(name)
	if err != nil {
		return err
	}
	if v < 0 || v > f.max {
		return fmt.Errorf("sysctl %s: %d out of range 0..%d", name, v, f.max)
	}
	*f.get(s) = v
	return nil
}

// Validate checks every value's range.
func (s Sysctls) Validate() error {
	for _, f := range sysctlFields {
		if v := *f.get(&s); v < 0 || v > f.max {
			return fmt.Errorf("sysctl %s: %d out of range 0..%d", f.name, v, f.max)
		}
	}
	return nil
}

// Map returns every sysctl by name.
func (s Sysctls) Map() map[string]int {
	m := map[string]int{}
	for _, f := range sysctlFields {
		m[f.name] = *f.get(&s)
	}
	return m
}

// With returns s with the values of m (names to values, any subset) set.
func (s Sysctls) With(m map[string]int) (Sysctls, error) {
	names := make([]string, 0, len(m))
	for name := range m {
		names = append(names, name)
	}
	slices.Sort(names) // the same first error every time
	for _, name := range names {
		if err := s.Set(name, m[name]); err != nil {
			return s, err
		}
	}
	return s, nil
}

// ParseSysctl reads NAME=VALUE.
func ParseSysctl(arg string) (string, int, error) {
	name, val, ok := strings.Cut(arg, "=")
	name = strings.TrimSpace(name)
	if !ok || name == "" {
		return "", 0, fmt.Errorf("%q: want NAME=VALUE", arg)
	}
	v, err := strconv.Atoi(strings.TrimSpace(val))
	if err != nil {
		return "", 0, fmt.Errorf("%q: the value is not an integer", arg)
	}
	var s Sysctls
	if err := s.Set(name, v); err != nil {
		return "", 0, err
	}
	return name, v, nil
}
