package sched

import (
	"encoding/binary"
	"math/bits"
	"net/netip"
)

// foldAddr is the kernel's addr_fold: the IPv4 address, or the XOR of the
// four 32-bit words of an IPv6 address, in host order (after ntohl).
func foldAddr(a netip.Addr) uint32 {
	if a.Is4() {
		b := a.As4()
		return binary.BigEndian.Uint32(b[:])
	}
	b := a.As16()
	return binary.BigEndian.Uint32(b[0:]) ^ binary.BigEndian.Uint32(b[4:]) ^
		binary.BigEndian.Uint32(b[8:]) ^ binary.BigEndian.Uint32(b[12:])
}

// hash32 is the kernel's hash_32 (include/linux/hash.h): multiply by
// GOLDEN_RATIO_32 and keep the top bits.
func hash32(val uint32, nbits uint) uint32 {
	return (val * 0x61C88647) >> (32 - nbits)
}

// hsipKey is an hsiphash_key_t on a 64-bit kernel: two unsigned longs.
type hsipKey [2]uint64

// hsiphash32 is the kernel's hsiphash() of one 4-byte value on a 64-bit
// kernel, where it is SipHash-1-3 (lib/siphash.c) truncated to 32 bits.
func hsiphash32(v uint32, k hsipKey) uint32 {
	v0 := uint64(0x736f6d6570736575) ^ k[0]
	v1 := uint64(0x646f72616e646f6d) ^ k[1]
	v2 := uint64(0x6c7967656e657261) ^ k[0]
	v3 := uint64(0x7465646279746573) ^ k[1]
	round := func() {
		v0 += v1
		v1 = bits.RotateLeft64(v1, 13)
		v1 ^= v0
		v0 = bits.RotateLeft64(v0, 32)
		v2 += v3
		v3 = bits.RotateLeft64(v3, 16)
		v3 ^= v2
		v0 += v3
		v3 = bits.RotateLeft64(v3, 21)
		v3 ^= v0
		v2 += v1
		v1 = bits.RotateLeft64(v1, 17)
		v1 ^= v2
		v2 = bits.RotateLeft64(v2, 32)
	}
	// Four bytes of input: no full 8-byte block; the tail word carries the
	// length in its top byte and the value (little-endian) below.
	b := uint64(4)<<56 | uint64(v)
	v3 ^= b
	round()
	v0 ^= b
	v2 ^= 0xff
	round()
	round()
	round()
	return uint32((v0 ^ v1) ^ (v2 ^ v3))
}
