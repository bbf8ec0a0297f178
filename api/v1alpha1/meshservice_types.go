package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// MeshService puts a Kubernetes Service into the mesh: its routes and the
// policy sets that guard them, and the services it may call. Its workloads
// are the Service's ready endpoints (EndpointSlices), each a Pod whose
// service account gives the SPIFFE ID
// spiffe://<trustDomain>/ns/<namespace>/sa/<serviceAccount>.
//
// Its name is the service's name in the mesh — in policies
// (Service::"orders"), in other services' calls — and is unique across
// namespaces: of two MeshServices with one name, the older is accepted.
//
// +kubebuilder:object:root=true
// +kubebuilder:resource:shortName=msvc,categories=meshguard
// +kubebuilder:subresource:status
// +kubebuilder:printcolumn:name="Service",type=string,JSONPath=`.spec.service`
// +kubebuilder:printcolumn:name="Policy",type=string,JSONPath=`.spec.policy`
// +kubebuilder:printcolumn:name="Workloads",type=integer,JSONPath=`.status.workloads`
// +kubebuilder:printcolumn:name="Accepted",type=string,JSONPath=`.status.conditions[?(@.type=="Accepted")].status`
// +kubebuilder:printcolumn:name="Programmed",type=string,JSONPath=`.status.conditions[?(@.type=="Programmed")].status`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type MeshService struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec   MeshServiceSpec   `json:"spec,omitempty"`
	Status MeshServiceStatus `json:"status,omitempty"`
}

// MeshServiceSpec declares one service of the mesh.
type MeshServiceSpec struct {
	// Service is the Kubernetes Service (in this namespace) whose
	// endpoints are the workloads (default: this object's name).
	// +optional
	// +kubebuilder:validation:MaxLength=63
	Service string `json:"service,omitempty"`
	// ServicePort is the Service port, by name or number, callers use
	// (default: its first port). Its target port is where the
	// application listens.
	// +optional
	ServicePort *intstr.IntOrString `json:"servicePort,omitempty"`
	// Port is where each caller's sidecar listens on loopback for this
	// service (default: the Service port's number). Unique in the mesh.
	// +optional
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=65535
	Port int32 `json:"port,omitempty"`
	// Protocol is http or grpc (default: grpc when the Service port's
	// appProtocol or name says grpc, else http).
	// +optional
	// +kubebuilder:validation:Enum=http;grpc
	Protocol string `json:"protocol,omitempty"`
	// Policy is the default policy set of the routes (default: this object's name).
	// +optional
	Policy string `json:"policy,omitempty"`
	// Routes are matched in order; a request matching none is denied (404).
	// +optional
	// +kubebuilder:validation:MaxItems=256
	Routes []Route `json:"routes,omitempty"`
	// Calls names the MeshServices this service's workloads may call.
	// +optional
	// +kubebuilder:validation:MaxItems=1024
	Calls []string `json:"calls,omitempty"`
	// ExternalCallers are SPIFFE IDs outside the mesh also allowed to call.
	// +optional
	// +kubebuilder:validation:MaxItems=256
	ExternalCallers []string `json:"externalCallers,omitempty"`
	// IngressPort adds a plaintext listener for traffic entering the mesh.
	// +optional
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=65535
	IngressPort int32 `json:"ingressPort,omitempty"`
	// Filters names WasmFilters to run in the inbound sidecar.
	// +optional
	// +kubebuilder:validation:MaxItems=16
	Filters []string `json:"filters,omitempty"`
	// InboundPort is the sidecars' mTLS inbound port (default 15006).
	// +optional
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=65535
	InboundPort int32 `json:"inboundPort,omitempty"`
	// AdminPort is Envoy's admin port on loopback (default 15000).
	// +optional
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=65535
	AdminPort int32 `json:"adminPort,omitempty"`
	// Proxyless marks the workloads as gRPC-Go xDS clients, without a sidecar.
	// +optional
	Proxyless bool `json:"proxyless,omitempty"`
}

// Route is one route of a service.
type Route struct {
	// ID is unique in the mesh (default "<service>/<index>").
	// +optional
	ID string `json:"id,omitempty"`
	// Match selects the route's requests.
	Match RouteMatch `json:"match"`
	// Policy overrides the service's policy set.
	// +optional
	Policy string `json:"policy,omitempty"`
	// Mode is enforce (default) or shadow.
	// +optional
	// +kubebuilder:validation:Enum=enforce;shadow
	Mode string `json:"mode,omitempty"`
	// Shadow names a candidate set evaluated beside the enforced one.
	// +optional
	Shadow string `json:"shadow,omitempty"`
	// Action overrides the Cedar action (default: the HTTP method).
	// +optional
	Action string `json:"action,omitempty"`
	// Public routes skip the authorizer.
	// +optional
	Public bool `json:"public,omitempty"`
	// Rollout moves the route to a candidate set, stage by stage.
	// +optional
	Rollout *Rollout `json:"rollout,omitempty"`
	// RateLimits are the route's descriptors for the global rate-limit
	// service: each a list of parts (route, service, principal, caller,
	// path, remote_address).
	// +optional
	// +kubebuilder:validation:MaxItems=16
	RateLimits [][]string `json:"rateLimits,omitempty"`
}

// RouteMatch selects requests: exactly one of prefix, path and regex.
// +kubebuilder:validation:XValidation:rule="[has(self.prefix), has(self.path), has(self.regex)].filter(x, x).size() == 1",message="set exactly one of prefix, path and regex"
type RouteMatch struct {
	// +optional
	Prefix *string `json:"prefix,omitempty"`
	// +optional
	Path *string `json:"path,omitempty"`
	// +optional
	Regex *string `json:"regex,omitempty"`
	// +optional
	Methods []string `json:"methods,omitempty"`
	// +optional
	Headers []HeaderMatch `json:"headers,omitempty"`
}

// HeaderMatch matches one request header: exactly one of exact, prefix,
// regex and present.
type HeaderMatch struct {
	Name string `json:"name"`
	// +optional
	Exact string `json:"exact,omitempty"`
	// +optional
	Prefix string `json:"prefix,omitempty"`
	// +optional
	Regex string `json:"regex,omitempty"`
	// +optional
	Present bool `json:"present,omitempty"`
	// +optional
	Invert bool `json:"invert,omitempty"`
}

// Rollout declares a policy change of one route (docs/rollout.md).
type Rollout struct {
	// Candidate is the policy set rolled out in place of the route's policy.
	Candidate string `json:"candidate"`
	// Stage is shadow, canary or enforce.
	// +kubebuilder:validation:Enum=shadow;canary;enforce
	Stage string `json:"stage"`
	// Percent is the canary's share of callers ("10", "2.5").
	// +optional
	// +kubebuilder:validation:Pattern=`^[0-9]{1,3}(\.[0-9]{1,2})?%?$`
	Percent string `json:"percent,omitempty"`
	// Steps are canary shares walked through in order, instead of percent.
	// +optional
	// +kubebuilder:validation:MaxItems=20
	Steps []string `json:"steps,omitempty"`
	// Gates let the control plane promote the rollout, or roll it back.
	// +optional
	Gates *Gates `json:"gates,omitempty"`
}

// Gates are the conditions for leaving a stage.
type Gates struct {
	// +optional
	// +kubebuilder:validation:Minimum=0
	MinRequests int64 `json:"minRequests,omitempty"`
	// +optional
	MaxAllowToDeny string `json:"maxAllowToDeny,omitempty"`
	// +optional
	MaxDenyToAllow string `json:"maxDenyToAllow,omitempty"`
	// +optional
	// +kubebuilder:validation:Minimum=0
	MaxErrors int64 `json:"maxErrors,omitempty"`
	// +optional
	MinDwell *metav1.Duration `json:"minDwell,omitempty"`
}

// MeshServiceStatus reports a service.
type MeshServiceStatus struct {
	Status `json:",inline"`
	// ObservedGeneration is the generation the conditions describe.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`
	// Workloads are the ready endpoints found.
	// +optional
	Workloads int32 `json:"workloads,omitempty"`
	// SPIFFEID is the workloads' identity.
	// +optional
	SPIFFEID string `json:"spiffeID,omitempty"`
}

// MeshServiceList is a list of MeshServices.
//
// +kubebuilder:object:root=true
type MeshServiceList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []MeshService `json:"items"`
}
