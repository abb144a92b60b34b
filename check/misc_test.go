package check

import (
	"context"
	"os"
	"os/user"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// script writes an executable shell script into dir and returns its path.
func script(t *testing.T, dir, name, body string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte("#!/bin/sh\n"+body+"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

func miscCheck(t *testing.T, m MiscSpec) Result {
	t.Helper()
	c, err := New(Spec{Kind: Misc, Misc: m}, Target{})
	if err != nil {
		t.Fatal(err)
	}
	return c.Check(context.Background())
}

func TestMiscExitStatus(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	ok := script(t, dir, "ok", "echo all fine; exit 0")
	fail := script(t, dir, "fail", "echo 'backend says no' >&2; echo ignored; exit 1")
	seven := script(t, dir, "seven", "exit $1")
	w := func(n int64) *int64 { return &n }
	for _, tc := range []struct {
		path    string
		dynamic bool
		up      bool
		weight  *int64
		reason  string
	}{
		{ok, false, true, nil, "exit status 0: all fine"},
		{ok, true, true, nil, "exit status 0: all fine"}, // 0 with misc_dynamic: the weight is left alone
		{fail, false, false, nil, "exit status 1: backend says no"},
		{fail, true, false, nil, "exit status 1: backend says no"},
		// keepalived: 2-255 is a failure unless misc_dynamic.
		{seven + " 7", false, false, nil, "exit status 7"},
		{seven + " 7", true, true, w(5), "exit status 7, weight 5"},
		{seven + " 2", true, true, w(0), "exit status 2, weight 0"},
		{seven + " 255", true, true, w(253), "exit status 255, weight 253"},
	} {
		r := miscCheck(t, MiscSpec{Path: tc.path, Dynamic: tc.dynamic, Timeout: 5 * time.Second})
		if r.Up != tc.up || r.Reason != tc.reason || !reflect.DeepEqual(r.Weight, tc.weight) {
			t.Errorf("%s dynamic=%v: %+v (weight %v), want up=%v %q weight %v", filepath.Base(tc.path), tc.dynamic, r, deref(r.Weight), tc.up, tc.reason, deref(tc.weight))
		}
	}
}

func deref(p *int64) any {
	if p == nil {
		return nil
	}
	return *p
}

func TestMiscArgsWithoutShell(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	// The script reports its arguments, one per line, on stderr as the
	// first (only) line: "$#:$1|$2|$3".
	args := script(t, dir, "args", `echo "$#:$1|$2|$3" >&2; exit 1`)
	r := miscCheck(t, MiscSpec{Path: args + ` 'a b' "c\"d"$HOME e\tf`, Timeout: 5 * time.Second})
	if want := "exit status 1: 3:a b|c\"d$HOME|e\tf"; r.Reason != want {
		t.Errorf("got %q, want %q", r.Reason, want)
	}
}

func TestSplitCommand(t *testing.T) {
	for in, want := range map[string][]string{
		"/bin/check":                 {"/bin/check"},
		"  /bin/check  a\tb ":        {"/bin/check", "a", "b"},
		`x 'a b' "c d" e\ f`:         {"x", "a b", "c d", "e f"},
		`x a"b c"d 'it''s'`:          {"x", "ab cd", "its"},
		`x "" ''`:                    {"x", "", ""},
		`x \x41\x4a1 \101 \cA \n \q`: {"x", "AJ1", "A", "\x01", "\n", "q"},
		`x 'single \' quote'`:        {"x", "single ' quote"},
		`x "\$HOME" $HOME ; | * &&`:  {"x", "$HOME", "$HOME", ";", "|", "*", "&&"},
		`x \xg`:                      {"x", "xg"},
		"":                           nil,
	} {
		got, err := SplitCommand(in)
		if err != nil || !reflect.DeepEqual(got, want) {
			t.Errorf("SplitCommand(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, bad := range []string{`x "a`, `x 'a`, `x \`} {
		if _, err := SplitCommand(bad); err == nil {
			t.Errorf("SplitCommand(%q) accepted", bad)
		}
	}
}

func TestMiscTimeoutKillsGroup(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	pidFile := filepath.Join(dir, "child.pid")
	// A child in the background and the script itself both sleep past
	// the timeout.
	slow := script(t, dir, "slow", "sleep 30 &\necho $! > "+pidFile+"\necho still working\nsleep 30")
	start := time.Now()
	r := miscCheck(t, MiscSpec{Path: slow, Timeout: 300 * time.Millisecond})
	d := time.Since(start)
	if r.Up || r.Reason != "killed after timeout 300ms: still working" {
		t.Errorf("%+v", r)
	}
	if d < 300*time.Millisecond || d > 1500*time.Millisecond {
		t.Errorf("returned after %v", d)
	}
	b, err := os.ReadFile(pidFile)
	if err != nil {
		t.Fatal(err)
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	waitGone(t, pid)
}

func TestMiscTimeoutIgnoringTERM(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	pidFile := filepath.Join(dir, "child.pid")
	// SIGTERM is ignored by the script and its child: SIGKILL follows
	// after keepalived's 2 s grace.
	stubborn := script(t, dir, "stubborn", "trap '' TERM\nsleep 30 &\necho $! > "+pidFile+"\nsleep 30")
	start := time.Now()
	r := miscCheck(t, MiscSpec{Path: stubborn, Timeout: 200 * time.Millisecond})
	d := time.Since(start)
	if r.Up || r.Reason != "killed after timeout 200ms" {
		t.Errorf("%+v", r)
	}
	if d < miscTermGrace || d > miscTermGrace+time.Second {
		t.Errorf("returned after %v", d)
	}
	b, _ := os.ReadFile(pidFile)
	pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	waitGone(t, pid)
}

// waitGone waits a little for pid to be gone or a zombie.
func waitGone(t *testing.T, pid int) {
	t.Helper()
	if pid <= 0 {
		t.Fatal("no child pid")
	}
	for i := 0; i < 50; i++ {
		b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
		if err != nil {
			return
		}
		if f := strings.Fields(string(b)); len(f) > 2 && f[2] == "Z" {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Errorf("child %d still running", pid)
	syscall.Kill(pid, syscall.SIGKILL)
}

func TestMiscDefaultTimeoutIsDelayLoop(t *testing.T) {
	c, err := New(Spec{Kind: Misc, DelayLoop: 7 * time.Second, Misc: MiscSpec{Path: "/bin/true"}}, Target{})
	if err != nil {
		t.Fatal(err)
	}
	if got := c.(*miscChecker).timeout; got != 7*time.Second {
		t.Errorf("timeout %v", got)
	}
}

func TestMiscCannotRun(t *testing.T) {
	t.Parallel()
	r := miscCheck(t, MiscSpec{Path: filepath.Join(t.TempDir(), "missing"), Timeout: time.Second})
	if r.Up || !strings.HasPrefix(r.Reason, "cannot run:") {
		t.Errorf("%+v", r)
	}
	if _, err := New(Spec{Kind: Misc}, Target{}); err == nil {
		t.Error("empty misc_path accepted")
	}
	if _, err := New(Spec{Kind: Misc, Misc: MiscSpec{Path: "/bin/true", User: "no-such-user-here"}}, Target{}); err == nil {
		t.Error("unknown user accepted")
	}
}

func TestMiscUser(t *testing.T) {
	t.Parallel()
	if os.Getuid() != 0 {
		t.Skip("not root")
	}
	u, err := user.Lookup("nobody")
	if err != nil {
		t.Skip("no user nobody")
	}
	dir := t.TempDir()
	// nobody must reach the script.
	for d := dir; d != filepath.Dir(d) && strings.HasPrefix(d, os.TempDir()) && d != os.TempDir(); d = filepath.Dir(d) {
		os.Chmod(d, 0o755)
	}
	who := script(t, dir, "who", `echo "$(id -u):$(id -g):$(id -G)" >&2; exit 1`)
	r := miscCheck(t, MiscSpec{Path: who, User: "nobody", Timeout: 5 * time.Second})
	// Our supplementary groups (root's) are not passed on.
	if want := "exit status 1: " + u.Uid + ":" + u.Gid + ":" + u.Gid; r.Reason != want {
		t.Errorf("got %q, want %q", r.Reason, want)
	}
	r = miscCheck(t, MiscSpec{Path: who, User: "nobody", Group: "root", Timeout: 5 * time.Second})
	if want := "exit status 1: " + u.Uid + ":0:0"; r.Reason != want {
		t.Errorf("with group: got %q, want %q", r.Reason, want)
	}
	// ":GROUP": the group, plus the user's own supplementary groups.
	r = miscCheck(t, MiscSpec{Path: who, User: "nobody", Group: ":root", Timeout: 5 * time.Second})
	if want := "exit status 1: " + u.Uid + ":0:0 " + u.Gid; r.Reason != want {
		t.Errorf("with :group: got %q, want %q", r.Reason, want)
	}
}
