# meshguard — see README.md. `make run` and `make test` work on a fresh machine.
GO       ?= go
BIN      := bin/meshguard
VERSION  ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS  := -X github.com/meshguard/meshguard/internal/version.Version=$(VERSION)
STATICCHECK := honnef.co/go/tools/cmd/staticcheck@v0.8.2
# Build and test with the toolchain go.mod names (a Go patch release without
# the standard library's known vulnerabilities), fetched through the module
# proxy when the local Go is older, whatever GOTOOLCHAIN the shell has.
export GOTOOLCHAIN := $(shell sed -n 's/^toolchain //p' go.mod)

.PHONY: chaos fuzz-ci chromium promtool image all build run test test-short fmt-check vet lint bench fuzz clean spire wasm redis vulncheck kube helm generate generate-check

all: build

build:
	$(GO) build -ldflags "$(LDFLAGS)" -o $(BIN) ./cmd/meshguard

## image: the container image the Helm chart runs (needs docker; not part of make test)
IMAGE ?= ghcr.io/meshguard/meshguard:$(VERSION)
image:
	docker build --build-arg VERSION=$(VERSION) -t $(IMAGE) .

## wasm: the proxy-wasm filters, built with stock Go into dist/*.wasm
WASM_FILTERS := headers ratelimit validate
wasm:
	@mkdir -p dist
	@for f in $(WASM_FILTERS); do \
		echo "GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -o dist/$$f.wasm ./wasm/cmd/$$f"; \
		GOOS=wasip1 GOARCH=wasm $(GO) build -buildmode=c-shared -trimpath -o dist/$$f.wasm ./wasm/cmd/$$f || exit 1; \
	done

## run: the whole quickstart mesh on embedded defaults (meshguard up)
run: build wasm
	./$(BIN) up --config examples/quickstart

## test: formatting, vet and every test with the race detector.
## The identity tests run a real SPIRE server and agent, the Kubernetes tests a
## real kube-apiserver and etcd: built once per machine into ~/.cache/meshguard
## (SPIRE 5-15 minutes, kube-apiserver 10-14 minutes the first time, on 2
## cores). The shared-state tests run real redis-server and redis-sentinel.
test: fmt-check vet generate-check spire kube helm wasm redis promtool chromium
	GOOS=wasip1 GOARCH=wasm $(GO) vet ./wasm/...
	MESHGUARD_WASM_DIR=$(CURDIR)/dist $(GO) test -race -count=1 ./...
	MESHGUARD_WASM_DIR=$(CURDIR)/dist $(GO) test -count=1 -run TestMemoryFlatAfterWarmup ./wasm/

spire:
	bash tools/spire/build.sh

## kube: kube-apiserver built from k8s.io/kubernetes, and Debian's etcd (envtest's assets)
kube:
	bash tools/kube/build.sh

## helm: the Helm CLI, for the chart's tests (helm lint, helm template)
HELM_VERSION := v4.3.2
MESHGUARD_CACHE ?= $(HOME)/.cache/meshguard
helm:
	@test -x "$(MESHGUARD_CACHE)/bin/helm-$(HELM_VERSION)" || { \
		echo "go install helm.sh/helm/v4/cmd/helm@$(HELM_VERSION)"; \
		GOBIN="$(MESHGUARD_CACHE)/bin" $(GO) install helm.sh/helm/v4/cmd/helm@$(HELM_VERSION) && \
		mv "$(MESHGUARD_CACHE)/bin/helm" "$(MESHGUARD_CACHE)/bin/helm-$(HELM_VERSION)"; }

## generate: the CRDs (charts/meshguard/crds) and deep copies from api/v1alpha1,
## and the Grafana dashboards (charts/meshguard/dashboards) from internal/dashboards
CONTROLLER_GEN := sigs.k8s.io/controller-tools/cmd/controller-gen@v0.23.0
generate:
	$(GO) run $(CONTROLLER_GEN) object crd paths=./api/... output:crd:artifacts:config=charts/meshguard/crds
	$(GO) run ./tools/dashboards -out charts/meshguard/dashboards

## generate-check: fails when the generated files were not those of api/v1alpha1
## (and leaves them regenerated)
GENERATED = api/v1alpha1/zz_generated.deepcopy.go charts/meshguard/crds/*.yaml charts/meshguard/dashboards/*.json
generate-check:
	@before="$$(cat $(GENERATED) | sha256sum)"; \
	$(GO) run $(CONTROLLER_GEN) object crd paths=./api/... output:crd:artifacts:config=charts/meshguard/crds && \
	$(GO) run ./tools/dashboards -out charts/meshguard/dashboards && \
	[ "$$before" = "$$(cat $(GENERATED) | sha256sum)" ] || { echo "generated files were stale (now regenerated: commit them): make generate"; exit 1; }

# apt_tool: the commands $(1) on PATH; if one is missing, Debian's packages
# $(2) when run as root (their services, which the tests do not use,
# stopped: each test starts its own servers), else how to get them.
define apt_tool
@if $(foreach c,$(1),command -v $(c) >/dev/null &&) true; then :; \
elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	echo "apt-get install $(2)"; \
	apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(2) >/dev/null; \
	for s in $(2); do service $$s stop >/dev/null 2>&1 || true; done; \
else echo "the tests need $(1) on PATH (Debian: sudo apt-get install $(2))"; exit 1; fi
endef

## redis: redis-server and redis-sentinel, for the shared-state tests
redis:
	$(call apt_tool,redis-server redis-sentinel,redis-server redis-sentinel)

## promtool: Prometheus' rule checker, for the alert rules' tests (Debian's prometheus)
promtool:
	$(call apt_tool,promtool,prometheus)

## chromium: headless Chromium, for the status page's browser test
chromium:
	$(call apt_tool,chromium,chromium)

test-short:
	$(GO) test -count=1 ./...

fmt-check:
	@out="$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))"; \
	if [ -n "$$out" ]; then echo "gofmt needed on:"; echo "$$out"; exit 1; fi

vet:
	$(GO) vet ./...

lint: fmt-check vet
	$(GO) run $(STATICCHECK) ./...

## vulncheck: govulncheck against a database built offline from golang.org/x/vulndb;
## fails on any reachable known vulnerability
vulncheck:
	bash tools/vulncheck/run.sh

## bench: Go benchmarks of the decision path, then the gRPC load run (bench/authz-load.sh)
bench:
	@mkdir -p bench/out
	$(GO) test -run '^$$' -bench . -benchmem -count 5 ./extauthz/... | tee bench/out/go-bench.txt
	bash bench/authz-load.sh

## fuzz: run each fuzz target for FUZZTIME (default 30s)
FUZZTIME ?= 30s
fuzz:
	@for f in $$(grep -rl --include='*_test.go' '^func Fuzz' --exclude-dir=.git .); do \
		for n in $$(sed -n 's/^func \(Fuzz[A-Za-z0-9_]*\)(.*/\1/p' $$f); do \
			echo "go test -run '^$$' -fuzz '^$$n$$' -fuzztime $(FUZZTIME) $$(dirname $$f)"; \
			$(GO) test -run '^$$' -fuzz "^$$n\$$" -fuzztime $(FUZZTIME) $$(dirname $$f) || exit 1; \
		done; \
	done

## chaos: the chaos suite (chaos/, real processes killed and starved under
## load) and a soak with reloads; MESHGUARD_SOAK=10m for the long soak
MESHGUARD_SOAK ?= 30s
chaos: redis
	$(GO) vet -tags chaos ./chaos/
	MESHGUARD_SOAK=$(MESHGUARD_SOAK) $(GO) test -tags chaos -count=1 -v -timeout 20m ./chaos/

## fuzz-ci: every fuzz target for a bounded time (CI)
fuzz-ci:
	$(MAKE) fuzz FUZZTIME=5s

clean:
	rm -rf bin dist
