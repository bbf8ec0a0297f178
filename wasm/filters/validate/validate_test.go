package validate

import (
	"testing"

	"github.com/meshguard/meshguard/wasm/abi"
	"github.com/meshguard/meshguard/wasm/abi/abitest"
)

func TestPathProblem(t *testing.T) {
	ok := []string{"/", "/a/b", "/a/b?x=../y", "/caf%C3%A9", "/a-b_c.d~e", "/files/a..b", "*"}
	bad := []string{"", "a/b", "/a/../b", "/..", "/./a", "/a/%2E%2E/b", "/a/.%2e/b", "/a%2fb", "/a%5Cb", `/a\b`,
		"/a%00", "/a%2500", "/a%ff", "/a%zz", "/a\x01b", "/a\x7f"}
	for _, p := range ok {
		if r := PathProblem(p); r != "" {
			t.Errorf("PathProblem(%q) = %q, want ok", p, r)
		}
	}
	for _, p := range bad {
		if PathProblem(p) == "" {
			t.Errorf("PathProblem(%q) accepted", p)
		}
	}
}

func FuzzPathProblem(f *testing.F) {
	f.Add("/a/../b")
	f.Add("/a%2e%2e/b")
	f.Fuzz(func(t *testing.T, p string) {
		if PathProblem(p) == "" {
			// Whatever passes must not decode to a traversal.
			for _, seg := range splitDecoded(t, p) {
				if seg == ".." {
					t.Fatalf("%q passed but decodes to a dot-dot segment", p)
				}
			}
		}
	})
}

func TestDefaultsAndCSRFWithoutHeaders(t *testing.T) {
	p := New()
	if err := p.Configure(nil, []byte(`{"csrf": {"allowedOrigins": ["https://a.example"]}}`)); err != nil {
		t.Fatal(err)
	}
	h := abitest.New(nil, abi.Header{Name: ":method", Value: "POST"}, abi.Header{Name: ":path", Value: "/x"})
	if p.NewContext(1).OnRequestHeaders(h, false) != abi.Continue || h.Local != nil {
		t.Fatal("a non-browser POST (no Origin, no Sec-Fetch-Site) was refused")
	}
	if p.cfg.MaxHeaders != DefaultMaxHeaders || p.cfg.MaxBodyBytes != DefaultMaxBodyBytes {
		t.Fatalf("defaults not applied: %+v", p.cfg)
	}
}
