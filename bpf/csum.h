/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Internet checksum helpers (RFC 1071) for fixed-size buffers. */
#ifndef GVS_CSUM_H
#define GVS_CSUM_H

#include <linux/types.h>
#include <bpf/bpf_helpers.h>

/* A BPF-to-BPF call: its locals live only during the call, which keeps
 * the summed stack of the packet path under 512 bytes. */
#define __gvs_subprog static __attribute__((noinline))

static __always_inline __u16 csum_fold32(__u32 s)
{
	s = (s & 0xffff) + (s >> 16);
	s = (s & 0xffff) + (s >> 16);
	return (__u16)~s;
}

/* Sum of the 16-bit words of a buffer of n words (n a constant). */
static __always_inline __u32 csum_words(const __u16 *w, int n)
{
	__u32 s = 0;
#pragma unroll
	for (int i = 0; i < n; i++)
		s += w[i];
	return s;
}

/* Incremental update (RFC 1624: HC' = ~(~HC + ~m + m')). A diff is the
 * one's complement sum of ~old and new, in the packet's own byte order;
 * csum_replace applies the sum of diffs to a checksum field. */
static __always_inline __u32 csum_diff32(__u32 old, __u32 new)
{
	return (~old & 0xffff) + (~old >> 16) + (new & 0xffff) + (new >> 16);
}

static __always_inline __u32 csum_diff16(__u16 old, __u16 new)
{
	return (__u16)~old + (__u32)new;
}

static __always_inline __u16 csum_replace(__u16 check, __u32 diff)
{
	return csum_fold32((__u16)~check + diff);
}

#endif
