// Command gvs-lbaas serves the OpenStack Octavia v2 load-balancer API and
// runs each load balancer as a gvsd in its own network namespace
// lvs-<id> (the source notes' LvsDriver, in today's form). No Keystone:
// X-Auth-Token is accepted and ignored, so the openstack CLI works with
// --os-auth-type none --os-endpoint URL.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"gvs/lbaas"
	"gvs/lbagent"
)

var version = "dev"

func main() {
	fs := flag.NewFlagSet("gvs-lbaas", flag.ExitOnError)
	listen := fs.String("listen", "127.0.0.1:9876", "address of the Octavia v2 API (HTTP)")
	configFile := fs.String("config", "/etc/gvs/lbaas.yaml", "the networks VIPs come from, and the directors' engine (docs/lbaas.md)")
	stateDir := fs.String("state-dir", "/var/lib/gvs-lbaas", "the load balancers (lbaas.db) and each director's files")
	gvsd := fs.String("gvsd", "", "the gvsd binary (default: gvsd beside gvs-lbaas, else from $PATH)")
	pinDir := fs.String("bpf-pin-dir", "/sys/fs/bpf/gvs-lbaas", "where each director's xdp engine pins its maps: DIR/<load balancer id>")
	metricsAddr := fs.String("metrics-addr", "", "serve Prometheus metrics of the load balancers at http://ADDR/metrics (off by default)")
	showVersion := fs.Bool("version", false, "print the version and exit")
	fs.Parse(os.Args[1:])
	if *showVersion {
		fmt.Println("gvs-lbaas", version)
		return
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	if err := run(log, *listen, *configFile, *stateDir, *gvsd, *pinDir, *metricsAddr, sig); err != nil {
		log.Error("gvs-lbaas", "err", err)
		os.Exit(1)
	}
}

// gvsdPath is the gvsd binary: the one given, else the one beside this
// binary, else gvsd from $PATH.
func gvsdPath(given string) string {
	if given != "" {
		return given
	}
	if exe, err := os.Executable(); err == nil {
		p := filepath.Join(filepath.Dir(exe), "gvsd")
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	return "gvsd"
}

func run(log *slog.Logger, listen, configFile, stateDir, gvsd, pinDir, metricsAddr string, sig <-chan os.Signal) error {
	cfg, err := lbaas.LoadConfig(configFile)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(stateDir, 0o700); err != nil {
		return err
	}
	store, err := lbaas.OpenStore(stateDir)
	if err != nil {
		return err
	}
	defer store.Close()
	// gvs-lbaas makes namespaces, so it runs as root: "auto" is xdp.
	engine := cfg.Engine
	if engine == "" || engine == "auto" {
		engine = "xdp"
	}
	fwd := lbagent.ForwardAuto
	if cfg.Forwarding == "fullnat" {
		fwd = lbagent.ForwardFullNAT
	}
	agent, err := lbagent.New(lbagent.Options{Gvsd: gvsdPath(gvsd), Engine: engine, Forwarding: fwd, PinDir: pinDir,
		StateDir: filepath.Join(stateDir, "directors"), Logger: log})
	if err != nil {
		return err
	}
	// Closed last: it leaves the directors running, so a restart of
	// gvs-lbaas drops no traffic; the next one adopts them.
	defer agent.Close()
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return err
	}
	// Reloads the load balancers and applies each one again.
	api := lbaas.New(cfg, store, agent, log)
	defer api.Close()
	reapStrays(log, agent, filepath.Join(stateDir, "directors"), store)
	if metricsAddr != "" {
		mln, err := lbaas.ListenMetrics(metricsAddr, api.Metrics, version, log)
		if err != nil {
			return fmt.Errorf("--metrics-addr: %w", err)
		}
		defer mln.Close()
		log.Info("metrics", "addr", mln.Addr().String())
	}
	srv := &http.Server{Handler: api.Handler(), ReadHeaderTimeout: 10 * time.Second, ReadTimeout: time.Minute,
		WriteTimeout: time.Minute, IdleTimeout: 2 * time.Minute}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	log.Info("gvs-lbaas serving", "listen", ln.Addr().String(), "engine", engine, "state_dir", stateDir, "version", version)
	select {
	case s := <-sig:
		log.Info("shutting down", "signal", s.String())
	case err := <-errc:
		if !errors.Is(err, http.ErrServerClosed) {
			return err
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return srv.Shutdown(ctx)
}

// reapStrays deletes the directors of this gvs-lbaas (those with a
// state directory in dir: a delete removes it last) for load balancers
// the store does not have (a crash between a delete's steps, say). Other
// lvs-* namespaces on the host are left alone: they may be another
// instance's.
func reapStrays(log *slog.Logger, agent *lbagent.Agent, dir string, store *lbaas.Store) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		if !errors.Is(err, os.ErrNotExist) {
			log.Warn("listing the directors", "err", err)
		}
		return
	}
	known, err := store.IDs()
	if err != nil {
		log.Warn("listing the load balancers", "err", err)
		return
	}
	for _, ent := range ents {
		if id := ent.Name(); ent.IsDir() && !known[id] {
			log.Warn("deleting a director no load balancer has", "id", id)
			if err := agent.Delete(context.Background(), id); err != nil {
				log.Error("deleting a stray director", "id", id, "err", err)
			}
		}
	}
}
