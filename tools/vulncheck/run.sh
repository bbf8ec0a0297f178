#!/usr/bin/env bash
# govulncheck over every package, against a vulnerability database built
# offline from the Go module golang.org/x/vulndb (its data/osv, indexed by
# its cmd/indexdb): no network but the Go module proxy. Fails on any
# vulnerability the code can reach. Tool and database are built once per
# machine into the cache (~/.cache/meshguard).
set -euo pipefail
cd "$(dirname "$0")/../.."
CACHE="${MESHGUARD_CACHE:-$HOME/.cache/meshguard}"
VULN_VERSION=v1.9.0
VULNDB_VERSION=v0.0.0-20261105234957-e22db6528018
DB="$CACHE/vulndb-$VULNDB_VERSION"
# govulncheck type-checks the standard library of the Go that runs it, so
# it is built with the toolchain go.mod names (one binary per Go version).
TOOL="$CACHE/bin/govulncheck-$VULN_VERSION-$(go env GOVERSION)"
mkdir -p "$CACHE/bin"
if [ ! -x "$TOOL" ]; then
  GOBIN="$CACHE/bin" go install "golang.org/x/vuln/cmd/govulncheck@$VULN_VERSION"
  mv "$CACHE/bin/govulncheck" "$TOOL"
fi
if [ ! -f "$DB/index/db.json" ]; then
  src=$(go mod download -json "golang.org/x/vulndb@$VULNDB_VERSION" | sed -n 's/^\t"Dir": "\(.*\)",$/\1/p')
  rm -rf "$DB.tmp"
  go run "golang.org/x/vulndb/cmd/indexdb@$VULNDB_VERSION" -vulns "$src/data/osv" -out "$DB.tmp"
  mv "$DB.tmp" "$DB"
fi
echo "govulncheck $VULN_VERSION, database golang.org/x/vulndb@$VULNDB_VERSION, $(go version)"
"$TOOL" -db "file://$DB" ./...
