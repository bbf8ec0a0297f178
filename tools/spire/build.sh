#!/usr/bin/env bash
# Builds SPIRE server and agent v1.13.3 from the Go module proxy into the
# cache (default ~/.cache/meshguard/spire-v1.13.3/bin), once per machine.
# Used by the identity integration tests (identity/spire_test.go).
set -euo pipefail
VERSION=v1.13.3
CACHE="${MESHGUARD_CACHE:-$HOME/.cache/meshguard}"
OUT="$CACHE/spire-$VERSION/bin"
if [ -x "$OUT/spire-server" ] && [ -x "$OUT/spire-agent" ]; then
  echo "SPIRE $VERSION already built in $OUT"
  exit 0
fi
WORK="$CACHE/spire-$VERSION/module"
mkdir -p "$WORK" "$OUT"
cd "$WORK"
if [ ! -f go.mod ]; then
  go mod init meshguard.local/spire-tools >/dev/null 2>&1
fi
go get -tool "github.com/spiffe/spire/cmd/spire-server@$VERSION" "github.com/spiffe/spire/cmd/spire-agent@$VERSION"
go build -o "$OUT/" github.com/spiffe/spire/cmd/spire-server github.com/spiffe/spire/cmd/spire-agent
echo "built SPIRE $VERSION into $OUT"
