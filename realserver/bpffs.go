package realserver

// DefaultPinDir is where the decapsulation program's link and map are
// pinned, so that they outlive the command.
const DefaultPinDir = "/sys/fs/bpf/gvs-realserver"
