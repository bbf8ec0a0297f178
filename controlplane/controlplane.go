// Package controlplane runs meshguard's xDS control plane: it loads the mesh
// model, translates it for every workload, and serves the result over ADS
// with proxy status.
package controlplane

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"

	"github.com/meshguard/meshguard/controlplane/model"
	"github.com/meshguard/meshguard/controlplane/translate"
	"github.com/meshguard/meshguard/identity/devca"
	"github.com/meshguard/meshguard/internal/xds"
)

// Builder turns a mesh into per-node snapshots and pushes them into the
// cache. It keeps the last good mesh: a model that fails to translate for
// any workload changes nothing.
type Builder struct {
	cache *xds.Cache
	log   *slog.Logger

	mu      sync.Mutex
	mesh    *model.Mesh
	secrets *secrets        // the identity material served over SDS
	nodes   map[string]bool // nodes with a snapshot
}

// NewBuilder creates a builder feeding cache. caDir holds the dev CA (created on first use).
func NewBuilder(cache *xds.Cache, caDir string, svidTTL time.Duration, log *slog.Logger) *Builder {
	if svidTTL == 0 {
		svidTTL = devca.DefaultSVIDTTL
	}
	return &Builder{cache: cache, log: log, secrets: newSecrets(caDir, svidTTL, log), nodes: map[string]bool{}}
}

// Mesh is the last good mesh, or nil.
func (b *Builder) Mesh() *model.Mesh {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.mesh
}

// Apply translates m for every sidecar workload and publishes the snapshots.
// On any error nothing is published and the previous mesh stays in force.
func (b *Builder) Apply(m *model.Mesh) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	v, err := b.secrets.forMesh(m, b.mesh)
	if err != nil {
		return err
	}
	snaps, svids, err := b.build(m, v)
	if err != nil {
		return err
	}
	b.mesh = m
	b.secrets.commit(v, svids)
	for node, snap := range snaps {
		b.cache.SetSnapshot(node, snap)
	}
	for node := range b.nodes {
		if _, ok := snaps[node]; !ok {
			b.cache.ClearSnapshot(node)
		}
	}
	b.nodes = map[string]bool{}
	for node := range snaps {
		b.nodes[node] = true
	}
	b.log.Info("mesh applied", "mesh", m.Metadata.Name, "workloads", len(snaps))
	return nil
}

func (b *Builder) build(m *model.Mesh, v secretsVersion) (map[string]xds.Snapshot, map[string]*devca.SVID, error) {
	in := xds.NewInterner()
	memo := translate.NewMemo()
	type job struct {
		svc *model.Service
		w   model.Workload
	}
	var jobs []job
	for i := range m.Spec.Services {
		for _, w := range m.Spec.Services[i].Workloads {
			jobs = append(jobs, job{&m.Spec.Services[i], w})
		}
	}
	bundle, err := b.secrets.bundleSecret(m, v)
	if err != nil {
		return nil, nil, err
	}
	var (
		mu    sync.Mutex
		snaps = map[string]xds.Snapshot{}
		svids = map[string]*devca.SVID{}
		errs  []error
		next  atomic.Int64
		wg    sync.WaitGroup
	)
	// Translation is pure and the interner and memo are shared, so the
	// workloads are built in parallel.
	for range runtime.GOMAXPROCS(0) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= len(jobs) {
					return
				}
				j := jobs[i]
				snap, svid, err := b.buildOneSafely(m, v, in, memo, bundle, j.svc, j.w)
				mu.Lock()
				if err != nil {
					errs = append(errs, err)
				} else {
					snaps[j.w.Name] = snap
					if svid != nil {
						svids[j.w.Name] = svid
					}
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return snaps, svids, errors.Join(errs...)
}

// buildOneSafely is buildOne, with a panic (a translator bug on an
// unforeseen model) turned into the workload's error: the last good mesh
// stays served instead of the process dying.
func (b *Builder) buildOneSafely(m *model.Mesh, v secretsVersion, in *xds.Interner, memo *translate.Memo, bundle *tlsv3.Secret,
	svc *model.Service, w model.Workload) (snap xds.Snapshot, svid *devca.SVID, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("workload %s: translation failed: %v", w.Name, r)
		}
	}()
	return b.buildOne(m, v, in, memo, bundle, svc, w)
}

func (b *Builder) buildOne(m *model.Mesh, v secretsVersion, in *xds.Interner, memo *translate.Memo, bundle *tlsv3.Secret,
	svc *model.Service, w model.Workload) (xds.Snapshot, *devca.SVID, error) {
	translateFn := translate.WorkloadMemo
	if w.Proxyless {
		// gRPC-Go reads its certificates from files (certificate
		// providers), so proxyless snapshots carry no secrets.
		translateFn = translate.ProxylessMemo
	}
	res, err := translateFn(m, w.Name, memo)
	if err != nil {
		return nil, nil, err
	}
	snap, err := b.snapshot(in, res)
	if err != nil {
		return nil, nil, fmt.Errorf("workload %s: %w", w.Name, err)
	}
	if len(res.Secrets) == 0 {
		return snap, nil, nil
	}
	svid, err := b.secrets.svidFor(v, m.SPIFFEID(svc), w.Name)
	if err != nil {
		return nil, nil, err
	}
	ts, err := in.TypeSet(xds.SecretType, []xds.Named{{Name: translate.SecretSVID, Msg: svidSecret(svid)}, {Name: bundle.GetName(), Msg: bundle}})
	if err != nil {
		return nil, nil, err
	}
	snap[xds.SecretType] = ts
	return snap, svid, nil
}

// RefreshBundles refetches the federated trust domains' bundles (failures
// are logged; the last good bundles stay). The next Apply serves them.
func (b *Builder) RefreshBundles(ctx context.Context) {
	b.mu.Lock()
	s := b.secrets
	b.mu.Unlock()
	s.refreshBundles(ctx)
}

func (b *Builder) snapshot(in *xds.Interner, r *translate.Resources) (xds.Snapshot, error) {
	snap := xds.Snapshot{}
	add := func(typ string, items []xds.Named) error {
		ts, err := in.TypeSet(typ, items)
		if err != nil {
			return err
		}
		snap[typ] = ts
		return nil
	}
	var l, rt, c, e []xds.Named
	for _, x := range r.Listeners {
		l = append(l, xds.Named{Name: x.GetName(), Msg: x})
	}
	for _, x := range r.Routes {
		rt = append(rt, xds.Named{Name: x.GetName(), Msg: x})
	}
	for _, x := range r.Clusters {
		c = append(c, xds.Named{Name: x.GetName(), Msg: x})
	}
	for _, x := range r.Endpoints {
		e = append(e, xds.Named{Name: x.GetClusterName(), Msg: x})
	}
	for _, t := range []struct {
		typ   string
		items []xds.Named
	}{{xds.ListenerType, l}, {xds.RouteType, rt}, {xds.ClusterType, c}, {xds.EndpointType, e}} {
		if err := add(t.typ, t.items); err != nil {
			return nil, err
		}
	}
	return snap, nil
}
