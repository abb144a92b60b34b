package main

import (
	"log/slog"

	"github.com/coreos/go-systemd/v22/daemon"
)

// sdNotify tells systemd (Type=notify units, packaging/gvsd.service) about
// gvsd's state: READY=1 once the control API answers and the saved rules
// and the config are applied, STOPPING=1 when it begins to shut down.
// Outside systemd ($NOTIFY_SOCKET unset) it does nothing.
func sdNotify(log *slog.Logger, state string) {
	if _, err := daemon.SdNotify(false, state); err != nil {
		log.Warn("sd_notify", "state", state, "err", err)
	}
}
