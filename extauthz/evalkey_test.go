package extauthz

import (
	"fmt"
	"maps"
	"strings"
	"testing"

	"github.com/cedar-policy/cedar-go"
	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"github.com/meshguard/meshguard/extauthz/jwt"
	"github.com/meshguard/meshguard/extauthz/policy"
)

// keyFixture is one evaluation input: what appendEvalKey and BuildRequest
// read.
type keyFixture struct {
	a Attributes
	r Route
	c Caller
}

// keyFixtures vary every input of an evaluation one at a time from a base
// request, so that for each input some pair of fixtures differs only there.
func keyFixtures() ([]keyFixture, []string) {
	headers := []string{"accept", "x-tenant", "x-request-id"}
	base := Attributes{Method: "GET", Path: "/orders/1", Query: "a=1", Host: "shop", Scheme: "https",
		SourceAddress: "10.0.0.1:5000", Headers: map[string]string{"accept": "*/*", "x-tenant": "acme", "x-request-id": "r1"}}
	with := func(f func(a *Attributes)) Attributes {
		a := base
		a.Headers = maps.Clone(base.Headers)
		f(&a)
		return a
	}
	attrs := []Attributes{
		base,
		with(func(a *Attributes) { a.Method = "POST" }),
		with(func(a *Attributes) { a.Path = "/orders/2" }),
		with(func(a *Attributes) { a.Query = "a=2" }),
		with(func(a *Attributes) { a.Query = "" }),
		with(func(a *Attributes) { a.Host = "admin" }),
		with(func(a *Attributes) { a.Scheme = "http" }),
		with(func(a *Attributes) { a.Headers["x-tenant"] = "evil" }),
		with(func(a *Attributes) { a.Headers["x-tenant"] = "" }),
		with(func(a *Attributes) { delete(a.Headers, "x-tenant") }),
		with(func(a *Attributes) { a.Headers["x-request-id"] = "r2" }),
		with(func(a *Attributes) { a.Headers["x-not-listed"] = "v" }),
		with(func(a *Attributes) { a.SourceAddress = "10.0.0.1:6000" }),
		with(func(a *Attributes) { a.SourceAddress = "192.0.2.1:5000" }),
		// One value under either of two names.
		with(func(a *Attributes) { a.Headers["x-tenant"] = "v"; delete(a.Headers, "x-request-id") }),
		with(func(a *Attributes) { a.Headers["x-request-id"] = "v"; delete(a.Headers, "x-tenant") }),
		// Field boundaries: the same bytes split differently.
		with(func(a *Attributes) { a.Path, a.Query = "/orders/1a", "=1" }),
	}
	user := func(sub string, claims cedar.RecordMap, roles ...string) *jwt.Identity {
		rec := cedar.NewRecord(claims)
		id := &jwt.Identity{Subject: sub, Roles: roles, Claims: rec, Entity: jwt.UserEntity(sub, roles, rec)}
		id.TokenHash[0], id.TokenHash[1] = byte(len(sub)), byte(len(claims)+8*len(roles)) // stands in for the token's hash
		return id
	}
	frontend := spiffeid.RequireFromString("spiffe://meshguard.local/ns/demo/sa/frontend")
	orders := spiffeid.RequireFromString("spiffe://meshguard.local/ns/demo/sa/orders")
	callers := []Caller{
		{},
		{Peer: frontend},
		{Workload: frontend, Peer: frontend},
		{Workload: orders, Peer: orders},
		{User: user("alice", cedar.RecordMap{"sub": cedar.String("alice")})},
		{User: user("alice", cedar.RecordMap{"sub": cedar.String("alice"), "tier": cedar.String("gold")})},
		{User: user("alice", cedar.RecordMap{"sub": cedar.String("alice")}, "staff")},
		{User: user("bob", cedar.RecordMap{"sub": cedar.String("bob")})},
		{User: user("alice", cedar.RecordMap{"sub": cedar.String("alice")}), Peer: frontend},
	}
	routes := []Route{
		{ID: "r1", Service: "orders", PolicySet: "s", Mode: ModeEnforce},
		{ID: "r2", Service: "orders", PolicySet: "s", Mode: ModeEnforce},
		{ID: "r1", Service: "orders", PolicySet: "s", Mode: ModeShadow},
		{ID: "r1", Service: "payments", PolicySet: "s", Mode: ModeEnforce},
		{ID: "r1", Service: "orders", PolicySet: "s", Mode: ModeEnforce, Action: "read"},
		{ID: "r1", Service: "orders", PolicySet: "s", Mode: ModeEnforce, Action: "GET"},
	}
	var out []keyFixture
	for _, a := range attrs {
		for _, c := range callers {
			for _, r := range routes {
				out = append(out, keyFixture{a, r, c})
			}
		}
	}
	return out, headers
}

// checkEvalKeys groups the fixtures by their evaluation key under uses and
// requires every member of a group to build the same Cedar request and
// principal entity as the group's first: a key shared by two different
// evaluations would serve one the other's result. It returns how many
// distinct keys there were.
func checkEvalKeys(t testing.TB, name string, uses *policy.Uses) int {
	t.Helper()
	fixtures, headers := keyFixtures()
	first := map[string]keyFixture{}
	for _, f := range fixtures {
		key, ok := appendEvalKey(nil, "s", &f.a, &f.r, &f.c, headers, uses)
		if !ok {
			t.Fatalf("%s: key over %d bytes for %+v", name, maxEvalKey, f)
		}
		g, seen := first[string(key)]
		if !seen {
			first[string(key)] = f
			continue
		}
		want := BuildRequest(g.a, g.r, g.c, headers, uses)
		got := BuildRequest(f.a, f.r, f.c, headers, uses)
		if got.Principal != want.Principal || got.Action != want.Action || got.Resource != want.Resource ||
			!got.Context.Equal(want.Context) || !sameEntity(f.c.principalEntity(), g.c.principalEntity()) {
			t.Errorf("%s (uses %s): one key for two evaluations:\n  %+v\n  %s\n  %+v\n  %s",
				name, uses, g, want.Context.MarshalCedar(), f, got.Context.MarshalCedar())
		}
	}
	return len(first)
}

func sameEntity(a, b *cedar.Entity) bool {
	if a == nil || b == nil {
		return a == b
	}
	return a.UID == b.UID && a.Attributes.Equal(b.Attributes) && a.Parents.Equal(b.Parents)
}

// Two evaluations share a key only when they build the same Cedar request
// for the set: for every set of context uses the policies can have.
func TestEvalKeyDeterminesTheRequest(t *testing.T) {
	for i, p := range append([]string{`permit (principal, action, resource);`}, contextPolicies...) {
		set, err := policy.ParseSet("s", map[string]string{"p.cedar": p})
		if err != nil {
			t.Fatal(err)
		}
		checkEvalKeys(t, fmt.Sprintf("policy %d", i), set.ContextUses())
	}
	checkEvalKeys(t, "the full context", policy.AllUses())
}

// A key leaves out what the set's policies do not read: a set that reads
// only the path shares one result between requests that differ in their
// request id, source port or anything else.
func TestEvalKeyLeavesOutWhatPoliciesIgnore(t *testing.T) {
	set, err := policy.ParseSet("s", map[string]string{"p.cedar": `permit (principal, action, resource) when { context.request.path == "/" };`})
	if err != nil {
		t.Fatal(err)
	}
	r := Route{ID: "r1", Service: "orders", PolicySet: "s", Mode: ModeEnforce}
	a1 := Attributes{Method: "GET", Path: "/", SourceAddress: "10.0.0.1:1", Headers: map[string]string{"x-request-id": "1"}}
	a2 := Attributes{Method: "GET", Path: "/", SourceAddress: "10.0.0.2:2", Headers: map[string]string{"x-request-id": "2"}}
	k1, _ := appendEvalKey(nil, "s", &a1, &r, &Caller{}, []string{"x-request-id"}, set.ContextUses())
	k2, _ := appendEvalKey(nil, "s", &a2, &r, &Caller{}, []string{"x-request-id"}, set.ContextUses())
	if string(k1) != string(k2) {
		t.Errorf("keys differ in what the set does not read:\n%q\n%q", k1, k2)
	}
	other, _ := appendEvalKey(nil, "t", &a1, &r, &Caller{}, []string{"x-request-id"}, set.ContextUses())
	if string(other) == string(k1) {
		t.Error("two sets share a key")
	}
	if _, ok := appendEvalKey(nil, "s", &a1, &r, &Caller{User: &jwt.Identity{Subject: "alice"}}, nil, set.ContextUses()); ok {
		t.Error("a user without a token hash was given a key: every such user would share it")
	}
	long := a1
	long.Path = "/" + strings.Repeat("a", maxEvalKey)
	if _, ok := appendEvalKey(nil, "s", &long, &r, &Caller{}, nil, set.ContextUses()); ok {
		t.Error("a key over maxEvalKey was accepted")
	}
}

// FuzzEvalKey: for any policy text that parses, evaluations sharing a key
// build the same Cedar request.
func FuzzEvalKey(f *testing.F) {
	fuzzPolicySets(f, func(t *testing.T, set *policy.Set) { checkEvalKeys(t, "fuzzed set", set.ContextUses()) })
}
