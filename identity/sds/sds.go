// Package sds serves a workload's own SPIFFE identity to a local Envoy over
// the Secret Discovery Service, the way SPIRE's agent does: "default" (the
// X.509-SVID), "ROOTCA" (its trust domain's bundle) and "ALL" (with
// federated bundles), as Envoy SPIFFE validator configs. It pushes a new
// version whenever the source rotates the SVID, without dropping streams.
package sds

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"log/slog"
	"slices"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	discovery "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	secretv3 "github.com/envoyproxy/go-control-plane/envoy/service/secret/v3"
	"github.com/envoyproxy/go-control-plane/pkg/cache/v3"
	serverv3 "github.com/envoyproxy/go-control-plane/pkg/server/v3"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/types/known/anypb"

	"github.com/meshguard/meshguard/controlplane/xds"
	"github.com/meshguard/meshguard/identity"
)

// Secret names, as SPIRE's agent serves them.
const (
	SecretSVID   = "default"
	SecretBundle = "ROOTCA"
	SecretAll    = "ALL"
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
	domains := []trustDomainBundle{{sv.ID.TrustDomain().Name(), encode(own.X509Authorities())}}
	all := slices.Clone(domains)
	for _, td := range s.federated {
		b, err := s.src.GetX509BundleForTrustDomain(td)
		if err != nil {
			s.log.Warn("federated bundle unavailable; ALL omits it", "trust_domain", td.Name(), "err", err)
			continue
		}
		all = append(all, trustDomainBundle{td.Name(), encode(b.X509Authorities())})
	}
	rootca, err := validationSecret(SecretBundle, domains)
	if err != nil {
		return err
	}
	allSecret, err := validationSecret(SecretAll, all)
	if err != nil {
		return err
	}
	svid := &tlsv3.Secret{Name: SecretSVID, Type: &tlsv3.Secret_TlsCertificate{TlsCertificate: &tlsv3.TlsCertificate{
		CertificateChain: &corev3.DataSource{Specifier: &corev3.DataSource_InlineBytes{InlineBytes: certPEM}},
		PrivateKey:       &corev3.DataSource{Specifier: &corev3.DataSource_InlineBytes{InlineBytes: keyPEM}},
	}}}
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
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := s.Refresh(); err != nil {
				s.log.Error("SDS refresh failed; serving the last SVID", "err", err)
			}
		}
	}
}

type trustDomainBundle struct {
	name string
	pem  []byte
}

func encode(certs []*x509.Certificate) []byte {
	var b bytes.Buffer
	for _, c := range certs {
		_ = pem.Encode(&b, &pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})
	}
	return b.Bytes()
}

// validationSecret is Envoy's SPIFFE certificate validator with one bundle
// per trust domain: a peer is checked against its own trust domain's CAs only.
func validationSecret(name string, domains []trustDomainBundle) (*tlsv3.Secret, error) {
	cfg := &tlsv3.SPIFFECertValidatorConfig{}
	for _, d := range domains {
		cfg.TrustDomains = append(cfg.TrustDomains, &tlsv3.SPIFFECertValidatorConfig_TrustDomain{
			Name: d.name, TrustBundle: &corev3.DataSource{Specifier: &corev3.DataSource_InlineBytes{InlineBytes: d.pem}},
		})
	}
	if err := cfg.ValidateAll(); err != nil {
		return nil, err
	}
	a, err := anypb.New(cfg)
	if err != nil {
		return nil, err
	}
	return &tlsv3.Secret{Name: name, Type: &tlsv3.Secret_ValidationContext{ValidationContext: &tlsv3.CertificateValidationContext{
		CustomValidatorConfig: &corev3.TypedExtensionConfig{Name: "envoy.tls.cert_validator.spiffe", TypedConfig: a},
	}}}, nil
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
