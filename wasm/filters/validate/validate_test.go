package validate

import (
	"net/url"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"

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

// pathProblemReference states PathProblem's rules plainly — each a search
// of its own over the path, then decoding and splitting into segments —
// independently of PathProblem's single pass, which must agree with it on
// every input, reason included.
func pathProblemReference(rawPath string) string {
	p, _, _ := strings.Cut(rawPath, "?")
	if p == "" || p[0] != '/' && p != "*" {
		return "path must start with '/'"
	}
	escaped := func(codes ...string) bool { // %XX, its letter in either case
		return slices.ContainsFunc(codes, func(c string) bool {
			return strings.Contains(p, "%"+c) || strings.Contains(p, "%"+strings.ToUpper(c))
		})
	}
	switch {
	case strings.Contains(p, `\`):
		return "backslash"
	case escaped("2f", "5c"):
		return "encoded slash or backslash"
	case escaped("25"):
		return "double encoding"
	case escaped("00"):
		return "NUL byte"
	case strings.ContainsFunc(p, func(r rune) bool { return r < 0x20 || r == 0x7f }):
		return "control character"
	}
	decoded, err := url.PathUnescape(p)
	if err != nil {
		return "invalid percent-encoding"
	}
	if !utf8.ValidString(decoded) {
		return "invalid UTF-8"
	}
	if slices.ContainsFunc(strings.Split(decoded, "/"), func(s string) bool { return s == "." || s == ".." }) {
		return "dot segment"
	}
	return ""
}

var pathSeeds = []string{"/", "*", "/a/b", "/a/b?x=../y", "/caf%C3%A9", "/café", "/a/.", "/a/..", "/./a", "/.a/b.", "/a/...", "//", "/a//b",
	"/%2e%2e/", "/a%2", "/a%", "/%ff", "/\xff", "/a?", "?", "/a\\b", "/a\x00", "/a%00", "/a%2F", "/a%5c", "/a%25", "/.%2e", "/%2e."}

func TestPathProblemMatchesReference(t *testing.T) {
	for _, p := range pathSeeds {
		if got, want := PathProblem(p), pathProblemReference(p); got != want {
			t.Errorf("PathProblem(%q) = %q, reference %q", p, got, want)
		}
	}
}

func FuzzPathProblemMatchesReference(f *testing.F) {
	for _, p := range pathSeeds {
		f.Add(p)
	}
	f.Fuzz(func(t *testing.T, p string) {
		if got, want := PathProblem(p), pathProblemReference(p); got != want {
			t.Fatalf("PathProblem(%q) = %q, reference %q", p, got, want)
		}
	})
}

// A repeated header is judged on all its values (joined, as abi.Lookup
// joins them), never on the first alone: two Content-Length headers are
// refused, and so is a second Origin after an allowed one.
func TestRepeatedHeadersAreJudgedOnAllValues(t *testing.T) {
	p := New()
	if err := p.Configure(nil, []byte(`{"csrf": {"allowedOrigins": ["https://a.example"]}}`)); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		extra  []abi.Header
		status uint32
	}{
		{"one content-length", []abi.Header{{Name: "content-length", Value: "5"}, {Name: "origin", Value: "https://a.example"}}, 0},
		{"two content-lengths", []abi.Header{{Name: "content-length", Value: "5"}, {Name: "Content-Length", Value: "5"}}, 400},
		{"allowed origin, then another", []abi.Header{{Name: "origin", Value: "https://a.example"}, {Name: "origin", Value: "https://evil.example"}}, 403},
		{"same-site, then cross-site", []abi.Header{{Name: "sec-fetch-site", Value: "same-origin"}, {Name: "sec-fetch-site", Value: "cross-site"}}, 403},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := append([]abi.Header{{Name: ":method", Value: "POST"}, {Name: ":path", Value: "/x"}}, tc.extra...)
			h := abitest.New(nil, req...)
			p.NewContext(1).OnRequestHeaders(h, false)
			got := uint32(0)
			if h.Local != nil {
				got = h.Local.Status
			}
			if got != tc.status {
				t.Fatalf("answered %d, want %d", got, tc.status)
			}
		})
	}
}
