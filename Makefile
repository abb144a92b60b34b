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

bench:
	$(GO) test -run='^$$' -bench=. -benchmem ./...

generate:
	$(GO) generate ./...

lint:
	$(GO) vet ./...
	$(GO) tool staticcheck ./...

deps:
	scripts/install-deps.sh

clean:
	rm -rf $(BIN) coverage.out coverage.html *.coverprofile
