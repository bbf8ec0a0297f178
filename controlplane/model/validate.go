package model

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"go.yaml.in/yaml/v3"

	"github.com/meshguard/meshguard/internal/contract"
	"github.com/meshguard/meshguard/internal/yamlfile"
)

// Defaults.
const (
	DefaultNamespace    = "default"
	DefaultInboundPort  = 15006
	DefaultAdminPort    = 15000
	DefaultAuthzTimeout = 250 * time.Millisecond
	DefaultXDSAddress   = "127.0.0.1:18000"
	DefaultOutboundAddr = "127.0.0.1"
	ProviderMeshguard   = "meshguard"
	ProviderSPIRE       = "spire"
)

// FieldError is one problem in a mesh document, with the path of the field
// and, when known, its line.
type FieldError struct {
	Path string
	Line int
	Msg  string
}

func (e FieldError) Error() string {
	if e.Line > 0 {
		return fmt.Sprintf("line %d: %s: %s", e.Line, e.Path, e.Msg)
	}
	return fmt.Sprintf("%s: %s", e.Path, e.Msg)
}

// Validate applies the defaults to a mesh built in code (by a source other
// than a file) and checks it by every rule Parse applies; the errors name
// each field. A mesh from Parse passes it unchanged.
func (m *Mesh) Validate(checks Checks) error {
	m.applyDefaults()
	errs := m.validate(checks)
	out := make([]error, len(errs))
	for i, e := range errs {
		out[i] = e
	}
	return errors.Join(out...)
}

// Parse decodes and validates a mesh document. sets reports whether a policy
// set exists; nil skips that check.
func Parse(data []byte, sets func(string) bool) (*Mesh, error) {
	return ParseWith(data, Checks{Sets: sets})
}

// Checks are the validations that need more than the document: what the
// policy directory holds.
type Checks struct {
	// Sets reports whether a policy set exists; nil skips that check.
	Sets func(name string) bool
	// Candidate loads a rollout's candidate set (parse, and type-check
	// where a schema applies) and says why it cannot be rolled out; nil
	// skips that check.
	Candidate func(name string) error
}

// ParseWith decodes and validates a mesh document with checks.
func ParseWith(data []byte, checks Checks) (*Mesh, error) {
	var m Mesh
	if err := yamlfile.Decode(data, &m); err != nil {
		return nil, err
	}
	var root yaml.Node
	_ = yaml.Unmarshal(data, &root)
	m.applyDefaults()
	errs := m.validate(checks)
	for i := range errs {
		errs[i].Line = lineOf(&root, errs[i].Path)
	}
	if len(errs) > 0 {
		out := make([]error, len(errs))
		for i, e := range errs {
			out[i] = e
		}
		return nil, errors.Join(out...)
	}
	return &m, nil
}

func (m *Mesh) applyDefaults() {
	s := &m.Spec
	if s.Authz.Timeout.Duration == 0 {
		s.Authz.Timeout.Duration = DefaultAuthzTimeout
	}
	if s.Identity.Provider == "" {
		s.Identity.Provider = ProviderMeshguard
	}
	if s.XDS.Address == "" {
		s.XDS.Address = DefaultXDSAddress
	}
	if rl := s.RateLimitService; rl != nil {
		if rl.Domain == "" {
			rl.Domain = m.Metadata.Name
		}
		if rl.Timeout.Duration == 0 {
			rl.Timeout.Duration = DefaultRateLimitTimeout
		}
	}
	for i := range s.Services {
		svc := &s.Services[i]
		if svc.Namespace == "" {
			svc.Namespace = DefaultNamespace
		}
		if svc.ServiceAccount == "" {
			svc.ServiceAccount = svc.Name
		}
		if svc.Protocol == "" {
			svc.Protocol = "http"
		}
		if svc.Policy == "" {
			svc.Policy = svc.Name
		}
		for j := range svc.Routes {
			r := &svc.Routes[j]
			if r.ID == "" {
				r.ID = fmt.Sprintf("%s/%d", svc.Name, j)
			}
			if r.Policy == "" {
				r.Policy = svc.Policy
			}
			if r.Mode == "" {
				r.Mode = "enforce"
			}
			for k, meth := range r.Match.Methods {
				r.Match.Methods[k] = strings.ToUpper(meth)
			}
		}
		for j := range svc.Workloads {
			w := &svc.Workloads[j]
			if w.InboundPort == 0 {
				w.InboundPort = DefaultInboundPort
			}
			if w.AppPort == 0 {
				w.AppPort = svc.Port
			}
			if w.AdminPort == 0 {
				w.AdminPort = DefaultAdminPort
			}
			if w.OutboundAddress == "" {
				w.OutboundAddress = DefaultOutboundAddr
			}
		}
	}
}

var (
	dnsLabel  = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)
	token     = regexp.MustCompile("^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")
	sha256Hex = regexp.MustCompile(`^[0-9a-f]{64}$`)
)

// dnsSubdomain reports whether s is an RFC 1123 subdomain, as Kubernetes
// object names are: a workload discovered from a Pod is <pod>.<namespace>.
func dnsSubdomain(s string) bool {
	if len(s) == 0 || len(s) > 253 {
		return false
	}
	for label := range strings.SplitSeq(s, ".") {
		if !dnsLabel.MatchString(label) {
			return false
		}
	}
	return true
}

// FilterKinds are the wasm filters meshguard ships, in chain order.
var FilterKinds = contract.FilterKinds

type validator struct {
	errs   []FieldError
	checks Checks
}

func (v *validator) add(path, format string, args ...any) {
	v.errs = append(v.errs, FieldError{Path: path, Msg: fmt.Sprintf(format, args...)})
}

func (m *Mesh) validate(checks Checks) []FieldError {
	v := &validator{checks: checks}
	sets := checks.Sets
	s := &m.Spec
	if m.APIVersion != APIVersion {
		v.add("apiVersion", "must be %q", APIVersion)
	}
	if m.Kind != Kind {
		v.add("kind", "must be %q", Kind)
	}
	if !dnsLabel.MatchString(m.Metadata.Name) {
		v.add("metadata.name", "%q is not a DNS label", m.Metadata.Name)
	}
	if _, err := spiffeid.TrustDomainFromString(s.TrustDomain); err != nil || s.TrustDomain == "" {
		v.add("spec.trustDomain", "%q is not a SPIFFE trust domain name", s.TrustDomain)
	}
	checkHostPort(v, "spec.authz.address", s.Authz.Address, true)
	if t := s.Authz.Timeout.Duration; t <= 0 || t > 10*time.Second {
		v.add("spec.authz.timeout", "must be between 1ms and 10s")
	}
	for i, h := range s.Authz.AllowedHeaders {
		if !token.MatchString(h) {
			v.add(fmt.Sprintf("spec.authz.allowedHeaders[%d]", i), "%q is not a header name", h)
		}
	}
	switch s.Identity.Provider {
	case ProviderMeshguard:
	case ProviderSPIRE:
		if !strings.HasPrefix(s.Identity.SpireAgentSocket, "/") {
			v.add("spec.identity.spireAgentSocket", "an absolute Unix socket path is required with provider spire")
		}
	default:
		v.add("spec.identity.provider", "%q: want meshguard or spire", s.Identity.Provider)
	}
	checkHostPort(v, "spec.xds.address", s.XDS.Address, true)
	if s.XDS.Socket != "" && !strings.HasPrefix(s.XDS.Socket, "/") {
		v.add("spec.xds.socket", "%q: an absolute Unix socket path is required", s.XDS.Socket)
	}
	if rl := s.RateLimitService; rl != nil {
		checkHostPort(v, "spec.rateLimitService.address", rl.Address, true)
		if t := rl.Timeout.Duration; t <= 0 || t > 10*time.Second {
			v.add("spec.rateLimitService.timeout", "must be between 1ms and 10s")
		}
		if rl.Domain == "" || len(rl.Domain) > 256 {
			v.add("spec.rateLimitService.domain", "1 to 256 characters")
		}
	}

	federated := map[string]bool{}
	for i, f := range s.Federation {
		if err := f.Validate(); err != nil {
			v.add(fmt.Sprintf("spec.federation[%d]", i), "%v", err)
		}
		if f.TrustDomain == s.TrustDomain {
			v.add(fmt.Sprintf("spec.federation[%d].trustDomain", i), "the mesh's own trust domain cannot be federated")
		}
		federated[f.TrustDomain] = true
	}
	filters := map[string]bool{}
	for i, f := range s.Filters {
		p := fmt.Sprintf("spec.filters[%d]", i)
		if !dnsLabel.MatchString(f.Name) {
			v.add(p+".name", "%q is not a DNS label", f.Name)
		} else if filters[f.Name] {
			v.add(p+".name", "duplicate filter %q", f.Name)
		}
		filters[f.Name] = true
		if !slices.Contains(FilterKinds, f.Kind) {
			v.add(p+".kind", "%q: want one of %v", f.Kind, FilterKinds)
		}
		switch {
		case (f.File == "") == (f.URL == ""):
			v.add(p, "set exactly one of file and url")
		case f.URL != "" && !strings.HasPrefix(f.URL, "https://"):
			v.add(p+".url", "must be https")
		case f.URL != "" && !sha256Hex.MatchString(f.SHA256):
			v.add(p+".sha256", "a remote filter needs its lower-case hex SHA-256")
		}
	}

	services := map[string]int{}
	for i, svc := range s.Services {
		if _, dup := services[svc.Name]; dup {
			v.add(fmt.Sprintf("spec.services[%d].name", i), "duplicate service %q", svc.Name)
		}
		services[svc.Name] = i
	}
	ports := map[uint32]string{}
	routeIDs := map[string]string{}
	workloads := map[string]string{}
	listen := map[string]string{} // ip:port → workload/what, for collisions on one host
	for i := range s.Services {
		svc := &s.Services[i]
		p := fmt.Sprintf("spec.services[%d]", i)
		if !dnsLabel.MatchString(svc.Name) {
			v.add(p+".name", "%q is not a DNS label", svc.Name)
		}
		if !dnsLabel.MatchString(svc.Namespace) {
			v.add(p+".namespace", "%q is not a DNS label", svc.Namespace)
		}
		if !dnsLabel.MatchString(svc.ServiceAccount) {
			v.add(p+".serviceAccount", "%q is not a DNS label", svc.ServiceAccount)
		}
		if svc.Protocol != "http" && svc.Protocol != "grpc" {
			v.add(p+".protocol", "%q: want http or grpc", svc.Protocol)
		}
		if svc.Port == 0 || svc.Port > 65535 {
			v.add(p+".port", "required, 1-65535")
		} else if other, dup := ports[svc.Port]; dup {
			v.add(p+".port", "%d is already the port of service %q (callers' sidecars listen on it)", svc.Port, other)
		}
		ports[svc.Port] = svc.Name
		if !contract.ValidSetName(svc.Policy) {
			v.add(p+".policy", "%q is not a valid policy set name", svc.Policy)
		}
		for j, r := range svc.Routes {
			validateRoute(v, fmt.Sprintf("%s.routes[%d]", p, j), r, sets)
			if other, dup := routeIDs[r.ID]; dup {
				v.add(fmt.Sprintf("%s.routes[%d].id", p, j), "route id %q is already used by %s", r.ID, other)
			}
			routeIDs[r.ID] = svc.Name
		}
		hasProxyless := false
		for _, w := range svc.Workloads {
			hasProxyless = hasProxyless || w.Proxyless
		}
		for j, r := range svc.Routes {
			validateRateLimits(v, fmt.Sprintf("%s.routes[%d].rateLimits", p, j), r, s.RateLimitService != nil, hasProxyless)
		}
		if hasProxyless && svc.Protocol != "grpc" {
			v.add(p+".protocol", "proxyless workloads are gRPC-Go processes: the service must be protocol grpc")
		}
		for j, c := range svc.Calls {
			i, ok := services[c]
			if !ok {
				v.add(fmt.Sprintf("%s.calls[%d]", p, j), "no service %q", c)
			} else if hasProxyless && s.Services[i].Protocol != "grpc" {
				v.add(fmt.Sprintf("%s.calls[%d]", p, j), "proxyless workloads can only call gRPC services; %q is %s", c, s.Services[i].Protocol)
			}
		}
		for j, c := range svc.ExternalCallers {
			id, err := spiffeid.FromString(c)
			switch {
			case err != nil:
				v.add(fmt.Sprintf("%s.externalCallers[%d]", p, j), "%q is not a SPIFFE ID: %v", c, err)
			case id.TrustDomain().Name() != s.TrustDomain && !federated[id.TrustDomain().Name()]:
				v.add(fmt.Sprintf("%s.externalCallers[%d]", p, j), "trust domain %q is neither the mesh's nor federated", id.TrustDomain().Name())
			}
		}
		for j, f := range svc.Filters {
			if !filters[f] {
				v.add(fmt.Sprintf("%s.filters[%d]", p, j), "no filter %q in spec.filters", f)
			}
		}
		for j, w := range svc.Workloads {
			wp := fmt.Sprintf("%s.workloads[%d]", p, j)
			if !dnsSubdomain(w.Name) {
				v.add(wp+".name", "%q is not a DNS name (labels of a-z, 0-9 and '-', joined by '.')", w.Name)
			} else if other, dup := workloads[w.Name]; dup {
				v.add(wp+".name", "workload %q already exists in service %q (workload names are node ids)", w.Name, other)
			}
			workloads[w.Name] = svc.Name
			ip, err := netip.ParseAddr(w.Address)
			if err != nil {
				v.add(wp+".address", "%q is not an IP address", w.Address)
				continue
			}
			if _, err := netip.ParseAddr(w.OutboundAddress); err != nil {
				v.add(wp+".outboundAddress", "%q is not an IP address", w.OutboundAddress)
			}
			for _, port := range []struct {
				name string
				n    uint32
			}{{"inboundPort", w.InboundPort}, {"appPort", w.AppPort}, {"adminPort", w.AdminPort}} {
				if port.n == 0 || port.n > 65535 {
					v.add(wp+"."+port.name, "must be 1-65535")
				}
			}
			if w.Proxyless {
				continue
			}
			// Workloads with the same address share a host: their sidecars'
			// inbound and admin ports and outbound addresses must differ.
			for _, key := range []string{
				fmt.Sprintf("%s inbound port %d", ip, w.InboundPort),
				fmt.Sprintf("%s admin port %d", ip, w.AdminPort),
				fmt.Sprintf("%s outbound address %s", ip, w.OutboundAddress),
			} {
				if other, dup := listen[key]; dup {
					v.add(wp, "%s is already used by workload %q on the same address", key[len(ip.String())+1:], other)
				}
				listen[key] = w.Name
			}
		}
	}
	return v.errs
}

func validateRoute(v *validator, p string, r Route, sets func(string) bool) {
	m := r.Match
	n := 0
	for _, s := range []string{m.Prefix, m.Path, m.Regex} {
		if s != "" {
			n++
		}
	}
	if n != 1 {
		v.add(p+".match", "set exactly one of prefix, path and regex")
	}
	if (m.Prefix != "" && !strings.HasPrefix(m.Prefix, "/")) || (m.Path != "" && !strings.HasPrefix(m.Path, "/")) {
		v.add(p+".match", "paths start with '/'")
	}
	if m.Regex != "" {
		if _, err := regexp.Compile(m.Regex); err != nil {
			v.add(p+".match.regex", "%v", err)
		}
	}
	for i, meth := range m.Methods {
		if !token.MatchString(meth) {
			v.add(fmt.Sprintf("%s.match.methods[%d]", p, i), "%q is not an HTTP method", meth)
		}
	}
	for i, h := range m.Headers {
		hp := fmt.Sprintf("%s.match.headers[%d]", p, i)
		if !token.MatchString(h.Name) {
			v.add(hp+".name", "%q is not a header name", h.Name)
		}
		k := 0
		for _, set := range []bool{h.Exact != "", h.Prefix != "", h.Regex != "", h.Present} {
			if set {
				k++
			}
		}
		if k != 1 {
			v.add(hp, "set exactly one of exact, prefix, regex and present")
		}
		if h.Regex != "" {
			if _, err := regexp.Compile(h.Regex); err != nil {
				v.add(hp+".regex", "%v", err)
			}
		}
	}
	if len(r.ID) > 128 || strings.ContainsAny(r.ID, " \t\r\n") || r.ID == "" {
		v.add(p+".id", "%q: 1-128 characters without spaces", r.ID)
	}
	if r.Mode != "enforce" && r.Mode != "shadow" {
		v.add(p+".mode", "%q: want enforce or shadow", r.Mode)
	}
	for _, f := range []struct{ key, set string }{{"policy", r.Policy}, {"shadow", r.Shadow}} {
		if f.set == "" {
			continue
		}
		if !contract.ValidSetName(f.set) {
			v.add(p+"."+f.key, "%q is not a valid policy set name", f.set)
		} else if sets != nil && !r.Public && !sets(f.set) {
			v.add(p+"."+f.key, "policy set %q does not exist", f.set)
		}
	}
	if r.Action != "" && len(r.Action) > 128 {
		v.add(p+".action", "too long")
	}
	if r.Rollout != nil {
		validateRollout(v, p, r, sets)
	}
}

// validateRollout checks a route's rollout: a real, different candidate
// set, a known stage, shares from 0 to 100 and gates that can be judged.
func validateRollout(v *validator, p string, r Route, sets func(string) bool) {
	ro := r.Rollout
	p += ".rollout"
	switch {
	case r.Public:
		v.add(p, "a public route skips the authorizer: it has no policy to roll out")
	case r.Shadow != "":
		v.add(p, "a rollout evaluates its candidate beside the route's policy already: remove shadow")
	}
	switch {
	case ro.Candidate == "":
		v.add(p+".candidate", "required: the policy set rolled out")
	case !contract.ValidSetName(ro.Candidate):
		v.add(p+".candidate", "%q is not a valid policy set name", ro.Candidate)
	case ro.Candidate == r.Policy:
		v.add(p+".candidate", "%q is already the route's policy", ro.Candidate)
	case sets != nil && !sets(ro.Candidate):
		v.add(p+".candidate", "policy set %q does not exist", ro.Candidate)
	case v.checks.Candidate != nil:
		if err := v.checks.Candidate(ro.Candidate); err != nil {
			v.add(p+".candidate", "policy set %q cannot be rolled out: %v", ro.Candidate, err)
		}
	}
	switch ro.Stage {
	case contract.StageShadow, contract.StageCanary, contract.StageEnforce:
	default:
		v.add(p+".stage", "%q: want shadow, canary or enforce", ro.Stage)
	}
	if ro.Percent != "" && len(ro.Steps) > 0 {
		v.add(p, "set percent or steps, not both")
	}
	if ro.Percent != "" {
		if _, ok := ro.Percent.BasisPoints(); !ok {
			v.add(p+".percent", "%q: want a percentage from 0 to 100 with at most two decimals", string(ro.Percent))
		}
	}
	last := -1
	for i, st := range ro.Steps {
		bp, ok := st.BasisPoints()
		switch {
		case !ok:
			v.add(fmt.Sprintf("%s.steps[%d]", p, i), "%q: want a percentage from 0 to 100 with at most two decimals", string(st))
		case bp <= last:
			v.add(fmt.Sprintf("%s.steps[%d]", p, i), "%s: canary steps must grow", string(st))
		}
		last = bp
	}
	if ro.Stage == contract.StageCanary && ro.Percent == "" && len(ro.Steps) == 0 {
		v.add(p+".percent", "required at stage canary (or steps)")
	}
	if g := ro.Gates; g != nil {
		for _, f := range []struct {
			key string
			pc  Percent
		}{{"maxAllowToDeny", g.MaxAllowToDeny}, {"maxDenyToAllow", g.MaxDenyToAllow}} {
			if _, ok := f.pc.BasisPoints(); f.pc != "" && !ok {
				v.add(p+".gates."+f.key, "%q: want a percentage from 0 to 100 with at most two decimals", string(f.pc))
			}
		}
		if g.MinDwell.Duration < 0 {
			v.add(p+".gates.minDwell", "must not be negative")
		}
	}
}

func checkHostPort(v *validator, path, addr string, required bool) {
	if addr == "" {
		if required {
			v.add(path, "required (host:port)")
		}
		return
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil || host == "" || port == "" {
		v.add(path, "%q is not host:port", addr)
	}
}

// lineOf finds the line of a dotted/indexed path ("spec.services[1].port")
// in a YAML document; 0 when not found. For a missing key it returns the
// line of the nearest existing parent.
func lineOf(root *yaml.Node, path string) int {
	n := root
	if n.Kind == yaml.DocumentNode && len(n.Content) > 0 {
		n = n.Content[0]
	}
	line := n.Line
	for _, seg := range splitPath(path) {
		next := child(n, seg)
		if next == nil {
			return line
		}
		n, line = next, next.Line
	}
	return line
}

func splitPath(p string) []string {
	var out []string
	for _, part := range strings.Split(p, ".") {
		for part != "" {
			i := strings.IndexByte(part, '[')
			if i < 0 {
				out = append(out, part)
				break
			}
			if i > 0 {
				out = append(out, part[:i])
			}
			j := strings.IndexByte(part, ']')
			if j < i {
				break
			}
			out = append(out, part[i:j+1])
			part = part[j+1:]
		}
	}
	return out
}

func child(n *yaml.Node, seg string) *yaml.Node {
	if strings.HasPrefix(seg, "[") {
		var idx int
		if _, err := fmt.Sscanf(seg, "[%d]", &idx); err != nil || n.Kind != yaml.SequenceNode || idx >= len(n.Content) {
			return nil
		}
		return n.Content[idx]
	}
	if n.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == seg {
			return n.Content[i+1]
		}
	}
	return nil
}

// SPIFFEID is the service's identity.
func (m *Mesh) SPIFFEID(svc *Service) string {
	return fmt.Sprintf("spiffe://%s/ns/%s/sa/%s", m.Spec.TrustDomain, svc.Namespace, svc.ServiceAccount)
}

// Service returns the named service.
func (m *Mesh) Service(name string) (*Service, bool) {
	for i := range m.Spec.Services {
		if m.Spec.Services[i].Name == name {
			return &m.Spec.Services[i], true
		}
	}
	return nil, false
}

// Workload finds a workload and its service by workload name.
func (m *Mesh) Workload(name string) (*Service, *Workload, bool) {
	for i := range m.Spec.Services {
		svc := &m.Spec.Services[i]
		for j := range svc.Workloads {
			if svc.Workloads[j].Name == name {
				return svc, &svc.Workloads[j], true
			}
		}
	}
	return nil, nil, false
}

// Callers lists the services allowed to call svc (those naming it in calls).
func (m *Mesh) Callers(svc string) []*Service {
	var out []*Service
	for i := range m.Spec.Services {
		if slices.Contains(m.Spec.Services[i].Calls, svc) {
			out = append(out, &m.Spec.Services[i])
		}
	}
	return out
}

// Filter returns a mesh-level wasm filter by name.
func (m *Mesh) Filter(name string) (*WasmFilter, bool) {
	for i := range m.Spec.Filters {
		if m.Spec.Filters[i].Name == name {
			return &m.Spec.Filters[i], true
		}
	}
	return nil, false
}

// validateRateLimits checks a route's rate-limit descriptors: known parts,
// each once per descriptor, a service to ask, a sidecar to ask it.
func validateRateLimits(v *validator, p string, r Route, haveService, proxyless bool) {
	if len(r.RateLimits) == 0 {
		return
	}
	if !haveService {
		v.add(p, "needs spec.rateLimitService: the global rate-limit service to ask")
	}
	if proxyless {
		v.add(p, "gRPC-Go (proxyless) has no rate-limit filter: only sidecars enforce rateLimits")
	}
	for i, d := range r.RateLimits {
		dp := fmt.Sprintf("%s[%d]", p, i)
		if len(d) == 0 {
			v.add(dp, "an empty descriptor: list its parts (%s)", strings.Join(contract.RateLimitParts, ", "))
		}
		seen := map[string]bool{}
		for j, part := range d {
			switch {
			case !slices.Contains(contract.RateLimitParts, part):
				v.add(fmt.Sprintf("%s[%d]", dp, j), "%q: want one of %s", part, strings.Join(contract.RateLimitParts, ", "))
			case seen[part]:
				v.add(fmt.Sprintf("%s[%d]", dp, j), "%q twice in one descriptor", part)
			case part == contract.RateLimitPrincipal && r.Public:
				// A public route skips the authorizer: no principal header,
				// and Envoy would drop the descriptor, limiting nothing.
				v.add(fmt.Sprintf("%s[%d]", dp, j), "a public route has no principal (it skips the authorizer)")
			}
			seen[part] = true
		}
	}
}
