// Package v1alpha1 is meshguard's Kubernetes API, group meshguard.dev: the
// mesh model as custom resources. A cluster-scoped Mesh holds the mesh-wide
// settings; MeshServices (in any namespace) declare a Kubernetes Service's
// routes, policy and callers, its workloads discovered from its
// EndpointSlices and Pods; PolicySets (Cedar text) and WasmFilters live in
// the control plane's namespace, where the platform team owns them.
//
// The fields mean what the same fields of the mesh file mean
// (docs/mesh-model.md); controlplane/kube turns these objects into that
// model. The CRDs in charts/meshguard/crds are generated from these types
// (make generate).
//
// +kubebuilder:object:generate=true
// +groupName=meshguard.dev
package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// GroupVersion is meshguard.dev/v1alpha1.
var GroupVersion = schema.GroupVersion{Group: "meshguard.dev", Version: "v1alpha1"}

var (
	schemeBuilder = runtime.NewSchemeBuilder(addKnownTypes)
	// AddToScheme adds the types of this group-version to a scheme.
	AddToScheme = schemeBuilder.AddToScheme
)

func addKnownTypes(s *runtime.Scheme) error {
	s.AddKnownTypes(GroupVersion,
		&Mesh{}, &MeshList{},
		&MeshService{}, &MeshServiceList{},
		&PolicySet{}, &PolicySetList{},
		&WasmFilter{}, &WasmFilterList{},
	)
	metav1.AddToGroupVersion(s, GroupVersion)
	return nil
}
