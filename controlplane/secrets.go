package controlplane

import (
	"context"
	"crypto/x509"
	"fmt"
	"log/slog"
	"reflect"
	"sync"
	"time"

	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	"github.com/spiffe/go-spiffe/v2/bundle/x509bundle"
	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"github.com/meshguard/meshguard/controlplane/model"
	"github.com/meshguard/meshguard/controlplane/translate"
	"github.com/meshguard/meshguard/identity"
	"github.com/meshguard/meshguard/identity/devca"
	"github.com/meshguard/meshguard/identity/sds"
)

// secrets are the identity material the control plane serves over SDS,
// kept apart from snapshot assembly: the dev CA (with identity provider
// meshguard), the federated trust domains' bundles, and each workload's
// SVID, re-issued once half its lifetime has passed. A mesh version is
// prepared (forMesh) and only committed once its snapshots built.
type secrets struct {
	loadCA func(spiffeid.TrustDomain) (*devca.CA, error)
	ttl    time.Duration
	log    *slog.Logger

	mu    sync.Mutex
	ca    *devca.CA
	fed   *identity.Bundles      // federated trust domains' bundles, or nil
	svids map[string]*devca.SVID // workload → current SVID
}

// secretsVersion is what one mesh version serves.
type secretsVersion struct {
	ca  *devca.CA         // nil with provider spire
	fed *identity.Bundles // nil without federation
}

func newSecrets(caDir string, ttl time.Duration, log *slog.Logger) *secrets {
	return &secrets{ttl: ttl, log: log, svids: map[string]*devca.SVID{},
		loadCA: func(td spiffeid.TrustDomain) (*devca.CA, error) { return devca.LoadOrCreate(caDir, td) }}
}

// forMesh prepares the CA and bundles m needs; prev is the mesh in force.
func (s *secrets) forMesh(m, prev *model.Mesh) (secretsVersion, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	td, err := spiffeid.TrustDomainFromString(m.Spec.TrustDomain)
	if err != nil {
		return secretsVersion{}, err
	}
	v := secretsVersion{ca: s.ca, fed: s.fed}
	if m.Spec.Identity.Provider == model.ProviderMeshguard && (v.ca == nil || v.ca.TrustDomain() != td) {
		if v.ca, err = s.loadCA(td); err != nil {
			return secretsVersion{}, fmt.Errorf("dev CA: %w", err)
		}
	}
	if len(m.Spec.Federation) == 0 {
		v.fed = nil
	} else if prev == nil || !reflect.DeepEqual(prev.Spec.Federation, m.Spec.Federation) {
		if v.fed, err = identity.NewBundles(m.Spec.Federation, nil, s.log); err != nil {
			return secretsVersion{}, err
		}
	}
	if v.fed != nil && v.ca != nil {
		v.fed.SetTrusted(x509bundle.FromX509Authorities(td, []*x509.Certificate{v.ca.Certificate()}))
	}
	return v, nil
}

// commit makes v and the SVIDs issued for it the ones in force.
func (s *secrets) commit(v secretsVersion, svids map[string]*devca.SVID) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.ca, s.fed, s.svids = v.ca, v.fed, svids
}

// bundleSecret is the trust bundle secret of v: ROOTCA, or ALL with the
// federated bundles that are available (nil without a CA).
func (s *secrets) bundleSecret(m *model.Mesh, v secretsVersion) (*tlsv3.Secret, error) {
	if v.ca == nil {
		return nil, nil
	}
	domains := []sds.TrustDomainBundle{{Name: m.Spec.TrustDomain, PEM: v.ca.BundlePEM()}}
	name := translate.SecretBundle
	if v.fed != nil {
		name = translate.SecretAll
		for _, td := range v.fed.TrustDomains() {
			xb, err := v.fed.GetX509BundleForTrustDomain(td)
			if err != nil {
				s.log.Warn("federated bundle not available yet; ALL omits it", "trust_domain", td.Name(), "err", err)
				continue
			}
			domains = append(domains, sds.TrustDomainBundle{Name: td.Name(), PEM: sds.BundlePEM(xb.X509Authorities())})
		}
	}
	return sds.ValidationSecret(name, domains)
}

// svidFor reuses the workload's SVID until half its lifetime has passed,
// issuing a new one from v's CA otherwise.
func (s *secrets) svidFor(v secretsVersion, id, workload string) (*devca.SVID, error) {
	s.mu.Lock()
	cur, ok := s.svids[workload]
	sameCA := s.ca == v.ca
	s.mu.Unlock()
	if ok && cur.ID.String() == id && time.Until(cur.NotAfter) > s.ttl/2 && sameCA {
		return cur, nil
	}
	sid, err := spiffeid.FromString(id)
	if err != nil {
		return nil, err
	}
	return v.ca.Issue(sid, s.ttl)
}

// refreshBundles refetches the federated bundles (the last good ones stay
// on failure).
func (s *secrets) refreshBundles(ctx context.Context) {
	s.mu.Lock()
	fed := s.fed
	s.mu.Unlock()
	if fed != nil {
		_ = fed.Refresh(ctx)
	}
}

// svidSecret is the "default" SDS secret: the workload's certificate and key.
func svidSecret(sv *devca.SVID) *tlsv3.Secret {
	return sds.CertificateSecret(translate.SecretSVID, sv.CertPEM, sv.KeyPEM)
}

// expiries are when the soonest of the served SVIDs and the dev CA expire
// (zero when there is none), for the SVID expiry metrics.
func (s *secrets) expiries() (svid, ca time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, v := range s.svids {
		if svid.IsZero() || v.NotAfter.Before(svid) {
			svid = v.NotAfter
		}
	}
	if s.ca != nil {
		ca = s.ca.Certificate().NotAfter
	}
	return svid, ca
}
