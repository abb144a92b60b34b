package e2e

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack/loadbalancer/v2/listeners"
	"github.com/gophercloud/gophercloud/v2/openstack/loadbalancer/v2/loadbalancers"
	"github.com/gophercloud/gophercloud/v2/openstack/loadbalancer/v2/monitors"
	"github.com/gophercloud/gophercloud/v2/openstack/loadbalancer/v2/pools"

	"gvs/lbagent"
)

const (
	lbNetID    = "0c3b3a5e-5f5e-4c1e-9a77-6a0f2f1d2c11"
	lbSubnetID = "7d2f8a10-2b7e-4b8e-8f4c-2c6b9d0e4f21"
)

// lbaasEnv is gvs-lbaas on a Linux bridge of the test's own in the root
// namespace, with a client and two member hosts (namespaces) on it.
type lbaasEnv struct {
	t       *testing.T
	bridge  string
	prefix  string
	hosts   map[string]string
	url     string
	metrics string // http://ADDR/metrics
	cmd     *exec.Cmd
	log     *bytes.Buffer
	client  *gophercloud.ServiceClient
}

func newLBaaSEnv(t *testing.T) *lbaasEnv {
	t.Helper()
	needRoot(t)
	bin := binaries(t)
	b := make([]byte, 3)
	rand.Read(b)
	e := &lbaasEnv{t: t, prefix: "gvsl" + hex.EncodeToString(b), hosts: map[string]string{}, log: &bytes.Buffer{}}
	e.bridge = e.prefix + "br"
	t.Cleanup(e.destroy)
	e.must("ip", "link", "add", e.bridge, "type", "bridge")
	e.must("ip", "link", "set", e.bridge, "up")
	e.host("client", "198.18.0.2/24")
	for i, name := range []string{"m1", "m2"} {
		ns := e.host(name, fmt.Sprintf("198.18.0.1%d/24", i+1))
		exe, _ := os.Executable()
		cmd := exec.Command("nsenter", "--net=/run/netns/"+ns, "env", "GVS_E2E_ROLE=serve 0.0.0.0:8080 "+name, exe)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	}
	// Short: each director's unix socket lives below it (108 bytes at most).
	dir, err := os.MkdirTemp("", "lb")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	cfg := filepath.Join(dir, "lbaas.yaml")
	if err := os.WriteFile(cfg, []byte(`engine: xdp
forwarding: fullnat
observe_interval: 1s
networks:
  - id: `+lbNetID+`
    bridge: `+e.bridge+`
    subnets:
      - id: `+lbSubnetID+`
        cidr: 198.18.0.0/24
        gateway: 198.18.0.1
        allocation_pools: [{start: 198.18.0.100, end: 198.18.0.199}]
`), 0o600); err != nil {
		t.Fatal(err)
	}
	free := func() string {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		return ln.Addr().String()
	}
	addr, maddr := free(), free()
	e.url, e.metrics = "http://"+addr, "http://"+maddr+"/metrics"
	// Pins under a root of the test's own, removed at the end.
	pinRoot := "/sys/fs/bpf/" + e.prefix
	t.Cleanup(func() { os.RemoveAll(pinRoot) })
	e.cmd = exec.Command(filepath.Join(bin, "gvs-lbaas"), "--listen", addr, "--config", cfg, "--state-dir", filepath.Join(dir, "state"),
		"--bpf-pin-dir", pinRoot, "--metrics-addr", maddr)
	e.cmd.Stdout, e.cmd.Stderr = e.log, e.log
	if err := e.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		e.cmd.Process.Signal(os.Interrupt)
		e.cmd.Wait()
		if t.Failed() {
			t.Logf("gvs-lbaas log:\n%s", e.log)
		}
		// gvs-lbaas leaves its directors running when it stops: remove
		// what a failed test left (namespaces, ports, pins, processes).
		a, err := lbagent.New(lbagent.Options{Gvsd: filepath.Join(bin, "gvsd"), Engine: "xdp",
			StateDir: filepath.Join(dir, "state", "directors"), PinDir: pinRoot})
		if err != nil {
			t.Errorf("cleaning up the directors: %v", err)
			return
		}
		// Only this test's (other lvs-* namespaces may be another
		// test's): those with a state directory here.
		ents, _ := os.ReadDir(filepath.Join(dir, "state", "directors"))
		for _, ent := range ents {
			if err := a.Delete(context.Background(), ent.Name()); err != nil {
				t.Errorf("cleaning up director %s: %v", ent.Name(), err)
			}
		}
		a.Close()
	})
	waitFor(t, 10*time.Second, "gvs-lbaas up", func() (bool, string) {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
		}
		return err == nil, e.log.String()
	})
	e.client = &gophercloud.ServiceClient{ProviderClient: &gophercloud.ProviderClient{TokenID: "ignored"},
		Endpoint: e.url + "/", ResourceBase: e.url + "/v2.0/"}
	return e
}

func (e *lbaasEnv) must(args ...string) string {
	e.t.Helper()
	out, err := exec.Command(args[0], args[1:]...).CombinedOutput()
	if err != nil {
		e.t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// host adds a namespace on the bridge (eth0, TX checksum offload off as
// a real NIC's would be filled in).
func (e *lbaasEnv) host(name, cidr string) string {
	ns := e.prefix + "-" + name
	port := fmt.Sprintf("%sp%d", e.prefix, len(e.hosts)) // within IFNAMSIZ
	e.hosts[name] = ns
	e.must("ip", "netns", "add", ns)
	e.must("ip", "link", "add", port, "type", "veth", "peer", "name", "eth0", "netns", ns)
	e.must("ip", "link", "set", port, "master", e.bridge, "up")
	e.must("ethtool", "-K", port, "gro", "on")
	in := func(args ...string) { e.must(append([]string{"nsenter", "--net=/run/netns/" + ns}, args...)...) }
	in("ip", "link", "set", "lo", "up")
	in("ip", "addr", "add", cidr, "dev", "eth0")
	in("ip", "link", "set", "eth0", "up")
	in("ethtool", "-K", "eth0", "tx", "off")
	return ns
}

func (e *lbaasEnv) destroy() {
	for _, ns := range e.hosts {
		exec.Command("ip", "netns", "del", ns).Run()
	}
	exec.Command("ip", "link", "del", e.bridge).Run()
}

// role runs the test binary in a host's namespace in a role.
func (e *lbaasEnv) role(host string, args ...string) (string, error) {
	exe, _ := os.Executable()
	out, err := exec.Command("nsenter", "--net=/run/netns/"+e.hosts[host], "env", "GVS_E2E_ROLE="+strings.Join(args, " "), exe).CombinedOutput()
	return string(out), err
}

func (e *lbaasEnv) waitLB(id, status string) *loadbalancers.LoadBalancer {
	e.t.Helper()
	var lb *loadbalancers.LoadBalancer
	waitFor(e.t, 90*time.Second, "load balancer "+status, func() (bool, string) {
		var err error
		lb, err = loadbalancers.Get(context.Background(), e.client, id).Extract()
		if err != nil {
			return false, err.Error()
		}
		if lb.ProvisioningStatus == "ERROR" {
			e.t.Fatalf("load balancer in ERROR:\n%s", e.log)
		}
		return lb.ProvisioningStatus == status, fmt.Sprintf("%+v", lb)
	})
	return lb
}

// The Octavia API through gophercloud, a client nobody here wrote: a
// load balancer with a TCP listener, a ROUND_ROBIN pool of two members
// and a TCP health monitor goes ACTIVE as namespace lvs-<id>; traffic
// from a client on the bridge reaches both members through the VIP;
// stats follow it; a member whose server stops turns ERROR and its pool
// DEGRADED; a cascade delete leaves no namespace, veth or process.
func TestLBaaSLifecycle(t *testing.T) {
	e := newLBaaSEnv(t)
	ctx := context.Background()
	c := e.client
	lb, err := loadbalancers.Create(ctx, c, loadbalancers.CreateOpts{Name: "web", VipSubnetID: lbSubnetID}).Extract()
	if err != nil {
		t.Fatal(err)
	}
	e.waitLB(lb.ID, "ACTIVE")
	if _, err := os.Stat("/run/netns/lvs-" + lb.ID); err != nil {
		t.Fatalf("no namespace lvs-%s: %v", lb.ID, err)
	}
	l, err := listeners.Create(ctx, c, listeners.CreateOpts{LoadbalancerID: lb.ID, Protocol: listeners.ProtocolTCP, ProtocolPort: 80}).Extract()
	if err != nil {
		t.Fatal(err)
	}
	e.waitLB(lb.ID, "ACTIVE")
	p, err := pools.Create(ctx, c, pools.CreateOpts{ListenerID: l.ID, Protocol: pools.ProtocolTCP, LBMethod: pools.LBMethodRoundRobin}).Extract()
	if err != nil {
		t.Fatal(err)
	}
	e.waitLB(lb.ID, "ACTIVE")
	var members []*pools.Member
	for _, addr := range []string{"198.18.0.11", "198.18.0.12"} {
		m, err := pools.CreateMember(ctx, c, p.ID, pools.CreateMemberOpts{Address: addr, ProtocolPort: 8080, SubnetID: lbSubnetID}).Extract()
		if err != nil {
			t.Fatal(err)
		}
		members = append(members, m)
		e.waitLB(lb.ID, "ACTIVE")
	}
	if _, err := monitors.Create(ctx, c, monitors.CreateOpts{PoolID: p.ID, Type: monitors.TypeTCP, Delay: 1, Timeout: 1, MaxRetries: 1}).Extract(); err != nil {
		t.Fatal(err)
	}
	e.waitLB(lb.ID, "ACTIVE")
	waitFor(t, 15*time.Second, "members ONLINE", func() (bool, string) {
		st, err := loadbalancers.GetStatuses(ctx, c, lb.ID).Extract()
		if err != nil {
			return false, err.Error()
		}
		ok := st.Loadbalancer.OperatingStatus == "ONLINE"
		return ok, fmt.Sprintf("%+v", st.Loadbalancer)
	})

	// Traffic: round robin over both members.
	vip := lb.VipAddress + ":80"
	seen := map[string]int{}
	for range 6 {
		out, err := e.role("client", "hello", vip)
		if err != nil {
			t.Fatalf("through the VIP: %v %s\n%s", err, out, e.log)
		}
		seen[strings.TrimSpace(out)]++
	}
	if seen["m1"] != 3 || seen["m2"] != 3 {
		t.Fatalf("round robin: %v", seen)
	}
	waitFor(t, 10*time.Second, "stats", func() (bool, string) {
		s, err := loadbalancers.GetStats(ctx, c, lb.ID).Extract()
		if err != nil {
			return false, err.Error()
		}
		return s.TotalConnections == 6 && s.BytesIn > 0 && s.BytesOut > 0, fmt.Sprintf("%+v", s)
	})

	// gvs-lbaas's metrics say the same.
	resp, err := http.Get(e.metrics)
	if err != nil {
		t.Fatal(err)
	}
	scrape, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	want := fmt.Sprintf(`gvs_lbaas_listener_connections_total{listener="%s",loadbalancer="%s",port="80",protocol="TCP"} 6`, l.ID, lb.ID)
	if !strings.Contains(string(scrape), want) || !strings.Contains(string(scrape), `gvs_lbaas_member_online{address="198.18.0.11"`) {
		t.Errorf("metrics lack %q:\n%s", want, scrape)
	}
	if promtool, err := exec.LookPath("promtool"); err == nil {
		cmd := exec.Command(promtool, "check", "metrics")
		cmd.Stdin = bytes.NewReader(scrape)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("promtool check metrics: %v\n%s", err, out)
		}
	}

	// m1's server stops: its member goes ERROR, the pool DEGRADED.
	for _, pid := range strings.Fields(e.must("ip", "netns", "pids", e.hosts["m1"])) {
		exec.Command("kill", pid).Run()
	}
	waitFor(t, 20*time.Second, "member ERROR, pool DEGRADED", func() (bool, string) {
		m, err := pools.GetMember(ctx, c, p.ID, members[0].ID).Extract()
		if err != nil {
			return false, err.Error()
		}
		pl, err := pools.Get(ctx, c, p.ID).Extract()
		if err != nil {
			return false, err.Error()
		}
		return m.OperatingStatus == "ERROR" && pl.OperatingStatus == "DEGRADED", m.OperatingStatus + " " + pl.OperatingStatus
	})
	for range 3 {
		if out, err := e.role("client", "hello", vip); err != nil || strings.TrimSpace(out) != "m2" {
			t.Fatalf("with m1 down: %q %v", out, err)
		}
	}

	// Cascade delete: nothing left.
	if err := loadbalancers.Delete(ctx, c, lb.ID, loadbalancers.DeleteOpts{Cascade: true}).ExtractErr(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 60*time.Second, "load balancer gone", func() (bool, string) {
		_, err := loadbalancers.Get(ctx, c, lb.ID).Extract()
		return gophercloud.ResponseCodeIs(err, 404), fmt.Sprint(err)
	})
	if _, err := os.Stat("/run/netns/lvs-" + lb.ID); err == nil {
		t.Errorf("namespace lvs-%s left behind", lb.ID)
	}
	if out, _ := exec.Command("pgrep", "-f", "lvs-"+lb.ID).Output(); len(out) > 0 {
		t.Errorf("processes left behind: %s", out)
	}
	if links := e.must("ip", "-o", "link", "show", "master", e.bridge); strings.Count(links, "\n") != 3 {
		t.Errorf("ports left on the bridge (want the client's and the members' only):\n%s", links)
	}
}

// The openstack CLI (python3-octaviaclient) against gvs-lbaas without
// Keystone: create, list, show and delete a load balancer.
func TestLBaaSOpenstackCLI(t *testing.T) {
	if _, err := exec.LookPath("openstack"); err != nil {
		t.Skip("needs the openstack CLI (scripts/install-deps.sh: python3-openstackclient, python3-octaviaclient)")
	}
	e := newLBaaSEnv(t)
	osc := func(args ...string) string {
		t.Helper()
		args = append([]string{"--os-auth-type", "none", "--os-endpoint", e.url, "loadbalancer"}, args...)
		out, err := exec.Command("openstack", args...).CombinedOutput()
		if err != nil {
			t.Fatalf("openstack %s: %v\n%s\ngvs-lbaas:\n%s", strings.Join(args, " "), err, out, e.log)
		}
		return string(out)
	}
	id := strings.TrimSpace(osc("create", "--name", "cli-lb", "--vip-subnet-id", lbSubnetID, "--wait", "-f", "value", "-c", "id"))
	if out := osc("list", "-f", "value", "-c", "id", "-c", "name", "-c", "provisioning_status"); !strings.Contains(out, id+" cli-lb ACTIVE") {
		t.Fatalf("list:\n%s", out)
	}
	if out := osc("show", id, "-f", "value", "-c", "vip_address"); !strings.HasPrefix(strings.TrimSpace(out), "198.18.0.1") {
		t.Fatalf("show: %s", out)
	}
	osc("delete", id, "--wait")
	if out := osc("list", "-f", "value", "-c", "id"); strings.Contains(out, id) {
		t.Fatalf("still listed after delete:\n%s", out)
	}
	if _, err := os.Stat("/run/netns/lvs-" + id); err == nil {
		t.Errorf("namespace lvs-%s left behind", id)
	}
}
