// Command gvs-realserver prepares a Linux host to be an LVS real server
// for the DR and TUN forwarding methods (VIP on lo, ARP sysctls, IP-in-IP
// decapsulation), and undoes it. See package gvs/realserver.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net/netip"
	"os"
	"strings"

	"gvs/realserver"
)

const usage = `Usage:
  gvs-realserver up --vip ADDR [--vip ADDR ...] [--interface IF] [--tunnel]
  gvs-realserver down [--vip ADDR ...]
  gvs-realserver status
  gvs-realserver --help
  gvs-realserver --version

Prepare this host to be an LVS real server for the DR (-g) and TUN (-i)
forwarding methods, and undo it.

up    Puts each VIP on lo (/32, /128), so the host accepts the director's
      packets for it, and makes it never claim an IPv4 VIP on the wire:
      net.ipv4.conf.{all,lo,IF}.arp_ignore=1 and arp_announce=2. With
      --tunnel (TUN mode) it also attaches a tc ingress BPF program to IF
      that decapsulates IP-in-IP packets for the VIPs (no ipip module
      needed), and makes IF's reverse-path filter loose (rp_filter=2) if it
      was strict. Running it again changes nothing more; with new VIPs it
      adds them.
down  Restores what up changed (recorded in the state file): everything,
      or with --vip only those VIPs (everything once the last one goes).
status  Shows what up changed.

Options:
  --vip ADDR         a VIP (IPv4 or IPv6; repeat it, or a comma list)
  --interface IF     the interface the director's packets arrive on
  --tunnel           TUN mode: decapsulate IP-in-IP on --interface (required)
  --attach MODE      auto (default: tcx on kernel 6.6+, else tc), tcx or tc
  --state-dir DIR    where the record of changes is kept (default /var/lib/gvs-realserver)
  --pin-dir DIR      where the BPF link and map are pinned, on a BPF file system
                     (default /sys/fs/bpf/gvs-realserver)
  -q, --quiet        do not print the changes made

Exit status: 0 done, 1 failed, 2 usage error.
`

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

type vipList []netip.Addr

func (l *vipList) String() string { return fmt.Sprint(*l) }
func (l *vipList) Set(s string) error {
	for _, p := range strings.Split(s, ",") {
		a, err := realserver.ParseVIP(strings.TrimSpace(p))
		if err != nil {
			return err
		}
		*l = append(*l, a)
	}
	return nil
}

func main() { os.Exit(run(os.Args[1:], os.Stdout, os.Stderr)) }

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	cmd := args[0]
	switch cmd {
	case "-h", "--help", "-help", "help":
		fmt.Fprint(stdout, usage)
		return 0
	case "--version", "-version", "version":
		fmt.Fprintln(stdout, "gvs-realserver", version)
		return 0
	case "up", "down", "status":
	default:
		fmt.Fprintf(stderr, "gvs-realserver: unknown command %q (up, down, status; --help)\n", cmd)
		return 2
	}

	fs := flag.NewFlagSet("gvs-realserver "+cmd, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	var opts realserver.Options
	var vips vipList
	var quiet bool
	if cmd != "status" {
		fs.Var(&vips, "vip", "")
	}
	if cmd == "up" {
		fs.BoolVar(&opts.Tunnel, "tunnel", false, "")
		fs.StringVar(&opts.Interface, "interface", "", "")
		fs.StringVar(&opts.Attach, "attach", realserver.AttachAuto, "")
		fs.StringVar(&opts.PinDir, "pin-dir", realserver.DefaultPinDir, "")
	}
	fs.StringVar(&opts.StateDir, "state-dir", realserver.DefaultStateDir, "")
	fs.BoolVar(&quiet, "q", false, "")
	fs.BoolVar(&quiet, "quiet", false, "")
	if err := fs.Parse(args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprint(stdout, usage)
			return 0
		}
		fmt.Fprintf(stderr, "gvs-realserver %s: %v (see --help)\n", cmd, err)
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "gvs-realserver %s: unexpected argument %q (see --help)\n", cmd, fs.Arg(0))
		return 2
	}
	opts.VIPs = vips
	if !quiet {
		opts.Out = stdout
	}

	var err error
	switch cmd {
	case "up":
		if len(vips) == 0 {
			fmt.Fprintln(stderr, "gvs-realserver up: at least one --vip is needed (see --help)")
			return 2
		}
		err = realserver.Up(opts)
	case "down":
		err = realserver.Down(opts)
	case "status":
		err = status(opts.StateDir, stdout)
	}
	if err != nil {
		fmt.Fprintf(stderr, "gvs-realserver %s: %v\n", cmd, err)
		var ue *realserver.UsageError
		if errors.As(err, &ue) {
			return 2
		}
		return 1
	}
	return 0
}

func status(dir string, w io.Writer) error {
	s, err := realserver.Status(dir)
	if err != nil {
		return err
	}
	if len(s.VIPs) == 0 && len(s.Sysctls) == 0 && s.Tunnel == nil {
		fmt.Fprintln(w, "not set up")
		return nil
	}
	for _, v := range s.VIPs {
		how := "added to lo"
		if !v.Added {
			how = "was already on lo"
		}
		fmt.Fprintf(w, "vip %s (%s)\n", v.Addr, how)
	}
	for _, c := range s.Sysctls {
		fmt.Fprintf(w, "sysctl %s = %s (was %s)\n", c.Name(), c.Set, c.Previous)
	}
	if t := s.Tunnel; t != nil {
		fmt.Fprintf(w, "tunnel on %s (%s ingress, pinned in %s)\n", t.Interface, t.Attach, t.PinDir)
	}
	return nil
}
