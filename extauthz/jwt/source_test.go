package jwt

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

// idp is a test OpenID provider on loopback that serves whatever JWKS it is given.
type idp struct {
	srv       *httptest.Server
	mu        sync.Mutex
	jwks      []byte
	issuer    string // issuer named in the discovery document; defaults to the server URL
	jwksHits  atomic.Int32
	discHits  atomic.Int32
	jwksDelay time.Duration
}

func newIDP(t *testing.T, jwks []byte) *idp {
	p := &idp{jwks: jwks}
	mux := http.NewServeMux()
	mux.HandleFunc("/.well-known/openid-configuration", func(w http.ResponseWriter, r *http.Request) {
		p.discHits.Add(1)
		iss := p.issuer
		if iss == "" {
			iss = p.srv.URL
		}
		_ = json.NewEncoder(w).Encode(map[string]string{"issuer": iss, "jwks_uri": p.srv.URL + "/keys"})
	})
	mux.HandleFunc("/keys", func(w http.ResponseWriter, r *http.Request) {
		p.jwksHits.Add(1)
		if p.jwksDelay > 0 {
			select {
			case <-time.After(p.jwksDelay):
			case <-r.Context().Done():
				return
			}
		}
		p.mu.Lock()
		defer p.mu.Unlock()
		_, _ = w.Write(p.jwks)
	})
	p.srv = httptest.NewServer(mux)
	t.Cleanup(p.srv.Close)
	return p
}

func (p *idp) setJWKS(b []byte) {
	p.mu.Lock()
	p.jwks = b
	p.mu.Unlock()
}

func TestDiscoveryFetchesKeys(t *testing.T) {
	k := getKeys(t)
	p := newIDP(t, jwksJSON(t, k))
	now := &clock{t: time.Unix(1_800_000_000, 0)}
	v, err := New([]ProviderConfig{{Name: "idp", Issuer: p.srv.URL, Audiences: []string{"orders"}}}, Options{Now: now.Now})
	if err != nil {
		t.Fatal(err)
	}
	if v.Ready() {
		t.Fatal("ready before any fetch")
	}
	tok := sign(t, jose.ES256, k.ec256, "ec256", claimsAt(now.Now(), func(c map[string]any) { c["iss"] = p.srv.URL }), nil)
	if _, err := v.Verify(context.Background(), tok); err != nil {
		t.Fatalf("verify through discovery: %v", err)
	}
	if !v.Ready() || p.discHits.Load() != 1 || p.jwksHits.Load() != 1 {
		t.Fatalf("ready=%v discovery hits=%d jwks hits=%d", v.Ready(), p.discHits.Load(), p.jwksHits.Load())
	}
}

func TestDiscoveryIssuerMismatchIsRefused(t *testing.T) {
	k := getKeys(t)
	p := newIDP(t, jwksJSON(t, k))
	p.issuer = "https://someone-else.test"
	now := &clock{t: time.Unix(1_800_000_000, 0)}
	v, err := New([]ProviderConfig{{Name: "idp", Issuer: p.srv.URL, Audiences: []string{"orders"}}}, Options{Now: now.Now})
	if err != nil {
		t.Fatal(err)
	}
	tok := sign(t, jose.ES256, k.ec256, "ec256", claimsAt(now.Now(), func(c map[string]any) { c["iss"] = p.srv.URL }), nil)
	if _, err := v.Verify(context.Background(), tok); ReasonOf(err) != ReasonKeysUnavailable {
		t.Fatalf("err = %v, want keys_unavailable", err)
	}
	if p.jwksHits.Load() != 0 {
		t.Fatal("JWKS fetched from a discovery document with the wrong issuer")
	}
}

func TestUnknownKidRefetchIsRateLimited(t *testing.T) {
	k := getKeys(t)
	first, _ := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &k.rsa.PublicKey, KeyID: "old"}}})
	p := newIDP(t, first)
	now := &clock{t: time.Unix(1_800_000_000, 0)}
	cfg := ProviderConfig{Name: "idp", Issuer: testIssuer, Audiences: []string{"orders"},
		JWKSURI: p.srv.URL + "/keys", MinRefetchInterval: 30 * time.Second}
	v, err := New([]ProviderConfig{cfg}, Options{Now: now.Now})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	old := sign(t, jose.RS256, k.rsa, "old", claimsAt(now.Now(), nil), nil)
	if _, err := v.Verify(ctx, old); err != nil {
		t.Fatal(err)
	}
	if got := p.jwksHits.Load(); got != 1 {
		t.Fatalf("jwks hits = %d, want 1", got)
	}

	// The issuer rotates to a new kid after our fetch.
	now.Advance(time.Minute)
	rotated, _ := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{
		{Key: &k.rsa.PublicKey, KeyID: "old"}, {Key: &k.ec256.PublicKey, KeyID: "new"}}})
	p.setJWKS(rotated)
	newTok := sign(t, jose.ES256, k.ec256, "new", claimsAt(now.Now(), nil), nil)
	if _, err := v.Verify(ctx, newTok); err != nil {
		t.Fatalf("token with the rotated kid refused: %v", err)
	}
	if got := p.jwksHits.Load(); got != 2 {
		t.Fatalf("jwks hits = %d, want 2 (one refetch for the new kid)", got)
	}

	// A flood of forged kids within the interval causes no fetch at all.
	for i := range 50 {
		forged := sign(t, jose.RS256, k.other, "forged-"+strings.Repeat("x", i), claimsAt(now.Now(), nil), nil)
		if _, err := v.Verify(ctx, forged); ReasonOf(err) != ReasonUnknownKey {
			t.Fatalf("forged kid: %v", err)
		}
	}
	if got := p.jwksHits.Load(); got != 2 {
		t.Fatalf("jwks hits = %d after forged kids, want still 2", got)
	}
	now.Advance(31 * time.Second)
	_, _ = v.Verify(ctx, sign(t, jose.RS256, k.other, "forged-again", claimsAt(now.Now(), nil), nil))
	if got := p.jwksHits.Load(); got != 3 {
		t.Fatalf("jwks hits = %d after the interval, want 3", got)
	}
}

func TestRefetchHonoursRequestDeadline(t *testing.T) {
	k := getKeys(t)
	p := newIDP(t, jwksJSON(t, k))
	p.jwksDelay = 5 * time.Second
	now := &clock{t: time.Unix(1_800_000_000, 0)}
	v, err := New([]ProviderConfig{{Name: "idp", Issuer: testIssuer, Audiences: []string{"orders"}, JWKSURI: p.srv.URL + "/keys", FetchTimeout: time.Second}},
		Options{Now: now.Now})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	_, err = v.Verify(ctx, sign(t, jose.RS256, k.rsa, "rsa", claimsAt(now.Now(), nil), nil))
	if ReasonOf(err) != ReasonKeysUnavailable {
		t.Fatalf("err = %v, want keys_unavailable", err)
	}
	if ctx.Err() == nil {
		t.Fatal("Verify returned before the deadline without keys: the refetch did not wait for the fetch")
	}
}

func TestJWKSFileReload(t *testing.T) {
	k := getKeys(t)
	dir := t.TempDir()
	only, _ := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &k.rsa.PublicKey, KeyID: "rsa"}}})
	path := writeJWKS(t, dir, only)
	now := &clock{t: time.Unix(1_800_000_000, 0)}
	v, err := New([]ProviderConfig{{Name: "f", Issuer: testIssuer, Audiences: []string{"orders"}, JWKSFile: path}}, Options{Now: now.Now})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	v.Start(ctx)
	tok := sign(t, jose.ES256, k.ec256, "ec256", claimsAt(now.Now(), nil), nil)
	if _, err := v.Verify(ctx, tok); ReasonOf(err) != ReasonUnknownKey {
		t.Fatalf("before reload: %v", err)
	}
	// A broken write keeps the old keys…
	if err := os.WriteFile(path, []byte("{broken"), 0o644); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond)
	rsaTok := sign(t, jose.RS256, k.rsa, "rsa", claimsAt(now.Now(), nil), nil)
	if _, err := v.Verify(ctx, rsaTok); err != nil {
		t.Fatalf("broken JWKS write dropped the last good keys: %v", err)
	}
	// …and a good one is picked up.
	writeJWKS(t, dir, jwksJSON(t, k))
	deadline := time.Now().Add(5 * time.Second)
	for {
		if _, err := v.Verify(ctx, tok); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("JWKS file change not picked up within 5s")
		}
		time.Sleep(20 * time.Millisecond)
	}
}
