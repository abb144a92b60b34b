// Command gvsadm administers gvsd with ipvsadm's syntax and output, so
// scripts and ipvsadm-save files written for ipvsadm work unchanged.
// Installed or invoked as ipvsadm it behaves the same; as ipvsadm-save it
// is ipvsadm -S, as ipvsadm-restore ipvsadm -R. It finds gvsd by
// --socket PATH, else $GVS_SOCKET, else the default socket.
package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"gvs/api"
	"gvs/client"
	"gvs/ipvsadm"
	"gvs/model"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func main() { os.Exit(run(os.Args, os.Stdin, os.Stdout, os.Stderr)) }

// programName reads how gvsadm was called. As ipvsadm it names itself so
// in messages. As ipvsadm-save or ipvsadm-restore (the names of ipvsadm's
// companion scripts, which its init scripts call) it is ipvsadm with -S
// or -R implied: "ipvsadm-save -n > rules", "ipvsadm-restore < rules".
func programName(argv0 string) (prog, implied string) {
	switch filepath.Base(argv0) {
	case "ipvsadm":
		return "ipvsadm", ""
	case "ipvsadm-save":
		return "ipvsadm", "-S"
	case "ipvsadm-restore":
		return "ipvsadm", "-R"
	}
	return ipvsadm.DefaultProgram, ""
}

// splitSocket takes gvsadm's own --socket option out of the arguments.
func splitSocket(args []string) (socket string, rest []string, err error) {
	for i := 0; i < len(args); i++ {
		a := args[i]
		switch {
		case a == "--socket":
			if i+1 >= len(args) {
				return "", nil, errors.New("--socket: missing argument")
			}
			socket = args[i+1]
			i++
		case strings.HasPrefix(a, "--socket="):
			socket = strings.TrimPrefix(a, "--socket=")
		default:
			rest = append(rest, a)
		}
	}
	return socket, rest, nil
}

type exitCoder interface{ ExitCode() int }

// fail prints err as ipvsadm would and returns the exit status.
func fail(stderr io.Writer, err error) int {
	fmt.Fprintln(stderr, err.Error())
	var ec exitCoder
	if errors.As(err, &ec) {
		return ec.ExitCode()
	}
	return 1
}

func run(argv []string, stdin io.Reader, stdout, stderr io.Writer) int {
	prog, implied := programName(argv[0])
	socket, args, err := splitSocket(argv[1:])
	if err != nil {
		return fail(stderr, err)
	}
	if implied == "" && len(args) == 1 && args[0] == "--gvs-version" {
		// gvs's own build, apart from -v, which prints ipvsadm's version
		// line byte for byte for the scripts that parse it.
		fmt.Fprintf(stdout, "gvsadm %s (ipvsadm %s compatible; IPVS v%s)\n", version, ipvsadm.IpvsadmVersion, api.Version)
		return 0
	}
	if implied != "" {
		args = append([]string{implied}, args...)
	}
	cmd, err := ipvsadm.Parser{Program: prog}.Parse(args)
	if err != nil {
		return fail(stderr, err)
	}
	switch cmd.Kind {
	case ipvsadm.KindHelp:
		ipvsadm.UsageAs(stdout, prog)
		return 0
	case ipvsadm.KindVersion:
		ipvsadm.VersionAs(stdout, prog)
		return 0
	}
	c := client.New(client.Socket(socket))
	switch cmd.Kind {
	case ipvsadm.KindList:
		return list(c, cmd, stdout, stderr)
	case ipvsadm.KindSave:
		// The operator's rules, not the health checks' view of them.
		snap, err := c.ConfiguredServices()
		if err != nil {
			return fail(stderr, err)
		}
		ipvsadm.Save(stdout, snap, cmd.Format.Numeric)
		return 0
	case ipvsadm.KindRestore:
		return restore(c, prog, stdin, stderr)
	case ipvsadm.KindGetLaddr:
		return getLaddrs(c, cmd, stdout, stderr)
	case ipvsadm.KindMaintenance:
		if err := c.Maintenance(cmd.Maintenance, cmd.Drain); err != nil {
			return fail(stderr, err)
		}
		return 0
	case ipvsadm.KindListChecks:
		h, err := c.Checks()
		if err == nil {
			var k *model.ServiceKey
			if cmd.HasService() {
				k = &cmd.Service.ServiceKey
			}
			err = ipvsadm.ListChecks(stdout, h, k, cmd.Format, time.Now())
			if errors.Is(err, model.ErrServiceNotDefined) {
				// A service that exists but is not checked lists nothing.
				if snap, serr := c.Services(); serr == nil && slices.ContainsFunc(snap.Services, func(s api.Service) bool { return s.ServiceKey == *k }) {
					err = nil
				}
			}
		}
		if err != nil {
			return fail(stderr, err)
		}
		return 0
	}
	op, ok, err := cmd.Op()
	if err != nil {
		return fail(stderr, err)
	}
	if !ok {
		return 0
	}
	if err := c.Do(op); err != nil {
		return fail(stderr, err)
	}
	return 0
}

func list(c *client.Client, cmd *ipvsadm.Command, stdout, stderr io.Writer) int {
	var err error
	switch cmd.List {
	case ipvsadm.ListConnTable:
		var conns []api.Conn
		if conns, err = c.Conns(); err == nil {
			err = ipvsadm.ListConns(stdout, conns, cmd.Format)
		}
	case ipvsadm.ListTimeouts:
		t, terr := c.Timeouts()
		if err = terr; err == nil {
			err = ipvsadm.ListTimeout(stdout, t)
		}
	case ipvsadm.ListDaemons:
		d, derr := c.Daemons()
		if err = derr; err == nil {
			err = ipvsadm.ListSyncDaemons(stdout, d)
		}
	default:
		var snap api.Snapshot
		if snap, err = c.Services(); err == nil {
			err = ipvsadm.List(stdout, snap, cmd.Format)
		}
	}
	if err != nil {
		return fail(stderr, err)
	}
	return 0
}

// getLaddrs prints the FULLNAT local address pools (DPVS ipvsadm -G): of
// the service given, or of every service.
func getLaddrs(c *client.Client, cmd *ipvsadm.Command, stdout, stderr io.Writer) int {
	snap, err := c.Services()
	if err == nil {
		var k *model.ServiceKey
		if cmd.HasService() {
			k = &cmd.Service.ServiceKey
		}
		err = ipvsadm.ListLocalAddrs(stdout, snap.Services, k)
	}
	if err != nil {
		return fail(stderr, err)
	}
	return 0
}

// restore applies ipvsadm-save lines from stdin as one batch: all or
// nothing, unlike ipvsadm, which stops half-way at a bad line. gvsd
// parses them (cheaper than a JSON batch); an older gvsd gets the batch.
func restore(c *client.Client, prog string, stdin io.Reader, stderr io.Writer) int {
	input, err := io.ReadAll(stdin)
	if err != nil {
		return fail(stderr, err)
	}
	err = c.Restore(prog, bytes.NewReader(input))
	if errors.Is(err, client.ErrUnknownRequest) {
		return restoreOps(c, prog, bytes.NewReader(input), stderr)
	}
	var oe *client.OpError
	if errors.As(err, &oe) && oe.Command > 0 {
		fmt.Fprintf(stderr, "%s (restore command %d); no rule was changed\n", oe.Err.Msg, oe.Command)
		return oe.Err.ExitCode()
	}
	if err != nil {
		return fail(stderr, err)
	}
	return 0
}

// restoreOps is restore for a gvsd without POST /v1/restore.
func restoreOps(c *client.Client, prog string, stdin io.Reader, stderr io.Writer) int {
	cmds, err := ipvsadm.Parser{Program: prog}.ParseRestore(stdin)
	if err != nil {
		return fail(stderr, err)
	}
	ops, lines, err := ipvsadm.RestoreOps(cmds)
	if err != nil {
		return fail(stderr, err)
	}
	if err := c.Do(ops...); err != nil {
		var oe *client.OpError
		if errors.As(err, &oe) && oe.Index < len(lines) {
			fmt.Fprintf(stderr, "%s (restore command %d); no rule was changed\n", oe.Err.Msg, lines[oe.Index]+1)
			return oe.Err.ExitCode()
		}
		return fail(stderr, err)
	}
	return 0
}
