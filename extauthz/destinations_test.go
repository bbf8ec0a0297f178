package extauthz

import (
	"strings"
	"testing"
)

const ordersID = "spiffe://meshguard.local/ns/demo/sa/orders"

// Requests from proxies meshguard does not configure (Istio CUSTOM) carry
// no context extensions: their route is their destination's.
func TestRequestsWithoutExtensionsAreRoutedByTheirDestination(t *testing.T) {
	h := newHarness(t, basePolicies, func(c *Config) {
		c.Destinations = []Destination{{SPIFFEID: ordersID, Service: "orders"}}
	})
	alice := h.token("alice")
	if r := h.decide(creq{method: "GET", path: "/o/1", token: alice}); r.status != 200 {
		t.Fatalf("GET to orders' workload: %d, want 200 (users-read)", r.status)
	}
	if r := h.decide(creq{method: "POST", path: "/o", token: alice}); r.status != 403 {
		t.Fatalf("POST by a non-admin: %d, want 403 from orders' policies", r.status)
	}
	// A destination no entry names is denied: no route, no decision.
	r := h.decide(creq{method: "GET", path: "/o/1", token: alice, dest: "spiffe://meshguard.local/ns/demo/sa/payments"})
	if r.status != 403 || r.meta["reason"] != ReasonBadRoute {
		t.Fatalf("unknown destination: %d %v, want 403 %s", r.status, r.meta["reason"], ReasonBadRoute)
	}
	// Context extensions, when a proxy sends them, win.
	if r := h.decide(creq{method: "POST", path: "/o", token: alice, ext: ext(ExtPolicy, "candidate")}); r.status != 200 {
		t.Fatalf("extensions naming another set: %d, want 200 (its permit-all)", r.status)
	}
	entries := h.decisions(4)
	if entries[0].Route != "orders" || entries[0].Service != "orders" || entries[0].PolicySet != "orders" {
		t.Fatalf("decision log entry = %+v, want the destination's route", entries[0])
	}
}

func TestBadDestinationsAreRefused(t *testing.T) {
	for _, tc := range []struct {
		d    Destination
		want string
	}{
		{Destination{SPIFFEID: "orders", Service: "orders"}, "[0].spiffe_id"},
		{Destination{SPIFFEID: ordersID}, "[0].service: required"},
		{Destination{SPIFFEID: ordersID, Service: "orders", Policy: "../etc"}, "[0].policy"},
		{Destination{SPIFFEID: ordersID, Service: "orders", Mode: "audit"}, "[0].mode"},
	} {
		err := validateDestinations([]Destination{tc.d})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: %v, want an error naming %s", tc.d, err, tc.want)
		}
	}
	twice := []Destination{{SPIFFEID: ordersID, Service: "a"}, {SPIFFEID: ordersID, Service: "b"}}
	if err := validateDestinations(twice); err == nil || !strings.Contains(err.Error(), "twice") {
		t.Errorf("a SPIFFE ID twice: %v", err)
	}
}
