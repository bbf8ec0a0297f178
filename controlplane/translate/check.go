package translate

import (
	"errors"
	"fmt"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/known/anypb"

	"github.com/meshguard/meshguard/internal/pbvalidate"
)

// checkRefs is the publish-time check: every top-level resource passes
// ValidateAll (the Anys inside were validated when packed) and the
// references the translator recorded resolve. Check does the same by
// unpacking everything, for tests and tools.
func (r *Resources) checkRefs() error {
	var errs []error
	routes, clusters, cla, secrets := r.names()
	for _, l := range r.Listeners {
		if err := validate(l); err != nil {
			errs = append(errs, err)
		}
	}
	for _, x := range r.Routes {
		if err := validate(x); err != nil {
			errs = append(errs, err)
		}
		errs = append(errs, r.routeRefs(x.GetName(), x.GetVirtualHosts(), clusters)...)
	}
	for _, c := range r.Clusters {
		if err := validate(c); err != nil {
			errs = append(errs, err)
		}
		if c.GetType() == clusterv3.Cluster_EDS && !cla[c.GetName()] {
			errs = append(errs, fmt.Errorf("cluster %s: no endpoints (ClusterLoadAssignment) for it", c.GetName()))
		}
	}
	for _, e := range r.Endpoints {
		if err := validate(e); err != nil {
			errs = append(errs, err)
		}
	}
	for _, n := range r.rdsRefs {
		if !routes[n] {
			errs = append(errs, fmt.Errorf("RDS %q: no such route configuration", n))
		}
	}
	for _, n := range r.sdsRefs {
		if !secrets[n] {
			errs = append(errs, fmt.Errorf("SDS secret %q is referenced but not served", n))
		}
	}
	return errors.Join(errs...)
}

func (r *Resources) names() (routes, clusters, cla, secrets map[string]bool) {
	routes, clusters, cla, secrets = map[string]bool{}, map[string]bool{}, map[string]bool{}, map[string]bool{}
	for _, s := range r.Secrets {
		secrets[s] = true
	}
	for _, x := range r.Routes {
		routes[x.GetName()] = true
	}
	for _, c := range r.Clusters {
		clusters[c.GetName()] = true
	}
	for _, e := range r.Endpoints {
		cla[e.GetClusterName()] = true
	}
	return
}

func (r *Resources) routeRefs(name string, vhs []*routev3.VirtualHost, clusters map[string]bool) []error {
	var errs []error
	for _, vh := range vhs {
		for _, rt := range vh.GetRoutes() {
			if c := rt.GetRoute().GetCluster(); c != "" && !clusters[c] {
				errs = append(errs, fmt.Errorf("route %s/%s: no cluster %q", name, rt.GetName(), c))
			}
		}
	}
	return errs
}

// Check validates every resource deeply and checks the references between
// them, which go-control-plane's Snapshot.Consistent() does only for RDS and
// EDS names: RDS names, clusters routed to, EDS assignments, SDS secrets.
func (r *Resources) Check() error {
	var errs []error
	routes, clusters, cla, secrets := r.names()
	all := []proto.Message{}
	for _, l := range r.Listeners {
		all = append(all, l)
	}
	for _, x := range r.Routes {
		all = append(all, x)
		errs = append(errs, r.routeRefs(x.GetName(), x.GetVirtualHosts(), clusters)...)
	}
	for _, c := range r.Clusters {
		all = append(all, c)
		if c.GetType() == clusterv3.Cluster_EDS && !cla[c.GetName()] {
			errs = append(errs, fmt.Errorf("cluster %s: no endpoints (ClusterLoadAssignment) for it", c.GetName()))
		}
	}
	for _, e := range r.Endpoints {
		all = append(all, e)
		if !clusters[e.GetClusterName()] {
			errs = append(errs, fmt.Errorf("endpoints %s: no such cluster", e.GetClusterName()))
		}
	}
	for _, m := range all {
		if err := pbvalidate.Deep(m); err != nil {
			errs = append(errs, err)
		}
		visit(m.ProtoReflect(), func(msg proto.Message) {
			switch v := msg.(type) {
			case *hcmv3.Rds:
				if !routes[v.GetRouteConfigName()] {
					errs = append(errs, fmt.Errorf("RDS %q: no such route configuration", v.GetRouteConfigName()))
				}
			case *corev3.GrpcService_EnvoyGrpc:
				// The SPIRE agent's cluster is a static one of the
				// bootstrap, not served.
				if n := v.GetClusterName(); !clusters[n] && n != SPIREAgentCluster {
					errs = append(errs, fmt.Errorf("gRPC service cluster %q: no such cluster", v.GetClusterName()))
				}
			case *tlsv3.SdsSecretConfig:
				if v.GetSdsConfig().GetAds() != nil && !secrets[v.GetName()] {
					errs = append(errs, fmt.Errorf("SDS secret %q is referenced but not served", v.GetName()))
				}
			}
		})
	}
	return errors.Join(errs...)
}

// visit calls f for every message under m, unpacking Anys.
func visit(m protoreflect.Message, f func(proto.Message)) {
	f(m.Interface())
	if a, ok := m.Interface().(*anypb.Any); ok {
		if inner, err := a.UnmarshalNew(); err == nil {
			visit(inner.ProtoReflect(), f)
		}
		return
	}
	m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		if fd.Message() == nil {
			return true
		}
		switch {
		case fd.IsList():
			for i := 0; i < v.List().Len(); i++ {
				visit(v.List().Get(i).Message(), f)
			}
		case fd.IsMap():
			if fd.MapValue().Message() != nil {
				v.Map().Range(func(_ protoreflect.MapKey, mv protoreflect.Value) bool {
					visit(mv.Message(), f)
					return true
				})
			}
		default:
			visit(v.Message(), f)
		}
		return true
	})
}
