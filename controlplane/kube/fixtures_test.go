package kube

import (
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/meshguard/meshguard/api/v1alpha1"
)

// world builds Objects the way the informers would see them.
type world struct {
	o     *Objects
	clock time.Time
}

func newWorld() *world {
	w := &world{o: &Objects{
		ConfigMaps: map[string]*corev1.ConfigMap{},
		Services:   map[string]*corev1.Service{},
		Slices:     map[string][]*discoveryv1.EndpointSlice{},
		Pods:       map[string]*corev1.Pod{},
	}, clock: time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)}
	w.o.Mesh = &v1alpha1.Mesh{
		ObjectMeta: metav1.ObjectMeta{Name: "default", Generation: 1},
		Spec: v1alpha1.MeshSpec{
			TrustDomain: "example.org",
			Authz:       v1alpha1.Authz{Address: "meshguard-authz.meshguard.svc:9191"},
		},
	}
	w.policySet("default-deny", `forbid (principal, action, resource);`)
	return w
}

func (w *world) meta(ns, name string) metav1.ObjectMeta {
	w.clock = w.clock.Add(time.Minute)
	return metav1.ObjectMeta{Namespace: ns, Name: name, Generation: 1, CreationTimestamp: metav1.NewTime(w.clock)}
}

// app adds a Kubernetes Service with n ready pods running as sa, and its
// EndpointSlice; the container listens on 8080 behind Service port port.
func (w *world) app(ns, name string, port int32, sa string, n int) {
	w.o.Services[key(ns, name)] = &corev1.Service{
		ObjectMeta: w.meta(ns, name),
		Spec:       corev1.ServiceSpec{Ports: []corev1.ServicePort{{Name: "http", Port: port}}},
	}
	sl := &discoveryv1.EndpointSlice{ObjectMeta: w.meta(ns, name+"-abcde")}
	pname, pport := "http", int32(8080)
	sl.Ports = []discoveryv1.EndpointPort{{Name: &pname, Port: &pport}}
	for i := range n {
		pod := &corev1.Pod{ObjectMeta: w.meta(ns, fmt.Sprintf("%s-%d", name, i)), Spec: corev1.PodSpec{ServiceAccountName: sa}}
		w.o.Pods[key(ns, pod.Name)] = pod
		ready := true
		sl.Endpoints = append(sl.Endpoints, discoveryv1.Endpoint{
			Addresses:  []string{fmt.Sprintf("10.%d.0.%d", len(w.o.Services), i+1)},
			Conditions: discoveryv1.EndpointConditions{Ready: &ready},
			TargetRef:  &corev1.ObjectReference{Kind: "Pod", Namespace: ns, Name: pod.Name},
		})
	}
	w.o.Slices[key(ns, name)] = append(w.o.Slices[key(ns, name)], sl)
}

func (w *world) meshService(ns, name string, spec v1alpha1.MeshServiceSpec) *v1alpha1.MeshService {
	ms := &v1alpha1.MeshService{ObjectMeta: w.meta(ns, name), Spec: spec}
	w.o.MeshServices = append(w.o.MeshServices, ms)
	return ms
}

// edit replaces a MeshService's spec with a new generation, as an update would.
func (w *world) edit(ms *v1alpha1.MeshService, spec v1alpha1.MeshServiceSpec) *v1alpha1.MeshService {
	next := ms.DeepCopy()
	next.Spec, next.Generation = spec, ms.Generation+1
	for i, o := range w.o.MeshServices {
		if o == ms {
			w.o.MeshServices[i] = next
		}
	}
	return next
}

func (w *world) policySet(name, cedar string) *v1alpha1.PolicySet {
	ps := &v1alpha1.PolicySet{ObjectMeta: w.meta("meshguard", name), Spec: v1alpha1.PolicySetSpec{Policies: map[string]string{"policy.cedar": cedar}}}
	for i, o := range w.o.PolicySets {
		if o.Name == name {
			ps.Generation = o.Generation + 1
			w.o.PolicySets[i] = ps
			return ps
		}
	}
	w.o.PolicySets = append(w.o.PolicySets, ps)
	return ps
}

func prefix(p string) v1alpha1.RouteMatch { return v1alpha1.RouteMatch{Prefix: &p} }
