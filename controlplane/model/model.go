// Package model is the mesh model: one declarative document describing the
// trust domain, the services, their routes and workloads, and who may call
// whom. Sources (a file today, Kubernetes objects later) produce it; Validate
// checks it; the translator turns it into Envoy resources.
//
// The document is shaped like a Kubernetes object (apiVersion, kind,
// metadata, spec) so that it can become a CRD without changing meaning.
package model

import (
	"time"

	"github.com/meshguard/meshguard/identity"
)

// APIVersion and Kind identify a mesh document.
const (
	APIVersion = "meshguard.dev/v1alpha1"
	Kind       = "Mesh"
)

// Mesh is the whole mesh.
type Mesh struct {
	APIVersion string   `yaml:"apiVersion"`
	Kind       string   `yaml:"kind"`
	Metadata   Metadata `yaml:"metadata"`
	Spec       Spec     `yaml:"spec"`
}

// Metadata names the mesh.
type Metadata struct {
	Name string `yaml:"name"`
}

// Spec is the mesh's content.
type Spec struct {
	// TrustDomain of every workload's SPIFFE ID.
	TrustDomain string `yaml:"trustDomain"`
	// Policies is the Cedar policy directory the authorizer enforces; when
	// set, routes may only name policy sets that exist there.
	Policies string       `yaml:"policies"`
	Authz    Authz        `yaml:"authz"`
	Identity Identity     `yaml:"identity"`
	XDS      XDS          `yaml:"xds"`
	Services []Service    `yaml:"services"`
	Filters  []WasmFilter `yaml:"filters"`
	// Federation lists other trust domains whose workloads may be trusted,
	// and where their bundles come from. Sidecars then validate peers
	// against "ALL" (own and federated bundles) instead of "ROOTCA".
	Federation []identity.Federated `yaml:"federation"`
}

// Authz locates meshguard's ext_authz server.
type Authz struct {
	// Address is host:port of the authorizer's gRPC listener.
	Address string `yaml:"address"`
	// Timeout bounds one Check call (default 250ms). Envoy denies when it passes.
	Timeout Duration `yaml:"timeout"`
	// AllowedHeaders are forwarded to the authorizer in addition to the
	// ones it always needs (authorization, traceparent, tracestate, x-request-id).
	AllowedHeaders []string `yaml:"allowedHeaders"`
}

// Identity says where sidecars get their SVIDs.
type Identity struct {
	// Provider: "meshguard" (SDS over the ADS stream, from the control
	// plane's CA) or "spire" (the SPIRE agent's SDS socket on each host).
	Provider string `yaml:"provider"`
	// SpireAgentSocket is the SPIRE agent's Unix socket path (provider spire).
	SpireAgentSocket string `yaml:"spireAgentSocket"`
}

// XDS locates the control plane, for generated bootstraps.
type XDS struct {
	// Address is host:port where sidecars reach the control plane's ADS server.
	Address string `yaml:"address"`
}

// Service is a named set of workloads with the same identity and routes.
type Service struct {
	Name      string `yaml:"name"`
	Namespace string `yaml:"namespace"`
	// ServiceAccount forms the SPIFFE ID spiffe://<td>/ns/<namespace>/sa/<serviceAccount>
	// (default: the service name).
	ServiceAccount string `yaml:"serviceAccount"`
	// Protocol is http or grpc.
	Protocol string `yaml:"protocol"`
	// Port is where callers address the service: each caller's sidecar
	// listens on 127.0.0.1:<port> for it.
	Port uint32 `yaml:"port"`
	// Policy is the default policy set of the service's routes (default: the service name).
	Policy string `yaml:"policy"`
	// Routes are matched in order; requests matching none are denied by Envoy (404).
	Routes []Route `yaml:"routes"`
	// Calls lists the services this service's workloads may call.
	Calls []string `yaml:"calls"`
	// ExternalCallers are SPIFFE IDs outside the mesh (e.g. of a federated
	// trust domain) also allowed to call this service.
	ExternalCallers []string `yaml:"externalCallers"`
	// IngressPort, when set, adds a plaintext listener on the workload address
	// for traffic entering the mesh (edge services); ext_authz still applies.
	IngressPort uint32 `yaml:"ingressPort"`
	// Filters names mesh-level wasm filters to run in this service's inbound sidecar.
	Filters   []string   `yaml:"filters"`
	Workloads []Workload `yaml:"workloads"`
}

// Route is one protected (or public) route of a service.
type Route struct {
	// ID is unique in the mesh; default "<service>/<index>".
	ID    string     `yaml:"id"`
	Match RouteMatch `yaml:"match"`
	// Policy overrides the service's policy set.
	Policy string `yaml:"policy"`
	// Mode is enforce (default) or shadow.
	Mode string `yaml:"mode"`
	// Shadow names a candidate policy set evaluated in shadow beside the enforced one.
	Shadow string `yaml:"shadow"`
	// Action overrides the Cedar action (default: the HTTP method).
	Action string `yaml:"action"`
	// Public routes skip the authorizer entirely (health checks, public assets).
	Public bool `yaml:"public"`
}

// RouteMatch selects requests. Exactly one of Prefix, Path, Regex.
type RouteMatch struct {
	Prefix  string        `yaml:"prefix"`
	Path    string        `yaml:"path"`
	Regex   string        `yaml:"regex"`
	Methods []string      `yaml:"methods"`
	Headers []HeaderMatch `yaml:"headers"`
}

// HeaderMatch matches one request header. Exactly one of Exact, Prefix,
// Regex, Present.
type HeaderMatch struct {
	Name    string `yaml:"name"`
	Exact   string `yaml:"exact"`
	Prefix  string `yaml:"prefix"`
	Regex   string `yaml:"regex"`
	Present bool   `yaml:"present"`
	Invert  bool   `yaml:"invert"`
}

// Workload is one instance of a service: a sidecar (or a proxyless gRPC
// process) and its application.
type Workload struct {
	Name string `yaml:"name"`
	// Address is the IP the sidecar's inbound listener binds and callers reach.
	Address string `yaml:"address"`
	// InboundPort is the sidecar's mTLS inbound port (default 15006).
	InboundPort uint32 `yaml:"inboundPort"`
	// AppPort is where the application listens on loopback (default: the service port).
	AppPort uint32 `yaml:"appPort"`
	// AdminPort is Envoy's admin port on loopback (default 15000).
	AdminPort uint32 `yaml:"adminPort"`
	// OutboundAddress is where the sidecar listens for the application's
	// calls to other services, one port per service (default 127.0.0.1).
	// Workloads sharing one host need distinct addresses (127.0.0.2, …).
	OutboundAddress string `yaml:"outboundAddress"`
	// Proxyless marks a gRPC-Go xDS workload (no sidecar).
	Proxyless bool `yaml:"proxyless"`
}

// WasmFilter is a proxy-wasm filter services can attach by name.
type WasmFilter struct {
	Name string `yaml:"name"`
	// Kind is headers, ratelimit or validate (where it runs in the chain).
	Kind string `yaml:"kind"`
	// File is a local .wasm path on the sidecar's host, or URL an https
	// source with SHA256 its digest.
	File   string `yaml:"file"`
	URL    string `yaml:"url"`
	SHA256 string `yaml:"sha256"`
	// Config is the filter's JSON configuration (written as YAML).
	Config map[string]any `yaml:"config"`
}

// Duration is a time.Duration written as "250ms".
type Duration struct{ time.Duration }

// UnmarshalText parses Go duration syntax.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return err
	}
	d.Duration = v
	return nil
}

// MarshalText formats the duration.
func (d Duration) MarshalText() ([]byte, error) { return []byte(d.String()), nil }
