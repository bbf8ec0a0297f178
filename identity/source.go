package identity

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/spiffe/go-spiffe/v2/bundle/x509bundle"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"
	"github.com/spiffe/go-spiffe/v2/workloadapi"

	"github.com/meshguard/meshguard/identity/devca"
)

// Source supplies this process's X.509-SVID and the trust bundles to
// validate peers with. go-spiffe's workloadapi.X509Source is one.
type Source interface {
	x509svid.Source
	x509bundle.Source
}

// WorkloadAPI connects to a SPIFFE Workload API (a SPIRE agent) at addr
// ("unix:///run/spire/sockets/agent.sock"; empty: SPIFFE_ENDPOINT_SOCKET) and
// returns once the first SVID arrived. Close it when done.
func WorkloadAPI(ctx context.Context, addr string) (*workloadapi.X509Source, error) {
	var opts []workloadapi.X509SourceOption
	if addr != "" {
		opts = append(opts, workloadapi.WithClientOptions(workloadapi.WithAddr(addr)))
	}
	src, err := workloadapi.NewX509Source(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("SPIFFE Workload API %s: %w", addr, err)
	}
	return src, nil
}

// DevCASource issues this process's own SVID from the embedded dev CA and
// re-issues it after half its lifetime, so it never presents an expiring
// certificate. Federated bundles may be added.
type DevCASource struct {
	ca  *devca.CA
	id  spiffeid.ID
	ttl time.Duration
	now func() time.Time

	mu      sync.Mutex
	svid    *x509svid.SVID
	renewAt time.Time
	extra   *x509bundle.Set
}

// NewDevCASource issues id's first SVID.
func NewDevCASource(ca *devca.CA, id spiffeid.ID, ttl time.Duration) (*DevCASource, error) {
	if ttl <= 0 {
		ttl = devca.DefaultSVIDTTL
	}
	s := &DevCASource{ca: ca, id: id, ttl: ttl, now: time.Now, extra: x509bundle.NewSet()}
	if _, err := s.GetX509SVID(); err != nil {
		return nil, err
	}
	return s, nil
}

// GetX509SVID implements x509svid.Source.
func (s *DevCASource) GetX509SVID() (*x509svid.SVID, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.svid != nil && s.now().Before(s.renewAt) {
		return s.svid, nil
	}
	issued, err := s.ca.Issue(s.id, s.ttl)
	if err != nil {
		return nil, err
	}
	sv, err := x509svid.Parse(issued.CertPEM, issued.KeyPEM)
	if err != nil {
		return nil, err
	}
	s.svid = sv
	s.renewAt = s.now().Add(time.Until(issued.NotAfter) / 2)
	return sv, nil
}

// AddBundle trusts another trust domain's authorities (federation).
func (s *DevCASource) AddBundle(b *x509bundle.Bundle) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.extra.Add(b)
}

// GetX509BundleForTrustDomain implements x509bundle.Source.
func (s *DevCASource) GetX509BundleForTrustDomain(td spiffeid.TrustDomain) (*x509bundle.Bundle, error) {
	if td == s.ca.TrustDomain() {
		return x509bundle.FromX509Authorities(td, []*x509.Certificate{s.ca.Certificate()}), nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.extra.GetX509BundleForTrustDomain(td)
}

// FileSource reads an SVID (certificate chain and key, PEM) and a bundle
// file, as written by `meshguard identity issue`, re-reading them when they
// change on disk (checked at most once a second).
type FileSource struct {
	certFile, keyFile, bundleFile string

	mu      sync.Mutex
	svid    *x509svid.SVID
	bundles *x509bundle.Set
	mtimes  [3]time.Time
	checked time.Time
}

// NewFileSource loads the files once and returns an error if they do not
// form an SVID whose trust domain has a bundle.
func NewFileSource(certFile, keyFile, bundleFile string) (*FileSource, error) {
	s := &FileSource{certFile: certFile, keyFile: keyFile, bundleFile: bundleFile}
	if err := s.reload(true); err != nil {
		return nil, err
	}
	return s, nil
}

func (s *FileSource) reload(force bool) error {
	var mt [3]time.Time
	for i, f := range []string{s.certFile, s.keyFile, s.bundleFile} {
		fi, err := os.Stat(f)
		if err != nil {
			return err
		}
		mt[i] = fi.ModTime()
	}
	if !force && mt == s.mtimes {
		return nil
	}
	sv, err := x509svid.Load(s.certFile, s.keyFile)
	if err != nil {
		return fmt.Errorf("SVID %s: %w", s.certFile, err)
	}
	b, err := x509bundle.Load(sv.ID.TrustDomain(), s.bundleFile)
	if err != nil {
		return fmt.Errorf("bundle %s: %w", s.bundleFile, err)
	}
	s.svid, s.bundles, s.mtimes = sv, x509bundle.NewSet(b), mt
	return nil
}

func (s *FileSource) maybeReload() {
	if time.Since(s.checked) < time.Second {
		return
	}
	s.checked = time.Now()
	_ = s.reload(false) // a half-written file keeps the last good SVID
}

// GetX509SVID implements x509svid.Source.
func (s *FileSource) GetX509SVID() (*x509svid.SVID, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.maybeReload()
	if s.svid == nil {
		return nil, errors.New("no SVID loaded")
	}
	return s.svid, nil
}

// GetX509BundleForTrustDomain implements x509bundle.Source.
func (s *FileSource) GetX509BundleForTrustDomain(td spiffeid.TrustDomain) (*x509bundle.Bundle, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.maybeReload()
	return s.bundles.GetX509BundleForTrustDomain(td)
}
