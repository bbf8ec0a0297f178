// Package kubepolicy mirrors the PolicySet objects of a namespace into a
// policy directory, for the authorizer: each set a subdirectory of its
// .cedar files (inline, or from the ConfigMap it names), the whole
// directory replaced at once on every change (internal/atomicdir). The
// authorizer watches the directory as it watches any other: a set whose new
// text does not parse keeps its last good version there too.
package kubepolicy

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"sort"
	"strings"
	"sync/atomic"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	toolscache "k8s.io/client-go/tools/cache"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/meshguard/meshguard/api/v1alpha1"
	"github.com/meshguard/meshguard/internal/atomicdir"
	"github.com/meshguard/meshguard/internal/contract"
	"github.com/meshguard/meshguard/internal/debounce"
)

// Config configures a sync.
type Config struct {
	RestConfig *rest.Config
	// Namespace whose PolicySets (and the ConfigMaps they name) are mirrored.
	Namespace string
	// Dir is the authorizer's policy directory.
	Dir string
	// Debounce coalesces bursts of changes (default 200ms).
	Debounce time.Duration
	Log      *slog.Logger
}

// Syncer mirrors PolicySets into a directory.
type Syncer struct {
	cfg    Config
	cache  cache.Cache
	synced atomic.Bool // the directory has been written once
}

// New prepares a syncer (nothing runs until Run).
func New(cfg Config) (*Syncer, error) {
	if cfg.Namespace == "" || cfg.Dir == "" {
		return nil, fmt.Errorf("policy sync: a namespace and a directory are required")
	}
	if cfg.Debounce <= 0 {
		cfg.Debounce = 200 * time.Millisecond
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	scheme := runtime.NewScheme()
	_ = clientgoscheme.AddToScheme(scheme)
	_ = v1alpha1.AddToScheme(scheme)
	c, err := cache.New(cfg.RestConfig, cache.Options{
		Scheme:            scheme,
		DefaultNamespaces: map[string]cache.Config{cfg.Namespace: {}},
		DefaultTransform:  cache.TransformStripManagedFields(),
	})
	if err != nil {
		return nil, fmt.Errorf("policy sync: %w", err)
	}
	return &Syncer{cfg: cfg, cache: c}, nil
}

// Synced reports whether the directory has been written at least once.
func (s *Syncer) Synced() bool { return s.synced.Load() }

// Ready is an HTTP handler answering 200 once Synced (a startup probe).
func (s *Syncer) Ready(w http.ResponseWriter, _ *http.Request) {
	if !s.Synced() {
		http.Error(w, "policy sets not written yet", http.StatusServiceUnavailable)
		return
	}
	_, _ = w.Write([]byte("ready\n"))
}

// Run writes the directory after the cache syncs and after every change,
// until ctx ends.
func (s *Syncer) Run(ctx context.Context) error {
	events := make(chan struct{}, 1)
	handler := toolscache.ResourceEventHandlerFuncs{
		AddFunc:    func(any) { debounce.Trigger(events) },
		UpdateFunc: func(any, any) { debounce.Trigger(events) },
		DeleteFunc: func(any) { debounce.Trigger(events) },
	}
	for _, obj := range []client.Object{&v1alpha1.PolicySet{}, &corev1.ConfigMap{}} {
		inf, err := s.cache.GetInformer(ctx, obj)
		if err != nil {
			return fmt.Errorf("policy sync: %w", err)
		}
		if _, err := inf.AddEventHandler(handler); err != nil {
			return fmt.Errorf("policy sync: %w", err)
		}
	}
	errc := make(chan error, 1)
	go func() { errc <- s.cache.Start(ctx) }()
	if !s.cache.WaitForCacheSync(ctx) {
		return fmt.Errorf("policy sync: the cache did not sync: %w", context.Cause(ctx))
	}
	if err := s.WriteOnce(ctx); err != nil {
		return err
	}
	go debounce.Run(ctx, events, s.cfg.Debounce, 2*time.Second, func() {
		if err := s.WriteOnce(ctx); err != nil && ctx.Err() == nil {
			s.cfg.Log.Error("policy directory not written; it keeps the last version", "err", err)
		}
	})
	select {
	case <-ctx.Done():
		return nil
	case err := <-errc:
		return err
	}
}

// WriteOnce writes the directory from the cache.
func (s *Syncer) WriteOnce(ctx context.Context) error {
	var sets v1alpha1.PolicySetList
	if err := s.cache.List(ctx, &sets, client.InNamespace(s.cfg.Namespace)); err != nil {
		return err
	}
	var cms corev1.ConfigMapList
	if err := s.cache.List(ctx, &cms, client.InNamespace(s.cfg.Namespace)); err != nil {
		return err
	}
	files, skipped := Files(sets.Items, cms.Items)
	for _, msg := range skipped {
		s.cfg.Log.Warn("policy set not written", "reason", msg)
	}
	if err := atomicdir.Write(s.cfg.Dir, files); err != nil {
		return fmt.Errorf("policy sync: %w", err)
	}
	if !s.synced.Swap(true) {
		s.cfg.Log.Info("policy directory written", "dir", s.cfg.Dir, "sets", len(sets.Items)-len(skipped))
	}
	return nil
}

// Files lays the sets out as a policy directory: "<set>/<file>.cedar", and
// the set named "default" as the directory's own files. A
// set with an invalid name, no files, or a missing ConfigMap is left out
// (the reason is returned; the control plane reports it in the set's
// status, and the authorizer denies its routes).
func Files(sets []v1alpha1.PolicySet, cms []corev1.ConfigMap) (map[string][]byte, []string) {
	byName := map[string]*corev1.ConfigMap{}
	for i := range cms {
		byName[cms[i].Name] = &cms[i]
	}
	files := map[string][]byte{}
	var skipped []string
	sort.Slice(sets, func(i, j int) bool { return sets[i].Name < sets[j].Name })
	for _, ps := range sets {
		if !contract.ValidSetName(ps.Name) {
			skipped = append(skipped, fmt.Sprintf("PolicySet %s: not a policy set name", ps.Name))
			continue
		}
		src := ps.Spec.Policies
		if ref := ps.Spec.ConfigMapRef; ref != nil {
			cm, ok := byName[ref.Name]
			if !ok {
				skipped = append(skipped, fmt.Sprintf("PolicySet %s: no ConfigMap %s", ps.Name, ref.Name))
				continue
			}
			src = cm.Data
		}
		n := 0
		for name, text := range src {
			if !strings.HasSuffix(name, ".cedar") || strings.HasPrefix(name, ".") || strings.Contains(name, "/") {
				continue
			}
			path := ps.Name + "/" + name
			if ps.Name == contract.DefaultSet {
				path = name // the default set is the directory's own files
			}
			files[path] = []byte(text)
			n++
		}
		if n == 0 {
			skipped = append(skipped, fmt.Sprintf("PolicySet %s: no .cedar files", ps.Name))
		}
	}
	return files, skipped
}
