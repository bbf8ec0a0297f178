package v1alpha1_test

import (
	"context"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/meshguard/meshguard/api/v1alpha1"
	"github.com/meshguard/meshguard/internal/kubetest"
)

func str(s string) *string { return &s }

// The CRDs' schemas refuse what they can, naming the field, before any
// meshguard code sees the object.
func TestTheAPIServerRefusesInvalidObjects(t *testing.T) {
	c := kubetest.Start(t).Client
	ctx := context.Background()
	if err := c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "ns"}}); err != nil {
		t.Fatal(err)
	}
	om := func(name string) metav1.ObjectMeta { return metav1.ObjectMeta{Namespace: "ns", Name: name} }
	route := func(m v1alpha1.RouteMatch) v1alpha1.MeshServiceSpec {
		return v1alpha1.MeshServiceSpec{Routes: []v1alpha1.Route{{Match: m}}}
	}
	for _, tc := range []struct {
		name string
		obj  client.Object
		want string // "" accepted
	}{
		{"a valid mesh", &v1alpha1.Mesh{ObjectMeta: metav1.ObjectMeta{Name: "default"},
			Spec: v1alpha1.MeshSpec{TrustDomain: "example.org", Authz: v1alpha1.Authz{Address: "authz:9191"}}}, ""},
		{"a mesh without a trust domain", &v1alpha1.Mesh{ObjectMeta: metav1.ObjectMeta{Name: "no-td"},
			Spec: v1alpha1.MeshSpec{Authz: v1alpha1.Authz{Address: "authz:9191"}}}, "spec.trustDomain"},
		{"a trust domain in capitals", &v1alpha1.Mesh{ObjectMeta: metav1.ObjectMeta{Name: "caps"},
			Spec: v1alpha1.MeshSpec{TrustDomain: "Example.ORG", Authz: v1alpha1.Authz{Address: "a:1"}}}, "spec.trustDomain"},
		{"an unknown identity provider", &v1alpha1.Mesh{ObjectMeta: metav1.ObjectMeta{Name: "idp"},
			Spec: v1alpha1.MeshSpec{TrustDomain: "example.org", Authz: v1alpha1.Authz{Address: "a:1"}, Identity: v1alpha1.Identity{Provider: "vault"}}}, "spec.identity.provider"},
		{"a valid service", &v1alpha1.MeshService{ObjectMeta: om("orders"), Spec: route(v1alpha1.RouteMatch{Prefix: str("/")})}, ""},
		{"a route with two matches", &v1alpha1.MeshService{ObjectMeta: om("two"), Spec: route(v1alpha1.RouteMatch{Prefix: str("/"), Path: str("/x")})},
			"set exactly one of prefix, path and regex"},
		{"a route with no match", &v1alpha1.MeshService{ObjectMeta: om("none"), Spec: route(v1alpha1.RouteMatch{})},
			"set exactly one of prefix, path and regex"},
		{"an unknown protocol", &v1alpha1.MeshService{ObjectMeta: om("proto"), Spec: v1alpha1.MeshServiceSpec{Protocol: "udp"}}, "spec.protocol"},
		{"a port out of range", &v1alpha1.MeshService{ObjectMeta: om("port"), Spec: v1alpha1.MeshServiceSpec{Port: 70000}}, "spec.port"},
		{"an unknown rollout stage", &v1alpha1.MeshService{ObjectMeta: om("stage"), Spec: v1alpha1.MeshServiceSpec{Routes: []v1alpha1.Route{{
			Match: v1alpha1.RouteMatch{Prefix: str("/")}, Rollout: &v1alpha1.Rollout{Candidate: "v2", Stage: "yolo"}}}}}, "stage"},
		{"a canary share that is not a percentage", &v1alpha1.MeshService{ObjectMeta: om("pct"), Spec: v1alpha1.MeshServiceSpec{Routes: []v1alpha1.Route{{
			Match: v1alpha1.RouteMatch{Prefix: str("/")}, Rollout: &v1alpha1.Rollout{Candidate: "v2", Stage: "canary", Percent: "ten"}}}}}, "percent"},
		{"a valid policy set", &v1alpha1.PolicySet{ObjectMeta: om("orders"), Spec: v1alpha1.PolicySetSpec{
			Policies: map[string]string{"a.cedar": "permit (principal, action, resource);"}}}, ""},
		{"a policy set with no text", &v1alpha1.PolicySet{ObjectMeta: om("empty")}, "set exactly one of policies and configMapRef"},
		{"a policy set with both", &v1alpha1.PolicySet{ObjectMeta: om("both"), Spec: v1alpha1.PolicySetSpec{
			Policies: map[string]string{"a.cedar": ""}, ConfigMapRef: &v1alpha1.LocalObjectReference{Name: "cm"}}}, "set exactly one of policies and configMapRef"},
		{"a valid filter", &v1alpha1.WasmFilter{ObjectMeta: om("headers"), Spec: v1alpha1.WasmFilterSpec{Kind: "headers", File: "/wasm/headers.wasm",
			Config: &runtime.RawExtension{Raw: []byte(`{"hsts":true}`)}}}, ""},
		{"a remote filter without a digest", &v1alpha1.WasmFilter{ObjectMeta: om("remote"), Spec: v1alpha1.WasmFilterSpec{Kind: "headers", URL: "https://x/y.wasm"}}, "url needs sha256"},
		{"a plaintext filter URL", &v1alpha1.WasmFilter{ObjectMeta: om("http"), Spec: v1alpha1.WasmFilterSpec{Kind: "headers", URL: "http://x/y.wasm",
			SHA256: strings.Repeat("a", 64)}}, "spec.url"},
		{"an unknown filter kind", &v1alpha1.WasmFilter{ObjectMeta: om("kind"), Spec: v1alpha1.WasmFilterSpec{Kind: "lua", File: "/x"}}, "spec.kind"},
		{"a filter configuration that is not an object", &v1alpha1.WasmFilter{ObjectMeta: om("cfg"), Spec: v1alpha1.WasmFilterSpec{Kind: "headers", File: "/x",
			Config: &runtime.RawExtension{Raw: []byte(`[1,2]`)}}}, "spec.config"},
	} {
		err := c.Create(ctx, tc.obj)
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%s: refused: %v", tc.name, err)
		case tc.want != "" && err == nil:
			t.Errorf("%s: accepted, want refused for %q", tc.name, tc.want)
		case tc.want != "" && !strings.Contains(err.Error(), tc.want):
			t.Errorf("%s: %v, want it to name %q", tc.name, err, tc.want)
		}
	}
}
