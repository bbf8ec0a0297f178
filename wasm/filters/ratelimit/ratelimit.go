// Package ratelimit is the local rate-limit filter: token buckets keyed by
// the caller (the principal the authorizer set, the SPIFFE peer, a header or
// the client IP), shared by all of the proxy's worker threads through
// proxy-wasm shared data with compare-and-swap.
//
// Shared data cannot be deleted (ABI 0.2.1), so keys map onto a fixed table
// of maxKeys slots; a slot whose bucket has refilled completely can be taken
// over by another key. Two live keys that collide share a bucket, which can
// only limit them more, never less. Buckets refill lazily from timestamps:
// proxy_on_tick fires in every worker's VM, so per-tick refills would
// multiply.
package ratelimit

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
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
}

// Limit is a token bucket: rps tokens per second, up to burst.
type Limit struct {
	RPS   float64 `json:"rps"`
	Burst float64 `json:"burst"`
}

// PathLimit applies a limit to paths with a prefix (longest prefix wins).
type PathLimit struct {
	Prefix string `json:"prefix"`
	Limit
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
	if err := check("default", Limit{c.RPS, c.Burst}); err != nil {
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
	return c, nil
}

// Configure implements abi.Plugin.
func (p *Plugin) Configure(_ abi.Host, data []byte) error {
	c, err := Parse(data)
	if err != nil {
		return err
	}
	p.cfg = c
	return nil
}

// Tick implements abi.Plugin: buckets refill from timestamps, not ticks.
func (p *Plugin) Tick(abi.Host) {}

// NewContext implements abi.Plugin.
func (p *Plugin) NewContext(uint32) abi.HTTPContext { return &stream{p: p} }

type stream struct {
	p       *Plugin
	decided bool
	limit   Limit
	left    float64
	reset   int
}

func (s *stream) OnRequestHeaders(h abi.Host, _ bool) abi.Action {
	req := h.Headers(abi.RequestHeaders)
	key := s.p.callerKey(h, req)
	path, _ := abi.Lookup(req, ":path")
	rule, lim := s.p.limitFor(key, path)
	ok, left, wait := take(h, s.p.cfg.MaxKeys, rule+"|"+key, lim)
	s.decided, s.limit, s.left = true, lim, left
	if !ok {
		retry := max(1, int(math.Ceil(wait)))
		h.SendLocalResponse(429, "rate limit exceeded\n", []abi.Header{
			{Name: "content-type", Value: "text/plain"},
			{Name: "retry-after", Value: strconv.Itoa(retry)},
			{Name: "x-ratelimit-limit", Value: formatLimit(lim)},
			{Name: "x-ratelimit-remaining", Value: "0"},
			{Name: "x-ratelimit-reset", Value: strconv.Itoa(retry)},
		})
		return abi.Pause
	}
	s.reset = int(math.Ceil((lim.Burst - left) / lim.RPS))
	return abi.Continue
}

func (s *stream) OnResponseHeaders(h abi.Host, _ bool) abi.Action {
	if s.decided {
		h.SetHeader(abi.ResponseHeaders, "x-ratelimit-limit", formatLimit(s.limit))
		h.SetHeader(abi.ResponseHeaders, "x-ratelimit-remaining", strconv.Itoa(int(math.Floor(s.left))))
		h.SetHeader(abi.ResponseHeaders, "x-ratelimit-reset", strconv.Itoa(s.reset))
	}
	return abi.Continue
}

func formatLimit(l Limit) string {
	return strconv.FormatFloat(l.Burst, 'f', -1, 64) + ";w=1;rps=" + strconv.FormatFloat(l.RPS, 'f', -1, 64)
}

// callerKey identifies the caller per the configured key.
func (p *Plugin) callerKey(h abi.Host, req []abi.Header) string {
	switch {
	case p.cfg.Key == "principal":
		if v, ok := abi.Lookup(req, "x-meshguard-principal"); ok && v != "" {
			return v
		}
	case p.cfg.Key == "spiffe":
		if v, ok := h.Property("connection", "uri_san_peer_certificate"); ok && len(v) > 0 {
			return string(v)
		}
	case strings.HasPrefix(p.cfg.Key, "header:"):
		if v, ok := abi.Lookup(req, strings.TrimPrefix(p.cfg.Key, "header:")); ok && v != "" {
			return "header:" + v
		}
	}
	addr, _ := h.Property("source", "address")
	host, _, err := net.SplitHostPort(string(addr))
	if err != nil {
		host = string(addr)
	}
	return "ip:" + host
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
		return "path" + strconv.Itoa(best), p.cfg.Paths[best].Limit
	}
	return "default", Limit{p.cfg.RPS, p.cfg.Burst}
}

// bucket is one slot's record: the owning key's hash, tokens (thousandths)
// and the time of the last update.
type bucket struct {
	owner  uint64
	tokens int64
	last   int64
}

func (b bucket) encode() []byte {
	out := make([]byte, 24)
	binary.LittleEndian.PutUint64(out, b.owner)
	binary.LittleEndian.PutUint64(out[8:], uint64(b.tokens))
	binary.LittleEndian.PutUint64(out[16:], uint64(b.last))
	return out
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
func take(h abi.Host, slots int, key string, l Limit) (ok bool, left, wait float64) {
	f := fnv.New64a()
	f.Write([]byte(key))
	hash := f.Sum64()
	slot := "meshguard.ratelimit." + strconv.FormatUint(hash%uint64(slots), 10)
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
		if err := h.SetSharedData(slot, b.encode(), cas); err != nil {
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
