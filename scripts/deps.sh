#!/usr/bin/env bash
# Installs the Debian packages synod builds with, if any is missing; with
# --test, also what only the tests use (valgrind, openssl, promtool, node and
# npm with the manifest validator), so `make run` never waits on the npm
# registry.
# Idempotent and quiet when everything is present. Run as root (or via sudo).
set -euo pipefail

for_tests=0
[[ "${1:-}" == "--test" ]] && for_tests=1

pkgs=(
  build-essential cmake pkg-config   # compiler, build system
  libuv1-dev                         # event loop, TCP, timers, threads (server/net, clientlib)
  liblmdb-dev lmdb-utils             # storage: log, hard state, snapshots (server/store)
  zlib1g-dev                         # crc32 of stored entries and records (server/store)
  libprotobuf-c-dev protobuf-c-compiler  # wire schema and its C code generator (proto/)
  libcurl4-openssl-dev               # Kubernetes API discovery (server/discovery)
  libjansson-dev                     # JSON: Kubernetes API replies, --json output, HTTP API
  libh2o-dev                         # picohttpparser, the HTTP request parser (server/http)
  check                              # unit test framework (tests/unit; built with the rest)
  libssl-dev                         # the fake Kubernetes API (HTTPS) in tests/integration
)
test_pkgs=(
  valgrind                           # memory checking of the unit tests
  openssl                            # test certificates for the discovery tests
  prometheus                         # a real scraper and promtool (tests/integration: prometheus, metrics)
)
[[ $for_tests -eq 1 ]] && pkgs+=("${test_pkgs[@]}")

missing=()
for p in "${pkgs[@]}"; do
  status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
  [[ "$status" == "install ok installed" ]] || missing+=("$p")
done
# node and npm run the Kubernetes manifest checks (tests/k8s). A node that
# is already installed (from any source, which may bundle npm) is kept.
if [[ $for_tests -eq 1 ]]; then
  command -v npm >/dev/null 2>&1 || missing+=(nodejs npm)
fi

SUDO=""
[[ $(id -u) -eq 0 ]] || SUDO=sudo
if [[ ${#missing[@]} -gt 0 ]]; then
  echo "deps: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# The manifest validator (npm kubernetes-models, yaml), pinned by
# tests/k8s/package-lock.json, into tests/k8s/node_modules (git-ignored).
k8s_tests="$(cd "$(dirname "$0")/.." && pwd)/tests/k8s"
if [[ $for_tests -eq 1 ]] && [[ ! -f "$k8s_tests/node_modules/.package-lock.json" ||
      "$k8s_tests/package-lock.json" -nt "$k8s_tests/node_modules/.package-lock.json" ]]; then
  echo "deps: npm ci in $k8s_tests"
  (cd "$k8s_tests" && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
fi
