package realserver

import (
	"os"
	"path/filepath"
	"strings"
)

// procSys is where sysctls live; tests may point it elsewhere.
var procSys = "/proc/sys"

func confKey(dev, name string) string { return "net/ipv4/conf/" + dev + "/" + name }

func readSysctl(key string) (string, error) {
	b, err := os.ReadFile(filepath.Join(procSys, key))
	return strings.TrimSpace(string(b)), err
}

func writeSysctl(key, val string) error {
	return os.WriteFile(filepath.Join(procSys, key), []byte(val+"\n"), 0o644)
}

// displayKey spells key as sysctl(8) does: dots between components, a
// dot inside one (eth0.100) as a slash.
func displayKey(key string) string {
	parts := strings.Split(key, "/")
	for i, p := range parts {
		parts[i] = strings.ReplaceAll(p, ".", "/")
	}
	return strings.Join(parts, ".")
}

// setting is one sysctl `up` wants: ok says whether a value already does
// the job (then it is left alone), set is what to write otherwise.
type setting struct {
	key string
	ok  func(cur string) bool
	set string
}

func oneOf(vals ...string) func(string) bool {
	return func(cur string) bool {
		for _, v := range vals {
			if cur == v {
				return true
			}
		}
		return false
	}
}

// arpSettings: the LVS real-server ARP settings, for conf/all, conf/lo and
// the given interfaces.
//
// arp_ignore=1: answer ARP only for addresses configured on the interface
// the request came in on, so the VIP on lo is never announced on the wire
// (2, which also wants the sender in the same subnet, hides it as well and
// is left alone). arp_announce=2: in ARP requests the host sends, use the
// best local address for the target (the interface's own), never the VIP
// a reply happened to come from, so neighbours' caches never learn VIP ->
// this host. The kernel uses the larger of conf/all and conf/<dev> for
// both, so conf/all covers every interface, including ones created later;
// lo (the LVS HOWTO's recipe) and the named interface are set too, so the
// intent survives someone lowering conf/all.
func arpSettings(devs ...string) []setting {
	var out []setting
	for _, d := range append([]string{"all", "lo"}, devs...) {
		out = append(out,
			setting{key: confKey(d, "arp_ignore"), ok: oneOf("1", "2"), set: "1"},
			setting{key: confKey(d, "arp_announce"), ok: oneOf("2"), set: "2"})
	}
	return out
}

// rpFilterSetting: the tunnel interface must not drop decapsulated packets
// by reverse-path filtering. Their source is the client's address, and
// strict mode (1) drops them unless the route back to the client leaves by
// this very interface: on a multi-homed real server, or one whose route to
// clients is elsewhere, it does not (the classic LVS/TUN recipe sets
// rp_filter=0 on tunl0 for this reason). Loose mode (2) only wants the
// client to be routable at all, which a TUN real server needs anyway to
// answer directly, and keeps filtering bogus sources. The kernel uses the
// larger of conf/all and conf/<dev>, so 2 on the interface makes it loose
// whatever conf/all says; when the effective value is already 0 or 2 it is
// left alone.
func rpFilterSetting(dev string) setting {
	return setting{
		key: confKey(dev, "rp_filter"),
		ok: func(cur string) bool {
			all, _ := readSysctl(confKey("all", "rp_filter"))
			return max(all, cur) != "1" // values are 0, 1, 2: one digit
		},
		set: "2",
	}
}
