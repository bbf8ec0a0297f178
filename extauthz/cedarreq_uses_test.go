package extauthz

import (
	"fmt"
	"reflect"
	"testing"

	"github.com/cedar-policy/cedar-go"
	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"github.com/meshguard/meshguard/extauthz/jwt"
	"github.com/meshguard/meshguard/extauthz/policy"
)

// contextPolicies read, test for, miss and compare context attributes in
// every way Cedar allows.
var contextPolicies = []string{
	`permit (principal, action, resource) when { context.request.path like "/catalog*" };`,
	`permit (principal, action, resource) when { context.request.headers["x-tenant"] == "acme" };`,
	`forbid (principal, action, resource) when { context.request.headers["user-agent"] like "*bot*" };`,
	`permit (principal, action, resource) when { context.request.headers has "accept" && context.request.method == "GET" };`,
	`permit (principal, action, resource) when { context.request == {"method": "GET", "path": "/", "query": "", "host": "h", "scheme": "https", "headers": {}} };`,
	`permit (principal, action, resource) when { context.request.headers == {} };`,
	`permit (principal, action, resource) when { context.source.spiffe_id like "*/sa/frontend" };`,
	`forbid (principal, action, resource) unless { context.source.ip.isInRange(ip("10.0.0.0/8")) };`,
	`permit (principal, action, resource) when { context has jwt && context.jwt.sub == "alice" };`,
	`permit (principal, action, resource) when { context.jwt.sub == "alice" };`,
	`permit (principal, action, resource) when { context.route.mode == "enforce" && context.route.id == "r1" };`,
	`permit (principal, action, resource) when { context has request && !(context has nothing) };`,
	`forbid (principal, action, resource) when { context.request.query.isEmpty() };`,
	`permit (principal, action, resource) when { context == {} };`,
	`permit (principal, action, resource) when { [context.request.headers].contains({"accept": "*/*"}) };`,
	`permit (principal, action, resource) when { (if context.request.method == "GET" then context.request else context.source) has path };`,
}

// The authorizer builds only the context attributes a set's policies name.
// Whatever the policies do with the context — read it, test for keys, fail
// on missing ones, compare whole records — the pruned context must give
// the decisions, determining policies and errors the full one gives.
func TestPrunedContextDecidesLikeTheFullOne(t *testing.T) {
	sets := map[string]map[string]string{"all": {}}
	for i, p := range contextPolicies {
		name := fmt.Sprintf("p%d.cedar", i)
		sets[name] = map[string]string{name: p}
		sets["all"][name] = p
	}
	for name, files := range sets {
		set, err := policy.ParseSet("s", files)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		checkPrunedContext(t, name, set)
	}
}

// checkPrunedContext evaluates set on every fixture request and caller with
// the pruned and the full context and reports any difference.
func checkPrunedContext(t testing.TB, name string, set *policy.Set) {
	t.Helper()
	attrs, callers, headers := contextFixtures()
	route := Route{ID: "r1", Service: "orders", PolicySet: "s", Mode: ModeEnforce}
	for i, a := range attrs {
		for j, c := range callers {
			ents := policy.Overlay{Extra: c.principalEntity()}
			full := set.Evaluate(ents, BuildRequest(a, route, c, headers, policy.AllUses()))
			pruned := set.Evaluate(ents, BuildRequest(a, route, c, headers, set.ContextUses()))
			if !reflect.DeepEqual(full, pruned) {
				t.Errorf("%s, request %d, caller %d: pruned context (%s) decided %+v, full context %+v",
					name, i, j, set.ContextUses(), pruned, full)
			}
		}
	}
}

// contextFixtures are requests and callers that give the context policies
// something to read, miss and compare.
func contextFixtures() ([]Attributes, []Caller, []string) {
	alice := &jwt.Identity{Subject: "alice", Claims: cedar.NewRecord(cedar.RecordMap{"sub": cedar.String("alice")})}
	alice.Entity = cedar.Entity{UID: cedar.NewEntityUID(TypeUser, "alice"), Attributes: alice.Claims}
	frontend := spiffeid.RequireFromString("spiffe://meshguard.local/ns/demo/sa/frontend")
	attrs := []Attributes{
		{Method: "GET", Path: "/", Host: "h", Scheme: "https"},
		{Method: "GET", Path: "/catalog/1", Query: "q=1", Host: "h", Scheme: "https", SourceAddress: "10.1.2.3:5000",
			Headers: map[string]string{"accept": "*/*", "x-tenant": "acme", "user-agent": "curl"}},
		{Method: "POST", Path: "/orders", SourceAddress: "192.0.2.1:443",
			Headers: map[string]string{"user-agent": "evilbot", "x-request-id": "abc"}},
		{Method: "GET", Path: "/catalog", SourceAddress: "not an address", Headers: map[string]string{"accept": "text/html"}},
	}
	callers := []Caller{{}, {User: alice}, {Workload: frontend, Peer: frontend}, {User: alice, Peer: frontend}}
	headers := []string{"accept", "user-agent", "x-tenant", "x-request-id"}
	return attrs, callers, headers
}

// A set that names only context.request.path gets a context with only that.
func TestPrunedContextHoldsOnlyWhatIsNamed(t *testing.T) {
	set, err := policy.ParseSet("s", map[string]string{"p.cedar": `permit (principal, action, resource) when { context.request.path == "/" };`})
	if err != nil {
		t.Fatal(err)
	}
	a := Attributes{Method: "GET", Path: "/", SourceAddress: "10.0.0.1:1", Headers: map[string]string{"accept": "*/*"}}
	ctx := buildContext(a, Route{ID: "r"}, Caller{}, []string{"accept"}, set.ContextUses())
	want := cedar.NewRecord(cedar.RecordMap{"request": cedar.NewRecord(cedar.RecordMap{"path": cedar.String("/")})})
	if !ctx.Equal(want) {
		t.Errorf("context = %s, want %s", ctx.MarshalCedar(), want.MarshalCedar())
	}
	none, err := policy.ParseSet("s", map[string]string{"p.cedar": `permit (principal, action, resource);`})
	if err != nil {
		t.Fatal(err)
	}
	if ctx := buildContext(a, Route{ID: "r"}, Caller{}, []string{"accept"}, none.ContextUses()); ctx.Len() != 0 {
		t.Errorf("a set that never reads the context got %s", ctx.MarshalCedar())
	}
}

// FuzzPrunedContext: for any policy text that parses, the pruned context
// decides exactly as the full one.
func FuzzPrunedContext(f *testing.F) {
	fuzzPolicySets(f, func(t *testing.T, set *policy.Set) { checkPrunedContext(t, "fuzzed set", set) })
}

// fuzzPolicySets runs check on the set of any policy text that parses,
// seeded with contextPolicies.
func fuzzPolicySets(f *testing.F, check func(*testing.T, *policy.Set)) {
	for _, p := range contextPolicies {
		f.Add(p)
	}
	f.Fuzz(func(t *testing.T, text string) {
		set, err := policy.ParseSet("s", map[string]string{"p.cedar": text})
		if err != nil {
			return
		}
		check(t, set)
	})
}
