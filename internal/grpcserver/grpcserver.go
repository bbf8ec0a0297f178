// Package grpcserver holds the gRPC server options meshguard's unary
// services share (the authorizer, the rate-limit service and the
// benchmarks' floor servers), so they differ only in their handlers.
package grpcserver

import (
	"runtime"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/keepalive"
)

// streamWorkers is the least number of goroutines serving streams.
const streamWorkers = 64

// Options are the servers' gRPC options; maxRecv bounds a request.
func Options(maxRecv int) []grpc.ServerOption {
	return []grpc.ServerOption{
		grpc.MaxRecvMsgSize(maxRecv),
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: 5 * time.Second, PermitWithoutStream: true}),
		grpc.KeepaliveParams(keepalive.ServerParameters{Time: 30 * time.Second, Timeout: 10 * time.Second}),
		// Reuse stream goroutines: a fresh goroutine per call grows its stack
		// on every call (Cedar evaluation is recursive), which showed up as
		// ~7% of the authorizer's CPU under load. gRPC hands a stream to a
		// fresh goroutine whenever every worker is busy, so the pool must
		// cover the concurrent calls, not the cores: with 4 workers and 16
		// concurrent streams, stack copying was still ~3.5% of CPU. An idle
		// worker costs one parked goroutine.
		grpc.NumStreamWorkers(uint32(max(runtime.GOMAXPROCS(0), streamWorkers))),
	}
}
