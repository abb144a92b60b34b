package ipvsadm

import (
	"fmt"
	"io"
	"strings"

	"gvs/api"
	"gvs/model"
)

// IpvsadmVersion is the ipvsadm release whose interface this package
// reproduces.
const IpvsadmVersion = "v1.31 2019/12/24"

// Version writes the version line (ipvsadm -v), naming gvsadm.
func Version(w io.Writer) error { return VersionAs(w, DefaultProgram) }

// VersionAs writes the version line for the given program name.
func VersionAs(w io.Writer, program string) error {
	_, err := fmt.Fprintf(w, "%s %s (ipvsadm-compatible, gvs; IPVS v%s)\n", program, IpvsadmVersion, api.Version)
	return err
}

// Usage writes the help text (ipvsadm -h) for gvsadm.
func Usage(w io.Writer) error { return UsageAs(w, DefaultProgram) }

// UsageAs writes ipvsadm 1.31's help text for the given program name, with
// gvs's schedulers, its --fullnat forwarding method and DPVS ipvsadm's
// local address commands.
func UsageAs(w io.Writer, program string) error {
	ew := &errWriter{w: w}
	if err := VersionAs(w, program); err != nil {
		return err
	}
	p := program
	ew.print("Usage:\n" +
		"  " + p + " -A|E virtual-service [-s scheduler] [-p [timeout]] [-M netmask] [--pe persistence_engine] [-b sched-flags]\n" +
		"  " + p + " -D virtual-service\n" +
		"  " + p + " -C\n" +
		"  " + p + " -R\n" +
		"  " + p + " -S [-n]\n" +
		"  " + p + " -a|e virtual-service -r server-address [options]\n" +
		"  " + p + " -d virtual-service -r server-address\n" +
		"  " + p + " -P|Q virtual-service -z local-address\n" +
		"  " + p + " -G [virtual-service]\n" +
		"  " + p + " --list-checks [virtual-service] [-n]\n" +
		"  " + p + " --maintenance on|off [--drain seconds]\n" +
		"  " + p + " -L|l [virtual-service] [options]\n" +
		"  " + p + " -Z [virtual-service]\n" +
		"  " + p + " --set tcp tcpfin udp\n" +
		"  " + p + " --start-daemon {master|backup} [daemon-options]\n" +
		"  " + p + " --stop-daemon {master|backup}\n" +
		"  " + p + " -h\n\n")
	ew.print("Commands:\n" +
		"Either long or short options are allowed.\n" +
		"  --add-service     -A        add virtual service with options\n" +
		"  --edit-service    -E        edit virtual service with options\n" +
		"  --delete-service  -D        delete virtual service\n" +
		"  --clear           -C        clear the whole table\n" +
		"  --restore         -R        restore rules from stdin\n" +
		"  --add-laddr       -P        add FULLNAT local address (as DPVS)\n" +
		"  --del-laddr       -Q        delete FULLNAT local address (as DPVS)\n" +
		"  --get-laddr       -G        list FULLNAT local addresses (as DPVS)\n" +
		"  --list-checks               list health checks and their state (gvs)\n" +
		"  --maintenance on|off        drain and withdraw the BGP announcements, or resume (gvs)\n" +
		"  --save            -S        save rules to stdout\n" +
		"  --add-server      -a        add real server with options\n" +
		"  --edit-server     -e        edit real server with options\n" +
		"  --delete-server   -d        delete real server\n" +
		"  --list            -L|-l     list the table\n" +
		"  --zero            -Z        zero counters in a service or all services\n" +
		"  --set tcp tcpfin udp        set connection timeout values\n" +
		"  --start-daemon              start connection sync daemon\n" +
		"  --stop-daemon               stop connection sync daemon\n" +
		"  --help            -h        display this help message\n\n")
	ew.print("virtual-service:\n" +
		"  --tcp-service|-t  service-address   service-address is host[:port]\n" +
		"  --udp-service|-u  service-address   service-address is host[:port]\n" +
		"  --sctp-service    service-address   service-address is host[:port]\n" +
		"  --fwmark-service|-f fwmark          fwmark is an integer greater than zero\n" +
		"\n")
	ew.print("Options:\n" +
		"  --ipv6         -6                   fwmark entry uses IPv6\n" +
		"  --scheduler    -s scheduler         one of " + strings.Join(model.Schedulers, "|") + ",\n" +
		"                                      the default scheduler is " + model.DefaultScheduler + ".\n" +
		"  --pe            engine              alternate persistence engine (not supported by gvs),\n" +
		"                                      not set by default.\n" +
		"  --persistent   -p [timeout]         persistent service\n" +
		"  --netmask      -M netmask           persistent granularity mask\n" +
		"  --real-server  -r server-address    server-address is host (and port)\n" +
		"  --gatewaying   -g                   gatewaying (direct routing) (default)\n" +
		"  --ipip         -i                   ipip encapsulation (tunneling)\n" +
		"  --masquerading -m                   masquerading (NAT)\n" +
		"  --fullnat                           full NAT (source and destination translated)\n" +
		"  --laddr        -z local-address     FULLNAT local address (source toward servers)\n" +
		"  --ifname       -F ifname            accepted with -P|Q for DPVS scripts, not used\n" +
		"  --drain        seconds              with --maintenance on: seconds announced with GRACEFUL_SHUTDOWN first (gvs)\n" +
		"  --tun-type      type                one of ipip|gue|gre (gvs: ipip only),\n" +
		"                                      the default tunnel type is ipip.\n" +
		"  --tun-port      port                tunnel destination port\n" +
		"  --tun-nocsum                        tunnel encapsulation without checksum\n" +
		"  --tun-csum                          tunnel encapsulation with checksum\n" +
		"  --tun-remcsum                       tunnel encapsulation with remote checksum\n" +
		"  --weight       -w weight            capacity of real server\n" +
		"  --u-threshold  -x uthreshold        upper threshold of connections\n" +
		"  --l-threshold  -y lthreshold        lower threshold of connections\n" +
		"  --connection   -c                   output of current IPVS connections\n" +
		"  --timeout                           output of timeout (tcp tcpfin udp)\n" +
		"  --daemon                            output of daemon information\n" +
		"  --stats                             output of statistics information\n" +
		"  --rate                              output of rate information\n" +
		"  --exact                             expand numbers (display exact values)\n" +
		"  --thresholds                        output of thresholds information\n" +
		"  --persistent-conn                   output of persistent connection info\n" +
		"  --tun-info                          output of tunnel information\n" +
		"  --nosort                            disable sorting output of service/server entries\n" +
		"  --sort                              does nothing, for backwards compatibility\n" +
		"  --ops          -o                   one-packet scheduling\n" +
		"  --numeric      -n                   numeric output of addresses and ports\n" +
		"  --sched-flags  -b flags             scheduler flags (comma-separated)\n")
	ew.print("Daemon Options:\n" +
		"  --syncid sid                        syncid for connection sync (default=255)\n" +
		"  --sync-maxlen length                Max sync message length (default=1472)\n" +
		"  --mcast-interface interface         multicast interface for connection sync\n" +
		"  --mcast-group address               IPv4/IPv6 group (default=224.0.0.81)\n" +
		"  --mcast-port port                   UDP port (default=8848)\n" +
		"  --mcast-ttl ttl                     Multicast TTL (default=1)\n")
	return ew.err
}
