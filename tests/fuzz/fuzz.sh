#!/bin/bash
# Builds the libFuzzer harnesses with clang in a build tree of their own,
# then runs each for SECONDS, one after the other (run.sh). The test
# command's bounded run (ctest fuzz.smoke, make fuzz-smoke) gives each 12 s
# (about 100 s for the eight, plus the build); make fuzz gives each
# FUZZ_SECONDS (600). Exits 77 (skipped) when clang cannot build a
# libFuzzer binary, so a gcc-only machine skips it clearly.
#
#   tests/fuzz/fuzz.sh SOURCE_DIR FUZZ_BUILD_DIR [SECONDS [HARNESS...]]
set -u
src=${1:?usage: fuzz.sh SOURCE_DIR FUZZ_BUILD_DIR [SECONDS [HARNESS...]]}
build=${2:?usage: fuzz.sh SOURCE_DIR FUZZ_BUILD_DIR [SECONDS [HARNESS...]]}
seconds=${3:-${FUZZ_SECONDS:-12}}
shift $(($# < 3 ? $# : 3))
jobs=${FUZZ_JOBS:-2}

clang=$(command -v clang || true)
probe=$(mktemp -d)
trap 'rm -rf "$probe"' EXIT
if [ -z "$clang" ] || ! printf '%s\n' \
    'int LLVMFuzzerTestOneInput(const unsigned char *d, unsigned long n)' \
    '{ (void)d; (void)n; return 0; }' >"$probe/p.c" ||
   ! "$clang" -fsanitize=fuzzer,address,undefined "$probe/p.c" \
      -o "$probe/p" >/dev/null 2>&1; then
  echo "fuzz: SKIPPED: no clang with libFuzzer (apt-get install clang)"
  exit 77
fi
echo "fuzz: building the harnesses with $clang in $build"
CC=$clang cmake -S "$src" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DSYNOD_FUZZ=ON >"$probe/cmake.log" 2>&1 ||
  { cat "$probe/cmake.log"; exit 1; }
cmake --build "$build" -j "$jobs" --target fuzz_all -- --no-print-directory \
  >"$probe/build.log" 2>&1 || { tail -60 "$probe/build.log"; exit 1; }
exec "$src/tests/fuzz/run.sh" "$build" "$seconds" "$@"
