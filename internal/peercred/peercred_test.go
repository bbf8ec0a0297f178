package peercred

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/peer"
)

type health struct {
	healthpb.UnimplementedHealthServer
	got chan AuthInfo
}

func (h *health) Check(ctx context.Context, _ *healthpb.HealthCheckRequest) (*healthpb.HealthCheckResponse, error) {
	p, _ := peer.FromContext(ctx)
	info, _ := p.AuthInfo.(AuthInfo)
	h.got <- info
	return &healthpb.HealthCheckResponse{Status: healthpb.HealthCheckResponse_SERVING}, nil
}

// A call over the socket carries the caller's real user, group and
// process, whatever the caller says.
func TestThePeerIsWhoTheKernelSays(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "s.sock")
	lis, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	h := &health{got: make(chan AuthInfo, 1)}
	s := grpc.NewServer(grpc.Creds(Credentials()))
	healthpb.RegisterHealthServer(s, h)
	go func() { _ = s.Serve(lis) }()
	defer s.Stop()

	conn, err := grpc.NewClient("unix://"+sock, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := healthpb.NewHealthClient(conn).Check(context.Background(), &healthpb.HealthCheckRequest{}); err != nil {
		t.Fatal(err)
	}
	info := <-h.got
	if info.UID != uint32(os.Getuid()) || info.GID != uint32(os.Getgid()) || info.PID != int32(os.Getpid()) {
		t.Fatalf("peer %+v, want uid %d gid %d pid %d", info, os.Getuid(), os.Getgid(), os.Getpid())
	}
}

// Over TCP there is no kernel record of the peer: the connection is refused.
func TestATCPConnectionIsRefused(t *testing.T) {
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	if _, _, err := Credentials().ServerHandshake(a); err != ErrNotUnix {
		t.Fatalf("handshake over a pipe: %v, want ErrNotUnix", err)
	}
}
