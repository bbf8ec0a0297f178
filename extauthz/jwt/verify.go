package jwt

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"time"
	"unsafe"

	"github.com/cedar-policy/cedar-go"
	jose "github.com/go-jose/go-jose/v4"
	josejwt "github.com/go-jose/go-jose/v4/jwt"
)

// Defaults for verification.
const (
	DefaultLeeway        = 30 * time.Second
	DefaultMaxTokenBytes = 8 << 10
)

// Identity is a verified token's subject, as the authorizer uses it. It is
// immutable and shared between requests through the cache.
type Identity struct {
	Provider string
	Issuer   string
	Subject  string
	// TokenID (jti), SessionID (sid) and IssuedAt (iat, zero when absent)
	// are what a revocation names.
	TokenID   string
	SessionID string
	IssuedAt  time.Time
	Expiry    time.Time
	Roles     []string
	// Claims is the Cedar form of the claims (context.jwt, and the User's attributes).
	Claims cedar.Record
	// Entity is the User principal with its Role parents.
	Entity cedar.Entity
	// Raw holds the decoded claims, for copying selected ones into headers.
	Raw map[string]any
	// TokenHash is the SHA-256 of the token. Everything above is a function
	// of the token (and the provider's fixed settings), so equal hashes mean
	// equal identities: the authorizer keys cached results by it.
	TokenHash [sha256.Size]byte
}

// Options tunes a Verifier. Zero values mean the defaults.
type Options struct {
	Leeway        time.Duration
	MaxTokenBytes int
	CacheSize     int // 0: DefaultCacheSize; negative: no cache
	HTTPClient    *http.Client
	Logger        *slog.Logger
	Now           func() time.Time
}

// Verifier verifies tokens from a fixed list of providers. It is safe for
// concurrent use.
type Verifier struct {
	providers []*provider
	byIssuer  map[string]*provider
	leeway    time.Duration
	maxBytes  int
	cache     *tokenCache
	refused   *refusalCache
	now       func() time.Time
}

type provider struct {
	cfg ProviderConfig
	src keySource
}

// New builds a verifier. Key files are read now (an unreadable file is an
// error); remote key sets are fetched by Start.
func New(cfgs []ProviderConfig, opts Options) (*Verifier, error) {
	if opts.Leeway == 0 {
		opts.Leeway = DefaultLeeway
	}
	if opts.MaxTokenBytes == 0 {
		opts.MaxTokenBytes = DefaultMaxTokenBytes
	}
	if opts.CacheSize == 0 {
		opts.CacheSize = DefaultCacheSize
	}
	if opts.HTTPClient == nil {
		opts.HTTPClient = &http.Client{}
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	v := &Verifier{
		byIssuer: map[string]*provider{},
		leeway:   opts.Leeway,
		maxBytes: opts.MaxTokenBytes,
		cache:    newTokenCache(opts.CacheSize),
		refused:  newRefusalCache(min(opts.CacheSize, DefaultNegativeCacheSize)),
		now:      opts.Now,
	}
	names := map[string]bool{}
	for i, c := range cfgs {
		if err := c.Validate(); err != nil {
			return nil, fmt.Errorf("jwt.providers[%d]: %w", i, err)
		}
		if names[c.Name] {
			return nil, fmt.Errorf("jwt.providers[%d]: duplicate name %q", i, c.Name)
		}
		if _, dup := v.byIssuer[c.Issuer]; dup {
			return nil, fmt.Errorf("jwt.providers[%d] (%s): issuer %q is already used by another provider", i, c.Name, c.Issuer)
		}
		names[c.Name] = true
		c = c.withDefaults()
		p := &provider{cfg: c}
		if c.JWKSFile != "" {
			src, err := newFileSource(c.Name, c.JWKSFile, opts.Logger)
			if err != nil {
				return nil, fmt.Errorf("jwt.providers[%d] (%s): jwks_file: %w", i, c.Name, err)
			}
			p.src = src
		} else {
			rs := newRemoteSource(c, opts.HTTPClient, opts.Logger)
			rs.now = opts.Now
			p.src = rs
		}
		v.providers = append(v.providers, p)
		v.byIssuer[c.Issuer] = p
	}
	return v, nil
}

// Start fetches remote key sets once (without blocking on failures) and keeps
// every source fresh until ctx is done.
func (v *Verifier) Start(ctx context.Context) {
	for _, p := range v.providers {
		if rs, ok := p.src.(*remoteSource); ok {
			rs.mu.Lock()
			rs.base = ctx
			rs.mu.Unlock()
			go func() {
				rs.fetch(ctx)
				rs.Run(ctx)
			}()
		} else {
			go p.src.Run(ctx)
		}
	}
}

// Ready reports whether every provider has a key set.
func (v *Verifier) Ready() bool {
	for _, p := range v.providers {
		if ks, _ := p.src.Keys(); ks == nil {
			return false
		}
	}
	return true
}

// ProviderStatus describes one provider for the admin endpoint.
type ProviderStatus struct {
	Name   string `json:"name"`
	Issuer string `json:"issuer"`
	Keys   int    `json:"keys"`
	Ready  bool   `json:"ready"`
}

// Status lists the providers and their key counts.
func (v *Verifier) Status() []ProviderStatus {
	out := make([]ProviderStatus, 0, len(v.providers))
	for _, p := range v.providers {
		ks, _ := p.src.Keys()
		out = append(out, ProviderStatus{Name: p.cfg.Name, Issuer: p.cfg.Issuer, Keys: ks.Len(), Ready: ks != nil})
	}
	return out
}

// CachedTokens is the number of verified tokens in the cache.
func (v *Verifier) CachedTokens() int { return v.cache.len() }

func (v *Verifier) keyGen(name string) uint64 {
	for _, p := range v.providers {
		if p.cfg.Name == name {
			_, g := p.src.Keys()
			return g
		}
	}
	return 0
}

// ErrNotCached is Lookup's answer for a token neither cache knows.
var ErrNotCached = errors.New("jwt: token not cached")

// Lookup answers from the caches alone: the identity of a token verified
// earlier and still valid, or the refusal of a token refused for a reason
// that cannot change. No parsing, no signature check, no waiting; a token
// neither cache knows gets ErrNotCached, and only Verify can decide it.
func (v *Verifier) Lookup(token string) (*Identity, error) {
	if len(token) > v.maxBytes {
		return nil, ErrNotCached
	}
	key := tokenKey(token)
	if id, ok := v.cache.get(key, v.now(), v.keyGen); ok {
		return id, nil
	}
	if e, ok := v.refused.get(key, v.keyGen); ok {
		return nil, e
	}
	return nil, ErrNotCached
}

// tokenKey is the caches' key for a token: its SHA-256. The token is hashed
// in place: []byte(token) would copy it (hundreds of bytes) on every request.
func tokenKey(token string) [sha256.Size]byte {
	return sha256.Sum256(unsafe.Slice(unsafe.StringData(token), len(token)))
}

// Verify checks a compact JWS token and returns its identity. Every failure
// is an *Error with a Reason.
func (v *Verifier) Verify(ctx context.Context, token string) (*Identity, error) {
	if len(token) > v.maxBytes {
		return nil, fail(ReasonTooLarge, "", "token is %d bytes, over the %d byte limit", len(token), v.maxBytes)
	}
	now := v.now()
	cacheKey := tokenKey(token)
	if id, ok := v.cache.get(cacheKey, now, v.keyGen); ok {
		return id, nil
	}
	if e, ok := v.refused.get(cacheKey, v.keyGen); ok {
		return nil, e
	}
	// The key generation is read before verifying: an entry must never
	// outlive the keys it was checked against.
	id, gen, err := v.verify(ctx, token, now)
	if err != nil {
		var e *Error
		if errors.As(err, &e) {
			v.refused.add(cacheKey, e, gen)
		}
		return nil, err
	}
	id.TokenHash = cacheKey
	if now.Before(id.Expiry) {
		v.cache.add(cacheKey, id, gen)
	}
	return id, nil
}

// verify returns the identity and the generation of the provider's keys it
// was checked against (0 when no provider was selected).
func (v *Verifier) verify(ctx context.Context, token string, now time.Time) (id *Identity, gen uint64, err error) {
	hdr, err := checkHeader(token)
	if err != nil {
		return nil, 0, err
	}
	jws, err := jose.ParseSignedCompact(token, SupportedAlgorithms)
	if err != nil {
		return nil, 0, fail(ReasonMalformed, "", "%v", err)
	}
	if len(jws.Signatures) != 1 || jws.Signatures[0].Protected.Algorithm != string(hdr.alg) {
		// Duplicate header keys could make two JSON parsers disagree.
		return nil, 0, fail(ReasonMalformed, "", "ambiguous protected header")
	}
	claims, err := decodeClaims(jws.UnsafePayloadWithoutVerification())
	if err != nil {
		return nil, 0, err
	}
	iss, _ := claims["iss"].(string)
	p, ok := v.byIssuer[iss]
	if !ok {
		return nil, 0, fail(ReasonUnknownIssuer, "", "no provider for issuer %q", truncate(iss, 128))
	}

	key, gen, err := v.selectKey(ctx, p, jws, hdr)
	if err != nil {
		return nil, gen, err
	}
	if _, err := jws.Verify(key); err != nil {
		return nil, gen, fail(ReasonBadSignature, p.cfg.Name, "signature does not verify")
	}
	id, err = v.validateClaims(p, jws.UnsafePayloadWithoutVerification(), claims, now)
	return id, gen, err
}

// header is the part of the JOSE header meshguard inspects before go-jose does.
type header struct {
	alg jose.SignatureAlgorithm
	kid string
}

// forbiddenHeaders name keys by reference or carry them inline: trusting any
// of them lets the token choose its own verification key.
var forbiddenHeaders = []string{"jku", "x5u", "jwk", "crit"}

// checkHeader decodes the protected header of a compact JWS strictly, so each
// refusal gets a precise reason before any key is touched.
func checkHeader(token string) (header, error) {
	if strings.Count(token, ".") != 2 {
		return header{}, fail(ReasonMalformed, "", "not a compact JWS (want 3 dot-separated segments)")
	}
	seg := token[:strings.IndexByte(token, '.')]
	raw, err := base64.RawURLEncoding.Strict().DecodeString(seg)
	if err != nil {
		return header{}, fail(ReasonMalformed, "", "header is not base64url: %v", err)
	}
	var h map[string]json.RawMessage
	if err := json.Unmarshal(raw, &h); err != nil {
		return header{}, fail(ReasonMalformed, "", "header is not a JSON object")
	}
	for _, name := range forbiddenHeaders {
		if _, ok := h[name]; ok {
			return header{}, fail(ReasonForbiddenHeader, "", "header %q is not accepted", name)
		}
	}
	var out header
	var alg, kid string
	if err := json.Unmarshal(h["alg"], &alg); err != nil || alg == "" {
		return header{}, fail(ReasonMalformed, "", "header has no \"alg\" string")
	}
	if k, ok := h["kid"]; ok {
		if err := json.Unmarshal(k, &kid); err != nil {
			return header{}, fail(ReasonMalformed, "", "header \"kid\" is not a string")
		}
	}
	out.alg, out.kid = jose.SignatureAlgorithm(alg), kid
	if !slices.Contains(SupportedAlgorithms, out.alg) {
		return header{}, fail(ReasonAlgorithm, "", "algorithm %q is not accepted", truncate(alg, 16))
	}
	return out, nil
}

func decodeClaims(payload []byte) (map[string]any, error) {
	dec := json.NewDecoder(bytes.NewReader(payload))
	dec.UseNumber()
	var claims map[string]any
	if err := dec.Decode(&claims); err != nil || claims == nil {
		return nil, fail(ReasonMalformed, "", "payload is not a JSON object")
	}
	if dec.More() {
		return nil, fail(ReasonMalformed, "", "trailing data after the claims object")
	}
	return claims, nil
}

// selectKey finds the key the token's kid and alg point at. An unknown kid
// triggers one rate-limited refetch (the issuer may have rotated).
func (v *Verifier) selectKey(ctx context.Context, p *provider, jws *jose.JSONWebSignature, h header) (any, uint64, error) {
	ks, gen := p.src.Keys()
	cands, known := ks.candidatesOrNil(h.kid, h.alg)
	if !known {
		p.src.Refetch(ctx)
		ks, gen = p.src.Keys()
		cands, known = ks.candidatesOrNil(h.kid, h.alg)
	}
	switch {
	case ks == nil:
		return nil, gen, fail(ReasonKeysUnavailable, p.cfg.Name, "%v", errNoKeys)
	case !known:
		return nil, gen, fail(ReasonUnknownKey, p.cfg.Name, "no key with kid %q", truncate(h.kid, 64))
	case len(cands) == 0:
		return nil, gen, fail(ReasonAlgorithm, p.cfg.Name, "algorithm %s does not fit key %q", h.alg, truncate(h.kid, 64))
	}
	if len(cands) == 1 {
		return cands[0].Pub, gen, nil
	}
	// No kid and several keys allow alg: the one that verifies wins.
	for _, c := range cands {
		if _, err := jws.Verify(c.Pub); err == nil {
			return c.Pub, gen, nil
		}
	}
	return nil, gen, fail(ReasonBadSignature, p.cfg.Name, "signature does not verify with any key")
}

func (s *KeySet) candidatesOrNil(kid string, alg jose.SignatureAlgorithm) ([]Key, bool) {
	if s == nil {
		return nil, false
	}
	return s.candidates(kid, alg)
}

func (v *Verifier) validateClaims(p *provider, payload []byte, raw map[string]any, now time.Time) (*Identity, error) {
	name := p.cfg.Name
	var c josejwt.Claims
	if err := json.Unmarshal(payload, &c); err != nil {
		return nil, fail(ReasonMalformed, name, "registered claims have the wrong types: %v", err)
	}
	if c.Expiry == nil {
		return nil, fail(ReasonMissingExp, name, "token has no exp")
	}
	err := c.ValidateWithLeeway(josejwt.Expected{Issuer: p.cfg.Issuer, AnyAudience: p.cfg.Audiences, Time: now}, v.leeway)
	switch {
	case err == nil:
	case errors.Is(err, josejwt.ErrExpired):
		return nil, fail(ReasonExpired, name, "expired at %s", c.Expiry.Time().UTC().Format(time.RFC3339))
	case errors.Is(err, josejwt.ErrNotValidYet):
		return nil, fail(ReasonNotYetValid, name, "not valid before %s", c.NotBefore.Time().UTC().Format(time.RFC3339))
	case errors.Is(err, josejwt.ErrIssuedInTheFuture):
		return nil, fail(ReasonIssuedInFuture, name, "issued in the future")
	case errors.Is(err, josejwt.ErrInvalidAudience):
		return nil, fail(ReasonAudience, name, "audience does not include any of %v", p.cfg.Audiences)
	default:
		return nil, fail(ReasonMalformed, name, "%v", err)
	}
	sub, _ := raw["sub"].(string)
	if sub == "" {
		return nil, fail(ReasonMissingSubject, name, "token has no sub")
	}
	record, _ := ClaimsRecord(raw)
	roles := Roles(raw, p.cfg.RolesClaim)
	id := c.ID
	sid, _ := raw["sid"].(string)
	var iat time.Time
	if c.IssuedAt != nil {
		iat = c.IssuedAt.Time()
	}
	return &Identity{
		Provider:  name,
		Issuer:    p.cfg.Issuer,
		Subject:   sub,
		TokenID:   id,
		SessionID: sid,
		IssuedAt:  iat,
		Expiry:    c.Expiry.Time(),
		Roles:     roles,
		Claims:    record,
		Entity:    UserEntity(sub, roles, record),
		Raw:       raw,
	}, nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
