package jwt

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

const testIssuer = "https://idp.test"

// testKeys is one key of each supported type, generated once per test binary.
type testKeys struct {
	rsa   *rsa.PrivateKey
	ec256 *ecdsa.PrivateKey
	ec384 *ecdsa.PrivateKey
	ed    ed25519.PrivateKey
	other *rsa.PrivateKey // not in the JWKS
}

var (
	keysOnce sync.Once
	keys     testKeys
)

func getKeys(t testing.TB) testKeys {
	t.Helper()
	keysOnce.Do(func() {
		keys.rsa, _ = rsa.GenerateKey(rand.Reader, 2048)
		keys.other, _ = rsa.GenerateKey(rand.Reader, 2048)
		keys.ec256, _ = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		keys.ec384, _ = ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
		_, keys.ed, _ = ed25519.GenerateKey(rand.Reader)
	})
	return keys
}

// jwksJSON publishes the public halves with kids "rsa", "ec256", "ec384", "ed".
func jwksJSON(t testing.TB, k testKeys) []byte {
	t.Helper()
	set := jose.JSONWebKeySet{Keys: []jose.JSONWebKey{
		{Key: &k.rsa.PublicKey, KeyID: "rsa", Use: "sig"},
		{Key: &k.ec256.PublicKey, KeyID: "ec256", Use: "sig"},
		{Key: &k.ec384.PublicKey, KeyID: "ec384", Use: "sig"},
		{Key: k.ed.Public(), KeyID: "ed", Use: "sig"},
	}}
	b, err := json.Marshal(set)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func writeJWKS(t testing.TB, dir string, data []byte) string {
	t.Helper()
	p := filepath.Join(dir, "jwks.json")
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// sign makes a compact JWS with go-jose, with optional extra header fields.
func sign(t testing.TB, alg jose.SignatureAlgorithm, key crypto.Signer, kid string, claims map[string]any, extra map[string]any) string {
	t.Helper()
	opts := &jose.SignerOptions{}
	opts.WithType("JWT")
	if kid != "" {
		opts.WithHeader("kid", kid)
	}
	for k, v := range extra {
		opts.WithHeader(jose.HeaderKey(k), v)
	}
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: alg, Key: key}, opts)
	if err != nil {
		t.Fatal(err)
	}
	payload, _ := json.Marshal(claims)
	obj, err := s.Sign(payload)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := obj.CompactSerialize()
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// raw assembles a token from arbitrary header and payload, with the given signature bytes.
func raw(header, payload any, sig []byte) string {
	h, _ := json.Marshal(header)
	p, _ := json.Marshal(payload)
	return b64(h) + "." + b64(p) + "." + b64(sig)
}

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

// hsWithPublicKey forges the classic algorithm-confusion token: HS256 with
// the RSA public key (as PEM) used as the HMAC secret.
func hsWithPublicKey(t testing.TB, pub *rsa.PublicKey, kid string, claims map[string]any) string {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	h, _ := json.Marshal(map[string]any{"alg": "HS256", "typ": "JWT", "kid": kid})
	p, _ := json.Marshal(claims)
	input := b64(h) + "." + b64(p)
	mac := hmac.New(sha256.New, der)
	mac.Write([]byte(input))
	return input + "." + b64(mac.Sum(nil))
}

// clock is a settable time source.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func claimsAt(now time.Time, mut func(map[string]any)) map[string]any {
	c := map[string]any{
		"iss": testIssuer,
		"sub": "alice",
		"aud": []string{"orders"},
		"iat": now.Unix(),
		"nbf": now.Unix(),
		"exp": now.Add(time.Hour).Unix(),
	}
	if mut != nil {
		mut(c)
	}
	return c
}
