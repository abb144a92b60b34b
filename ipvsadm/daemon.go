package ipvsadm

import (
	"io"

	"gvs/model"
)

// ListSyncDaemons writes ipvsadm -L --daemon: one line per running sync
// daemon, master first, with what the kernel reports of it (ipvsadm 1.31
// prints maxlen, group, port and ttl when the kernel gives them, which
// kernels since 4.3 always do).
func ListSyncDaemons(w io.Writer, daemons []model.SyncDaemon) error {
	ew := &errWriter{w: w}
	for _, state := range []string{"master", "backup"} {
		for _, d := range daemons {
			if d.State != state {
				continue
			}
			ew.printf("%s sync daemon (mcast=%s, syncid=%d", d.State, d.McastIfn, d.SyncID)
			if d.SyncMaxLen != 0 {
				ew.printf(", maxlen=%d", d.SyncMaxLen)
			}
			if d.McastGroup.IsValid() {
				ew.printf(", group=%s", inetNtop(d.McastGroup))
			}
			if d.McastPort != 0 {
				ew.printf(", port=%d", d.McastPort)
			}
			if d.McastTTL != 0 {
				ew.printf(", ttl=%d", d.McastTTL)
			}
			ew.printf(")\n")
		}
	}
	return ew.err
}
