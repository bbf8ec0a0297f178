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
