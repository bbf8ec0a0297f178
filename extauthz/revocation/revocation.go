// Package revocation is the authorizer's token revocation list, shared by
// every replica through Redis: a token revoked by its id (jti), a session
// revoked by its id (sid), or every token of a subject issued before a
// time.
//
// Each replica keeps the whole list in memory and checks tokens against
// it without a Redis round trip. It subscribes to a Redis channel on which
// every revocation is published, so a revocation reaches every replica in
// milliseconds, and it reloads the list whenever the subscription was
// broken (a message may have been missed) and every Resync. While the
// list cannot be trusted — not loaded yet, or Redis unreachable — Check
// says so, and the caller applies the token provider's fallback.
//
// Revocations expire: a token's with the token, a session's or subject's
// after a TTL, so the list stays as small as the tokens alive.
package revocation

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
)

// Kinds of revocation.
const (
	KindToken   = "jti" // one token, by its jti claim
	KindSession = "sid" // every token of a session, by its sid claim
	KindSubject = "sub" // every token of a subject issued before a time
)

// Bounds.
const (
	MaxValueBytes = 1024
	MaxTTL        = 366 * 24 * time.Hour
)

// Entry is one revocation.
type Entry struct {
	Kind  string `json:"kind"`
	Value string `json:"value"`
	// Before, for a subject: its tokens issued before this time are
	// revoked (tokens without iat too).
	Before time.Time `json:"before,omitzero"`
	// Expires is when the revocation may be forgotten.
	Expires time.Time `json:"expires"`
}

// Validate checks an entry against now.
func (e Entry) Validate(now time.Time) error {
	switch e.Kind {
	case KindToken, KindSession, KindSubject:
	default:
		return fmt.Errorf("kind %q: want jti, sid or sub", e.Kind)
	}
	if e.Value == "" || len(e.Value) > MaxValueBytes {
		return fmt.Errorf("%s: 1 to %d bytes", e.Kind, MaxValueBytes)
	}
	if e.Kind == KindSubject && e.Before.IsZero() {
		return errors.New("before: required for a subject")
	}
	if e.Kind != KindSubject && !e.Before.IsZero() {
		return errors.New("before: only for a subject")
	}
	switch {
	case !e.Expires.After(now):
		return errors.New("expires: must be in the future")
	case e.Expires.Sub(now) > MaxTTL:
		return fmt.Errorf("expires: at most %s ahead", MaxTTL)
	}
	return nil
}

// Token is what a check reads of a verified token.
type Token struct {
	ID, Session, Subject string
	IssuedAt             time.Time // zero when the token has no iat
}

// Options configure a List.
type Options struct {
	// Prefix starts the list's keys and channel (default "meshguard:").
	Prefix string
	// Resync reloads the whole list this often (default 30s), a bound on
	// how long a missed message could go unnoticed.
	Resync time.Duration
	// MaxEntries bounds the list in memory (default 1,000,000); a list
	// larger than that is not trusted (Check says unavailable).
	MaxEntries int
	Log        *slog.Logger
	Now        func() time.Time
}

// List is the revocation list of one replica.
type List struct {
	client redis.UniversalClient
	o      Options

	mu   sync.RWMutex
	snap *snapshot

	synced   atomic.Bool
	lastErr  atomic.Pointer[string]
	lastSync atomic.Pointer[time.Time]
}

type snapshot struct {
	tokens, sessions map[string]time.Time // value → expires
	subjects         map[string]Entry
}

func (s *snapshot) len() int { return len(s.tokens) + len(s.sessions) + len(s.subjects) }

func (s *snapshot) apply(e Entry) {
	switch e.Kind {
	case KindToken:
		s.tokens[e.Value] = e.Expires
	case KindSession:
		s.sessions[e.Value] = e.Expires
	case KindSubject:
		// Two revocations of a subject: the later "before" revokes more,
		// the later expiry lasts longer.
		if prev, ok := s.subjects[e.Value]; ok {
			if prev.Before.After(e.Before) {
				e.Before = prev.Before
			}
			if prev.Expires.After(e.Expires) {
				e.Expires = prev.Expires
			}
		}
		s.subjects[e.Value] = e
	}
}

// missingFrom lists the unexpired entries of s that next lacks (or holds
// with an earlier expiry, or, for a subject, an earlier cutoff).
func (s *snapshot) missingFrom(next *snapshot, now time.Time) []Entry {
	var out []Entry
	for v, exp := range s.tokens {
		if got, ok := next.tokens[v]; exp.After(now) && (!ok || got.Before(exp)) {
			out = append(out, Entry{Kind: KindToken, Value: v, Expires: exp})
		}
	}
	for v, exp := range s.sessions {
		if got, ok := next.sessions[v]; exp.After(now) && (!ok || got.Before(exp)) {
			out = append(out, Entry{Kind: KindSession, Value: v, Expires: exp})
		}
	}
	for v, e := range s.subjects {
		if got, ok := next.subjects[v]; e.Expires.After(now) && (!ok || got.Expires.Before(e.Expires) || got.Before.Before(e.Before)) {
			out = append(out, e)
		}
	}
	return out
}

func newSnapshot() *snapshot {
	return &snapshot{tokens: map[string]time.Time{}, sessions: map[string]time.Time{}, subjects: map[string]Entry{}}
}

// New makes a list over client; Run keeps it in sync.
func New(client redis.UniversalClient, o Options) *List {
	if o.Prefix == "" {
		o.Prefix = "meshguard:"
	}
	if o.Resync <= 0 {
		o.Resync = 30 * time.Second
	}
	if o.MaxEntries <= 0 {
		o.MaxEntries = 1_000_000
	}
	if o.Log == nil {
		o.Log = slog.Default()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	l := &List{client: client, o: o, snap: newSnapshot()}
	l.setErr(errors.New("not loaded yet"))
	return l
}

func (l *List) channel() string           { return l.o.Prefix + "revocations" }
func (l *List) keyPattern() string        { return l.o.Prefix + "revoked:*" }
func (l *List) key(kind, v string) string { return l.o.Prefix + "revoked:" + kind + ":" + v }

// Check reports whether t is revoked. ok is false when the list cannot be
// trusted (not loaded, or Redis unreachable since): the caller decides.
// It makes no Redis call and takes a read lock and at most three map
// lookups.
func (l *List) Check(t Token) (revoked, ok bool) {
	if !l.synced.Load() {
		return false, false
	}
	l.mu.RLock()
	defer l.mu.RUnlock()
	s := l.snap
	if t.ID != "" {
		if _, r := s.tokens[t.ID]; r {
			return true, true
		}
	}
	if t.Session != "" {
		if _, r := s.sessions[t.Session]; r {
			return true, true
		}
	}
	if e, r := s.subjects[t.Subject]; r && (t.IssuedAt.IsZero() || t.IssuedAt.Before(e.Before)) {
		return true, true
	}
	return false, true
}

// Revoke records e in Redis, where every replica's list picks it up, and
// in this replica's list at once.
func (l *List) Revoke(ctx context.Context, e Entry) error {
	if err := e.Validate(l.o.Now()); err != nil {
		return err
	}
	body, err := json.Marshal(e)
	if err != nil {
		return err
	}
	key := l.key(e.Kind, e.Value)
	if e.Kind == KindSubject {
		// Keep the latest "before" if the subject was revoked already.
		if prev, err := l.client.Get(ctx, key).Bytes(); err == nil {
			var p Entry
			if json.Unmarshal(prev, &p) == nil && p.Before.After(e.Before) {
				e.Before = p.Before
				body, _ = json.Marshal(e)
			}
		}
	}
	pipe := l.client.TxPipeline()
	pipe.Set(ctx, key, body, 0)
	pipe.PExpireAt(ctx, key, e.Expires)
	pipe.Publish(ctx, l.channel(), body)
	if _, err := pipe.Exec(ctx); err != nil {
		return fmt.Errorf("revocation list: %w", err)
	}
	l.mu.Lock()
	l.snap.apply(e)
	l.mu.Unlock()
	return nil
}

// restore writes entries back to Redis and publishes them, keeping what is there when it
// revokes more (a later cutoff or expiry another replica wrote meanwhile
// is merged by the next load, which keeps the larger of each).
func (l *List) restore(ctx context.Context, entries []Entry) error {
	pipe := l.client.Pipeline()
	for _, e := range entries {
		body, err := json.Marshal(e)
		if err != nil {
			return err
		}
		key := l.key(e.Kind, e.Value)
		pipe.Set(ctx, key, body, 0)
		pipe.PExpireAt(ctx, key, e.Expires)
		// Published too: a replica that loaded the emptied Redis before
		// this write applies it now, not at its next resync.
		pipe.Publish(ctx, l.channel(), body)
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return fmt.Errorf("restore lost revocations: %w", err)
	}
	return nil
}

// Status is the list's state, for /v1/status.
type Status struct {
	Synced   bool      `json:"synced"`
	Entries  int       `json:"entries"`
	LastSync time.Time `json:"last_sync,omitzero"`
	Error    string    `json:"error,omitempty"`
}

// Status reports the list's state.
func (l *List) Status() Status {
	l.mu.RLock()
	n := l.snap.len()
	l.mu.RUnlock()
	st := Status{Synced: l.synced.Load(), Entries: n}
	if t := l.lastSync.Load(); t != nil {
		st.LastSync = *t
	}
	if e := l.lastErr.Load(); e != nil {
		st.Error = *e
	}
	return st
}

func (l *List) setErr(err error) {
	if err == nil {
		l.lastErr.Store(nil)
		return
	}
	s := err.Error()
	l.lastErr.Store(&s)
}

// Run keeps the list in sync until ctx ends: subscribe, load, apply each
// message; on any break, mark the list untrusted and start over.
func (l *List) Run(ctx context.Context) {
	backoff := 100 * time.Millisecond
	for ctx.Err() == nil {
		err := l.session(ctx)
		if ctx.Err() != nil {
			return
		}
		if l.synced.Swap(false) {
			l.o.Log.Warn("revocation list out of sync; tokens of providers that check it get their fallback", "err", err)
		}
		l.setErr(err)
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, 2*time.Second)
	}
}

// session is one subscription: it returns why it ended.
func (l *List) session(ctx context.Context) error {
	ps := l.client.Subscribe(ctx, l.channel())
	defer ps.Close()
	// The subscription is confirmed before the list is read, so a
	// revocation published during the read is delivered after it.
	if _, err := ps.ReceiveTimeout(ctx, 5*time.Second); err != nil {
		return fmt.Errorf("subscribe: %w", err)
	}
	if err := l.load(ctx); err != nil {
		return err
	}
	resync := time.NewTicker(l.o.Resync)
	defer resync.Stop()
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		select {
		case <-resync.C:
			if err := l.load(ctx); err != nil {
				return err
			}
			continue
		default:
		}
		msg, err := ps.ReceiveTimeout(ctx, time.Second)
		if err != nil {
			var ne interface{ Timeout() bool }
			if errors.As(err, &ne) && ne.Timeout() {
				// Quiet channel: make sure the connection is alive.
				if err := ps.Ping(ctx); err != nil {
					return fmt.Errorf("ping: %w", err)
				}
				continue
			}
			return fmt.Errorf("receive: %w", err)
		}
		m, ok := msg.(*redis.Message)
		if !ok {
			continue // a pong or a subscription confirmation
		}
		var e Entry
		if err := json.Unmarshal([]byte(m.Payload), &e); err != nil || e.Validate(l.o.Now()) != nil {
			l.o.Log.Warn("revocation message ignored", "err", err)
			continue
		}
		l.mu.Lock()
		l.snap.apply(e)
		l.mu.Unlock()
	}
}

// load reads every revocation in Redis into a new snapshot.
func (l *List) load(ctx context.Context) error {
	next := newSnapshot()
	now := l.o.Now()
	read := func(ctx context.Context, c redis.UniversalClient) error {
		var cursor uint64
		for {
			keys, cur, err := c.Scan(ctx, cursor, l.keyPattern(), 1000).Result()
			if err != nil {
				return fmt.Errorf("scan: %w", err)
			}
			// GETs in a pipeline, not MGET: a cluster refuses MGET across slots.
			pipe := c.Pipeline()
			gets := make([]*redis.StringCmd, len(keys))
			for i, k := range keys {
				gets[i] = pipe.Get(ctx, k)
			}
			if len(keys) > 0 {
				if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
					return fmt.Errorf("read: %w", err)
				}
			}
			for i, g := range gets {
				b, err := g.Bytes()
				if err != nil {
					continue // expired between SCAN and GET
				}
				var e Entry
				if json.Unmarshal(b, &e) != nil || keys[i] != l.key(e.Kind, e.Value) || !e.Expires.After(now) {
					continue
				}
				next.apply(e)
			}
			if next.len() > l.o.MaxEntries {
				return fmt.Errorf("more than %d revocations: the list is not held in memory", l.o.MaxEntries)
			}
			if cursor = cur; cursor == 0 {
				return nil
			}
		}
	}
	var err error
	if cc, ok := l.client.(*redis.ClusterClient); ok {
		// SCAN walks one node: walk every master. Each master's keys go
		// into next under a lock, as ForEachMaster runs them at once.
		var mu sync.Mutex
		err = cc.ForEachMaster(ctx, func(ctx context.Context, c *redis.Client) error {
			mu.Lock()
			defer mu.Unlock()
			return read(ctx, c)
		})
	} else {
		err = read(ctx, l.client)
	}
	if err != nil {
		return err
	}
	// Revocations are never withdrawn, only expire: one this replica holds
	// that Redis no longer has was lost by Redis (a restart without
	// persistence, a failover to a replica that had not received it). It
	// stays in force here and is written back, so a token revoked before
	// the loss stays revoked on every replica.
	l.mu.RLock()
	lost := l.snap.missingFrom(next, now)
	l.mu.RUnlock()
	for _, e := range lost {
		next.apply(e)
	}
	if len(lost) > 0 {
		if err := l.restore(ctx, lost); err != nil {
			return err
		}
		l.o.Log.Warn("revocations Redis had lost are written back", "entries", len(lost))
	}
	n := next.len()
	l.mu.Lock()
	l.snap = next
	l.mu.Unlock()
	t := l.o.Now()
	l.lastSync.Store(&t)
	l.setErr(nil)
	if !l.synced.Swap(true) {
		l.o.Log.Info("revocation list in sync", "entries", n)
	}
	return nil
}
