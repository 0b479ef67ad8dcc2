#!/usr/bin/env bash
# Failover as `synodctl counter add` loops see it: 3 real replicas on
# 127.0.0.1, LOOPS shell loops each running `synodctl --timeout 2s counter
# add` back to back, and one fault in the middle of the run:
#   MODE=stop    the leader is SIGSTOPped for FAULT_S seconds, then SIGCONT
#   MODE=kill    the leader is SIGKILLed, restarted FAULT_S seconds later
#   MODE=silent  a fourth endpoint that accepts connections and never
#                answers is in every client's list for the whole run
# Prints acknowledged adds/s before, during and after the fault, and the
# longest gap between two acknowledged adds (over all loops).
#
# usage: bench/failover.sh [BIN_DIR]   (default build/bin)
# env:   MODE (stop), LOOPS (4), BEFORE_S (4), FAULT_S (6), AFTER_S (4),
#        SYNODCTL_ARGS (extra global options, e.g. "--connect-timeout 300ms")
set -euo pipefail

bin=${1:-build/bin}
mode=${MODE:-stop}
loops=${LOOPS:-4}
before_s=${BEFORE_S:-4}
fault_s=${FAULT_S:-6}
after_s=${AFTER_S:-4}
extra=${SYNODCTL_ARGS:-}
synodd=$bin/synodd
synodctl=$bin/synodctl
dir=$(mktemp -d "${TMPDIR:-/tmp}/synod-failover-XXXXXX")
base=$((21000 + (RANDOM % 400) * 10))
pids=()
silent_pid=

cleanup() {
  for p in "${pids[@]}" $silent_pid; do
    kill -CONT "$p" 2>/dev/null || true
    kill -KILL "$p" 2>/dev/null || true
  done
  wait 2>/dev/null || true
  rm -rf "$dir"
}
trap cleanup EXIT

peers=
endpoints=
for i in 0 1 2; do
  peers+="${peers:+,}synod-$i=127.0.0.1:$((base + 10 * i + 1))"
  endpoints+="${endpoints:+,}127.0.0.1:$((base + 10 * i))"
done

start_replica() {
  local i=$1
  "$synodd" --name "synod-$i" --data "$dir/synod-$i" \
    --client "127.0.0.1:$((base + 10 * i))" \
    --peer "127.0.0.1:$((base + 10 * i + 1))" --peers "$peers" \
    >>"$dir/synod-$i.log" 2>&1 &
  pids[i]=$!
}

for i in 0 1 2; do
  mkdir -p "$dir/synod-$i"
  start_replica "$i"
done

# The leader's index, once all three replicas name the same one.
leader_index() {
  local deadline=$((SECONDS + 30)) out name
  while ((SECONDS < deadline)); do
    out=$("$synodctl" --endpoints "$endpoints" --timeout 1s status --json \
      2>/dev/null || true)
    name=$(printf '%s' "$out" | sed -n 's/.*"leader":"synod-\([0-9]\)".*/\1/p')
    if [[ -n "$name" ]] && [[ $(printf '%s' "$out" |
      grep -o '"leader":"synod-[0-9]"' | sort -u | wc -l) -eq 1 ]]; then
      echo "$name"
      return 0
    fi
    sleep 0.1
  done
  echo "no leader within 30 s (logs in $dir)" >&2
  exit 1
}

if [[ $mode == silent ]]; then
  # Listens with a backlog and never accepts: the kernel completes every
  # handshake and nobody ever reads.
  python3 -c '
import socket, sys, time
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[1]))); s.listen(4096)
time.sleep(3600)' "$((base + 30))" &
  silent_pid=$!
  endpoints+=",127.0.0.1:$((base + 30))"
fi

leader=$(leader_index)
"$synodctl" --endpoints "$endpoints" counter set failover 0 >/dev/null

total_s=$((before_s + fault_s + after_s))
t0=$EPOCHREALTIME
for ((l = 0; l < loops; l++)); do
  (
    end=$(awk -v t="$t0" -v d="$total_s" 'BEGIN { printf "%d", t + d }')
    while ((${EPOCHREALTIME%.*} < end)); do
      # shellcheck disable=SC2086
      if "$synodctl" --endpoints "$endpoints" --timeout 2s $extra \
        counter add failover 1 >/dev/null 2>>"$dir/loop-$l.err"; then
        echo "$EPOCHREALTIME" >>"$dir/acks"
      fi
    done
  ) &
done

sleep "$before_s"
fault_at=$EPOCHREALTIME
case $mode in
stop)
  kill -STOP "${pids[leader]}"
  sleep "$fault_s"
  kill -CONT "${pids[leader]}"
  ;;
kill)
  kill -KILL "${pids[leader]}"
  wait "${pids[leader]}" 2>/dev/null || true
  sleep "$fault_s"
  start_replica "$leader"
  ;;
silent)
  sleep "$fault_s"
  ;;
esac
fault_end=$EPOCHREALTIME
wait_loops() {
  local p
  for p in $(jobs -p); do
    case " ${pids[*]} $silent_pid " in *" $p "*) continue ;; esac
    wait "$p" || true
  done
}
wait_loops

final=$("$synodctl" --endpoints "$endpoints" --timeout 10s counter get failover)
acks=$(wc -l <"$dir/acks")
echo "mode=$mode loops=$loops leader=synod-$leader fault=${fault_s}s" \
  "acknowledged=$acks counter=$final"
sort -n "$dir/acks" | awk -v t0="$t0" -v f0="$fault_at" -v f1="$fault_end" \
  -v b="$before_s" -v a="$after_s" '
  { t = $1 + 0
    if (t < f0) pre++; else if (t < f1) during++; else post++
    if (NR > 1 && t - last > gap) { gap = t - last; gap_at = last - f0 }
    last = t }
  END {
    printf "adds/s before %.0f, during the fault %.0f, after %.0f\n",
      pre / b, during / (f1 - f0), post / a
    printf "longest gap between acknowledged adds: %.0f ms " \
      "(starting %.1f s after the fault began)\n", gap * 1000, gap_at
  }'
if [[ $acks -ne $final ]]; then
  echo "MISMATCH: $acks acknowledged adds, counter $final" \
    "(a timed-out add may have been applied)"
fi
