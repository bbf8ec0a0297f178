package controlplane

import (
	"crypto/x509"
	"encoding/pem"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	"google.golang.org/protobuf/types/known/anypb"

	"github.com/meshguard/meshguard/controlplane/translate"
	"github.com/meshguard/meshguard/identity/devca"
)

// svidSecret is the "default" SDS secret: the workload's certificate and key.
func svidSecret(s *devca.SVID) *tlsv3.Secret {
	return &tlsv3.Secret{Name: translate.SecretSVID, Type: &tlsv3.Secret_TlsCertificate{TlsCertificate: &tlsv3.TlsCertificate{
		CertificateChain: &corev3.DataSource{Specifier: &corev3.DataSource_InlineBytes{InlineBytes: s.CertPEM}},
		PrivateKey:       &corev3.DataSource{Specifier: &corev3.DataSource_InlineBytes{InlineBytes: s.KeyPEM}},
	}}}
}

// bundleSecret is the "ROOTCA" SDS secret, shaped as SPIRE's agent serves it:
// Envoy's SPIFFE certificate validator with one bundle per trust domain.
// One concatenated trusted_ca would let any trusted CA mint any trust
// domain's IDs; per-domain bundles do not.
// name is ROOTCA (own trust domain) or ALL (with federated ones).
func bundleSecret(name string, domains []domainBundle) (*tlsv3.Secret, error) {
	cfg := &tlsv3.SPIFFECertValidatorConfig{}
	for _, d := range domains {
		cfg.TrustDomains = append(cfg.TrustDomains, &tlsv3.SPIFFECertValidatorConfig_TrustDomain{
			Name:        d.name,
			TrustBundle: &corev3.DataSource{Specifier: &corev3.DataSource_InlineBytes{InlineBytes: d.pem}},
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

// domainBundle is one trust domain's CA certificates, PEM.
type domainBundle struct {
	name string
	pem  []byte
}

func pemCerts(certs []*x509.Certificate) []byte {
	var b []byte
	for _, c := range certs {
		b = append(b, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})...)
	}
	return b
}
