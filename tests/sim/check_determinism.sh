#!/bin/sh
# The same seed must give byte-identical runs: compare digests of the full
# trace (every core trace line and harness event) of two runs per seed.
sim="$1"
for args in "--seed 7 --replicas 3" "--seed 8 --replicas 5" \
            "--seed 12345 --replicas 3 --steps 40000" \
            "--seed 9 --replicas 3 --clients 4" \
            "--seed 100009 --replicas 5 --clients 6" \
            "--seed 11 --replicas 3 --channels" \
            "--seed 100011 --replicas 5 --clients 5 --channels" \
            "--seed 21 --replicas 3 --push" \
            "--seed 24 --replicas 3 --push --sinks" \
            "--seed 22 --replicas 3 --keys --push" \
            "--seed 23 --replicas 3 --groups --push" \
            "--seed 13 --replicas 3 --groups" \
            "--seed 13 --replicas 3 --keys"; do
  a=$("$sim" $args --digest | grep digest)
  b=$("$sim" $args --digest | grep digest)
  if [ -z "$a" ] || [ "$a" != "$b" ]; then
    echo "determinism: $args: '$a' != '$b'"
    exit 1
  fi
  echo "determinism: $args: $a (twice)"
done
