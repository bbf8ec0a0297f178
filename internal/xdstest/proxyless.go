package xdstest

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	xdscreds "google.golang.org/grpc/credentials/xds"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/xds"

	"github.com/meshguard/meshguard/controlplane/bootstrap"
	"github.com/meshguard/meshguard/controlplane/model"
	"github.com/meshguard/meshguard/identity/devca"
)

// Proxyless runs gRPC-Go xDS workloads (clients and servers of the gRPC
// health service) against a control plane, each with an SVID from CA.
type Proxyless struct {
	T   testing.TB
	Dir string    // where SVID files are written
	CA  *devca.CA // issues the SVIDs
	// Mesh is the mesh bootstraps are written from (its spec.xds.address
	// is the control plane the workloads reach).
	Mesh func() *model.Mesh
}

// Bootstrap writes SVID files for spiffeID and returns node's gRPC xDS
// bootstrap using them.
func (p *Proxyless) Bootstrap(node, spiffeID string) []byte {
	p.T.Helper()
	svid, err := p.CA.Issue(spiffeid.RequireFromString(spiffeID), time.Hour)
	if err != nil {
		p.T.Fatal(err)
	}
	d := filepath.Join(p.Dir, "certs", node+"-"+strings.ReplaceAll(spiffeID[len("spiffe://"):], "/", "_"))
	files := bootstrap.GRPCFiles{Cert: filepath.Join(d, "cert.pem"), Key: filepath.Join(d, "key.pem"), CA: filepath.Join(d, "ca.pem")}
	for path, body := range map[string][]byte{files.Cert: svid.CertPEM, files.Key: svid.KeyPEM, files.CA: p.CA.BundlePEM()} {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			p.T.Fatal(err)
		}
		if err := os.WriteFile(path, body, 0o600); err != nil {
			p.T.Fatal(err)
		}
	}
	bs, err := bootstrap.GRPC(p.Mesh(), node, files)
	if err != nil {
		p.T.Fatal(err)
	}
	return bs
}

// Serve starts node as a gRPC-Go xDS server of the health service on lis
// until the test ends.
func (p *Proxyless) Serve(node, spiffeID string, lis net.Listener) *xds.GRPCServer {
	p.T.Helper()
	creds, err := xdscreds.NewServerCredentials(xdscreds.ServerOptions{FallbackCreds: insecure.NewCredentials()})
	if err != nil {
		p.T.Fatal(err)
	}
	srv, err := xds.NewGRPCServer(grpc.Creds(creds), xds.BootstrapContentsForTesting(p.Bootstrap(node, spiffeID)))
	if err != nil {
		p.T.Fatal(err)
	}
	h := health.NewServer()
	h.SetServingStatus("", healthpb.HealthCheckResponse_SERVING)
	healthpb.RegisterHealthServer(srv, h)
	go func() { _ = srv.Serve(lis) }()
	p.T.Cleanup(srv.Stop)
	return srv
}

// Dial connects node, as a gRPC-Go xDS client with spiffeID, to target
// ("<service>.<namespace>:<port>") until the test ends.
func (p *Proxyless) Dial(node, spiffeID, target string) healthpb.HealthClient {
	p.T.Helper()
	resolver, err := xds.NewXDSResolverWithConfigForTesting(p.Bootstrap(node, spiffeID))
	if err != nil {
		p.T.Fatal(err)
	}
	creds, err := xdscreds.NewClientCredentials(xdscreds.ClientOptions{FallbackCreds: insecure.NewCredentials()})
	if err != nil {
		p.T.Fatal(err)
	}
	conn, err := grpc.NewClient("xds:///"+target, grpc.WithTransportCredentials(creds), grpc.WithResolvers(resolver))
	if err != nil {
		p.T.Fatal(err)
	}
	p.T.Cleanup(func() { conn.Close() })
	return healthpb.NewHealthClient(conn)
}

// Call makes one health check, waiting up to 2 seconds for the channel.
func Call(c healthpb.HealthClient) error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_, err := c.Check(ctx, &healthpb.HealthCheckRequest{}, grpc.WaitForReady(true))
	return err
}

// FreeListener listens on a free loopback port.
func FreeListener(t testing.TB) (net.Listener, int) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return l, l.Addr().(*net.TCPAddr).Port
}

// FreeAddr reserves a loopback address and frees it, for a server that
// must be named (in a mesh, a bootstrap) before it listens.
func FreeAddr(t testing.TB) string {
	t.Helper()
	l, _ := FreeListener(t)
	addr := l.Addr().String()
	l.Close()
	return addr
}
