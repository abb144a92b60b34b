package ipvs

import "gvs/model"

// SetSysctls changes, while the instance runs, the sysctls it honours:
// expire_nodest_conn, expire_quiescent_template, sloppy_tcp and
// conn_reuse_mode (Options).
func (v *IPVS) SetSysctls(s model.Sysctls) {
	v.opts.ExpireNodestConn = s.ExpireNodestConn != 0
	v.opts.ExpireQuiescentTemplate = s.ExpireQuiescentTemplate != 0
	v.opts.SloppyTCP = s.SloppyTCP != 0
	v.opts.NoConnReuse = s.ConnReuseMode == 0
	v.opts.ConnReuseFinWait = s.ConnReuseMode&2 != 0
}
