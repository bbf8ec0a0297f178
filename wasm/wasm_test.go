// Package wasm_test loads the built .wasm filters in the wazero test host and
// drives them like Envoy does.
package wasm_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/tetratelabs/wazero"

	"github.com/meshguard/meshguard/wasm/abi"
	"github.com/meshguard/meshguard/wasm/wasmtest"
)

var (
	buildOnce sync.Once
	buildDir  string
	buildErr  error
)

// module returns a built filter: from MESHGUARD_WASM_DIR (make test builds
// dist/), else built now with stock Go for wasip1.
func module(t testing.TB, name string) []byte {
	t.Helper()
	dir := os.Getenv("MESHGUARD_WASM_DIR")
	if name == "noop" {
		dir = "" // the benchmark floor is not shipped in dist/
	}
	if dir == "" {
		buildOnce.Do(func() {
			buildDir, buildErr = os.MkdirTemp("", "meshguard-wasm")
			if buildErr != nil {
				return
			}
			for _, f := range []string{"headers", "ratelimit", "validate", "noop"} {
				src := "./cmd/" + f
				if f == "noop" {
					src = "./internal/noop"
				}
				cmd := exec.Command("go", "build", "-buildmode=c-shared", "-o", filepath.Join(buildDir, f+".wasm"), src)
				cmd.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm")
				if out, err := cmd.CombinedOutput(); err != nil {
					buildErr = fmt.Errorf("build %s: %v\n%s", f, err, out)
					return
				}
			}
		})
		if buildErr != nil {
			t.Fatal(buildErr)
		}
		dir = buildDir
	}
	b, err := os.ReadFile(filepath.Join(dir, name+".wasm"))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// newVM starts a VM of the named module with config, in the environment
// env (KEY=VALUE, as wasmtest.Host.SetEnv).
func newVM(t testing.TB, name, config string, env ...string) (*wasmtest.Host, *wasmtest.VM) {
	t.Helper()
	ctx := context.Background()
	h, err := wasmtest.NewHost(ctx, module(t, name))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close(ctx) })
	h.SetEnv(env...)
	vm, err := h.NewVM(ctx, []byte(config))
	if err != nil {
		t.Fatal(err)
	}
	return h, vm
}

func req(method, path string, extra ...string) []abi.Header {
	hs := []abi.Header{{Name: ":method", Value: method}, {Name: ":path", Value: path}, {Name: ":authority", Value: "shop.example.com"}}
	for i := 0; i+1 < len(extra); i += 2 {
		hs = append(hs, abi.Header{Name: extra[i], Value: extra[i+1]})
	}
	return hs
}

var okResponse = []abi.Header{{Name: ":status", Value: "200"}, {Name: "server", Value: "gunicorn/20"}, {Name: "x-powered-by", Value: "Flask"}, {Name: "content-type", Value: "text/html"}}

func TestHeadersFilterAsWasm(t *testing.T) {
	_, vm := newVM(t, "headers", `{
		"hsts": {"maxAge": 31536000, "includeSubDomains": true, "preload": true},
		"stripHeaders": ["x-debug"],
		"pathOverrides": [{"prefix": "/embed", "headers": {"x-frame-options": "SAMEORIGIN", "content-security-policy": ""}}],
		"cors": {"allowedOrigins": ["https://app.example.com"], "allowedMethods": ["GET", "POST"], "allowedHeaders": ["authorization"], "maxAge": 600}
	}`)
	ctx := context.Background()
	r, err := vm.Request(ctx, req("GET", "/"), append(okResponse, abi.Header{Name: "x-debug", Value: "1"}))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"strict-transport-security": "max-age=31536000; includeSubDomains; preload",
		"x-content-type-options":    "nosniff",
		"x-frame-options":           "DENY",
		"referrer-policy":           "strict-origin-when-cross-origin",
	}
	for k, v := range want {
		if got, _ := wasmtest.Header(r.Response, k); got != v {
			t.Errorf("%s = %q, want %q", k, got, v)
		}
	}
	for _, k := range []string{"server", "x-powered-by", "x-debug"} {
		if _, ok := wasmtest.Header(r.Response, k); ok {
			t.Errorf("%s not stripped", k)
		}
	}
	if id, ok := wasmtest.Header(r.Request, "x-request-id"); !ok || len(id) != 32 {
		t.Errorf("request id not added: %q", id)
	}
	// Per-path override.
	r, _ = vm.Request(ctx, req("GET", "/embed/widget"), okResponse)
	if v, _ := wasmtest.Header(r.Response, "x-frame-options"); v != "SAMEORIGIN" {
		t.Errorf("override x-frame-options = %q", v)
	}
	if _, ok := wasmtest.Header(r.Response, "content-security-policy"); ok {
		t.Error("override did not remove the CSP")
	}
	// An existing request id is kept.
	r, _ = vm.Request(ctx, req("GET", "/", "x-request-id", "abc"), okResponse)
	if v, _ := wasmtest.Header(r.Request, "x-request-id"); v != "abc" {
		t.Errorf("request id replaced: %q", v)
	}
	// CORS preflight from an allowed origin: 204 without reaching upstream.
	r, _ = vm.Request(ctx, req("OPTIONS", "/api", "origin", "https://app.example.com", "access-control-request-method", "POST"), nil)
	if r.Local == nil || r.Local.Status != 204 {
		t.Fatalf("preflight: %+v", r.Local)
	}
	wantPreflight := map[string]string{
		"access-control-allow-origin": "https://app.example.com", "access-control-allow-methods": "GET, POST",
		"access-control-allow-headers": "authorization", "access-control-max-age": "600", "vary": "Origin",
	}
	checkPreflight := func(r *wasmtest.Result) {
		t.Helper()
		for k, v := range wantPreflight {
			if got, _ := wasmtest.Header(r.Local.Headers, k); got != v {
				t.Errorf("preflight %s = %q, want %q", k, got, v)
			}
		}
		if len(r.Local.Headers) != len(wantPreflight) {
			t.Errorf("preflight headers %v, want exactly %v", r.Local.Headers, wantPreflight)
		}
	}
	checkPreflight(r)
	// From another origin: 403.
	r, _ = vm.Request(ctx, req("OPTIONS", "/api", "origin", "https://evil.example", "access-control-request-method", "POST"), nil)
	if r.Local == nil || r.Local.Status != 403 {
		t.Fatalf("foreign preflight: %+v", r.Local)
	}
	if v, _ := wasmtest.Header(r.Local.Headers, "vary"); v != "Origin" {
		t.Errorf("refused preflight vary = %q", v)
	}
	if _, ok := wasmtest.Header(r.Local.Headers, "access-control-allow-origin"); ok {
		t.Error("a refused preflight carries allow-origin")
	}
	// The answers are built in reused buffers: a later one is whole again.
	r, _ = vm.Request(ctx, req("OPTIONS", "/api", "origin", "https://app.example.com", "access-control-request-method", "GET"), nil)
	if r.Local == nil || r.Local.Status != 204 {
		t.Fatalf("second preflight: %+v", r.Local)
	}
	checkPreflight(r)
	// Simple request from an allowed origin gets CORS headers; others don't.
	r, _ = vm.Request(ctx, req("GET", "/api", "origin", "https://app.example.com"), okResponse)
	if v, _ := wasmtest.Header(r.Response, "access-control-allow-origin"); v != "https://app.example.com" {
		t.Errorf("allow-origin = %q", v)
	}
	r, _ = vm.Request(ctx, req("GET", "/api", "origin", "https://evil.example"), okResponse)
	if _, ok := wasmtest.Header(r.Response, "access-control-allow-origin"); ok {
		t.Error("CORS headers for a foreign origin")
	}
}

func TestBadConfigRefusesToStart(t *testing.T) {
	ctx := context.Background()
	for _, c := range []struct{ name, cfg string }{
		{"headers", `{"hsts": {"maxAge": 10, "preload": true}}`},
		{"headers", `{"nope": 1}`},
		{"ratelimit", `{"rps": 0, "burst": 1}`},
		{"ratelimit", `{"rps": 1, "burst": 1, "key": "cookie"}`},
		{"validate", `{"maxHeaders": -1}`},
		{"validate", `not json`},
	} {
		h, err := wasmtest.NewHost(ctx, module(t, c.name))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := h.NewVM(ctx, []byte(c.cfg)); err == nil {
			t.Errorf("%s started with config %s", c.name, c.cfg)
		}
		h.Close(ctx)
	}
}

// A host that creates streams although the configuration was refused
// (Envoy does not; an independent host did, and the ratelimit filter
// divided by zero) gets streams that fail closed: 503, no filter logic,
// no panic — for every filter.
func TestStreamsOfAnUnconfiguredFilterFailClosed(t *testing.T) {
	ctx := context.Background()
	for _, c := range []struct{ name, cfg string }{
		{"ratelimit", `{"rps": 0, "burst": 1}`},
		{"headers", `{"nope": 1}`},
		{"validate", `not json`},
	} {
		h, err := wasmtest.NewHost(ctx, module(t, c.name))
		if err != nil {
			t.Fatal(err)
		}
		vm, err := h.NewVM(ctx, []byte(c.cfg))
		if !errors.Is(err, wasmtest.ErrConfigRefused) || vm == nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		for range 3 {
			res, err := vm.Request(ctx, req("GET", "/"), okResponse)
			if err != nil {
				t.Fatalf("%s: %v", c.name, err)
			}
			if res.Local == nil || res.Local.Status != 503 {
				t.Fatalf("%s: a stream of an unconfigured filter was not refused: %+v", c.name, res)
			}
		}
		for _, l := range h.Logs() {
			if strings.Contains(l, "panicked") {
				t.Fatalf("%s: %s", c.name, l)
			}
		}
		h.Close(ctx)
	}
}

func TestValidateFilterAsWasm(t *testing.T) {
	_, vm := newVM(t, "validate", `{"allowedMethods": ["GET", "POST"], "maxHeaders": 10, "maxHeaderBytes": 100,
		"maxURLLength": 64, "maxBodyBytes": 1000, "csrf": {"allowedOrigins": ["https://shop.example.com"]}}`)
	ctx := context.Background()
	cases := []struct {
		name   string
		req    []abi.Header
		status uint32 // 0 = passes
	}{
		{"plain GET", req("GET", "/products/1?x=1"), 0},
		{"method not allowed", req("DELETE", "/products/1"), 405},
		{"dot-dot", req("GET", "/a/../etc/passwd"), 400},
		{"encoded dot-dot", req("GET", "/a/%2e%2e/etc"), 400},
		{"encoded slash", req("GET", "/a%2Fb"), 400},
		{"backslash", req("GET", `/a\b`), 400},
		{"NUL", req("GET", "/a%00b"), 400},
		{"double encoding", req("GET", "/a%252e%252e/"), 400},
		{"invalid UTF-8", req("GET", "/a%ff%fe"), 400},
		{"bad escape", req("GET", "/a%zz"), 400},
		{"URL too long", req("GET", "/"+string(make([]byte, 80))), 414},
		{"too many headers", req("GET", "/", "a", "1", "b", "1", "c", "1", "d", "1", "e", "1", "f", "1", "g", "1", "h", "1"), 431},
		{"header too large", req("GET", "/", "cookie", string(make([]byte, 200))), 431},
		{"body too large", req("POST", "/upload", "content-length", "5000", "origin", "https://shop.example.com"), 413},
		{"bad content-length", req("POST", "/upload", "content-length", "-1"), 400},
		{"cross-site POST", req("POST", "/cart", "origin", "https://evil.example"), 403},
		{"cross-site POST by fetch metadata", req("POST", "/cart", "sec-fetch-site", "cross-site"), 403},
		{"same-origin POST", req("POST", "/cart", "origin", "https://shop.example.com"), 0},
		{"same-site POST by fetch metadata", req("POST", "/cart", "sec-fetch-site", "same-origin"), 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			for i, h := range tc.req {
				if h.Name == ":path" && len(h.Value) > 1 && h.Value[1] == 0 {
					tc.req[i].Value = "/" + string(repeat('a', 80))
				}
				if h.Name == "cookie" {
					tc.req[i].Value = string(repeat('c', 200))
				}
			}
			r, err := vm.Request(ctx, tc.req, okResponse)
			if err != nil {
				t.Fatal(err)
			}
			switch {
			case tc.status == 0 && r.Local != nil:
				t.Fatalf("refused with %d: %s", r.Local.Status, r.Local.Body)
			case tc.status != 0 && (r.Local == nil || r.Local.Status != tc.status):
				t.Fatalf("local response %+v, want %d", r.Local, tc.status)
			}
			// Refusals are built in reused buffers: each must be whole.
			if want, ok := refusalBodies[tc.name]; ok && r.Local.Body != want {
				t.Errorf("body %q, want %q", r.Local.Body, want)
			}
			if tc.status == 405 {
				if v, _ := wasmtest.Header(r.Local.Headers, "allow"); v != "GET, POST" {
					t.Errorf("allow = %q", v)
				}
			}
			if r.Local != nil && len(r.Local.Headers) != map[bool]int{true: 2, false: 1}[tc.status == 405] {
				t.Errorf("refusal headers %v", r.Local.Headers)
			}
		})
	}
}

// refusalBodies are validate's answers for some of TestValidateFilterAsWasm's cases.
var refusalBodies = map[string]string{
	"method not allowed": "method not allowed\n",
	"dot-dot":            "bad request path: dot segment\n",
	"encoded slash":      "bad request path: encoded slash or backslash\n",
	"URL too long":       "URL too long\n",
	"cross-site POST":    "cross-site request refused\n",
}

func repeat(b byte, n int) []byte {
	out := make([]byte, n)
	for i := range out {
		out[i] = b
	}
	return out
}

func TestRateLimitFilterAsWasm(t *testing.T) {
	h, vm := newVM(t, "ratelimit", `{"key": "principal", "rps": 2, "burst": 3, "maxKeys": 64,
		"paths": [{"prefix": "/login", "rps": 1, "burst": 1}], "keys": {"User::\"vip\"": {"rps": 100, "burst": 100}}}`)
	ctx := context.Background()
	as := func(p, path string) *wasmtest.Result {
		r, err := vm.Request(ctx, req("GET", path, "x-meshguard-principal", p), okResponse)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	for i := range 3 {
		r := as(`User::"alice"`, "/")
		if r.Local != nil {
			t.Fatalf("request %d refused within the burst", i)
		}
		if v, _ := wasmtest.Header(r.Response, "x-ratelimit-remaining"); v != strconv.Itoa(2-i) {
			t.Fatalf("remaining = %q after %d requests", v, i+1)
		}
	}
	r := as(`User::"alice"`, "/")
	if r.Local == nil || r.Local.Status != 429 {
		t.Fatalf("4th request: %+v, want 429", r.Local)
	}
	for _, k := range []string{"retry-after", "x-ratelimit-limit", "x-ratelimit-remaining", "x-ratelimit-reset"} {
		if _, ok := wasmtest.Header(r.Local.Headers, k); !ok {
			t.Errorf("429 without %s", k)
		}
	}
	// Another caller has its own bucket; the vip has a bigger one.
	if as(`User::"bob"`, "/").Local != nil {
		t.Fatal("bob limited by alice's bucket")
	}
	for range 20 {
		if as(`User::"vip"`, "/").Local != nil {
			t.Fatal("per-key limit not applied")
		}
	}
	// Path limit: /login has its own, smaller bucket.
	if as(`User::"carol"`, "/login").Local != nil || as(`User::"carol"`, "/login").Local == nil {
		t.Fatal("path limit not applied")
	}
	// Time refills the bucket (ticks carry time forward; refill is lazy).
	h.Advance(600e6)
	if err := vm.Tick(ctx); err != nil {
		t.Fatal(err)
	}
	if as(`User::"alice"`, "/").Local != nil {
		t.Fatal("no refill after 0.6s at 2 rps")
	}
	if as(`User::"alice"`, "/").Local == nil {
		t.Fatal("refilled more than one token in 0.6s")
	}
	// Without a principal, the client IP is the key.
	h.SetProperty("10.0.0.9:5555", "source", "address")
	r, _ = vm.Request(ctx, req("GET", "/"), okResponse)
	if r.Local != nil {
		t.Fatal("IP-keyed request refused")
	}
	if h.SharedKeys() > 64 {
		t.Fatalf("%d shared data keys, over maxKeys", h.SharedKeys())
	}
}

// Many callers beyond maxKeys stay within the fixed slot table.
func TestRateLimitKeysAreBounded(t *testing.T) {
	h, vm := newVM(t, "ratelimit", `{"key": "principal", "rps": 10, "burst": 10, "maxKeys": 16}`)
	ctx := context.Background()
	for i := range 500 {
		if _, err := vm.Request(ctx, req("GET", "/", "x-meshguard-principal", fmt.Sprintf("User::\"u%d\"", i)), okResponse); err != nil {
			t.Fatal(err)
		}
	}
	if n := h.SharedKeys(); n > 16 {
		t.Fatalf("%d shared keys for maxKeys 16", n)
	}
}

// Worker threads: several VMs of one module share buckets through shared
// data; concurrent takes race on CAS and never admit more than the bucket.
func TestRateLimitAcrossWorkersWithCASContention(t *testing.T) {
	ctx := context.Background()
	h, err := wasmtest.NewHost(ctx, module(t, "ratelimit"))
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close(ctx)
	const workers, perWorker, burst = 4, 50, 60
	cfg := fmt.Sprintf(`{"key": "principal", "rps": 0.001, "burst": %d}`, burst)
	var vms []*wasmtest.VM
	for range workers {
		vm, err := h.NewVM(ctx, []byte(cfg))
		if err != nil {
			t.Fatal(err)
		}
		vms = append(vms, vm)
	}
	var mu sync.Mutex
	allowed := 0
	var wg sync.WaitGroup
	for _, vm := range vms {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range perWorker {
				r, err := vm.Request(ctx, req("GET", "/", "x-meshguard-principal", `User::"shared"`), okResponse)
				if err != nil {
					t.Error(err)
					return
				}
				if r.Local == nil {
					mu.Lock()
					allowed++
					mu.Unlock()
				}
			}
		}()
	}
	wg.Wait()
	if allowed != burst {
		t.Fatalf("allowed %d of %d requests across %d workers, want exactly the burst %d", allowed, workers*perWorker, workers, burst)
	}
	t.Logf("CAS mismatches retried: %d", h.CASMismatches())
}

// Header maps larger than the module's 64 KiB arena take the allocation
// path; the filter still sees every header, and the next request (back on
// the arena) is unaffected.
func TestHeaderMapsLargerThanTheArena(t *testing.T) {
	_, vm := newVM(t, "validate", `{"maxHeaderBytes": 200000}`)
	ctx := context.Background()
	big := string(repeat('c', 100<<10))
	r, err := vm.Request(ctx, req("GET", "/a", "cookie", big, "x-after", "1"), okResponse)
	if err != nil {
		t.Fatal(err)
	}
	if r.Local != nil {
		t.Fatalf("large but allowed header refused: %d %s", r.Local.Status, r.Local.Body)
	}
	r, err = vm.Request(ctx, req("GET", "/a/../b", "cookie", big), okResponse)
	if err != nil {
		t.Fatal(err)
	}
	if r.Local == nil || r.Local.Status != 400 {
		t.Fatalf("traversal behind a large header map: %+v, want 400", r.Local)
	}
	r, err = vm.Request(ctx, req("GET", "/a/../b"), okResponse)
	if err != nil || r.Local == nil || r.Local.Status != 400 {
		t.Fatalf("small request after large ones: %+v, %v", r.Local, err)
	}

	_, hv := newVM(t, "headers", `{"pathOverrides": [{"prefix": "/embed", "headers": {"x-frame-options": "SAMEORIGIN"}}]}`)
	resp := append([]abi.Header{{Name: "x-big", Value: big}}, okResponse...)
	r, err = hv.Request(ctx, req("GET", "/embed/x", "x-big", big), resp)
	if err != nil {
		t.Fatal(err)
	}
	if v, _ := wasmtest.Header(r.Response, "x-frame-options"); v != "SAMEORIGIN" {
		t.Errorf("override after large maps: x-frame-options = %q", v)
	}
	if _, ok := wasmtest.Header(r.Response, "server"); ok {
		t.Error("server header kept in a large response map")
	}
}

// A host skips callbacks a module does not export (proxy-wasm-cpp-host
// treats them as Continue, or done), so the modules export only those a
// filter can act on: each exported no-op would cost a VM crossing per
// request, or per body chunk.
func TestModulesExportOnlyCallbacksTheyUse(t *testing.T) {
	ctx := context.Background()
	rt := wazero.NewRuntime(ctx)
	defer rt.Close(ctx)
	required := []string{"proxy_abi_version_0_2_1", "proxy_on_memory_allocate", "proxy_on_context_create",
		"proxy_on_vm_start", "proxy_on_configure", "proxy_on_request_headers", "proxy_on_response_headers",
		"proxy_on_delete", "proxy_on_tick"}
	unused := []string{"proxy_on_request_body", "proxy_on_response_body", "proxy_on_request_trailers",
		"proxy_on_response_trailers", "proxy_on_log", "proxy_on_done"}
	for _, name := range []string{"headers", "ratelimit", "validate"} {
		compiled, err := rt.CompileModule(ctx, module(t, name))
		if err != nil {
			t.Fatal(err)
		}
		exports := compiled.ExportedFunctions()
		for _, f := range required {
			if _, ok := exports[f]; !ok {
				t.Errorf("%s.wasm does not export %s", name, f)
			}
		}
		for _, f := range unused {
			if _, ok := exports[f]; ok {
				t.Errorf("%s.wasm exports %s, which no filter uses", name, f)
			}
		}
	}
}

// Request's results are the caller's to keep — a later request does not
// change them — while Run's are reused by the next request.
func TestRequestResultsAreIndependent(t *testing.T) {
	_, vm := newVM(t, "headers", `{}`)
	ctx := context.Background()
	first, err := vm.Request(ctx, req("GET", "/"), okResponse)
	if err != nil {
		t.Fatal(err)
	}
	id1, _ := wasmtest.Header(first.Request, "x-request-id")
	second, err := vm.Request(ctx, req("GET", "/"), okResponse)
	if err != nil {
		t.Fatal(err)
	}
	id2, _ := wasmtest.Header(second.Request, "x-request-id")
	if again, _ := wasmtest.Header(first.Request, "x-request-id"); len(id1) != 32 || id1 == id2 || again != id1 {
		t.Fatalf("request ids %q then %q; the first result now says %q", id1, id2, again)
	}
	run, err := vm.Run(ctx, req("GET", "/"), okResponse)
	if err != nil {
		t.Fatal(err)
	}
	if next, _ := vm.Run(ctx, req("GET", "/"), okResponse); next != run {
		t.Fatal("Run did not reuse its result")
	}
}
