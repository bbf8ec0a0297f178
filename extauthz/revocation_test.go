package extauthz

import (
	"bytes"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/meshguard/meshguard/extauthz/jwt"
	"github.com/meshguard/meshguard/internal/demoidp"
	"github.com/meshguard/meshguard/internal/redisclient"
	"github.com/meshguard/meshguard/internal/redistest"
)

var readAll = map[string]string{"orders/read.cedar": `permit (principal is User, action, resource);`}

// revocationReplicas are two authorizers sharing one Redis and one token
// issuer, their provider checking revocations.
func revocationReplicas(t *testing.T, srv *redistest.Server, onUnavailable string) (*harness, *harness) {
	t.Helper()
	withRedis := func(c *Config) {
		c.Redis = &redisclient.Config{Addrs: []string{srv.Addr()}, ReadTimeout: 300 * time.Millisecond, DialTimeout: 300 * time.Millisecond}
		c.JWT.Providers[0].Revocation = &jwt.RevocationConfig{OnUnavailable: onUnavailable}
	}
	a := newHarness(t, readAll, withRedis)
	cfg := *a.cfg
	cfg.Redis = &redisclient.Config{Addrs: []string{srv.Addr()}, ReadTimeout: 300 * time.Millisecond, DialTimeout: 300 * time.Millisecond}
	cfg.DecisionLog = DecisionLogConfig{}
	b := startServer(t, &cfg)
	b.dir, b.issuer = a.dir, a.issuer
	for _, h := range []*harness{a, b} {
		eventually(t, "the revocation list in sync", func() bool {
			st := h.srv.Authz.Status().Revocations
			return st != nil && st.Synced
		})
	}
	return a, b
}

func (h *harness) mint(sub string, claims map[string]any) string {
	h.t.Helper()
	c := demoidp.Claims(testIssuer, sub, []string{testAudience}, nil, time.Hour)
	for k, v := range claims {
		c[k] = v
	}
	tok, err := h.issuer.Mint(c)
	if err != nil {
		h.t.Fatal(err)
	}
	return tok
}

// revoke posts a revocation to h's admin listener.
func (h *harness) revoke(body string, token string) (int, string) {
	h.t.Helper()
	req, _ := http.NewRequest(http.MethodPost, "http://"+h.srv.AdminAddr()+"/v1/revocations", strings.NewReader(body))
	req.Header.Set("content-type", "application/json")
	if token != "" {
		req.Header.Set("authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	defer resp.Body.Close()
	var b bytes.Buffer
	_, _ = b.ReadFrom(resp.Body)
	return resp.StatusCode, b.String()
}

var readOrders = map[string]string{ExtService: "orders", ExtPolicy: "orders"}

func TestARevokedTokenIsRefusedByEveryReplicaWithinASecond(t *testing.T) {
	srv := redistest.Start(t)
	a, b := revocationReplicas(t, srv, "")
	t1 := a.mint("alice", map[string]any{"jti": "t-1", "sid": "s-1"})
	t2 := a.mint("alice", map[string]any{"jti": "t-2"})
	for _, h := range []*harness{a, b} {
		if r := h.decide(creq{method: "GET", path: "/o/1", token: t1, ext: readOrders}); r.status != 200 {
			t.Fatalf("before: %d", r.status)
		}
	}
	if code, body := a.revoke(`{"jti": "t-1", "reason": "leaked"}`, ""); code != 200 {
		t.Fatalf("revoke: %d %s", code, body)
	}
	start := time.Now()
	eventually(t, "the other replica to refuse the token", func() bool {
		return b.decide(creq{method: "GET", path: "/o/1", token: t1, ext: readOrders}).status == 401
	})
	if took := time.Since(start); took > time.Second {
		t.Fatalf("the other replica refused the token after %s, want within 1s", took)
	} else {
		t.Logf("revocation effective on the other replica after %s", took)
	}
	r := a.decide(creq{method: "GET", path: "/o/1", token: t1, ext: readOrders})
	if r.status != 401 || !strings.Contains(r.headers["www-authenticate"], `error="invalid_token"`) {
		t.Fatalf("a revoked token: %d %v", r.status, r.headers)
	}
	if r := b.decide(creq{method: "GET", path: "/o/1", token: t2, ext: readOrders}); r.status != 200 {
		t.Fatalf("another token of the subject: %d", r.status)
	}
	if got := testutil.ToFloat64(a.srv.Authz.metrics.Revocation.WithLabelValues("test", "revoked")); got < 1 {
		t.Fatalf("revoked checks counted %v", got)
	}

	// A session: every token that carries it.
	t3 := a.mint("bob", map[string]any{"jti": "t-3", "sid": "s-2"})
	if code, body := b.revoke(`{"sid": "s-2"}`, ""); code != 200 {
		t.Fatalf("revoke sid: %d %s", code, body)
	}
	eventually(t, "the session's token refused", func() bool {
		return a.decide(creq{method: "GET", path: "/o/1", token: t3, ext: readOrders}).status == 401
	})

	// A subject, before a cutoff: its older tokens, not a newer login.
	cutoff := time.Now().Add(-time.Minute).Truncate(time.Second)
	old := a.mint("carol", map[string]any{"iat": cutoff.Add(-time.Second).Unix()})
	newer := a.mint("carol", map[string]any{"iat": cutoff.Add(time.Second).Unix()})
	if code, body := a.revoke(`{"sub": "carol", "before": "`+cutoff.Format(time.RFC3339)+`"}`, ""); code != 200 {
		t.Fatalf("revoke sub: %d %s", code, body)
	}
	eventually(t, "the subject's older token refused", func() bool {
		return b.decide(creq{method: "GET", path: "/o/1", token: old, ext: readOrders}).status == 401
	})
	if r := b.decide(creq{method: "GET", path: "/o/1", token: newer, ext: readOrders}); r.status != 200 {
		t.Fatalf("a login after the cutoff: %d", r.status)
	}
}

// Redis lost: a provider that denies meanwhile refuses its tokens (403,
// fail closed), one that allows lets them through; both are counted, and
// both recover by themselves.
func TestRevocationListUnavailableAppliesTheProvidersFallback(t *testing.T) {
	for _, c := range []struct {
		fallback string
		status   int
		result   string
	}{{"", 403, "unavailable_denied"}, {"deny", 403, "unavailable_denied"}, {"allow", 200, "unavailable_allowed"}} {
		t.Run("on_unavailable="+c.fallback, func(t *testing.T) {
			srv := redistest.Start(t)
			a, _ := revocationReplicas(t, srv, c.fallback)
			tok := a.mint("dave", map[string]any{"jti": "d-1"})
			srv.Kill()
			eventually(t, "the list to be untrusted", func() bool { return !a.srv.Authz.Status().Revocations.Synced })
			r := a.decide(creq{method: "GET", path: "/o/1", token: tok, ext: readOrders})
			if r.status != c.status {
				t.Fatalf("without Redis: %d, want %d", r.status, c.status)
			}
			if c.status == 403 && r.meta["reason"] != ReasonRevocationUnavailable {
				t.Fatalf("reason %v", r.meta["reason"])
			}
			if got := testutil.ToFloat64(a.srv.Authz.metrics.Revocation.WithLabelValues("test", c.result)); got != 1 {
				t.Fatalf("%s counted %v", c.result, got)
			}
			srv.Start()
			eventually(t, "the token allowed again", func() bool {
				return a.decide(creq{method: "GET", path: "/o/1", token: tok, ext: readOrders}).status == 200
			})
		})
	}
}

func TestRevocationCommandsAreCheckedAndAuthenticated(t *testing.T) {
	srv := redistest.Start(t)
	a, _ := revocationReplicas(t, srv, "")
	for _, c := range []struct {
		name, body string
		want       int
		says       string
	}{
		{"none of jti, sid and sub", `{}`, 400, "exactly one of jti, sid and sub"},
		{"two of them", `{"jti": "a", "sub": "b"}`, 400, "exactly one"},
		{"before without sub", `{"jti": "a", "before": "2026-01-01T00:00:00Z"}`, 400, "before: only with sub"},
		{"a bad ttl", `{"jti": "a", "ttl": "soon"}`, 400, "ttl"},
		{"expires in the past", `{"jti": "a", "expires": "2020-01-01T00:00:00Z"}`, 400, "must be in the future"},
		{"expires and ttl", `{"jti": "a", "expires": "2099-01-01T00:00:00Z", "ttl": "1h"}`, 400, "not both"},
		{"an unknown field", `{"jti": "a", "everyone": true}`, 400, "unknown field"},
		{"not JSON", `jti=a`, 400, "body"},
	} {
		if code, body := a.revoke(c.body, ""); code != c.want || !strings.Contains(body, c.says) {
			t.Errorf("%s: %d %s, want %d mentioning %q", c.name, code, body, c.want, c.says)
		}
	}

	// With an admin token configured, commands need it.
	dir := t.TempDir()
	tokFile := filepath.Join(dir, "admin-token")
	if err := os.WriteFile(tokFile, []byte("an-admin-token-of-some-length\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := *a.cfg
	cfg.Redis = &redisclient.Config{Addrs: []string{srv.Addr()}}
	cfg.AdminTokenFile = tokFile
	cfg.DecisionLog = DecisionLogConfig{}
	h := startServer(t, &cfg)
	for _, c := range []struct {
		token string
		want  int
	}{{"", 401}, {"an-admin-token-of-some-lengtH", 401}, {"an-admin-token", 401}, {"an-admin-token-of-some-length", 200}} {
		if code, body := h.revoke(`{"jti": "z"}`, c.token); code != c.want {
			t.Errorf("token %q: %d %s, want %d", c.token, code, body, c.want)
		}
	}
	// Reading the list's state needs no token.
	if code, body := h.get("/v1/revocations"); code != 200 || !strings.Contains(body, `"synced"`) {
		t.Fatalf("GET /v1/revocations: %d %s", code, body)
	}
	var st AdminStatus
	_, body := h.get("/v1/status")
	if err := json.Unmarshal([]byte(body), &st); err != nil || st.Revocations == nil {
		t.Fatalf("status: %v %s", err, body)
	}
}

func TestAProviderCheckingRevocationsNeedsRedis(t *testing.T) {
	cfg := Config{Policies: "p", JWT: JWTConfig{Providers: []jwt.ProviderConfig{{Name: "p", Issuer: "https://i", Audiences: []string{"a"},
		JWKSFile: "k", Revocation: &jwt.RevocationConfig{}}}}}
	cfg.applyDefaults()
	if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), "jwt.providers[0].revocation: needs the redis block") {
		t.Fatalf("err = %v", err)
	}
	cfg.JWT.Providers[0].Revocation.OnUnavailable = "maybe"
	if err := cfg.JWT.Providers[0].Validate(); err == nil || !strings.Contains(err.Error(), `revocation.on_unavailable "maybe"`) {
		t.Fatalf("err = %v", err)
	}
}
