package wasm_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/meshguard/meshguard/wasm/abi"
	"github.com/meshguard/meshguard/wasm/wasmtest"
)

// Go's wasip1 runtime polls for I/O (WASI poll_oneoff) whenever a garbage
// collection starts once a timer has ever existed — crypto/rand's first
// read makes one — and Envoy's WASI answers poll_oneoff with an error,
// which the runtime turns into a fatal error: the VM dies (golang/go#78513,
// open). The test host answers poll_oneoff as Envoy does. Two guards:
// the modules start no timer (TestCollectionsSurviveRandomReads) and no
// path makes garbage per request (TestNoPathMakesGarbage).

// gcEnv runs a module's Go runtime with a collection after under a
// megabyte of garbage (GOGC=1), each one traced to stderr (gctrace).
var gcEnv = []string{"GOGC=1", "GODEBUG=gctrace=1"}

// collections counts the garbage collections a host's VMs have traced
// (gctrace writes "gc N @…" in pieces; the first is "gc ").
func collections(h *wasmtest.Host) int {
	n := 0
	for _, l := range h.Logs() {
		if l == "[fd2] gc " {
			n++
		}
	}
	return n
}

// collectionsPerRequests runs req through vm n times after warm-up ones
// and returns the collections in those n, failing the test if the VM
// dies or answers other than with status (0: passes the request on).
func collectionsPerRequests(t *testing.T, h *wasmtest.Host, vm *wasmtest.VM, req []abi.Header, status uint32, warmup, n int) int {
	t.Helper()
	ctx := context.Background()
	before := 0
	for i := range warmup + n {
		if i == warmup {
			before = collections(h)
		}
		r, err := vm.Run(ctx, req, okResponse)
		if err != nil {
			t.Fatalf("request %d: %v\n(logs: %v)", i, err, h.Logs())
		}
		// (The first request may pass where later ones are refused: it
		// spends a rate limit's only token.)
		if got := answerStatus(r.Local); got != status && (i > 0 || status == 0) {
			t.Fatalf("request %d: answered %d, want %d", i, got, status)
		}
	}
	return collections(h) - before
}

// Every path of every filter, 60,000 times after a warm-up, in a VM that
// collects after under a megabyte of garbage: no collection may start.
// The control shows the detector's reach: the no-op module making 32
// bytes of garbage per request is caught.
func TestNoPathMakesGarbage(t *testing.T) {
	const warmup, requests = 1000, 60000
	get := func(path string, extra ...abi.Header) []abi.Header {
		return append([]abi.Header{{Name: ":method", Value: "GET"}, {Name: ":path", Value: path}, {Name: ":authority", Value: "shop.example.com"},
			{Name: "x-request-id", Value: "r"}, {Name: "x-meshguard-principal", Value: `User::"alice"`}}, extra...)
	}
	noID := []abi.Header{{Name: ":method", Value: "GET"}, {Name: ":path", Value: "/"}, {Name: ":authority", Value: "shop.example.com"}}
	preflight := func(origin string) []abi.Header {
		return []abi.Header{{Name: ":method", Value: "OPTIONS"}, {Name: ":path", Value: "/api"}, {Name: ":authority", Value: "shop.example.com"},
			{Name: "x-request-id", Value: "r"}, {Name: "origin", Value: origin}, {Name: "access-control-request-method", Value: "POST"}}
	}
	bigHeaders := func() []abi.Header {
		var hs []abi.Header
		for i := range 20 {
			hs = append(hs, abi.Header{Name: fmt.Sprintf("x-big-%d", i), Value: strings.Repeat("v", 5<<10)})
		}
		return hs
	}
	for _, tc := range []struct {
		name, module, config string
		req                  []abi.Header
		status               uint32 // of the filter's own answer; 0 = passed on
	}{
		{"headers pass", "headers", benchConfigs["headers"], get("/", abi.Header{Name: "origin", Value: "https://app.example.com"}), 0},
		{"headers new request id", "headers", benchConfigs["headers"], noID, 0},
		{"headers preflight", "headers", benchConfigs["headers"], preflight("https://app.example.com"), 204},
		{"headers refused preflight", "headers", benchConfigs["headers"], preflight("https://evil.example"), 403},
		{"ratelimit pass by principal", "ratelimit", benchConfigs["ratelimit"], get("/"), 0},
		{"ratelimit pass by ip", "ratelimit", `{"key": "ip", "rps": 1e9, "burst": 1e9}`, get("/"), 0},
		{"ratelimit pass by spiffe", "ratelimit", `{"key": "spiffe", "rps": 1e9, "burst": 1e9}`, get("/"), 0},
		{"ratelimit 429", "ratelimit", `{"key": "principal", "rps": 0.001, "burst": 1}`, get("/"), 429},
		{"validate pass", "validate", benchConfigs["validate"], get("/api/orders/42?x=1"), 0},
		{"validate bad path", "validate", benchConfigs["validate"], get("/a/../etc/passwd"), 400},
		{"validate method", "validate", `{"allowedMethods": ["POST"]}`, get("/"), 405},
		// 100 KiB of headers: more than the module's first arena, which grows once.
		{"validate large header map", "validate", benchConfigs["validate"], get("/", bigHeaders()...), 0},
		{"validate CSRF", "validate", benchConfigs["validate"], []abi.Header{{Name: ":method", Value: "POST"}, {Name: ":path", Value: "/cart"}, {Name: "origin", Value: "https://evil.example"}}, 403},
		// Control: 32 bytes of garbage per request must be seen.
		{"control: 32 bytes per request", "noop", `{"allocs": 1}`, get("/"), 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h, vm := newVM(t, tc.module, tc.config, gcEnv...)
			h.SetProperty("10.0.0.9:5555", "source", "address")
			h.SetProperty("spiffe://meshguard.local/ns/demo/sa/frontend", "connection", "uri_san_peer_certificate")
			n := collectionsPerRequests(t, h, vm, tc.req, tc.status, warmup, requests)
			switch control := tc.module == "noop"; {
			case control && n == 0:
				t.Fatalf("no collection in %d requests making 32 bytes of garbage each: the test cannot see garbage", requests)
			case !control && n > 0:
				t.Fatalf("%d garbage collections in %d requests after warm-up: the path makes garbage", n, requests)
			}
		})
	}
}

// Random bytes from the host (abi.Host.Random) start no timer, so a module
// that reads them survives garbage collections under Envoy's WASI; read
// from crypto/rand instead, they start one and the VM dies at the next
// collection. The no-op module reads random bytes and makes garbage on
// every request, both ways. (If the crypto/rand case stops crashing, the
// Go runtime no longer dies on poll_oneoff errors: golang/go#78513 is
// fixed and docs/filters.md can say so.)
func TestCollectionsSurviveRandomReads(t *testing.T) {
	const requests = 20000
	t.Run("host random", func(t *testing.T) {
		h, vm := newVM(t, "noop", `{"randomReads": 1, "allocs": 10}`, gcEnv...)
		if n := collectionsPerRequests(t, h, vm, benchRequest, 0, 0, requests); n < 3 {
			t.Fatalf("%d collections: the test did not make the module collect garbage", n)
		}
	})
	t.Run("crypto/rand, control", func(t *testing.T) {
		h, vm := newVM(t, "noop", `{"cryptoRandReads": 1, "allocs": 10}`, gcEnv...)
		ctx := context.Background()
		for range requests {
			if _, err := vm.Run(ctx, benchRequest, okResponse); err != nil {
				// The VM died, as the runtime does under Envoy — of the
				// refused poll, not of something else.
				if logs := strings.Join(h.Logs(), ""); !strings.Contains(logs, "poll_oneoff") {
					t.Fatalf("the VM died, but not of poll_oneoff: %v\n(logs: %.2000s)", err, logs)
				}
				return
			}
		}
		t.Fatalf("%d requests reading crypto/rand and making garbage survived %d collections: "+
			"the test host no longer reproduces the crash (or Go fixed golang/go#78513)", requests, collections(h))
	})
}

// No shipped module links crypto/rand (its first read starts a timer; see
// TestCollectionsSurviveRandomReads): randomness comes from abi.Host.Random.
func TestModulesDoNotLinkCryptoRand(t *testing.T) {
	for _, f := range []string{"headers", "ratelimit", "validate"} {
		cmd := exec.Command("go", "list", "-deps", "./cmd/"+f)
		cmd.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm")
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("go list %s: %v", f, err)
		}
		for _, pkg := range strings.Fields(string(out)) {
			if pkg == "crypto/rand" || pkg == "crypto/internal/sysrand" {
				t.Errorf("%s links %s", f, pkg)
			}
		}
	}
}
