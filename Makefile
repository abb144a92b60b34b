# gvs build, test and lint entry points.

GO ?= go
BIN ?= bin

# Every directory under cmd/ is one binary; none yet is fine.
CMDS := $(patsubst %/,%,$(wildcard cmd/*/))

.PHONY: build test bench generate lint deps clean

build:
ifneq ($(strip $(CMDS)),)
	@mkdir -p $(BIN)
	$(GO) build -o $(BIN)/ $(addprefix ./,$(CMDS))
else
	@echo "build: no binaries under cmd/ yet"
endif

# Privileged tests (netns, BPF) skip themselves when not run as root.
test:
	$(GO) vet ./...
	$(GO) test -count=1 ./...

# Go micro-benchmarks; the proxy engine against HAProxy and nginx on
# loopback (bench/proxybench; a peer that is not installed is skipped);
# then, as root, the XDP director against a minimal XDP forwarder, kernel
# forwarding and nftables DNAT in network namespaces (bench/xdpbench,
# which writes docs/bench-cost.png). Results: docs/BENCHMARKS.md.
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
