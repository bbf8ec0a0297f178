package kube

import (
	"context"
	"net"
	"net/http"
	"strconv"
	"time"

	discoveryv1 "k8s.io/api/discovery/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/meshguard/meshguard/internal/httpjson"
	"github.com/meshguard/meshguard/internal/xds"
)

// maxPeerStatus bounds a peer's /v1/proxies answer.
const maxPeerStatus = 64 << 20

// allProxies merges this replica's proxies with its peers': a proxy is
// connected to one replica, and the leader's statuses must count them all.
// A peer that does not answer is skipped (its proxies count as not
// connected), and logged by the caller's status.
func allProxies(own func() []xds.ProxyStatus, peers func(context.Context) []string, hc *http.Client) ProxyState {
	return func(ctx context.Context) []xds.ProxyStatus {
		out := own()
		if peers == nil {
			return out
		}
		for _, r := range httpjson.FromEach(ctx, peers(ctx), func(ctx context.Context, addr string) ([]xds.ProxyStatus, error) {
			return peerProxies(ctx, hc, addr)
		}) {
			out = append(out, r.Value...) // nothing from a peer that did not answer
		}
		return out
	}
}

func peerProxies(ctx context.Context, hc *http.Client, base string) ([]xds.ProxyStatus, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	var r struct {
		Proxies []xds.ProxyStatus `json:"proxies"`
	}
	if err := httpjson.Get(ctx, hc, base+"/v1/proxies", maxPeerStatus, &r); err != nil {
		return nil, err
	}
	return r.Proxies, nil
}

// ServicePeers finds the other replicas: the ready endpoints of the
// control plane's Service, at its port named portName (their admin
// listeners), except self (this replica's pod IP).
func ServicePeers(namespace, service, portName, self string) func(context.Context, client.Reader) []string {
	return func(ctx context.Context, c client.Reader) []string {
		var slices discoveryv1.EndpointSliceList
		if err := c.List(ctx, &slices, client.InNamespace(namespace), client.MatchingLabels{discoveryv1.LabelServiceName: service}); err != nil {
			return nil
		}
		var out []string
		for _, sl := range slices.Items {
			port := int32(0)
			for _, p := range sl.Ports {
				if p.Port != nil && p.Name != nil && *p.Name == portName {
					port = *p.Port
				}
			}
			if port == 0 {
				continue
			}
			for _, ep := range sl.Endpoints {
				if ep.Conditions.Ready != nil && !*ep.Conditions.Ready {
					continue
				}
				for _, a := range ep.Addresses {
					if a != self {
						out = append(out, "http://"+net.JoinHostPort(a, strconv.Itoa(int(port))))
					}
				}
			}
		}
		return out
	}
}
