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

// New returns a client of the gvsd at socket path.
func New(path string) *Client {
	tr := &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "unix", path)
	}}
	return &Client{path: path, http: &http.Client{Transport: tr, Timeout: 60 * time.Second}}
}

// ErrNotRunning is returned when nothing listens on the socket.
var ErrNotRunning = errors.New("gvsd is not running")

func (c *Client) do(method, path string, body, out any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, "http://gvsd"+path, rd)
	if err != nil {
		return err
	}
	resp, err := c.http.Do(req)
	if err != nil {
		if errors.Is(err, syscall.ENOENT) || errors.Is(err, syscall.ECONNREFUSED) {
			return fmt.Errorf("%w (no daemon on %s; start it with gvsd, or point GVS_SOCKET or --socket at its socket)", ErrNotRunning, c.path)
		}
		if errors.Is(err, syscall.EACCES) {
			return &model.Error{Errno: syscall.EPERM, Msg: "Permission denied (you must be root)"}
		}
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		var e api.Error
		if err := json.NewDecoder(resp.Body).Decode(&e); err != nil {
			return fmt.Errorf("gvsd: %s", resp.Status)
		}
		return &OpError{Index: e.Index, Err: &model.Error{Errno: syscall.Errno(e.Errno), Msg: e.Message}}
	}
	if out == nil {
		return nil
	}
	return json.NewDecoder(resp.Body).Decode(out)
}

// OpError is a refused operation: which one of the batch, and why.
type OpError struct {
	Index int
	Err   *model.Error
}

func (e *OpError) Error() string { return e.Err.Error() }
func (e *OpError) Unwrap() error { return e.Err }

// Info returns gvsd's version information.
func (c *Client) Info() (i api.Info, err error) { return i, c.do("GET", "/v1/info", nil, &i) }

// Services returns the services with their counters.
func (c *Client) Services() (s api.Snapshot, err error) {
	return s, c.do("GET", "/v1/services", nil, &s)
}

// Conns returns the connection table.
func (c *Client) Conns() (cs []api.Conn, err error) { return cs, c.do("GET", "/v1/conns", nil, &cs) }

// Timeouts returns the --set values.
func (c *Client) Timeouts() (t model.Timeouts, err error) {
	return t, c.do("GET", "/v1/timeouts", nil, &t)
}

// Do applies operations, all or nothing.
func (c *Client) Do(ops ...api.Op) error { return c.do("POST", "/v1/ops", api.Ops{Ops: ops}, nil) }
