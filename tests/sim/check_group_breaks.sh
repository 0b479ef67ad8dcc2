#!/bin/sh
# Every group check can fail: the seed passes as it is, and each
# --break-groups mode (a bug planted once in the members' readers) makes
# it fail with the check that mode targets.
# Usage: check_group_breaks.sh SYNOD_SIM SEED
sim="$1"
seed="$2"
out=/tmp/synod-sim-group-breaks.$$
status=0
if ! "$sim" --seed "$seed" --groups > "$out" 2>&1; then
  cat "$out"
  echo "group breaks: seed $seed fails unbroken"
  status=1
fi
while read -r mode pattern; do
  if "$sim" --seed "$seed" --break-groups "$mode" > "$out" 2>&1; then
    echo "group breaks: $mode (seed $seed): the run passed; the check missed it"
    status=1
  elif ! grep -q "^FAIL seed $seed .*$pattern" "$out"; then
    grep '^FAIL' "$out"
    echo "group breaks: $mode (seed $seed): failed, but not with /$pattern/"
    status=1
  else
    echo "group breaks: $mode: $(grep -m1 '^FAIL' "$out" | sed 's/[^:]*: //' | cut -c1-110)"
  fi
done <<'MODES'
misaddressed groups: misaddressed: g[0-9]/c[0-9]*.t[0-9]@[0-9]* received offset [0-9]* (kind [23]), addressed to
gap groups: stream: g[0-9]/.* skips offset [0-9]* (kind 2)
duplicate groups: stream: g[0-9]/.* again
view groups: views: g[0-9]/.* disagrees on view
same-view groups: same-view delivery: in g[0-9] between views
state groups: state: g[0-9]/.* is not the state of a member there from the start
MODES
rm -f "$out"
exit $status
