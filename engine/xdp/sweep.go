package xdp

import (
	"errors"
	"math/bits"
	"time"

	"github.com/cilium/ebpf"

	"gvs/bpf"
)

// templateGrace is how long a template that still controls connections
// lives on after its timeout (ip_vs_conn_expire re-arms it for 60 s).
const templateGrace = 60 * time.Second

// sweep expires connections and templates whose time is up, following the
// ownership rule of bpf/conn.h: an entry is taken with lookup-and-delete;
// one a packet refreshed meanwhile goes back; whoever deleted unbinds.
func (e *Engine) sweep() error {
	t := now()
	var k bpf.ConnKey
	var c bpf.Conn
	var expired []bpf.ConnKey
	it := e.objs.Conns.Iterate()
	for it.Next(&k, &c) {
		if c.Expires <= t {
			expired = append(expired, k)
		}
	}
	if err := it.Err(); err != nil {
		return err
	}
	for _, key := range expired {
		var got bpf.Conn
		if err := e.objs.Conns.LookupAndDelete(&key, &got); err != nil {
			continue // BPF took it first
		}
		if got.Expires > now() {
			if err := e.objs.Conns.Update(&key, &got, ebpf.UpdateNoExist); err == nil {
				continue
			}
		}
		e.dmem.unbind(got.Dest, false, got.Flags&connInactive != 0)
		if got.Flags&connControlled != 0 {
			e.releaseTemplate(key, got.Svc)
		}
	}

	var tk bpf.ConnKey
	var tv bpf.Template
	var due []bpf.ConnKey
	tit := e.objs.Templates.Iterate()
	for tit.Next(&tk, &tv) {
		if tv.Expires <= t {
			due = append(due, tk)
		}
	}
	if err := tit.Err(); err != nil {
		return err
	}
	for _, key := range due {
		var got bpf.Template
		if err := e.objs.Templates.LookupAndDelete(&key, &got); err != nil {
			continue
		}
		if got.Expires > now() || got.N_control > 0 {
			if got.Expires <= now() {
				got.Expires = now() + uint64(templateGrace)
				got.Timeout = uint32(templateGrace / time.Second)
			}
			if err := e.objs.Templates.Update(&key, &got, ebpf.UpdateNoExist); err == nil {
				continue
			}
		}
		e.dmem.unbind(got.Dest, true, false)
	}
	return nil
}

// Connection flags of gvs.h.
const (
	connInactive   = 0x1
	connControlled = 0x4
)

// releaseTemplate drops a controlled connection's hold on its template,
// found by key as BPF finds it: masked client, cport 0, the virtual
// address, and the virtual port unless the service is port-zero.
func (e *Engine) releaseTemplate(k bpf.ConnKey, svc uint32) {
	e.mu.Lock()
	meta, ok := e.svcMeta[svc]
	e.mu.Unlock()
	if !ok {
		return
	}
	tk := k
	tk.Cport = 0
	tk.Caddr = [4]uint32{}
	if k.Af == 4 {
		tk.Caddr[0] = k.Caddr[0] & bits.ReverseBytes32(meta.netmask)
	}
	if meta.portZero {
		tk.Vport = 0
	}
	var tv bpf.Template
	if err := e.objs.Templates.Lookup(&tk, &tv); err != nil {
		return
	}
	// A read-modify-write: a new connection that BPF adds to this template
	// in between is lost from n_control, which only shortens the template's
	// extra life (BPF keeps the atomic increment on its side).
	tv.N_control--
	if err := e.objs.Templates.Update(&tk, &tv, ebpf.UpdateExist); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
		e.log.Warn("template release", "err", err)
	}
}
