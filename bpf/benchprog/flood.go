package benchprog

//go:generate go tool bpf2go -cc clang-19 -cflags "-O2 -g -Wall -Werror -I/usr/include/x86_64-linux-gnu -I/usr/include/aarch64-linux-gnu" -target bpfel -output-stem flood -type flood_cfg -type cap_slot flood flood.c

// FloodObjects are flood.c's programs and maps: the live-frames flood
// generator (Flood) and the capture sink (Capture), for bench/pktgen.
type FloodObjects = floodObjects

// LoadFlood loads flood.c's programs and maps (unpinned); every call
// gives a copy of its own (its own settings and frame counter).
func LoadFlood(o *FloodObjects) error { return loadFloodObjects(o, nil) }

// FloodCfg and CapSlot mirror struct flood_cfg and struct cap_slot.
type (
	FloodCfg = floodFloodCfg
	CapSlot  = floodCapSlot
)

// CapSlots is how many frames Capture keeps (CAP_SLOTS), each cut to
// CapBytes.
const (
	CapSlots = 64
	CapBytes = 64
)
