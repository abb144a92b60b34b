/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The programs xdp_gvs tail-calls: IPv6 (xdp_gvs6, v6.h) at GVS_PROG_V6.
 * Filled by the loader (bpf.Objects.LinkPrograms, the engine); an empty
 * slot makes the tail call fail and the packet pass.
 */
#ifndef GVS_PROGS_H
#define GVS_PROGS_H

#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#define GVS_PROG_V6    0
#define GVS_PROG_SLOTS 4

struct {
	__uint(type, BPF_MAP_TYPE_PROG_ARRAY);
	__uint(max_entries, GVS_PROG_SLOTS);
	__type(key, __u32);
	__type(value, __u32);
} progs SEC(".maps");

#endif
