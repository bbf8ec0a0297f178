package ratelimit

import (
	"context"
	"errors"
	"sync"
	"time"

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
	done  chan struct{}
}

// Counter increments window counters in Redis. Requests arriving while a
// round trip is in flight are sent together in the next pipeline: with
// many concurrent callers, one write and one read carry dozens of
// requests, which is where the service's CPU per request goes otherwise.
type Counter struct {
	client  redis.UniversalClient
	timeout time.Duration

	queue chan *batch
	stop  chan struct{}
	wg    sync.WaitGroup
}

// CounterOptions tune a Counter.
type CounterOptions struct {
	// Timeout bounds one pipeline (default 500ms).
	Timeout time.Duration
	// Senders is how many pipelines may be in flight at once (default 4).
	Senders int
	// MaxBatch bounds the requests in one pipeline (default 256).
	MaxBatch int
}

// NewCounter starts a counter over client. Close stops it.
func NewCounter(client redis.UniversalClient, o CounterOptions) *Counter {
	if o.Timeout <= 0 {
		o.Timeout = 500 * time.Millisecond
	}
	if o.Senders <= 0 {
		o.Senders = 4
	}
	if o.MaxBatch <= 0 {
		o.MaxBatch = 256
	}
	c := &Counter{client: client, timeout: o.Timeout, queue: make(chan *batch, o.MaxBatch*o.Senders), stop: make(chan struct{})}
	for range o.Senders {
		c.wg.Add(1)
		go c.send(o.MaxBatch)
	}
	return c
}

// ErrClosed is returned after Close.
var ErrClosed = errors.New("rate-limit counter closed")

var batches = sync.Pool{New: func() any { return &batch{done: make(chan struct{}, 1)} }}

// Do applies the increments of one request, filling in each count. It
// returns when Redis answered, ctx ended or the pipeline timed out.
func (c *Counter) Do(ctx context.Context, incrs []incr) error {
	b := batches.Get().(*batch)
	b.incrs, b.err = incrs, nil
	select {
	case c.queue <- b:
	case <-ctx.Done():
		batches.Put(b)
		return ctx.Err()
	case <-c.stop:
		batches.Put(b)
		return ErrClosed
	}
	select {
	case <-b.done:
		err := b.err
		b.incrs = nil
		batches.Put(b)
		return err
	case <-ctx.Done():
		// The sender still owns b: it is dropped, not recycled.
		return ctx.Err()
	}
}

// Close stops the senders; requests queued get ErrClosed.
func (c *Counter) Close() {
	close(c.stop)
	c.wg.Wait()
}

func (c *Counter) send(maxBatch int) {
	defer c.wg.Done()
	pending := make([]*batch, 0, maxBatch)
	for {
		pending = pending[:0]
		select {
		case b := <-c.queue:
			pending = append(pending, b)
		case <-c.stop:
			c.drain()
			return
		}
	more:
		for len(pending) < maxBatch {
			select {
			case b := <-c.queue:
				pending = append(pending, b)
			default:
				break more
			}
		}
		err := c.exec(pending)
		for _, b := range pending {
			b.err = err
			b.done <- struct{}{}
		}
	}
}

func (c *Counter) drain() {
	for {
		select {
		case b := <-c.queue:
			b.err = ErrClosed
			b.done <- struct{}{}
		default:
			return
		}
	}
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
