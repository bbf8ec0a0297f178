// Package headers is the security-headers filter: response hardening headers
// (HSTS, CSP, frame, content-type, referrer, permissions and cross-origin
// policies) with per-path overrides, removal of headers that leak the stack,
// a request id when none is present, and CORS from an origin allow-list.
package headers

import (
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/meshguard/meshguard/wasm/abi"
)

// Config is the filter's JSON configuration (docs/filters.md).
type Config struct {
	HSTS                      *HSTS          `json:"hsts"`
	ContentSecurityPolicy     string         `json:"contentSecurityPolicy"`
	FrameOptions              string         `json:"frameOptions"` // DENY | SAMEORIGIN
	ContentTypeOptions        *bool          `json:"contentTypeOptions"`
	ReferrerPolicy            string         `json:"referrerPolicy"`
	PermissionsPolicy         string         `json:"permissionsPolicy"`
	CrossOriginOpenerPolicy   string         `json:"crossOriginOpenerPolicy"`
	CrossOriginEmbedderPolicy string         `json:"crossOriginEmbedderPolicy"`
	CrossOriginResourcePolicy string         `json:"crossOriginResourcePolicy"`
	PathOverrides             []PathOverride `json:"pathOverrides"`
	StripHeaders              []string       `json:"stripHeaders"`
	RequestID                 *bool          `json:"requestId"`
	CORS                      *CORS          `json:"cors"`
}

// HSTS is Strict-Transport-Security.
type HSTS struct {
	MaxAge            int  `json:"maxAge"`
	IncludeSubDomains bool `json:"includeSubDomains"`
	Preload           bool `json:"preload"`
}

// PathOverride sets or removes (empty value) response headers for paths with a prefix.
type PathOverride struct {
	Prefix  string            `json:"prefix"`
	Headers map[string]string `json:"headers"`
}

// CORS answers preflights and decorates responses for allowed origins.
type CORS struct {
	AllowedOrigins   []string `json:"allowedOrigins"`
	AllowedMethods   []string `json:"allowedMethods"`
	AllowedHeaders   []string `json:"allowedHeaders"`
	ExposeHeaders    []string `json:"exposeHeaders"`
	AllowCredentials bool     `json:"allowCredentials"`
	MaxAge           int      `json:"maxAge"`
}

// Defaults applied when a key is absent.
const (
	defaultCSP            = "default-src 'self'; frame-ancestors 'none'; object-src 'none'; base-uri 'self'"
	defaultReferrerPolicy = "strict-origin-when-cross-origin"
	defaultFrameOptions   = "DENY"
)

// alwaysStripped leak the stack to clients.
var alwaysStripped = []string{"server", "x-powered-by", "x-aspnet-version", "x-aspnetmvc-version"}

// Plugin is the filter.
type Plugin struct {
	add        []abi.Header // headers set on every response, before overrides
	strip      []string
	requestID  bool
	overrides  []override
	corsStatic []abi.Header // CORS response headers other than the origin
	// preflightStatic is a preflight answer's headers other than the
	// origin, and preflight the buffer a request's answer is built in (the
	// host copies it): a preflight costs no allocation in the module.
	preflightStatic, preflight []abi.Header
	// id holds a new request id and its random bytes, for the host to copy.
	id    [32]byte
	idRaw [16]byte
	cfg   Config

	streams abi.Pool[stream] // streams for reuse
}

// override is a PathOverride ready for requests: lower-case names in a
// stable order (an empty value removes the header).
type override struct {
	prefix  string
	headers []abi.Header
}

// New returns the filter with no configuration applied.
func New() *Plugin { return &Plugin{} }

// Parse validates a configuration.
func Parse(data []byte) (Config, error) {
	var c Config
	if len(data) == 0 {
		return c, nil
	}
	dec := json.NewDecoder(strings.NewReader(string(data)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&c); err != nil {
		return c, fmt.Errorf("headers config: %w", err)
	}
	if c.HSTS != nil && (c.HSTS.MaxAge < 0 || c.HSTS.Preload && (c.HSTS.MaxAge < 31536000 || !c.HSTS.IncludeSubDomains)) {
		return c, errors.New("headers config: hsts: preload needs maxAge ≥ 31536000 and includeSubDomains")
	}
	if f := strings.ToUpper(c.FrameOptions); f != "" && f != "DENY" && f != "SAMEORIGIN" {
		return c, fmt.Errorf("headers config: frameOptions %q: want DENY or SAMEORIGIN", c.FrameOptions)
	}
	for _, p := range c.PathOverrides {
		if !strings.HasPrefix(p.Prefix, "/") {
			return c, fmt.Errorf("headers config: pathOverrides prefix %q must start with '/'", p.Prefix)
		}
	}
	if c.CORS != nil {
		for _, o := range c.CORS.AllowedOrigins {
			if o == "*" && c.CORS.AllowCredentials {
				return c, errors.New("headers config: cors: allowCredentials cannot be used with origin \"*\"")
			}
			if o != "*" && !strings.HasPrefix(o, "https://") && !strings.HasPrefix(o, "http://") {
				return c, fmt.Errorf("headers config: cors origin %q must be a scheme://host[:port] origin or \"*\"", o)
			}
		}
	}
	return c, nil
}

// Configure implements abi.Plugin.
func (p *Plugin) Configure(h abi.Host, data []byte) error {
	c, err := Parse(data)
	if err != nil {
		return err
	}
	p.cfg = c
	p.add = responseHeaders(c)
	p.strip = append(slices.Clone(alwaysStripped), lower(c.StripHeaders)...)
	p.requestID = c.RequestID == nil || *c.RequestID
	p.overrides = overrides(c.PathOverrides)
	p.corsStatic, p.preflightStatic = nil, nil
	if c.CORS != nil {
		p.corsStatic = corsStatic(c.CORS)
		p.preflightStatic = preflightStatic(c.CORS, p.corsStatic)
	}
	return nil
}

func overrides(pos []PathOverride) []override {
	out := make([]override, 0, len(pos))
	for _, po := range pos {
		o := override{prefix: po.Prefix}
		for name, v := range po.Headers {
			o.headers = append(o.headers, abi.Header{Name: strings.ToLower(name), Value: v})
		}
		slices.SortFunc(o.headers, func(a, b abi.Header) int { return strings.Compare(a.Name, b.Name) })
		out = append(out, o)
	}
	return out
}

func lower(ss []string) []string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = strings.ToLower(s)
	}
	return out
}

func responseHeaders(c Config) []abi.Header {
	var hs []abi.Header
	if c.HSTS != nil && c.HSTS.MaxAge > 0 {
		v := "max-age=" + strconv.Itoa(c.HSTS.MaxAge)
		if c.HSTS.IncludeSubDomains {
			v += "; includeSubDomains"
		}
		if c.HSTS.Preload {
			v += "; preload"
		}
		hs = append(hs, abi.Header{Name: "strict-transport-security", Value: v})
	}
	csp := c.ContentSecurityPolicy
	if csp == "" {
		csp = defaultCSP
	}
	hs = append(hs, abi.Header{Name: "content-security-policy", Value: csp})
	fo := strings.ToUpper(c.FrameOptions)
	if fo == "" {
		fo = defaultFrameOptions
	}
	hs = append(hs, abi.Header{Name: "x-frame-options", Value: fo})
	if c.ContentTypeOptions == nil || *c.ContentTypeOptions {
		hs = append(hs, abi.Header{Name: "x-content-type-options", Value: "nosniff"})
	}
	rp := c.ReferrerPolicy
	if rp == "" {
		rp = defaultReferrerPolicy
	}
	hs = append(hs, abi.Header{Name: "referrer-policy", Value: rp})
	for _, x := range []struct{ name, v string }{
		{"permissions-policy", c.PermissionsPolicy},
		{"cross-origin-opener-policy", c.CrossOriginOpenerPolicy},
		{"cross-origin-embedder-policy", c.CrossOriginEmbedderPolicy},
		{"cross-origin-resource-policy", c.CrossOriginResourcePolicy},
	} {
		if x.v != "" {
			hs = append(hs, abi.Header{Name: x.name, Value: x.v})
		}
	}
	return hs
}

// Tick implements abi.Plugin (unused).
func (p *Plugin) Tick(abi.Host) {}

// NewContext implements abi.Plugin. Streams are reused (see OnDelete): a Go
// allocation inside the module costs more than the whole filter's logic.
func (p *Plugin) NewContext(uint32) abi.HTTPContext {
	if s := p.streams.Get(); s != nil {
		return s
	}
	return &stream{p: p}
}

type stream struct {
	p *Plugin
	// The request's path and allowed CORS origin, copied out of the
	// host's memory for the response (abi.Host's lifetime rule) into
	// buffers the stream keeps across reuse. origin is empty unless the
	// request's Origin is allowed.
	path, origin []byte
}

// OnDelete implements abi.HTTPContext: the stream goes back to the plugin.
func (s *stream) OnDelete() {
	s.path, s.origin = s.path[:0], s.origin[:0]
	s.p.streams.Put(s)
}

func (s *stream) OnRequestHeaders(h abi.Host, _ bool) abi.Action {
	req := h.Headers(abi.RequestHeaders)
	if len(s.p.cfg.PathOverrides) > 0 {
		path, _ := abi.Lookup(req, ":path")
		s.path = append(s.path[:0], path...)
	}
	if s.p.requestID {
		if v, ok := abi.Lookup(req, "x-request-id"); !ok || v == "" {
			h.SetHeader(abi.RequestHeaders, "x-request-id", s.p.newID(h))
		}
	}
	if c := s.p.cfg.CORS; c != nil {
		origin, ok := abi.Lookup(req, "origin")
		allowed := ok && originAllowed(c, origin)
		if allowed {
			s.origin = append(s.origin[:0], origin...)
		}
		method, _ := abi.Lookup(req, ":method")
		reqMethod, preflight := abi.Lookup(req, "access-control-request-method")
		if method == "OPTIONS" && ok && preflight {
			if !allowed || !methodAllowed(c, reqMethod) {
				h.SendLocalResponse(403, "CORS preflight refused\n", preflightRefused)
				return abi.Pause
			}
			p := s.p
			p.preflight = append(append(p.preflight[:0], abi.Header{Name: "access-control-allow-origin", Value: s.allowOrigin(c)}), p.preflightStatic...)
			h.SendLocalResponse(204, "", p.preflight)
			return abi.Pause
		}
	}
	return abi.Continue
}

// blindRemovals is how many headers are cheaper to remove unconditionally
// than to look for first: removing an absent header costs the host a
// lookup, while reading the response's header map costs a host call, a
// call back into the module for memory and a copy (≈ 6 host calls,
// BenchmarkGuestCost).
const blindRemovals = 4

func (s *stream) OnResponseHeaders(h abi.Host, _ bool) abi.Action {
	if len(s.p.strip) <= blindRemovals {
		for _, name := range s.p.strip {
			h.RemoveHeader(abi.ResponseHeaders, name)
		}
	} else {
		resp := h.Headers(abi.ResponseHeaders)
		for _, name := range s.p.strip {
			if _, ok := abi.Lookup(resp, name); ok {
				h.RemoveHeader(abi.ResponseHeaders, name)
			}
		}
	}
	for _, hd := range s.p.add {
		h.SetHeader(abi.ResponseHeaders, hd.Name, hd.Value)
	}
	for _, o := range s.p.overrides {
		if len(s.path) >= len(o.prefix) && string(s.path[:len(o.prefix)]) == o.prefix {
			for _, hd := range o.headers {
				if hd.Value == "" {
					h.RemoveHeader(abi.ResponseHeaders, hd.Name)
				} else {
					h.SetHeader(abi.ResponseHeaders, hd.Name, hd.Value)
				}
			}
		}
	}
	if c := s.p.cfg.CORS; c != nil && len(s.origin) > 0 {
		s.setCORSHeaders(h, c)
	}
	return abi.Continue
}

func originAllowed(c *CORS, origin string) bool {
	return slices.Contains(c.AllowedOrigins, "*") || slices.Contains(c.AllowedOrigins, origin)
}

// defaultCORSMethods are the CORS-safelisted methods, allowed when
// allowedMethods is empty.
var defaultCORSMethods = []string{"GET", "HEAD", "POST"}

// preflightRefused are a refused preflight's headers (never modified: the
// host copies them).
var preflightRefused = []abi.Header{{Name: "content-type", Value: "text/plain"}, {Name: "vary", Value: "Origin"}}

func methodAllowed(c *CORS, m string) bool {
	if len(c.AllowedMethods) == 0 {
		return slices.Contains(defaultCORSMethods, m)
	}
	return slices.Contains(c.AllowedMethods, m)
}

// allowOrigin is the Access-Control-Allow-Origin value for the request's
// (allowed) origin.
func (s *stream) allowOrigin(c *CORS) string {
	if slices.Contains(c.AllowedOrigins, "*") && !c.AllowCredentials {
		return "*"
	}
	return abi.String(s.origin)
}

// setCORSHeaders decorates a response to an allowed origin.
func (s *stream) setCORSHeaders(h abi.Host, c *CORS) {
	h.SetHeader(abi.ResponseHeaders, "access-control-allow-origin", s.allowOrigin(c))
	for _, hd := range s.p.corsStatic {
		h.SetHeader(abi.ResponseHeaders, hd.Name, hd.Value)
	}
}

// corsStatic is the part of a CORS response that does not depend on the
// request: computed once, at configuration.
func corsStatic(c *CORS) []abi.Header {
	hs := []abi.Header{{Name: "vary", Value: "Origin"}}
	if c.AllowCredentials {
		hs = append(hs, abi.Header{Name: "access-control-allow-credentials", Value: "true"})
	}
	if len(c.ExposeHeaders) > 0 {
		hs = append(hs, abi.Header{Name: "access-control-expose-headers", Value: strings.Join(c.ExposeHeaders, ", ")})
	}
	return hs
}

// preflightStatic is the part of a preflight answer that does not depend
// on the request: everything but access-control-allow-origin.
func preflightStatic(c *CORS, corsStatic []abi.Header) []abi.Header {
	hs := slices.Clone(corsStatic)
	methods := c.AllowedMethods
	if len(methods) == 0 {
		methods = defaultCORSMethods
	}
	hs = append(hs, abi.Header{Name: "access-control-allow-methods", Value: strings.Join(methods, ", ")})
	if len(c.AllowedHeaders) > 0 {
		hs = append(hs, abi.Header{Name: "access-control-allow-headers", Value: strings.Join(c.AllowedHeaders, ", ")})
	}
	if c.MaxAge > 0 {
		hs = append(hs, abi.Header{Name: "access-control-max-age", Value: strconv.Itoa(c.MaxAge)})
	}
	return hs
}

// newID returns a random 128-bit request id in hex, in the plugin's buffer
// (valid until the next call; the host copies it): a request costs no
// allocation in the module. The bytes come from the host, not crypto/rand
// (see abi.Host.Random).
func (p *Plugin) newID(h abi.Host) string {
	h.Random(p.idRaw[:])
	hex.Encode(p.id[:], p.idRaw[:])
	return abi.String(p.id[:])
}
