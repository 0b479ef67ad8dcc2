#!/bin/sh
# Replays every seed in regressions.txt (lines: SEED REPLICAS [STEPS
# [FLAGS...]] # what it found). Fails if any of them fails.
sim="$1"
list="$2"
status=0
count=0
while IFS= read -r line; do
  line=${line%%#*}
  # shellcheck disable=SC2086
  set -- $line
  [ $# -ge 2 ] || continue
  seed=$1
  replicas=$2
  steps=${3:-20000}
  shift $(($# < 3 ? $# : 3))
  count=$((count + 1))
  if ! "$sim" --seed "$seed" --replicas "$replicas" --steps "$steps" "$@" \
      > /tmp/synod-sim-regression.$$ 2>&1; then
    cat /tmp/synod-sim-regression.$$
    echo "regression: seed $seed replicas $replicas steps $steps $* FAILED"
    status=1
  fi
done < "$list"
rm -f /tmp/synod-sim-regression.$$
echo "regressions: $count seeds replayed"
exit $status
