package kube

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/meshguard/meshguard/api/v1alpha1"
	"github.com/meshguard/meshguard/internal/xds"
)

// ProxyState is what the status writer reads of the proxies: the xDS
// trackers' status, of every replica (a proxy is connected to one).
type ProxyState func(context.Context) []xds.ProxyStatus

// StatusWriter writes every object's conditions (Accepted, Programmed,
// ResolvedRefs) from the source's latest assembly and the proxies' sync
// state. It runs on the leader only (a manager Runnable).
type StatusWriter struct {
	client   client.Client
	src      *Source
	proxies  ProxyState
	interval time.Duration
	log      *slog.Logger
	kick     chan struct{}
}

// ConditionResolvedRefs is False on a MeshService whose routes name policy
// sets no PolicySet provides: their requests are denied.
const ConditionResolvedRefs = "ResolvedRefs"

// NewStatusWriter writes statuses through c (which reads from the cache)
// after every assembly, and every interval for the proxies' progress.
func NewStatusWriter(c client.Client, src *Source, proxies ProxyState, interval time.Duration, log *slog.Logger) *StatusWriter {
	w := &StatusWriter{client: c, src: src, proxies: proxies, interval: interval, log: log, kick: make(chan struct{}, 1)}
	src.OnAssembly(func() {
		select {
		case w.kick <- struct{}{}:
		default:
		}
	})
	return w
}

// NeedLeaderElection: only the leader writes statuses.
func (w *StatusWriter) NeedLeaderElection() bool { return true }

// Start writes statuses until ctx ends.
func (w *StatusWriter) Start(ctx context.Context) error {
	t := time.NewTicker(w.interval)
	defer t.Stop()
	for {
		if err := w.WriteOnce(ctx); err != nil && ctx.Err() == nil {
			w.log.Warn("status not written", "err", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		case <-w.kick:
		}
	}
}

// WriteOnce brings every object's status up to date.
func (w *StatusWriter) WriteOnce(ctx context.Context) error {
	as := w.src.Last()
	if as == nil {
		return nil
	}
	prog := programmed(as, w.proxies(ctx))
	var errs []string
	for r, v := range as.Verdicts {
		if err := w.write(ctx, r, v, prog); err != nil {
			errs = append(errs, fmt.Sprintf("%s: %v", r, err))
		}
	}
	if len(errs) > 0 {
		slices.Sort(errs)
		return fmt.Errorf("%s", strings.Join(errs, "; "))
	}
	return nil
}

// progress is one object's Programmed condition, and the count of
// connected proxies it is computed from.
type progress struct {
	status          metav1.ConditionStatus
	reason, message string
	proxies         int32
}

// programmed computes Programmed for the Mesh and each MeshService: True
// when every connected proxy of it ACKed what it was last sent.
func programmed(as *Assembly, proxies []xds.ProxyStatus) map[Ref]progress {
	out := map[Ref]progress{}
	if as.Mesh == nil {
		return out
	}
	byNode := map[string]xds.ProxyStatus{}
	for _, p := range proxies {
		if p.Connected {
			byNode[p.Node] = p
		}
	}
	judge := func(nodes []string) progress {
		var pending, nacks []string
		n := int32(0)
		for _, node := range nodes {
			p, ok := byNode[node]
			if !ok {
				continue
			}
			n++
			for typ, ts := range p.Types {
				switch ts.State {
				case xds.Nacked:
					nacks = append(nacks, fmt.Sprintf("%s rejected %s: %s", node, typ, ts.Error))
				case xds.Stale:
					pending = append(pending, node)
				}
			}
		}
		slices.Sort(nacks)
		pending = slices.Compact(slices.Sorted(slices.Values(pending)))
		switch {
		case len(nacks) > 0:
			return progress{metav1.ConditionFalse, v1alpha1.ReasonRejected, truncate(strings.Join(nacks, "; ")), n}
		case n == 0:
			return progress{metav1.ConditionFalse, v1alpha1.ReasonNoProxies, "no proxy of it is connected", 0}
		case len(pending) > 0:
			return progress{metav1.ConditionFalse, v1alpha1.ReasonPending, fmt.Sprintf("%d of %d proxies have not acknowledged yet: %s", len(pending), n, truncate(strings.Join(pending, ", "))), n}
		}
		return progress{metav1.ConditionTrue, v1alpha1.ReasonProgrammed, fmt.Sprintf("%d proxies acknowledged", n), n}
	}
	var all []string
	for _, svc := range as.Mesh.Spec.Services {
		var nodes []string
		for _, wl := range svc.Workloads {
			nodes = append(nodes, wl.Name)
		}
		all = append(all, nodes...)
		out[Ref{Kind: KindMeshService, Namespace: svc.Namespace, Name: svc.Name}] = judge(nodes)
	}
	out[Ref{Kind: KindMesh, Name: as.Mesh.Metadata.Name}] = judge(all)
	return out
}

// maxMessage bounds a condition message (the API allows 32 KiB).
const maxMessage = 4096

func truncate(s string) string {
	if len(s) <= maxMessage {
		return s
	}
	return s[:maxMessage-3] + "..."
}

func accepted(v Verdict) metav1.Condition {
	c := metav1.Condition{Type: v1alpha1.ConditionAccepted, ObservedGeneration: v.Generation, Reason: v.Reason, Message: truncate(v.Message)}
	c.Status = metav1.ConditionFalse
	if v.Accepted {
		c.Status, c.Message = metav1.ConditionTrue, "the object is part of the mesh"
	} else if v.Serving {
		c.Message = truncate(v.Message + " (its last accepted version is still served)")
	}
	return c
}

// write updates one object's status when it differs from the desired.
func (w *StatusWriter) write(ctx context.Context, r Ref, v Verdict, prog map[Ref]progress) error {
	var obj client.Object
	switch r.Kind {
	case KindMesh:
		obj = &v1alpha1.Mesh{}
	case KindMeshService:
		obj = &v1alpha1.MeshService{}
	case KindPolicySet:
		obj = &v1alpha1.PolicySet{}
	case KindWasmFilter:
		obj = &v1alpha1.WasmFilter{}
	default:
		return nil
	}
	if err := w.client.Get(ctx, client.ObjectKey{Namespace: r.Namespace, Name: r.Name}, obj); err != nil {
		return client.IgnoreNotFound(err)
	}
	if obj.GetGeneration() != v.Generation {
		return nil // a newer version is on its way through the source
	}
	before := obj.DeepCopyObject()
	switch o := obj.(type) {
	case *v1alpha1.Mesh:
		meta.SetStatusCondition(&o.Status.Conditions, accepted(v))
		p := prog[r]
		setProgrammed(&o.Status.Conditions, p, v.Generation)
		o.Status.ObservedGeneration, o.Status.Services, o.Status.Proxies = v.Generation, v.Services, p.proxies
	case *v1alpha1.MeshService:
		meta.SetStatusCondition(&o.Status.Conditions, accepted(v))
		if p, ok := prog[r]; ok {
			setProgrammed(&o.Status.Conditions, p, v.Generation)
		} else {
			meta.RemoveStatusCondition(&o.Status.Conditions, v1alpha1.ConditionProgrammed)
		}
		refs := metav1.Condition{Type: ConditionResolvedRefs, Status: metav1.ConditionTrue, Reason: "ResolvedRefs",
			Message: "every policy set named is there", ObservedGeneration: v.Generation}
		if len(v.Unresolved) > 0 {
			refs.Status, refs.Reason = metav1.ConditionFalse, "PolicySetNotFound"
			refs.Message = truncate(fmt.Sprintf("no accepted PolicySet %s: the authorizer denies the requests of routes naming it", strings.Join(v.Unresolved, ", ")))
		}
		meta.SetStatusCondition(&o.Status.Conditions, refs)
		o.Status.ObservedGeneration, o.Status.Workloads, o.Status.SPIFFEID = v.Generation, v.Workloads, v.SPIFFEID
	case *v1alpha1.PolicySet:
		meta.SetStatusCondition(&o.Status.Conditions, accepted(v))
		o.Status.ObservedGeneration, o.Status.Policies = v.Generation, v.Policies
	case *v1alpha1.WasmFilter:
		meta.SetStatusCondition(&o.Status.Conditions, accepted(v))
		o.Status.ObservedGeneration = v.Generation
	}
	if sameStatus(before, obj) {
		return nil
	}
	return w.client.Status().Update(ctx, obj)
}

func setProgrammed(conds *[]metav1.Condition, p progress, gen int64) {
	if p.reason == "" {
		return
	}
	meta.SetStatusCondition(conds, metav1.Condition{Type: v1alpha1.ConditionProgrammed, Status: p.status, Reason: p.reason, Message: p.message, ObservedGeneration: gen})
}

// sameStatus compares two objects' statuses; SetStatusCondition keeps a
// condition's transition time while its status holds, so an unchanged
// condition compares equal.
func sameStatus(a, b any) bool { return equality.Semantic.DeepEqual(statusOf(a), statusOf(b)) }

func statusOf(o any) any {
	switch o := o.(type) {
	case *v1alpha1.Mesh:
		return o.Status
	case *v1alpha1.MeshService:
		return o.Status
	case *v1alpha1.PolicySet:
		return o.Status
	case *v1alpha1.WasmFilter:
		return o.Status
	}
	return nil
}
