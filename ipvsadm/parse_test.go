package ipvsadm

import (
	"reflect"
	"strings"
	"testing"

	"gvs/api"
	"gvs/model"
)

// Helpers building what Parse should return.

func tcp(addr string, port uint16) model.Service { return svc(model.ProtoTCP, addr, port, "wlc") }
func udp(addr string, port uint16) model.Service { return svc(model.ProtoUDP, addr, port, "wlc") }

func with(s model.Service, f func(*model.Service)) model.Service { f(&s); return s }

func persistent(timeout uint32) func(*model.Service) {
	return func(s *model.Service) { s.Flags |= model.FlagPersistent; s.Timeout = timeout }
}

func sched(name string) func(*model.Service) { return func(s *model.Service) { s.Scheduler = name } }

func rs(addr string, port uint16, m model.Method, w int32) model.Dest {
	return model.Dest{Addr: ip(addr), Port: port, Method: m, Weight: w}
}

func listOf(f Format) *Command { return &Command{Kind: KindList, Format: f} }

func keyOf(s model.Service) *model.ServiceKey { k := s.ServiceKey; return &k }

func TestParseValid(t *testing.T) {
	for _, tc := range []struct {
		args string
		want *Command
	}{
		// Listing.
		{"", listOf(Format{})},
		{"-L", listOf(Format{})},
		{"-l", listOf(Format{})},
		{"--list", listOf(Format{})},
		{"-Ln", listOf(Format{Numeric: true})},
		{"-L -n", listOf(Format{Numeric: true})},
		{"--list --numeric --stats --exact", listOf(Format{Numeric: true, Stats: true, Exact: true})},
		{"-Ln --rate", listOf(Format{Numeric: true, Rate: true})},
		{"-Ln --thresholds --nosort", listOf(Format{Numeric: true, Thresholds: true, NoSort: true})},
		{"-L --persistent-conn -X", listOf(Format{PersistentConn: true, Exact: true})},
		{"-L --sort --sort --tun-info", listOf(Format{TunInfo: true})},
		{"-Lcn", &Command{Kind: KindList, List: ListConnTable, Format: Format{Numeric: true}}},
		{"-lnc", &Command{Kind: KindList, List: ListConnTable, Format: Format{Numeric: true}}},
		{"-L -c --persistent-conn", &Command{Kind: KindList, List: ListConnTable, Format: Format{PersistentConn: true}}},
		{"-L --timeout", &Command{Kind: KindList, List: ListTimeouts}},
		{"-L --daemon", &Command{Kind: KindList, List: ListDaemons}},
		{"-Ln -t 198.18.0.1:80", &Command{Kind: KindList, Service: tcp("198.18.0.1", 80),
			Format: Format{Numeric: true, Service: keyOf(tcp("198.18.0.1", 80))}}},
		{"-L -f 7 -6", &Command{Kind: KindList, Service: fwm(7, model.IPv6, "wlc"),
			Format: Format{Service: keyOf(fwm(7, model.IPv6, "wlc"))}}},

		// Services.
		{"-A -t 198.18.0.1:80 -s rr", &Command{Kind: KindAddService, Service: with(tcp("198.18.0.1", 80), sched("rr"))}},
		{"-A -t 198.18.0.1:80", &Command{Kind: KindAddService, Service: tcp("198.18.0.1", 80)}},
		{"--add-service --tcp-service 198.18.0.1:80 --scheduler rr --persistent=600 --netmask 255.255.0.0",
			&Command{Kind: KindAddService, Service: with(tcp("198.18.0.1", 80), func(s *model.Service) {
				s.Scheduler = "rr"
				persistent(600)(s)
				s.Netmask = 0xffff0000
			})}},
		{"-A -t1.2.3.4:80 -srr -p600", &Command{Kind: KindAddService, Service: with(tcp("1.2.3.4", 80), func(s *model.Service) {
			s.Scheduler = "rr"
			persistent(600)(s)
		})}},
		{"-A -t 1.2.3.4:80 -p=600", &Command{Kind: KindAddService, Service: with(tcp("1.2.3.4", 80), persistent(600))}},
		{"-A -t 1.2.3.4:80 --persistent 600", &Command{Kind: KindAddService, Service: with(tcp("1.2.3.4", 80), persistent(600))}},
		// -p without a value is 360 s; a following option is not its value.
		{"-A -t 1.2.3.4:80 -p", &Command{Kind: KindAddService, Service: with(tcp("1.2.3.4", 80), persistent(360))}},
		{"-A -t 1.2.3.4:80 -p -s rr", &Command{Kind: KindAddService, Service: with(tcp("1.2.3.4", 80), func(s *model.Service) {
			persistent(360)(s)
			s.Scheduler = "rr"
		})}},
		{"-A -u 10.33.46.64:9999 -s sh -p 120", &Command{Kind: KindAddService, Service: with(udp("10.33.46.64", 9999), func(s *model.Service) {
			s.Scheduler = "sh"
			persistent(120)(s)
		})}},
		{"-A -t 198.18.0.1 -p", &Command{Kind: KindAddService, Service: with(tcp("198.18.0.1", 0), persistent(360))}},
		{"-A -t 10.1:80", &Command{Kind: KindAddService, Service: tcp("10.0.0.1", 80)}},
		{"-A -t 010.0.0.012:80", &Command{Kind: KindAddService, Service: tcp("8.0.0.10", 80)}},
		{"-A -t 0x0a000001:80", &Command{Kind: KindAddService, Service: tcp("10.0.0.1", 80)}},
		{"-A -t localhost:http", &Command{Kind: KindAddService, Service: tcp("127.0.0.1", 80)}},
		{"-A -t 1.2.3.4:domain", &Command{Kind: KindAddService, Service: tcp("1.2.3.4", 53)}},
		{"-A -u 1.2.3.4:ntp", &Command{Kind: KindAddService, Service: udp("1.2.3.4", 123)}},
		{"-A --sctp-service 198.18.0.3:3868", &Command{Kind: KindAddService, Service: svc(model.ProtoSCTP, "198.18.0.3", 3868, "wlc")}},
		{"-A -t [2001:db8::1]:443 -s mh -b mh-port", &Command{Kind: KindAddService,
			Service: with(svc(model.ProtoTCP, "2001:db8::1", 443, "mh"), func(s *model.Service) { s.Flags |= model.FlagMHPort })}},
		{"-A -t 2001:db8::1 -p", &Command{Kind: KindAddService, Service: with(tcp("2001:db8::1", 0), persistent(360))}},
		{"-A -t [2001:db8::1]:443 -p -M 64", &Command{Kind: KindAddService,
			Service: with(tcp("2001:db8::1", 443), func(s *model.Service) { persistent(360)(s); s.Netmask = 64 })}},
		// -M before an IPv6 -t is read as an IPv4 mask, then the
		// address resets it to 128.
		{"-A -M 64 -t [2001:db8::1]:443 -p", &Command{Kind: KindAddService, Service: with(tcp("2001:db8::1", 443), persistent(360))}},
		// An explicit 0.0.0.0 mask is kept.
		{"-A -t 1.2.3.4:80 -p -M 0.0.0.0", &Command{Kind: KindAddService,
			Service: with(tcp("1.2.3.4", 80), func(s *model.Service) { persistent(360)(s); s.Netmask = 0 })}},
		{"-A -t 1.2.3.4:80 -M 1.2.3", &Command{Kind: KindAddService,
			Service: with(tcp("1.2.3.4", 80), func(s *model.Service) { s.Netmask = 0x01020003 })}},
		{"-A -f 1 -s rr", &Command{Kind: KindAddService, Service: fwm(1, model.IPv4, "rr")}},
		{"-A -f 4294967295 -6 -M 64", &Command{Kind: KindAddService,
			Service: with(fwm(4294967295, model.IPv6, "wlc"), func(s *model.Service) { s.Netmask = 64 })}},
		{"-A -u 1.2.3.4:53 -o", &Command{Kind: KindAddService,
			Service: with(udp("1.2.3.4", 53), func(s *model.Service) { s.Flags |= model.FlagOnePacket })}},
		{"-A -f 3 --ops", &Command{Kind: KindAddService,
			Service: with(fwm(3, model.IPv4, "wlc"), func(s *model.Service) { s.Flags |= model.FlagOnePacket })}},
		{"-A -t 1.2.3.4:80 -s sh -b sh-port,sh-fallback", &Command{Kind: KindAddService,
			Service: with(tcp("1.2.3.4", 80), func(s *model.Service) { s.Scheduler = "sh"; s.Flags |= model.FlagSHPort | model.FlagSHFallback })}},
		{"-A -t 1.2.3.4:80 -b flag-1,,flag-3 -s rr", &Command{Kind: KindAddService,
			Service: with(tcp("1.2.3.4", 80), func(s *model.Service) { s.Scheduler = "rr"; s.Flags |= model.FlagSched1 | model.FlagSched3 })}},
		{"-A -t 1.2.3.4:80 -s averyveryverylongschedulername", &Command{Kind: KindAddService,
			Service: with(tcp("1.2.3.4", 80), sched("averyveryverylo"))}},
		{"-E -t 198.18.0.1:80", &Command{Kind: KindEditService, Service: tcp("198.18.0.1", 80)}},
		{"-D -t 198.18.0.1:80", &Command{Kind: KindDelService, Service: tcp("198.18.0.1", 80)}},
		{"-C", &Command{Kind: KindFlush}},
		{"--clear", &Command{Kind: KindFlush}},
		{"-Z", &Command{Kind: KindZero}},
		{"-Z -u 198.18.0.1:53", &Command{Kind: KindZero, Service: udp("198.18.0.1", 53)}},
		{"--set 900 120 300", &Command{Kind: KindSetTimeout, Timeouts: model.Timeouts{TCP: 900, TCPFin: 120, UDP: 300}}},
		{"--set 0 0 60", &Command{Kind: KindSetTimeout, Timeouts: model.Timeouts{UDP: 60}}},
		{"-S", &Command{Kind: KindSave}},
		{"-Sn", &Command{Kind: KindSave, Format: Format{Numeric: true}}},
		{"-R", &Command{Kind: KindRestore}},
		{"-h", &Command{Kind: KindHelp}},
		{"--help --bogus", &Command{Kind: KindHelp}},
		{"-v", &Command{Kind: KindVersion}},

		// Real servers.
		{"-a -t 198.18.0.1:80 -r 198.18.1.10", &Command{Kind: KindAddDest, Service: tcp("198.18.0.1", 80),
			Dest: rs("198.18.1.10", 80, model.Route, 1)}},
		// Direct routing keeps the service's port.
		{"-a -t 198.18.0.1:80 -r 198.18.1.10:8080", &Command{Kind: KindAddDest, Service: tcp("198.18.0.1", 80),
			Dest: rs("198.18.1.10", 80, model.Route, 1)}},
		{"-a -t 198.18.0.1:80 -r 198.18.1.10:8080 -i -w 3", &Command{Kind: KindAddDest, Service: tcp("198.18.0.1", 80),
			Dest: rs("198.18.1.10", 80, model.Tunnel, 3)}},
		{"-a -t 198.18.0.1:80 -r 198.18.1.10:8080 -m -w 0", &Command{Kind: KindAddDest, Service: tcp("198.18.0.1", 80),
			Dest: rs("198.18.1.10", 8080, model.Masq, 0)}},
		{"-a -t 198.18.0.1:80 -r 198.18.1.10:8080 --fullnat", &Command{Kind: KindAddDest, Service: tcp("198.18.0.1", 80),
			Dest: rs("198.18.1.10", 8080, model.FullNAT, 1)}},
		// NAT64: an IPv6 service's IPv4 FULLNAT server.
		{"-a -t [2001:db8::1]:80 -r 198.18.1.10:8080 --fullnat", &Command{Kind: KindAddDest, Service: tcp("2001:db8::1", 80),
			Dest: rs("198.18.1.10", 8080, model.FullNAT, 1)}},
		{"--add-server --udp-service 10.33.46.64:9999 --real-server 10.33.46.68:9999 --masquerading --weight 1",
			&Command{Kind: KindAddDest, Service: udp("10.33.46.64", 9999), Dest: rs("10.33.46.68", 9999, model.Masq, 1)}},
		{"-a -t 198.18.0.1:80 -r 198.18.1.10 -m -x 100 -y 50", &Command{Kind: KindAddDest, Service: tcp("198.18.0.1", 80),
			Dest: model.Dest{Addr: ip("198.18.1.10"), Port: 80, Method: model.Masq, Weight: 1, UThreshold: 100, LThreshold: 50}}},
		// -r before -t: the real server takes the service's port as it
		// was then (none).
		{"-a -r 198.18.1.10 -t 198.18.0.1:80 -m", &Command{Kind: KindAddDest, Service: tcp("198.18.0.1", 80),
			Dest: rs("198.18.1.10", 0, model.Masq, 1)}},
		{"-a -t [2001:db8::1]:80 -r 2001:db8::10", &Command{Kind: KindAddDest, Service: tcp("2001:db8::1", 80),
			Dest: rs("2001:db8::10", 80, model.Route, 1)}},
		{"-a -t [2001:db8::1]:80 -r 198.18.1.10 -i", &Command{Kind: KindAddDest, Service: tcp("2001:db8::1", 80),
			Dest: rs("198.18.1.10", 80, model.Tunnel, 1)}},
		{"-a -t 198.18.0.1:80 -r 198.18.1.10 -i --tun-type ipip", &Command{Kind: KindAddDest, Service: tcp("198.18.0.1", 80),
			Dest: rs("198.18.1.10", 80, model.Tunnel, 1)}},
		{"-a -f 1 -r 198.18.1.10:8080", &Command{Kind: KindAddDest, Service: fwm(1, model.IPv4, "wlc"),
			Dest: rs("198.18.1.10", 8080, model.Route, 1)}},
		{"-e -t 198.18.0.1:80 -r 198.18.1.10 -w 5", &Command{Kind: KindEditDest, Service: tcp("198.18.0.1", 80),
			Dest: rs("198.18.1.10", 80, model.Route, 5)}},
		// -d sends the port as given (no forwarding-method rule).
		{"-d -t 198.18.0.1:80 -r 198.18.1.10:8080", &Command{Kind: KindDelDest, Service: tcp("198.18.0.1", 80),
			Dest: rs("198.18.1.10", 8080, model.Route, 1)}},

		// FULLNAT local addresses, DPVS ipvsadm's commands.
		{"-P -t 198.18.0.1:80 -z 198.18.3.1", &Command{Kind: KindAddLaddr, Service: tcp("198.18.0.1", 80), LocalAddr: ip("198.18.3.1")}},
		{"--add-laddr --tcp-service 198.18.0.1:80 --laddr 198.18.3.1 --ifname dpdk0",
			&Command{Kind: KindAddLaddr, Service: tcp("198.18.0.1", 80), LocalAddr: ip("198.18.3.1")}},
		{"-P -z 198.18.3.1 -F dpdk0 -t 198.18.0.1:http", &Command{Kind: KindAddLaddr, Service: tcp("198.18.0.1", 80), LocalAddr: ip("198.18.3.1")}},
		{"-Pt198.18.0.1:80 -z198.18.3.1", &Command{Kind: KindAddLaddr, Service: tcp("198.18.0.1", 80), LocalAddr: ip("198.18.3.1")}},
		// A port is ignored, as DPVS does; inet_aton forms are read.
		{"-Q -u 198.18.0.1:53 -z 198.18.3.1:5000", &Command{Kind: KindDelLaddr, Service: udp("198.18.0.1", 53), LocalAddr: ip("198.18.3.1")}},
		{"--del-laddr -u 198.18.0.1:53 --laddr=198.18.777", &Command{Kind: KindDelLaddr, Service: udp("198.18.0.1", 53), LocalAddr: ip("198.18.3.9")}},
		{"-P -t [2001:db8::1]:80 -z 2001:db8::3", &Command{Kind: KindAddLaddr, Service: tcp("2001:db8::1", 80), LocalAddr: ip("2001:db8::3")}},
		{"-P -t [2001:db8::1]:80 -z [2001:db8::3]:0", &Command{Kind: KindAddLaddr, Service: tcp("2001:db8::1", 80), LocalAddr: ip("2001:db8::3")}},
		{"-P -f 7 -6 -z 2001:db8::3", &Command{Kind: KindAddLaddr, Service: fwm(7, model.IPv6, "wlc"), LocalAddr: ip("2001:db8::3")}},
		{"-G", &Command{Kind: KindGetLaddr}},
		{"--get-laddr -t 198.18.0.1:80", &Command{Kind: KindGetLaddr, Service: tcp("198.18.0.1", 80)}},
	} {
		t.Run(tc.args, func(t *testing.T) {
			got, err := Parse(strings.Fields(tc.args))
			if err != nil {
				t.Fatalf("unexpected error %q", err)
			}
			got.Given = 0
			got.Daemon = Daemon{}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got  %+v\nwant %+v", got, tc.want)
			}
		})
	}
}

func TestParseGiven(t *testing.T) {
	c, err := Parse([]string{"-e", "-t", "198.18.0.1:80", "-r", "198.18.1.10", "-w", "2"})
	if err != nil {
		t.Fatal(err)
	}
	if !c.Given.Has(OptService|OptServer|OptWeight) || c.Given.Has(OptForward) || !c.HasService() {
		t.Errorf("Given = %b", c.Given)
	}
}

func TestParseErrors(t *testing.T) {
	for _, tc := range []struct {
		args []string
		msg  string
		code int
	}{
		// The first option must be the command.
		{[]string{"-t", "1.2.3.4:80", "-A"}, "Try `gvsadm -h' or 'gvsadm --help' for more information.", 255},
		{[]string{"foo"}, "Try `gvsadm -h' or 'gvsadm --help' for more information.", 255},
		{[]string{"ipvsadm-is-not-dropped-here", "-C"}, "unexpected argument ipvsadm-is-not-dropped-here", 2},
		{[]string{"-nL"}, "Try `gvsadm -h' or 'gvsadm --help' for more information.", 255},
		{[]string{"--bogus"}, "Try `gvsadm -h' or 'gvsadm --help' for more information.", 255},
		{[]string{"--start-daemon"}, "Try `gvsadm -h' or 'gvsadm --help' for more information.", 255},
		// popt errors.
		{[]string{"-A", "-t"}, "-t: missing argument", 255},
		{[]string{"-A", "--bogus"}, "--bogus: unknown option", 255},
		{[]string{"-A", "--bogus=1"}, "--bogus=1: unknown option", 255},
		{[]string{"-Lq"}, "-Lq: unknown option", 255},
		{[]string{"-L="}, "-L=: unknown option", 255},
		{[]string{"--set", "-1", "2", "3"}, "-1: unknown option", 255},
		{[]string{"-L", "-list"}, "invalid option `-list'", 2}, // -l -i -s t: -l is a command
		// Options that are commands.
		{[]string{"-L", "-Z"}, "invalid option `-Z'", 2},
		{[]string{"-Ln", "-h"}, "invalid option `-h'", 2},
		{[]string{"-LZ"}, "invalid option `-LZ'", 2},
		{[]string{"-L", "--start-daemon", "master"}, "invalid option `master'", 2},
		// Leftover words.
		{[]string{"-L", "foo"}, "unexpected argument foo", 2},
		{[]string{"-L", ""}, "unexpected argument ", 2},
		{[]string{"-A", "-t", "1.2.3.4:80", "--", "-s"}, "unexpected argument -s", 2},
		{[]string{"--set", "1", "2"}, "--set option requires 3 timeout values", 2},
		{[]string{"--set", "1", "2", "x"}, "invalid timeout value `x' specified", 2},
		{[]string{"--set", "1", "2", "2678401"}, "invalid timeout value `2678401' specified", 2},
		{[]string{"--set", "900", "120", "300", "5"}, "unexpected argument 5", 2},
		// Values.
		{[]string{"-A", "-t", "foo:80"}, "illegal virtual server address[:port] specified", 2},
		{[]string{"-A", "-t", "80"}, "illegal virtual server address[:port] specified", 2},
		{[]string{"-A", "-t", ""}, "illegal virtual server address[:port] specified", 2},
		{[]string{"-A", "-t", "1.2.3.4:"}, "illegal virtual server address[:port] specified", 2},
		{[]string{"-A", "-t", "1.2.3.4:65536"}, "illegal virtual server address[:port] specified", 2},
		{[]string{"-A", "-t", "1.2.3.4:nosuchservice"}, "illegal virtual server address[:port] specified", 2},
		{[]string{"-A", "-t", "1.2.3.256:80"}, "illegal virtual server address[:port] specified", 2},
		{[]string{"-A", "-t", "08.1.1.1:80"}, "illegal virtual server address[:port] specified", 2},
		{[]string{"-A", "-t", "[2001:db8::1]80"}, "illegal virtual server address[:port] specified", 2},
		{[]string{"-A", "-t", "[2001:db8::1"}, "illegal virtual server address[:port] specified", 2},
		// A bracketed address needs a port.
		{[]string{"-A", "-t", "[2001:db8::1]"}, "illegal virtual server address[:port] specified", 2},
		{[]string{"-a", "-t", "[2001:db8::1]:80", "-r", "[2001:db8::10]"}, "illegal real server address[:port] specified", 2},
		{[]string{"-A", "-t", "[fe80::1%eth0]:80"}, "illegal virtual server address[:port] specified", 2},
		// The port after a bracketed IPv4 address is lost.
		{[]string{"-A", "-t", "[1.2.3.4]:80"}, "Zero port specified for non-persistent service", 2},
		{[]string{"-A", "-t", "1.2.3.4"}, "Zero port specified for non-persistent service", 2},
		{[]string{"-a", "-t", "1.2.3.4:80", "-r", "bar"}, "illegal real server address[:port] specified", 2},
		{[]string{"-A", "-f", "0"}, "invalid fwmark value `0' specified", 2},
		{[]string{"-A", "-f", "4294967296"}, "invalid fwmark value `4294967296' specified", 2},
		{[]string{"-A", "-f", "1x"}, "invalid fwmark value `1x' specified", 2},
		{[]string{"-A", "-f", "-1294967296"}, "invalid fwmark value `-1294967296' specified", 2},
		{[]string{"-A", "-t", "1.2.3.4:80", "-p", "0"}, "invalid timeout value `0' specified", 2},
		{[]string{"-A", "-t", "1.2.3.4:80", "-p", "abc"}, "invalid timeout value `abc' specified", 2},
		{[]string{"-A", "-t", "1.2.3.4:80", "-p", "2678401"}, "invalid timeout value `2678401' specified", 2},
		{[]string{"-A", "-t", "1.2.3.4:80", "--persistent="}, "invalid timeout value `' specified", 2},
		{[]string{"-A", "-t", "1.2.3.4:80", "-M", "foo"}, "illegal virtual server persistent mask specified", 2},
		{[]string{"-A", "-f", "1", "-6", "-M", "200"}, "illegal ipv6 netmask specified", 2},
		{[]string{"-A", "-f", "1", "-6", "-M", "0"}, "illegal ipv6 netmask specified", 2},
		{[]string{"-A", "-t", "1.2.3.4:80", "-6"}, "-6 used before -f\n", 2},
		{[]string{"-A", "-6", "-f", "1"}, "-6 used before -f\n", 2},
		{[]string{"-a", "-t", "1.2.3.4:80", "-r", "5.6.7.8", "-w", "65536"}, "illegal weight specified", 2},
		{[]string{"-a", "-t", "1.2.3.4:80", "-r", "5.6.7.8", "-w", "-1"}, "illegal weight specified", 2},
		{[]string{"-a", "-t", "1.2.3.4:80", "-r", "5.6.7.8", "-x", "-1"}, "illegal u_threshold specified", 2},
		{[]string{"-a", "-t", "1.2.3.4:80", "-r", "5.6.7.8", "-y", "2147483648"}, "illegal l_threshold specified", 2},
		{[]string{"-A", "-t", "1.2.3.4:80", "-b", "sh-port"}, "incompatible scheduler flag `sh-port'", 2},
		{[]string{"-A", "-t", "1.2.3.4:80", "-s", "sh", "-b", "mh-fallback"}, "incompatible scheduler flag `mh-fallback'", 2},
		{[]string{"-A", "-t", "1.2.3.4:80", "-b", "foo"}, "invalid scheduler flag `foo'", 2},
		{[]string{"--start-daemon", "foo"}, "illegal start-daemon parameter specified", 2},
		{[]string{"--stop-daemon", "foo"}, "illegal start_daemon specified", 2},
		{[]string{"--start-daemon", "master", "--syncid", "256"}, "illegal syncid specified", 2},
		{[]string{"--start-daemon", "master", "--mcast-group", "1.2.3.4"}, "invalid IPv4 mcast-group `1.2.3.4'", 2},
		{[]string{"--start-daemon", "master", "--mcast-group", "2001:db8::1"}, "invalid IPv6 mcast-group `2001:db8::1'", 2},
		{[]string{"--start-daemon", "master", "--mcast-port", "0"}, "illegal mcast-port specified", 2},
		{[]string{"--start-daemon", "master", "--mcast-ttl", "256"}, "illegal mcast-ttl specified", 2},
		{[]string{"--start-daemon", "master", "--sync-maxlen", "65508"}, "illegal sync-maxlen specified", 2},
		{[]string{"-a", "-t", "1.2.3.4:80", "-r", "5.6.7.8", "-i", "--tun-type", "vxlan"}, "illegal tunnel type specified", 2},
		{[]string{"-a", "-t", "1.2.3.4:80", "-r", "5.6.7.8", "-i", "--tun-port", "0"}, "illegal tunnel port specified", 2},
		// Duplicates.
		{[]string{"-A", "-t", "1.2.3.4:80", "-s", "rr", "-s", "wrr"}, "multiple 'scheduler' options specified", 2},
		{[]string{"-A", "-t", "1.2.3.4:80", "-u", "1.2.3.4:53"}, "multiple 'service-address' options specified", 2},
		{[]string{"-A", "-t", "1.2.3.4:80", "-f", "1"}, "multiple 'service-address' options specified", 2},
		{[]string{"-a", "-t", "1.2.3.4:80", "-r", "5.6.7.8", "-g", "-m"}, "multiple 'forwarding-method' options specified", 2},
		{[]string{"-a", "-t", "1.2.3.4:80", "-r", "5.6.7.8", "-m", "--fullnat"}, "multiple 'forwarding-method' options specified", 2},
		{[]string{"-L", "-n", "-n"}, "multiple 'numeric' options specified", 2},
		{[]string{"-Lnn"}, "multiple 'numeric' options specified", 2},
		{[]string{"-A", "-t", "1.2.3.4:80", "-p", "-p"}, "multiple 'persistent' options specified", 2},
		// The command/option matrix.
		{[]string{"-A"}, "You need to supply the 'service-address' option for the 'add-service' command", 2},
		{[]string{"-a", "-t", "1.2.3.4:80"}, "You need to supply the 'real-server' option for the 'add-server' command", 2},
		{[]string{"-a", "-w", "5"}, "You need to supply the 'service-address' option for the 'add-server' command", 2},
		{[]string{"-d", "-t", "1.2.3.4:80"}, "You need to supply the 'real-server' option for the 'delete-server' command", 2},
		{[]string{"-A", "-t", "1.2.3.4:80", "-r", "5.6.7.8"}, "Illegal 'real-server' option with the 'add-service' command", 2},
		{[]string{"-a", "-t", "1.2.3.4:80", "-r", "5.6.7.8", "-M", "255.255.255.0"}, "Illegal 'netmask' option with the 'add-server' command", 2},
		{[]string{"-a", "-t", "1.2.3.4:80", "-r", "5.6.7.8", "--stats"}, "Illegal 'stats' option with the 'add-server' command", 2},
		{[]string{"-d", "-t", "1.2.3.4:80", "-r", "5.6.7.8", "-m"}, "Illegal 'forwarding-method' option with the 'delete-server' command", 2},
		{[]string{"-e", "-t", "1.2.3.4:80", "-r", "5.6.7.8", "-s", "rr"}, "Illegal 'scheduler' option with the 'edit-server' command", 2},
		{[]string{"-D", "-t", "1.2.3.4:80", "-s", "rr"}, "Illegal 'scheduler' option with the 'delete-service' command", 2},
		{[]string{"-A", "-t", "1.2.3.4:80", "-X"}, "Illegal 'exact' option with the 'add-service' command", 2},
		{[]string{"-A", "-t", "1.2.3.4:80", "--syncid", "5"}, "Illegal 'syncid' option with the 'add-service' command", 2},
		{[]string{"-A", "-t", "1.2.3.4:80", "-n"}, "Illegal 'numeric' option with the 'add-service' command", 2},
		{[]string{"-C", "-n"}, "Illegal 'numeric' option with the 'flush' command", 2},
		{[]string{"-C", "-t", "1.2.3.4:80"}, "Illegal 'service-address' option with the 'flush' command", 2},
		{[]string{"-S", "-c"}, "Illegal 'connection' option with the 'save' command", 2},
		{[]string{"-S", "-t", "1.2.3.4:80"}, "Illegal 'service-address' option with the 'save' command", 2},
		{[]string{"-R", "-n"}, "Illegal 'numeric' option with the 'restore' command", 2},
		{[]string{"-Z", "-n"}, "Illegal 'numeric' option with the 'zero' command", 2},
		{[]string{"--set", "1", "2", "3", "-n"}, "Illegal 'numeric' option with the 'set' command", 2},
		{[]string{"-L", "-s", "rr"}, "Illegal 'scheduler' option with the 'list' command", 2},
		{[]string{"-L", "-o"}, "Illegal 'ops' option with the 'list' command", 2},
		{[]string{"-L", "-c", "--timeout"}, "The option 'timeout' conflicts with the 'connection' option in the 'list' command", 2},
		{[]string{"-L", "-t", "1.2.3.4:80", "-c"}, "The option 'service-address' conflicts with the 'connection' option in the 'list' command", 2},
		{[]string{"-L", "--daemon", "--timeout"}, "The option 'daemon' conflicts with the 'timeout' option in the 'list' command", 2},
		{[]string{"--stop-daemon", "master", "--mcast-interface", "eth1"}, "Illegal 'mcast-interface' option with the 'stop-daemon' command", 2},
		{[]string{"-L", "-c", "--stats"}, "options conflicts in the list command", 2},
		{[]string{"-L", "--timeout", "--persistent-conn"}, "options conflicts in the list command", 2},
		{[]string{"-L", "--daemon", "--rate"}, "options conflicts in the list command", 2},
		// Checks after the matrix.
		{[]string{"-A", "-t", "1.2.3.4:80", "-o"}, "One-Packet Scheduling is only for UDP virtual services", 2},
		{[]string{"-a", "-f", "1", "-r", "2001:db8::1"}, "Different address family is allowed only for tunneling servers", 2},
		{[]string{"-a", "-t", "[2001:db8::1]:80", "-r", "1.2.3.4", "-m"}, "Different address family is allowed only for tunneling servers", 2},
		{[]string{"-a", "-t", "1.2.3.4:80", "-r", "[2001:db8::1]:80", "--fullnat"}, "Different address family is allowed only for tunneling servers", 2},
		{[]string{"-a", "-t", "1.2.3.4:80", "-r", "5.6.7.8", "--tun-type", "gue"}, "Tunnel options conflict with forward method", 2},
		{[]string{"-a", "-t", "1.2.3.4:80", "-r", "5.6.7.8", "-m", "--tun-csum"}, "Tunnel options conflict with forward method", 2},
		{[]string{"-a", "-t", "1.2.3.4:80", "-r", "5.6.7.8", "-i", "--tun-port", "5000"}, "Illegal 'tun-port' option with the 'ipip' tunnel type", 2},
		{[]string{"-a", "-t", "1.2.3.4:80", "-r", "5.6.7.8", "-i", "--tun-type", "gue"}, "You need to supply the 'tun-port' option for the 'gue' tunnel type", 2},
		{[]string{"-a", "-t", "1.2.3.4:80", "-r", "5.6.7.8", "-i", "--tun-type", "gue", "--tun-port", "6080", "--tun-csum", "--tun-nocsum"},
			"The option 'tun-csum' conflicts with the 'tun-nocsum' option in the 'gue' tunnel type", 2},
		{[]string{"-a", "-t", "1.2.3.4:80", "-r", "5.6.7.8", "-i", "--tun-type", "gre", "--tun-remcsum"}, "Illegal 'tun-remcsum' option with the 'gre' tunnel type", 2},
		// What gvs does not implement.
		{[]string{"-A", "-u", "1.2.3.4:5060", "--pe", "sip", "-p"}, "--pe sip: persistence engines are not supported by gvs", 2},
		{[]string{"-a", "-t", "1.2.3.4:80", "-r", "5.6.7.8", "-i", "--tun-type", "gue", "--tun-port", "6080"}, "--tun-type gue: only ipip tunnels are supported by gvs", 2},
		{[]string{"-a", "-t", "1.2.3.4:80", "-r", "5.6.7.8", "-i", "--tun-type", "gre"}, "--tun-type gre: only ipip tunnels are supported by gvs", 2},
		// FULLNAT local addresses: DPVS ipvsadm's matrix rows and
		// columns (but -F, optional) and messages.
		{[]string{"-P", "-t", "1.2.3.4:80"}, "You need to supply the 'local-address' option for the 'add-laddr' command", 2},
		{[]string{"-Q", "-t", "1.2.3.4:80", "-F", "eth0"}, "You need to supply the 'local-address' option for the 'del-laddr' command", 2},
		{[]string{"-P", "-z", "1.1.1.1"}, "You need to supply the 'service-address' option for the 'add-laddr' command", 2},
		{[]string{"-Q", "-z", "1.1.1.1"}, "You need to supply the 'service-address' option for the 'del-laddr' command", 2},
		{[]string{"-A", "-t", "1.2.3.4:80", "-z", "1.1.1.1"}, "Illegal 'local-address' option with the 'add-service' command", 2},
		{[]string{"-a", "-t", "1.2.3.4:80", "-r", "5.6.7.8", "--fullnat", "-z", "1.1.1.1"}, "Illegal 'local-address' option with the 'add-server' command", 2},
		{[]string{"-D", "-t", "1.2.3.4:80", "-z", "1.1.1.1"}, "Illegal 'local-address' option with the 'delete-service' command", 2},
		{[]string{"-L", "-z", "1.1.1.1"}, "Illegal 'local-address' option with the 'list' command", 2},
		{[]string{"-S", "-z", "1.1.1.1"}, "Illegal 'local-address' option with the 'save' command", 2},
		{[]string{"-G", "-z", "1.1.1.1"}, "Illegal 'local-address' option with the 'get-laddr' command", 2},
		{[]string{"-G", "-n"}, "Illegal 'numeric' option with the 'get-laddr' command", 2},
		{[]string{"-G", "-F", "eth0"}, "Illegal 'ifname' option with the 'get-laddr' command", 2},
		{[]string{"-A", "-t", "1.2.3.4:80", "-F", "eth0"}, "Illegal 'ifname' option with the 'add-service' command", 2},
		{[]string{"-P", "-t", "1.2.3.4:80", "-z", "1.1.1.1", "-n"}, "Illegal 'numeric' option with the 'add-laddr' command", 2},
		{[]string{"-P", "-t", "1.2.3.4:80", "-z", "1.1.1.1", "-w", "2"}, "Illegal 'weight' option with the 'add-laddr' command", 2},
		{[]string{"-P", "-t", "1.2.3.4:80", "-z", "1.1.1.1", "-s", "rr"}, "Illegal 'scheduler' option with the 'add-laddr' command", 2},
		{[]string{"-Q", "-t", "1.2.3.4:80", "-z", "1.1.1.1", "-r", "5.6.7.8"}, "Illegal 'real-server' option with the 'del-laddr' command", 2},
		{[]string{"-P", "-t", "1.2.3.4:80", "-z", "foo"}, "illegal local address", 2},
		{[]string{"-P", "-t", "1.2.3.4:80", "-z", ""}, "illegal local address", 2},
		{[]string{"-P", "-t", "1.2.3.4:80", "-z", "1.2.3.4:99999"}, "illegal local address", 2},
		{[]string{"-P", "-t", "[2001:db8::1]:80", "-z", "[2001:db8::3]"}, "illegal local address", 2},
		{[]string{"-P", "-t", "1.2.3.4:80", "-z", "1.1.1.1", "-z", "1.1.1.2"}, "multiple 'local-address' options specified", 2},
		{[]string{"-P", "-t", "1.2.3.4:80", "-z", "1.1.1.1", "-F", "a", "-F", "b"}, "multiple 'ifname' options specified", 2},
		{[]string{"-P", "-t", "1.2.3.4:80", "-z"}, "-z: missing argument", 255},
		{[]string{"-P", "-t", "1.2.3.4:80", "--laddr"}, "--laddr: missing argument", 255},
		{[]string{"-L", "-P"}, "invalid option `-P'", 2},
		{[]string{"-P", "-G"}, "invalid option `-G'", 2},
		// ipvsadm crashes on a -b of commas only; gvs reports it.
		{[]string{"-A", "-t", "1.2.3.4:80", "-b", ","}, "invalid scheduler flag `'", 2},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			c, err := Parse(tc.args)
			if err == nil {
				t.Fatalf("no error, got %+v", c)
			}
			e, ok := err.(*Error)
			if !ok {
				t.Fatalf("error %T %v", err, err)
			}
			if e.Msg != tc.msg || e.ExitCode() != tc.code {
				t.Errorf("got %q (exit %d), want %q (exit %d)", e.Msg, e.ExitCode(), tc.msg, tc.code)
			}
		})
	}
}

func TestParseProgramName(t *testing.T) {
	_, err := Parser{Program: "ipvsadm"}.Parse([]string{"-x"})
	if err == nil || err.Error() != "Try `ipvsadm -h' or 'ipvsadm --help' for more information." {
		t.Errorf("got %v", err)
	}
}

// -P and -Q are control API operations on the service's key; -G only
// reads.
func TestLaddrOps(t *testing.T) {
	for _, tc := range []struct {
		args string
		want api.Op
		ok   bool
	}{
		{"-P -t 198.18.0.1:80 -z 198.18.3.1 -F eth0", api.Op{Op: api.AddLocalAddr,
			Service: model.Service{ServiceKey: tcp("198.18.0.1", 80).ServiceKey}, LocalAddr: ip("198.18.3.1")}, true},
		{"-Q -f 7 -z 198.18.3.1", api.Op{Op: api.DelLocalAddr,
			Service: model.Service{ServiceKey: fwm(7, model.IPv4, "wlc").ServiceKey}, LocalAddr: ip("198.18.3.1")}, true},
		{"-G -t 198.18.0.1:80", api.Op{}, false},
	} {
		c, err := Parse(strings.Fields(tc.args))
		if err != nil {
			t.Fatal(err)
		}
		op, ok, err := c.Op()
		if err != nil || ok != tc.ok || !reflect.DeepEqual(op, tc.want) {
			t.Errorf("%s: %+v %v %v, want %+v %v", tc.args, op, ok, err, tc.want, tc.ok)
		}
	}
}
