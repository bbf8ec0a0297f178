// Package bootstrap writes the Envoy bootstrap a sidecar starts from: its
// node identity, a loopback admin, and ADS to the control plane for
// everything else.
package bootstrap

import (
	"encoding/json"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"time"

	bootstrapv3 "github.com/envoyproxy/go-control-plane/envoy/config/bootstrap/v3"
	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	httpv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/upstreams/http/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/meshguard/meshguard/controlplane/model"
	"github.com/meshguard/meshguard/controlplane/translate"
	"github.com/meshguard/meshguard/internal/pbvalidate"
)

// XDSCluster is the bootstrap's static cluster to the control plane.
const XDSCluster = "meshguard-xds"

// Envoy returns the bootstrap for a sidecar workload, validated.
func Envoy(m *model.Mesh, workload string) (*bootstrapv3.Bootstrap, error) {
	svc, w, ok := m.Workload(workload)
	if !ok {
		return nil, fmt.Errorf("no workload %q in mesh %q", workload, m.Metadata.Name)
	}
	if w.Proxyless {
		return nil, fmt.Errorf("workload %q is proxyless: use `meshguard bootstrap --grpc` for its gRPC xDS bootstrap", workload)
	}
	xdsCluster, err := cluster(XDSCluster, m.Spec.XDS.Address)
	if err != nil {
		return nil, fmt.Errorf("spec.xds.address: %w", err)
	}
	if sock := m.Spec.XDS.Socket; sock != "" {
		// On the control plane's host: its socket, where the kernel vouches
		// for the sidecar's uid, so it may receive its private key.
		xdsCluster = pipeCluster(XDSCluster, sock)
	}
	clusters := []*clusterv3.Cluster{xdsCluster}
	if m.Spec.Identity.Provider == model.ProviderSPIRE {
		clusters = append(clusters, spireCluster(m.Spec.Identity.SpireAgentSocket))
	}
	ads := &corev3.ConfigSource{ResourceApiVersion: corev3.ApiVersion_V3,
		ConfigSourceSpecifier: &corev3.ConfigSource_Ads{Ads: &corev3.AggregatedConfigSource{}}}
	b := &bootstrapv3.Bootstrap{
		Node: &corev3.Node{Id: w.Name, Cluster: svc.Name},
		Admin: &bootstrapv3.Admin{
			Address: &corev3.Address{Address: &corev3.Address_SocketAddress{SocketAddress: &corev3.SocketAddress{
				Address: adminAddress(w), PortSpecifier: &corev3.SocketAddress_PortValue{PortValue: w.AdminPort}}}},
		},
		DynamicResources: &bootstrapv3.Bootstrap_DynamicResources{
			AdsConfig: &corev3.ApiConfigSource{
				ApiType:             corev3.ApiConfigSource_GRPC,
				TransportApiVersion: corev3.ApiVersion_V3,
				GrpcServices: []*corev3.GrpcService{{TargetSpecifier: &corev3.GrpcService_EnvoyGrpc_{
					EnvoyGrpc: &corev3.GrpcService_EnvoyGrpc{ClusterName: XDSCluster}}}},
				SetNodeOnFirstMessageOnly: true,
			},
			LdsConfig: ads,
			CdsConfig: proto.Clone(ads).(*corev3.ConfigSource),
		},
		StaticResources: &bootstrapv3.Bootstrap_StaticResources{Clusters: clusters},
	}
	if err := pbvalidate.Deep(b); err != nil {
		return nil, fmt.Errorf("bootstrap for %s: %w", workload, err)
	}
	return b, nil
}

// adminAddress keeps Envoy's admin on loopback: the workload's own address
// when that is a loopback address (several sidecars on one host), else 127.0.0.1.
func adminAddress(w *model.Workload) string {
	if ip, err := netip.ParseAddr(w.Address); err == nil && ip.IsLoopback() {
		return w.Address
	}
	return "127.0.0.1"
}

func cluster(name, hostport string) (*clusterv3.Cluster, error) {
	host, p, err := net.SplitHostPort(hostport)
	if err != nil {
		return nil, err
	}
	port, err := strconv.ParseUint(p, 10, 16)
	if err != nil {
		return nil, err
	}
	typ := clusterv3.Cluster_STATIC
	if _, err := netip.ParseAddr(host); err != nil {
		typ = clusterv3.Cluster_STRICT_DNS
	}
	h2, err := http2Options()
	if err != nil {
		return nil, err
	}
	return &clusterv3.Cluster{
		Name:                          name,
		ClusterDiscoveryType:          &clusterv3.Cluster_Type{Type: typ},
		ConnectTimeout:                durationpb.New(time.Second),
		TypedExtensionProtocolOptions: h2,
		LoadAssignment: &endpointv3.ClusterLoadAssignment{ClusterName: name, Endpoints: []*endpointv3.LocalityLbEndpoints{{
			LbEndpoints: []*endpointv3.LbEndpoint{{HostIdentifier: &endpointv3.LbEndpoint_Endpoint{Endpoint: &endpointv3.Endpoint{
				Address: &corev3.Address{Address: &corev3.Address_SocketAddress{SocketAddress: &corev3.SocketAddress{
					Address: host, PortSpecifier: &corev3.SocketAddress_PortValue{PortValue: uint32(port)}}}},
			}}}},
		}}},
	}, nil
}

func spireCluster(socket string) *clusterv3.Cluster {
	return pipeCluster(translate.SPIREAgentCluster, socket)
}

// pipeCluster is an HTTP/2 cluster of one Unix socket.
func pipeCluster(name, socket string) *clusterv3.Cluster {
	h2, _ := http2Options()
	return &clusterv3.Cluster{
		Name:                          name,
		ClusterDiscoveryType:          &clusterv3.Cluster_Type{Type: clusterv3.Cluster_STATIC},
		ConnectTimeout:                durationpb.New(time.Second),
		TypedExtensionProtocolOptions: h2,
		LoadAssignment: &endpointv3.ClusterLoadAssignment{ClusterName: name, Endpoints: []*endpointv3.LocalityLbEndpoints{{
			LbEndpoints: []*endpointv3.LbEndpoint{{HostIdentifier: &endpointv3.LbEndpoint_Endpoint{Endpoint: &endpointv3.Endpoint{
				Address: &corev3.Address{Address: &corev3.Address_Pipe{Pipe: &corev3.Pipe{Path: socket}}},
			}}}},
		}}},
	}
}

func http2Options() (map[string]*anypb.Any, error) {
	o := &httpv3.HttpProtocolOptions{UpstreamProtocolOptions: &httpv3.HttpProtocolOptions_ExplicitHttpConfig_{
		ExplicitHttpConfig: &httpv3.HttpProtocolOptions_ExplicitHttpConfig{
			ProtocolConfig: &httpv3.HttpProtocolOptions_ExplicitHttpConfig_Http2ProtocolOptions{Http2ProtocolOptions: &corev3.Http2ProtocolOptions{}}}}}
	a, err := anypb.New(o)
	if err != nil {
		return nil, err
	}
	return map[string]*anypb.Any{"envoy.extensions.upstreams.http.v3.HttpProtocolOptions": a}, nil
}

// GRPCFiles names a proxyless workload's certificate files.
type GRPCFiles struct {
	Cert, Key, CA string
}

// GRPC returns the gRPC-Go xDS bootstrap (JSON) for a proxyless workload:
// node, the control plane as xDS server, the server listener name template,
// and a file_watcher certificate provider over the workload's SVID files.
func GRPC(m *model.Mesh, workload string, files GRPCFiles) ([]byte, error) {
	svc, w, ok := m.Workload(workload)
	if !ok {
		return nil, fmt.Errorf("no workload %q in mesh %q", workload, m.Metadata.Name)
	}
	if !w.Proxyless {
		return nil, fmt.Errorf("workload %q has a sidecar: use the Envoy bootstrap", workload)
	}
	doc := map[string]any{
		"xds_servers": []any{map[string]any{
			"server_uri":      m.Spec.XDS.Address,
			"channel_creds":   []any{map[string]any{"type": "insecure"}},
			"server_features": []any{"xds_v3"},
		}},
		"node": map[string]any{"id": w.Name, "cluster": svc.Name, "locality": map[string]any{"region": "local"}},
		"certificate_providers": map[string]any{
			translate.CertProviderInstance: map[string]any{
				"plugin_name": "file_watcher",
				"config": map[string]any{
					"certificate_file":    files.Cert,
					"private_key_file":    files.Key,
					"ca_certificate_file": files.CA,
					"refresh_interval":    "60s",
				},
			},
		},
		"server_listener_resource_name_template": translate.ServerListenerTemplate,
	}
	return json.MarshalIndent(doc, "", "  ")
}
