package policy

import "testing"

func TestContextUses(t *testing.T) {
	for _, tc := range []struct {
		name, policy, want string
	}{
		{"no condition", `permit (principal, action, resource);`, ``},
		{"no context", `permit (principal, action, resource) when { principal has email };`, ``},
		{"one attribute", `permit (principal, action, resource) when { context.request.path == "/x" };`, `"request"."path"`},
		{"index syntax", `permit (principal, action, resource) when { context["request"]["headers"]["x-tenant"] == "a" };`, `"request"."headers"."x-tenant"`},
		{"has", `permit (principal, action, resource) when { context.request has query };`, `"request"."query"`},
		{"has below an access", `permit (principal, action, resource) when { context.request.headers has "x-a" && context.request.headers["x-a"] == "1" };`, `"request"."headers"."x-a"`},
		{"a record used whole", `permit (principal, action, resource) when { context.source == {"address": "a"} };`, `"source"`},
		{"whole and part", `permit (principal, action, resource) when { context.request.path == "/" && context.request == {"path": "/"} };`, `"request"`},
		{"the context used whole", `permit (principal, action, resource) when { context == {} };`, `*`},
		{"the context in a set", `permit (principal, action, resource) when { [context].contains({}) };`, `*`},
		{"the context in a record", `permit (principal, action, resource) when { {"c": context}.c.request.path == "/" };`, `*`},
		{"a conditional over records", `permit (principal, action, resource) when { (if true then context.request else context.source).path == "/" };`, `"request" "source"`},
		{"unless", `forbid (principal, action, resource) unless { context.route.mode == "enforce" };`, `"route"."mode"`},
		{"jwt claims", `permit (principal, action, resource) when { context has jwt && context.jwt.scope like "*orders*" };`, `"jwt"`},
		{"function argument", `permit (principal, action, resource) when { context.source.ip.isInRange(ip("10.0.0.0/8")) };`, `"source"."ip"`},
		{"principal attributes are not context", `permit (principal, action, resource) when { principal.context.request == "x" };`, ``},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := ParseSet("s", map[string]string{"p.cedar": tc.policy})
			if err != nil {
				t.Fatal(err)
			}
			if got := s.ContextUses().String(); got != tc.want {
				t.Errorf("ContextUses = %q, want %q", got, tc.want)
			}
		})
	}
}

// A set observes the union of what its policies observe.
func TestContextUsesUnion(t *testing.T) {
	s, err := ParseSet("s", map[string]string{
		"a.cedar": `permit (principal, action, resource) when { context.request.path == "/" };`,
		"b.cedar": `permit (principal, action, resource) when { context.request.method == "GET" && context.route.id == "r" };
forbid (principal, action, resource) when { context.request.path.isEmpty() };`,
	})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := s.ContextUses().String(), `"request"."method" "request"."path" "route"."id"`; got != want {
		t.Errorf("ContextUses = %q, want %q", got, want)
	}
}

func TestUsesSub(t *testing.T) {
	var none *Uses
	if !none.None() || none.Full() || none.Sub("a") != nil {
		t.Error("a nil Uses must observe nothing")
	}
	all := AllUses()
	if !all.Full() || all.None() || !all.Sub("anything").Full() {
		t.Error("AllUses must observe every attribute, whole")
	}
	u := &Uses{}
	u.add([]string{"request", "path"})
	u.add([]string{"request"}) // the whole record absorbs the part
	u.add([]string{"request", "method"})
	if got := u.String(); got != `"request"` {
		t.Errorf("String = %q, want the whole request", got)
	}
	if u.Sub("source") != nil {
		t.Error("an attribute never named must not be observed")
	}
}

// Two sets evaluated for one request share a context holding what either
// observes: UsesWith is their union, memoized, and neither set's own
// uses change.
func TestUsesWithIsTheUnionOfTwoSets(t *testing.T) {
	parse := func(src string) *Set {
		s, err := ParseSet("s", map[string]string{"p.cedar": src})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	cur := parse(`permit (principal, action, resource) when { context.request.path == "/" && context.route.id == "r" };`)
	cand := parse(`permit (principal, action, resource) when { context.request.method == "GET" && context.request.headers["x-a"] == "1" };`)
	whole := parse(`permit (principal, action, resource) when { context.source == {} };`)
	none := parse(`permit (principal, action, resource);`)
	for _, c := range []struct {
		name      string
		a, b      *Set
		want      string
		wantOwnA  string
		wantOwnB  string
		sameAsOne *Uses
	}{
		{"overlapping records merge", cur, cand, `"request"."headers"."x-a" "request"."method" "request"."path" "route"."id"`, `"request"."path" "route"."id"`, `"request"."headers"."x-a" "request"."method"`, nil},
		{"a record used whole absorbs nothing else", cur, whole, `"request"."path" "route"."id" "source"`, `"request"."path" "route"."id"`, `"source"`, nil},
		{"a set observing nothing adds nothing", cur, none, `"request"."path" "route"."id"`, `"request"."path" "route"."id"`, ``, cur.ContextUses()},
		{"no other set", cur, nil, `"request"."path" "route"."id"`, `"request"."path" "route"."id"`, ``, cur.ContextUses()},
	} {
		got := c.a.UsesWith(c.b)
		if got.String() != c.want {
			t.Errorf("%s: UsesWith = %q, want %q", c.name, got, c.want)
		}
		if c.sameAsOne != nil && got != c.sameAsOne {
			t.Errorf("%s: a union adding nothing must be the set's own uses, not a copy", c.name)
		}
		if c.a.ContextUses().String() != c.wantOwnA || (c.b != nil && c.b.ContextUses().String() != c.wantOwnB) {
			t.Errorf("%s: UsesWith changed a set's own uses: %q, %v", c.name, c.a.ContextUses(), c.b)
		}
		if c.b != nil && c.a.UsesWith(c.b) != got {
			t.Errorf("%s: UsesWith is not memoized", c.name)
		}
	}
	if u := Union(AllUses(), cur.ContextUses()); !u.Full() {
		t.Error("a union with everything is everything")
	}
}

// The memo is bounded: a set kept across many failed reloads meets every
// new load's sets, and must not hold them all.
func TestUsesWithMemoIsBounded(t *testing.T) {
	s, _ := ParseSet("s", map[string]string{"p.cedar": `permit (principal, action, resource) when { context.request.path == "/" };`})
	for i := range maxUsesWith * 3 {
		o, _ := ParseSet("o", map[string]string{"p.cedar": `permit (principal, action, resource) when { context.route.id == "r" };`})
		if got := s.UsesWith(o).String(); got != `"request"."path" "route"."id"` {
			t.Fatalf("round %d: %q", i, got)
		}
	}
	n := 0
	s.with.m.Range(func(any, any) bool { n++; return true })
	if n > maxUsesWith {
		t.Fatalf("memo holds %d entries, bound %d", n, maxUsesWith)
	}
}
