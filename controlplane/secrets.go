package controlplane

import (
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
func bundleSecret(trustDomain string, bundlePEM []byte) (*tlsv3.Secret, error) {
	cfg := &tlsv3.SPIFFECertValidatorConfig{TrustDomains: []*tlsv3.SPIFFECertValidatorConfig_TrustDomain{{
		Name:        trustDomain,
		TrustBundle: &corev3.DataSource{Specifier: &corev3.DataSource_InlineBytes{InlineBytes: bundlePEM}},
	}}}
	if err := cfg.ValidateAll(); err != nil {
		return nil, err
	}
	a, err := anypb.New(cfg)
	if err != nil {
		return nil, err
	}
	return &tlsv3.Secret{Name: translate.SecretBundle, Type: &tlsv3.Secret_ValidationContext{ValidationContext: &tlsv3.CertificateValidationContext{
		CustomValidatorConfig: &corev3.TypedExtensionConfig{Name: "envoy.tls.cert_validator.spiffe", TypedConfig: a},
	}}}, nil
}
