package extauthz

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/meshguard/meshguard/extauthz/decisionlog"
	"github.com/meshguard/meshguard/extauthz/jwt"
	"github.com/meshguard/meshguard/extauthz/policy"
	"github.com/meshguard/meshguard/extauthz/revocation"
	"github.com/meshguard/meshguard/internal/contract"
	"github.com/meshguard/meshguard/internal/demoidp"
	"github.com/meshguard/meshguard/internal/redistest"
)

// benchEnv is an authorizer with the route's own set ("orders", routePolicies
// policies) and otherPolicies spread over other sets of 100 each, which a
// request for "orders" must not pay for. The store has no decision cache
// unless opts add one: the benchmarks measure evaluation.
func benchEnv(b *testing.B, routePolicies, otherPolicies int, opts ...policy.StoreOption) (*checkService, *demoidp.Issuer) {
	b.Helper()
	dir := b.TempDir()
	writeSet := func(set string, n int, offset int) {
		var sb strings.Builder
		for i := range n {
			// Realistic shapes: scoped to a resource and action, with a condition.
			fmt.Fprintf(&sb, "@id(\"p%d\")\npermit(principal in Role::\"r%d\", action == Action::\"POST\", resource == Service::\"svc%d\")\nwhen { context.request.path like \"/api/%d/*\" };\n",
				i, offset+i, offset+i, i)
		}
		p := filepath.Join(dir, "policies", set, "p.cedar")
		_ = os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(sb.String()), 0o644); err != nil {
			b.Fatal(err)
		}
	}
	// The route's set: the permits the benchmark requests hit, plus filler.
	writeSet("orders", max(routePolicies-3, 0), 0)
	extra := `
@id("users-read") permit(principal is User, action == Action::"GET", resource == Service::"orders");
@id("anon-catalog") permit(principal, action == Action::"GET", resource == Service::"orders") when { context.request.path like "/catalog*" };
@id("suspended") forbid(principal in Role::"suspended", action, resource);
`
	if err := os.WriteFile(filepath.Join(dir, "policies", "orders", "base.cedar"), []byte(extra), 0o644); err != nil {
		b.Fatal(err)
	}
	// A rollout candidate for the route: the same policies and one forbid
	// more (BenchmarkCheckRollout).
	filler, err := os.ReadFile(filepath.Join(dir, "policies", "orders", "p.cedar"))
	if err != nil {
		b.Fatal(err)
	}
	_ = os.MkdirAll(filepath.Join(dir, "policies", "orders-v2"), 0o755)
	if err := os.WriteFile(filepath.Join(dir, "policies", "orders-v2", "p.cedar"),
		append(filler, extra+`@id("v2-no-delete") forbid(principal, action == Action::"DELETE", resource);`...), 0o644); err != nil {
		b.Fatal(err)
	}
	for s := 0; s*100 < otherPolicies; s++ {
		writeSet(fmt.Sprintf("other%03d", s), min(100, otherPolicies-s*100), 10000+s*100)
	}
	cfg, store, v, iss := testDeps(b, dir, opts...)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	m := NewMetrics(prometheus.NewRegistry())
	dl := decisionlog.New(io.Discard, 1<<16, m.DecisionDropped.Inc)
	b.Cleanup(func() { _ = dl.Close(context.Background()) })
	a := NewAuthorizer(cfg, store, v, m, dl, log)
	return &checkService{a: a, tr: &tracing{}}, iss
}

// BenchmarkCheck measures the server-side decision path of one Check call
// (attributes → identity → Cedar → response, metrics and decision log
// included; gRPC transport excluded).
func BenchmarkCheck(b *testing.B) {
	for _, other := range []int{0, 1000, 10000} {
		svc, iss := benchEnv(b, 10, other)
		tok, _ := iss.Mint(demoidp.Claims(testIssuer, "alice", []string{testAudience}, []string{"staff"}, time.Hour))
		forged := tok[:len(tok)-6] + "AAAAAA"
		reqs := map[string]creq{
			"anonymous-allow":  {method: "GET", path: "/catalog/1", ext: ordersExt},
			"anonymous-deny":   {method: "DELETE", path: "/orders/1", ext: ordersExt},
			"jwt-cached-allow": {method: "GET", path: "/orders/1", token: tok, ext: ordersExt},
			"jwt-forged-deny":  {method: "GET", path: "/orders/1", token: forged, ext: ordersExt},
			"workload-deny":    {method: "GET", path: "/orders/1", peer: "spiffe://meshguard.local/ns/demo/sa/frontend", ext: ordersExt},
		}
		for _, name := range []string{"anonymous-allow", "anonymous-deny", "jwt-cached-allow", "jwt-forged-deny", "workload-deny"} {
			req := reqs[name].proto()
			b.Run(fmt.Sprintf("%s/other=%d", name, other), func(b *testing.B) {
				ctx := context.Background()
				_, _ = svc.Check(ctx, req) // warm the token cache
				b.ReportAllocs()
				for b.Loop() {
					_, _ = svc.Check(ctx, req)
				}
			})
		}
	}
}

// BenchmarkCheckRouteSetSize shows the cost of the route's own set, which
// grows linearly (cedar-go evaluates every policy of the set).
func BenchmarkCheckRouteSetSize(b *testing.B) {
	for _, n := range []int{10, 100, 1000} {
		svc, iss := benchEnv(b, n, 0)
		tok, _ := iss.Mint(demoidp.Claims(testIssuer, "alice", []string{testAudience}, []string{"staff"}, time.Hour))
		req := creq{method: "GET", path: "/orders/1", token: tok, ext: ordersExt}.proto()
		b.Run(fmt.Sprintf("route-set=%d", n), func(b *testing.B) {
			ctx := context.Background()
			_, _ = svc.Check(ctx, req)
			b.ReportAllocs()
			for b.Loop() {
				_, _ = svc.Check(ctx, req)
			}
		})
	}
}

// BenchmarkCheckCached is BenchmarkCheck with the decision cache on, as a
// server runs by default: every request after the first is a cache hit
// (a forged token is refused before evaluation, so it has none).
func BenchmarkCheckCached(b *testing.B) {
	svc, iss := benchEnv(b, 10, 0, policy.WithResultCache(DefaultDecisionCacheSize))
	tok, _ := iss.Mint(demoidp.Claims(testIssuer, "alice", []string{testAudience}, []string{"staff"}, time.Hour))
	for _, tc := range []struct {
		name string
		req  creq
	}{
		{"anonymous-allow", creq{method: "GET", path: "/catalog/1", ext: ordersExt}},
		{"anonymous-deny", creq{method: "DELETE", path: "/orders/1", ext: ordersExt}},
		{"jwt-cached-allow", creq{method: "GET", path: "/orders/1", token: tok, ext: ordersExt}},
		{"workload-deny", creq{method: "GET", path: "/orders/1", peer: "spiffe://meshguard.local/ns/demo/sa/frontend", ext: ordersExt}},
	} {
		req := tc.req.proto()
		b.Run(tc.name, func(b *testing.B) {
			ctx := context.Background()
			_, _ = svc.Check(ctx, req) // fill both caches
			b.ReportAllocs()
			for b.Loop() {
				_, _ = svc.Check(ctx, req)
			}
		})
	}
}

// BenchmarkCheckUniquePaths is the decision cache's worst case: every
// request has a path the cache has not seen (65,536 of them in turn, 8
// times the cache), so each pays for its key and its insertion on top of
// the evaluation. cache=off is the same requests without the cache.
func BenchmarkCheckUniquePaths(b *testing.B) {
	paths := make([]string, 1<<16)
	for i := range paths {
		paths[i] = fmt.Sprintf("/catalog/%d", i)
	}
	for _, tc := range []struct {
		name string
		opts []policy.StoreOption
	}{{"cache=off", nil}, {"cache=on", []policy.StoreOption{policy.WithResultCache(DefaultDecisionCacheSize)}}} {
		svc, _ := benchEnv(b, 10, 0, tc.opts...)
		req := creq{method: "GET", path: "/catalog/0", ext: ordersExt}.proto()
		http := req.GetAttributes().GetRequest().GetHttp()
		b.Run(tc.name, func(b *testing.B) {
			ctx := context.Background()
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				http.Path = paths[i&(len(paths)-1)]
				i++
				_, _ = svc.Check(ctx, req)
			}
		})
	}
}

// BenchmarkDecide measures the decision alone: attributes in, decision out
// (identity, Cedar request, evaluation). No response shaping, metrics or log.
func BenchmarkDecide(b *testing.B) {
	for _, other := range []int{10, 1000, 10000} {
		svc, iss := benchEnv(b, 10, other)
		tok, _ := iss.Mint(demoidp.Claims(testIssuer, "alice", []string{testAudience}, []string{"staff"}, time.Hour))
		for _, tc := range []struct {
			name string
			req  creq
		}{
			{"anonymous-allow", creq{method: "GET", path: "/catalog/1", ext: ordersExt}},
			{"jwt-cached-allow", creq{method: "GET", path: "/orders/1", token: tok, ext: ordersExt}},
		} {
			attrs, err := FromCheckRequest(tc.req.proto())
			if err != nil {
				b.Fatal(err)
			}
			b.Run(fmt.Sprintf("%s/other=%d", tc.name, other), func(b *testing.B) {
				ctx := context.Background()
				if d := svc.a.Decide(ctx, attrs); !d.Allow {
					b.Fatalf("benchmark request denied: %s", d.Reason)
				}
				b.ReportAllocs()
				for b.Loop() {
					_ = svc.a.Decide(ctx, attrs)
				}
			})
		}
	}
}

// BenchmarkCheckRollout compares the Check path of a route in a rollout
// with the same route enforcing its set alone. At shadow and canary both
// sets are evaluated (the controller's gates count the changed
// decisions); rollout=enforce is the plain route, the baseline. Run with
// and without the decision cache, which a server has on by default.
func BenchmarkCheckRollout(b *testing.B) {
	for _, cache := range []struct {
		name string
		opts []policy.StoreOption
	}{{"cache=off", nil}, {"cache=on", []policy.StoreOption{policy.WithResultCache(DefaultDecisionCacheSize)}}} {
		svc, iss := benchEnv(b, 10, 0, cache.opts...)
		tok, _ := iss.Mint(demoidp.Claims(testIssuer, "alice", []string{testAudience}, []string{"staff"}, time.Hour))
		{
			// The first benchmark after an environment is built pays for
			// its garbage: let none of the compared ones be first.
			warm := creq{method: "GET", path: "/orders/1", token: tok, ext: ordersExt}.proto()
			b.Run("warmup", func(b *testing.B) {
				for b.Loop() {
					_, _ = svc.Check(context.Background(), warm)
				}
			})
		}
		step := func(stage, canary string) map[string]string {
			m := maps.Clone(ordersExt)
			if stage != "" {
				m[ExtCandidate], m[ExtStage], m[ExtRollout] = "orders-v2", stage, "bench.1"
			}
			if canary != "" {
				m[ExtCanary] = canary
			}
			return m
		}
		for _, st := range []struct {
			name string
			ext  map[string]string
		}{{"enforce", step("", "")}, {"shadow", step(contract.StageShadow, "")}, {"canary10", step(contract.StageCanary, "10")}} {
			for _, rq := range []struct {
				name string
				req  creq
			}{
				{"jwt-cached-allow", creq{method: "GET", path: "/orders/1", token: tok, ext: st.ext}},
				{"anonymous-allow", creq{method: "GET", path: "/catalog/1", ext: st.ext}},
			} {
				req := rq.req.proto()
				b.Run(fmt.Sprintf("%s/rollout=%s/%s", cache.name, st.name, rq.name), func(b *testing.B) {
					ctx := context.Background()
					if r := summarize(mustCheck(b, svc, req)); r.status != 200 {
						b.Fatalf("benchmark request refused: %d %v", r.status, r.meta)
					}
					settle(svc)
					b.ReportAllocs()
					for b.Loop() {
						_, _ = svc.Check(ctx, req)
					}
				})
			}
		}
	}
}

func mustCheck(b *testing.B, svc *checkService, req *authv3.CheckRequest) *authv3.CheckResponse {
	b.Helper()
	resp, err := svc.Check(context.Background(), req)
	if err != nil {
		b.Fatal(err)
	}
	return resp
}

// BenchmarkCheckRevocation is the Check of a cached token whose provider
// checks the revocation list (a synced list on a real Redis, the token not
// revoked) against the same Check without the list: the list is looked up
// in memory, no Redis round trip.
func BenchmarkCheckRevocation(b *testing.B) {
	srv := redistest.Start(b)
	for _, revoked := range []bool{false, true} {
		name := "revocation=off"
		if revoked {
			name = "revocation=on"
		}
		svc, iss := benchEnv(b, 10, 0)
		if revoked {
			rc := redis.NewClient(&redis.Options{Addr: srv.Addr(), DisableIdentity: true})
			b.Cleanup(func() { _ = rc.Close() })
			l := revocation.New(rc, revocation.Options{Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan struct{})
			go func() { l.Run(ctx); close(done) }()
			b.Cleanup(func() { cancel(); <-done })
			for !l.Status().Synced {
				time.Sleep(10 * time.Millisecond)
			}
			svc.a.revocations = l
			svc.a.revocation = map[string]*revocationCheck{"t": newRevocationCheck("t", jwt.OnUnavailableDeny, svc.a.metrics)}
		}
		tok, _ := iss.Mint(demoidp.Claims(testIssuer, "alice", []string{testAudience}, []string{"staff"}, time.Hour))
		req := creq{method: "GET", path: "/orders/1", token: tok, ext: ordersExt}.proto()
		b.Run(name, func(b *testing.B) {
			ctx := context.Background()
			if r := summarize(mustCheck(b, svc, req)); r.status != 200 {
				b.Fatalf("refused: %d", r.status)
			}
			settle(svc)
			b.ReportAllocs()
			for b.Loop() {
				_, _ = svc.Check(ctx, req)
			}
		})
	}
}

// settle lets no variant pay for another's garbage or decision-log lines
// (the log writer drops entries once its queue is full, which makes a
// later variant look cheaper): it waits for the log to drain and collects.
func settle(svc *checkService) {
	for svc.a.dlog.Pending() > 0 {
		time.Sleep(time.Millisecond)
	}
	runtime.GC()
}
