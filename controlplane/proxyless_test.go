package controlplane

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	"github.com/meshguard/meshguard/identity/devca"
	cpxds "github.com/meshguard/meshguard/internal/xds"
	"github.com/meshguard/meshguard/internal/xdstest"
)

// proxylessMesh: frontend (proxyless client) → orders (proxyless server).
const proxylessMesh = `apiVersion: meshguard.dev/v1alpha1
kind: Mesh
metadata: {name: proxyless}
spec:
  trustDomain: meshguard.test
  authz: {address: 127.0.0.1:9191}
  xds: {address: %s}
  services:
    - name: frontend
      protocol: grpc
      port: 1
      calls: [orders]
      workloads: [{name: frontend-0, address: 127.0.0.1, appPort: 1, proxyless: true}]
    - name: orders
      protocol: grpc
      port: %d
      workloads:
%s`

type proxylessEnv struct {
	*xdstest.Proxyless
	t      *testing.T
	dir    string
	mesh   string
	cp     *Server
	cpAddr string
}

func newProxylessEnv(t *testing.T) *proxylessEnv {
	t.Helper()
	dir := t.TempDir()
	// The control plane's address is named by bootstraps before it listens.
	e := &proxylessEnv{t: t, dir: dir, mesh: filepath.Join(dir, "mesh.yaml"), cpAddr: xdstest.FreeAddr(t)}
	return e
}

func (e *proxylessEnv) writeMesh(port int, workloads ...string) {
	var b strings.Builder
	for _, w := range workloads {
		fmt.Fprintf(&b, "        - {name: %s, address: 127.0.0.1, appPort: %s, proxyless: true}\n", strings.Split(w, ":")[0], strings.Split(w, ":")[1])
	}
	write(e.t, e.mesh, fmt.Sprintf(proxylessMesh, e.cpAddr, port, b.String()))
}

func (e *proxylessEnv) start() {
	s, err := New(Config{MeshPath: e.mesh, Listen: e.cpAddr, CADir: filepath.Join(e.dir, "ca")}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		e.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	if err := s.Start(ctx); err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() {
		stop, c := context.WithTimeout(context.Background(), 5*time.Second)
		defer c()
		s.Stop(stop)
		cancel()
	})
	e.cp = s
	ca, err := devca.LoadOrCreate(filepath.Join(e.dir, "ca"), spiffeid.RequireTrustDomainFromString("meshguard.test"))
	if err != nil {
		e.t.Fatal(err)
	}
	e.Proxyless = &xdstest.Proxyless{T: e.t, Dir: e.dir, CA: ca, Mesh: s.Builder.Mesh}
}

const (
	frontendID = "spiffe://meshguard.test/ns/default/sa/frontend"
	ordersID   = "spiffe://meshguard.test/ns/default/sa/orders"
)

func TestProxylessGRPCOverMTLS(t *testing.T) {
	e := newProxylessEnv(t)
	lis, port := xdstest.FreeListener(t)
	e.writeMesh(port, fmt.Sprintf("orders-0:%d", port))
	e.start()
	e.Serve("orders-0", ordersID, lis)
	target := fmt.Sprintf("orders.default:%d", port)

	client := e.Dial("frontend-0", frontendID, target)
	if err := xdstest.Call(client); err != nil {
		t.Fatalf("frontend → orders over xDS mTLS failed: %v", err)
	}

	// A workload the mesh does not allow (valid SVID from the same CA, but not
	// a caller of orders) is refused by the server's RBAC.
	intruder := e.Dial("frontend-0", "spiffe://meshguard.test/ns/default/sa/intruder", target)
	if err := xdstest.Call(intruder); status.Code(err) != codes.PermissionDenied {
		t.Fatalf("intruder call: %v, want PermissionDenied", err)
	}

	eventually(t, "proxies SYNCED", func() bool {
		return state(e.cp, "frontend-0", "Cluster").State == cpxds.Synced && state(e.cp, "orders-0", "Listener").State == cpxds.Synced
	})
}

func TestProxylessClientRejectsAnImpostorServer(t *testing.T) {
	e := newProxylessEnv(t)
	lis, port := xdstest.FreeListener(t)
	e.writeMesh(port, fmt.Sprintf("orders-0:%d", port))
	e.start()
	// The server presents a valid mesh SVID, but not orders' identity.
	e.Serve("orders-0", "spiffe://meshguard.test/ns/default/sa/impostor", lis)
	client := e.Dial("frontend-0", frontendID, fmt.Sprintf("orders.default:%d", port))
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if _, err := client.Check(ctx, &healthpb.HealthCheckRequest{}); err == nil {
		t.Fatal("client accepted a server with the wrong SPIFFE ID")
	}
}

func TestProxylessFollowsEndpointChanges(t *testing.T) {
	e := newProxylessEnv(t)
	lis0, port := xdstest.FreeListener(t)
	lis1, port1 := xdstest.FreeListener(t)
	e.writeMesh(port, fmt.Sprintf("orders-0:%d", port))
	e.start()
	srv0 := e.Serve("orders-0", ordersID, lis0)
	client := e.Dial("frontend-0", frontendID, fmt.Sprintf("orders.default:%d", port))
	if err := xdstest.Call(client); err != nil {
		t.Fatal(err)
	}
	// orders moves to a new instance; the old one goes away.
	e.writeMesh(port, fmt.Sprintf("orders-1:%d", port1))
	if err := e.cp.Reload(); err != nil {
		t.Fatal(err)
	}
	e.Serve("orders-1", ordersID, lis1)
	srv0.Stop()
	eventually(t, "calls reach the new endpoint", func() bool { return xdstest.Call(client) == nil })
}

func TestProxylessNackIsBoundedAndReported(t *testing.T) {
	e := newProxylessEnv(t)
	lis, port := xdstest.FreeListener(t)
	e.writeMesh(port, fmt.Sprintf("orders-0:%d", port))
	e.start()
	e.Serve("orders-0", ordersID, lis)
	client := e.Dial("frontend-0", frontendID, fmt.Sprintf("orders.default:%d", port))
	if err := xdstest.Call(client); err != nil {
		t.Fatal(err)
	}
	eventually(t, "CDS SYNCED", func() bool { return state(e.cp, "frontend-0", "Cluster").State == cpxds.Synced })
	before := pushes(e.cp, "Cluster")

	// Publish a cluster gRPC-Go must reject: a load-balancing policy it does not implement.
	good := e.cp.Cache.Snapshot("frontend-0")
	var bad clusterv3.Cluster
	for _, r := range good[cpxds.ClusterType].Resources {
		if err := r.Any.UnmarshalTo(&bad); err != nil {
			t.Fatal(err)
		}
	}
	bad.LbPolicy = clusterv3.Cluster_MAGLEV
	ts, err := cpxds.NewInterner().TypeSet(cpxds.ClusterType, []cpxds.Named{{Name: bad.GetName(), Msg: &bad}})
	if err != nil {
		t.Fatal(err)
	}
	badSnap := cpxds.Snapshot{}
	for k, v := range good {
		badSnap[k] = v
	}
	badSnap[cpxds.ClusterType] = ts
	e.cp.Cache.SetSnapshot("frontend-0", badSnap)

	eventually(t, "CDS NACKED", func() bool { return state(e.cp, "frontend-0", "Cluster").State == cpxds.Nacked })
	if st := state(e.cp, "frontend-0", "Cluster"); st.Error == "" {
		t.Fatal("NACK without error text")
	}
	// The client keeps its last good config.
	if err := xdstest.Call(client); err != nil {
		t.Fatalf("calls failed after a NACK: %v", err)
	}
	// No resend storm: one push for the bad version, none after it.
	if got := pushes(e.cp, "Cluster") - before; got != 1 {
		t.Fatalf("%v CDS responses after the bad snapshot, want exactly 1", got)
	}
	// Restoring good config syncs again.
	e.cp.Cache.SetSnapshot("frontend-0", good)
	eventually(t, "CDS SYNCED again", func() bool { return state(e.cp, "frontend-0", "Cluster").State == cpxds.Synced })
}
