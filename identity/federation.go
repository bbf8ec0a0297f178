package identity

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/meshguard/meshguard/internal/periodic"
	"github.com/spiffe/go-spiffe/v2/bundle/x509bundle"
	"github.com/spiffe/go-spiffe/v2/federation"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
)

// Federated names another trust domain whose workloads this mesh trusts, and
// where its bundle comes from: a file, or a SPIFFE bundle endpoint.
type Federated struct {
	TrustDomain string `yaml:"trustDomain"`
	// BundleFile is a PEM bundle (X.509 authorities) on disk.
	BundleFile string `yaml:"bundleFile"`
	// BundleEndpointURL is the other domain's SPIFFE bundle endpoint (https).
	BundleEndpointURL string `yaml:"bundleEndpointURL"`
	// EndpointSPIFFEID selects the https_spiffe profile: the endpoint must
	// present this SPIFFE ID, checked against bundles we already trust.
	// Without it, the endpoint is checked with Web PKI (https_web).
	EndpointSPIFFEID string `yaml:"endpointSPIFFEID"`
}

// Validate checks one entry.
func (f Federated) Validate() error {
	if _, err := spiffeid.TrustDomainFromString(f.TrustDomain); err != nil {
		return fmt.Errorf("trustDomain: %w", err)
	}
	if (f.BundleFile == "") == (f.BundleEndpointURL == "") {
		return errors.New("set exactly one of bundleFile and bundleEndpointURL")
	}
	if f.EndpointSPIFFEID != "" {
		if _, err := spiffeid.FromString(f.EndpointSPIFFEID); err != nil {
			return fmt.Errorf("endpointSPIFFEID: %w", err)
		}
	}
	return nil
}

// Bundles holds the federated trust domains' X.509 bundles, refreshed from
// their endpoints. A failed refresh keeps the last good bundle.
type Bundles struct {
	entries []Federated
	trusted x509bundle.Source // authenticates https_spiffe endpoints
	log     *slog.Logger

	mu  sync.RWMutex
	set *x509bundle.Set
}

// NewBundles loads the file bundles now; endpoints are fetched by Refresh.
func NewBundles(entries []Federated, trusted x509bundle.Source, log *slog.Logger) (*Bundles, error) {
	b := &Bundles{entries: entries, trusted: trusted, log: log, set: x509bundle.NewSet()}
	for _, e := range entries {
		if err := e.Validate(); err != nil {
			return nil, fmt.Errorf("federation %s: %w", e.TrustDomain, err)
		}
		if e.BundleFile == "" {
			continue
		}
		xb, err := x509bundle.Load(spiffeid.RequireTrustDomainFromString(e.TrustDomain), e.BundleFile)
		if err != nil {
			return nil, fmt.Errorf("federation %s: %w", e.TrustDomain, err)
		}
		b.set.Add(xb)
	}
	return b, nil
}

// SetTrusted sets the bundles that authenticate https_spiffe endpoints.
func (b *Bundles) SetTrusted(s x509bundle.Source) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.trusted = s
}

// TrustDomains lists the federated trust domains.
func (b *Bundles) TrustDomains() []spiffeid.TrustDomain {
	out := make([]spiffeid.TrustDomain, 0, len(b.entries))
	for _, e := range b.entries {
		out = append(out, spiffeid.RequireTrustDomainFromString(e.TrustDomain))
	}
	return out
}

// Refresh fetches every endpoint bundle once.
func (b *Bundles) Refresh(ctx context.Context) error {
	var errs []error
	for _, e := range b.entries {
		if e.BundleEndpointURL == "" {
			continue
		}
		td := spiffeid.RequireTrustDomainFromString(e.TrustDomain)
		var opts []federation.FetchOption
		if e.EndpointSPIFFEID != "" {
			b.mu.RLock()
			trusted := b.trusted
			b.mu.RUnlock()
			if trusted == nil {
				errs = append(errs, fmt.Errorf("federation %s: no trusted bundle to authenticate %s", td, e.EndpointSPIFFEID))
				continue
			}
			opts = append(opts, federation.WithSPIFFEAuth(trusted, spiffeid.RequireFromString(e.EndpointSPIFFEID)))
		}
		fctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		sb, err := federation.FetchBundle(fctx, td, e.BundleEndpointURL, opts...)
		cancel()
		if err != nil {
			errs = append(errs, fmt.Errorf("federation %s: %w", td, err))
			b.log.Error("federated bundle not refreshed; keeping the last good one", "trust_domain", td.Name(), "err", err)
			continue
		}
		b.mu.Lock()
		b.set.Add(sb.X509Bundle())
		b.mu.Unlock()
	}
	return errors.Join(errs...)
}

// Run refreshes every interval until ctx ends.
func (b *Bundles) Run(ctx context.Context, interval time.Duration) {
	_ = b.Refresh(ctx)
	periodic.Every(ctx, interval, func(ctx context.Context) { _ = b.Refresh(ctx) })
}

// GetX509BundleForTrustDomain implements x509bundle.Source.
func (b *Bundles) GetX509BundleForTrustDomain(td spiffeid.TrustDomain) (*x509bundle.Bundle, error) {
	b.mu.RLock()
	defer b.mu.RUnlock()
	return b.set.GetX509BundleForTrustDomain(td)
}

// Union serves the first source's bundle for a trust domain, else the next's.
type Union []x509bundle.Source

// GetX509BundleForTrustDomain implements x509bundle.Source.
func (u Union) GetX509BundleForTrustDomain(td spiffeid.TrustDomain) (*x509bundle.Bundle, error) {
	var last error
	for _, s := range u {
		b, err := s.GetX509BundleForTrustDomain(td)
		if err == nil {
			return b, nil
		}
		last = err
	}
	if last == nil {
		last = fmt.Errorf("no bundle for trust domain %q", td)
	}
	return nil, last
}
