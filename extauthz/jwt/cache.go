package jwt

import (
	"crypto/sha256"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"
)

// DefaultCacheSize is the number of verified tokens kept.
const DefaultCacheSize = 10000

// tokenCache holds verified tokens, keyed by the token's SHA-256 so the map
// never holds bearer credentials. Entries expire at the token's exp and are
// ignored once the provider's keys change (a removed key revokes its tokens).
type tokenCache struct {
	lru *lru.Cache[[sha256.Size]byte, cacheEntry]
}

type cacheEntry struct {
	id      *Identity
	expires time.Time
	keyGen  uint64
}

func newTokenCache(size int) *tokenCache {
	if size <= 0 {
		return nil
	}
	c, _ := lru.New[[sha256.Size]byte, cacheEntry](size) // only errors on size <= 0
	return &tokenCache{lru: c}
}

func (c *tokenCache) get(key [sha256.Size]byte, now time.Time, keyGen func(provider string) uint64) (*Identity, bool) {
	if c == nil {
		return nil, false
	}
	e, ok := c.lru.Get(key)
	if !ok {
		return nil, false
	}
	if !now.Before(e.expires) || keyGen(e.id.Provider) != e.keyGen {
		c.lru.Remove(key)
		return nil, false
	}
	return e.id, true
}

func (c *tokenCache) add(key [sha256.Size]byte, id *Identity, keyGen uint64) {
	if c == nil {
		return
	}
	c.lru.Add(key, cacheEntry{id: id, expires: id.Expiry, keyGen: keyGen})
}

func (c *tokenCache) len() int {
	if c == nil {
		return 0
	}
	return c.lru.Len()
}

// DefaultNegativeCacheSize is the number of refused tokens remembered.
const DefaultNegativeCacheSize = 4096

// refusalCache remembers tokens refused for reasons that cannot change while
// the provider's keys stay the same (a bad signature, a malformed token, a
// wrong audience…), so a client replaying one bad token costs a hash and a
// lookup instead of a signature verification. Time-dependent refusals
// (expired, not yet valid) and unknown kids are never cached.
type refusalCache struct {
	lru *lru.Cache[[sha256.Size]byte, refusal]
}

type refusal struct {
	err    *Error
	keyGen uint64 // provider key generation; 0 when no provider was selected
}

func newRefusalCache(size int) *refusalCache {
	if size <= 0 {
		return nil
	}
	c, _ := lru.New[[sha256.Size]byte, refusal](size)
	return &refusalCache{lru: c}
}

// deterministic reports whether a refusal depends only on the token, the
// configuration and the keys.
func deterministic(r Reason) bool {
	switch r {
	case ReasonMalformed, ReasonForbiddenHeader, ReasonUnknownIssuer, ReasonAlgorithm,
		ReasonBadSignature, ReasonMissingExp, ReasonAudience, ReasonMissingSubject:
		return true
	}
	return false
}

func (c *refusalCache) get(key [sha256.Size]byte, keyGen func(provider string) uint64) (*Error, bool) {
	if c == nil {
		return nil, false
	}
	r, ok := c.lru.Get(key)
	if !ok {
		return nil, false
	}
	if r.err.Provider != "" && keyGen(r.err.Provider) != r.keyGen {
		c.lru.Remove(key)
		return nil, false
	}
	return r.err, true
}

func (c *refusalCache) add(key [sha256.Size]byte, err *Error, keyGen uint64) {
	if c == nil || !deterministic(err.Reason) {
		return
	}
	c.lru.Add(key, refusal{err: err, keyGen: keyGen})
}
