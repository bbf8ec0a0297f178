package sds

import (
	"crypto/x509"
	"encoding/pem"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	"google.golang.org/protobuf/types/known/anypb"
)

// The secrets below are shaped as SPIRE's agent serves them, so a sidecar
// configured for SPIRE works unchanged against meshguard (the control
// plane's per-workload SDS and this package's local server both use them).

// CertificateSecret is a TLS certificate secret ("default"): an
// X.509-SVID chain and its private key, PEM.
func CertificateSecret(name string, certPEM, keyPEM []byte) *tlsv3.Secret {
	return &tlsv3.Secret{Name: name, Type: &tlsv3.Secret_TlsCertificate{TlsCertificate: &tlsv3.TlsCertificate{
		CertificateChain: &corev3.DataSource{Specifier: &corev3.DataSource_InlineBytes{InlineBytes: certPEM}},
		PrivateKey:       &corev3.DataSource{Specifier: &corev3.DataSource_InlineBytes{InlineBytes: keyPEM}},
	}}}
}

// TrustDomainBundle is one trust domain's CA certificates, PEM.
type TrustDomainBundle struct {
	Name string
	PEM  []byte
}

// BundlePEM encodes CA certificates as concatenated PEM blocks.
func BundlePEM(certs []*x509.Certificate) []byte {
	var b []byte
	for _, c := range certs {
		b = append(b, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})...)
	}
	return b
}

// ValidationSecret is a validation context secret ("ROOTCA", or "ALL" with
// federated trust domains) holding Envoy's SPIFFE certificate validator
// with one bundle per trust domain: a peer is checked against its own
// trust domain's CAs only. One concatenated trusted_ca would let any
// trusted CA mint any trust domain's IDs.
func ValidationSecret(name string, domains []TrustDomainBundle) (*tlsv3.Secret, error) {
	cfg := &tlsv3.SPIFFECertValidatorConfig{}
	for _, d := range domains {
		cfg.TrustDomains = append(cfg.TrustDomains, &tlsv3.SPIFFECertValidatorConfig_TrustDomain{
			Name:        d.Name,
			TrustBundle: &corev3.DataSource{Specifier: &corev3.DataSource_InlineBytes{InlineBytes: d.PEM}},
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
