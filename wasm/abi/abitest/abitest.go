// Package abitest is an in-memory abi.Host for testing filter logic natively.
package abitest

import (
	"crypto/rand"
	"strings"
	"sync"

	"github.com/meshguard/meshguard/wasm/abi"
)

// Shared is VM-wide shared data with CAS, safe for concurrent use (as the
// proxy's is across worker threads).
type Shared struct {
	mu   sync.Mutex
	data map[string]entry
	cas  uint32
}

type entry struct {
	v   []byte
	cas uint32
}

// NewShared returns empty shared data.
func NewShared() *Shared { return &Shared{data: map[string]entry{}} }

// Host is one stream's view of the proxy. Like a real host it copies the
// strings and bytes a filter passes in: filters may pass scratch memory.
type Host struct {
	Maps       map[abi.MapType][]abi.Header
	Props      map[string]string // "source\x00address" → value
	Now        int64
	Shared     *Shared
	Local      *LocalResponse
	Logs       []string
	TickPeriod uint32
}

// LocalResponse is what SendLocalResponse recorded.
type LocalResponse struct {
	Status  uint32
	Body    string
	Headers []abi.Header
}

// New returns a host with the given request headers.
func New(shared *Shared, req ...abi.Header) *Host {
	if shared == nil {
		shared = NewShared()
	}
	return &Host{Maps: map[abi.MapType][]abi.Header{abi.RequestHeaders: req}, Props: map[string]string{}, Shared: shared}
}

func (h *Host) Headers(m abi.MapType) []abi.Header { return append([]abi.Header(nil), h.Maps[m]...) }

func (h *Host) Header(m abi.MapType, name string) (string, bool) {
	var vals []string
	for _, hd := range h.Maps[m] {
		if strings.EqualFold(hd.Name, name) {
			vals = append(vals, hd.Value)
		}
	}
	if len(vals) == 0 {
		return "", false
	}
	return strings.Join(vals, ","), true
}

func (h *Host) SetHeader(m abi.MapType, name, value string) {
	h.RemoveHeader(m, name)
	h.AddHeader(m, name, value)
}

func (h *Host) AddHeader(m abi.MapType, name, value string) {
	h.Maps[m] = append(h.Maps[m], abi.Header{Name: strings.ToLower(name), Value: strings.Clone(value)})
}

func (h *Host) RemoveHeader(m abi.MapType, name string) {
	out := h.Maps[m][:0]
	for _, hd := range h.Maps[m] {
		if !strings.EqualFold(hd.Name, name) {
			out = append(out, hd)
		}
	}
	h.Maps[m] = out
}

func (h *Host) SendLocalResponse(status uint32, body string, headers []abi.Header) {
	hs := make([]abi.Header, len(headers))
	for i, hd := range headers {
		hs[i] = abi.Header{Name: strings.Clone(hd.Name), Value: strings.Clone(hd.Value)}
	}
	h.Local = &LocalResponse{Status: status, Body: strings.Clone(body), Headers: hs}
}

func (h *Host) SharedData(key string) ([]byte, uint32, bool) {
	s := h.Shared
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.data[key]
	return append([]byte(nil), e.v...), e.cas, ok
}

func (h *Host) SetSharedData(key string, value []byte, cas uint32) error {
	s := h.Shared
	s.mu.Lock()
	defer s.mu.Unlock()
	if e, ok := s.data[key]; ok && cas != 0 && e.cas != cas {
		return abi.ErrCASMismatch
	}
	s.cas++
	s.data[strings.Clone(key)] = entry{v: append([]byte(nil), value...), cas: s.cas}
	return nil
}

// Keys is the number of shared data keys.
func (s *Shared) Keys() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.data)
}

func (h *Host) Property(path ...string) ([]byte, bool) {
	v, ok := h.Props[strings.Join(path, "\x00")]
	return []byte(v), ok
}

func (h *Host) NowNanos() int64 { return h.Now }

func (h *Host) Random(b []byte) { _, _ = rand.Read(b) }

func (h *Host) Log(_ abi.LogLevel, msg string) { h.Logs = append(h.Logs, msg) }

func (h *Host) SetTickPeriod(ms uint32) { h.TickPeriod = ms }

// ResponseHeader reads a response header.
func (h *Host) ResponseHeader(name string) (string, bool) { return h.Header(abi.ResponseHeaders, name) }
