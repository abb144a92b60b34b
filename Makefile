# gvs build, test and lint entry points.

GO ?= go
BIN ?= bin

# Every directory under cmd/ is one binary; none yet is fine.
CMDS := $(patsubst %/,%,$(wildcard cmd/*/))

.PHONY: build test bench generate lint deps clean man install uninstall deb

# The version every binary reports (--version): git describe, else "dev".
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -X main.version=$(VERSION)

build:
ifneq ($(strip $(CMDS)),)
	@mkdir -p $(BIN)
	CGO_ENABLED=0 $(GO) build -ldflags '$(LDFLAGS)' -o $(BIN)/ $(addprefix ./,$(CMDS))
else
	@echo "build: no binaries under cmd/ yet"
endif

# Privileged tests (netns, BPF) skip themselves when not run as root.
# The end-to-end package runs many namespaced topologies one after the
# other: more than go test's default 10 minutes on a busy 2-core machine.
test:
	$(GO) vet ./...
	$(GO) test -count=1 -timeout 30m ./...

# Go micro-benchmarks; the proxy engine against HAProxy and nginx on
# loopback (bench/proxybench; a peer that is not installed is skipped);
# then, as root, the XDP director against a minimal XDP forwarder, kernel
# forwarding and nftables DNAT in network namespaces, IPv4 and IPv6 rows
# (bench/xdpbench, which writes docs/bench-cost.png; "-family 6" runs the
# IPv6 rows alone). Results: docs/BENCHMARKS.md.
# PROXYBENCH_FLAGS e.g. "-repeat 3 -duration 2s"; XDPBENCH_FLAGS e.g.
# "-runs 3 -scale=false".
PROXYBENCH_FLAGS ?=
XDPBENCH_FLAGS ?=
bench:
	$(GO) test -run='^$$' -bench=. -benchmem ./...
	scripts/install-deps.sh --bench
	$(MAKE) build
	$(GO) run ./bench/proxybench -bin $(BIN) $(PROXYBENCH_FLAGS)
	@if [ "$$(id -u)" -eq 0 ]; then $(GO) run ./bench/xdpbench -bin $(BIN) $(XDPBENCH_FLAGS); \
	else echo "bench: bench/xdpbench needs root (network namespaces, XDP): skipped"; fi

generate:
	$(GO) generate ./...

lint:
	$(GO) vet ./...
	$(GO) tool staticcheck ./...

deps:
	scripts/install-deps.sh

clean:
	rm -rf $(BIN) coverage.out coverage.html *.coverprofile

# Man pages (packaging/man) from the programs' -h, ipvsadm's usage text,
# the prose in packaging/man/src and docs/; tools/genman's test fails when
# the committed pages are not what this makes.
man:
	$(GO) run ./tools/genman -out packaging/man

# make install [PREFIX=/usr/local] [DESTDIR=] [SYSCONFDIR=/etc]
# [UNITDIR=$(PREFIX)/lib/systemd/system]: the binaries, the systemd units
# (their paths set to SBINDIR), the man pages, bash completion, and the
# example configs under SYSCONFDIR/gvs unless already there. Every file
# installed is listed in $(MANIFEST); make uninstall removes those.
PREFIX ?= /usr/local
SYSCONFDIR ?= /etc
SBINDIR ?= $(PREFIX)/sbin
MANDIR ?= $(PREFIX)/share/man
UNITDIR ?= $(PREFIX)/lib/systemd/system
COMPLETIONDIR ?= $(PREFIX)/share/bash-completion/completions
MANIFEST ?= $(PREFIX)/share/gvs/install-manifest
SBIN_PROGS := gvsd gvsadm gvs-realserver gvs-lbaas

install: build
	DESTDIR='$(DESTDIR)' SBINDIR='$(SBINDIR)' MANDIR='$(MANDIR)' UNITDIR='$(UNITDIR)' \
	COMPLETIONDIR='$(COMPLETIONDIR)' SYSCONFDIR='$(SYSCONFDIR)' MANIFEST='$(MANIFEST)' \
	BIN='$(BIN)' GZIP_MAN='$(GZIP_MAN)' scripts/install.sh install

uninstall:
	DESTDIR='$(DESTDIR)' MANIFEST='$(MANIFEST)' SYSCONFDIR='$(SYSCONFDIR)' scripts/install.sh uninstall

# make deb: a Debian package of the tree in $(BIN)/ (dpkg-deb; maintainer
# scripts in packaging/debian). Installs under /usr, units in
# /lib/systemd/system, conffiles in /etc/gvs.
deb: build
	BIN='$(BIN)' VERSION='$(VERSION)' scripts/mkdeb.sh
