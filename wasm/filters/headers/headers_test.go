package headers

import (
	"testing"

	"github.com/meshguard/meshguard/wasm/abi"
	"github.com/meshguard/meshguard/wasm/abi/abitest"
)

func TestDefaultsHardenEveryResponse(t *testing.T) {
	p := New()
	if err := p.Configure(nil, nil); err != nil {
		t.Fatal(err)
	}
	h := abitest.New(nil, abi.Header{Name: ":path", Value: "/"})
	h.Maps[abi.ResponseHeaders] = []abi.Header{{Name: "server", Value: "nginx"}}
	s := p.NewContext(1)
	s.OnRequestHeaders(h, false)
	s.OnResponseHeaders(h, false)
	for name, want := range map[string]string{
		"content-security-policy": defaultCSP, "x-frame-options": "DENY", "x-content-type-options": "nosniff",
		"referrer-policy": defaultReferrerPolicy,
	} {
		if got, _ := h.ResponseHeader(name); got != want {
			t.Errorf("%s = %q, want %q", name, got, want)
		}
	}
	if _, ok := h.ResponseHeader("server"); ok {
		t.Error("server header kept")
	}
	if _, ok := h.ResponseHeader("strict-transport-security"); ok {
		t.Error("HSTS set without configuration")
	}
}

func TestConfigErrors(t *testing.T) {
	for _, c := range []string{
		`{"frameOptions": "ALLOW-FROM x"}`,
		`{"cors": {"allowedOrigins": ["*"], "allowCredentials": true}}`,
		`{"cors": {"allowedOrigins": ["example.com"]}}`,
		`{"pathOverrides": [{"prefix": "x"}]}`,
		`{"unknown": true}`,
	} {
		if _, err := Parse([]byte(c)); err == nil {
			t.Errorf("accepted %s", c)
		}
	}
}

// Short strip lists are removed without reading the response first, long
// ones after a read; either way exactly the listed headers go, whatever
// their case, and the rest stay.
func TestStripHeadersShortAndLongLists(t *testing.T) {
	for _, strip := range []string{`["X-Debug"]`, `["x-debug", "x-a", "x-b", "x-c", "x-d"]`} {
		p := New()
		if err := p.Configure(nil, []byte(`{"stripHeaders": `+strip+`}`)); err != nil {
			t.Fatal(err)
		}
		h := abitest.New(nil, abi.Header{Name: ":path", Value: "/"})
		h.Maps[abi.ResponseHeaders] = []abi.Header{
			{Name: "server", Value: "nginx"}, {Name: "x-powered-by", Value: "php"},
			{Name: "x-debug", Value: "1"}, {Name: "content-type", Value: "text/plain"},
		}
		s := p.NewContext(1)
		s.OnRequestHeaders(h, false)
		s.OnResponseHeaders(h, false)
		for _, gone := range []string{"server", "x-powered-by", "x-debug"} {
			if _, ok := h.ResponseHeader(gone); ok {
				t.Errorf("strip %s: %s kept", strip, gone)
			}
		}
		if v, _ := h.ResponseHeader("content-type"); v != "text/plain" {
			t.Errorf("strip %s: content-type = %q, want it kept", strip, v)
		}
	}
}
