package wasm_test

import (
	"context"
	"testing"

	"github.com/meshguard/meshguard/wasm/abi"
)

// Calls between the host and a module ("crossings") are most of what a
// filter costs per request: each is ≈ 75 ns in wazero before the host does
// any work (BenchmarkGuestCost/hostcall), more than most filter logic. The
// budgets below are what each path needs under proxy-wasm ABI 0.2.1; a
// change that adds a crossing to a path fails here, on purpose. If the new
// crossing is needed, update the budget, its reason and the figures in
// bench/RESULTS.md; if a change saves one, lower the budget.
func TestCrossingBudget(t *testing.T) {
	for _, tc := range []struct {
		name, module, config string
		req                  []abi.Header
		status               uint32 // of the filter's own answer; 0: passed on
		budget               int64
		why                  string
	}{
		{"noop", "noop", `{}`, benchRequest, 0, 4,
			"exports: context create, request headers, response headers, delete (done and log are not exported)"},
		{"headers", "headers", benchConfigs["headers"], benchRequest, 0, 17,
			"4 exports; request map read (the call and its allocation); 4 stripped headers removed blind; 5 security headers and 2 CORS headers set"},
		{"headers new request id", "headers", benchConfigs["headers"], noIDRequest, 0, 19,
			"as headers, plus random bytes from the host and setting x-request-id"},
		{"headers preflight", "headers", benchConfigs["headers"], preflightRequest, 204, 6,
			"3 exports (no response); request map read; the local answer"},
		{"ratelimit", "ratelimit", benchConfigs["ratelimit"], benchRequest, 0, 13,
			"4 exports; request map read; clock; bucket read (the call and its allocation) and compare-and-swap write; 3 x-ratelimit headers"},
		{"ratelimit refusal", "ratelimit", `{"key": "principal", "rps": 0.001, "burst": 1}`, benchRequest, 429, 10,
			"3 exports; request map read; clock; bucket read and write; the local answer"},
		{"validate", "validate", benchConfigs["validate"], benchRequest, 0, 6,
			"4 exports; request map read"},
		{"validate refusal", "validate", benchConfigs["validate"], traversalRequest, 400, 6,
			"3 exports; request map read; the local answer"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, vm := newVM(t, tc.module, tc.config)
			ctx := context.Background()
			// Warm-up: the first requests differ (one spends the bucket's
			// only token; first uses grow buffers, and the Go runtime's
			// allocator reads the clock, a WASI call).
			const warmup = 5
			for i := range warmup + 3 {
				before := vm.Crossings()
				r, err := vm.Request(ctx, tc.req, okResponse)
				if err != nil {
					t.Fatal(err)
				}
				if i < warmup {
					continue
				}
				if got := answerStatus(r.Local); got != tc.status {
					t.Fatalf("request %d answered %d, want %d", i, got, tc.status)
				}
				if got := vm.Crossings() - before; got != tc.budget {
					t.Errorf("request %d: %d crossings, budget %d (%s)", i, got, tc.budget, tc.why)
				}
			}
		})
	}
}
