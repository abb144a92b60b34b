package xdp

import (
	"fmt"

	"gvs/bpf"
	"gvs/ipvs"
	"gvs/model"
)

// SetSysctls implements the control core's SysctlSetter: the data path
// reads the sysctls from its config value.
func (e *Engine) SetSysctls(s model.Sysctls) error {
	if err := s.Validate(); err != nil {
		return err
	}
	e.cfgMu.Lock()
	defer e.cfgMu.Unlock()
	old := e.cfg
	setSysctls(&e.cfg, s)
	if err := e.writeConfig(); err != nil {
		e.cfg = old
		return fmt.Errorf("writing the sysctls to the data path: %w", err)
	}
	// The model (the oracle) in step with the data path.
	e.Do(func(v *ipvs.IPVS) { v.SetSysctls(s) })
	return nil
}

// setSysctls puts s into c, leaving its other settings alone.
func setSysctls(c *bpf.Config, s model.Sysctls) {
	c.ExpireNodestConn = uint32(s.ExpireNodestConn)
	c.ExpireQuiescentTemplate = uint32(s.ExpireQuiescentTemplate)
	c.ConnReuseMode = uint32(s.ConnReuseMode)
	c.SloppyTcp = uint8(s.SloppyTCP)
	c.SloppyUdp = uint8(s.SloppyUDP)
	c.ScheduleIcmp = uint8(s.ScheduleICMP)
	c.NatIcmpSend = uint8(s.NATICMPSend)
	c.SnatReroute = uint8(s.SNATReroute)
}
