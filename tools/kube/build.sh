#!/usr/bin/env bash
# Builds kube-apiserver v1.37.2 from the Go module proxy into the cache
# (default ~/.cache/meshguard/kube-v1.37.2/bin), once per machine, and links
# Debian's etcd beside it: the directory is what controller-runtime's envtest
# expects in KUBEBUILDER_ASSETS. Used by the Kubernetes integration tests
# (controlplane/kube) and the chart's server-side dry run (charts/).
#
# k8s.io/kubernetes is not meant to be a dependency: its go.mod requires each
# staging module (k8s.io/api, k8s.io/client-go, …) at v0.0.0 and replaces it
# with a local path. A wrapper module requiring it replaces each of them with
# the published v0.37.2 instead. 10-14 minutes and 3 GB of memory on 2 cores.
set -euo pipefail
VERSION=v1.37.2
STAGING=v0.37.2
CACHE="${MESHGUARD_CACHE:-$HOME/.cache/meshguard}"
OUT="$CACHE/kube-$VERSION/bin"

# CRDs of other projects the tests apply meshguard's manifests beside (the
# Istio integration with SPIRE's ClusterSPIFFEID, the chart's ServiceMonitor
# and PrometheusRule), from
# their Go modules: the module proxy is reachable where the internet is not.
CRDS="$CACHE/kube-$VERSION/crds"
if [ ! -f "$CRDS/istio.yaml" ] || [ ! -f "$CRDS/monitoring.coreos.com_servicemonitors.yaml" ] ||
   [ ! -f "$CRDS/spire.spiffe.io_clusterspiffeids.yaml" ]; then
  mkdir -p "$CRDS"
  dir_of() { go mod download -json "$1" | sed -n 's/.*"Dir": "\(.*\)".*/\1/p'; }
  istio="$(dir_of istio.io/api@v1.32.0)"
  cp "$istio/kubernetes/customresourcedefinitions.gen.yaml" "$CRDS/istio.yaml"
  promop="$(dir_of github.com/prometheus-operator/prometheus-operator@v0.86.1)"
  cp "$promop/example/prometheus-operator-crd/monitoring.coreos.com_servicemonitors.yaml" \
     "$promop/example/prometheus-operator-crd/monitoring.coreos.com_prometheusrules.yaml" "$CRDS/"
  scm="$(dir_of github.com/spiffe/spire-controller-manager@v0.6.3)"
  cp "$scm/config/crd/bases/spire.spiffe.io_clusterspiffeids.yaml" "$CRDS/"
  chmod 644 "$CRDS"/*.yaml
fi

etcd_bin="$(command -v etcd || true)"
if [ -z "$etcd_bin" ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "apt-get install etcd-server"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq etcd-server >/dev/null
    service etcd stop >/dev/null 2>&1 || true
    etcd_bin="$(command -v etcd)"
  else
    echo "the Kubernetes tests need etcd on PATH (Debian: sudo apt-get install etcd-server)" >&2
    exit 1
  fi
fi
mkdir -p "$OUT"
ln -sf "$etcd_bin" "$OUT/etcd"

if [ -x "$OUT/kube-apiserver" ]; then
  echo "kube-apiserver $VERSION already built in $OUT"
  exit 0
fi
WORK="$CACHE/kube-$VERSION/module"
mkdir -p "$WORK"
cd "$WORK"
cat > go.mod <<MOD
module meshguard.local/kube-tools

go 1.26

require k8s.io/kubernetes $VERSION
MOD
# Every staging module k8s.io/kubernetes requires at v0.0.0.
mods="$(go mod download -json "k8s.io/kubernetes@$VERSION" | sed -n 's/.*"GoMod": "\(.*\)".*/\1/p')"
for m in $(sed -n 's/^\s*\(k8s.io\/[a-z0-9-]*\) v0.0.0$/\1/p' "$mods" | sort -u); do
  echo "replace $m => $m $STAGING" >> go.mod
done
cat > tools.go <<'GO'
//go:build tools

package tools

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
)
GO
go mod tidy >/dev/null
# The version it reports (/version), which a plain go build leaves at v0.0.0.
go build -ldflags "-s -w -X k8s.io/component-base/version.gitVersion=$VERSION -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=37" \
  -o "$OUT/" k8s.io/kubernetes/cmd/kube-apiserver
echo "built kube-apiserver $VERSION into $OUT"
