#!/usr/bin/env bash
# How long a cluster is without a leader after its leader is SIGKILLed:
# 3 real replicas on 127.0.0.1 (with --http), KILLS times: find the leader,
# SIGKILL it, poll the survivors' /healthz every 10 ms until one of them
# leads in a higher term, restart the killed replica, wait until every
# replica is ready again. Prints each gap and the median.
#
# usage: bench/leader_kill.sh [BIN_DIR]   (default build/bin)
# env:   KILLS (20)
set -euo pipefail

bin=${1:-build/bin}
kills=${KILLS:-20}
synodd=$bin/synodd
dir=$(mktemp -d "${TMPDIR:-/tmp}/synod-leader-kill-XXXXXX")
base=$((23000 + (RANDOM % 400) * 10))
pids=()

cleanup() {
  for p in "${pids[@]}"; do
    kill -KILL "$p" 2>/dev/null || true
  done
  wait 2>/dev/null || true
  [[ -n ${KEEP:-} ]] && echo "kept $dir" >&2 || rm -rf "$dir"
}
trap cleanup EXIT

peers=
for i in 0 1 2; do
  peers+="${peers:+,}synod-$i=127.0.0.1:$((base + 10 * i + 1))"
done
http() { echo "127.0.0.1:$((base + 10 * $1 + 2))"; }

start_replica() {
  local i=$1
  mkdir -p "$dir/synod-$i"
  "$synodd" --name "synod-$i" --data "$dir/synod-$i" \
    --client "127.0.0.1:$((base + 10 * i))" \
    --peer "127.0.0.1:$((base + 10 * i + 1))" --peers "$peers" \
    --http "$(http "$i")" >>"$dir/synod-$i.log" 2>&1 &
  pids[i]=$!
}

# "role term" of replica i, or "down 0".
role_term() {
  local j
  j=$(curl -s --max-time 0.5 "http://$(http "$1")/healthz" || true)
  [[ -n "$j" ]] || { echo "down 0"; return; }
  sed -E 's/.*"role":"([a-z-]+)".*"term":([0-9]+).*/\1 \2/' <<<"$j"
}

# Waits (at most 20 s) until every replica is ready; prints the leader.
wait_ready() {
  local deadline=$((SECONDS + 20)) i leader
  while ((SECONDS < deadline)); do
    leader=
    for i in 0 1 2; do
      curl -sf --max-time 0.5 "http://$(http "$i")/readyz" >/dev/null ||
        continue 2
      read -r role _ < <(role_term "$i")
      [[ $role == leader ]] && leader=$i
    done
    [[ -n $leader ]] && { echo "$leader"; return; }
    sleep 0.05
  done
  echo "no ready cluster within 20 s (logs in $dir)" >&2
  exit 1
}

for i in 0 1 2; do start_replica "$i"; done
gaps=()
for ((k = 1; k <= kills; k++)); do
  leader=$(wait_ready)
  read -r _ term < <(role_term "$leader")
  t0=$(date +%s%N)
  kill -KILL "${pids[leader]}"
  wait "${pids[leader]}" 2>/dev/null || true
  found=
  while [[ -z $found ]]; do
    for i in 0 1 2; do
      ((i == leader)) && continue
      read -r role t < <(role_term "$i")
      if [[ $role == leader && $t -gt $term ]]; then found=$i; fi
    done
    if (($(date +%s%N) - t0 > 10000000000)); then
      echo "kill $k: no new leader within 10 s" >&2
      exit 1
    fi
    [[ -n $found ]] || sleep 0.01
  done
  gap_ms=$((($(date +%s%N) - t0) / 1000000))
  gaps+=("$gap_ms")
  echo "kill $k: synod-$leader (term $term) -> synod-$found in $gap_ms ms"
  start_replica "$leader"
done
median=$(printf '%s\n' "${gaps[@]}" | sort -n | awk '{a[NR]=$1} END {
  print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2 }')
echo "leader SIGKILLed $kills times: median gap $median ms" \
  "(min $(printf '%s\n' "${gaps[@]}" | sort -n | head -1)," \
  "max $(printf '%s\n' "${gaps[@]}" | sort -n | tail -1))"
