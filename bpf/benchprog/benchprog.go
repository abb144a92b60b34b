// Package benchprog holds the benchmark's own XDP programs (bench.c): the
// live-frames traffic generator, the counting sink and the minimal
// forwarder bench/xdpbench measures gvs against. The generated
// bench_bpfel.go/.o are committed; `make generate` rebuilds them.
package benchprog

//go:generate go tool bpf2go -cc clang-19 -cflags "-O2 -g -Wall -Werror -I/usr/include/x86_64-linux-gnu -I/usr/include/aarch64-linux-gnu" -target bpfel -output-stem bench -type gen_cfg -type gen6_cfg -type fwd_cfg bench bench.c

// Objects are the loaded programs and maps.
type Objects = benchObjects

// Load loads the programs and maps (unpinned).
func Load(o *Objects) error { return loadBenchObjects(o, nil) }

// GenCfg and FwdCfg mirror the C settings structs.
type (
	GenCfg  = benchGenCfg
	Gen6Cfg = benchGen6Cfg
	FwdCfg  = benchFwdCfg
)

// Generator modes (gen_cfg.mode).
const (
	GenFixedSport = 0
	GenFixedDport = 1
	GenNew        = 2
)
