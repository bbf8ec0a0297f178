package translate

import (
	"testing"

	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
)

// gRPC-Go's xDS credentials fall back to plaintext when a resource carries no
// TLS: every proxyless cluster and server filter chain must have it.
func TestProxylessResourcesAlwaysCarryTLS(t *testing.T) {
	m := loadMesh(t, "testdata/proxyless/in.yaml")
	for _, name := range []string{"frontend-0", "orders-0"} {
		r, err := Proxyless(m, name)
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range r.Clusters {
			var tls tlsv3.UpstreamTlsContext
			if err := c.GetTransportSocket().GetTypedConfig().UnmarshalTo(&tls); err != nil {
				t.Fatalf("%s cluster %s: no TLS transport socket: %v", name, c.GetName(), err)
			}
			vc := tls.GetCommonTlsContext().GetValidationContext()
			//lint:ignore SA1019 the legacy field is the one gRPC-Go reads
			if vc.GetCaCertificateProviderInstance() == nil || len(vc.GetMatchSubjectAltNames()) != 1 {
				t.Fatalf("%s cluster %s: server identity not pinned: %v", name, c.GetName(), vc)
			}
		}
		for _, l := range r.Listeners {
			if l.GetApiListener() != nil {
				continue
			}
			for _, fc := range l.GetFilterChains() {
				var tls tlsv3.DownstreamTlsContext
				if err := fc.GetTransportSocket().GetTypedConfig().UnmarshalTo(&tls); err != nil {
					t.Fatalf("%s listener %s: no TLS: %v", name, l.GetName(), err)
				}
				if !tls.GetRequireClientCertificate().GetValue() {
					t.Fatalf("%s listener %s: client certificates not required", name, l.GetName())
				}
			}
		}
	}
}

func TestProxylessNeedsGRPC(t *testing.T) {
	m := loadMesh(t, "testdata/proxyless/in.yaml")
	if _, err := Proxyless(m, "batch-0"); err == nil {
		t.Fatal("a sidecar workload got the proxyless flavour")
	}
	if _, err := Workload(m, "orders-0"); err == nil {
		t.Fatal("a proxyless workload got a sidecar config")
	}
}
