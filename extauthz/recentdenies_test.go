package extauthz

import (
	"encoding/json"
	"fmt"
	"net/http"
	"testing"
)

// The ring keeps the newest denials, newest first, and no more than its bound.
func TestRecentDeniesKeepsTheNewest(t *testing.T) {
	var r recentDenies
	for i := range maxRecentDenies + 7 {
		r.add(RecentDeny{DecisionID: fmt.Sprint(i)})
	}
	got := r.list()
	if len(got) != maxRecentDenies {
		t.Fatalf("%d kept, want %d", len(got), maxRecentDenies)
	}
	if got[0].DecisionID != fmt.Sprint(maxRecentDenies+6) || got[len(got)-1].DecisionID != "7" {
		t.Fatalf("newest %s, oldest %s", got[0].DecisionID, got[len(got)-1].DecisionID)
	}
}

// GET /v1/denies serves the denials, and only those.
func TestRecentDeniesAreServed(t *testing.T) {
	h := newHarness(t, basePolicies, nil)
	alice := h.token("alice")
	h.decide(creq{method: "GET", path: "/o/1", token: alice, ext: ext()})
	h.decide(creq{method: "POST", path: "/o", token: alice, ext: ext(ExtRoute, "orders/write")})
	resp, err := http.Get("http://" + h.srv.AdminAddr() + "/v1/denies")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var got RecentDenies
	if err := json.NewDecoder(resp.Body).Decode(&got); err != nil {
		t.Fatal(err)
	}
	if len(got.Denies) != 1 {
		t.Fatalf("denies = %+v, want the one POST", got.Denies)
	}
	d := got.Denies[0]
	if d.Method != "POST" || d.Path != "/o" || d.Status != 403 || d.Reason == "" || d.Route != "orders/write" {
		t.Fatalf("deny = %+v", d)
	}
}
