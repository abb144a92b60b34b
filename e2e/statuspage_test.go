package e2e

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

// The status page in a real browser: headless Chromium (Debian's
// chromium) loads it from a gvsd under traffic, with a health-checked
// service one of whose servers is stopped, and the rendered DOM lists
// the services and shows that server down. The screenshot goes to the
// test's directory, and to docs/status-page.png (the README's) with
// GVS_UPDATE_SCREENSHOT=1. Chromium runs once.
func TestStatusPageChromium(t *testing.T) {
	chromium, err := exec.LookPath("chromium")
	if err != nil {
		t.Skip("chromium not installed (Debian's chromium package)")
	}
	tcpServer(t, "127.0.10.1:18501", "rs1")
	tcpServer(t, "127.0.10.2:18501", "rs2")
	udpServer(t, "127.0.10.1:18553", "rs1")
	udpServer(t, "127.0.10.2:18553", "rs2")
	dir := t.TempDir()
	cfg := filepath.Join(dir, "keepalived.conf")
	os.WriteFile(cfg, []byte(`
virtual_server 127.0.9.51 80 {
    delay_loop 1
    lb_algo wlc
    lb_kind NAT
    protocol TCP
    real_server 127.0.10.1 18501 {
        weight 3
        TCP_CHECK {
            connect_timeout 1
        }
    }
    real_server 127.0.10.2 18501 {
        weight 1
        TCP_CHECK {
            connect_timeout 1
        }
    }
    real_server 127.0.10.4 18501 {
        weight 2
        inhibit_on_failure
        TCP_CHECK {
            connect_timeout 1
        }
    }
}
`), 0o644)
	maddr := freeAddr(t)
	d := startDaemon(t, t.TempDir(), "--engine", "proxy", "--metrics-addr", maddr, "--config", cfg)
	d.must("-A", "-u", "127.0.9.51:53", "-s", "rr")
	d.must("-a", "-u", "127.0.9.51:53", "-r", "127.0.10.1:18553", "-m", "-w", "1")
	d.must("-a", "-u", "127.0.9.51:53", "-r", "127.0.10.2:18553", "-m", "-w", "1")
	waitFor(t, 10*time.Second, "the stopped server down", func() (bool, string) {
		m := scrape(t, httpGet(t, "http://"+maddr+"/metrics"))
		v, ok := m["gvs_server_up{proto=tcp,rip=127.0.10.4,rport=18501,vip=127.0.9.51,vport=80}"]
		return ok && v == 0, fmt.Sprint(v, ok)
	})

	// Traffic until the end: TCP connections and UDP datagrams, paced.
	ctx, stop := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	defer func() { stop(); wg.Wait() }()
	wg.Add(2)
	go func() {
		defer wg.Done()
		for ctx.Err() == nil {
			if c, err := net.DialTimeout("tcp", "127.0.9.51:80", time.Second); err == nil {
				c.SetDeadline(time.Now().Add(time.Second))
				c.Write([]byte(strings.Repeat("x", 2000)))
				c.Read(make([]byte, 64))
				c.Close()
			}
			time.Sleep(20 * time.Millisecond)
		}
	}()
	go func() {
		defer wg.Done()
		for i := 0; ctx.Err() == nil; i++ {
			if c, err := net.Dial("udp", "127.0.9.51:53"); err == nil {
				c.SetDeadline(time.Now().Add(time.Second))
				c.Write([]byte(strings.Repeat("q", 200)))
				c.Read(make([]byte, 512))
				c.Close()
			}
			time.Sleep(50 * time.Millisecond)
		}
	}()
	time.Sleep(3 * time.Second)

	// --virtual-time-budget lets the page's timers run (it polls every
	// second) before the DOM is dumped and the screenshot taken; the
	// rates are from gvsd's timestamps.
	shot := filepath.Join(dir, "status-page.png")
	cctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(cctx, chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
		"--hide-scrollbars", "--no-first-run", "--user-data-dir="+filepath.Join(dir, "chromium"), "--window-size=1280,760",
		"--virtual-time-budget=20000", "--screenshot="+shot, "--dump-dom", "http://"+maddr+"/")
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("chromium: %v\n%s", err, stderr.String())
	}
	dom := string(out)
	for _, want := range []string{
		`data-loaded="1"`,
		`data-service="TCP 127.0.9.51:80"`,
		`data-service="UDP 127.0.9.51:53"`,
		`data-server="127.0.10.4:18501" data-health="down"`,
		`data-server="127.0.10.1:18501" data-health="up"`,
		`data-server="127.0.10.1:18553" data-health="unchecked"`,
		`quorum up`,
	} {
		if !strings.Contains(dom, want) {
			t.Errorf("the rendered page has no %s", want)
		}
	}
	// The down server's row says so to a reader too.
	if !regexp.MustCompile(`data-server="127.0.10.4:18501" data-health="down">.*?<span class="health down"[^>]*>down</span>`).MatchString(dom) {
		t.Error("the stopped server is not shown as down")
	}
	if t.Failed() {
		t.Logf("DOM:\n%s", dom)
	}
	if st, err := os.Stat(shot); err != nil || st.Size() < 10000 {
		t.Fatalf("screenshot: %v", err)
	}
	t.Logf("screenshot: %s", shot)
	if os.Getenv("GVS_UPDATE_SCREENSHOT") == "1" {
		b, _ := os.ReadFile(shot)
		if err := os.WriteFile(filepath.Join("..", "docs", "status-page.png"), b, 0o644); err != nil {
			t.Error(err)
		}
	}
}
