// Package sds serves a workload's own SPIFFE identity to a local Envoy over
// the Secret Discovery Service, the way SPIRE's agent does: "default" (the
// X.509-SVID), "ROOTCA" (its trust domain's bundle) and "ALL" (with
// federated bundles), as Envoy SPIFFE validator configs. It pushes a new
// version whenever the source rotates the SVID, without dropping streams.
package sds

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	discovery "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	secretv3 "github.com/envoyproxy/go-control-plane/envoy/service/secret/v3"
	"github.com/envoyproxy/go-control-plane/pkg/cache/v3"
	serverv3 "github.com/envoyproxy/go-control-plane/pkg/server/v3"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"google.golang.org/grpc"

	"github.com/meshguard/meshguard/identity"
	"github.com/meshguard/meshguard/internal/contract"
	"github.com/meshguard/meshguard/internal/periodic"
	"github.com/meshguard/meshguard/internal/xds"
)

// Secret names, as SPIRE's agent serves them.
const (
	SecretSVID   = contract.SecretSVID
	SecretBundle = contract.SecretBundle
	SecretAll    = contract.SecretAll
)

// localNode is the one node every client is served as: the secrets are this
// process's own identity.
const localNode = "local"

// Server is an SDS server over an identity source.
type Server struct {
	src       identity.Source
	federated []spiffeid.TrustDomain
	cache     *xds.Cache
	log       *slog.Logger
	serial    string
}

// New creates a server; federated lists other trust domains whose bundles
// the source has, for "ALL".
func New(src identity.Source, federated []spiffeid.TrustDomain, log *slog.Logger) *Server {
	return &Server{src: src, federated: federated, cache: xds.NewCache(log, nil), log: log}
}

// Register adds the SDS service to a gRPC server.
func (s *Server) Register(ctx context.Context, g *grpc.Server) {
	secretv3.RegisterSecretDiscoveryServiceServer(g, serverv3.NewServer(ctx, anyNode{s.cache}, nil))
}

// Refresh publishes the source's current SVID and bundles if they changed.
func (s *Server) Refresh() error {
	sv, err := s.src.GetX509SVID()
	if err != nil {
		return err
	}
	serial := sv.Certificates[0].SerialNumber.String()
	if serial == s.serial {
		return nil
	}
	certPEM, keyPEM, err := sv.Marshal()
	if err != nil {
		return err
	}
	own, err := s.src.GetX509BundleForTrustDomain(sv.ID.TrustDomain())
	if err != nil {
		return fmt.Errorf("bundle for %s: %w", sv.ID.TrustDomain(), err)
	}
	domains := []TrustDomainBundle{{sv.ID.TrustDomain().Name(), BundlePEM(own.X509Authorities())}}
	all := slices.Clone(domains)
	for _, td := range s.federated {
		b, err := s.src.GetX509BundleForTrustDomain(td)
		if err != nil {
			s.log.Warn("federated bundle unavailable; ALL omits it", "trust_domain", td.Name(), "err", err)
			continue
		}
		all = append(all, TrustDomainBundle{td.Name(), BundlePEM(b.X509Authorities())})
	}
	rootca, err := ValidationSecret(SecretBundle, domains)
	if err != nil {
		return err
	}
	allSecret, err := ValidationSecret(SecretAll, all)
	if err != nil {
		return err
	}
	svid := CertificateSecret(SecretSVID, certPEM, keyPEM)
	ts, err := xds.NewInterner().TypeSet(xds.SecretType, []xds.Named{
		{Name: SecretSVID, Msg: svid}, {Name: SecretBundle, Msg: rootca}, {Name: SecretAll, Msg: allSecret},
	})
	if err != nil {
		return err
	}
	s.cache.SetSnapshot(localNode, xds.Snapshot{xds.SecretType: ts})
	s.serial = serial
	s.log.Info("SVID published over SDS", "spiffe_id", sv.ID.String(), "not_after", sv.Certificates[0].NotAfter)
	return nil
}

// Run refreshes every interval (rotation is picked up within it) until ctx ends.
func (s *Server) Run(ctx context.Context, interval time.Duration) {
	periodic.Every(ctx, interval, func(context.Context) {
		if err := s.Refresh(); err != nil {
			s.log.Error("SDS refresh failed; serving the last SVID", "err", err)
		}
	})
}

// anyNode serves every client as localNode.
type anyNode struct{ *xds.Cache }

func (a anyNode) CreateWatch(req *cache.Request, sub cache.Subscription, ch chan cache.Response) (func(), error) {
	r := cloneWithNode(req)
	return a.Cache.CreateWatch(r, sub, ch)
}

func (a anyNode) CreateDeltaWatch(req *cache.DeltaRequest, sub cache.Subscription, ch chan cache.DeltaResponse) (func(), error) {
	r := &discovery.DeltaDiscoveryRequest{
		Node: &corev3.Node{Id: localNode}, TypeUrl: req.GetTypeUrl(), ResponseNonce: req.GetResponseNonce(),
		ErrorDetail: req.GetErrorDetail(), ResourceNamesSubscribe: req.GetResourceNamesSubscribe(),
		ResourceNamesUnsubscribe: req.GetResourceNamesUnsubscribe(), InitialResourceVersions: req.GetInitialResourceVersions(),
	}
	return a.Cache.CreateDeltaWatch(r, sub, ch)
}

func cloneWithNode(req *cache.Request) *cache.Request {
	return &discovery.DiscoveryRequest{
		VersionInfo: req.GetVersionInfo(), Node: &corev3.Node{Id: localNode}, ResourceNames: req.GetResourceNames(),
		TypeUrl: req.GetTypeUrl(), ResponseNonce: req.GetResponseNonce(), ErrorDetail: req.GetErrorDetail(),
	}
}
