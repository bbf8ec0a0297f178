package jwt

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"fmt"
	"slices"

	jose "github.com/go-jose/go-jose/v4"
)

// MinRSABits is the smallest RSA modulus accepted in a JWKS.
const MinRSABits = 2048

// MaxKeys bounds the number of keys taken from one JWKS document.
const MaxKeys = 100

// SupportedAlgorithms are the JWS algorithms meshguard verifies.
var SupportedAlgorithms = []jose.SignatureAlgorithm{
	jose.RS256, jose.RS384, jose.RS512,
	jose.PS256, jose.PS384, jose.PS512,
	jose.ES256, jose.ES384,
	jose.EdDSA,
}

var rsaAlgs = []jose.SignatureAlgorithm{jose.RS256, jose.RS384, jose.RS512, jose.PS256, jose.PS384, jose.PS512}

// Key is one verification key and the algorithms it may be used with.
type Key struct {
	ID   string
	Algs []jose.SignatureAlgorithm
	Pub  any // *rsa.PublicKey, *ecdsa.PublicKey or ed25519.PublicKey
}

// KeySet is an immutable set of verification keys.
type KeySet struct {
	keys []Key
}

// Len is the number of usable keys.
func (s *KeySet) Len() int {
	if s == nil {
		return 0
	}
	return len(s.keys)
}

// candidates returns the keys that may verify a token with this kid and alg.
// With a kid, only keys of that kid; without one, every key allowing alg.
// The second result reports whether any key had the kid at all.
func (s *KeySet) candidates(kid string, alg jose.SignatureAlgorithm) (match []Key, kidKnown bool) {
	for _, k := range s.keys {
		if kid != "" && k.ID != kid {
			continue
		}
		kidKnown = true
		if slices.Contains(k.Algs, alg) {
			match = append(match, k)
		}
	}
	return match, kidKnown
}

// ParseKeySet parses a JWKS document. Keys not meant for signatures
// ("use" other than "sig") are skipped; symmetric keys, private key material,
// weak RSA keys and keys whose "alg" contradicts their type are errors,
// because each points at a misconfigured issuer.
func ParseKeySet(data []byte) (*KeySet, error) {
	var raw struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(data, &raw); err != nil {
		return nil, fmt.Errorf("parse JWKS: %w", err)
	}
	if raw.Keys == nil {
		return nil, errors.New("parse JWKS: no \"keys\" array")
	}
	if len(raw.Keys) > MaxKeys {
		return nil, fmt.Errorf("parse JWKS: %d keys, over the limit of %d", len(raw.Keys), MaxKeys)
	}
	set := &KeySet{}
	for i, rk := range raw.Keys {
		var jwk jose.JSONWebKey
		if err := jwk.UnmarshalJSON(rk); err != nil {
			return nil, fmt.Errorf("parse JWKS key %d: %w", i, err)
		}
		if jwk.Use != "" && jwk.Use != "sig" {
			continue
		}
		k, err := keyFromJWK(jwk)
		if err != nil {
			return nil, fmt.Errorf("JWKS key %d (kid %q): %w", i, jwk.KeyID, err)
		}
		set.keys = append(set.keys, k)
	}
	return set, nil
}

func keyFromJWK(jwk jose.JSONWebKey) (Key, error) {
	if !jwk.IsPublic() {
		return Key{}, errors.New("JWKS holds private or symmetric key material; publish public keys only")
	}
	var allowed []jose.SignatureAlgorithm
	switch pub := jwk.Key.(type) {
	case *rsa.PublicKey:
		if pub.N.BitLen() < MinRSABits {
			return Key{}, fmt.Errorf("RSA key of %d bits, below %d", pub.N.BitLen(), MinRSABits)
		}
		allowed = rsaAlgs
	case *ecdsa.PublicKey:
		switch pub.Curve {
		case elliptic.P256():
			allowed = []jose.SignatureAlgorithm{jose.ES256}
		case elliptic.P384():
			allowed = []jose.SignatureAlgorithm{jose.ES384}
		default:
			return Key{}, fmt.Errorf("unsupported curve %s", pub.Curve.Params().Name)
		}
	case ed25519.PublicKey:
		allowed = []jose.SignatureAlgorithm{jose.EdDSA}
	default:
		return Key{}, fmt.Errorf("unsupported key type %T", jwk.Key)
	}
	if jwk.Algorithm != "" {
		alg := jose.SignatureAlgorithm(jwk.Algorithm)
		if !slices.Contains(allowed, alg) {
			return Key{}, fmt.Errorf("alg %q does not fit the key type", jwk.Algorithm)
		}
		allowed = []jose.SignatureAlgorithm{alg}
	}
	return Key{ID: jwk.KeyID, Algs: allowed, Pub: jwk.Key}, nil
}
