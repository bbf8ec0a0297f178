package v1alpha1

import metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

// Mesh is the mesh-wide configuration: trust domain, where the authorizer
// and the rate-limit service are, where sidecars get their identities. The
// control plane serves one Mesh (named by its --mesh flag, "default" by
// default) with every MeshService, PolicySet and WasmFilter.
//
// +kubebuilder:object:root=true
// +kubebuilder:resource:scope=Cluster,categories=meshguard
// +kubebuilder:subresource:status
// +kubebuilder:printcolumn:name="Trust Domain",type=string,JSONPath=`.spec.trustDomain`
// +kubebuilder:printcolumn:name="Services",type=integer,JSONPath=`.status.services`
// +kubebuilder:printcolumn:name="Proxies",type=integer,JSONPath=`.status.proxies`
// +kubebuilder:printcolumn:name="Accepted",type=string,JSONPath=`.status.conditions[?(@.type=="Accepted")].status`
// +kubebuilder:printcolumn:name="Programmed",type=string,JSONPath=`.status.conditions[?(@.type=="Programmed")].status`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type Mesh struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec   MeshSpec   `json:"spec"`
	Status MeshStatus `json:"status,omitempty"`
}

// MeshSpec is the mesh-wide part of the mesh model.
type MeshSpec struct {
	// TrustDomain of every workload's SPIFFE ID
	// (spiffe://<trustDomain>/ns/<namespace>/sa/<serviceAccount>).
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=255
	// +kubebuilder:validation:Pattern=`^[a-z0-9._-]+$`
	TrustDomain string `json:"trustDomain"`
	// Authz locates meshguard's authorizer.
	Authz Authz `json:"authz"`
	// RateLimitService is the global rate-limit service routes' rateLimits ask.
	// +optional
	RateLimitService *RateLimitService `json:"rateLimitService,omitempty"`
	// Identity says where sidecars get their SVIDs.
	// +optional
	Identity Identity `json:"identity,omitempty"`
	// XDS is where sidecars reach the control plane (for generated bootstraps).
	// +optional
	XDS XDS `json:"xds,omitempty"`
	// Federation lists other trust domains whose workloads may be trusted.
	// +optional
	// +listType=map
	// +listMapKey=trustDomain
	// +kubebuilder:validation:MaxItems=64
	Federation []Federated `json:"federation,omitempty"`
}

// Authz locates the authorizer.
type Authz struct {
	// Address is host:port of the authorizer's gRPC listener, as sidecars
	// reach it (a Service name: meshguard-authz.meshguard.svc:9191).
	// +kubebuilder:validation:MinLength=1
	Address string `json:"address"`
	// Timeout bounds one Check call (default 250ms); Envoy denies when it passes.
	// +optional
	Timeout *metav1.Duration `json:"timeout,omitempty"`
	// AllowedHeaders are forwarded to the authorizer beside the ones it always needs.
	// +optional
	// +kubebuilder:validation:MaxItems=64
	AllowedHeaders []string `json:"allowedHeaders,omitempty"`
}

// RateLimitService locates the global rate-limit service.
type RateLimitService struct {
	// Address is host:port of its gRPC listener.
	// +kubebuilder:validation:MinLength=1
	Address string `json:"address"`
	// Domain requests name (default: the Mesh's name).
	// +optional
	Domain string `json:"domain,omitempty"`
	// Timeout bounds one call (default 100ms).
	// +optional
	Timeout *metav1.Duration `json:"timeout,omitempty"`
	// FailClosed answers 500 while the service cannot be reached.
	// +optional
	FailClosed bool `json:"failClosed,omitempty"`
}

// Identity says where sidecars get their SVIDs.
type Identity struct {
	// Provider is meshguard (SDS from the control plane's CA) or spire
	// (the SPIRE agent's SDS socket on each node).
	// +optional
	// +kubebuilder:validation:Enum=meshguard;spire
	Provider string `json:"provider,omitempty"`
	// SpireAgentSocket is the SPIRE agent's Unix socket path (provider spire).
	// +optional
	SpireAgentSocket string `json:"spireAgentSocket,omitempty"`
}

// XDS locates the control plane.
type XDS struct {
	// Address is host:port where sidecars reach the control plane's ADS server.
	// +optional
	Address string `json:"address,omitempty"`
}

// Federated is another trust domain and where its bundle comes from.
type Federated struct {
	// TrustDomain is the federated domain's name.
	TrustDomain string `json:"trustDomain"`
	// BundleEndpointURL is its SPIFFE bundle endpoint (https).
	// +kubebuilder:validation:Pattern=`^https://`
	BundleEndpointURL string `json:"bundleEndpointURL"`
	// EndpointSPIFFEID selects the https_spiffe profile: the endpoint must
	// present this SPIFFE ID. Without it, Web PKI (https_web).
	// +optional
	EndpointSPIFFEID string `json:"endpointSPIFFEID,omitempty"`
}

// MeshStatus reports the mesh.
type MeshStatus struct {
	Status `json:",inline"`
	// ObservedGeneration is the generation the conditions describe.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`
	// Services accepted into the mesh.
	// +optional
	Services int32 `json:"services,omitempty"`
	// Proxies connected to the control plane.
	// +optional
	Proxies int32 `json:"proxies,omitempty"`
	// Version is the mesh version the control plane serves.
	// +optional
	Version string `json:"version,omitempty"`
}

// MeshList is a list of Meshes.
//
// +kubebuilder:object:root=true
type MeshList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []Mesh `json:"items"`
}
