package extauthz

import (
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/meshguard/meshguard/extauthz/policy"
	"github.com/meshguard/meshguard/internal/demoidp"
)

// cacheEnv is an authorizer whose store caches results, over policies and
// entities the test rewrites.
type cacheEnv struct {
	t     *testing.T
	dir   string
	store *policy.Store
	a     *Authorizer
	m     *Metrics
	iss   *demoidp.Issuer
}

func newCacheEnv(t *testing.T, policies, entities string) *cacheEnv {
	t.Helper()
	e := &cacheEnv{t: t, dir: t.TempDir()}
	e.write("policies/orders/p.cedar", policies)
	e.write("entities.json", entities)
	cfg, store, v, iss := testDeps(t, e.dir, policy.WithResultCache(64))
	cfg.RequestHeaders = []string{"x-tenant", "x-request-id"}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	e.store = store
	e.m = NewMetrics(prometheus.NewRegistry())
	e.a = NewAuthorizer(cfg, e.store, v, e.m, nil, log)
	e.iss = iss
	return e
}

func (e *cacheEnv) write(name, text string) {
	e.t.Helper()
	p := filepath.Join(e.dir, name)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		e.t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
		e.t.Fatal(err)
	}
}

func (e *cacheEnv) reload() {
	e.t.Helper()
	if err := e.store.Reload(); err != nil {
		e.t.Fatal(err)
	}
}

// decide runs c through the authorizer and checks the outcome.
func (e *cacheEnv) decide(c creq, wantStatus int) Decision {
	e.t.Helper()
	attrs, err := FromCheckRequest(c.proto())
	if err != nil {
		e.t.Fatal(err)
	}
	d := e.a.Decide(context.Background(), attrs)
	if d.Status != wantStatus {
		e.t.Fatalf("%s %s: status %d (%s, policies %v), want %d", c.method, c.path, d.Status, d.Reason, d.Policies, wantStatus)
	}
	return d
}

func (e *cacheEnv) counts() (hit, miss, bypass float64) {
	return testutil.ToFloat64(e.m.DecisionCache.WithLabelValues("hit")),
		testutil.ToFloat64(e.m.DecisionCache.WithLabelValues("miss")),
		testutil.ToFloat64(e.m.DecisionCache.WithLabelValues("bypass"))
}

func (e *cacheEnv) wantCounts(hit, miss, bypass float64) {
	e.t.Helper()
	if h, m, b := e.counts(); h != hit || m != miss || b != bypass {
		e.t.Fatalf("cache hit/miss/bypass = %v/%v/%v, want %v/%v/%v", h, m, b, hit, miss, bypass)
	}
}

const cachePolicies = `
@id("open") permit (principal, action == Action::"GET", resource) when { context.request.path like "/open*" };
@id("tenant") forbid (principal, action, resource) when { context.request.headers has "x-tenant" && context.request.headers["x-tenant"] == "evil" };
@id("staff") permit (principal in Role::"staff", action, resource);
@id("alice") permit (principal, action, resource) when { context has jwt && context.jwt.sub == "alice" };
`

// A cached result serves the requests that build the same Cedar request,
// and only those: a request that differs in anything the policies read is
// evaluated anew.
func TestDecisionCacheServesOnlyIdenticalEvaluations(t *testing.T) {
	e := newCacheEnv(t, cachePolicies, `[]`)
	open := creq{method: "GET", path: "/open/1", ext: ordersExt}
	first := e.decide(open, 200)
	e.wantCounts(0, 1, 0)
	// Another request id and source port: not read by the policies.
	again := open
	again.headers = map[string]string{"x-request-id": "req-2"}
	second := e.decide(again, 200)
	e.wantCounts(1, 1, 0)
	if first.ID == second.ID || strings.Join(second.Policies, ",") != "orders/p.cedar#open" {
		t.Fatalf("a cached result must still give a new decision with its policies: %+v", second)
	}
	// Each of these differs from the cached allow in something a policy reads.
	e.decide(creq{method: "GET", path: "/closed", ext: ordersExt}, 403)
	e.decide(creq{method: "POST", path: "/open/1", ext: ordersExt}, 403)
	e.decide(creq{method: "GET", path: "/open/1", headers: map[string]string{"x-tenant": "evil"}, ext: ordersExt}, 403)
	e.decide(creq{method: "GET", path: "/open/1", ext: ext(ExtService, "orders", ExtPolicy, "orders", ExtAction, "delete")}, 403)
	e.wantCounts(1, 5, 0)

	// Users: the claims are in the key through the token.
	alice, _ := e.iss.Mint(demoidp.Claims(testIssuer, "alice", []string{testAudience}, nil, time.Hour))
	bob, _ := e.iss.Mint(demoidp.Claims(testIssuer, "bob", []string{testAudience}, nil, time.Hour))
	staff, _ := e.iss.Mint(demoidp.Claims(testIssuer, "bob", []string{testAudience}, []string{"staff"}, time.Hour))
	e.decide(creq{method: "POST", path: "/x", token: alice, ext: ordersExt}, 200)
	e.decide(creq{method: "POST", path: "/x", token: bob, ext: ordersExt}, 403)
	e.decide(creq{method: "POST", path: "/x", token: staff, ext: ordersExt}, 200)
	e.decide(creq{method: "POST", path: "/x", token: bob, ext: ordersExt}, 403)
	e.wantCounts(2, 8, 0)

	// A key over the limit is evaluated without the cache.
	e.decide(creq{method: "GET", path: "/open/" + strings.Repeat("a", maxEvalKey), ext: ordersExt}, 200)
	e.wantCounts(2, 8, 1)
	// A candidate set evaluated beside the route's own goes through the
	// cache as its own evaluation: here it is the same set, so both are
	// served by the result cached for the first request.
	e.decide(creq{method: "GET", path: "/open/1", ext: ext(ExtService, "orders", ExtPolicy, "orders", ExtShadow, "orders")}, 200)
	e.wantCounts(4, 8, 1)
}

// Results never outlive the load they were computed under: a policy or
// entities change is enforced on the next request.
func TestDecisionCacheIsDroppedOnReload(t *testing.T) {
	workload := "spiffe://meshguard.local/ns/demo/sa/frontend"
	staffEntities := `[{"uid": {"type": "Workload", "id": "` + workload + `"}, "attrs": {}, "parents": [{"type": "Role", "id": "staff"}]}]`
	e := newCacheEnv(t, cachePolicies, staffEntities)
	open := creq{method: "GET", path: "/open/1", ext: ordersExt}
	wl := creq{method: "DELETE", path: "/orders/1", peer: workload, ext: ordersExt}
	e.decide(open, 200)
	e.decide(wl, 200)
	e.decide(open, 200)
	e.decide(wl, 200)
	e.wantCounts(2, 2, 0)

	if n := e.a.Status().CachedDecisions; n != 2 {
		t.Fatalf("status reports %d cached decisions, want 2", n)
	}
	e.write("policies/orders/p.cedar", cachePolicies+`@id("closed") forbid (principal, action, resource) when { context.request.path == "/open/1" };`)
	e.reload()
	if d := e.decide(open, 403); strings.Join(d.Policies, ",") != "orders/p.cedar#closed" {
		t.Fatalf("after the policy change: %+v", d)
	}
	// The entities change alone: the policy files are as they were.
	e.write("entities.json", `[]`)
	e.reload()
	e.decide(wl, 403)
	e.wantCounts(2, 4, 0)
	if n := e.a.Status().CachedDecisions; n != 1 {
		t.Fatalf("status reports %d cached decisions after the reload, want 1", n)
	}
}

// Without the cache (decision_cache_size < 0) every request is evaluated
// and nothing is counted.
func TestDecisionCacheDisabled(t *testing.T) {
	cfg := &Config{DecisionCacheSize: -1, Policies: "p"}
	cfg.applyDefaults()
	if cfg.DecisionCacheSize != -1 || policy.NewResults(cfg.DecisionCacheSize) != nil {
		t.Fatal("a negative size must disable the cache")
	}
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "policies", "orders"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "policies", "orders", "p.cedar"), []byte(cachePolicies), 0o644); err != nil {
		t.Fatal(err)
	}
	c, store, v, _ := testDeps(t, dir, policy.WithResultCache(cfg.DecisionCacheSize)) // as NewServer builds it
	m := NewMetrics(prometheus.NewRegistry())
	a := NewAuthorizer(c, store, v, m, nil, nil)
	attrs, _ := FromCheckRequest(creq{method: "GET", path: "/open/1", ext: ordersExt}.proto())
	for range 3 {
		if d := a.Decide(context.Background(), attrs); !d.Allow {
			t.Fatalf("denied: %+v", d)
		}
	}
	for _, r := range []string{"hit", "miss", "bypass"} {
		if n := testutil.ToFloat64(m.DecisionCache.WithLabelValues(r)); n != 0 {
			t.Fatalf("%s = %v without a cache", r, n)
		}
	}
}

// Deciding while the policies reload, from many goroutines: no data race
// (go test -race), and once the last reload has returned, every decision
// follows the last policies, whatever the cache held before.
func TestDecisionCacheUnderConcurrentReloads(t *testing.T) {
	e := newCacheEnv(t, cachePolicies, `[]`)
	forbid := cachePolicies + `@id("closed") forbid (principal, action, resource) when { context.request.path == "/open/1" };`
	attrs, err := FromCheckRequest(creq{method: "GET", path: "/open/1", ext: ordersExt}.proto())
	if err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
					_ = e.a.Decide(context.Background(), attrs)
				}
			}
		})
	}
	for i := range 20 {
		if i%2 == 0 {
			e.write("policies/orders/p.cedar", forbid)
		} else {
			e.write("policies/orders/p.cedar", cachePolicies)
		}
		e.reload()
	}
	close(stop)
	wg.Wait()
	// The last write restored the permissive policies.
	if d := e.a.Decide(context.Background(), attrs); !d.Allow {
		t.Fatalf("after the last reload: %+v", d)
	}
	e.write("policies/orders/p.cedar", forbid)
	e.reload()
	if d := e.a.Decide(context.Background(), attrs); d.Allow {
		t.Fatalf("a reload to a forbid was not enforced at once: %+v", d)
	}
}
