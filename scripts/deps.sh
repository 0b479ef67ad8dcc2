#!/usr/bin/env bash
# Installs the Debian packages synod builds and tests with, if any is missing.
# Idempotent and quiet when everything is present. Run as root (or via sudo).
set -euo pipefail

pkgs=(
  build-essential cmake pkg-config   # compiler, build system
  libuv1-dev                         # event loop, TCP, timers, threads (server/net, clientlib)
  liblmdb-dev lmdb-utils             # storage: log, hard state, snapshots (server/store)
  zlib1g-dev                         # crc32 of stored entries and records (server/store)
  libprotobuf-c-dev protobuf-c-compiler  # wire schema and its C code generator (proto/)
  libcurl4-openssl-dev               # Kubernetes API discovery (server/discovery)
  libjansson-dev                     # JSON: Kubernetes API replies, --json output
  check                              # unit test framework (tests/unit)
  valgrind                           # memory checking of the unit tests
  openssl                            # test certificates for the discovery tests
)

missing=()
for p in "${pkgs[@]}"; do
  status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
  [[ "$status" == "install ok installed" ]] || missing+=("$p")
done
[[ ${#missing[@]} -eq 0 ]] && exit 0

echo "deps: installing ${missing[*]}"
SUDO=""
[[ $(id -u) -eq 0 ]] || SUDO=sudo
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
