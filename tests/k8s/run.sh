#!/bin/sh
# Runs the manifest checks (check_manifests.mjs) under node's test runner;
# exits 77 (skipped) when node or the npm packages are missing, which
# scripts/deps.sh installs.
dir=$(cd "$(dirname "$0")" && pwd)
if ! command -v node >/dev/null 2>&1; then
  echo "SKIP: node is not installed (scripts/deps.sh installs it)"
  exit 77
fi
if [ ! -f "$dir/node_modules/kubernetes-models/package.json" ] ||
   [ ! -f "$dir/node_modules/yaml/package.json" ]; then
  echo "SKIP: npm packages missing in $dir (scripts/deps.sh runs npm ci)"
  exit 77
fi
exec node --test "$dir/check_manifests.mjs"
