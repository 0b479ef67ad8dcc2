# Thin entry point over CMake. `make run` and `make test` are the two commands
# README.md starts with; both install what is missing first.
BUILD      ?= build
BUILD_ASAN ?= build-asan
BUILD_FUZZ ?= build-fuzz
JOBS       ?= $(shell nproc)
CMAKE_ARGS ?=

.PHONY: all deps deps-test build build-asan run test test-asan test-fast bench \
        bench-channels bench-groups clean fuzz fuzz-smoke

all: build

deps:
	@bash scripts/deps.sh

deps-test:
	@bash scripts/deps.sh --test

build: deps
	@cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo $(CMAKE_ARGS) >/dev/null
	@cmake --build $(BUILD) -j $(JOBS) -- --no-print-directory

build-asan: deps
	@cmake -S . -B $(BUILD_ASAN) -DCMAKE_BUILD_TYPE=Debug -DSYNOD_SANITIZE=ON $(CMAKE_ARGS) >/dev/null
	@cmake --build $(BUILD_ASAN) -j $(JOBS) -- --no-print-directory

# The main job: a local 3-replica cluster on 127.0.0.1 (Ctrl-C stops it).
run: build
	@$(BUILD)/bin/synodctl dev --replicas 3 --dir var/dev

# Every test: unit and simulation tests (and integration tests labelled
# asan) under ASan+UBSan first, then everything (unit, valgrind,
# simulation, integration) in the plain build. ctest's closing
# lines give the count.
test: deps-test build-asan build
	@cd $(BUILD_ASAN) && ctest -L 'unit|sim|asan' --output-on-failure -j $(JOBS)
	@cd $(BUILD) && ctest --output-on-failure -j $(JOBS)

test-fast: deps-test build
	@cd $(BUILD) && ctest -L unit --output-on-failure -j $(JOBS)

# synod against etcd 3.4, side by side (bench/README.md). Builds only
# synod-bench and the synodd it starts. etcd-server is the bench's own
# dependency, not the build's: installed here, if missing, and never by
# scripts/deps.sh. Flags: make bench BENCH_ARGS=--quick
BENCH_ARGS ?=

bench: deps
	@cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo $(CMAKE_ARGS) >/dev/null
	@cmake --build $(BUILD) -j $(JOBS) --target synod-bench -- --no-print-directory
	@status=$$(dpkg-query -W -f='$${Status}' etcd-server 2>/dev/null || true); \
	if [ "$$status" != "install ok installed" ]; then \
	  echo "bench: installing etcd-server"; \
	  SUDO=""; [ "$$(id -u)" -eq 0 ] || SUDO=sudo; \
	  export DEBIAN_FRONTEND=noninteractive; \
	  { $$SUDO apt-get update -qq && \
	    $$SUDO apt-get install -y -qq --no-install-recommends \
	      etcd-server >/dev/null; } || \
	  echo "bench: could not install etcd-server; synod only"; \
	fi
	@$(BUILD)/bin/synod-bench $(BENCH_ARGS)

# synod's channels against NATS JetStream and Redis Streams, side by side
# (bench/README.md). The peers' servers and client libraries (nats-server,
# redis-server, libnats-dev, libhiredis-dev) are this bench's own
# dependencies: installed here, if missing, and never by scripts/deps.sh.
# Without a server the bench says so and runs the rest; without the
# libraries synod-bench-channels is not built. Builds only it and synodd.
# Flags: make bench-channels BENCH_ARGS=--quick
BENCH_CHANNELS_PKGS = nats-server redis-server libnats-dev libhiredis-dev

bench-channels: deps
	@missing=""; for p in $(BENCH_CHANNELS_PKGS); do \
	  status=$$(dpkg-query -W -f='$${Status}' $$p 2>/dev/null || true); \
	  [ "$$status" = "install ok installed" ] || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "bench-channels: installing$$missing"; \
	  SUDO=""; [ "$$(id -u)" -eq 0 ] || SUDO=sudo; \
	  export DEBIAN_FRONTEND=noninteractive; \
	  { $$SUDO apt-get update -qq && \
	    $$SUDO apt-get install -y -qq --no-install-recommends \
	      $$missing >/dev/null; } || \
	  echo "bench-channels: could not install$$missing"; \
	fi
	@cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo $(CMAKE_ARGS) >/dev/null
	@cmake --build $(BUILD) -j $(JOBS) --target synod-bench-channels -- \
	  --no-print-directory || { echo "bench-channels: not built (it needs \
	  libnats-dev and libhiredis-dev)"; exit 1; }
	@$(BUILD)/bin/synod-bench-channels $(BENCH_ARGS)

# synod's groups against Corosync CPG and JGroups, side by side
# (bench/README.md). The peers (corosync, libcpg-dev, libjgroups-java,
# default-jdk-headless) are this bench's own dependencies: installed here,
# if missing, and never by scripts/deps.sh. Without one the bench says so
# and runs the rest. CPG's side needs root (network namespaces). Builds
# only synod-bench-groups, its CPG member program and synodd.
# Flags: make bench-groups BENCH_ARGS=--quick
BENCH_GROUPS_PKGS = corosync libcpg-dev libjgroups-java default-jdk-headless

bench-groups: deps
	@missing=""; for p in $(BENCH_GROUPS_PKGS); do \
	  status=$$(dpkg-query -W -f='$${Status}' $$p 2>/dev/null || true); \
	  [ "$$status" = "install ok installed" ] || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "bench-groups: installing$$missing"; \
	  SUDO=""; [ "$$(id -u)" -eq 0 ] || SUDO=sudo; \
	  export DEBIAN_FRONTEND=noninteractive; \
	  { $$SUDO apt-get update -qq && \
	    $$SUDO apt-get install -y -qq --no-install-recommends \
	      $$missing >/dev/null; } || \
	  echo "bench-groups: could not install$$missing"; \
	fi
	@cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo $(CMAKE_ARGS) >/dev/null
	@cmake --build $(BUILD) -j $(JOBS) --target synod-bench-groups -- \
	  --no-print-directory
	@$(BUILD)/bin/synod-bench-groups $(BENCH_ARGS)

# The libFuzzer harnesses (tests/fuzz/README.md), built with clang in
# $(BUILD_FUZZ), one after the other: `make fuzz` runs each FUZZ_SECONDS
# (default 600, random seeds), `make fuzz-smoke` 7 s from seed 1 (what
# `make test` runs as ctest fuzz.smoke). FUZZ_HARNESSES picks some. Without clang: skipped.
FUZZ_SECONDS   ?= 600
FUZZ_HARNESSES ?=

fuzz: deps
	@rc=0; bash tests/fuzz/fuzz.sh $(CURDIR) $(BUILD_FUZZ) $(FUZZ_SECONDS) \
	  $(FUZZ_HARNESSES) || rc=$$?; [ $$rc -eq 77 ] && rc=0; exit $$rc

fuzz-smoke: deps
	@rc=0; FUZZ_SEED=1 bash tests/fuzz/fuzz.sh $(CURDIR) $(BUILD_FUZZ) 7 \
	  $(FUZZ_HARNESSES) || rc=$$?; [ $$rc -eq 77 ] && rc=0; exit $$rc

clean:
	rm -rf $(BUILD) $(BUILD_ASAN) $(BUILD_FUZZ)
