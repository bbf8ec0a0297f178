package jwt

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"regexp"
	"strings"
	"time"
)

// ProviderConfig describes one token issuer. It is the `jwt.providers[]`
// entry of the authorizer's configuration.
type ProviderConfig struct {
	Name      string   `yaml:"name"`
	Issuer    string   `yaml:"issuer"`
	Audiences []string `yaml:"audiences"`
	// Exactly one key source: a local file, a URL, or neither (OIDC discovery
	// from the issuer's /.well-known/openid-configuration).
	JWKSFile string `yaml:"jwks_file"`
	JWKSURI  string `yaml:"jwks_uri"`
	// RolesClaim names the claim whose values become Role parents of the
	// User principal. A dotted path reaches into objects ("realm_access.roles").
	RolesClaim string `yaml:"roles_claim"`
	// RefreshInterval is how often a remote JWKS is refetched (default 5m).
	RefreshInterval time.Duration `yaml:"refresh_interval"`
	// MinRefetchInterval bounds refetches triggered by an unknown kid (default 30s),
	// so forged kids cannot turn the authorizer into a load generator.
	MinRefetchInterval time.Duration `yaml:"min_refetch_interval"`
	// FetchTimeout bounds one JWKS or discovery fetch (default 5s).
	FetchTimeout time.Duration `yaml:"fetch_timeout"`
	// Revocation checks this provider's tokens against the revocation
	// list (the authorizer's redis and revocation keys).
	Revocation *RevocationConfig `yaml:"revocation"`
}

// RevocationConfig is a provider's use of the revocation list.
type RevocationConfig struct {
	// OnUnavailable decides a token while the list cannot be trusted
	// (Redis unreachable, the list not yet loaded): "deny" (the default)
	// or "allow". Either way it is counted and logged.
	OnUnavailable string `yaml:"on_unavailable"`
}

// Revocation list fallbacks.
const (
	OnUnavailableDeny  = "deny"
	OnUnavailableAllow = "allow"
)

// Defaults for remote key sources.
const (
	DefaultRefreshInterval    = 5 * time.Minute
	DefaultMinRefetchInterval = 30 * time.Second
	DefaultFetchTimeout       = 5 * time.Second
)

var providerNameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,62}$`)

// withDefaults returns a copy with zero durations replaced by defaults.
func (c ProviderConfig) withDefaults() ProviderConfig {
	if c.RefreshInterval == 0 {
		c.RefreshInterval = DefaultRefreshInterval
	}
	if c.MinRefetchInterval == 0 {
		c.MinRefetchInterval = DefaultMinRefetchInterval
	}
	if c.FetchTimeout == 0 {
		c.FetchTimeout = DefaultFetchTimeout
	}
	return c
}

// Validate checks one provider entry; errors name the key.
func (c ProviderConfig) Validate() error {
	if !providerNameRE.MatchString(c.Name) {
		return fmt.Errorf("name %q: lower-case letters, digits, '-' and '_', at most 63", c.Name)
	}
	if c.Issuer == "" {
		return errors.New("issuer: required")
	}
	if len(c.Audiences) == 0 {
		return errors.New("audiences: at least one audience is required (a token for another service must not be accepted)")
	}
	for _, a := range c.Audiences {
		if a == "" {
			return errors.New("audiences: empty audience")
		}
	}
	if c.JWKSFile != "" && c.JWKSURI != "" {
		return errors.New("jwks_file and jwks_uri: set at most one")
	}
	if c.JWKSURI != "" {
		if err := checkFetchURL(c.JWKSURI); err != nil {
			return fmt.Errorf("jwks_uri: %w", err)
		}
	}
	if c.JWKSFile == "" && c.JWKSURI == "" {
		if err := checkFetchURL(c.Issuer); err != nil {
			return fmt.Errorf("issuer: with neither jwks_file nor jwks_uri the issuer is used for OIDC discovery: %w", err)
		}
	}
	if c.RefreshInterval < 0 || c.MinRefetchInterval < 0 || c.FetchTimeout < 0 {
		return errors.New("refresh_interval, min_refetch_interval, fetch_timeout: must not be negative")
	}
	if c.RolesClaim != "" && strings.Contains("."+c.RolesClaim+".", "..") {
		return fmt.Errorf("roles_claim %q: empty path segment", c.RolesClaim)
	}
	if r := c.Revocation; r != nil {
		switch r.OnUnavailable {
		case "", OnUnavailableDeny, OnUnavailableAllow:
		default:
			return fmt.Errorf("revocation.on_unavailable %q: want deny or allow", r.OnUnavailable)
		}
	}
	return nil
}

// checkFetchURL requires https, except for loopback hosts (tests, local IdPs):
// keys fetched over plain HTTP could be swapped by anyone on the path.
func checkFetchURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return err
	}
	switch u.Scheme {
	case "https":
	case "http":
		if !isLoopback(u.Hostname()) {
			return fmt.Errorf("%q: must be https (plain http is accepted only for loopback hosts)", raw)
		}
	default:
		return fmt.Errorf("%q: must be an https URL", raw)
	}
	if u.Host == "" {
		return fmt.Errorf("%q: no host", raw)
	}
	return nil
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
