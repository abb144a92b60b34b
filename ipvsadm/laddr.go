package ipvsadm

import (
	"fmt"
	"io"

	"gvs/api"
	"gvs/model"
)

// ListLocalAddrs writes what DPVS ipvsadm --get-laddr (-G) prints: a title,
// then for each service its address (always numeric) and pool size, and
// one line per local address in pool order. With k it lists that service
// only, or returns model.ErrServiceNotDefined; without, every service in
// the order given (DPVS does not sort them), and nothing at all, not even
// the title, when there is none. DPVS's CONFLICTS column (port allocation
// conflicts, which DPVS does not count either) and CONNS column
// (connections using the address, which gvs does not count yet) are 0.
func ListLocalAddrs(w io.Writer, services []api.Service, k *model.ServiceKey) error {
	ew := &errWriter{w: w}
	if k != nil {
		for _, se := range services {
			if sameService(se.ServiceKey, *k) {
				printLaddrTitle(ew)
				printLaddrs(ew, se)
				return ew.err
			}
		}
		return model.ErrServiceNotDefined
	}
	for i, se := range services {
		if i == 0 {
			printLaddrTitle(ew)
		}
		printLaddrs(ew, se)
	}
	return ew.err
}

func printLaddrTitle(w *errWriter) {
	w.printf("%-20s %-8s %-20s %-10s %-10s\n", "VIP:VPORT", "TOTAL", "SNAT_IP", "CONFLICTS", "CONNS")
}

func printLaddrs(w *errWriter, se api.Service) {
	var name string
	switch {
	case se.IsFWMark() && se.Family == model.IPv6:
		name = fmt.Sprintf("FWM  %d IPv6", int32(se.FWMark))
	case se.IsFWMark():
		name = fmt.Sprintf("FWM  %d", int32(se.FWMark))
	default:
		name = addrPort(se.Addr, se.Port, se.Protocol, Format{Numeric: true})
	}
	w.printf("%-20s %-8d \n", name, len(se.LocalAddrs))
	for _, a := range se.LocalAddrs {
		w.printf("%-20s %-8s %-20s %-10d %-10d\n", "", "", inetNtop(a), 0, 0)
	}
}

// saveLaddrs writes the -P lines that restore a service's pool, after its
// -A and -a lines (a gvs extension of -S; DPVS saves no pool). name is
// the service as its -A line writes it.
func saveLaddrs(w *errWriter, se api.Service, name string, f Format) {
	for _, a := range se.LocalAddrs {
		host := inetNtop(a)
		if !f.Numeric {
			if h, ok := f.resolver().HostName(a); ok {
				host = h
			}
		}
		w.printf("-P %s -z %s\n", name, host)
	}
}
