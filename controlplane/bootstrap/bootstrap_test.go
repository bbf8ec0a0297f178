package bootstrap

import (
	"os"
	"strings"
	"testing"

	"github.com/meshguard/meshguard/controlplane/model"
)

func quickstart(t *testing.T) *model.Mesh {
	t.Helper()
	data, err := os.ReadFile("../testdata/sidecars/mesh.yaml")
	if err != nil {
		t.Fatal(err)
	}
	m, err := model.Parse(data, nil)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestEveryQuickstartSidecarGetsAValidBootstrap(t *testing.T) {
	m := quickstart(t)
	for _, svc := range m.Spec.Services {
		for _, w := range svc.Workloads {
			b, err := Envoy(m, w.Name)
			if err != nil {
				t.Fatal(err)
			}
			if b.GetNode().GetId() != w.Name || b.GetNode().GetCluster() != svc.Name {
				t.Fatalf("node = %v", b.GetNode())
			}
			if got := b.GetAdmin().GetAddress().GetSocketAddress().GetAddress(); got != w.Address {
				t.Fatalf("admin on %s, want the workload's loopback address %s", got, w.Address)
			}
			if b.GetDynamicResources().GetAdsConfig().GetTransportApiVersion().String() != "V3" {
				t.Fatal("ADS not V3")
			}
		}
	}
}

func TestUnknownWorkload(t *testing.T) {
	if _, err := Envoy(quickstart(t), "nope"); err == nil || !strings.Contains(err.Error(), "no workload") {
		t.Fatalf("err = %v", err)
	}
}

func TestAdminStaysOnLoopbackForPodAddresses(t *testing.T) {
	if got := adminAddress(&model.Workload{Address: "10.1.2.3"}); got != "127.0.0.1" {
		t.Fatalf("admin on %s", got)
	}
}

// With spec.xds.socket the sidecar reaches the control plane over its Unix
// socket, where its uid proves it is the workload.
func TestTheXDSSocketReplacesTheAddress(t *testing.T) {
	m := quickstart(t)
	m.Spec.XDS.Socket = "/run/meshguard/xds.sock"
	b, err := Envoy(m, "orders-0")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range b.GetStaticResources().GetClusters() {
		if c.GetName() != XDSCluster {
			continue
		}
		ep := c.GetLoadAssignment().GetEndpoints()[0].GetLbEndpoints()[0].GetEndpoint().GetAddress()
		if ep.GetPipe().GetPath() != "/run/meshguard/xds.sock" {
			t.Fatalf("xDS cluster endpoint %v, want the socket", ep)
		}
		return
	}
	t.Fatal("no xDS cluster")
}
