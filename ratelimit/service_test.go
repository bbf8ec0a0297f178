package ratelimit

import (
	"context"
	"io"
	"log/slog"
	"math"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	ratelimitv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/common/ratelimit/v3"
	rlsv3 "github.com/envoyproxy/go-control-plane/envoy/service/ratelimit/v3"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/redis/go-redis/v9"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/meshguard/meshguard/internal/redisclient"
	"github.com/meshguard/meshguard/internal/redistest"
)

// clock is a settable clock shared by the replicas of a test: windows are
// chosen, never waited for.
type clock struct{ ns atomic.Int64 }

func newClock() *clock {
	c := &clock{}
	// 10s into a minute, 250ms into a second: away from every boundary.
	c.ns.Store(time.Date(2026, 12, 6, 12, 0, 10, 250e6, time.UTC).UnixNano())
	return c
}
func (c *clock) now() time.Time          { return time.Unix(0, c.ns.Load()) }
func (c *clock) advance(d time.Duration) { c.ns.Add(int64(d)) }

// replica is one rate-limit service on a loopback gRPC listener.
type replica struct {
	svc     *Service
	client  rlsv3.RateLimitServiceClient
	metrics *Metrics
}

func startReplica(t *testing.T, redisAddr string, cfg *Config, clk *clock, o Options) *replica {
	t.Helper()
	rc := redis.NewClient(&redis.Options{Addr: redisAddr, DisableIdentity: true, MaxRetries: 0,
		DialTimeout: 200 * time.Millisecond, ReadTimeout: 200 * time.Millisecond, WriteTimeout: 200 * time.Millisecond})
	return startReplicaWith(t, rc, cfg, clk, o)
}

func startReplicaWith(t *testing.T, rc redis.UniversalClient, cfg *Config, clk *clock, o Options) *replica {
	t.Helper()
	t.Cleanup(func() { _ = rc.Close() })
	counter := NewCounter(rc, CounterOptions{Timeout: 300 * time.Millisecond})
	t.Cleanup(counter.Close)
	o.Now = clk.now
	o.Log = slog.New(slog.NewTextHandler(io.Discard, nil))
	o.Metrics = NewMetrics(prometheus.NewRegistry())
	svc := NewService(cfg, counter, o)
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gs := grpc.NewServer()
	rlsv3.RegisterRateLimitServiceServer(gs, svc)
	go func() { _ = gs.Serve(lis) }()
	t.Cleanup(gs.Stop)
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return &replica{svc: svc, client: rlsv3.NewRateLimitServiceClient(conn), metrics: o.Metrics}
}

func (r *replica) ask(t *testing.T, domain string, ds ...*ratelimitv3.RateLimitDescriptor) *rlsv3.RateLimitResponse {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	resp, err := r.client.ShouldRateLimit(ctx, &rlsv3.RateLimitRequest{Domain: domain, Descriptors: ds})
	if err != nil {
		t.Fatalf("ShouldRateLimit: %v", err)
	}
	return resp
}

const apiLimits = `domain: api
descriptors:
  - key: user
    rate_limit: {unit: second, requests_per_unit: 100}
  - key: path
    rate_limit: {unit: minute, requests_per_unit: 3}
  - key: plan
    value: trial
    shadow_mode: true
    rate_limit: {unit: minute, requests_per_unit: 1}
`

// 300 calls at a 100/s limit, spread over two replicas and 30 concurrent
// callers, are answered OK exactly 100 times.
func TestLimitsAreExactAcrossReplicasUnderConcurrency(t *testing.T) {
	srv := redistest.Start(t)
	cfg, clk := mustConfig(t, apiLimits), newClock()
	replicas := []*replica{startReplica(t, srv.Addr(), cfg, clk, Options{}), startReplica(t, srv.Addr(), cfg, clk, Options{})}
	var ok, over atomic.Int64
	var wg sync.WaitGroup
	for w := range 30 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := replicas[w%2]
			for range 10 {
				resp, err := r.client.ShouldRateLimit(context.Background(), &rlsv3.RateLimitRequest{Domain: "api", Descriptors: []*ratelimitv3.RateLimitDescriptor{desc("user", "alice")}})
				switch {
				case err != nil:
					t.Error(err)
				case resp.GetOverallCode() == rlsv3.RateLimitResponse_OK:
					ok.Add(1)
				default:
					over.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	if ok.Load() != 100 || over.Load() != 200 {
		t.Fatalf("OK %d, OVER_LIMIT %d; want exactly 100 and 200", ok.Load(), over.Load())
	}
	// A new window starts over; another user has a counter of its own.
	clk.advance(time.Second)
	if r := replicas[0].ask(t, "api", desc("user", "alice")); r.GetOverallCode() != rlsv3.RateLimitResponse_OK {
		t.Fatal("the next window is still over the limit")
	}
	if r := replicas[1].ask(t, "api", desc("user", "bob")); r.GetOverallCode() != rlsv3.RateLimitResponse_OK {
		t.Fatal("bob shares alice's counter")
	}
}

func TestResponsesCarryStatusesAndHeaders(t *testing.T) {
	srv := redistest.Start(t)
	r := startReplica(t, srv.Addr(), mustConfig(t, apiLimits), newClock(), Options{})
	var resp *rlsv3.RateLimitResponse
	for i := range 4 {
		resp = r.ask(t, "api", desc("path", "/a"), desc("user", "carol"), desc("unknown", "x"))
		st := resp.GetStatuses()
		if len(st) != 3 {
			t.Fatalf("statuses: %v", st)
		}
		if i < 3 {
			if resp.GetOverallCode() != rlsv3.RateLimitResponse_OK || st[0].GetLimitRemaining() != uint32(2-i) || st[1].GetLimitRemaining() != uint32(99-i) {
				t.Fatalf("call %d: %v", i+1, resp)
			}
		}
		if st[0].GetCurrentLimit().GetRequestsPerUnit() != 3 || st[0].GetCurrentLimit().GetUnit() != rlsv3.RateLimitResponse_RateLimit_MINUTE ||
			st[0].GetDurationUntilReset().GetSeconds() != 50 || st[1].GetDurationUntilReset().GetSeconds() != 1 {
			t.Fatalf("call %d: limits and resets: %v", i+1, st)
		}
		if st[2].GetCode() != rlsv3.RateLimitResponse_OK || st[2].GetCurrentLimit() != nil {
			t.Fatalf("a descriptor no limit matches: %v", st[2])
		}
	}
	// The fourth call is over the path limit: the headers describe it.
	if resp.GetOverallCode() != rlsv3.RateLimitResponse_OVER_LIMIT || resp.GetStatuses()[0].GetCode() != rlsv3.RateLimitResponse_OVER_LIMIT {
		t.Fatalf("fourth call: %v", resp)
	}
	h := map[string]string{}
	for _, hv := range resp.GetResponseHeadersToAdd() {
		h[hv.GetKey()] = hv.GetValue()
	}
	if h["x-ratelimit-limit"] != "3" || h["x-ratelimit-remaining"] != "0" || h["x-ratelimit-reset"] != "50" {
		t.Fatalf("headers: %v", h)
	}
}

func TestShadowModeUnlimitedAndReplaces(t *testing.T) {
	srv := redistest.Start(t)
	r := startReplica(t, srv.Addr(), mustConfig(t, messaging, apiLimits), newClock(), Options{})
	// shadow_mode: over the limit, yet OK overall.
	for i := range 3 {
		resp := r.ask(t, "api", desc("plan", "trial"))
		if resp.GetOverallCode() != rlsv3.RateLimitResponse_OK {
			t.Fatalf("call %d of a shadow-mode limit: %v", i+1, resp)
		}
		if i > 0 && resp.GetStatuses()[0].GetCode() != rlsv3.RateLimitResponse_OVER_LIMIT {
			t.Fatalf("call %d: the status still says over the limit: %v", i+1, resp)
		}
	}
	if got := testutil.ToFloat64(r.metrics.Decisions.WithLabelValues("api", "api.plan_trial", "true", "over_limit")); got != 2 {
		t.Fatalf("shadow over-limit decisions counted %v, want 2", got)
	}
	// unlimited: never counted.
	for range 20 {
		resp := r.ask(t, "messaging", desc("remote_address", "10.0.0.1"))
		if resp.GetOverallCode() != rlsv3.RateLimitResponse_OK || resp.GetStatuses()[0].GetLimitRemaining() != math.MaxUint32 {
			t.Fatalf("unlimited: %v", resp)
		}
	}
	// replaces: with the gold tier in the request, the per-address limit
	// (10/s) is not applied.
	for i := range 15 {
		resp := r.ask(t, "messaging", desc("remote_address", "10.0.0.9"), desc("tier", "gold"))
		if resp.GetOverallCode() != rlsv3.RateLimitResponse_OK || resp.GetStatuses()[0].GetCurrentLimit() != nil {
			t.Fatalf("call %d: the replaced limit applied: %v", i+1, resp)
		}
	}
	// Without it, the 11th call in the second is over.
	var last *rlsv3.RateLimitResponse
	for range 11 {
		last = r.ask(t, "messaging", desc("remote_address", "10.0.0.8"))
	}
	if last.GetOverallCode() != rlsv3.RateLimitResponse_OVER_LIMIT {
		t.Fatalf("11 calls at 10/s: %v", last)
	}
}

// Values matching a share_threshold wildcard share one counter; other
// wildcards count each value apart.
func TestShareThresholdSharesOneCounter(t *testing.T) {
	srv := redistest.Start(t)
	r := startReplica(t, srv.Addr(), mustConfig(t, messaging), newClock(), Options{})
	for i := range 30 {
		if resp := r.ask(t, "messaging", desc("path", "/shared/"+string(rune('a'+i%26)))); resp.GetOverallCode() != rlsv3.RateLimitResponse_OK {
			t.Fatalf("call %d: %v", i+1, resp)
		}
	}
	if resp := r.ask(t, "messaging", desc("path", "/shared/zz")); resp.GetOverallCode() != rlsv3.RateLimitResponse_OVER_LIMIT {
		t.Fatal("31 calls under a shared 30/min limit were allowed")
	}
	for i := range 25 {
		if resp := r.ask(t, "messaging", desc("path", "/files/"+string(rune('a'+i)))); resp.GetOverallCode() != rlsv3.RateLimitResponse_OK {
			t.Fatalf("distinct files share a counter: call %d", i+1)
		}
	}
}

func TestSlidingWindowWeighsThePreviousWindow(t *testing.T) {
	srv := redistest.Start(t)
	clk := newClock()
	r := startReplica(t, srv.Addr(), mustConfig(t, apiLimits), clk, Options{Window: WindowSliding})
	for range 100 {
		r.ask(t, "api", desc("user", "dan"))
	}
	// 250ms into the next second, 75% of the previous window still
	// counts: 75 of its 100 calls, so 25 more are allowed.
	clk.advance(time.Second)
	allowed := 0
	for range 40 {
		if r.ask(t, "api", desc("user", "dan")).GetOverallCode() == rlsv3.RateLimitResponse_OK {
			allowed++
		}
	}
	if allowed != 25 {
		t.Fatalf("%d allowed, want 25", allowed)
	}
}

func TestInvalidRequestsAreRefused(t *testing.T) {
	srv := redistest.Start(t)
	r := startReplica(t, srv.Addr(), mustConfig(t, apiLimits), newClock(), Options{})
	long := strings.Repeat("x", MaxEntryBytes+1)
	many := make([]*ratelimitv3.RateLimitDescriptor, MaxDescriptors+1)
	for i := range many {
		many[i] = desc("user", "a")
	}
	for _, tc := range []struct {
		name string
		req  *rlsv3.RateLimitRequest
	}{
		{"no domain", &rlsv3.RateLimitRequest{Descriptors: []*ratelimitv3.RateLimitDescriptor{desc("user", "a")}}},
		{"no descriptors", &rlsv3.RateLimitRequest{Domain: "api"}},
		{"an empty descriptor", &rlsv3.RateLimitRequest{Domain: "api", Descriptors: []*ratelimitv3.RateLimitDescriptor{{}}}},
		{"an empty key", &rlsv3.RateLimitRequest{Domain: "api", Descriptors: []*ratelimitv3.RateLimitDescriptor{desc("", "a")}}},
		{"an oversized value", &rlsv3.RateLimitRequest{Domain: "api", Descriptors: []*ratelimitv3.RateLimitDescriptor{desc("user", long)}}},
		{"too many descriptors", &rlsv3.RateLimitRequest{Domain: "api", Descriptors: many}},
		{"an override without a unit", &rlsv3.RateLimitRequest{Domain: "api", Descriptors: []*ratelimitv3.RateLimitDescriptor{
			{Entries: desc("user", "a").Entries, Limit: &ratelimitv3.RateLimitDescriptor_RateLimitOverride{RequestsPerUnit: 1}}}}},
	} {
		_, err := r.client.ShouldRateLimit(context.Background(), tc.req)
		if status.Code(err) != codes.InvalidArgument {
			t.Errorf("%s: %v, want InvalidArgument", tc.name, err)
		}
	}
	if got := testutil.ToFloat64(r.metrics.Invalid); got != 7 {
		t.Errorf("invalid requests counted %v, want 7", got)
	}
}

// Redis killed: fail-closed answers OVER_LIMIT for every limited request
// (none is wrongly allowed), fail-open answers OK; both count the failure
// and recover by themselves once Redis is back.
func TestRedisLostAndBack(t *testing.T) {
	srv := redistest.Start(t)
	cfg, clk := mustConfig(t, apiLimits), newClock()
	closed := startReplica(t, srv.Addr(), cfg, clk, Options{FailureMode: FailClosed})
	open := startReplica(t, srv.Addr(), cfg, clk, Options{FailureMode: FailOpen})
	srv.Kill()
	for range 5 {
		if r := closed.ask(t, "api", desc("user", "erin")); r.GetOverallCode() != rlsv3.RateLimitResponse_OVER_LIMIT {
			t.Fatalf("fail-closed without Redis: %v", r)
		}
		if r := open.ask(t, "api", desc("user", "erin")); r.GetOverallCode() != rlsv3.RateLimitResponse_OK {
			t.Fatalf("fail-open without Redis: %v", r)
		}
		// A request no limit applies to needs no Redis.
		if r := closed.ask(t, "api", desc("nothing", "x")); r.GetOverallCode() != rlsv3.RateLimitResponse_OK {
			t.Fatalf("an unlimited request without Redis: %v", r)
		}
	}
	if got := testutil.ToFloat64(closed.metrics.RedisErrors.WithLabelValues(FailClosed)); got != 5 {
		t.Fatalf("fail-closed Redis errors counted %v, want 5", got)
	}
	if got := testutil.ToFloat64(open.metrics.RedisErrors.WithLabelValues(FailOpen)); got != 5 {
		t.Fatalf("fail-open Redis errors counted %v, want 5", got)
	}
	srv.Start()
	deadline := time.Now().Add(10 * time.Second)
	for closed.ask(t, "api", desc("user", "erin")).GetOverallCode() != rlsv3.RateLimitResponse_OK {
		if time.Now().After(deadline) {
			t.Fatal("fail-closed did not recover within 10s of Redis coming back")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// A broken edit of the configuration changes nothing; a good one applies.
func TestReloadKeepsTheLastGoodConfiguration(t *testing.T) {
	srv := redistest.Start(t)
	dir := t.TempDir()
	write := func(body string) {
		if err := os.WriteFile(filepath.Join(dir, "api.yaml"), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write(apiLimits)
	cfg, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	r := startReplica(t, srv.Addr(), cfg, newClock(), Options{})
	write("domain: api\ndescriptors:\n  - key: path\n    rate_limit: {unit: fortnight, requests_per_unit: 1}\n")
	if err := r.svc.Reload(dir); err == nil || !strings.Contains(err.Error(), "api.yaml:4") {
		t.Fatalf("a broken edit: %v", err)
	}
	if r.svc.LastError() == nil {
		t.Fatal("the failed reload is not reported")
	}
	if resp := r.ask(t, "api", desc("path", "/x")); resp.GetStatuses()[0].GetCurrentLimit().GetRequestsPerUnit() != 3 {
		t.Fatalf("the last good configuration is gone: %v", resp)
	}
	write(strings.Replace(apiLimits, "requests_per_unit: 3", "requests_per_unit: 7", 1))
	if err := r.svc.Reload(dir); err != nil || r.svc.LastError() != nil {
		t.Fatal(err)
	}
	if resp := r.ask(t, "api", desc("path", "/y")); resp.GetStatuses()[0].GetCurrentLimit().GetRequestsPerUnit() != 7 {
		t.Fatalf("the new configuration did not apply: %v", resp)
	}
	if got := testutil.ToFloat64(r.metrics.Reloads.WithLabelValues("error")); got != 1 {
		t.Fatalf("reload errors counted %v", got)
	}
}

// A Sentinel failover under load: while the master is gone, fail-closed
// answers OVER_LIMIT; once the Sentinels promote the replica, the service
// counts again by itself, without a restart.
func TestSentinelFailoverUnderLoad(t *testing.T) {
	st := redistest.StartSentinel(t, "rl")
	rc, err := redisclient.New(redisclient.Config{Mode: redisclient.ModeSentinel, Addrs: st.Addrs(), MasterName: "rl",
		DialTimeout: 200 * time.Millisecond, ReadTimeout: 200 * time.Millisecond, WriteTimeout: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	r := startReplicaWith(t, rc, mustConfig(t, apiLimits), newClock(), Options{FailureMode: FailClosed})
	var ok, over atomic.Int64
	var lastOK atomic.Int64 // unix nanos of the latest OK
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				// One counter per call: the limit is never reached, so an
				// OVER_LIMIT can only be the failure mode.
				resp, err := r.client.ShouldRateLimit(context.Background(), &rlsv3.RateLimitRequest{Domain: "api",
					Descriptors: []*ratelimitv3.RateLimitDescriptor{desc("user", "w"+strconv.Itoa(w)+"-"+strconv.Itoa(i))}})
				switch {
				case err != nil:
					t.Error(err)
					return
				case resp.GetOverallCode() == rlsv3.RateLimitResponse_OK:
					ok.Add(1)
					lastOK.Store(time.Now().UnixNano())
				default:
					over.Add(1)
				}
			}
		}()
	}
	defer func() { close(stop); wg.Wait() }()
	deadline := time.Now().Add(10 * time.Second)
	for ok.Load() < 100 {
		if time.Now().After(deadline) {
			t.Fatal("no load before the failover")
		}
		time.Sleep(10 * time.Millisecond)
	}
	old, _ := st.MasterAddr(context.Background())
	killed := time.Now()
	st.Master.Kill()
	deadline = killed.Add(10 * time.Second)
	for over.Load() == 0 {
		if time.Now().After(deadline) {
			t.Fatal("no OVER_LIMIT while the master was gone: fail-closed did not apply")
		}
		time.Sleep(10 * time.Millisecond)
	}
	outage := time.Now()
	okAtOutage := ok.Load()
	deadline = killed.Add(40 * time.Second)
	// Counting again: OKs well after the outage was seen, a hundred of them.
	for lastOK.Load() < outage.UnixNano() || ok.Load() < okAtOutage+100 {
		if time.Now().After(deadline) {
			t.Fatalf("not counting again 40s after the master died (OK %d, OVER_LIMIT %d)", ok.Load(), over.Load())
		}
		time.Sleep(20 * time.Millisecond)
	}
	now, _ := st.MasterAddr(context.Background())
	t.Logf("master %s → %s; counting again %s after the kill; %d OK, %d OVER_LIMIT (fail-closed) in all",
		old, now, time.Since(killed).Round(100*time.Millisecond), ok.Load(), over.Load())
	if now == old {
		t.Fatal("the Sentinels did not promote the replica")
	}
	if got := testutil.ToFloat64(r.metrics.RedisErrors.WithLabelValues(FailClosed)); got == 0 {
		t.Fatal("the outage was not counted")
	}
}
