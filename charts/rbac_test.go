package charts

import (
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/meshguard/meshguard/api/v1alpha1"
	"github.com/meshguard/meshguard/controlplane"
	"github.com/meshguard/meshguard/controlplane/kube"
	"github.com/meshguard/meshguard/extauthz/kubepolicy"
	"github.com/meshguard/meshguard/internal/kubetest"
	"github.com/meshguard/meshguard/internal/poll"
)

// The chart's RBAC is enough for each part to do its whole job, and no
// more than that: a control plane replica running as the chart's service
// account (impersonated, on a real API server enforcing RBAC) reads the
// mesh, elects itself, creates the dev CA Secret, writes statuses and the
// rollout state; the authorizer's policy sync mirrors PolicySets; and the
// authorizer's account cannot read Secrets or write meshguard objects.
func TestTheChartsRBACIsEnoughAndNoMore(t *testing.T) {
	cl := kubetest.Start(t)
	c, ctx := cl.Client, context.Background()
	create := func(objs ...client.Object) { t.Helper(); cl.Create(t, objs...) }
	create(&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "meshguard"}}, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "shop"}})
	for _, u := range kubetest.Render(t) {
		switch u.GetKind() {
		case "ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding":
			if err := c.Create(ctx, u); err != nil {
				t.Fatalf("%s %s: %v", u.GetKind(), u.GetName(), err)
			}
		}
	}

	cl.App(t, "shop", "orders", "http", 8080, kubetest.HostIP(t))
	create(
		&v1alpha1.Mesh{ObjectMeta: metav1.ObjectMeta{Name: "default"}, Spec: v1alpha1.MeshSpec{
			TrustDomain: "cluster.local", Authz: v1alpha1.Authz{Address: "meshguard-authz.meshguard.svc:9191"},
			Identity: v1alpha1.Identity{Provider: "meshguard"}, XDS: v1alpha1.XDS{Address: "127.0.0.1:0"}}},
		&v1alpha1.PolicySet{ObjectMeta: metav1.ObjectMeta{Namespace: "meshguard", Name: "orders"},
			Spec: v1alpha1.PolicySetSpec{Policies: map[string]string{"allow.cedar": `permit (principal, action, resource);`}}},
		&v1alpha1.PolicySet{ObjectMeta: metav1.ObjectMeta{Namespace: "meshguard", Name: "orders-v2"},
			Spec: v1alpha1.PolicySetSpec{Policies: map[string]string{"allow.cedar": `permit (principal, action, resource);`}}},
		&v1alpha1.MeshService{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "orders"}, Spec: v1alpha1.MeshServiceSpec{
			Routes: []v1alpha1.Route{{ID: "orders/all", Match: v1alpha1.RouteMatch{Prefix: new("/")},
				Rollout: &v1alpha1.Rollout{Candidate: "orders-v2", Stage: "shadow"}}}}},
	)

	// The control plane, as the chart's meshguard-controlplane account.
	dir := t.TempDir()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	r, err := kube.Start(ctx, kube.Options{
		Config:         kube.Config{Namespace: "meshguard", Debounce: 50 * time.Millisecond},
		RestConfig:     cl.As("meshguard", "meshguard-controlplane"),
		LeaderElection: true,
		StatusInterval: 200 * time.Millisecond,
		ControlPlane: controlplane.Config{Listen: "127.0.0.1:0", AdminListen: "127.0.0.1:0",
			RolloutDir: filepath.Join(dir, "rollouts"), RolloutInterval: 200 * time.Millisecond},
	}, log)
	if err != nil {
		t.Fatalf("the control plane as its chart account: %v", err)
	}
	t.Cleanup(func() {
		stop, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		r.Stop(stop)
	})
	poll.Until(t, 30*time.Second, "the control plane elected", r.IsLeader)
	ms := &v1alpha1.MeshService{}
	poll.Until(t, 15*time.Second, "orders Accepted, written by the control plane", func() bool {
		if err := c.Get(ctx, client.ObjectKey{Namespace: "shop", Name: "orders"}, ms); err != nil {
			t.Fatal(err)
		}
		acc := meta.FindStatusCondition(ms.Status.Conditions, v1alpha1.ConditionAccepted)
		return acc != nil && acc.Status == metav1.ConditionTrue && ms.Status.Workloads == 1
	})
	for _, name := range []string{kube.CASecret, kube.RolloutStateConfigMap} {
		obj := client.Object(&corev1.ConfigMap{})
		if name == kube.CASecret {
			obj = &corev1.Secret{}
		}
		poll.Until(t, 10*time.Second, name+" created by the control plane", func() bool {
			return c.Get(ctx, client.ObjectKey{Namespace: "meshguard", Name: name}, obj) == nil
		})
	}
	moved, err := r.Server.Rollouts.Command("promote", "orders/all", "test", "")
	if err != nil {
		t.Fatalf("a rollout move: %v", err)
	}
	var state corev1.ConfigMap
	if err := c.Get(ctx, client.ObjectKey{Namespace: "meshguard", Name: kube.RolloutStateConfigMap}, &state); err != nil ||
		!strings.Contains(state.Data["state.json"], moved.Revision) {
		t.Fatalf("the rollout move was not saved in the state ConfigMap (%v)", err)
	}

	// The authorizer's policy sync, as meshguard-authz.
	policies := filepath.Join(t.TempDir(), "policies")
	authz := cl.As("meshguard", "meshguard-authz")
	s, err := kubepolicy.New(kubepolicy.Config{RestConfig: authz, Namespace: "meshguard", Dir: policies})
	if err != nil {
		t.Fatal(err)
	}
	syncCtx, stopSync := context.WithCancel(ctx)
	syncErr := make(chan error, 1)
	go func() { syncErr <- s.Run(syncCtx) }()
	defer func() {
		stopSync()
		if err := <-syncErr; err != nil {
			t.Errorf("policy sync as its chart account: %v", err)
		}
	}()
	poll.Until(t, 15*time.Second, "policy sync wrote the sets", s.Synced)
	if _, err := os.Stat(filepath.Join(policies, "orders", "allow.cedar")); err != nil {
		t.Fatalf("policy sync wrote no orders set: %v", err)
	}

	// No more than that.
	ac, err := client.New(authz, client.Options{Scheme: kubetest.Scheme()})
	if err != nil {
		t.Fatal(err)
	}
	if err := ac.Get(ctx, client.ObjectKey{Namespace: "meshguard", Name: kube.CASecret}, &corev1.Secret{}); !apierrors.IsForbidden(err) {
		t.Errorf("the authorizer reads the dev CA's key: %v, want forbidden", err)
	}
	ps := &v1alpha1.PolicySet{ObjectMeta: metav1.ObjectMeta{Namespace: "meshguard", Name: "sneaky"},
		Spec: v1alpha1.PolicySetSpec{Policies: map[string]string{"a.cedar": `permit (principal, action, resource);`}}}
	if err := ac.Create(ctx, ps); !apierrors.IsForbidden(err) {
		t.Errorf("the authorizer creates a PolicySet: %v, want forbidden", err)
	}
	cp, err := client.New(cl.As("meshguard", "meshguard-controlplane"), client.Options{Scheme: kubetest.Scheme()})
	if err != nil {
		t.Fatal(err)
	}
	if err := cp.Get(ctx, client.ObjectKey{Namespace: "shop", Name: "anything"}, &corev1.Secret{}); !apierrors.IsForbidden(err) {
		t.Errorf("the control plane reads Secrets of other namespaces: %v, want forbidden", err)
	}
	other := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "meshguard", Name: "other"}}
	create(other)
	other.Data = map[string]string{"x": "y"}
	if err := cp.Update(ctx, other); !apierrors.IsForbidden(err) {
		t.Errorf("the control plane updates any ConfigMap: %v, want forbidden", err)
	}
}
