#!/usr/bin/env python3
"""Independent reference ("oracle") for three Linux IPVS hashing schedulers.

Regenerate the golden file from the repository root with:

    python3 sched/testdata/oracle/ipvs_hash_oracle.py > sched/testdata/hash_golden.json

Only the Python 3 standard library is used.  This was written from the Linux
kernel sources alone (no Go code was consulted).  It models the behaviour of
the kernel as built for x86_64 (little-endian, BITS_PER_LONG == 64, no
CONFIG_HAVE_ARCH_HASH, CONFIG_IP_VS_IPV6=y, default table sizes).

Sources read: a recent mainline tree (mirror Kingxukai/linux, commits
9b44fff655e2 / 0291023e7330) for ip_vs_dh.c, ip_vs_sh.c, ip_vs_mh.c,
include/linux/hash.h, include/linux/siphash.h, lib/siphash.c; the hsiphash
vectors from lib/tests/siphash_kunit.c.  NOTE: older kernels hashed dh/sh
with (ntohl(fold) * 2654435761UL) & 255 instead of hash_32(), so dh/sh
bucket numbers are kernel-version dependent; this file models hash_32().

What each part mirrors
----------------------
* hash_32()                 include/linux/hash.h: hash_32(val, bits) =
                            (u32)(val * GOLDEN_RATIO_32) >> (32 - bits),
                            GOLDEN_RATIO_32 = 0x61C88647.
* hsiphash()                lib/siphash.c + include/linux/siphash.h, the
                            BITS_PER_LONG == 64 branch: "HalfSipHash" is really
                            SipHash-1-3 with a key of two u64 (unsigned long),
                            64-bit state, result truncated to u32.
                            Checked against test_vectors_hsiphash (64-bit
                            table) from lib/tests/siphash_kunit.c.
* gcd()                     lib/math/gcd.c (plain greatest common divisor).
* fls()                     include/asm-generic/bitops/fls.h (1-based index of
                            the most significant set bit, fls(0) == 0).
* dh                        net/netfilter/ipvs/ip_vs_dh.c:
                            ip_vs_dh_hashkey, ip_vs_dh_reassign, ip_vs_dh_get,
                            the availability test in ip_vs_dh_schedule.
* sh                        net/netfilter/ipvs/ip_vs_sh.c:
                            ip_vs_sh_hashkey, ip_vs_sh_reassign, ip_vs_sh_get,
                            ip_vs_sh_get_fallback, is_unavailable,
                            ip_vs_sh_schedule (port only with the sh-port flag).
* mh                        net/netfilter/ipvs/ip_vs_mh.c:
                            generate_hash_secret, ip_vs_mh_hashkey,
                            ip_vs_mh_gcd_weight, ip_vs_mh_shift_weight,
                            ip_vs_mh_permutate, ip_vs_mh_populate,
                            ip_vs_mh_get, ip_vs_mh_get_fallback, is_unavailable,
                            ip_vs_mh_schedule (port only with the mh-port flag).
                            Two builds are modelled:
                              CONFIG_IP_VS_MH_TAB_INDEX=12 (default): size 4093,
                                IP_VS_MH_TAB_BITS = 12/2 = 6
                              CONFIG_IP_VS_MH_TAB_INDEX=8:            size 251,
                                IP_VS_MH_TAB_BITS = 8/2 = 4
                            (IP_VS_MH_TAB_BITS is CONFIG_IP_VS_MH_TAB_INDEX / 2,
                            and it only feeds the rshift computation.)

Kernel facts worth knowing (all from the sources above)
-------------------------------------------------------
* Address folding (dh, sh, mh): IPv4 uses ntohl(addr); IPv6 XORs the four
  32-bit words as stored (network order) and then applies ntohl, which equals
  the XOR of the four big-endian word values.
* dh: hash_32(ntohl(fold), 8).  The table ignores weights: bucket i gets list
  entry i mod n.  Lookup returns NULL if the dest is not AVAILABLE (all listed
  dests are assumed available), has weight <= 0, or is overloaded.  dh has no
  fallback and no port.
* sh: key = (offset + hash_32(ntohs(port) + ntohl(fold), 8)) & 255, the sum
  port+addr is u32 arithmetic (wraps).  The table walks the list, giving each
  dest `weight` consecutive buckets, BUT the move-on test is
  "++d_count >= weight", so a weight-0 dest still gets exactly ONE bucket
  (same as weight 1).  The pattern repeats until all 256 buckets are filled.
  ip_vs_sh_get: NULL if weight <= 0 or overloaded.
  ip_vs_sh_get_fallback: ihash = key(offset 0); if that bucket's dest is
  usable return it; otherwise for offset = 0..255:
  roffset = (offset + ihash) % 256 and bucket = key(roffset), i.e.
  bucket = (offset + 2*ihash) & 255 -- the first probe is 2*ihash, NOT ihash+1.
  It returns the first usable dest, NULL if none (or an empty bucket).
* mh: v (u32) = offset + ntohs(port) + ntohl(fold) (wrapping), hashed as the 4
  little-endian bytes of v: hsiphash(&v, 4, key).  Secrets are constants:
  hash1 = {2654435761, 2654435761}, hash2 = {2654446892, 2654446892}.
  Per dest (using the dest's own addr/port, offset 0):
    offset = hsiphash(hash1) % M, skip = hsiphash(hash2) % (M - 1) + 1,
    turns  = ((last_weight / gcd) >> rshift) ?: (last_weight != 0)
  where gcd is over all last_weight > 0 and
  rshift = max(0, fls(max_last_weight / gcd) - IP_VS_MH_TAB_BITS).
  Populate: repeated passes over the list; a dest with turns < 1 is skipped;
  otherwise it claims `turns` consecutive slots, each time starting at its
  current perm and adding skip (mod M) until a free slot is found (perm is
  not advanced after a successful claim).  Stops when all M slots are full.
  If gcd < 1 (no dest with last_weight > 0) the table is all NULL.
  Population uses last_weight, so a quiesced dest (weight 0, last_weight w)
  still owns slots; lookups treat it as unavailable (weight <= 0).
  ip_vs_mh_get: bucket = hsiphash(hash1, v with offset 0) % M.
  ip_vs_mh_get_fallback: ihash as above; if unusable then for offset 0..M-1:
  roffset = (offset + ihash) % M, bucket = hsiphash(hash1, v with offset
  roffset) % M (a re-hash, not a table walk); first usable dest wins, NULL
  on an empty slot or after M tries.

JSON output shape
-----------------
{
  "generator": "...", "notes": [...],
  "hash32_checks": [{"val": u32, "bits": int, "hash": u32}, ...],
  "hsiphash_checks": [{"key": [k0, k1], "v": u32, "hash": u32}, ...],
     (hsiphash of the 4 LE bytes of v, handy for unit-testing the hash)
  "scenarios": [
    {
      "name": "S1", "af": 4 | 6, "extra": false,
      "description": "...",
      "dests": [{"addr": "198.18.1.1", "port": 80, "weight": 1,
                 "last_weight": 1, "overloaded": false}, ...],   # list order
      "dh_table":     [256 x dest index or null],
      "sh_table":     [256 x dest index or null],
      "mh_251":  {"tab_bits": 4, "gcd": g, "rshift": r,
                  "setup": [{"offset": o, "skip": s, "turns": t}, ...]},
      "mh_4093": {... same, tab_bits 6 ...},
      "mh_table_251":  [251 x dest index or null],
      "mh_table_4093": [4093 x dest index or null],
      "lookups": [
        {"addr": "198.18.0.0", "port": 0,
         "dh": i|null,            # dh by destination address = addr
         "dh_bucket": b,
         "sh": i|null,            # sh, no flags (port forced to 0)
         "sh_fb": i|null,         # sh, fallback flag
         "sh_port": i|null,       # sh, sh-port flag (port = given port)
         "sh_port_fb": i|null,    # sh, sh-port + fallback flags
         "sh_bucket": b,          # ip_vs_sh_hashkey(addr, port 0, offset 0)
         "sh_port_bucket": b,     # ip_vs_sh_hashkey(addr, port,   offset 0)
         "mh": ..., "mh_fb": ..., "mh_port": ..., "mh_port_fb": ...,  # M=4093
         "mh_bucket": b,          # M=4093, port 0, offset 0
         "mh_port_bucket": b,     # M=4093, port,   offset 0
         "mh251": ..., "mh251_fb": ..., "mh251_port": ..., "mh251_port_fb": ...,
         "mh251_bucket": b, "mh251_port_bucket": b},
        ...]
    }, ...]
}
Dest indices refer to the scenario's "dests" list (0 = list head).
Scenarios marked "extra": true (S7, S8) were added beyond the original brief:
S7 genuinely exercises the mh rshift (S6's weights reduce to 1:3 via gcd, so
S6 has rshift 0), S8 has only never-weighted dests (empty mh tables).
"""

import ipaddress
import json
import sys

M32 = 0xFFFFFFFF
M64 = 0xFFFFFFFFFFFFFFFF

# ---------------------------------------------------------------------------
# include/linux/hash.h
# ---------------------------------------------------------------------------
GOLDEN_RATIO_32 = 0x61C88647


def hash_32(val, bits):
    return ((val * GOLDEN_RATIO_32) & M32) >> (32 - bits)


# ---------------------------------------------------------------------------
# lib/siphash.c, BITS_PER_LONG == 64 hsiphash (SipHash-1-3, u32 result)
# ---------------------------------------------------------------------------
SIP_C0 = 0x736F6D6570736575
SIP_C1 = 0x646F72616E646F6D
SIP_C2 = 0x6C7967656E657261
SIP_C3 = 0x7465646279746573


def _rol64(x, r):
    return ((x << r) | (x >> (64 - r))) & M64


def _sipround(v0, v1, v2, v3):
    v0 = (v0 + v1) & M64
    v1 = _rol64(v1, 13) ^ v0
    v0 = _rol64(v0, 32)
    v2 = (v2 + v3) & M64
    v3 = _rol64(v3, 16) ^ v2
    v0 = (v0 + v3) & M64
    v3 = _rol64(v3, 21) ^ v0
    v2 = (v2 + v1) & M64
    v1 = _rol64(v1, 17) ^ v2
    v2 = _rol64(v2, 32)
    return v0, v1, v2, v3


def hsiphash(data, key):
    """hsiphash(data, len(data), key) on a 64-bit kernel; key = (k0, k1)."""
    k0, k1 = key
    n = len(data)
    v0 = SIP_C0 ^ k0
    v1 = SIP_C1 ^ k1
    v2 = SIP_C2 ^ k0
    v3 = SIP_C3 ^ k1
    b = (n << 56) & M64
    full = n - (n % 8)
    for i in range(0, full, 8):
        m = int.from_bytes(data[i:i + 8], "little")
        v3 ^= m
        v0, v1, v2, v3 = _sipround(v0, v1, v2, v3)  # 1 compression round
        v0 ^= m
    b |= int.from_bytes(data[full:], "little") if n > full else 0
    v3 ^= b
    v0, v1, v2, v3 = _sipround(v0, v1, v2, v3)
    v0 ^= b
    v2 ^= 0xFF
    for _ in range(3):  # 3 finalization rounds
        v0, v1, v2, v3 = _sipround(v0, v1, v2, v3)
    return (v0 ^ v1 ^ v2 ^ v3) & M32


def hsiphash_u32(v, key):
    """hsiphash(&v, sizeof(v), key) for an unsigned int v on little-endian."""
    return hsiphash((v & M32).to_bytes(4, "little"), key)


# ---------------------------------------------------------------------------
# lib/math/gcd.c, fls
# ---------------------------------------------------------------------------
def gcd(a, b):
    while b:
        a, b = b, a % b
    return a


def fls(x):
    return x.bit_length() if x > 0 else 0


# ---------------------------------------------------------------------------
# Address helpers
# ---------------------------------------------------------------------------
def addr_fold(af, addr):
    """ntohl(addr_fold) as computed in ip_vs_{dh,sh,mh}_hashkey."""
    raw = ipaddress.ip_address(addr).packed
    if af == 4:
        assert len(raw) == 4
        return int.from_bytes(raw, "big")
    assert af == 6 and len(raw) == 16
    f = 0
    for i in range(0, 16, 4):
        f ^= int.from_bytes(raw[i:i + 4], "big")
    return f


class Dest:
    def __init__(self, addr, port, weight, last_weight, overloaded):
        self.addr = addr
        self.port = port
        self.weight = weight
        self.last_weight = last_weight
        self.overloaded = overloaded

    def unavailable(self):
        # is_unavailable() in ip_vs_sh.c / ip_vs_mh.c; also the weight and
        # overload part of ip_vs_dh_schedule (AVAILABLE flag assumed set).
        return self.weight <= 0 or self.overloaded

    def to_json(self):
        return {"addr": self.addr, "port": self.port, "weight": self.weight,
                "last_weight": self.last_weight,
                "overloaded": self.overloaded}


def _usable(dests, idx):
    return idx is not None and not dests[idx].unavailable()


# ---------------------------------------------------------------------------
# dh: net/netfilter/ipvs/ip_vs_dh.c
# ---------------------------------------------------------------------------
DH_TAB_BITS = 8
DH_TAB_SIZE = 1 << DH_TAB_BITS


def dh_hashkey(af, addr):
    return hash_32(addr_fold(af, addr), DH_TAB_BITS)


def dh_reassign(dests):
    if not dests:
        return [None] * DH_TAB_SIZE
    return [i % len(dests) for i in range(DH_TAB_SIZE)]


def dh_schedule(dests, table, af, daddr):
    idx = table[dh_hashkey(af, daddr)]
    return idx if _usable(dests, idx) else None


# ---------------------------------------------------------------------------
# sh: net/netfilter/ipvs/ip_vs_sh.c
# ---------------------------------------------------------------------------
SH_TAB_BITS = 8
SH_TAB_SIZE = 1 << SH_TAB_BITS
SH_TAB_MASK = SH_TAB_SIZE - 1


def sh_hashkey(af, addr, port, offset):
    v = (port + addr_fold(af, addr)) & M32
    return ((offset + hash_32(v, SH_TAB_BITS)) & M32) & SH_TAB_MASK


def sh_reassign(dests):
    table = [None] * SH_TAB_SIZE
    if not dests:
        return table
    p = 0
    d_count = 0
    for i in range(SH_TAB_SIZE):
        table[i] = p
        d_count += 1
        if d_count >= dests[p].weight:  # weight 0 => still one bucket
            p = (p + 1) % len(dests)
            d_count = 0
    return table


def sh_get(dests, table, af, addr, port):
    idx = table[sh_hashkey(af, addr, port, 0)]
    return idx if _usable(dests, idx) else None


def sh_get_fallback(dests, table, af, addr, port):
    ihash = sh_hashkey(af, addr, port, 0)
    idx = table[ihash]
    if idx is None:
        return None
    if not dests[idx].unavailable():
        return idx
    for offset in range(SH_TAB_SIZE):
        roffset = (offset + ihash) % SH_TAB_SIZE
        h = sh_hashkey(af, addr, port, roffset)
        idx = table[h]
        if idx is None:
            break
        if not dests[idx].unavailable():
            return idx
    return None


# ---------------------------------------------------------------------------
# mh: net/netfilter/ipvs/ip_vs_mh.c
# ---------------------------------------------------------------------------
MH_PRIMES = [251, 509, 1021, 2039, 4093, 8191, 16381, 32749, 65521, 131071]

# generate_hash_secret(): hsiphash_key_t is two unsigned longs.
MH_HASH1 = (2654435761, 2654435761)
MH_HASH2 = (2654446892, 2654446892)


class MhConfig:
    def __init__(self, config_tab_index):
        self.config_tab_index = config_tab_index
        self.tab_bits = config_tab_index // 2          # IP_VS_MH_TAB_BITS
        self.size = MH_PRIMES[config_tab_index - 8]    # IP_VS_MH_TAB_SIZE


MH_DEFAULT = MhConfig(12)   # 4093
MH_SMALL = MhConfig(8)      # 251


def mh_hashkey(af, addr, port, key, offset):
    v = (offset + port + addr_fold(af, addr)) & M32
    return hsiphash_u32(v, key)


def mh_gcd_weight(dests):
    g = 0
    for d in dests:
        w = d.last_weight
        if w > 0:
            g = gcd(w, g) if g > 0 else w
    return g


def mh_shift_weight(dests, g, cfg):
    if g < 1:
        return 0
    weight = 0
    for d in dests:
        if d.last_weight > weight:
            weight = d.last_weight
    mw = weight // g
    shift = fls(mw) - cfg.tab_bits
    return shift if shift >= 0 else 0


def mh_build(dests, af, cfg):
    """Returns (table, info) for ip_vs_mh_init_svc/ip_vs_mh_dest_changed."""
    M = cfg.size
    assert len(dests) <= M
    g = mh_gcd_weight(dests)
    rshift = mh_shift_weight(dests, g, cfg)
    info = {"tab_bits": cfg.tab_bits, "gcd": g, "rshift": rshift, "setup": []}
    table = [None] * M
    if g < 1:
        return table, info
    # ip_vs_mh_permutate
    setup = []
    for d in dests:
        off = mh_hashkey(af, d.addr, d.port, MH_HASH1, 0) % M
        skip = mh_hashkey(af, d.addr, d.port, MH_HASH2, 0) % (M - 1) + 1
        lw = d.last_weight
        turns = (lw // g) >> rshift   # lw >= 0 here, so C '/' == '//'
        if turns == 0:
            turns = 1 if lw != 0 else 0
        setup.append({"offset": off, "skip": skip, "perm": off,
                      "turns": turns})
    info["setup"] = [{"offset": s["offset"], "skip": s["skip"],
                      "turns": s["turns"]} for s in setup]
    # ip_vs_mh_populate
    taken = [False] * M
    n = 0
    while n < M:
        for i, s in enumerate(setup):
            if s["turns"] < 1:
                continue
            for _ in range(s["turns"]):
                c = s["perm"]
                while taken[c]:
                    s["perm"] += s["skip"]
                    if s["perm"] >= M:
                        s["perm"] -= M
                    c = s["perm"]
                taken[c] = True
                table[c] = i
                n += 1
                if n == M:
                    return table, info
    return table, info


def mh_bucket(af, addr, port, cfg):
    return mh_hashkey(af, addr, port, MH_HASH1, 0) % cfg.size


def mh_get(dests, table, af, addr, port, cfg):
    idx = table[mh_bucket(af, addr, port, cfg)]
    return idx if _usable(dests, idx) else None


def mh_get_fallback(dests, table, af, addr, port, cfg):
    M = cfg.size
    ihash = mh_bucket(af, addr, port, cfg)
    idx = table[ihash]
    if idx is None:
        return None
    if not dests[idx].unavailable():
        return idx
    for offset in range(M):
        roffset = (offset + ihash) % M
        h = mh_hashkey(af, addr, port, MH_HASH1, roffset) % M
        idx = table[h]
        if idx is None:
            break
        if not dests[idx].unavailable():
            return idx
    return None


# ---------------------------------------------------------------------------
# Scenarios
# ---------------------------------------------------------------------------
def D(addr, port, weight, last_weight=None, overloaded=False):
    if last_weight is None:
        last_weight = weight
    return Dest(addr, port, weight, last_weight, overloaded)


SCENARIOS = [
    ("S1", 4, False, "three equal IPv4 dests",
     [D("198.18.1.1", 80, 1), D("198.18.1.2", 80, 1), D("198.18.1.3", 80, 1)]),
    ("S2", 4, False, "weighted IPv4 dests, mixed ports",
     [D("198.18.1.1", 80, 3), D("198.18.1.2", 80, 1),
      D("198.18.1.3", 8080, 2)]),
    ("S3", 4, False,
     "overloaded dest, quiesced dest (w0 lw4), never-weighted dest (w0 lw0)",
     [D("198.18.1.1", 80, 2, 2, True), D("198.18.1.2", 80, 0, 4),
      D("198.18.1.3", 80, 5), D("198.18.1.4", 80, 0, 0)]),
    ("S4", 6, False, "IPv6 dests",
     [D("2001:db8::1", 443, 1), D("2001:db8::2", 443, 2),
      D("2001:db8:0:1::3", 443, 1)]),
    ("S5", 4, False, "20 dests with weights 1..20",
     [D("198.18.2.%d" % i, 80, i) for i in range(1, 21)]),
    ("S6", 4, False,
     "large weights 100000/300000 (gcd reduces them to 1:3, rshift stays 0)",
     [D("198.18.1.1", 80, 100000), D("198.18.1.2", 80, 300000)]),
    ("S7", 4, True,
     "extra: coprime large weights so mh rshift > 0, plus a small weight "
     "whose shifted turns are 0 (uses the '?: (lw != 0)' branch)",
     [D("198.18.1.1", 80, 100000), D("198.18.1.2", 80, 300001),
      D("198.18.1.3", 80, 5)]),
    ("S8", 4, True,
     "extra: all dests added with weight 0 and never weighted "
     "(mh gcd 0 => empty mh tables; sh/dh tables filled but unusable)",
     [D("198.18.1.1", 80, 0, 0), D("198.18.1.2", 80, 0, 0)]),
]

PORTS = [0, 1, 1024, 40000, 65535]


def lookup_addrs(af):
    if af == 4:
        out = ["198.18.0.%d" % i for i in range(64)]
        out += ["198.19.255.%d" % i for i in range(250, 256)]
        out += ["10.0.0.1", "255.255.255.255", "0.0.0.0"]
        return out
    out = [str(ipaddress.IPv6Address("2001:db8:ffff::") + i)
           for i in range(64)]
    out.append("2001:db8::1")
    return out


def build_scenario(name, af, extra, desc, dests):
    dh_table = dh_reassign(dests)
    sh_table = sh_reassign(dests)
    mh_small, mh_small_info = mh_build(dests, af, MH_SMALL)
    mh_def, mh_def_info = mh_build(dests, af, MH_DEFAULT)

    if any(d.last_weight > 0 for d in dests):
        assert all(x is not None for x in mh_small), name
        assert all(x is not None for x in mh_def), name
        # every dest with turns >= 1 must own at least one slot
        for info, tab in ((mh_small_info, mh_small), (mh_def_info, mh_def)):
            for i, s in enumerate(info["setup"]):
                if s["turns"] >= 1:
                    assert i in tab, (name, i)
                else:
                    assert i not in tab, (name, i)
    else:
        assert all(x is None for x in mh_small + mh_def), name
    if dests:
        assert all(x is not None for x in sh_table + dh_table)

    lookups = []
    for addr in lookup_addrs(af):
        for port in PORTS:
            r = {"addr": addr, "port": port}
            r["dh"] = dh_schedule(dests, dh_table, af, addr)
            r["dh_bucket"] = dh_hashkey(af, addr)
            r["sh"] = sh_get(dests, sh_table, af, addr, 0)
            r["sh_fb"] = sh_get_fallback(dests, sh_table, af, addr, 0)
            r["sh_port"] = sh_get(dests, sh_table, af, addr, port)
            r["sh_port_fb"] = sh_get_fallback(dests, sh_table, af, addr, port)
            r["sh_bucket"] = sh_hashkey(af, addr, 0, 0)
            r["sh_port_bucket"] = sh_hashkey(af, addr, port, 0)
            for pfx, tab, cfg in (("mh", mh_def, MH_DEFAULT),
                                  ("mh251", mh_small, MH_SMALL)):
                r[pfx] = mh_get(dests, tab, af, addr, 0, cfg)
                r[pfx + "_fb"] = mh_get_fallback(dests, tab, af, addr, 0, cfg)
                r[pfx + "_port"] = mh_get(dests, tab, af, addr, port, cfg)
                r[pfx + "_port_fb"] = mh_get_fallback(dests, tab, af, addr,
                                                      port, cfg)
                r[pfx + "_bucket"] = mh_bucket(af, addr, 0, cfg)
                r[pfx + "_port_bucket"] = mh_bucket(af, addr, port, cfg)
            lookups.append(r)

    return {
        "name": name,
        "af": af,
        "extra": extra,
        "description": desc,
        "dests": [d.to_json() for d in dests],
        "dh_table": dh_table,
        "sh_table": sh_table,
        "mh_251": mh_small_info,
        "mh_4093": mh_def_info,
        "mh_table_251": mh_small,
        "mh_table_4093": mh_def,
        "lookups": lookups,
    }


# ---------------------------------------------------------------------------
# Self-checks
# ---------------------------------------------------------------------------
# lib/tests/siphash_kunit.c, BITS_PER_LONG == 64 table: vector i is
# hsiphash(bytes 0..i-1, key bytes 00..0f).
KUNIT_HSIPHASH_KEY = (0x0706050403020100, 0x0F0E0D0C0B0A0908)
KUNIT_HSIPHASH_VECTORS = [
    0x050fc4dc, 0x7d57ca93, 0x4dc7d44d, 0xe7ddf7fb, 0x88d38328, 0x49533b67,
    0xc59f22a7, 0x9bb11140, 0x8d299a8e, 0x6c063de4, 0x92ff097f, 0xf94dc352,
    0x57b4d9a2, 0x1229ffa7, 0xc0f95d34, 0x2a519956, 0x7d908b66, 0x63dbd80c,
    0xb473e63e, 0x8d297d1c, 0xa6cce040, 0x2b45f844, 0xa320872e, 0xdae6c123,
    0x67349c8c, 0x705b0979, 0xca9913a5, 0x4ade3b35, 0xef6cd00d, 0x4ab1e1f4,
    0x43c5e663, 0x8c21d1bc, 0x16a7b60d, 0x7a8ff9bf, 0x1f2a753e, 0xbf186b91,
    0xada26206, 0xa3c33057, 0xae3a36a1, 0x7b108392, 0x99e41531, 0x3f1ad944,
    0xc8138825, 0xc28949a6, 0xfaf8876b, 0x9f042196, 0x68b1d623, 0x8b5114fd,
    0xdf074c46, 0x12cc86b3, 0x0a52098f, 0x9d292f9a, 0xa2f41f12, 0x43a71ed0,
    0x73f0bce6, 0x70a7e980, 0x243c6d75, 0xfdb71513, 0xa67d8a08, 0xb7e8f148,
    0xf7a644ee, 0x0f1837f2, 0x4b6694e0, 0xb7bbb3a8,
]


def self_check():
    data = bytes(range(64))
    for i, want in enumerate(KUNIT_HSIPHASH_VECTORS):
        got = hsiphash(data[:i], KUNIT_HSIPHASH_KEY)
        assert got == want, "hsiphash vector %d: %08x != %08x" % (i, got, want)
    # hsiphash_1u32(0x03020100) == vector[4] (also tested by the kunit file)
    assert hsiphash_u32(0x03020100, KUNIT_HSIPHASH_KEY) == \
        KUNIT_HSIPHASH_VECTORS[4]
    # hash_32 by hand: 1*0x61C88647 = 0x61C88647 -> top 8 bits 0x61
    assert hash_32(0, 8) == 0
    assert hash_32(1, 8) == 0x61
    # 2*0x61C88647 = 0xC3910C8E -> 0xC3
    assert hash_32(2, 8) == 0xC3
    # 3*0x61C88647 = 0x1_255992D5 -> u32 0x255992D5 -> 0x25
    assert hash_32(3, 8) == 0x25
    assert hash_32(1, 32) == 0x61C88647
    assert hash_32(0xFFFFFFFF, 8) == ((-0x61C88647) & M32) >> 24 == 0x9E
    assert fls(0) == 0 and fls(1) == 1 and fls(3) == 2 and fls(20) == 5
    assert fls(0x80000000) == 32
    assert gcd(100000, 300000) == 100000 and gcd(7, 0) == 7


# ---------------------------------------------------------------------------
# Output (stable, diff-friendly JSON; one lookup per line)
# ---------------------------------------------------------------------------
def _c(x):
    return json.dumps(x, separators=(",", ":"), sort_keys=False)


def emit(doc, out):
    w = out.write
    w("{\n")
    w('  "generator": %s,\n' % _c(doc["generator"]))
    w('  "notes": [\n')
    w(",\n".join("    " + _c(n) for n in doc["notes"]))
    w("\n  ],\n")
    w('  "hash32_checks": [\n')
    w(",\n".join("    " + _c(x) for x in doc["hash32_checks"]))
    w("\n  ],\n")
    w('  "hsiphash_checks": [\n')
    w(",\n".join("    " + _c(x) for x in doc["hsiphash_checks"]))
    w("\n  ],\n")
    w('  "scenarios": [\n')
    scs = []
    for sc in doc["scenarios"]:
        lines = ["    {"]
        keys = [k for k in sc if k != "lookups"]
        for k in keys:
            if k == "dests":
                lines.append('      "dests": [')
                lines.append(",\n".join("        " + _c(d) for d in sc[k]))
                lines.append("      ],")
            else:
                lines.append('      %s: %s,' % (_c(k), _c(sc[k])))
        lines.append('      "lookups": [')
        lines.append(",\n".join("        " + _c(r) for r in sc["lookups"]))
        lines.append("      ]")
        lines.append("    }")
        scs.append("\n".join(lines))
    w(",\n".join(scs))
    w("\n  ]\n}\n")


def main():
    self_check()
    hash32_checks = []
    for val in [0, 1, 2, 3, 0x7F, 0x80, 0xC6120100, 0xC612FFFF, 0xFFFFFFFF,
                0x0A000001, 0x12345678]:
        for bits in (8, 32):
            hash32_checks.append({"val": val, "bits": bits,
                                  "hash": hash_32(val, bits)})
    hsiphash_checks = []
    for key in (MH_HASH1, MH_HASH2, KUNIT_HSIPHASH_KEY):
        for v in (0, 1, 0x03020100, 0xC6120100, 0xC6120150, 0xFFFFFFFF):
            hsiphash_checks.append({"key": list(key), "v": v,
                                    "hash": hsiphash_u32(v, key)})
    doc = {
        "generator": "sched/testdata/oracle/ipvs_hash_oracle.py "
                     "(independent Python model of Linux ip_vs_dh.c, "
                     "ip_vs_sh.c, ip_vs_mh.c on x86_64)",
        "notes": [
            "dest indices refer to the scenario's dests list, 0 = list head",
            "dh: by destination address; sh/mh: by source address",
            "sh, sh_fb, mh*, without *_port: scheduler without the port flag, "
            "so the port is 0",
            "*_bucket: raw hash bucket at offset 0 (sh/dh: 0..255, "
            "mh: 0..4092, mh251: 0..250)",
            "mh = CONFIG_IP_VS_MH_TAB_INDEX 12 (size 4093, tab_bits 6); "
            "mh251 = index 8 (size 251, tab_bits 4)",
            "hsiphash_checks: 64-bit kernel hsiphash of the 4 little-endian "
            "bytes of v with key [k0,k1]",
            "scenarios with extra=true go beyond the original brief",
        ],
        "hash32_checks": hash32_checks,
        "hsiphash_checks": hsiphash_checks,
        "scenarios": [build_scenario(*s) for s in SCENARIOS],
    }
    emit(doc, sys.stdout)


if __name__ == "__main__":
    main()
