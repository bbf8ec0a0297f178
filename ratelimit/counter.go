package ratelimit

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
)

// Windows.
const (
	// WindowFixed counts hits per whole window (the unit), as
	// envoyproxy/ratelimit does: a burst of twice the limit can straddle
	// a window boundary.
	WindowFixed = "fixed"
	// WindowSliding weighs the previous window's count by the part of it
	// still inside a window reaching back from now: smoother at the
	// boundary, an estimate within a window (docs/ratelimit.md).
	WindowSliding = "sliding"
)

// incr is one counter increment of a request.
type incr struct {
	key     string // current window's key
	prevKey string // the previous window's (sliding only)
	hits    uint64
	ttl     time.Duration

	count uint64 // after the increment
	prev  uint64 // the previous window's count (sliding only)
}

// batch is one request's increments, answered together.
type batch struct {
	incrs []incr
	err   error
	// run, when set by the leader that finished before, makes this
	// request's caller the next leader: it sends these batches.
	run  []*batch
	done chan struct{}
}

// Counter increments window counters in Redis. Requests that arrive while
// a pipeline is in flight wait together and go out in the next one, sent
// by one of their own callers (flat combining): with many concurrent
// callers, one write and one read carry several requests, and no goroutine
// of the counter's own stands between a caller and Redis — on this
// project's machine a system call or a goroutine wake-up costs about as
// much as the rest of a request.
type Counter struct {
	client   redis.UniversalClient
	timeout  time.Duration
	maxBatch int
	batches  prometheus.Observer

	mu       sync.Mutex
	pending  []*batch
	inflight int // pipelines being sent
	limit    int // most pipelines in flight at once
	closed   bool
}

// CounterOptions tune a Counter.
type CounterOptions struct {
	// Timeout bounds one pipeline (default 500ms).
	Timeout time.Duration
	// Pipelines is how many pipelines may be in flight at once (default
	// 2). Fewer carry more requests each: less CPU per request, a little
	// more waiting under light load.
	Pipelines int
	// MaxBatch bounds the requests in one pipeline (default 256).
	MaxBatch int
	// Batches, when set, observes the requests each pipeline carried.
	Batches prometheus.Observer
}

// NewCounter makes a counter over client.
func NewCounter(client redis.UniversalClient, o CounterOptions) *Counter {
	if o.Timeout <= 0 {
		o.Timeout = 500 * time.Millisecond
	}
	if o.Pipelines <= 0 {
		o.Pipelines = 2
	}
	if o.MaxBatch <= 0 {
		o.MaxBatch = 256
	}
	return &Counter{client: client, timeout: o.Timeout, maxBatch: o.MaxBatch, limit: o.Pipelines, batches: o.Batches}
}

// ErrClosed is returned after Close.
var ErrClosed = errors.New("rate-limit counter closed")

var batchPool = sync.Pool{New: func() any { return &batch{done: make(chan struct{}, 1)} }}

// Do applies the increments of one request, filling in each count. It
// returns when Redis answered or the pipeline timed out (Timeout): the
// wait is bounded without watching the caller's context, since a waiting
// request may be handed the next pipeline to send.
func (c *Counter) Do(incrs []incr) error {
	b := batchPool.Get().(*batch)
	b.incrs, b.err, b.run = incrs, nil, nil
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		batchPool.Put(b)
		return ErrClosed
	}
	if c.inflight < c.limit {
		// A free pipeline: send this request, and whatever queued, now.
		c.inflight++
		run := append(c.take(), b)
		c.mu.Unlock()
		c.lead(b, run)
	} else {
		c.pending = append(c.pending, b)
		c.mu.Unlock()
		<-b.done
		if b.run != nil {
			c.lead(b, b.run)
		}
	}
	err := b.err
	b.incrs, b.run = nil, nil
	batchPool.Put(b)
	return err
}

// take removes up to maxBatch queued requests. Called with c.mu held.
func (c *Counter) take() []*batch {
	n := min(len(c.pending), c.maxBatch)
	run := make([]*batch, n, n+1)
	copy(run, c.pending[:n])
	c.pending = c.pending[n:]
	if len(c.pending) == 0 {
		c.pending = nil
	}
	return run
}

// lead sends run (self, the caller's own request, among them), answers
// the others, and hands what queued meanwhile to one of its callers.
func (c *Counter) lead(self *batch, run []*batch) {
	if c.batches != nil {
		c.batches.Observe(float64(len(run)))
	}
	err := c.exec(run)
	c.mu.Lock()
	var next []*batch
	if len(c.pending) > 0 {
		next = c.take() // the pipeline stays in flight, led by next[0]
	} else {
		c.inflight--
	}
	c.mu.Unlock()
	for _, b := range run {
		b.err = err
		if b != self {
			b.done <- struct{}{}
		}
	}
	if next != nil {
		next[0].run = next
		next[0].done <- struct{}{}
	}
}

// Close refuses further requests; those in flight finish.
func (c *Counter) Close() {
	c.mu.Lock()
	c.closed = true
	c.mu.Unlock()
}

// exec runs one pipeline for every increment of pending: INCRBY and
// EXPIRE per key (the first increment of a window sets its expiry; later
// ones renew it, as envoyproxy/ratelimit does), and GET of the previous
// window for a sliding one. Each INCRBY is atomic in Redis, so counts are
// exact across replicas.
func (c *Counter) exec(pending []*batch) error {
	ctx, cancel := context.WithTimeout(context.Background(), c.timeout)
	defer cancel()
	pipe := c.client.Pipeline()
	type slot struct {
		incr *redis.IntCmd
		prev *redis.StringCmd
	}
	n := 0
	for _, b := range pending {
		n += len(b.incrs)
	}
	slots := make([]slot, 0, n)
	for _, b := range pending {
		for i := range b.incrs {
			in := &b.incrs[i]
			s := slot{incr: pipe.IncrBy(ctx, in.key, int64(in.hits))}
			pipe.Expire(ctx, in.key, in.ttl)
			if in.prevKey != "" {
				s.prev = pipe.Get(ctx, in.prevKey)
			}
			slots = append(slots, s)
		}
	}
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return err
	}
	k := 0
	for _, b := range pending {
		for i := range b.incrs {
			s := slots[k]
			k++
			v, err := s.incr.Result()
			if err != nil {
				return err
			}
			b.incrs[i].count = uint64(v)
			if s.prev != nil {
				p, err := s.prev.Uint64()
				if err != nil && !errors.Is(err, redis.Nil) {
					return err
				}
				b.incrs[i].prev = p
			}
		}
	}
	return nil
}
