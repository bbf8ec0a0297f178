package identity

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"slices"

	"github.com/spiffe/go-spiffe/v2/bundle/x509bundle"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/spiffetls/tlsconfig"

	"github.com/meshguard/meshguard/identity/svid"
)

// Policy decides which peers may connect: exact SPIFFE IDs, or any ID of the
// listed trust domains. An empty policy allows no one.
type Policy struct {
	IDs          []string `yaml:"allowed_ids"`
	TrustDomains []string `yaml:"allowed_trust_domains"`
}

// Validate checks the policy's IDs and trust domains.
func (p Policy) Validate() error {
	for _, s := range p.IDs {
		if _, err := spiffeid.FromString(s); err != nil {
			return fmt.Errorf("allowed_ids: %q: %w", s, err)
		}
	}
	for _, s := range p.TrustDomains {
		if _, err := spiffeid.TrustDomainFromString(s); err != nil {
			return fmt.Errorf("allowed_trust_domains: %q: %w", s, err)
		}
	}
	if len(p.IDs) == 0 && len(p.TrustDomains) == 0 {
		return fmt.Errorf("allowed_ids or allowed_trust_domains: at least one peer must be allowed")
	}
	return nil
}

// authorizer runs the checks go-spiffe's verification leaves out (svid.LeafProblems)
// on the verified leaf, then the policy.
func (p Policy) authorizer() tlsconfig.Authorizer {
	return func(id spiffeid.ID, chains [][]*x509.Certificate) error {
		if len(chains) == 0 || len(chains[0]) == 0 {
			return fmt.Errorf("peer %s: no verified chain", id)
		}
		if _, problems := svid.LeafProblems(chains[0][0]); len(problems) > 0 {
			return &svid.Error{Reasons: problems}
		}
		if slices.Contains(p.IDs, id.String()) || slices.Contains(p.TrustDomains, id.TrustDomain().Name()) {
			return nil
		}
		return fmt.Errorf("peer %s is not allowed", id)
	}
}

// ServerTLS is a TLS config for a server that requires client SVIDs
// accepted by p. TLS 1.3 key exchange keeps Go's defaults, which include the
// hybrid post-quantum X25519MLKEM768.
func ServerTLS(src Source, bundles x509bundle.Source, p Policy) *tls.Config {
	c := tlsconfig.MTLSServerConfig(src, bundles, p.authorizer())
	c.MinVersion = tls.VersionTLS12
	return c
}

// ClientTLS is a TLS config for a client that presents its SVID and accepts
// only servers allowed by p.
func ClientTLS(src Source, bundles x509bundle.Source, p Policy) *tls.Config {
	c := tlsconfig.MTLSClientConfig(src, bundles, p.authorizer())
	c.MinVersion = tls.VersionTLS12
	return c
}
