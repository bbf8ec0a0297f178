//go:build !race

package wasm_test

import (
	"context"
	"os"
	"strconv"
	"testing"
)

// The race detector does not see inside the wasm guest and only slows the
// host ~10×; `make test` runs this file in a separate pass without -race.

// TestMemoryFlatAfterWarmup runs requests through each filter and checks the
// VM's linear memory stops growing after warm-up (no per-request leak).
// MESHGUARD_WASM_MEMTEST_REQUESTS sets the requests after warm-up (default
// 200,000; bench/RESULTS.md quotes a run of 800,000, 1M in all).
func TestMemoryFlatAfterWarmup(t *testing.T) {
	// The Go heap inside the VM settles within the warm-up (measured:
	// 3.4-4.0 MiB, then flat to 1M); after that it must not grow.
	warmup, n := 200_000, 200_000
	if v := os.Getenv("MESHGUARD_WASM_MEMTEST_REQUESTS"); v != "" {
		var err error
		if n, err = strconv.Atoi(v); err != nil || n <= 0 {
			t.Fatalf("MESHGUARD_WASM_MEMTEST_REQUESTS=%q: want a positive number", v)
		}
	}
	for _, name := range []string{"headers", "ratelimit", "validate"} {
		_, vm := newVM(t, name, benchConfigs[name])
		ctx := context.Background()
		run := func(k int) {
			for range k {
				if _, err := vm.Run(ctx, benchRequest, okResponse); err != nil {
					t.Fatal(err)
				}
			}
		}
		run(warmup)
		warm := vm.Memory()
		run(n)
		if after := vm.Memory(); after > warm {
			t.Errorf("%s: linear memory grew from %d to %d bytes over %d requests after warm-up", name, warm, after, n)
		} else {
			t.Logf("%s: %d KiB linear memory after %d requests", name, after>>10, warmup+n)
		}
	}
}
