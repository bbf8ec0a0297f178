// Package charts tests the Helm chart: lint, the values schema, what the
// templates render (hardened pods, configurations meshguard loads), and the
// rendered objects applied to a real API server (server-side dry run).
package charts

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/meshguard/meshguard/api/v1alpha1"
	"github.com/meshguard/meshguard/controlplane/kube"
	"github.com/meshguard/meshguard/extauthz"
	"github.com/meshguard/meshguard/internal/kubetest"
	"github.com/meshguard/meshguard/ratelimit"
)

// full turns on every optional part.
var full = []string{
	"--set", "rateLimit.enabled=true", "--set", "redis.address=redis.data.svc:6379",
	"--set", "redis.passwordSecret=redis-password", "--set", "networkPolicy.enabled=true",
	"--set", "serviceMonitor.enabled=true", "--set", "controlPlane.adminTokenSecret=cp-admin",
	"--set", "authz.adminTokenSecret=authz-admin", "--set", "prometheusRule.enabled=true", "--set", "grafanaDashboards.enabled=true",
}

func TestTheChartLints(t *testing.T) {
	for _, args := range [][]string{nil, full} {
		if out, err := kubetest.RunHelm(t, append([]string{"lint", "--strict", kubetest.Chart()}, args...)...); err != nil {
			t.Fatalf("helm lint %v: %v\n%s", args, err, out)
		}
	}
}

func TestTheValuesSchemaRefusesBadValues(t *testing.T) {
	for _, tc := range []struct {
		set, want string
	}{
		{"mesh.identityProvider=vault", "identityProvider"},
		{"controlPlane.xdsPort=0", "xdsPort"},
		{"authz.replicas=0", "replicas"},
		{"authz.tpyo=1", "tpyo"},
		{"redis.address=no-port", "address"},
		{"mesh.trustDomain=Example.ORG", "trustDomain"},
		{"controlPlane.leaseDuration=soon", "leaseDuration"},
		{"rateLimit.enabled=true", "rateLimit.enabled needs redis.address"},
	} {
		_, err := kubetest.RunHelm(t, "template", "mg", kubetest.Chart(), "--set", tc.set)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("--set %s: %v, want a refusal naming %q", tc.set, err, tc.want)
		}
	}
}

// Every pod runs as non-root with a read-only root, no capabilities, the
// runtime's seccomp profile, bounded memory, and probes.
func TestEveryPodIsHardened(t *testing.T) {
	for _, args := range [][]string{nil, full} {
		deployments := 0
		for _, u := range kubetest.Render(t, args...) {
			if u.GetKind() != "Deployment" {
				continue
			}
			deployments++
			d := kubetest.Into[appsv1.Deployment](t, u)
			pod := d.Spec.Template.Spec
			if psc := pod.SecurityContext; psc == nil || psc.RunAsNonRoot == nil || !*psc.RunAsNonRoot ||
				psc.SeccompProfile == nil || psc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
				t.Errorf("%s: pod security context %+v", d.Name, psc)
			}
			for _, v := range pod.Volumes {
				if v.HostPath != nil {
					t.Errorf("%s: hostPath volume %s", d.Name, v.Name)
				}
			}
			for _, c := range append(append([]corev1.Container{}, pod.InitContainers...), pod.Containers...) {
				sc := c.SecurityContext
				switch {
				case sc == nil || sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem:
					t.Errorf("%s/%s: root filesystem not read-only", d.Name, c.Name)
				case sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation:
					t.Errorf("%s/%s: privilege escalation allowed", d.Name, c.Name)
				case sc.Capabilities == nil || len(sc.Capabilities.Drop) != 1 || sc.Capabilities.Drop[0] != "ALL":
					t.Errorf("%s/%s: capabilities not all dropped", d.Name, c.Name)
				}
				if c.Resources.Requests.Cpu().IsZero() || c.Resources.Limits.Memory().IsZero() {
					t.Errorf("%s/%s: resources %+v, want a CPU request and a memory limit", d.Name, c.Name, c.Resources)
				}
				if c.LivenessProbe == nil || (c.ReadinessProbe == nil && c.StartupProbe == nil) {
					t.Errorf("%s/%s: probes missing", d.Name, c.Name)
				}
				if strings.HasSuffix(c.Image, ":latest") || !strings.Contains(c.Image, ":") {
					t.Errorf("%s/%s: image %q is not pinned", d.Name, c.Name, c.Image)
				}
			}
		}
		if want := map[int]int{0: 2, 1: 3}[len(args)/len(full)]; deployments != want {
			t.Errorf("%d deployments rendered with %v, want %d", deployments, args, want)
		}
	}
}

// What the chart configures, meshguard loads: the authorizer's file, the
// rate-limit service's limits, and the Mesh.
func TestTheRenderedConfigurationsLoad(t *testing.T) {
	dir := t.TempDir()
	for _, u := range kubetest.Render(t, full...) {
		switch {
		case u.GetKind() == "ConfigMap" && strings.HasSuffix(u.GetName(), "-authz"):
			cm := kubetest.Into[corev1.ConfigMap](t, u)
			path := filepath.Join(dir, "authz.yaml")
			if err := os.WriteFile(path, []byte(cm.Data["authz.yaml"]), 0o644); err != nil {
				t.Fatal(err)
			}
			cfg, err := extauthz.LoadConfig(path)
			if err != nil {
				t.Fatalf("the authorizer refuses the chart's configuration: %v\n%s", err, cm.Data["authz.yaml"])
			}
			if cfg.Redis == nil || cfg.Redis.PasswordFile == "" || cfg.AdminTokenFile == "" {
				t.Fatalf("the chart's redis and admin token did not reach the authorizer: %+v", cfg)
			}
		case u.GetKind() == "ConfigMap" && strings.HasSuffix(u.GetName(), "-ratelimit"):
			cm := kubetest.Into[corev1.ConfigMap](t, u)
			if _, err := ratelimit.ParseFile("limits.yaml", []byte(cm.Data["limits.yaml"])); err != nil {
				t.Fatalf("the rate-limit service refuses the chart's limits: %v", err)
			}
		case u.GetKind() == "Mesh":
			m := kubetest.Into[v1alpha1.Mesh](t, u)
			as := kube.NewAssembler(m.Name).Assemble(&kube.Objects{Mesh: m})
			if as.Mesh == nil {
				t.Fatalf("the chart's Mesh does not validate: %v", as.Err)
			}
		}
	}
}

// The rendered objects are valid for a real API server (server-side dry
// run, as kubectl apply --dry-run=server), and the pods they make pass the
// "restricted" Pod Security Standard, enforced by the API server.
func TestTheChartAppliesToARealAPIServer(t *testing.T) {
	crds := kubetest.ThirdPartyCRDs()
	c := kubetest.Start(t, filepath.Join(crds, "monitoring.coreos.com_servicemonitors.yaml"), filepath.Join(crds, "monitoring.coreos.com_prometheusrules.yaml")).Client
	ctx := context.Background()
	restricted := map[string]string{"pod-security.kubernetes.io/enforce": "restricted"}
	if err := c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "meshguard", Labels: restricted}}); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{nil, full} {
		for _, u := range kubetest.Render(t, args...) {
			err := c.Apply(ctx, client.ApplyConfigurationFromUnstructured(u), client.DryRunAll, client.FieldOwner("helm"), client.ForceOwnership)
			if err != nil {
				t.Errorf("%s %s: %v", u.GetKind(), u.GetName(), err)
			}
			if u.GetKind() != "Deployment" {
				continue
			}
			d := kubetest.Into[appsv1.Deployment](t, u)
			pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "meshguard", Name: d.Name + "-test", Labels: d.Spec.Template.Labels},
				Spec: d.Spec.Template.Spec}
			if err := c.Create(ctx, pod, client.DryRunAll); err != nil {
				t.Errorf("a pod of %s in a restricted namespace: %v", d.Name, err)
			}
		}
	}
	// The check bites: the SPIRE socket from the node (hostPath) is not
	// allowed there.
	for _, u := range kubetest.Render(t, "--set", "spire.socketVolume=hostPath") {
		if u.GetKind() == "Deployment" && strings.HasSuffix(u.GetName(), "-controlplane") {
			d := kubetest.Into[appsv1.Deployment](t, u)
			pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "meshguard", Name: "hostpath-test"}, Spec: d.Spec.Template.Spec}
			if err := c.Create(ctx, pod, client.DryRunAll); err == nil || !strings.Contains(err.Error(), "restricted") {
				t.Errorf("a hostPath pod in a restricted namespace: %v, want it refused", err)
			}
		}
	}
}
