// Package ipvsadm is the ipvsadm 1.31 command line in pure Go: a parser for
// its arguments (and for the ipvsadm-save lines that -R reads) and
// formatters that write its listings byte for byte from the API documents
// of package api. It does no I/O except writing to the io.Writer it is
// given; gvsadm wires it to gvsd.
//
// # Parsing
//
// Parse follows ipvsadm.c (v1.31, 2019/12/24) and the popt library it is
// built with (popt 1.16+): the first option is the command; short options
// cluster (-Ln, -Lcn, -lnc); a short option with an argument takes the rest
// of its cluster (-p360, -tADDR) or the next word; long options take
// "--opt=value" or the next word; "--" ends the options; other words are
// collected wherever they stand and are then "unexpected argument"s (or the
// three values of --set). -p takes an optional value: the next word is its
// value unless it starts with '-' (popt's rule), so "-p abc" fails with
// "invalid timeout value `abc' specified", as ipvsadm does. Without a value
// the timeout is 360 s.
//
// Errors carry ipvsadm's exact message and exit status: 2 for the
// messages of ipvsadm's fail(2, ...), 255 for the "Try `... -h'" and popt
// ("-t: missing argument", "--foo: unknown option") errors, for which
// ipvsadm exits with -1. The command/option matrix, its message formats
// ("Illegal 'netmask' option with the 'add-server' command", "You need to
// supply the 'real-server' option for the 'add-server' command", "The
// option 'timeout' conflicts with the 'connection' option in the 'list'
// command", "multiple 'weight' options specified") and the check order
// are ipvsadm's.
//
// Addresses are parsed as parse_service does, quirks included: "host",
// "host:port", "[v6]:port", a bare IPv6 address without port, IPv4 in every
// inet_aton form ("10.1" is 10.0.0.1, "010.0.0.1" is octal), a port number
// or a service name. Names go through a Resolver: the built-in one knows
// the service names of Debian's /etc/services and the host name
// "localhost", and does no DNS; gvsadm may pass one that does.
//
// gvs extensions and limits: --fullnat selects model.FullNAT (it counts as
// the forwarding-method option, like -g/-i/-m); DPVS ipvsadm's FULLNAT
// local address commands are here with its letters, names, messages and
// rows of the command/option matrix: --add-laddr|-P and --del-laddr|-Q
// with a service and --laddr|-z ADDR (parsed as a service address, so a
// port is allowed and ignored, as DPVS does; "illegal local address"
// otherwise), and --get-laddr|-G with an optional service (no -n: it is
// always numeric). DPVS requires --ifname|-F with -P and -Q to put the
// address on an interface; gvs puts none there, so -F is optional and
// not used (the address must already be the host's); --pe and the
// gue/gre tunnel types are parsed and checked like ipvsadm does, then
// rejected as unsupported (exit status 2), since gvs has no persistence
// engine and only IP-in-IP tunnels. --start-daemon and --stop-daemon
// become operations of the control API (gvsd runs the daemons; the
// kernel's defaults fill in what was not given), listed by -L --daemon in
// ipvsadm 1.31's format (ListSyncDaemons). --list-checks is gvs's own: the
// health checks (ListChecks); so is --maintenance on|off [--drain SECONDS]
// (KindMaintenance): the director's BGP announcements drained with the
// GRACEFUL_SHUTDOWN community and withdrawn, or resumed (docs/bgp.md).
//
// # Formatting
//
// List, ListConns, ListTimeout and Save reproduce ipvsadm's printf formats:
// column widths, the 33- and 28-byte truncation of IPv4 names, the K/M/G/T
// abbreviation of print_largenum (and --exact), the sort order of
// ipvs_cmp_services and ipvs_cmp_dests (with their 32-bit wrap-around:
// addresses more than 2^31 apart compare the "wrong" way, so 200.0.0.1
// lists before 10.0.0.1) applied with glibc's merge sort, the mm:ss expiry
// of -c, the "-f %d" of a firewall mark above 2^31 (printed negative), the
// destination rate columns that --rate prints unabbreviated, and the
// truncation of destination counters (but not byte counters) to 32 bits
// that libipvs 1.31 does when it reads the kernel's 64-bit destination
// statistics. Without -n, ports are printed by service name and addresses
// through the Resolver (numeric with the built-in one, which does no DNS).
// FULLNAT destinations list as "FullNat" and save as "--fullnat".
//
// Like ipvsadm -S, Save writes neither thresholds (-x, -y) nor anything
// else ipvsadm does not save; it writes " --tun-type ipip" after every
// tunnelling destination, as ipvsadm 1.30 and later do. As a gvs
// extension it writes a service's local address pool, after the
// service's destinations, as "-P -t VIP:PORT -z ADDR" lines in pool
// order, so that -R restores it. ListLocalAddrs prints DPVS ipvsadm -G's
// table ("VIP:VPORT TOTAL SNAT_IP CONFLICTS CONNS"); its counters are 0.
package ipvsadm
