package peercred

import (
	"net"

	"golang.org/x/sys/unix"
)

func peerOf(uc *net.UnixConn) (AuthInfo, error) {
	raw, err := uc.SyscallConn()
	if err != nil {
		return AuthInfo{}, err
	}
	var cred *unix.Ucred
	var credErr error
	if err := raw.Control(func(fd uintptr) {
		cred, credErr = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED)
	}); err != nil {
		return AuthInfo{}, err
	}
	if credErr != nil {
		return AuthInfo{}, credErr
	}
	return AuthInfo{UID: cred.Uid, GID: cred.Gid, PID: cred.Pid}, nil
}
