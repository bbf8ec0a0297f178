package kube

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"sync"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/meshguard/meshguard/api/v1alpha1"
	"github.com/meshguard/meshguard/controlplane"
	"github.com/meshguard/meshguard/controlplane/model"
	"github.com/meshguard/meshguard/internal/kubetest"
	"github.com/meshguard/meshguard/internal/xds"
)

// Scale of BenchmarkConvergence: the shape bench/RESULTS.md reports.
var (
	scaleServices = 100
	scalePods     = 5000
	scaleCalls    = 5
)

// BenchmarkConvergence compares the Kubernetes source with the file
// source on one mesh of 5,000 pods in 100 services (each calling 5
// others): the time from starting a control plane until every sidecar's
// snapshot is built (for the kube source: listing and caching the objects
// from a real API server, then assembling), and the time from an edit of
// one service until its proxies' routes change. Rounds alternate the two
// sources; the metrics are medians and their ratio.
//
//	go test -run '^$' -bench BenchmarkConvergence -benchtime 5x ./controlplane/kube/
//
// SCALE_SMALL=1 runs 100 pods in 10 services instead; SCALE_LOG=1 logs the
// control planes (debug) to stderr.
func BenchmarkConvergence(b *testing.B) {
	if os.Getenv("SCALE_SMALL") != "" {
		scaleServices, scalePods = 10, 100
	}
	c := kubetest.Start(b)
	populate(b, c.Client)

	dir := b.TempDir()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	if os.Getenv("SCALE_LOG") != "" {
		log = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	var kubeStart, fileStart, kubeEdit, fileEdit []time.Duration
	var meshFile string
	for i := 0; i < b.N; i++ {
		// Kubernetes source.
		t0 := time.Now()
		r, err := Start(context.Background(), Options{
			Config:     Config{Namespace: meshNS},
			RestConfig: c.Config,
			ControlPlane: controlplane.Config{Listen: "127.0.0.1:0", AdminListen: "127.0.0.1:0",
				CADir: filepath.Join(dir, "ca"), RolloutDir: filepath.Join(dir, fmt.Sprint("rk", i))},
		}, log)
		if err != nil {
			b.Fatal(err)
		}
		m := waitMesh(b, r.Server, func(m *model.Mesh) bool { return workloads(m) == scalePods })
		kubeStart = append(kubeStart, time.Since(t0))
		if meshFile == "" {
			meshFile = writeMesh(b, dir, m)
		}
		node := m.Spec.Services[0].Workloads[0].Name
		before := r.Server.Cache.Snapshot(node)
		t0 = time.Now()
		routes := []v1alpha1.Route{{ID: fmt.Sprintf("svc-0/edit-%d", i), Match: v1alpha1.RouteMatch{Prefix: new(fmt.Sprintf("/edit-%d", i))}}}
		ms := &v1alpha1.MeshService{ObjectMeta: metav1.ObjectMeta{Namespace: appNS, Name: "svc-0"}}
		if err := c.Client.Get(context.Background(), client.ObjectKeyFromObject(ms), ms); err != nil {
			b.Fatal(err)
		}
		patch := client.MergeFrom(ms.DeepCopy())
		ms.Spec.Routes = append(routes, v1alpha1.Route{ID: "svc-0/all", Match: v1alpha1.RouteMatch{Prefix: new("/")}})
		if err := c.Client.Patch(context.Background(), ms, patch); err != nil {
			b.Fatal(err)
		}
		waitChanged(b, r.Server, node, before)
		kubeEdit = append(kubeEdit, time.Since(t0))
		stop(r)

		// File source, on the mesh the kube source assembled.
		if err := os.WriteFile(filepath.Join(dir, "mesh.yaml"), []byte(meshFile), 0o644); err != nil {
			b.Fatal(err)
		}
		t0 = time.Now()
		s, err := controlplane.New(controlplane.Config{MeshPath: filepath.Join(dir, "mesh.yaml"), Listen: "127.0.0.1:0", AdminListen: "127.0.0.1:0",
			CADir: filepath.Join(dir, "ca"), RolloutDir: filepath.Join(dir, fmt.Sprint("rf", i))}, log)
		if err == nil {
			err = s.Start(context.Background())
		}
		if err != nil {
			b.Fatal(err)
		}
		waitMesh(b, s, func(m *model.Mesh) bool { return workloads(m) == scalePods })
		fileStart = append(fileStart, time.Since(t0))
		before = s.Cache.Snapshot(node)
		edited, err := model.Parse([]byte(meshFile), nil)
		if err != nil {
			b.Fatal(err)
		}
		edited.Spec.Services[0].Routes = append([]model.Route{{ID: fmt.Sprintf("svc-0/edit-%d", i), Match: model.RouteMatch{Prefix: fmt.Sprintf("/edit-%d", i)}}}, edited.Spec.Services[0].Routes...)
		t0 = time.Now()
		writeMesh(b, dir, edited)
		waitChanged(b, s, node, before)
		fileEdit = append(fileEdit, time.Since(t0))
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		s.Stop(ctx)
		cancel()
	}
	ks, fs, ke, fe := median(kubeStart), median(fileStart), median(kubeEdit), median(fileEdit)
	b.ReportMetric(float64(ks.Milliseconds()), "kube-start-ms")
	b.ReportMetric(float64(fs.Milliseconds()), "file-start-ms")
	b.ReportMetric(float64(ks)/float64(fs), "start-ratio")
	b.ReportMetric(float64(ke.Milliseconds()), "kube-edit-ms")
	b.ReportMetric(float64(fe.Milliseconds()), "file-edit-ms")
	b.ReportMetric(float64(ke)/float64(fe), "edit-ratio")
	b.Logf("start kube %v file %v; edit kube %v file %v (per round: %v %v %v %v)", ks, fs, ke, fe, kubeStart, fileStart, kubeEdit, fileEdit)
}

// populate creates the mesh's objects: a Mesh, one PolicySet, and per
// service a Service, its pods (each service its own service account), an
// EndpointSlice and a MeshService calling the next scaleCalls services.
func populate(b *testing.B, c client.Client) {
	ctx := context.Background()
	for _, o := range []client.Object{
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: meshNS}}, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: appNS}},
		&v1alpha1.Mesh{ObjectMeta: metav1.ObjectMeta{Name: "default"}, Spec: v1alpha1.MeshSpec{TrustDomain: "meshguard.test",
			Authz: v1alpha1.Authz{Address: "127.0.0.1:9191"}, XDS: v1alpha1.XDS{Address: "127.0.0.1:0"}}},
		&v1alpha1.PolicySet{ObjectMeta: metav1.ObjectMeta{Namespace: meshNS, Name: "shared"},
			Spec: v1alpha1.PolicySetSpec{Policies: map[string]string{"allow.cedar": `permit (principal, action, resource);`}}},
	} {
		if err := c.Create(ctx, o); err != nil {
			b.Fatal(err)
		}
	}
	perService := scalePods / scaleServices
	jobs := make(chan client.Object)
	var wg sync.WaitGroup
	for range 16 {
		wg.Go(func() {
			for o := range jobs {
				if err := c.Create(ctx, o); err != nil {
					b.Error(err)
				}
			}
		})
	}
	port, ready, portName := int32(8080), true, "http"
	for s := range scaleServices {
		name := fmt.Sprintf("svc-%d", s)
		jobs <- &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: appNS, Name: name},
			Spec: corev1.ServiceSpec{Ports: []corev1.ServicePort{{Name: portName, Port: port}}}}
		slice := &discoveryv1.EndpointSlice{
			ObjectMeta:  metav1.ObjectMeta{Namespace: appNS, Name: name + "-1", Labels: map[string]string{discoveryv1.LabelServiceName: name}},
			AddressType: discoveryv1.AddressTypeIPv4,
			Ports:       []discoveryv1.EndpointPort{{Name: &portName, Port: &port}},
		}
		for p := range perService {
			pod := fmt.Sprintf("%s-%d", name, p)
			jobs <- &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: appNS, Name: pod},
				Spec: corev1.PodSpec{ServiceAccountName: name, Containers: []corev1.Container{{Name: "app", Image: "app"}}}}
			// 10.<s>.<p>.1 stands for each pod's IP: nothing dials them.
			addr := fmt.Sprintf("10.%d.%d.1", s, p)
			slice.Endpoints = append(slice.Endpoints, discoveryv1.Endpoint{Addresses: []string{addr},
				Conditions: discoveryv1.EndpointConditions{Ready: &ready},
				TargetRef:  &corev1.ObjectReference{Kind: "Pod", Namespace: appNS, Name: pod}})
		}
		jobs <- slice
		var calls []string
		for k := 1; k <= scaleCalls; k++ {
			calls = append(calls, fmt.Sprintf("svc-%d", (s+k)%scaleServices))
		}
		jobs <- &v1alpha1.MeshService{ObjectMeta: metav1.ObjectMeta{Namespace: appNS, Name: name}, Spec: v1alpha1.MeshServiceSpec{
			Policy: "shared", Calls: calls, Port: int32(20000 + s),
			Routes: []v1alpha1.Route{{ID: name + "/all", Match: v1alpha1.RouteMatch{Prefix: new("/")}}}}}
	}
	close(jobs)
	wg.Wait()
	if b.Failed() {
		b.FailNow()
	}
}

func workloads(m *model.Mesh) int {
	n := 0
	for _, s := range m.Spec.Services {
		n += len(s.Workloads)
	}
	return n
}

func waitMesh(b *testing.B, s *controlplane.Server, done func(*model.Mesh) bool) *model.Mesh {
	deadline := time.Now().Add(2 * time.Minute)
	for time.Now().Before(deadline) {
		if m := s.Builder.Mesh(); m != nil && done(m) {
			return m
		}
		time.Sleep(5 * time.Millisecond)
	}
	n := 0
	if m := s.Builder.Mesh(); m != nil {
		n = workloads(m)
	}
	b.Fatalf("the mesh did not converge within 2 minutes: %d workloads, last error %v", n, s.LastError())
	return nil
}

func waitChanged(b *testing.B, s *controlplane.Server, node string, before xds.Snapshot) {
	deadline := time.Now().Add(time.Minute)
	for time.Now().Before(deadline) {
		if now := s.Cache.Snapshot(node); len(now) > 0 && now[xds.RouteType].Version != before[xds.RouteType].Version {
			return
		}
		time.Sleep(2 * time.Millisecond)
	}
	b.Fatalf("%s's routes did not change within a minute", node)
}

func writeMesh(b *testing.B, dir string, m *model.Mesh) string {
	data, err := yaml.Marshal(m)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := model.Parse(data, nil); err != nil {
		b.Fatalf("the assembled mesh does not round-trip through a file: %v", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "mesh.yaml"), data, 0o644); err != nil {
		b.Fatal(err)
	}
	return string(data)
}

func stop(r *Replica) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	r.Stop(ctx)
}

func median(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[len(s)/2]
}
