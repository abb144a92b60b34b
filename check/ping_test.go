package check

import (
	"os"
	"runtime"

	"context"
	"golang.org/x/sys/unix"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"
)

// skipUnlessPing skips when neither a ping socket nor a raw one may be
// opened here.
func skipUnlessPing(t *testing.T, r Result) {
	t.Helper()
	if strings.HasPrefix(r.Reason, "no ICMP socket:") {
		t.Skip("no ICMP socket permitted: " + r.Reason)
	}
}

func TestPingLoopback(t *testing.T) {
	c, err := New(Spec{Kind: Ping, ConnectTimeout: 500 * time.Millisecond}, Target{Server: netip.MustParseAddrPort("127.0.0.1:80")})
	if err != nil {
		t.Fatal(err)
	}
	// Several in a row: each has its own sequence number.
	for i := 0; i < 3; i++ {
		r := c.Check(context.Background())
		skipUnlessPing(t, r)
		if !r.Up {
			t.Fatalf("check %d: %+v", i, r)
		}
	}
}

func TestPingLoopback6(t *testing.T) {
	if l, err := net.ListenPacket("udp6", "[::1]:0"); err != nil {
		t.Skip("no IPv6 loopback")
	} else {
		l.Close()
	}
	r := runCheck(t, Spec{Kind: Ping, ConnectTimeout: 500 * time.Millisecond}, netip.MustParseAddrPort("[::1]:80"))
	skipUnlessPing(t, r)
	if !r.Up {
		t.Fatalf("%+v", r)
	}
}

// inFreshNetNS runs f on a thread of its own in a new network namespace
// whose loopback is up, after writing the given net sysctls there (they
// are the namespace's own). It skips when namespaces cannot be made.
func inFreshNetNS(t *testing.T, sysctls map[string]string, f func()) {
	t.Helper()
	errc := make(chan error, 1)
	go func() {
		// Never unlocked: the thread, in the new namespace, ends with
		// the goroutine.
		runtime.LockOSThread()
		if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
			errc <- err
			return
		}
		fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			errc <- err
			return
		}
		defer unix.Close(fd)
		ifr, _ := unix.NewIfreq("lo")
		ifr.SetUint16(unix.IFF_UP | unix.IFF_LOOPBACK | unix.IFF_RUNNING)
		if err := unix.IoctlIfreq(fd, unix.SIOCSIFFLAGS, ifr); err != nil {
			errc <- err
			return
		}
		for k, v := range sysctls {
			if err := os.WriteFile("/proc/sys/net/"+k, []byte(v), 0); err != nil {
				errc <- err
				return
			}
		}
		errc <- nil
		f()
		errc <- nil
	}()
	if err := <-errc; err != nil {
		t.Skip("no fresh network namespace: " + err.Error())
	}
	<-errc
}

// Pinging 127.0.0.1 through each kind of socket: ping sockets when the
// namespace's ping_group_range lets root have them, else raw ones.
func TestPingSocketKinds(t *testing.T) {
	for _, groups := range []string{"0 0", "1 0"} {
		inFreshNetNS(t, map[string]string{"ipv4/ping_group_range": groups}, func() {
			c, err := New(Spec{Kind: Ping, ConnectTimeout: 500 * time.Millisecond}, Target{Server: netip.MustParseAddrPort("127.0.0.1:80")})
			if err != nil {
				t.Error(err)
				return
			}
			_, raw, err := c.(*pingChecker).open(context.Background())
			if err != nil || raw != (groups == "1 0") {
				t.Errorf("ping_group_range %s: raw %v, %v", groups, raw, err)
			}
			for i := 0; i < 2; i++ {
				if r := c.Check(context.Background()); !r.Up {
					t.Errorf("ping_group_range %s, check %d: %+v", groups, i, r)
				}
			}
		})
	}
}

func TestPingNoReply(t *testing.T) {
	for _, groups := range []string{"0 0", "1 0"} {
		// The namespace ignores echo requests: nothing answers.
		inFreshNetNS(t, map[string]string{"ipv4/ping_group_range": groups, "ipv4/icmp_echo_ignore_all": "1"}, func() {
			start := time.Now()
			r := runCheckNoFatal(Spec{Kind: Ping, ConnectTimeout: 300 * time.Millisecond}, netip.MustParseAddrPort("127.0.0.1:0"))
			if r.Up || r.Reason != "no echo reply within 300ms" {
				t.Errorf("ping_group_range %s: %+v", groups, r)
			}
			if d := time.Since(start); d < 300*time.Millisecond || d > time.Second {
				t.Errorf("took %v", d)
			}
			// No route at all: down at once.
			r = runCheckNoFatal(Spec{Kind: Ping, ConnectTimeout: 300 * time.Millisecond}, netip.MustParseAddrPort("10.1.2.3:0"))
			if r.Up || !strings.Contains(r.Reason, "network unreachable") {
				t.Errorf("no route: %+v", r)
			}
		})
	}
}

func runCheckNoFatal(s Spec, server netip.AddrPort) Result {
	c, err := New(s, Target{Server: server})
	if err != nil {
		return Result{Reason: err.Error()}
	}
	return c.Check(context.Background())
}
