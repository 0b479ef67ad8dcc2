#!/bin/sh
# A replica started with SIGCHLD ignored (a parent's setting survives
# exec) still takes its snapshots in a child process and trusts only the
# ones the child finished: synodd sets SIGCHLD back to the default, so
# waitpid sees how each child ended. Before, the kernel reaped the
# children, waitpid failed unchecked, and a child killed midway gave an
# empty image that became the snapshot (found by review). A one-replica
# cluster, --snapshot-fork always, 300 adds, a restart from the snapshot.
# (bash, not sh, for the start: dash does not pass an ignored SIGCHLD on.)
set -eu
synodd=${SYNOD_SYNODD:?SYNOD_SYNODD is the synodd binary}
synodctl=${SYNOD_SYNODCTL:?SYNOD_SYNODCTL is the synodctl binary}
dir=$(mktemp -d "${TMPDIR:-/tmp}/snapshot_child.XXXXXX")
pid=
cleanup() {
  if [ -n "$pid" ]; then
    kill "$pid" 2>/dev/null || true
  fi
  rm -rf "$dir"
}
trap cleanup EXIT

# Two free ports on 127.0.0.1.
port() {
  p=$(( 20000 + ($$ * 7 + $1 * 131) % 20000 ))
  while ss -Hltn "sport = :$p" | grep -q .; do
    p=$(( p + 1 ))
  done
  echo "$p"
}
client=$(port 1)
peer=$(port 2)
[ "$peer" != "$client" ] || peer=$(( client + 1 ))

start() {
  bash -c "trap '' CHLD; exec '$synodd' --name a --data '$dir/a' \
    --client 127.0.0.1:$client --peer 127.0.0.1:$peer \
    --peers a=127.0.0.1:$peer --snapshot-entries 100 \
    --snapshot-fork always" >>"$dir/log" 2>&1 &
  pid=$!
}

# The counter's value, waiting up to 10 s for the replica to answer.
value() {
  i=0
  until v=$("$synodctl" --endpoints "127.0.0.1:$client" counter get c \
      2>/dev/null); do
    i=$(( i + 1 ))
    if [ "$i" -ge 100 ]; then
      echo "snapshot_child: the replica does not answer:" >&2
      cat "$dir/log" >&2
      exit 1
    fi
    sleep 0.1 # nothing to wait on but the replica's port
  done
  echo "$v"
}

start
value >/dev/null
ignored=$(awk '/^SigIgn:/ { print $2 }' "/proc/$pid/status")
if [ $(( 0x$ignored >> 16 & 1 )) -ne 0 ]; then
  echo "snapshot_child: synodd left SIGCHLD ignored (SigIgn $ignored)" >&2
  exit 1
fi
i=0
while [ "$i" -lt 300 ]; do
  "$synodctl" --endpoints "127.0.0.1:$client" counter add c 1 >/dev/null
  i=$(( i + 1 ))
done
taken=$(grep -c 'node: snapshot at [0-9]* (term [0-9]*): [1-9]' "$dir/log" \
  || true)
if [ "$taken" -lt 1 ] || grep -q 'child encoding it failed' "$dir/log"; then
  echo "snapshot_child: $taken snapshots taken by a child:" >&2
  cat "$dir/log" >&2
  exit 1
fi
kill "$pid"
wait "$pid" || true
pid=
start
v=$(value)
if [ "$v" != "300" ]; then
  echo "snapshot_child: after the restart the counter is '$v', not 300:" >&2
  cat "$dir/log" >&2
  exit 1
fi
echo "ok snapshot_child: $taken snapshots encoded by children with SIGCHLD" \
  "ignored at start; restarted from the last, counter 300"
