#!/usr/bin/env bash
# Load run: meshguard's rate-limit service against the reference,
# envoyproxy/ratelimit, on one Redis (bench/rlsload). Installs the reference
# into the cache once, builds meshguard, prints a markdown report.
#
#   bash bench/ratelimit-load.sh [-rounds 3] [-duration 6s] [-c 16,64]
set -euo pipefail
cd "$(dirname "$0")/.."
CACHE="${MESHGUARD_CACHE:-$HOME/.cache/meshguard}"
REF_VERSION=v1.4.1-0.20260122083618-3fb702589d36
mkdir -p "$CACHE/bin" bin
if [ ! -x "$CACHE/bin/service_cmd" ]; then
  GOBIN="$CACHE/bin" go install "github.com/envoyproxy/ratelimit/src/service_cmd@$REF_VERSION"
fi
command -v redis-server >/dev/null || { echo "redis-server is needed (apt-get install redis-server)" >&2; exit 1; }
go build -o bin/meshguard ./cmd/meshguard
go build -o bin/rlsload ./bench/rlsload
./bin/rlsload -meshguard bin/meshguard -reference "$CACHE/bin/service_cmd" "$@"
