package kube

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/url"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"

	"github.com/meshguard/meshguard/api/v1alpha1"
	"github.com/meshguard/meshguard/controlplane"
	"github.com/meshguard/meshguard/internal/kubetest"
	"github.com/meshguard/meshguard/internal/poll"
	"github.com/meshguard/meshguard/internal/xds"
	"github.com/meshguard/meshguard/internal/xdstest"
)

// gate is a TCP forwarder to the API server that can cut every connection
// and refuse new ones, as a network partition would, and come back on the
// same address.
type gate struct {
	t      *testing.T
	addr   string
	target string
	mu     sync.Mutex
	lis    net.Listener
	conns  []net.Conn
}

func newGate(t *testing.T, target string) *gate {
	g := &gate{t: t, target: target, addr: xdstest.FreeAddr(t)}
	g.open()
	t.Cleanup(g.cut)
	return g
}

func (g *gate) open() {
	lis, err := net.Listen("tcp", g.addr)
	if err != nil {
		g.t.Fatal(err)
	}
	g.mu.Lock()
	g.lis = lis
	g.mu.Unlock()
	go func() {
		for {
			in, err := lis.Accept()
			if err != nil {
				return
			}
			out, err := net.Dial("tcp", g.target)
			if err != nil {
				in.Close()
				continue
			}
			g.mu.Lock()
			g.conns = append(g.conns, in, out)
			g.mu.Unlock()
			go func() { _, _ = io.Copy(out, in); out.Close() }()
			go func() { _, _ = io.Copy(in, out); in.Close() }()
		}
	}()
}

// cut closes the listener and every forwarded connection.
func (g *gate) cut() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.lis != nil {
		g.lis.Close()
		g.lis = nil
	}
	for _, c := range g.conns {
		c.Close()
	}
	g.conns = nil
}

// The API server going away changes nothing the proxies have, nor what a
// replica serves to proxies that connect meanwhile; when it comes back,
// the replica reconnects by itself and applies the changes made while it
// was away.
func TestTheAPIServerGoingAwayChangesNothingServed(t *testing.T) {
	c := &cluster{t: t, Cluster: kubetest.Start(t)}
	c.create(&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: meshNS}}, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: appNS}})
	addr := xdstest.FreeAddr(t)
	c.create(&v1alpha1.Mesh{ObjectMeta: metav1.ObjectMeta{Name: "default"}, Spec: v1alpha1.MeshSpec{
		TrustDomain: "meshguard.test", Authz: v1alpha1.Authz{Address: "127.0.0.1:9191"}, XDS: v1alpha1.XDS{Address: addr}}})
	host := kubetest.HostIP(t)
	c.app("orders", "grpc", 8080, host)
	c.app("frontend", "grpc", 8081, host)
	c.app("web", "http", 8082, host)
	// One host address: only web has a sidecar.
	c.meshService("orders", v1alpha1.MeshServiceSpec{Proxyless: true})
	c.meshService("frontend", v1alpha1.MeshServiceSpec{Proxyless: true})
	c.meshService("web", v1alpha1.MeshServiceSpec{Calls: []string{"orders"}})

	u, err := url.Parse(c.Config.Host)
	if err != nil {
		t.Fatal(err)
	}
	g := newGate(t, u.Host)
	cfg := rest.CopyConfig(c.Config)
	cfg.Host = "https://" + g.addr
	dir := t.TempDir()
	r := runReplica(t, Options{
		Config:     Config{Namespace: meshNS, Debounce: 50 * time.Millisecond},
		RestConfig: cfg,
		ControlPlane: controlplane.Config{Listen: addr, AdminListen: "127.0.0.1:0",
			CADir: filepath.Join(dir, "ca"), RolloutDir: filepath.Join(dir, "rollouts")},
	}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	poll.Until(t, 10*time.Second, "the replica has the three services", func() bool {
		m := r.Server.Builder.Mesh()
		return m != nil && len(m.Spec.Services) == 3
	})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	web := xdstest.NewADS(ctx, t, xdstest.Dial(t, addr), "web-0.shop", "web", xds.ClusterType)
	before := xdstest.Names(t, web.Fetch(), &clusterv3.Cluster{})
	web.Ack()
	if !slices.Contains(before, "outbound|orders") {
		t.Fatalf("web's clusters = %v", before)
	}
	snap := r.Server.Cache.Snapshot("web-0.shop")

	// The API server is cut off for longer than a lease would last.
	g.cut()
	time.Sleep(10 * time.Second)
	select {
	case err := <-r.Done():
		t.Fatalf("the replica stopped without its API server: %v", err)
	default:
	}
	if now := r.Server.Cache.Snapshot("web-0.shop"); now[xds.ClusterType].Version != snap[xds.ClusterType].Version {
		t.Fatal("what web is served changed while the API server was away")
	}
	late := xdstest.NewADS(ctx, t, xdstest.Dial(t, addr), "web-0.shop", "web", xds.ClusterType)
	if got := xdstest.Names(t, late.Fetch(), &clusterv3.Cluster{}); !slices.Equal(got, before) {
		t.Fatalf("a proxy connecting during the outage got %v, want %v", got, before)
	}
	late.Ack()

	// A change made while the replica could not see it.
	webObj := &v1alpha1.MeshService{ObjectMeta: metav1.ObjectMeta{Namespace: appNS, Name: "web"}}
	c.update(webObj, func() { webObj.Spec.Calls = []string{"orders", "frontend"} })

	// Back: the replica reconnects by itself and serves the change.
	g.open()
	poll.Until(t, 60*time.Second, "web gets outbound|frontend after the API server came back", func() bool {
		m := r.Server.Builder.Mesh()
		svc, ok := m.Service("web")
		return ok && slices.Contains(svc.Calls, "frontend")
	})
	got := xdstest.Names(t, web.Fetch(), &clusterv3.Cluster{})
	if !slices.Contains(got, "outbound|frontend") {
		t.Fatalf("web's clusters after the outage = %v", got)
	}
}
