package ipvsadm

import (
	"bytes"
	"errors"
	"reflect"
	"slices"
	"strings"
	"testing"

	"gvs/api"
	"gvs/model"
)

// rebuild applies restored -A and -a commands to an empty table.
func rebuild(t *testing.T, cmds []*Command) []api.Service {
	t.Helper()
	var out []api.Service
	for _, c := range cmds {
		switch c.Kind {
		case KindAddService:
			out = append(out, api.Service{Service: c.Service})
		case KindAddDest:
			found := false
			for i := range out {
				if sameService(out[i].ServiceKey, c.Service.ServiceKey) {
					out[i].Dests = append(out[i].Dests, api.Dest{Dest: c.Dest})
					found = true
				}
			}
			if !found {
				t.Fatalf("-a for a service not added: %v", c.Service.ServiceKey)
			}
		case KindAddLaddr:
			i := slices.IndexFunc(out, func(s api.Service) bool { return sameService(s.ServiceKey, c.Service.ServiceKey) })
			if i < 0 {
				t.Fatalf("-P for a service not added: %v", c.Service.ServiceKey)
			}
			out[i].LocalAddrs = append(out[i].LocalAddrs, c.LocalAddr)
		default:
			t.Fatalf("unexpected command %v", c.Kind)
		}
	}
	return out
}

// saved keeps what ipvsadm -S saves: the services and their destinations
// in listing order, without counters, connection counts or thresholds,
// and (gvs) their local address pools.
func saved(snap api.Snapshot) []api.Service {
	var out []api.Service
	for _, se := range sortedServices(snap.Services) {
		s := api.Service{Service: se.Service, LocalAddrs: se.LocalAddrs}
		for _, d := range sortedDests(se.Dests) {
			d.UThreshold, d.LThreshold = 0, 0
			s.Dests = append(s.Dests, api.Dest{Dest: d.Dest})
		}
		out = append(out, s)
	}
	return out
}

// withoutBigMarks drops the firewall marks above 2^31, which ipvsadm -S
// writes as negative numbers that -R refuses.
func withoutBigMarks(snap api.Snapshot) api.Snapshot {
	var keep []api.Service
	for _, s := range snap.Services {
		if s.FWMark <= 1<<31-1 {
			keep = append(keep, s)
		}
	}
	snap.Services = keep
	return snap
}

func TestSaveRestoreRoundTrip(t *testing.T) {
	snap := withoutBigMarks(richSnapshot())
	for _, numeric := range []bool{true, false} {
		var b bytes.Buffer
		if err := Save(&b, snap, numeric); err != nil {
			t.Fatal(err)
		}
		cmds, err := ParseRestore(&b)
		if err != nil {
			t.Fatalf("numeric=%v: %v", numeric, err)
		}
		got, want := rebuild(t, cmds), saved(snap)
		if !reflect.DeepEqual(got, want) {
			t.Errorf("numeric=%v: round trip differs\ngot  %+v\nwant %+v", numeric, got, want)
		}
	}
}

// TestRestoreBigMark: ipvsadm -S writes "-f -1294967296" for mark
// 3000000000, and -R rejects it; so does gvs, naming the line.
func TestRestoreBigMark(t *testing.T) {
	var b bytes.Buffer
	if err := Save(&b, richSnapshot(), true); err != nil {
		t.Fatal(err)
	}
	cmds, err := ParseRestore(&b)
	var re *RestoreError
	if !errors.As(err, &re) || cmds != nil {
		t.Fatalf("got %v, %v", cmds, err)
	}
	if re.Line != 1 || re.Error() != "line 1: invalid fwmark value `-1294967296' specified" || re.ExitCode() != 2 {
		t.Errorf("got line %d %q exit %d", re.Line, re.Error(), re.ExitCode())
	}
}

func TestParseRestore(t *testing.T) {
	in := "-A -t 198.18.0.1:80 -s rr\n" +
		"\n" +
		"   \t\n" +
		"ipvsadm -a -t 198.18.0.1:80 -r 198.18.1.10:80 -m -w 2\r\n" +
		"# a comment\n" +
		"  -a\t-t 198.18.0.1:80   -r 198.18.1.11 -g -w 1 ipvsadm\n" +
		"--set 900 120 300\n" +
		"-A -u 198.18.0.1:53 -p" // no final newline
	cmds, err := ParseRestore(strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	want := []*Command{
		{Kind: KindAddService, Service: with(tcp("198.18.0.1", 80), sched("rr"))},
		{Kind: KindAddDest, Service: tcp("198.18.0.1", 80), Dest: rs("198.18.1.10", 80, model.Masq, 2)},
		{Kind: KindAddDest, Service: tcp("198.18.0.1", 80), Dest: rs("198.18.1.11", 80, model.Route, 1)},
		{Kind: KindSetTimeout, Timeouts: model.Timeouts{TCP: 900, TCPFin: 120, UDP: 300}},
		{Kind: KindAddService, Service: with(udp("198.18.0.1", 53), persistent(360))},
	}
	if len(cmds) != len(want) {
		t.Fatalf("got %d commands, want %d", len(cmds), len(want))
	}
	for i := range want {
		cmds[i].Given = 0
		if !reflect.DeepEqual(cmds[i], want[i]) {
			t.Errorf("command %d: got %+v, want %+v", i, cmds[i], want[i])
		}
	}
}

func TestParseRestoreErrors(t *testing.T) {
	for _, tc := range []struct {
		in   string
		line int
		msg  string
		code int
	}{
		{"-A -t 198.18.0.1:80\n-a -t 198.18.0.1:80 -r 198.18.1.10 -M 255.0.0.0\n", 2,
			"line 2: Illegal 'netmask' option with the 'add-server' command", 2},
		{"-A -t 198.18.0.1:80\n\n-R\n", 3, "line 3: Try `gvsadm -h' or 'gvsadm --help' for more information.", 255},
		{"-C\n-A -t\n", 2, "line 2: -t: missing argument", 255},
		{"-A -t 198.18.0.1:80 -s rr -s wrr\n", 1, "line 1: multiple 'scheduler' options specified", 2},
		{"-A -t 198.18.0.1:80\n-P -t 198.18.0.1:80 -z 198.18.3.1\n-P -t 198.18.0.1:80\n", 3,
			"line 3: You need to supply the 'local-address' option for the 'add-laddr' command", 2},
	} {
		cmds, err := ParseRestore(strings.NewReader(tc.in))
		var re *RestoreError
		if !errors.As(err, &re) || cmds != nil {
			t.Errorf("%q: got %v, %v", tc.in, cmds, err)
			continue
		}
		if re.Line != tc.line || re.Error() != tc.msg || re.ExitCode() != tc.code {
			t.Errorf("%q: got line %d %q exit %d, want line %d %q exit %d",
				tc.in, re.Line, re.Error(), re.ExitCode(), tc.line, tc.msg, tc.code)
		}
	}
}

// TestSaveGoldenRestores: the saved golden files parse back (but for the
// big mark) into the same table.
func TestSaveGoldenRestores(t *testing.T) {
	for _, file := range []string{"save.txt", "save_n.txt"} {
		var b bytes.Buffer
		golden := readGolden(t, file)
		lines := strings.SplitAfter(golden, "\n")
		b.WriteString(strings.Join(lines[1:], "")) // line 1 is the big mark
		cmds, err := ParseRestore(&b)
		if err != nil {
			t.Fatalf("%s: %v", file, err)
		}
		if got, want := rebuild(t, cmds), saved(withoutBigMarks(richSnapshot())); !reflect.DeepEqual(got, want) {
			t.Errorf("%s: restored table differs", file)
		}
	}
}
