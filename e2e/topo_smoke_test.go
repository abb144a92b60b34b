package e2e

import (
	"testing"
	"time"
)

// The namespace harness itself: hosts on one segment reach each other and
// disappear afterwards.
func TestTopoSmoke(t *testing.T) {
	needRoot(t)
	tp := newTopo(t)
	tp.host("a", "198.18.0.1/24")
	tp.host("b", "198.18.0.2/24")
	tp.mustRun(tp.ns("a"), "ping", "-c", "1", "-W", "2", "198.18.0.2")
}

// The traffic roles across the harness.
func TestTopoRoles(t *testing.T) {
	needRoot(t)
	tp := newTopo(t)
	tp.host("a", "198.18.0.1/24")
	tp.host("b", "198.18.0.2/24")
	tp.serve(tp.ns("b"), "198.18.0.2:7000", "b")
	time.Sleep(300 * time.Millisecond)
	if out, err := tp.role(tp.ns("a"), "hello", "198.18.0.2:7000"); err != nil || out != "b\n" {
		t.Fatalf("hello: %q %v", out, err)
	}
	if out, err := tp.role(tp.ns("a"), "udp", "198.18.0.2:7000", "x"); err != nil || out != "b:x\n" {
		t.Fatalf("udp: %q %v", out, err)
	}
	if out, err := tp.role(tp.ns("a"), "bulk", "198.18.0.2:7000", "10000000"); err != nil || out != "10000000\n" {
		t.Fatalf("bulk: %q %v", out, err)
	}
}
