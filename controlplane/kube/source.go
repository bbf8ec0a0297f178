package kube

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	toolscache "k8s.io/client-go/tools/cache"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/meshguard/meshguard/api/v1alpha1"
	"github.com/meshguard/meshguard/controlplane/model"
	"github.com/meshguard/meshguard/internal/debounce"
)

// Config configures the Kubernetes source.
type Config struct {
	// Namespace is the control plane's own: PolicySets, WasmFilters and the
	// ConfigMaps they name are read from it only.
	Namespace string
	// Mesh names the Mesh object served (default "default").
	Mesh string
	// Debounce is how long the source waits for object events to stop
	// before it signals a change (default 100ms), and MaxDelay the longest
	// a burst can hold one back (default 1s): a rollout of 5,000 pods is a
	// few loads, not 5,000.
	Debounce, MaxDelay time.Duration
	Log                *slog.Logger
}

func (c *Config) applyDefaults() {
	if c.Mesh == "" {
		c.Mesh = "default"
	}
	if c.Debounce <= 0 {
		c.Debounce = 100 * time.Millisecond
	}
	if c.MaxDelay <= 0 {
		c.MaxDelay = time.Second
	}
	if c.Log == nil {
		c.Log = slog.New(slog.DiscardHandler)
	}
}

// Source assembles the mesh from Kubernetes objects, read from an informer
// cache (source.Source).
type Source struct {
	cfg   Config
	cache cache.Cache

	mu      sync.Mutex
	asm     *Assembler
	last    *Assembly
	waiters []chan struct{} // closed after the next assembly
	notify  func()          // called after every assembly (the status writer)
}

// NewSource reads from c, a cache made with CacheOptions.
func NewSource(c cache.Cache, cfg Config) *Source {
	cfg.applyDefaults()
	return &Source{cfg: cfg, cache: c, asm: NewAssembler(cfg.Mesh), notify: func() {}}
}

func (s *Source) String() string { return fmt.Sprintf("kubernetes (Mesh %q)", s.cfg.Mesh) }

// watched are the object kinds a mesh is assembled from.
func watched() []client.Object {
	return []client.Object{
		&v1alpha1.Mesh{}, &v1alpha1.MeshService{}, &v1alpha1.PolicySet{}, &v1alpha1.WasmFilter{},
		&corev1.ConfigMap{}, &corev1.Service{}, &discoveryv1.EndpointSlice{}, &corev1.Pod{},
	}
}

// CacheOptions are the informer cache's options: PolicySets, WasmFilters
// and ConfigMaps from namespace only, Pods stripped to the fields
// discovery reads (a cluster's Pods are most of what the cache holds).
func CacheOptions(scheme *runtime.Scheme, namespace string) cache.Options {
	own := map[string]cache.Config{namespace: {}}
	return cache.Options{
		Scheme:           scheme,
		DefaultTransform: cache.TransformStripManagedFields(),
		ByObject: map[client.Object]cache.ByObject{
			&v1alpha1.PolicySet{}:  {Namespaces: own},
			&v1alpha1.WasmFilter{}: {Namespaces: own},
			&corev1.ConfigMap{}:    {Namespaces: own},
			&corev1.Pod{}:          {Transform: trimPod},
		},
	}
}

// trimPod keeps a Pod's identity and service account.
func trimPod(obj any) (any, error) {
	pod, ok := obj.(*corev1.Pod)
	if !ok {
		return obj, nil
	}
	return &corev1.Pod{
		TypeMeta: pod.TypeMeta,
		ObjectMeta: metav1.ObjectMeta{
			Name: pod.Name, Namespace: pod.Namespace, UID: pod.UID, ResourceVersion: pod.ResourceVersion,
			CreationTimestamp: pod.CreationTimestamp, DeletionTimestamp: pod.DeletionTimestamp,
		},
		Spec: corev1.PodSpec{ServiceAccountName: pod.Spec.ServiceAccountName},
	}, nil
}

// Load assembles the mesh from the cache. Objects that fail validation are
// reported in their status (Last) and left at their last accepted version;
// the error is for a mesh that cannot be served at all (no Mesh object).
func (s *Source) Load() (*model.Mesh, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	o, err := s.read(ctx)
	if err != nil {
		return nil, fmt.Errorf("kubernetes: %w", err)
	}
	s.mu.Lock()
	as := s.asm.Assemble(o)
	s.last = as
	waiters := s.waiters
	s.waiters = nil
	notify := s.notify
	s.mu.Unlock()
	for _, w := range waiters {
		close(w)
	}
	notify()
	for r, v := range as.Verdicts {
		if !v.Accepted {
			s.cfg.Log.Debug("object refused", "object", r.String(), "reason", v.Reason, "err", v.Message)
		}
	}
	if as.Mesh == nil {
		return nil, as.Err
	}
	return as.Mesh, nil
}

// Last is the latest assembly (nil before the first Load).
func (s *Source) Last() *Assembly {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.last
}

// OnAssembly sets a function called after every assembly.
func (s *Source) OnAssembly(f func()) {
	s.mu.Lock()
	s.notify = f
	s.mu.Unlock()
}

func (s *Source) read(ctx context.Context) (*Objects, error) {
	o := &Objects{
		ConfigMaps: map[string]*corev1.ConfigMap{},
		Services:   map[string]*corev1.Service{},
		Slices:     map[string][]*discoveryv1.EndpointSlice{},
		Pods:       map[string]*corev1.Pod{},
	}
	// The cache's objects are read, never changed: no copies.
	nocopy := client.UnsafeDisableDeepCopy
	var meshes v1alpha1.MeshList
	if err := s.cache.List(ctx, &meshes, nocopy); err != nil {
		return nil, err
	}
	for i := range meshes.Items {
		if meshes.Items[i].Name == s.cfg.Mesh {
			o.Mesh = &meshes.Items[i]
		}
	}
	var mss v1alpha1.MeshServiceList
	if err := s.cache.List(ctx, &mss, nocopy); err != nil {
		return nil, err
	}
	for i := range mss.Items {
		o.MeshServices = append(o.MeshServices, &mss.Items[i])
	}
	var pss v1alpha1.PolicySetList
	if err := s.cache.List(ctx, &pss, client.InNamespace(s.cfg.Namespace), nocopy); err != nil {
		return nil, err
	}
	for i := range pss.Items {
		o.PolicySets = append(o.PolicySets, &pss.Items[i])
	}
	var wfs v1alpha1.WasmFilterList
	if err := s.cache.List(ctx, &wfs, client.InNamespace(s.cfg.Namespace), nocopy); err != nil {
		return nil, err
	}
	for i := range wfs.Items {
		o.Filters = append(o.Filters, &wfs.Items[i])
	}
	var cms corev1.ConfigMapList
	if err := s.cache.List(ctx, &cms, client.InNamespace(s.cfg.Namespace), nocopy); err != nil {
		return nil, err
	}
	for i := range cms.Items {
		o.ConfigMaps[cms.Items[i].Name] = &cms.Items[i]
	}
	// Services, slices and pods only where a MeshService is.
	namespaces := map[string]bool{}
	for _, ms := range o.MeshServices {
		namespaces[ms.Namespace] = true
	}
	for ns := range namespaces {
		var svcs corev1.ServiceList
		if err := s.cache.List(ctx, &svcs, client.InNamespace(ns), nocopy); err != nil {
			return nil, err
		}
		for i := range svcs.Items {
			o.Services[key(ns, svcs.Items[i].Name)] = &svcs.Items[i]
		}
		var slices discoveryv1.EndpointSliceList
		if err := s.cache.List(ctx, &slices, client.InNamespace(ns), nocopy); err != nil {
			return nil, err
		}
		for i := range slices.Items {
			sl := &slices.Items[i]
			if svc := sl.Labels[discoveryv1.LabelServiceName]; svc != "" {
				o.Slices[key(ns, svc)] = append(o.Slices[key(ns, svc)], sl)
			}
		}
		var pods corev1.PodList
		if err := s.cache.List(ctx, &pods, client.InNamespace(ns), nocopy); err != nil {
			return nil, err
		}
		for i := range pods.Items {
			o.Pods[key(ns, pods.Items[i].Name)] = &pods.Items[i]
		}
	}
	return o, nil
}

// Watch calls changed after object events, coalesced (Debounce,
// MaxDelay), until ctx ends. It returns once the handlers are registered.
func (s *Source) Watch(ctx context.Context, changed func()) (<-chan struct{}, error) {
	events := make(chan struct{}, 1)
	poke := func() { debounce.Trigger(events) }
	handler := toolscache.FilteringResourceEventHandler{
		FilterFunc: partOfTheMesh,
		Handler: toolscache.ResourceEventHandlerFuncs{
			AddFunc:    func(any) { poke() },
			UpdateFunc: func(any, any) { poke() },
			DeleteFunc: func(any) { poke() },
		},
	}
	// A Pod's service account never changes, and its address reaches the
	// mesh through the EndpointSlices: only a new Pod matters (its slice
	// may have been seen first).
	podHandler := toolscache.ResourceEventHandlerFuncs{AddFunc: func(any) { poke() }}
	var regs []func()
	for _, obj := range watched() {
		inf, err := s.cache.GetInformer(ctx, obj)
		if err != nil {
			return nil, fmt.Errorf("kubernetes: watch %T: %w", obj, err)
		}
		var h toolscache.ResourceEventHandler = handler
		if _, ok := obj.(*corev1.Pod); ok {
			h = podHandler
		}
		reg, err := inf.AddEventHandler(h)
		if err != nil {
			return nil, fmt.Errorf("kubernetes: watch %T: %w", obj, err)
		}
		regs = append(regs, func() { _ = inf.RemoveEventHandler(reg) })
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer func() {
			for _, r := range regs {
				r()
			}
		}()
		debounce.Run(ctx, events, s.cfg.Debounce, s.cfg.MaxDelay, changed)
	}()
	return done, nil
}

// partOfTheMesh reports whether an object's events can change the mesh.
// The rollout state ConfigMap cannot: the leader rewrites it on every
// rollout move, and every replica already follows it (followRolloutState)
// without assembling and translating the whole mesh again.
func partOfTheMesh(obj any) bool {
	if d, ok := obj.(toolscache.DeletedFinalStateUnknown); ok {
		obj = d.Obj
	}
	cm, ok := obj.(*corev1.ConfigMap)
	return !ok || cm.Name != RolloutStateConfigMap
}

// Assembled waits for the next assembly after now, or ctx.
func (s *Source) Assembled(ctx context.Context) error {
	ch := make(chan struct{})
	s.mu.Lock()
	s.waiters = append(s.waiters, ch)
	s.mu.Unlock()
	select {
	case <-ch:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
