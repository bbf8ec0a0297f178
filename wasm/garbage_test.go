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
// open). The request-id path, when it read crypto/rand and made 32 bytes
// of garbage per request, crashed the VM at request 109,606. The modules
// now start no timer (TestCollectionsSurviveRandomReads), and, second line
// of defence, no path makes garbage per request: the test host answers
// poll_oneoff as Envoy does; each path
// runs in a VM with GOGC=1 (a collection after under a megabyte of
// garbage) and gctrace on, and after a warm-up no collection may start:
// a path making 16 bytes or more of garbage per request fails, by a
// collection or by the crash.
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
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			h, err := wasmtest.NewHost(ctx, module(t, tc.module))
			if err != nil {
				t.Fatal(err)
			}
			defer h.Close(ctx)
			h.SetEnv("GOGC=1", "GODEBUG=gctrace=1")
			h.SetProperty("10.0.0.9:5555", "source", "address")
			h.SetProperty("spiffe://meshguard.local/ns/demo/sa/frontend", "connection", "uri_san_peer_certificate")
			vm, err := h.NewVM(ctx, []byte(tc.config))
			if err != nil {
				t.Fatal(err)
			}
			collections := func() int { // gctrace writes "gc N @…" to stderr in pieces
				n := 0
				for _, l := range h.Logs() {
					if l == "[fd2] gc " {
						n++
					}
				}
				return n
			}
			before := 0
			for i := range warmup + requests {
				if i == warmup {
					before = collections()
				}
				r, err := vm.Request(ctx, tc.req, okResponse)
				if err != nil {
					t.Fatalf("request %d: %v\n(a path that makes garbage crashes the VM at its first collection; logs: %v)", i, err, h.Logs())
				}
				if i > 0 && tc.status != 0 && (r.Local == nil || r.Local.Status != tc.status) || tc.status == 0 && r.Local != nil {
					t.Fatalf("request %d: answer %+v, want status %d", i, r.Local, tc.status)
				}
			}
			if n := collections() - before; n > 0 {
				t.Fatalf("%d garbage collections in %d requests after warm-up: the path makes garbage", n, requests)
			}
		})
	}
}

// The filters' randomness comes from the host (abi.Host.Random), not
// crypto/rand, whose first read starts a timer: so a module that has read
// random bytes still survives garbage collections under Envoy's WASI. The
// no-op module reads random bytes and makes garbage on every request here,
// with GOGC=1; it must collect many times and never crash. (With
// crypto/rand.Read in its place, the VM dies at the first collection.)
func TestCollectionsSurviveRandomReads(t *testing.T) {
	ctx := context.Background()
	h, err := wasmtest.NewHost(ctx, module(t, "noop"))
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close(ctx)
	h.SetEnv("GOGC=1", "GODEBUG=gctrace=1")
	vm, err := h.NewVM(ctx, []byte(`{"randomReads": 1, "allocs": 10}`))
	if err != nil {
		t.Fatal(err)
	}
	for i := range 20000 {
		if _, err := vm.Request(ctx, benchRequest, okResponse); err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
	}
	n := 0
	for _, l := range h.Logs() {
		if l == "[fd2] gc " {
			n++
		}
	}
	if n < 3 {
		t.Fatalf("%d collections: the test did not make the module collect garbage", n)
	}
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
