package jwt

import (
	"context"
	"crypto"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/meshguard/meshguard/internal/poll"
)

func newFileVerifier(t *testing.T, now *clock, cfg func(*ProviderConfig)) *Verifier {
	t.Helper()
	k := getKeys(t)
	pc := ProviderConfig{
		Name:       "test",
		Issuer:     testIssuer,
		Audiences:  []string{"orders", "payments"},
		JWKSFile:   writeJWKS(t, t.TempDir(), jwksJSON(t, k)),
		RolesClaim: "roles",
	}
	if cfg != nil {
		cfg(&pc)
	}
	v, err := New([]ProviderConfig{pc}, Options{Now: now.Now, CacheSize: -1})
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestVerifyAcceptsEverySupportedAlgorithm(t *testing.T) {
	k := getKeys(t)
	now := &clock{t: time.Unix(1_800_000_000, 0)}
	v := newFileVerifier(t, now, nil)
	cases := []struct {
		alg jose.SignatureAlgorithm
		key crypto.Signer
		kid string
	}{
		{jose.RS256, k.rsa, "rsa"}, {jose.RS384, k.rsa, "rsa"}, {jose.RS512, k.rsa, "rsa"},
		{jose.PS256, k.rsa, "rsa"}, {jose.PS384, k.rsa, "rsa"}, {jose.PS512, k.rsa, "rsa"},
		{jose.ES256, k.ec256, "ec256"}, {jose.ES384, k.ec384, "ec384"},
		{jose.EdDSA, k.ed, "ed"},
		{jose.ES256, k.ec256, ""}, // no kid: the key that fits the algorithm is used
	}
	for _, tc := range cases {
		t.Run(string(tc.alg)+"/kid="+tc.kid, func(t *testing.T) {
			tok := sign(t, tc.alg, tc.key, tc.kid, claimsAt(now.Now(), func(c map[string]any) {
				c["roles"] = []string{"admin", "staff"}
			}), nil)
			id, err := v.Verify(context.Background(), tok)
			if err != nil {
				t.Fatalf("valid %s token refused: %v", tc.alg, err)
			}
			if id.Subject != "alice" || id.Provider != "test" || len(id.Roles) != 2 {
				t.Fatalf("identity = %+v", id)
			}
		})
	}
}

func TestVerifyRefusesBadTokens(t *testing.T) {
	k := getKeys(t)
	now := &clock{t: time.Unix(1_800_000_000, 0)}
	v := newFileVerifier(t, now, nil)
	at := now.Now()
	good := func(mut func(map[string]any)) map[string]any { return claimsAt(at, mut) }
	rs := func(c map[string]any) string { return sign(t, jose.RS256, k.rsa, "rsa", c, nil) }

	cases := []struct {
		name  string
		token string
		want  Reason
	}{
		{"alg none", raw(map[string]any{"alg": "none", "typ": "JWT"}, good(nil), nil), ReasonAlgorithm},
		{"alg none with rsa kid", raw(map[string]any{"alg": "none", "kid": "rsa"}, good(nil), []byte{}), ReasonAlgorithm},
		{"HS256 signed with the RSA public key", hsWithPublicKey(t, &k.rsa.PublicKey, "rsa", good(nil)), ReasonAlgorithm},
		{"kid of RSA key, signed ES256 (kty mismatch)", sign(t, jose.ES256, k.ec256, "rsa", good(nil), nil), ReasonAlgorithm},
		{"kid of EC P-256 key, alg ES384", sign(t, jose.ES384, k.ec384, "ec256", good(nil), nil), ReasonAlgorithm},
		{"unknown kid", sign(t, jose.RS256, k.other, "nope", good(nil), nil), ReasonUnknownKey},
		{"right kid, wrong key", sign(t, jose.RS256, k.other, "rsa", good(nil), nil), ReasonBadSignature},
		{"no kid, no key verifies", sign(t, jose.RS256, k.other, "", good(nil), nil), ReasonBadSignature},
		{"expired", rs(good(func(c map[string]any) { c["exp"] = at.Add(-time.Minute).Unix() })), ReasonExpired},
		{"nbf in the future", rs(good(func(c map[string]any) { c["nbf"] = at.Add(5 * time.Minute).Unix() })), ReasonNotYetValid},
		{"iat in the future", rs(good(func(c map[string]any) { c["iat"] = at.Add(5 * time.Minute).Unix() })), ReasonIssuedInFuture},
		{"missing exp", rs(good(func(c map[string]any) { delete(c, "exp") })), ReasonMissingExp},
		{"exp is a string", rs(good(func(c map[string]any) { c["exp"] = "tomorrow" })), ReasonMalformed},
		{"wrong iss", rs(good(func(c map[string]any) { c["iss"] = "https://evil.test" })), ReasonUnknownIssuer},
		{"missing iss", rs(good(func(c map[string]any) { delete(c, "iss") })), ReasonUnknownIssuer},
		{"wrong aud (string)", rs(good(func(c map[string]any) { c["aud"] = "billing" })), ReasonAudience},
		{"wrong aud (array)", rs(good(func(c map[string]any) { c["aud"] = []string{"billing", "ledger"} })), ReasonAudience},
		{"missing aud", rs(good(func(c map[string]any) { delete(c, "aud") })), ReasonAudience},
		{"missing sub", rs(good(func(c map[string]any) { delete(c, "sub") })), ReasonMissingSubject},
		{"two segments", "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJhIn0", ReasonMalformed},
		{"four segments", rs(good(nil)) + ".x", ReasonMalformed},
		{"JWE (five segments)", "a.b.c.d.e", ReasonMalformed},
		{"header not base64url", "!!!." + b64([]byte(`{}`)) + ".sig", ReasonMalformed},
		{"header padded base64", b64([]byte(`{"alg":"RS256"}`)) + "=." + b64([]byte(`{}`)) + ".c2ln", ReasonMalformed},
		{"header not JSON", b64([]byte("not json")) + "." + b64([]byte(`{}`)) + ".c2ln", ReasonMalformed},
		{"header is a JSON array", b64([]byte(`["RS256"]`)) + "." + b64([]byte(`{}`)) + ".c2ln", ReasonMalformed},
		{"header without alg", raw(map[string]any{"kid": "rsa"}, good(nil), []byte("x")), ReasonMalformed},
		{"payload not base64url", b64([]byte(`{"alg":"RS256","kid":"rsa"}`)) + ".***.c2ln", ReasonMalformed},
		{"payload not JSON", b64([]byte(`{"alg":"RS256","kid":"rsa"}`)) + "." + b64([]byte("hello")) + ".c2ln", ReasonMalformed},
		{"payload is a JSON array", b64([]byte(`{"alg":"RS256","kid":"rsa"}`)) + "." + b64([]byte(`[1]`)) + ".c2ln", ReasonMalformed},
		{"signature not base64url", strings.TrimSuffix(rs(good(nil)), rs(good(nil))[strings.LastIndex(rs(good(nil)), ".")+1:]) + "%%%", ReasonMalformed},
		{"empty signature", rs(good(nil))[:strings.LastIndex(rs(good(nil)), ".")+1], ReasonBadSignature},
		{"empty token", "", ReasonMalformed},
		{"oversized token", rs(good(func(c map[string]any) { c["pad"] = strings.Repeat("x", DefaultMaxTokenBytes) })), ReasonTooLarge},
		{"jku header", sign(t, jose.RS256, k.other, "", good(nil), map[string]any{"jku": "https://evil.test/jwks.json"}), ReasonForbiddenHeader},
		{"x5u header", sign(t, jose.RS256, k.other, "", good(nil), map[string]any{"x5u": "https://evil.test/cert.pem"}), ReasonForbiddenHeader},
		{"jwk header with attacker key", sign(t, jose.RS256, k.other, "", good(nil), map[string]any{"jwk": jose.JSONWebKey{Key: &k.other.PublicKey}}), ReasonForbiddenHeader},
		{"jku header even with the right key", sign(t, jose.RS256, k.rsa, "rsa", good(nil), map[string]any{"jku": "https://idp.test/jwks"}), ReasonForbiddenHeader},
		{"unknown crit header", sign(t, jose.RS256, k.rsa, "rsa", good(nil), map[string]any{"crit": []string{"exp-x"}, "exp-x": 1}), ReasonForbiddenHeader},
		{"kid not a string", raw(map[string]any{"alg": "RS256", "kid": 7}, good(nil), []byte("x")), ReasonMalformed},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			id, err := v.Verify(context.Background(), tc.token)
			if err == nil {
				t.Fatalf("token accepted as %q; want refusal %s", id.Subject, tc.want)
			}
			if got := ReasonOf(err); got != tc.want {
				t.Fatalf("reason = %q (%v), want %q", got, err, tc.want)
			}
			if strings.Contains(err.Error(), tc.token) && tc.token != "" {
				t.Fatalf("error message contains the token")
			}
		})
	}
}

func TestVerifyLeeway(t *testing.T) {
	k := getKeys(t)
	now := &clock{t: time.Unix(1_800_000_000, 0)}
	v := newFileVerifier(t, now, nil)
	at := now.Now()
	for _, tc := range []struct {
		name string
		mut  func(map[string]any)
		ok   bool
	}{
		{"expired 20s ago is within the 30s leeway", func(c map[string]any) { c["exp"] = at.Add(-20 * time.Second).Unix() }, true},
		{"expired 40s ago is not", func(c map[string]any) { c["exp"] = at.Add(-40 * time.Second).Unix() }, false},
		{"nbf 20s ahead is within the leeway", func(c map[string]any) { c["nbf"] = at.Add(20 * time.Second).Unix() }, true},
		{"nbf 40s ahead is not", func(c map[string]any) { c["nbf"] = at.Add(40 * time.Second).Unix() }, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := v.Verify(context.Background(), sign(t, jose.RS256, k.rsa, "rsa", claimsAt(at, tc.mut), nil))
			if (err == nil) != tc.ok {
				t.Fatalf("err = %v, want ok=%v", err, tc.ok)
			}
		})
	}
}

func TestVerifyAudienceAsString(t *testing.T) {
	k := getKeys(t)
	now := &clock{t: time.Unix(1_800_000_000, 0)}
	v := newFileVerifier(t, now, nil)
	tok := sign(t, jose.ES256, k.ec256, "ec256", claimsAt(now.Now(), func(c map[string]any) { c["aud"] = "payments" }), nil)
	if _, err := v.Verify(context.Background(), tok); err != nil {
		t.Fatalf("aud as a string naming a configured audience refused: %v", err)
	}
}

func TestCacheHitsAndNeverOutlivesExp(t *testing.T) {
	k := getKeys(t)
	now := &clock{t: time.Unix(1_800_000_000, 0)}
	pc := ProviderConfig{Name: "test", Issuer: testIssuer, Audiences: []string{"orders"},
		JWKSFile: writeJWKS(t, t.TempDir(), jwksJSON(t, k))}
	v, err := New([]ProviderConfig{pc}, Options{Now: now.Now, CacheSize: 10})
	if err != nil {
		t.Fatal(err)
	}
	tok := sign(t, jose.ES256, k.ec256, "ec256", claimsAt(now.Now(), func(c map[string]any) {
		c["exp"] = now.Now().Add(time.Minute).Unix()
	}), nil)
	first, err := v.Verify(context.Background(), tok)
	if err != nil {
		t.Fatal(err)
	}
	second, err := v.Verify(context.Background(), tok)
	if err != nil || second != first {
		t.Fatalf("second verify did not hit the cache: %v", err)
	}
	if first.TokenHash != sha256.Sum256([]byte(tok)) {
		t.Fatal("a verified identity must carry its token's SHA-256 (the decision cache keys users by it)")
	}
	if v.CachedTokens() != 1 {
		t.Fatalf("cache holds %d tokens, want 1", v.CachedTokens())
	}
	now.Advance(time.Minute + 10*time.Second) // past exp, within leeway
	if id, err := v.Verify(context.Background(), tok); err != nil || id == first {
		// Within the leeway a fresh verification succeeds, but it must not be the cached entry.
		t.Fatalf("after exp: id=%p first=%p err=%v", id, first, err)
	}
	now.Advance(time.Minute)
	if _, err := v.Verify(context.Background(), tok); ReasonOf(err) != ReasonExpired {
		t.Fatalf("expired token served: %v", err)
	}
}

func TestCacheBounded(t *testing.T) {
	k := getKeys(t)
	now := &clock{t: time.Unix(1_800_000_000, 0)}
	pc := ProviderConfig{Name: "test", Issuer: testIssuer, Audiences: []string{"orders"},
		JWKSFile: writeJWKS(t, t.TempDir(), jwksJSON(t, k))}
	v, err := New([]ProviderConfig{pc}, Options{Now: now.Now, CacheSize: 5})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 20 {
		tok := sign(t, jose.ES256, k.ec256, "ec256", claimsAt(now.Now(), func(c map[string]any) { c["n"] = i }), nil)
		if _, err := v.Verify(context.Background(), tok); err != nil {
			t.Fatal(err)
		}
	}
	if n := v.CachedTokens(); n != 5 {
		t.Fatalf("cache holds %d tokens, want the bound 5", n)
	}
}

func TestNewRejectsBadProviders(t *testing.T) {
	dir := t.TempDir()
	k := getKeys(t)
	file := writeJWKS(t, dir, jwksJSON(t, k))
	base := ProviderConfig{Name: "p", Issuer: testIssuer, Audiences: []string{"a"}, JWKSFile: file}
	cases := []struct {
		name string
		mut  func(*ProviderConfig)
		want string
	}{
		{"no audiences", func(p *ProviderConfig) { p.Audiences = nil }, "audiences"},
		{"no issuer", func(p *ProviderConfig) { p.Issuer = "" }, "issuer"},
		{"bad name", func(p *ProviderConfig) { p.Name = "Bad Name" }, "name"},
		{"file and uri", func(p *ProviderConfig) { p.JWKSURI = "https://x.test/jwks" }, "at most one"},
		{"plain http uri", func(p *ProviderConfig) { p.JWKSFile = ""; p.JWKSURI = "http://idp.example.com/jwks" }, "https"},
		{"plain http discovery", func(p *ProviderConfig) { p.JWKSFile = ""; p.Issuer = "http://idp.example.com" }, "https"},
		{"missing file", func(p *ProviderConfig) { p.JWKSFile = dir + "/nope.json" }, "no such file"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := base
			tc.mut(&p)
			_, err := New([]ProviderConfig{p}, Options{})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want mention of %q", err, tc.want)
			}
		})
	}
	if _, err := New([]ProviderConfig{base, base}, Options{}); err == nil {
		t.Fatal("duplicate provider accepted")
	}
}

func TestRefusalCacheFollowsKeyChanges(t *testing.T) {
	k := getKeys(t)
	dir := t.TempDir()
	path := writeJWKS(t, dir, jwksJSON(t, k))
	now := &clock{t: time.Unix(1_800_000_000, 0)}
	v, err := New([]ProviderConfig{{Name: "f", Issuer: testIssuer, Audiences: []string{"orders"}, JWKSFile: path}}, Options{Now: now.Now})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	v.Start(ctx)
	// Signed by a key the JWKS does not (yet) publish under kid "rsa".
	tok := sign(t, jose.RS256, k.other, "rsa", claimsAt(now.Now(), nil), nil)
	for range 2 {
		if _, err := v.Verify(ctx, tok); ReasonOf(err) != ReasonBadSignature {
			t.Fatalf("err = %v, want bad_signature", err)
		}
	}
	// The issuer rotates: kid "rsa" is now the other key. The remembered refusal must not survive.
	rotated, _ := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &k.other.PublicKey, KeyID: "rsa"}}})
	writeJWKS(t, dir, rotated)
	eventually(t, func() bool { _, err := v.Verify(ctx, tok); return err == nil })
}

func eventually(t *testing.T, cond func() bool) {
	t.Helper()
	poll.Until(t, 5*time.Second, "the condition", cond)
}

// Lookup answers from the caches only: a verified token, a refused one,
// or ErrNotCached for one it has never seen (which Verify must decide).
func TestLookupAnswersFromBothCaches(t *testing.T) {
	k := getKeys(t)
	now := &clock{t: time.Unix(1_800_000_000, 0)}
	pc := ProviderConfig{Name: "test", Issuer: testIssuer, Audiences: []string{"orders"},
		JWKSFile: writeJWKS(t, t.TempDir(), jwksJSON(t, k))}
	v, err := New([]ProviderConfig{pc}, Options{Now: now.Now})
	if err != nil {
		t.Fatal(err)
	}
	good := sign(t, jose.ES256, k.ec256, "ec256", claimsAt(now.Now(), nil), nil)
	forged := sign(t, jose.RS256, k.other, "rsa", claimsAt(now.Now(), nil), nil)
	expired := sign(t, jose.ES256, k.ec256, "ec256", claimsAt(now.Now(), func(c map[string]any) {
		c["exp"] = now.Now().Add(-time.Hour).Unix()
	}), nil)
	for _, tok := range []string{good, forged, expired} {
		if _, err := v.Lookup(tok); !errors.Is(err, ErrNotCached) {
			t.Fatalf("Lookup before Verify = %v, want ErrNotCached", err)
		}
		_, _ = v.Verify(context.Background(), tok)
	}
	if id, err := v.Lookup(good); err != nil || id.Subject != "alice" {
		t.Errorf("Lookup(verified) = %v, %v; want alice", id, err)
	}
	if _, err := v.Lookup(forged); ReasonOf(err) != ReasonBadSignature {
		t.Errorf("Lookup(forged) = %v, want the remembered bad_signature", err)
	}
	// Time-dependent refusals are never remembered: the clock may move.
	if _, err := v.Lookup(expired); !errors.Is(err, ErrNotCached) {
		t.Errorf("Lookup(expired) = %v, want ErrNotCached", err)
	}
	if _, err := v.Lookup(strings.Repeat("a", 1<<20)); !errors.Is(err, ErrNotCached) {
		t.Errorf("Lookup(oversized) = %v, want ErrNotCached (Verify refuses it)", err)
	}
}
