// Package packaging's tests check what make install and make deb ship:
// the systemd units (systemd-analyze verify), the bash completion, the
// example config, and the Debian package installed into a Debian 12 root
// and purged from it.
package packaging

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"gvs/config"
	"gvs/ipvsadm"
)

func run(t *testing.T, dir string, env []string, name string, args ...string) string {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// The units verify, with their programs and man pages where they say.
func TestUnitsVerify(t *testing.T) {
	if _, err := exec.LookPath("systemd-analyze"); err != nil {
		t.Skip("systemd-analyze (Debian package systemd) not installed")
	}
	dir := t.TempDir()
	for _, p := range []string{"gvsd", "gvs-lbaas"} {
		// Only executability is checked: any program will do.
		if b, err := os.ReadFile("/bin/true"); err != nil || os.WriteFile(filepath.Join(dir, p), b, 0o755) != nil {
			t.Fatal(err)
		}
	}
	man := filepath.Join(dir, "man")
	for _, s := range []string{"5", "8"} {
		os.MkdirAll(filepath.Join(man, "man"+s), 0o755)
		pages, _ := filepath.Glob("man/*." + s)
		for _, p := range pages {
			b, _ := os.ReadFile(p)
			os.WriteFile(filepath.Join(man, "man"+s, filepath.Base(p)), b, 0o644)
		}
	}
	var units []string
	for _, u := range []string{"gvsd.service", "gvs-lbaas.service"} {
		b, err := os.ReadFile("systemd/" + u)
		if err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(dir, u)
		os.WriteFile(p, bytes.ReplaceAll(b, []byte("/usr/sbin/"), []byte(dir+"/")), 0o644)
		units = append(units, p)
	}
	cmd := exec.Command("systemd-analyze", append([]string{"verify"}, units...)...)
	cmd.Env = append(os.Environ(), "MANPATH="+man)
	if out, err := cmd.CombinedOutput(); err != nil || len(out) > 0 {
		t.Fatalf("systemd-analyze verify: %v\n%s", err, out)
	}
}

// The example config, uncommented, is a valid rule set; commented, as
// shipped, it changes nothing.
func TestExampleConfig(t *testing.T) {
	b, err := os.ReadFile("etc/gvsd.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, "#") && (strings.HasPrefix(l, "#  ") || strings.Contains(l, ":") && !strings.HasPrefix(l, "# ")) {
			lines = append(lines, l[1:])
		}
	}
	c, err := config.ParseConfig([]byte(strings.Join(lines, "\n")))
	if err != nil {
		t.Fatalf("%v\n%s", err, strings.Join(lines, "\n"))
	}
	if len(c.Rules.Services) != 1 {
		t.Fatalf("uncommented example: %d services, want 1", len(c.Rules.Services))
	}
}

// The completion offers options, and the services and servers of the
// running gvsd as gvsadm -S -n lists them.
func TestCompletion(t *testing.T) {
	if _, err := exec.LookPath("bash"); err != nil {
		t.Skip("no bash")
	}
	dir := t.TempDir()
	fake := "#!/bin/sh\n[ \"$1 $2\" = \"-S -n\" ] || exit 1\ncat <<'EOF'\n" +
		"-A -t 198.18.0.1:80 -s wrr\n-a -t 198.18.0.1:80 -r 198.18.1.1:8080 -m -w 1\n" +
		"-a -t 198.18.0.1:80 -r 198.18.1.2:8080 -m -w 1\n-A -u 198.18.0.2:53 -s rr\n" +
		"-a -u 198.18.0.2:53 -r 198.18.1.9:53 -g -w 1\nEOF\n"
	os.WriteFile(filepath.Join(dir, "gvsadm"), []byte(fake), 0o755)
	script := `source completion/gvsadm.bash
c() { COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1)); COMPREPLY=(); _gvsadm; echo "${COMPREPLY[*]}"; }
c gvsadm --fulln
c gvsadm -d -t ""
c gvsadm -d -t 198.18.0.1:80 -r ""
c gvsadm -e -u 198.18.0.2:53 -r ""
c gvsadm -A -t 198.18.0.9:80 -s w
complete -p ipvsadm
`
	out := run(t, ".", []string{"PATH=" + dir + ":" + os.Getenv("PATH")}, "bash", "--norc", "-c", script)
	want := "--fullnat\n198.18.0.1:80\n198.18.1.1:8080 198.18.1.2:8080\n198.18.1.9:53\nwrr wlc\ncomplete -F _gvsadm ipvsadm\n"
	if out != want {
		t.Fatalf("completion:\n%s\nwant\n%s", out, want)
	}
	// Every option in gvsadm's help text is offered.
	var usage bytes.Buffer
	ipvsadm.UsageAs(&usage, "gvsadm")
	comp, _ := os.ReadFile("completion/gvsadm.bash")
	for _, f := range strings.Fields(strings.NewReplacer("|", " ", ",", " ").Replace(usage.String())) {
		if strings.HasPrefix(f, "--") && len(f) > 2 && !strings.ContainsAny(f, "[]") && !bytes.Contains(comp, []byte(f)) {
			t.Errorf("completion does not offer %s", f)
		}
	}
}

// rootCache keeps a minbase Debian 12 root (debootstrap, about a minute
// from the apt mirror) as a tarball between runs on the same machine.
const rootCache = "/var/cache/gvs-test/bookworm-minbase.tar"

// The package builds, installs into a fresh Debian 12 root (chroot),
// runs there, offers the ipvsadm names by update-alternatives without
// replacing a real ipvsadm's file, and purges without a trace.
func TestDebInstall(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root (chroot)")
	}
	for _, p := range []string{"dpkg-deb", "debootstrap", "chroot", "tar"} {
		if _, err := exec.LookPath(p); err != nil {
			t.Skipf("%s not installed (scripts/install-deps.sh)", p)
		}
	}
	start := time.Now()
	if _, err := os.Stat(rootCache); err != nil {
		tmp := t.TempDir()
		run(t, ".", nil, "debootstrap", "--variant=minbase", "bookworm", tmp+"/root", "http://deb.debian.org/debian")
		os.MkdirAll(filepath.Dir(rootCache), 0o755)
		run(t, ".", nil, "tar", "-C", tmp+"/root", "-cf", rootCache+".tmp", ".")
		os.Rename(rootCache+".tmp", rootCache)
		t.Logf("debootstrap: %v (cached in %s)", time.Since(start).Round(time.Second), rootCache)
	}
	bin := t.TempDir()
	deb := strings.TrimSpace(lastLine(run(t, "..", nil, "make", "-s", "deb", "BIN="+bin)))
	root := t.TempDir()
	run(t, ".", nil, "tar", "-C", root, "-xf", rootCache)
	before := tree(t, root)
	in := func(args ...string) string { return run(t, ".", nil, "chroot", append([]string{root}, args...)...) }
	if !filepath.IsAbs(deb) {
		deb = filepath.Join("..", deb)
	}
	b, err := os.ReadFile(deb)
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(root, "tmp/gvs.deb"), b, 0o644)

	in("dpkg", "-i", "/tmp/gvs.deb")
	if out := in("gvsadm", "-h"); !strings.Contains(out, "gvsadm -A|E virtual-service") {
		t.Fatalf("gvsadm -h in the root:\n%s", out)
	}
	if out := in("gvsd", "--version"); !strings.Contains(out, "engine capabilities") {
		t.Fatalf("gvsd --version in the root:\n%s", out)
	}
	if out := in("update-alternatives", "--query", "ipvsadm"); !strings.Contains(out, "Value: /usr/sbin/gvsadm") || !strings.Contains(out, "Priority: 10") {
		t.Fatalf("alternatives:\n%s", out)
	}
	if out := in("ipvsadm", "-v"); !strings.HasPrefix(out, "ipvsadm v1.31 ") {
		t.Fatalf("ipvsadm -v: %q", out)
	}
	// ipvsadm-save is gvsadm -S: with no gvsd, the socket error.
	cmd := exec.Command("chroot", root, "ipvsadm-save", "-n")
	if out, err := cmd.CombinedOutput(); err == nil || !strings.Contains(string(out), "gvsd.sock") {
		t.Fatalf("ipvsadm-save without gvsd: %v %q", err, out)
	}
	for _, f := range []string{"etc/gvs/gvsd.env", "etc/gvs/gvsd.yaml", "lib/systemd/system/gvsd.service", "usr/share/man/man8/gvsadm.8.gz", "usr/share/bash-completion/completions/gvsadm"} {
		if _, err := os.Stat(filepath.Join(root, f)); err != nil {
			t.Error(err)
		}
	}
	if _, err := os.Stat(filepath.Join(root, "run/gvs")); err == nil {
		t.Error("postinst started something: /run/gvs exists")
	}
	if out := in("dpkg-query", "-W", "-f=${Conffiles}", "gvs"); !strings.Contains(out, "/etc/gvs/gvsd.env") {
		t.Errorf("conffiles: %q", out)
	}
	in("dpkg", "--purge", "gvs")
	if out := in("sh", "-c", "update-alternatives --query ipvsadm 2>&1 || true"); strings.Contains(out, "gvsadm") {
		t.Errorf("alternative left after purge:\n%s", out)
	}
	if diff := changed(before, tree(t, root)); len(diff) > 0 {
		t.Errorf("left after purge: %v", diff)
	}

	// With a real ipvsadm's file in place, it is left alone.
	real := filepath.Join(root, "usr/sbin/ipvsadm")
	os.WriteFile(real, []byte("#!/bin/sh\necho real ipvsadm\n"), 0o755)
	in("dpkg", "-i", "/tmp/gvs.deb")
	if out := in("ipvsadm"); out != "real ipvsadm\n" {
		t.Errorf("real ipvsadm replaced: %q", out)
	}
	in("dpkg", "--purge", "gvs")
	if out := in("ipvsadm"); out != "real ipvsadm\n" {
		t.Errorf("real ipvsadm after purge: %q", out)
	}
	t.Logf("package test: %v", time.Since(start).Round(100*time.Millisecond))
}

func lastLine(s string) string {
	l := strings.Split(strings.TrimSpace(s), "\n")
	return l[len(l)-1]
}

// tree lists the root's paths, but for dpkg's own records and logs.
func tree(t *testing.T, root string) map[string]bool {
	m := map[string]bool{}
	filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		r, _ := filepath.Rel(root, p)
		if strings.HasPrefix(r, "var/lib/dpkg") || strings.HasPrefix(r, "var/log") || strings.HasPrefix(r, "tmp") || strings.HasPrefix(r, "var/cache/debconf") {
			return nil
		}
		m[r] = true
		return nil
	})
	return m
}

func changed(a, b map[string]bool) []string {
	var d []string
	for p := range b {
		if !a[p] {
			d = append(d, "+"+p)
		}
	}
	for p := range a {
		if !b[p] {
			d = append(d, "-"+p)
		}
	}
	return d
}
