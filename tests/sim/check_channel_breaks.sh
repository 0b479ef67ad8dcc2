#!/bin/sh
# Every channel check can fail: the seed passes as it is, and each
# --break-channels mode (a corruption of the recorded channel history, or
# of one read) makes it fail with the rule that mode targets.
# Usage: check_channel_breaks.sh SYNOD_SIM SEED SPLIT_BATCH_SEED
sim="$1"
seed="$2"
split_seed="$3"
out=/tmp/synod-sim-breaks.$$
status=0
if ! "$sim" --seed "$seed" --channels > "$out" 2>&1; then
  cat "$out"
  echo "channel breaks: seed $seed fails unbroken"
  status=1
fi
while read -r mode s pattern; do
  [ "$s" = split ] && s=$split_seed || s=$seed
  if "$sim" --seed "$s" --break-channels "$mode" > "$out" 2>&1; then
    echo "channel breaks: $mode (seed $s): the run passed; the check missed it"
    status=1
  elif ! grep -q "^FAIL seed $s .*$pattern" "$out"; then
    grep '^FAIL' "$out"
    echo "channel breaks: $mode (seed $s): failed, but not with /$pattern/"
    status=1
  else
    echo "channel breaks: $mode: $(grep -m1 '^FAIL' "$out" | sed 's/.*: channels: //' | cut -c1-110)"
  fi
done <<'MODES'
gap seed channels: gap:
duplicate seed channels: duplicate:
compacted seed channels: compacted:
interleaving seed channels: interleaving:
index-order seed channels: index order:
agreement seed channels: agreement:
exactly-once seed channels: exactly-once: publish [0-9]* part [0-9]* appears
refused seed channels: exactly-once: publish [0-9]* was refused
acknowledged seed channels: acknowledged:
lost seed channels: lost:
real-time seed channels: real-time: publish [0-9]* to ch
real-time-index seed channels: real-time: publish [0-9]* (ch
range seed channels: .*past the end (SYNOD_ERANGE)
split-batch split channels: gap: s[0-9]*/ch\*
MODES
rm -f "$out"
exit $status
