// Package model is the mesh model: one declarative document describing the
// trust domain, the services, their routes and workloads, and who may call
// whom. Sources (a file today, Kubernetes objects later) produce it; Validate
// checks it; the translator turns it into Envoy resources.
//
// The document is shaped like a Kubernetes object (apiVersion, kind,
// metadata, spec) so that it can become a CRD without changing meaning.
package model

import (
	"strings"
	"time"

	"github.com/meshguard/meshguard/identity"
	"github.com/meshguard/meshguard/internal/contract"
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
	Policies string `yaml:"policies"`
	Authz    Authz  `yaml:"authz"`
	// RateLimitService is the global rate-limit service (meshguard
	// ratelimit, or any Envoy RLS v3 server) that routes' rateLimits ask.
	RateLimitService *RateLimitService `yaml:"rateLimitService"`
	Identity         Identity          `yaml:"identity"`
	XDS              XDS               `yaml:"xds"`
	Services         []Service         `yaml:"services"`
	Filters          []WasmFilter      `yaml:"filters"`
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

// DefaultRateLimitTimeout bounds a call to the rate-limit service.
const DefaultRateLimitTimeout = 100 * time.Millisecond

// RateLimitService locates the global rate-limit service.
type RateLimitService struct {
	// Address is host:port of its gRPC listener.
	Address string `yaml:"address"`
	// Domain is the rate-limit domain requests name (default: the mesh's
	// name): the domain of the service's configuration file.
	Domain string `yaml:"domain"`
	// Timeout bounds one call (default 100ms).
	Timeout Duration `yaml:"timeout"`
	// FailClosed answers 500 to requests while the service cannot be
	// reached (Envoy's failure_mode_deny); by default they are let through.
	FailClosed bool `yaml:"failClosed"`
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
	// Socket is a Unix socket the control plane also serves ADS on, for
	// sidecars on its host: there a workload's private key goes only to a
	// peer the kernel says runs as the workload's uid. Bootstraps use it
	// instead of Address when set.
	Socket string `yaml:"socket,omitempty"`
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
	// Rollout moves the route from Policy to a candidate set, stage by stage.
	Rollout *Rollout `yaml:"rollout"`
	// RateLimits are the descriptors the route's requests are counted by
	// in the global rate-limit service: each a list of parts (route,
	// service, principal, caller, path, remote_address; see
	// contract.RateLimitParts), the service's configuration setting the
	// limits.
	RateLimits [][]string `yaml:"rateLimits"`

	// Step is where the rollout stands, set by the rollout controller (it
	// is not part of the document). Nil: the route's declared stage.
	Step *RolloutStep `yaml:"-"`
}

// Rollout declares a policy change of one route: the candidate set and the
// stage it is at, shadow → canary → enforce, and optional gates under
// which the control plane's rollout controller promotes it by itself.
type Rollout struct {
	// Candidate is the policy set rolled out in place of the route's policy.
	Candidate string `yaml:"candidate"`
	// Stage is shadow (the candidate evaluated beside the current set,
	// never enforced), canary (the candidate enforced for a share of
	// callers) or enforce (the candidate is the route's set).
	Stage string `yaml:"stage"`
	// Percent is the canary's share of callers (0-100, two decimals).
	Percent Percent `yaml:"percent"`
	// Steps are canary shares walked through in order, instead of Percent.
	Steps []Percent `yaml:"steps"`
	// Gates, when set, let the controller promote the rollout after each
	// stage and roll it back as soon as one fails.
	Gates *Gates `yaml:"gates"`
}

// Gates are the conditions for leaving a stage, judged on the requests of
// that stage alone (both sets evaluated for each).
type Gates struct {
	// MinRequests compared before a stage may be promoted.
	MinRequests uint64 `yaml:"minRequests"`
	// MaxAllowToDeny is the largest share of requests (percent) the
	// candidate may deny that the current set allows.
	MaxAllowToDeny Percent `yaml:"maxAllowToDeny"`
	// MaxDenyToAllow is the largest share the candidate may allow that the
	// current set denies.
	MaxDenyToAllow Percent `yaml:"maxDenyToAllow"`
	// MaxErrors is the most requests for which the candidate may fail to evaluate.
	MaxErrors uint64 `yaml:"maxErrors"`
	// MinDwell is the least time spent in each stage.
	MinDwell Duration `yaml:"minDwell"`
}

// Percent is a share written 10, 2.5 or "10%": from 0 to 100, at most two
// decimals. Empty means unset.
type Percent string

// BasisPoints is the share in 1/100 of a percent; false when p is not a
// percentage from 0 to 100 with at most two decimals. Unset is 0.
func (p Percent) BasisPoints() (int, bool) {
	if p == "" {
		return 0, true
	}
	return contract.ParsePercent(strings.TrimSuffix(strings.TrimSpace(string(p)), "%"))
}

// CanarySteps are the rollout's canary shares in basis points, in order
// (Steps, else Percent); none when the rollout has no canary stage.
func (ro *Rollout) CanarySteps() []int {
	var out []int
	if ro.Percent != "" {
		bp, _ := ro.Percent.BasisPoints()
		return []int{bp}
	}
	for _, s := range ro.Steps {
		bp, _ := s.BasisPoints()
		out = append(out, bp)
	}
	return out
}

// EffectiveStep is the rollout step the route is translated at: the
// controller's (Step) when set, else the declared stage (and, at canary,
// the first share). Nil when the route has no rollout.
func (r *Route) EffectiveStep() *RolloutStep {
	if r.Step != nil {
		return r.Step
	}
	ro := r.Rollout
	if ro == nil {
		return nil
	}
	switch ro.Stage {
	case contract.StageShadow:
		return &RolloutStep{Policy: r.Policy, Candidate: ro.Candidate, Stage: contract.StageShadow}
	case contract.StageCanary:
		st := &RolloutStep{Policy: r.Policy, Candidate: ro.Candidate, Stage: contract.StageCanary}
		if steps := ro.CanarySteps(); len(steps) > 0 {
			st.Canary = steps[0]
		}
		return st
	}
	return &RolloutStep{Policy: ro.Candidate, Stage: contract.StageEnforce}
}

// RolloutStep is a rollout's position, as the translator turns it into the
// route's context extensions.
type RolloutStep struct {
	// Policy is the set enforced for callers outside a canary's share:
	// the route's policy, or the candidate once the rollout is enforced.
	Policy string
	// Candidate is the set evaluated beside Policy at Stage shadow or
	// canary; empty once the rollout is enforced or rolled back.
	Candidate string
	Stage     string
	// Canary is the candidate's share at Stage canary, in basis points.
	Canary int
	// Revision identifies the step (meshguard.rollout).
	Revision string
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
	// UID is the Unix user the workload's sidecar runs as: over the
	// control plane's socket (spec.xds.socket), only a peer running as it
	// receives the workload's private key.
	UID *uint32 `yaml:"uid,omitempty"`
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
