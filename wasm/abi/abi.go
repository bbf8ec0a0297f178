// Package abi is a thin proxy-wasm ABI v0.2.1 layer for stock Go
// (GOOS=wasip1 GOARCH=wasm, -buildmode=c-shared). Filter logic is written
// against the Host interface and the Plugin/HTTPContext callbacks, so it is
// unit-tested natively with a fake host; the wasip1 glue (exports_wasip1.go)
// maps the ABI's imports and exports onto them.
//
// The only Go SDK for proxy-wasm (tetratelabs/proxy-wasm-go-sdk) needs
// TinyGo, which is not available here; stock Go ≥ 1.24 builds real filters
// with //go:wasmimport and //go:wasmexport. Filters must not use Go timers:
// older Envoys do not service WASI poll_oneoff, which the runtime's timers
// need; periodic work uses proxy_on_tick.
package abi

import (
	"bytes"
	"errors"
	"slices"
	"strings"
	"unsafe"
)

// MapType selects a header map (proxy-wasm ABI values).
type MapType uint32

// Header maps.
const (
	RequestHeaders   MapType = 0
	RequestTrailers  MapType = 1
	ResponseHeaders  MapType = 2
	ResponseTrailers MapType = 3
)

// Action tells the host whether to continue the stream.
type Action uint32

// Actions.
const (
	Continue Action = 0
	Pause    Action = 1
)

// LogLevel is the host log level.
type LogLevel uint32

// Log levels.
const (
	LogTrace LogLevel = iota
	LogDebug
	LogInfo
	LogWarn
	LogError
	LogCritical
)

// Status is a proxy-wasm host call result.
type Status uint32

// Statuses used here.
const (
	StatusOK          Status = 0
	StatusNotFound    Status = 1
	StatusCasMismatch Status = 8
)

// ErrCASMismatch reports that shared data changed since it was read.
var ErrCASMismatch = errors.New("shared data changed (CAS mismatch)")

// Header is one header pair.
type Header struct{ Name, Value string }

// Host is what a filter may ask of the proxy.
//
// Strings and byte slices a Host returns point into memory the ABI layer
// reuses: they are valid until the callback that obtained them returns.
// A filter that keeps one longer (e.g. the request path, for the response)
// copies it. This keeps a request free of Go allocations inside the
// module, where each one costs more than a host call (bench/RESULTS.md).
type Host interface {
	Headers(m MapType) []Header
	Header(m MapType, name string) (string, bool)
	SetHeader(m MapType, name, value string)
	AddHeader(m MapType, name, value string)
	RemoveHeader(m MapType, name string)
	// SendLocalResponse ends the stream with a response from the filter.
	SendLocalResponse(status uint32, body string, headers []Header)
	// SharedData reads a VM-wide value and its CAS token (ok false: absent).
	SharedData(key string) (value []byte, cas uint32, ok bool)
	// SetSharedData writes if cas still matches (0: unconditionally);
	// ErrCASMismatch otherwise.
	SetSharedData(key string, value []byte, cas uint32) error
	// Property reads a host property, e.g. ("source", "address").
	Property(path ...string) ([]byte, bool)
	NowNanos() int64
	// Random fills b with random bytes from the host (WASI random_get,
	// Envoy's RAND_bytes). Filters use it instead of crypto/rand, whose
	// first read starts a timer: once a timer has existed, every garbage
	// collection makes the Go runtime call WASI poll_oneoff, which Envoy
	// refuses, and the VM dies (golang/go#78513, docs/filters.md).
	Random(b []byte)
	Log(level LogLevel, msg string)
	SetTickPeriod(ms uint32)
}

// Plugin is a filter's root: configuration and per-request contexts.
type Plugin interface {
	// Configure validates and applies the plugin configuration (JSON). An
	// error makes the host refuse to start the plugin.
	Configure(h Host, config []byte) error
	NewContext(id uint32) HTTPContext
	// Tick runs on proxy_on_tick, in every worker's VM.
	Tick(h Host)
}

// HTTPContext handles one HTTP stream.
type HTTPContext interface {
	OnRequestHeaders(h Host, endOfStream bool) Action
	OnResponseHeaders(h Host, endOfStream bool) Action
	// OnDelete runs when the host has deleted the stream (proxy_on_delete),
	// e.g. to put the context back in a Pool for another stream. The layer
	// never uses the context afterwards. (A method every context has,
	// rather than an optional interface: asserting one per request costs
	// an itab lookup inside the module.)
	OnDelete()
}

// EncodeHeaders serializes pairs in the ABI's map format: a u32 count, then
// (u32 key length, u32 value length) per pair, then each key and value
// followed by a NUL byte. Little-endian.
func EncodeHeaders(hs []Header) []byte {
	return AppendHeaders(make([]byte, 0, EncodedSize(hs)), hs)
}

// EncodedSize is the length of EncodeHeaders(hs).
func EncodedSize(hs []Header) int {
	size := 4
	for _, h := range hs {
		size += 8 + len(h.Name) + 1 + len(h.Value) + 1
	}
	return size
}

// AppendHeaders appends the map format of hs to b.
func AppendHeaders(b []byte, hs []Header) []byte {
	b = le32(b, uint32(len(hs)))
	for _, h := range hs {
		b = le32(b, uint32(len(h.Name)))
		b = le32(b, uint32(len(h.Value)))
	}
	for _, h := range hs {
		b = append(b, h.Name...)
		b = append(b, 0)
		b = append(b, h.Value...)
		b = append(b, 0)
	}
	return b
}

// DecodeHeaders parses the map format; malformed input yields nil. The
// result does not alias b.
func DecodeHeaders(b []byte) []Header {
	hs, ok := appendHeaders([]Header{}, bytes.Clone(b))
	if !ok {
		return nil
	}
	return hs
}

// AppendDecoded parses the map format in b onto dst without copying: the
// strings share b's memory, so b must not change while they are in use.
// ok is false for a malformed map, and dst is then returned as it was.
func AppendDecoded(dst []Header, b []byte) (_ []Header, ok bool) {
	return appendHeaders(dst, b)
}

// appendHeaders decodes the map in b onto dst. The strings share b's
// memory — no allocation per pair, which would be most of a filter's
// garbage — so b must not change while they are in use. ok is false for a
// malformed map; dst is then returned as it was. Every request's headers
// go through here inside the module, so it writes the pairs in place and
// checks each length once.
func appendHeaders(dst []Header, b []byte) (_ []Header, ok bool) {
	if len(b) < 4 {
		return dst, false
	}
	n := int(u32(b))
	if n > (len(b)-4)/8 {
		return dst, false
	}
	start := len(dst)
	grown := slices.Grow(dst, n)
	out := grown[start : start+n]
	sizes, data := b[4:4+8*n], b[4+8*n:]
	for i := range out {
		kl, vl := int(u32(sizes[8*i:])), int(u32(sizes[8*i+4:]))
		if kl+vl+2 > len(data) { // each is followed by a NUL
			return dst, false
		}
		out[i] = Header{String(data[:kl]), String(data[kl+1 : kl+1+vl])}
		data = data[kl+vl+2:]
	}
	return grown[:start+n], true
}

// String returns the bytes of b as a string without copying, for passing
// a filter's scratch buffer to a Host call (the host copies what it is
// given before the call returns). b must not change while the string is in
// use.
func String(b []byte) string { return unsafe.String(unsafe.SliceData(b), len(b)) }

func le32(b []byte, v uint32) []byte {
	return append(b, byte(v), byte(v>>8), byte(v>>16), byte(v>>24))
}

func u32(b []byte) uint32 {
	return uint32(b[0]) | uint32(b[1])<<8 | uint32(b[2])<<16 | uint32(b[3])<<24
}

// Lookup finds a header in a list (names compared case-insensitively);
// repeated headers are joined with ",". Filters fetch a map once with
// Host.Headers and look values up locally: each host call costs more than
// a scan of a few dozen pairs.
func Lookup(hs []Header, name string) (string, bool) {
	var out string
	found := false
	for _, h := range hs {
		if len(h.Name) == len(name) && strings.EqualFold(h.Name, name) {
			if found {
				out += "," + h.Value
			} else {
				out, found = h.Value, true
			}
		}
	}
	return out, found
}

// Pool keeps a filter's stream contexts for reuse (see HTTPContext.OnDelete): a Go
// allocation inside the module costs more than a filter's logic. It holds
// at most MaxPooled, which is never more than were open at once.
type Pool[T any] struct{ free []*T }

// MaxPooled bounds a Pool.
const MaxPooled = 1024

// Get returns a kept context, or nil when there is none.
func (p *Pool[T]) Get() *T {
	n := len(p.free)
	if n == 0 {
		return nil
	}
	c := p.free[n-1]
	p.free[n-1] = nil
	p.free = p.free[:n-1]
	return c
}

// Put keeps c for reuse; the caller has reset it.
func (p *Pool[T]) Put(c *T) {
	if len(p.free) < MaxPooled {
		p.free = append(p.free, c)
	}
}

// unconfigured is the stream context of a plugin without a configuration:
// it fails closed, answering 503 as Envoy does for a filter that could not
// start (a WasmPlugin without fail_open).
type unconfigured struct{}

var _ HTTPContext = unconfigured{}

func (unconfigured) OnRequestHeaders(h Host, _ bool) Action {
	h.SendLocalResponse(503, "filter not configured\n", nil)
	return Pause
}

func (unconfigured) OnResponseHeaders(Host, bool) Action { return Continue }

func (unconfigured) OnDelete() {}
