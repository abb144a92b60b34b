package ipvsadm

import (
	"fmt"
	"io"
	"net/netip"
	"strconv"
	"strings"

	"gvs/api"
	"gvs/model"
)

// Format is how a list prints: ipvsadm's FMT_* flags, the service of
// "-L -t addr" and the name resolver.
type Format struct {
	Numeric        bool // -n: addresses and ports as numbers
	Stats          bool // --stats
	Rate           bool // --rate
	Thresholds     bool // --thresholds
	PersistentConn bool // --persistent-conn
	TunInfo        bool // --tun-info
	NoSort         bool // --nosort
	Exact          bool // --exact: numbers not abbreviated
	// Service, when set, lists that service only, without the banner
	// (ipvsadm -L -t addr).
	Service *model.ServiceKey
	// Resolver names addresses and ports when Numeric is false; nil
	// means Builtin (service names, numeric addresses).
	Resolver Resolver
}

func (f Format) resolver() Resolver {
	if f.Resolver == nil {
		return Builtin
	}
	return f.Resolver
}

// errWriter keeps the first write error.
type errWriter struct {
	w   io.Writer
	err error
}

func (e *errWriter) print(s string) {
	if e.err == nil {
		_, e.err = io.WriteString(e.w, s)
	}
}

func (e *errWriter) printf(format string, args ...any) { e.print(fmt.Sprintf(format, args...)) }

// padRight and padLeft are printf's "%-*s" and "%*s" (in bytes, as C).
func padRight(s string, n int) string {
	if len(s) >= n {
		return s
	}
	return s + strings.Repeat(" ", n-len(s))
}

func padLeft(s string, n int) string {
	if len(s) >= n {
		return s
	}
	return strings.Repeat(" ", n-len(s)) + s
}

func u(v uint64) string { return strconv.FormatUint(v, 10) }

// largenum is ipvsadm's print_largenum.
func largenum(i uint64, exact bool) string {
	if exact {
		s := u(i)
		if len(s) <= 8 {
			return padLeft(s, 9)
		}
		return padLeft(s, len(s)+1)
	}
	switch {
	case i < 100000000:
		return padLeft(u(i), 9)
	case i < 1000000000:
		return padLeft(u(i/1000), 8) + "K"
	case i < 100000000000:
		return padLeft(u(i/1000000), 8) + "M"
	case i < 100000000000000:
		return padLeft(u(i/1000000000), 8) + "G"
	}
	return padLeft(u(i/1000000000000), 8) + "T"
}

// inetNtop is glibc's inet_ntop: for IPv6 it prints an IPv4-compatible
// address (::a.b.c.d) in dotted form, where netip would not.
func inetNtop(a netip.Addr) string {
	if a.Is4() {
		return a.String()
	}
	b := a.As16()
	var words [8]uint16
	for i := range words {
		words[i] = uint16(b[2*i])<<8 | uint16(b[2*i+1])
	}
	bestBase, bestLen, curBase, curLen := -1, 0, -1, 0
	for i := 0; i < 8; i++ {
		if words[i] == 0 {
			if curBase == -1 {
				curBase, curLen = i, 1
			} else {
				curLen++
			}
			continue
		}
		if curBase != -1 {
			if bestBase == -1 || curLen > bestLen {
				bestBase, bestLen = curBase, curLen
			}
			curBase = -1
		}
	}
	if curBase != -1 && (bestBase == -1 || curLen > bestLen) {
		bestBase, bestLen = curBase, curLen
	}
	if bestBase != -1 && bestLen < 2 {
		bestBase = -1
	}
	var sb strings.Builder
	for i := 0; i < 8; i++ {
		if bestBase != -1 && i >= bestBase && i < bestBase+bestLen {
			if i == bestBase {
				sb.WriteByte(':')
			}
			continue
		}
		if i != 0 {
			sb.WriteByte(':')
		}
		if i == 6 && bestBase == 0 && (bestLen == 6 || (bestLen == 5 && words[5] == 0xffff)) {
			sb.WriteString(netip.AddrFrom4([4]byte{b[12], b[13], b[14], b[15]}).String())
			return sb.String()
		}
		sb.WriteString(strconv.FormatUint(uint64(words[i]), 16))
	}
	if bestBase != -1 && bestBase+bestLen == 8 {
		sb.WriteByte(':')
	}
	return sb.String()
}

// addrPort is ipvsadm's addrport_to_anyname.
func addrPort(a netip.Addr, port uint16, proto model.Protocol, f Format) string {
	open, close := "[", "]"
	if a.Is4() {
		open, close = "", ""
	}
	var s string
	if f.Numeric {
		s = open + inetNtop(a) + close + ":" + u(uint64(port))
	} else {
		r := f.resolver()
		host, ok := r.HostName(a)
		if !ok {
			host = inetNtop(a)
		}
		p, ok := r.PortName(port, proto)
		if !ok {
			p = u(uint64(port))
		}
		s = open + host + close + ":" + p
	}
	return truncate(s, 59) // snprintf(buf, 60, ...)
}

func fwdName(m model.Method) string {
	switch m {
	case model.Masq, model.Local, model.Tunnel, model.Route, model.FullNAT:
		return m.String()
	}
	return "(null)"
}

func fwdSwitch(m model.Method) string {
	switch m {
	case model.Masq:
		return "-m"
	case model.Tunnel:
		return "-i"
	case model.Local, model.Route:
		return "-g"
	case model.FullNAT:
		return "--fullnat"
	}
	return "(null)"
}

func protoOption(p model.Protocol) string {
	switch p {
	case model.ProtoTCP:
		return "-t"
	case model.ProtoUDP:
		return "-u"
	case model.ProtoSCTP:
		return "--sctp-service"
	}
	return "--xxx-service"
}

func protoListName(p model.Protocol) string {
	switch p {
	case model.ProtoTCP, model.ProtoUDP, model.ProtoSCTP:
		return p.String()
	}
	return "?"
}

// dottedMask is inet_ntoa of a mask kept in host byte order.
func dottedMask(m uint32) string {
	return fmt.Sprintf("%d.%d.%d.%d", byte(m>>24), byte(m>>16), byte(m>>8), byte(m))
}

// schedFlags is ipvsadm's print_sched_flags.
func schedFlags(svc model.Service) string {
	var names []string
	switch svc.Scheduler {
	case "sh", "mh":
		if svc.Flags&model.FlagSched1 != 0 {
			names = append(names, svc.Scheduler+"-fallback")
		}
		if svc.Flags&model.FlagSched2 != 0 {
			names = append(names, svc.Scheduler+"-port")
		}
	default:
		for i, f := range []model.ServiceFlags{model.FlagSched1, model.FlagSched2, model.FlagSched3} {
			if svc.Flags&f != 0 {
				names = append(names, "flag-"+strconv.Itoa(i+1))
			}
		}
	}
	return strings.Join(names, ",")
}

const schedFlagMask = model.FlagSched1 | model.FlagSched2 | model.FlagSched3

func printTitle(w *errWriter, f Format) {
	switch {
	case f.Stats:
		w.printf("%-33s %8s %8s %8s %8s %8s\n  -> RemoteAddress:Port\n",
			"Prot LocalAddress:Port", "Conns", "InPkts", "OutPkts", "InBytes", "OutBytes")
	case f.Rate:
		w.printf("%-33s %8s %8s %8s %8s %8s\n  -> RemoteAddress:Port\n",
			"Prot LocalAddress:Port", "CPS", "InPPS", "OutPPS", "InBPS", "OutBPS")
	case f.Thresholds:
		w.printf("%-33s %-10s %-10s %-10s %-10s\n  -> RemoteAddress:Port\n",
			"Prot LocalAddress:Port", "Uthreshold", "Lthreshold", "ActiveConn", "InActConn")
	case f.PersistentConn:
		w.printf("%-33s %-9s %-11s %-10s %-10s\n  -> RemoteAddress:Port\n",
			"Prot LocalAddress:Port", "Weight", "PersistConn", "ActiveConn", "InActConn")
	case f.TunInfo:
		w.print("Prot LocalAddress:Port Scheduler Flags\n" +
			"  -> RemoteAddress:Port           Forward TunnelInfo    Weight ActiveConn InActConn\n")
	default:
		w.print("Prot LocalAddress:Port Scheduler Flags\n" +
			"  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn\n")
	}
}

// printService is ipvsadm's print_service_entry; rule selects the -S
// format.
func printService(w *errWriter, se api.Service, f Format, rule bool) {
	var name string
	if se.IsFWMark() {
		mark := int32(se.FWMark) // printed with %d
		switch {
		case rule && se.Family == model.IPv6:
			name = fmt.Sprintf("-f %d -6", mark)
		case rule:
			name = fmt.Sprintf("-f %d", mark)
		case se.Family == model.IPv6:
			name = fmt.Sprintf("FWM  %d IPv6", mark)
		default:
			name = fmt.Sprintf("FWM  %d", mark)
		}
	} else {
		vname := addrPort(se.Addr, se.Port, se.Protocol, f)
		if rule {
			name = protoOption(se.Protocol) + " " + vname
		} else {
			name = padRight(protoListName(se.Protocol), 4) + " " + vname
			if se.Family != model.IPv6 {
				name = truncate(name, 33)
			}
		}
	}

	switch {
	case rule:
		w.printf("-A %s -s %s", name, se.Scheduler)
		if se.Persistent() {
			w.printf(" -p %d", se.Timeout)
			if se.Family == model.IPv4 && se.Netmask != 0xffffffff {
				w.printf(" -M %s", dottedMask(se.Netmask))
			}
			if se.Family == model.IPv6 && se.Netmask != 128 {
				w.printf(" -M %d", int32(se.Netmask))
			}
		}
		if se.Flags&model.FlagOnePacket != 0 {
			w.print(" -o")
		}
		if se.Flags&schedFlagMask != 0 {
			w.print(" -b " + schedFlags(se.Service))
		}
	case f.Stats:
		w.print(padRight(name, 33))
		for _, v := range []uint64{se.Stats.Conns, se.Stats.InPkts, se.Stats.OutPkts, se.Stats.InBytes, se.Stats.OutBytes} {
			w.print(largenum(v, f.Exact))
		}
	case f.Rate:
		w.print(padRight(name, 33))
		for _, v := range []uint64{se.Rates.CPS, se.Rates.InPPS, se.Rates.OutPPS, se.Rates.InBPS, se.Rates.OutBPS} {
			w.print(largenum(v, f.Exact))
		}
	default:
		w.printf("%s %s", name, se.Scheduler)
		if se.Flags&schedFlagMask != 0 {
			w.print(" (" + schedFlags(se.Service) + ")")
		}
		if se.Persistent() {
			w.printf(" persistent %d", se.Timeout)
			if se.Family == model.IPv4 && se.Netmask != 0xffffffff {
				w.printf(" mask %s", dottedMask(se.Netmask))
			}
			if se.Family == model.IPv6 && se.Netmask != 128 {
				w.printf(" mask %d", int32(se.Netmask))
			}
		}
		if se.Flags&model.FlagOnePacket != 0 {
			w.print(" ops")
		}
	}
	w.print("\n")

	dests := se.Dests
	if !f.NoSort {
		dests = sortedDests(dests)
	}
	for _, e := range dests {
		dname := addrPort(e.Addr, e.Port, se.Protocol, f)
		if !rule && e.Addr.Is4() {
			dname = truncate(dname, 28)
		}
		// libipvs 1.31 reads the kernel's 64-bit destination
		// statistics with its 32-bit reader: all but the byte
		// counters keep their low 32 bits.
		lo := func(v uint64) uint64 { return uint64(uint32(v)) }
		switch {
		case rule:
			w.printf("-a %s -r %s %s -w %d", name, dname, fwdSwitch(e.Method), e.Weight)
			if e.Method == model.Tunnel {
				w.print(" --tun-type ipip")
			}
			w.print("\n")
		case f.Stats:
			w.print("  -> " + padRight(dname, 28))
			for _, v := range []uint64{lo(e.Stats.Conns), lo(e.Stats.InPkts), lo(e.Stats.OutPkts), e.Stats.InBytes, e.Stats.OutBytes} {
				w.print(largenum(v, f.Exact))
			}
			w.print("\n")
		case f.Rate:
			w.printf("  -> %s %8d %8d %8d", padRight(dname, 28), lo(e.Rates.CPS), lo(e.Rates.InPPS), lo(e.Rates.OutPPS))
			w.print(largenum(lo(e.Rates.InBPS), f.Exact))
			w.print(largenum(lo(e.Rates.OutBPS), f.Exact))
			w.print("\n")
		case f.Thresholds:
			w.printf("  -> %s %-10d %-10d %-10d %-10d\n", padRight(dname, 28),
				e.UThreshold, e.LThreshold, uint32(e.ActiveConns), uint32(e.InactConns))
		case f.PersistentConn:
			w.printf("  -> %s %-9d %-11d %-10d %-10d\n", padRight(dname, 28),
				uint32(e.Weight), uint32(e.PersistConns), uint32(e.ActiveConns), uint32(e.InactConns))
		case f.TunInfo:
			ti := "n/a"
			if e.Method == model.Tunnel {
				ti = "ipip"
			}
			w.printf("  -> %s %s %s %-6d %-10d %-10d\n", padRight(dname, 28), padRight(fwdName(e.Method), 7),
				padRight(ti, 13), e.Weight, uint32(e.ActiveConns), uint32(e.InactConns))
		default:
			w.printf("  -> %s %s %-6d %-10d %-10d\n", padRight(dname, 28), padRight(fwdName(e.Method), 7),
				e.Weight, uint32(e.ActiveConns), uint32(e.InactConns))
		}
	}
	if rule {
		saveLaddrs(w, se, name, f)
	}
}

// banner is the first line of a full listing.
func banner(info api.Info) string {
	v := info.Version
	if v == "" {
		v = api.Version
	}
	size := info.ConnTableSize
	if size == 0 {
		size = model.ConnTableSize
	}
	return fmt.Sprintf("IP Virtual Server version %s (size=%d)\n", v, size)
}

func sameService(a, b model.ServiceKey) bool {
	if a.IsFWMark() || b.IsFWMark() {
		return a.FWMark == b.FWMark && a.Family == b.Family
	}
	return a.Family == b.Family && a.Protocol == b.Protocol && a.Addr == b.Addr && a.Port == b.Port
}

// List writes what ipvsadm -L prints for the virtual server table: the
// banner, the column titles and the services with their destinations,
// sorted unless f.NoSort, in the format f selects. With f.Service it lists
// that service only, without the banner, as ipvsadm -L -t addr does, and
// returns model.ErrNoSuchService (exit status 1) when there is no such
// service.
func List(w io.Writer, snap api.Snapshot, f Format) error {
	ew := &errWriter{w: w}
	if f.Service != nil {
		for _, se := range snap.Services {
			if sameService(se.ServiceKey, *f.Service) {
				printTitle(ew, f)
				printService(ew, se, f, false)
				return ew.err
			}
		}
		return model.ErrNoSuchService
	}
	ew.print(banner(snap.Info))
	services := snap.Services
	if !f.NoSort {
		services = sortedServices(services)
	}
	printTitle(ew, f)
	for _, se := range services {
		printService(ew, se, f, false)
	}
	return ew.err
}

// Save writes what ipvsadm -S (ipvsadm-save) prints: one -A line per
// service and one -a line per destination, sorted, with names unless
// numeric (-n); then one -P line per FULLNAT local address of the
// service, in pool order, so that -R restores the pool.
func Save(w io.Writer, snap api.Snapshot, numeric bool) error {
	ew := &errWriter{w: w}
	f := Format{Numeric: numeric}
	for _, se := range sortedServices(snap.Services) {
		printService(ew, se, f, true)
	}
	return ew.err
}

// ListTimeout writes what ipvsadm -L --timeout prints.
func ListTimeout(w io.Writer, t model.Timeouts) error {
	_, err := fmt.Fprintf(w, "Timeout (tcp tcpfin udp): %d %d %d\n", int32(t.TCP), int32(t.TCPFin), int32(t.UDP))
	return err
}

// ListConns writes what ipvsadm -L -c prints: the connection table in
// the order given (ipvsadm does not sort it). With f.PersistentConn the
// header has the persistence engine columns (gvs has no engine, so no
// entry fills them).
func ListConns(w io.Writer, conns []api.Conn, f Format) error {
	ew := &errWriter{w: w}
	ew.print("IPVS connection entries\n")
	if f.PersistentConn {
		ew.printf("pro expire %-11s %-18s %-18s %-18s %-16s %s\n",
			"state", "source", "virtual", "destination", "pe name", "pe_data")
	} else {
		ew.printf("pro expire %-11s %-18s %-18s %s\n", "state", "source", "virtual", "destination")
	}
	for _, c := range conns {
		proto := connProtoName(c.Protocol)
		switch c.Protocol {
		case model.ProtoTCP, model.ProtoUDP, model.ProtoSCTP:
		default:
			// ipvsadm looks names up for TCP, UDP and SCTP only.
			c.Protocol = model.ProtoNone
		}
		secs := c.ExpireMS / 1000
		if secs < 0 {
			secs = 0
		}
		expire := fmt.Sprintf("%02d:%02d", secs/60, secs%60)
		cname := addrPort(c.Client.Addr(), c.Client.Port(), c.Protocol, f)
		vname := addrPort(c.Virtual.Addr(), c.Virtual.Port(), c.Protocol, f)
		dname := addrPort(c.Dest.Addr(), c.Dest.Port(), c.Protocol, f)
		ew.print(padRight(proto, 3) + " " + padRight(expire, 6) + " " + padRight(c.State, 11) + " " +
			padRight(cname, 18) + " " + padRight(vname, 18) + " " + dname + "\n")
	}
	return ew.err
}

// connProtoName is the kernel's ip_vs_proto_name, which names the
// protocol in /proc/net/ip_vs_conn.
func connProtoName(p model.Protocol) string {
	switch p {
	case model.ProtoNone:
		return "IP"
	case model.ProtoTCP, model.ProtoUDP, model.ProtoSCTP:
		return p.String()
	case 1:
		return "ICMP"
	case 58:
		return "ICMPv6"
	}
	return "IP_" + strconv.Itoa(int(p))
}
