package metrics

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

// The shipped alerting rules pass promtool check rules, and the
// server-down alert its unit test (promtool test rules).
func TestAlertRulesPromtool(t *testing.T) {
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		t.Skip("promtool not installed (Debian's prometheus package)")
	}
	for _, args := range [][]string{{"check", "rules", "../docs/alerts.yml"}, {"test", "rules", "../docs/alerts_test.yml"}} {
		out, err := exec.Command(promtool, args...).CombinedOutput()
		if err != nil {
			t.Errorf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
}

// Every gvs_ metric the alerts and the Grafana dashboard use is one the
// collector exports, and the dashboard is JSON with panels.
func TestDocsUseExportedMetrics(t *testing.T) {
	ch := make(chan *prometheus.Desc, 100)
	NewCollector(Sources{}).Describe(ch)
	close(ch)
	known := map[string]bool{}
	fq := regexp.MustCompile(`fqName: "([a-z_]+)"`)
	for d := range ch {
		known[fq.FindStringSubmatch(d.String())[1]] = true
	}
	name := regexp.MustCompile(`\bgvs_[a-z_]+`)
	for _, f := range []string{"../docs/alerts.yml", "../docs/grafana-dashboard.json"} {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, m := range name.FindAllString(string(b), -1) {
			base := m
			for _, suf := range []string{"_bucket", "_sum", "_count"} {
				if s, ok := strings.CutSuffix(m, suf); ok && known[s] {
					base = s
				}
			}
			if !known[base] {
				t.Errorf("%s: %s is not a metric gvsd exports", f, m)
			}
			n++
		}
		if n == 0 {
			t.Errorf("%s uses no gvs_ metric", f)
		}
	}
	var dash struct {
		Panels []struct {
			Title   string `json:"title"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	b, _ := os.ReadFile("../docs/grafana-dashboard.json")
	if err := json.Unmarshal(b, &dash); err != nil || len(dash.Panels) < 10 {
		t.Fatalf("dashboard: %v, %d panels", err, len(dash.Panels))
	}
	var rules strings.Builder
	rules.WriteString("groups:\n  - name: dashboard\n    rules:\n")
	for i, p := range dash.Panels {
		if len(p.Targets) == 0 || p.Targets[0].Expr == "" {
			t.Errorf("panel %q has no query", p.Title)
		}
		for j, tg := range p.Targets {
			// Grafana's variables, as Grafana would expand them.
			e := strings.NewReplacer("$__rate_interval", "5m", "$instance", ".*").Replace(tg.Expr)
			q, _ := json.Marshal(e)
			fmt.Fprintf(&rules, "      - record: panel_%d_%d\n        expr: %s\n", i, j, q)
		}
	}
	// The queries parse: promtool checks them as recording rules.
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		t.Log("promtool not installed: the dashboard's queries are not parsed")
		return
	}
	f := filepath.Join(t.TempDir(), "dashboard-rules.yml")
	os.WriteFile(f, []byte(rules.String()), 0o644)
	if out, err := exec.Command(promtool, "check", "rules", f).CombinedOutput(); err != nil {
		t.Errorf("the dashboard's queries: %v\n%s", err, out)
	}
}
