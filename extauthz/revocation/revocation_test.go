package revocation

import (
	"context"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/meshguard/meshguard/internal/redistest"
)

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// replica is one authorizer's list, kept in sync by Run.
func replica(t *testing.T, addr string, o Options) *List {
	t.Helper()
	c := redis.NewClient(&redis.Options{Addr: addr, DisableIdentity: true, MaxRetries: 0,
		DialTimeout: 200 * time.Millisecond, ReadTimeout: 500 * time.Millisecond})
	t.Cleanup(func() { _ = c.Close() })
	o.Log = quiet()
	l := New(c, o)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { l.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return l
}

// within polls cond for up to limit and reports how long it took.
func within(t *testing.T, what string, limit time.Duration, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for !cond() {
		if time.Since(start) > limit {
			t.Fatalf("not within %s: %s", limit, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
	return time.Since(start)
}

func synced(l *List) func() bool { return func() bool { return l.Status().Synced } }

func TestARevocationReachesEveryReplicaWithinASecond(t *testing.T) {
	srv := redistest.Start(t)
	a, b := replica(t, srv.Addr(), Options{}), replica(t, srv.Addr(), Options{})
	within(t, "both lists in sync", 5*time.Second, func() bool { return synced(a)() && synced(b)() })
	tok := Token{ID: "t-1", Subject: "alice", IssuedAt: time.Now()}
	if r, ok := b.Check(tok); r || !ok {
		t.Fatalf("before: revoked %v ok %v", r, ok)
	}
	if err := a.Revoke(context.Background(), Entry{Kind: KindToken, Value: "t-1", Expires: time.Now().Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	if r, _ := a.Check(tok); !r {
		t.Fatal("the replica that revoked does not see it at once")
	}
	took := within(t, "the other replica to see the revocation", time.Second, func() bool { r, _ := b.Check(tok); return r })
	t.Logf("revocation seen by the other replica after %s", took)
	if r, _ := b.Check(Token{ID: "t-2", Subject: "alice"}); r {
		t.Fatal("another token of the same subject is revoked")
	}
}

func TestSessionsAndSubjectsIssuedBefore(t *testing.T) {
	srv := redistest.Start(t)
	l := replica(t, srv.Addr(), Options{})
	within(t, "in sync", 5*time.Second, synced(l))
	ctx, now := context.Background(), time.Now()
	must := func(e Entry) {
		t.Helper()
		if err := l.Revoke(ctx, e); err != nil {
			t.Fatal(err)
		}
	}
	must(Entry{Kind: KindSession, Value: "s-9", Expires: now.Add(time.Hour)})
	cutoff := now.Add(-time.Minute)
	must(Entry{Kind: KindSubject, Value: "bob", Before: cutoff, Expires: now.Add(time.Hour)})
	for _, c := range []struct {
		name string
		tok  Token
		want bool
	}{
		{"a token of the revoked session", Token{ID: "x", Session: "s-9", Subject: "carol", IssuedAt: now}, true},
		{"a token of another session", Token{ID: "x", Session: "s-8", Subject: "carol", IssuedAt: now}, false},
		{"the subject's token issued before the cutoff", Token{Subject: "bob", IssuedAt: cutoff.Add(-time.Second)}, true},
		{"the subject's token issued after it (a new login)", Token{Subject: "bob", IssuedAt: cutoff.Add(time.Second)}, false},
		{"the subject's token without iat", Token{Subject: "bob"}, true},
		{"another subject", Token{Subject: "bobby", IssuedAt: cutoff.Add(-time.Hour)}, false},
	} {
		if got, ok := l.Check(c.tok); got != c.want || !ok {
			t.Errorf("%s: revoked %v ok %v, want %v", c.name, got, ok, c.want)
		}
	}
	// A second revocation of the subject with an earlier cutoff revokes
	// no less.
	must(Entry{Kind: KindSubject, Value: "bob", Before: cutoff.Add(-time.Hour), Expires: now.Add(time.Hour)})
	if got, _ := l.Check(Token{Subject: "bob", IssuedAt: cutoff.Add(-time.Second)}); !got {
		t.Fatal("an earlier cutoff undid a later one")
	}
}

func TestBadRevocationsAreRefused(t *testing.T) {
	srv := redistest.Start(t)
	l := replica(t, srv.Addr(), Options{})
	now := time.Now()
	for _, c := range []struct {
		e    Entry
		want string
	}{
		{Entry{Kind: "user", Value: "a", Expires: now.Add(time.Hour)}, `kind "user"`},
		{Entry{Kind: KindToken, Expires: now.Add(time.Hour)}, "jti: 1 to 1024 bytes"},
		{Entry{Kind: KindToken, Value: strings.Repeat("x", MaxValueBytes+1), Expires: now.Add(time.Hour)}, "1 to 1024 bytes"},
		{Entry{Kind: KindToken, Value: "a", Expires: now.Add(-time.Second)}, "expires: must be in the future"},
		{Entry{Kind: KindToken, Value: "a", Expires: now.Add(2 * MaxTTL)}, "expires: at most"},
		{Entry{Kind: KindSubject, Value: "a", Expires: now.Add(time.Hour)}, "before: required for a subject"},
		{Entry{Kind: KindToken, Value: "a", Before: now, Expires: now.Add(time.Hour)}, "before: only for a subject"},
	} {
		if err := l.Revoke(context.Background(), c.e); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: err = %v, want %q", c.e, err, c.want)
		}
	}
}

// Without Redis the list is not trusted (the caller applies its
// fallback); back with Redis, it reloads by itself, revocations made
// meanwhile included, and expired ones are left out.
func TestRedisLostThenBackReloadsTheList(t *testing.T) {
	srv := redistest.Start(t)
	a := replica(t, srv.Addr(), Options{})
	within(t, "in sync", 5*time.Second, synced(a))
	writer := srv.Client()
	srv.Kill()
	within(t, "the list to be untrusted without Redis", 5*time.Second, func() bool { _, ok := a.Check(Token{Subject: "x"}); return !ok })
	if st := a.Status(); st.Synced || st.Error == "" {
		t.Fatalf("status without Redis: %+v", st)
	}
	srv.Start()
	// A revocation written while this replica was away (by another one).
	b := replica(t, srv.Addr(), Options{})
	within(t, "the writer in sync", 5*time.Second, synced(b))
	if err := b.Revoke(context.Background(), Entry{Kind: KindToken, Value: "while-away", Expires: time.Now().Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	// An expired entry left in Redis without a TTL is not loaded.
	if err := writer.Set(context.Background(), "meshguard:revoked:jti:old", `{"kind":"jti","value":"old","expires":"2020-01-01T00:00:00Z"}`, 0).Err(); err != nil {
		t.Fatal(err)
	}
	within(t, "the list back in sync with the revocation made meanwhile", 10*time.Second, func() bool {
		r, ok := a.Check(Token{ID: "while-away"})
		return ok && r
	})
	if r, _ := a.Check(Token{ID: "old"}); r {
		t.Fatal("an expired revocation was loaded")
	}
}

func TestAListTooLargeIsNotTrusted(t *testing.T) {
	srv := redistest.Start(t)
	c := srv.Client()
	ctx := context.Background()
	for _, v := range []string{"a", "b", "c"} {
		if err := c.Set(ctx, "meshguard:revoked:jti:"+v, `{"kind":"jti","value":"`+v+`","expires":"2099-01-01T00:00:00Z"}`, 0).Err(); err != nil {
			t.Fatal(err)
		}
	}
	l := replica(t, srv.Addr(), Options{MaxEntries: 2})
	within(t, "an error about the size", 5*time.Second, func() bool { return strings.Contains(l.Status().Error, "more than 2 revocations") })
	if _, ok := l.Check(Token{ID: "a"}); ok {
		t.Fatal("a list over its bound is trusted")
	}
}

// BenchmarkCheck is the hot-path lookup of a token that is not revoked,
// in a list of 100,000 revocations.
func BenchmarkCheck(b *testing.B) {
	l := New(nil, Options{Log: quiet()})
	exp := time.Now().Add(time.Hour)
	for i := range 100_000 {
		l.snap.apply(Entry{Kind: KindToken, Value: "t-" + string(rune('a'+i%26)) + time.Duration(i).String(), Expires: exp})
	}
	l.snap.apply(Entry{Kind: KindSubject, Value: "mallory", Before: time.Now(), Expires: exp})
	l.synced.Store(true)
	tok := Token{ID: "a-token-id-of-usual-length", Session: "a-session-id", Subject: "alice", IssuedAt: time.Now()}
	b.ReportAllocs()
	for b.Loop() {
		if r, ok := l.Check(tok); r || !ok {
			b.Fatal("revoked")
		}
	}
}

// Redis restarted without persistence forgets every revocation; a replica
// that held them keeps them in force and writes them back, so a revoked
// token never works again (found by the chaos suite), on any replica.
func TestRevocationsRedisLostAreWrittenBack(t *testing.T) {
	srv := redistest.Start(t)
	a := replica(t, srv.Addr(), Options{})
	within(t, "in sync", 5*time.Second, synced(a))
	exp := time.Now().Add(time.Hour).Truncate(time.Second)
	for _, e := range []Entry{
		{Kind: KindToken, Value: "stolen", Expires: exp},
		{Kind: KindSession, Value: "s-1", Expires: exp},
		{Kind: KindSubject, Value: "mallory", Before: time.Now().Truncate(time.Second), Expires: exp},
	} {
		if err := a.Revoke(context.Background(), e); err != nil {
			t.Fatal(err)
		}
	}
	// A replica that starts while Redis is empty learns them as soon as
	// they are written back (published), not at its next resync.
	srv.Kill()
	srv.Start() // empty: no persistence
	b := replica(t, srv.Addr(), Options{Resync: time.Hour})
	within(t, "the revocations written back to Redis", 10*time.Second, func() bool {
		return srv.Client().Exists(context.Background(), "meshguard:revoked:jti:stolen").Val() == 1
	})
	within(t, "the list back in sync", 10*time.Second, synced(a))
	for _, tok := range []Token{{ID: "stolen"}, {Session: "s-1"}, {Subject: "mallory", IssuedAt: time.Now().Add(-time.Minute)}} {
		if r, ok := a.Check(tok); !ok || !r {
			t.Errorf("%+v after Redis lost its data: revoked=%v trusted=%v", tok, r, ok)
		}
	}
	within(t, "the replica started on the emptied Redis to learn them", 5*time.Second, func() bool {
		r, ok := b.Check(Token{ID: "stolen"})
		return ok && r
	})
	if ttl := srv.Client().TTL(context.Background(), "meshguard:revoked:jti:stolen").Val(); ttl <= 0 || ttl > time.Hour {
		t.Fatalf("written back with TTL %v, want the revocation's expiry", ttl)
	}
}
