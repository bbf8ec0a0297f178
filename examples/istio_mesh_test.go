package examples

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"text/template"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	extensionsv1alpha1 "istio.io/api/extensions/v1alpha1"
	meshv1alpha1 "istio.io/api/mesh/v1alpha1"
	securityv1beta1 "istio.io/api/security/v1beta1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	k8slabels "k8s.io/apimachinery/pkg/labels"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	"github.com/meshguard/meshguard/api/v1alpha1"
	"github.com/meshguard/meshguard/extauthz"
	"github.com/meshguard/meshguard/extauthz/kubepolicy"
	"github.com/meshguard/meshguard/internal/authztest"
	"github.com/meshguard/meshguard/internal/kubetest"
)

// The Istio example: istiod's values, Istio and SPIRE resources, the demo
// workloads, a PolicySet, and meshguard's chart values.
var istioFiles = []string{"demo.yaml", "authorization-policy.yaml", "wasmplugins.yaml", "spire.yaml", "policyset.yaml"}

func istioObjects(t *testing.T) []*unstructured.Unstructured {
	t.Helper()
	var all []*unstructured.Unstructured
	for _, f := range istioFiles {
		data, err := os.ReadFile(filepath.Join("istio", f))
		if err != nil {
			t.Fatal(err)
		}
		objs, err := kubetest.Decode(bytes.NewReader(data))
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		all = append(all, objs...)
	}
	return all
}

// istioMeshConfig is the meshConfig of istiod-values.yaml, decoded as
// istiod does: an unknown or misspelt field is an error.
func istioMeshConfig(t *testing.T) (*meshv1alpha1.MeshConfig, map[string]any) {
	t.Helper()
	data, err := os.ReadFile("istio/istiod-values.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var values map[string]any
	if err := yaml.Unmarshal(data, &values); err != nil {
		t.Fatal(err)
	}
	var mc meshv1alpha1.MeshConfig
	strictProto(t, "meshConfig", values["meshConfig"], &mc)
	return &mc, values
}

func strictProto(t *testing.T, what string, v any, m proto.Message) {
	t.Helper()
	js, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	if err := protojson.Unmarshal(js, m); err != nil {
		t.Fatalf("%s is not a valid %T: %v", what, m, err)
	}
}

// meshguardForIstio renders meshguard's chart with the example's values.
func meshguardForIstio(t *testing.T) []*unstructured.Unstructured {
	return kubetest.Render(t, "-f", "istio/meshguard-values.yaml")
}

func find(t *testing.T, objs []*unstructured.Unstructured, kind, suffix string) *unstructured.Unstructured {
	t.Helper()
	for _, u := range objs {
		if u.GetKind() == kind && strings.HasSuffix(u.GetName(), suffix) {
			return u
		}
	}
	t.Fatalf("no %s *%s", kind, suffix)
	return nil
}

// istiod sends CUSTOM checks to the Service meshguard's chart creates, on
// its gRPC port, failing closed; the chart installs the authorizer alone.
func TestIstioCallsTheChartsAuthorizerFailingClosed(t *testing.T) {
	mc, _ := istioMeshConfig(t)
	var provider *meshv1alpha1.MeshConfig_ExtensionProvider
	for _, p := range mc.GetExtensionProviders() {
		if p.GetName() == "meshguard" {
			provider = p
		}
	}
	grpcProvider := provider.GetEnvoyExtAuthzGrpc()
	if grpcProvider == nil {
		t.Fatalf("no envoyExtAuthzGrpc provider named meshguard in %v", mc.GetExtensionProviders())
	}
	if grpcProvider.GetFailOpen() {
		t.Error("failOpen: true lets every request through while meshguard is unreachable")
	}
	objs := meshguardForIstio(t)
	svc := kubetest.Into[corev1.Service](t, find(t, objs, "Service", "-authz"))
	if want := svc.Name + "." + "meshguard.svc.cluster.local"; grpcProvider.GetService() != want {
		t.Errorf("provider service %q, the chart's authorizer is %q", grpcProvider.GetService(), want)
	}
	if p := svc.Spec.Ports[0]; p.Name != "grpc" || uint32(p.Port) != grpcProvider.GetPort() {
		t.Errorf("provider port %d, the chart serves gRPC on %+v", grpcProvider.GetPort(), p)
	}
	for _, u := range objs {
		if k := u.GetKind(); strings.Contains(u.GetName(), "controlplane") || k == "Mesh" {
			t.Errorf("the chart with controlPlane.enabled=false renders %s %s", k, u.GetName())
		}
	}
}

// Every Istio resource of the example is what Istio's own API types accept
// (strictly: a misspelt field is an error, where the API server would prune
// it), and every CUSTOM policy names a provider istiod knows.
func TestIstioResourcesAreValidIstioAPI(t *testing.T) {
	mc, _ := istioMeshConfig(t)
	providers := map[string]bool{}
	for _, p := range mc.GetExtensionProviders() {
		providers[p.GetName()] = true
	}
	seen := map[string]int{}
	for _, u := range istioObjects(t) {
		spec := u.Object["spec"]
		what := u.GetKind() + " " + u.GetName()
		switch u.GetKind() {
		case "AuthorizationPolicy":
			var ap securityv1beta1.AuthorizationPolicy
			strictProto(t, what, spec, &ap)
			if ap.GetAction() == securityv1beta1.AuthorizationPolicy_CUSTOM && !providers[ap.GetProvider().GetName()] {
				t.Errorf("%s: provider %q is not in meshConfig.extensionProviders", what, ap.GetProvider().GetName())
			}
		case "PeerAuthentication":
			var pa securityv1beta1.PeerAuthentication
			strictProto(t, what, spec, &pa)
			if pa.GetMtls().GetMode() != securityv1beta1.PeerAuthentication_MutualTLS_STRICT {
				t.Errorf("%s: mTLS %v: without it the authorizer does not know the caller", what, pa.GetMtls().GetMode())
			}
		case "WasmPlugin":
			var wp extensionsv1alpha1.WasmPlugin
			strictProto(t, what, spec, &wp)
			if wp.GetFailStrategy() != extensionsv1alpha1.FailStrategy_FAIL_CLOSE {
				t.Errorf("%s: failStrategy %v, want FAIL_CLOSE", what, wp.GetFailStrategy())
			}
		}
		seen[u.GetKind()]++
	}
	for kind, n := range map[string]int{"AuthorizationPolicy": 1, "PeerAuthentication": 1, "WasmPlugin": 3, "ClusterSPIFFEID": 2} {
		if seen[kind] != n {
			t.Errorf("%d %s, want %d", seen[kind], kind, n)
		}
	}
}

// podSVID is the SPIFFE ID the SPIRE Controller Manager gives a pod of d
// through a ClusterSPIFFEID's template (Go text/template over the pod, as
// the controller manager evaluates it), or "" when its selector does not
// select the pod as Istio's spire injection template labels it.
func podSVID(t *testing.T, cs *unstructured.Unstructured, trustDomain string, d *appsv1.Deployment, injected map[string]string) string {
	t.Helper()
	spec, _, _ := unstructured.NestedMap(cs.Object, "spec")
	var sel metav1.LabelSelector
	b, _ := json.Marshal(spec["podSelector"])
	if err := json.Unmarshal(b, &sel); err != nil {
		t.Fatal(err)
	}
	labels := map[string]string{}
	for k, v := range d.Spec.Template.Labels {
		labels[k] = v
	}
	if d.Spec.Template.Annotations["inject.istio.io/templates"] == "sidecar,spire" {
		for k, v := range injected {
			labels[k] = v
		}
	}
	s, err := metav1.LabelSelectorAsSelector(&sel)
	if err != nil {
		t.Fatal(err)
	}
	if !s.Matches(k8slabels.Set(labels)) {
		return ""
	}
	tmpl, err := template.New(cs.GetName()).Parse(spec["spiffeIDTemplate"].(string))
	if err != nil {
		t.Fatal(err)
	}
	meta := d.Spec.Template.ObjectMeta
	meta.Namespace = d.Namespace
	var out strings.Builder
	if err := tmpl.Execute(&out, struct {
		TrustDomain string
		PodMeta     *metav1.ObjectMeta
		PodSpec     *corev1.PodSpec
	}{trustDomain, &meta, &d.Spec.Template.Spec}); err != nil {
		t.Fatal(err)
	}
	return out.String()
}

// The chain holds end to end: SPIRE gives the demo's pods the SPIFFE IDs
// the authorizer's destinations and the PolicySet name, and an Istio
// sidecar's CheckRequest (no context extensions; the caller's and the
// workload's certificate identities) is decided by the orders set by the
// authorizer the chart configures.
func TestIstioRequestsAreDecidedByTheirDestinationsPolicySet(t *testing.T) {
	mc, values := istioMeshConfig(t)
	// The labels Istio's "spire" injection template adds to a pod.
	var injected struct {
		Labels map[string]string `json:"labels"`
	}
	tmpl, _, _ := unstructured.NestedString(values, "sidecarInjectorWebhook", "templates", "spire")
	if err := yaml.Unmarshal([]byte(tmpl), &injected); err != nil || !strings.Contains(tmpl, "csi.spiffe.io") {
		t.Fatalf("istiod's spire injection template (%v) does not mount the SPIFFE CSI driver:\n%s", err, tmpl)
	}
	objs := istioObjects(t)
	ids := map[string]string{} // deployment → SPIFFE ID
	var sets []v1alpha1.PolicySet
	for _, cs := range objs {
		if cs.GetKind() == "PolicySet" {
			sets = append(sets, *kubetest.Into[v1alpha1.PolicySet](t, cs))
		}
		if cs.GetKind() != "ClusterSPIFFEID" {
			continue
		}
		for _, u := range objs {
			if u.GetKind() == "Deployment" {
				d := kubetest.Into[appsv1.Deployment](t, u)
				if id := podSVID(t, cs, mc.GetTrustDomain(), d, injected.Labels); id != "" {
					ids[d.Name] = id
				}
			}
		}
	}
	if ids["orders"] == "" || ids["frontend"] == "" {
		t.Fatalf("SPIRE registers %v, want orders and frontend", ids)
	}

	cm := kubetest.Into[corev1.ConfigMap](t, find(t, meshguardForIstio(t), "ConfigMap", "-authz"))
	h := startAuthorizer(t, cm.Data["authz.yaml"], sets)
	if !slices.ContainsFunc(h.cfg.Destinations, func(d extauthz.Destination) bool { return d.SPIFFEID == ids["orders"] }) {
		t.Fatalf("destinations %+v do not name orders' SPIFFE ID %s", h.cfg.Destinations, ids["orders"])
	}
	for _, tc := range []struct {
		name, from, to, method string
		want                   int32 // google.rpc.Code
	}{
		{"the frontend reads orders", ids["frontend"], ids["orders"], "GET", 0},
		{"the frontend places an order", ids["frontend"], ids["orders"], "POST", 0},
		{"nobody deletes orders", ids["frontend"], ids["orders"], "DELETE", 7},
		{"another workload reads orders", "spiffe://cluster.local/ns/demo/sa/intruder", ids["orders"], "GET", 7},
		{"a destination without settings", ids["frontend"], "spiffe://cluster.local/ns/demo/sa/payments", "GET", 7},
		{"no client certificate", "", ids["orders"], "GET", 7},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, err := h.client.Check(context.Background(), istioCheck(tc.from, tc.to, tc.method))
			if err != nil {
				t.Fatal(err)
			}
			if got := resp.GetStatus().GetCode(); got != tc.want {
				t.Fatalf("code %d (%v), want %d", got, resp.GetDeniedResponse().GetHeaders(), tc.want)
			}
		})
	}
}

// istioCheck is a CheckRequest as an Istio sidecar's ext_authz filter sends
// it on the inbound path: peer identities from the mTLS connection, the
// request, and no context extensions.
func istioCheck(from, to, method string) *authv3.CheckRequest {
	return &authv3.CheckRequest{Attributes: &authv3.AttributeContext{
		Source:      &authv3.AttributeContext_Peer{Principal: from, Address: sockaddr("10.0.0.7", 41234)},
		Destination: &authv3.AttributeContext_Peer{Principal: to, Address: sockaddr("10.0.0.9", 8080)},
		Request: &authv3.AttributeContext_Request{Http: &authv3.AttributeContext_HttpRequest{
			Id: "1", Method: method, Path: "/orders/7", Host: "orders.demo.svc.cluster.local", Scheme: "http", Protocol: "HTTP/1.1",
			Headers: map[string]string{":method": method, ":path": "/orders/7", ":authority": "orders.demo.svc.cluster.local", "x-request-id": "1"},
		}},
	}}
}

func sockaddr(ip string, port uint32) *corev3.Address {
	return &corev3.Address{Address: &corev3.Address_SocketAddress{SocketAddress: &corev3.SocketAddress{
		Address: ip, PortSpecifier: &corev3.SocketAddress_PortValue{PortValue: port}}}}
}

type authorizer struct {
	cfg    *extauthz.Config
	client authv3.AuthorizationClient
}

// startAuthorizer runs meshguard's authorizer on the chart's configuration
// (listeners moved to loopback) with the policy sets the policy-sync
// sidecar would write.
func startAuthorizer(t *testing.T, chartConfig string, sets []v1alpha1.PolicySet) *authorizer {
	t.Helper()
	dir := t.TempDir()
	files, skipped := kubepolicy.Files(sets, nil)
	if len(skipped) > 0 {
		t.Fatalf("policy sync would skip %v", skipped)
	}
	policies := map[string]string{}
	for name, body := range files {
		policies[name] = string(body)
	}
	var raw map[string]any
	if err := yaml.Unmarshal([]byte(chartConfig), &raw); err != nil {
		t.Fatal(err)
	}
	raw["listen"], raw["admin_listen"], raw["policies"] = "127.0.0.1:0", "127.0.0.1:0", "./policies"
	raw["decision_log"] = map[string]any{"path": "./decisions.jsonl"}
	b, _ := yaml.Marshal(raw)
	authztest.Write(t, filepath.Join(dir, "authz.yaml"), string(b))
	cfg, err := extauthz.LoadConfig(filepath.Join(dir, "authz.yaml"))
	if err != nil {
		t.Fatalf("the authorizer refuses the chart's configuration: %v\n%s", err, chartConfig)
	}
	a := authztest.StartIn(t, dir, policies, "")
	if !a.Server.Authz.Ready() {
		t.Fatalf("the authorizer is not ready: %+v", a.Server.Authz.Status())
	}
	return &authorizer{cfg: cfg, client: a.Client}
}

// The example's manifests and the chart rendered with its values are
// accepted by a real API server with Istio's and SPIRE's CRDs installed.
func TestIstioManifestsApplyToARealAPIServer(t *testing.T) {
	crds := kubetest.ThirdPartyCRDs()
	c := kubetest.Start(t, filepath.Join(crds, "istio.yaml"), filepath.Join(crds, "spire.spiffe.io_clusterspiffeids.yaml")).Client
	ctx := context.Background()
	if err := c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "meshguard"}}); err != nil {
		t.Fatal(err)
	}
	applied := 0
	for _, u := range append(istioObjects(t), meshguardForIstio(t)...) {
		if err := c.Apply(ctx, client.ApplyConfigurationFromUnstructured(u), client.FieldOwner("example"), client.ForceOwnership); err != nil {
			t.Errorf("%s %s: %v", u.GetKind(), u.GetName(), err)
		}
		applied++
	}
	// The check bites: Istio's schema refuses an unknown action.
	bad := find(t, istioObjects(t), "AuthorizationPolicy", "-meshguard").DeepCopy()
	_ = unstructured.SetNestedField(bad.Object, "MAYBE", "spec", "action")
	bad.SetName("bad")
	if err := c.Apply(ctx, client.ApplyConfigurationFromUnstructured(bad), client.FieldOwner("example")); err == nil {
		t.Error("an AuthorizationPolicy with action MAYBE was accepted")
	}
	t.Logf("%d objects applied", applied)
}
