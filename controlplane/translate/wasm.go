package translate

import (
	"encoding/json"
	"net"
	"net/url"
	"slices"
	"time"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	wasmfilterv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/wasm/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	wasmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/wasm/v3"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/meshguard/meshguard/controlplane/model"
)

type stage int

const (
	beforeAuthz stage = iota // validate, headers: may mutate headers, so before ext_authz
	afterAuthz               // ratelimit: keyed by the principal the authorizer set
)

// kindOrder is the chain order of filter kinds (ARCHITECTURE.md: validate →
// headers → ext_authz → ratelimit). A filter that mutates request headers
// clears the route cache, so none may run after ext_authz except ratelimit,
// which only reads.
var kindOrder = map[string]int{"validate": 0, "headers": 1, "ratelimit": 2}

// WasmCluster names the cluster a remote wasm module is fetched from.
func WasmCluster(filter string) string { return "wasm|" + filter }

func (t *translator) wasmFilters(s stage) []*hcmv3.HttpFilter {
	var fs []*model.WasmFilter
	for _, name := range t.svc.Filters {
		f, ok := t.m.Filter(name)
		if !ok {
			t.fail("filter %q not defined", name)
			return nil
		}
		if (f.Kind == "ratelimit") == (s == afterAuthz) {
			fs = append(fs, f)
		}
	}
	slices.SortStableFunc(fs, func(a, b *model.WasmFilter) int { return kindOrder[a.Kind] - kindOrder[b.Kind] })
	out := make([]*hcmv3.HttpFilter, 0, len(fs))
	for _, f := range fs {
		out = append(out, &hcmv3.HttpFilter{
			Name:       "meshguard.wasm." + f.Name,
			ConfigType: &hcmv3.HttpFilter_TypedConfig{TypedConfig: t.pack(t.wasmConfig(f))},
		})
	}
	return out
}

func (t *translator) wasmConfig(f *model.WasmFilter) *wasmfilterv3.Wasm {
	cfg := f.Config
	if cfg == nil {
		cfg = map[string]any{}
	}
	js, err := json.Marshal(cfg)
	if err != nil {
		t.fail("filter %s: config is not JSON-compatible: %v", f.Name, err)
	}
	code := &corev3.AsyncDataSource{}
	if f.File != "" {
		code.Specifier = &corev3.AsyncDataSource_Local{Local: &corev3.DataSource{Specifier: &corev3.DataSource_Filename{Filename: f.File}}}
	} else {
		code.Specifier = &corev3.AsyncDataSource_Remote{Remote: &corev3.RemoteDataSource{
			HttpUri: &corev3.HttpUri{Uri: f.URL, HttpUpstreamType: &corev3.HttpUri_Cluster{Cluster: WasmCluster(f.Name)}, Timeout: durationpb.New(10 * time.Second)},
			Sha256:  f.SHA256,
		}}
	}
	return &wasmfilterv3.Wasm{Config: &wasmv3.PluginConfig{
		Name:   f.Name,
		RootId: f.Kind,
		Vm: &wasmv3.PluginConfig_VmConfig{VmConfig: &wasmv3.VmConfig{
			// One VM per filter: shared data (rate-limit buckets) is per vm_id.
			VmId:    "meshguard-" + f.Name,
			Runtime: "envoy.wasm.runtime.v8",
			Code:    code,
		}},
		Configuration: t.pack(wrapperspb.String(string(js))),
		// A filter that fails to start must not silently pass traffic.
		FailurePolicy: wasmv3.FailurePolicy_FAIL_CLOSED,
	}}
}

// wasmClusters are the fetch clusters of the remote filters this workload uses.
func (t *translator) wasmClusters() []*clusterv3.Cluster {
	var out []*clusterv3.Cluster
	for _, name := range t.svc.Filters {
		f, ok := t.m.Filter(name)
		if !ok || f.URL == "" {
			continue
		}
		u, err := url.Parse(f.URL)
		if err != nil {
			t.fail("filter %s: %v", f.Name, err)
			return nil
		}
		port := u.Port()
		if port == "" {
			port = "443"
		}
		p, _ := net.LookupPort("tcp", port)
		c := t.staticCluster(WasmCluster(f.Name), u.Hostname(), uint32(p), false)
		c.ClusterDiscoveryType = &clusterv3.Cluster_Type{Type: clusterv3.Cluster_STRICT_DNS}
		c.TransportSocket = &corev3.TransportSocket{Name: "envoy.transport_sockets.tls",
			ConfigType: &corev3.TransportSocket_TypedConfig{TypedConfig: t.pack(&tlsv3.UpstreamTlsContext{Sni: u.Hostname()})}}
		out = append(out, c)
	}
	return out
}
