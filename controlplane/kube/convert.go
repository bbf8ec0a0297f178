package kube

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/meshguard/meshguard/api/v1alpha1"
	"github.com/meshguard/meshguard/controlplane/model"
	"github.com/meshguard/meshguard/identity"
)

// meshSpec converts a Mesh's spec; services and filters come from their
// own objects.
func meshSpec(m *v1alpha1.Mesh) model.Mesh {
	s := m.Spec
	out := model.Mesh{
		APIVersion: model.APIVersion,
		Kind:       model.Kind,
		Metadata:   model.Metadata{Name: m.Name},
		Spec: model.Spec{
			TrustDomain: s.TrustDomain,
			Authz: model.Authz{
				Address:        s.Authz.Address,
				Timeout:        duration(s.Authz.Timeout),
				AllowedHeaders: slices.Clone(s.Authz.AllowedHeaders),
			},
			Identity: model.Identity{Provider: s.Identity.Provider, SpireAgentSocket: s.Identity.SpireAgentSocket},
			XDS:      model.XDS{Address: s.XDS.Address},
		},
	}
	if rl := s.RateLimitService; rl != nil {
		out.Spec.RateLimitService = &model.RateLimitService{
			Address: rl.Address, Domain: rl.Domain, Timeout: duration(rl.Timeout), FailClosed: rl.FailClosed,
		}
	}
	for _, f := range s.Federation {
		out.Spec.Federation = append(out.Spec.Federation, identity.Federated{
			TrustDomain: f.TrustDomain, BundleEndpointURL: f.BundleEndpointURL, EndpointSPIFFEID: f.EndpointSPIFFEID,
		})
	}
	return out
}

func duration(d *metav1.Duration) model.Duration {
	if d == nil {
		return model.Duration{}
	}
	return model.Duration{Duration: d.Duration}
}

// filter converts a WasmFilter.
func filter(f *v1alpha1.WasmFilter) (model.WasmFilter, error) {
	out := model.WasmFilter{Name: f.Name, Kind: f.Spec.Kind, File: f.Spec.File, URL: f.Spec.URL, SHA256: f.Spec.SHA256}
	if f.Spec.Config != nil && len(f.Spec.Config.Raw) > 0 {
		if err := json.Unmarshal(f.Spec.Config.Raw, &out.Config); err != nil {
			return out, fmt.Errorf("spec.config: %w", err)
		}
	}
	return out, nil
}

// workloadSet is what discovery found for one MeshService.
type workloadSet struct {
	port           corev1.ServicePort
	appPort        uint32
	serviceAccount string
	workloads      []model.Workload
}

// discover finds a MeshService's Kubernetes Service port and its ready
// endpoints' Pods. The error names the field at fault.
func discover(ms *v1alpha1.MeshService, o *Objects) (workloadSet, error) {
	var ws workloadSet
	name := ms.Spec.Service
	if name == "" {
		name = ms.Name
	}
	svc, ok := o.Services[key(ms.Namespace, name)]
	if !ok {
		return ws, fmt.Errorf("spec.service: no Service %s/%s", ms.Namespace, name)
	}
	if len(svc.Spec.Ports) == 0 {
		return ws, fmt.Errorf("spec.service: Service %s/%s has no ports", ms.Namespace, name)
	}
	ws.port = svc.Spec.Ports[0]
	if sp := ms.Spec.ServicePort; sp != nil {
		i := slices.IndexFunc(svc.Spec.Ports, func(p corev1.ServicePort) bool {
			return (sp.Type == intstr.String && p.Name == sp.StrVal) || (sp.Type == intstr.Int && p.Port == sp.IntVal)
		})
		if i < 0 {
			return ws, fmt.Errorf("spec.servicePort: Service %s/%s has no port %s", ms.Namespace, name, sp.String())
		}
		ws.port = svc.Spec.Ports[i]
	}
	accounts := map[string]bool{}
	seen := map[string]bool{}
	for _, sl := range o.Slices[key(ms.Namespace, name)] {
		appPort := slicePort(sl, ws.port)
		for _, ep := range sl.Endpoints {
			if ep.Conditions.Ready != nil && !*ep.Conditions.Ready {
				continue
			}
			if ep.TargetRef == nil || ep.TargetRef.Kind != "Pod" || len(ep.Addresses) == 0 || appPort == 0 {
				continue
			}
			pod, ok := o.Pods[key(ms.Namespace, ep.TargetRef.Name)]
			if !ok || seen[pod.Name] {
				continue
			}
			seen[pod.Name] = true
			sa := pod.Spec.ServiceAccountName
			if sa == "" {
				sa = "default"
			}
			accounts[sa] = true
			ws.appPort = appPort
			ws.workloads = append(ws.workloads, model.Workload{
				Name:        pod.Name + "." + pod.Namespace,
				Address:     ep.Addresses[0],
				AppPort:     appPort,
				InboundPort: uint32(ms.Spec.InboundPort),
				AdminPort:   uint32(ms.Spec.AdminPort),
				Proxyless:   ms.Spec.Proxyless,
			})
		}
	}
	slices.SortFunc(ws.workloads, func(a, b model.Workload) int { return strings.Compare(a.Name, b.Name) })
	switch names := sortedKeys(accounts); len(names) {
	case 0:
		ws.serviceAccount = "default"
	case 1:
		ws.serviceAccount = names[0]
	default:
		return ws, fmt.Errorf("spec.service: the Pods of Service %s/%s run as different service accounts (%s): one service, one identity",
			ms.Namespace, name, strings.Join(names, ", "))
	}
	return ws, nil
}

// slicePort is the target port an EndpointSlice gives the Service port
// (matched by name, as the EndpointSlice controller names them); 0 if none.
func slicePort(sl *discoveryv1.EndpointSlice, sp corev1.ServicePort) uint32 {
	for _, p := range sl.Ports {
		if p.Port != nil && ptrString(p.Name) == sp.Name {
			return uint32(*p.Port)
		}
	}
	return 0
}

func ptrString(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// protocol is the service's protocol: declared, or grpc when the Service
// port says so (appProtocol, or a name grpc or grpc-*), else http.
func protocol(ms *v1alpha1.MeshService, sp corev1.ServicePort) string {
	if ms.Spec.Protocol != "" {
		return ms.Spec.Protocol
	}
	if ptrString(sp.AppProtocol) == "grpc" || sp.Name == "grpc" || strings.HasPrefix(sp.Name, "grpc-") {
		return "grpc"
	}
	return "http"
}

// service converts a MeshService with what discovery found.
func service(ms *v1alpha1.MeshService, ws workloadSet) model.Service {
	s := ms.Spec
	out := model.Service{
		Name:            ms.Name,
		Namespace:       ms.Namespace,
		ServiceAccount:  ws.serviceAccount,
		Protocol:        protocol(ms, ws.port),
		Port:            uint32(s.Port),
		Policy:          s.Policy,
		Calls:           slices.Clone(s.Calls),
		ExternalCallers: slices.Clone(s.ExternalCallers),
		IngressPort:     uint32(s.IngressPort),
		Filters:         slices.Clone(s.Filters),
		Workloads:       ws.workloads,
	}
	if out.Port == 0 {
		out.Port = uint32(ws.port.Port)
	}
	for _, r := range s.Routes {
		out.Routes = append(out.Routes, route(r))
	}
	return out
}

func route(r v1alpha1.Route) model.Route {
	out := model.Route{
		ID: r.ID, Policy: r.Policy, Mode: r.Mode, Shadow: r.Shadow, Action: r.Action, Public: r.Public,
		Match: model.RouteMatch{
			Prefix: ptrString(r.Match.Prefix), Path: ptrString(r.Match.Path), Regex: ptrString(r.Match.Regex),
			Methods: slices.Clone(r.Match.Methods),
		},
	}
	for _, h := range r.Match.Headers {
		out.Match.Headers = append(out.Match.Headers, model.HeaderMatch{
			Name: h.Name, Exact: h.Exact, Prefix: h.Prefix, Regex: h.Regex, Present: h.Present, Invert: h.Invert,
		})
	}
	for _, d := range r.RateLimits {
		out.RateLimits = append(out.RateLimits, slices.Clone(d))
	}
	if ro := r.Rollout; ro != nil {
		mr := &model.Rollout{Candidate: ro.Candidate, Stage: ro.Stage, Percent: model.Percent(ro.Percent)}
		for _, st := range ro.Steps {
			mr.Steps = append(mr.Steps, model.Percent(st))
		}
		if g := ro.Gates; g != nil {
			mr.Gates = &model.Gates{
				MinRequests: uint64(max(g.MinRequests, 0)), MaxErrors: uint64(max(g.MaxErrors, 0)),
				MaxAllowToDeny: model.Percent(g.MaxAllowToDeny), MaxDenyToAllow: model.Percent(g.MaxDenyToAllow),
				MinDwell: duration(g.MinDwell),
			}
		}
		out.Rollout = mr
	}
	return out
}

func sortedKeys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}
