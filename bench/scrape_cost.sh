#!/usr/bin/env bash
# What a Prometheus scrape of every replica each second costs the
# cluster's throughput: synod-bench with 64 clients adding to their own
# counters, ROUNDS times without and with --scrape-ms 1000, alternately
# (each run a median of 3), then the median of each and their difference.
#
# usage: bench/scrape_cost.sh [BIN_DIR]   (default build/bin)
# env:   ROUNDS (4), CLIENTS (64), WORKLOAD (counter-own)
set -euo pipefail

bin=${1:-build/bin}
rounds=${ROUNDS:-4}
clients=${CLIENTS:-64}
workload=${WORKLOAD:-counter-own}
off=()
on=()

one() { # prints the run's synod ops/s
  "$bin/synod-bench" --synod-only --workloads "$workload" --clients "$clients" \
    --repeat 3 --json "$@" 2>>"${TMPDIR:-/tmp}/scrape_cost.err" |
    grep -m1 '"ops_per_s"' | sed -E 's/[^0-9.]//g'
}

median() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {
  print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }

for ((r = 1; r <= rounds; r++)); do
  off+=("$(one)")
  on+=("$(one --scrape-ms 1000)")
  echo "round $r: without scrapes ${off[-1]} ops/s, with ${on[-1]} ops/s"
done
m_off=$(median "${off[@]}")
m_on=$(median "${on[@]}")
echo "$workload, $clients clients, medians of $rounds runs:" \
  "without scrapes $m_off ops/s, with a scrape of every replica each" \
  "second $m_on ops/s ($(awk -v a="$m_off" -v b="$m_on" \
    'BEGIN { printf "%+.1f%%", (b - a) / a * 100 }'))"
grep -h "scraped /metrics" "${TMPDIR:-/tmp}/scrape_cost.err" | tail -1 || true
