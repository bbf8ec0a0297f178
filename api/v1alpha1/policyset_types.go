package v1alpha1

import metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

// PolicySet is a Cedar policy set, named by routes (policy, candidate,
// shadow): the object's name is the set's name. The control plane and the
// authorizers read PolicySets from their own namespace only.
//
// +kubebuilder:object:root=true
// +kubebuilder:resource:shortName=pset,categories=meshguard
// +kubebuilder:subresource:status
// +kubebuilder:printcolumn:name="Policies",type=integer,JSONPath=`.status.policies`
// +kubebuilder:printcolumn:name="Accepted",type=string,JSONPath=`.status.conditions[?(@.type=="Accepted")].status`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type PolicySet struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec   PolicySetSpec   `json:"spec"`
	Status PolicySetStatus `json:"status,omitempty"`
}

// PolicySetSpec holds the Cedar text: inline, or in a ConfigMap.
// +kubebuilder:validation:XValidation:rule="has(self.policies) != has(self.configMapRef)",message="set exactly one of policies and configMapRef"
type PolicySetSpec struct {
	// Policies maps file names (ending in .cedar) to Cedar text, as the
	// files of a policy directory.
	// +optional
	// +kubebuilder:validation:MaxProperties=256
	Policies map[string]string `json:"policies,omitempty"`
	// ConfigMapRef names a ConfigMap in this namespace whose keys ending in
	// .cedar are the set's files.
	// +optional
	ConfigMapRef *LocalObjectReference `json:"configMapRef,omitempty"`
}

// LocalObjectReference names an object in the same namespace.
type LocalObjectReference struct {
	// +kubebuilder:validation:MinLength=1
	Name string `json:"name"`
}

// PolicySetStatus reports a policy set.
type PolicySetStatus struct {
	Status `json:",inline"`
	// ObservedGeneration is the generation the conditions describe.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`
	// Policies is the number of Cedar policies parsed.
	// +optional
	Policies int32 `json:"policies,omitempty"`
}

// PolicySetList is a list of PolicySets.
//
// +kubebuilder:object:root=true
type PolicySetList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []PolicySet `json:"items"`
}
