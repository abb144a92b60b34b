package pktgen

import (
	"runtime"

	"github.com/vishvananda/netns"
)

// InNetNS runs f on an OS thread inside the network namespace at path
// ("": the caller's). The thread goes back to Go's pool only if it
// could return to its own namespace; otherwise it ends with f's
// goroutine.
func InNetNS(path string, f func() error) error {
	if path == "" {
		return f()
	}
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := netns.Get()
		if err != nil {
			errc <- err
			return
		}
		defer orig.Close()
		h, err := netns.GetFromPath(path)
		if err != nil {
			errc <- err
			return
		}
		defer h.Close()
		if err := netns.Set(h); err != nil {
			errc <- err
			return
		}
		err = f()
		if netns.Set(orig) == nil {
			runtime.UnlockOSThread()
		}
		errc <- err
	}()
	return <-errc
}
