package pktgen

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"unsafe"

	"golang.org/x/sys/unix"
)

// packetBatch is the frames of one sendmmsg call.
const packetBatch = 64

// sendPacket writes g's frames to an AF_PACKET socket bound to ifindex
// (of the calling thread's namespace), packetBatch at a time, until ctx
// ends or g.count frames are sent.
func sendPacket(ctx context.Context, ifindex int, g *gen) (uint64, error) {
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, 0) // protocol 0: receives nothing
	if err != nil {
		return 0, fmt.Errorf("pktgen: AF_PACKET socket: %w", err)
	}
	defer unix.Close(fd)
	if err := unix.Bind(fd, &unix.SockaddrLinklayer{Ifindex: ifindex}); err != nil {
		return 0, fmt.Errorf("pktgen: binding to interface %d: %w", ifindex, err)
	}
	// Straight to the driver, as trafgen does (a veth has no queue).
	_ = unix.SetsockoptInt(fd, unix.SOL_PACKET, unix.PACKET_QDISC_BYPASS, 1)

	bufs := make([]byte, packetBatch*FrameLen)
	iovs := make([]unix.Iovec, packetBatch)
	msgs := make([]unix.Mmsghdr, packetBatch)
	for i := range msgs {
		iovs[i].Base = &bufs[i*FrameLen]
		iovs[i].SetLen(FrameLen)
		msgs[i].Hdr.Iov = &iovs[i]
		msgs[i].Hdr.SetIovlen(1)
	}
	r := newRNG()
	var sent, n uint64
	for ctx.Err() == nil && (g.count == 0 || sent < g.count) {
		k := uint64(packetBatch)
		if g.count > 0 {
			k = min(k, g.count-sent)
		}
		for i := range k {
			g.fill(bufs[i*FrameLen:(i+1)*FrameLen], n+i, r)
		}
		done := uint64(0)
		for done < k {
			m, _, errno := unix.Syscall6(unix.SYS_SENDMMSG, uintptr(fd), uintptr(unsafe.Pointer(&msgs[done])), uintptr(k-done), 0, 0, 0)
			if errno != 0 {
				if errors.Is(errno, unix.EINTR) || errors.Is(errno, unix.ENOBUFS) || errors.Is(errno, unix.EAGAIN) {
					if ctx.Err() != nil {
						break
					}
					continue
				}
				return sent, fmt.Errorf("pktgen: sendmmsg: %w", errno)
			}
			done += uint64(m)
		}
		sent += done
		n += k
	}
	runtime.KeepAlive(bufs)
	runtime.KeepAlive(iovs)
	return sent, nil
}
