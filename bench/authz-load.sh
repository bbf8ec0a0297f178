#!/usr/bin/env bash
# Load run for the ext_authz server (issue: decision path and gRPC throughput).
# Builds meshguard and the no-op floor server, installs ghz into the cache,
# and runs bench/authzload, which alternates ghz runs against both.
set -euo pipefail
cd "$(dirname "$0")/.."
CACHE="${MESHGUARD_CACHE:-$HOME/.cache/meshguard}"
mkdir -p "$CACHE/bin" bin
if [ ! -x "$CACHE/bin/ghz" ]; then
  GOBIN="$CACHE/bin" go install github.com/bojand/ghz/cmd/ghz@v0.93.0
fi
go build -o bin/meshguard ./cmd/meshguard
go build -o bin/noopauthz ./bench/noopauthz
go run ./bench/authzload -meshguard bin/meshguard -noop bin/noopauthz -ghz "$CACHE/bin/ghz" "$@"
