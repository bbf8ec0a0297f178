// Package demoidp is a tiny token issuer for the quickstart and tests: it
// holds one signing key, publishes its JWKS and mints JWTs. It is not an
// identity provider and must not be used as one.
package demoidp

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

// Issuer signs tokens with one private key.
type Issuer struct {
	Key jose.JSONWebKey // private
}

// Generate creates an issuer with a fresh ECDSA P-256 (ES256) key.
func Generate(kid string) (*Issuer, error) {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	return FromKey(k, kid, jose.ES256), nil
}

// FromKey wraps an existing private key.
func FromKey(k crypto.Signer, kid string, alg jose.SignatureAlgorithm) *Issuer {
	return &Issuer{Key: jose.JSONWebKey{Key: k, KeyID: kid, Algorithm: string(alg), Use: "sig"}}
}

// Load reads a private JWK file written by Save.
func Load(path string) (*Issuer, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var k jose.JSONWebKey
	if err := k.UnmarshalJSON(data); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if k.IsPublic() {
		return nil, fmt.Errorf("%s: a private key is needed to sign", path)
	}
	return &Issuer{Key: k}, nil
}

// Save writes the private JWK (mode 0600).
func (i *Issuer) Save(path string) error {
	data, err := json.MarshalIndent(i.Key, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(data, '\n'), 0o600)
}

// JWKS returns the public key set document.
func (i *Issuer) JWKS() ([]byte, error) {
	pub := i.Key.Public()
	if !pub.Valid() {
		return nil, errors.New("key has no public part")
	}
	return json.MarshalIndent(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{pub}}, "", "  ")
}

// Mint signs claims. Registered claims are the caller's to set.
func (i *Issuer) Mint(claims map[string]any) (string, error) {
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.SignatureAlgorithm(i.Key.Algorithm), Key: i.Key},
		(&jose.SignerOptions{}).WithType("JWT"))
	if err != nil {
		return "", err
	}
	payload, err := json.Marshal(claims)
	if err != nil {
		return "", err
	}
	obj, err := signer.Sign(payload)
	if err != nil {
		return "", err
	}
	return obj.CompactSerialize()
}

// Claims returns the usual claims for a token valid for ttl from now.
func Claims(issuer, sub string, aud []string, roles []string, ttl time.Duration) map[string]any {
	now := time.Now()
	c := map[string]any{
		"iss": issuer,
		"sub": sub,
		"aud": aud,
		"iat": now.Unix(),
		"nbf": now.Unix(),
		"exp": now.Add(ttl).Unix(),
	}
	if len(roles) > 0 {
		c["roles"] = roles
	}
	return c
}
