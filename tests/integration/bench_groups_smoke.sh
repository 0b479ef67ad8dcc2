#!/bin/sh
# synod-bench-groups end to end, briefly, synod's side only: a 3-replica
# cluster, every workload small (0.5 s runs, 8 senders, view changes at 6
# members, a 2 MiB checkpoint); the run must give every synod figure and
# no FAIL. Skipped (77) when the bench's peers are not installed
# (corosync and a JDK: `make bench-groups` installs them), as the bench
# is then not what someone runs. Figures are not judged here (see
# bench/README.md).
set -eu
bench=${SYNOD_BENCH_GROUPS:?SYNOD_BENCH_GROUPS is the synod-bench-groups binary}
for peer in /usr/sbin/corosync /usr/bin/java; do
  if [ ! -x "$peer" ]; then
    echo "bench_groups_smoke: skipped: no $peer (make bench-groups installs the peers)"
    exit 77
  fi
done
mkdir -p "${TMPDIR:-/tmp}"
out=$(mktemp)
trap 'rm -f "$out"' EXIT

if ! timeout 120 "$bench" --quick --systems synod --seconds 0.5 --warmup 0.2 \
    --senders 8 --view-members 6 --checkpoint-mib 2 --max-minutes 2 \
    --dir "${TMPDIR:-/tmp}" >"$out" 2>&1; then
  echo "bench_groups_smoke: synod-bench-groups failed:" >&2
  cat "$out" >&2
  exit 1
fi
# Every row of the table has a synod figure (its second column).
missing=$(grep '^| ' "$out" | grep -v '^| workload' | awk -F'|' '$3 ~ /^ *- *$/' || true)
if [ -n "$missing" ] || grep -q 'FAIL' "$out"; then
  echo "bench_groups_smoke: a synod figure is missing, or a FAIL:" >&2
  cat "$out" >&2
  exit 1
fi
echo "bench_groups_smoke: every synod workload ran"
