// Package kubetest runs a real Kubernetes API server for tests: Debian's
// etcd and a kube-apiserver built by tools/kube/build.sh (make kube),
// started by controller-runtime's envtest with meshguard's CRDs installed.
package kubetest

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	k8sruntime "k8s.io/apimachinery/pkg/runtime"

	"github.com/meshguard/meshguard/api/v1alpha1"
)

// Version is the kube-apiserver tools/kube/build.sh builds.
const Version = "v1.37.2"

// HelmVersion is the Helm CLI make helm installs.
const HelmVersion = "v4.3.2"

func cacheDir() string {
	if d := os.Getenv("MESHGUARD_CACHE"); d != "" {
		return d
	}
	home, _ := os.UserHomeDir()
	return filepath.Join(home, ".cache", "meshguard")
}

// Assets is the directory holding etcd and kube-apiserver.
func Assets() string {
	if d := os.Getenv("KUBEBUILDER_ASSETS"); d != "" {
		return d
	}
	return filepath.Join(cacheDir(), "kube-"+Version, "bin")
}

// Helm is the path of the Helm CLI (make helm).
func Helm(t testing.TB) string {
	t.Helper()
	p := filepath.Join(cacheDir(), "bin", "helm-"+HelmVersion)
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("helm %s is not in %s: run make helm first: %v", HelmVersion, filepath.Dir(p), err)
	}
	return p
}

// ThirdPartyCRDs is the directory of other projects' CRDs tools/kube
// fetches: Istio's (istio.yaml), SPIRE's ClusterSPIFFEID and
// prometheus-operator's ServiceMonitor and PrometheusRule.
func ThirdPartyCRDs() string { return filepath.Join(cacheDir(), "kube-"+Version, "crds") }

// repoRoot is the repository's root, from this file's place in it.
func repoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..")
}

// CRDs is the directory of meshguard's CustomResourceDefinitions.
func CRDs() string { return filepath.Join(repoRoot(), "charts", "meshguard", "crds") }

// Scheme knows Kubernetes' built-in types and meshguard's.
func Scheme() *k8sruntime.Scheme {
	s := k8sruntime.NewScheme()
	if err := clientgoscheme.AddToScheme(s); err != nil {
		panic(err)
	}
	if err := v1alpha1.AddToScheme(s); err != nil {
		panic(err)
	}
	return s
}

// Codecs decode and encode with Scheme's types.
func Codecs() serializer.CodecFactory { return serializer.NewCodecFactory(Scheme()) }

// Cluster is a running API server.
type Cluster struct {
	Config *rest.Config
	Client client.Client
	env    *envtest.Environment
}

// Start runs an API server with meshguard's CRDs, and those of the given
// files or directories, installed until the test ends.
func Start(t testing.TB, moreCRDs ...string) *Cluster {
	t.Helper()
	dir := Assets()
	for _, bin := range []string{"etcd", "kube-apiserver"} {
		if _, err := os.Stat(filepath.Join(dir, bin)); err != nil {
			t.Fatalf("%s is not in %s: run make kube (tools/kube/build.sh) first: %v", bin, dir, err)
		}
	}
	env := &envtest.Environment{
		BinaryAssetsDirectory:    dir,
		CRDDirectoryPaths:        append([]string{CRDs()}, moreCRDs...),
		ErrorIfCRDPathMissing:    true,
		Scheme:                   Scheme(),
		ControlPlaneStartTimeout: 90 * time.Second,
		ControlPlaneStopTimeout:  30 * time.Second,
	}
	cfg, err := env.Start()
	if err != nil {
		t.Fatalf("start kube-apiserver: %v", err)
	}
	t.Cleanup(func() {
		if err := env.Stop(); err != nil {
			t.Logf("stop kube-apiserver: %v", err)
		}
	})
	c, err := client.New(cfg, client.Options{Scheme: env.Scheme})
	if err != nil {
		t.Fatal(err)
	}
	return &Cluster{Config: cfg, Client: c, env: env}
}

// HostIP is an IPv4 address of this machine that is not loopback: the API
// server refuses loopback endpoint addresses, so workloads a test runs
// must listen on one like it.
func HostIP(t testing.TB) string {
	t.Helper()
	ifaces, err := net.Interfaces()
	if err != nil {
		t.Fatal(err)
	}
	for _, ifc := range ifaces {
		if ifc.Flags&net.FlagUp == 0 || ifc.Flags&net.FlagLoopback != 0 {
			continue
		}
		addrs, _ := ifc.Addrs()
		for _, a := range addrs {
			if ipn, ok := a.(*net.IPNet); ok && ipn.IP.To4() != nil && !ipn.IP.IsLinkLocalUnicast() {
				return ipn.IP.String()
			}
		}
	}
	t.Fatal("no non-loopback IPv4 address on this machine: the tests need one for EndpointSlices")
	return ""
}

// As is the cluster's configuration acting as a service account
// (impersonated): what a pod running as it may do, as RBAC allows.
func (c *Cluster) As(namespace, serviceAccount string) *rest.Config {
	cfg := rest.CopyConfig(c.Config)
	cfg.Impersonate = rest.ImpersonationConfig{UserName: "system:serviceaccount:" + namespace + ":" + serviceAccount}
	return cfg
}

// Kubeconfig writes a kubeconfig file for a cluster administrator, for
// commands under test that take --kubeconfig.
func (c *Cluster) Kubeconfig(t testing.TB) string {
	t.Helper()
	u, err := c.env.ControlPlane.AddUser(envtest.User{Name: "meshguard-test-admin", Groups: []string{"system:masters"}}, c.Config)
	if err != nil {
		t.Fatal(err)
	}
	data, err := u.KubeConfig()
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "kubeconfig")
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// Create creates objs in order, failing the test at the first refused.
func (c *Cluster) Create(t testing.TB, objs ...client.Object) {
	t.Helper()
	for _, o := range objs {
		if err := c.Client.Create(context.Background(), o); err != nil {
			t.Fatalf("create %T %s: %v", o, o.GetName(), err)
		}
	}
}

// App creates what discovery reads of one workload: a Service (one port,
// named portName), a Pod <name>-0 running as service account name, and an
// EndpointSlice with that pod ready at addr:port.
func (c *Cluster) App(t testing.TB, namespace, name, portName string, port int32, addr string) {
	t.Helper()
	ready := true
	c.Create(t,
		&corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: name},
			Spec: corev1.ServiceSpec{Ports: []corev1.ServicePort{{Name: portName, Port: port}}}},
		&corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: name + "-0"},
			Spec: corev1.PodSpec{ServiceAccountName: name, Containers: []corev1.Container{{Name: "app", Image: "app"}}}},
		&discoveryv1.EndpointSlice{
			ObjectMeta:  metav1.ObjectMeta{Namespace: namespace, Name: name + "-x1", Labels: map[string]string{discoveryv1.LabelServiceName: name}},
			AddressType: discoveryv1.AddressTypeIPv4,
			Endpoints: []discoveryv1.Endpoint{{Addresses: []string{addr}, Conditions: discoveryv1.EndpointConditions{Ready: &ready},
				TargetRef: &corev1.ObjectReference{Kind: "Pod", Namespace: namespace, Name: name + "-0"}}},
			Ports: []discoveryv1.EndpointPort{{Name: &portName, Port: &port}},
		},
	)
}
