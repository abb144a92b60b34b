package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// freeAddr returns a loopback address with a port nothing listens on.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func httpGet(t *testing.T, url string) string {
	t.Helper()
	c := &http.Client{Timeout: 10 * time.Second}
	res, err := c.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil || res.StatusCode != 200 {
		t.Fatalf("GET %s: %d %v", url, res.StatusCode, err)
	}
	return string(b)
}

// scrape parses a /metrics page into "name{l=v,...}" -> value, labels
// sorted by name.
func scrape(t *testing.T, text string) map[string]float64 {
	t.Helper()
	p := expfmt.NewTextParser(model.LegacyValidation)
	mfs, err := p.TextToMetricFamilies(strings.NewReader(text))
	if err != nil {
		t.Fatalf("parsing the scrape: %v", err)
	}
	out := map[string]float64{}
	for name, mf := range mfs {
		for _, m := range mf.Metric {
			var l []string
			for _, lp := range m.Label {
				l = append(l, lp.GetName()+"="+lp.GetValue())
			}
			key := name + "{" + strings.Join(l, ",") + "}"
			switch mf.GetType() {
			case dto.MetricType_COUNTER:
				out[key] = m.Counter.GetValue()
			case dto.MetricType_GAUGE:
				out[key] = m.Gauge.GetValue()
			case dto.MetricType_HISTOGRAM:
				out[key] = float64(m.Histogram.GetSampleCount())
			}
		}
	}
	return out
}

// statsListing reads gvsadm -L -n --stats --exact into the metric
// samples it should equal.
func statsListing(t *testing.T, out string) map[string]float64 {
	t.Helper()
	want := map[string]float64{}
	var proto, vip, vport string
	names := []string{"connections_total", "packets_in_total", "packets_out_total", "bytes_in_total", "bytes_out_total"}
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		var prefix, labels, addr string
		var nums []string
		switch {
		case len(f) == 7 && (f[0] == "TCP" || f[0] == "UDP"):
			addr, nums = f[1], f[2:]
			a, p, _ := net.SplitHostPort(addr)
			proto, vip, vport = strings.ToLower(f[0]), a, p
			prefix, labels = "gvs_service_", fmt.Sprintf("proto=%s,vip=%s,vport=%s", proto, vip, vport)
		case len(f) == 7 && f[0] == "->":
			a, p, _ := net.SplitHostPort(f[1])
			nums = f[2:]
			prefix, labels = "gvs_server_", fmt.Sprintf("proto=%s,rip=%s,rport=%s,vip=%s,vport=%s", proto, a, p, vip, vport)
		default:
			continue
		}
		for i, n := range nums {
			v, err := strconv.ParseFloat(n, 64)
			if err != nil {
				t.Fatalf("listing %q: %v", line, err)
			}
			want[prefix+names[i]+"{"+labels+"}"] = v
		}
	}
	return want
}

// gvsd's metrics after known traffic through the proxy engine equal
// gvsadm -L -n --stats --exact, survive -Z (which zeroes the listing
// only), show a stopped server down through its health check, and pass
// promtool check metrics.
func TestMetricsProxy(t *testing.T) {
	tcpServer(t, "127.0.10.1:18401", "rs1")
	tcpServer(t, "127.0.10.2:18401", "rs2")
	udpServer(t, "127.0.10.1:18453", "rs1")
	udpServer(t, "127.0.10.2:18453", "rs2")
	dir := t.TempDir()
	// A checked service: 127.0.10.4 listens nowhere, so its check fails.
	cfg := filepath.Join(dir, "keepalived.conf")
	os.WriteFile(cfg, []byte(`
virtual_server 127.0.9.41 80 {
    delay_loop 1
    lb_algo rr
    lb_kind NAT
    protocol TCP
    real_server 127.0.10.1 18401 {
        weight 3
        TCP_CHECK {
            connect_timeout 1
        }
    }
    real_server 127.0.10.4 18401 {
        weight 2
        TCP_CHECK {
            connect_timeout 1
        }
    }
}
`), 0o644)
	maddr := freeAddr(t)
	d := startDaemon(t, t.TempDir(), "--engine", "proxy", "--metrics-addr", maddr, "--config", cfg)
	d.must("-A", "-t", "127.0.9.40:80", "-s", "rr")
	d.must("-a", "-t", "127.0.9.40:80", "-r", "127.0.10.1:18401", "-m", "-w", "1")
	d.must("-a", "-t", "127.0.9.40:80", "-r", "127.0.10.2:18401", "-m", "-w", "2")
	d.must("-A", "-u", "127.0.9.40:53", "-s", "rr")
	d.must("-a", "-u", "127.0.9.40:53", "-r", "127.0.10.1:18453", "-m")
	d.must("-a", "-u", "127.0.9.40:53", "-r", "127.0.10.2:18453", "-m")
	for range 6 {
		askTCP(t, "127.0.9.40:80")
	}
	for i := range 4 {
		askUDP(t, "127.0.9.40:53", fmt.Sprint(i))
	}
	murl := "http://" + maddr + "/metrics"
	// Health: the stopped server goes down (then the checked service
	// sends every connection to the other).
	var got map[string]float64
	waitFor(t, 10*time.Second, "gvs_server_up of the stopped server 0", func() (bool, string) {
		got = scrape(t, httpGet(t, murl))
		v, ok := got["gvs_server_up{proto=tcp,rip=127.0.10.4,rport=18401,vip=127.0.9.41,vport=80}"]
		return ok && v == 0, fmt.Sprint(v, ok)
	})
	for range 2 {
		askTCP(t, "127.0.9.41:80")
	}

	// The proxy accounts a TCP connection when it closes: wait for the
	// listing and the scrape to agree.
	var want map[string]float64
	var listing, text string
	agree := func() (bool, string) {
		listing = d.must("-L", "-n", "--stats", "--exact")
		text = httpGet(t, murl)
		want, got = statsListing(t, listing), scrape(t, text)
		var bad []string
		for k, v := range want {
			if got[k] != v {
				bad = append(bad, fmt.Sprintf("%s = %v, listing %v", k, got[k], v))
			}
		}
		return len(bad) == 0 && len(want) == 5*8, fmt.Sprintf("%d samples from the listing\n%s\n%s", len(want), strings.Join(bad, "\n"), listing)
	}
	waitFor(t, 5*time.Second, "metrics equal to the listing", agree)
	if want["gvs_service_connections_total{proto=tcp,vip=127.0.9.40,vport=80}"] != 6 ||
		want["gvs_service_packets_in_total{proto=udp,vip=127.0.9.40,vport=53}"] != 4 {
		t.Errorf("unexpected listing:\n%s", listing)
	}

	// Health: the stopped server is down, the other up; effective and
	// configured weights.
	for k, v := range map[string]float64{
		"gvs_server_up{proto=tcp,rip=127.0.10.1,rport=18401,vip=127.0.9.41,vport=80}":                              1,
		"gvs_server_configured_weight{proto=tcp,rip=127.0.10.4,rport=18401,vip=127.0.9.41,vport=80}":               2,
		"gvs_server_weight{proto=tcp,rip=127.0.10.1,rport=18401,vip=127.0.9.41,vport=80}":                          3,
		"gvs_server_configured_weight{proto=tcp,rip=127.0.10.2,rport=18401,vip=127.0.9.40,vport=80}":               2,
		"gvs_service_quorum_up{proto=tcp,vip=127.0.9.41,vport=80}":                                                 1,
		"gvs_health_check_transitions_total{proto=tcp,rip=127.0.10.4,rport=18401,to=down,vip=127.0.9.41,vport=80}": 1,
		"gvs_connections{state=TIME_WAIT}":                                                                         8,
		"gvs_connections{state=UDP}":                                                                               4,
		"gvs_build_info{engine=proxy,goversion=" + runtimeVersion(t, got) + ",ipvs_version=1.2.1,version=dev}":     1,
	} {
		if got[k] != v {
			t.Errorf("%s = %v, want %v", k, got[k], v)
		}
	}
	// The stopped server is not served (no inhibit_on_failure): no
	// effective weight.
	if _, ok := got["gvs_server_weight{proto=tcp,rip=127.0.10.4,rport=18401,vip=127.0.9.41,vport=80}"]; ok {
		t.Error("a server taken out by its check has an effective weight")
	}
	if got["gvs_health_check_duration_seconds{kind=TCP_CHECK}"] < 1 {
		t.Errorf("check durations: %v", got["gvs_health_check_duration_seconds{kind=TCP_CHECK}"])
	}
	if _, ok := got["gvs_datapath_events_total{event=udp_flow_limit}"]; !ok {
		t.Error("no gvs_datapath_events_total")
	}

	if path, err := exec.LookPath("promtool"); err != nil {
		t.Log("promtool not installed (Debian's prometheus package): promtool check metrics skipped")
	} else {
		cmd := exec.Command(path, "check", "metrics")
		cmd.Stdin = strings.NewReader(text)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("promtool check metrics: %v\n%s", err, out)
		}
	}

	// -Z zeroes the listing, not the metrics.
	before := scrape(t, httpGet(t, murl))
	d.must("-Z")
	zeroed := statsListing(t, d.must("-L", "-n", "--stats", "--exact"))
	after := scrape(t, httpGet(t, murl))
	for k := range want {
		if zeroed[k] != 0 {
			t.Errorf("after -Z the listing has %s = %v", k, zeroed[k])
		}
		if after[k] != before[k] || after[k] != got[k] && !strings.Contains(k, "127.0.9.41") {
			t.Errorf("after -Z %s = %v, was %v", k, after[k], before[k])
		}
	}
	// And they keep counting from there.
	askTCP(t, "127.0.9.40:80")
	k := "gvs_service_connections_total{proto=tcp,vip=127.0.9.40,vport=80}"
	waitFor(t, 5*time.Second, "counting after -Z", func() (bool, string) {
		v := scrape(t, httpGet(t, murl))[k]
		return v == before[k]+1, fmt.Sprint(v)
	})
	if l := statsListing(t, d.must("-L", "-n", "--stats", "--exact")); l[k] != 1 {
		t.Errorf("listing after -Z and one connection: %v", l[k])
	}

	// The status page's feed.
	var st struct {
		Snapshot struct {
			Services []json.RawMessage `json:"services"`
		} `json:"snapshot"`
		Health struct {
			Services []json.RawMessage `json:"services"`
		} `json:"health"`
	}
	if err := json.Unmarshal([]byte(httpGet(t, "http://"+maddr+"/status.json")), &st); err != nil || len(st.Snapshot.Services) != 3 || len(st.Health.Services) != 1 {
		t.Errorf("status.json: %v, %d services, %d checked", err, len(st.Snapshot.Services), len(st.Health.Services))
	}
}

// runtimeVersion is the goversion label gvsd reports.
func runtimeVersion(t *testing.T, m map[string]float64) string {
	for k := range m {
		if rest, ok := strings.CutPrefix(k, "gvs_build_info{engine=proxy,goversion="); ok {
			v, _, _ := strings.Cut(rest, ",")
			return v
		}
	}
	t.Error("no gvs_build_info")
	return ""
}
