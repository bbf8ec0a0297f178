package translate

import (
	"fmt"
	"net"
	"slices"
	"strconv"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	rbacconfigv3 "github.com/envoyproxy/go-control-plane/envoy/config/rbac/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	rbacv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/rbac/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	matcherv3 "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/meshguard/meshguard/controlplane/model"
)

// gRPC-Go's xDS support differs from Envoy's (ARCHITECTURE.md):
//   - certificates come from bootstrap certificate_providers instances, not SDS;
//   - SAN checks use the legacy match_subject_alt_names (the typed field is
//     ignored) and are rejected in server-side contexts, so servers pin
//     callers with the RBAC filter on the authenticated principal instead;
//   - endpoints need a locality and a non-zero weight, or they are dropped;
//   - there is no ext_authz: Cedar policies are NOT enforced on proxyless
//     servers; RBAC enforces only which services may call.

// CertProviderInstance is the certificate_providers instance name proxyless
// bootstraps define (file_watcher over the workload's SVID files).
const CertProviderInstance = "default"

// ServerListenerTemplate is the server_listener_resource_name_template of
// proxyless bootstraps; %s is the listening address (ip:port).
const ServerListenerTemplate = "grpc/server?xds.resource.listening_address=%s"

// ProxylessTarget is the xDS target a proxyless client dials for a service:
// grpc.NewClient("xds:///" + ProxylessTarget(svc)).
func ProxylessTarget(svc *model.Service) string {
	return fmt.Sprintf("%s.%s:%d", svc.Name, svc.Namespace, svc.Port)
}

// Proxyless translates the resources for a proxyless gRPC workload: a server
// listener for its own gRPC server (when some service calls it) and, per
// dependency, an API listener named after the target, a route configuration,
// a cluster with mTLS pinned to the dependency's SPIFFE ID, and endpoints.
func Proxyless(m *model.Mesh, name string) (*Resources, error) {
	return ProxylessMemo(m, name, nil)
}

// ProxylessMemo is Proxyless sharing service-level results through memo (may be nil).
func ProxylessMemo(m *model.Mesh, name string, memo *Memo) (*Resources, error) {
	svc, w, ok := m.Workload(name)
	if !ok {
		return nil, fmt.Errorf("no workload %q in mesh %q", name, m.Metadata.Name)
	}
	if !w.Proxyless {
		return nil, fmt.Errorf("workload %q has a sidecar, not the proxyless flavour", name)
	}
	if svc.Protocol != "grpc" {
		return nil, fmt.Errorf("workload %q is proxyless but service %q is not protocol grpc", name, svc.Name)
	}
	t := &translator{m: m, svc: svc, w: w, memo: memo}
	r := &Resources{}
	if callers := m.Callers(svc.Name); len(callers) > 0 {
		r.Listeners = append(r.Listeners, t.proxylessServerListener(callers))
	}
	for _, dep := range slices.Sorted(slices.Values(svc.Calls)) {
		d, _ := m.Service(dep)
		r.Listeners = append(r.Listeners, memoize(t, "api|"+dep, func() *listenerv3.Listener { return t.apiListener(d) }))
		r.Routes = append(r.Routes, memoize(t, "rds-out|"+dep, func() *routev3.RouteConfiguration { return t.outboundRoutes(d) }))
		r.Clusters = append(r.Clusters, memoize(t, "cds-grpc|"+dep, func() *clusterv3.Cluster { return t.proxylessCluster(d) }))
		r.Endpoints = append(r.Endpoints, memoize(t, "eds|"+dep, func() *endpointv3.ClusterLoadAssignment { return t.endpoints(d) }))
		r.rdsRefs = append(r.rdsRefs, Outbound(dep))
	}
	if t.err != nil {
		return nil, fmt.Errorf("workload %s: %w", name, t.err)
	}
	if err := r.checkRefs(); err != nil {
		return nil, fmt.Errorf("workload %s: %w", name, err)
	}
	return r, nil
}

func providerInstance() *tlsv3.CertificateProviderPluginInstance {
	return &tlsv3.CertificateProviderPluginInstance{InstanceName: CertProviderInstance}
}

func (t *translator) apiListener(d *model.Service) *listenerv3.Listener {
	hcm := &hcmv3.HttpConnectionManager{
		StatPrefix: Outbound(d.Name),
		RouteSpecifier: &hcmv3.HttpConnectionManager_Rds{Rds: &hcmv3.Rds{
			ConfigSource: adsSource(), RouteConfigName: Outbound(d.Name),
		}},
		HttpFilters: []*hcmv3.HttpFilter{t.router()},
	}
	return &listenerv3.Listener{
		Name:        ProxylessTarget(d),
		ApiListener: &listenerv3.ApiListener{ApiListener: t.pack(hcm)},
	}
}

func (t *translator) proxylessCluster(d *model.Service) *clusterv3.Cluster {
	tls := &tlsv3.UpstreamTlsContext{CommonTlsContext: &tlsv3.CommonTlsContext{
		TlsCertificateProviderInstance: providerInstance(),
		ValidationContextType: &tlsv3.CommonTlsContext_ValidationContext{ValidationContext: &tlsv3.CertificateValidationContext{
			CaCertificateProviderInstance: providerInstance(),
			// gRPC-Go reads the legacy field, not match_typed_subject_alt_names.
			//lint:ignore SA1019 deprecated in Envoy's API but the field gRPC-Go implements
			MatchSubjectAltNames: []*matcherv3.StringMatcher{{MatchPattern: &matcherv3.StringMatcher_Exact{Exact: t.m.SPIFFEID(d)}}},
		}},
	}}
	return &clusterv3.Cluster{
		Name:                 Outbound(d.Name),
		ClusterDiscoveryType: &clusterv3.Cluster_Type{Type: clusterv3.Cluster_EDS},
		EdsClusterConfig:     &clusterv3.Cluster_EdsClusterConfig{EdsConfig: adsSource()},
		ConnectTimeout:       durationpb.New(1e9),
		LbPolicy:             clusterv3.Cluster_ROUND_ROBIN,
		TransportSocket: &corev3.TransportSocket{
			Name:       "envoy.transport_sockets.tls",
			ConfigType: &corev3.TransportSocket_TypedConfig{TypedConfig: t.pack(tls)},
		},
	}
}

// proxylessServerListener is what gRPC-Go's xDS server asks for: a listener
// named by the template, with mTLS from the certificate provider and an RBAC
// filter allowing exactly the calling services' SPIFFE IDs.
func (t *translator) proxylessServerListener(callers []*model.Service) *listenerv3.Listener {
	hostport := net.JoinHostPort(t.w.Address, strconv.Itoa(int(t.w.AppPort)))
	var principals []*rbacconfigv3.Principal
	ids := make([]string, 0, len(callers))
	for _, c := range callers {
		ids = append(ids, t.m.SPIFFEID(c))
	}
	slices.Sort(ids)
	for _, id := range ids {
		principals = append(principals, &rbacconfigv3.Principal{Identifier: &rbacconfigv3.Principal_Authenticated_{
			Authenticated: &rbacconfigv3.Principal_Authenticated{PrincipalName: &matcherv3.StringMatcher{
				MatchPattern: &matcherv3.StringMatcher_Exact{Exact: id}}}}})
	}
	rbac := &rbacv3.RBAC{Rules: &rbacconfigv3.RBAC{
		Action: rbacconfigv3.RBAC_ALLOW,
		Policies: map[string]*rbacconfigv3.Policy{"allowed-callers": {
			Permissions: []*rbacconfigv3.Permission{{Rule: &rbacconfigv3.Permission_Any{Any: true}}},
			Principals:  principals,
		}},
	}}
	hcm := &hcmv3.HttpConnectionManager{
		StatPrefix: "inbound",
		RouteSpecifier: &hcmv3.HttpConnectionManager_RouteConfig{RouteConfig: &routev3.RouteConfiguration{
			Name: InboundRoutes(t.svc.Name),
			VirtualHosts: []*routev3.VirtualHost{{
				Name: t.svc.Name, Domains: []string{"*"},
				Routes: []*routev3.Route{{
					Match:  &routev3.RouteMatch{PathSpecifier: &routev3.RouteMatch_Prefix{Prefix: "/"}},
					Action: &routev3.Route_NonForwardingAction{NonForwardingAction: &routev3.NonForwardingAction{}},
				}},
			}},
		}},
		HttpFilters: []*hcmv3.HttpFilter{
			{Name: "envoy.filters.http.rbac", ConfigType: &hcmv3.HttpFilter_TypedConfig{TypedConfig: t.pack(rbac)}},
			t.router(),
		},
	}
	tls := &tlsv3.DownstreamTlsContext{
		RequireClientCertificate: wrapperspb.Bool(true),
		CommonTlsContext: &tlsv3.CommonTlsContext{
			TlsCertificateProviderInstance: providerInstance(),
			ValidationContextType: &tlsv3.CommonTlsContext_ValidationContext{ValidationContext: &tlsv3.CertificateValidationContext{
				CaCertificateProviderInstance: providerInstance(),
			}},
		},
	}
	return &listenerv3.Listener{
		Name:    fmt.Sprintf(ServerListenerTemplate, hostport),
		Address: addr(t.w.Address, t.w.AppPort),
		FilterChains: []*listenerv3.FilterChain{{
			Filters: []*listenerv3.Filter{{Name: hcmFilter, ConfigType: &listenerv3.Filter_TypedConfig{TypedConfig: t.pack(hcm)}}},
			TransportSocket: &corev3.TransportSocket{
				Name:       "envoy.transport_sockets.tls",
				ConfigType: &corev3.TransportSocket_TypedConfig{TypedConfig: t.pack(tls)},
			},
		}},
	}
}
