#!/usr/bin/env bash
# Control plane scale runs (issue: 5,000 proxies converge within 5 s; RSS ≤ 1 GiB at 5,000 × 100).
# Builds meshguard, then runs bench/xdsscale for each (proxies, services) pair.
set -euo pipefail
cd "$(dirname "$0")/.."
ulimit -n 20000 2>/dev/null || true
go build -o bin/meshguard ./cmd/meshguard
echo "| proxies | services | initial sync (all ACKed) | route change → affected ACKed | CPU-s | global change → all ACKed | CPU-s | RSS MiB | peak RSS MiB |"
echo "|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
for pair in ${PAIRS:-"100 100" "100 1000" "1000 100" "1000 1000" "5000 100" "5000 1000"}; do
  set -- $pair
  go run ./bench/xdsscale -meshguard bin/meshguard -proxies "$1" -services "$2" 2>/dev/null | grep '^|'
done
