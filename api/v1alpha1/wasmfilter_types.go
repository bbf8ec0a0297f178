package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
)

// WasmFilter is one of meshguard's proxy-wasm filters, configured for the
// MeshServices that name it. Read from the control plane's namespace.
//
// +kubebuilder:object:root=true
// +kubebuilder:resource:categories=meshguard
// +kubebuilder:subresource:status
// +kubebuilder:printcolumn:name="Kind",type=string,JSONPath=`.spec.kind`
// +kubebuilder:printcolumn:name="Accepted",type=string,JSONPath=`.status.conditions[?(@.type=="Accepted")].status`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type WasmFilter struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec   WasmFilterSpec `json:"spec"`
	Status WasmStatus     `json:"status,omitempty"`
}

// WasmFilterSpec says which filter, where its module is and how it is
// configured: exactly one of file and url.
// +kubebuilder:validation:XValidation:rule="has(self.file) != has(self.url)",message="set exactly one of file and url"
// +kubebuilder:validation:XValidation:rule="!has(self.url) || has(self.sha256)",message="url needs sha256"
type WasmFilterSpec struct {
	// Kind is headers, ratelimit or validate (its place in the chain).
	// +kubebuilder:validation:Enum=headers;ratelimit;validate
	Kind string `json:"kind"`
	// File is the .wasm path on the sidecar's host.
	// +optional
	File string `json:"file,omitempty"`
	// URL is an https source of the module.
	// +optional
	// +kubebuilder:validation:Pattern=`^https://`
	URL string `json:"url,omitempty"`
	// SHA256 is the module's digest (hex), required with url.
	// +optional
	// +kubebuilder:validation:Pattern=`^[0-9a-f]{64}$`
	SHA256 string `json:"sha256,omitempty"`
	// Config is the filter's JSON configuration.
	// +optional
	// +kubebuilder:pruning:PreserveUnknownFields
	// +kubebuilder:validation:Type=object
	Config *runtime.RawExtension `json:"config,omitempty"`
}

// WasmStatus reports a filter.
type WasmStatus struct {
	Status `json:",inline"`
	// ObservedGeneration is the generation the conditions describe.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`
}

// WasmFilterList is a list of WasmFilters.
//
// +kubebuilder:object:root=true
type WasmFilterList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []WasmFilter `json:"items"`
}
