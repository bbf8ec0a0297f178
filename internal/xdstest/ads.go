// Package xdstest holds the xDS clients tests drive a control plane with:
// a raw ADS client standing in for an Envoy node, and gRPC-Go's own xDS
// client and server (proxyless workloads) with SVIDs from a dev CA.
package xdstest

import (
	"context"
	"testing"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	sotwclient "github.com/envoyproxy/go-control-plane/pkg/client/sotw/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// ADS is one node's SotW ADS stream for one resource type, as Envoy opens
// it.
type ADS struct {
	t      testing.TB
	client sotwclient.ADSClient
	last   *sotwclient.Response
	// fetching is a receive still waiting for a response after a
	// TryFetch gave up on it: the next TryFetch takes its result, so a
	// timeout loses no response.
	fetching chan fetched
}

type fetched struct {
	r   *sotwclient.Response
	err error
}

// Dial connects to an ADS server in plaintext for the test's lifetime.
func Dial(t testing.TB, addr string) *grpc.ClientConn {
	t.Helper()
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

// NewADS opens a stream on conn as node (cluster: the node's service) for
// typeURL, until ctx ends.
func NewADS(ctx context.Context, t testing.TB, conn *grpc.ClientConn, node, cluster, typeURL string) *ADS {
	t.Helper()
	c := sotwclient.NewADSClient(ctx, &corev3.Node{Id: node, Cluster: cluster}, typeURL)
	if err := c.InitConnect(conn); err != nil {
		t.Fatal(err)
	}
	return &ADS{t: t, client: c}
}

// Fetch waits up to 5 seconds for the next response.
func (a *ADS) Fetch() *sotwclient.Response {
	a.t.Helper()
	r, err := a.TryFetch(5 * time.Second)
	if err != nil {
		a.t.Fatal(err)
	}
	return r
}

// TryFetch waits up to timeout for the next response. After a timeout
// the receive goes on, and the next TryFetch (or Fetch) returns what it
// gets.
func (a *ADS) TryFetch(timeout time.Duration) (*sotwclient.Response, error) {
	if a.fetching == nil {
		ch := make(chan fetched, 1)
		go func() { r, err := a.client.Fetch(); ch <- fetched{r, err} }()
		a.fetching = ch
	}
	select {
	case f := <-a.fetching:
		a.fetching = nil
		if f.err == nil {
			a.last = f.r
		}
		return f.r, f.err
	case <-time.After(timeout):
		return nil, context.DeadlineExceeded
	}
}

// Ack acknowledges the last response.
func (a *ADS) Ack() {
	a.t.Helper()
	if err := a.client.Ack(); err != nil {
		a.t.Fatal(err)
	}
}

// Nack rejects the last response with message.
func (a *ADS) Nack(message string) {
	a.t.Helper()
	if err := a.client.Nack(message); err != nil {
		a.t.Fatal(err)
	}
}

// Names are the names of the resources of r, in order; each resource is
// decoded into a fresh msg (e.g. &clusterv3.Cluster{}), whose "name"
// field is read.
func Names(t testing.TB, r *sotwclient.Response, msg proto.Message) []string {
	t.Helper()
	var out []string
	for _, a := range r.Resources {
		m := msg.ProtoReflect().New().Interface()
		if err := a.UnmarshalTo(m); err != nil {
			t.Fatal(err)
		}
		f := m.ProtoReflect().Descriptor().Fields().ByName(protoreflect.Name("name"))
		out = append(out, m.ProtoReflect().Get(f).String())
	}
	return out
}
