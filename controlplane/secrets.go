package controlplane

import (
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"

	"github.com/meshguard/meshguard/controlplane/translate"
	"github.com/meshguard/meshguard/identity/devca"
	"github.com/meshguard/meshguard/identity/sds"
)

// svidSecret is the "default" SDS secret: the workload's certificate and key.
func svidSecret(s *devca.SVID) *tlsv3.Secret {
	return sds.CertificateSecret(translate.SecretSVID, s.CertPEM, s.KeyPEM)
}
