package ipvs

import "gvs/model"

// SetSysctls changes, while the instance runs, the sysctls it honours:
// expire_nodest_conn and expire_quiescent_template (Options).
func (v *IPVS) SetSysctls(s model.Sysctls) {
	v.opts.ExpireNodestConn = s.ExpireNodestConn != 0
	v.opts.ExpireQuiescentTemplate = s.ExpireQuiescentTemplate != 0
}
