// Package filters_test drives meshguard's proxy-wasm filters through the
// same Dispatcher their .wasm modules export, in any order of callbacks
// the proxy-wasm ABI allows, with hostile headers and configurations.
package filters_test

import (
	"strings"
	"testing"

	"github.com/meshguard/meshguard/wasm/abi"
	"github.com/meshguard/meshguard/wasm/abi/abitest"
	"github.com/meshguard/meshguard/wasm/filters/headers"
	"github.com/meshguard/meshguard/wasm/filters/ratelimit"
	"github.com/meshguard/meshguard/wasm/filters/validate"
)

var plugins = []struct {
	name    string
	new     func() abi.Plugin
	configs []string // valid first, then invalid ones
}{
	{"validate", func() abi.Plugin { return validate.New() }, []string{`{}`,
		`{"allowedMethods": ["GET"], "maxHeaders": 3, "maxHeaderBytes": 64, "maxURLLength": 32, "maxBodyBytes": 10, "csrf": {"allowedOrigins": ["https://a.example"]}}`,
		`{"maxHeaders": -1}`, `not json`}},
	{"headers", func() abi.Plugin { return headers.New() }, []string{`{}`,
		`{"hsts": {"maxAge": 31536000, "includeSubDomains": true}, "cors": {"allowedOrigins": ["https://a.example"], "allowCredentials": true, "maxAge": 60}, "pathOverrides": [{"prefix": "/x", "headers": {"x-a": "", "x-b": "1"}}]}`,
		`{"frameOptions": "ALLOWALL"}`, `[]`}},
	{"ratelimit", func() abi.Plugin { return ratelimit.New() }, []string{`{"rps": 1, "burst": 1}`,
		`{"key": "principal", "rps": 0.001, "burst": 2, "maxKeys": 1}`,
		`{"rps": 0, "burst": 0}`, `{"rps": -1}`}},
}

// Request header values the fuzzer picks from, beside its own bytes.
var (
	methods = []string{"GET", "POST", "OPTIONS", "DELETE", "BREW", ""}
	paths   = []string{"/", "/a/../b", "/%2e%2e/x", "/x?y=1", "/" + strings.Repeat("a", 5000), "", "//", "/\x00", "/%zz", "/x/%252e"}
	origins = []string{"https://a.example", "https://evil.example", "null", ""}
)

// program interprets fuzz bytes as a sequence of ABI callbacks.
type program struct {
	t      *testing.T
	b      []byte
	extra  string
	d      *abi.Dispatcher
	shared *abitest.Shared
	now    int64
	cfgs   []string
}

func (p *program) next() byte {
	if len(p.b) == 0 {
		return 0
	}
	c := p.b[0]
	p.b = p.b[1:]
	return c
}

func (p *program) host() *abitest.Host {
	h := abitest.New(p.shared)
	h.Now = p.now
	return h
}

func (p *program) request() []abi.Header {
	hs := []abi.Header{
		{Name: ":method", Value: methods[int(p.next())%len(methods)]},
		{Name: ":path", Value: paths[int(p.next())%len(paths)]},
		{Name: ":authority", Value: "svc"},
	}
	for n := int(p.next() % 4); n > 0; n-- {
		switch p.next() % 5 {
		case 0:
			hs = append(hs, abi.Header{Name: "origin", Value: origins[int(p.next())%len(origins)]})
		case 1:
			hs = append(hs, abi.Header{Name: "content-length", Value: p.extra})
		case 2:
			hs = append(hs, abi.Header{Name: "x-meshguard-principal", Value: p.extra})
		case 3:
			hs = append(hs, abi.Header{Name: "access-control-request-method", Value: methods[int(p.next())%len(methods)]})
		default:
			hs = append(hs, abi.Header{Name: ":path", Value: p.extra})
		}
	}
	return hs
}

// step runs one callback and checks what must hold after any of them: no
// filter panicked, and a stream is held (Pause) exactly when the filter
// answered it itself.
func (p *program) step() {
	h := p.host()
	id := uint32(p.next()%6) + 1
	switch op := p.next() % 8; op {
	case 0:
		cfg := p.cfgs[int(p.next())%len(p.cfgs)]
		if p.next()%4 == 0 {
			cfg = p.extra
		}
		p.d.Configure(h, []byte(cfg))
	case 1:
		p.d.ContextCreate(id, 1)
	case 2, 3:
		h.Maps[abi.RequestHeaders] = p.request()
		a := p.d.RequestHeaders(h, id, p.next()%2 == 0)
		if (a == abi.Pause) != (h.Local != nil) {
			p.t.Fatalf("request headers: %v with local response %+v", a, h.Local)
		}
		if h.Local != nil && (h.Local.Status < 200 || h.Local.Status > 599) {
			p.t.Fatalf("local response status %d", h.Local.Status)
		}
	case 4:
		h.Maps[abi.ResponseHeaders] = []abi.Header{{Name: ":status", Value: "200"}, {Name: "server", Value: "x"}}
		if a := p.d.ResponseHeaders(h, id, p.next()%2 == 0); a != abi.Continue {
			p.t.Fatalf("response headers: %v", a)
		}
	case 5:
		p.d.Delete(id)
	case 6:
		p.d.Tick(h)
	case 7:
		p.now += int64(p.next()) * 1e8
		p.d.ContextCreate(0, 1) // id 0 is never a stream
	}
	for _, l := range h.Logs {
		if strings.Contains(l, "panicked") {
			p.t.Fatalf("a filter panicked: %s", l)
		}
	}
}

// FuzzCallOrders: no filter panics, or lets a stream through while
// answering it, whatever the order of create, configure (good, bad or
// fuzzed), request and response headers, delete and tick, on any headers.
func FuzzCallOrders(f *testing.F) {
	f.Add([]byte{0, 0, 0, 1, 1, 2, 0, 0, 0, 0}, `{}`)
	f.Add([]byte{1, 2, 1, 0, 2, 3, 1, 1, 0, 2, 4, 5, 2, 6}, `{"rps": 1e308, "burst": 1e308}`)
	f.Add([]byte{2, 1, 1, 2, 2, 3, 3, 3, 5, 2, 4, 1, 0, 3}, "\x00")
	f.Add([]byte{0, 3, 1, 0, 0, 2, 2, 5, 1, 1, 0, 4, 3, 9}, `{"cors": {"allowedOrigins": ["*"]}}`)
	f.Fuzz(func(t *testing.T, b []byte, extra string) {
		if len(b) == 0 || len(b) > 4096 {
			return
		}
		pl := plugins[int(b[0])%len(plugins)]
		p := &program{t: t, b: b[1:], extra: extra, d: abi.NewDispatcher(pl.new()), shared: abitest.NewShared(), now: 1e18, cfgs: pl.configs}
		for len(p.b) > 0 {
			p.step()
		}
	})
}

// The orders the ABI allows but a filter might not expect, for every
// filter: streams before any configuration, after a refused one,
// responses without requests, requests after delete, ticks throughout.
func TestEveryFilterSurvivesOddCallOrders(t *testing.T) {
	for _, pl := range plugins {
		t.Run(pl.name, func(t *testing.T) {
			d := abi.NewDispatcher(pl.new())
			shared := abitest.NewShared()
			req := func(id uint32) (abi.Action, *abitest.Host) {
				h := abitest.New(shared, abi.Header{Name: ":method", Value: "GET"}, abi.Header{Name: ":path", Value: "/"})
				h.Now = 1e18
				return d.RequestHeaders(h, id, false), h
			}
			h := abitest.New(shared)
			d.Tick(h)
			d.ContextCreate(1, 1)
			if a, h := req(1); a != abi.Pause || h.Local == nil || h.Local.Status != 503 {
				t.Fatalf("a stream before configure: %v %+v, want 503", a, h.Local)
			}
			if d.Configure(h, []byte(pl.configs[len(pl.configs)-1])) {
				t.Fatal("an invalid configuration was accepted")
			}
			d.ContextCreate(2, 1)
			if a, h := req(2); a != abi.Pause || h.Local.Status != 503 {
				t.Fatalf("a stream after a refused configure: %v %+v, want 503", a, h.Local)
			}
			if !d.Configure(h, []byte(pl.configs[0])) {
				t.Fatalf("configuration %s refused: %v", pl.configs[0], h.Logs)
			}
			if a := d.ResponseHeaders(abitest.New(shared), 3, false); a != abi.Continue {
				t.Fatalf("a response of an unknown stream: %v", a)
			}
			if a, h := req(3); a != abi.Pause || h.Local.Status != 500 {
				t.Fatalf("request headers of a stream never created: %v %+v, want 500", a, h.Local)
			}
			d.ContextCreate(3, 1)
			if a, _ := req(3); a != abi.Continue {
				t.Fatalf("a plain GET: %v", a)
			}
			d.Delete(3)
			d.Delete(3)
			if a, h := req(3); a != abi.Pause || h.Local.Status != 500 {
				t.Fatalf("request headers after delete: %v %+v, want 500", a, h.Local)
			}
			d.Tick(h)
			for _, l := range h.Logs {
				if strings.Contains(l, "panicked") {
					t.Fatal(l)
				}
			}
		})
	}
}
