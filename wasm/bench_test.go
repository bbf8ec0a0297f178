package wasm_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/meshguard/meshguard/wasm/abi"
	"github.com/meshguard/meshguard/wasm/wasmtest"
)

var benchConfigs = map[string]string{
	"headers":   `{"hsts": {"maxAge": 31536000, "includeSubDomains": true}, "cors": {"allowedOrigins": ["https://app.example.com"]}}`,
	"ratelimit": `{"key": "principal", "rps": 1e9, "burst": 1e9}`,
	"validate":  `{"csrf": {"allowedOrigins": ["https://shop.example.com"]}}`,
	"noop":      `{}`,
}

var benchRequest = []abi.Header{
	{Name: ":method", Value: "GET"}, {Name: ":path", Value: "/api/orders/42?expand=items"}, {Name: ":authority", Value: "shop.example.com"},
	{Name: "user-agent", Value: "bench"}, {Name: "accept", Value: "application/json"}, {Name: "x-request-id", Value: "0123456789abcdef"},
	{Name: "x-meshguard-principal", Value: `User::"alice"`}, {Name: "origin", Value: "https://app.example.com"},
}

// noIDRequest is benchRequest without x-request-id, which headers adds.
var noIDRequest = slices.DeleteFunc(slices.Clone(benchRequest), func(h abi.Header) bool { return h.Name == "x-request-id" })

// preflightRequest is a CORS preflight from benchConfigs["headers"]'s
// allowed origin, which headers answers itself (204).
var preflightRequest = []abi.Header{{Name: ":method", Value: "OPTIONS"}, {Name: ":path", Value: "/api/orders"}, {Name: ":authority", Value: "shop.example.com"},
	{Name: "origin", Value: "https://app.example.com"}, {Name: "access-control-request-method", Value: "POST"}, {Name: "x-request-id", Value: "r"}}

// traversalRequest is benchRequest with a traversal path, which validate
// refuses (400).
var traversalRequest = append([]abi.Header{{Name: ":method", Value: "GET"}, {Name: ":path", Value: "/static/../../etc/passwd"}}, benchRequest[2:]...)

// answerStatus is the status of a filter's own answer, 0 for none.
func answerStatus(l *wasmtest.LocalResponse) uint32 {
	if l == nil {
		return 0
	}
	return l.Status
}

// BenchmarkFilter measures one full request lifecycle (context create,
// request headers, response headers, done, delete) through the .wasm filter
// in wazero, host calls included, and how many host↔guest crossings it
// takes (TestCrossingBudget pins those).
func BenchmarkFilter(b *testing.B) {
	for _, name := range []string{"noop", "headers", "ratelimit", "validate"} {
		b.Run(name, func(b *testing.B) {
			_, vm := newVM(b, name, benchConfigs[name])
			ctx := context.Background()
			b.ReportAllocs()
			b.ReportMetric(float64(len(module(b, name))), "module-bytes")
			before, n := vm.Crossings(), 0
			for b.Loop() {
				if _, err := vm.Run(ctx, benchRequest, okResponse); err != nil {
					b.Fatal(err)
				}
				n++
			}
			b.ReportMetric(float64(vm.Crossings()-before)/float64(n), "crossings/op")
		})
	}
}

// BenchmarkGuestCost measures what the filters' figures are made of: one
// crossing from the module to the host ("hostcall", a trivial host call),
// one 32-byte Go allocation inside the module ("alloc") and one read of the
// request's 8-header map ("header-read": a host call whose result the host
// writes into memory it asks the module for, then decoded). Each is the
// no-op filter's lifecycle doing it 10 times less one doing nothing, run
// alternately, per operation.
func BenchmarkGuestCost(b *testing.B) {
	for _, tc := range []struct{ name, config, unit string }{
		{"hostcall", `{"hostCalls": 10}`, "ns/hostcall"},
		{"alloc", `{"allocs": 10}`, "ns/alloc"},
		{"header-read", `{"headerReads": 10}`, "ns/read"},
	} {
		b.Run(tc.name, func(b *testing.B) {
			_, none := newVM(b, "noop", `{}`)
			_, ten := newVM(b, "noop", tc.config)
			ctx := context.Background()
			lifecycle := func(vm *wasmtest.VM) time.Duration {
				start := time.Now()
				if _, err := vm.Run(ctx, benchRequest, okResponse); err != nil {
					b.Fatal(err)
				}
				return time.Since(start)
			}
			var extra time.Duration
			n := 0
			for b.Loop() {
				extra += lifecycle(ten) - lifecycle(none)
				n++
			}
			b.ReportMetric(float64(extra.Nanoseconds())/float64(n)/10, tc.unit)
		})
	}
}

// floorConfigs make the no-op module cross into the host as each filter
// does on benchRequest — the same host calls, in the same callbacks, with
// no logic around them (BenchmarkFloor).
var floorConfigs = map[string]string{
	"headers":   `{"headerReads": 1, "responseRemoves": 4, "responseSets": 7}`,
	"ratelimit": `{"headerReads": 1, "hostCalls": 1, "sharedReads": 1, "sharedWrites": 1, "responseSets": 3}`,
	"validate":  `{"headerReads": 1}`,
}

// BenchmarkFloor splits each filter's lifecycle into its floor — what its
// host↔guest crossings cost in this host, measured by the no-op module
// making the same calls with no logic (floorConfigs) — and what the
// filter's own code adds ("logic-ns/op"). The two run alternately, so the
// machine's noise falls on both; the benchmark fails if their crossings
// differ. Timing each lifecycle adds a clock read to both sides.
func BenchmarkFloor(b *testing.B) {
	for _, name := range []string{"headers", "ratelimit", "validate"} {
		b.Run(name, func(b *testing.B) {
			_, filter := newVM(b, name, benchConfigs[name])
			_, floor := newVM(b, "noop", floorConfigs[name])
			ctx := context.Background()
			lifecycle := func(vm *wasmtest.VM) (time.Duration, int64) {
				before, start := vm.Crossings(), time.Now()
				if _, err := vm.Run(ctx, benchRequest, okResponse); err != nil {
					b.Fatal(err)
				}
				return time.Since(start), vm.Crossings() - before
			}
			for range 5 { // the floor's first request creates its shared data
				lifecycle(filter)
				lifecycle(floor)
			}
			var filterTime, floorTime time.Duration
			n := 0
			for b.Loop() {
				ft, fc := lifecycle(filter)
				lt, lc := lifecycle(floor)
				if fc != lc {
					b.Fatalf("the floor makes %d crossings, the filter %d: floorConfigs[%q] no longer matches the filter", lc, fc, name)
				}
				filterTime += ft
				floorTime += lt
				n++
			}
			per := func(d time.Duration) float64 { return float64(d.Nanoseconds()) / float64(n) }
			b.ReportMetric(per(filterTime), "filter-ns/op")
			b.ReportMetric(per(floorTime), "floor-ns/op")
			b.ReportMetric(per(filterTime-floorTime), "logic-ns/op")
		})
	}
}

// BenchmarkInstantiate measures creating a VM (what Envoy does per worker
// thread): instantiate, _initialize, vm_start, configure.
func BenchmarkInstantiate(b *testing.B) {
	for _, name := range []string{"headers", "ratelimit", "validate"} {
		b.Run(name, func(b *testing.B) {
			ctx := context.Background()
			h, err := wasmtest.NewHost(ctx, module(b, name))
			if err != nil {
				b.Fatal(err)
			}
			defer h.Close(ctx)
			for b.Loop() {
				vm, err := h.NewVM(ctx, []byte(benchConfigs[name]))
				if err != nil {
					b.Fatal(err)
				}
				vm.Close(ctx)
			}
		})
	}
}

// BenchmarkRatelimitKeys is the rate-limit filter's lifecycle for each way
// of keying callers: the authorizer's principal header (BenchmarkFilter's
// case), the client address (a property read, also the fallback for
// callers without the key) and the mTLS peer's URI SAN.
func BenchmarkRatelimitKeys(b *testing.B) {
	for _, key := range []string{"principal", "ip", "spiffe"} {
		b.Run("key="+key, func(b *testing.B) {
			h, vm := newVM(b, "ratelimit", `{"key": "`+key+`", "rps": 1e9, "burst": 1e9}`)
			h.SetProperty("10.0.0.9:5555", "source", "address")
			h.SetProperty("spiffe://meshguard.local/ns/demo/sa/frontend", "connection", "uri_san_peer_certificate")
			ctx := context.Background()
			for b.Loop() {
				if _, err := vm.Run(ctx, benchRequest, okResponse); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkRatelimitRefusal is the lifecycle of a refused request (429,
// retry-after and x-ratelimit-* headers): the path a flood of calls takes,
// so it must stay as cheap as a pass.
func BenchmarkRatelimitRefusal(b *testing.B) {
	_, vm := newVM(b, "ratelimit", `{"key": "principal", "rps": 0.001, "burst": 1}`)
	ctx := context.Background()
	if _, err := vm.Run(ctx, benchRequest, okResponse); err != nil { // spends the one token
		b.Fatal(err)
	}
	benchAnswered(b, vm, benchRequest, 429)
}

// BenchmarkValidateRefusal is the lifecycle of a request validate refuses
// (a traversal path, 400): what a scanner's flood costs.
func BenchmarkValidateRefusal(b *testing.B) {
	_, vm := newVM(b, "validate", benchConfigs["validate"])
	benchAnswered(b, vm, traversalRequest, 400)
}

// BenchmarkHeadersPreflight is the lifecycle of a CORS preflight the
// headers filter answers itself (204 with the allow-* headers).
func BenchmarkHeadersPreflight(b *testing.B) {
	_, vm := newVM(b, "headers", benchConfigs["headers"])
	benchAnswered(b, vm, preflightRequest, 204)
}

// benchAnswered measures the lifecycle of req, which the filter must answer
// itself with status.
func benchAnswered(b *testing.B, vm *wasmtest.VM, req []abi.Header, status uint32) {
	b.Helper()
	ctx := context.Background()
	for b.Loop() {
		r, err := vm.Run(ctx, req, okResponse)
		if err != nil {
			b.Fatal(err)
		}
		if got := answerStatus(r.Local); got != status {
			b.Fatalf("answered %d, want %d", got, status)
		}
	}
}

// BenchmarkHeadersNewRequestID is BenchmarkFilter/headers for a request
// without x-request-id, which the filter adds (random, from WASI random_get).
func BenchmarkHeadersNewRequestID(b *testing.B) {
	_, vm := newVM(b, "headers", benchConfigs["headers"])
	ctx := context.Background()
	for b.Loop() {
		r, err := vm.Run(ctx, noIDRequest, okResponse)
		if err != nil {
			b.Fatal(err)
		}
		if id, ok := wasmtest.Header(r.Request, "x-request-id"); !ok || len(id) != 32 {
			b.Fatalf("request id %q", id)
		}
	}
}
