package kube

import (
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/meshguard/meshguard/api/v1alpha1"
	"github.com/meshguard/meshguard/controlplane/model"
	"github.com/meshguard/meshguard/extauthz/policy"
	"github.com/meshguard/meshguard/internal/contract"
)

// Objects is one read of everything a mesh is assembled from.
type Objects struct {
	Mesh         *v1alpha1.Mesh // nil: not there
	MeshServices []*v1alpha1.MeshService
	PolicySets   []*v1alpha1.PolicySet
	Filters      []*v1alpha1.WasmFilter
	ConfigMaps   map[string]*corev1.ConfigMap            // the mesh namespace's, by name
	Services     map[string]*corev1.Service              // by namespace/name
	Slices       map[string][]*discoveryv1.EndpointSlice // by namespace/service name
	Pods         map[string]*corev1.Pod                  // by namespace/name
}

func key(namespace, name string) string { return namespace + "/" + name }

// Kinds of Ref.
const (
	KindMesh        = "Mesh"
	KindMeshService = "MeshService"
	KindPolicySet   = "PolicySet"
	KindWasmFilter  = "WasmFilter"
)

// Ref names an object.
type Ref struct{ Kind, Namespace, Name string }

func (r Ref) String() string {
	if r.Namespace == "" {
		return r.Kind + " " + r.Name
	}
	return r.Kind + " " + r.Namespace + "/" + r.Name
}

// Verdict is an object's part in an assembly: whether its current
// generation is accepted, why not, and what discovery found.
type Verdict struct {
	Generation int64
	Accepted   bool
	Reason     string // a v1alpha1 condition reason
	Message    string
	// Serving is true when an earlier accepted version of a refused
	// object is still part of the mesh.
	Serving   bool
	Workloads int32
	SPIFFEID  string
	Policies  int32
	Services  int32
	// Unresolved lists the policy sets the service's routes name that no
	// PolicySet provides (their requests are denied).
	Unresolved []string
}

// Assembly is a mesh assembled from objects, with each object's verdict.
type Assembly struct {
	// Mesh is nil when there is no Mesh object, or it and its last
	// accepted version both fail.
	Mesh *model.Mesh
	// Sets are the policy sets in force, by name.
	Sets     map[string]*policy.Set
	Verdicts map[Ref]Verdict
	// Err says why Mesh is nil.
	Err error
}

// Assembler turns object reads into meshes. It remembers each object's
// last accepted version: an object that stops validating is reported and
// its accepted version keeps serving, so one bad edit changes nothing —
// for that object or any other. Not safe for concurrent use.
type Assembler struct {
	meshName string
	good     map[Ref]any // *v1alpha1.Mesh, meshServiceVersion, *v1alpha1.WasmFilter, *policy.Set
}

// meshServiceVersion is an accepted MeshService and the discovery it was
// accepted with.
type meshServiceVersion struct {
	ms *v1alpha1.MeshService
	ws workloadSet
}

// NewAssembler assembles the Mesh named meshName.
func NewAssembler(meshName string) *Assembler {
	return &Assembler{meshName: meshName, good: map[Ref]any{}}
}

// Assemble builds the mesh from o.
func (a *Assembler) Assemble(o *Objects) *Assembly {
	out := &Assembly{Sets: map[string]*policy.Set{}, Verdicts: map[Ref]Verdict{}}
	live := map[Ref]bool{}
	a.policySets(o, out, live)

	filters := a.filters(o, out, live)
	services := a.services(o, out, live)

	meshRef := Ref{Kind: KindMesh, Name: a.meshName}
	if o.Mesh == nil {
		out.Err = fmt.Errorf("no Mesh %q: create it (kubectl get meshes)", a.meshName)
		for r, v := range out.Verdicts {
			if r.Kind == KindMeshService || r.Kind == KindWasmFilter {
				v.Accepted, v.Reason, v.Message = false, v1alpha1.ReasonNoMesh, out.Err.Error()
				out.Verdicts[r] = v
			}
		}
		a.forget(live)
		return out
	}
	live[meshRef] = true
	mesh := o.Mesh
	meshVerdict := Verdict{Generation: mesh.Generation, Accepted: true, Reason: v1alpha1.ReasonAccepted}

	// Policy set references are not validation: a route naming a set that
	// is not there is served, and the authorizer denies its requests (fail
	// closed), reported as ResolvedRefs False — as Gateway API does for a
	// missing backend. Refusing the service instead would take its public
	// routes and its callers' clusters down with it.
	checks := model.Checks{}
	for {
		m := meshSpec(mesh)
		var inFilters []*filterEntry
		for _, f := range filters {
			if !f.dropped {
				m.Spec.Filters = append(m.Spec.Filters, f.model)
				inFilters = append(inFilters, f)
			}
		}
		var inServices []*serviceEntry
		for _, s := range services {
			if !s.dropped {
				m.Spec.Services = append(m.Spec.Services, service(s.v.ms, s.v.ws))
				inServices = append(inServices, s)
			}
		}
		errs := fieldErrors(m.Validate(checks))
		if len(errs) == 0 {
			out.Mesh = &m
			break
		}
		blame := map[string][]string{} // "mesh", "filter:i", "service:i" → messages
		for _, e := range errs {
			who, msg := attribute(e)
			blame[who] = append(blame[who], msg)
		}
		if msgs, ok := blame["mesh"]; ok {
			msg := strings.Join(msgs, "; ")
			if meshVerdict.Accepted {
				meshVerdict = Verdict{Generation: mesh.Generation, Reason: v1alpha1.ReasonInvalid, Message: msg}
			}
			prev, ok := a.good[meshRef].(*v1alpha1.Mesh)
			if !ok || prev == mesh {
				out.Err = fmt.Errorf("the Mesh %s: %s", a.meshName, msg)
				break
			}
			mesh, meshVerdict.Serving = prev, true
			continue
		}
		progress := false
		for who, msgs := range blame {
			kind, idx := splitBlame(who)
			msg := strings.Join(msgs, "; ")
			switch {
			case kind == "filter" && idx < len(inFilters):
				f := inFilters[idx]
				a.refuse(out, f.ref, f.generation, msg)
				prev, ok := a.good[f.ref].(*v1alpha1.WasmFilter)
				mf, err := filterOf(prev, ok)
				if ok && prev != f.obj && err == nil {
					f.obj, f.model = prev, mf
					a.serving(out, f.ref, true)
				} else {
					f.dropped = true
					a.serving(out, f.ref, false)
				}
				progress = true
			case kind == "service" && idx < len(inServices):
				s := inServices[idx]
				a.refuse(out, s.ref, s.generation, msg)
				if prev, ok := a.good[s.ref].(meshServiceVersion); ok && prev.ms != s.v.ms {
					s.v = prev
					a.serving(out, s.ref, true)
				} else {
					s.dropped = true
					a.serving(out, s.ref, false)
				}
				progress = true
			}
		}
		if !progress { // an error no object can be blamed for
			out.Err = fmt.Errorf("mesh: %v", errs)
			break
		}
	}
	out.Verdicts[meshRef] = meshVerdict
	if out.Mesh != nil {
		// What is accepted now becomes the last good version.
		if meshVerdict.Accepted {
			a.good[meshRef] = o.Mesh
		}
		for _, f := range filters {
			if v := out.Verdicts[f.ref]; v.Accepted && !f.dropped {
				a.good[f.ref] = f.obj
			}
		}
		for _, s := range services {
			if v := out.Verdicts[s.ref]; v.Accepted && !s.dropped {
				a.good[s.ref] = s.v
			}
		}
		mv := out.Verdicts[meshRef]
		mv.Services = int32(len(out.Mesh.Spec.Services))
		out.Verdicts[meshRef] = mv
		for _, svc := range out.Mesh.Spec.Services {
			r := Ref{Kind: KindMeshService, Namespace: svc.Namespace, Name: svc.Name}
			if v, ok := out.Verdicts[r]; ok {
				v.SPIFFEID = out.Mesh.SPIFFEID(&svc)
				v.Unresolved = unresolved(&svc, out.Sets)
				out.Verdicts[r] = v
			}
		}
	}
	a.forget(live)
	return out
}

// unresolved lists, once each, the sets svc's routes name (policy,
// shadow, rollout candidate) that are not in force.
func unresolved(svc *model.Service, sets map[string]*policy.Set) []string {
	var out []string
	add := func(name string) {
		if _, ok := sets[name]; !ok && name != "" && name != contract.DefaultSet && !slices.Contains(out, name) {
			out = append(out, name)
		}
	}
	add(svc.Policy)
	for _, r := range svc.Routes {
		if r.Public {
			continue
		}
		add(r.Policy)
		add(r.Shadow)
		if r.Rollout != nil {
			add(r.Rollout.Candidate)
		}
	}
	slices.Sort(out)
	return out
}

// forget drops the last good versions of objects that are gone.
func (a *Assembler) forget(live map[Ref]bool) {
	for r := range a.good {
		if !live[r] {
			delete(a.good, r)
		}
	}
}

func (a *Assembler) refuse(out *Assembly, r Ref, gen int64, msg string) {
	v := out.Verdicts[r]
	if v.Accepted || v.Message == "" {
		v.Accepted, v.Reason, v.Message, v.Generation = false, v1alpha1.ReasonInvalid, msg, gen
	}
	out.Verdicts[r] = v
}

func (a *Assembler) serving(out *Assembly, r Ref, serving bool) {
	v := out.Verdicts[r]
	v.Serving = serving
	out.Verdicts[r] = v
}

func filterOf(f *v1alpha1.WasmFilter, ok bool) (model.WasmFilter, error) {
	if !ok {
		return model.WasmFilter{}, errors.New("none")
	}
	return filter(f)
}

// policySets parses every PolicySet into out.Sets (a refused one keeps
// its last accepted version).
func (a *Assembler) policySets(o *Objects, out *Assembly, live map[Ref]bool) {
	for _, ps := range o.PolicySets {
		r := Ref{Kind: KindPolicySet, Namespace: ps.Namespace, Name: ps.Name}
		live[r] = true
		set, err := parsePolicySet(ps, o.ConfigMaps)
		if err == nil {
			out.Sets[ps.Name], a.good[r] = set, set
			out.Verdicts[r] = Verdict{Generation: ps.Generation, Accepted: true, Reason: v1alpha1.ReasonAccepted, Policies: int32(set.Len())}
			continue
		}
		v := Verdict{Generation: ps.Generation, Reason: v1alpha1.ReasonInvalid, Message: err.Error()}
		if prev, ok := a.good[r].(*policy.Set); ok {
			out.Sets[ps.Name], v.Serving, v.Policies = prev, true, int32(prev.Len())
		}
		out.Verdicts[r] = v
	}
}

// parsePolicySet reads a PolicySet's files, inline or from its ConfigMap.
func parsePolicySet(ps *v1alpha1.PolicySet, cms map[string]*corev1.ConfigMap) (*policy.Set, error) {
	if !contract.ValidSetName(ps.Name) {
		return nil, fmt.Errorf("metadata.name: %q is not a policy set name (letters, digits, '.', '_', '-')", ps.Name)
	}
	files := ps.Spec.Policies
	field := "spec.policies"
	if ref := ps.Spec.ConfigMapRef; ref != nil {
		field = "spec.configMapRef"
		cm, ok := cms[ref.Name]
		if !ok {
			return nil, fmt.Errorf("%s: no ConfigMap %s/%s", field, ps.Namespace, ref.Name)
		}
		files = map[string]string{}
		for k, v := range cm.Data {
			if strings.HasSuffix(k, ".cedar") {
				files[k] = v
			}
		}
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("%s: no .cedar files", field)
	}
	for name := range files {
		if !strings.HasSuffix(name, ".cedar") {
			return nil, fmt.Errorf("%s: %q: file names end in .cedar", field, name)
		}
	}
	set, err := policy.ParseSet(ps.Name, files)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", field, err)
	}
	return set, nil
}

type filterEntry struct {
	ref        Ref
	generation int64
	obj        *v1alpha1.WasmFilter // the version in the mesh
	model      model.WasmFilter
	dropped    bool
}

func (a *Assembler) filters(o *Objects, out *Assembly, live map[Ref]bool) []*filterEntry {
	var fs []*filterEntry
	for _, f := range sortedByAge(o.Filters) {
		r := Ref{Kind: KindWasmFilter, Namespace: f.Namespace, Name: f.Name}
		live[r] = true
		mf, err := filter(f)
		if err == nil {
			out.Verdicts[r] = Verdict{Generation: f.Generation, Accepted: true, Reason: v1alpha1.ReasonAccepted}
			fs = append(fs, &filterEntry{ref: r, generation: f.Generation, obj: f, model: mf})
			continue
		}
		out.Verdicts[r] = Verdict{Generation: f.Generation, Reason: v1alpha1.ReasonInvalid, Message: err.Error()}
		prev, ok := a.good[r].(*v1alpha1.WasmFilter)
		if mf, err := filterOf(prev, ok); err == nil {
			fs = append(fs, &filterEntry{ref: r, generation: f.Generation, obj: prev, model: mf})
			a.serving(out, r, true)
		}
	}
	return fs
}

type serviceEntry struct {
	ref        Ref
	generation int64
	v          meshServiceVersion // the version in the mesh
	dropped    bool
}

// services discovers each MeshService's workloads. Of MeshServices with
// one name, the oldest is the service; the others are refused.
func (a *Assembler) services(o *Objects, out *Assembly, live map[Ref]bool) []*serviceEntry {
	var ss []*serviceEntry
	owner := map[string]Ref{}
	for _, ms := range sortedByAge(o.MeshServices) {
		r := Ref{Kind: KindMeshService, Namespace: ms.Namespace, Name: ms.Name}
		live[r] = true
		if first, taken := owner[ms.Name]; taken {
			out.Verdicts[r] = Verdict{Generation: ms.Generation, Reason: v1alpha1.ReasonConflicted,
				Message: fmt.Sprintf("metadata.name: %s, older, already names service %q in the mesh", first, ms.Name)}
			continue
		}
		owner[ms.Name] = r
		ws, err := discover(ms, o)
		if err == nil {
			out.Verdicts[r] = Verdict{Generation: ms.Generation, Accepted: true, Reason: v1alpha1.ReasonAccepted, Workloads: int32(len(ws.workloads))}
			ss = append(ss, &serviceEntry{ref: r, generation: ms.Generation, v: meshServiceVersion{ms, ws}})
			continue
		}
		out.Verdicts[r] = Verdict{Generation: ms.Generation, Reason: v1alpha1.ReasonInvalid, Message: err.Error()}
		if prev, ok := a.good[r].(meshServiceVersion); ok {
			ss = append(ss, &serviceEntry{ref: r, generation: ms.Generation, v: prev})
			a.serving(out, r, true)
		}
	}
	return ss
}

// sortedByAge orders objects oldest first (then by namespace and name):
// the older of two conflicting objects wins, and is blamed last.
func sortedByAge[T metav1.Object](in []T) []T {
	out := slices.Clone(in)
	slices.SortStableFunc(out, func(a, b T) int {
		ta, tb := a.GetCreationTimestamp(), b.GetCreationTimestamp()
		if c := ta.Compare(tb.Time); c != 0 {
			return c
		}
		if c := strings.Compare(a.GetNamespace(), b.GetNamespace()); c != 0 {
			return c
		}
		return strings.Compare(a.GetName(), b.GetName())
	})
	return out
}

func fieldErrors(err error) []model.FieldError {
	if err == nil {
		return nil
	}
	var out []model.FieldError
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		for _, e := range j.Unwrap() {
			var fe model.FieldError
			if errors.As(e, &fe) {
				out = append(out, fe)
			} else {
				out = append(out, model.FieldError{Path: "spec", Msg: e.Error()})
			}
		}
		return out
	}
	return []model.FieldError{{Path: "spec", Msg: err.Error()}}
}

var blamePath = regexp.MustCompile(`^spec\.(services|filters)\[(\d+)\]\.?(.*)$`)

// attribute says whose a validation error is ("mesh", "service:i",
// "filter:i") and rewrites its path to the object's own fields.
func attribute(e model.FieldError) (who, msg string) {
	m := blamePath.FindStringSubmatch(e.Path)
	if m == nil {
		return "mesh", e.Path + ": " + e.Msg
	}
	field := m[3]
	if m[1] == "services" {
		field = serviceField(field)
		return "service:" + m[2], field + ": " + e.Msg
	}
	if field == "" {
		field = "spec"
	} else {
		field = "spec." + field
	}
	return "filter:" + m[2], field + ": " + e.Msg
}

// serviceField maps a path inside a model service to the MeshService's.
func serviceField(f string) string {
	switch {
	case f == "":
		return "spec"
	case f == "name":
		return "metadata.name"
	case f == "namespace":
		return "metadata.namespace"
	case f == "serviceAccount":
		return "spec.service (its Pods' service account)"
	case strings.HasPrefix(f, "workloads"):
		return "spec.service (a discovered workload: " + f + ")"
	}
	return "spec." + f
}

func splitBlame(who string) (string, int) {
	kind, idx, _ := strings.Cut(who, ":")
	n, _ := strconv.Atoi(idx)
	return kind, n
}
