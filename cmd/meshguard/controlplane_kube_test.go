package main

import (
	"bytes"
	"context"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/meshguard/meshguard/api/v1alpha1"
	"github.com/meshguard/meshguard/internal/kubetest"
	"github.com/meshguard/meshguard/internal/poll"
	"github.com/meshguard/meshguard/internal/xds"
	"github.com/meshguard/meshguard/internal/xdstest"
)

// meshguard controlplane --kubernetes, as the chart runs it: it reads the
// mesh from the cluster, serves a sidecar its configuration, and stops
// cleanly (releasing its lease) when its context ends.
func TestControlPlaneOnKubernetes(t *testing.T) {
	cl := kubetest.Start(t)
	c, ctx := cl.Client, context.Background()
	cl.Create(t,
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "meshguard"}}, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "shop"}},
		&v1alpha1.Mesh{ObjectMeta: metav1.ObjectMeta{Name: "default"}, Spec: v1alpha1.MeshSpec{TrustDomain: "cluster.local",
			Authz: v1alpha1.Authz{Address: "127.0.0.1:9191"}, XDS: v1alpha1.XDS{Address: "127.0.0.1:18000"}}},
		&v1alpha1.PolicySet{ObjectMeta: metav1.ObjectMeta{Namespace: "meshguard", Name: "web"},
			Spec: v1alpha1.PolicySetSpec{Policies: map[string]string{"allow.cedar": `permit (principal, action, resource);`}}},
		&v1alpha1.MeshService{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "web"}, Spec: v1alpha1.MeshServiceSpec{
			ExternalCallers: []string{"spiffe://cluster.local/ns/edge/sa/gateway"},
			Routes:          []v1alpha1.Route{{Match: v1alpha1.RouteMatch{Prefix: new("/")}}}}},
	)
	cl.App(t, "shop", "web", "http", 8080, "10.1.0.7")

	dir := t.TempDir()
	xdsAddr, admin := xdstest.FreeAddr(t), xdstest.FreeAddr(t)
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	var out bytes.Buffer
	go func() {
		cmd := newRootCmd()
		cmd.SetOut(&out)
		cmd.SetErr(&out)
		cmd.SetArgs([]string{"controlplane", "--kubernetes", "--kubeconfig", cl.Kubeconfig(t), "--namespace", "meshguard",
			"--listen", xdsAddr, "--admin", admin, "--lease-duration", "4s",
			"--ca-dir", filepath.Join(dir, "ca"), "--rollout-dir", filepath.Join(dir, "rollouts"), "--log-level", "warn"})
		done <- cmd.ExecuteContext(runCtx)
	}()
	poll.Until(t, 30*time.Second, "the control plane ready", func() bool {
		resp, err := http.Get("http://" + admin + "/readyz")
		if err == nil {
			resp.Body.Close()
		}
		return err == nil && resp.StatusCode == http.StatusOK
	})

	web := xdstest.NewADS(runCtx, t, xdstest.Dial(t, xdsAddr), "web-0.shop", "web", xds.ClusterType)
	if names := xdstest.Names(t, web.Fetch(), &clusterv3.Cluster{}); !slices.Contains(names, "inbound|local") {
		var ms v1alpha1.MeshService
		_ = c.Get(ctx, client.ObjectKey{Namespace: "shop", Name: "web"}, &ms)
		t.Fatalf("web-0.shop's clusters: %v; web's status %+v\n%s", names, ms.Status, out.String())
	}
	web.Ack()
	statusOut, err := run(t, "status", "--admin", admin)
	if err != nil || !strings.Contains(statusOut, "web-0.shop") {
		t.Fatalf("meshguard status: %v\n%s", err, statusOut)
	}

	stop()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("the control plane stopped with %v\n%s", err, out.String())
		}
	case <-time.After(20 * time.Second):
		t.Fatal("the control plane did not stop within 20s of its context ending")
	}
}

func TestControlPlaneSourceFlagsAreExclusive(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"controlplane"}, "mesh kubernetes"},
		{[]string{"controlplane", "--mesh", "m.yaml", "--kubernetes"}, "none of the others can be"},
		{[]string{"controlplane", "--kubernetes", "--kubeconfig", "/nonexistent/kubeconfig"}, "kubernetes:"},
	} {
		_, err := run(t, tc.args...)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: %v, want an error containing %q", tc.args, err, tc.want)
		}
	}
}
