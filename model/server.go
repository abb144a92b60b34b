package model

import "gvs/stats"

// Server is a destination as the data path sees it: its configuration plus
// the live state that schedulers read and connections update.
//
// The overload flag follows the kernel's hysteresis (ip_vs_bind_dest and
// ip_vs_unbind_dest): a server becomes overloaded when its active plus
// inactive connections reach the upper threshold, and stops being
// overloaded when they fall below the lower threshold, or below 3/4 of the
// upper one when no lower threshold is set.
type Server struct {
	Dest
	// LastWeight is the last non-zero weight (or the weight it was added
	// with); Maglev keeps a quiesced server's table slots with it.
	LastWeight int32
	// Connection counts: ActiveConns and InactConns are the connections
	// bound to the server, PersistConns its persistence templates.
	ActiveConns  int
	InactConns   int
	PersistConns int
	// Overloaded is IP_VS_DEST_F_OVERLOAD.
	Overloaded bool
	// Available is IP_VS_DEST_F_AVAILABLE: false once the server was
	// deleted from its service while connections still refer to it.
	Available bool
	Stats     stats.Stats
}

// NewServer returns a server as the kernel adds it: available, with its
// weight as last weight.
func NewServer(d Dest) *Server {
	return &Server{Dest: d, LastWeight: d.Weight, Available: true}
}

// Update applies an edited configuration (ipvsadm -e, or re-adding a
// deleted server), as __ip_vs_update_dest does.
func (s *Server) Update(d Dest, add bool) {
	if add || d.Weight != 0 {
		s.LastWeight = d.Weight
	}
	if d.UThreshold == 0 || d.UThreshold > s.UThreshold {
		s.Overloaded = false
	}
	s.Dest = d
	s.Available = true
}

// TotalConns is what the thresholds compare against.
func (s *Server) TotalConns() int { return s.ActiveConns + s.InactConns }

// Bind counts a new connection (active or not) or, with template, a new
// persistence template.
func (s *Server) Bind(template, inactive bool) {
	switch {
	case template:
		s.PersistConns++
	case inactive:
		s.InactConns++
	default:
		s.ActiveConns++
	}
	if s.UThreshold != 0 && s.TotalConns() >= int(s.UThreshold) {
		s.Overloaded = true
	}
}

// Unbind uncounts a connection or template that expired.
func (s *Server) Unbind(template, inactive bool) {
	switch {
	case template:
		s.PersistConns--
	case inactive:
		s.InactConns--
	default:
		s.ActiveConns--
	}
	switch {
	case s.LThreshold != 0:
		if s.TotalConns() < int(s.LThreshold) {
			s.Overloaded = false
		}
	case s.UThreshold != 0:
		if s.TotalConns()*4 < int(s.UThreshold)*3 {
			s.Overloaded = false
		}
	default:
		s.Overloaded = false
	}
}

// SetActive moves a connection between the active and inactive counts when
// its state changes activity.
func (s *Server) SetActive(active bool) {
	if active {
		s.InactConns--
		s.ActiveConns++
	} else {
		s.ActiveConns--
		s.InactConns++
	}
}

// Usable reports whether a scheduler may give the server a new connection:
// positive weight and not overloaded.
func (s *Server) Usable() bool { return s.Weight > 0 && !s.Overloaded }

// Overhead is the kernel's ip_vs_dest_conn_overhead: an active connection
// costs 256 inactive ones.
func (s *Server) Overhead() int64 { return int64(s.ActiveConns)<<8 + int64(s.InactConns) }
