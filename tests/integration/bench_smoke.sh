#!/bin/sh
# synod-bench end to end, briefly: a 3-replica synod cluster, every
# workload with 1 and 5 clients split over 2 load generator threads; the
# run must pass its own checks (counter-shared read back once both
# threads are done, counter-own per client, lock tokens growing) and
# report operations. Figures are not judged here (see bench/README.md).
set -eu
bench=${SYNOD_BENCH:?SYNOD_BENCH is the synod-bench binary}
mkdir -p "${TMPDIR:-/tmp}"
out=$(mktemp)
trap 'rm -f "$out"' EXIT

if ! timeout 120 "$bench" --synod-only --seconds 0.5 --warmup 0.2 \
    --repeat 1 --clients 1,5 --threads 2 --json >"$out"; then
  echo "bench_smoke: synod-bench failed (exit $?):" >&2
  cat "$out" >&2
  exit 1
fi
for want in '"threads": 2' '"checks_passed": true'; do
  if ! grep -q "$want" "$out"; then
    echo "bench_smoke: no '$want' in the report:" >&2
    cat "$out" >&2
    exit 1
  fi
done
rows=$(grep -c '"ops_per_s": [1-9]' "$out" || true)
if [ "$rows" -ne 6 ]; then
  echo "bench_smoke: $rows of 6 configurations report operations:" >&2
  cat "$out" >&2
  exit 1
fi
echo "bench_smoke: 6 configurations ran and passed their checks"
