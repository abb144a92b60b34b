package health

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"gvs/check"
	"gvs/control"
	"gvs/model"
)

// nullCore takes the manager's verdicts and does nothing with them.
type nullCore struct{}

func (nullCore) SetHealth(model.ServiceKey, control.ServiceHealth) error { return nil }
func (nullCore) ClearHealth(map[model.ServiceKey]bool) error             { return nil }
func (nullCore) ConfiguredDests(model.ServiceKey) ([]model.Dest, bool)   { return nil, true }
func (nullCore) Health(model.ServiceKey) control.ServiceHealth           { return control.ServiceHealth{} }

type counted struct {
	check.Checker
	n *atomic.Int64
}

func (c counted) Check(ctx context.Context) check.Result {
	r := c.Checker.Check(ctx)
	c.n.Add(1)
	return r
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// TestMain doubles as the benchmark's real servers: with
// GVS_HEALTH_BENCH_SERVER set, the test binary listens on a wildcard
// port, prints it, and accepts and closes connections until killed.
func TestMain(m *testing.M) {
	if os.Getenv("GVS_HEALTH_BENCH_SERVER") != "" {
		ln, err := net.Listen("tcp", "0.0.0.0:0")
		if err != nil {
			fmt.Println(err)
			os.Exit(1)
		}
		fmt.Println(ln.Addr().(*net.TCPAddr).Port)
		for {
			c, err := ln.Accept()
			if err != nil {
				os.Exit(1)
			}
			c.Close()
		}
	}
	os.Exit(m.Run())
}

// benchServer starts the real servers' process and returns its port.
func benchServer(b *testing.B) uint16 {
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), "GVS_HEALTH_BENCH_SERVER=1")
	out, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	var port uint16
	if _, err := fmt.Fscan(out, &port); err != nil {
		b.Fatal(err)
	}
	return port
}

// BenchmarkTCPChecks runs the manager with 2,000 real servers, each with
// a TCP_CHECK every 200 ms (10,000 checks/s offered), against a listener
// on loopback in another process, and reports the checks done per second
// of gvs's CPU (this process's user+system time; on loopback that
// includes much of the kernel's work for the server side of each
// handshake, which a remote server would do itself) and the CPU used as
// a share of one core. An iteration is one check.
func BenchmarkTCPChecks(b *testing.B) {
	port := benchServer(b)
	const servers = 2000
	loop := 200 * time.Millisecond
	retry := 0
	svc := Service{Key: model.ServiceKey{Protocol: model.ProtoTCP, Addr: netip.MustParseAddr("198.18.0.1"), Port: 80, Family: model.IPv4}}
	for i := range servers {
		// Any 127/8 address reaches the wildcard listener.
		a := netip.AddrFrom4([4]byte{127, 1, byte(i / 250), byte(i%250 + 1)})
		svc.Servers = append(svc.Servers, Server{Addr: netip.AddrPortFrom(a, port),
			Checks: []check.Spec{{Kind: check.TCP, DelayLoop: loop, Retry: &retry, ConnectTimeout: time.Second}}})
	}
	var n atomic.Int64
	m := NewManager(nullCore{}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	m.newChecker = func(s check.Spec, t check.Target) (check.Checker, error) {
		c, err := check.New(s, t)
		return counted{c, &n}, err
	}
	// Past the warmup (a random start within one loop), so that the
	// measured checks are the steady state's.
	if err := m.Update(&Config{Services: []Service{svc}}); err != nil {
		b.Fatal(err)
	}
	defer m.Close()
	time.Sleep(loop + loop/2)
	b.ResetTimer()
	start, cpu0, n0 := time.Now(), cpuTime(), n.Load()
	for n.Load()-n0 < int64(b.N) {
		time.Sleep(5 * time.Millisecond)
	}
	wall, cpu, done := time.Since(start), cpuTime()-cpu0, n.Load()-n0
	b.StopTimer()
	b.ReportMetric(float64(done)/cpu.Seconds(), "checks/cpu-s")
	b.ReportMetric(float64(done)/wall.Seconds(), "checks/s")
	b.ReportMetric(100*cpu.Seconds()/wall.Seconds(), "cpu-%")
	var ok int
	var why string
	for _, s := range m.Status().Services[0].Servers {
		if s.Up {
			ok++
		} else {
			why = s.Checks[0].LastReason
		}
	}
	if ok != servers {
		b.Fatalf("%d of %d servers up; one is down because: %s", ok, servers, why)
	}
}
