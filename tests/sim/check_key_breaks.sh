#!/bin/sh
# Every key check can fail: the seed passes as it is, and each --break-keys
# mode (a corruption of the apply-order model, a watcher or the key
# history, once) makes it fail with the check that mode targets.
# Usage: check_key_breaks.sh SYNOD_SIM SEED
sim="$1"
seed="$2"
out=/tmp/synod-sim-key-breaks.$$
status=0
if ! "$sim" --seed "$seed" --keys > "$out" 2>&1; then
  cat "$out"
  echo "key breaks: seed $seed fails unbroken"
  status=1
fi
while read -r mode pattern; do
  if "$sim" --seed "$seed" --break-keys "$mode" > "$out" 2>&1; then
    echo "key breaks: $mode (seed $seed): the run passed; the check missed it"
    status=1
  elif ! grep -q "^FAIL seed $seed .*$pattern" "$out"; then
    grep '^FAIL' "$out"
    echo "key breaks: $mode (seed $seed): failed, but not with /$pattern/"
    status=1
  else
    echo "key breaks: $mode: $(grep -m1 '^FAIL' "$out" | sed 's/[^:]*: //' | cut -c1-110)"
  fi
done <<'MODES'
session-end keys: after entry [0-9]* the fsm
atomic keys: after entry [0-9]* the fsm
compare keys: entry [0-9]* .*the compare
stale-read linearizability: key k/
gap watch: w[0-9]* on r[0-9]* skips revision
duplicate watch: w[0-9]* on r[0-9]* delivers revision [0-9]* after
agreement watch: w[0-9]* on r[0-9]* delivers revision [0-9]* without
MODES
rm -f "$out"
exit $status
