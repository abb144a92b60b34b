package e2e

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// TestMain lets the test binary play a traffic role inside a network
// namespace (ip netns exec NS <test binary>, with GVS_E2E_ROLE set), so the
// namespace tests need no tool beyond iproute2.
func TestMain(m *testing.M) {
	if role := os.Getenv("GVS_E2E_ROLE"); role != "" {
		if err := playRole(strings.Fields(role)); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	unmount, err := ensureBPFFS()
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
	}
	code := m.Run()
	unmount()
	if binDir != "" {
		os.RemoveAll(binDir) // the binaries built for this run
	}
	os.Exit(code)
}

// pattern is the byte at offset i of a bulk transfer.
func pattern(i int64) byte { return byte(i*7 + i>>8) }

func playRole(args []string) error {
	switch args[0] {
	case "serve": // serve ADDR NAME: TCP greets and echoes or streams; UDP answers
		addr, name := args[1], args[2]
		pc, err := net.ListenPacket("udp", addr)
		if err != nil {
			return err
		}
		go func() {
			buf := make([]byte, 65536)
			for {
				n, from, err := pc.ReadFrom(buf)
				if err != nil {
					return
				}
				pc.WriteTo([]byte(name+":"+string(buf[:n])), from)
			}
		}()
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			return err
		}
		for {
			c, err := ln.Accept()
			if err != nil {
				return err
			}
			go serveTCP(c, name)
		}
	case "hello": // hello ADDR: print the greeting
		c, err := net.DialTimeout("tcp", args[1], 5*time.Second)
		if err != nil {
			return err
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(5 * time.Second))
		line, err := bufio.NewReader(c).ReadString('\n')
		fmt.Print(line)
		return err
	case "udp": // udp ADDR MSG: print the answer
		c, err := net.Dial("udp", args[1])
		if err != nil {
			return err
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(5 * time.Second))
		c.Write([]byte(args[2]))
		buf := make([]byte, 65536)
		n, err := c.Read(buf)
		fmt.Println(string(buf[:n]))
		return err
	case "upload": // upload ADDR N: N bytes to the server, echoed back and checked (tun46_test.go)
		n, _ := strconv.ParseInt(args[2], 10, 64)
		return upload(args[1], n)
	case "many": // many ADDR N: N connections open at once, each echoes its own token
		n, _ := strconv.Atoi(args[2])
		return manyConns(args[1], n)
	case "refused": // refused ADDR: a datagram to a closed port comes back as ECONNREFUSED
		c, err := net.Dial("udp", args[1])
		if err != nil {
			return err
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(5 * time.Second))
		c.Write([]byte("anyone?"))
		_, err = c.Read(make([]byte, 100))
		if errors.Is(err, syscall.ECONNREFUSED) {
			fmt.Println("refused")
			return nil
		}
		return fmt.Errorf("read: %v, want connection refused", err)
	case "tries": // tries ADDR N TIMEOUT: N connections one after another, each given TIMEOUT to greet; print how many did
		n, _ := strconv.Atoi(args[2])
		timeout, err := time.ParseDuration(args[3])
		if err != nil {
			return err
		}
		ok := 0
		var errs []string
		for i := range n {
			c, err := net.DialTimeout("tcp", args[1], timeout)
			if err == nil {
				c.SetDeadline(time.Now().Add(timeout))
				_, err = bufio.NewReader(c).ReadString('\n')
				c.(*net.TCPConn).SetLinger(0)
				c.Close()
			}
			if err != nil {
				errs = append(errs, fmt.Sprintf("try %d: %v", i, err))
				continue
			}
			ok++
		}
		fmt.Println(ok)
		for _, e := range errs {
			fmt.Println(e)
		}
		return nil
	case "udpbig": // udpbig ADDR N: an N-byte datagram (fragmented beyond the MTU) must come back whole after the server's name; print the name
		n, _ := strconv.Atoi(args[2])
		c, err := net.Dial("udp", args[1])
		if err != nil {
			return err
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(5 * time.Second))
		msg := make([]byte, n)
		for i := range msg {
			msg[i] = pattern(int64(i))
		}
		if _, err := c.Write(msg); err != nil {
			return err
		}
		buf := make([]byte, 65536)
		k, err := c.Read(buf)
		if err != nil {
			return err
		}
		name, back, ok := strings.Cut(string(buf[:k]), ":")
		if !ok || back != string(msg) {
			return fmt.Errorf("answer of %d bytes is not the %d sent", k, n)
		}
		fmt.Println(name)
		return nil
	case "udpstream": // udpstream ADDR N INTERVAL: N datagrams from one socket, INTERVAL apart; print "answered NAMES..." (one name per answer)
		n, _ := strconv.Atoi(args[2])
		every, err := time.ParseDuration(args[3])
		if err != nil {
			return err
		}
		c, err := net.Dial("udp", args[1])
		if err != nil {
			return err
		}
		defer c.Close()
		var names []string
		buf := make([]byte, 2048)
		for i := range n {
			c.Write([]byte(fmt.Sprint(i)))
			c.SetReadDeadline(time.Now().Add(every))
			if k, err := c.Read(buf); err == nil {
				name, _, _ := strings.Cut(string(buf[:k]), ":")
				names = append(names, name)
				time.Sleep(every / 2)
			}
		}
		fmt.Println("answered", len(names), strings.Join(names, " "))
		return nil
	case "udpmany": // udpmany ADDR N: N flows (a socket each), each must be answered; print per-server counts
		n, _ := strconv.Atoi(args[2])
		return manyUDP(args[1], n)
	case "longconns": // longconns ADDR N SIZE RATE: N connections at once, each receiving SIZE bytes at RATE bytes/s, byte-checked; print "ok K N" and the failures
		n, _ := strconv.Atoi(args[2])
		size, _ := strconv.ParseInt(args[3], 10, 64)
		return longConns(args[1], n, size, args[4])
	case "bulk", "paced": // bulk ADDR N, paced ADDR N RATE: receive N bytes (at RATE bytes/s) and check every one
		n, _ := strconv.ParseInt(args[2], 10, 64)
		c, err := net.DialTimeout("tcp", args[1], 5*time.Second)
		if err != nil {
			return err
		}
		defer c.Close()
		r := bufio.NewReader(c)
		if _, err := r.ReadString('\n'); err != nil {
			return err
		}
		if args[0] == "paced" {
			fmt.Fprintf(c, "PACED %d %s\n", n, args[3])
		} else {
			fmt.Fprintf(c, "BULK %d\n", n)
		}
		buf := make([]byte, 64*1024)
		var got int64
		for got < n {
			c.SetReadDeadline(time.Now().Add(30 * time.Second))
			k, err := r.Read(buf)
			for i := 0; i < k; i++ {
				if buf[i] != pattern(got+int64(i)) {
					return fmt.Errorf("byte %d differs", got+int64(i))
				}
			}
			got += int64(k)
			if err != nil {
				return fmt.Errorf("after %d bytes: %w", got, err)
			}
		}
		fmt.Println(got)
		return nil
	case "sctp-send", "sctp-capture", "sctp-serve", "sctp-hello": // sctp_test.go
		return sctpRole(args)
	case "sctp6-send", "sctp6-capture": // sctp6_test.go
		return sctp6Role(args)
	}
	return fmt.Errorf("unknown role %q", args[0])
}

// longConns opens n TCP connections together, each asking for a paced
// transfer of size bytes at rate bytes/s and checking every byte; it
// prints "ok K N" (K completed byte-exact), the servers' names with their
// counts, then one line per failed connection.
func longConns(addr string, n int, size int64, rate string) error {
	type result struct {
		name string
		err  error
	}
	res := make(chan result, n)
	for i := range n {
		go func() {
			c, err := net.DialTimeout("tcp", addr, 10*time.Second)
			if err != nil {
				res <- result{err: fmt.Errorf("conn %d: %w", i, err)}
				return
			}
			defer c.Close()
			r := bufio.NewReader(c)
			c.SetReadDeadline(time.Now().Add(10 * time.Second))
			name, err := r.ReadString('\n')
			if err != nil {
				res <- result{err: fmt.Errorf("conn %d: greeting: %w", i, err)}
				return
			}
			fmt.Fprintf(c, "PACED %d %s\n", size, rate)
			buf := make([]byte, 64*1024)
			var got int64
			for got < size {
				c.SetReadDeadline(time.Now().Add(25 * time.Second))
				k, err := r.Read(buf)
				for j := 0; j < k; j++ {
					if buf[j] != pattern(got+int64(j)) {
						res <- result{err: fmt.Errorf("conn %d: byte %d differs", i, got+int64(j))}
						return
					}
				}
				got += int64(k)
				if err != nil && got < size {
					res <- result{err: fmt.Errorf("conn %d (%s): after %d bytes: %w", i, strings.TrimSpace(name), got, err)}
					return
				}
			}
			res <- result{name: strings.TrimSpace(name)}
		}()
		time.Sleep(2 * time.Millisecond)
	}
	ok, per := 0, map[string]int{}
	var fails []string
	for range n {
		r := <-res
		if r.err != nil {
			fails = append(fails, r.err.Error())
			continue
		}
		ok++
		per[r.name]++
	}
	fmt.Printf("ok %d %d\n", ok, n)
	printPerServer(per)
	for _, f := range fails {
		fmt.Println(f)
	}
	return nil
}

// manyConns opens n TCP connections, all of them open together: each
// reads the server's greeting, sends a token of its own and must get it
// back (a crossed translation would answer another connection's). Then
// all are reset (linger 0), so the director's entries go to CLOSE and
// expire in seconds rather than TIME_WAIT's two minutes. Prints how many
// connections each server took.
func manyConns(addr string, n int) error {
	conns := make([]net.Conn, n)
	names := make([]string, n)
	errs := make(chan error, n)
	sem := make(chan struct{}, 256)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			c, err := net.DialTimeout("tcp", addr, 10*time.Second)
			if err != nil {
				errs <- fmt.Errorf("connection %d: %w", i, err)
				return
			}
			conns[i] = c
			c.SetDeadline(time.Now().Add(60 * time.Second))
			r := bufio.NewReader(c)
			name, err := r.ReadString('\n')
			if err != nil {
				errs <- fmt.Errorf("connection %d greeting: %w", i, err)
				return
			}
			token := fmt.Sprintf("token-%d\n", i)
			if _, err := c.Write([]byte(token)); err != nil {
				errs <- err
				return
			}
			back, err := r.ReadString('\n')
			if err != nil || back != token {
				errs <- fmt.Errorf("connection %d: echo %q %v, want %q", i, back, err, token)
				return
			}
			names[i] = strings.TrimSpace(name)
		}()
	}
	wg.Wait()
	close(errs)
	for _, c := range conns {
		if c != nil {
			c.(*net.TCPConn).SetLinger(0)
			c.Close()
		}
	}
	var first error
	failed := 0
	for err := range errs {
		failed++
		if first == nil {
			first = err
		}
	}
	if first != nil {
		return fmt.Errorf("%d of %d connections failed; first: %w", failed, n, first)
	}
	per := map[string]int{}
	for _, name := range names {
		per[name]++
	}
	printPerServer(per)
	return nil
}

// printPerServer prints how many each server took, NAME=N by name.
func printPerServer(per map[string]int) {
	keys := make([]string, 0, len(per))
	for k := range per {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		fmt.Printf("%s=%d\n", k, per[k])
	}
}

// manyUDP sends one datagram from each of n sockets (n flows) and wants
// every one answered; prints how many each server answered.
func manyUDP(addr string, n int) error {
	per := map[string]int{}
	failed := 0
	var first error
	buf := make([]byte, 2048)
	for i := range n {
		c, err := net.Dial("udp", addr)
		if err == nil {
			c.SetDeadline(time.Now().Add(3 * time.Second))
			msg := fmt.Sprintf("flow-%d", i)
			if _, err = c.Write([]byte(msg)); err == nil {
				var k int
				if k, err = c.Read(buf); err == nil {
					name, back, _ := strings.Cut(string(buf[:k]), ":")
					if back != msg {
						err = fmt.Errorf("answer %q to %q", buf[:k], msg)
					}
					per[name]++
				}
			}
			c.Close()
		}
		if err != nil {
			failed++
			if first == nil {
				first = fmt.Errorf("flow %d: %w", i, err)
			}
		}
	}
	if first != nil {
		return fmt.Errorf("%d of %d flows failed; first: %w", failed, n, first)
	}
	printPerServer(per)
	return nil
}

func serveTCP(c net.Conn, name string) {
	defer c.Close()
	fmt.Fprintf(c, "%s\n", name)
	r := bufio.NewReader(c)
	line, err := r.ReadString('\n')
	if err != nil {
		return
	}
	var n, rate int64
	if _, err := fmt.Sscanf(line, "PACED %d %d", &n, &rate); err == nil {
		// PACED N RATE: N bytes at RATE bytes per second, in 16 KiB
		// writes, so that a transfer spans a failover.
		buf := make([]byte, 16*1024)
		start := time.Now()
		for off := int64(0); off < n; {
			k := min(int64(len(buf)), n-off)
			for i := int64(0); i < k; i++ {
				buf[i] = pattern(off + i)
			}
			if _, err := c.Write(buf[:k]); err != nil {
				return
			}
			off += k
			if ahead := time.Duration(off*int64(time.Second)/rate) - time.Since(start); ahead > 0 {
				time.Sleep(ahead)
			}
		}
		return
	}
	if _, err := fmt.Sscanf(line, "BULK %d", &n); err == nil {
		buf := make([]byte, 64*1024)
		for off := int64(0); off < n; {
			k := min(int64(len(buf)), n-off)
			for i := int64(0); i < k; i++ {
				buf[i] = pattern(off + i)
			}
			if _, err := c.Write(buf[:k]); err != nil {
				return
			}
			off += k
			// Pace the stream a little so a transfer spans a daemon restart.
			if off%(4<<20) == 0 {
				time.Sleep(20 * time.Millisecond)
			}
		}
		return
	}
	c.Write([]byte(line))
	io.Copy(c, r)
}

// bulk starts a byte-checked transfer of size bytes from namespace ns to
// addr (role bulk) in the background; wait returns its output (the
// count received) and error.
func (tp *topo) bulk(ns, addr, size string) (wait func() (string, error)) {
	type result struct {
		out string
		err error
	}
	done := make(chan result, 1)
	go func() {
		out, err := tp.role(ns, "bulk", addr, size)
		done <- result{out, err}
	}()
	return func() (string, error) { r := <-done; return r.out, r.err }
}

// role runs the test binary in namespace ns in the given role and
// returns its output.
func (tp *topo) role(ns string, args ...string) (string, error) {
	exe, err := os.Executable()
	if err != nil {
		return "", err
	}
	return tp.run(ns, "env", "GVS_E2E_ROLE="+strings.Join(args, " "), exe)
}

// serve starts a role server in ns that lives until the test ends.
func (tp *topo) serve(ns, addr, name string) {
	exe, _ := os.Executable()
	tp.start(ns, "env", "GVS_E2E_ROLE=serve "+addr+" "+name, exe)
}
