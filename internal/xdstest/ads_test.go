package xdstest

import (
	"context"
	"errors"
	"net"
	"testing"
	"time"

	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"github.com/envoyproxy/go-control-plane/pkg/cache/types"
	"github.com/envoyproxy/go-control-plane/pkg/cache/v3"
	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	serverv3 "github.com/envoyproxy/go-control-plane/pkg/server/v3"
	"google.golang.org/grpc"
)

// A response that arrives after a TryFetch gave up is the next one's, not
// lost with the abandoned receive.
func TestTryFetchAfterATimeoutGetsTheLateResponse(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	snapshots := cache.NewSnapshotCache(false, cache.IDHash{}, nil)
	g := grpc.NewServer()
	discoveryv3.RegisterAggregatedDiscoveryServiceServer(g, serverv3.NewServer(ctx, snapshots, nil))
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = g.Serve(lis) }()
	defer g.Stop()

	a := NewADS(ctx, t, Dial(t, lis.Addr().String()), "node-1", "svc", resource.ListenerType)
	// No snapshot for the node yet: nothing can come.
	if r, err := a.TryFetch(100 * time.Millisecond); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("TryFetch before any snapshot = %v, %v; want a timeout", r, err)
	}
	snap, err := cache.NewSnapshot("v1", map[resource.Type][]types.Resource{
		resource.ListenerType: {&listenerv3.Listener{Name: "late"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := snapshots.SetSnapshot(ctx, "node-1", snap); err != nil {
		t.Fatal(err)
	}
	r := a.Fetch()
	if got := Names(t, r, &listenerv3.Listener{}); len(got) != 1 || got[0] != "late" {
		t.Fatalf("after the timeout got %v, want [late]", got)
	}
	a.Ack()
}
