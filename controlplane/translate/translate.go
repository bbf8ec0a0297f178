package translate

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	mutationv3 "github.com/envoyproxy/go-control-plane/envoy/config/common/mutation_rules/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	extauthzv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_authz/v3"
	headermutationv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/header_mutation/v3"
	routerv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/router/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	httpv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/upstreams/http/v3"
	matcherv3 "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/meshguard/meshguard/controlplane/model"
	"github.com/meshguard/meshguard/internal/contract"
)

// Names of resources and filters (see the package documentation).
const (
	InboundListener = "inbound"
	IngressListener = "ingress"
	LocalCluster    = "inbound|local"
	AuthzCluster    = "meshguard-authz"
	SecretSVID      = contract.SecretSVID
	SecretBundle    = contract.SecretBundle
	SecretAll       = contract.SecretAll // own and federated bundles
	// SPIREAgentCluster is the bootstrap's static cluster to the SPIRE agent's SDS socket.
	SPIREAgentCluster = "spire_agent"

	ExtAuthzFilter = "envoy.filters.http.ext_authz"
	stripFilter    = "meshguard.strip_internal_headers"
	routerFilter   = "envoy.filters.http.router"
	hcmFilter      = "envoy.filters.network.http_connection_manager"
)

// InboundRoutes names a service's inbound route configuration.
func InboundRoutes(svc string) string { return "inbound|" + svc }

// Outbound names a dependency's outbound listener, route configuration, cluster and endpoints.
func Outbound(svc string) string { return "outbound|" + svc }

// Resources is what one workload's sidecar gets.
type Resources struct {
	Listeners []*listenerv3.Listener
	Routes    []*routev3.RouteConfiguration
	Clusters  []*clusterv3.Cluster
	Endpoints []*endpointv3.ClusterLoadAssignment
	// Secrets are the SDS secret names the config references; with the
	// meshguard identity provider the control plane must serve each of them.
	Secrets []string

	// References the translator made, checked without unpacking every Any.
	rdsRefs, sdsRefs []string
}

// alwaysAllowedHeaders are forwarded to the authorizer whatever the model says:
// without authorization every JWT would arrive missing.
var alwaysAllowedHeaders = []string{"authorization", "traceparent", "tracestate", "x-request-id"}

// Workload translates the resources for one (sidecar) workload.
func Workload(m *model.Mesh, name string) (*Resources, error) {
	return WorkloadMemo(m, name, nil)
}

// WorkloadMemo is Workload sharing service-level results through memo (may be nil).
func WorkloadMemo(m *model.Mesh, name string, memo *Memo) (*Resources, error) {
	svc, w, ok := m.Workload(name)
	if !ok {
		return nil, fmt.Errorf("no workload %q in mesh %q", name, m.Metadata.Name)
	}
	if w.Proxyless {
		return nil, fmt.Errorf("workload %q is proxyless: it gets the proxyless flavour, not a sidecar config", name)
	}
	t := &translator{m: m, svc: svc, w: w, memo: memo}
	r := t.translate()
	if t.err != nil {
		return nil, fmt.Errorf("workload %s: %w", name, t.err)
	}
	if err := r.checkRefs(); err != nil {
		return nil, fmt.Errorf("workload %s: %w", name, err)
	}
	return r, nil
}

type translator struct {
	builder
	m    *model.Mesh
	svc  *model.Service
	w    *model.Workload
	memo *Memo
}

func (t *translator) translate() *Resources {
	r := &Resources{}
	callers := t.m.Callers(t.svc.Name)
	if len(callers) > 0 || len(t.svc.ExternalCallers) > 0 {
		r.Listeners = append(r.Listeners, t.inboundListener(callers))
	}
	if t.svc.IngressPort != 0 {
		r.Listeners = append(r.Listeners, t.ingressListener())
	}
	svc := t.svc.Name
	if len(r.Listeners) > 0 {
		r.Routes = append(r.Routes, memoize(t, "rds-in|"+svc, t.inboundRoutes))
		r.Clusters = append(r.Clusters,
			memoize(t, fmt.Sprintf("local|%s|%d", t.svc.Protocol, t.w.AppPort), func() *clusterv3.Cluster {
				return t.staticCluster(LocalCluster, "127.0.0.1", t.w.AppPort, t.svc.Protocol == "grpc")
			}),
			memoize(t, "authz", t.authzCluster))
		if t.hasRateLimits() {
			r.Clusters = append(r.Clusters, memoize(t, "ratelimit", t.rateLimitCluster))
		}
		r.Clusters = append(r.Clusters, memoize(t, "wasm|"+svc, t.wasmClusters)...)
		r.rdsRefs = append(r.rdsRefs, InboundRoutes(svc))
	}
	for _, dep := range slices.Sorted(slices.Values(t.svc.Calls)) {
		d, _ := t.m.Service(dep)
		r.Listeners = append(r.Listeners, memoize(t, "lds-out|"+dep+"|"+t.w.OutboundAddress, func() *listenerv3.Listener { return t.outboundListener(d) }))
		r.Routes = append(r.Routes, memoize(t, "rds-out|"+dep, func() *routev3.RouteConfiguration { return t.outboundRoutes(d) }))
		r.Clusters = append(r.Clusters, memoize(t, "cds-out|"+dep, func() *clusterv3.Cluster { return t.outboundCluster(d) }))
		r.Endpoints = append(r.Endpoints, memoize(t, "eds|"+dep, func() *endpointv3.ClusterLoadAssignment { return t.endpoints(d) }))
		r.rdsRefs = append(r.rdsRefs, Outbound(dep))
	}
	if t.m.Spec.Identity.Provider == model.ProviderMeshguard && (len(r.Listeners) > 0 && len(callers)+len(t.svc.ExternalCallers) > 0 || len(t.svc.Calls) > 0) {
		r.Secrets = []string{SecretSVID, t.bundleSecret()}
		r.sdsRefs = []string{SecretSVID, t.bundleSecret()}
	}
	return r
}

func addr(ip string, port uint32) *corev3.Address {
	return &corev3.Address{Address: &corev3.Address_SocketAddress{SocketAddress: &corev3.SocketAddress{
		Address: ip, PortSpecifier: &corev3.SocketAddress_PortValue{PortValue: port},
	}}}
}

func adsSource() *corev3.ConfigSource {
	return &corev3.ConfigSource{
		ResourceApiVersion:    corev3.ApiVersion_V3,
		ConfigSourceSpecifier: &corev3.ConfigSource_Ads{Ads: &corev3.AggregatedConfigSource{}},
	}
}

// sdsSecret points at an SVID secret: over ADS from meshguard, or from the
// SPIRE agent. SVID secrets never block listener warming on a first fetch
// (initial_fetch_timeout 0s waits for them instead of timing out to no TLS).
func (t *translator) sdsSecret(name string) *tlsv3.SdsSecretConfig {
	src := adsSource()
	if t.m.Spec.Identity.Provider == model.ProviderSPIRE {
		src = &corev3.ConfigSource{
			ResourceApiVersion: corev3.ApiVersion_V3,
			ConfigSourceSpecifier: &corev3.ConfigSource_ApiConfigSource{ApiConfigSource: &corev3.ApiConfigSource{
				ApiType:             corev3.ApiConfigSource_GRPC,
				TransportApiVersion: corev3.ApiVersion_V3,
				GrpcServices: []*corev3.GrpcService{{TargetSpecifier: &corev3.GrpcService_EnvoyGrpc_{
					EnvoyGrpc: &corev3.GrpcService_EnvoyGrpc{ClusterName: SPIREAgentCluster}}}},
			}},
		}
	}
	src.InitialFetchTimeout = durationpb.New(0)
	return &tlsv3.SdsSecretConfig{Name: name, SdsConfig: src}
}

// spiffeSANs pins peers to exact SPIFFE IDs (URI SAN).
func spiffeSANs(ids []string) []*tlsv3.SubjectAltNameMatcher {
	out := make([]*tlsv3.SubjectAltNameMatcher, len(ids))
	for i, id := range ids {
		out[i] = &tlsv3.SubjectAltNameMatcher{
			SanType: tlsv3.SubjectAltNameMatcher_URI,
			Matcher: &matcherv3.StringMatcher{MatchPattern: &matcherv3.StringMatcher_Exact{Exact: id}},
		}
	}
	return out
}

// bundleSecret is the validation secret: ALL when the mesh federates with
// other trust domains, ROOTCA otherwise.
func (t *translator) bundleSecret() string {
	if len(t.m.Spec.Federation) > 0 {
		return SecretAll
	}
	return SecretBundle
}

func (t *translator) commonTLS(peers []string, alpn []string) *tlsv3.CommonTlsContext {
	return &tlsv3.CommonTlsContext{
		AlpnProtocols:                  alpn,
		TlsCertificateSdsSecretConfigs: []*tlsv3.SdsSecretConfig{t.sdsSecret(SecretSVID)},
		ValidationContextType: &tlsv3.CommonTlsContext_CombinedValidationContext{
			CombinedValidationContext: &tlsv3.CommonTlsContext_CombinedCertificateValidationContext{
				DefaultValidationContext:         &tlsv3.CertificateValidationContext{MatchTypedSubjectAltNames: spiffeSANs(peers)},
				ValidationContextSdsSecretConfig: t.sdsSecret(t.bundleSecret()),
			},
		},
	}
}

func (t *translator) inboundListener(callers []*model.Service) *listenerv3.Listener {
	ids := make([]string, 0, len(callers)+len(t.svc.ExternalCallers))
	for _, c := range callers {
		ids = append(ids, t.m.SPIFFEID(c))
	}
	ids = append(ids, t.svc.ExternalCallers...)
	slices.Sort(ids)
	tls := &tlsv3.DownstreamTlsContext{
		RequireClientCertificate: wrapperspb.Bool(true),
		CommonTlsContext:         t.commonTLS(ids, []string{"h2", "http/1.1"}),
	}
	return &listenerv3.Listener{
		Name:    InboundListener,
		Address: addr(t.w.Address, t.w.InboundPort),
		FilterChains: []*listenerv3.FilterChain{{
			Filters: []*listenerv3.Filter{t.inboundHCM("inbound")},
			TransportSocket: &corev3.TransportSocket{
				Name:       "envoy.transport_sockets.tls",
				ConfigType: &corev3.TransportSocket_TypedConfig{TypedConfig: t.pack(tls)},
			},
		}},
	}
}

func (t *translator) ingressListener() *listenerv3.Listener {
	return &listenerv3.Listener{
		Name:         IngressListener,
		Address:      addr(t.w.Address, t.svc.IngressPort),
		FilterChains: []*listenerv3.FilterChain{{Filters: []*listenerv3.Filter{t.inboundHCM("ingress")}}},
	}
}

// inboundHCM is the protected HTTP connection manager. Filter order is a
// security invariant: strip client-supplied x-meshguard-* → ext_authz → router.
// (Wasm filters slot in before ext_authz, except ratelimit, after it.)
func (t *translator) inboundHCM(statPrefix string) *listenerv3.Filter {
	return memoize(t, "hcm|"+t.svc.Name+"|"+statPrefix, func() *listenerv3.Filter { return t.buildInboundHCM(statPrefix) })
}

func (t *translator) buildInboundHCM(statPrefix string) *listenerv3.Filter {
	headers := slices.Clone(alwaysAllowedHeaders)
	for _, h := range t.m.Spec.Authz.AllowedHeaders {
		if h = strings.ToLower(h); !slices.Contains(headers, h) {
			headers = append(headers, h)
		}
	}
	patterns := make([]*matcherv3.StringMatcher, len(headers))
	for i, h := range headers {
		patterns[i] = &matcherv3.StringMatcher{MatchPattern: &matcherv3.StringMatcher_Exact{Exact: h}}
	}
	authz := &extauthzv3.ExtAuthz{
		// Envoy rejects the zero value (AUTO); PGV does not say so.
		TransportApiVersion: corev3.ApiVersion_V3,
		FailureModeAllow:    false,
		Services: &extauthzv3.ExtAuthz_GrpcService{GrpcService: &corev3.GrpcService{
			TargetSpecifier: &corev3.GrpcService_EnvoyGrpc_{EnvoyGrpc: &corev3.GrpcService_EnvoyGrpc{ClusterName: AuthzCluster}},
			Timeout:         durationpb.New(t.m.Spec.Authz.Timeout.Duration),
		}},
		AllowedHeaders:    &matcherv3.ListStringMatcher{Patterns: patterns},
		ValidateMutations: true,
		StatPrefix:        "meshguard",
	}
	strip := &headermutationv3.HeaderMutation{Mutations: &headermutationv3.Mutations{
		RequestMutations: []*mutationv3.HeaderMutation{{Action: &mutationv3.HeaderMutation_RemoveOnMatch_{
			RemoveOnMatch: &mutationv3.HeaderMutation_RemoveOnMatch{KeyMatcher: &matcherv3.StringMatcher{
				MatchPattern: &matcherv3.StringMatcher_Prefix{Prefix: contract.HeaderPrefix}}},
		}}},
	}}
	filters := []*hcmv3.HttpFilter{
		{Name: stripFilter, ConfigType: &hcmv3.HttpFilter_TypedConfig{TypedConfig: t.pack(strip)}},
	}
	filters = append(filters, t.wasmFilters(beforeAuthz)...)
	filters = append(filters, &hcmv3.HttpFilter{Name: ExtAuthzFilter, ConfigType: &hcmv3.HttpFilter_TypedConfig{TypedConfig: t.pack(authz)}})
	filters = append(filters, t.wasmFilters(afterAuthz)...)
	if t.hasRateLimits() {
		filters = append(filters, t.rateLimitFilter())
	}
	filters = append(filters, t.router())
	hcm := &hcmv3.HttpConnectionManager{
		StatPrefix: statPrefix,
		RouteSpecifier: &hcmv3.HttpConnectionManager_Rds{Rds: &hcmv3.Rds{
			ConfigSource: adsSource(), RouteConfigName: InboundRoutes(t.svc.Name),
		}},
		HttpFilters:                  filters,
		NormalizePath:                wrapperspb.Bool(true),
		MergeSlashes:                 true,
		PathWithEscapedSlashesAction: hcmv3.HttpConnectionManager_UNESCAPE_AND_REDIRECT,
		ForwardClientCertDetails:     hcmv3.HttpConnectionManager_SANITIZE_SET,
		SetCurrentClientCertDetails:  &hcmv3.HttpConnectionManager_SetCurrentClientCertDetails{Uri: true},
	}
	return &listenerv3.Filter{Name: hcmFilter, ConfigType: &listenerv3.Filter_TypedConfig{TypedConfig: t.pack(hcm)}}
}

func (t *translator) router() *hcmv3.HttpFilter {
	return &hcmv3.HttpFilter{Name: routerFilter, ConfigType: &hcmv3.HttpFilter_TypedConfig{TypedConfig: t.pack(&routerv3.Router{})}}
}

// extAuthzPerRoute carries the meshguard.* context extensions (the contract
// with the authorizer), or disables the filter for a public route.
func (t *translator) extAuthzPerRoute(ext map[string]string, disabled bool) map[string]*anypb.Any {
	pr := &extauthzv3.ExtAuthzPerRoute{}
	if disabled {
		pr.Override = &extauthzv3.ExtAuthzPerRoute_Disabled{Disabled: true}
	} else {
		pr.Override = &extauthzv3.ExtAuthzPerRoute_CheckSettings{CheckSettings: &extauthzv3.CheckSettings{ContextExtensions: ext}}
	}
	return map[string]*anypb.Any{ExtAuthzFilter: t.pack(pr)}
}

func (t *translator) inboundRoutes() *routev3.RouteConfiguration {
	vh := &routev3.VirtualHost{
		Name:    t.svc.Name,
		Domains: []string{"*"},
		// Service-wide settings live on the virtual host; routes add theirs
		// (context extensions merge, the more specific key winning).
		TypedPerFilterConfig: t.extAuthzPerRoute(ServiceExtensions(t.svc), false),
	}
	for i := range t.svc.Routes {
		r := &t.svc.Routes[i]
		action := t.routeTo(LocalCluster, t.svc.Protocol)
		action.Route.RateLimits = t.routeRateLimits(r)
		vh.Routes = append(vh.Routes, &routev3.Route{
			Name:                 r.ID,
			Match:                routeMatch(r.Match),
			Action:               action,
			TypedPerFilterConfig: t.extAuthzPerRoute(RouteExtensions(r), r.Public),
		})
	}
	return &routev3.RouteConfiguration{Name: InboundRoutes(t.svc.Name), VirtualHosts: []*routev3.VirtualHost{vh}}
}

// RouteContext is one route of a service with the context extensions a
// sidecar sends for it (virtual host and route merged); none for a public
// route, which skips the authorizer.
type RouteContext struct {
	ID         string            `json:"id"`
	Match      model.RouteMatch  `json:"match"`
	Public     bool              `json:"public,omitempty"`
	Extensions map[string]string `json:"extensions,omitempty"`
}

// ServiceRoutes lists a service's routes, in match order, with their
// context extensions.
func ServiceRoutes(svc *model.Service) []RouteContext {
	out := make([]RouteContext, 0, len(svc.Routes))
	for i := range svc.Routes {
		r := &svc.Routes[i]
		rc := RouteContext{ID: r.ID, Match: r.Match, Public: r.Public}
		if !r.Public {
			rc.Extensions = ServiceExtensions(svc)
			maps.Copy(rc.Extensions, RouteExtensions(r))
		}
		out = append(out, rc)
	}
	return out
}

// ServiceExtensions are the context extensions of a service's virtual
// host: the Cedar resource and the routes' default policy set.
func ServiceExtensions(svc *model.Service) map[string]string {
	return map[string]string{contract.ExtService: svc.Name, contract.ExtPolicy: svc.Policy}
}

// RouteExtensions are a route's own context extensions (the contract with
// the authorizer), its rollout at the step in force included: the
// candidate and stage while it is compared, the candidate as the route's
// policy once it is enforced.
func RouteExtensions(r *model.Route) map[string]string {
	ext := map[string]string{contract.ExtRoute: r.ID, contract.ExtPolicy: r.Policy, contract.ExtMode: r.Mode}
	if r.Shadow != "" {
		ext[contract.ExtShadow] = r.Shadow
	}
	if r.Action != "" {
		ext[contract.ExtAction] = r.Action
	}
	if st := r.EffectiveStep(); st != nil {
		ext[contract.ExtPolicy] = st.Policy
		if st.Candidate != "" {
			ext[contract.ExtCandidate], ext[contract.ExtStage] = st.Candidate, st.Stage
			if st.Stage == contract.StageCanary {
				ext[contract.ExtCanary] = contract.FormatPercent(st.Canary)
			}
			if st.Revision != "" {
				ext[contract.ExtRollout] = st.Revision
			}
		}
	}
	return ext
}

func (t *translator) routeTo(cluster, protocol string) *routev3.Route_Route {
	ra := &routev3.RouteAction{ClusterSpecifier: &routev3.RouteAction_Cluster{Cluster: cluster}}
	if protocol == "grpc" {
		ra.Timeout = durationpb.New(0) // streams may be long-lived
	}
	return &routev3.Route_Route{Route: ra}
}

func routeMatch(m model.RouteMatch) *routev3.RouteMatch {
	rm := &routev3.RouteMatch{}
	switch {
	case m.Path != "":
		rm.PathSpecifier = &routev3.RouteMatch_Path{Path: m.Path}
	case m.Regex != "":
		rm.PathSpecifier = &routev3.RouteMatch_SafeRegex{SafeRegex: &matcherv3.RegexMatcher{Regex: m.Regex}}
	default:
		rm.PathSpecifier = &routev3.RouteMatch_Prefix{Prefix: m.Prefix}
	}
	if len(m.Methods) > 0 {
		sm := &matcherv3.StringMatcher{MatchPattern: &matcherv3.StringMatcher_Exact{Exact: m.Methods[0]}}
		if len(m.Methods) > 1 {
			sm = &matcherv3.StringMatcher{MatchPattern: &matcherv3.StringMatcher_SafeRegex{
				SafeRegex: &matcherv3.RegexMatcher{Regex: strings.Join(m.Methods, "|")}}}
		}
		rm.Headers = append(rm.Headers, &routev3.HeaderMatcher{Name: ":method",
			HeaderMatchSpecifier: &routev3.HeaderMatcher_StringMatch{StringMatch: sm}})
	}
	for _, h := range m.Headers {
		hm := &routev3.HeaderMatcher{Name: strings.ToLower(h.Name), InvertMatch: h.Invert}
		switch {
		case h.Exact != "":
			hm.HeaderMatchSpecifier = &routev3.HeaderMatcher_StringMatch{StringMatch: &matcherv3.StringMatcher{MatchPattern: &matcherv3.StringMatcher_Exact{Exact: h.Exact}}}
		case h.Prefix != "":
			hm.HeaderMatchSpecifier = &routev3.HeaderMatcher_StringMatch{StringMatch: &matcherv3.StringMatcher{MatchPattern: &matcherv3.StringMatcher_Prefix{Prefix: h.Prefix}}}
		case h.Regex != "":
			hm.HeaderMatchSpecifier = &routev3.HeaderMatcher_StringMatch{StringMatch: &matcherv3.StringMatcher{MatchPattern: &matcherv3.StringMatcher_SafeRegex{SafeRegex: &matcherv3.RegexMatcher{Regex: h.Regex}}}}
		default:
			hm.HeaderMatchSpecifier = &routev3.HeaderMatcher_PresentMatch{PresentMatch: true}
		}
		rm.Headers = append(rm.Headers, hm)
	}
	return rm
}

func (t *translator) outboundListener(d *model.Service) *listenerv3.Listener {
	hcm := &hcmv3.HttpConnectionManager{
		StatPrefix: Outbound(d.Name),
		RouteSpecifier: &hcmv3.HttpConnectionManager_Rds{Rds: &hcmv3.Rds{
			ConfigSource: adsSource(), RouteConfigName: Outbound(d.Name),
		}},
		HttpFilters:   []*hcmv3.HttpFilter{t.router()},
		NormalizePath: wrapperspb.Bool(true),
		MergeSlashes:  true,
	}
	return &listenerv3.Listener{
		Name:    Outbound(d.Name),
		Address: addr(t.w.OutboundAddress, d.Port),
		FilterChains: []*listenerv3.FilterChain{{Filters: []*listenerv3.Filter{
			{Name: hcmFilter, ConfigType: &listenerv3.Filter_TypedConfig{TypedConfig: t.pack(hcm)}},
		}}},
	}
}

func (t *translator) outboundRoutes(d *model.Service) *routev3.RouteConfiguration {
	return &routev3.RouteConfiguration{Name: Outbound(d.Name), VirtualHosts: []*routev3.VirtualHost{{
		Name:    d.Name,
		Domains: []string{"*"},
		Routes: []*routev3.Route{{
			Match:  &routev3.RouteMatch{PathSpecifier: &routev3.RouteMatch_Prefix{Prefix: "/"}},
			Action: t.routeTo(Outbound(d.Name), d.Protocol),
		}},
	}}}
}

// protocolOptions selects the upstream HTTP version explicitly.
func (t *translator) protocolOptions(h2 bool) map[string]*anypb.Any {
	o := &httpv3.HttpProtocolOptions{}
	if h2 {
		o.UpstreamProtocolOptions = &httpv3.HttpProtocolOptions_ExplicitHttpConfig_{ExplicitHttpConfig: &httpv3.HttpProtocolOptions_ExplicitHttpConfig{
			ProtocolConfig: &httpv3.HttpProtocolOptions_ExplicitHttpConfig_Http2ProtocolOptions{Http2ProtocolOptions: &corev3.Http2ProtocolOptions{}}}}
	} else {
		o.UpstreamProtocolOptions = &httpv3.HttpProtocolOptions_ExplicitHttpConfig_{ExplicitHttpConfig: &httpv3.HttpProtocolOptions_ExplicitHttpConfig{
			ProtocolConfig: &httpv3.HttpProtocolOptions_ExplicitHttpConfig_HttpProtocolOptions{HttpProtocolOptions: &corev3.Http1ProtocolOptions{}}}}
	}
	return map[string]*anypb.Any{"envoy.extensions.upstreams.http.v3.HttpProtocolOptions": t.pack(o)}
}

func (t *translator) outboundCluster(d *model.Service) *clusterv3.Cluster {
	tls := &tlsv3.UpstreamTlsContext{
		Sni:              d.Name,
		CommonTlsContext: t.commonTLS([]string{t.m.SPIFFEID(d)}, nil),
	}
	return &clusterv3.Cluster{
		Name:                 Outbound(d.Name),
		ClusterDiscoveryType: &clusterv3.Cluster_Type{Type: clusterv3.Cluster_EDS},
		EdsClusterConfig:     &clusterv3.Cluster_EdsClusterConfig{EdsConfig: adsSource()},
		ConnectTimeout:       durationpb.New(time.Second),
		TransportSocket: &corev3.TransportSocket{
			Name:       "envoy.transport_sockets.tls",
			ConfigType: &corev3.TransportSocket_TypedConfig{TypedConfig: t.pack(tls)},
		},
		TypedExtensionProtocolOptions: t.protocolOptions(d.Protocol == "grpc"),
	}
}

// endpoints lists a service's sidecars (inbound mTLS ports); proxyless
// workloads serve mTLS on their own port.
func (t *translator) endpoints(d *model.Service) *endpointv3.ClusterLoadAssignment {
	var lbs []*endpointv3.LbEndpoint
	for _, w := range d.Workloads {
		port := w.InboundPort
		if w.Proxyless {
			port = w.AppPort
		}
		lbs = append(lbs, &endpointv3.LbEndpoint{
			HostIdentifier:      &endpointv3.LbEndpoint_Endpoint{Endpoint: &endpointv3.Endpoint{Address: addr(w.Address, port)}},
			LoadBalancingWeight: wrapperspb.UInt32(1),
		})
	}
	// gRPC-Go drops endpoints without a locality and a non-zero weight.
	return &endpointv3.ClusterLoadAssignment{
		ClusterName: Outbound(d.Name),
		Endpoints: []*endpointv3.LocalityLbEndpoints{{
			Locality:            &corev3.Locality{Region: "local"},
			LoadBalancingWeight: wrapperspb.UInt32(1),
			LbEndpoints:         lbs,
		}},
	}
}

func (t *translator) staticCluster(name, ip string, port uint32, h2 bool) *clusterv3.Cluster {
	return &clusterv3.Cluster{
		Name:                 name,
		ClusterDiscoveryType: &clusterv3.Cluster_Type{Type: clusterv3.Cluster_STATIC},
		ConnectTimeout:       durationpb.New(time.Second),
		LoadAssignment: &endpointv3.ClusterLoadAssignment{ClusterName: name, Endpoints: []*endpointv3.LocalityLbEndpoints{{
			LbEndpoints: []*endpointv3.LbEndpoint{{HostIdentifier: &endpointv3.LbEndpoint_Endpoint{Endpoint: &endpointv3.Endpoint{Address: addr(ip, port)}}}},
		}}},
		TypedExtensionProtocolOptions: t.protocolOptions(h2),
	}
}

func (t *translator) authzCluster() *clusterv3.Cluster {
	return t.grpcCluster(AuthzCluster, t.m.Spec.Authz.Address, "spec.authz.address")
}
