package jwt

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"strings"
	"testing"

	jose "github.com/go-jose/go-jose/v4"
)

func TestParseKeySetRejectsDangerousKeys(t *testing.T) {
	k := getKeys(t)
	weak, _ := rsa.GenerateKey(rand.Reader, 1024)
	p521, _ := ecdsa.GenerateKey(elliptic.P521(), rand.Reader)
	set := func(keys ...jose.JSONWebKey) []byte {
		b, err := json.Marshal(jose.JSONWebKeySet{Keys: keys})
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	cases := []struct {
		name string
		doc  []byte
		want string
	}{
		{"symmetric key", set(jose.JSONWebKey{Key: []byte("secretsecretsecretsecretsecret12"), KeyID: "hs", Algorithm: "HS256"}), "symmetric"},
		{"private key", set(jose.JSONWebKey{Key: k.rsa, KeyID: "priv"}), "private"},
		{"weak RSA", set(jose.JSONWebKey{Key: &weak.PublicKey, KeyID: "weak"}), "bits"},
		{"alg contradicts kty", set(jose.JSONWebKey{Key: &k.rsa.PublicKey, KeyID: "r", Algorithm: "ES256"}), "does not fit"},
		{"unsupported curve", set(jose.JSONWebKey{Key: &p521.PublicKey, KeyID: "p521"}), "curve"},
		{"not JSON", []byte("{"), "parse JWKS"},
		{"no keys array", []byte(`{"foo":[]}`), "no \"keys\""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseKeySet(tc.doc)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want mention of %q", err, tc.want)
			}
		})
	}
}

func TestParseKeySetPinsAlgorithms(t *testing.T) {
	k := getKeys(t)
	b, _ := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{
		{Key: &k.rsa.PublicKey, KeyID: "pinned", Algorithm: "PS256"},
		{Key: &k.rsa.PublicKey, KeyID: "enc", Use: "enc"},
	}})
	ks, err := ParseKeySet(b)
	if err != nil {
		t.Fatal(err)
	}
	if ks.Len() != 1 {
		t.Fatalf("keys = %d, want 1 (the encryption key skipped)", ks.Len())
	}
	if m, _ := ks.candidates("pinned", jose.RS256); len(m) != 0 {
		t.Fatal("RS256 allowed for a key published with alg PS256")
	}
	if m, _ := ks.candidates("pinned", jose.PS256); len(m) != 1 {
		t.Fatal("PS256 refused for a key published with alg PS256")
	}
}
