package apiserver

import "net/http"

// getSysctls lists the IPVS sysctls in force, by their
// /proc/sys/net/ipv4/vs/ names.
func (s *Server) getSysctls(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, 200, s.core.Sysctls().Map())
}
