// Package validate is the input-validation filter: method allow-list; caps
// on header count, header size and URL length; path traversal and
// path-confusion checks; body size by content-length; and CSRF protection
// for unsafe methods. Refusals are short plain-text responses: 400, 403,
// 405, 413, 414 or 431.
package validate

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/meshguard/meshguard/wasm/abi"
)

// Config is the filter's JSON configuration (docs/filters.md). Zero values
// take the defaults.
type Config struct {
	AllowedMethods []string `json:"allowedMethods"`
	MaxHeaders     int      `json:"maxHeaders"`
	MaxHeaderBytes int      `json:"maxHeaderBytes"`
	MaxURLLength   int      `json:"maxURLLength"`
	MaxBodyBytes   int64    `json:"maxBodyBytes"`
	CSRF           *CSRF    `json:"csrf"`
}

// CSRF requires unsafe methods to come from an allowed origin (Origin
// header) or, without one, from the same site (Sec-Fetch-Site).
type CSRF struct {
	AllowedOrigins []string `json:"allowedOrigins"`
}

// Defaults.
var (
	DefaultMethods = []string{"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"}
)

const (
	DefaultMaxHeaders     = 100
	DefaultMaxHeaderBytes = 8 << 10
	DefaultMaxURLLength   = 4 << 10
	DefaultMaxBodyBytes   = 10 << 20
)

var unsafeMethods = []string{"POST", "PUT", "PATCH", "DELETE"}

// Plugin is the filter.
type Plugin struct {
	cfg   Config
	allow string // the 405's allow header, joined at configuration

	// Scratch space for refusals, which the host copies during the call:
	// a flood of bad requests (a scanner's) costs no allocation in the
	// module.
	refusalBody    []byte
	refusalHeaders []abi.Header
}

// New returns the filter.
func New() *Plugin { return &Plugin{} }

// Parse validates a configuration and fills defaults.
func Parse(data []byte) (Config, error) {
	var c Config
	if len(data) > 0 {
		dec := json.NewDecoder(strings.NewReader(string(data)))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&c); err != nil {
			return c, fmt.Errorf("validate config: %w", err)
		}
	}
	if c.AllowedMethods == nil {
		c.AllowedMethods = DefaultMethods
	}
	for i, m := range c.AllowedMethods {
		c.AllowedMethods[i] = strings.ToUpper(m)
	}
	if c.MaxHeaders == 0 {
		c.MaxHeaders = DefaultMaxHeaders
	}
	if c.MaxHeaderBytes == 0 {
		c.MaxHeaderBytes = DefaultMaxHeaderBytes
	}
	if c.MaxURLLength == 0 {
		c.MaxURLLength = DefaultMaxURLLength
	}
	if c.MaxBodyBytes == 0 {
		c.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if c.MaxHeaders < 0 || c.MaxHeaderBytes < 0 || c.MaxURLLength < 0 || c.MaxBodyBytes < 0 {
		return c, errors.New("validate config: limits must not be negative")
	}
	if c.CSRF != nil && len(c.CSRF.AllowedOrigins) == 0 {
		return c, errors.New("validate config: csrf.allowedOrigins: at least one origin")
	}
	return c, nil
}

// Configure implements abi.Plugin.
func (p *Plugin) Configure(_ abi.Host, data []byte) error {
	c, err := Parse(data)
	if err != nil {
		return err
	}
	p.cfg = c
	p.allow = strings.Join(c.AllowedMethods, ", ")
	return nil
}

// Tick implements abi.Plugin (unused).
func (p *Plugin) Tick(abi.Host) {}

// NewContext implements abi.Plugin.
func (p *Plugin) NewContext(uint32) abi.HTTPContext { return stream{p} }

type stream struct{ p *Plugin }

// refuse answers with status and a one-line text body: msg, then detail.
func (p *Plugin) refuse(h abi.Host, status uint32, msg, detail string, extra ...abi.Header) abi.Action {
	p.refusalBody = append(append(append(p.refusalBody[:0], msg...), detail...), '\n')
	p.refusalHeaders = append(append(p.refusalHeaders[:0], abi.Header{Name: "content-type", Value: "text/plain"}), extra...)
	h.SendLocalResponse(status, abi.String(p.refusalBody), p.refusalHeaders)
	return abi.Pause
}

func (s stream) OnRequestHeaders(h abi.Host, _ bool) abi.Action {
	p := s.p
	c := &p.cfg
	headers := h.Headers(abi.RequestHeaders)
	if len(headers) > c.MaxHeaders {
		return p.refuse(h, 431, "too many request headers", "")
	}
	for _, hd := range headers {
		if len(hd.Name)+len(hd.Value) > c.MaxHeaderBytes {
			return p.refuse(h, 431, "request header too large", "")
		}
	}
	// abi.Lookup joins a repeated header's values, so a request with two
	// Content-Length or Origin headers is judged on both, never on the first.
	method, _ := abi.Lookup(headers, ":method")
	if !slices.Contains(c.AllowedMethods, method) {
		return p.refuse(h, 405, "method not allowed", "", abi.Header{Name: "allow", Value: p.allow})
	}
	path, _ := abi.Lookup(headers, ":path")
	if len(path) > c.MaxURLLength {
		return p.refuse(h, 414, "URL too long", "")
	}
	if reason := PathProblem(path); reason != "" {
		return p.refuse(h, 400, "bad request path: ", reason)
	}
	if cl, ok := abi.Lookup(headers, "content-length"); ok {
		n, err := strconv.ParseInt(cl, 10, 64)
		if err != nil || n < 0 {
			return p.refuse(h, 400, "bad content-length", "")
		}
		if n > c.MaxBodyBytes {
			return p.refuse(h, 413, "request body too large", "")
		}
	}
	if c.CSRF != nil && slices.Contains(unsafeMethods, method) && !sameSiteOrAllowed(headers, c.CSRF) {
		return p.refuse(h, 403, "cross-site request refused", "")
	}
	return abi.Continue
}

func (s stream) OnResponseHeaders(abi.Host, bool) abi.Action { return abi.Continue }

// OnDelete implements abi.HTTPContext: a stream holds nothing to release.
func (stream) OnDelete() {}

// sameSiteOrAllowed implements the CSRF check: an Origin must be allowed;
// without Origin, Sec-Fetch-Site must say same-origin, same-site or none
// (user-initiated); without either (non-browser clients) the request passes.
func sameSiteOrAllowed(headers []abi.Header, c *CSRF) bool {
	if origin, ok := abi.Lookup(headers, "origin"); ok {
		return slices.Contains(c.AllowedOrigins, origin)
	}
	if site, ok := abi.Lookup(headers, "sec-fetch-site"); ok {
		return site == "same-origin" || site == "same-site" || site == "none"
	}
	return true
}

// PathProblem reports why a request path is refused, or "". It looks for
// traversal and the encodings used to smuggle it past path matching:
// dot segments (also percent-encoded), encoded slashes and backslashes,
// backslashes, NUL and control characters, double encoding (%25), invalid
// percent escapes and invalid UTF-8 once decoded.
func PathProblem(rawPath string) string {
	p := rawPath
	if i := strings.IndexByte(p, '?'); i >= 0 {
		p = p[:i]
	}
	if p == "" || p[0] != '/' && p != "*" {
		return "path must start with '/'"
	}
	// One pass, no allocation (this runs on every request); the reasons
	// keep their order of precedence. Dot segments are found in the raw
	// path here; a path with escapes or non-ASCII bytes is decoded below
	// and looked at again.
	var backslash, encodedSlash, doubleEncoded, nul, control, escaped, nonASCII, dots bool
	segment := 0 // start of the current segment
	for i := 0; i < len(p); i++ {
		switch c := p[i]; {
		case c == '/':
			dots = dots || isDotSegment(p[segment:i])
			segment = i + 1
		case c == '\\':
			backslash = true
		case c < 0x20 || c == 0x7f:
			control = true
		case c >= 0x80:
			nonASCII = true
		case c == '%':
			escaped = true
			if i+2 < len(p) {
				switch escape := [2]byte{p[i+1], lowerASCII(p[i+2])}; escape {
				case [2]byte{'2', 'f'}, [2]byte{'5', 'c'}:
					encodedSlash = true
				case [2]byte{'2', '5'}:
					doubleEncoded = true
				case [2]byte{'0', '0'}:
					nul = true
				}
			}
		}
	}
	dots = dots || isDotSegment(p[segment:])
	switch {
	case backslash:
		return "backslash"
	case encodedSlash:
		return "encoded slash or backslash"
	case doubleEncoded:
		return "double encoding"
	case nul:
		return "NUL byte"
	case control:
		return "control character"
	}
	if !escaped && !nonASCII { // decodes to itself: valid UTF-8, dots seen
		if dots {
			return "dot segment"
		}
		return ""
	}
	decoded, err := url.PathUnescape(p) // no allocation without escapes
	if err != nil {
		return "invalid percent-encoding"
	}
	if !utf8.ValidString(decoded) {
		return "invalid UTF-8"
	}
	for rest := decoded; rest != ""; {
		var seg string
		seg, rest, _ = strings.Cut(rest, "/")
		if isDotSegment(seg) {
			return "dot segment"
		}
	}
	return ""
}

func isDotSegment(s string) bool { return s == "." || s == ".." }

func lowerASCII(c byte) byte {
	if 'A' <= c && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}
