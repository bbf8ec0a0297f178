package translate

import (
	"os"
	"testing"

	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"

	"github.com/meshguard/meshguard/controlplane/model"
)

// gRPC-Go's xDS credentials fall back to plaintext when a resource carries no
// TLS: every proxyless cluster and server filter chain must have it.
func TestProxylessResourcesAlwaysCarryTLS(t *testing.T) {
	data, err := os.ReadFile("testdata/proxyless/in.yaml")
	if err != nil {
		t.Fatal(err)
	}
	m, err := model.Parse(data, nil)
	if err != nil {
		t.Fatal(err)
	}
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
	data, _ := os.ReadFile("testdata/proxyless/in.yaml")
	m, err := model.Parse(data, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Proxyless(m, "batch-0"); err == nil {
		t.Fatal("a sidecar workload got the proxyless flavour")
	}
	if _, err := Workload(m, "orders-0"); err == nil {
		t.Fatal("a proxyless workload got a sidecar config")
	}
}
