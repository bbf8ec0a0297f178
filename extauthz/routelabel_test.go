package extauthz

import (
	"fmt"
	"testing"
)

// Route label values stay bounded whatever routes requests name.
func TestRouteLabelsAreBounded(t *testing.T) {
	var r routeLabels
	if got := r.label(""); got != routeLabelNone {
		t.Fatalf("no route: %q", got)
	}
	for i := range maxRouteLabels {
		if got := r.label(fmt.Sprintf("svc/%d", i)); got != fmt.Sprintf("svc/%d", i) {
			t.Fatalf("route %d labelled %q", i, got)
		}
	}
	if got := r.label("svc/one-too-many"); got != routeLabelOther {
		t.Fatalf("route past the bound: %q, want %q", got, routeLabelOther)
	}
	if got := r.label("svc/7"); got != "svc/7" {
		t.Fatalf("a route seen before the bound: %q", got)
	}
}
