#!/bin/bash
# Runs the libFuzzer harnesses of a SYNOD_FUZZ build, each for a bounded
# time, one after the other (the machine is shared: one core each).
#
#   tests/fuzz/run.sh BUILD_DIR SECONDS [HARNESS...]
#
# Each harness starts from its seeds (BUILD_DIR/fuzz-corpus/<h>, written
# by make_corpus), its regressions (tests/fuzz/regressions/<h>) and what
# earlier runs found (BUILD_DIR/fuzz-work/<h>, kept between runs, never
# committed). A crash leaves its input in BUILD_DIR/fuzz-crashes/<h>/;
# the script then says how to keep it as a regression, and exits 1.
# Prints one line per harness with libFuzzer's final figures.
set -u
here=$(cd "$(dirname "$0")" && pwd)
build=${1:?usage: run.sh BUILD_DIR SECONDS [HARNESS...]}
seconds=${2:?usage: run.sh BUILD_DIR SECONDS [HARNESS...]}
shift 2
harnesses=("$@")
if [ ${#harnesses[@]} -eq 0 ]; then
  harnesses=(frame request peer fsm_apply snapshot wal k8s http)
fi
# FUZZ_SEED fixes libFuzzer's seed: the test command's smoke run takes the
# same path on every machine, so what fails there is a regression, not a
# first find (those belong to make fuzz, which leaves the seed random).
seed_args=()
if [ -n "${FUZZ_SEED:-}" ]; then
  seed_args=(-seed="$FUZZ_SEED")
fi
export SYNOD_TEST_TMP=${SYNOD_TEST_TMP:-$build/tmp}
mkdir -p "$SYNOD_TEST_TMP"
# Leak checking stays on; a report or any sanitizer error is a crash.
export ASAN_OPTIONS=${ASAN_OPTIONS:-abort_on_error=1:detect_leaks=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

failed=0
summary=()
for h in "${harnesses[@]}"; do
  bin=$build/bin/fuzz_$h
  if [ ! -x "$bin" ]; then
    echo "fuzz: $bin missing (configure with CC=clang -DSYNOD_FUZZ=ON)" >&2
    exit 2
  fi
  work=$build/fuzz-work/$h
  crashes=$build/fuzz-crashes/$h
  log=$build/fuzz-logs/$h.log
  mkdir -p "$work" "$crashes" "$(dirname "$log")"
  dirs=("$work" "$build/fuzz-corpus/$h")
  [ -d "$here/regressions/$h" ] && dirs+=("$here/regressions/$h")
  echo "fuzz: $h for ${seconds}s${FUZZ_SEED:+, seed $FUZZ_SEED} (log $log)"
  "$bin" "${seed_args[@]}" -max_total_time="$seconds" -timeout=20 \
    -rss_limit_mb=2048 \
    -max_len=65536 -print_final_stats=1 -artifact_prefix="$crashes/" \
    "${dirs[@]}" >"$log" 2>&1
  rc=$?
  done_line=$(grep -E '^#[0-9]+[[:space:]]+DONE' "$log" | tail -1)
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  line="$h: ${execs:-?} execs; ${done_line:-no DONE line}"
  if [ $rc -ne 0 ]; then
    failed=1
    art=$(grep -oE "Test unit written to [^ ]+" "$log" | tail -1 | \
          sed 's/Test unit written to //')
    line="$line; FAILED (exit $rc): ${art:-see the log}"
    echo "fuzz: $h FAILED; the end of its log:" >&2
    tail -40 "$log" >&2
    if [ -n "${art:-}" ]; then
      echo "fuzz: keep it as a regression once fixed:" >&2
      echo "  cp $art $here/regressions/$h/" >&2
    fi
  fi
  summary+=("$line")
done
echo "fuzz: summary"
printf '  %s\n' "${summary[@]}"
exit $failed
