package jwt

import (
	"context"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

// FuzzVerify: arbitrary strings never panic the verifier, and nothing but
// the genuine seed token verifies.
func FuzzVerify(f *testing.F) {
	k := getKeys(f)
	now := &clock{t: time.Unix(1_800_000_000, 0)}
	pc := ProviderConfig{Name: "test", Issuer: testIssuer, Audiences: []string{"orders"},
		JWKSFile: writeJWKS(f, f.TempDir(), jwksJSON(f, k)), RolesClaim: "roles"}
	v, err := New([]ProviderConfig{pc}, Options{Now: now.Now, CacheSize: -1})
	if err != nil {
		f.Fatal(err)
	}
	genuine := sign(f, jose.ES256, k.ec256, "ec256", claimsAt(now.Now(), func(c map[string]any) { c["roles"] = []any{"a", 1, nil} }), nil)
	f.Add(genuine)
	f.Add(sign(f, jose.RS256, k.other, "rsa", claimsAt(now.Now(), nil), nil))
	f.Add(raw(map[string]any{"alg": "none"}, claimsAt(now.Now(), nil), nil))
	f.Add(hsWithPublicKey(f, &k.rsa.PublicKey, "rsa", claimsAt(now.Now(), nil)))
	f.Add("a.b.c")
	f.Fuzz(func(t *testing.T, tok string) {
		id, err := v.Verify(context.Background(), tok)
		if err == nil && tok != genuine {
			t.Fatalf("forged token verified as %q", id.Subject)
		}
		if err != nil && ReasonOf(err) == "" {
			t.Fatalf("error without a reason: %v", err)
		}
	})
}
