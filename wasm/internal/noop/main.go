// Command noop is a proxy-wasm filter that does nothing: the benchmark's
// floor for one request lifecycle through a stock-Go module (the exported
// calls and a context). For BenchmarkGuestCost it can also do, per request,
// {"hostCalls": N} trivial host calls (proxy_get_current_time_nanoseconds),
// {"allocs": N} 32-byte Go heap allocations and {"headerReads": N} reads of
// the request's header map, which measure what one crossing to the host,
// one allocation inside the module and one header-map read (a host call
// that returns data through proxy_on_memory_allocate) cost. For the garbage
// tests it reads random bytes from the host ({"randomReads": N}) or from
// crypto/rand ({"cryptoRandReads": N}, which the shipped filters must not
// link). For BenchmarkFloor it makes the host calls a filter makes, with no
// logic around them: shared data reads and compare-and-swap writes
// ({"sharedReads": N, "sharedWrites": N}) and, on the response, header
// removals and sets ({"responseRemoves": N, "responseSets": N}). Not
// shipped.
package main

import (
	crand "crypto/rand"
	"encoding/json"

	"github.com/meshguard/meshguard/wasm/abi"
)

type plugin struct {
	HostCalls, Allocs, HeaderReads, RandomReads, CryptoRandReads int
	SharedReads, SharedWrites, ResponseRemoves, ResponseSets     int
}

// Names and values for the floor's host calls: a rate-limit bucket's
// shared data (24 bytes) and the headers filter's header edits. The
// rate-limit filter's three headers are shorter than the first three
// here, so its floor errs high by the host copying ≈ 100 bytes more.
var (
	sharedKey    = "meshguard.ratelimit.0"
	sharedValue  = make([]byte, 24)
	removedNames = []string{"server", "x-powered-by", "x-aspnet-version", "x-aspnetmvc-version"}
	setHeaders   = []abi.Header{
		{Name: "strict-transport-security", Value: "max-age=31536000; includeSubDomains"},
		{Name: "content-security-policy", Value: "default-src 'self'; frame-ancestors 'none'; object-src 'none'; base-uri 'self'"},
		{Name: "x-frame-options", Value: "DENY"},
		{Name: "x-content-type-options", Value: "nosniff"},
		{Name: "referrer-policy", Value: "strict-origin-when-cross-origin"},
		{Name: "access-control-allow-origin", Value: "https://app.example.com"},
		{Name: "vary", Value: "Origin"},
	}
)

// kept holds the last allocation, so escape analysis cannot drop it.
var kept []*[4]uint64

var random [16]byte

func (p *plugin) Configure(_ abi.Host, b []byte) error {
	if len(b) == 0 {
		return nil
	}
	return json.Unmarshal(b, p)
}
func (p *plugin) NewContext(uint32) abi.HTTPContext { return ctx{p} }
func (*plugin) Tick(abi.Host)                       {}

type ctx struct{ p *plugin }

func (c ctx) OnRequestHeaders(h abi.Host, _ bool) abi.Action {
	for range c.p.HostCalls {
		h.NowNanos()
	}
	for range c.p.Allocs {
		kept = append(kept[:0], new([4]uint64))
	}
	for range c.p.HeaderReads {
		h.Headers(abi.RequestHeaders)
	}
	for range c.p.RandomReads {
		h.Random(random[:])
	}
	for range c.p.CryptoRandReads {
		_, _ = crand.Read(random[:])
	}
	var cas uint32
	for range c.p.SharedReads {
		_, cas, _ = h.SharedData(sharedKey)
	}
	for range c.p.SharedWrites {
		_ = h.SetSharedData(sharedKey, sharedValue, cas)
	}
	return abi.Continue
}

func (c ctx) OnResponseHeaders(h abi.Host, _ bool) abi.Action {
	for i := range c.p.ResponseRemoves {
		h.RemoveHeader(abi.ResponseHeaders, removedNames[i%len(removedNames)])
	}
	for i := range c.p.ResponseSets {
		hd := setHeaders[i%len(setHeaders)]
		h.SetHeader(abi.ResponseHeaders, hd.Name, hd.Value)
	}
	return abi.Continue
}
func (ctx) OnDelete() {}

func init() { abi.SetPlugin(&plugin{}) }

func main() {}
