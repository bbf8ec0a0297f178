package ratelimit

import (
	"hash/fnv"
	"math"
	"strconv"
	"testing"

	"github.com/meshguard/meshguard/wasm/abi"
	"github.com/meshguard/meshguard/wasm/abi/abitest"
)

func TestCollidingKeysNeverLimitLess(t *testing.T) {
	p := New()
	shared := abitest.NewShared()
	if err := p.Configure(abitest.New(shared), []byte(`{"key": "principal", "rps": 0.001, "burst": 2, "maxKeys": 1}`)); err != nil {
		t.Fatal(err)
	}
	allowed := 0
	for _, who := range []string{"a", "b", "a", "b", "c"} {
		h := abitest.New(shared, abi.Header{Name: ":path", Value: "/"}, abi.Header{Name: "x-meshguard-principal", Value: who})
		h.Now = 1e18
		if p.NewContext(1).OnRequestHeaders(h, false) == abi.Continue {
			allowed++
		}
	}
	// One slot: all callers share one bucket of 2 while it is not full.
	if allowed != 2 || shared.Keys() != 1 {
		t.Fatalf("allowed %d with %d keys; one shared bucket of 2 expected", allowed, shared.Keys())
	}
}

func TestKeySources(t *testing.T) {
	for _, c := range []struct {
		key  string
		hdrs []abi.Header
		prop map[string]string
		want string
	}{
		{"principal", []abi.Header{{Name: "x-meshguard-principal", Value: `User::"a"`}}, nil, `User::"a"`},
		{"principal", nil, map[string]string{"source\x00address": "10.0.0.1:999"}, "ip:10.0.0.1"},
		{"ip", nil, map[string]string{"source\x00address": "[::1]:80"}, "ip:::1"},
		{"spiffe", nil, map[string]string{"connection\x00uri_san_peer_certificate": "spiffe://td/x"}, "spiffe://td/x"},
		{"header:x-api-key", []abi.Header{{Name: "x-api-key", Value: "k1"}}, nil, "header:k1"},
	} {
		p := New()
		if err := p.Configure(abitest.New(nil), []byte(`{"key": "`+c.key+`", "rps": 1, "burst": 1}`)); err != nil {
			t.Fatal(err)
		}
		h := abitest.New(nil, c.hdrs...)
		for k, v := range c.prop {
			h.Props[k] = v
		}
		if got := p.callerKey(h, h.Headers(abi.RequestHeaders)); got != c.want {
			t.Errorf("key %s: %q, want %q", c.key, got, c.want)
		}
	}
}

// A VM configured later (another worker, a config reload) finds the slots
// already there and must not refill them; the slots it creates are exactly
// maxKeys.
func TestConfigureCreatesSlotsWithoutResettingThem(t *testing.T) {
	shared := abitest.NewShared()
	cfg := []byte(`{"key": "principal", "rps": 0.001, "burst": 2, "maxKeys": 8}`)
	request := func(p *Plugin) abi.Action {
		h := abitest.New(shared, abi.Header{Name: ":path", Value: "/"}, abi.Header{Name: "x-meshguard-principal", Value: "a"})
		h.Now = 1e18
		return p.NewContext(1).OnRequestHeaders(h, false)
	}
	first := New()
	if err := first.Configure(abitest.New(shared), cfg); err != nil {
		t.Fatal(err)
	}
	if shared.Keys() != 8 {
		t.Fatalf("%d slots after configure, want maxKeys = 8", shared.Keys())
	}
	for i, want := range []abi.Action{abi.Continue, abi.Continue, abi.Pause} {
		if got := request(first); got != want {
			t.Fatalf("request %d: %v, want %v (burst of 2)", i+1, got, want)
		}
	}
	second := New()
	if err := second.Configure(abitest.New(shared), cfg); err != nil {
		t.Fatal(err)
	}
	if request(second) != abi.Pause {
		t.Fatal("configuring another VM refilled a spent bucket")
	}
}

// fnv1a is hash/fnv's FNV-1a, chained over several strings.
func TestFNV1aMatchesHashFNV(t *testing.T) {
	for _, parts := range [][]string{{""}, {"a"}, {"path0", "|", `User::"alice"`}, {"default", "|", "ip:10.0.0.1"}} {
		f := fnv.New64a()
		h := uint64(fnvOffset)
		for _, s := range parts {
			f.Write([]byte(s))
			h = fnv1a(h, s)
		}
		if h != f.Sum64() {
			t.Errorf("fnv1a(%q) = %x, hash/fnv says %x", parts, h, f.Sum64())
		}
	}
}

func TestAppendDecimal(t *testing.T) {
	for _, v := range []uint64{0, 1, 9, 10, 99, 100, 4095, 1 << 20, 999999999, math.MaxUint32, math.MaxUint32 + 1, math.MaxUint64} {
		if got, want := string(appendDecimal([]byte("x="), v)), "x="+strconv.FormatUint(v, 10); got != want {
			t.Errorf("appendDecimal(%d) = %q, want %q", v, got, want)
		}
	}
}

func TestSecondsRoundsUpAndClamps(t *testing.T) {
	for _, tc := range []struct {
		wait float64
		want uint64
	}{{0, 0}, {-1, 0}, {0.2, 1}, {1, 1}, {1.5, 2}, {1e300, math.MaxUint32}, {math.Inf(1), math.MaxUint32}} {
		if got := seconds(tc.wait); got != tc.want {
			t.Errorf("seconds(%g) = %d, want %d", tc.wait, got, tc.want)
		}
	}
}
