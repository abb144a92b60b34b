package check

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
)

func init() { register(File, newFile) }

// ipvsWeightFault is keepalived's IPVS_WEIGHT_FAULT for real servers:
// a FILE_CHECK product at or below it (after clamping to 32 bits) is a
// fault. (VRRP's track_file fault is -254; LVS's is INT32_MIN.)
const ipvsWeightFault = math.MinInt32

type fileChecker struct {
	spec Spec
	mu   sync.Mutex
	last int64 // keepalived keeps the previous value when the file holds a bad number
}

func newFile(s Spec, _ Target) (Checker, error) {
	if s.File.Path == "" {
		return nil, fmt.Errorf("FILE_CHECK %s: no file", s.File.Name)
	}
	if s.File.Weight < -math.MaxInt32 || s.File.Weight > math.MaxInt32 {
		return nil, fmt.Errorf("FILE_CHECK %s: weight %d out of range", s.File.Name, s.File.Weight)
	}
	return &fileChecker{spec: s}, nil
}

func (c *fileChecker) Check(context.Context) Result {
	f := c.spec.File
	v, note := c.read(f.Path)
	mult := f.Weight
	if f.Reverse {
		mult = -mult
	}
	// keepalived clamps the product to an int (weight_range).
	p := min(max(v*mult, math.MinInt32), math.MaxInt32)
	reason := fmt.Sprintf("%s holds %d%s, times %d is %d", f.Path, v, note, mult, p)
	if p <= ipvsWeightFault {
		return Result{Reason: reason + ": fault"}
	}
	if f.Dynamic {
		return Result{Up: true, Weight: &p, Reason: reason}
	}
	return Result{Up: true, Reason: reason}
}

// read returns the file's number as keepalived's track_file reads it:
// strtol with base 0 (0x.. hex, 0.. octal, leading blanks and a sign
// allowed, anything after the number ignored) on its first 127 bytes; a
// missing, unreadable or empty file, or one with no number at its
// start, is 0; a number out of [INT32_MIN, INT32_MAX+1] is ignored and
// the previous value kept.
func (c *fileChecker) read(path string) (int64, string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	b, err := readHead(path, 127)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			c.last = 0
			return 0, " (missing)"
		}
		c.last = 0
		return 0, " (unreadable: " + err.Error() + ")"
	}
	v, ok := strtol(string(b))
	if !ok || v < math.MinInt32 || v > math.MaxInt32+1 {
		return c.last, fmt.Sprintf(" (kept: bad number %q)", strings.TrimSpace(string(b)))
	}
	c.last = v
	return v, ""
}

func readHead(path string, n int) ([]byte, error) {
	// O_NONBLOCK as keepalived: a FIFO must not hang the check.
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b := make([]byte, n)
	m, err := f.Read(b)
	if err != nil && err != io.EOF {
		return nil, err
	}
	return b[:m], nil
}

// strtol parses s as C's strtol(s, NULL, 0) does; ok is false on
// overflow (ERANGE). No digits at all gives 0.
func strtol(s string) (v int64, ok bool) {
	s = strings.TrimLeft(s, " \t\n\v\f\r")
	neg := false
	if s != "" && (s[0] == '+' || s[0] == '-') {
		neg = s[0] == '-'
		s = s[1:]
	}
	base := 10
	switch {
	case len(s) > 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X') && isDigitIn(s[2], 16):
		base, s = 16, s[2:]
	case len(s) > 0 && s[0] == '0':
		base = 8
	}
	end := 0
	for end < len(s) && isDigitIn(s[end], base) {
		end++
	}
	if end == 0 {
		return 0, true
	}
	u, err := strconv.ParseUint(s[:end], base, 64)
	if err != nil || (!neg && u > math.MaxInt64) || (neg && u > 1<<63) {
		return 0, false
	}
	if neg {
		return -int64(u), true
	}
	return int64(u), true
}

func isDigitIn(c byte, base int) bool {
	switch {
	case c >= '0' && c <= '9':
		return int(c-'0') < base
	case c >= 'a' && c <= 'f':
		return base == 16
	case c >= 'A' && c <= 'F':
		return base == 16
	}
	return false
}
