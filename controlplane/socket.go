package controlplane

import (
	"fmt"
	"io/fs"
	"net"
	"os"
	"time"

	discovery "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	serverv3 "github.com/envoyproxy/go-control-plane/pkg/server/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/keepalive"

	"github.com/meshguard/meshguard/controlplane/model"
	"github.com/meshguard/meshguard/internal/peercred"
)

// serveSocket serves ADS on the Unix socket too, each connection carrying
// the peer's uid (secretAccess). Any local user may connect and read its
// configuration; only the workload's uid gets the workload's key.
func (s *Server) serveSocket(srv serverv3.Server) error {
	path := s.cfg.Socket
	// A socket left by a previous run is replaced; anything else there is
	// not ours to remove.
	if fi, err := os.Lstat(path); err == nil {
		if fi.Mode().Type() != fs.ModeSocket {
			return fmt.Errorf("xDS socket %s: exists and is not a socket", path)
		}
		if err := os.Remove(path); err != nil {
			return fmt.Errorf("xDS socket: %w", err)
		}
	}
	lis, err := net.Listen("unix", path)
	if err != nil {
		return fmt.Errorf("xDS socket: %w", err)
	}
	if err := os.Chmod(path, 0o666); err != nil {
		lis.Close()
		return fmt.Errorf("xDS socket: %w", err)
	}
	s.sockLis = lis
	s.sockGRPC = grpc.NewServer(grpc.Creds(peercred.Credentials()),
		grpc.MaxConcurrentStreams(1<<16),
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: 5 * time.Second, PermitWithoutStream: true}))
	discovery.RegisterAggregatedDiscoveryServiceServer(s.sockGRPC, srv)
	s.goServe(func() error { return s.sockGRPC.Serve(lis) })
	return nil
}

// SocketAddr is the Unix socket ADS is served on ("" without one).
func (s *Server) SocketAddr() string {
	if s.sockLis == nil {
		return ""
	}
	return s.sockLis.Addr().String()
}

// warnAboutSecrets says, once at start, when workload keys are exposed or
// cannot be delivered at all (the former is also the gauge
// meshguard_controlplane_insecure_secrets, for alerting).
func (s *Server) warnAboutSecrets() {
	plaintext := s.cfg.TLS == nil
	loopback := false
	if a, ok := s.lis.Addr().(*net.TCPAddr); ok {
		loopback = a.IP.IsLoopback()
	}
	if s.cfg.InsecureLoopbackSecrets {
		s.log.Warn("INSECURE: workload private keys are served to any local process that names a node over plaintext loopback; for a single-user development host only",
			"flag", "--insecure-loopback-sds")
	}
	if plaintext && !loopback {
		s.log.Warn("ADS is served without client authentication on a non-loopback address: anyone who reaches it reads the mesh configuration (keys are not served there); use --tls-cert or --workload-api",
			"listen", s.lis.Addr().String())
	}
	m := s.Builder.Mesh()
	if m != nil && m.Spec.Identity.Provider == model.ProviderMeshguard && plaintext && s.cfg.Socket == "" && !s.cfg.InsecureLoopbackSecrets {
		s.log.Warn("no stream can receive its workload's key: sidecars get configuration but no SVID; serve ADS over mTLS (--tls-cert, --workload-api), on a Unix socket (spec.xds.socket, workloads' uid), or on a development host pass --insecure-loopback-sds")
	}
}
