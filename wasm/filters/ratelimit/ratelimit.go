// Package ratelimit is the local rate-limit filter: token buckets keyed by
// the caller (the principal the authorizer set, the SPIFFE peer, a header or
// the client IP), shared by all of the proxy's worker threads through
// proxy-wasm shared data with compare-and-swap.
//
// Shared data cannot be deleted (ABI 0.2.1), so keys map onto a fixed table
// of maxKeys slots; a slot whose bucket has refilled completely can be taken
// over by another key. Two live keys that collide share a bucket, which can
// only limit them more, never less. The slots are created empty when a VM is
// configured, before it serves (see createSlots), so every update under
// traffic is a compare-and-swap. Buckets refill lazily from timestamps:
// proxy_on_tick fires in every worker's VM, so per-tick refills would
// multiply.
package ratelimit

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net"
	"strconv"
	"strings"

	"github.com/meshguard/meshguard/wasm/abi"
)

// Config is the filter's JSON configuration (docs/filters.md).
type Config struct {
	// Key: principal (x-meshguard-principal, set by the authorizer), spiffe
	// (the mTLS peer), ip (the client address), or header:<name>. Callers
	// without the key fall back to their IP.
	Key     string           `json:"key"`
	RPS     float64          `json:"rps"`
	Burst   float64          `json:"burst"`
	Paths   []PathLimit      `json:"paths"`
	Keys    map[string]Limit `json:"keys"`
	MaxKeys int              `json:"maxKeys"`

	defaultHeader string // the default limit's x-ratelimit-limit value
}

func (c Config) defaultLimit() Limit {
	return Limit{RPS: c.RPS, Burst: c.Burst, header: c.defaultHeader}
}

// Limit is a token bucket: rps tokens per second, up to burst.
type Limit struct {
	RPS   float64 `json:"rps"`
	Burst float64 `json:"burst"`

	header string // its x-ratelimit-limit value, set by Parse
}

// PathLimit applies a limit to paths with a prefix (longest prefix wins).
type PathLimit struct {
	Prefix string `json:"prefix"`
	Limit

	rule string // its bucket's name, set by Parse
}

// Defaults.
const (
	DefaultMaxKeys = 4096
	casRetries     = 16
	scale          = 1000 // tokens are stored in thousandths
)

// Plugin is the filter.
type Plugin struct {
	cfg Config

	streams abi.Pool[stream] // streams for reuse
	// Scratch space for values passed to the host, which copies them: a
	// Go allocation inside the module costs more than the filter's logic.
	key, slot, num []byte
	bucket         [24]byte
	refusal        [5]abi.Header // a 429's headers
}

// New returns the filter.
func New() *Plugin { return &Plugin{} }

// Parse validates a configuration.
func Parse(data []byte) (Config, error) {
	c := Config{Key: "principal", MaxKeys: DefaultMaxKeys}
	dec := json.NewDecoder(strings.NewReader(string(data)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&c); err != nil {
		return c, fmt.Errorf("ratelimit config: %w", err)
	}
	switch {
	case c.Key == "principal", c.Key == "spiffe", c.Key == "ip":
	case strings.HasPrefix(c.Key, "header:") && len(c.Key) > len("header:"):
	default:
		return c, fmt.Errorf("ratelimit config: key %q: want principal, spiffe, ip or header:<name>", c.Key)
	}
	check := func(where string, l Limit) error {
		if l.RPS <= 0 || l.Burst < 1 || math.IsInf(l.RPS, 0) || l.Burst > 1e9 {
			return fmt.Errorf("ratelimit config: %s: rps must be > 0 and burst ≥ 1", where)
		}
		return nil
	}
	if err := check("default", Limit{RPS: c.RPS, Burst: c.Burst}); err != nil {
		return c, err
	}
	for _, p := range c.Paths {
		if !strings.HasPrefix(p.Prefix, "/") {
			return c, fmt.Errorf("ratelimit config: paths: prefix %q must start with '/'", p.Prefix)
		}
		if err := check("paths "+p.Prefix, p.Limit); err != nil {
			return c, err
		}
	}
	for k, l := range c.Keys {
		if err := check("keys "+k, l); err != nil {
			return c, err
		}
	}
	if c.MaxKeys < 1 || c.MaxKeys > 1<<20 {
		return c, errors.New("ratelimit config: maxKeys must be between 1 and 1048576")
	}
	c.defaultHeader = formatLimit(Limit{RPS: c.RPS, Burst: c.Burst})
	for i := range c.Paths {
		c.Paths[i].header = formatLimit(c.Paths[i].Limit)
		c.Paths[i].rule = "path" + strconv.Itoa(i)
	}
	for k, l := range c.Keys {
		l.header = formatLimit(l)
		c.Keys[k] = l
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
	p.createSlots(h)
	return nil
}

// createSlots makes every bucket slot exist before this worker serves.
// Shared data has no create-if-absent (ABI 0.2.1; Envoy's SharedData::set
// checks the CAS only of a key that exists), so two workers creating one
// slot under traffic could each spend a token and the later write erase
// the earlier. Created here empty, by whichever VM comes first, the slots
// are afterwards only ever written with compare-and-swap. An empty bucket
// (no owner, last update at time 0) is full for whoever takes it.
func (p *Plugin) createSlots(h abi.Host) {
	empty := bucket{}.encode(p.bucket[:])
	for i := range p.cfg.MaxKeys {
		slot := p.slotName(uint64(i))
		if _, _, found := h.SharedData(slot); !found {
			_ = h.SetSharedData(slot, empty, 0)
		}
	}
}

// slotName is slot i's shared-data key, in p.slot: valid until the next call.
func (p *Plugin) slotName(i uint64) string {
	p.slot = appendDecimal(append(p.slot[:0], "meshguard.ratelimit."...), i)
	return abi.String(p.slot)
}

// Tick implements abi.Plugin: buckets refill from timestamps, not ticks.
func (p *Plugin) Tick(abi.Host) {}

// NewContext implements abi.Plugin.
func (p *Plugin) NewContext(uint32) abi.HTTPContext {
	if s := p.streams.Get(); s != nil {
		return s
	}
	return &stream{p: p}
}

type stream struct {
	p       *Plugin
	decided bool
	limit   Limit
	left    float64
	reset   uint64
}

// OnDelete implements abi.HTTPContext: the stream goes back to the plugin.
func (s *stream) OnDelete() {
	*s = stream{p: s.p}
	s.p.streams.Put(s)
}

func (s *stream) OnRequestHeaders(h abi.Host, _ bool) abi.Action {
	p := s.p
	req := h.Headers(abi.RequestHeaders)
	key := p.callerKey(h, req)
	path, _ := abi.Lookup(req, ":path")
	rule, lim := p.limitFor(key, path)
	ok, left, wait := p.take(h, rule, key, lim)
	s.decided, s.limit, s.left = true, lim, left
	if !ok {
		// Built in the plugin's buffers, which the host copies from: a
		// flood of refused calls costs no allocation in the module.
		p.num = appendDecimal(p.num[:0], max(1, seconds(wait)))
		retry := abi.String(p.num)
		p.refusal = [5]abi.Header{
			{Name: "content-type", Value: "text/plain"},
			{Name: "retry-after", Value: retry},
			{Name: "x-ratelimit-limit", Value: lim.header},
			{Name: "x-ratelimit-remaining", Value: "0"},
			{Name: "x-ratelimit-reset", Value: retry},
		}
		h.SendLocalResponse(429, "rate limit exceeded\n", p.refusal[:])
		return abi.Pause
	}
	s.reset = seconds((lim.Burst - left) / lim.RPS)
	return abi.Continue
}

func (s *stream) OnResponseHeaders(h abi.Host, _ bool) abi.Action {
	if s.decided {
		p := s.p
		h.SetHeader(abi.ResponseHeaders, "x-ratelimit-limit", s.limit.header)
		p.num = appendDecimal(p.num[:0], uint64(max(0, math.Floor(s.left))))
		h.SetHeader(abi.ResponseHeaders, "x-ratelimit-remaining", abi.String(p.num))
		p.num = appendDecimal(p.num[:0], s.reset)
		h.SetHeader(abi.ResponseHeaders, "x-ratelimit-reset", abi.String(p.num))
	}
	return abi.Continue
}

// seconds rounds a wait up to whole seconds, at most MaxUint32 (136
// years: a tiny rps makes waits no integer holds).
func seconds(wait float64) uint64 {
	return uint64(min(max(0, math.Ceil(wait)), math.MaxUint32))
}

// appendDecimal appends v in decimal. strconv's formatting divides in 64
// bits by constants, which the compiler turns into 128-bit multiplies that
// wasm lacks and emulates; the numbers here almost always fit 32 bits,
// where division by 10 is one native multiply.
func appendDecimal(b []byte, v uint64) []byte {
	if v > math.MaxUint32 {
		return strconv.AppendUint(b, v, 10)
	}
	var digits [10]byte
	i := len(digits)
	for u := uint32(v); ; u /= 10 {
		i--
		digits[i] = byte('0' + u%10)
		if u < 10 {
			break
		}
	}
	return append(b, digits[i:]...)
}

func formatLimit(l Limit) string {
	return strconv.FormatFloat(l.Burst, 'f', -1, 64) + ";w=1;rps=" + strconv.FormatFloat(l.RPS, 'f', -1, 64)
}

// Property paths. Passed as existing slices: listing the segments in a
// variadic call through the abi.Host interface would allocate their array
// on every request, and a Go allocation in the module costs more than the
// host call (bench/RESULTS.md).
var (
	peerURISAN    = []string{"connection", "uri_san_peer_certificate"}
	sourceAddress = []string{"source", "address"}
)

// callerKey identifies the caller per the configured key. The key may
// point into host memory or p.key: it is valid during the callback only.
func (p *Plugin) callerKey(h abi.Host, req []abi.Header) string {
	switch {
	case p.cfg.Key == "principal":
		if v, ok := abi.Lookup(req, "x-meshguard-principal"); ok && v != "" {
			return v
		}
	case p.cfg.Key == "spiffe":
		if v, ok := h.Property(peerURISAN...); ok && len(v) > 0 {
			return abi.String(v)
		}
	case strings.HasPrefix(p.cfg.Key, "header:"):
		if v, ok := abi.Lookup(req, strings.TrimPrefix(p.cfg.Key, "header:")); ok && v != "" {
			p.key = append(append(p.key[:0], "header:"...), v...)
			return abi.String(p.key)
		}
	}
	addr, _ := h.Property(sourceAddress...)
	host, _, err := net.SplitHostPort(abi.String(addr))
	if err != nil {
		host = abi.String(addr)
	}
	p.key = append(append(p.key[:0], "ip:"...), host...)
	return abi.String(p.key)
}

// limitFor returns the rule id (for separate buckets per path rule) and limit.
func (p *Plugin) limitFor(key, path string) (string, Limit) {
	if l, ok := p.cfg.Keys[key]; ok {
		return "key", l
	}
	best := -1
	for i, r := range p.cfg.Paths {
		if strings.HasPrefix(path, r.Prefix) && (best < 0 || len(r.Prefix) > len(p.cfg.Paths[best].Prefix)) {
			best = i
		}
	}
	if best >= 0 {
		return p.cfg.Paths[best].rule, p.cfg.Paths[best].Limit
	}
	return "default", p.cfg.defaultLimit()
}

// bucket is one slot's record: the owning key's hash, tokens (thousandths)
// and the time of the last update.
type bucket struct {
	owner  uint64
	tokens int64
	last   int64
}

// encode writes b into out (24 bytes).
func (b bucket) encode(out []byte) []byte {
	binary.LittleEndian.PutUint64(out, b.owner)
	binary.LittleEndian.PutUint64(out[8:], uint64(b.tokens))
	binary.LittleEndian.PutUint64(out[16:], uint64(b.last))
	return out[:24]
}

func decode(v []byte) (bucket, bool) {
	if len(v) != 24 {
		return bucket{}, false
	}
	return bucket{
		owner:  binary.LittleEndian.Uint64(v),
		tokens: int64(binary.LittleEndian.Uint64(v[8:])),
		last:   int64(binary.LittleEndian.Uint64(v[16:])),
	}, true
}

// take removes one token from key's bucket. It returns whether the request
// may pass, the tokens left and, when refused, the seconds until a token.
// Concurrent workers race through compare-and-swap; if the swap keeps
// failing the request is refused (fail closed).
func (p *Plugin) take(h abi.Host, rule, key string, l Limit) (ok bool, left, wait float64) {
	hash := fnv1a(fnv1a(fnv1a(fnvOffset, rule), "|"), key)
	slot := p.slotName(hash % uint64(p.cfg.MaxKeys))
	capacity := int64(l.Burst * scale)
	perNano := l.RPS * scale / 1e9
	for range casRetries {
		now := h.NowNanos()
		raw, cas, found := h.SharedData(slot)
		b, valid := decode(raw)
		full := now-b.last >= int64(float64(capacity)/perNano)
		if !found || !valid || (b.owner != hash && full) {
			b = bucket{owner: hash, tokens: capacity, last: now}
		} else if elapsed := now - b.last; elapsed > 0 {
			b.tokens = min(capacity, b.tokens+int64(float64(elapsed)*perNano))
			b.last = now
		}
		ok = b.tokens >= scale
		if ok {
			b.tokens -= scale
		}
		if err := h.SetSharedData(slot, b.encode(p.bucket[:]), cas); err != nil {
			if errors.Is(err, abi.ErrCASMismatch) {
				continue
			}
			return false, 0, 1
		}
		left = float64(b.tokens) / scale
		if !ok {
			wait = float64(scale-b.tokens) / (l.RPS * scale)
		}
		return ok, left, wait
	}
	return false, 0, 1
}

// FNV-1a, 64-bit (hash/fnv's, without its allocation per use).
const (
	fnvOffset = 14695981039346656037
	fnvPrime  = 1099511628211
)

func fnv1a(h uint64, s string) uint64 {
	for i := 0; i < len(s); i++ {
		h = (h ^ uint64(s[i])) * fnvPrime
	}
	return h
}
