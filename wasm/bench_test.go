package wasm_test

import (
	"context"
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

// BenchmarkFilter measures one full request lifecycle (context create,
// request headers, response headers, done, delete) through the .wasm filter
// in wazero, host calls included.
func BenchmarkFilter(b *testing.B) {
	for _, name := range []string{"noop", "headers", "ratelimit", "validate"} {
		b.Run(name, func(b *testing.B) {
			_, vm := newVM(b, name, benchConfigs[name])
			ctx := context.Background()
			b.ReportAllocs()
			b.ReportMetric(float64(len(module(b, name))), "module-bytes")
			for b.Loop() {
				if _, err := vm.Request(ctx, benchRequest, okResponse); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkHostCall measures one crossing from the module to the host: a
// lifecycle of the no-op filter making 10 trivial host calls, less one
// making none, per call. It explains the filters' figures: each header
// read or edit is at least one such crossing.
func BenchmarkHostCall(b *testing.B) {
	_, none := newVM(b, "noop", `{}`)
	_, ten := newVM(b, "noop", `{"hostCalls": 10}`)
	ctx := context.Background()
	run := func(vm *wasmtest.VM, n int) time.Duration {
		start := time.Now()
		for range n {
			if _, err := vm.Request(ctx, benchRequest, okResponse); err != nil {
				b.Fatal(err)
			}
		}
		return time.Since(start)
	}
	var with, without time.Duration
	n := 0
	for b.Loop() {
		with += run(ten, 1)
		without += run(none, 1)
		n++
	}
	b.ReportMetric(float64((with-without).Nanoseconds())/float64(n)/10, "ns/hostcall")
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
