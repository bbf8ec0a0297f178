//go:build !linux

package peercred

import (
	"errors"
	"net"
)

func peerOf(*net.UnixConn) (AuthInfo, error) {
	return AuthInfo{}, errors.New("peer credentials are only read on Linux")
}
