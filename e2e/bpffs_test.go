package e2e

import (
	"fmt"
	"os"

	"golang.org/x/sys/unix"

	"gvs/bpffs"
)

// sysBPF is where the tests pin (under per-test directories), as gvsd's
// default pin directory is.
const sysBPF = "/sys/fs/bpf"

// ensureBPFFS mounts a BPF filesystem on /sys/fs/bpf when the machine has
// none there (a VM or container booted without systemd), as gvsd itself
// would, so the harness can pin before any gvsd runs. The returned undo
// unmounts it again, leaving the machine as it was found; it is a no-op
// when the mount was already there or the tests are not root.
func ensureBPFFS() (undo func(), err error) {
	if os.Geteuid() != 0 || bpffs.On(sysBPF) {
		return func() {}, nil
	}
	if err := unix.Mount("bpf", sysBPF, "bpf", 0, "mode=0700"); err != nil {
		return func() {}, fmt.Errorf("mounting a BPF filesystem on %s: %w", sysBPF, err)
	}
	return func() {
		if err := unix.Unmount(sysBPF, 0); err != nil {
			fmt.Fprintf(os.Stderr, "e2e: unmounting the BPF filesystem the tests mounted on %s: %v\n", sysBPF, err)
		}
	}, nil
}
