package apiserver

import (
	"bufio"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"gvs/api"
	"gvs/client"
	"gvs/control"
	"gvs/engine"
	"gvs/ipvs"
	"gvs/model"
)

// tableEngine is an engine without a data path: the rules alone.
type tableEngine struct{ *engine.Table }

func (tableEngine) Name() string { return "table" }
func (tableEngine) Close() error { return nil }

// genEngine lists n generated connections through list, which may block.
type genEngine struct {
	tableEngine
	list func(yield func(api.Conn) bool) error
}

func (e genEngine) Conns(yield func(api.Conn) bool) error { return e.list(yield) }

func genConn(i int) api.Conn {
	return api.Conn{Protocol: model.ProtoUDP, Client: netip.AddrPortFrom(netip.AddrFrom4([4]byte{198, 19, byte(i >> 8), byte(i)}), uint16(i)),
		Virtual: netip.MustParseAddrPort("198.18.0.1:53"), Dest: netip.MustParseAddrPort("198.18.1.1:53"), State: "UDP", ExpireMS: 299000}
}

type eventEngine struct{ tableEngine }

func (eventEngine) Events() map[string]uint64 {
	return map[string]uint64{"udp_flow_limit": 3, "accept_error": 0}
}

func newTable() tableEngine { return tableEngine{engine.NewTable(ipvs.Options{})} }

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// serve serves eng's API on a socket in a temporary directory.
func serve(t *testing.T, eng engine.Engine) string {
	t.Helper()
	srv := New(control.New(eng, nil, quiet()), api.Info{Version: api.Version, Engine: eng.Name()}, quiet())
	sock := filepath.Join(t.TempDir(), "gvsd.sock")
	if err := srv.Listen(sock, 0o600, -1); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	return sock
}

// shortTimeouts shortens the server's timeouts for one test.
func shortTimeouts(t *testing.T, d time.Duration) {
	old := timeouts
	timeouts.header, timeouts.read, timeouts.write, timeouts.idle = d, d, d, d
	t.Cleanup(func() { timeouts = old })
}

// The socket is created with its mode: it arrives at its path by a
// rename, never by bind there (which gives the umask's mode until a
// chmod), and the umask does not show through.
func TestSocketNeverWider(t *testing.T) {
	dir := t.TempDir()
	old := syscall.Umask(0)
	defer syscall.Umask(old)
	fd, err := unix.InotifyInit1(unix.IN_CLOEXEC | unix.IN_NONBLOCK)
	if err != nil {
		t.Skipf("inotify: %v", err)
	}
	defer unix.Close(fd)
	if _, err := unix.InotifyAddWatch(fd, dir, unix.IN_CREATE|unix.IN_MOVED_TO); err != nil {
		t.Fatal(err)
	}
	srv := New(control.New(newTable(), nil, quiet()), api.Info{}, quiet())
	sock := filepath.Join(dir, "gvsd.sock")
	if err := srv.Listen(sock, 0o600, -1); err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	buf := make([]byte, 64<<10)
	n, _ := unix.Read(fd, buf)
	var events []string
	for off := 0; off+unix.SizeofInotifyEvent <= n; {
		ev := (*unix.InotifyEvent)(unsafe.Pointer(&buf[off]))
		name := strings.TrimRight(string(buf[off+unix.SizeofInotifyEvent:off+unix.SizeofInotifyEvent+int(ev.Len)]), "\x00")
		if name == "gvsd.sock" {
			if ev.Mask&unix.IN_CREATE != 0 {
				events = append(events, "create")
			}
			if ev.Mask&unix.IN_MOVED_TO != 0 {
				events = append(events, "moved_to")
			}
		}
		off += unix.SizeofInotifyEvent + int(ev.Len)
	}
	if len(events) != 1 || events[0] != "moved_to" {
		t.Fatalf("the socket appeared at its path by %v, want a rename alone", events)
	}
	fi, err := os.Lstat(sock)
	if err != nil || fi.Mode().Type() != os.ModeSocket || fi.Mode().Perm() != 0o600 {
		t.Fatalf("socket %v, err %v", fi.Mode(), err)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 1 {
		t.Fatalf("left in the directory: %v", ents)
	}
	if _, err := client.New(sock).Info(); err != nil {
		t.Fatal(err)
	}
	srv.Close()
	if _, err := os.Lstat(sock); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("socket left after Close: %v", err)
	}
}

// The socket's directory is created 0700 (0710 in the socket's group),
// and one that others could write to, or that another user owns, is
// refused.
func TestSocketDir(t *testing.T) {
	old := syscall.Umask(0o022)
	defer syscall.Umask(old)
	uid := os.Geteuid()
	for _, tc := range []struct {
		name  string
		setup func(dir string) error // nil: the directory does not exist
		group bool
		want  os.FileMode // the directory's mode after, 0: refused
		root  bool        // needs root
	}{
		{name: "created", want: 0o700},
		{name: "created for a group", group: true, want: 0o710},
		{name: "existing 0700", setup: mode(0o700), want: 0o700},
		{name: "existing 0755 (an older gvsd's)", setup: mode(0o755), want: 0o755},
		{name: "group-writable", setup: mode(0o770)},
		{name: "world-writable", setup: mode(0o757)},
		{name: "world-writable and sticky", setup: mode(0o1777)},
		{name: "a symbolic link", setup: func(dir string) error {
			if err := os.Mkdir(dir+".real", 0o700); err != nil {
				return err
			}
			return os.Symlink(dir+".real", dir)
		}},
		{name: "another user's", root: true, setup: func(dir string) error {
			if err := os.Mkdir(dir, 0o700); err != nil {
				return err
			}
			return os.Chown(dir, 65534, 65534)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.root && uid != 0 {
				t.Skip("needs root to chown")
			}
			dir := filepath.Join(t.TempDir(), "gvs")
			if tc.setup != nil {
				if err := tc.setup(dir); err != nil {
					t.Fatal(err)
				}
			}
			gid := -1
			if tc.group {
				gid = os.Getgid()
			}
			srv := New(control.New(newTable(), nil, quiet()), api.Info{}, quiet())
			err := srv.Listen(filepath.Join(dir, "gvsd.sock"), 0o600, gid)
			if err == nil {
				defer srv.Close()
			}
			if tc.want == 0 {
				if err == nil {
					t.Fatal("accepted")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			fi, err := os.Lstat(dir)
			if err != nil || fi.Mode().Perm() != tc.want {
				t.Fatalf("directory %v (err %v), want %04o", fi.Mode(), err, tc.want)
			}
		})
	}
}

func mode(m os.FileMode) func(string) error {
	return func(dir string) error {
		if err := os.Mkdir(dir, 0o700); err != nil {
			return err
		}
		return os.Chmod(dir, m)
	}
}

// A listing is written as the engine yields it: the client has entries
// before the engine has finished, and reads them all, in order.
func TestConnsStreamed(t *testing.T) {
	const n = 50000
	firstRead := make(chan struct{})
	var streamed atomic.Bool
	eng := genEngine{tableEngine: newTable(), list: func(yield func(api.Conn) bool) error {
		for i := range n {
			if i == n/2 {
				select {
				case <-firstRead:
					streamed.Store(true)
				case <-time.After(5 * time.Second):
				}
			}
			if !yield(genConn(i)) {
				return nil
			}
		}
		return nil
	}}
	c := client.New(serve(t, eng))
	i := 0
	err := c.EachConn(func(x api.Conn) bool {
		if x != genConn(i) {
			t.Fatalf("entry %d: %+v", i, x)
		}
		if i == 0 {
			close(firstRead)
		}
		i++
		return true
	})
	if err != nil || i != n {
		t.Fatalf("read %d of %d entries, err %v", i, n, err)
	}
	if !streamed.Load() {
		t.Fatal("the client had nothing before the engine had listed everything")
	}
	// An empty table is an empty array.
	empty, err := client.New(serve(t, newTable())).Conns()
	if err != nil || empty == nil || len(empty) != 0 {
		t.Fatalf("empty table: %v, %v", empty, err)
	}
}

// A listing whose engine fails half-way reaches the client as an error,
// not as a shorter table; one that fails before any entry is a 500.
func TestConnsError(t *testing.T) {
	for _, after := range []int{0, 20000} {
		eng := genEngine{tableEngine: newTable(), list: func(yield func(api.Conn) bool) error {
			for i := range after {
				if !yield(genConn(i)) {
					return nil
				}
			}
			return errors.New("map read failed")
		}}
		if cs, err := client.New(serve(t, eng)).Conns(); err == nil {
			t.Fatalf("failing after %d entries: %d entries and no error", after, len(cs))
		}
	}
}

// A client that stops reading a listing holds up no other request, and
// is cut off once the write timeout passes with nothing written, which
// ends the engine's listing.
func TestConnsSlowReader(t *testing.T) {
	shortTimeouts(t, 2*time.Second)
	ended := make(chan int, 1)
	eng := genEngine{tableEngine: newTable(), list: func(yield func(api.Conn) bool) error {
		i := 0
		for ; i < 1_000_000 && yield(genConn(i)); i++ {
		}
		ended <- i
		return nil
	}}
	sock := serve(t, eng)
	conn, err := net.Dial("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	io.WriteString(conn, "GET /v1/conns HTTP/1.1\r\nHost: gvsd\r\n\r\n")
	line, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "HTTP/1.1 200") {
		t.Fatalf("status %q, err %v", line, err)
	}
	// Stalled: other calls go on, rule changes included.
	c := client.New(sock)
	k := model.ServiceKey{Protocol: model.ProtoTCP, Addr: netip.MustParseAddr("198.18.0.1"), Port: 80, Family: model.IPv4}
	start := time.Now()
	if err := c.Do(api.Op{Op: api.AddService, Service: model.Service{ServiceKey: k}}); err != nil {
		t.Fatal(err)
	}
	if s, err := c.Services(); err != nil || len(s.Services) != 1 {
		t.Fatalf("services %v, err %v", s, err)
	}
	if d := time.Since(start); d > time.Second {
		t.Fatalf("other calls took %v beside a stalled listing", d)
	}
	select {
	case i := <-ended:
		if i >= 1_000_000 {
			t.Fatal("the listing ran to its end into a client that reads nothing")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the listing is still blocked on a client that stopped reading")
	}
}

// A connection that sends no request is closed after the header timeout.
func TestHeaderTimeout(t *testing.T) {
	shortTimeouts(t, 200*time.Millisecond)
	conn, err := net.Dial("unix", serve(t, newTable()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	io.WriteString(conn, "GET /v1/info HTTP/1.1\r\n")
	conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.ReadAll(conn); err != nil {
		t.Fatalf("the connection was not closed by the server: %v", err)
	}
}

// GET /v1/events: the engine's counters, or none.
func TestEvents(t *testing.T) {
	ev, err := client.New(serve(t, newTable())).Events()
	if err != nil || ev.Engine != "table" || ev.Counters == nil || len(ev.Counters) != 0 {
		t.Fatalf("no counters: %+v, %v", ev, err)
	}
	ev, err = client.New(serve(t, eventEngine{newTable()})).Events()
	if err != nil || len(ev.Counters) != 2 || ev.Counters["udp_flow_limit"] != 3 {
		t.Fatalf("counters: %+v, %v", ev, err)
	}
}

// POST /v1/restore: gvsd parses ipvsadm-save lines and applies them as
// one batch; a bad line or a refused command changes nothing and says
// which, with ipvsadm's exit status.
func TestRestore(t *testing.T) {
	c := client.New(serve(t, newTable()))
	good := "# saved\n-A -t 198.18.0.1:80 -s wlc\n\n-a -t 198.18.0.1:80 -r 198.18.1.1:80 -m -w 3\nipvsadm -A -u 198.18.0.1:53 -s rr\n"
	if err := c.Restore("gvsadm", strings.NewReader(good)); err != nil {
		t.Fatal(err)
	}
	snap, err := c.Services()
	if err != nil || len(snap.Services) != 2 {
		t.Fatalf("after a restore: %+v, %v", snap.Services, err)
	}

	// A bad line: refused before anything is tried.
	var ie *client.InputError
	err = c.Restore("gvsadm", strings.NewReader("-A -t 198.18.0.2:80 -s rr\n-A -t 198.18.0.3:80 --bogus\n"))
	if !errors.As(err, &ie) || !strings.HasPrefix(ie.Msg, "line 2: ") || ie.ExitCode() == 0 {
		t.Fatalf("bad line: %v (%#v)", err, err)
	}
	// A refused command (the service exists): its number among the
	// commands, the kernel's errno, nothing applied.
	var oe *client.OpError
	err = c.Restore("gvsadm", strings.NewReader("-A -t 198.18.0.4:80 -s rr\n# x\n-A -t 198.18.0.1:80 -s rr\n"))
	if !errors.As(err, &oe) || oe.Command != 2 || oe.Err.Errno != syscall.EEXIST {
		t.Fatalf("refused command: %v (%#v)", err, err)
	}
	if snap, _ := c.Services(); len(snap.Services) != 2 {
		t.Fatalf("a refused restore changed the rules: %+v", snap.Services)
	}
}
