package translate

import (
	"net"
	"net/netip"
	"strconv"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	ratelimitconfv3 "github.com/envoyproxy/go-control-plane/envoy/config/ratelimit/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	rlfilterv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ratelimit/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	exprv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/rate_limit_descriptors/expr/v3"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/meshguard/meshguard/controlplane/model"
	"github.com/meshguard/meshguard/internal/contract"
)

// Global rate limiting: a route's rateLimits become Envoy route rate-limit
// actions, and the inbound HTTP connection manager gets Envoy's ratelimit
// filter, which asks the rate-limit service (spec.rateLimitService) about
// every request of such a route.
const (
	RateLimitCluster = "meshguard-ratelimit"
	RateLimitFilter  = "envoy.filters.http.ratelimit"
	// principalHeader is the header the authorizer sets on allowed
	// requests (its response.principal_header default).
	principalHeader = contract.HeaderPrefix + "principal"
	// callerExpr is the calling workload's SPIFFE ID, as Envoy's CEL
	// attributes name the peer certificate's URI SAN.
	callerExpr = "connection.uri_san_peer_certificate"
)

// hasRateLimits reports whether any route of the service is rate limited.
func (t *translator) hasRateLimits() bool {
	for i := range t.svc.Routes {
		if len(t.svc.Routes[i].RateLimits) > 0 {
			return true
		}
	}
	return false
}

// rateLimitFilter asks the rate-limit service about requests of routes
// with rate-limit actions; it runs after ext_authz (denied requests are
// not counted, and the principal header is set) and after the wasm
// ratelimit filter (a local limit refuses before a remote call).
func (t *translator) rateLimitFilter() *hcmv3.HttpFilter {
	rl := t.m.Spec.RateLimitService
	f := &rlfilterv3.RateLimit{
		Domain:          rl.Domain,
		Timeout:         durationpb.New(rl.Timeout.Duration),
		FailureModeDeny: rl.FailClosed,
		RateLimitService: &ratelimitconfv3.RateLimitServiceConfig{
			GrpcService: &corev3.GrpcService{
				TargetSpecifier: &corev3.GrpcService_EnvoyGrpc_{EnvoyGrpc: &corev3.GrpcService_EnvoyGrpc{ClusterName: RateLimitCluster}},
				Timeout:         durationpb.New(rl.Timeout.Duration),
			},
			// Envoy rejects the zero value (AUTO), as for ext_authz.
			TransportApiVersion: corev3.ApiVersion_V3,
		},
	}
	return &hcmv3.HttpFilter{Name: RateLimitFilter, ConfigType: &hcmv3.HttpFilter_TypedConfig{TypedConfig: t.pack(f)}}
}

// routeRateLimits turns a route's descriptors into Envoy rate-limit
// actions, one entry per part, keyed as contract.RateLimit* name them.
func (t *translator) routeRateLimits(r *model.Route) []*routev3.RateLimit {
	var out []*routev3.RateLimit
	for _, d := range r.RateLimits {
		rl := &routev3.RateLimit{}
		for _, part := range d {
			rl.Actions = append(rl.Actions, t.rateLimitAction(part, r))
		}
		out = append(out, rl)
	}
	return out
}

func (t *translator) rateLimitAction(part string, r *model.Route) *routev3.RateLimit_Action {
	generic := func(key, value string) *routev3.RateLimit_Action {
		return &routev3.RateLimit_Action{ActionSpecifier: &routev3.RateLimit_Action_GenericKey_{
			GenericKey: &routev3.RateLimit_Action_GenericKey{DescriptorKey: key, DescriptorValue: value}}}
	}
	header := func(name, key string) *routev3.RateLimit_Action {
		return &routev3.RateLimit_Action{ActionSpecifier: &routev3.RateLimit_Action_RequestHeaders_{
			RequestHeaders: &routev3.RateLimit_Action_RequestHeaders{HeaderName: name, DescriptorKey: key}}}
	}
	switch part {
	case contract.RateLimitRoute:
		return generic(contract.RateLimitRoute, r.ID)
	case contract.RateLimitService:
		return generic(contract.RateLimitService, t.svc.Name)
	case contract.RateLimitPrincipal:
		return header(principalHeader, contract.RateLimitPrincipal)
	case contract.RateLimitPath:
		return header(":path", contract.RateLimitPath)
	case contract.RateLimitRemoteAddress:
		return &routev3.RateLimit_Action{ActionSpecifier: &routev3.RateLimit_Action_RemoteAddress_{RemoteAddress: &routev3.RateLimit_Action_RemoteAddress{}}}
	case contract.RateLimitCaller:
		expr := &exprv3.Descriptor{DescriptorKey: contract.RateLimitCaller, ExprSpecifier: &exprv3.Descriptor_Text{Text: callerExpr}}
		return &routev3.RateLimit_Action{ActionSpecifier: &routev3.RateLimit_Action_Extension{Extension: &corev3.TypedExtensionConfig{
			Name: "envoy.rate_limit_descriptors.expr", TypedConfig: t.pack(expr)}}}
	}
	t.fail("route %s: unknown rate-limit part %q", r.ID, part)
	return nil
}

// grpcCluster is the HTTP/2 cluster of a gRPC service at host:port (a
// hostname resolved by DNS); field names the address in the mesh file.
func (t *translator) grpcCluster(name, address, field string) *clusterv3.Cluster {
	host, portStr, _ := net.SplitHostPort(address)
	port, err := strconv.ParseUint(portStr, 10, 16)
	if err != nil {
		t.fail("%s: bad port %q", field, portStr)
		return nil
	}
	c := t.staticCluster(name, host, uint32(port), true)
	if _, err := netip.ParseAddr(host); err != nil {
		c.ClusterDiscoveryType = &clusterv3.Cluster_Type{Type: clusterv3.Cluster_STRICT_DNS}
	}
	return c
}

func (t *translator) rateLimitCluster() *clusterv3.Cluster {
	return t.grpcCluster(RateLimitCluster, t.m.Spec.RateLimitService.Address, "spec.rateLimitService.address")
}
