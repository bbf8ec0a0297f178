package sds

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"io"
	"log/slog"
	"net"
	"testing"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	discovery "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	secretv3 "github.com/envoyproxy/go-control-plane/envoy/service/secret/v3"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/meshguard/meshguard/identity"
	"github.com/meshguard/meshguard/identity/devca"
)

// startServer serves src over SDS on a loopback port.
func startServer(t *testing.T, src identity.Source) (*Server, secretv3.SecretDiscoveryServiceClient) {
	t.Helper()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	s := New(src, nil, log)
	if err := s.Refresh(); err != nil {
		t.Fatal(err)
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	g := grpc.NewServer()
	s.Register(ctx, g)
	go func() { _ = g.Serve(lis) }()
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(); g.Stop(); cancel() })
	return s, secretv3.NewSecretDiscoveryServiceClient(conn)
}

// secrets reads one SDS response and returns the SVID certificate and key
// ("default") and whether ROOTCA and ALL came too.
func recvSecrets(t *testing.T, stream secretv3.SecretDiscoveryService_StreamSecretsClient) (tls.Certificate, *discovery.DiscoveryResponse) {
	t.Helper()
	resp, err := stream.Recv()
	if err != nil {
		t.Fatal(err)
	}
	var cert tls.Certificate
	names := map[string]bool{}
	for _, a := range resp.GetResources() {
		var s tlsv3.Secret
		if err := a.UnmarshalTo(&s); err != nil {
			t.Fatal(err)
		}
		names[s.GetName()] = true
		if s.GetName() == SecretSVID {
			tc := s.GetTlsCertificate()
			if cert, err = tls.X509KeyPair(tc.GetCertificateChain().GetInlineBytes(), tc.GetPrivateKey().GetInlineBytes()); err != nil {
				t.Fatal(err)
			}
		}
	}
	if !names[SecretSVID] || !names[SecretBundle] || !names[SecretAll] {
		t.Fatalf("secrets = %v, want default, ROOTCA and ALL", names)
	}
	return cert, resp
}

func TestSDSServesAndRotates(t *testing.T) {
	td := spiffeid.RequireTrustDomainFromString("meshguard.test")
	ca, _ := devca.New(td)
	src, err := identity.NewDevCASource(ca, spiffeid.RequireFromString("spiffe://meshguard.test/ns/demo/sa/orders"), 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	s, client := startServer(t, src)
	stream, err := client.StreamSecrets(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	node := &corev3.Node{Id: "orders-0"}
	if err := stream.Send(&discovery.DiscoveryRequest{Node: node, TypeUrl: "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.Secret",
		ResourceNames: []string{SecretSVID, SecretBundle, SecretAll}}); err != nil {
		t.Fatal(err)
	}
	first, resp := recvSecrets(t, stream)
	leaf, _ := x509.ParseCertificate(first.Certificate[0])
	if leaf.URIs[0].String() != "spiffe://meshguard.test/ns/demo/sa/orders" {
		t.Fatalf("served SVID %v", leaf.URIs)
	}
	if err := stream.Send(&discovery.DiscoveryRequest{Node: node, TypeUrl: resp.GetTypeUrl(), VersionInfo: resp.GetVersionInfo(),
		ResponseNonce: resp.GetNonce(), ResourceNames: []string{SecretSVID, SecretBundle, SecretAll}}); err != nil {
		t.Fatal(err)
	}
	// After half of the 2s lifetime the source re-issues; the stream gets it.
	time.Sleep(1100 * time.Millisecond)
	if err := s.Refresh(); err != nil {
		t.Fatal(err)
	}
	second, _ := recvSecrets(t, stream)
	next, _ := x509.ParseCertificate(second.Certificate[0])
	if next.SerialNumber.Cmp(leaf.SerialNumber) == 0 {
		t.Fatal("rotation not pushed on the open stream")
	}
}
