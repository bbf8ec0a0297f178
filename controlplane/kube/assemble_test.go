package kube

import (
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	toolscache "k8s.io/client-go/tools/cache"

	"github.com/meshguard/meshguard/api/v1alpha1"
	"github.com/meshguard/meshguard/controlplane/model"
)

func ordersSpec() v1alpha1.MeshServiceSpec {
	return v1alpha1.MeshServiceSpec{
		Policy: "default-deny",
		Routes: []v1alpha1.Route{{ID: "orders/api", Match: prefix("/")}},
	}
}

func mustMesh(t *testing.T, as *Assembly) *model.Mesh {
	t.Helper()
	if as.Mesh == nil {
		t.Fatalf("no mesh: %v", as.Err)
	}
	return as.Mesh
}

func verdict(t *testing.T, as *Assembly, kind, ns, name string) Verdict {
	t.Helper()
	v, ok := as.Verdicts[Ref{Kind: kind, Namespace: ns, Name: name}]
	if !ok {
		t.Fatalf("no verdict for %s %s/%s", kind, ns, name)
	}
	return v
}

func TestAServiceIsAssembledFromItsEndpointsAndPods(t *testing.T) {
	w := newWorld()
	w.app("shop", "orders", 80, "orders-sa", 2)
	w.meshService("shop", "orders", ordersSpec())
	as := NewAssembler("default").Assemble(w.o)
	m := mustMesh(t, as)
	svc, ok := m.Service("orders")
	if !ok {
		t.Fatal("no service orders")
	}
	if svc.Namespace != "shop" || svc.ServiceAccount != "orders-sa" || svc.Port != 80 || svc.Protocol != "http" {
		t.Fatalf("service = %+v", svc)
	}
	if len(svc.Workloads) != 2 || svc.Workloads[0].Name != "orders-0.shop" || svc.Workloads[0].AppPort != 8080 || svc.Workloads[0].Address != "10.1.0.1" {
		t.Fatalf("workloads = %+v", svc.Workloads)
	}
	v := verdict(t, as, KindMeshService, "shop", "orders")
	if !v.Accepted || v.Workloads != 2 || v.SPIFFEID != "spiffe://example.org/ns/shop/sa/orders-sa" {
		t.Fatalf("verdict = %+v", v)
	}
	if mv := verdict(t, as, KindMesh, "", "default"); !mv.Accepted || mv.Services != 1 {
		t.Fatalf("mesh verdict = %+v", mv)
	}
}

func TestEndpointsNotReadyAreNotWorkloads(t *testing.T) {
	w := newWorld()
	w.app("shop", "orders", 80, "orders-sa", 3)
	notReady := false
	w.o.Slices[key("shop", "orders")][0].Endpoints[1].Conditions.Ready = &notReady
	w.meshService("shop", "orders", ordersSpec())
	svc, _ := mustMesh(t, NewAssembler("default").Assemble(w.o)).Service("orders")
	if len(svc.Workloads) != 2 || svc.Workloads[1].Name != "orders-2.shop" {
		t.Fatalf("workloads = %+v, want orders-0 and orders-2", svc.Workloads)
	}
}

// A bad edit is refused with the field, and the accepted version keeps
// serving; other services are not touched.
func TestABadEditKeepsTheLastAcceptedVersion(t *testing.T) {
	w := newWorld()
	w.app("shop", "orders", 80, "orders", 1)
	w.app("shop", "web", 8081, "web", 1)
	orders := w.meshService("shop", "orders", ordersSpec())
	w.meshService("shop", "web", v1alpha1.MeshServiceSpec{Policy: "default-deny", Calls: []string{"orders"}})
	a := NewAssembler("default")
	mustMesh(t, a.Assemble(w.o))

	bad := ordersSpec()
	bad.Routes[0].Match.Regex = bad.Routes[0].Match.Prefix // two of prefix, path, regex
	w.edit(orders, bad)
	as := a.Assemble(w.o)
	m := mustMesh(t, as)
	svc, _ := m.Service("orders")
	if svc.Routes[0].Match.Regex != "" {
		t.Fatalf("route match = %+v, want the accepted version's", svc.Routes[0].Match)
	}
	v := verdict(t, as, KindMeshService, "shop", "orders")
	if v.Accepted || v.Reason != v1alpha1.ReasonInvalid || !v.Serving || v.Generation != 2 ||
		!strings.Contains(v.Message, "spec.routes[0].match: set exactly one of prefix, path and regex") {
		t.Fatalf("verdict = %+v", v)
	}
	if v := verdict(t, as, KindMeshService, "shop", "web"); !v.Accepted {
		t.Fatalf("web = %+v: a neighbour's bad edit refused it", v)
	}
}

// A route naming a set no PolicySet provides is served (its requests are
// denied by the authorizer) and reported, not refused.
func TestAMissingPolicySetIsReportedNotRefused(t *testing.T) {
	w := newWorld()
	w.app("shop", "orders", 80, "orders", 1)
	spec := ordersSpec()
	spec.Routes = append(spec.Routes, v1alpha1.Route{ID: "orders/admin", Match: prefix("/admin"), Policy: "orders-admin"},
		v1alpha1.Route{ID: "orders/health", Match: prefix("/healthz"), Policy: "nothing", Public: true})
	w.meshService("shop", "orders", spec)
	as := NewAssembler("default").Assemble(w.o)
	svc, ok := mustMesh(t, as).Service("orders")
	if !ok || len(svc.Routes) != 3 {
		t.Fatalf("orders not served whole: %+v", svc)
	}
	v := verdict(t, as, KindMeshService, "shop", "orders")
	if !v.Accepted || len(v.Unresolved) != 1 || v.Unresolved[0] != "orders-admin" {
		t.Fatalf("verdict = %+v, want accepted with orders-admin unresolved", v)
	}
}

func TestAServiceNeverAcceptedIsLeftOut(t *testing.T) {
	w := newWorld()
	w.app("shop", "orders", 80, "orders", 1)
	w.meshService("shop", "orders", ordersSpec())
	spec := ordersSpec()
	spec.Routes[0].ID = "pay/api"
	spec.Routes[0].Match = v1alpha1.RouteMatch{} // no prefix, path or regex
	w.app("shop", "pay", 81, "pay", 1)
	w.meshService("shop", "pay", spec)
	as := NewAssembler("default").Assemble(w.o)
	m := mustMesh(t, as)
	if _, ok := m.Service("pay"); ok {
		t.Fatal("an invalid service that was never accepted is in the mesh")
	}
	if v := verdict(t, as, KindMeshService, "shop", "pay"); v.Accepted || v.Serving || !strings.Contains(v.Message, "spec.routes[0].match") {
		t.Fatalf("pay = %+v", v)
	}
	if _, ok := m.Service("orders"); !ok {
		t.Fatal("orders left out with pay")
	}
}

func TestTheOlderOfTwoSameNamedServicesWins(t *testing.T) {
	w := newWorld()
	w.app("shop", "orders", 80, "orders", 1)
	w.app("other", "orders", 81, "orders", 1)
	w.meshService("shop", "orders", ordersSpec())
	spec := ordersSpec()
	spec.Routes[0].ID = "orders/other"
	w.meshService("other", "orders", spec)
	as := NewAssembler("default").Assemble(w.o)
	svc, _ := mustMesh(t, as).Service("orders")
	if svc.Namespace != "shop" {
		t.Fatalf("orders is from %s, want the older (shop)", svc.Namespace)
	}
	if v := verdict(t, as, KindMeshService, "other", "orders"); v.Reason != v1alpha1.ReasonConflicted || !strings.Contains(v.Message, "MeshService shop/orders") {
		t.Fatalf("the newer = %+v", v)
	}
}

func TestTheNewerServiceIsBlamedForAPortConflict(t *testing.T) {
	w := newWorld()
	w.app("shop", "orders", 80, "orders", 1)
	w.app("shop", "web", 80, "web", 1)
	w.meshService("shop", "orders", ordersSpec())
	w.meshService("shop", "web", v1alpha1.MeshServiceSpec{Policy: "default-deny"})
	as := NewAssembler("default").Assemble(w.o)
	mustMesh(t, as)
	if v := verdict(t, as, KindMeshService, "shop", "web"); v.Accepted || !strings.Contains(v.Message, "spec.port") {
		t.Fatalf("web = %+v, want refused for its port", v)
	}
	if v := verdict(t, as, KindMeshService, "shop", "orders"); !v.Accepted {
		t.Fatalf("orders = %+v", v)
	}
}

func TestPodsOfOneServiceMustShareAnIdentity(t *testing.T) {
	w := newWorld()
	w.app("shop", "orders", 80, "orders", 2)
	w.o.Pods[key("shop", "orders-1")].Spec.ServiceAccountName = "intruder"
	w.meshService("shop", "orders", ordersSpec())
	as := NewAssembler("default").Assemble(w.o)
	if v := verdict(t, as, KindMeshService, "shop", "orders"); v.Accepted || !strings.Contains(v.Message, "different service accounts (intruder, orders)") {
		t.Fatalf("verdict = %+v", v)
	}
}

func TestAPolicySetThatDoesNotParseKeepsItsLastVersion(t *testing.T) {
	w := newWorld()
	w.app("shop", "orders", 80, "orders", 1)
	w.policySet("orders-v2", `permit (principal, action, resource);`)
	spec := ordersSpec()
	spec.Routes[0].Rollout = &v1alpha1.Rollout{Candidate: "orders-v2", Stage: "shadow"}
	w.meshService("shop", "orders", spec)
	a := NewAssembler("default")
	mustMesh(t, a.Assemble(w.o))

	w.policySet("orders-v2", `permit (principal, action, resource`)
	as := a.Assemble(w.o)
	ps := verdict(t, as, KindPolicySet, "meshguard", "orders-v2")
	if ps.Accepted || !ps.Serving || ps.Generation != 2 || !strings.Contains(ps.Message, "spec.policies") {
		t.Fatalf("policy set verdict = %+v", ps)
	}
	if set, ok := as.Sets["orders-v2"]; !ok || set.Len() != 1 {
		t.Fatal("the last good version of the set is not in force")
	}
	// The rollout goes on with the candidate's accepted version.
	v := verdict(t, as, KindMeshService, "shop", "orders")
	if !v.Accepted || len(v.Unresolved) != 0 {
		t.Fatalf("orders = %+v", v)
	}
	// A set never accepted is unresolved.
	w.o.PolicySets = w.o.PolicySets[:1]
	w.policySet("orders-v2", `permit (`)
	as = NewAssembler("default").Assemble(w.o)
	if v := verdict(t, as, KindMeshService, "shop", "orders"); !v.Accepted || len(v.Unresolved) != 1 {
		t.Fatalf("orders with a candidate never accepted = %+v", v)
	}
}

func TestWithoutTheMeshNothingIsServed(t *testing.T) {
	w := newWorld()
	w.o.Mesh = nil
	w.app("shop", "orders", 80, "orders", 1)
	w.meshService("shop", "orders", ordersSpec())
	as := NewAssembler("default").Assemble(w.o)
	if as.Mesh != nil || as.Err == nil || !strings.Contains(as.Err.Error(), `no Mesh "default"`) {
		t.Fatalf("mesh %v, err %v", as.Mesh, as.Err)
	}
	if v := verdict(t, as, KindMeshService, "shop", "orders"); v.Reason != v1alpha1.ReasonNoMesh {
		t.Fatalf("orders = %+v", v)
	}
}

func TestABadMeshEditKeepsTheLastMesh(t *testing.T) {
	w := newWorld()
	w.app("shop", "orders", 80, "orders", 1)
	w.meshService("shop", "orders", ordersSpec())
	a := NewAssembler("default")
	mustMesh(t, a.Assemble(w.o))
	bad := w.o.Mesh.DeepCopy()
	bad.Generation = 2
	bad.Spec.Authz.Address = "no-port"
	w.o.Mesh = bad
	as := a.Assemble(w.o)
	m := mustMesh(t, as)
	if m.Spec.Authz.Address != "meshguard-authz.meshguard.svc:9191" {
		t.Fatalf("authz address = %q, want the last accepted", m.Spec.Authz.Address)
	}
	if v := verdict(t, as, KindMesh, "", "default"); v.Accepted || !v.Serving || !strings.Contains(v.Message, "spec.authz.address") {
		t.Fatalf("mesh verdict = %+v", v)
	}
	// A first Mesh that is invalid serves nothing.
	as = NewAssembler("default").Assemble(w.o)
	if as.Mesh != nil || as.Err == nil {
		t.Fatalf("an invalid first mesh was served")
	}
}

// The rollout state ConfigMap, rewritten at every rollout move, does not
// make every replica assemble and translate the mesh again; other objects do.
func TestOnlyObjectsOfTheMeshTriggerAnAssembly(t *testing.T) {
	state := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "meshguard", Name: RolloutStateConfigMap}}
	policies := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "meshguard", Name: "orders-policies"}}
	for _, tc := range []struct {
		obj  any
		want bool
	}{
		{state, false},
		{toolscache.DeletedFinalStateUnknown{Key: "meshguard/" + RolloutStateConfigMap, Obj: state}, false},
		{policies, true},
		{&v1alpha1.MeshService{}, true},
	} {
		if got := partOfTheMesh(tc.obj); got != tc.want {
			t.Errorf("partOfTheMesh(%T %v) = %v, want %v", tc.obj, tc.obj, got, tc.want)
		}
	}
}
