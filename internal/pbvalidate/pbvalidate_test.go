package pbvalidate

import (
	"strings"
	"testing"

	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	"google.golang.org/protobuf/types/known/anypb"
)

func TestDeepLooksInsideAny(t *testing.T) {
	// stat_prefix is required (min_len 1): this HCM is invalid.
	hcm, err := anypb.New(&hcmv3.HttpConnectionManager{})
	if err != nil {
		t.Fatal(err)
	}
	l := &listenerv3.Listener{
		Name: "l",
		FilterChains: []*listenerv3.FilterChain{{Filters: []*listenerv3.Filter{{
			Name: "envoy.filters.network.http_connection_manager", ConfigType: &listenerv3.Filter_TypedConfig{TypedConfig: hcm},
		}}}},
	}
	if err := l.ValidateAll(); err != nil {
		t.Fatalf("precondition: ValidateAll is expected not to look inside Any, got %v", err)
	}
	err = Deep(l)
	if err == nil || !strings.Contains(err.Error(), "HttpConnectionManager") || !strings.Contains(err.Error(), "StatPrefix") {
		t.Fatalf("Deep = %v, want the HCM's StatPrefix violation", err)
	}
}

func TestDeepReportsUnknownAny(t *testing.T) {
	l := &listenerv3.Listener{Name: "l", FilterChains: []*listenerv3.FilterChain{{Filters: []*listenerv3.Filter{{
		Name: "x", ConfigType: &listenerv3.Filter_TypedConfig{TypedConfig: &anypb.Any{TypeUrl: "type.googleapis.com/no.such.Type"}},
	}}}}}
	if err := Deep(l); err == nil || !strings.Contains(err.Error(), "no.such.Type") {
		t.Fatalf("Deep = %v", err)
	}
}
