package proxy

import (
	"encoding/binary"
	"net"
	"net/netip"
	"strconv"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// mmsghdr is struct mmsghdr of <sys/socket.h>: Go pads it as C does.
type mmsghdr struct {
	hdr unix.Msghdr
	n   uint32
}

// batch receives up to len(bufs) datagrams with one recvmmsg.
type batch struct {
	msgs  []mmsghdr
	iovs  []unix.Iovec
	names []unix.RawSockaddrInet6 // room for either family
	bufs  [][]byte
}

func newBatch(slots, size int) *batch {
	b := &batch{msgs: make([]mmsghdr, slots), iovs: make([]unix.Iovec, slots),
		names: make([]unix.RawSockaddrInet6, slots), bufs: make([][]byte, slots)}
	for i := range slots {
		b.bufs[i] = make([]byte, size)
		b.iovs[i].Base = &b.bufs[i][0]
		b.iovs[i].SetLen(size)
		b.msgs[i].hdr.Iov = &b.iovs[i]
		b.msgs[i].hdr.SetIovlen(1)
		b.msgs[i].hdr.Name = (*byte)(unsafe.Pointer(&b.names[i]))
	}
	return b
}

// read waits for datagrams and returns how many it received.
func (b *batch) read(rc syscall.RawConn) (int, error) {
	for i := range b.msgs {
		b.msgs[i].hdr.Namelen = unix.SizeofSockaddrInet6
		b.msgs[i].hdr.Flags = 0
	}
	var n int
	var errno syscall.Errno
	err := rc.Read(func(fd uintptr) bool {
		for {
			r, _, e := unix.Syscall6(unix.SYS_RECVMMSG, fd, uintptr(unsafe.Pointer(&b.msgs[0])), uintptr(len(b.msgs)), 0, 0, 0)
			n, errno = int(r), e
			if e != unix.EINTR {
				break
			}
		}
		return errno != unix.EAGAIN
	})
	if err != nil {
		return 0, err
	}
	if errno != 0 {
		return 0, errno
	}
	return n, nil
}

// datagram returns the i-th datagram read and its source.
func (b *batch) datagram(i int) ([]byte, netip.AddrPort) {
	m := &b.msgs[i]
	name := &b.names[i]
	var src netip.AddrPort
	switch name.Family {
	case unix.AF_INET:
		sa := (*unix.RawSockaddrInet4)(unsafe.Pointer(name))
		src = netip.AddrPortFrom(netip.AddrFrom4(sa.Addr), port(sa.Port))
	case unix.AF_INET6:
		a := netip.AddrFrom16(name.Addr).Unmap()
		if name.Scope_id != 0 {
			// A link-local client: its zone as Go's net names it (only
			// these pay for the look-up).
			zone := strconv.Itoa(int(name.Scope_id))
			if ifi, err := net.InterfaceByIndex(int(name.Scope_id)); err == nil {
				zone = ifi.Name
			}
			a = a.WithZone(zone)
		}
		src = netip.AddrPortFrom(a, port(name.Port))
	}
	return b.bufs[i][:m.n], src
}

// port converts a port in network byte order as the kernel stores it.
func port(p uint16) uint16 {
	var b [2]byte
	*(*uint16)(unsafe.Pointer(&b[0])) = p
	return binary.BigEndian.Uint16(b[:])
}
