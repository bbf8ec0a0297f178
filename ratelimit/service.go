package ratelimit

import (
	"context"
	"errors"
	"log/slog"
	"math"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	ratelimitv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/common/ratelimit/v3"
	rlsv3 "github.com/envoyproxy/go-control-plane/envoy/service/ratelimit/v3"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"
)

// Failure modes: what the service answers when Redis cannot count.
const (
	// FailOpen answers OK (the limit is not enforced while Redis is away).
	FailOpen = "open"
	// FailClosed answers OVER_LIMIT for every limited descriptor.
	FailClosed = "closed"
)

// Bounds on a request; Envoy's descriptors are far smaller.
const (
	MaxDescriptors = 64
	MaxEntries     = 16
	MaxEntryBytes  = 1024
)

// Options configure a Service.
type Options struct {
	// Window is WindowFixed (default) or WindowSliding.
	Window string
	// FailureMode is FailOpen (default) or FailClosed.
	FailureMode string
	// KeyPrefix starts every counter key (default "meshguard:").
	KeyPrefix string
	// Headers adds x-ratelimit-limit, -remaining and -reset of the
	// descriptor closest to its limit to every response (default on:
	// HeadersOff turns them off).
	HeadersOff bool
	// Now is the clock (default time.Now).
	Now     func() time.Time
	Log     *slog.Logger
	Metrics *Metrics
}

// Service implements envoy.service.ratelimit.v3.RateLimitService.
type Service struct {
	rlsv3.UnimplementedRateLimitServiceServer
	config   atomic.Pointer[Config]
	lastErr  atomic.Pointer[errHolder]
	lastWarn atomic.Int64 // unix nanos of the last Redis warning
	counter  *Counter
	o        Options
}

// NewService serves cfg (replaced by SetConfig) with counter.
func NewService(cfg *Config, counter *Counter, o Options) *Service {
	if o.Window == "" {
		o.Window = WindowFixed
	}
	if o.FailureMode == "" {
		o.FailureMode = FailOpen
	}
	if o.KeyPrefix == "" {
		o.KeyPrefix = "meshguard:"
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Log == nil {
		o.Log = slog.Default()
	}
	s := &Service{counter: counter, o: o}
	s.config.Store(cfg)
	return s
}

// SetConfig replaces the configuration; requests in flight finish with
// the one they started with.
func (s *Service) SetConfig(c *Config) { s.config.Store(c) }

// Config is the configuration in force.
func (s *Service) Config() *Config { return s.config.Load() }

// ShouldRateLimit decides one request: every descriptor's limit is looked
// up, counted in Redis, and the request is OVER_LIMIT if any descriptor
// is (shadow and quota mode limits excepted).
func (s *Service) ShouldRateLimit(ctx context.Context, req *rlsv3.RateLimitRequest) (*rlsv3.RateLimitResponse, error) {
	if err := validate(req); err != nil {
		s.o.Metrics.invalid()
		return nil, status.Error(codes.InvalidArgument, err.Error())
	}
	cfg := s.config.Load()
	descs := req.GetDescriptors()
	sc := scratches.Get().(*scratch)
	defer sc.put()
	matches := sc.matches(len(descs))
	var replaced map[string]bool
	for i, d := range descs {
		m := cfg.Lookup(req.GetDomain(), d)
		if m.Limit != nil && len(m.Limit.Replaces) > 0 {
			if replaced == nil {
				replaced = map[string]bool{}
			}
			for _, r := range m.Limit.Replaces {
				replaced[r] = true
			}
		}
		matches[i] = m
	}
	now := s.o.Now()
	incrs := sc.incrs[:0]
	idx := sc.index(len(descs)) // descriptor → its increment, or -1
	for i, m := range matches {
		idx[i] = -1
		l := m.Limit
		if l == nil || l.Unlimited || (l.Name != "" && replaced[l.Name]) {
			continue
		}
		idx[i] = len(incrs)
		incrs = append(incrs, s.increment(req, descs[i], m, now, &sc.key))
	}
	sc.incrs = incrs
	var failed error
	if len(incrs) > 0 {
		failed = s.counter.Do(incrs)
		if failed != nil {
			if ctx.Err() != nil {
				// The caller is gone (or its deadline passed): no answer
				// is read. Not a Redis failure.
				return nil, status.FromContextError(ctx.Err()).Err()
			}
			s.o.Metrics.redisError(s.o.FailureMode)
			// Once a second at most: an outage must not flood the log.
			if now := time.Now().UnixNano(); now-s.lastWarn.Load() > int64(time.Second) {
				s.lastWarn.Store(now)
				s.o.Log.Warn("rate-limit counters unavailable", "failure_mode", s.o.FailureMode, "err", failed)
			}
		}
	}
	resp := &rlsv3.RateLimitResponse{OverallCode: rlsv3.RateLimitResponse_OK, Statuses: make([]*rlsv3.RateLimitResponse_DescriptorStatus, len(descs))}
	// The headers describe the descriptor closest to its limit: an
	// over-limit one first, then the least remaining.
	closest, closestOver, closestRemaining := -1, false, uint32(math.MaxUint32)
	for i, m := range matches {
		l := m.Limit
		st := &rlsv3.RateLimitResponse_DescriptorStatus{Code: rlsv3.RateLimitResponse_OK}
		resp.Statuses[i] = st
		switch {
		case l == nil:
			continue // no limit applies
		case l.Unlimited:
			st.LimitRemaining = math.MaxUint32
			continue
		case idx[i] < 0:
			continue // replaced by another descriptor's limit
		}
		st.CurrentLimit = l.status
		st.DurationUntilReset = untilReset(l, now)
		over := false
		if failed != nil {
			over = s.o.FailureMode == FailClosed
		} else {
			in := incrs[idx[i]]
			used := s.used(in, l, now)
			if used > uint64(l.RequestsPerUnit) {
				over = true
			} else {
				st.LimitRemaining = uint32(uint64(l.RequestsPerUnit) - used)
			}
		}
		if over {
			st.Code = rlsv3.RateLimitResponse_OVER_LIMIT
		}
		s.o.Metrics.decided(cfg, req.GetDomain(), l, over)
		if over && !l.ShadowMode && !l.QuotaMode {
			resp.OverallCode = rlsv3.RateLimitResponse_OVER_LIMIT
		}
		if closest < 0 || (over && !closestOver) || (over == closestOver && st.LimitRemaining < closestRemaining) {
			closest, closestOver, closestRemaining = i, over, st.LimitRemaining
		}
	}
	if !s.o.HeadersOff && closest >= 0 {
		st := resp.Statuses[closest]
		resp.ResponseHeadersToAdd = []*corev3.HeaderValue{
			{Key: "x-ratelimit-limit", Value: matches[closest].Limit.limitText},
			{Key: "x-ratelimit-remaining", Value: strconv.FormatUint(uint64(st.LimitRemaining), 10)},
			{Key: "x-ratelimit-reset", Value: strconv.FormatInt(st.DurationUntilReset.GetSeconds(), 10)},
		}
	}
	return resp, nil
}

// increment is the counter operation of one limited descriptor.
func (s *Service) increment(req *rlsv3.RateLimitRequest, d *ratelimitv3.RateLimitDescriptor, m Match, now time.Time, buf *[]byte) incr {
	hits := uint64(req.GetHitsAddend())
	if h := d.GetHitsAddend(); h != nil {
		hits = h.GetValue()
	}
	if hits == 0 {
		hits = 1
	}
	secs := m.Limit.Seconds()
	window := now.Unix() / secs
	in := incr{key: counterKey(buf, s.o.KeyPrefix, req.GetDomain(), d, m, window), hits: hits, ttl: time.Duration(secs) * time.Second}
	if s.o.Window == WindowSliding {
		in.prevKey = counterKey(buf, s.o.KeyPrefix, req.GetDomain(), d, m, window-1)
		in.ttl *= 2 // the next window still reads this one
	}
	return in
}

// used is the count a limit is compared with: the window's, or for a
// sliding window, the previous window's weighted by how much of it a
// window ending now still covers.
func (s *Service) used(in incr, l *Limit, now time.Time) uint64 {
	if s.o.Window != WindowSliding {
		return in.count
	}
	secs := l.Seconds()
	elapsed := float64(now.UnixNano()%(secs*int64(time.Second))) / float64(secs*int64(time.Second))
	return in.count + uint64(float64(in.prev)*(1-elapsed))
}

// counterKey is prefix "rl:{" domain, each entry's key and value (or a
// share_threshold pattern) "}" and the window number, length-prefixed so
// no two descriptors share a key.
func counterKey(buf *[]byte, prefix, domain string, d *ratelimitv3.RateLimitDescriptor, m Match, window int64) string {
	entries := d.GetEntries()
	b := (*buf)[:0]
	b = append(b, prefix...)
	// The descriptor's part is a hash tag: a window and the one before it
	// (sliding windows read both in one script) share a cluster slot.
	b = append(b, "rl:{"...)
	b = appendField(b, domain)
	for i, e := range entries {
		b = appendField(b, e.GetKey())
		if m.shared != nil && m.shared[i] != "" {
			b = appendField(b, m.shared[i])
		} else {
			b = appendField(b, e.GetValue())
		}
	}
	if d.GetLimit() != nil {
		// An override's window is its own unit: keep it apart.
		b = append(b, "o:"...)
		b = strconv.AppendInt(b, int64(m.Limit.Unit), 10)
		b = append(b, ':')
	}
	b = append(b, '}')
	b = strconv.AppendInt(b, window, 10)
	*buf = b
	return string(b)
}

// scratch is a request's working memory, recycled: the counter is done
// with it when Do returns.
type scratch struct {
	m     []Match
	incrs []incr
	idx   []int
	key   []byte
}

var scratches = sync.Pool{New: func() any { return &scratch{key: make([]byte, 0, 128)} }}

func (sc *scratch) matches(n int) []Match {
	if cap(sc.m) < n {
		sc.m = make([]Match, n)
	}
	return sc.m[:n]
}

func (sc *scratch) index(n int) []int {
	if cap(sc.idx) < n {
		sc.idx = make([]int, n)
	}
	return sc.idx[:n]
}

func (sc *scratch) put() {
	if len(sc.key) > 4096 || cap(sc.incrs) > MaxDescriptors {
		return // grown by an unusual request: let it go
	}
	clear(sc.m)
	clear(sc.incrs[:cap(sc.incrs)])
	sc.incrs = sc.incrs[:0]
	scratches.Put(sc)
}

func appendField(b []byte, s string) []byte {
	b = strconv.AppendInt(b, int64(len(s)), 10)
	b = append(b, ':')
	b = append(b, s...)
	return append(b, '|')
}

func untilReset(l *Limit, now time.Time) *durationpb.Duration {
	secs := l.Seconds()
	return &durationpb.Duration{Seconds: secs - now.Unix()%secs}
}

var (
	errNoDomain      = errors.New("domain is required")
	errNoDescriptors = errors.New("at least one descriptor is required")
)

// validate refuses what Envoy never sends: no domain, no descriptors,
// oversized descriptors, an override without a known unit.
func validate(req *rlsv3.RateLimitRequest) error {
	if req.GetDomain() == "" {
		return errNoDomain
	}
	descs := req.GetDescriptors()
	if len(descs) == 0 {
		return errNoDescriptors
	}
	if len(descs) > MaxDescriptors {
		return errors.New("too many descriptors (at most " + strconv.Itoa(MaxDescriptors) + ")")
	}
	for _, d := range descs {
		entries := d.GetEntries()
		if len(entries) == 0 || len(entries) > MaxEntries {
			return errors.New("a descriptor has 1 to " + strconv.Itoa(MaxEntries) + " entries")
		}
		for _, e := range entries {
			if e.GetKey() == "" || len(e.GetKey()) > MaxEntryBytes || len(e.GetValue()) > MaxEntryBytes {
				return errors.New("a descriptor entry needs a key, and keys and values of at most " + strconv.Itoa(MaxEntryBytes) + " bytes")
			}
		}
		if o := d.GetLimit(); o != nil && unitSeconds(rlsv3.RateLimitResponse_RateLimit_Unit(o.GetUnit())) == 0 {
			return errors.New("a limit override needs a unit")
		}
	}
	return nil
}
