package controlplane

import (
	"context"
	"net"

	"github.com/spiffe/go-spiffe/v2/svid/x509svid"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/peer"

	"github.com/meshguard/meshguard/controlplane/model"
	"github.com/meshguard/meshguard/internal/peercred"
)

// Who may receive a node's secrets (its workload's private key) on a
// stream: a peer that proved it is the node's workload. Naming the node in
// the request proves nothing; the connection must.
//
//   - mTLS: the peer certificate's SPIFFE ID is the workload's;
//   - the Unix socket: the kernel says the peer runs as the workload's uid;
//   - plaintext loopback: only with InsecureLoopbackSecrets (the
//     single-host quickstart), where any local process could claim any node.
//
// Anything else is refused: a proxy without a proven identity gets its
// configuration, never a key.

// secretAccess decides for one stream. It is pure: the peer, the mesh and
// the setting in, the verdict out.
func secretAccess(p *peer.Peer, m *model.Mesh, node string, insecureLoopback bool) bool {
	if p == nil || m == nil {
		return false
	}
	svc, w, ok := m.Workload(node)
	if !ok {
		return false
	}
	switch info := p.AuthInfo.(type) {
	case credentials.TLSInfo:
		if len(info.State.PeerCertificates) == 0 {
			return false
		}
		id, err := x509svid.IDFromCert(info.State.PeerCertificates[0])
		return err == nil && m.SPIFFEID(svc) == id.String()
	case peercred.AuthInfo:
		return w.UID != nil && *w.UID == info.UID
	case nil:
		a, ok := p.Addr.(*net.TCPAddr)
		return ok && insecureLoopback && a.IP.IsLoopback()
	}
	return false
}

// secretsAllowed is secretAccess for a stream of this server.
func (s *Server) secretsAllowed(ctx context.Context, node string) bool {
	p, _ := peer.FromContext(ctx)
	return secretAccess(p, s.Builder.Mesh(), node, s.cfg.InsecureLoopbackSecrets)
}
