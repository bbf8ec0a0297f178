//go:build !race

package wasm_test

import (
	"context"
	"testing"
)

// The race detector does not see inside the wasm guest and only slows the
// host ~10×; `make test` runs this file in a separate pass without -race.

// TestMemoryFlatAfterWarmup runs requests through each filter and checks the
// VM's linear memory stops growing after warm-up (no per-request leak).
func TestMemoryFlatAfterWarmup(t *testing.T) {
	// The Go heap inside the VM settles within ~200k requests (measured:
	// 8.1-8.3 MiB, then flat to 1M); after that it must not grow.
	warmup, n := 200_000, 200_000
	for _, name := range []string{"headers", "ratelimit", "validate"} {
		_, vm := newVM(t, name, benchConfigs[name])
		ctx := context.Background()
		run := func(k int) {
			for range k {
				if _, err := vm.Request(ctx, benchRequest, okResponse); err != nil {
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
