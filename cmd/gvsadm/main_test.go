package main

import (
	"bytes"
	"io"
	"log/slog"
	"net/netip"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"gvs/api"
	"gvs/apiserver"
	"gvs/control"
	"gvs/engine"
	"gvs/ipvs"
	"gvs/ipvsadm"
	"gvs/model"
)

// tableEngine is an engine without a data path: the rules alone.
type tableEngine struct{ *engine.Table }

func (tableEngine) Name() string { return "table" }
func (tableEngine) Close() error { return nil }

// startGvsd serves the control API of a fresh core on a socket in a
// temporary directory and returns the socket's path.
func startGvsd(t *testing.T) string {
	t.Helper()
	return serveEngine(t, tableEngine{engine.NewTable(ipvs.Options{})})
}

// serveEngine serves the control API of a core over eng.
func serveEngine(t *testing.T, eng engine.Engine) string {
	t.Helper()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	core := control.New(eng, nil, log)
	srv := apiserver.New(core, api.Info{Version: api.Version, ConnTableSize: 4096, Engine: "table"}, log)
	sock := filepath.Join(t.TempDir(), "gvsd.sock")
	if err := srv.Listen(sock, 0o600, -1); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	return sock
}

// gvsadm runs one command line against the socket.
func gvsadm(sock, stdin string, args ...string) (stdout, stderr string, code int) {
	var out, errb bytes.Buffer
	code = run(append([]string{"gvsadm", "--socket", sock}, args...), strings.NewReader(stdin), &out, &errb)
	return out.String(), errb.String(), code
}

// The local address commands, end to end: gvsadm's syntax and messages,
// through the client, the API server and the control core, -G's table,
// and -S lines that -R restores.
func TestLocalAddrCommands(t *testing.T) {
	sock := startGvsd(t)
	const pool = "VIP:VPORT            TOTAL    SNAT_IP              CONFLICTS  CONNS     \n" +
		"198.18.0.1:80        2        \n" +
		"                              198.18.3.2           0          0         \n" +
		"                              198.18.3.1           0          0         \n"
	for _, step := range []struct {
		args   string
		stdin  string
		stdout string
		stderr string
		code   int
	}{
		{args: "-A -t 198.18.0.1:80 -s rr"},
		{args: "-a -t 198.18.0.1:80 -r 198.18.1.1:8080 --fullnat"},
		{args: "-G", stdout: "VIP:VPORT            TOTAL    SNAT_IP              CONFLICTS  CONNS     \n" +
			"198.18.0.1:80        0        \n"},
		{args: "-P -t 198.18.0.1:80 -z 198.18.3.2 -F eth0"},
		{args: "--add-laddr --tcp-service 198.18.0.1:http --laddr 198.18.3.1"},
		{args: "-G -t 198.18.0.1:80", stdout: pool},
		// Refusals change nothing.
		{args: "-P -t 198.18.0.1:80 -z 198.18.3.1", stderr: "Local address already exists\n", code: 255},
		{args: "-P -t 198.18.0.9:80 -z 198.18.3.1", stderr: "Service not defined\n", code: 255},
		{args: "-P -t 198.18.0.1:80 -z 2001:db8::1", stderr: "Invalid operation.  Possibly wrong module version, address not unicast, ...\n", code: 255},
		{args: "-P -t 198.18.0.1:80 -z 224.0.0.1", stderr: "Invalid operation.  Possibly wrong module version, address not unicast, ...\n", code: 255},
		{args: "-Q -t 198.18.0.1:80 -z 198.18.3.9", stderr: "No such Local address\n", code: 255},
		{args: "-G -t 198.18.0.9:80", stderr: "Service not defined\n", code: 255},
		// Command-line mistakes never reach gvsd.
		{args: "-P -t 198.18.0.1:80", stderr: "You need to supply the 'local-address' option for the 'add-laddr' command\n", code: 2},
		{args: "-Q -z 198.18.3.1", stderr: "You need to supply the 'service-address' option for the 'del-laddr' command\n", code: 2},
		{args: "-A -t 198.18.0.2:80 -z 198.18.3.1", stderr: "Illegal 'local-address' option with the 'add-service' command\n", code: 2},
		{args: "-P -t 198.18.0.1:80 -z nowhere", stderr: "illegal local address\n", code: 2},
		{args: "-G -n", stderr: "Illegal 'numeric' option with the 'get-laddr' command\n", code: 2},
		{args: "-G", stdout: pool},
		// -E keeps the pool.
		{args: "-E -t 198.18.0.1:80 -s wrr"},
		{args: "-G", stdout: pool},
		{args: "-Sn", stdout: "-A -t 198.18.0.1:80 -s wrr\n" +
			"-a -t 198.18.0.1:80 -r 198.18.1.1:8080 --fullnat -w 1\n" +
			"-P -t 198.18.0.1:80 -z 198.18.3.2\n" +
			"-P -t 198.18.0.1:80 -z 198.18.3.1\n"},
		// What -S wrote, -R restores, pool order included.
		{args: "-C"},
		{args: "-G"},
		{args: "-R", stdin: "-A -t 198.18.0.1:80 -s wrr\n" +
			"-a -t 198.18.0.1:80 -r 198.18.1.1:8080 --fullnat -w 1\n" +
			"-P -t 198.18.0.1:80 -z 198.18.3.2\n" +
			"-P -t 198.18.0.1:80 -z 198.18.3.1\n"},
		{args: "-G", stdout: pool},
		// All or nothing: a bad -P line leaves the rules alone.
		{args: "-R", stdin: "-Q -t 198.18.0.1:80 -z 198.18.3.2\n-P -t 198.18.0.1:80 -z 198.18.3.1\n",
			stderr: "Local address already exists (restore command 2); no rule was changed\n", code: 255},
		{args: "-G", stdout: pool},
		{args: "-Q -t 198.18.0.1:80 -z 198.18.3.2"},
		{args: "-G", stdout: "VIP:VPORT            TOTAL    SNAT_IP              CONFLICTS  CONNS     \n" +
			"198.18.0.1:80        1        \n" +
			"                              198.18.3.1           0          0         \n"},
		{args: "-D -t 198.18.0.1:80"},
		{args: "-A -t 198.18.0.1:80"},
		{args: "-G", stdout: "VIP:VPORT            TOTAL    SNAT_IP              CONFLICTS  CONNS     \n" +
			"198.18.0.1:80        0        \n"},
	} {
		stdout, stderr, code := gvsadm(sock, step.stdin, strings.Fields(step.args)...)
		if stdout != step.stdout || stderr != step.stderr || code != step.code {
			t.Fatalf("gvsadm %s:\nstdout %q\nstderr %q\nexit %d\nwant\nstdout %q\nstderr %q\nexit %d",
				step.args, stdout, stderr, code, step.stdout, step.stderr, step.code)
		}
	}
}

// -Lc through the API's streamed listing prints what ipvsadm's formatter
// prints for the engine's own entries, byte for byte, for a small table
// and for one whose listing is written in many pieces.
func TestListConnsStreamed(t *testing.T) {
	for _, n := range []int{0, 3, 5000} {
		tb := engine.NewTable(ipvs.Options{})
		clock := time.Unix(1_700_000_000, 0)
		tb.Now = func() time.Time { return clock }
		k := model.ServiceKey{Protocol: model.ProtoUDP, Addr: netip.MustParseAddr("198.18.0.100"), Port: 9999, Family: model.IPv4}
		if err := tb.AddService(model.Service{ServiceKey: k, Scheduler: "rr"}); err != nil {
			t.Fatal(err)
		}
		if err := tb.AddDest(k, model.Dest{Addr: netip.MustParseAddr("198.18.1.11"), Port: 9999, Method: model.Masq, Weight: 1}); err != nil {
			t.Fatal(err)
		}
		tb.Do(func(v *ipvs.IPVS) {
			for i := range n {
				src := netip.AddrPortFrom(netip.AddrFrom4([4]byte{198, 18, byte(i >> 8), byte(i)}), 48171)
				v.In(ipvs.Packet{Protocol: model.ProtoUDP, Src: src, Dst: netip.AddrPortFrom(k.Addr, k.Port), Len: 39}, clock.Add(-2*time.Second))
			}
		})
		var direct []api.Conn
		tb.Conns(func(c api.Conn) bool { direct = append(direct, c); return true })
		var want bytes.Buffer
		if err := ipvsadm.ListConns(&want, direct, ipvsadm.Format{Numeric: true}); err != nil {
			t.Fatal(err)
		}
		if n == 3 {
			const lit = "IPVS connection entries\n" +
				"pro expire state       source             virtual            destination\n" +
				"UDP 04:58  UDP         198.18.0.0:48171   198.18.0.100:9999  198.18.1.11:9999\n" +
				"UDP 04:58  UDP         198.18.0.1:48171   198.18.0.100:9999  198.18.1.11:9999\n" +
				"UDP 04:58  UDP         198.18.0.2:48171   198.18.0.100:9999  198.18.1.11:9999\n"
			if want.String() != lit {
				t.Fatalf("ipvsadm's formatter:\n%s", want.String())
			}
		}
		sock := serveEngine(t, tableEngine{tb})
		stdout, stderr, code := gvsadm(sock, "", "-Lcn")
		if stdout != want.String() || stderr != "" || code != 0 {
			t.Fatalf("%d entries: gvsadm -Lcn exit %d, stderr %q, output equal to the formatter's: %v", n, code, stderr, stdout == want.String())
		}
	}
}
