package main

import (
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	sotwclient "github.com/envoyproxy/go-control-plane/pkg/client/sotw/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/meshguard/meshguard/controlplane"
	"github.com/meshguard/meshguard/internal/xds"
)

func TestStatusShowsRealProxies(t *testing.T) {
	dir := t.TempDir()
	mesh, err := os.ReadFile("../../controlplane/testdata/sidecars/mesh.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if err := writeFile(filepath.Join(dir, "mesh.yaml"), strings.Replace(string(mesh), "../../../examples/quickstart/policies", "./policies", 1)); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"policies/health.cedar", "policies/frontend/frontend.cedar", "policies/orders/read.cedar",
		"policies/orders/write.cedar", "policies/payments/payments.cedar"} {
		b, err := os.ReadFile(filepath.Join("../../examples/quickstart", f))
		if err != nil {
			t.Fatal(err)
		}
		if err := writeFile(filepath.Join(dir, f), string(b)); err != nil {
			t.Fatal(err)
		}
	}
	s, err := controlplane.New(controlplane.Config{MeshPath: filepath.Join(dir, "mesh.yaml"), Listen: "127.0.0.1:0",
		AdminListen: "127.0.0.1:0", CADir: filepath.Join(dir, "ca")}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if err := s.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer s.Stop(context.Background())
	conn, err := grpc.NewClient(s.Addr(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	c := sotwclient.NewADSClient(ctx, &corev3.Node{Id: "orders-0", Cluster: "orders"}, xds.ClusterType)
	if err := c.InitConnect(conn); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Fetch(); err != nil {
		t.Fatal(err)
	}
	if err := c.Ack(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		out, err := run(t, "status", "--admin", s.AdminAddr())
		if err != nil {
			t.Fatal(err)
		}
		line := ""
		for _, l := range strings.Split(out, "\n") {
			if strings.HasPrefix(l, "orders-0") {
				line = l
			}
		}
		if strings.Contains(line, "true") && strings.Contains(line, "SYNCED") && strings.Contains(line, "NOT SENT") {
			if !strings.HasPrefix(out, "NAME") || !strings.Contains(out, "payments-0") {
				t.Fatalf("status table:\n%s", out)
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("orders-0 never showed as connected and SYNCED:\n%s", out)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestTranslateAndBootstrapCommands(t *testing.T) {
	out, err := run(t, "translate", "--mesh", "../../controlplane/testdata/sidecars/mesh.yaml", "--workload", "orders-0")
	if err != nil || !strings.Contains(out, "outbound|payments") || !strings.Contains(out, "meshguard.route: orders/write") {
		t.Fatalf("translate: %v\n%.400s", err, out)
	}
	out, err = run(t, "bootstrap", "--mesh", "../../controlplane/testdata/sidecars/mesh.yaml", "--workload", "frontend-0")
	if err != nil || !strings.Contains(out, "id: frontend-0") || !strings.Contains(out, "meshguard-xds") {
		t.Fatalf("bootstrap: %v\n%s", err, out)
	}
	if _, err := run(t, "bootstrap", "--mesh", "../../controlplane/testdata/sidecars/mesh.yaml", "--workload", "ghost"); err == nil {
		t.Fatal("bootstrap for an unknown workload succeeded")
	}
}
