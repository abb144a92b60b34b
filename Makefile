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

# Go micro-benchmarks, then the proxy engine against HAProxy and nginx on
# loopback (bench/proxybench; a peer that is not installed is skipped).
# Results: docs/BENCHMARKS.md. PROXYBENCH_FLAGS e.g. "-repeat 3 -duration 2s".
PROXYBENCH_FLAGS ?=
bench:
	$(GO) test -run='^$$' -bench=. -benchmem ./...
	scripts/install-deps.sh --bench
	$(MAKE) build
	$(GO) run ./bench/proxybench -bin $(BIN) $(PROXYBENCH_FLAGS)

generate:
	$(GO) generate ./...

lint:
	$(GO) vet ./...
	$(GO) tool staticcheck ./...

deps:
	scripts/install-deps.sh

clean:
	rm -rf $(BIN) coverage.out coverage.html *.coverprofile
