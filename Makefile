# Thin entry point over CMake. `make run` and `make test` are the two commands
# README.md starts with; both install what is missing first.
BUILD      ?= build
BUILD_ASAN ?= build-asan
JOBS       ?= $(shell nproc)
CMAKE_ARGS ?=

.PHONY: all deps build build-asan run test test-asan test-fast clean

all: build

deps:
	@bash scripts/deps.sh

build: deps
	@cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo $(CMAKE_ARGS) >/dev/null
	@cmake --build $(BUILD) -j $(JOBS) -- --no-print-directory

build-asan: deps
	@cmake -S . -B $(BUILD_ASAN) -DCMAKE_BUILD_TYPE=Debug -DSYNOD_SANITIZE=ON $(CMAKE_ARGS) >/dev/null
	@cmake --build $(BUILD_ASAN) -j $(JOBS) -- --no-print-directory

# The main job. Until the server lands this builds and prints the version.
run: build
	@$(BUILD)/bin/synodd --version
	@$(BUILD)/bin/synodctl version

# Every test: unit tests under ASan+UBSan first, then everything (unit,
# valgrind, simulation, integration) in the plain build. ctest's closing
# lines give the count.
test: build-asan build
	@cd $(BUILD_ASAN) && ctest -L 'unit|sim' --output-on-failure -j $(JOBS)
	@cd $(BUILD) && ctest --output-on-failure -j $(JOBS)

test-fast: build
	@cd $(BUILD) && ctest -L unit --output-on-failure -j $(JOBS)

clean:
	rm -rf $(BUILD) $(BUILD_ASAN)
