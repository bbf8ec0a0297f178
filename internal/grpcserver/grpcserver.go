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
		// Fixed HTTP/2 windows, which turn off gRPC-Go's bandwidth-delay
		// estimation: it sends a PING on each round of requests to size the
		// windows, a write and a read per round trip that small unary calls
		// never need (3-6 % of the rate-limit service's CPU at 16 callers).
		// 1 MiB a stream, 4 MiB a connection bound what a client may send
		// ahead, below the 16 MiB estimation could grow to.
		grpc.InitialWindowSize(1 << 20),
		grpc.InitialConnWindowSize(4 << 20),
		grpc.NumStreamWorkers(uint32(max(runtime.GOMAXPROCS(0), streamWorkers))),
	}
}
