#!/bin/sh
# synod-bench end to end, briefly: a 3-replica synod cluster, every
# workload with 1 and 5 clients split over 2 load generator threads; the
# run must pass its own checks (counter-shared read back once both
# threads are done, counter-own per client, lock tokens growing) and
# report operations. Then the key workloads in small: key-put and key-get
# with 4 clients, 20,000 keys filled and listed, a session of 5,000 keys
# ended and every delete watched. Figures are not judged here (see
# bench/README.md).
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

if ! timeout 120 "$bench" --synod-only --workloads keys --seconds 0.5 \
    --warmup 0.2 --repeat 1 --clients 4 --threads 2 --keys 20000 \
    --expiry-keys 5000 --max-minutes 2 --json >"$out"; then
  echo "bench_smoke: synod-bench --workloads keys failed (exit $?):" >&2
  cat "$out" >&2
  exit 1
fi
for want in '"checks_passed": true' '"listed": 20000' '"watch_deletes": 5000'; do
  if ! grep -q "$want" "$out"; then
    echo "bench_smoke: keys: no '$want' in the report:" >&2
    cat "$out" >&2
    exit 1
  fi
done
rows=$(grep -c '"ops_per_s": [1-9]' "$out" || true)
if [ "$rows" -ne 2 ]; then
  echo "bench_smoke: keys: $rows of 2 key workloads report operations:" >&2
  cat "$out" >&2
  exit 1
fi
echo "bench_smoke: 6 configurations and the key workloads ran and passed their checks"
