package check

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"strconv"
	"strings"
	"syscall"
	"time"
)

func init() { register(Misc, newMisc) }

// miscTermGrace is how long a timed-out script has between SIGTERM and
// SIGKILL (keepalived's 2 s).
const miscTermGrace = 2 * time.Second

// miscOutputMax bounds what is kept of a script's stdout and stderr.
const miscOutputMax = 4096

type miscChecker struct {
	spec    Spec
	args    []string
	timeout time.Duration
	cred    *syscall.Credential
}

func newMisc(s Spec, _ Target) (Checker, error) {
	args, err := SplitCommand(s.Misc.Path)
	if err != nil {
		return nil, fmt.Errorf("MISC_CHECK: misc_path: %v", err)
	}
	if len(args) == 0 {
		return nil, errors.New("MISC_CHECK: no misc_path")
	}
	c := &miscChecker{spec: s, args: args, timeout: s.Misc.Timeout}
	if c.timeout <= 0 {
		// keepalived: no misc_timeout means the delay_loop.
		c.timeout = s.DelayLoop
	}
	if c.cred, err = miscCredential(s.Misc.User, s.Misc.Group); err != nil {
		return nil, fmt.Errorf("MISC_CHECK: %v", err)
	}
	return c, nil
}

// miscCredential resolves keepalived's "user USER [GROUP]": the user's
// uid and own group, GROUP's gid if given, and no supplementary groups
// unless GROUP starts with ':' (":" alone or ":GROUP"), which asks for
// the user's. Neither: the script runs as we do.
func miscCredential(name, group string) (*syscall.Credential, error) {
	if name == "" && group == "" {
		return nil, nil
	}
	cred := &syscall.Credential{Uid: uint32(os.Getuid()), Gid: uint32(os.Getgid())}
	var u *user.User
	if name != "" {
		var err error
		if u, err = user.Lookup(name); err != nil {
			return nil, err
		}
		uid, err1 := strconv.ParseUint(u.Uid, 10, 32)
		gid, err2 := strconv.ParseUint(u.Gid, 10, 32)
		if err1 != nil || err2 != nil {
			return nil, fmt.Errorf("user %s: uid %q gid %q", name, u.Uid, u.Gid)
		}
		cred.Uid, cred.Gid = uint32(uid), uint32(gid)
	}
	if g, ok := strings.CutPrefix(group, ":"); ok {
		group = g
		if u != nil {
			ids, err := u.GroupIds()
			if err != nil {
				return nil, fmt.Errorf("user %s: groups: %v", name, err)
			}
			for _, id := range ids {
				if g, err := strconv.ParseUint(id, 10, 32); err == nil {
					cred.Groups = append(cred.Groups, uint32(g))
				}
			}
		}
	}
	if group != "" {
		g, err := user.LookupGroup(group)
		if err != nil {
			return nil, err
		}
		gid, err := strconv.ParseUint(g.Gid, 10, 32)
		if err != nil {
			return nil, fmt.Errorf("group %s: gid %q", group, g.Gid)
		}
		cred.Gid = uint32(gid)
	}
	// Groups left empty clears ours (setgroups(0)), as keepalived does.
	return cred, nil
}

func (c *miscChecker) Check(ctx context.Context) Result {
	var cmd *exec.Cmd
	var stdout, stderr limitedBuffer
	for try := 0; ; try++ {
		cmd = exec.Command(c.args[0], c.args[1:]...)
		// Its own process group, so that a timeout kills its children
		// too; it dies with us, as keepalived's scripts do.
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM, Credential: c.cred}
		cmd.Env = scriptEnv()
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		// A child left running with our pipes must not hold up Wait.
		cmd.WaitDelay = 100 * time.Millisecond
		err := cmd.Start()
		if err == nil {
			break
		}
		// ETXTBSY: the script was just written, and a process forked
		// meanwhile (any of gvsd's, or the tool that wrote it) still
		// holds it open for writing until it execs: it passes in
		// moments.
		if errors.Is(err, syscall.ETXTBSY) && try < 5 {
			time.Sleep(20 * time.Millisecond)
			continue
		}
		return Result{Reason: "cannot run: " + err.Error()}
	}
	pgid := cmd.Process.Pid
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()

	timer := time.NewTimer(c.timeout)
	defer timer.Stop()
	timedOut := false
	select {
	case <-done:
	case <-ctx.Done():
		syscall.Kill(-pgid, syscall.SIGKILL)
		<-done
		return Result{Reason: ctx.Err().Error()}
	case <-timer.C:
		timedOut = true
		syscall.Kill(-pgid, syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(miscTermGrace):
		case <-ctx.Done():
		}
		// Whatever of the group is left (children that ignore SIGTERM,
		// or the script itself after the grace) goes now.
		syscall.Kill(-pgid, syscall.SIGKILL)
		<-done
	}

	out := firstLine(stderr.Bytes())
	if out == "" {
		out = firstLine(stdout.Bytes())
	}
	with := func(r string) string {
		if out != "" {
			return r + ": " + out
		}
		return r
	}
	if timedOut {
		return Result{Reason: with(fmt.Sprintf("killed after timeout %v", c.timeout))}
	}
	ws, _ := cmd.ProcessState.Sys().(syscall.WaitStatus)
	if ws.Signaled() {
		return Result{Reason: with(fmt.Sprintf("killed by signal %d (%v)", int(ws.Signal()), ws.Signal()))}
	}
	st := ws.ExitStatus()
	switch {
	case st == 0:
		return Result{Up: true, Reason: with("exit status 0")}
	case st >= 2 && c.spec.Misc.Dynamic:
		// misc_dynamic: the server's weight becomes status - 2.
		w := int64(st - 2)
		return Result{Up: true, Weight: &w, Reason: with(fmt.Sprintf("exit status %d, weight %d", st, w))}
	}
	// 1, and 2-255 without misc_dynamic, are failures.
	return Result{Reason: with(fmt.Sprintf("exit status %d", st))}
}

// scriptEnv is our environment without what keepalived takes out of its
// scripts' for safety.
func scriptEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if k == "IFS" || k == "LD_PRELOAD" || k == "LD_LIBRARY_PATH" {
			continue
		}
		env = append(env, kv)
	}
	return env
}

// limitedBuffer keeps the first miscOutputMax bytes written to it and
// swallows the rest, so that a chatty script neither blocks nor grows
// our memory.
type limitedBuffer struct{ bytes.Buffer }

func (b *limitedBuffer) Write(p []byte) (int, error) {
	if room := miscOutputMax - b.Len(); room > 0 {
		b.Buffer.Write(p[:min(room, len(p))])
	}
	return len(p), nil
}

// firstLine is the first non-blank line of out, trimmed and bounded.
func firstLine(out []byte) string {
	for l := range strings.Lines(string(out)) {
		if l = strings.TrimSpace(l); l != "" {
			if len(l) > 200 {
				l = l[:200] + "..."
			}
			return l
		}
	}
	return ""
}

// SplitCommand splits a misc_path into words as keepalived does: words
// are separated by white space; single and double quotes group (and
// can be joined: a"b c"d is one word); a backslash escapes the next
// character, even inside quotes, and \a \b \E \f \n \r \t \v, \xHH, \cX
// (control X) and \NNN (octal) stand for what they do in C. No shell
// is involved: $, *, ; and | are plain characters.
func SplitCommand(s string) ([]string, error) {
	const white = " \t\f\n\r\v"
	var words []string
	i := 0
	for {
		for i < len(s) && strings.IndexByte(white, s[i]) >= 0 {
			i++
		}
		if i >= len(s) {
			return words, nil
		}
		var w []byte
		var quote byte
	word:
		for i < len(s) {
			ch := s[i]
			switch {
			case ch == '\\':
				i++
				if i >= len(s) {
					return nil, fmt.Errorf("%q: backslash at the end", s)
				}
				var b byte
				b, i = unescape(s, i)
				w = append(w, b)
			case quote != 0 && ch == quote:
				quote = 0
				i++
			case quote != 0:
				w = append(w, ch)
				i++
			case ch == '"' || ch == '\'':
				quote = ch
				i++
			case strings.IndexByte(white, ch) >= 0:
				break word
			default:
				w = append(w, ch)
				i++
			}
		}
		if quote != 0 {
			return nil, fmt.Errorf("%q: missing terminating %c", s, quote)
		}
		words = append(words, string(w))
	}
}

// unescape reads the escape whose character (after the backslash) is at
// s[i]; it returns the byte it stands for and where the rest starts.
func unescape(s string, i int) (byte, int) {
	hex := func(c byte) (byte, bool) {
		switch {
		case c >= '0' && c <= '9':
			return c - '0', true
		case c >= 'a' && c <= 'f':
			return c - 'a' + 10, true
		case c >= 'A' && c <= 'F':
			return c - 'A' + 10, true
		}
		return 0, false
	}
	c := s[i]
	switch {
	case c == 'x' && i+1 < len(s):
		if _, ok := hex(s[i+1]); ok {
			var v byte
			i++
			for n := 0; n < 2 && i < len(s); n++ {
				d, ok := hex(s[i])
				if !ok {
					break
				}
				v = v<<4 | d
				i++
			}
			return v, i
		}
	case c == 'c' && i+1 < len(s):
		return s[i+1] & 0x1f, i + 2
	case c >= '0' && c <= '7':
		v := c - '0'
		i++
		for n := 0; n < 2 && i < len(s) && s[i] >= '0' && s[i] <= '7'; n++ {
			v = v<<3 + s[i] - '0'
			i++
		}
		return v, i
	}
	if r, ok := map[byte]byte{'a': '\a', 'b': '\b', 'E': 0x1b, 'f': '\f', 'n': '\n', 'r': '\r', 't': '\t', 'v': '\v'}[c]; ok {
		return r, i + 1
	}
	return c, i + 1
}
