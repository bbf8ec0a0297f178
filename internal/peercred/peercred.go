// Package peercred authenticates the peers of a gRPC server on a Unix
// socket by what the kernel says about them (SO_PEERCRED): the user, group
// and process of the other end, which a process cannot choose. The control
// plane serves a workload's private key on its socket only to a peer
// running as that workload's user.
package peercred

import (
	"context"
	"errors"
	"fmt"
	"net"

	"google.golang.org/grpc/credentials"
)

// AuthInfo is the peer's identity, as the kernel recorded it when the
// peer connected.
type AuthInfo struct {
	credentials.CommonAuthInfo
	UID, GID uint32
	PID      int32
}

// AuthType names the kind of authentication.
func (AuthInfo) AuthType() string { return "peercred" }

// ErrNotUnix refuses a connection that is not over a Unix socket: there
// is nothing to read the peer's credentials from.
var ErrNotUnix = errors.New("peercred: not a Unix socket connection")

type creds struct{}

// Credentials are gRPC server transport credentials for a Unix socket
// listener: every connection carries the peer's AuthInfo; a connection
// whose credentials cannot be read is refused.
func Credentials() credentials.TransportCredentials { return creds{} }

func (creds) ServerHandshake(conn net.Conn) (net.Conn, credentials.AuthInfo, error) {
	uc, ok := conn.(*net.UnixConn)
	if !ok {
		return nil, nil, ErrNotUnix
	}
	info, err := peerOf(uc)
	if err != nil {
		return nil, nil, fmt.Errorf("peercred: %w", err)
	}
	info.CommonAuthInfo = credentials.CommonAuthInfo{SecurityLevel: credentials.PrivacyAndIntegrity}
	return conn, info, nil
}

// ClientHandshake does nothing: the server authenticates the client.
func (creds) ClientHandshake(_ context.Context, _ string, conn net.Conn) (net.Conn, credentials.AuthInfo, error) {
	return conn, AuthInfo{CommonAuthInfo: credentials.CommonAuthInfo{SecurityLevel: credentials.PrivacyAndIntegrity}}, nil
}

func (creds) Info() credentials.ProtocolInfo {
	return credentials.ProtocolInfo{SecurityProtocol: "peercred"}
}

func (c creds) Clone() credentials.TransportCredentials { return c }

func (creds) OverrideServerName(string) error { return nil } //nolint:staticcheck // part of the interface
