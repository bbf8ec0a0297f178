package kube

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/meshguard/meshguard/api/v1alpha1"
	"github.com/meshguard/meshguard/controlplane"
	"github.com/meshguard/meshguard/controlplane/model"
	"github.com/meshguard/meshguard/controlplane/rollout"
	"github.com/meshguard/meshguard/internal/kubetest"
	"github.com/meshguard/meshguard/internal/poll"
	"github.com/meshguard/meshguard/internal/xds"
	"github.com/meshguard/meshguard/internal/xdstest"
)

const (
	meshNS = "meshguard"
	appNS  = "shop"
)

// cluster is a test's API server and what it created there.
type cluster struct {
	t *testing.T
	*kubetest.Cluster
}

func (c *cluster) create(objs ...client.Object) {
	c.t.Helper()
	for _, o := range objs {
		if err := c.Client.Create(context.Background(), o); err != nil {
			c.t.Fatalf("create %T %s: %v", o, o.GetName(), err)
		}
	}
}

// app creates a Service (port named portName), a Pod running as its own
// service account and an EndpointSlice with the pod ready at addr:port.
func (c *cluster) app(name, portName string, port int32, addr string) {
	c.t.Helper()
	c.App(c.t, appNS, name, portName, port, addr)
}

func (c *cluster) meshService(name string, spec v1alpha1.MeshServiceSpec) {
	c.create(&v1alpha1.MeshService{ObjectMeta: metav1.ObjectMeta{Namespace: appNS, Name: name}, Spec: spec})
}

func (c *cluster) update(obj client.Object, change func()) {
	c.t.Helper()
	for range 5 {
		if err := c.Client.Get(context.Background(), client.ObjectKeyFromObject(obj), obj); err != nil {
			c.t.Fatal(err)
		}
		change()
		err := c.Client.Update(context.Background(), obj)
		if err == nil {
			return
		}
		c.t.Logf("update %s: %v (retrying)", obj.GetName(), err)
	}
	c.t.Fatalf("could not update %s", obj.GetName())
}

func (c *cluster) condition(obj client.Object, typ string) *metav1.Condition {
	c.t.Helper()
	if err := c.Client.Get(context.Background(), client.ObjectKeyFromObject(obj), obj); err != nil {
		c.t.Fatal(err)
	}
	var conds []metav1.Condition
	switch o := obj.(type) {
	case *v1alpha1.MeshService:
		conds = o.Status.Conditions
	case *v1alpha1.Mesh:
		conds = o.Status.Conditions
	case *v1alpha1.PolicySet:
		conds = o.Status.Conditions
	}
	return meta.FindStatusCondition(conds, typ)
}

func eventually(t *testing.T, within time.Duration, what string, cond func() bool) {
	t.Helper()
	poll.Until(t, within, what, cond)
}

// replica starts a control plane replica against the cluster.
// peerList is the other replicas' admin URLs, known once they run.
type peerList struct {
	mu   sync.Mutex
	urls []string
}

func (p *peerList) set(urls ...string) { p.mu.Lock(); p.urls = urls; p.mu.Unlock() }

func (p *peerList) get(context.Context, client.Reader) []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.urls
}

func startReplica(t *testing.T, c *cluster, name, listen string, peers *peerList) *Replica {
	t.Helper()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	if testing.Verbose() {
		log = slog.New(slog.NewTextHandler(&prefixWriter{t: t, prefix: name}, &slog.HandlerOptions{Level: slog.LevelInfo}))
	}
	dir := t.TempDir()
	return runReplica(t, Options{
		Config:          Config{Namespace: meshNS, Debounce: 50 * time.Millisecond},
		RestConfig:      c.Config,
		LeaderElection:  true,
		Identity:        name,
		StatusInterval:  500 * time.Millisecond,
		KeepLeaseOnStop: true,
		Peers:           peers.get,
		ControlPlane: controlplane.Config{Listen: listen, AdminListen: "127.0.0.1:0",
			CADir: filepath.Join(dir, "ca"), RolloutDir: filepath.Join(dir, "rollouts"), RolloutInterval: 200 * time.Millisecond},
	}, log)
}

// runReplica starts a replica and stops it when the test ends.
func runReplica(t *testing.T, opts Options, log *slog.Logger) *Replica {
	t.Helper()
	r, err := Start(context.Background(), opts, log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		r.Stop(ctx)
	})
	return r
}

type prefixWriter struct {
	t      *testing.T
	prefix string
}

func (w *prefixWriter) Write(p []byte) (int, error) {
	w.t.Logf("%s: %s", w.prefix, strings.TrimSpace(string(p)))
	return len(p), nil
}

// The done-when of Kubernetes support, in one run against a real API
// server: objects in, two replicas serving them to a gRPC-Go xDS client
// and a raw ADS client, statuses out, an invalid edit refused without
// changing what is served, and the leader's death handed over.
func TestTheClusterIsTheMesh(t *testing.T) {
	c := &cluster{t: t, Cluster: kubetest.Start(t)}
	c.create(&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: meshNS}}, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: appNS}})

	host := kubetest.HostIP(t)
	ordersLis, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
	if err != nil {
		t.Fatal(err)
	}
	ordersPort := ordersLis.Addr().(*net.TCPAddr).Port
	addrA, addrB := xdstest.FreeAddr(t), xdstest.FreeAddr(t)
	c.create(&v1alpha1.Mesh{ObjectMeta: metav1.ObjectMeta{Name: "default"}, Spec: v1alpha1.MeshSpec{
		TrustDomain: "meshguard.test",
		Authz:       v1alpha1.Authz{Address: "127.0.0.1:9191"},
		XDS:         v1alpha1.XDS{Address: addrB},
	}})
	for _, set := range []string{"orders", "frontend", "web", "web-v2"} {
		c.create(&v1alpha1.PolicySet{ObjectMeta: metav1.ObjectMeta{Namespace: meshNS, Name: set},
			Spec: v1alpha1.PolicySetSpec{Policies: map[string]string{"allow.cedar": `permit (principal, action, resource);`}}})
	}
	c.app("orders", "grpc", int32(ordersPort), host)
	c.app("frontend", "grpc", 50001, host)
	c.app("web", "http", 8080, host)
	c.meshService("orders", v1alpha1.MeshServiceSpec{Proxyless: true})
	c.meshService("frontend", v1alpha1.MeshServiceSpec{Proxyless: true, Calls: []string{"orders"}})
	c.meshService("web", v1alpha1.MeshServiceSpec{Calls: []string{"orders"},
		Routes: []v1alpha1.Route{{ID: "web/all", Match: v1alpha1.RouteMatch{Prefix: ptr("/")},
			Rollout: &v1alpha1.Rollout{Candidate: "web-v2", Stage: "shadow"}}}})

	// Two replicas; each counts the other's proxies in its statuses.
	var peersA, peersB peerList
	a := startReplica(t, c, "A", addrA, &peersA)
	eventually(t, 30*time.Second, "replica A elected", a.IsLeader)
	b := startReplica(t, c, "B", addrB, &peersB)
	peersA.set("http://" + b.Server.AdminAddr())
	peersB.set("http://" + a.Server.AdminAddr())
	if b.IsLeader() {
		t.Fatal("two leaders")
	}

	// Every replica serves the mesh; the workloads reach replica B.
	eventually(t, 10*time.Second, "replica B has the three services", func() bool {
		m := b.Server.Builder.Mesh()
		return m != nil && len(m.Spec.Services) == 3
	})
	var sec corev1.Secret
	if err := c.Client.Get(context.Background(), client.ObjectKey{Namespace: meshNS, Name: CASecret}, &sec); err != nil {
		t.Fatalf("the shared dev CA: %v", err)
	}
	ca, err := SecretCA(c.Client, c.Client, meshNS)(spiffeid.RequireTrustDomainFromString("meshguard.test"))
	if err != nil {
		t.Fatal(err)
	}
	px := &xdstest.Proxyless{T: t, Dir: t.TempDir(), CA: ca, Mesh: b.Server.Builder.Mesh}
	px.Serve("orders-0.shop", "spiffe://meshguard.test/ns/shop/sa/orders", ordersLis)
	frontend := px.Dial("frontend-0.shop", "spiffe://meshguard.test/ns/shop/sa/frontend", fmt.Sprintf("orders.shop:%d", ordersPort))
	eventually(t, 15*time.Second, "frontend → orders over xDS and mTLS", func() bool { return xdstest.Call(frontend) == nil })

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	web := xdstest.NewADS(ctx, t, xdstest.Dial(t, addrB), "web-0.shop", "web", xds.ClusterType)
	clusters := xdstest.Names(t, web.Fetch(), &clusterv3.Cluster{})
	if !slices.Contains(clusters, "outbound|orders") {
		t.Fatalf("web's clusters = %v, want outbound|orders", clusters)
	}
	web.Ack()

	// Both replicas serve the leader's rollout, under one revision, from
	// the state ConfigMap; the follower refuses commands.
	var rev string
	eventually(t, 10*time.Second, "B serves A's rollout revision", func() bool {
		ra, errA := a.Server.Rollouts.Get("web/all")
		rb, errB := b.Server.Rollouts.Get("web/all")
		rev = ra.Revision
		return errA == nil && errB == nil && ra.Revision != "" && ra.Revision == rb.Revision
	})
	var state corev1.ConfigMap
	if err := c.Client.Get(context.Background(), client.ObjectKey{Namespace: meshNS, Name: RolloutStateConfigMap}, &state); err != nil ||
		!strings.Contains(state.Data["state.json"], rev) {
		t.Fatalf("the rollout state ConfigMap (%v): %v", err, state.Data)
	}
	if _, err := b.Server.Rollouts.Command("promote", "web/all", "test", ""); !errors.Is(err, rollout.ErrNotLeader) {
		t.Fatalf("promote on the follower: %v, want ErrNotLeader", err)
	}

	// Statuses, written by the leader from both replicas' proxies.
	orders := &v1alpha1.MeshService{ObjectMeta: metav1.ObjectMeta{Namespace: appNS, Name: "orders"}}
	eventually(t, 15*time.Second, "orders Accepted and Programmed", func() bool {
		acc, prog := c.condition(orders, v1alpha1.ConditionAccepted), c.condition(orders, v1alpha1.ConditionProgrammed)
		return acc != nil && acc.Status == metav1.ConditionTrue && prog != nil && prog.Status == metav1.ConditionTrue
	})
	if orders.Status.Workloads != 1 || orders.Status.SPIFFEID != "spiffe://meshguard.test/ns/shop/sa/orders" {
		t.Fatalf("orders status = %+v", orders.Status)
	}

	// An invalid edit is reported on the object and changes nothing served.
	before := b.Server.Cache.Snapshot("frontend-0.shop")
	c.update(orders, func() {
		orders.Spec.Routes = []v1alpha1.Route{{ID: "orders/bad", Match: v1alpha1.RouteMatch{Regex: ptr("(")}}}
	})
	eventually(t, 10*time.Second, "orders refused with the field", func() bool {
		acc := c.condition(orders, v1alpha1.ConditionAccepted)
		return acc != nil && acc.Status == metav1.ConditionFalse && acc.Reason == v1alpha1.ReasonInvalid &&
			strings.Contains(acc.Message, "spec.routes[0].match.regex") && acc.ObservedGeneration == orders.Generation
	})
	after := b.Server.Cache.Snapshot("frontend-0.shop")
	for typ := range before {
		if before[typ].Version != after[typ].Version {
			t.Fatalf("%s changed on an invalid edit", typ)
		}
	}
	if err := xdstest.Call(frontend); err != nil {
		t.Fatalf("calls failed after an invalid edit: %v", err)
	}

	// The leader dies (its lease is left to expire): B takes over within
	// 15 seconds, and goes on serving and reporting.
	stop, cancelStop := context.WithTimeout(context.Background(), 5*time.Second)
	killed := time.Now()
	a.Stop(stop)
	cancelStop()
	eventually(t, 15*time.Second, "replica B elected after A's death", b.IsLeader)
	t.Logf("leader handed over %s after the leader died", time.Since(killed).Round(100*time.Millisecond))

	c.update(orders, func() { orders.Spec.Routes = nil })
	eventually(t, 10*time.Second, "the new leader reports the fix", func() bool {
		acc := c.condition(orders, v1alpha1.ConditionAccepted)
		return acc != nil && acc.Status == metav1.ConditionTrue && acc.ObservedGeneration == orders.Generation
	})
	webObj := &v1alpha1.MeshService{ObjectMeta: metav1.ObjectMeta{Namespace: appNS, Name: "web"}}
	c.update(webObj, func() { webObj.Spec.Calls = []string{"orders", "frontend"} })
	for {
		r := web.Fetch()
		web.Ack()
		if names := xdstest.Names(t, r, &clusterv3.Cluster{}); slices.Contains(names, "outbound|frontend") {
			break
		}
	}
	if err := xdstest.Call(frontend); err != nil {
		t.Fatalf("calls failed after the leader's death: %v", err)
	}
	// The new leader owns the rollout it followed: it moves it, and saves.
	promoted, err := b.Server.Rollouts.Command("promote", "web/all", "test", "")
	if err != nil || promoted.Revision == rev || promoted.Step().Stage != "enforce" {
		t.Fatalf("promote on the new leader: %+v %v", promoted, err)
	}
	if err := c.Client.Get(context.Background(), client.ObjectKey{Namespace: meshNS, Name: RolloutStateConfigMap}, &state); err != nil ||
		!strings.Contains(state.Data["state.json"], promoted.Revision) {
		t.Fatalf("the new leader's state was not saved (%v): %v", err, state.Data)
	}
	var m model.Mesh = *b.Server.Builder.Mesh()
	if len(m.Spec.Services) != 3 {
		t.Fatalf("services served after the handover: %d", len(m.Spec.Services))
	}
}

func ptr[T any](v T) *T { return &v }
