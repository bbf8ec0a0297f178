package extauthz

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/spiffe/go-spiffe/v2/bundle/jwtbundle"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/svid/jwtsvid"
	"github.com/spiffe/go-spiffe/v2/workloadapi"

	"github.com/meshguard/meshguard/identity"
)

// TLSConfig puts the authorizer's gRPC and HTTP listeners behind mTLS with
// SPIFFE authorization (the Envoy → authz hop).
type TLSConfig = identity.TLSConfig

// JWTSVIDConfig accepts workload JWT-SVIDs as bearer tokens: the principal is
// Workload::"<SPIFFE ID>". A bearer token whose sub is a spiffe:// ID is
// treated as a JWT-SVID.
type JWTSVIDConfig struct {
	// Audiences: the token's aud must contain one of them (pin it to this authorizer).
	Audiences []string `yaml:"audiences"`
	// Bundles maps trust domain → JWT bundle file (SPIFFE bundle / JWKS).
	Bundles map[string]string `yaml:"bundles"`
	// WorkloadAPI takes JWT bundles from the SPIFFE Workload API instead.
	WorkloadAPI string `yaml:"workload_api"`
}

// Validate checks the section.
func (c *JWTSVIDConfig) Validate() error {
	if len(c.Audiences) == 0 {
		return errors.New("audiences: at least one is required (a JWT-SVID for another service must not be accepted)")
	}
	if (len(c.Bundles) == 0) == (c.WorkloadAPI == "") {
		return errors.New("set exactly one of bundles and workload_api")
	}
	for td := range c.Bundles {
		if _, err := spiffeid.TrustDomainFromString(td); err != nil {
			return fmt.Errorf("bundles: %q: %w", td, err)
		}
	}
	return nil
}

// svidVerifier checks JWT-SVIDs with go-spiffe.
type svidVerifier struct {
	bundles   jwtbundle.Source
	audiences []string
	maxBytes  int
	close     func()
}

func newSVIDVerifier(ctx context.Context, c *JWTSVIDConfig, maxBytes int) (*svidVerifier, error) {
	v := &svidVerifier{audiences: c.Audiences, maxBytes: maxBytes, close: func() {}}
	if c.WorkloadAPI != "" {
		src, err := workloadapi.NewJWTSource(ctx, workloadapi.WithClientOptions(workloadapi.WithAddr(c.WorkloadAPI)))
		if err != nil {
			return nil, fmt.Errorf("jwt_svid.workload_api: %w", err)
		}
		v.bundles, v.close = src, func() { _ = src.Close() }
		return v, nil
	}
	set := jwtbundle.NewSet()
	for td, path := range c.Bundles {
		b, err := jwtbundle.Load(spiffeid.RequireTrustDomainFromString(td), path)
		if err != nil {
			return nil, fmt.Errorf("jwt_svid.bundles.%s: %w", td, err)
		}
		set.Add(b)
	}
	v.bundles = set
	return v, nil
}

func (v *svidVerifier) verify(token string) (spiffeid.ID, error) {
	if len(token) > v.maxBytes {
		return spiffeid.ID{}, fmt.Errorf("JWT-SVID over %d bytes", v.maxBytes)
	}
	s, err := jwtsvid.ParseAndValidate(token, v.bundles, v.audiences)
	if err != nil {
		return spiffeid.ID{}, err
	}
	return s.ID, nil
}

// looksLikeJWTSVID peeks (unverified) at the payload's sub.
func looksLikeJWTSVID(token string) bool {
	parts := strings.Split(token, ".")
	if len(parts) != 3 || len(parts[1]) > 16<<10 {
		return false
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return false
	}
	var c struct {
		Sub string `json:"sub"`
	}
	return json.Unmarshal(payload, &c) == nil && strings.HasPrefix(c.Sub, "spiffe://")
}
