#!/usr/bin/env bash
# Installs the Debian packages synod builds with, if any is missing; with
# --test, also what only the tests use (valgrind, openssl, prometheus,
# chromium, node and npm with the manifest validator and the browser
# driver), so `make run` never waits on the npm registry.
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
  chromium                           # the status page in a headless browser (tests/browser)
  clang libclang-rt-14-dev           # libFuzzer, ASan, UBSan for the fuzz harnesses (tests/fuzz)
  iproute2 iptables                  # namespaces, veths, faults of tests/nemesis (iptables-legacy, tc htb)
  libfaketime                        # a replica whose clock runs 1.5x fast (tests/nemesis)
  libnetfilter-queue-dev             # delay and jitter without netem: tests/nemesis/delay.c (NFQUEUE)
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

# npm packages of the tests, each pinned by its package-lock.json, into its
# node_modules (git-ignored): the manifest validator (tests/k8s:
# kubernetes-models, yaml) and the browser driver (tests/browser:
# playwright-core, which drives Debian's chromium and downloads nothing).
root="$(cd "$(dirname "$0")/.." && pwd)"
for dir in "$root/tests/k8s" "$root/tests/browser"; do
  if [[ $for_tests -eq 1 ]] && [[ ! -f "$dir/node_modules/.package-lock.json" ||
        "$dir/package-lock.json" -nt "$dir/node_modules/.package-lock.json" ]]; then
    echo "deps: npm ci in $dir"
    (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
  fi
done
