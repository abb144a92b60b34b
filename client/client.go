// Package client talks to gvsd's control API over its unix socket.
package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"gvs/api"
	"gvs/model"
)

// DefaultSocket is where gvsd listens unless told otherwise: /run/gvs for
// root, the user's runtime directory otherwise (so the quick start needs
// no root).
func DefaultSocket() string {
	if os.Geteuid() == 0 {
		return "/run/gvs/gvsd.sock"
	}
	if d := os.Getenv("XDG_RUNTIME_DIR"); d != "" {
		return filepath.Join(d, "gvs", "gvsd.sock")
	}
	return filepath.Join(os.TempDir(), fmt.Sprintf("gvs-%d", os.Geteuid()), "gvsd.sock")
}

// Socket is the socket path a client uses: flag, else $GVS_SOCKET, else
// the default.
func Socket(flag string) string {
	if flag != "" {
		return flag
	}
	if s := os.Getenv("GVS_SOCKET"); s != "" {
		return s
	}
	return DefaultSocket()
}

// Client is a connection to gvsd.
type Client struct {
	path string
	http *http.Client
}

// idleTimeout is how long the client waits for gvsd to read or answer
// anything before it gives up.
var idleTimeout = 60 * time.Second

// New returns a client of the gvsd at socket path.
func New(path string) *Client {
	tr := &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		c, err := d.DialContext(ctx, "unix", path)
		if err != nil {
			return nil, err
		}
		return idleConn{c}, nil
	}}
	// No overall timeout: a listing of a million connections may take
	// longer than any fixed one; silence is what is timed.
	return &Client{path: path, http: &http.Client{Transport: tr}}
}

// idleConn renews its deadline at each read and write.
type idleConn struct{ net.Conn }

func (c idleConn) Read(p []byte) (int, error) {
	c.SetReadDeadline(time.Now().Add(idleTimeout))
	return c.Conn.Read(p)
}

func (c idleConn) Write(p []byte) (int, error) {
	c.SetWriteDeadline(time.Now().Add(idleTimeout))
	return c.Conn.Write(p)
}

// ErrNotRunning is returned when nothing listens on the socket.
var ErrNotRunning = errors.New("gvsd is not running")

func (c *Client) do(method, path string, body, out any) error {
	resp, err := c.request(method, path, body)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if out == nil {
		return nil
	}
	return json.NewDecoder(resp.Body).Decode(out)
}

// request sends a request and returns a 200 response, whose body the
// caller closes; any other status is returned as an error.
func (c *Client) request(method, path string, body any) (*http.Response, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, "http://gvsd"+path, rd)
	if err != nil {
		return nil, err
	}
	return c.send(req)
}

// send sends a request; see request.
func (c *Client) send(req *http.Request) (*http.Response, error) {
	resp, err := c.http.Do(req)
	if err != nil {
		if errors.Is(err, syscall.ENOENT) || errors.Is(err, syscall.ECONNREFUSED) {
			return nil, fmt.Errorf("%w (no daemon on %s; start it with gvsd, or point GVS_SOCKET or --socket at its socket)", ErrNotRunning, c.path)
		}
		if errors.Is(err, syscall.EACCES) {
			return nil, &model.Error{Errno: syscall.EPERM, Msg: "Permission denied (you must be root)"}
		}
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		defer resp.Body.Close()
		var e api.Error
		if err := json.NewDecoder(resp.Body).Decode(&e); err != nil {
			if resp.StatusCode == http.StatusNotFound || resp.StatusCode == http.StatusMethodNotAllowed {
				return nil, fmt.Errorf("%w: %s %s", ErrUnknownRequest, req.Method, req.URL.Path)
			}
			return nil, fmt.Errorf("gvsd: %s", resp.Status)
		}
		if e.Exit != 0 {
			return nil, &InputError{Msg: e.Message, Exit: e.Exit}
		}
		return nil, &OpError{Index: e.Index, Command: e.Command, Err: &model.Error{Errno: syscall.Errno(e.Errno), Msg: e.Message}}
	}
	return resp, nil
}

// OpError is a refused operation: which one of the batch, and why.
type OpError struct {
	Index int
	// Command is a refused restore operation's command (from 1).
	Command int
	Err     *model.Error
}

// InputError is restore input gvsd refused before trying any of it (a
// bad line), with the status ipvsadm exits with.
type InputError struct {
	Msg  string
	Exit int
}

func (e *InputError) Error() string { return e.Msg }
func (e *InputError) ExitCode() int { return e.Exit }

// ErrUnknownRequest is what a gvsd older than this client answers a
// request it does not know.
var ErrUnknownRequest = errors.New("gvsd does not know this request")

// Restore applies ipvsadm-save lines as one batch, all or nothing: gvsd
// parses them (POST /v1/restore); program names the command in error
// messages.
func (c *Client) Restore(program string, lines io.Reader) error {
	req, err := http.NewRequest("POST", "http://gvsd/v1/restore?program="+url.QueryEscape(program), lines)
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "text/plain")
	resp, err := c.send(req)
	if err != nil {
		return err
	}
	return resp.Body.Close()
}

func (e *OpError) Error() string { return e.Err.Error() }
func (e *OpError) Unwrap() error { return e.Err }

// BGP returns the BGP speaker's state.
func (c *Client) BGP() (b api.BGP, err error) { return b, c.do("GET", "/v1/bgp", nil, &b) }

// Maintenance puts the director in maintenance (on: its VIPs announced
// with GRACEFUL_SHUTDOWN for drain seconds, then withdrawn) or out of it.
func (c *Client) Maintenance(on bool, drain uint32) error {
	return c.do("POST", "/v1/bgp/maintenance", api.Maintenance{On: on, Drain: drain}, nil)
}

// Info returns gvsd's version information.
func (c *Client) Info() (i api.Info, err error) { return i, c.do("GET", "/v1/info", nil, &i) }

// Services returns the services with their counters.
func (c *Client) Services() (s api.Snapshot, err error) {
	return s, c.do("GET", "/v1/services", nil, &s)
}

// ConfiguredServices returns the configured rules (gvsadm -S), which
// differ from Services' while health checks keep a server out of service
// or change its weight; they have no counters.
func (c *Client) ConfiguredServices() (s api.Snapshot, err error) {
	return s, c.do("GET", "/v1/services?configured=1", nil, &s)
}

// Daemons returns the running connection synchronisation daemons.
func (c *Client) Daemons() (d []model.SyncDaemon, err error) {
	return d, c.do("GET", "/v1/daemons", nil, &d)
}

// Checks returns the health checks and their state.
func (c *Client) Checks() (h api.Health, err error) { return h, c.do("GET", "/v1/checks", nil, &h) }

// Conns returns the connection table.
func (c *Client) Conns() ([]api.Conn, error) {
	cs := []api.Conn{}
	err := c.EachConn(func(x api.Conn) bool { cs = append(cs, x); return true })
	return cs, err
}

// EachConn calls yield for each entry of the connection table as it is
// read from gvsd, until yield returns false.
func (c *Client) EachConn(yield func(api.Conn) bool) error {
	resp, err := c.request("GET", "/v1/conns", nil)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	dec := json.NewDecoder(resp.Body)
	if t, err := dec.Token(); err != nil || t != json.Delim('[') {
		return fmt.Errorf("gvsd: connection listing: not an array (%v)", err)
	}
	for dec.More() {
		var x api.Conn
		if err := dec.Decode(&x); err != nil {
			return fmt.Errorf("gvsd: connection listing: %w", err)
		}
		if !yield(x) {
			return nil
		}
	}
	if _, err := dec.Token(); err != nil {
		return fmt.Errorf("gvsd: connection listing: %w", err)
	}
	return nil
}

// Events returns the engine's event counters.
func (c *Client) Events() (e api.Events, err error) { return e, c.do("GET", "/v1/events", nil, &e) }

// Timeouts returns the --set values.
func (c *Client) Timeouts() (t model.Timeouts, err error) {
	return t, c.do("GET", "/v1/timeouts", nil, &t)
}

// Do applies operations, all or nothing.
func (c *Client) Do(ops ...api.Op) error { return c.do("POST", "/v1/ops", api.Ops{Ops: ops}, nil) }
